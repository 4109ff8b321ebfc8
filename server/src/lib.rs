//! The renkei server: configuration ([`config`]), database ([`db`]),
//! authentication ([`auth`]), the HTTP surface ([`http`], GraphiQL's page in
//! [`graphiql`]), GraphQL over WebSocket ([`ws`]) and the CLI ([`cli`]).
//!
//! [`Application::build`] is used by `renkei serve` *and* by the end-to-end
//! tests, so the tests exercise exactly what runs in production.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod fhir;
pub mod graphiql;
pub mod graphql_http;
pub mod http;
pub mod jwks;
pub mod listener;
pub mod observe;
pub mod outage;
pub mod pages;
pub mod print;
pub mod query_cache;
pub mod rate_limit;
pub mod relay;
pub mod strict_json;
pub mod telemetry;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use renkei_schema::{SchemaDeps, build_schema};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use renkei_schema::audit::AuditWriter;
use renkei_schema::clock::{SharedClock, SystemClock};
use renkei_schema::events::EventBus;
use renkei_schema::policy::{Matrix, Policy};
use renkei_schema::services::api_keys::ApiKeyCache;

use crate::config::{PolicyConfig, ServeConfig};

/// The policy from its configuration: the default matrix with the override
/// file's cells. A bad file stops the start with a message naming the problem.
pub fn load_policy(config: &PolicyConfig, clock: SharedClock) -> anyhow::Result<Policy> {
    let matrix = match &config.policy_file {
        None => Matrix::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the policy file {}", path.display()))?;
            Matrix::with_overrides(&text)
                .map_err(|e| anyhow::anyhow!("{} ({})", e, path.display()))?
        }
    };
    if config.emergency_access_minutes == 0 || config.emergency_access_minutes > 24 * 60 {
        anyhow::bail!("RENKEI_EMERGENCY_ACCESS_MINUTES must be between 1 and 1440");
    }
    if config.emergency_search_limit == 0 || config.emergency_search_window_minutes == 0 {
        anyhow::bail!(
            "RENKEI_EMERGENCY_SEARCH_LIMIT and RENKEI_EMERGENCY_SEARCH_WINDOW_MINUTES must be at least 1"
        );
    }
    Ok(Policy {
        matrix,
        emergency_duration: chrono::Duration::minutes(i64::from(config.emergency_access_minutes)),
        emergency_search: renkei_schema::policy::EmergencySearchLimit {
            searches: config.emergency_search_limit,
            window: chrono::Duration::minutes(i64::from(config.emergency_search_window_minutes)),
        },
        clock,
    })
}

/// Called with the SQL of every statement executed.
pub type StatementObserver = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    db: DatabaseConnection,
    /// Writes the audit log's checkpoints; a last one at shutdown.
    checkpoints: Option<audit::Checkpointer>,
    /// The separate `/metrics` listener (`RENKEI_METRICS_LISTEN`).
    metrics: Option<(TcpListener, axum::Router)>,
    /// What a client's connection may take (`RENKEI_MAX_CONNECTIONS` …).
    limits: listener::ConnectionLimits,
    /// The WebSocket connections, told when the hub shuts down.
    websocket: Arc<ws::WebSocketLimits>,
}

impl Application {
    /// Installs the audit keys, connects to the database, migrates (unless
    /// `--no-migrate`), seeds the demo region when asked, builds the schema,
    /// starts the audit checkpoints and binds the listener.
    pub async fn build(config: ServeConfig) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with a clock of the caller's (tests move time).
    pub async fn build_with_clock(config: ServeConfig, clock: SharedClock) -> anyhow::Result<Self> {
        Self::build_with(config, clock, None).await
    }

