//! Liaison messages (連絡票): what replaces the FAX between the organisations
//! of a patient's care team.
//!
//! A *thread* has a subject and an urgency and is addressed either to the
//! whole care team or to named organisations of it. *Messages* in the thread
//! are posted by members (or systems) of the team; a message may answer
//! another of the same thread and carry small attachments. Each organisation
//! marks messages read for itself (*read receipts*), so the author sees who
//! has read what — where it may read the patient's CARE_TEAM: who read a
//! message of the team is who is on it (`graphql::team_entries`).
//!
//! Access is the policy's first (the caller holds a [`PatientAccess`] and the
//! category LIAISON_MESSAGES), then the **addressing rule** of this module:
//! a thread addressed to named organisations exists only for them and for
//! the organisation that started it ([`require_addressed`], and the same
//! condition in SQL for lists, [`visible_to`]). It narrows the policy, never
//! widens it.
//!
//! Writes run in one transaction with their audit entry and their
//! notifications (NEW_MESSAGE to every addressed organisation but the
//! author's); the events are published after the commit.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::notifications::{self, NewNotification, NotificationKind};
use crate::audit::{AuditAction, AuditStamp};
use crate::domain::{DataCategory, Text};
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, HubEvent, PatientEvent, PatientEventKind};
use crate::policy::{PatientAccess, RowScope};
use crate::principal::Principal;
use crate::records::decode_attachment;
use entities::{
    liaison_attachment, liaison_message, liaison_read, liaison_thread, liaison_thread_addressee,
};

crate::domain::domain_enum! {
    /// How soon a liaison thread needs attention. It orders and labels; it
    /// does not page anyone: an emergency is telephoned as well.
    pub enum LiaisonUrgency {
        /// 通常: within the organisation's usual working day.
        Normal = "NORMAL",
        /// 至急: today — a change of medication, a fever, a missed visit.
        Urgent = "URGENT",
        /// 緊急: now. The sender also telephones; the thread is the record.
        Emergency = "EMERGENCY",
    }
}

/// Longest subject, in characters: a line, like the 件名 of a FAX form.
pub const SUBJECT_MAX: usize = 100;
/// Longest message body, in characters: about two A4 pages of Japanese text,
/// more than a FAX 連絡票 ever held.
pub const BODY_MAX: usize = 4_000;
/// Attachments per message (5), each at most 512 KiB decoded: the records'
/// limits ([`crate::records::ATTACHMENT_MAX_BYTES`]), checked by the same
/// function, so a file the hub keeps passes one rule wherever it is attached.
pub use crate::records::ATTACHMENTS_MAX;
/// Messages per thread: a thread is a conversation about one matter; a
/// longer one is better started afresh.
pub const MESSAGES_PER_THREAD_MAX: u64 = 500;

/// To whom a thread is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// Every organisation on the care team, now and later.
    WholeCareTeam,
    /// These organisations of the care team (in input order, for errors),
    /// and the organisation that starts the thread.
    Organizations(Vec<Uuid>),
}

/// A message body: trimmed, 1 to [`BODY_MAX`] characters; line breaks and
/// tabs allowed, other control characters not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(field: &str, raw: &str) -> ApiResult<Self> {
        // The records' rule for free text; a message keeps what it checked.
        crate::records::checks::long(field, raw, BODY_MAX)?;
        Ok(MessageBody(raw.trim().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated attachment: an accepted MIME type whose content looks like
/// it, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    filename: String,
    mime_type: &'static str,
    content: Vec<u8>,
}

impl NewAttachment {
    /// `field` prefixes the field names of errors (`input.attachments[0]`).
    /// The checks are the records' ([`decode_attachment`]).
    pub fn parse(field: &str, filename: &str, mime_type: &str, base64: &str) -> ApiResult<Self> {
        let a = decode_attachment(filename, mime_type, base64).map_err(|e| e.in_field(field))?;
        Ok(NewAttachment {
            filename: a.filename,
            mime_type: a.mime_type,
            content: a.content,
        })
    }
}

/// What a message says.
#[derive(Debug, Clone)]
pub struct MessageContent {
    pub body: MessageBody,
    pub attachments: Vec<NewAttachment>,
}

/// A thread to start, with its first message.
#[derive(Debug, Clone)]
pub struct NewThread {
    pub subject: Text,
    pub urgency: LiaisonUrgency,
    pub addressing: Addressing,
    pub first: MessageContent,
}

/// A message to post in an existing thread.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub reply_to: Option<Uuid>,
    pub content: MessageContent,
}

