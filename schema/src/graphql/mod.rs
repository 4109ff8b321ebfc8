//! The GraphQL schema: types, inputs, the root query and mutation, the loaders.

pub mod admission_discharge;
pub mod audience;
pub mod audit_extension;
pub mod batching;
mod codes;
pub mod consents;
pub mod directory;
pub mod disaster;
pub mod emergency_information;
pub mod emergency_search;
pub mod fair_use;
pub mod federation;
pub mod fixed;
pub mod indicators;
pub mod inputs;
pub mod liaison;
pub mod limits;
pub mod loaders;
mod mutation;
pub mod outbreaks;
mod query;
pub(crate) mod reach;
pub mod record_mutations;
pub mod records;
mod scalars;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::{Context, Schema};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

pub use mutation::CoreMutation;
pub use query::{MAX_LOOKUPS, Query};
pub use reach::SharedVerdicts;
pub use scalars::{Date, parse_date, parse_time};

use async_graphql::connection::{Connection, Edge, EmptyFields};
use base64::Engine;

use crate::audit::AuditTrail;
use crate::error::ApiError;
use crate::policy::{PatientAccess, Policy};
use crate::principal::RequestContext;
use crate::services::api_keys::ApiKeyCache;
use types::AuditEntry;
use types::Patient;

/// The root mutation: the core (directory, patients, consent, emergency
/// access, batch record writes) and one mutation per record kind.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    CoreMutation,
    record_mutations::RecordMutation,
    admission_discharge::AdmissionDischargeMutation,
    liaison::LiaisonMutation,
    consents::ConsentMutation,
    emergency_search::EmergencySearchMutation,
    directory::DirectoryMutation,
    directory::CommunityResourceMutation,
    outbreaks::OutbreakMutation,
);

pub type RenkeiSchema = Schema<Query, Mutation, subscription::Subscription>;

/// Everything the schema needs from the process.
pub struct SchemaDeps {
    pub db: DatabaseConnection,
    /// The access policy (matrix, emergency duration, clock).
    pub policy: Arc<Policy>,
    /// Shared with the server's authentication, which fills it; revoking a key
    /// through the schema empties the entry.
    pub api_keys: Arc<ApiKeyCache>,
    /// The DataLoaders' batching window (see [`loaders::Loaders::new`]).
    pub batch_window: std::time::Duration,
    /// Skip the window while an operation is alone (see [`batching`]).
    pub adaptive_batching: bool,
    /// How long organisations and members stay cached (see [`loaders`]).
    pub directory_ttl: std::time::Duration,
    /// Where services publish what happened, for subscriptions and for the
    /// caches of every instance.
    pub events: crate::events::EventBus,
    /// The audit log's writer, for operations over WebSocket (HTTP requests
    /// are written by the HTTP handler).
    pub audit: crate::audit::AuditWriter,
    /// Whether introspection (`__schema`, `__type`) is answered (see
    /// [`limits`]).
    pub introspection: bool,
    /// The `iss` of the tokens the hub accepts (`RENKEI_JWT_ISSUER`): the
    /// identity provider whose subjects `setMemberExternalSubject` records.
    pub token_issuer: String,
    /// Bounds on query documents (size, aliases; see [`fair_use`]).
    pub fair_use: fair_use::FairUseLimits,
}

/// The identity provider whose tokens the hub accepts, named by its `iss`.
pub struct TokenIssuer(pub String);

