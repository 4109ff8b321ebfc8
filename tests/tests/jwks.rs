//! Member tokens from an identity provider: keys from its JWKS
//! (`RENKEI_JWT_JWKS_URL`), rotated without a restart, fetched at a bounded
//! rate, kept through the provider's outages; and members found by their
//! subject at the provider (`RENKEI_JWT_MEMBER_BY=external-subject`).
//!
//! The identity provider is a small HTTP server inside each test, serving a
//! key set the test changes and counting how often it is fetched.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use renkei_server::config::{MemberBy, ServeConfig};
use renkei_tests::*;
use serde_json::{Value, json};
use uuid::Uuid;

const ME: &str = "{ me { kind member { id } } }";

// ---------------------------------------------------------------------------
// The identity provider.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Serves the key set.
    Up,
    /// Answers 503.
    Failing,
    /// Accepts the request and never answers.
    Hanging,
}

struct IdpState {
    document: Mutex<Value>,
    mode: Mutex<Mode>,
    cache_control: Mutex<Option<String>>,
    fetches: AtomicUsize,
}

async fn serve_jwks(State(state): State<Arc<IdpState>>) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = *state.mode.lock().unwrap();
    match mode {
        Mode::Up => {
            let body = state.document.lock().unwrap().to_string();
            let mut response = (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Some(cc) = state.cache_control.lock().unwrap().clone() {
                response
                    .headers_mut()
                    .insert(axum::http::header::CACHE_CONTROL, cc.parse().unwrap());
            }
            response
        }
        Mode::Failing => {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response()
        }
        Mode::Hanging => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            "too late".into_response()
        }
    }
}