/// The parse of a subject, for the edge.
pub fn parse_subject(field: &str, raw: &str) -> ApiResult<Text> {
    Text::parse(field, raw, SUBJECT_MAX)
}

fn author(principal: &Principal) -> (Option<Uuid>, Option<Uuid>) {
    match principal {
        Principal::Member { member_id, .. } => (Some(*member_id), None),
        Principal::System { api_key_id, .. } => (None, Some(*api_key_id)),
    }
}

/// The organisations on the patient's care team on `today`.
async fn team_organizations(
    db: &impl ConnectionTrait,
    patient_id: Uuid,
    today: NaiveDate,
) -> ApiResult<BTreeSet<Uuid>> {
    Ok(
        super::admission_discharge::team_organizations(db, patient_id, today)
            .await?
            .into_iter()
            .collect(),
    )
}

async fn addressees(db: &impl ConnectionTrait, thread_id: Uuid) -> ApiResult<BTreeSet<Uuid>> {
    Ok(liaison_thread_addressee::Entity::find()
        .select_only()
        .column(liaison_thread_addressee::Column::OrganizationId)
        .filter(liaison_thread_addressee::Column::ThreadId.eq(thread_id))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// The addressing rule for one thread: `NOT_FOUND` unless the thread is the
/// patient's (whose access the caller holds) and addressed to the whole care
/// team, to `organization`, or started by it.
pub async fn require_addressed(
    db: &DatabaseConnection,
    access: &PatientAccess,
    thread: &liaison_thread::Model,
    organization: Uuid,
) -> ApiResult<()> {
    let not_found = || ApiError::not_found("liaison thread");
    if thread.patient_id != access.patient_id() {
        return Err(not_found());
    }
    if thread.whole_care_team || thread.created_by_organization_id == organization {
        return Ok(());
    }
    if addressees(db, thread.id).await?.contains(&organization) {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// Who may learn of a message: the addressing of its thread, read once for
/// every subscriber an event about the message reaches (events carry only
/// the message's id). `None` for a message that does not exist.
pub async fn message_reach(
    db: &DatabaseConnection,
    message_id: Uuid,
) -> ApiResult<Option<ThreadReach>> {
    let Some(message) = liaison_message::Entity::find_by_id(message_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(thread) = liaison_thread::Entity::find_by_id(message.thread_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ThreadReach {
        addressees: addressees(db, thread.id).await?,
        whole_care_team: thread.whole_care_team,
        created_by: thread.created_by_organization_id,
    }))
}

/// Whom a thread's messages reach: the rule of [`visible_to`], in memory.
#[derive(Clone, Debug)]
pub struct ThreadReach {
    whole_care_team: bool,
    created_by: Uuid,
    addressees: BTreeSet<Uuid>,
}

impl ThreadReach {
    /// Whether `organization` may learn of the thread's messages: whole
    /// team, started by it, or addressed to it.
    pub fn reaches(&self, organization: Uuid) -> bool {
        self.whole_care_team
            || self.created_by == organization
            || self.addressees.contains(&organization)
    }
}

/// The addressing rule as SQL over `liaison_threads`: whole team, started by
/// `organization`, or addressed to it.
pub fn visible_to(organization: Uuid) -> Condition {
    use liaison_thread::Column as T;
    use liaison_thread_addressee as a;
    Condition::any()
        .add(T::WholeCareTeam.eq(true))
        .add(T::CreatedByOrganizationId.eq(organization))
        .add(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(a::Entity)
                .and_where(
                    Expr::col((a::Entity, a::Column::ThreadId))
                        .equals((liaison_thread::Entity, T::Id)),
                )
                .and_where(Expr::col((a::Entity, a::Column::OrganizationId)).eq(organization))
                .to_owned(),
        ))
}

/// Messages of a thread `organization` has not read: written by another
/// organisation, without a receipt of `organization`. Over `liaison_messages`.
fn unread_by(organization: Uuid) -> Condition {
    use liaison_message::Column as M;
    use liaison_read as r;
    Condition::all()
        .add(M::AuthorOrganizationId.ne(organization))
        .add(Expr::not_exists(
            Query::select()
                .expr(Expr::val(1))
                .from(r::Entity)
                .and_where(
                    Expr::col((r::Entity, r::Column::MessageId))
                        .equals((liaison_message::Entity, M::Id)),
                )
                .and_where(Expr::col((r::Entity, r::Column::OrganizationId)).eq(organization))
                .to_owned(),
        ))
}

/// Who gets NEW_MESSAGE for a message in `thread` by `author_org`.
async fn recipients(
    txn: &impl ConnectionTrait,
    thread: &liaison_thread::Model,
    author_org: Uuid,
    today: NaiveDate,
) -> ApiResult<BTreeSet<Uuid>> {
    let mut to = if thread.whole_care_team {
        team_organizations(txn, thread.patient_id, today).await?
    } else {
        let mut named = addressees(txn, thread.id).await?;
        named.insert(thread.created_by_organization_id);
        named
    };
    to.remove(&author_org);
    Ok(to)
}

fn notification_text(urgency: LiaisonUrgency) -> &'static str {
    // No subject and no text: notifications are read outside the patient
    // policy; the message itself is read through it.
    match urgency {
        LiaisonUrgency::Normal => {
            "A new liaison message (連絡票) about a patient of your care team"
        }
        LiaisonUrgency::Urgent => {
            "An URGENT liaison message (連絡票, 至急) about a patient of your care team"
        }
        LiaisonUrgency::Emergency => {
            "An EMERGENCY liaison message (連絡票, 緊急) about a patient of your care team"
        }
    }
}

/// Inserts a message and its attachments and creates the notifications;
/// returns the message and the events to publish. The thread's
/// `last_message_at` is the caller's to set (a new thread is inserted with
/// it; [`post_message`] moves it first, to lock the thread).
async fn insert_message(
    txn: &impl ConnectionTrait,
    principal: &Principal,
    thread: &liaison_thread::Model,
    reply_to: Option<Uuid>,
    content: MessageContent,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> ApiResult<(liaison_message::Model, Vec<HubEvent>)> {
    let org = principal.organization_id();
    let (member, api_key) = author(principal);
    let message = liaison_message::Entity::insert(liaison_message::ActiveModel {
        id: Set(super::new_id()),
        thread_id: Set(thread.id),
        patient_id: Set(thread.patient_id),
        author_organization_id: Set(org),
        author_member_id: Set(member),
        author_api_key_id: Set(api_key),
        body: Set(content.body.0),
        reply_to_message_id: Set(reply_to),
        created_at: Set(now),
    })
    .exec_with_returning(txn)
    .await?;
    if !content.attachments.is_empty() {
        let rows = content
            .attachments
            .into_iter()
            .map(|a| liaison_attachment::ActiveModel {
                id: Set(super::new_id()),
                message_id: Set(message.id),
                filename: Set(a.filename),
                mime_type: Set(a.mime_type.to_string()),
                // At most ATTACHMENT_MAX_BYTES: fits.
                size_bytes: Set(i32::try_from(a.content.len()).unwrap_or(i32::MAX)),
                content: Set(a.content),
                created_at: Set(now),
            });
        liaison_attachment::Entity::insert_many(rows)
            .exec(txn)
            .await?;
    }
    let urgency = LiaisonUrgency::from_db(&thread.urgency)?;
    let drafts = recipients(txn, thread, org, today)
        .await?
        .into_iter()
        .map(|organization_id| NewNotification {
            organization_id,
            member_id: None,
            patient_id: Some(thread.patient_id),
            kind: NotificationKind::NewMessage,
            subject_id: Some(message.id),
            message: notification_text(urgency).to_string(),
        })
        .collect();
    let mut drafts: Vec<NewNotification> = drafts;
    // The member whose message this answers hears of it personally, beside
    // the organisation-wide notice (unless the member answers itself).
    if let Some(replied) = reply_to {
        let original = liaison_message::Entity::find_by_id(replied)
            .one(txn)
            .await?;
        if let Some((author_member, author_org)) = original
            .and_then(|m| m.author_member_id.map(|a| (a, m.author_organization_id)))
            .filter(|(a, _)| Some(*a) != member)
        {
            drafts.push(NewNotification {
                organization_id: author_org,
                member_id: Some(author_member),
                patient_id: Some(thread.patient_id),
                kind: NotificationKind::MessageReply,
                subject_id: Some(message.id),
                message: "Your liaison message (連絡票) was answered; see the thread".to_string(),
            });
        }
    }
    let mut events = notifications::create(txn, now, drafts).await?;
    events.push(HubEvent::Patient(PatientEvent {
        patient_id: thread.patient_id,
        kind: PatientEventKind::MessagePosted,
        subject_id: message.id,
        category: DataCategory::LiaisonMessages,
        organization_id: org,
        occurred_at: now,
        record_version: None,
    }));
    Ok((message, events))
}

/// Starts a thread with its first message. Needs write access to
/// LIAISON_MESSAGES; named addressees must be on the care team.
pub async fn start_thread(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    new: NewThread,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> ApiResult<(liaison_thread::Model, liaison_message::Model)> {
    access.require_write(DataCategory::LiaisonMessages)?;
    let principal = &stamp.principal;
    let org = principal.organization_id();
    let patient_id = access.patient_id();
    let txn = super::begin_write(db).await?;
    let named: BTreeSet<Uuid> = match &new.addressing {
        Addressing::WholeCareTeam => BTreeSet::new(),
        Addressing::Organizations(ids) => {
            access.require_naming_team("input.organizationIds")?;
            let team = team_organizations(&txn, patient_id, today).await?;
            for (i, id) in ids.iter().enumerate() {
                if !team.contains(id) {
                    return Err(ApiError::bad_input(
                        format!("input.organizationIds[{i}]"),
                        format!("organisation {id} is not on the patient's care team"),
                    ));
                }
            }
            // The starting organisation is a party to the thread anyway.
            let named: BTreeSet<Uuid> = ids.iter().copied().filter(|id| *id != org).collect();
            if named.is_empty() {
                return Err(ApiError::bad_input(
                    "input.organizationIds",
                    "name at least one organisation other than your own, or address the whole care team",
                ));
            }
            named
        }
    };
    let (member, api_key) = author(principal);
    let thread = liaison_thread::Entity::insert(liaison_thread::ActiveModel {
        id: Set(super::new_id()),
        patient_id: Set(patient_id),
        subject: Set(new.subject.into_inner()),
        urgency: Set(new.urgency.as_str().to_string()),
        whole_care_team: Set(new.addressing == Addressing::WholeCareTeam),
        created_by_organization_id: Set(org),
        created_by_member_id: Set(member),
        created_by_api_key_id: Set(api_key),
        created_at: Set(now),
        last_message_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await?;
    if !named.is_empty() {
        liaison_thread_addressee::Entity::insert_many(named.iter().map(|o| {
            liaison_thread_addressee::ActiveModel {
                thread_id: Set(thread.id),
                organization_id: Set(*o),
            }
        }))
        .exec(&txn)
        .await?;
    }
    let (message, events) =
        insert_message(&txn, principal, &thread, None, new.first, now, today).await?;
    let entry = stamp.write(patient_id, &[DataCategory::LiaisonMessages]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    bus.publish_all(events);
    Ok((thread, message))
}

/// Posts a message in a thread the caller may see ([`require_addressed`]
/// has passed). Needs write access to LIAISON_MESSAGES; `reply_to` must be a
/// message of the same thread.
#[allow(clippy::too_many_arguments)]
pub async fn post_message(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    thread: &liaison_thread::Model,
    new: NewMessage,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> ApiResult<liaison_message::Model> {
    access.require_write(DataCategory::LiaisonMessages)?;
    if thread.patient_id != access.patient_id() {
        return Err(ApiError::not_found("liaison thread"));
    }
    let txn = super::begin_write(db).await?;
    // Moving the thread's activity first takes the thread row's lock (on
    // PostgreSQL; SQLite's BEGIN IMMEDIATE holds the write lock already):
    // concurrent posts to the thread wait here, one after the other, so each
    // counts the messages the previous one committed and the limit below
    // holds. Counting first would let two posts both see 499.
    let touched = liaison_thread::Entity::update_many()
        .col_expr(liaison_thread::Column::LastMessageAt, Expr::value(now))
        .filter(liaison_thread::Column::Id.eq(thread.id))
        .exec(&txn)
        .await?;
    if touched.rows_affected == 0 {
        return Err(ApiError::not_found("liaison thread"));
    }
    if let Some(reply_to) = new.reply_to {
        let same_thread = liaison_message::Entity::find_by_id(reply_to)
            .one(&txn)
            .await?
            .is_some_and(|m| m.thread_id == thread.id);
        if !same_thread {
            return Err(ApiError::bad_input(
                "input.replyToMessageId",
                format!("{reply_to} is not a message of this thread"),
            ));
        }
    }
    let count = liaison_message::Entity::find()
        .filter(liaison_message::Column::ThreadId.eq(thread.id))
        .count(&txn)
        .await?;
    if count >= MESSAGES_PER_THREAD_MAX {
        return Err(ApiError::Conflict(format!(
            "the thread has {MESSAGES_PER_THREAD_MAX} messages, the most one thread holds; start a new thread"
        )));
    }
    let (message, events) = insert_message(
        &txn,
        &stamp.principal,
        thread,
        new.reply_to,
        new.content,
        now,
        today,
    )
    .await?;
    let entry = stamp.write(thread.patient_id, &[DataCategory::LiaisonMessages]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    bus.publish_all(events);
    Ok(message)
}

/// Marks messages of a thread read for the caller's organisation (those it
/// did not write and has not read yet): all of them, or `only` one. The
/// receipts and their audit entry (the caller read the messages) commit
/// together. Needs read access, checked by the caller.
pub async fn mark_read(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    thread: &liaison_thread::Model,
    only: Option<Uuid>,
    now: DateTime<Utc>,
) -> ApiResult<u64> {
    if thread.patient_id != access.patient_id() {
        return Err(ApiError::not_found("liaison thread"));
    }
    let org = stamp.principal.organization_id();
    let txn = super::begin_write(db).await?;
    let mut q = liaison_message::Entity::find()
        .select_only()
        .column(liaison_message::Column::Id)
        .filter(liaison_message::Column::ThreadId.eq(thread.id))
        .filter(unread_by(org));
    if let Some(id) = only {
        q = q.filter(liaison_message::Column::Id.eq(id));
    }
    let ids: Vec<Uuid> = q.into_tuple::<Uuid>().all(&txn).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let (member, _) = author(&stamp.principal);
    let inserted = liaison_read::Entity::insert_many(ids.into_iter().map(|message_id| {
        liaison_read::ActiveModel {
            message_id: Set(message_id),
            organization_id: Set(org),
            member_id: Set(member),
            read_at: Set(now),
        }
    }))
    // A receipt written meanwhile by a colleague says the same.
    .on_conflict_do_nothing()
    .exec_without_returning(&txn)
    .await?;
    // What this call marked: the rows inserted (both databases count only
    // those, not the ones the conflict skipped), not the messages found
    // unread a moment before.
    let n = match inserted {
        TryInsertResult::Inserted(n) => n,
        TryInsertResult::Empty | TryInsertResult::Conflicted => 0,
    };
    if n == 0 {
        return Ok(0);
    }
    let entry = stamp.entry(
        thread.patient_id,
        AuditAction::Read,
        &[DataCategory::LiaisonMessages],
        Some(format!("marked {n} liaison message(s) read")),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(n)
}

// ---------------------------------------------------------------------------
// Reads. Lists apply the addressing rule in SQL ([`visible_to`]); the caller
// has obtained the patient's access and read permission before.

/// Where a page of threads starts: after this (last activity, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadCursor {
    pub last_message_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ThreadCursor {
    pub fn of(t: &liaison_thread::Model) -> Self {
        ThreadCursor {
            last_message_at: t.last_message_at,
            id: t.id,
        }
    }

    fn before(self) -> Condition {
        use liaison_thread::Column as T;
        Condition::any()
            .add(T::LastMessageAt.lt(self.last_message_at))
            .add(
                Condition::all()
                    .add(T::LastMessageAt.eq(self.last_message_at))
                    .add(T::Id.lt(self.id)),
            )
    }
}

pub async fn find_thread(
    db: &DatabaseConnection,
    id: Uuid,
) -> ApiResult<Option<liaison_thread::Model>> {
    Ok(liaison_thread::Entity::find_by_id(id).one(db).await?)
}

pub async fn find_message(
    db: &DatabaseConnection,
    id: Uuid,
) -> ApiResult<Option<liaison_message::Model>> {
    Ok(liaison_message::Entity::find_by_id(id).one(db).await?)
}

/// A page of a patient's threads that `organization` may see, most recently
/// active first, and whether more follow.
pub async fn threads_of_patient(
    db: &DatabaseConnection,
    access: &PatientAccess,
    organization: Uuid,
    after: Option<ThreadCursor>,
    first: u64,
) -> ApiResult<(Vec<liaison_thread::Model>, bool)> {
    let mut q = liaison_thread::Entity::find()
        .filter(liaison_thread::Column::PatientId.eq(access.patient_id()))
        .filter(visible_to(organization))
        .order_by_desc(liaison_thread::Column::LastMessageAt)
        .order_by_desc(liaison_thread::Column::Id);
    if let Some(c) = after {
        q = q.filter(c.before());
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
}

/// A page of the caller's organisation's inbox, across patients: threads it
/// may see by addressing, with a message it has not read, of patients it is
/// on the care team of today and whose LIAISON_MESSAGES the caller may read
/// (`scope`) — most recently active first, and whether more follow. Every
/// condition is in the one query, so the page holds exactly the next
/// `first` threads the caller may read and "more" means one of those
/// follows. The care-team condition narrows the scan to the organisation's
/// patients (the database can start from them, through the index on a
/// patient's threads, rather than walk every thread of the hub).
pub async fn inbox(
    db: &DatabaseConnection,
    scope: &RowScope,
    after: Option<ThreadCursor>,
    first: u64,
) -> ApiResult<(Vec<liaison_thread::Model>, bool)> {
    let organization = scope.organization_id();
    let today = scope.today();
    use liaison_thread::Column as T;
    let unread = Query::select()
        .expr(Expr::val(1))
        .from(liaison_message::Entity)
        .and_where(
            Expr::col((liaison_message::Entity, liaison_message::Column::ThreadId))
                .equals((liaison_thread::Entity, T::Id)),
        )
        .cond_where(unread_by(organization))
        .to_owned();
    let mut q = liaison_thread::Entity::find()
        .filter(
            T::PatientId.in_subquery(super::admission_discharge::team_patients(
                organization,
                today,
            )),
        )
        .filter(visible_to(organization))
        .filter(scope.on((liaison_thread::Entity, T::PatientId)))
        .filter(Expr::exists(unread))
        .order_by_desc(T::LastMessageAt)
        .order_by_desc(T::Id);
    if let Some(c) = after {
        q = q.filter(c.before());
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
}

/// How many messages of each thread `organization` has not read.
pub async fn unread_counts(
    db: &DatabaseConnection,
    organization: Uuid,
    thread_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, i64>> {
    use liaison_message::Column as M;
    Ok(liaison_message::Entity::find()
        .select_only()
        .column(M::ThreadId)
        .column_as(Expr::col(M::Id).count(), "unread")
        .filter(super::id_in(
            db.get_database_backend(),
            (liaison_message::Entity, M::ThreadId),
            thread_ids,
        ))
        .filter(unread_by(organization))
        .group_by(M::ThreadId)
        .into_tuple::<(Uuid, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// The messages of threads, oldest first within each.
pub async fn messages_of(
    db: &DatabaseConnection,
    thread_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<liaison_message::Model>>> {
    let mut out: HashMap<Uuid, Vec<liaison_message::Model>> = HashMap::new();
    for m in liaison_message::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (liaison_message::Entity, liaison_message::Column::ThreadId),
            thread_ids,
        ))
        .order_by_asc(liaison_message::Column::CreatedAt)
        .order_by_asc(liaison_message::Column::Id)
        .all(db)
        .await?
    {
        out.entry(m.thread_id).or_default().push(m);
    }
    Ok(out)
}

pub async fn messages_by_ids(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, liaison_message::Model>> {
    Ok(liaison_message::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (liaison_message::Entity, liaison_message::Column::Id),
            ids,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect())
}

/// The named addressees of threads.
pub async fn addressees_of(
    db: &DatabaseConnection,
    thread_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<Uuid>>> {
    let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for a in liaison_thread_addressee::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (
                liaison_thread_addressee::Entity,
                liaison_thread_addressee::Column::ThreadId,
            ),
            thread_ids,
        ))
        .order_by_asc(liaison_thread_addressee::Column::OrganizationId)
        .all(db)
        .await?
    {
        out.entry(a.thread_id).or_default().push(a.organization_id);
    }
    Ok(out)
}

/// The read receipts of messages, oldest first.
pub async fn receipts_of(
    db: &DatabaseConnection,
    message_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<liaison_read::Model>>> {
    let mut out: HashMap<Uuid, Vec<liaison_read::Model>> = HashMap::new();
    for r in liaison_read::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (liaison_read::Entity, liaison_read::Column::MessageId),
            message_ids,
        ))
        .order_by_asc(liaison_read::Column::ReadAt)
        .all(db)
        .await?
    {
        out.entry(r.message_id).or_default().push(r);
    }
    Ok(out)
}

/// An attachment without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    pub id: Uuid,
    pub message_id: Uuid,
    pub filename: String,
    pub mime_type: String,
    pub size_bytes: i32,
    pub created_at: DateTime<Utc>,
}

/// The attachments of messages (not their content), in upload order.
pub async fn attachments_of(
    db: &DatabaseConnection,
    message_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<AttachmentInfo>>> {
    use liaison_attachment::Column as A;
    let rows = liaison_attachment::Entity::find()
        .select_only()
        .columns([
            A::Id,
            A::MessageId,
            A::Filename,
            A::MimeType,
            A::SizeBytes,
            A::CreatedAt,
        ])
        .filter(super::id_in(
            db.get_database_backend(),
            (liaison_attachment::Entity, A::MessageId),
            message_ids,
        ))
        .order_by_asc(A::Id)
        .into_tuple::<(Uuid, Uuid, String, String, i32, DateTime<Utc>)>()
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<AttachmentInfo>> = HashMap::new();
    for (id, message_id, filename, mime_type, size_bytes, created_at) in rows {
        out.entry(message_id).or_default().push(AttachmentInfo {
            id,
            message_id,
            filename,
            mime_type,
            size_bytes,
            created_at,
        });
    }
    Ok(out)
}

/// One attachment's content.
pub async fn attachment_content(db: &DatabaseConnection, id: Uuid) -> ApiResult<Option<Vec<u8>>> {
    Ok(liaison_attachment::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(|a| a.content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ATTACHMENT_MAX_BYTES;
    use base64::Engine;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn field(r: ApiResult<NewAttachment>) -> String {
        match r {
            Err(ApiError::BadUserInput { field, .. }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn an_attachment_is_checked_for_name_type_size_and_content() {
        let pdf = b64(b"%PDF-1.7\n...");
        assert!(NewAttachment::parse("a", "処方箋.pdf", "application/pdf", &pdf).is_ok());
        assert_eq!(
            field(NewAttachment::parse(
                "a",
                "x/y.pdf",
                "application/pdf",
                &pdf
            )),
            "a.filename"
        );
        assert_eq!(
            field(NewAttachment::parse("a", "x.html", "text/html", &pdf)),
            "a.mimeType"
        );
        assert_eq!(
            field(NewAttachment::parse("a", "x.pdf", "application/pdf", "%%%")),
            "a.contentBase64"
        );
        assert_eq!(
            field(NewAttachment::parse("a", "x.pdf", "image/png", &pdf)),
            "a.contentBase64",
            "a PDF declared as PNG"
        );
        let big = b64(&[b'a'; ATTACHMENT_MAX_BYTES + 1]);
        assert_eq!(
            field(NewAttachment::parse("a", "x.txt", "text/plain", &big)),
            "a.contentBase64"
        );
        let exactly = b64(&[b'a'; ATTACHMENT_MAX_BYTES]);
        assert!(NewAttachment::parse("a", "x.txt", "text/plain", &exactly).is_ok());
        assert_eq!(
            field(NewAttachment::parse("a", "x.txt", "text/plain", "")),
            "a.contentBase64"
        );
    }

    #[test]
    fn a_body_keeps_line_breaks_and_refuses_other_controls() {
        assert_eq!(
            MessageBody::parse("b", "  一行目\n二行目  ")
                .unwrap()
                .as_str(),
            "一行目\n二行目"
        );
        assert!(MessageBody::parse("b", "a\u{7}b").is_err());
        assert!(MessageBody::parse("b", " ").is_err());
        assert!(MessageBody::parse("b", &"あ".repeat(BODY_MAX)).is_ok());
        assert!(MessageBody::parse("b", &"あ".repeat(BODY_MAX + 1)).is_err());
    }
}