pub fn build_schema(deps: SchemaDeps) -> RenkeiSchema {
    let in_flight = batching::InFlight::new(deps.adaptive_batching);
    let mut builder = Schema::build(Query, Mutation::default(), subscription::Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        // Counts executing operations: the loaders wait for company only
        // when there is some (see `batching`).
        .extension(batching::CountOperations(in_flight.clone()))
        // Before every extension that validates: a text compiled into the
        // hub is not validated again at every request (see `fixed`).
        .extension(fixed::FixedOperations)
        .extension(codes::ErrorCodes)
        .extension(federation::EntityPositions)
        // Before the limits: a WebSocket operation of a caller whose
        // credentials no longer hold is refused as such, whatever it asks.
        .extension(audit_extension::WebSocketAudit { writer: deps.audit })
        .extension(audit_extension::RefusalAudit)
        // Before the limits: a document's size and aliases are bounded, and
        // a large one parsed and validated off the async workers, before
        // anything walks it.
        .extension(fair_use::FairUse {
            limits: deps.fair_use,
        })
        // Depth and complexity limits, with introspection measured its own
        // way: async-graphql's `limit_depth` would refuse the standard
        // introspection query (see `limits`).
        .extension(limits::QueryLimits {
            introspection: deps.introspection,
        });
    if !deps.introspection {
        // `limits` refuses `__schema` / `__type` with a code of its own
        // before this is reached; without the introspection types the
        // schema cannot answer them even if a request got past it.
        builder = builder.disable_introspection();
    }
    builder
        .data(loaders::Loaders::new(
            deps.db.clone(),
            deps.policy.clone(),
            deps.batch_window,
            deps.directory_ttl,
            in_flight.clone(),
        ))
        .data(liaison::LiaisonLoaders::new(
            deps.db.clone(),
            deps.batch_window,
            in_flight.clone(),
        ))
        .data(Arc::new(audience::Audience::new(
            deps.db.clone(),
            deps.policy.clone(),
            deps.batch_window,
        )))
        .data(deps.policy)
        .data(TokenIssuer(deps.token_issuer))
        .data(deps.api_keys)
        .data(deps.events)
        .data(deps.db)
        .finish()
}

/// The member loader of a built schema, for authentication (it shares the
/// schema's directory cache).
pub fn member_loader(schema: &RenkeiSchema) -> Arc<loaders::MemberDataLoader> {
    schema
        .data::<loaders::Loaders>()
        .expect("build_schema puts the loaders into the schema")
        .member
        .clone()
}

/// Keeps this instance's caches true to changes made elsewhere: the
/// directory on `MemberChanged`, API keys on `ApiKeyRevoked`. Events missed
/// because this task fell behind empty both caches.
pub fn spawn_cache_invalidation(schema: RenkeiSchema, bus: &crate::events::EventBus) {
    use crate::events::HubEvent;
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        let forget_all = |schema: &RenkeiSchema| {
            if let Some(l) = schema.data::<loaders::Loaders>() {
                l.forget_directory();
            }
            if let Some(keys) = schema.data::<Arc<ApiKeyCache>>() {
                keys.clear();
            }
        };
        loop {
            match rx.recv().await {
                Ok(event) => match &*event {
                    HubEvent::MemberChanged { .. } => {
                        if let Some(l) = schema.data::<loaders::Loaders>() {
                            l.forget_directory();
                        }
                    }
                    HubEvent::ApiKeyRevoked { api_key_id } => {
                        if let Some(keys) = schema.data::<Arc<ApiKeyCache>>() {
                            keys.forget(*api_key_id);
                        }
                    }
                    HubEvent::RelayRecovered => forget_all(&schema),
                    _ => {}
                },
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "cache invalidation fell behind; caches emptied");
                    forget_all(&schema);
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// The SDL, as committed in `schema.graphql` and printed by `renkei schema`:
/// the federation subgraph SDL (with `@key` and `@link`), the same text
/// `_service { sdl }` gives a gateway — subscriptions included, so code
/// generated from the contract has them (gateways that do not serve
/// subscriptions still compose it: `docs/federation.md`).
pub fn sdl() -> String {
    Schema::build(Query, Mutation::default(), subscription::Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

pub(crate) fn ctx_db<'a>(ctx: &Context<'a>) -> &'a DatabaseConnection {
    ctx.data_unchecked::<DatabaseConnection>()
}

/// The authenticated caller. The server refuses unauthenticated requests before
/// they reach the schema, so a missing context is reported, never assumed.
/// Who acts in this request, for audit entries written inside a write's own
/// transaction.
pub(crate) fn ctx_stamp(ctx: &Context<'_>) -> Result<crate::audit::AuditStamp, ApiError> {
    let req = ctx_request(ctx)?;
    Ok(crate::audit::AuditStamp {
        principal: req.principal.clone(),
        request_id: req.request_id.clone(),
    })
}

pub(crate) fn ctx_request<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext, ApiError> {
    ctx.data_opt::<RequestContext>()
        .ok_or_else(|| ApiError::Unauthenticated("authentication required".into()))
}

/// The one gate of every field of patient data: `Some(())` and an audit
/// record when the caller may read `category`; otherwise `None`, a
/// `FORBIDDEN_FIELD` error at the current field's path naming the category and
/// the reason, and a denial in the audit log. Resolvers return `null` on `None`.
pub(crate) fn gate(
    ctx: &Context<'_>,
    access: &PatientAccess,
    category: crate::domain::DataCategory,
) -> async_graphql::Result<Option<()>> {
    let trail = ctx_trail(ctx)?;
    let grant = access.grant(category);
    if grant.level >= crate::domain::AccessLevel::Read {
        trail.read(access, category);
        return Ok(Some(()));
    }
    let reason = grant.reason.explain(category);
    trail.denied(Some(access.patient_id()), &[category], reason.clone());
    let mut error =
        async_graphql::ServerError::new(format!("not allowed to read {category}: {reason}"), None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "FORBIDDEN_FIELD");
    ext.set("category", category.as_str());
    ext.set(
        "reason",
        async_graphql::Value::Enum(async_graphql::Name::new(types::reason_name(grant.reason))),
    );
    error.extensions = Some(ext);
    ctx.add_error(ctx.set_error_path(error));
    Ok(None)
}

/// The entries of a list that names organisations of a patient's care team
/// (a liaison thread's addressees and read receipts, a conference's
/// invitations). All of them to a caller who knows the care team
/// ([`PatientAccess::knows_care_team`]) — a read of CARE_TEAM, recorded as
/// one whatever the list holds (that no one else is on it tells as much) —
/// and otherwise its own organisation's only: a reader of the thread or
/// conference whose role or the patient's consent closes CARE_TEAM learns
/// no other member of the team from it.
pub(crate) fn team_entries<T>(
    ctx: &Context<'_>,
    access: &PatientAccess,
    entries: impl IntoIterator<Item = T>,
    organization: impl Fn(&T) -> Uuid,
) -> Result<Vec<T>, ApiError> {
    if access.knows_care_team() {
        ctx_trail(ctx)?.read(access, crate::domain::DataCategory::CareTeam);
        return Ok(entries.into_iter().collect());
    }
    let own = ctx_request(ctx)?.principal.organization_id();
    Ok(entries
        .into_iter()
        .filter(|e| organization(e) == own)
        .collect())
}

/// The event bus: services publish to it after their commit.
pub(crate) fn ctx_events<'a>(ctx: &Context<'a>) -> &'a crate::events::EventBus {
    ctx.data_unchecked::<crate::events::EventBus>()
}

pub(crate) fn ctx_policy<'a>(ctx: &Context<'a>) -> &'a Policy {
    ctx.data_unchecked::<Arc<Policy>>()
}

