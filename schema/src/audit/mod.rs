//! The audit log (アクセスログ): every read or write of patient data leaves an
//! entry, and no patient data leaves the hub before its entry is committed.
//!
//! - [`AuditTrail`] collects, during one request, what was actually resolved:
//!   per patient, the categories read, written, or denied.
//! - [`AuditWriter`] appends entries with *group commit*: one task takes the
//!   entries of every request waiting at that moment and appends them in one
//!   transaction, then answers each request. The hash chain thus costs one
//!   lock per batch, not one per read.
//! - [`chain`] computes entry hashes and verifies the chain
//!   (`renkei audit verify`).
//! - [`keys`] holds the audit keys entries are signed with;
//!   [`checkpoint`] the signed statements of the head kept outside the
//!   database.
//!
//! An entry's hash is an HMAC under a key the database does not hold and
//! covers its content and the previous entry's hash, so a modified, deleted
//! or inserted row breaks the chain from that row on and cannot be made to
//! verify again without the key; the head row (`audit_head`) catches entries
//! removed from the end, and checkpoints catch the end cut off with the head
//! moved back. On PostgreSQL the database also refuses UPDATE, DELETE and
//! TRUNCATE on the log, and the application role (`renkei db grant`) may
//! not change that. What each attacker can and cannot do: docs/audit-log.md.

pub mod chain;
pub mod checkpoint;
pub mod keys;
mod trail;
mod writer;

pub use trail::AuditTrail;
pub use writer::{AuditWriter, BatchObserver, append_in};

/// The category names of an entry's `categories` column, as the writer
/// stores them: comma-separated (the one place that reads them back; the
/// indicators once read them as JSON and counted nothing).
pub fn stored_categories(column: &str) -> impl Iterator<Item = &str> {
    column.split(',').filter(|s| !s.is_empty())
}

use uuid::Uuid;

use crate::domain::DataCategory;

/// What an entry records.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditAction {
    /// Patient data (or the patient itself) read under the caller's care
    /// relationship and the patient's consent.
    Read,
    Write,
    ConsentChange,
    /// Emergency access (救急時閲覧) opened.
    BreakTheGlass,
    /// Patient data read under break-the-glass: categories that only the
    /// caller's emergency access opened (or the patient itself, reached
    /// through emergency access alone). Each read under emergency access is
    /// its own entry, so an auditor lists them with this action alone.
    EmergencyRead,
    /// 救急時の患者検索: a search by name and birth date under emergency
    /// (`searchPatientsForEmergency`). One entry per candidate returned,
    /// naming the patient; one without a patient when nothing was returned
    /// (no match, or too many). The detail names the reason and the criteria.
    EmergencySearch,
    /// Many patients' data taken out together in one request — the bulk
    /// printable emergency sheets (`GET /emergency-sheets`). One entry
    /// without a patient: its detail names every patient exported (their
    /// ids), its categories are those read of them. Each patient's own
    /// reads are recorded beside it as usual (`READ` or `EMERGENCY_READ`,
    /// in the same request), so the patient's access history shows them.
    Export,
    Denied,
    /// A change to who may do what, by a network administrator: a member
    /// registered, suspended or reactivated, given a profession or an
    /// identity-provider subject; an API key created (with its
    /// permissions) or revoked. No patient; the detail names the member or
    /// key and the change. Without it an administrator — who reads no
    /// patient data — could give a member (or a key) clinical rights and
    /// leave no trace of the grant.
    Administration,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Read => "READ",
            AuditAction::Write => "WRITE",
            AuditAction::ConsentChange => "CONSENT_CHANGE",
            AuditAction::BreakTheGlass => "BREAK_THE_GLASS",
            AuditAction::EmergencyRead => "EMERGENCY_READ",
            AuditAction::EmergencySearch => "EMERGENCY_SEARCH",
            AuditAction::Export => "EXPORT",
            AuditAction::Denied => "DENIED",
            AuditAction::Administration => "ADMINISTRATION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            AuditAction::Read,
            AuditAction::Write,
            AuditAction::ConsentChange,
            AuditAction::BreakTheGlass,
            AuditAction::EmergencyRead,
            AuditAction::EmergencySearch,
            AuditAction::Export,
            AuditAction::Denied,
            AuditAction::Administration,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// An entry before the writer numbers and chains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDraft {
    pub actor_kind: &'static str,
    pub actor_id: Uuid,
    pub organization_id: Uuid,
    pub patient_id: Option<Uuid>,
    pub action: AuditAction,
    pub categories: Vec<DataCategory>,
    pub request_id: String,
    /// `OK`, or `DENIED` with the reason in `detail`.
    pub outcome: &'static str,
    pub detail: Option<String>,
}

/// Who is acting in a request, for audit entries written inside a service's
/// transaction (writes), where the request's trail would be too late.
#[derive(Clone, Debug)]
pub struct AuditStamp {
    pub principal: crate::principal::Principal,
    pub request_id: String,
}

impl AuditStamp {
    pub fn entry(
        &self,
        patient_id: Uuid,
        action: AuditAction,
        categories: &[DataCategory],
        detail: Option<String>,
    ) -> EntryDraft {
        let (actor_kind, actor_id) = match &self.principal {
            crate::principal::Principal::Member { member_id, .. } => ("MEMBER", *member_id),
            crate::principal::Principal::System { api_key_id, .. } => ("SYSTEM", *api_key_id),
        };
        let mut categories = categories.to_vec();
        categories.sort();
        categories.dedup();
        EntryDraft {
            actor_kind,
            actor_id,
            organization_id: self.principal.organization_id(),
            patient_id: Some(patient_id),
            action,
            categories,
            request_id: self.request_id.clone(),
            outcome: "OK",
            detail,
        }
    }

    /// The acting member, when a member (not a system) acts.
    pub fn member_id(&self) -> Option<Uuid> {
        match &self.principal {
            crate::principal::Principal::Member { member_id, .. } => Some(*member_id),
            crate::principal::Principal::System { .. } => None,
        }
    }

    pub fn write(&self, patient_id: Uuid, categories: &[DataCategory]) -> EntryDraft {
        self.entry(patient_id, AuditAction::Write, categories, None)
    }

    /// An administrator's change to who may do what
    /// ([`AuditAction::Administration`]): `detail` names whom and what.
    pub fn administration(&self, detail: String) -> EntryDraft {
        EntryDraft {
            patient_id: None,
            ..self.entry(Uuid::nil(), AuditAction::Administration, &[], Some(detail))
        }
    }

    /// A write that names no patient (an outbreak notice, a facility's
    /// statement about itself): `detail` says what was written.
    pub fn write_without_patient(&self, categories: &[DataCategory], detail: String) -> EntryDraft {
        EntryDraft {
            patient_id: None,
            ..self.entry(Uuid::nil(), AuditAction::Write, categories, Some(detail))
        }
    }
}
