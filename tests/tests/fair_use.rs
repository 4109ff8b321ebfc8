//! Fair use: rate limits per member, organisation and API key (HTTP 429
//! `RATE_LIMITED` with `Retry-After`; an `error` message on WebSocket),
//! shared by instances through Redis and kept by each instance while Redis
//! is down or frozen; and the bounds on query documents — size (413
//! `QUERY_TOO_LARGE`), aliases (`QUERY_TOO_COMPLEX`) and how much of a bad
//! query an error quotes.
//!
//! The harness switches rate limits off; these tests switch them on with
//! small buckets. The Redis tests run when `RENKEI_TEST_REDIS_URL` is set
//! (and start a `redis-server` of their own for the outage).

use std::time::{Duration, Instant};

use renkei_server::config::ServeConfig;
use renkei_server::rate_limit::RateLimitConfig;
use renkei_tests::*;
use serde_json::{Value, json};

const ME: &str = "{ me { kind } }";

/// Rate limits on: `(per second, burst)` for members, organisations and
/// API keys, read the way `renkei serve` reads its flags.
fn limits(member: (f64, u32), organization: (f64, u32), api_key: (f64, u32)) -> RateLimitConfig {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        limits: RateLimitConfig,
    }
    let mut args = vec!["renkei".to_string()];
    for (scope, (rate, burst)) in [
        ("member", member),
        ("organization", organization),
        ("api-key", api_key),
    ] {
        args.push(format!("--rate-limit-{scope}-per-second={rate}"));
        args.push(format!("--rate-limit-{scope}-burst={burst}"));
    }
    Cli::parse_from(args).limits
}

/// POSTs `{ me { kind } }`; returns the status, `Retry-After` and body.
async fn me(app: &TestApp, token: &str) -> (u16, Option<String>, Value) {
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, res.json().await.expect("JSON"))
}

async fn assert_allowed(app: &TestApp, token: &str) {
    let (status, _, body) = me(app, token).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}

/// Asserts a 429 with `RATE_LIMITED`, the scope and a `Retry-After` of
/// whole seconds, which it returns.
async fn assert_limited(app: &TestApp, token: &str, scope: &str) -> u64 {
    let (status, retry_after, body) = me(app, token).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["scope"], scope, "{body}");
    assert!(body.get("data").is_none(), "{body}");
    let seconds: u64 = retry_after
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(seconds >= 1);
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], seconds);
    seconds
}