/// The request's audit trail. Patient data is never resolved without one: the
/// server adds it to every request and writes it out before responding.
pub(crate) fn ctx_trail<'a>(ctx: &Context<'a>) -> Result<&'a AuditTrail, ApiError> {
    ctx.data_opt::<Arc<AuditTrail>>()
        .map(|t| t.as_ref())
        .ok_or_else(|| ApiError::internal("request without an audit trail"))
}

/// The caller's access to a patient by id, batched with other lookups in
/// flight; `NOT_FOUND`, recorded as a denial, when the caller may not know
/// of the patient or there is none (see [`reach`]).
pub(crate) async fn patient_access(
    ctx: &Context<'_>,
    patient_id: Uuid,
) -> Result<PatientAccess, ApiError> {
    reach::reach(ctx, reach::PatientRef::Id(patient_id))
        .await
        .map(|(access, _)| access)
}

/// Page size for audit lists, and the most a page may hold.
const AUDIT_PAGE: i32 = 50;
const AUDIT_PAGE_MAX: i32 = 100;

/// Parses `first` / `after` of an audit list: the cursor is an entry number.
pub(crate) fn audit_page_args(
    first: Option<i32>,
    after: Option<String>,
) -> Result<(u64, Option<i64>), ApiError> {
    let first = first.unwrap_or(AUDIT_PAGE);
    if !(1..=AUDIT_PAGE_MAX).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("must be between 1 and {AUDIT_PAGE_MAX}, got {first}"),
        ));
    }
    let before = after
        .map(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("audit:").and_then(|n| n.parse::<i64>().ok()))
                .ok_or_else(|| ApiError::bad_input("after", "is not a cursor returned by this hub"))
        })
        .transpose()?;
    Ok((first as u64, before))
}

