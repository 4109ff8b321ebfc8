//! Checkpoints (アンカー): signed statements of the log's head, kept outside
//! the database.
//!
//! The keyed chain stops anyone without the key from changing or adding
//! entries, but not someone who can write to the database from *removing* the
//! newest entries and moving the head back: what is left still verifies. A
//! checkpoint — "entry `seq` had hash `hash` at time `at`", signed with the
//! audit key — written where the database role cannot rewrite it (an
//! append-only file, a Redis stream) fixes what the log looked like then:
//! `renkei audit verify --checkpoints` fails when a checkpoint's entry is
//! missing, has another hash, or lies beyond the end of the log.
//!
//! One checkpoint is one line of JSON (`{"seq":…,"hash":…,"at":…,"key_id":…,
//! "instance":…,"mac":…}`); the MAC covers every other field.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::keys::{AuditKey, AuditKeys};

/// Distinguishes checkpoint MACs from entry MACs made with the same key, so
/// that one can never be passed off as the other.
const DOMAIN: &str = "renkei-audit-checkpoint/1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The entry the head pointed at.
    pub seq: i64,
    /// That entry's hash (its MAC).
    pub hash: String,
    /// When the checkpoint was taken (RFC 3339, UTC), as signed.
    pub at: String,
    /// The key the checkpoint is signed with.
    pub key_id: String,
    /// Which hub instance wrote it (for people; several instances may write
    /// checkpoints of the same log).
    pub instance: String,
    /// HMAC-SHA256 over the other fields.
    pub mac: String,
}

impl Checkpoint {
    /// A checkpoint of entry `seq` with hash `hash`, signed with `key`.
    pub fn sign(
        seq: i64,
        hash: &str,
        at: DateTime<Utc>,
        instance: &str,
        key: &AuditKey,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            seq,
            hash: hash.to_string(),
            at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
            key_id: key.id().to_string(),
            instance: instance.to_string(),
            mac: String::new(),
        };
        checkpoint.mac = key.sign(&checkpoint.message());
        checkpoint
    }

    fn message(&self) -> Vec<u8> {
        let fields = [
            DOMAIN.to_string(),
            self.key_id.clone(),
            self.seq.to_string(),
            self.hash.clone(),
            self.at.clone(),
            self.instance.clone(),
        ];
        serde_json::to_vec(&fields).unwrap_or_default()
    }

    /// Checks the MAC under the configured keys: `Err` says why it does not
    /// hold (an unknown key id is named).
    pub fn check(&self, keys: &AuditKeys) -> Result<(), String> {
        let Some(key) = keys.get(&self.key_id) else {
            return Err(format!(
                "it is signed with key id {:?}, which is not configured (configured: {}); configure that key to check it, or the checkpoint is forged",
                self.key_id,
                keys.ids().join(", ")
            ));
        };
        if !key.verifies(&self.message(), &self.mac) {
            return Err(format!(
                "its MAC does not verify under key {:?}: the checkpoint was forged or altered",
                self.key_id
            ));
        }
        if self.seq < 1 {
            return Err("it names no entry".into());
        }
        Ok(())
    }

    /// The checkpoint as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(line: &str) -> Result<Checkpoint, String> {
        serde_json::from_str(line).map_err(|e| format!("not a checkpoint: {e}"))
    }
}

/// A checkpoint and where it was read (`FILE:LINE`, a Redis stream entry),
/// for messages.
#[derive(Clone, Debug)]
pub struct Sourced {
    pub checkpoint: Checkpoint,
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_any_change_breaks_its_mac() {
        let key = AuditKey::new("k1", b"0123456789abcdef0123456789abcdef").unwrap();
        let keys = AuditKeys::from_keys(vec![key.clone()]).unwrap();
        let cp = Checkpoint::sign(42, "ab", Utc::now(), "host-1", &key);
        let parsed = Checkpoint::parse(&cp.to_line()).unwrap();
        assert_eq!(parsed, cp);
        assert_eq!(parsed.check(&keys), Ok(()));
        let mut moved = cp.clone();
        moved.seq = 41;
        assert!(moved.check(&keys).unwrap_err().contains("MAC"));
        let mut renamed = cp;
        renamed.key_id = "k0".into();
        assert!(renamed.check(&keys).unwrap_err().contains("\"k0\""));
        assert!(Checkpoint::parse("{}").is_err());
    }
}
