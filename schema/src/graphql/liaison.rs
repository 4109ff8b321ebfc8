//! Liaison messages (連絡票) in GraphQL: threads and messages, read
//! receipts, attachments, the inbox. The rules are in
//! [`crate::services::liaison`]; here every object is built only after the
//! policy has opened LIAISON_MESSAGES for its patient (through [`gate`],
//! which also records the read) and the service's addressing rule has passed.
//!
//! Everything a list of threads resolves per object — messages, receipts,
//! attachments, addressees, unread counts — goes through the DataLoaders of
//! [`LiaisonLoaders`], so an inbox of many patients costs a fixed number of
//! statements.

use std::collections::{BTreeSet, HashMap};

use async_graphql::{
    Context, ID, InputObject, Object, Result,
    connection::{Connection, Edge, EmptyFields},
    dataloader::Loader,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::inputs::parse_id;
use super::reach::Bound;
use super::types::{Member, Organization, Patient, load_organization};
use super::{
    ctx_db, ctx_events, ctx_policy, ctx_request, ctx_stamp, ctx_trail, gate, loaders::Loaders,
    patient_access,
};
use crate::domain::DataCategory;
use crate::error::{ApiError, ApiResult};
use crate::policy::PatientAccess;
use crate::services::liaison::{
    self as service, Addressing, AttachmentInfo, LiaisonUrgency, MessageBody, MessageContent,
    NewAttachment, NewMessage, NewThread, ThreadCursor,
};
use entities::{liaison_message, liaison_read, liaison_thread};

use super::batching::Adaptive;

const CATEGORY: DataCategory = DataCategory::LiaisonMessages;

// ---------------------------------------------------------------------------
// Loaders

/// The liaison DataLoaders, in the schema's data beside [`Loaders`].
pub struct LiaisonLoaders {
    messages: Adaptive<ThreadMessages>,
    message: Adaptive<MessageById>,
    addressees: Adaptive<ThreadAddressees>,
    receipts: Adaptive<MessageReceipts>,
    attachments: Adaptive<MessageAttachments>,
    unread: Adaptive<UnreadCounts>,
}

impl LiaisonLoaders {
    /// `window`: see [`Loaders::new`].
    pub fn new(
        db: DatabaseConnection,
        window: std::time::Duration,
        in_flight: super::batching::InFlight,
    ) -> Self {
        fn dl<L: Send + Sync + 'static>(
            l: L,
            window: std::time::Duration,
            in_flight: &super::batching::InFlight,
        ) -> Adaptive<L> {
            Adaptive::new(l, window, in_flight.clone())
        }
        LiaisonLoaders {
            messages: dl(ThreadMessages(db.clone()), window, &in_flight),
            message: dl(MessageById(db.clone()), window, &in_flight),
            addressees: dl(ThreadAddressees(db.clone()), window, &in_flight),
            receipts: dl(MessageReceipts(db.clone()), window, &in_flight),
            attachments: dl(MessageAttachments(db.clone()), window, &in_flight),
            unread: dl(UnreadCounts(db), window, &in_flight),
        }
    }
}

macro_rules! loader {
    ($name:ident, $value:ty, |$db:ident, $keys:ident| $body:expr) => {
        pub struct $name(DatabaseConnection);

        impl Loader<Uuid> for $name {
            type Value = $value;
            type Error = ApiError;

            async fn load(&self, $keys: &[Uuid]) -> Result<HashMap<Uuid, $value>, ApiError> {
                let $db = &self.0;
                $body
            }
        }
    };
}

loader!(ThreadMessages, Vec<liaison_message::Model>, |db, keys| {
    service::messages_of(db, keys).await
});
loader!(MessageById, liaison_message::Model, |db, keys| {
    service::messages_by_ids(db, keys).await
});
loader!(ThreadAddressees, Vec<Uuid>, |db, keys| {
    service::addressees_of(db, keys).await
});
loader!(MessageReceipts, Vec<liaison_read::Model>, |db, keys| {
    service::receipts_of(db, keys).await
});
loader!(MessageAttachments, Vec<AttachmentInfo>, |db, keys| {
    service::attachments_of(db, keys).await
});

