//! Seeing the hub work: `/metrics` (where it is served, who may read it,
//! what it counts), the access log, and request ids.

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use renkei_tests::*;
use serde_json::{Value, json};
use uuid::Uuid;

const TOKEN: &str = "metrics-token-0123456789abcdef";

/// The access log of every hub in this test process, as JSON lines (the
/// format of `RENKEI_LOG_FORMAT=json`). Tests find their lines by request
/// id or organisation.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

static LOG: LazyLock<Capture> = LazyLock::new(|| {
    let capture = Capture::default();
    assert!(
        renkei_server::telemetry::install("access=info", true, capture.clone()),
        "the test process installs the only subscriber"
    );
    capture
});

/// The access lines written so far.
fn access_lines() -> Vec<Value> {
    let text = String::from_utf8(LOG.0.lock().unwrap().clone()).expect("UTF-8 logs");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn raw_log() -> String {
    String::from_utf8(LOG.0.lock().unwrap().clone()).unwrap()
}

/// The access lines that satisfy `pick`, waiting briefly for them (a
/// WebSocket operation is logged when its task ends).
async fn lines_where(pick: impl Fn(&Value) -> bool) -> Vec<Value> {
    for _ in 0..50 {
        let found: Vec<Value> = access_lines().into_iter().filter(&pick).collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Vec::new()
}

/// Like `e2e!`, with the hub configured by `$configure` (a
/// `FnOnce(&mut ServeConfig)`).
macro_rules! configured {
    ($name:ident, $configure:expr, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run(backend: Backend) {
                let owned = TestApp::spawn_with(backend, $configure).await;
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !postgres_configured() {
                    eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
                    return;
                }
                run(Backend::Postgres).await;
            }
        }
    };
}

fn with_token(c: &mut renkei_server::config::ServeConfig) {
    c.metrics.metrics_token = Some(TOKEN.into());
}

/// `/metrics` of the main listener with the token.
async fn scrape(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

fn graphql_count(text: &str, transport: &str, operation: &str, outcome: &str) -> Option<f64> {
    sample(
        text,
        &format!(
            r#"renkei_graphql_requests_total{{transport="{transport}",operation="{operation}",outcome="{outcome}"}}"#
        ),
    )
}

async fn post_as(
    app: &TestApp,
    token: Option<&str>,
    request_id: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = app.client.post(app.url("/graphql")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    req.send().await.unwrap()
}

e2e!(
    metrics_are_not_served_on_the_public_listener_by_default,
    |app| async move {
        let res = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 404);
        // As any path the hub does not serve, whatever the method: nothing
        // tells that a metrics route exists.
        let body: Value = res.json().await.unwrap();
        let elsewhere: Value = app
            .client
            .get(app.url("/nothing-here"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body, elsewhere);
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        let res = app.client.delete(app.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 404);
        // Even with a token in hand: there is none configured to match.
        let res = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert!(app.metrics_addr.is_none());
    }
);

mod token {
    use super::*;

    configured!(
        metrics_need_the_configured_token,
        with_token,
        |app| async move {
            for auth in [
                None,
                Some("Bearer wrong-token-0123456789abcdef"),
                Some(TOKEN),
            ] {
                let mut req = app.client.get(app.url("/metrics"));
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                let res = req.send().await.unwrap();
                assert_eq!(res.status(), 401, "{auth:?}");
                assert_eq!(res.headers()["www-authenticate"], "Bearer");
            }
            let res = app
                .client
                .get(app.url("/metrics"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert!(
                res.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/openmetrics-text")
            );
            let text = res.text().await.unwrap();
            assert!(text.ends_with("# EOF\n"));
            // Sampled at scrape time.
            assert!(
                text.contains("renkei_db_pool_connections{state=\"in_use\"}"),
                "{text}"
            );
            assert!(text.contains("renkei_db_pool_max_connections 5"), "{text}");
            assert!(text.contains("renkei_audit_queue_depth 0"), "{text}");
            assert!(text.contains("renkei_websocket_connections 0"), "{text}");
            // Without Redis there is no relay to report.
            assert!(!text.contains("renkei_redis_relay_up"), "{text}");
        }
    );

    #[tokio::test]
    async fn a_short_token_stops_the_start() {
        let (_db, url) = TestDatabase::create(Backend::Sqlite).await;
        let mut config = test_config(url);
        config.metrics.metrics_token = Some("short".into());
        let err = renkei_server::Application::build(config)
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("RENKEI_METRICS_TOKEN"), "{err}");
    }
}

configured!(
    a_separate_listener_serves_metrics_and_the_public_one_does_not,
    |c: &mut renkei_server::config::ServeConfig| {
        c.metrics.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    },
    |app| async move {
        let addr = app.metrics_addr.expect("the metrics listener is bound");
        assert_ne!(addr, app.addr);
        let res = app
            .client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(text.contains("renkei_audit_queue_depth"), "{text}");
        // Nothing else there.
        let res = app
            .client
            .get(format!("http://{addr}/graphql"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        let res = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 404);
    }
);

configured!(
    graphql_requests_are_counted_by_operation_and_outcome,
    with_token,
    |app| async move {
        let clinic = app.organization("CLINIC", "計測クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        for _ in 0..2 {
            let res = post_as(
                app,
                Some(&doctor),
                None,
                json!({ "query": "query ObsMe { me { __typename } }" }),
            )
            .await;
            assert_eq!(res.status(), 200);
        }
        // An error inside GraphQL: its code is the outcome.
        let res = post_as(
            app,
            Some(&doctor),
            None,
            json!({ "query": "query ObsMissing($id: ID!) { patient(id: $id) { name } }",
                "variables": { "id": Uuid::now_v7().to_string() } }),
        )
        .await;
        let body: Value = res.json().await.unwrap();
        let code = error_code(&body).expect("an error code");
        // Refused before the document is read: no operation.
        let res = post_as(
            app,
            None,
            None,
            json!({ "query": "query ObsAnon { me { __typename } }" }),
        )
        .await;
        assert_eq!(res.status(), 401);

        let text = scrape(app).await;
        assert_eq!(
            graphql_count(&text, "http", "ObsMe", "OK"),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            graphql_count(&text, "http", "ObsMissing", &code),
            Some(1.0),
            "{text}"
        );
        assert_eq!(graphql_count(&text, "http", "ObsMissing", "OK"), None);
        assert_eq!(
            graphql_count(&text, "http", "unknown", "UNAUTHENTICATED"),
            Some(1.0),
            "{text}"
        );
        assert!(
            !text.contains("ObsAnon"),
            "an anonymous caller names no label"
        );
        assert!(
        text.contains(r#"renkei_graphql_request_duration_seconds_count{transport="http",operation="ObsMe"} 2"#),
        "{text}"
    );
        assert!(
            text.contains(r#"renkei_http_requests_total{route="/graphql",status="401"} 1"#),
            "{text}"
        );
        // Every request with an entry was audited through a group commit.
        let batches = sample(&text, "renkei_audit_batch_requests_count").expect("batches");
        assert!(batches >= 1.0, "{text}");
    }
);

configured!(
    operation_names_are_capped,
    |c: &mut renkei_server::config::ServeConfig| {
        c.metrics.metrics_token = Some(TOKEN.into());
        c.metrics.metrics_max_operations = 3;
    },
    |app| async move {
        let clinic = app.organization("CLINIC", "上限クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        for n in 1..=5 {
            let query = format!("query Capped{n} {{ me {{ __typename }} }}");
            post_as(app, Some(&doctor), None, json!({ "query": query })).await;
        }
        // A name seen before the cap keeps its label.
        post_as(
            app,
            Some(&doctor),
            None,
            json!({ "query": "query Capped1 { me { __typename } }" }),
        )
        .await;
        let text = scrape(app).await;
        // The set-up's requests are anonymous: `anonymous` takes no place under the cap.
        let labelled: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("renkei_graphql_requests_total{"))
            .collect();
        let names: std::collections::BTreeSet<&str> = labelled
            .iter()
            .filter_map(|l| l.split("operation=\"").nth(1)?.split('"').next())
            .collect();
        let named: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| *n != "anonymous" && *n != "unknown")
            .collect();
        assert_eq!(named, ["Capped1", "Capped2", "Capped3", "other"], "{text}");
        assert_eq!(
            graphql_count(&text, "http", "other", "OK"),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            graphql_count(&text, "http", "Capped1", "OK"),
            Some(2.0),
            "{text}"
        );
    }
);

e2e!(
    request_ids_are_kept_only_when_short_and_safe,
    |app| async move {
        LazyLock::force(&LOG);
        let clinic = app.organization("CLINIC", "識別クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "R-1").await;
        let read = json!({ "query": "query($id: ID!) { patient(id: $id) { name } }", "variables": { "id": patient } });

        let kept = format!("obs-{}", Uuid::new_v4().simple());
        let res = post_as(app, Some(&doctor), Some(&kept), read.clone()).await;
        assert_eq!(res.headers()["x-request-id"], kept.as_str());

        let long = "a".repeat(20_000);
        let bad = "bad id\twith<chars>";
        let mut replaced = Vec::new();
        for given in [long.as_str(), bad, &"b".repeat(65)] {
            let res = post_as(app, Some(&doctor), Some(given), read.clone()).await;
            assert_eq!(res.status(), 200);
            let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
            assert_ne!(id, given);
            let uuid = Uuid::parse_str(&id).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 7);
            replaced.push(id);
        }
        // Without one, the hub makes one too.
        let res = post_as(app, Some(&doctor), None, read.clone()).await;
        assert!(Uuid::parse_str(res.headers()["x-request-id"].to_str().unwrap()).is_ok());

        // The audit log holds the hub's ids, never the caller's long one.
        let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action requestId } } } }",
            json!({ "p": patient }),
        )
        .await;
        let ids: Vec<String> = data["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["requestId"].as_str().unwrap().to_string())
            .collect();
        assert!(ids.iter().all(|id| id.len() <= 64), "{ids:?}");
        assert!(ids.contains(&kept), "{ids:?}");
        for id in &replaced {
            assert!(ids.contains(id), "{id} in {ids:?}");
        }
        // So does the access log.
        let lines = lines_where(|l| l["request_id"] == replaced[0].as_str()).await;
        assert_eq!(lines.len(), 1);
        assert!(!raw_log().contains(&long[..100]));
    }
);

e2e!(
    the_access_log_says_who_and_how_but_not_what,
    |app| async move {
        LazyLock::force(&LOG);
        let clinic = app.organization("CLINIC", "記録クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let secret_name = format!("秘密 {}", Uuid::new_v4().simple());
        let request_id = format!("obs-log-{}", Uuid::new_v4().simple());
        let res = post_as(
        app,
        Some(&doctor),
        Some(&request_id),
        json!({
            "query": "mutation ObsRegister($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }",
            "variables": { "i": { "name": secret_name, "nameKana": "ヒミツ", "birthDate": "1950-01-01",
                                  "sex": "FEMALE", "localId": "SECRET-LOCAL-77" } }
        }),
    )
    .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");

        let lines = lines_where(|l| l["request_id"] == request_id.as_str()).await;
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["target"], "access");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["transport"], "http");
        assert_eq!(line["method"], "POST");
        assert_eq!(line["path"], "/graphql");
        assert_eq!(line["operation"], "ObsRegister");
        assert_eq!(line["status"], 200);
        assert_eq!(line["outcome"], "OK");
        assert!(
            line["duration_ms"].as_f64().is_some_and(|d| d > 0.0),
            "{line}"
        );
        assert_eq!(line["organization"], clinic.as_str());

        // A refusal: no caller, its code.
        let refused_id = format!("obs-refused-{}", Uuid::new_v4().simple());
        post_as(
            app,
            None,
            Some(&refused_id),
            json!({ "query": "{ me { __typename } }" }),
        )
        .await;
        let refused = lines_where(|l| l["request_id"] == refused_id.as_str()).await;
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0]["status"], 401);
        assert_eq!(refused[0]["outcome"], "UNAUTHENTICATED");
        assert!(refused[0].get("organization").is_none());

        // A patient's id in a path is not logged.
        let patient = body["data"]["registerPatient"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let sheet_id = format!("obs-sheet-{}", Uuid::new_v4().simple());
        app.client
            .get(app.url(&format!("/patients/{patient}/emergency-sheet?secret=1")))
            .bearer_auth(&doctor)
            .header("x-request-id", &sheet_id)
            .send()
            .await
            .unwrap();
        let sheet = lines_where(|l| l["request_id"] == sheet_id.as_str()).await;
        assert_eq!(sheet[0]["path"], "/patients/{id}/emergency-sheet");
        // Nor in a path the hub does not serve: its first segment alone.
        let unknown_id = format!("obs-unknown-{}", Uuid::new_v4().simple());
        let unknown = app
            .client
            .get(app.url(&format!("/patients/{patient}/records")))
            .bearer_auth(&doctor)
            .header("x-request-id", &unknown_id)
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        let unknown = lines_where(|l| l["request_id"] == unknown_id.as_str()).await;
        assert_eq!(unknown[0]["path"], "/patients/{…}");

        let log = raw_log();
        for secret in [
            secret_name.as_str(),
            "SECRET-LOCAL-77",
            "ヒミツ",
            "registerPatient(",
            patient.as_str(),
            "secret=1",
        ] {
            assert!(!log.contains(secret), "{secret} reached the access log");
        }
    }
);

