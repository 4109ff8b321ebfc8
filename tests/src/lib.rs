//! The end-to-end test harness.
//!
//! Each test spawns the real server ([`renkei_server::Application`], the same
//! code `renkei serve` runs) on port 0 with a database of its own, and talks to
//! it over HTTP. Tests written with [`e2e!`] run twice: on SQLite (always) and
//! on PostgreSQL when `RENKEI_TEST_DATABASE_URL` names a server database the
//! tests may create databases from (e.g. `postgres://postgres@127.0.0.1:5432/test`);
//! each PostgreSQL test creates its own database and drops it afterwards.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use renkei_schema::clock::ManualClock;
use renkei_server::config::{AuthConfig, DatabaseConfig, PolicyConfig, RedisConfig, ServeConfig};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

/// The HS256 secret test servers are configured with.
pub const TEST_JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

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

/// A database that exists for one test and is removed afterwards.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
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
                (TestDatabase::Postgres { admin_url, name }, url)
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
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
    /// A network administrator of the coordination centre.
    pub admin_token: String,
    pub admin_org: Uuid,
    /// The database URL the server uses (for `renkei audit verify` and tamper tests).
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _database: TestDatabase,
}

/// Settings a test may change before the server starts.
pub fn test_config(database_url: String) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        demo: false,
        max_body_bytes: 64 * 1024,
        batch_window_micros: 1000,
        directory_cache_seconds: 30,
        database: DatabaseConfig {
            database_url,
            database_max_connections: 5,
        },
        auth: AuthConfig {
            jwt_secret: Some(TEST_JWT_SECRET.to_string()),
            jwt_public_key_file: None,
            jwt_algorithm: "RS256".into(),
            jwt_issuer: "renkei".into(),
            jwt_audience: "renkei".into(),
            api_key_cache_seconds: 60,
        },
        policy: PolicyConfig::default(),
        redis: RedisConfig::default(),
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let (database, url) = TestDatabase::create(backend).await;
        let mut config = test_config(url.clone());
        configure(&mut config);
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        let app = renkei_server::Application::build_with(
            config,
            clock.clone(),
            Some(Arc::new(move |_sql: &str| {
                counter.fetch_add(1, Ordering::Relaxed);
            })),
        )
        .await
        .expect("the application builds");
        let addr = app.local_addr();
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
            admin_token: token_for(admin_member),
            admin_org,
            database_url: url,
            shutdown: Some(tx),
            server: Some(server),
            _database: database,
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

    /// Records a consent for the patient; `extra` is merged into the input
    /// (`scope`, `organizationIds`, `excludedCategories` …).
    pub async fn consent(&self, token: &str, patient_id: &str, extra: Value) -> Value {
        let mut input = json!({
            "patientId": patient_id, "scope": "NETWORK", "method": "WRITTEN",
            "formReference": "同意書 2026-0001", "obtainedOn": "2026-01-15"
        });
        if let (Some(obj), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let data = self
            .ok(
                token,
                "mutation($i: RecordConsentInput!) { recordConsent(input: $i) { id active } }",
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
