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
//!
//! An entry's hash covers its content and the previous entry's hash, so a
//! modified, deleted or inserted row breaks the chain from that row on, and
//! the head row (`audit_head`) catches entries removed from the end. On
//! PostgreSQL the database also refuses UPDATE, DELETE and TRUNCATE on the log.

pub mod chain;
mod trail;
mod writer;

pub use trail::AuditTrail;
pub use writer::AuditWriter;

use uuid::Uuid;

use crate::domain::DataCategory;

/// What an entry records.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AuditAction {
    Read,
    Write,
    ConsentChange,
    BreakTheGlass,
    Denied,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Read => "READ",
            AuditAction::Write => "WRITE",
            AuditAction::ConsentChange => "CONSENT_CHANGE",
            AuditAction::BreakTheGlass => "BREAK_THE_GLASS",
            AuditAction::Denied => "DENIED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            AuditAction::Read,
            AuditAction::Write,
            AuditAction::ConsentChange,
            AuditAction::BreakTheGlass,
            AuditAction::Denied,
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
