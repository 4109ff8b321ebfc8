//! Parsed GraphQL documents, kept by query text.
//!
//! Clients send the same few queries again and again (a clinic system's
//! summary query, a portal's timeline), each time as text. Parsing it is a
//! measurable part of a request's CPU time (the pest grammar), and the result
//! depends on the text alone — not on variables, caller or data — so the hub
//! parses each text once and hands later requests a copy. Validation against
//! the schema, the depth and complexity limits and everything after still run
//! for every request. A text that does not parse is not cached: async-graphql
//! parses it again and reports the error as usual. A text too long to keep is
//! parsed all the same, so that a request is parsed once however it is
//! inspected before it runs (the HTTP handler looks for mutations in GETs).
//!
//! It is also where a document is first bounded (see
//! `renkei_schema::graphql::fair_use`): one longer than
//! `RENKEI_MAX_QUERY_BYTES` is refused before it is parsed (413
//! `QUERY_TOO_LARGE`), and one longer than 4 KiB is parsed on the blocking
//! pool, so the async workers keep serving everyone else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use axum::http::StatusCode;
use renkei_schema::graphql::fair_use::{self, FairUseLimits};

use crate::graphql_http::Refusal;

/// How many distinct queries are kept; past this the cache starts afresh
/// (a hub serves a handful of client programs, not thousands of queries).
const MAX_ENTRIES: usize = 512;
/// Longer texts are not kept (they are rare, and would pin memory).
const MAX_QUERY_BYTES: usize = 16 * 1024;

/// Why a document is not parsed.
#[derive(Debug)]
pub enum Unprepared {
    /// Longer than `RENKEI_MAX_QUERY_BYTES`: 413 `QUERY_TOO_LARGE`, whatever
    /// the media type.
    TooLarge(Refusal),
    /// Nested deeper than the parser may go: a document that does not parse
    /// (`GRAPHQL_PARSE_FAILED`), answered as any other — `200` with `data:
    /// null` under `application/json`, `400` under
    /// `application/graphql-response+json`.
    TooDeep(async_graphql::ServerError),
}

#[derive(Default)]
pub struct QueryCache {
    documents: Mutex<HashMap<Arc<str>, Arc<ExecutableDocument>>>,
    limits: FairUseLimits,
}

impl QueryCache {
    pub fn new(limits: FairUseLimits) -> Self {
        QueryCache {
            documents: Mutex::default(),
            limits,
        }
    }

    /// Gives the request its parsed document, from the cache or parsed now;
    /// `Ok(false)` when the text does not parse (the request is left as it
    /// was, for the executor to report), [`Unprepared`] when it may not be
    /// parsed at all.
    pub async fn prepare(&self, request: &mut async_graphql::Request) -> Result<bool, Unprepared> {
        if let Err(e) = fair_use::check_size(&request.query, self.limits) {
            return Err(Unprepared::TooLarge(Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "QUERY_TOO_LARGE",
                message: e.message,
            }));
        }
        // Before anything parses the text (here, or later on the request):
        // too deep a text overflows the parser's stack.
        if let Err(e) = fair_use::check_nesting(&request.query) {
            return Err(Unprepared::TooDeep(e));
        }
        let keep = request.query.len() <= MAX_QUERY_BYTES;
        // The copy the request owns is made after the lock is released.
        let cached = keep
            .then(|| self.lock().get(request.query.as_str()).cloned())
            .flatten();
        if let Some(doc) = cached {
            request.set_parsed_query((*doc).clone());
            return Ok(true);
        }
        let Ok(doc) = fair_use::parse(&request.query).await else {
            return Ok(false);
        };
        if keep {
            let mut documents = self.lock();
            if documents.len() >= MAX_ENTRIES {
                documents.clear();
            }
            documents.insert(Arc::from(request.query.as_str()), Arc::new(doc.clone()));
        }
        request.set_parsed_query(doc);
        Ok(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<ExecutableDocument>>> {
        // Each operation is a single get/insert/clear: a panic elsewhere
        // cannot leave the map half-changed.
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_text_is_parsed_once_and_bad_text_is_left_to_the_executor() {
        let cache = QueryCache::default();
        let mut a = async_graphql::Request::new("{ me { kind } }");
        assert!(cache.prepare(&mut a).await.unwrap());
        assert_eq!(cache.lock().len(), 1);
        let mut b = async_graphql::Request::new("{ me { kind } }");
        assert!(cache.prepare(&mut b).await.unwrap());
        assert_eq!(cache.lock().len(), 1);
        assert!(b.parsed_query().is_ok());
        let mut bad = async_graphql::Request::new("{ me { ");
        assert!(!cache.prepare(&mut bad).await.unwrap());
        assert_eq!(cache.lock().len(), 1);
        assert!(bad.parsed_query().is_err());
    }

    #[tokio::test]
    async fn a_long_text_is_parsed_but_not_kept() {
        let cache = QueryCache::default();
        let long = format!("{{ me {{ kind }} }} # {}", "x".repeat(MAX_QUERY_BYTES));
        let mut request = async_graphql::Request::new(long);
        assert!(cache.prepare(&mut request).await.unwrap());
        assert_eq!(cache.lock().len(), 0);
    }

    #[tokio::test]
    async fn a_text_over_the_limit_is_refused_unparsed() {
        let cache = QueryCache::new(FairUseLimits {
            max_query_bytes: 100,
            max_aliases: 100,
        });
        let mut request =
            async_graphql::Request::new(format!("{{ me {{ kind }} }} #{}", "x".repeat(100)));
        let Err(Unprepared::TooLarge(refusal)) = cache.prepare(&mut request).await else {
            panic!("not refused as too large");
        };
        assert_eq!(refusal.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(refusal.code, "QUERY_TOO_LARGE");
    }
}
