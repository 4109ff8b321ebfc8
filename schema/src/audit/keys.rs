//! The audit log's signing keys (監査ログ署名鍵).
//!
//! Every entry's `hash` is an HMAC-SHA256 under a key the database does not
//! hold, and names the key's id (`key_id`), so that someone who can write to
//! the database but does not have the key cannot recompute the chain after
//! changing an entry, nor append an entry that verifies. Keys rotate by id:
//! the first key of the configuration signs new entries, the others are
//! accepted when verifying (entries signed before the rotation).
//!
//! The configuration is a list of `ID:SECRET` items separated by commas or
//! line breaks (`RENKEI_AUDIT_KEY`, or `RENKEI_AUDIT_KEY_FILE` with one item
//! per line and `#` comments). Secrets are at least 32 bytes, never logged
//! and never printed by `Debug`.
//!
//! **Why one keyring per process.** Entries are sealed by [`super::append_in`],
//! which services call inside their own transactions with a signature that
//! carries no key (`append_in(&txn, &entries, now)`, some forty call sites).
//! Rather than thread the key through every service, the server installs the
//! keyring once per process ([`install`]) and the writer reads it from there.
//! A process serves one network with one key configuration, so this is no
//! loss; what it must not do is sign silently with the wrong key when tests
//! (or an embedder) build several applications in one process. Hence
//! [`install`] accepts the same keyring again but refuses a different one,
//! and [`super::append_in`] refuses to write an entry it cannot sign.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest secret accepted: 256 bits, the size of the MAC.
pub const MIN_SECRET_BYTES: usize = 32;
/// A key id is short: it is stored in every entry.
pub const MAX_KEY_ID_CHARS: usize = 32;

/// The id and secret of the demo region's key. It is public (it is in this
/// source), so `renkei serve` signs with it only with `--demo` and no key of
/// the operator's; anyone can forge entries signed with it.
pub const DEMO_KEY_ID: &str = "demo";
/// The demo key's secret (written so that it could be configured like any
/// key, which `renkei serve` refuses outside the demo).
pub const DEMO_SECRET: &str = "renkei-demo-audit-key:public:for-the-fictional-demo-region-only";

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// One key: an id stored in the entries it signs, and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey {
    id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .field("secret", &"***")
            .finish()
    }
}

impl AuditKey {
    /// A key from an id and a secret, checked like a configured one.
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, String> {
        let valid_id = !id.is_empty()
            && id.chars().count() <= MAX_KEY_ID_CHARS
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_id {
            return Err(format!(
                "the key id {id:?} is not valid: use 1 to {MAX_KEY_ID_CHARS} letters, digits, '.', '_' or '-'"
            ));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the secret of key {id:?} is {} bytes; it must be at least {MIN_SECRET_BYTES} (e.g. `openssl rand -base64 48`)",
                secret.len()
            ));
        }
        Ok(AuditKey {
            id: id.to_string(),
            secret: secret.to_vec(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// A MAC computation under this key.
    pub(crate) fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        <HmacSha256 as Mac>::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }

    /// The MAC of `message`, lower-case hex.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(message);
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `tag` (hex) is the MAC of `message`, compared in constant time.
    pub fn verifies(&self, message: &[u8], tag: &str) -> bool {
        let Some(bytes) = unhex(tag) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(message);
        mac.verify_slice(&bytes).is_ok()
    }
}

/// The configured keys: the first signs, all verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditKeys {
    keys: Vec<AuditKey>,
}

