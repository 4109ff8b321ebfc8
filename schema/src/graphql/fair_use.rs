//! What a hostile query document may cost, bounded before
//! [`super::limits`] measures depth and complexity.
//!
//! Four clients sending 900 KB string literals or 1,000 aliases of
//! `patient { name }` raised the p99 of everyone else's summary queries
//! from ~20 ms to 400–770 ms: parsing and validating such documents is CPU
//! work that ran on the async workers, so every request behind them waited.
//! Here:
//!
//! - **size**: a document longer than `RENKEI_MAX_QUERY_BYTES` (default
//!   64 KiB) is refused with `QUERY_TOO_LARGE` before it is parsed — the
//!   body limit (`RENKEI_MAX_BODY_BYTES`) stays for variables, which a
//!   batch of records needs. The server checks it first (HTTP 413, also for
//!   GET and WebSocket, see `renkei_server::query_cache`); this extension
//!   checks it again for any other way into the schema.
//! - **aliases**: more than `RENKEI_MAX_ALIASES` (default 100) aliased
//!   fields in one operation (fragments counted where spread) are refused
//!   with `QUERY_TOO_COMPLEX`. An alias is how one request asks for the same
//!   field many times (`p1: patient(id: …) p2: patient(id: …) …`), and each
//!   costs a policy check, an audit entry and validation work that grows
//!   with the square of their number (overlapping fields are compared
//!   pairwise). No client of the hub needs more than a few dozen.
//! - **work off the async workers**: a document longer than
//!   [`LARGE_DOCUMENT_BYTES`] is parsed on tokio's blocking pool and
//!   validated with `block_in_place`, at most [`heavy_permits`] at a time,
//!   so large documents queue behind each other instead of stalling the
//!   workers that serve everyone else.
//! - **bounded echo**: messages that quote the document (a syntax error
//!   shows its line; unknown names and bad values are quoted) quote at most
//!   [`MAX_ECHO_CHARS`] characters of each line, so a refusal is never the
//!   size of what was refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use async_graphql::{
    ErrorExtensionValues, Request, Response, ServerError, ServerResult, ValidationResult,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
        NextRequest, NextValidation,
    },
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};
use tokio::sync::Semaphore;

/// `RENKEI_MAX_QUERY_BYTES`'s default: the largest real query (GraphiQL's
/// introspection query, a portal's timeline with fragments) is under 4 KiB.
pub const DEFAULT_MAX_QUERY_BYTES: usize = 64 * 1024;

/// `RENKEI_MAX_ALIASES`'s default.
pub const DEFAULT_MAX_ALIASES: usize = 100;

/// Documents longer than this are parsed and validated off the async
/// workers. Below it parsing costs tens of microseconds — less than a
/// hand-off to another thread.
pub const LARGE_DOCUMENT_BYTES: usize = 4 * 1024;

/// The most characters of one line of a message that quotes the document.
pub const MAX_ECHO_CHARS: usize = 200;

/// The most lines of such a message (pest's syntax errors are five).
const MAX_ECHO_LINES: usize = 12;

/// Selections looked at while counting aliases; past this the document is
/// [`super::limits`]' to refuse as too complex (fragments spread twice over
/// expand exponentially, and the count must stay cheap).
const MAX_STEPS: usize = 10 * super::limits::MAX_COMPLEXITY;

/// Nesting the alias count follows (as [`super::limits`] does).
const MAX_NESTING: usize = 64;

/// The bounds of a deployment (`RENKEI_MAX_QUERY_BYTES`, `RENKEI_MAX_ALIASES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FairUseLimits {
    pub max_query_bytes: usize,
    pub max_aliases: usize,
}

impl Default for FairUseLimits {
    fn default() -> Self {
        FairUseLimits {
            max_query_bytes: DEFAULT_MAX_QUERY_BYTES,
            max_aliases: DEFAULT_MAX_ALIASES,
        }
    }
}

