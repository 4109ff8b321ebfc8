//! Consent forms and pending consents.
//!
//! Every consent now names the signed form (the reference already existed;
//! who signed is new: the patient or a proxy 代諾者 with name and relation),
//! and a consent has a status: a widening recorded by someone who may not
//! widen access alone is `PENDING` until the coordination centre confirms
//! (or rejects) it — the centre's decision is recorded in `reviewed_*`.
//!
//! "In force" used to be `withdrawn_at IS NULL`; a pending consent is not
//! withdrawn either, so the status decides now, and the partial unique index
//! moves with it: at most one consent `IN_FORCE` and at most one `PENDING`
//! per patient.
//!
//! Rows recorded before this migration (legacy rows) stay valid:
//! - status: `IN_FORCE` where `withdrawn_at` is null; `SUPERSEDED` where the
//!   hub superseded it (its withdrawal reason is the one the service wrote,
//!   "superseded by a new consent"); `WITHDRAWN` otherwise;
//! - `signed_by`, `proxy_name`, `proxy_relation` stay null — who signed was
//!   not recorded, and the hub does not invent it; the API shows `null`
//!   ("not recorded") for them and for a missing `form_reference`. Every
//!   consent recorded from now on has them.
//!
//! `status` defaults to `PENDING`: a row written without one (by a tool that
//! predates this column) grants nothing until the centre confirms it.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Consents {
    Table,
    Status,
    SignedBy,
    ProxyName,
    ProxyRelation,
    ReviewedAt,
    ReviewedByMember,
    ReviewedByOrganization,
}

/// What `services::consents` wrote, before this migration, on a consent it
/// replaced.
const LEGACY_SUPERSEDED_REASON: &str = "superseded by a new consent";

fn new_columns() -> Vec<ColumnDef> {
    vec![
        ColumnDef::new(Consents::Status)
            .text()
            .not_null()
            .default("PENDING")
            .to_owned(),
        ColumnDef::new(Consents::SignedBy).text().null().to_owned(),
        ColumnDef::new(Consents::ProxyName).text().null().to_owned(),
        ColumnDef::new(Consents::ProxyRelation)
            .text()
            .null()
            .to_owned(),
        ColumnDef::new(Consents::ReviewedAt)
            .timestamp_with_time_zone()
            .null()
            .to_owned(),
        ColumnDef::new(Consents::ReviewedByMember)
            .uuid()
            .null()
            .to_owned(),
        ColumnDef::new(Consents::ReviewedByOrganization)
            .uuid()
            .null()
            .to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for mut column in new_columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Consents::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        // The constant holds no quote, so it can stand in the SQL text.
        db.execute_unprepared(&format!(
            "UPDATE consents SET status = CASE \
             WHEN withdrawn_at IS NULL THEN 'IN_FORCE' \
             WHEN withdrawal_reason = '{LEGACY_SUPERSEDED_REASON}' THEN 'SUPERSEDED' \
             ELSE 'WITHDRAWN' END"
        ))
        .await?;
        db.execute_unprepared("DROP INDEX uq_consents_active")
            .await?;
        // Partial unique indexes (SQLite and PostgreSQL both have them): the
        // policy joins the one consent in force, and the centre decides on
        // one pending consent of a patient at a time.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_consents_in_force ON consents (patient_id) WHERE status = 'IN_FORCE'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_consents_pending ON consents (patient_id) WHERE status = 'PENDING'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX uq_consents_pending")
            .await?;
        db.execute_unprepared("DROP INDEX uq_consents_in_force")
            .await?;
        // Before statuses, a consent not withdrawn was in force: a pending
        // one must end, or it would take effect (and break the index).
        db.execute_unprepared(
            "UPDATE consents SET withdrawn_at = recorded_at, \
             withdrawal_reason = 'pending consent dropped when its migration was reverted' \
             WHERE status = 'PENDING'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_consents_active ON consents (patient_id) WHERE withdrawn_at IS NULL",
        )
        .await?;
        for column in [
            Consents::ReviewedByOrganization,
            Consents::ReviewedByMember,
            Consents::ReviewedAt,
            Consents::ProxyRelation,
            Consents::ProxyName,
            Consents::SignedBy,
            Consents::Status,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Consents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
