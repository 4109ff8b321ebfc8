//! The HTTP surface: health checks, authentication, and malformed requests.

use renkei_tests::*;
use serde_json::json;
use uuid::Uuid;

const ME: &str = "{ me { kind organization { id } } }";

e2e!(health_and_readiness_need_no_token, |app| async move {
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
});

e2e!(
    every_answer_tells_browsers_not_to_sniff_its_type,
    |app| async move {
        let token = app.admin_token.clone();
        let answers = [
            app.client.get(app.url("/health")).send().await.unwrap(),
            app.client.get(app.url("/ready")).send().await.unwrap(),
            app.client
                .get(app.url("/no-such-page"))
                .send()
                .await
                .unwrap(),
            app.client
                .get(app.url("/fhir/metadata"))
                .send()
                .await
                .unwrap(),
            app.client
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .body("not json")
                .send()
                .await
                .unwrap(),
            app.client
                .post(app.url("/graphql"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "query": "{ me { kind } }" }))
                .send()
                .await
                .unwrap(),
        ];
        for answer in answers {
            assert_eq!(
                answer
                    .headers()
                    .get("x-content-type-options")
                    .and_then(|v| v.to_str().ok()),
                Some("nosniff"),
                "{} {:?}",
                answer.url(),
                answer.status()
            );
        }
    }
);

e2e!(graphiql_is_served_on_the_root, |app| async move {
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("graphiql"));
});

e2e!(
    a_request_without_a_token_is_unauthenticated_and_gets_no_data,
    |app| async move {
        let (status, body) = app.post(None, json!({ "query": ME })).await;
        assert_eq!(status, 401);
        assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
        assert!(
            body.get("data").is_none(),
            "no data for anonymous callers: {body}"
        );
    }
);

e2e!(
    malformed_authorization_headers_are_unauthenticated,
    |app| async move {
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token abc"] {
            let res = app
                .client
                .post(app.url("/graphql"))
                .header("authorization", header)
                .json(&json!({ "query": ME }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{header}");
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{header}"
            );
        }
    }
);

e2e!(
    bad_and_expired_tokens_are_unauthenticated,
    |app| async move {
        let org = app.organization("CLINIC", "みなみ野クリニック").await;
        let (member, token) = app.member(&org, "PHYSICIAN").await;
        let member = Uuid::parse_str(&member).unwrap();
        // The valid token works …
        let (status, _) = app.post(Some(&token), json!({ "query": ME })).await;
        assert_eq!(status, 200);
        // … and every way of getting it wrong does not.
        let cases = [
            (
                "expired",
                signed_token(member, TEST_JWT_SECRET, "renkei", "renkei", -3600),
            ),
            (
                "wrong secret",
                signed_token(
                    member,
                    "another-secret-0123456789abcdef012345",
                    "renkei",
                    "renkei",
                    3600,
                ),
            ),
            (
                "wrong issuer",
                signed_token(member, TEST_JWT_SECRET, "someone-else", "renkei", 3600),
            ),
            (
                "wrong audience",
                signed_token(member, TEST_JWT_SECRET, "renkei", "another-hub", 3600),
            ),
            (
                "unknown member",
                signed_token(Uuid::now_v7(), TEST_JWT_SECRET, "renkei", "renkei", 3600),
            ),
            ("garbage", "not.a.jwt".to_string()),
            ("tampered", format!("{token}x")),
            (
                "fake api key",
                "rk_0193f0a0b0c07000800000000000000a_secret".to_string(),
            ),
        ];
        for (case, bad) in cases {
            let (status, body) = app.post(Some(&bad), json!({ "query": ME })).await;
            assert_eq!(status, 401, "{case}: {body}");
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{case}"
            );
            assert!(body.get("data").is_none(), "{case}");
        }
    }
);

e2e!(malformed_json_is_a_bad_request, |app| async move {
    for raw in ["{\"query\": ", "[1,2", "not json", ""] {
        let res = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&app.admin_token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{raw:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body).as_deref(), Some("BAD_REQUEST"), "{raw:?}");
    }
});

e2e!(
    a_body_over_the_limit_is_refused_with_413,
    |app| async move {
        // The test server accepts 64 KiB.
        let padding = "x".repeat(100 * 1024);
        let (status, body) = app
            .post(
                Some(&app.admin_token),
                json!({ "query": ME, "variables": { "pad": padding } }),
            )
            .await;
        assert_eq!(status, 413);
        assert_eq!(error_code(&body).as_deref(), Some("PAYLOAD_TOO_LARGE"));
    }
);

