//! The listener's bounds (server/src/listener.rs): how many connections are
//! open at once, how long a client may take over its headers and its body.
//! Spoken over raw TCP, as a slow or hostile client would. These bounds do
//! not touch the database; the hub runs on SQLite.

use std::time::Duration;

use renkei_server::config::ConnectionConfig;
use renkei_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// Reads what the server sends until it closes the connection, for at most
/// `within`; `None` if it is still open then.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let read = timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

/// Sends `GET /health` on `stream` (kept alive) and reads its answer's
/// status line, or `None` if none came within `within`.
async fn health(stream: &mut TcpStream, within: Duration) -> Option<String> {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 4096];
    match timeout(within, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            Some(text.lines().next().unwrap_or_default().to_string())
        }
        _ => None,
    }
}

async fn spawn(configure: impl FnOnce(&mut ConnectionConfig)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |config| configure(&mut config.connections)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_byte_by_byte_are_cut_off_at_the_header_timeout() {
    let app = spawn(|c| c.header_read_timeout_seconds = 1).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\n")
        .await
        .unwrap();
    // A header byte every 200 ms: the connection is never idle, and would
    // be held for ever without a deadline on the whole of the headers.
    let mut cut = false;
    for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        .iter()
        .cycle()
        .take(50)
    {
        sleep(Duration::from_millis(200)).await;
        if slow.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = timeout(Duration::from_millis(1), slow.read(&mut probe)).await {
            cut = true;
            break;
        }
    }
    let took = started.elapsed();
    assert!(cut, "the connection was still open after {took:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "cut after {took:?}, the timeout is 1 s"
    );
    // Everyone else is served as before.
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_in_time_is_served_and_an_idle_connection_is_closed_afterwards() {
    let app = spawn(|c| c.header_read_timeout_seconds = 1).await;
    let mut client = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(
        health(&mut client, Duration::from_secs(5)).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    // Kept alive for the next request, but not for ever.
    let rest = read_until_closed(&mut client, Duration::from_secs(5)).await;
    assert!(rest.is_some(), "an idle connection stayed open");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_nothing_is_closed_at_the_header_timeout() {
    let app = spawn(|c| c.header_read_timeout_seconds = 1).await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    let seen = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert_eq!(seen.as_deref(), Some(""), "closed without an answer");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_a_new_client_closes_the_connection_idle_longest() {
    let app = spawn(|c| c.max_connections = Some(3)).await;
    // Three kept-alive connections, each answered once, fill the hub.
    let mut held = Vec::new();
    for i in 0..3 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        assert_eq!(
            health(&mut stream, Duration::from_secs(5)).await.as_deref(),
            Some("HTTP/1.1 200 OK"),
            "connection {i} within the limit"
        );
        held.push(stream);
        sleep(Duration::from_millis(50)).await;
    }
    // A fourth is served at once, and the first — idle longest — closed.
    let mut fourth = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(
        health(&mut fourth, Duration::from_secs(2)).await.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "the fourth waited"
    );
    assert_eq!(
        read_until_closed(&mut held[0], Duration::from_secs(2))
            .await
            .as_deref(),
        Some(""),
        "the connection idle longest was closed"
    );
    // The others still answer (each use makes it the newest).
    for (i, stream) in held.iter_mut().enumerate().skip(1) {
        assert_eq!(
            health(stream, Duration::from_secs(2)).await.as_deref(),
            Some("HTTP/1.1 200 OK"),
            "connection {i}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_trickling_headers_into_every_slot_do_not_keep_others_out() {
    let app = spawn(|c| c.max_connections = Some(3)).await;
    // Three connections sending a header byte every 100 ms until the test
    // is done: without a way to close them the hub would be full until the
    // header timeout (30 s).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut slow = Vec::new();
    for _ in 0..3 {
        let done = done.clone();
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: hub\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let mut closed = false;
            for _ in 0..100 {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                sleep(Duration::from_millis(100)).await;
                if stream.write_all(b"a").await.is_err() {
                    closed = true;
                    break;
                }
                let mut probe = [0u8; 1];
                if let Ok(Ok(0) | Err(_)) =
                    timeout(Duration::from_millis(1), stream.read(&mut probe)).await
                {
                    closed = true;
                    break;
                }
            }
            closed
        }));
    }
    sleep(Duration::from_millis(300)).await;
    // A new client (no pooled connection) is served at once.
    let client = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..3 {
        let res = client
            .get(app.url("/health"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("served beside the trickling clients");
        assert_eq!(res.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(client);
    // Each request closed one of them; give the last a moment to notice.
    sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut closed = 0;
    for task in slow {
        if task.await.unwrap() {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no trickling connection was closed");
    app.stop().await;
}

/// An HTTP/2 connection that asks for `/health` and grants no flow-control
/// window: the hub sends the answer's headers, never its body. Returns the
/// connection's parts, to hold.
async fn reads_nothing(
    app: &TestApp,
) -> (
    h2::client::SendRequest<axum::body::Bytes>,
    h2::client::ResponseFuture,
) {
    let tcp = TcpStream::connect(app.addr).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, axum::body::Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = axum::http::Request::get(app.url("/health"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    (client, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_nobody_reads_holds_its_slot_for_the_grace_only() {
    // The grace of an answer being sent is the body timeout: 3 s here.
    let app = spawn(|c| {
        c.max_connections = Some(2);
        c.body_read_timeout_seconds = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let (client, response) = reads_nothing(&app).await;
        let response = timeout(Duration::from_secs(5), response)
            .await
            .expect("the headers come")
            .unwrap();
        assert_eq!(response.status(), 200);
        held.push((client, response));
    }
    // Both answers are being sent, freshly: busy, so the newcomer waits…
    let started = Instant::now();
    let mut third = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(
        health(&mut third, Duration::from_millis(1500)).await,
        None,
        "served beside two answers in their first moments"
    );
    // …until their grace is over: a reader that takes nothing (an HTTP/2
    // window of zero) holds its slot no longer.
    let mut buf = [0u8; 4096];
    let n = timeout(Duration::from_secs(8), third.read(&mut buf))
        .await
        .expect("served once the grace is over")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_trickled_in_without_a_token_do_not_keep_others_out() {
    // The body timeout is the default (60 s): the slow bodies would hold
    // their slots that long, were they not closed for newcomers.
    let app = spawn(|c| c.max_connections = Some(2)).await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(
                b"POST /graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n\
                  Content-Length: 100\r\n\r\n{\"query\":",
            )
            .await
            .unwrap();
        slow.push(stream);
        sleep(Duration::from_millis(200)).await;
    }
    let client = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..2 {
        let res = client
            .get(app.url("/health"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("served beside the slow bodies");
        assert_eq!(res.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let mut closed = 0;
    for stream in &mut slow {
        if read_until_closed(stream, Duration::from_secs(2))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no slow body was closed");
    app.stop().await;
}

/// Sends headers announcing 100 bytes of body, then 10 of them, and waits
/// for the answer.
async fn slow_body(app: &TestApp, path: &str, content_type: &str, token: &str) -> (String, String) {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"query\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered and closed within 10 s");
    let status = answer.lines().next().unwrap_or_default().to_string();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_refused_with_408() {
    let app = spawn(|c| c.body_read_timeout_seconds = 1).await;
    let started = Instant::now();
    let (status, body) = slow_body(&app, "/graphql", "application/json", &app.admin_token).await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{body}");
    assert!(body.contains("\"REQUEST_TIMEOUT\""), "{body}");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // The FHIR endpoint answers it as FHIR: an OperationOutcome.
    let (status, body) = slow_body(&app, "/fhir", "application/fhir+json", &app.admin_token).await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{body}");
    assert!(
        body.contains("OperationOutcome") && body.contains("\"timeout\""),
        "{body}"
    );

    // A body sent whole is served as before.
    let (status, body) = app
        .post(
            Some(&app.admin_token),
            serde_json::json!({ "query": "{ __typename }" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn limits_out_of_range_stop_the_start_with_a_message() {
    type Case = (&'static str, fn(&mut ConnectionConfig), &'static str);
    let cases: [Case; 4] = [
        (
            "no connections",
            |c| c.max_connections = Some(0),
            "RENKEI_MAX_CONNECTIONS must be between 1",
        ),
        (
            "no header time",
            |c| c.header_read_timeout_seconds = 0,
            "RENKEI_HEADER_READ_TIMEOUT_SECONDS must be between 1 and 300",
        ),
        (
            "endless header time",
            |c| c.header_read_timeout_seconds = 301,
            "RENKEI_HEADER_READ_TIMEOUT_SECONDS must be between 1 and 300",
        ),
        (
            "no body time",
            |c| c.body_read_timeout_seconds = 0,
            "RENKEI_BODY_READ_TIMEOUT_SECONDS must be between 1 and 3600",
        ),
    ];
    for (case, configure, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("renkei.db").display()
        ));
        configure(&mut config.connections);
        let error = match renkei_server::Application::build(config).await {
            Ok(_) => panic!("{case}: the hub started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(error.contains(expected), "{case}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge_is_served_as_before() {
    let app = spawn(|_| {}).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = h2.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    let res = h2
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_holds_its_slot_and_is_never_closed_for_another() {
    let app = spawn(|c| c.max_connections = Some(2)).await;
    let mut ws = app.ws(&app.admin_token).await;
    // One slot is left: each newcomer closes the plain connection before it.
    for _ in 0..3 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        assert_eq!(
            health(&mut stream, Duration::from_secs(2)).await.as_deref(),
            Some("HTTP/1.1 200 OK")
        );
        sleep(Duration::from_millis(50)).await;
    }
    // The WebSocket still answers.
    let id = ws.subscribe("{ __typename }", serde_json::json!({})).await;
    match ws.next_of(&id).await {
        WsMessage::Next(payload) => assert_eq!(payload["data"]["__typename"], "Query"),
        other => panic!("{other:?}"),
    }
    assert!(!ws.is_closed());
    app.stop().await;
}
