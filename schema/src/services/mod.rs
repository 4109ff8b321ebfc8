//! Domain services: the rules of the directory and the patient spine.
//!
//! Services take validated domain commands (built at the GraphQL edge) and a
//! database connection; they do not know about GraphQL. Access has been decided
//! before a service is called — services that touch patient data take the
//! policy's capability as an argument so they cannot be called without it.

pub mod admission_discharge;
pub mod api_keys;
pub mod audit_log;
pub mod care_team;
pub mod consents;
pub mod directory;
pub mod disaster;
pub mod emergency;
pub mod emergency_search;
pub mod indicators;
pub mod liaison;
pub mod members;
pub mod notifications;
pub mod organizations;
pub mod outbreaks;
pub mod patients;
pub mod records;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, SqlErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use crate::error::ApiError;

/// Turns a unique-constraint violation into `CONFLICT` with the given message
/// (the check-then-insert race), anything else into `INTERNAL`.
pub(crate) fn conflict_on_unique(err: DbErr, message: impl FnOnce() -> String) -> ApiError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::Conflict(message()),
        _ => ApiError::from(err),
    }
}

/// A new UUIDv7: ids sort by creation time, which keeps cursor pagination stable.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Begins a transaction that will write. On SQLite it takes the write lock at
/// once (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
/// fails with "database is locked" when another connection committed in
/// between, and the busy timeout cannot help it. Waiting for the lock up
/// front serialises writers instead. PostgreSQL ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        txn.execute_unprepared(BOUNDED_WAITS).await?;
    }
    Ok(txn)
}

/// How long a write waits on PostgreSQL, for this transaction only (`SET
/// LOCAL`: through a transaction-pooling proxy too, and nothing else of the
/// session — migrations, long reads — is bounded by it):
///
/// - a lock (the patient's row, the audit head) not granted within 10 s
///   fails the statement (`55P03`), answered `503 DATABASE_UNAVAILABLE`
///   with `Retry-After`, the transaction rolled back. Without it a
///   transaction left open by an instance that stalled inside it (a paused
///   VM, a half-open connection) held every other instance's writes — and,
///   through the audit head, their reads — for as long as the stall lasted;
/// - a transaction idle 10 s is ended by PostgreSQL with its session,
///   releasing its locks: the hub never idles inside one but for its own
///   work between two statements (milliseconds); a stalled instance does.
const BOUNDED_WAITS: &str =
    "SET LOCAL lock_timeout = '10s'; SET LOCAL idle_in_transaction_session_timeout = '10s'";

/// Serialises changes to one patient's consent and emergency-access state:
/// touching the patient row takes its row lock on PostgreSQL (SQLite's
/// `BEGIN IMMEDIATE` already holds the write lock), so a consent recorded,
/// withdrawn or objected to concurrently is decided one after the other, on
/// what the previous one committed. `NOT_FOUND` if there is no such patient.
pub async fn lock_patient(
    txn: &impl sea_orm::ConnectionTrait,
    patient_id: uuid::Uuid,
) -> Result<(), ApiError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let touched = entities::patient::Entity::update_many()
        .col_expr(
            entities::patient::Column::UpdatedAt,
            Expr::col(entities::patient::Column::UpdatedAt),
        )
        .filter(entities::patient::Column::Id.eq(patient_id))
        .exec(txn)
        .await?;
    if touched.rows_affected == 0 {
        return Err(ApiError::not_found("patient"));
    }
    Ok(())
}

/// `query` locking the rows it reads until `txn` ends: `FOR UPDATE` on
/// PostgreSQL; on SQLite the write transaction (`BEGIN IMMEDIATE`, see
/// [`begin_write`]) already keeps every other writer out.
pub(crate) fn locked<E: sea_orm::EntityTrait>(
    txn: &impl sea_orm::ConnectionTrait,
    query: sea_orm::Select<E>,
) -> sea_orm::Select<E> {
    use sea_orm::QuerySelect;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}

/// Begins a write about one patient decided through `access`: its
/// transaction, the patient's lock ([`lock_patient`]), and — under it —
/// [`require_still_on_team`] for `organization_id` on `today`.
pub(crate) async fn begin_patient_write(
    db: &DatabaseConnection,
    access: &crate::policy::PatientAccess,
    organization_id: uuid::Uuid,
    today: chrono::NaiveDate,
) -> Result<DatabaseTransaction, ApiError> {
    let txn = begin_write(db).await?;
    lock_patient(&txn, access.patient_id()).await?;
    require_still_on_team(&txn, access, organization_id, today).await?;
    Ok(txn)
}

/// Under the patient's lock (taken on `txn` by the caller): a write decided
/// through the care relationship (`access`) is made only while `organization`
/// is still on the patient's care team on `today`. A write's access is
/// decided before its transaction; an organisation taken off the team in
/// between — its membership ended under the same lock, committed before
/// this one got it — must not go on writing as a member: put itself (or
/// another) back on the team, end others' memberships, change the consent
/// or the objection to emergency access. Access not through the care
/// relationship (the coordination centre's) is not asked about here.
pub(crate) async fn require_still_on_team(
    txn: &impl sea_orm::ConnectionTrait,
    access: &crate::policy::PatientAccess,
    organization_id: uuid::Uuid,
    today: chrono::NaiveDate,
) -> Result<(), ApiError> {
    use entities::care_team_membership as m;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    if !access.has_care_relationship() {
        return Ok(());
    }
    let on_team = m::Entity::find()
        .filter(m::Column::PatientId.eq(access.patient_id()))
        .filter(m::Column::OrganizationId.eq(organization_id))
        .filter(crate::policy::active_on(today))
        .one(txn)
        .await?
        .is_some();
    if !on_team {
        return Err(ApiError::Forbidden(
            "your organisation is no longer on the patient's care team: nothing was changed".into(),
        ));
    }
    Ok(())
}

/// `column IN (texts)`, written as [`id_in`] writes ids: one array
/// parameter on PostgreSQL. Besides reusing the statement, this keeps the
/// plan: with 500 literals in `IN (…)` PostgreSQL's generic plan for a
/// prepared statement may give up the unique index and walk an
/// organisation's whole range of it (seconds on a region's records), where
/// `= ANY($1)` is planned as a handful of index probes.
pub fn text_in(
    backend: sea_orm::DbBackend,
    column: impl sea_orm::sea_query::IntoColumnRef,
    values: &[String],
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, ExprTrait, extension::postgres::PgFunc};
    match backend {
        sea_orm::DbBackend::Postgres => {
            Expr::col(column).eq(PgFunc::any(Expr::val(values.to_vec())))
        }
        _ => Expr::col(column).is_in(values.iter().cloned()),
    }
}

/// `column IN (ids)`, written so that the database can reuse the statement:
/// on PostgreSQL `column = ANY($1)` with one array parameter — the same SQL
/// text for any number of ids, so each pooled connection prepares and plans
/// it once, where `IN ($1, …, $n)` would be a new statement for every batch
/// size a DataLoader happens to collect. SQLite has no arrays: `IN (…)`.
pub fn id_in(
    backend: sea_orm::DbBackend,
    column: impl sea_orm::sea_query::IntoColumnRef,
    ids: &[uuid::Uuid],
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, ExprTrait, extension::postgres::PgFunc};
    match backend {
        sea_orm::DbBackend::Postgres => Expr::col(column).eq(PgFunc::any(Expr::val(ids.to_vec()))),
        _ => Expr::col(column).is_in(ids.iter().copied()),
    }
}
