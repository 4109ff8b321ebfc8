//! Notifications (お知らせ): what an organisation — or one of its members —
//! should look at: a new liaison message, a discharge notice, an admission
//! sheet, emergency access opened on a patient of theirs, a consent that
//! widens access (pending or in force), an infection outbreak at a facility
//! sharing patients with the organisation.
//!
//! A notification carries the patient's id, a kind and a short text without
//! clinical content, addressed to an organisation (every member sees it) or
//! to one member. That a discharge notice was sent or a liaison message
//! posted, or a consent changed, is itself data of a category
//! (ADMISSION_DISCHARGE, LIAISON_MESSAGES, CONSENT:
//! [`NotificationKind::category`]), so a notification is
//! shown — listed, streamed, marked read — only to a caller whom the policy
//! lets read that category of the patient now, and each one shown is a read
//! of it in the audit log ([`admit`]). Notifications without a category
//! (emergency access opened) need only that the caller may still know the
//! patient, and are recorded as a lookup. A notification that names no
//! patient (a pending consent, told to the coordination centre; an outbreak
//! notice) is shown to its addressee.
//!
//! Rows are inserted inside the transaction of the change that causes them
//! ([`create`]); the returned events are published after that commit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::audit::AuditTrail;
use crate::domain::DataCategory;
use crate::error::ApiResult;
use crate::events::{HubEvent, NotificationEvent};
use crate::policy::{PatientAccess, Policy};
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
        /// The organisation is invited to a discharge conference (退院前カンファレンス),
        /// it was answered, cancelled or its minutes recorded.
        DischargeConference = "DISCHARGE_CONFERENCE",
        /// Likewise for a care-plan meeting (サービス担当者会議).
        ServiceMeeting = "SERVICE_MEETING",
        /// Likewise for a case conference of the team (多職種カンファレンス).
        CaseConference = "CASE_CONFERENCE",
        /// Likewise for an end-of-life conference (看取りカンファレンス).
        EndOfLifeConference = "END_OF_LIFE_CONFERENCE",
        /// An admission information sheet (入院時情報提供書) arrived at the hospital.
        AdmissionSheetSent = "ADMISSION_SHEET_SENT",
        /// The hospital acknowledged the admission information sheet the
        /// organisation sent.
        AdmissionSheetReceived = "ADMISSION_SHEET_RECEIVED",
        /// A consent widening access was recorded and awaits the
        /// coordination centre's confirmation (for the care team; for the
        /// centre, without the patient).
        ConsentPending = "CONSENT_PENDING",
        /// A consent widening access took effect: recorded by an
        /// organisation the consent in force covers, or confirmed.
        ConsentWidened = "CONSENT_WIDENED",
        /// The coordination centre rejected a pending consent.
        ConsentRejected = "CONSENT_REJECTED",
        /// The patient's objection to emergency access was withdrawn:
        /// break-the-glass is possible again (a widening, like a consent's).
        EmergencyObjectionWithdrawn = "EMERGENCY_OBJECTION_WITHDRAWN",
        /// A facility sharing patients with the organisation reported an
        /// infection outbreak (感染症の集団発生), or updated or ended one.
        /// Names no patient: shown to the whole organisation.
        OutbreakNotice = "OUTBREAK_NOTICE",
    }
}

impl NotificationKind {
    /// The data category a notification of this kind discloses: that a
    /// message was posted or a notice sent is liaison or admission/discharge
    /// data. `None`: only that emergency access was opened on a patient of the
    /// team, which the whole care team is told (the access issue), or an
    /// outbreak at a facility, which names no patient (the notice's
    /// affected patients are gated on their own, `services::outbreaks`).
    pub fn category(self) -> Option<DataCategory> {
        match self {
            Self::BreakTheGlass | Self::OutbreakNotice => None,
            Self::NewMessage | Self::MessageReply | Self::CaseConference => {
                Some(DataCategory::LiaisonMessages)
            }
            Self::ServiceMeeting => Some(DataCategory::CarePlan),
            Self::EndOfLifeConference => Some(DataCategory::AdvanceCarePlanning),
            Self::DischargeNotice
            | Self::DischargeConference
            | Self::AdmissionSheetSent
            | Self::AdmissionSheetReceived => Some(DataCategory::AdmissionDischarge),
            Self::ConsentPending
            | Self::ConsentWidened
            | Self::ConsentRejected
            | Self::EmergencyObjectionWithdrawn => Some(DataCategory::Consent),
        }
    }
}

