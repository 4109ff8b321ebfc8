//! The hash chain: computing entry hashes and verifying the log.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};

use crate::error::ApiResult;
use entities::{audit_head, audit_log};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries are stored with microsecond precision (PostgreSQL's), so the hash
/// is computed over the time at that precision.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

/// SHA-256 over every field but the hash itself, as a JSON array of strings:
/// unambiguous whatever the fields contain.
pub fn entry_hash(e: &audit_log::Model) -> String {
    let fields = [
        e.seq.to_string(),
        e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        e.actor_kind.clone(),
        e.actor_id.to_string(),
        e.organization_id.to_string(),
        e.patient_id.map(|p| p.to_string()).unwrap_or_default(),
        e.action.clone(),
        e.categories.clone(),
        e.request_id.clone(),
        e.outcome.clone(),
        e.detail.clone().unwrap_or_default(),
        e.prev_hash.clone(),
    ];
    let canonical = serde_json::to_string(&fields).unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries checked.
    pub entries: u64,
    /// The first place the chain breaks, if it does.
    pub broken: Option<Break>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The entry number where the chain breaks (for a missing entry: the
    /// number expected there).
    pub seq: i64,
    pub reason: String,
}

/// Rows read per query while verifying: bounded memory on a log of millions.
const PAGE: u64 = 1000;

/// Walks the whole log in order and reports the first entry where the chain
/// breaks: a modified row (its hash no longer matches its content), a deleted
/// row (a gap in the numbers, or the next row's `prev_hash` no longer matching),
/// an inserted row (an unexpected number or hash), or a head that disagrees with
/// the last entry (entries removed from, or added at, the end).
pub async fn verify(db: &DatabaseConnection) -> ApiResult<Verification> {
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut checked = 0u64;
    loop {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::Seq.gte(expected_seq))
            .order_by_asc(audit_log::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let broken = |reason: String| {
                Ok(Verification {
                    entries: checked,
                    broken: Some(Break {
                        seq: expected_seq,
                        reason,
                    }),
                })
            };
            if row.seq != expected_seq {
                return broken(format!(
                    "entry {expected_seq} is missing (the next entry is {}): deleted",
                    row.seq
                ));
            }
            if row.prev_hash != prev_hash {
                return broken(
                    "its previous-hash does not match the entry before it: an entry before it was deleted, inserted or changed"
                        .into(),
                );
            }
            if entry_hash(&row) != row.hash {
                return broken(
                    "its content does not match its hash: the entry was modified".into(),
                );
            }
            prev_hash = row.hash;
            expected_seq += 1;
            checked += 1;
        }
    }
    let head = audit_head::Entity::find_by_id(1).one(db).await?;
    let last_seq = expected_seq - 1;
    match head {
        Some(h) if h.seq == last_seq && h.hash == prev_hash => Ok(Verification {
            entries: checked,
            broken: None,
        }),
        Some(h) => Ok(Verification {
            entries: checked,
            broken: Some(Break {
                seq: h.seq.min(last_seq) + 1,
                reason: format!(
                    "the log ends at entry {last_seq} but its head records entry {}: entries were removed from or added at the end",
                    h.seq
                ),
            }),
        }),
        None => Ok(Verification {
            entries: checked,
            broken: Some(Break {
                seq: 0,
                reason: "the audit head row is missing".into(),
            }),
        }),
    }
}
