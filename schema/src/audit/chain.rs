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

/// Walks the log in order and reports the first entry where the chain
/// breaks: a modified row (its hash no longer matches its content), a deleted
/// row (a gap in the numbers, or the next row's `prev_hash` no longer matching),
/// an inserted row (an unexpected number or hash), or a head that disagrees with
/// the last entry (entries removed from, or added at, the end).
///
/// The hub may be appending meanwhile: the walk covers the entries up to the
/// head read at the start (the head moves in the same transaction as its
/// entries, so they are all committed); entries appended during the walk are
/// checked by the next run. Rows beyond the head read at the *end* were not
/// appended by the hub and are reported.
pub async fn verify(db: &DatabaseConnection) -> ApiResult<Verification> {
    let Some(head) = audit_head::Entity::find_by_id(1).one(db).await? else {
        return Ok(Verification {
            entries: 0,
            broken: Some(Break {
                seq: 0,
                reason: "the audit head row is missing".into(),
            }),
        });
    };
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut checked = 0u64;
    while expected_seq <= head.seq {
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::Seq.gte(expected_seq))
            .filter(audit_log::Column::Seq.lte(head.seq))
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
    let last_seq = expected_seq - 1;
    if last_seq != head.seq || prev_hash != head.hash {
        return Ok(Verification {
            entries: checked,
            broken: Some(Break {
                seq: last_seq + 1,
                reason: format!(
                    "the log ends at entry {last_seq} but its head records entry {}: entries were removed from or added at the end",
                    head.seq
                ),
            }),
        });
    }
    // Anything beyond the current head was not written by the hub.
    let now_head = audit_head::Entity::find_by_id(1)
        .one(db)
        .await?
        .map(|h| h.seq)
        .unwrap_or(head.seq);
    let stray = audit_log::Entity::find()
        .filter(audit_log::Column::Seq.gt(now_head))
        .order_by_asc(audit_log::Column::Seq)
        .one(db)
        .await?;
    if let Some(row) = stray {
        return Ok(Verification {
            entries: checked,
            broken: Some(Break {
                seq: row.seq,
                reason: format!(
                    "entry {} lies beyond the head (entry {now_head}): entries were added at the end",
                    row.seq
                ),
            }),
        });
    }
    Ok(Verification {
        entries: checked,
        broken: None,
    })
}