/// Whether the caller may be shown notification `n`, given its access to the
/// patient the notification names (`None`: none); a notification shown is
/// recorded in `trail`. The one rule for the list, the stream and marking
/// read.
pub fn admit(n: &notification::Model, access: Option<&PatientAccess>, trail: &AuditTrail) -> bool {
    let Some(patient) = n.patient_id else {
        return true;
    };
    let Some(access) = access.filter(|a| a.patient_id() == patient) else {
        return false;
    };
    // An unknown kind (a row written by a newer version) is not shown.
    match NotificationKind::parse(&n.kind).map(NotificationKind::category) {
        Some(None) => {
            trail.lookup(access);
            true
        }
        Some(Some(category)) if access.may_read(category) => {
            trail.read(access, category);
            true
        }
        _ => false,
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

fn addressed_to(principal: &Principal) -> Condition {
    let mut to_member = Condition::any().add(notification::Column::MemberId.is_null());
    if let Principal::Member { member_id, .. } = principal {
        to_member = to_member.add(notification::Column::MemberId.eq(*member_id));
    }
    Condition::all()
        .add(notification::Column::OrganizationId.eq(principal.organization_id()))
        .add(to_member)
}

/// [`admit`] as SQL: the notifications the caller may be shown now — those
/// without a patient; of a kind without a category, about a patient the
/// caller may know of; of a kind with a category, about a patient whose
/// category the caller may read ([`Policy::readable_rows`]). Kinds this
/// version does not know are not shown.
fn admitted(policy: &Policy, principal: &Principal) -> Condition {
    let patient = (notification::Entity, notification::Column::PatientId);
    let mut any = Condition::any().add(notification::Column::PatientId.is_null());
    let mut categories: BTreeMap<Option<DataCategory>, Vec<&'static str>> = BTreeMap::new();
    for kind in NotificationKind::ALL {
        categories
            .entry(kind.category())
            .or_default()
            .push(kind.as_str());
    }
    for (category, kinds) in categories {
        let scope = match category {
            None => Some(policy.known_patients(principal)),
            Some(c) => policy.readable_rows(principal, c),
        };
        if let Some(scope) = scope {
            any = any.add(
                Condition::all()
                    .add(notification::Column::Kind.is_in(kinds))
                    .add(scope.on(patient)),
            );
        }
    }
    any
}

/// The caller's notifications (its organisation's and its own) that it may
/// be shown, newest first, at most `limit`. Whether it may be shown each is
/// decided in the query ([`admitted`]), before the limit: a notification the
/// caller may not read neither takes a place in the list nor shortens it.
pub async fn for_caller(
    db: &DatabaseConnection,
    policy: &Policy,
    principal: &Principal,
    unread_only: bool,
    limit: u64,
) -> ApiResult<Vec<notification::Model>> {
    let mut q = notification::Entity::find()
        .filter(addressed_to(principal))
        .filter(admitted(policy, principal))
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
        .filter(addressed_to(principal))
        .one(db)
        .await?)
}

/// Marks a notification read (for the whole organisation, when it was
/// addressed to the organisation). The caller found it with [`find_for`] and
/// passed it through [`admit`].
pub async fn mark_read(
    db: &DatabaseConnection,
    n: notification::Model,
    now: DateTime<Utc>,
) -> ApiResult<notification::Model> {
    if n.read_at.is_some() {
        return Ok(n);
    }
    let mut a: notification::ActiveModel = n.into();
    a.read_at = Set(Some(now));
    Ok(sea_orm::ActiveModelTrait::update(a, db).await?)
}
