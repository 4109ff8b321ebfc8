//! The summary reads what it shows, not the history (issue 16): each record
//! carries the last day it is in force (`summary_until`: a prescription's
//! last day, an instruction's validity; 9999-12-31 for no end and for every
//! kind the summary does not judge by date), and the summary index ends with
//! it, so that the summary's query skips ended prescriptions and past
//! instructions in the index instead of reading and discarding them.
//!
//! Rows written before keep 9999-12-31: still correct (the hub judges "in
//! force today" again when it reads them), only not skipped; the hub's
//! writes set the real day from now on.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Records {
    Table,
    PatientId,
    InSummary,
    SummaryUntil,
}

/// The index the summary read before, on (patient, flag).
const OLD_INDEX: &str = "idx_records_summary";
/// The summary index now, ending with the last day in force (a new name:
/// SQLite may see the old one still while the migration runs).
const INDEX: &str = "idx_records_summary_until";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Records::Table)
                    .add_column(
                        ColumnDef::new(Records::SummaryUntil)
                            .date()
                            .not_null()
                            .default("9999-12-31"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Records::Table)
                    .col(Records::PatientId)
                    .col(Records::InSummary)
                    .col(Records::SummaryUntil)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_INDEX)
                    .table(Records::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(Records::Table)
                    .col(Records::PatientId)
                    .col(Records::InSummary)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(INDEX).table(Records::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Records::Table)
                    .drop_column(Records::SummaryUntil)
                    .to_owned(),
            )
            .await
    }
}