configured!(
    websocket_operations_are_logged_and_counted,
    with_token,
    |app| async move {
        LazyLock::force(&LOG);
        let clinic = app.organization("CLINIC", "接続クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "W-1").await;
        let mut ws = app.ws(&doctor).await;
        let query = ws
            .subscribe("query ObsWsQuery { me { __typename } }", json!({}))
            .await;
        assert!(matches!(ws.next_of(&query).await, WsMessage::Next(_)));
        assert_eq!(ws.next_of(&query).await, WsMessage::Complete);
        let sub = ws
            .subscribe(
                "subscription ObsWatch($p: ID!) { patientEvents(patientId: $p) { kind } }",
                json!({ "p": patient }),
            )
            .await;
        ws.expect_silence(Duration::from_millis(300)).await;
        let text = scrape(app).await;
        assert!(text.contains("renkei_websocket_connections 1"), "{text}");
        assert!(text.contains("renkei_websocket_subscriptions 1"), "{text}");

        app.ok(
        &doctor,
        "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }",
        json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
            "data": { "labResult": { "name": "HbA1c", "value": "7.2", "unit": "%", "abnormal": "HIGH" } } }] } }),
    )
    .await;
        assert!(matches!(ws.next_of(&sub).await, WsMessage::Next(_)));
        let text = scrape(app).await;
        assert_eq!(
            sample(&text, "renkei_subscription_events_delivered_total"),
            Some(1.0),
            "{text}"
        );
        assert!(sample(&text, "renkei_events_published_total").unwrap() >= 1.0);
        assert_eq!(
            graphql_count(&text, "websocket", "ObsWsQuery", "OK"),
            Some(1.0),
            "{text}"
        );
        drop(ws);

        let org = clinic.clone();
        let lines = lines_where(move |l| {
            l["transport"] == "websocket"
                && l["organization"] == org.as_str()
                && l["operation"] == "ObsWatch"
        })
        .await;
        assert_eq!(lines.len(), 1, "the subscription is logged when it ends");
        assert_eq!(lines[0]["path"], "/graphql/ws");
        assert_eq!(lines[0]["outcome"], "OK");
        assert!(lines[0].get("status").is_none());
        let query_lines = lines_where(|l| {
            l["transport"] == "websocket"
                && l["organization"] == clinic.as_str()
                && l["operation"] == "ObsWsQuery"
        })
        .await;
        assert_eq!(query_lines.len(), 1);
        // Both ends of the connection are given back.
        let mut text = scrape(app).await;
        for _ in 0..50 {
            if text.contains("renkei_websocket_connections 0") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            text = scrape(app).await;
        }
        assert!(text.contains("renkei_websocket_connections 0"), "{text}");
        assert!(text.contains("renkei_websocket_subscriptions 0"), "{text}");
        assert_eq!(
            graphql_count(&text, "websocket", "ObsWatch", "OK"),
            Some(1.0),
            "{text}"
        );
    }
);
