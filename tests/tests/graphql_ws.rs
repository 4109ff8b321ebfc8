//! GraphQL over WebSocket as standard clients see it: the npm `graphql-ws`
//! client (the reference implementation of `graphql-transport-ws`, run by
//! `tests/js/graphql-ws-client.mjs`) reads the protocol's close codes, gets
//! its events, and meets the caps on subscriptions; the legacy `graphql-ws`
//! protocol (subscriptions-transport-ws) keeps working.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use renkei_tests::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }";
const EVENTS: &str =
    "subscription($p: ID!) { patientEvents(patientId: $p) { kind category subjectId } }";

/// Runs a test body on SQLite and, when configured, PostgreSQL, with the
/// hub configured by `$configure` (as `e2e!` does with the defaults).
macro_rules! e2e_with {
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

/// A clinic's physician with a patient, and a second physician of the
/// clinic (another member) on the same patient.
struct Scene {
    patient: String,
    doctor: String,
    colleague: String,
}

async fn scene(app: &TestApp) -> Scene {
    let clinic = app.organization("CLINIC", "標準クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let (_, colleague) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "W-1").await;
    Scene {
        patient,
        doctor,
        colleague,
    }
}

fn lab(patient: &str) -> Value {
    json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
            "data": { "labResult": { "name": "HbA1c", "value": "7.2", "unit": "%", "abnormal": "HIGH" } } }] } })
}

