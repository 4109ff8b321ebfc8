//! The end-to-end test harness.
//!
//! Each test spawns the real server ([`renkei_server::Application`], the same
//! code `renkei serve` runs) on port 0 with a database of its own, and talks to
//! it over HTTP. Tests written with [`e2e!`] run twice: on SQLite (always) and
//! on PostgreSQL when `RENKEI_TEST_DATABASE_URL` names a server database the
//! tests may create databases from (e.g. `postgres://postgres@127.0.0.1:5432/test`);
//! each PostgreSQL test creates its own database and drops it afterwards.
//!
//! With `RENKEI_TEST_AS_APP_ROLE=1`, the PostgreSQL half of every test runs
//! the hub the way production does: the database migrated by its owner, a
//! role made by `renkei db grant`, and the hub serving as that role with
//! `--no-migrate` — so a table the hub writes but the grant forgets, or a
//! statement the role may not run, fails the test.

pub mod fhir;
pub mod processes;
pub use processes::{HubProcess, PrivatePostgres, PrivateRedis};

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use renkei_schema::clock::ManualClock;
use renkei_server::config::{
    AuditKeyConfig, AuthConfig, CheckpointConfig, DatabaseConfig, PolicyConfig, RedisConfig,
    ServeConfig, WebSocketConfig,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

/// The HS256 secret test servers are configured with.
pub const TEST_JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// The audit key test servers sign the log with (`ID:SECRET`). Every
/// application in a test process uses it: a process signs with one keyring
/// (see `renkei_schema::audit::keys`); tests of other keys run the binary.
pub const TEST_AUDIT_KEY: &str = "test:test-audit-key-0123456789abcdef0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body against SQLite and, when configured, PostgreSQL:
/// `e2e!(name, |app| async move { ... })` defines `name::sqlite` and `name::postgres`;
/// `app` is a `&TestApp`.
#[macro_export]
macro_rules! e2e {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let owned = $crate::TestApp::spawn($crate::Backend::Sqlite).await;
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::postgres_configured() {
                    eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
                    return;
                }
                let owned = $crate::TestApp::spawn($crate::Backend::Postgres).await;
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }
        }
    };
}