e2e!(
    syntax_errors_unknown_fields_and_wrong_types_have_codes,
    |app| async move {
        let body = app.gql(&app.admin_token, "{ me { kind ", json!({})).await;
        assert_eq!(error_code(&body).as_deref(), Some("GRAPHQL_PARSE_FAILED"));

        let body = app
            .gql(
                &app.admin_token,
                "{ me { kind favouriteColour } }",
                json!({}),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED")
        );
        assert!(body["data"].is_null());

        let body = app
            .gql(
                &app.admin_token,
                "{ organizations(first: \"ten\") { edges { cursor } } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));

        let body = app
            .gql(
                &app.admin_token,
                "query($n: Int) { organizations(first: $n) { edges { cursor } } }",
                json!({ "n": "ten" }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
    }
);

e2e!(
    overly_deep_queries_are_refused_before_they_run,
    |app| async move {
        let mut query = String::from("{ me { organization { id } } }");
        for _ in 0..8 {
            query = query.replace(
                "organization { id }",
                "organization { members { organization { id } } }",
            );
        }
        let body = app.gql(&app.admin_token, &query, json!({})).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "{body}"
        );
    }
);

e2e!(every_response_carries_a_request_id, |app| async move {
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    let id = res.headers().get("x-request-id").expect("x-request-id");
    assert!(!id.is_empty());
    // A caller's own id is kept, so it can be traced through logs.
    let res = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "clinic-emr-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "clinic-emr-42");
});

fn eddsa_token(member: Uuid, ttl_seconds: i64) -> String {
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/ed25519-private.pem"
    ))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &json!({ "sub": member.to_string(), "iss": "renkei", "aud": "renkei", "iat": now, "exp": now + ttl_seconds }),
        &jsonwebtoken::EncodingKey::from_ed_pem(&pem).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_signed_with_a_configured_eddsa_key_are_accepted_and_others_refused() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.auth.jwt_secret = None;
        c.auth.jwt_public_key_file =
            Some(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ed25519-public.pem").into());
        c.auth.jwt_algorithm = "EdDSA".into();
    })
    .await;
    let (_, admin) = bootstrap_admin(&app.db).await;

    let (status, body) = app
        .post(Some(&eddsa_token(admin, 600)), json!({ "query": ME }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["kind"], "MEMBER");

    // An HS256 token, even with the old test secret, is not accepted any more.
    let (status, _) = app
        .post(Some(&token_for(admin)), json!({ "query": ME }))
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post(Some(&eddsa_token(admin, -600)), json!({ "query": ME }))
        .await;
    assert_eq!(status, 401);
    app.stop().await;
}

/// Sends `request` over a raw connection and returns the status line, the
/// headers (lower-case names) and the body of the answer.
async fn raw(app: &TestApp, request: &str) -> (String, Vec<(String, String)>, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answered and closed")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // Content-Length framing (the error answers are not chunked).
    let body = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

e2e!(
    what_is_not_a_websocket_handshake_is_refused_in_json_with_a_code,
    |app| async move {
        // A plain GET (a browser opening the address).
        let (status, headers, body) = raw(
            app,
            "GET /graphql/ws HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UPGRADE_REQUIRED"),
            "{body}"
        );
        assert_eq!(header(&headers, "upgrade"), Some("websocket"));
        assert!(
            header(&headers, "content-type").is_some_and(|t| t.starts_with("application/json")),
            "{headers:?}"
        );

        // An upgrade to another version of the protocol.
        let (status, headers, body) = raw(
            app,
            "GET /graphql/ws HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await;
        assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
        assert_eq!(
            error_code(&body).as_deref(),
            Some("UPGRADE_REQUIRED"),
            "{body}"
        );
        assert_eq!(header(&headers, "sec-websocket-version"), Some("13"));

        // A handshake without its key.
        let (status, _, body) = raw(
            app,
            "GET /graphql/ws HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await;
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
        assert_eq!(error_code(&body).as_deref(), Some("BAD_REQUEST"), "{body}");

        // Another method.
        let res = app.client.put(app.url("/graphql/ws")).send().await.unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "GET");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            error_code(&body).as_deref(),
            Some("METHOD_NOT_ALLOWED"),
            "{body}"
        );
    }
);

e2e!(
    what_is_not_served_answers_with_a_code_not_an_empty_body,
    |app| async move {
        // A path the hub does not serve, with and without a token: the
        // path (which may hold an id) is not repeated.
        let res = app
            .client
            .get(app.url("/patients/00000000-0000-0000-0000-000000000001"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{res:?}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        assert!(
            !body.to_string().contains("00000000-0000"),
            "the path is not repeated: {body}"
        );

        // A served path, another method: 405 with the methods it answers.
        let res = app.client.delete(app.url("/health")).send().await.unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "GET,HEAD");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            error_code(&body).as_deref(),
            Some("METHOD_NOT_ALLOWED"),
            "{body}"
        );
        let res = app
            .client
            .post(app.url("/indicators.csv"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            error_code(&body).as_deref(),
            Some("METHOD_NOT_ALLOWED"),
            "{body}"
        );

        // Under /fhir the answer stays FHIR's own, the base with a
        // trailing slash included.
        for path in ["/fhir/Nothing", "/fhir/"] {
            let res = app.client.post(app.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 404, "{path}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["resourceType"], "OperationOutcome", "{path}: {body}");
        }
    }
);