    /// [`Application::build`] with a clock, and a function called for every SQL
    /// statement the hub executes (tests count the statements a query costs).
    pub async fn build_with(
        config: ServeConfig,
        clock: SharedClock,
        on_statement: Option<StatementObserver>,
    ) -> anyhow::Result<Self> {
        let limits = config.connections.limits()?;
        let hub = Hub::build(&config, clock, on_statement).await?;
        let metrics = match config.metrics.metrics_listen {
            None => None,
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening for metrics on {addr}"))?;
                Some((listener, observe::metrics_router(hub.state.observe.clone())))
            }
        };
        // The body's deadline only on the network's router: the import's
        // in-process bodies are in memory already.
        let router = http::router(
            hub.state.clone(),
            config.max_body_bytes,
            &config.cors_allowed_origins,
        )
        .layer(tower_http::timeout::RequestBodyDeadlineLayer::new(
            limits.body_read_timeout,
        ));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        Ok(Application {
            listener,
            router,
            db: hub.state.db.clone(),
            checkpoints: hub.checkpoints,
            metrics,
            limits,
            websocket: hub.state.websocket.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The address of the separate `/metrics` listener, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Serves until `shutdown` completes; in-flight requests then finish,
    /// and a last audit checkpoint records the head they leave.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The metrics listener is a scraper's: a few connections, the
        // same timeouts; it stops with the hub.
        let scraper = listener::ConnectionLimits {
            max_connections: METRICS_CONNECTIONS,
            ..self.limits
        };
        let metrics = self.metrics.map(|(listener, router)| {
            tokio::spawn(listener::serve(
                listener,
                router,
                scraper,
                std::future::pending(),
            ))
        });
        // WebSockets are told first (1001): upgraded, they are no longer
        // requests the listener lets finish.
        let websocket = self.websocket.clone();
        let shutdown = async move {
            shutdown.await;
            websocket.close_all();
        };
        listener::serve(self.listener, self.router, self.limits, shutdown).await;
        // Their close frames sent (and answered) before the process ends.
        self.websocket.drained(WEBSOCKET_DRAIN).await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(checkpoints) = self.checkpoints {
            checkpoints.finish().await;
        }
        Ok(())
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// How long a shutting-down hub waits for its WebSockets to close: a close
/// frame and its answer (`ws::finish` waits a second for the answer).
const WEBSOCKET_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Connections the separate metrics listener takes at once.
const METRICS_CONNECTIONS: usize = 16;

/// The hub's parts without a listener: what `serve` runs behind its routes,
/// and what the CLI's FHIR import and export run as an API key's
/// organisation (the same schema, policy, audit writer and authenticator).
pub struct Hub {
    pub state: http::AppState,
    /// Writes the audit log's checkpoints; a last one at [`Hub::finish`].
    checkpoints: Option<audit::Checkpointer>,
}

impl Hub {
    /// Installs the audit keys, connects to the database, migrates (unless
    /// `--no-migrate`), seeds the demo region when asked, builds the schema
    /// and starts the audit writer and checkpoints.
    pub async fn build(
        config: &ServeConfig,
        clock: SharedClock,
        on_statement: Option<StatementObserver>,
    ) -> anyhow::Result<Hub> {
        let policy = Arc::new(load_policy(&config.policy, clock.clone())?);
        let observe = observe::Observe::new(&config.metrics)?;
        let websocket = Arc::new(config.websocket.limits()?);
        let fair_use = config.fair_use()?;
        let rate_limits = Arc::new(rate_limit::RateLimiter::new(
            &config.rate_limit,
            config.redis.redis_url.as_deref(),
            &config.redis.redis_prefix,
        )?);
        // Before anything can write to the log: every entry is signed.
        let audit_keys = Arc::new(audit::serve_keys(&config.audit_keys, config.demo)?);
        renkei_schema::audit::keys::install(audit_keys.clone()).map_err(|e| anyhow::anyhow!(e))?;
        let mut db = if config.no_migrate {
            db::connect_migrated(&config.database).await?
        } else {
            db::connect_and_migrate(&config.database).await?
        };
        db::warn_if_audit_log_is_writable(&db).await;
        if let Some(observe) = on_statement {
            db.set_metric_callback(move |info| observe(&info.statement.sql));
        }
        if config.demo {
            let report = renkei_schema::demo::seed(&db)
                .await
                .map_err(|e| anyhow::anyhow!("seeding the demo region: {}", e.message()))?;
            tracing::info!(?report, "demo region seeded");
        }
        let api_keys = Arc::new(ApiKeyCache::new(Duration::from_secs(
            config.auth.api_key_cache_seconds,
        )));
        let events = EventBus::new();
        let audit = AuditWriter::start_observed(
            db.clone(),
            clock.clone(),
            Some(observe.metrics.audit_batch_observer()),
        );
        let checkpoints = audit::Checkpointer::start(
            &config.checkpoints,
            config
                .redis
                .redis_url
                .as_deref()
                .map(|url| (url, config.redis.redis_prefix.as_str())),
            db.clone(),
            audit_keys,
            clock.clone(),
        )?;
        let schema = build_schema(SchemaDeps {
            db: db.clone(),
            policy,
            api_keys: api_keys.clone(),
            batch_window: Duration::from_micros(config.batch_window_micros),
            adaptive_batching: config.batch_window_adaptive,
            directory_ttl: Duration::from_secs(config.directory_cache_seconds),
            events: events.clone(),
            audit: audit.clone(),
            introspection: config.introspection,
            token_issuer: config.auth.jwt_issuer.clone(),
            fair_use,
        });
        renkei_schema::graphql::spawn_cache_invalidation(schema.clone(), &events);
        let relay = match &config.redis.redis_url {
            Some(url) => Some(relay::start(url, &config.redis.redis_prefix, &events)?),
            None => None,
        };
        let auth = Arc::new(
            auth::Authenticator::new(
                &config.auth,
                db.clone(),
                config.demo,
                api_keys,
                renkei_schema::graphql::member_loader(&schema),
            )
            .await?,
        );
        observe.metrics.attach(observe::metrics::Sources {
            audit: audit.clone(),
            db: db.clone(),
            relay: relay.clone(),
            events: events.clone(),
        });
        let state = http::AppState {
            schema,
            auth,
            audit,
            db: db.clone(),
            relay,
            queries: Arc::new(query_cache::QueryCache::new(fair_use)),
            events,
            max_message_bytes: config.max_body_bytes,
            websocket,
            rate_limits,
            observe,
            clock,
        };
        Ok(Hub { state, checkpoints })
    }

    /// Writes a last audit checkpoint (the CLI's end; `serve` does it at shutdown).
    pub async fn finish(self) {
        if let Some(checkpoints) = self.checkpoints {
            checkpoints.finish().await;
        }
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives after
/// the hub said it listens (and before it polls) stops it gracefully
/// instead of killing it, so its last audit checkpoint is written.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: std::io::Result<tokio::signal::unix::Signal>, name: &'static str| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                _ = wait(interrupt, "SIGINT") => {},
                _ = wait(terminate, "SIGTERM") => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