pub(crate) fn audit_connection(
    rows: Vec<entities::audit_log::Model>,
    more: bool,
    has_previous: bool,
) -> Connection<String, AuditEntry, EmptyFields, EmptyFields> {
    let mut c = Connection::new(has_previous, more);
    c.edges.extend(rows.into_iter().map(|r| {
        let cursor =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("audit:{}", r.seq));
        Edge::new(cursor, AuditEntry(r))
    }));
    c
}

/// Loads a patient the caller may see; `None` when it may not (or there is
/// none), the refusal recorded like any other (see [`reach`]).
pub(crate) async fn load_patient(
    ctx: &Context<'_>,
    patient_id: Uuid,
) -> Result<Option<Patient>, ApiError> {
    match find_patient(ctx, reach::PatientRef::Id(patient_id)).await {
        Ok(patient) => Ok(Some(patient)),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`find_patient`] for many references at once, in order: `None` where
/// the caller may not see the patient or there is none, the refusal
/// recorded alike. The references are resolved in one statement per kind
/// and the policy evaluated for all of them in one batch.
pub(crate) async fn find_patients(
    ctx: &Context<'_>,
    references: &[reach::PatientRef<'_>],
) -> Result<Vec<Option<Patient>>, ApiError> {
    let ids = reach::resolve_many(ctx, references).await?;
    let found =
        futures_util::future::join_all(references.iter().zip(ids).map(|(r, id)| async move {
            match found_patient(ctx, *r, id).await {
                Ok(patient) => Ok(Some(patient)),
                Err(ApiError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        }))
        .await;
    found.into_iter().collect()
}

/// A patient the caller may see, by id or local ID, its lookup recorded;
/// `NOT_FOUND`, recorded as a denial, otherwise.
pub(crate) async fn find_patient(
    ctx: &Context<'_>,
    reference: reach::PatientRef<'_>,
) -> Result<Patient, ApiError> {
    let patient_id = reference.resolve(ctx).await?;
    found_patient(ctx, reference, patient_id).await
}

/// [`find_patient`] once the reference is resolved (`patient_id`, if it
/// named one): the one place a patient looked up is recorded as a lookup.
async fn found_patient(
    ctx: &Context<'_>,
    reference: reach::PatientRef<'_>,
    patient_id: Option<Uuid>,
) -> Result<Patient, ApiError> {
    let (access, model) = reach::reach_resolved(ctx, reference, patient_id).await?;
    ctx_trail(ctx)?.lookup(&access);
    Ok(Patient::new(access, model))
}
