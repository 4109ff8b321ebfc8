//! Notifications (お知らせ): what an organisation — or one of its members —
//! should look at: a new liaison message, a discharge notice, an admission
//! sheet, emergency access opened on a patient of theirs.
//!
//! A notification carries the patient's id, a kind and a short text without
//! clinical content: it is addressed to an organisation (every member sees
//! it) and to no data category, so the text must not say more than "look at
//! this patient". Listing notifications leaves out those about patients the
//! caller may no longer know of and records a lookup of each patient named in
//! the audit log; what a notification points at is read through the policy
//! as usual.
//!
//! Rows are inserted inside the transaction of the change that causes them
//! ([`create`]); the returned events are published after that commit.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::events::{HubEvent, NotificationEvent};
use crate::principal::Principal;
use entities::notification;

crate::domain::domain_enum! {
    /// What a notification is about.
    pub enum NotificationKind {
        /// Emergency access was opened on a patient of the organisation's care team.
        BreakTheGlass = "BREAK_THE_GLASS",
        /// A liaison message (連絡票) addressed to the organisation was posted.
        NewMessage = "NEW_MESSAGE",
        /// Someone answered a liaison message of yours (for you, the member
        /// who wrote it).
        MessageReply = "MESSAGE_REPLY",
        /// A hospital sent a discharge notice (退院連絡) for a patient of the team.
        DischargeNotice = "DISCHARGE_NOTICE",
        /// The organisation is invited to a discharge conference (退院前カンファレンス).
        DischargeConference = "DISCHARGE_CONFERENCE",
        /// An admission information sheet (入院時情報提供書) arrived at the hospital.
        AdmissionSheetSent = "ADMISSION_SHEET_SENT",
        /// The hospital acknowledged the admission information sheet the
        /// organisation sent.
        AdmissionSheetReceived = "ADMISSION_SHEET_RECEIVED",
    }
}

/// A notification to create.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub organization_id: Uuid,
    /// For one member of the organisation only; `None`: the whole organisation.
    pub member_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
    pub kind: NotificationKind,
    /// The message, sheet, notice … it points at.
    pub subject_id: Option<Uuid>,
    /// Short, and without clinical content (see the module comment).
    pub message: String,
}

/// Inserts notifications in the caller's transaction and returns the events
/// to publish once it has committed.
pub async fn create(
    txn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    drafts: Vec<NewNotification>,
) -> ApiResult<Vec<HubEvent>> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let mut events = Vec::with_capacity(drafts.len());
    let rows: Vec<notification::ActiveModel> = drafts
        .into_iter()
        .map(|d| {
            let id = super::new_id();
            events.push(HubEvent::Notification(NotificationEvent {
                notification_id: id,
                organization_id: d.organization_id,
                member_id: d.member_id,
                patient_id: d.patient_id,
            }));
            notification::ActiveModel {
                id: Set(id),
                organization_id: Set(d.organization_id),
                member_id: Set(d.member_id),
                patient_id: Set(d.patient_id),
                kind: Set(d.kind.as_str().to_string()),
                subject_id: Set(d.subject_id),
                message: Set(d.message),
                created_at: Set(now),
                read_at: Set(None),
            }
        })
        .collect();
    notification::Entity::insert_many(rows).exec(txn).await?;
    Ok(events)
}

/// Whether a notification is for the caller: addressed to its organisation as
/// a whole, or to the calling member.
pub fn is_for(n: &notification::Model, principal: &Principal) -> bool {
    n.organization_id == principal.organization_id()
        && match (n.member_id, principal) {
            (None, _) => true,
            (Some(m), Principal::Member { member_id, .. }) => m == *member_id,
            (Some(_), Principal::System { .. }) => false,
        }
}

fn addressed_to(principal: &Principal) -> Condition {
    let mut to_member = Condition::any().add(notification::Column::MemberId.is_null());
    if let Principal::Member { member_id, .. } = principal {
        to_member = to_member.add(notification::Column::MemberId.eq(*member_id));
    }
    Condition::all()
        .add(notification::Column::OrganizationId.eq(principal.organization_id()))
        .add(to_member)
}

/// The caller's notifications (its organisation's and its own), newest first.
pub async fn for_caller(
    db: &DatabaseConnection,
    principal: &Principal,
    unread_only: bool,
    limit: u64,
) -> ApiResult<Vec<notification::Model>> {
    let mut q = notification::Entity::find()
        .filter(addressed_to(principal))
        .order_by_desc(notification::Column::Id)
        .limit(limit);
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    Ok(q.all(db).await?)
}

/// One notification, if it is for the caller.
pub async fn find_for(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<Option<notification::Model>> {
    Ok(notification::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|n| is_for(n, principal)))
}

/// Marks one of the caller's notifications read (for its whole organisation,
/// when it was addressed to the organisation).
pub async fn mark_read(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<notification::Model> {
    let n = find_for(db, principal, id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification"))?;
    if n.read_at.is_some() {
        return Ok(n);
    }
    let mut a: notification::ActiveModel = n.into();
    a.read_at = Set(Some(now));
    Ok(sea_orm::ActiveModelTrait::update(a, db).await?)
}
