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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// How many distinct queries are kept; past this the cache starts afresh
/// (a hub serves a handful of client programs, not thousands of queries).
const MAX_ENTRIES: usize = 512;
/// Longer texts are not kept (they are rare, and would pin memory).
const MAX_QUERY_BYTES: usize = 16 * 1024;

#[derive(Default)]
pub struct QueryCache {
    documents: Mutex<HashMap<Arc<str>, Arc<ExecutableDocument>>>,
}

impl QueryCache {
    /// Gives the request its parsed document, from the cache or parsed now;
    /// `false` when the text does not parse (the request is left as it was).
    pub fn prepare(&self, request: &mut async_graphql::Request) -> bool {
        let keep = request.query.len() <= MAX_QUERY_BYTES;
        // The copy the request owns is made after the lock is released.
        let cached = keep
            .then(|| self.lock().get(request.query.as_str()).cloned())
            .flatten();
        if let Some(doc) = cached {
            request.set_parsed_query((*doc).clone());
            return true;
        }
        let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
            return false;
        };
        if keep {
            let mut documents = self.lock();
            if documents.len() >= MAX_ENTRIES {
                documents.clear();
            }
            documents.insert(Arc::from(request.query.as_str()), Arc::new(doc.clone()));
        }
        request.set_parsed_query(doc);
        true
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

    #[test]
    fn the_same_text_is_parsed_once_and_bad_text_is_left_to_the_executor() {
        let cache = QueryCache::default();
        let mut a = async_graphql::Request::new("{ me { kind } }");
        assert!(cache.prepare(&mut a));
        assert_eq!(cache.lock().len(), 1);
        let mut b = async_graphql::Request::new("{ me { kind } }");
        assert!(cache.prepare(&mut b));
        assert_eq!(cache.lock().len(), 1);
        assert!(b.parsed_query().is_ok());
        let mut bad = async_graphql::Request::new("{ me { ");
        assert!(!cache.prepare(&mut bad));
        assert_eq!(cache.lock().len(), 1);
        assert!(bad.parsed_query().is_err());
    }

    #[test]
    fn a_long_text_is_parsed_but_not_kept() {
        let cache = QueryCache::default();
        let long = format!("{{ me {{ kind }} }} # {}", "x".repeat(MAX_QUERY_BYTES));
        let mut request = async_graphql::Request::new(long);
        assert!(cache.prepare(&mut request));
        assert_eq!(cache.lock().len(), 0);
    }
}
