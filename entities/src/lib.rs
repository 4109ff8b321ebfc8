//! sea-orm entities: one module per table.
//!
//! Enumerations are stored as short strings (not native PostgreSQL enums) so the
//! same migrations run on SQLite and PostgreSQL; the `renkei-schema` crate parses
//! them into domain enums at the edge. Ids are UUIDv7, times UTC.

pub mod admission_sheet;
pub mod api_key;
pub mod audit_head;
pub mod audit_log;
pub mod care_team_membership;
pub mod community_resource;
pub mod consent;
pub mod discharge_conference;
pub mod discharge_conference_invitation;
pub mod discharge_notice;
pub mod discharge_notice_version;
pub mod emergency_grant;
pub mod emergency_objection;
pub mod emergency_search_counter;
pub mod liaison_attachment;
pub mod liaison_message;
pub mod liaison_read;
pub mod liaison_thread;
pub mod liaison_thread_addressee;
pub mod member;
pub mod notification;
pub mod organization;
pub mod organization_capability;
pub mod organization_profile;
pub mod outbreak_notice;
pub mod outbreak_notice_patient;
pub mod outbreak_notice_recipient;
pub mod patient;
pub mod patient_identifier;
pub mod record;
pub mod record_version;
pub mod vacancy_report;

pub mod prelude {
    pub use super::api_key::Entity as ApiKey;
    pub use super::care_team_membership::Entity as CareTeamMembership;
    pub use super::member::Entity as Member;
    pub use super::organization::Entity as Organization;
    pub use super::organization_capability::Entity as OrganizationCapability;
    pub use super::patient::Entity as Patient;
    pub use super::patient_identifier::Entity as PatientIdentifier;
}
