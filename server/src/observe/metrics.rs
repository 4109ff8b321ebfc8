//! The Prometheus metrics (`/metrics`, OpenMetrics text).
//!
//! Counters and histograms are updated where things happen; the state of
//! the audit writer, the database pool, the Redis relay and the event bus
//! is read when Prometheus scrapes ([`Sampled`]), so it costs nothing
//! between scrapes. docs/operations.md lists every metric.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use renkei_schema::audit::AuditWriter;
use renkei_schema::events::EventBus;
use sea_orm::{DatabaseConnection, DbBackend};

use crate::relay::RelayHealth;

/// How an operation reached the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Http,
    WebSocket,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::WebSocket => "websocket",
        }
    }
}

/// The operation label of an operation whose document names none.
pub const ANONYMOUS: &str = "anonymous";
/// The operation label when the operation is not known (the request was
/// refused before its document was read, or the document did not parse).
pub const UNKNOWN: &str = "unknown";
/// The operation label beyond the cap, or for a name of unsafe characters.
pub const OTHER: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    transport: &'static str,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    transport: &'static str,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RateLimitLabels {
    kind: String,
    transport: &'static str,
}

type HistogramMaker = fn() -> Histogram;

fn latency_histogram() -> Histogram {
    // 1 ms … 10 s.
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// The hub's metrics. One per [`crate::Application`].
pub struct Metrics {
    registry: Registry,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: Family<DurationLabels, Histogram, HistogramMaker>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram, HistogramMaker>,
    rate_limited: Family<RateLimitLabels, Counter>,
    audit_batch_requests: Histogram,
    audit_batch_entries: Histogram,
    websocket_connections: Gauge,
    subscriptions: Gauge,
    subscription_events: Counter,
    names: OperationNames,
    sampled: Arc<Sampled>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// What is read at scrape time, attached once the parts exist.
pub struct Sources {
    pub audit: AuditWriter,
    pub db: DatabaseConnection,
    pub relay: Option<Arc<RelayHealth>>,
    pub events: EventBus,
}

impl Metrics {
    /// Metrics that label at most `max_operations` operation names (the
    /// others are `other`).
    pub fn new(max_operations: usize) -> Self {
        let mut registry = Registry::default();
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "renkei_graphql_requests",
            "GraphQL operations handled, by transport, operation name and outcome (extensions.code of the first error, or OK)",
            operations.clone(),
        );
        let operation_seconds =
            Family::<DurationLabels, Histogram, HistogramMaker>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "renkei_graphql_request_duration_seconds",
            "Time to answer a GraphQL query or mutation (subscriptions not included), by transport and operation name",
            operation_seconds.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "renkei_http_requests",
            "HTTP requests, by route and status",
            http_requests.clone(),
        );
        let http_seconds = Family::<RouteLabels, Histogram, HistogramMaker>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "renkei_http_request_duration_seconds",
            "Time to answer an HTTP request (to the response head), by route",
            http_seconds.clone(),
        );
        let rate_limited = Family::<RateLimitLabels, Counter>::default();
        registry.register(
            "renkei_rate_limited",
            "Requests refused by a rate limit, by the limit's kind and transport",
            rate_limited.clone(),
        );
        let batch_buckets = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
        let audit_batch_requests = Histogram::new(batch_buckets);
        registry.register(
            "renkei_audit_batch_requests",
            "Requests whose audit entries one group commit of the audit log wrote",
            audit_batch_requests.clone(),
        );
        let audit_batch_entries = Histogram::new(batch_buckets.into_iter().chain([1024.0, 4096.0]));
        registry.register(
            "renkei_audit_batch_entries",
            "Audit entries one group commit of the audit log wrote",
            audit_batch_entries.clone(),
        );
        let websocket_connections = Gauge::default();
        registry.register(
            "renkei_websocket_connections",
            "Open GraphQL WebSocket connections",
            websocket_connections.clone(),
        );
        let subscriptions = Gauge::default();
        registry.register(
            "renkei_websocket_subscriptions",
            "Subscriptions running on GraphQL WebSocket connections",
            subscriptions.clone(),
        );
        let subscription_events = Counter::default();
        registry.register(
            "renkei_subscription_events_delivered",
            "Subscription results sent to clients (events that passed the policy)",
            subscription_events.clone(),
        );
        let sampled = Arc::new(Sampled::default());
        registry.register_collector(Box::new(sampled.clone()));
        Metrics {
            registry,
            operations,
            operation_seconds,
            http_requests,
            http_seconds,
            rate_limited,
            audit_batch_requests,
            audit_batch_entries,
            websocket_connections,
            subscriptions,
            subscription_events,
            names: OperationNames::new(max_operations),
            sampled,
        }
    }

    /// Attaches what is read at scrape time (once; later calls are ignored).
    pub fn attach(&self, sources: Sources) {
        let _ = self.sampled.sources.set(sources);
    }

    /// A function for [`AuditWriter::start_observed`].
    pub fn audit_batch_observer(&self) -> renkei_schema::audit::BatchObserver {
        let requests = self.audit_batch_requests.clone();
        let entries = self.audit_batch_entries.clone();
        Arc::new(move |jobs, count| {
            requests.observe(jobs as f64);
            entries.observe(count as f64);
        })
    }

    /// The exposition, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The operation label for a name: the name itself while fewer than
    /// the cap have been seen, [`OTHER`] beyond it or for unsafe names.
    pub fn operation_label(&self, name: Option<&str>) -> String {
        match name {
            None => UNKNOWN.to_string(),
            Some(name) => self.names.label(name),
        }
    }

    /// Counts a GraphQL operation; `duration` is observed unless `None`
    /// (subscriptions, whose lifetime is no latency).
    pub fn graphql_request(
        &self,
        transport: Transport,
        operation: &str,
        outcome: &str,
        duration: Option<Duration>,
    ) {
        self.operations
            .get_or_create(&OperationLabels {
                transport: transport.as_str(),
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        if let Some(d) = duration {
            self.operation_seconds
                .get_or_create(&DurationLabels {
                    transport: transport.as_str(),
                    operation: operation.to_string(),
                })
                .observe(d.as_secs_f64());
        }
    }

    /// Counts an HTTP request.
    pub fn http_request(&self, route: &'static str, status: u16, duration: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels { route, status })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels { route })
            .observe(duration.as_secs_f64());
    }

    /// Counts a request refused by a rate limit of `kind` (e.g. `member`,
    /// `organization`, `api_key`; kinds are the caller's constants, never
    /// anything a client sends).
    pub fn rate_limited(&self, kind: &str, transport: Transport) {
        self.rate_limited
            .get_or_create(&RateLimitLabels {
                // Label values in the exposition's lower case (`member`),
                // whatever case the limiter names its scopes in.
                kind: kind.to_ascii_lowercase(),
                transport: transport.as_str(),
            })
            .inc();
    }

    /// One more open WebSocket connection, until the guard drops.
    pub fn websocket_opened(&self) -> GaugeGuard {
        GaugeGuard::new(&self.websocket_connections)
    }

    /// One more running subscription, until the guard drops.
    pub fn subscription_started(&self) -> GaugeGuard {
        GaugeGuard::new(&self.subscriptions)
    }

    /// A subscription result went to a client.
    pub fn subscription_event_delivered(&self) {
        self.subscription_events.inc();
    }
}

/// Holds one unit of a gauge; gives it back when dropped.
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The operation names seen so far, at most `max`: a client choosing a new
/// name for every request would otherwise grow the exposition (and
/// Prometheus's storage) without bound.
struct OperationNames {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

/// The longest operation name kept as a label.
const MAX_NAME: usize = 100;

/// Whether `name` is a GraphQL name of reasonable length.
pub fn is_safe_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

impl OperationNames {
    fn new(max: usize) -> Self {
        OperationNames {
            max,
            seen: Mutex::new(HashSet::new()),
        }
    }

    fn label(&self, name: &str) -> String {
        if name == ANONYMOUS || name == UNKNOWN {
            return name.to_string();
        }
        if !is_safe_name(name) {
            return OTHER.to_string();
        }
        // Each change is one insert: a panic elsewhere cannot leave the set
        // half-changed.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(name) {
            return name.to_string();
        }
        if seen.len() < self.max {
            seen.insert(name.to_string());
            return name.to_string();
        }
        OTHER.to_string()
    }
}

/// The values read at scrape time.
#[derive(Default)]
struct Sampled {
    sources: OnceLock<Sources>,
}

impl fmt::Debug for Sampled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampled").finish_non_exhaustive()
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(Option<(&str, &str)>, i64)],
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (label, value) in values {
        match label {
            Some(label) => ConstGauge::new(*value).encode(metric.encode_family(&[*label])?)?,
            None => ConstGauge::new(*value).encode(metric.encode_family(&NO_LABELS)?)?,
        }
    }
    Ok(())
}