/// Runs a scenario of `graphql-ws-client.mjs` against the hub and returns
/// what the client observed.
async fn reference_client(app: &TestApp, scenario: &str, env: &[(&str, &str)]) -> Value {
    let hub = format!("http://{}", app.addr);
    let mut all = vec![("HUB", hub.as_str())];
    all.extend_from_slice(env);
    let (status, stdout, stderr) = run_node("graphql-ws-client.mjs", &[scenario], &all).await;
    assert!(
        status.success(),
        "graphql-ws-client.mjs {scenario} failed: {status}\n{stderr}\n{stdout}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The audit entries of a patient (newest first).
async fn audit_of(app: &TestApp, patient: &str) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action categories actorId outcome } } } }",
            json!({ "p": patient }),
        )
        .await;
    data["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn close(observed: &Value, case: &str) -> (u64, String) {
    let event = &observed[case];
    (
        event["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("{case}: {event}")),
        event["reason"].as_str().unwrap_or_default().to_string(),
    )
}

e2e_with!(
    the_reference_client_sees_the_protocols_close_codes,
    |c| c.websocket.ws_init_timeout_seconds = 1,
    |app| async move {
        let s = scene(app).await;
        let observed = reference_client(
            app,
            "close-codes",
            &[("TOKEN", &s.doctor), ("INIT_DELAY_MS", "2500")],
        )
        .await;

        // A refused connection_init: 4403 Forbidden, the reason saying why.
        let (code, reason) = close(&observed, "noCredentials");
        assert_eq!(code, 4403, "{observed}");
        assert!(reason.contains("Authorization"), "{reason}");
        let (code, _) = close(&observed, "badToken");
        assert_eq!(code, 4403, "{observed}");

        // No connection_init within RENKEI_WS_INIT_TIMEOUT_SECONDS (1 s):
        // 4408, after the timeout and before the client's late init.
        let (code, reason) = close(&observed, "initTimeout");
        assert_eq!(code, 4408, "{observed}");
        assert_eq!(reason, "Connection initialisation timeout");
        let after = observed["initTimeout"]["afterMs"].as_u64().unwrap();
        assert!((900..2500).contains(&after), "closed after {after} ms");

        // A second subscribe under an id that is running: 4409.
        let (code, reason) = close(&observed, "duplicateId");
        assert_eq!(code, 4409, "{observed}");
        assert_eq!(reason, "Subscriber for same-id already exists");

        // connection_init twice: 4429.
        let (code, reason) = close(&observed, "secondInit");
        assert_eq!(code, 4429, "{observed}");
        assert_eq!(reason, "Too many initialisation requests");

        // Malformed messages: 4400, saying what is wrong.
        let (code, reason) = close(&observed, "notJson");
        assert_eq!(code, 4400, "{observed}");
        assert!(reason.contains("not a JSON message"), "{reason}");
        let (code, reason) = close(&observed, "unknownType");
        assert_eq!(code, 4400, "{observed}");
        assert!(reason.contains("`start`"), "{reason}");

        // A subscribe before the connection is acknowledged: 4401.
        let (code, _) = close(&observed, "beforeAck");
        assert_eq!(code, 4401, "{observed}");

        // No GraphQL subprotocol asked for: 4406.
        let (code, _) = close(&observed, "noSubprotocol");
        assert_eq!(code, 4406, "{observed}");
    }
);

e2e!(
    the_reference_client_receives_events_and_each_delivery_is_audited,
    |app| async move {
        let s = scene(app).await;
        let write = lab(&s.patient).to_string();
        let observed = reference_client(
            app,
            "delivers",
            &[
                ("TOKEN", &s.doctor),
                ("PATIENT", &s.patient),
                ("WRITE_QUERY", WRITE),
                ("WRITE_VARIABLES", &write),
            ],
        )
        .await;
        // Silent until the event, then the event.
        assert_eq!(observed["before"]["refused"], false, "{observed}");
        assert_eq!(observed["before"]["results"], 0, "{observed}");
        let event = &observed["event"]["data"]["patientEvents"];
        assert_eq!(event["kind"], "RECORD_WRITTEN", "{observed}");
        assert_eq!(event["category"], "LAB_RESULTS", "{observed}");
        assert!(observed["event"]["errors"].is_null(), "{observed}");
        // Queries run over the same connection.
        assert_eq!(observed["query"]["data"]["__typename"], "Query");
        // The connection stayed open throughout.
        assert!(observed["closed"].is_null(), "{observed}");

        // The delivery left a READ entry of the category.
        let entries = audit_of(app, &s.patient).await;
        let reads = entries
            .iter()
            .filter(|e| e["action"] == "READ" && e["categories"] == json!(["LAB_RESULTS"]))
            .count();
        assert!(reads >= 1, "{entries:?}");
    }
);

e2e_with!(
    subscriptions_are_capped_per_connection_and_per_member_and_ended_ones_give_their_slot_back,
    |c| {
        c.websocket.ws_max_subscriptions_per_connection = 3;
        c.websocket.ws_max_subscriptions_per_member = 5;
    },
    |app| async move {
        let s = scene(app).await;
        let write = lab(&s.patient).to_string();
        let o = reference_client(
            app,
            "caps",
            &[
                ("TOKEN", &s.doctor),
                ("OTHER_TOKEN", &s.colleague),
                ("PATIENT", &s.patient),
                ("WRITE_QUERY", WRITE),
                ("WRITE_VARIABLES", &write),
            ],
        )
        .await;
        let running = |v: &Value| {
            assert_eq!(v["refused"], false, "expected a running subscription: {o}");
            assert_eq!(
                v["completed"], false,
                "expected a running subscription: {o}"
            );
        };
        let refused = |v: &Value, limit: u64| {
            assert_eq!(v["refused"], true, "expected a refusal: {o}");
            assert_eq!(v["codes"], json!(["TOO_MANY_SUBSCRIPTIONS"]), "{o}");
            assert_eq!(v["limit"], limit, "{o}");
            let scope = if limit == 3 { "CONNECTION" } else { "MEMBER" };
            assert_eq!(v["scope"], scope, "{o}");
        };

        // Three on one connection; the fourth is refused, for that id only.
        o["aFirstThree"]
            .as_array()
            .unwrap()
            .iter()
            .for_each(running);
        refused(&o["aFourth"], 3);
        assert!(
            o["aFourth"]["message"]
                .as_str()
                .unwrap()
                .contains("this connection"),
            "{o}"
        );
        assert_eq!(o["aOpenAfterRefusal"], true, "{o}");
        // Queries do not count.
        assert_eq!(o["aQueryAtCap"]["data"]["__typename"], "Query", "{o}");
        // A completed subscription gives its slot back, and the new one
        // delivers.
        running(&o["aAfterComplete"]);
        assert_eq!(
            o["aReplacementEvent"]["data"]["patientEvents"]["kind"],
            "RECORD_WRITTEN"
        );

        // The member's second connection: 3 + 2 = 5, then refused.
        o["bFirstTwo"].as_array().unwrap().iter().for_each(running);
        refused(&o["bThird"], 5);
        assert!(
            o["bThird"]["message"]
                .as_str()
                .unwrap()
                .contains("across your connections"),
            "{o}"
        );
        // Another member is not held back.
        running(&o["otherMember"]);
        // Completing one on the second connection frees a slot of the member.
        running(&o["bAfterComplete"]);
        refused(&o["bFull"], 5);
        // Closing the first connection gives its three back.
        o["dAfterClose"]
            .as_array()
            .unwrap()
            .iter()
            .for_each(running);
        refused(&o["bFullAgain"], 5);
        assert_eq!(
            o["dEvent"]["data"]["patientEvents"]["kind"],
            "RECORD_WRITTEN"
        );
        assert_eq!(
            o["otherMemberEvent"]["data"]["patientEvents"]["kind"],
            "RECORD_WRITTEN"
        );
        assert_eq!(o["bOpen"], true, "{o}");
    }
);

/// A raw client of the legacy protocol (`graphql-ws`, as
/// subscriptions-transport-ws speaks it).
struct Legacy {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Legacy {
    async fn open(app: &TestApp) -> Legacy {
        let mut request = format!("ws://{}/graphql/ws", app.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-ws"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-ws",
            "the hub agreed on the legacy protocol"
        );
        Legacy { socket }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send");
    }

    /// The next text message, or the close frame as `{"close": code, "reason": …}`.
    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message within 10 s");
            match message {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Close(frame))) => {
                    let frame = frame.expect("a close frame with a code");
                    return json!({ "close": u16::from(frame.code), "reason": frame.reason.to_string() });
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    }

    async fn init(&mut self, token: &str) {
        self.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        assert_eq!(self.next().await["type"], "connection_ack");
    }
}

e2e_with!(
    the_legacy_protocol_keeps_working,
    |c| c.websocket.ws_max_subscriptions_per_connection = 1,
    |app| async move {
        let s = scene(app).await;

        // Refused: a connection_error with the reason, then 4403.
        let mut refused = Legacy::open(app).await;
        refused
            .send(json!({ "type": "connection_init", "payload": {} }))
            .await;
        let error = refused.next().await;
        assert_eq!(error["type"], "connection_error", "{error}");
        assert!(
            error["payload"]["message"]
                .as_str()
                .unwrap()
                .contains("Authorization"),
            "{error}"
        );
        assert_eq!(refused.next().await["close"], 4403);

        let mut ws = Legacy::open(app).await;
        ws.init(&s.doctor).await;
        // A query: `data`, then `complete`.
        ws.send(json!({ "id": "1", "type": "start", "payload": { "query": "{ __typename }" } }))
            .await;
        let data = ws.next().await;
        assert_eq!(data["type"], "data", "{data}");
        assert_eq!(data["id"], "1");
        assert_eq!(data["payload"]["data"]["__typename"], "Query");
        assert_eq!(ws.next().await, json!({ "type": "complete", "id": "1" }));

        // A subscription delivers `data`.
        ws.send(json!({ "id": "2", "type": "start", "payload": { "query": EVENTS, "variables": { "p": s.patient } } }))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // One subscription per connection here: the next is refused with an
        // `error` for its id, and the connection stays.
        ws.send(json!({ "id": "3", "type": "start", "payload": { "query": EVENTS, "variables": { "p": s.patient } } }))
            .await;
        let error = ws.next().await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["id"], "3");
        assert_eq!(
            error["payload"][0]["extensions"]["code"],
            "TOO_MANY_SUBSCRIPTIONS"
        );
        app.ok(&s.doctor, WRITE, lab(&s.patient)).await;
        let data = ws.next().await;
        assert_eq!(data["type"], "data", "{data}");
        assert_eq!(data["id"], "2");
        assert_eq!(
            data["payload"]["data"]["patientEvents"]["kind"],
            "RECORD_WRITTEN"
        );

        // `stop` is confirmed with `complete`, and frees the slot.
        ws.send(json!({ "id": "2", "type": "stop" })).await;
        assert_eq!(ws.next().await, json!({ "type": "complete", "id": "2" }));
        ws.send(json!({ "id": "4", "type": "start", "payload": { "query": EVENTS, "variables": { "p": s.patient } } }))
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.ok(&s.doctor, WRITE, lab(&s.patient)).await;
        let data = ws.next().await;
        assert_eq!(data["id"], "4", "{data}");

        // A second connection_init: a connection_error, then 4429.
        ws.send(json!({ "type": "connection_init", "payload": {} }))
            .await;
        assert_eq!(ws.next().await["type"], "connection_error");
        assert_eq!(ws.next().await["close"], 4429);
    }
);

