//! Seeing the hub work: Prometheus metrics ([`metrics`]), the access log
//! ([`access_log`]) and request ids ([`request_id`]).
//!
//! [`layer`] wraps every HTTP request (it is the router's outermost layer):
//! it settles the request id, times the request, and when the response is
//! ready writes the access line and counts the request. What only a handler
//! knows reaches it two ways:
//! - [`set_outcome`] tags a response with its outcome code (any handler or
//!   inner layer that refuses a request: 401, 413, 429, 503 …);
//! - [`note_graphql`], [`note_operation`] and [`note_caller`] record, for
//!   the request being handled, that it is a GraphQL request, its operation
//!   and the caller's organisation (a task-local the layer set up, so no
//!   handler signature changes).
//!
//! GraphQL over WebSocket is logged and counted per operation
//! ([`OperationRecord`]), from `crate::ws`.

pub mod access_log;
pub mod metrics;
pub mod request_id;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use sha2::{Digest, Sha256};
use tower_http::request_id::RequestId;
use uuid::Uuid;

pub use metrics::{Metrics, Transport};

/// Where `/metrics` is served (see docs/operations.md, "Metrics").
#[derive(Args, Clone, Debug)]
pub struct MetricsConfig {
    /// Address (`HOST:PORT`) of a separate listener serving only
    /// `/metrics`, e.g. `127.0.0.1:9464` or an address of the monitoring
    /// network. Without it and without --metrics-token, `/metrics` is not
    /// served at all.
    #[arg(long, env = "RENKEI_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Bearer token Prometheus must send (`Authorization: Bearer …`) to
    /// read `/metrics`; with it, `/metrics` is also served on the main
    /// listener. At least 16 characters.
    #[arg(long, env = "RENKEI_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Distinct GraphQL operation names the metrics label; further names
    /// are counted as `other`, so clients cannot grow the metrics without
    /// bound.
    #[arg(long, env = "RENKEI_METRICS_MAX_OPERATIONS", default_value_t = 200)]
    pub metrics_max_operations: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            metrics_listen: None,
            metrics_token: None,
            metrics_max_operations: 200,
        }
    }
}

/// The shortest metrics token accepted.
const MIN_TOKEN: usize = 16;

/// An instance's metrics and how `/metrics` is guarded.
pub struct Observe {
    pub metrics: Metrics,
    /// SHA-256 of the metrics token, when one is configured.
    token: Option<[u8; 32]>,
}

impl Observe {
    pub fn new(config: &MetricsConfig) -> anyhow::Result<Arc<Self>> {
        let token = match &config.metrics_token {
            None => None,
            Some(t) if t.trim().len() < MIN_TOKEN => anyhow::bail!(
                "RENKEI_METRICS_TOKEN must be at least {MIN_TOKEN} characters (e.g. `openssl rand -hex 24`)"
            ),
            Some(t) => Some(Sha256::digest(t.trim().as_bytes()).into()),
        };
        Ok(Arc::new(Observe {
            metrics: Metrics::new(config.metrics_max_operations),
            token,
        }))
    }

    /// Whether the main listener serves `/metrics` (a token is configured).
    pub fn public(&self) -> bool {
        self.token.is_some()
    }

