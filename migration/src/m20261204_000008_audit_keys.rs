//! Keyed audit entries: each entry names the key that signed it (`key_id`),
//! and the head records how many entries were written before keyed signing
//! (`legacy_seq`).
//!
//! Entries already in the log were hashed with unkeyed SHA-256 and keep
//! their hashes (the log is append-only; nothing is rewritten). They become
//! the log's unkeyed prefix: `legacy_seq` is the head's number at the moment
//! of this migration, every entry after it must be signed, and the first
//! signed entry's MAC covers the last unkeyed entry's hash. On a new
//! database `legacy_seq` is 0: no entry may be unkeyed.
//!
//! Stop every instance of the previous version before migrating: an old
//! instance would go on appending unkeyed entries, which `renkei audit
//! verify` reports.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    KeyId,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Seq,
    LegacySeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Adding a column rewrites no row, so the append-only triggers are
        // not involved.
        manager
            .alter_table(
                Table::alter()
                    .table(AuditLog::Table)
                    .add_column(ColumnDef::new(AuditLog::KeyId).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditHead::Table)
                    .add_column(
                        ColumnDef::new(AuditHead::LegacySeq)
                            .big_integer()
                            .not_null()
                            .default(0i64),
                    )
                    .to_owned(),
            )
            .await?;
        // Updating the head row takes its lock (a row lock on PostgreSQL, the
        // write lock on SQLite): no entry is appended between reading the
        // head and fixing the boundary.
        manager
            .exec_stmt(
                Query::update()
                    .table(AuditHead::Table)
                    .value(AuditHead::LegacySeq, Expr::col(AuditHead::Seq))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditHead::Table)
                    .drop_column(AuditHead::LegacySeq)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditLog::Table)
                    .drop_column(AuditLog::KeyId)
                    .to_owned(),
            )
            .await
    }
}