/// Key: (organisation, thread): how many of the thread's messages the
/// organisation has not read. One query per organisation among the keys.
pub struct UnreadCounts(DatabaseConnection);

impl Loader<(Uuid, Uuid)> for UnreadCounts {
    type Value = i64;
    type Error = ApiError;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> Result<HashMap<(Uuid, Uuid), i64>, ApiError> {
        let mut by_org: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (org, thread) in keys {
            by_org.entry(*org).or_default().push(*thread);
        }
        let mut out = HashMap::new();
        for (org, threads) in by_org {
            let counts = service::unread_counts(&self.0, org, &threads).await?;
            for t in threads {
                out.insert((org, t), counts.get(&t).copied().unwrap_or(0));
            }
        }
        Ok(out)
    }
}

fn loaders<'a>(ctx: &Context<'a>) -> &'a LiaisonLoaders {
    ctx.data_unchecked::<LiaisonLoaders>()
}

fn caller_org(ctx: &Context<'_>) -> ApiResult<Uuid> {
    Ok(ctx_request(ctx)?.principal.organization_id())
}

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

async fn member(ctx: &Context<'_>, id: Option<Uuid>) -> Result<Option<Member>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(ctx
        .data_unchecked::<Loaders>()
        .member
        .load_one(id)
        .await?
        .map(Member))
}

// ---------------------------------------------------------------------------
// Output types

/// A liaison thread (連絡票): one matter about one patient, addressed to the
/// whole care team or to named organisations of it. Readable by the
/// organisations it is addressed to (and the one that started it) whose
/// role and consent allow LIAISON_MESSAGES.
pub struct LiaisonThread {
    model: liaison_thread::Model,
    access: PatientAccess,
}