#[tokio::test]
async fn websocket_settings_out_of_range_stop_the_start_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    for (configure, name) in [
        (
            (|c: &mut renkei_server::config::ServeConfig| c.websocket.ws_init_timeout_seconds = 0)
                as fn(&mut _),
            "RENKEI_WS_INIT_TIMEOUT_SECONDS",
        ),
        (
            |c| c.websocket.ws_init_timeout_seconds = 301,
            "RENKEI_WS_INIT_TIMEOUT_SECONDS",
        ),
        (
            |c| c.websocket.ws_max_subscriptions_per_connection = 0,
            "RENKEI_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        ),
        (
            |c| c.websocket.ws_max_subscriptions_per_member = 0,
            "RENKEI_WS_MAX_SUBSCRIPTIONS_PER_MEMBER",
        ),
    ] {
        let mut config = test_config(url.clone());
        configure(&mut config);
        let error = match renkei_server::Application::build(config).await {
            Ok(_) => panic!("{name} out of range was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(name), "{error}");
    }
}

e2e_with!(
    a_message_over_the_limit_is_closed_with_1009,
    |c| c.max_body_bytes = 64 * 1024,
    |app| async move {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        // Over the limit before the connection is even acknowledged (a huge
        // token), and after it (a huge subscribe): told with RFC 6455's
        // "Message Too Big", not a dropped connection.
        let big = "x".repeat(64 * 1024 + 1);
        let messages = [
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {big}") } }),
            json!({ "type": "subscribe", "id": "1", "payload": { "query": format!("subscription {{ __typename }} # {big}") } }),
        ];
        for (i, message) in messages.into_iter().enumerate() {
            let mut socket = ws_socket(app.addr).await;
            if i == 1 {
                ws_init(&mut socket, &app.admin_token).await;
            }
            socket
                .send(Message::Text(message.to_string().into()))
                .await
                .unwrap();
            let (code, reason) = ws_closed_with(&mut socket).await;
            assert_eq!(code, 1009, "message {i}: {reason}");
            assert!(reason.contains("Message Too Big"), "{reason}");
        }
    }
);

e2e!(
    a_message_naming_a_key_twice_is_closed_with_4400,
    |app| async move {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut socket = ws_socket(app.addr).await;
        let text = format!(
            r#"{{"type": "connection_init", "payload": {{"Authorization": "Bearer {}", "Authorization": "Bearer x"}}}}"#,
            app.admin_token
        );
        socket.send(Message::Text(text.into())).await.unwrap();
        let (code, reason) = ws_closed_with(&mut socket).await;
        assert_eq!(code, 4400, "{reason}");
        assert!(reason.contains("repeats a key"), "{reason}");
    }
);

/// A hub shutting down (SIGTERM) tells its WebSocket clients so — 1001
/// Going Away — instead of dropping the socket (1006): upgraded, the
/// connections are no longer requests its graceful shutdown lets finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_shutting_down_closes_its_websockets_with_1001() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut ws = app.ws(&app.admin_token).await;
    let stopping = tokio::spawn(async move { app.stop().await });
    while ws
        .next_within(std::time::Duration::from_secs(10))
        .await
        .is_some()
    {}
    assert!(ws.is_closed(), "the connection stayed open");
    assert_eq!(ws.close_code(), Some(1001));
    stopping.await.unwrap();
}

e2e!(
    a_subscription_selects_exactly_one_root_field,
    |app| async move {
        let s = scene(app).await;
        let mut client = app.ws(&s.doctor).await;
        // Aliases of one field, directly, through a fragment and an inline
        // fragment: each would follow the events, many streams counted as
        // one subscription. So would an introspection field beside it.
        let aliases: Vec<String> = (0..40)
            .map(|i| format!("e{i}: patientEvents(patientId: $p) {{ kind }}"))
            .collect();
        for (query, told) in [
            (
                format!("subscription($p: ID!) {{ {} }}", aliases.join(" ")),
                "Anonymous Subscription must select only one top level field.",
            ),
            (
                "subscription Two($p: ID!) { a: patientEvents(patientId: $p) { kind } ...F } fragment F on Subscription { b: patientEvents(patientId: $p) { kind } }".to_string(),
                "Subscription \"Two\" must select only one top level field.",
            ),
            (
                "subscription($p: ID!) { patientEvents(patientId: $p) { kind } ... on Subscription { __typename } }".to_string(),
                "Anonymous Subscription must not select an introspection top level field (\"__typename\").",
            ),
        ] {
            let id = client.subscribe(&query, json!({ "p": s.patient })).await;
            // Refused as every invalid document is over this transport
            // (async-graphql's stream: one result with the errors).
            let errors = match client.next_within(Duration::from_secs(10)).await {
                Some((got, WsMessage::Next(v))) if got == id && v["data"].is_null() => {
                    v["errors"].clone()
                }
                Some((got, WsMessage::Error(errors))) if got == id => errors,
                _ => panic!("expected an error for {query}"),
            };
            assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
            assert_eq!(errors[0]["message"], told, "{errors}");
            assert_eq!(
                errors[0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
                "{errors}"
            );
            // Nothing follows the refusal but its end.
            if let Some((got, message)) = client.next_within(Duration::from_millis(500)).await {
                assert_eq!(got, id);
                assert!(matches!(message, WsMessage::Complete), "more than the refusal");
            }
        }
        // One root field, selected twice under one key (the same field
        // merged, as the spec's CollectFields does), is one stream.
        let id = client
            .subscribe(
                "subscription($p: ID!) { patientEvents(patientId: $p) { kind } ... on Subscription { patientEvents(patientId: $p) { category } } }",
                json!({ "p": s.patient }),
            )
            .await;
        // Subscribed before the write (as the tests above wait).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let written = app.gql(&s.doctor, WRITE, lab(&s.patient)).await;
        assert!(written["errors"].is_null(), "{written}");
        match client.next_within(Duration::from_secs(10)).await {
            Some((got, WsMessage::Next(v))) => {
                assert_eq!(got, id);
                assert_eq!(v["data"]["patientEvents"]["kind"], "RECORD_WRITTEN", "{v}");
            }
            _ => panic!("expected the event"),
        }
    }
);