/// How many large documents are parsed or validated at once, process-wide:
/// one per two cores (at least one), so the workers keep CPU for the
/// ordinary requests whatever the number of hostile clients.
pub fn heavy_permits() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

static HEAVY: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(heavy_permits()));

fn error(message: String, code: &'static str) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// Runs `work` (CPU work on a large input: a document's parse, a large
/// body's JSON) on tokio's blocking pool, one of [`heavy_permits`] at a
/// time; `None` if it panicked (logged).
pub async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let _permit = HEAVY.acquire().await.ok();
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::error!(error = %e, "work moved off the async workers failed");
            None
        }
    }
}

/// `QUERY_TOO_LARGE` when the document is longer than the limit.
pub fn check_size(query: &str, limits: FairUseLimits) -> Result<(), ServerError> {
    if query.len() <= limits.max_query_bytes {
        return Ok(());
    }
    Err(error(
        format!(
            "the query document is {} bytes; this hub accepts documents of at most {} bytes (RENKEI_MAX_QUERY_BYTES): pass values as variables, not literals",
            query.len(),
            limits.max_query_bytes
        ),
        "QUERY_TOO_LARGE",
    ))
}

/// Deepest nesting of `{ }` and `[ ]` a document's text may have (string
/// values and comments aside). async-graphql's parser recurses once per
/// level of a value or a selection set: `[[[[…]]]]` 400 deep in an
/// argument overflowed a worker's stack and aborted the whole hub — from a
/// request without a token, before anything else looked at it. The deepest
/// legitimate document (the standard introspection query) nests about 15.
pub const MAX_TEXT_NESTING: usize = 64;

/// `GRAPHQL_PARSE_FAILED` when the text nests braces or brackets deeper
/// than [`MAX_TEXT_NESTING`]: checked on the text, before it is parsed.
pub fn check_nesting(query: &str) -> Result<(), ServerError> {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // A block string ends at the first unescaped `"""`.
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    if deepest <= MAX_TEXT_NESTING {
        return Ok(());
    }
    Err(error(
        format!(
            "the query document nests braces or brackets {deepest} deep; this hub parses documents nested at most {MAX_TEXT_NESTING} deep: pass deep values as variables"
        ),
        "GRAPHQL_PARSE_FAILED",
    ))
}

/// Parses a document, a large one on the blocking pool (one of
/// [`heavy_permits`] at a time). The error is async-graphql's, its message
/// bounded and coded `GRAPHQL_PARSE_FAILED`.
pub async fn parse(query: &str) -> Result<ExecutableDocument, ServerError> {
    let parsed = if query.len() <= LARGE_DOCUMENT_BYTES {
        async_graphql::parser::parse_query(query)
    } else {
        let owned = query.to_owned();
        match off_workers(move || async_graphql::parser::parse_query(owned)).await {
            Some(parsed) => parsed,
            None => {
                return Err(error(
                    "internal error: the hub could not parse the document; it has been logged"
                        .into(),
                    "INTERNAL",
                ));
            }
        }
    };
    parsed.map_err(|e| {
        let mut error: ServerError = e.into();
        error.message = bound_echo(&error.message);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", "GRAPHQL_PARSE_FAILED");
        error
    })
}

/// The message with each line cut to [`MAX_ECHO_CHARS`] characters (and at
/// most [`MAX_ECHO_LINES`] lines): whatever of the document a message
/// quotes, it quotes a bounded part.
pub fn bound_echo(message: &str) -> String {
    let fits = |l: &str| l.len() <= MAX_ECHO_CHARS || l.chars().count() <= MAX_ECHO_CHARS;
    if message.lines().count() <= MAX_ECHO_LINES && message.lines().all(fits) {
        return message.to_string();
    }
    let mut out: Vec<String> = message
        .lines()
        .take(MAX_ECHO_LINES)
        .map(|line| {
            if fits(line) {
                line.to_string()
            } else {
                let cut: String = line.chars().take(MAX_ECHO_CHARS).collect();
                format!("{cut}… ({} more bytes)", line.len() - cut.len())
            }
        })
        .collect();
    if message.lines().count() > MAX_ECHO_LINES {
        out.push("…".into());
    }
    out.join("\n")
}