pub fn postgres_configured() -> bool {
    std::env::var("RENKEI_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty())
}

/// Whether PostgreSQL tests serve as the application role (see the module
/// documentation).
pub fn as_app_role() -> bool {
    std::env::var("RENKEI_TEST_AS_APP_ROLE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A database that exists for one test and is removed afterwards.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
        /// The application role made for it ([`TestDatabase::with_app_role`]),
        /// dropped with it.
        role: Option<String>,
    },
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> (Self, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("renkei.db").display()
                );
                (TestDatabase::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let admin_url =
                    std::env::var("RENKEI_TEST_DATABASE_URL").expect("RENKEI_TEST_DATABASE_URL");
                let name = format!("renkei_test_{}", Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to RENKEI_TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .expect("RENKEI_TEST_DATABASE_URL ends in /DATABASE");
                let url = format!("{base}/{name}");
                (
                    TestDatabase::Postgres {
                        admin_url,
                        name,
                        role: None,
                    },
                    url,
                )
            }
        }
    }

    /// Migrates the PostgreSQL database at `owner_url` as its owner, makes
    /// an application role with `renkei db grant`, and returns the URL that
    /// connects as that role.
    pub async fn with_app_role(&mut self, owner_url: &str) -> String {
        let TestDatabase::Postgres { role, .. } = self else {
            panic!("the application role is a PostgreSQL thing");
        };
        let config = DatabaseConfig {
            database_url: owner_url.to_string(),
            database_max_connections: 2,
            database_acquire_timeout_ms: 1500,
        };
        let owner = renkei_server::db::connect_and_migrate(&config)
            .await
            .expect("migrate as the owner");
        let name = format!("renkei_app_{}", Uuid::new_v4().simple());
        *role = Some(name.clone());
        renkei_server::db::grant(
            &owner,
            &renkei_server::db::GrantRequest {
                role: name.clone(),
                password: None,
                existing_role: false,
            },
            true,
        )
        .await
        .expect("renkei db grant");
        owner.close().await.ok();
        let mut url = reqwest::Url::parse(owner_url).expect("database URL");
        url.set_username(&name).expect("user name");
        url.to_string()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres {
            admin_url,
            name,
            role,
        } = self
        {
            let (admin_url, name, role) = (admin_url.clone(), name.clone(), role.clone());
            // Drop runs inside the test's runtime; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        // Its privileges went with the database.
                        if let Some(role) = role {
                            let _ = admin
                                .execute_unprepared(&format!("DROP ROLE IF EXISTS {role}"))
                                .await;
                        }
                        admin.close().await.ok();
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub backend: Backend,
    /// The server's clock: starts at the real time and moves only when told
    /// (`app.clock.advance(..)`), e.g. to let emergency access expire.
    pub clock: Arc<ManualClock>,
    /// How many SQL statements the server has executed (see [`TestApp::count_statements`]).
    pub statements: Arc<AtomicU64>,
    /// How many of them named the `records` table (see
    /// [`TestApp::count_record_statements`]).
    pub record_statements: Arc<AtomicU64>,
    /// How many times the server asked the database for the policy's
    /// verdicts (`Policy::evaluate`, the statement that reads the consent
    /// in force as `consent_scope`).
    pub policy_statements: Arc<AtomicU64>,
    /// A network administrator of the coordination centre.
    pub admin_token: String,
    pub admin_org: Uuid,
    /// The database URL the server uses (for `renkei audit verify` and tamper tests).
    pub database_url: String,
    /// The separate `/metrics` listener, when the test configured one.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// `None` for a second instance on another's database ([`TestApp::spawn_peer`]).
    _database: Option<TestDatabase>,
    /// Redis streams the instances of this test write audit checkpoints to
    /// (URL, key): removed when the instance that owns the database stops.
    redis_streams: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

/// Settings a test may change before the server starts.
pub fn test_config(database_url: String) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        demo: false,
        no_migrate: false,
        max_body_bytes: 64 * 1024,
        max_query_bytes: renkei_schema::graphql::fair_use::DEFAULT_MAX_QUERY_BYTES,
        max_aliases: renkei_schema::graphql::fair_use::DEFAULT_MAX_ALIASES,
        cors_allowed_origins: Vec::new(),
        batch_window_micros: 1000,
        batch_window_adaptive: true,
        directory_cache_seconds: 30,
        introspection: true,
        database: DatabaseConfig {
            database_url,
            database_max_connections: 5,
            // Longer than the default (1.5 s): the suite's tests share busy
            // cores, and a slow moment must not read as an outage. The
            // outage tests (tests/tests/faults.rs) use the default.
            database_acquire_timeout_ms: 5000,
        },
        auth: AuthConfig {
            jwt_secret: Some(TEST_JWT_SECRET.to_string()),
            jwt_public_key_file: None,
            jwt_algorithm: "RS256".into(),
            jwt_issuer: "renkei".into(),
            jwt_audience: "renkei".into(),
            api_key_cache_seconds: 60,
            // The identity provider's key set and how members are named:
            // the defaults (tests/tests/jwks.rs changes them).
            ..AuthConfig::default()
        },
        policy: PolicyConfig::default(),
        redis: RedisConfig::default(),
        audit_keys: AuditKeyConfig {
            audit_key: Some(TEST_AUDIT_KEY.to_string()),
            audit_key_file: None,
        },
        checkpoints: CheckpointConfig::default(),
        websocket: WebSocketConfig::default(),
        connections: renkei_server::config::ConnectionConfig::default(),
        // Off, so that tests sending many requests are not limited;
        // tests/tests/fair_use.rs turns it on.
        rate_limit: renkei_server::rate_limit::RateLimitConfig::off(),
        metrics: Default::default(),
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let (mut database, mut url) = TestDatabase::create(backend).await;
        let app_role = backend == Backend::Postgres && as_app_role();
        if app_role {
            url = database.with_app_role(&url).await;
        }
        let clock = Arc::new(ManualClock::new(Utc::now()));
        Self::start(
            backend,
            url,
            Some(database),
            clock,
            Default::default(),
            |config| {
                config.no_migrate = app_role;
                configure(config)
            },
        )
        .await
    }

    /// The hub on a database the test prepared itself (e.g. migrated by its
    /// owner and served as another role); the test removes the database.
    pub async fn spawn_on(
        backend: Backend,
        url: String,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> TestApp {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        Self::start(backend, url, None, clock, Default::default(), configure).await
    }

    /// A second instance of the hub on this one's database (and clock), as
    /// in a deployment of several instances behind a load balancer. It has
    /// its own administrator token.
    pub async fn spawn_peer(&self, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let app_role = self.backend == Backend::Postgres && as_app_role();
        Self::start(
            self.backend,
            self.database_url.clone(),
            None,
            self.clock.clone(),
            self.redis_streams.clone(),
            |config| {
                config.no_migrate = app_role;
                configure(config)
            },
        )
        .await
    }

    async fn start(
        backend: Backend,
        url: String,
        database: Option<TestDatabase>,
        clock: Arc<ManualClock>,
        redis_streams: Arc<std::sync::Mutex<Vec<(String, String)>>>,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> TestApp {
        let mut config = test_config(url.clone());
        configure(&mut config);
        if let Some(redis) = &config.redis.redis_url {
            redis_streams.lock().unwrap().push((
                redis.clone(),
                renkei_server::audit::checkpoint_stream(&config.redis.redis_prefix),
            ));
        }
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        let record_statements = Arc::new(AtomicU64::new(0));
        let record_counter = record_statements.clone();
        let policy_statements = Arc::new(AtomicU64::new(0));
        let policy_counter = policy_statements.clone();
        let app = renkei_server::Application::build_with(
            config,
            clock.clone(),
            Some(Arc::new(move |sql: &str| {
                counter.fetch_add(1, Ordering::Relaxed);
                if sql.contains("\"records\"") {
                    record_counter.fetch_add(1, Ordering::Relaxed);
                }
                if sql.contains("\"consent_scope\"") {
                    policy_counter.fetch_add(1, Ordering::Relaxed);
                }
            })),
        )
        .await
        .expect("the application builds");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let db = app.database().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let (admin_org, admin_member) = bootstrap_admin(&db).await;
        TestApp {
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            db,
            backend,
            clock,
            statements,
            record_statements,
            policy_statements,
            admin_token: token_for(admin_member),
            admin_org,
            database_url: url,
            metrics_addr,
            shutdown: Some(tx),
            server: Some(server),
            _database: database,
            redis_streams,
        }
    }

    /// Stops the server and waits for it, so the database can be dropped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
        self.db.clone().close().await.ok();
        if self._database.is_some() {
            let streams = std::mem::take(&mut *self.redis_streams.lock().unwrap());
            for (url, key) in streams {
                // The test's Redis may be gone already (outage tests).
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    let client = redis::Client::open(url.as_str()).ok()?;
                    let mut con = client.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("DEL")
                        .arg(&key)
                        .query_async::<i64>(&mut con)
                        .await
                        .ok()
                })
                .await;
            }
        }
    }

    /// Runs a request and returns the response and the number of SQL
    /// statements the server executed meanwhile (the audit writer's included:
    /// a constant per request).
    pub async fn count_statements(
        &self,
        token: &str,
        query: &str,
        variables: Value,
    ) -> (Value, u64) {
        let before = self.statements.load(Ordering::SeqCst);
        let body = self.gql(token, query, variables).await;
        (body, self.statements.load(Ordering::SeqCst) - before)
    }

    /// Runs a request and returns the response and the number of SQL
    /// statements on the `records` table the server executed meanwhile: a
    /// write path's own cost, apart from the policy's and the response's
    /// loads (whose batching depends on timing).
    pub async fn count_record_statements(
        &self,
        token: &str,
        query: &str,
        variables: Value,
    ) -> (Value, u64) {
        let before = self.record_statements.load(Ordering::SeqCst);
        let body = self.gql(token, query, variables).await;
        (body, self.record_statements.load(Ordering::SeqCst) - before)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a GraphQL request with a bearer token; returns status and body.
    pub async fn post(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.client.post(self.url("/graphql")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.expect("JSON response");
        (status, body)
    }

    /// Runs a query and returns the whole response body (`data` and `errors`).
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post(
                Some(token),
                json!({ "query": query, "variables": variables }),
            )
            .await;
        assert_eq!(status, 200, "GraphQL responses are HTTP 200: {body}");
        body
    }

    /// Runs a query that must succeed and returns `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Registers an organisation (as the admin) and returns its id.
    pub async fn organization(&self, kind: &str, name: &str) -> String {
        let data = self
            .ok(
                &self.admin_token,
                "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }",
                json!({ "i": { "kind": kind, "name": name } }),
            )
            .await;
        data["registerOrganization"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Registers a member (as the admin); returns the member id and a token.
    pub async fn member(&self, organization_id: &str, profession: &str) -> (String, String) {
        let data = self
            .ok(
                &self.admin_token,
                "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { id } }",
                json!({ "i": { "organizationId": organization_id, "name": "試験 太郎", "profession": profession } }),
            )
            .await;
        let id = data["registerMember"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let token = token_for(Uuid::parse_str(&id).expect("uuid"));
        (id, token)
    }

    /// A member of `organization_id` whose stored profession is
    /// `profession`, written to the database behind the hub's back: for a
    /// row the hub no longer registers there (an ambulance crew at a care
    /// provider), to check what the policy makes of one stored before.
    pub async fn member_stored_as(
        &self,
        organization_id: &str,
        profession: &str,
    ) -> (String, String) {
        let (id, token) = self.member(organization_id, "PHYSICAL_THERAPIST").await;
        let stmt = sea_orm::sea_query::Query::update()
            .table(sea_orm::sea_query::Alias::new("members"))
            .value(sea_orm::sea_query::Alias::new("profession"), profession)
            .and_where(sea_orm::sea_query::ExprTrait::eq(
                sea_orm::sea_query::Expr::col(sea_orm::sea_query::Alias::new("id")),
                Uuid::parse_str(&id).expect("uuid"),
            ))
            .to_owned();
        sea_orm::ConnectionTrait::execute(&self.db, &stmt)
            .await
            .expect("set the stored profession");
        (id, token)
    }

    /// Registers a patient as the token's organisation with a local ID, and
    /// records the patient's network-wide consent (包括同意), so the registering
    /// organisation — and every organisation later added to the care team —
    /// can read the patient.
    pub async fn patient(&self, token: &str, local_id: &str) -> String {
        let id = self.patient_without_consent(token, local_id).await;
        self.consent(token, &id, json!({ "scope": "NETWORK" }))
            .await;
        id
    }

    /// Records a consent for the patient, signed by the patient on a form;
    /// `extra` is merged into the input (`scope`, `organizationIds`,
    /// `excludedCategories`, `form` …). Returns `id`, `active` and `status`
    /// (a widening by an organisation the consent in force does not cover
    /// is `PENDING`).
    pub async fn consent(&self, token: &str, patient_id: &str, extra: Value) -> Value {
        let mut input = json!({
            "patientId": patient_id, "scope": "NETWORK", "method": "WRITTEN",
            "form": CONSENT_FORM.clone()
        });
        if let (Some(obj), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let data = self
            .ok(
                token,
                "mutation($i: RecordConsentInput!) { recordConsent(input: $i) { id active status } }",
                json!({ "i": input }),
            )
            .await;
        data["recordConsent"].clone()
    }

    /// Registers a patient without recording a consent.
    pub async fn patient_without_consent(&self, token: &str, local_id: &str) -> String {
        let data = self
            .ok(
                token,
                "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }",
                json!({ "i": {
                    "name": "連携 花子", "nameKana": "レンケイ ハナコ", "birthDate": "1940-05-01",
                    "sex": "FEMALE", "localId": local_id
                } }),
            )
            .await;
        data["registerPatient"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }
}

/// A signed form for `recordConsent`: the patient signed it on 2026-01-15.
pub static CONSENT_FORM: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
    || json!({ "reference": "同意書 2026-0001", "signedOn": "2026-01-15", "signedBy": "PATIENT" }),
);

/// The `extensions` of the errors at a response path such as `["patient", "phone"]`.
pub fn errors_at(body: &Value, path: &[&str]) -> Vec<Value> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter(|e| {
                    e["path"].as_array().is_some_and(|p| {
                        p.len() == path.len()
                            && p.iter().zip(path).all(|(a, b)| a.as_str() == Some(b))
                    })
                })
                .map(|e| e["extensions"].clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The first error's `extensions.code`, or `None` when there is no error.
pub fn error_code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_string)
}

/// A valid token for a member, signed with the test secret.
pub fn token_for(member_id: Uuid) -> String {
    signed_token(member_id, TEST_JWT_SECRET, "renkei", "renkei", 3600)
}

/// A token with chosen secret, issuer, audience and lifetime (negative: expired).
pub fn signed_token(
    member_id: Uuid,
    secret: &str,
    iss: &str,
    aud: &str,
    ttl_seconds: i64,
) -> String {
    let now = Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": member_id.to_string(), "iss": iss, "aud": aud, "iat": now, "exp": now + ttl_seconds }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// Creates the coordination centre and its network administrator the way an
/// operator does (`renkei add-admin`).
pub async fn bootstrap_admin(db: &DatabaseConnection) -> (Uuid, Uuid) {
    use renkei_schema::domain::Text;
    renkei_schema::services::members::unchecked_bootstrap_admin(
        db,
        Text::parse("org", "試験 連携支援センター", 200).expect("name"),
        Text::parse("name", "管理 者", 200).expect("name"),
    )
    .await
    .expect("bootstrap administrator")
}

/// The Redis URL tests may use (`RENKEI_TEST_REDIS_URL`, e.g.
/// `redis://127.0.0.1:6379`); tests that need Redis are skipped without it,
/// like the PostgreSQL runs. Each test uses a channel prefix of its own.
pub fn redis_url() -> Option<String> {
    std::env::var("RENKEI_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// A Redis channel prefix no other test uses.
pub fn redis_prefix() -> String {
    format!("renkei-test-{}", Uuid::new_v4().simple())
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A raw `graphql-transport-ws` socket to the hub at `addr`, not yet
/// initialised: for tests that send what a [`WsClient`] would not.
pub async fn ws_socket(addr: SocketAddr) -> WsStream {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .expect("a WebSocket request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket handshake")
        .0
}

/// Sends `connection_init` with `token` on a raw socket and waits for the
/// acknowledgement.
pub async fn ws_init(socket: &mut WsStream, token: &str) {
    use futures::{SinkExt, StreamExt};
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            init.to_string().into(),
        ))
        .await
        .expect("send connection_init");
    let ack = socket.next().await.expect("an answer").expect("a message");
    assert!(
        ack.to_text().unwrap_or_default().contains("connection_ack"),
        "{ack}"
    );
}

/// The code and reason of the close frame the hub sends on a raw socket
/// within 10 s, other messages skipped; panics without one.
pub async fn ws_closed_with(socket: &mut WsStream) -> (u16, String) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                return (frame.code.into(), frame.reason.to_string());
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no close frame with a code: {other:?}"),
        }
    }
}

/// A GraphQL-over-WebSocket client (`graphql-transport-ws`), enough for tests:
/// one connection, operations by id, messages read with a timeout.
pub struct WsClient {
    socket: WsStream,
    next_id: u64,
    /// The server closed the connection.
    closed: bool,
    /// The code of the server's close frame, if it sent one.
    close_code: Option<u16>,
}

/// How the server closed a WebSocket: the close frame's code and reason
/// (code 1006 when the connection ended without a close frame).
#[derive(Debug, Clone, PartialEq)]
pub struct WsClosed {
    pub code: u16,
    pub reason: String,
}

/// What the server said about one operation.
#[derive(Debug, Clone, PartialEq)]
pub enum WsMessage {
    /// A result: `{"data": …, "errors": …}`.
    Next(Value),
    /// The operation failed before it started (a list of errors).
    Error(Value),
    /// The operation is over.
    Complete,
}

impl TestApp {
    /// Opens `/graphql/ws` and initialises the connection with `payload`
    /// (e.g. `{"Authorization": "Bearer …"}`). Returns the client, or how
    /// the server closed the connection when it refused it.
    pub async fn ws_connect(&self, payload: Value) -> Result<WsClient, WsClosed> {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let mut socket = ws_socket(self.addr).await;
        socket
            .send(Message::Text(
                json!({ "type": "connection_init", "payload": payload })
                    .to_string()
                    .into(),
            ))
            .await
            .expect("send connection_init");
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("an answer to connection_init within 10 s");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON");
                    if v["type"] == "connection_ack" {
                        return Ok(WsClient {
                            socket,
                            next_id: 0,
                            closed: false,
                            close_code: None,
                        });
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame
                        .map(|f| WsClosed {
                            code: f.code.into(),
                            reason: f.reason.to_string(),
                        })
                        .unwrap_or(WsClosed {
                            code: 1005,
                            reason: String::new(),
                        }));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(WsClosed {
                        code: 1006,
                        reason: e.to_string(),
                    });
                }
                None => {
                    return Err(WsClosed {
                        code: 1006,
                        reason: String::new(),
                    });
                }
            }
        }
    }

    /// [`TestApp::ws_connect`] with a bearer token.
    pub async fn ws(&self, token: &str) -> WsClient {
        self.ws_connect(json!({ "Authorization": format!("Bearer {token}") }))
            .await
            .expect("the connection is accepted")
    }
}

