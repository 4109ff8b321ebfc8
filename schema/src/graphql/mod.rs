//! The GraphQL schema: types, inputs, the root query and mutation, the loaders.

mod codes;
pub mod inputs;
pub mod loaders;
mod mutation;
mod query;
mod scalars;
pub mod types;

use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, Schema};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

pub use mutation::Mutation;
pub use query::Query;
pub use scalars::Date;

use crate::error::ApiError;
use crate::policy::PatientAccess;
use crate::principal::RequestContext;
use crate::services::api_keys::ApiKeyCache;
use types::Patient;

pub type RenkeiSchema = Schema<Query, Mutation, EmptySubscription>;

/// Query depth and complexity limits: generous for real clients (the deepest
/// legitimate query, patient → care team → organisation → members, is 5 deep),
/// tight enough that a hostile query is refused before it runs.
const MAX_DEPTH: usize = 12;
const MAX_COMPLEXITY: usize = 2_000;

/// Everything the schema needs from the process.
pub struct SchemaDeps {
    pub db: DatabaseConnection,
    /// Shared with the server's authentication, which fills it; revoking a key
    /// through the schema empties the entry.
    pub api_keys: Arc<ApiKeyCache>,
}

pub fn build_schema(deps: SchemaDeps) -> RenkeiSchema {
    Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(codes::ErrorCodes)
        .data(loaders::Loaders::new(deps.db.clone()))
        .data(deps.api_keys)
        .data(deps.db)
        .finish()
}

/// The SDL, as committed in `schema.graphql` and printed by `renkei schema`:
/// the federation subgraph SDL (with `@key` and `@link`), the same text
/// `_service { sdl }` gives a gateway.
pub fn sdl() -> String {
    Schema::build(Query, Mutation, EmptySubscription)
        .enable_federation()
        .finish()
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

pub(crate) fn ctx_db<'a>(ctx: &Context<'a>) -> &'a DatabaseConnection {
    ctx.data_unchecked::<DatabaseConnection>()
}

/// The authenticated caller. The server refuses unauthenticated requests before
/// they reach the schema, so a missing context is reported, never assumed.
pub(crate) fn ctx_request<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext, ApiError> {
    ctx.data_opt::<RequestContext>()
        .ok_or_else(|| ApiError::Unauthenticated("authentication required".into()))
}

/// The policy's verdict on one patient, batched with other lookups in flight.
pub(crate) async fn patient_access(
    ctx: &Context<'_>,
    patient_id: Uuid,
) -> Result<PatientAccess, ApiError> {
    let req = ctx_request(ctx)?;
    ctx.data_unchecked::<loaders::Loaders>()
        .access
        .load_one((req.principal.clone(), patient_id))
        .await?
        .ok_or_else(|| ApiError::not_found("patient"))
}

/// Loads a patient the caller may see; `None` when it may not (or there is none).
pub(crate) async fn load_patient(
    ctx: &Context<'_>,
    patient_id: Uuid,
) -> Result<Option<Patient>, ApiError> {
    let access = match patient_access(ctx, patient_id).await {
        Ok(a) => a,
        Err(ApiError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let model = ctx
        .data_unchecked::<loaders::Loaders>()
        .patient
        .load_one(access.patient_id())
        .await?;
    Ok(model.map(|m| Patient::new(access, m)))
}