const NO_LABELS: [(&str, &str); 0] = [];

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(Option<(&str, &str)>, u64)],
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (label, value) in values {
        match label {
            Some(label) => ConstCounter::new(*value).encode(metric.encode_family(&[*label])?)?,
            None => ConstCounter::new(*value).encode(metric.encode_family(&NO_LABELS)?)?,
        }
    }
    Ok(())
}

/// (connections in the pool, idle ones, the pool's maximum).
fn pool_state(db: &DatabaseConnection) -> Option<(u32, u32, u32)> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            Some((
                pool.size(),
                pool.num_idle() as u32,
                pool.options().get_max_connections(),
            ))
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            Some((
                pool.size(),
                pool.num_idle() as u32,
                pool.options().get_max_connections(),
            ))
        }
        _ => None,
    }
}

impl Collector for Sampled {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(s) = self.sources.get() else {
            return Ok(());
        };
        gauge(
            &mut encoder,
            "renkei_audit_queue_depth",
            "Requests waiting for the audit writer (not counting the batch being written)",
            &[(None, s.audit.queued() as i64)],
        )?;
        if let Some((size, idle, max)) = pool_state(&s.db) {
            let in_use = size.saturating_sub(idle);
            gauge(
                &mut encoder,
                "renkei_db_pool_connections",
                "Database connections of the pool, by state (in_use: lent to a request; idle: open and free)",
                &[
                    (Some(("state", "in_use")), i64::from(in_use)),
                    (Some(("state", "idle")), i64::from(idle)),
                ],
            )?;
            gauge(
                &mut encoder,
                "renkei_db_pool_max_connections",
                "The most connections the pool opens (RENKEI_DATABASE_MAX_CONNECTIONS)",
                &[(None, i64::from(max))],
            )?;
        }
        if let Some(relay) = &s.relay {
            gauge(
                &mut encoder,
                "renkei_redis_relay_up",
                "1 when both directions of the Redis link between instances work, else 0 (absent without Redis)",
                &[(None, i64::from(relay.is_up()))],
            )?;
        }
        counter(
            &mut encoder,
            "renkei_events_published",
            "Events delivered to this instance's event bus (its own and, through Redis, other instances')",
            &[(None, s.events.delivered())],
        )?;
        let mut dropped = vec![(Some(("reason", "subscriber_lagged")), s.events.missed())];
        if let Some(relay) = &s.relay {
            dropped.push((Some(("reason", "relay_queue_full")), relay.dropped()));
        }
        counter(
            &mut encoder,
            "renkei_events_dropped",
            "Events lost: missed by a subscriber that fell behind (it is told to refetch), or not queued for other instances (Redis slow or down)",
            &dropped,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_capped_and_checked() {
        let names = OperationNames::new(2);
        assert_eq!(names.label("A"), "A");
        assert_eq!(names.label("B"), "B");
        assert_eq!(names.label("C"), OTHER);
        assert_eq!(names.label("A"), "A");
        assert_eq!(names.label(ANONYMOUS), ANONYMOUS);
        assert_eq!(names.label("bad name"), OTHER);
        assert_eq!(names.label("1abc"), OTHER);
        assert_eq!(names.label(&"x".repeat(101)), OTHER);
    }

    #[test]
    fn the_exposition_has_every_family() {
        let metrics = Metrics::new(10);
        metrics.graphql_request(Transport::Http, "Q", "OK", Some(Duration::from_millis(3)));
        metrics.rate_limited("member", Transport::WebSocket);
        let text = metrics.encode();
        assert!(text.contains(
            r#"renkei_graphql_requests_total{transport="http",operation="Q",outcome="OK"} 1"#
        ));
        assert!(
            text.contains(r#"renkei_rate_limited_total{kind="member",transport="websocket"} 1"#)
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
