//! Request ids: the caller's `x-request-id` when it is short and of safe
//! characters, otherwise one the hub makes (a UUIDv7, so ids sort by time).
//!
//! The id goes into the audit log's hash chain, the logs and the response:
//! a caller must not be able to put 20,000 characters, control characters
//! or log-forging text into any of them.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

/// The header that carries the id, both ways.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller id the hub keeps.
pub const MAX_LEN: usize = 64;

/// Whether a caller's id is kept: 1 to 64 characters of `[A-Za-z0-9._:-]`.
pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The request's id: the caller's when acceptable, else a new one.
pub fn choose(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(HEADER)
        .filter(|v| is_acceptable(v.as_bytes()))
        .cloned()
        .unwrap_or_else(make)
}

/// A new id.
pub fn make() -> HeaderValue {
    HeaderValue::from_str(&Uuid::now_v7().to_string()).expect("a UUID is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_safe_ids_are_kept() {
        assert!(is_acceptable(b"abc-123_x.y:z"));
        assert!(is_acceptable("a".repeat(64).as_bytes()));
        assert!(!is_acceptable("a".repeat(65).as_bytes()));
        assert!(!is_acceptable(b""));
        for bad in ["a b", "a\"b", "a/b", "a\nb", "日本", "a{b}", "a%20"] {
            assert!(!is_acceptable(bad.as_bytes()), "{bad:?}");
        }
        let made = make();
        assert!(is_acceptable(made.as_bytes()));
    }
}
