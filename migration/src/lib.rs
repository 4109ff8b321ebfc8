//! Migrations for the renkei hub. They use only portable DDL so that the same
//! migration runs on SQLite (the embedded default) and PostgreSQL (production);
//! where a backend needs something of its own the migration branches on
//! `manager.get_database_backend()`.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_core;
mod m20261122_000002_access;
mod m20261122_000003_records;
mod m20261201_000004_notifications;
mod m20261201_000005_admission_discharge;
mod m20261201_000006_liaison_emergency;
mod m20261204_000007_consent_forms;
mod m20261204_000008_audit_keys;
mod m20261204_000009_emergency_reason;
mod m20261210_000010_time_precision;
mod m20261210_000011_member_external_subject;
mod m20261212_000012_practice_categories;
mod m20261212_000013_emergency_search;
mod m20261215_000018_directory;
mod m20261215_000019_community_resources;
mod m20261216_000020_care_conferences;
mod m20261216_000021_outbreak_notices;
mod m20261217_000022_fhir_identity;
mod m20261218_000023_summary_until;

pub use m20261122_000002_access::GENESIS_HASH;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_core::Migration),
            Box::new(m20261122_000002_access::Migration),
            Box::new(m20261122_000003_records::Migration),
            Box::new(m20261201_000004_notifications::Migration),
            Box::new(m20261201_000005_admission_discharge::Migration),
            Box::new(m20261201_000006_liaison_emergency::Migration),
            Box::new(m20261204_000007_consent_forms::Migration),
            Box::new(m20261204_000008_audit_keys::Migration),
            Box::new(m20261204_000009_emergency_reason::Migration),
            Box::new(m20261210_000010_time_precision::Migration),
            Box::new(m20261210_000011_member_external_subject::Migration),
            Box::new(m20261212_000012_practice_categories::Migration),
            Box::new(m20261212_000013_emergency_search::Migration),
            Box::new(m20261215_000018_directory::Migration),
            Box::new(m20261215_000019_community_resources::Migration),
            Box::new(m20261216_000020_care_conferences::Migration),
            Box::new(m20261216_000021_outbreak_notices::Migration),
            Box::new(m20261217_000022_fhir_identity::Migration),
            Box::new(m20261218_000023_summary_until::Migration),
        ]
    }
}