    /// `/metrics`: the exposition, when the token (if configured) is given.
    fn exposition(&self, headers: &HeaderMap) -> Response {
        if let Some(expected) = &self.token {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(|t| Sha256::digest(t.trim().as_bytes()));
            // Digests of equal length, compared without an early exit: the
            // time taken says nothing about how much of the token matched.
            let matches = given.is_some_and(|given| {
                given
                    .iter()
                    .zip(expected.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            });
            if !matches {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "the metrics token is missing or wrong",
                )
                    .into_response();
            }
        }
        (
            [
                (
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.metrics.encode(),
        )
            .into_response()
    }

    /// Starts the record of one GraphQL operation over WebSocket; it is
    /// counted and logged when dropped (the operation completed, was
    /// stopped by the client, or its connection closed).
    pub fn websocket_operation(
        self: &Arc<Self>,
        operation: Option<String>,
        subscription: bool,
        request_id: &str,
        organization: Option<Uuid>,
    ) -> OperationRecord {
        OperationRecord {
            observe: self.clone(),
            started: Instant::now(),
            operation: operation.unwrap_or_else(|| metrics::UNKNOWN.to_string()),
            running: subscription.then(|| self.metrics.subscription_started()),
            outcome: None,
            request_id: request_id.to_string(),
            organization,
        }
    }
}

/// `GET /metrics` on the main listener, routed only when a token is
/// configured (elsewhere it is a path the hub does not serve: 404).
pub async fn public_metrics(
    State(state): State<crate::http::AppState>,
    headers: HeaderMap,
) -> Response {
    // Routed only when public (`http::router`).
    state.observe.exposition(&headers)
}

/// The router of the separate metrics listener (`RENKEI_METRICS_LISTEN`):
/// `/metrics` and nothing else, answered as the main listener answers what
/// it does not serve.
pub fn metrics_router(observe: Arc<Observe>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State(o): State<Arc<Observe>>, headers: HeaderMap| async move {
                    o.exposition(&headers)
                },
            )
            .with_state(observe),
        )
        .fallback(|| async {
            crate::http::error_response(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "not served here: this listener serves /metrics only",
            )
        })
        .layer(axum::middleware::map_response(crate::http::no_sniffing))
}

/// The outcome code of a response, as [`set_outcome`] tagged it.
#[derive(Clone, Debug)]
struct Outcome(String);

/// Tags a response with its outcome code (an `extensions.code` such as
/// `UNAUTHENTICATED`, `RATE_LIMITED`), for the access log and the metrics.
/// A response without one is `OK` below status 400, `HTTP_<status>` above.
pub fn set_outcome(response: &mut Response, code: &str) {
    response
        .extensions_mut()
        .insert(Outcome(outcome_label(code)));
}

/// A code as a label: codes are the hub's own constants, but a label must
/// stay bounded whatever a future caller passes.
fn outcome_label(code: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        code.to_string()
    } else {
        "OTHER".to_string()
    }
}

/// The outcome of a GraphQL response: its first error's `extensions.code`,
/// or `OK`.
pub fn graphql_outcome(response: &async_graphql::Response) -> String {
    let code =
        response.errors.first().map(
            |e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
                Some(async_graphql::Value::String(code)) => outcome_label(code),
                Some(async_graphql::Value::Enum(code)) => outcome_label(code.as_str()),
                _ => "OTHER".to_string(),
            },
        );
    code.unwrap_or_else(|| "OK".to_string())
}

/// The name of the operation a request runs: its `operationName`, the
/// name of its document's only operation, or [`metrics::ANONYMOUS`];
/// `None` when its document did not parse (`parsed` false) or names no such
/// operation.
pub fn operation_name(request: &mut async_graphql::Request, parsed: bool) -> Option<String> {
    use async_graphql::parser::types::DocumentOperations;
    if !parsed {
        return None;
    }
    let given = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    match (&document.operations, given) {
        // The parser keeps a document's one unnamed operation as `Single`.
        (DocumentOperations::Single(_), None) => Some(metrics::ANONYMOUS.to_string()),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.contains_key(name.as_str()).then_some(name)
        }
        (DocumentOperations::Multiple(ops), None) => ops
            .keys()
            .next()
            .filter(|_| ops.len() == 1)
            .map(|n| n.to_string()),
    }
}

/// What a handler tells the layer about the request it handles.
#[derive(Default)]
struct Notes {
    graphql: bool,
    operation: Option<String>,
    organization: Option<Uuid>,
}

tokio::task_local! {
    static NOTES: RefCell<Notes>;
}

fn note(change: impl FnOnce(&mut Notes)) {
    // Outside a request (tests of a handler alone) there is nothing to note.
    let _ = NOTES.try_with(|n| change(&mut n.borrow_mut()));
}

/// The request being handled is a GraphQL request (counted per operation).
pub fn note_graphql() {
    note(|n| n.graphql = true);
}