#[Object]
impl LiaisonThread {
    async fn id(&self) -> ID {
        id(self.model.id)
    }
    async fn patient_id(&self) -> ID {
        id(self.model.patient_id)
    }
    /// The patient, under the policy like everywhere else.
    async fn patient(&self, ctx: &Context<'_>) -> Result<Option<Patient>> {
        Ok(super::load_patient(ctx, self.model.patient_id).await?)
    }
    /// 件名.
    async fn subject(&self) -> &str {
        &self.model.subject
    }
    async fn urgency(&self) -> Result<LiaisonUrgency> {
        Ok(LiaisonUrgency::from_db(&self.model.urgency)?)
    }
    /// True when addressed to every organisation on the care team.
    async fn whole_care_team(&self) -> bool {
        self.model.whole_care_team
    }
    /// The organisations addressed by name (empty for a whole-team thread).
    /// The organisation that started the thread is a party to it as well.
    /// Whom it names is who is on the care team: listed in full to a reader
    /// of the patient's CARE_TEAM (recorded as such a read); others see
    /// their own organisation only, if it is named.
    async fn addressees(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        let ids = loaders(ctx)
            .addressees
            .load_one(self.model.id)
            .await?
            .unwrap_or_default();
        // A whole-team thread names no one: nothing of the team is shown,
        // and no CARE_TEAM read recorded.
        if self.model.whole_care_team && ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = super::team_entries(ctx, &self.access, ids, |o| *o)?;
        // Loaded together, the organisations are one batch of the directory
        // loader (it has no load_many; concurrent loads within its window
        // are the same thing), not one round trip each.
        futures_util::future::try_join_all(ids.into_iter().map(|org| load_organization(ctx, org)))
            .await
    }
    /// The member who started it (null when a system did).
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.model.created_by_member_id).await
    }
    async fn created_by_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.model.created_by_organization_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    /// When the newest message was posted.
    async fn last_message_at(&self) -> DateTime<Utc> {
        self.model.last_message_at
    }
    /// The messages, oldest first.
    async fn messages(&self, ctx: &Context<'_>) -> Result<Vec<LiaisonMessage>> {
        Ok(loaders(ctx)
            .messages
            .load_one(self.model.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            // Shown under the access to the thread's patient, so only a
            // message about that patient: the hub never writes another,
            // and a row moved into the thread in the database would be
            // read — and audited — as this patient's.
            .filter(|m| m.patient_id == self.model.patient_id)
            .map(|model| LiaisonMessage {
                model,
                access: self.access.clone(),
            })
            .collect())
    }
    /// Messages of other organisations your organisation has not marked read.
    async fn unread_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let n = loaders(ctx)
            .unread
            .load_one((caller_org(ctx)?, self.model.id))
            .await?
            .unwrap_or(0);
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

/// A message of a liaison thread. Its author and organisation are stamped by
/// the hub.
pub struct LiaisonMessage {
    model: liaison_message::Model,
    access: PatientAccess,
}

#[Object]
impl LiaisonMessage {
    async fn id(&self) -> ID {
        id(self.model.id)
    }
    async fn thread_id(&self) -> ID {
        id(self.model.thread_id)
    }
    async fn body(&self) -> &str {
        &self.model.body
    }
    /// The member who wrote it (null when a system did).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.model.author_member_id).await
    }
    async fn author_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.model.author_organization_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    /// The message of the same thread this one answers.
    async fn reply_to(&self, ctx: &Context<'_>) -> Result<Option<LiaisonMessage>> {
        let Some(reply_to) = self.model.reply_to_message_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)
            .message
            .load_one(reply_to)
            .await?
            // Of the same thread (and so patient) only: the answered
            // message is shown under this one's access and audited as
            // its patient's read. The hub writes no other; a row changed
            // in the database is not followed out of the thread.
            .filter(|m| {
                m.thread_id == self.model.thread_id && m.patient_id == self.model.patient_id
            })
            .map(|model| LiaisonMessage {
                model,
                access: self.access.clone(),
            }))
    }
    /// Which organisations have read it, and when (read receipts). The
    /// author's organisation is not listed. Who read a message of the care
    /// team is who is on it: listed in full to a reader of the patient's
    /// CARE_TEAM (recorded as such a read); others see their own
    /// organisation's receipt only.
    async fn read_by(&self, ctx: &Context<'_>) -> Result<Vec<LiaisonReadReceipt>> {
        let receipts = loaders(ctx)
            .receipts
            .load_one(self.model.id)
            .await?
            .unwrap_or_default();
        Ok(
            super::team_entries(ctx, &self.access, receipts, |r| r.organization_id)?
                .into_iter()
                .map(LiaisonReadReceipt)
                .collect(),
        )
    }
    /// Whether your organisation wrote it or has marked it read.
    async fn read_by_my_organization(&self, ctx: &Context<'_>) -> Result<bool> {
        let org = caller_org(ctx)?;
        if self.model.author_organization_id == org {
            return Ok(true);
        }
        Ok(loaders(ctx)
            .receipts
            .load_one(self.model.id)
            .await?
            .unwrap_or_default()
            .iter()
            .any(|r| r.organization_id == org))
    }
    async fn attachments(&self, ctx: &Context<'_>) -> Result<Vec<LiaisonAttachment>> {
        Ok(loaders(ctx)
            .attachments
            .load_one(self.model.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|info| LiaisonAttachment {
                info,
                access: self.access.clone(),
            })
            .collect())
    }
}

/// An organisation has read a message.
pub struct LiaisonReadReceipt(liaison_read::Model);

#[Object]
impl LiaisonReadReceipt {
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    /// The member who marked it read (null when a system did).
    async fn member(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.0.member_id).await
    }
    async fn read_at(&self) -> DateTime<Utc> {
        self.0.read_at
    }
}

/// A small file attached to a message.
pub struct LiaisonAttachment {
    info: AttachmentInfo,
    access: PatientAccess,
}