/// A member of a new organisation (registered by the admin).
async fn doctor(app: &TestApp, org: &str) -> String {
    app.member(org, "PHYSICIAN").await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_organisation_and_api_key_has_a_bucket_of_its_own() {
    // Slow refill (one token every 2 s): what the test spends stays spent.
    let app = spawn_limited(limits((0.5, 6), (0.5, 8), (0.5, 3))).await;
    // The admin's five setup requests fit in its own bucket of six.
    let clinic = app.organization("CLINIC", "流山連携クリニック").await;
    let pharmacy = app.organization("PHARMACY", "流山連携薬局").await;
    let a = doctor(&app, &clinic).await;
    let b = doctor(&app, &clinic).await;
    let created = app
        .ok(
            &app.admin_token,
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
            json!({ "i": { "organizationId": pharmacy, "name": "調剤システム",
                "permissions": [{ "category": "IDENTITY", "level": "READ" }] } }),
        )
        .await;
    let key = created["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_string();

    // Member A: six, then its own bucket is empty.
    for _ in 0..6 {
        assert_allowed(&app, &a).await;
    }
    assert_eq!(assert_limited(&app, &a, "MEMBER").await, 2);
    // Member B, same clinic: its own bucket is full, but the clinic's
    // (eight) has two left.
    assert_allowed(&app, &b).await;
    assert_allowed(&app, &b).await;
    assert_limited(&app, &b, "ORGANIZATION").await;
    // The pharmacy's system: a bucket of its own key.
    for _ in 0..3 {
        assert_allowed(&app, &key).await;
    }
    assert_limited(&app, &key, "API_KEY").await;
    // The admin (another organisation) is not affected.
    assert_eq!(me(&app, &app.admin_token).await.0, 200);
    // The printable emergency sheet counts against the same buckets.
    let sheet = app
        .client
        .get(app.url(&format!("/patients/{}/emergency-sheet", uuid::Uuid::nil())))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(sheet.status(), 429);
    let retry_after: u64 = sheet.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");

    // Over WebSocket, an operation over the limit gets an `error` message
    // and the connection stays open.
    let mut ws = app.ws(&a).await;
    let id = ws.subscribe(ME, json!({})).await;
    match ws.next_of(&id).await {
        WsMessage::Error(errors) => {
            assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED", "{errors}");
            assert_eq!(errors[0]["extensions"]["scope"], "MEMBER", "{errors}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    ws.expect_silence(Duration::from_millis(200)).await;
    app.stop().await;
}

/// A hub (on SQLite: the limits do not touch the database) with these limits.
async fn spawn_limited(limits: RateLimitConfig) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, move |c| c.rate_limit = limits).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_limit_requests_pass_and_an_empty_bucket_refills() {
    // Five tokens a second, two at once.
    let app = spawn_limited(limits((5.0, 2), (1000.0, 1000), (5.0, 2))).await;
    let clinic = app.organization("CLINIC", "柏連携クリニック").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = doctor(&app, &clinic).await;
    assert_allowed(&app, &a).await;
    assert_allowed(&app, &a).await;
    assert_eq!(assert_limited(&app, &a, "MEMBER").await, 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_allowed(&app, &a).await;
    assert_limited(&app, &a, "MEMBER").await;

    // The same bucket over WebSocket.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let mut ws = app.ws(&a).await;
    for expected in ["next", "next", "error"] {
        let id = ws.subscribe(ME, json!({})).await;
        let got = ws.next_of(&id).await;
        match (expected, &got) {
            ("next", WsMessage::Next(body)) => assert!(body.get("errors").is_none(), "{body}"),
            ("error", WsMessage::Error(errors)) => {
                assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED")
            }
            _ => panic!("expected {expected}, got {got:?}"),
        }
        if expected == "next" {
            assert_eq!(ws.next_of(&id).await, WsMessage::Complete);
        }
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let id = ws.subscribe(ME, json!({})).await;
    assert!(matches!(ws.next_of(&id).await, WsMessage::Next(_)));
    app.stop().await;
}

/// A `redis-server` of this test's own, which it can freeze (SIGSTOP).
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Owned at once, so that Drop stops it whatever happens next.
        let redis = OwnRedis {
            port,
            child: std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server on the PATH"),
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends requests until the hub has connected its limiter to Redis (the
/// connection is made in the background on the first request).
async fn warm_up(app: &TestApp) {
    me(app, &app.admin_token).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_buckets_through_redis() {
    let Some(redis) = redis_url() else {
        eprintln!("skipped: RENKEI_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = redis_prefix();
    let configure = |c: &mut ServeConfig| {
        c.redis.redis_url = Some(redis.clone());
        c.redis.redis_prefix = prefix.clone();
        c.rate_limit = limits((0.2, 4), (1000.0, 1000), (0.2, 4));
    };
    let a = TestApp::spawn_with(Backend::Sqlite, configure).await;
    let b = a.spawn_peer(configure).await;
    let clinic = a.organization("CLINIC", "我孫子連携クリニック").await;
    let doctor = doctor(&a, &clinic).await;
    warm_up(&a).await;
    warm_up(&b).await;
    // Redis forgets the script (as after a restart): the instances run it
    // again with EVAL instead of falling back to buckets of their own.
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut con)
        .await
        .unwrap();
    // Four tokens, spent on both instances: each alone would allow four.
    assert_allowed(&a, &doctor).await;
    assert_allowed(&b, &doctor).await;
    assert_allowed(&a, &doctor).await;
    assert_allowed(&b, &doctor).await;
    assert_limited(&b, &doctor, "MEMBER").await;
    assert_limited(&a, &doctor, "MEMBER").await;
    // The buckets are under the hub's prefix.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:rate:*"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{prefix}:rate:member:"))),
        "{keys:?}"
    );
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .unwrap();
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_frozen_or_gone_each_instance_still_limits_and_stays_fast() {
    if redis_url().is_none() {
        eprintln!("skipped: RENKEI_TEST_REDIS_URL is not set");
        return;
    }
    let redis = OwnRedis::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.redis.redis_url = Some(url.clone());
        c.rate_limit = limits((0.2, 3), (1000.0, 1000), (0.2, 3));
    })
    .await;
    let clinic = app.organization("CLINIC", "松戸連携クリニック").await;
    let doctor = doctor(&app, &clinic).await;
    warm_up(&app).await;

    // Frozen: Redis accepts nothing and answers nothing.
    redis.signal("-STOP");
    let mut slowest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        assert_allowed(&app, &doctor).await;
        slowest = slowest.max(started.elapsed());
    }
    let started = Instant::now();
    assert_limited(&app, &doctor, "MEMBER").await;
    slowest = slowest.max(started.elapsed());
    assert!(
        slowest < Duration::from_millis(400),
        "a request waited {slowest:?} on a frozen Redis"
    );

    // Gone: killed outright; the local buckets go on limiting, quickly.
    drop(redis);
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..5 {
        let started = Instant::now();
        let (status, _, _) = me(&app, &doctor).await;
        assert_eq!(status, 429);
        assert!(started.elapsed() < Duration::from_millis(400));
    }
    app.stop().await;
}

/// Aliased copies of `{ me { kind } }`.
fn aliased(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("m{i}: me {{ kind }}")).collect();
    format!("{{ {} }}", fields.join(" "))
}

e2e!(
    up_to_a_hundred_aliases_are_answered_and_more_are_refused,
    |app| async move {
        let body = app.gql(&app.admin_token, &aliased(100), json!({})).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["m99"]["kind"], "MEMBER");

        for query in [
            aliased(101),
            // Counted where the fragment is spread: 2 × 51.
            format!(
                "query {{ ...F ...F }} fragment F on Query {{ {} }}",
                (0..51)
                    .map(|i| format!("f{i}: me {{ kind }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            // What passed before: 1,000 aliases of `patient { name }`.
            format!(
                "query($id: ID!) {{ {} }}",
                (0..1000)
                    .map(|i| format!("p{i}: patient(id: $id) {{ name }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ] {
            let variables = json!({ "id": uuid::Uuid::nil() });
            let body = app.gql(&app.admin_token, &query, variables).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("QUERY_TOO_COMPLEX"),
                "{body}"
            );
            assert!(body["data"].is_null(), "{body}");
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_over_the_size_limit_is_refused_with_413_by_post_get_and_websocket() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.max_query_bytes = 2048).await;
    let padded = format!("{{ me {{ kind }} }} # {}", "x".repeat(2100));
    // Just under the limit still runs.
    let fits = format!("{{ me {{ kind }} }} #{}", "x".repeat(2048 - 17));
    assert_eq!(fits.len(), 2048);
    app.ok(&app.admin_token, &fits, json!({})).await;

    let (status, body) = app
        .post(Some(&app.admin_token), json!({ "query": padded }))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("QUERY_TOO_LARGE"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("RENKEI_MAX_QUERY_BYTES")
    );

    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", padded.as_str())])
        .bearer_auth(&app.admin_token)
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body).as_deref(), Some("QUERY_TOO_LARGE"));

    let mut ws = app.ws(&app.admin_token).await;
    let id = ws.subscribe(&padded, json!({})).await;
    match ws.next_of(&id).await {
        WsMessage::Error(errors) => {
            assert_eq!(
                errors[0]["extensions"]["code"], "QUERY_TOO_LARGE",
                "{errors}"
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let id = ws.subscribe(ME, json!({})).await;
    assert!(matches!(ws.next_of(&id).await, WsMessage::Next(_)));
    app.stop().await;
}

e2e!(
    errors_quote_a_bounded_part_of_a_bad_query,
    |app| async move {
        let long = "x".repeat(50_000);
        for (query, code) in [
            // A syntax error shows the line it is on.
            (
                format!("{{ patient(id: \"{long}\") {{ name "),
                "GRAPHQL_PARSE_FAILED",
            ),
            // An unknown field is named.
            (
                format!("{{ me {{ kind }} {long} }}"),
                "GRAPHQL_VALIDATION_FAILED",
            ),
            // A bad value is quoted.
            (
                format!("{{ organizations(first: \"{long}\") {{ edges {{ cursor }} }} }}"),
                "BAD_USER_INPUT",
            ),
        ] {
            let body = app.gql(&app.admin_token, &query, json!({})).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some(code),
                "{:.400}",
                body.to_string()
            );
            let text = body.to_string();
            assert!(
                text.len() < 2_000,
                "the error is {} bytes: {:.400}",
                text.len(),
                text
            );
        }
    }
);

/// The operator sees refusals: each 429 (HTTP) and each refused `subscribe`
/// (WebSocket) is counted in `/metrics` by scope and transport, and the
/// request's outcome is RATE_LIMITED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_are_counted_in_the_metrics() {
    const TOKEN: &str = "metrics-token-for-the-fair-use-test";
    let limits = limits((0.5, 2), (1000.0, 1000), (0.5, 2));
    let app = TestApp::spawn_with(Backend::Sqlite, move |c| {
        c.rate_limit = limits;
        c.metrics.metrics_token = Some(TOKEN.into());
    })
    .await;
    let clinic = app.organization("CLINIC", "計測クリニック").await;
    let a = doctor(&app, &clinic).await;
    assert_allowed(&app, &a).await;
    assert_allowed(&app, &a).await;
    assert_limited(&app, &a, "MEMBER").await;
    assert_limited(&app, &a, "MEMBER").await;
    let mut ws = app.ws(&a).await;
    let id = ws.subscribe(ME, json!({})).await;
    assert!(matches!(ws.next_of(&id).await, WsMessage::Error(_)));

    let text = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(
        value(r#"renkei_rate_limited_total{kind="member",transport="http"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(r#"renkei_rate_limited_total{kind="member",transport="websocket"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("renkei_graphql_requests_total")
                && l.contains(r#"outcome="RATE_LIMITED""#)),
        "{text}"
    );
    app.stop().await;
}