/// The GraphQL operation of the request being handled (see [`operation_name`]).
pub fn note_operation(request: &mut async_graphql::Request, parsed: bool) {
    let name = operation_name(request, parsed);
    note(|n| n.operation = name);
}

/// The authenticated caller's organisation.
pub fn note_caller(organization: Uuid) {
    note(|n| n.organization = Some(organization));
}

/// The layer around every HTTP request: request id, access log, metrics.
pub async fn layer(
    State(observe): State<Arc<Observe>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id::choose(request.headers());
    request.headers_mut().insert(request_id::HEADER, id.clone());
    request.extensions_mut().insert(RequestId::new(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (mut response, notes) = NOTES
        .scope(RefCell::new(Notes::default()), async move {
            let response = next.run(request).await;
            let notes = NOTES.with(|n| n.take());
            (response, notes)
        })
        .await;
    response
        .headers_mut()
        .insert(request_id::HEADER, id.clone());
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let outcome = match response.extensions().get::<Outcome>() {
        Some(o) => o.0.clone(),
        None if status < 400 => "OK".to_string(),
        None => format!("HTTP_{status}"),
    };
    let route = access_log::route_of(&path);
    observe
        .metrics
        .http_request(route.unwrap_or("other"), status, elapsed);
    let operation = notes.graphql.then(|| {
        let label = observe.metrics.operation_label(notes.operation.as_deref());
        observe
            .metrics
            .graphql_request(Transport::Http, &label, &outcome, Some(elapsed));
        loggable_operation(notes.operation.as_deref(), &label)
    });
    access_log::Line {
        transport: Transport::Http.as_str(),
        method: method.as_str(),
        path: &access_log::loggable_path(&path),
        operation: operation.as_deref(),
        status: Some(status),
        outcome: &outcome,
        duration: elapsed,
        request_id: id.to_str().unwrap_or("-"),
        organization: notes.organization,
    }
    .write();
    response
}

/// The operation name the log shows: the name itself when it is a GraphQL
/// name (the metrics' cap does not apply to the log), else the label.
fn loggable_operation(name: Option<&str>, label: &str) -> String {
    match name {
        Some(name) if metrics::is_safe_name(name) => name.to_string(),
        _ => label.to_string(),
    }
}

/// One GraphQL operation over WebSocket, counted and logged when dropped.
pub struct OperationRecord {
    observe: Arc<Observe>,
    started: Instant,
    operation: String,
    /// Holds a unit of the running-subscriptions gauge (subscriptions only).
    running: Option<metrics::GaugeGuard>,
    outcome: Option<String>,
    request_id: String,
    organization: Option<Uuid>,
}

impl OperationRecord {
    /// A result of the operation went to the client: the first error's
    /// code becomes its outcome; a subscription's clean result is a
    /// delivered event.
    pub fn response(&mut self, response: &async_graphql::Response) {
        if self.outcome.is_none() && !response.errors.is_empty() {
            self.outcome = Some(graphql_outcome(response));
        }
        if self.running.is_some() && response.errors.is_empty() {
            self.observe.metrics.subscription_event_delivered();
        }
    }

    /// The operation was refused before it ran, with `code`.
    pub fn refused(mut self, code: &str) {
        self.running = None;
        self.outcome = Some(outcome_label(code));
    }
}

impl Drop for OperationRecord {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let outcome = self.outcome.as_deref().unwrap_or("OK");
        let name = (self.operation != metrics::UNKNOWN).then_some(self.operation.as_str());
        let label = self.observe.metrics.operation_label(name);
        // A subscription's lifetime is no latency.
        let duration = self.running.is_none().then_some(elapsed);
        self.observe
            .metrics
            .graphql_request(Transport::WebSocket, &label, outcome, duration);
        let operation = loggable_operation(name, &label);
        access_log::Line {
            transport: Transport::WebSocket.as_str(),
            method: "WS",
            path: "/graphql/ws",
            operation: Some(&operation),
            status: None,
            outcome,
            duration: elapsed,
            request_id: &self.request_id,
            organization: self.organization,
        }
        .write();
    }
}