#[Object]
impl LiaisonAttachment {
    async fn id(&self) -> ID {
        id(self.info.id)
    }
    async fn filename(&self) -> &str {
        &self.info.filename
    }
    async fn mime_type(&self) -> &str {
        &self.info.mime_type
    }
    /// Size of the file in bytes (decoded).
    async fn size_bytes(&self) -> i32 {
        self.info.size_bytes
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.info.created_at
    }
    /// LIAISON_MESSAGES. The file, base64 (standard alphabet, padded). Read
    /// on its own and recorded in the audit log.
    async fn content_base64(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if gate(ctx, &self.access, CATEGORY)?.is_none() {
            return Ok(None);
        }
        ctx_trail(ctx)?.read_naming(
            &self.access,
            CATEGORY,
            format!("liaison attachment {} opened", self.info.id),
        );
        let content = service::attachment_content(ctx_db(ctx), self.info.id)
            .await?
            .ok_or_else(|| ApiError::internal("a listed attachment vanished"))?;
        Ok(Some(
            base64::engine::general_purpose::STANDARD.encode(content),
        ))
    }
}

// ---------------------------------------------------------------------------
// Reads

/// Page sizes of thread lists.
const PAGE: i32 = 20;
const PAGE_MAX: i32 = 100;

fn page_size(first: Option<i32>) -> ApiResult<u64> {
    let first = first.unwrap_or(PAGE);
    if !(1..=PAGE_MAX).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("must be between 1 and {PAGE_MAX}, got {first}"),
        ));
    }
    Ok(first as u64)
}

fn encode_cursor(c: ThreadCursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "liaison:{}:{}",
        c.last_message_at.timestamp_micros(),
        c.id
    ))
}

fn edge(model: liaison_thread::Model, access: PatientAccess) -> ThreadEdge {
    Edge::new(
        encode_cursor(ThreadCursor::of(&model)),
        LiaisonThread { model, access },
    )
}