fn bound_errors(errors: &mut [ServerError]) {
    for e in errors {
        e.message = bound_echo(&e.message);
    }
}

/// The aliased fields of the operation with the most, fragments counted
/// each time they are spread; stops counting past [`MAX_STEPS`] selections
/// and at fragment cycles ([`super::limits`] refuses those).
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    document
        .operations
        .iter()
        .map(|(_, op)| {
            let mut count = Count {
                document,
                aliases: 0,
                steps: 0,
                open: Vec::new(),
            };
            count.set(&op.node.selection_set.node, 0);
            count.aliases
        })
        .max()
        .unwrap_or(0)
}

struct Count<'a> {
    document: &'a ExecutableDocument,
    aliases: usize,
    steps: usize,
    open: Vec<&'a str>,
}

impl<'a> Count<'a> {
    fn set(&mut self, set: &'a SelectionSet, nesting: usize) {
        if nesting >= MAX_NESTING {
            return;
        }
        for selection in &set.items {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return;
            }
            match &selection.node {
                Selection::Field(field) => {
                    if field.node.alias.is_some() {
                        self.aliases += 1;
                    }
                    self.set(&field.node.selection_set.node, nesting + 1);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if self.open.contains(&name) {
                        continue;
                    }
                    if let Some(fragment) = self.document.fragments.get(name) {
                        self.open.push(name);
                        self.set(&fragment.node.selection_set.node, nesting + 1);
                        self.open.pop();
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.set(&inline.node.selection_set.node, nesting + 1);
                }
            }
        }
    }
}

/// Whether `block_in_place` may be used (not on a current-thread runtime).
fn multi_thread() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// `QUERY_TOO_COMPLEX` when an operation has more aliases than the limit
/// (`aliases` from [`count_aliases`]).
pub fn check_aliases(aliases: usize, limits: FairUseLimits) -> ServerResult<()> {
    if aliases <= limits.max_aliases {
        return Ok(());
    }
    Err(error(
        format!(
            "Query is too complex: it has {aliases} aliased fields; this hub accepts at most {} in one operation (RENKEI_MAX_ALIASES, fragments counted where spread)",
            limits.max_aliases
        ),
        "QUERY_TOO_COMPLEX",
    ))
}

/// The bounds above as a schema extension, registered before
/// [`super::limits::QueryLimits`] so a document is measured here first.
pub struct FairUse {
    pub limits: FairUseLimits,
}

impl ExtensionFactory for FairUse {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FairUseExtension {
            limits: self.limits,
            large: AtomicBool::new(false),
        })
    }
}

/// One request's (an extension is created per request).
struct FairUseExtension {
    limits: FairUseLimits,
    /// The document is longer than [`LARGE_DOCUMENT_BYTES`].
    large: AtomicBool,
}