impl WsClient {
    /// Starts an operation and returns its id.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        use futures::SinkExt;
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::Text(
                json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })
                    .to_string()
                    .into(),
            ))
            .await
            .expect("send subscribe");
        id
    }

    /// The next message about any operation, or `None` after `wait`
    /// (answering the server's pings meanwhile).
    pub async fn next_within(&mut self, wait: Duration) -> Option<(String, WsMessage)> {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.closed = true;
                    self.close_code = Some(frame.map_or(1005, |f| f.code.into()));
                    return None;
                }
                Ok(None) | Ok(Some(Err(_))) => {
                    self.closed = true;
                    return None;
                }
                Ok(Some(msg)) => msg,
            };
            let Ok(Message::Text(text)) = msg else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).expect("JSON");
            let id = v["id"].as_str().unwrap_or_default().to_string();
            match v["type"].as_str() {
                Some("next") => return Some((id, WsMessage::Next(v["payload"].clone()))),
                Some("error") => return Some((id, WsMessage::Error(v["payload"].clone()))),
                Some("complete") => return Some((id, WsMessage::Complete)),
                Some("ping") => {
                    let _ = self
                        .socket
                        .send(Message::Text(json!({ "type": "pong" }).to_string().into()))
                        .await;
                }
                _ => {}
            }
        }
    }

    /// The next message, which must come within 10 s.
    pub async fn next(&mut self) -> (String, WsMessage) {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("a message within 10 s")
    }

    /// The next message about operation `id` (skipping the others'), which
    /// must come within 10 s.
    pub async fn next_of(&mut self, id: &str) -> WsMessage {
        loop {
            let (got, message) = self.next().await;
            if got == id {
                return message;
            }
        }
    }

    /// Asserts that nothing arrives for `wait` — and that the connection is
    /// still open (a closed socket is not silence).
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(m) = self.next_within(wait).await {
            panic!("expected nothing, got {m:?}");
        }
        assert!(
            !self.closed,
            "expected silence, but the server closed the connection"
        );
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The code of the server's close frame, once it closed the connection
    /// with one.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }
}