impl AuditKeys {
    /// Parses `ID:SECRET` items separated by commas or line breaks; blank
    /// lines and lines starting with `#` are ignored. `origin` names where the
    /// text came from in error messages (which never quote a secret).
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let mut keys: Vec<AuditKey> = Vec::new();
        for item in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let Some((id, secret)) = item.split_once(':') else {
                return Err(format!(
                    "{origin}: each key is written ID:SECRET (e.g. 2026-12:<a random secret of at least {MIN_SECRET_BYTES} bytes>)"
                ));
            };
            let key = AuditKey::new(id.trim(), secret.trim().as_bytes())
                .map_err(|e| format!("{origin}: {e}"))?;
            if keys.iter().any(|k| k.id == key.id) {
                return Err(format!(
                    "{origin}: the key id {:?} appears twice; every key needs an id of its own",
                    key.id
                ));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(format!("{origin}: no key given"));
        }
        Ok(AuditKeys { keys })
    }

    /// Keys given directly; the first signs.
    pub fn from_keys(keys: Vec<AuditKey>) -> Result<Self, String> {
        let ids: BTreeSet<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        if keys.is_empty() || ids.len() != keys.len() {
            return Err("a keyring needs at least one key and distinct key ids".into());
        }
        Ok(AuditKeys { keys })
    }

    /// The public demo key alone.
    pub fn demo() -> Self {
        AuditKeys {
            keys: vec![Self::demo_key()],
        }
    }

    pub fn demo_key() -> AuditKey {
        AuditKey {
            id: DEMO_KEY_ID.into(),
            secret: DEMO_SECRET.as_bytes().to_vec(),
        }
    }

    /// Adds the demo key for verification (a demo database), unless a key of
    /// that id is configured already.
    pub fn with_demo_key(mut self) -> Self {
        if self.get(DEMO_KEY_ID).is_none() {
            self.keys.push(Self::demo_key());
        }
        self
    }

    /// Whether any configured key is the public demo key (whatever its id).
    pub fn contains_demo_secret(&self) -> bool {
        self.keys.iter().any(|k| k.secret == DEMO_SECRET.as_bytes())
    }

    /// The key that signs new entries.
    pub fn signing(&self) -> &AuditKey {
        &self.keys[0]
    }

    pub fn get(&self, id: &str) -> Option<&AuditKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The configured ids, the signing key's first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }
}

static INSTALLED: RwLock<Option<Arc<AuditKeys>>> = RwLock::new(None);

/// Makes `keys` the keyring this process signs audit entries with. Installing
/// the same keyring again is a no-op; a different one is refused (see the
/// module documentation).
pub fn install(keys: Arc<AuditKeys>) -> Result<(), String> {
    let mut slot = INSTALLED.write().unwrap_or_else(|e| e.into_inner());
    match &*slot {
        Some(current) if **current != *keys => Err(format!(
            "this process already signs the audit log with key id {:?} (keys {:?}); one process uses one audit keyring",
            current.signing().id(),
            current.ids()
        )),
        Some(_) => Ok(()),
        None => {
            *slot = Some(keys);
            Ok(())
        }
    }
}

/// The keyring installed for this process, if any.
pub fn installed() -> Option<Arc<AuditKeys>> {
    INSTALLED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes lower-case hex, the one spelling [`hex`] writes. Anything else
/// (capitals, a `+` that `from_str_radix` would take) is refused, so a MAC
/// has a single spelling: otherwise the last entry's `hash` and the head's
/// could be rewritten to other text that still verifies.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn keys_parse_from_commas_and_lines_and_the_first_signs() {
        let keys = AuditKeys::parse(
            &format!("# rotated 2026-12\nnew:{SECRET}x\n\nold:{SECRET}y, older:{SECRET}z"),
            "RENKEI_AUDIT_KEY_FILE",
        )
        .unwrap();
        assert_eq!(keys.ids(), ["new", "old", "older"]);
        assert_eq!(keys.signing().id(), "new");
    }

    #[test]
    fn bad_keys_are_refused_without_quoting_the_secret() {
        for (text, expected) in [
            ("", "no key given"),
            ("nocolon", "ID:SECRET"),
            ("k:short", "at least 32"),
            ("bad id!:0123456789abcdef0123456789abcdef", "not valid"),
            (
                "a:0123456789abcdef0123456789abcdef,a:0123456789abcdef0123456789abcdeX",
                "appears twice",
            ),
        ] {
            let err = AuditKeys::parse(text, "RENKEI_AUDIT_KEY").unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains("0123456789abcdef"), "{err}");
        }
        let key = AuditKey::new("k", SECRET.as_bytes()).unwrap();
        assert!(!format!("{key:?}").contains(SECRET));
    }

    #[test]
    fn a_mac_verifies_only_under_its_key_and_message() {
        let a = AuditKey::new("a", SECRET.as_bytes()).unwrap();
        let b = AuditKey::new("b", format!("{SECRET}!").as_bytes()).unwrap();
        let tag = a.sign(b"entry");
        assert!(a.verifies(b"entry", &tag));
        assert!(!a.verifies(b"entrY", &tag));
        assert!(!b.verifies(b"entry", &tag));
        assert!(!a.verifies(b"entry", "not hex"));
        assert!(!a.verifies(b"entry", &tag.to_uppercase()));
        // One spelling per MAC: `from_str_radix` alone would read these.
        assert_eq!(unhex("0a"), Some(vec![10]));
        assert_eq!(unhex("0A"), None);
        assert_eq!(unhex("+a"), None);
    }
}
