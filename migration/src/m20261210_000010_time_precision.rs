//! Times kept to the microsecond on SQLite too.
//!
//! The hub now cuts every time to the microsecond where it enters (the
//! GraphQL `DateTime` input and the clock: `renkei_schema::domain::time`).
//! Before, SQLite kept the text it was given — nine fractional digits for a
//! time such as .NET's `…00.1234567Z` or the system clock's nanoseconds —
//! while a timeline cursor carries microseconds, so records sharing a page
//! boundary's time were skipped. This migration cuts the stored text the
//! same way, to exactly the text the hub writes for the cut time (sqlx's
//! RFC 3339 with 0, 3 or 6 fractional digits: `…00.123456+00:00`,
//! `…00.123+00:00`, `…00+00:00`), so equal times compare equal as text.
//!
//! PostgreSQL stored `timestamptz`, already to the microsecond: nothing to
//! do. The audit log is left alone: its times were cut before they were
//! signed, and its rows may not be updated.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every time column of the tables the hub updates, as of this migration.
const TIME_COLUMNS: &[(&str, &[&str])] = &[
    (
        "admission_sheets",
        &["created_at", "updated_at", "sent_at", "received_at"],
    ),
    ("api_keys", &["created_at", "revoked_at"]),
    ("care_team_memberships", &["created_at", "updated_at"]),
    ("consents", &["recorded_at", "withdrawn_at", "reviewed_at"]),
    (
        "discharge_conferences",
        &["starts_at", "created_at", "updated_at"],
    ),
    ("discharge_conference_invitations", &["responded_at"]),
    ("discharge_notices", &["notified_at", "updated_at"]),
    ("discharge_notice_versions", &["changed_at"]),
    ("emergency_grants", &["opened_at", "expires_at"]),
    ("emergency_objections", &["recorded_at", "withdrawn_at"]),
    ("liaison_attachments", &["created_at"]),
    ("liaison_messages", &["created_at"]),
    ("liaison_reads", &["read_at"]),
    ("liaison_threads", &["created_at", "last_message_at"]),
    ("members", &["created_at", "updated_at"]),
    ("notifications", &["created_at", "read_at"]),
    ("organizations", &["created_at", "updated_at"]),
    ("patients", &["created_at", "updated_at"]),
    ("patient_identifiers", &["created_at"]),
    ("records", &["effective_at", "recorded_at"]),
    ("record_versions", &["effective_at", "recorded_at"]),
];

/// The statement that cuts one column. It touches only the text sqlx wrote
/// for a time with nanoseconds — `YYYY-MM-DDTHH:MM:SS.` then nine digits
/// then the offset — and writes it as sqlx writes the cut time: the first
/// six digits, or three when the last three of those are zeros, or none.
fn cut_to_micros_sql(table: &str, column: &str) -> String {
    let c = format!("\"{column}\"");
    let d = "[0-9]";
    let nine = d.repeat(9);
    let pattern = format!("{d}{d}{d}{d}-{d}{d}-{d}{d}T{d}{d}:{d}{d}:{d}{d}.{nine}[+Z-]*");
    format!(
        "UPDATE \"{table}\" SET {c} = substr({c}, 1, 19) || CASE \
           WHEN substr({c}, 21, 6) = '000000' THEN '' \
           WHEN substr({c}, 24, 3) = '000' THEN '.' || substr({c}, 21, 3) \
           ELSE '.' || substr({c}, 21, 6) END || substr({c}, 30) \
         WHERE {c} GLOB '{pattern}'"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, columns) in TIME_COLUMNS {
            for column in *columns {
                db.execute_unprepared(&cut_to_micros_sql(table, column))
                    .await?;
            }
        }
        Ok(())
    }

    /// The digits cut are gone; the text left is valid for the hub before.
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