impl TestApp {
    /// `GET /ready`'s body.
    pub async fn ready(&self) -> Value {
        self.client
            .get(self.url("/ready"))
            .send()
            .await
            .expect("GET /ready")
            .json()
            .await
            .expect("JSON")
    }

    /// Waits (up to 15 s) until `/ready` reports Redis as `state`.
    pub async fn wait_for_redis(&self, state: &str) {
        for _ in 0..150 {
            if self.ready().await["redis"] == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "Redis did not become {state:?} in 15 s: {}",
            self.ready().await
        );
    }
}

/// The folder of the third-party JavaScript clients, audits and gateways the
/// tests drive (`tests/js`, installed by `npm ci` there; `.ci/run` does it).
pub fn js_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Runs `node tests/js/SCRIPT ARGS…` with `ENV` added, and returns its exit
/// status with what it printed. Fails the test with the way out when the npm
/// packages are not installed: a test of a third-party client must not pass
/// without the client.
pub async fn run_node(
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String, String) {
    let dir = js_dir();
    assert!(
        dir.join("node_modules").is_dir(),
        "the npm packages of the tests are not installed: run `npm ci` in {} (Node.js ≥ 20)",
        dir.display()
    );
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run node {script}: {e} (is Node.js ≥ 20 installed?)"));
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