struct Idp {
    addr: SocketAddr,
    state: Arc<IdpState>,
    shutdown: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Idp {
    async fn start(keys: &[&TestKey]) -> Idp {
        let state = Arc::new(IdpState {
            document: Mutex::new(json!({ "keys": [] })),
            mode: Mutex::new(Mode::Up),
            cache_control: Mutex::new(None),
            fetches: AtomicUsize::new(0),
        });
        let router = axum::Router::new()
            .route("/jwks", axum::routing::get(serve_jwks))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        let idp = Idp {
            addr,
            state,
            shutdown: Mutex::new(Some(tx)),
            server: Mutex::new(Some(server)),
        };
        idp.publish(keys);
        idp
    }

    fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// From now on the key set holds exactly these keys.
    fn publish(&self, keys: &[&TestKey]) {
        *self.state.document.lock().unwrap() =
            json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Stops listening and closes its connections: the provider is gone.
    async fn stop(&self) {
        if let Some(tx) = self.shutdown.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let server = self.server.lock().unwrap().take();
        if let Some(server) = server {
            tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .expect("the identity provider stops")
                .unwrap();
        }
    }
}

/// A signing key of the provider, with its public JWK.
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

impl TestKey {
    /// `rsa-1` or `rsa-2` of tests/fixtures, for RS256.
    fn rsa(kid: &str, which: u8) -> TestKey {
        let encoding =
            EncodingKey::from_rsa_pem(&fixture(&format!("rsa-{which}-private.pem"))).unwrap();
        Self::with(kid, Algorithm::RS256, encoding)
    }

    /// The Ed25519 key of tests/fixtures.
    fn ed(kid: &str) -> TestKey {
        let encoding = EncodingKey::from_ed_pem(&fixture("ed25519-private.pem")).unwrap();
        Self::with(kid, Algorithm::EdDSA, encoding)
    }

    fn with(kid: &str, alg: Algorithm, encoding: EncodingKey) -> TestKey {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk["use"] = "sig".into();
        TestKey {
            kid: kid.to_string(),
            alg,
            encoding,
            jwk,
        }
    }

    /// A token of these claims, naming this key.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A valid token whose subject is `sub`.
    fn token(&self, sub: &str) -> String {
        self.sign(&claims(sub))
    }
}

/// Claims the hub accepts: its issuer and audience, an hour to live.
fn claims(sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": sub, "iss": "renkei", "aud": "renkei", "iat": now, "exp": now + 3600 })
}

fn jwks_config(c: &mut ServeConfig, idp: &Idp) {
    c.auth.jwt_secret = None;
    c.auth.jwt_jwks_url = Some(idp.url());
    c.auth.jwt_jwks_algorithms = "RS256,EdDSA".into();
    c.auth.jwt_jwks_min_refresh_seconds = 1;
    c.auth.jwt_jwks_refresh_seconds = 300;
    c.auth.jwt_jwks_timeout_ms = 1000;
}

/// A hub trusting `idp`, and the id of an administrator.
async fn hub(
    backend: Backend,
    idp: &Idp,
    configure: impl FnOnce(&mut ServeConfig),
) -> (TestApp, Uuid) {
    let app = TestApp::spawn_with(backend, |c| {
        jwks_config(c, idp);
        configure(c)
    })
    .await;
    let (_, admin) = bootstrap_admin(&app.db).await;
    (app, admin)
}

async fn me(app: &TestApp, token: &str) -> (u16, Value) {
    app.post(Some(token), json!({ "query": ME })).await
}

#[track_caller]
fn assert_refused(answer: &(u16, Value), case: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 401, "{case}: {body}");
    assert_eq!(
        error_code(body).as_deref(),
        Some("UNAUTHENTICATED"),
        "{case}"
    );
    assert!(body.get("data").is_none(), "{case}: {body}");
}

/// Runs the `renkei` command line in this process.
async fn renkei(args: &[&str]) -> Result<(), String> {
    use clap::Parser;
    let cli = renkei_server::cli::Cli::try_parse_from(
        std::iter::once("renkei").chain(args.iter().copied()),
    )
    .map_err(|e| e.to_string())?;
    renkei_server::cli::run(cli)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// A test on SQLite and, when configured, PostgreSQL: the body gets the backend.
macro_rules! both {
    ($name:ident, |$backend:ident| $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $backend = Backend::Sqlite;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !postgres_configured() {
                    eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
                    return;
                }
                let $backend = Backend::Postgres;
                $body.await;
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Keys from the key set.

both!(
    tokens_signed_with_a_key_of_the_identity_provider_are_accepted_and_others_refused,
    |backend| async move {
        let rsa = TestKey::rsa("rsa-1", 1);
        let ed = TestKey::ed("ed-1");
        let idp = Idp::start(&[&rsa, &ed]).await;
        let (mut app, admin) = hub(backend, &idp, |_| {}).await;
        let admin = admin.to_string();

        for (case, token) in [("RS256", rsa.token(&admin)), ("EdDSA", ed.token(&admin))] {
            let (status, body) = me(&app, &token).await;
            assert_eq!(status, 200, "{case}: {body}");
            assert_eq!(body["data"]["me"]["member"]["id"], admin.as_str(), "{case}");
        }
        // The administrator works through the API with the provider's token.
        app.admin_token = rsa.token(&admin);
        let org = app.organization("CLINIC", "みなみ野クリニック").await;
        let (nurse, _) = app.member(&org, "NURSE").await;
        let (status, body) = me(&app, &ed.token(&nurse)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["me"]["member"]["id"], nurse.as_str());

        let now = chrono::Utc::now().timestamp();
        let stranger = TestKey::rsa("rsa-1", 2);
        let no_kid = {
            let header = Header::new(Algorithm::RS256);
            jsonwebtoken::encode(&header, &claims(&admin), &rsa.encoding).unwrap()
        };
        let ed_key_for_rsa = {
            // The Ed25519 key's id on an RS256 token.
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("ed-1".into());
            jsonwebtoken::encode(&header, &claims(&admin), &rsa.encoding).unwrap()
        };
        let cases = [
            (
                "expired",
                rsa.sign(&json!({ "sub": admin, "iss": "renkei", "aud": "renkei", "exp": now - 3600 })),
            ),
            (
                "not valid yet",
                rsa.sign(&json!({ "sub": admin, "iss": "renkei", "aud": "renkei", "nbf": now + 3600, "exp": now + 7200 })),
            ),
            (
                "another issuer",
                rsa.sign(&json!({ "sub": admin, "iss": "https://elsewhere", "aud": "renkei", "exp": now + 3600 })),
            ),
            (
                "another audience",
                rsa.sign(&json!({ "sub": admin, "iss": "renkei", "aud": "another-hub", "exp": now + 3600 })),
            ),
            (
                "no audience",
                rsa.sign(&json!({ "sub": admin, "iss": "renkei", "exp": now + 3600 })),
            ),
            (
                "a stranger's key under a known kid",
                stranger.token(&admin),
            ),
            ("no kid", no_kid),
            ("a key of another algorithm", ed_key_for_rsa),
            ("tampered", format!("{}x", rsa.token(&admin))),
            ("unknown member", rsa.token(&Uuid::now_v7().to_string())),
            ("not a member id", rsa.token("someone@example.jp")),
            ("the old HS256 test secret", token_for(admin.parse().unwrap())),
        ];
        for (case, token) in cases {
            assert_refused(&me(&app, &token).await, case);
        }
        app.stop().await;
        idp.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_accepted_and_a_removed_key_refused_without_a_restart() {
    let old = TestKey::rsa("2026-11", 1);
    let new = TestKey::rsa("2026-12", 2);
    let idp = Idp::start(&[&old]).await;
    let (app, admin) = hub(Backend::Sqlite, &idp, |_| {}).await;
    let admin = admin.to_string();
    assert_eq!(me(&app, &old.token(&admin)).await.0, 200);
    assert_eq!(idp.fetches(), 1, "fetched once, at start");

    // The provider rotates: the new key in, the old one out.
    idp.publish(&[&new]);
    // The rate limit (1 s here) has passed since the first fetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = me(&app, &new.token(&admin)).await;
    assert_eq!(status, 200, "the new key, without a restart: {body}");
    assert_eq!(idp.fetches(), 2, "one fetch for the unknown key");
    assert_refused(
        &me(&app, &old.token(&admin)).await,
        "the removed key, after the refresh",
    );
    app.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_key_stops_working_when_the_providers_max_age_has_passed() {
    let old = TestKey::rsa("old", 1);
    let new = TestKey::rsa("new", 2);
    let idp = Idp::start(&[&old, &new]).await;
    // The operator's bound is five minutes; the provider says one second.
    *idp.state.cache_control.lock().unwrap() = Some("public, max-age=1".into());
    let (app, admin) = hub(Backend::Sqlite, &idp, |_| {}).await;
    let admin = admin.to_string();
    assert_eq!(me(&app, &old.token(&admin)).await.0, 200);

    idp.publish(&[&new]);
    // No token asks for a fetch: the periodic refresh removes the key.
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.fetches() < 2 {
        assert!(
            Instant::now() < deadline,
            "no refresh after max-age=1 (fetches: {})",
            idp.fetches()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fetches = idp.fetches();
    assert_refused(&me(&app, &old.token(&admin)).await, "the removed key");
    assert_eq!(me(&app, &new.token(&admin)).await.0, 200);
    assert!(
        idp.fetches() <= fetches + 1,
        "at most one more fetch, for the removed key's id"
    );
    app.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_ids_do_not_hammer_the_identity_provider() {
    let key = TestKey::rsa("real", 1);
    let forger = TestKey::rsa("unused", 2);
    let idp = Idp::start(&[&key]).await;
    let started = Instant::now();
    let (app, admin) = hub(Backend::Sqlite, &idp, |c| {
        c.auth.jwt_jwks_min_refresh_seconds = 2;
    })
    .await;
    let admin = admin.to_string();
    let flood_started = Instant::now();

    // 60 tokens, each naming a key id of its own, all at once.
    let answers = futures::future::join_all((0..60).map(|n| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("made-up-{n}"));
        let token = jsonwebtoken::encode(&header, &claims(&admin), &forger.encoding).unwrap();
        let app = &app;
        async move { me(app, &token).await }
    }))
    .await;
    let flood = flood_started.elapsed();
    for answer in &answers {
        assert_refused(answer, "an unknown kid");
    }
    // The fetch they asked for is 2 s away: nobody waited for it.
    assert!(
        flood < Duration::from_secs(5),
        "the flood was answered in {flood:?}"
    );
    // Real tokens are served meanwhile.
    assert_eq!(me(&app, &key.token(&admin)).await.0, 200);

    tokio::time::sleep(Duration::from_millis(3000)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let fetches = idp.fetches();
    // One at start, then at most one per 2 s while asked.
    let bound = 1 + (elapsed / 2.0).ceil() as usize;
    assert!(
        (2..=bound).contains(&fetches),
        "{fetches} fetches in {elapsed:.1} s for 60 unknown key ids (at most {bound})"
    );
    app.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_keep_working_while_the_identity_provider_is_unreachable() {
    let key = TestKey::rsa("k1", 1);
    let later = TestKey::rsa("k2", 2);
    let idp = Idp::start(&[&key]).await;
    let (app, admin) = hub(Backend::Sqlite, &idp, |_| {}).await;
    let admin = admin.to_string();
    assert_eq!(me(&app, &key.token(&admin)).await.0, 200);

    // Failing, then gone altogether (connection refused).
    idp.set_mode(Mode::Failing);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_refused(&me(&app, &later.token(&admin)).await, "an unknown key");
    assert!(idp.fetches() >= 2, "the failing provider was asked");
    let (status, body) = me(&app, &key.token(&admin)).await;
    assert_eq!(status, 200, "the cached key after a failed fetch: {body}");

    idp.stop().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let asked = Instant::now();
    assert_refused(&me(&app, &later.token(&admin)).await, "an unknown key");
    assert!(asked.elapsed() < Duration::from_secs(3));
    // The failed fetch has finished: the cached key still holds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = me(&app, &key.token(&admin)).await;
    assert_eq!(status, 200, "the cached key, provider gone: {body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_identity_provider_delays_a_request_no_longer_than_the_timeout() {
    let key = TestKey::rsa("k1", 1);
    let later = TestKey::rsa("k2", 2);
    let idp = Idp::start(&[&key]).await;
    let (app, admin) = hub(Backend::Sqlite, &idp, |c| {
        c.auth.jwt_jwks_timeout_ms = 1000;
    })
    .await;
    let admin = admin.to_string();
    idp.set_mode(Mode::Hanging);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (unknown, known) = tokio::join!(
        async {
            let asked = Instant::now();
            (me(&app, &later.token(&admin)).await, asked.elapsed())
        },
        async {
            // While the fetch the first request asked for hangs.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let asked = Instant::now();
            (me(&app, &key.token(&admin)).await, asked.elapsed())
        }
    );
    assert_refused(&unknown.0, "an unknown key");
    assert!(
        unknown.1 >= Duration::from_millis(900) && unknown.1 < Duration::from_millis(2000),
        "the request waited {:?} for a provider that never answers (timeout 1 s)",
        unknown.1
    );
    // A known key does not wait for the fetch.
    assert_eq!(known.0.0, 200, "{}", known.0.1);
    assert!(
        known.1 < Duration::from_millis(800),
        "a known key waited {:?}",
        known.1
    );
    app.stop().await;
    // (The provider's hanging answers end with the test's runtime.)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_started_while_the_identity_provider_is_down_refuses_tokens_until_it_answers() {
    let key = TestKey::rsa("k1", 1);
    let idp = Idp::start(&[&key]).await;
    idp.set_mode(Mode::Failing);
    // The hub starts: health checks, API keys and the rest do not depend on
    // the identity provider.
    let (app, admin) = hub(Backend::Sqlite, &idp, |_| {}).await;
    let admin = admin.to_string();
    let health = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let answer = me(&app, &key.token(&admin)).await;
    assert_refused(&answer, "no keys yet");
    assert!(
        answer.1["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not available yet"),
        "{}",
        answer.1
    );

    idp.set_mode(Mode::Up);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = me(&app, &key.token(&admin)).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after the provider came back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn algorithm_confusion_and_unsigned_tokens_are_refused() {
    let rsa = TestKey::rsa("rsa-1", 1);
    let ed = TestKey::ed("ed-1");
    let secret = b"a-shared-secret-published-by-mistake-0123456789";
    let idp = Idp::start(&[&rsa, &ed]).await;
    // A symmetric key in the public set must not become a way to sign.
    {
        let mut document = idp.state.document.lock().unwrap();
        document["keys"].as_array_mut().unwrap().push(json!({
            "kty": "oct", "kid": "shared", "alg": "HS256",
            "k": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        }));
    }
    let (app, admin) = hub(Backend::Sqlite, &idp, |_| {}).await;
    let admin = admin.to_string();
    assert_eq!(me(&app, &rsa.token(&admin)).await.0, 200);

    let hs256 = |kid: &str, key: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims(&admin), &EncodingKey::from_secret(key)).unwrap()
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.",
            b64(&json!({ "alg": alg, "typ": "JWT", "kid": "rsa-1" })),
            b64(&claims(&admin))
        )
    };
    let public_pem = fixture("rsa-1-public.pem");
    let cases = [
        (
            "HS256 over the RSA public key (PEM)",
            hs256("rsa-1", &public_pem),
        ),
        (
            "HS256 over the RSA public JWK",
            hs256("rsa-1", rsa.jwk.to_string().as_bytes()),
        ),
        ("HS256 over the Ed25519 public key", {
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(ed.jwk["x"].as_str().unwrap())
                .unwrap();
            hs256("ed-1", &x)
        }),
        ("HS256 with the published oct key", hs256("shared", secret)),
        ("alg none", unsigned("none")),
        ("alg None", unsigned("None")),
        ("RS256 named but unsigned", unsigned("RS256")),
    ];
    for (case, token) in cases {
        assert_refused(&me(&app, &token).await, case);
    }
    app.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn algorithms_not_configured_are_refused_even_with_a_published_key() {
    let rsa = TestKey::rsa("rsa-1", 1);
    let ed = TestKey::ed("ed-1");
    let idp = Idp::start(&[&rsa, &ed]).await;
    let (app, admin) = hub(Backend::Sqlite, &idp, |c| {
        c.auth.jwt_jwks_algorithms = "EdDSA".into();
    })
    .await;
    let admin = admin.to_string();
    assert_eq!(me(&app, &ed.token(&admin)).await.0, 200);
    assert_refused(&me(&app, &rsa.token(&admin)).await, "RS256, not configured");
    app.stop().await;
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_identity_provider_settings_fail_at_start() {
    let key = TestKey::rsa("k1", 1);
    let idp = Idp::start(&[&key]).await;
    /// What is wrong, how, and what the error says.
    type Case = (&'static str, Box<dyn Fn(&mut ServeConfig)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "with a secret",
            Box::new(|c| c.auth.jwt_secret = Some(TEST_JWT_SECRET.into())),
            "configure one way",
        ),
        (
            "with a public key file",
            Box::new(|c| {
                c.auth.jwt_public_key_file =
                    Some(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/rsa-1-public.pem").into())
            }),
            "configure one way",
        ),
        (
            "HS256",
            Box::new(|c| c.auth.jwt_jwks_algorithms = "RS256,HS256".into()),
            "HS256 is symmetric",
        ),
        (
            "none",
            Box::new(|c| c.auth.jwt_jwks_algorithms = "none".into()),
            "never accepted",
        ),
        (
            "an unknown algorithm",
            Box::new(|c| c.auth.jwt_jwks_algorithms = "RS257".into()),
            "unknown algorithm",
        ),
        (
            "plain http elsewhere",
            Box::new(|c| c.auth.jwt_jwks_url = Some("http://idp.example.jp/jwks".into())),
            "must be https",
        ),
        (
            "not a URL",
            Box::new(|c| c.auth.jwt_jwks_url = Some("idp.example.jp/jwks".into())),
            "is not a URL",
        ),
        (
            "no rate limit",
            Box::new(|c| c.auth.jwt_jwks_min_refresh_seconds = 0),
            "MIN_REFRESH_SECONDS must be at least 1",
        ),
        (
            "refresh below the rate limit",
            Box::new(|c| {
                c.auth.jwt_jwks_min_refresh_seconds = 60;
                c.auth.jwt_jwks_refresh_seconds = 30;
            }),
            "REFRESH_SECONDS (30) must be at least",
        ),
        (
            "no timeout",
            Box::new(|c| c.auth.jwt_jwks_timeout_ms = 0),
            "TIMEOUT_MS must be between",
        ),
        (
            "an endless timeout",
            Box::new(|c| c.auth.jwt_jwks_timeout_ms = 120_000),
            "TIMEOUT_MS must be between",
        ),
        (
            "no member claim",
            Box::new(|c| c.auth.jwt_member_claim = " ".into()),
            "RENKEI_JWT_MEMBER_CLAIM is empty",
        ),
    ];
    for (case, configure, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("renkei.db").display()
        ));
        jwks_config(&mut config, &idp);
        configure(&mut config);
        let error = match renkei_server::Application::build(config).await {
            Ok(_) => panic!("{case}: the hub started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(error.contains(expected), "{case}: {error}");
    }
    assert_eq!(
        idp.fetches(),
        0,
        "no bad configuration reached the provider"
    );
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_connection_authenticates_with_the_identity_providers_token() {
    let key = TestKey::ed("ed-1");
    let stranger = TestKey::rsa("ed-1", 2);
    let idp = Idp::start(&[&key]).await;
    let (app, admin) = hub(Backend::Sqlite, &idp, |_| {}).await;
    let admin = admin.to_string();
    let mut ws = app.ws(&key.token(&admin)).await;
    let id = ws.subscribe(ME, json!({})).await;
    match ws.next_of(&id).await {
        WsMessage::Next(body) => assert_eq!(body["data"]["me"]["member"]["id"], admin.as_str()),
        other => panic!("{other:?}"),
    }
    let refused = app
        .ws_connect(json!({ "Authorization": format!("Bearer {}", stranger.token(&admin)) }))
        .await;
    assert!(refused.is_err(), "a stranger's key under a known kid");
    app.stop().await;
    idp.stop().await;
}

// ---------------------------------------------------------------------------
// Members by their subject at the identity provider.

/// An administrator whose subject at the provider is `subject`, made the
/// way `renkei add-admin --external-subject` makes one.
async fn admin_with_subject(
    app: &TestApp,
    subject: &str,
) -> Result<(Uuid, Uuid), renkei_schema::error::ApiError> {
    use renkei_schema::domain::{ExternalSubject, Text};
    renkei_schema::services::members::unchecked_bootstrap_admin_with(
        &app.db,
        Text::parse("org", "試験 連携支援センター", 200).unwrap(),
        Text::parse("name", "管理 二郎", 200).unwrap(),
        Some(renkei_schema::services::members::ExternalIdentity {
            issuer: "renkei".into(),
            subject: ExternalSubject::parse("subject", subject).unwrap(),
        }),
    )
    .await
}

const SET_SUBJECT: &str = "mutation($m: ID!, $s: String) { setMemberExternalSubject(memberId: $m, externalSubject: $s) { id externalSubject } }";
const SUBJECT_OF: &str = "query($m: ID!) { member(id: $m) { id externalSubject } }";

both!(
    members_are_found_by_their_subject_at_the_identity_provider,
    |backend| async move {
        let key = TestKey::rsa("k1", 1);
        let idp = Idp::start(&[&key]).await;
        let (mut app, _) = hub(backend, &idp, |c| {
            c.auth.jwt_member_by = MemberBy::ExternalSubject;
            c.auth.jwt_member_claim = "preferred_username".into();
        })
        .await;
        // As the provider sends it: `sub` is the provider's own id, the
        // configured claim names the member.
        let token = |username: &str| {
            let mut c = claims("f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
            c["preferred_username"] = username.into();
            key.sign(&c)
        };

        // The first administrator, as `renkei add-admin --external-subject`
        // makes it (the command itself, which runs as the database owner, is
        // tried in `a_subject_of_another_issuer_names_no_member`).
        admin_with_subject(&app, "admin@idp.example.jp")
            .await
            .unwrap();
        let conflict = admin_with_subject(&app, "admin@idp.example.jp")
            .await
            .unwrap_err();
        assert_eq!(conflict.code(), "CONFLICT");

        app.admin_token = token("admin@idp.example.jp");
        let (status, body) = me(&app, &app.admin_token).await;
        assert_eq!(status, 200, "{body}");
        let admin = body["data"]["me"]["member"]["id"]
            .as_str()
            .unwrap()
            .to_string();

        let org = app
            .organization("VISITING_NURSE_STATION", "みなみ野訪問看護ステーション")
            .await;
        let (nurse, _) = app.member(&org, "NURSE").await;
        let (colleague, _) = app.member(&org, "NURSE").await;
        // Not recorded yet, and a member id in the claim is not a subject.
        assert_refused(
            &me(&app, &token("kango@idp.example.jp")).await,
            "unrecorded subject",
        );
        assert_refused(&me(&app, &token(&nurse)).await, "a member id as subject");
        let mut no_claim = claims("f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
        no_claim["email"] = "kango@idp.example.jp".into();
        assert_refused(&me(&app, &key.sign(&no_claim)).await, "no member claim");

        let data = app
            .ok(
                &app.admin_token,
                SET_SUBJECT,
                json!({ "m": nurse, "s": "kango@idp.example.jp" }),
            )
            .await;
        assert_eq!(
            data["setMemberExternalSubject"]["externalSubject"],
            "kango@idp.example.jp"
        );
        let nurse_token = token("kango@idp.example.jp");
        let (status, body) = me(&app, &nurse_token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["me"]["member"]["id"], nurse.as_str());
        // Exactly, not case-folded.
        assert_refused(
            &me(&app, &token("KANGO@idp.example.jp")).await,
            "another case",
        );

        // One subject is one person.
        let body = app
            .gql(
                &app.admin_token,
                SET_SUBJECT,
                json!({ "m": colleague, "s": "kango@idp.example.jp" }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        for bad in ["", " kango", "a\nb", &"x".repeat(256)] {
            let body = app
                .gql(
                    &app.admin_token,
                    SET_SUBJECT,
                    json!({ "m": colleague, "s": bad }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{bad:?}: {body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], "externalSubject");
        }
        let body = app
            .gql(
                &app.admin_token,
                SET_SUBJECT,
                json!({ "m": Uuid::now_v7().to_string(), "s": "nobody" }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");

        // Only administrators record subjects; a member reads their own.
        let body = app
            .gql(
                &nurse_token,
                SET_SUBJECT,
                json!({ "m": nurse, "s": "someone-else" }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let own = app
            .ok(&nurse_token, SUBJECT_OF, json!({ "m": nurse }))
            .await;
        assert_eq!(own["member"]["externalSubject"], "kango@idp.example.jp");
        let other = app
            .gql(&nurse_token, SUBJECT_OF, json!({ "m": admin }))
            .await;
        assert_eq!(
            other["data"]["member"]["id"],
            admin.as_str(),
            "the rest is delivered"
        );
        assert!(other["data"]["member"]["externalSubject"].is_null());
        assert_eq!(error_code(&other).as_deref(), Some("FORBIDDEN"), "{other}");
        let seen = app
            .ok(&app.admin_token, SUBJECT_OF, json!({ "m": nurse }))
            .await;
        assert_eq!(seen["member"]["externalSubject"], "kango@idp.example.jp");

        // The subject moves to the colleague: from the next request on it
        // names the colleague, and the nurse's token no longer holds.
        app.ok(
            &app.admin_token,
            SET_SUBJECT,
            json!({ "m": nurse, "s": null }),
        )
        .await;
        assert_refused(&me(&app, &nurse_token).await, "a cleared subject");
        app.ok(
            &app.admin_token,
            SET_SUBJECT,
            json!({ "m": colleague, "s": "kango@idp.example.jp" }),
        )
        .await;
        let (status, body) = me(&app, &nurse_token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["me"]["member"]["id"], colleague.as_str());

        // A suspended member's subject is refused like their id would be.
        app.ok(
            &app.admin_token,
            "mutation($m: ID!) { setMemberStatus(memberId: $m, status: SUSPENDED) { id } }",
            json!({ "m": colleague }),
        )
        .await;
        assert_refused(&me(&app, &nurse_token).await, "a suspended member");
        app.stop().await;
        idp.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_of_another_issuer_names_no_member() {
    // A subject recorded while the hub trusted another provider does not
    // name the member for this one: subjects are unique per issuer.
    let key = TestKey::rsa("k1", 1);
    let idp = Idp::start(&[&key]).await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        jwks_config(c, &idp);
        c.auth.jwt_member_by = MemberBy::ExternalSubject;
    })
    .await;
    renkei(&[
        "add-admin",
        "--organization-name",
        "試験 連携支援センター",
        "--name",
        "管理 三郎",
        "--external-subject",
        "admin-1",
        "--jwt-issuer",
        "https://old-idp.example.jp",
        "--database-url",
        &app.database_url,
    ])
    .await
    .unwrap();
    assert_refused(
        &me(&app, &key.token("admin-1")).await,
        "another issuer's subject",
    );
    // Bad subjects and taken ones stop the command with a message.
    let url = app.database_url.as_str();
    let add_admin = |subject: &'static str| async move {
        renkei(&[
            "add-admin",
            "--organization-name",
            "試験 連携支援センター",
            "--name",
            "管理 五郎",
            "--external-subject",
            subject,
            "--jwt-issuer",
            "https://old-idp.example.jp",
            "--database-url",
            url,
        ])
        .await
    };
    let taken = add_admin("admin-1").await.unwrap_err();
    assert!(
        taken.contains("already belongs to another member"),
        "{taken}"
    );
    let spaced = add_admin(" admin-2").await.unwrap_err();
    assert!(spaced.contains("spaces"), "{spaced}");
    // The same subject at this hub's issuer is another identity: allowed.
    renkei(&[
        "add-admin",
        "--organization-name",
        "試験 連携支援センター",
        "--name",
        "管理 四郎",
        "--external-subject",
        "admin-1",
        "--jwt-issuer",
        "renkei",
        "--database-url",
        &app.database_url,
    ])
    .await
    .unwrap();
    let (status, body) = me(&app, &key.token("admin-1")).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
    idp.stop().await;
}