#[async_graphql::async_trait::async_trait]
impl Extension for FairUseExtension {
    /// Over HTTP and WebSocket the server parsed the document already (off
    /// the workers when large); a large one it could not parse, or one that
    /// came another way, is parsed here off the workers too, and a syntax
    /// error ends the request here — before [`super::limits`] or
    /// async-graphql would parse it again on a worker.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        check_size(&request.query, self.limits)?;
        check_nesting(&request.query)?;
        let large = request.query.len() > LARGE_DOCUMENT_BYTES;
        self.large.store(large, Ordering::Relaxed);
        let parsed = if large && multi_thread() {
            let _permit = HEAVY.acquire().await.ok();
            tokio::task::block_in_place(|| request.parsed_query().map(count_aliases))
        } else {
            request.parsed_query().map(count_aliases)
        };
        match parsed {
            Ok(aliases) => check_aliases(aliases, self.limits)?,
            Err(mut e) => {
                e.message = bound_echo(&e.message);
                e.extensions
                    .get_or_insert_with(Default::default)
                    .set("code", "GRAPHQL_PARSE_FAILED");
                return Err(e);
            }
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut e| {
            e.message = bound_echo(&e.message);
            e
        })
    }

    /// async-graphql's validation rules, run for a large document on a
    /// thread of its own (`block_in_place` hands this worker's other tasks
    /// to another), one of [`heavy_permits`] at a time.
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = if self.large.load(Ordering::Relaxed) && multi_thread() {
            let _permit = HEAVY.acquire().await.ok();
            let handle = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| handle.block_on(next.run(ctx)))
        } else {
            next.run(ctx).await
        };
        result.map_err(|mut errors| {
            bound_errors(&mut errors);
            errors
        })
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        bound_errors(&mut response.errors);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        let deep = |n: usize| format!("{{ f(a: {}1{}) }}", "[".repeat(n), "]".repeat(n));
        assert!(check_nesting(&deep(MAX_TEXT_NESTING - 1)).is_ok());
        let refused = check_nesting(&deep(400)).unwrap_err();
        assert!(refused.message.contains("401 deep"), "{}", refused.message);
        // Braces in strings, block strings and comments are text.
        let quoted = format!(
            "{{ f(a: \"{0}\\\"{0}\", b: \"\"\"{0}\\\"\"\"{0}\"\"\") # {0}\n }}",
            "[".repeat(200)
        );
        assert!(check_nesting(&quoted).is_ok(), "{quoted}");
        // An unterminated string or comment ends the scan without error.
        assert!(check_nesting("{ f(a: \"[[[").is_ok());
    }

    fn aliases(query: &str) -> usize {
        count_aliases(&async_graphql::parser::parse_query(query).expect("parses"))
    }

    #[test]
    fn aliases_are_counted_per_operation_and_where_fragments_are_spread() {
        assert_eq!(aliases("{ a b c: d }"), 1);
        assert_eq!(
            aliases("query { x: a ...F ...F } fragment F on Q { y: b z: c }"),
            5
        );
        assert_eq!(
            aliases("query A { x: a y: b } query B { x: a }"),
            2,
            "the operation with the most"
        );
        // A cycle is counted once and left to the limits to refuse.
        assert_eq!(aliases("query { ...F } fragment F on Q { x: a ...F }"), 1);
    }

    #[test]
    fn a_hundred_aliases_pass_and_one_more_does_not() {
        let wide = |n: usize| {
            let fields: Vec<String> = (0..n)
                .map(|i| format!("p{i}: patient {{ name }}"))
                .collect();
            async_graphql::parser::parse_query(format!("{{ {} }}", fields.join(" "))).unwrap()
        };
        let limits = FairUseLimits::default();
        assert!(check_aliases(count_aliases(&wide(100)), limits).is_ok());
        let refused = check_aliases(count_aliases(&wide(101)), limits).unwrap_err();
        assert!(refused.message.contains("101"), "{}", refused.message);
    }

    #[test]
    fn a_long_line_is_quoted_in_part() {
        let long = format!("bad \"{}\" here", "x".repeat(100_000));
        let bounded = bound_echo(&long);
        assert!(bounded.len() < MAX_ECHO_CHARS + 64, "{}", bounded.len());
        assert!(bounded.starts_with("bad \"xxx"));
        let japanese = "患".repeat(1000);
        assert!(bound_echo(&japanese).chars().count() < MAX_ECHO_CHARS + 30);
        assert_eq!(bound_echo("short\nlines"), "short\nlines");
    }

    #[tokio::test]
    async fn a_large_document_with_a_syntax_error_is_reported_briefly() {
        let query = format!("{{ patient(id: \"{}\") {{ name ", "x".repeat(900_000));
        let error = parse(&query).await.unwrap_err();
        assert!(
            error.message.len() < 4 * MAX_ECHO_CHARS,
            "{}",
            error.message
        );
    }
}