fn decode_cursor(cursor: &str) -> ApiResult<ThreadCursor> {
    let bad = || ApiError::bad_input("after", "is not a cursor returned by this hub");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("liaison"), Some(micros), Some(id)) => Ok(ThreadCursor {
            last_message_at: micros
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(bad)?,
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

pub type ThreadEdge = Edge<String, LiaisonThread, EmptyFields>;

/// A page of liaison threads, most recently active first
/// (`LiaisonThreadConnection`).
pub type ThreadConnection = Connection<String, LiaisonThread, EmptyFields, EmptyFields>;

/// A page of threads: `hasPreviousPage` when it continues another.
fn thread_page(
    has_previous_page: bool,
    has_next_page: bool,
    edges: Vec<ThreadEdge>,
) -> ThreadConnection {
    let mut page = Connection::new(has_previous_page, has_next_page);
    page.edges = edges;
    page
}

/// `Patient.liaisonThreads`: the threads of one patient the caller's
/// organisation may see, most recently active first.
pub(crate) async fn patient_threads(
    ctx: &Context<'_>,
    access: &PatientAccess,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Option<ThreadConnection>> {
    let first = page_size(first)?;
    let after = after.as_deref().map(decode_cursor).transpose()?;
    if gate(ctx, access, CATEGORY)?.is_none() {
        return Ok(None);
    }
    let (rows, more) =
        service::threads_of_patient(ctx_db(ctx), access, caller_org(ctx)?, after, first).await?;
    let edges = rows
        .into_iter()
        .map(|model| edge(model, access.clone()))
        .collect();
    Ok(Some(thread_page(after.is_some(), more, edges)))
}

/// A thread the caller may see: the thread's patient through the policy,
/// then the addressing rule (a thread not addressed to the caller's
/// organisation does not exist for it). Any refusal is `NOT_FOUND` of
/// `what`, recorded alike whether the thread exists or not
/// ([`super::reach`]). Returns the patient's access with the thread.
async fn open_thread<T>(
    ctx: &Context<'_>,
    what: &'static str,
    id: Uuid,
    found: Option<T>,
    thread_of: impl Fn(&T) -> &liaison_thread::Model,
) -> ApiResult<(T, PatientAccess)> {
    let bound = Bound {
        what,
        id,
        patient_id: found.as_ref().map(|f| thread_of(f).patient_id),
        // A refusal tells of a thread: recorded under its category, it is
        // hidden from readers of the access history who may not read
        // liaison messages.
        category: Some(CATEGORY),
        hidden_without_category: false,
    };
    let (found, access) = bound.reach(ctx, found).await?;
    match service::require_addressed(ctx_db(ctx), &access, thread_of(&found), caller_org(ctx)?)
        .await
    {
        Ok(()) => Ok((found, access)),
        Err(ApiError::NotFound(_)) => Err(bound.refuse(ctx, "not addressed to your organisation")),
        Err(e) => Err(e),
    }
}

/// A thread by its id, for [`open_thread`].
async fn thread_by_own_id(
    ctx: &Context<'_>,
    thread_id: Uuid,
) -> ApiResult<(liaison_thread::Model, PatientAccess)> {
    let found = service::find_thread(ctx_db(ctx), thread_id).await?;
    open_thread(ctx, "liaison thread", thread_id, found, |t| t).await
}

/// `Query.liaisonThread`: one thread, `null` with `FORBIDDEN_FIELD` when the
/// caller may not read LIAISON_MESSAGES of its patient.
pub(crate) async fn thread_by_id(
    ctx: &Context<'_>,
    thread_id: ID,
) -> Result<Option<LiaisonThread>> {
    let thread_id = parse_id("id", &thread_id)?;
    let (model, access) = thread_by_own_id(ctx, thread_id).await?;
    if gate(ctx, &access, CATEGORY)?.is_none() {
        return Ok(None);
    }
    Ok(Some(LiaisonThread { model, access }))
}

/// `Query.liaisonInbox`: threads with messages the caller's organisation has
/// not read, across its patients, most recently active first. Whether the
/// caller may read each thread's patient's LIAISON_MESSAGES (consent, role)
/// is decided in the page's query ([`service::inbox`]), so a page holds the
/// next `first` threads the caller may read and `hasNextPage` says whether
/// another follows — nothing about threads it may not read. The patients of
/// the page then pass the policy once more, batched, for the audit trail and
/// the threads' access.
pub(crate) async fn inbox(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<ThreadConnection> {
    let first = page_size(first)?;
    let after = after.as_deref().map(decode_cursor).transpose()?;
    let Some(scope) = ctx_policy(ctx).readable_rows(&ctx_request(ctx)?.principal, CATEGORY) else {
        // A role without the category reads no thread: nothing to scan.
        return Ok(thread_page(after.is_some(), false, Vec::new()));
    };
    let (rows, more) = service::inbox(ctx_db(ctx), &scope, after, first).await?;
    let patients: BTreeSet<Uuid> = rows.iter().map(|t| t.patient_id).collect();
    let verdicts =
        futures_util::future::join_all(patients.iter().map(|p| patient_access(ctx, *p))).await;
    let mut readable: HashMap<Uuid, PatientAccess> = HashMap::new();
    for (p, verdict) in patients.into_iter().zip(verdicts) {
        match verdict {
            Ok(access) if access.may_read(CATEGORY) => {
                readable.insert(p, access);
            }
            // Access changed in the instant since the query (consent
            // withdrawn): left out rather than shown.
            Ok(_) | Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut edges = Vec::with_capacity(rows.len());
    for model in rows {
        if let Some(access) = readable.get(&model.patient_id) {
            // Records the read of the patient's liaison messages.
            gate(ctx, access, CATEGORY)?;
            edges.push(edge(model, access.clone()));
        }
    }
    Ok(thread_page(after.is_some(), more, edges))
}

// ---------------------------------------------------------------------------
// Writes

/// A file to attach: at most 512 KiB decoded; PDF, JPEG, PNG or plain text.
#[derive(InputObject)]
pub struct LiaisonAttachmentInput {
    /// The file's name, without a directory.
    pub filename: String,
    /// One of application/pdf, image/jpeg, image/png, text/plain.
    pub mime_type: String,
    /// The content, base64 (standard alphabet, padded).
    pub content_base64: String,
}

fn parse_content(
    body: &str,
    attachments: Vec<LiaisonAttachmentInput>,
) -> ApiResult<MessageContent> {
    let body = MessageBody::parse("input.body", body)?;
    if attachments.len() > service::ATTACHMENTS_MAX {
        return Err(ApiError::bad_input(
            "input.attachments",
            format!(
                "at most {} attachments per message, got {}",
                service::ATTACHMENTS_MAX,
                attachments.len()
            ),
        ));
    }
    let attachments = attachments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            NewAttachment::parse(
                &format!("input.attachments[{i}]"),
                &a.filename,
                &a.mime_type,
                &a.content_base64,
            )
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(MessageContent { body, attachments })
}

#[derive(InputObject)]
pub struct StartLiaisonThreadInput {
    pub patient_id: ID,
    /// 件名, at most 100 characters.
    pub subject: String,
    #[graphql(default_with = "LiaisonUrgency::Normal")]
    pub urgency: LiaisonUrgency,
    /// Address every organisation on the care team (then leave
    /// `organizationIds` empty).
    #[graphql(default)]
    pub whole_care_team: bool,
    /// Or address these organisations of the care team by name.
    #[graphql(default)]
    pub organization_ids: Vec<ID>,
    /// The first message, at most 4,000 characters.
    pub body: String,
    /// At most 5 files.
    #[graphql(default)]
    pub attachments: Vec<LiaisonAttachmentInput>,
}

impl StartLiaisonThreadInput {
    fn parse(self) -> ApiResult<(Uuid, NewThread)> {
        let patient_id = parse_id("input.patientId", &self.patient_id)?;
        let subject = service::parse_subject("input.subject", &self.subject)?;
        let addressing = match (self.whole_care_team, self.organization_ids.is_empty()) {
            (true, true) => Addressing::WholeCareTeam,
            (false, false) => Addressing::Organizations(
                self.organization_ids
                    .iter()
                    .enumerate()
                    .map(|(i, o)| parse_id(&format!("input.organizationIds[{i}]"), o))
                    .collect::<ApiResult<Vec<_>>>()?,
            ),
            (true, false) => {
                return Err(ApiError::bad_input(
                    "input.organizationIds",
                    "must be empty when the thread is addressed to the whole care team",
                ));
            }
            (false, true) => {
                return Err(ApiError::bad_input(
                    "input.organizationIds",
                    "name the organisations to address, or set wholeCareTeam",
                ));
            }
        };
        let first = parse_content(&self.body, self.attachments)?;
        Ok((
            patient_id,
            NewThread {
                subject,
                urgency: self.urgency,
                addressing,
                first,
            },
        ))
    }
}

#[derive(InputObject)]
pub struct PostLiaisonMessageInput {
    pub thread_id: ID,
    /// At most 4,000 characters.
    pub body: String,
    /// The message of the same thread this one answers.
    pub reply_to_message_id: Option<ID>,
    /// At most 5 files.
    #[graphql(default)]
    pub attachments: Vec<LiaisonAttachmentInput>,
}

/// The liaison mutations.
#[derive(Default)]
pub struct LiaisonMutation;

#[Object]
impl LiaisonMutation {
    /// Starts a liaison thread (連絡票) about a patient with its first
    /// message, addressed to the whole care team or to named organisations of
    /// it. Needs write access to LIAISON_MESSAGES. Every addressed
    /// organisation but yours gets a NEW_MESSAGE notification.
    async fn start_liaison_thread(
        &self,
        ctx: &Context<'_>,
        input: StartLiaisonThreadInput,
    ) -> Result<LiaisonThread> {
        let (patient_id, new) = input.parse()?;
        let access = patient_access(ctx, patient_id).await?;
        let policy = ctx_policy(ctx);
        let (model, _) = service::start_thread(
            ctx_db(ctx),
            &access,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            new,
            policy.clock.now(),
            policy.clock.today(),
        )
        .await?;
        // What the response shows of the thread is read under the policy.
        gate(ctx, &access, CATEGORY)?;
        Ok(LiaisonThread { model, access })
    }

    /// Posts a message (or a reply to one message) in a thread addressed to
    /// your organisation. Needs write access to LIAISON_MESSAGES.
    async fn post_liaison_message(
        &self,
        ctx: &Context<'_>,
        input: PostLiaisonMessageInput,
    ) -> Result<LiaisonMessage> {
        let thread_id = parse_id("input.threadId", &input.thread_id)?;
        let reply_to = input
            .reply_to_message_id
            .as_ref()
            .map(|m| parse_id("input.replyToMessageId", m))
            .transpose()?;
        let content = parse_content(&input.body, input.attachments)?;
        let (thread, access) = thread_by_own_id(ctx, thread_id).await?;
        let policy = ctx_policy(ctx);
        let model = service::post_message(
            ctx_db(ctx),
            &access,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            &thread,
            NewMessage { reply_to, content },
            policy.clock.now(),
            policy.clock.today(),
        )
        .await?;
        gate(ctx, &access, CATEGORY)?;
        Ok(LiaisonMessage { model, access })
    }

    /// Marks every message of a thread read for your organisation. Needs
    /// read access to LIAISON_MESSAGES.
    async fn mark_liaison_thread_read(
        &self,
        ctx: &Context<'_>,
        thread_id: ID,
    ) -> Result<LiaisonThread> {
        let thread_id = parse_id("threadId", &thread_id)?;
        let (model, access) = thread_by_own_id(ctx, thread_id).await?;
        require_read(ctx, &access)?;
        service::mark_read(
            ctx_db(ctx),
            &access,
            &ctx_stamp(ctx)?,
            &model,
            None,
            ctx_policy(ctx).clock.now(),
        )
        .await?;
        Ok(LiaisonThread { model, access })
    }

    /// Marks one message read for your organisation. Needs read access to
    /// LIAISON_MESSAGES.
    async fn mark_liaison_message_read(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> Result<LiaisonMessage> {
        let message_id = parse_id("messageId", &message_id)?;
        let db = ctx_db(ctx);
        let message = service::find_message(db, message_id).await?;
        // The thread is asked for whether or not the message exists (by
        // the nil id, which names none): a message of a patient hidden from
        // the caller and an id that names nothing cost the same statements
        // ([`super::reach`]: a refusal takes the same either way).
        let thread =
            service::find_thread(db, message.as_ref().map_or(Uuid::nil(), |m| m.thread_id)).await?;
        let found = message.zip(thread);
        let ((message, thread), access) =
            open_thread(ctx, "liaison message", message_id, found, |(_, t)| t).await?;
        require_read(ctx, &access)?;
        service::mark_read(
            ctx_db(ctx),
            &access,
            &ctx_stamp(ctx)?,
            &thread,
            Some(message.id),
            ctx_policy(ctx).clock.now(),
        )
        .await?;
        Ok(LiaisonMessage {
            model: message,
            access,
        })
    }
}

/// Marking read is reading: the category must be open to the caller. A
/// refusal is `FORBIDDEN` (the caller knows the thread exists) and is
/// recorded like any denial.
fn require_read(ctx: &Context<'_>, access: &PatientAccess) -> ApiResult<()> {
    if access.may_read(CATEGORY) {
        ctx_trail(ctx)?.read(access, CATEGORY);
        return Ok(());
    }
    let reason = access.grant(CATEGORY).reason.explain(CATEGORY);
    ctx_trail(ctx)?.denied(Some(access.patient_id()), &[CATEGORY], reason.clone());
    Err(ApiError::Forbidden(format!(
        "you may not read {CATEGORY}: {reason}"
    )))
}
