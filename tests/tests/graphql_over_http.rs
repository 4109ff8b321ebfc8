//! GraphQL over HTTP: the `graphql-http` server audit against the spawned
//! hub, and the behaviours the hub chose (docs/graphql-over-http.md) —
//! media types and status codes, GET, refused content types, CORS.

use clap::Parser;
use renkei_tests::*;
use serde_json::{Value, json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Where the audit's results are recorded, between these markers.
const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/graphql-over-http.md");
const AUDIT_START: &str = "<!-- audit results: start -->";
const AUDIT_END: &str = "<!-- audit results: end -->";

/// Runs the audit; returns its results (one object per audit).
async fn audit(app: &TestApp) -> Vec<Value> {
    let url = app.url("/graphql");
    let (status, stdout, stderr) = run_node(
        "graphql-http-audit.mjs",
        &[],
        &[("HUB_URL", &url), ("HUB_TOKEN", &app.admin_token)],
    )
    .await;
    assert!(status.success(), "the audit did not run: {stderr}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("audit output is not JSON ({e}): {stdout}"))
}

/// The version of `graphql-http` pinned in tests/js/package.json.
fn audited_version() -> String {
    let package: Value = serde_json::from_str(
        &std::fs::read_to_string(js_dir().join("package.json")).expect("tests/js/package.json"),
    )
    .expect("package.json is JSON");
    package["dependencies"]["graphql-http"]
        .as_str()
        .expect("graphql-http is pinned")
        .to_string()
}

/// The results as the Markdown table the documentation records.
fn results_table(results: &[Value]) -> String {
    let tally: Vec<String> = ["MUST", "SHOULD", "MAY"]
        .iter()
        .map(|level| {
            let of_level = |r: &&Value| r["name"].as_str().is_some_and(|n| n.starts_with(level));
            let all = results.iter().filter(of_level).count();
            let passed = results
                .iter()
                .filter(of_level)
                .filter(|r| r["status"] == "ok")
                .count();
            format!("{level} {passed}/{all}")
        })
        .collect();
    let mut table = format!(
        "Passed: {} (graphql-http {}).\n\n| audit | requirement | result |\n|---|---|---|\n",
        tally.join(", "),
        audited_version()
    );
    for r in results {
        // `*/*` would start emphasis in Markdown.
        let name = r["name"].as_str().unwrap_or_default().replace('*', "\\*");
        let result = match r["status"].as_str() {
            Some("ok") => "pass".to_string(),
            _ => format!("**fail** ({})", r["reason"].as_str().unwrap_or_default()),
        };
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            r["id"].as_str().unwrap_or_default(),
            name,
            result
        ));
    }
    table
}

e2e!(
    the_graphql_http_audit_passes_every_must_and_should,
    |app| async move {
        let results = audit(app).await;
        // graphql-http 1.23.1 has 61 audits: an empty or truncated run is no pass.
        assert!(results.len() >= 61, "only {} audits ran", results.len());
        let failures: Vec<String> = results
            .iter()
            .filter(|r| r["status"] != "ok" && r["status"] != "notice")
            .map(|r| {
                format!(
                    "{} {}: {} — HTTP {} {}",
                    r["id"], r["name"], r["reason"], r["httpStatus"], r["body"]
                )
            })
            .collect();
        assert!(
            failures.is_empty(),
            "MUST/SHOULD failures of the GraphQL-over-HTTP audit:\n{}",
            failures.join("\n")
        );
        // The documentation records every result, MAYs included.
        let doc = std::fs::read_to_string(DOC).expect("docs/graphql-over-http.md");
        let recorded = doc
            .split_once(AUDIT_START)
            .and_then(|(_, rest)| rest.split_once(AUDIT_END))
            .map(|(table, _)| table.trim().to_string())
            .unwrap_or_default();
        let table = results_table(&results);
        assert_eq!(
            recorded,
            table.trim(),
            "docs/graphql-over-http.md does not record these audit results; put this table between its markers:\n{table}"
        );
    }
);

/// A request to `/graphql` with a token and headers of the test's choosing.
fn request(
    app: &TestApp,
    method: reqwest::Method,
    path_and_query: &str,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = app.client.request(method, app.url(path_and_query));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req
}

/// The GET URL of a query with variables.
fn get_url(query: &str, variables: Option<Value>, operation_name: Option<&str>) -> String {
    let mut url = reqwest::Url::parse("http://hub/graphql").unwrap();
    url.query_pairs_mut().append_pair("query", query);
    if let Some(v) = variables {
        url.query_pairs_mut()
            .append_pair("variables", &v.to_string());
    }
    if let Some(name) = operation_name {
        url.query_pairs_mut().append_pair("operationName", name);
    }
    format!("/graphql?{}", url.query().unwrap())
}

async fn status_type_body(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// The names of the organisations in the directory.
async fn organization_names(app: &TestApp) -> Vec<String> {
    let data = app
        .ok(
            &app.admin_token,
            "{ organizations(first: 100) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    data["organizations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap().to_string())
        .collect()
}

const REGISTER: &str =
    r#"mutation { registerOrganization(input: { kind: CLINIC, name: "NAME" }) { id } }"#;

e2e!(
    a_post_body_that_is_not_json_is_refused_with_415_and_not_run,
    |app| async move {
        let mutation = |name: &str| REGISTER.replace("NAME", name);
        let json_text = |name: &str| json!({ "query": mutation(name) }).to_string();
        let form = format!("query={}", url_encode(&mutation("フォーム送信")));
        let cases: Vec<(&str, Option<&str>, String)> = vec![
            (
                "text/plain",
                Some("text/plain;charset=UTF-8"),
                json_text("テキスト送信"),
            ),
            ("form", Some("application/x-www-form-urlencoded"), form),
            (
                "multipart",
                Some("multipart/form-data; boundary=X"),
                format!(
                    "--X\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{}\r\n--X--\r\n",
                    json_text("マルチパート送信")
                ),
            ),
            ("no content type", None, json_text("型なし送信")),
            (
                "another charset",
                Some("application/json; charset=latin1"),
                json_text("文字コード送信"),
            ),
        ];
        for (case, content_type, body) in cases {
            let mut req = request(
                app,
                reqwest::Method::POST,
                "/graphql",
                Some(&app.admin_token),
            )
            .body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let (status, _, body) = status_type_body(req.send().await.unwrap()).await;
            assert_eq!(status, 415, "{case}: {body}");
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNSUPPORTED_MEDIA_TYPE"),
                "{case}"
            );
            assert!(body.get("data").is_none(), "{case}: {body}");
        }
        // A compressed body is refused for its coding, not as broken JSON
        // (the hub reads bodies as sent); `identity` is no coding.
        for (coding, status) in [("gzip", 415), ("br, gzip", 415), ("identity", 200)] {
            let (got, _, body) = status_type_body(
                request(
                    app,
                    reqwest::Method::POST,
                    "/graphql",
                    Some(&app.admin_token),
                )
                .header("content-type", "application/json")
                .header("content-encoding", coding)
                .body(json_text(&format!("符号化送信{status}")))
                .send()
                .await
                .unwrap(),
            )
            .await;
            assert_eq!(got, status, "{coding}: {body}");
            if status == 415 {
                assert_eq!(
                    error_code(&body).as_deref(),
                    Some("UNSUPPORTED_MEDIA_TYPE"),
                    "{coding}"
                );
                assert!(
                    body["errors"][0]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("Content-Encoding")),
                    "{body}"
                );
            }
        }
        let names = organization_names(app).await;
        assert!(names.iter().any(|n| n == "符号化送信200"), "{names:?}");
        for name in [
            "符号化送信415",
            "テキスト送信",
            "フォーム送信",
            "マルチパート送信",
            "型なし送信",
            "文字コード送信",
        ] {
            assert!(
                !names.iter().any(|n| n == name),
                "{name} was registered: {names:?}"
            );
        }
        // The same mutation as JSON runs.
        let (status, _, body) = status_type_body(
            request(
                app,
                reqwest::Method::POST,
                "/graphql",
                Some(&app.admin_token),
            )
            .header("content-type", "application/json; charset=utf-8")
            .body(json_text("JSON送信"))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            organization_names(app)
                .await
                .iter()
                .any(|n| n == "JSON送信")
        );
    }
);

fn url_encode(text: &str) -> String {
    url_form(&[("x", text)])["x=".len()..].to_string()
}

fn url_form(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://hub/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap().to_string()
}

e2e!(
    a_get_with_a_query_runs_it_in_the_media_type_asked_for,
    |app| async move {
        let url = get_url(
            "query Who($n: Int) { me { kind } organizations(first: $n) { edges { cursor } } }",
            Some(json!({ "n": 1 })),
            Some("Who"),
        );
        let res = request(app, reqwest::Method::GET, &url, Some(&app.admin_token))
            .header(
                "accept",
                "application/graphql-response+json, application/json;q=0.9",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["cache-control"], "no-store");
        let (status, content_type, body) = status_type_body(res).await;
        assert_eq!(status, 200, "{body}");
        assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
        assert_eq!(body["data"]["me"]["kind"], "MEMBER", "{body}");
        assert_eq!(
            body["data"]["organizations"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "{body}"
        );

        // Without an Accept header (or with */*): application/json.
        for accept in [None, Some("*/*"), Some("application/json")] {
            let mut req = request(app, reqwest::Method::GET, &url, Some(&app.admin_token));
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            let (status, content_type, body) = status_type_body(req.send().await.unwrap()).await;
            assert_eq!(status, 200, "{accept:?}: {body}");
            assert!(
                content_type.starts_with("application/json"),
                "{accept:?}: {content_type}"
            );
            assert_eq!(body["data"]["me"]["kind"], "MEMBER");
        }

        // An Accept naming neither JSON type is answered 406.
        let (status, _, body) = status_type_body(
            request(
                app,
                reqwest::Method::POST,
                "/graphql",
                Some(&app.admin_token),
            )
            .header("accept", "application/xml")
            .json(&json!({ "query": "{ me { kind } }" }))
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 406);
        assert_eq!(error_code(&body).as_deref(), Some("NOT_ACCEPTABLE"));
    }
);

e2e!(a_get_never_runs_a_mutation, |app| async move {
    let two = format!(
        "query Read {{ me {{ kind }} }} {}",
        REGISTER
            .replace("mutation", "mutation Write")
            .replace("NAME", "GET登録")
    );
    for (query, operation) in [
        (REGISTER.replace("NAME", "GET登録"), None),
        (two.clone(), Some("Write")),
    ] {
        let res = request(
            app,
            reqwest::Method::GET,
            &get_url(&query, None, operation),
            Some(&app.admin_token),
        )
        .header("accept", GRAPHQL_RESPONSE)
        .send()
        .await
        .unwrap();
        assert_eq!(res.headers()["allow"], "POST");
        let (status, _, body) = status_type_body(res).await;
        assert_eq!(status, 405, "{body}");
        assert_eq!(error_code(&body).as_deref(), Some("METHOD_NOT_ALLOWED"));
        assert!(body.get("data").is_none());
    }
    assert!(!organization_names(app).await.iter().any(|n| n == "GET登録"));
    // The query of the same document runs.
    let (status, _, body) = status_type_body(
        request(
            app,
            reqwest::Method::GET,
            &get_url(&two, None, Some("Read")),
            Some(&app.admin_token),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["kind"], "MEMBER");
    // Other methods are not GraphQL's.
    let res = request(
        app,
        reqwest::Method::PUT,
        "/graphql",
        Some(&app.admin_token),
    )
    .json(&json!({ "query": "{ me { kind } }" }))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.headers()["allow"].to_str().unwrap().contains("POST"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "METHOD_NOT_ALLOWED",
        "{body}"
    );
});

e2e!(
    request_errors_are_400_without_data_under_graphql_response_json,
    |app| async move {
        let cases = [
            (
                "parse",
                json!({ "query": "{ me { kind " }),
                "GRAPHQL_PARSE_FAILED",
            ),
            (
                "validation",
                json!({ "query": "{ me { kind favouriteColour } }" }),
                "GRAPHQL_VALIDATION_FAILED",
            ),
            (
                "variable coercion",
                json!({ "query": "query($n: Int) { organizations(first: $n) { edges { cursor } } }", "variables": { "n": "ten" } }),
                "BAD_USER_INPUT",
            ),
            (
                "missing non-null variable",
                json!({ "query": "query($id: ID!) { patient(id: $id) { name } }" }),
                "BAD_USER_INPUT",
            ),
            (
                "null for a non-null variable",
                json!({ "query": "query($id: ID!) { patient(id: $id) { name } }", "variables": { "id": null } }),
                "BAD_USER_INPUT",
            ),
            (
                "unknown operation",
                json!({ "query": "query A { me { kind } }", "operationName": "B" }),
                "BAD_USER_INPUT",
            ),
        ];
        for (case, body, code) in &cases {
            let post = |accept: &'static str| {
                request(
                    app,
                    reqwest::Method::POST,
                    "/graphql",
                    Some(&app.admin_token),
                )
                .header("accept", accept)
                .json(body)
                .send()
            };
            let (status, content_type, answer) =
                status_type_body(post(GRAPHQL_RESPONSE).await.unwrap()).await;
            assert_eq!(status, 400, "{case}: {answer}");
            assert!(
                content_type.starts_with(GRAPHQL_RESPONSE),
                "{case}: {content_type}"
            );
            assert!(
                answer.get("data").is_none(),
                "{case}: no data entry: {answer}"
            );
            assert_eq!(
                error_code(&answer).as_deref(),
                Some(*code),
                "{case}: {answer}"
            );
            // Legacy clients keep their 200, with `data: null`.
            let (status, content_type, answer) =
                status_type_body(post("application/json").await.unwrap()).await;
            assert_eq!(status, 200, "{case}: {answer}");
            assert!(
                content_type.starts_with("application/json"),
                "{case}: {content_type}"
            );
            assert!(
                answer.get("data").is_some_and(Value::is_null),
                "{case}: {answer}"
            );
            assert_eq!(
                error_code(&answer).as_deref(),
                Some(*code),
                "{case}: {answer}"
            );
        }
        // A field error is no request error: 200 with the data entry, even
        // when it nulls all of `data` (`patient` is non-null).
        let (status, _, answer) = status_type_body(
            request(app, reqwest::Method::POST, "/graphql", Some(&app.admin_token))
                .header("accept", GRAPHQL_RESPONSE)
                .json(&json!({ "query": "query($id: ID!) { patient(id: $id) { name } }", "variables": { "id": uuid::Uuid::now_v7() } }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.get("data").is_some_and(Value::is_null), "{answer}");
        assert_eq!(error_code(&answer).as_deref(), Some("NOT_FOUND"));
        // A request that is no GraphQL request at all is a 400 for everyone.
        for accept in [GRAPHQL_RESPONSE, "application/json"] {
            for body in [
                json!({ "qeury": "{ me { kind } }" }),
                json!([{ "query": "{ me { kind } }" }]),
                json!({ "query": "{ me { kind } }", "variables": [1] }),
            ] {
                let (status, _, answer) = status_type_body(
                    request(
                        app,
                        reqwest::Method::POST,
                        "/graphql",
                        Some(&app.admin_token),
                    )
                    .header("accept", accept)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
                )
                .await;
                assert_eq!(status, 400, "{accept} {body}: {answer}");
                assert_eq!(error_code(&answer).as_deref(), Some("BAD_REQUEST"));
            }
        }
    }
);

e2e!(
    an_anonymous_caller_gets_401_on_every_method_before_anything_is_read,
    |app| async move {
        let get = get_url("{ me { kind } }", None, None);
        let requests = [
            ("GET query", request(app, reqwest::Method::GET, &get, None)),
            (
                "GET mutation",
                request(
                    app,
                    reqwest::Method::GET,
                    &get_url(REGISTER, None, None),
                    None,
                ),
            ),
            (
                "GET without query",
                request(app, reqwest::Method::GET, "/graphql", None)
                    .header("accept", "application/json"),
            ),
            (
                "POST",
                request(app, reqwest::Method::POST, "/graphql", None)
                    .json(&json!({ "query": "{ me { kind } }" })),
            ),
            (
                "POST broken",
                request(app, reqwest::Method::POST, "/graphql", None)
                    .header("content-type", "application/json")
                    .body("{"),
            ),
            (
                "POST text",
                request(app, reqwest::Method::POST, "/graphql", None)
                    .header("content-type", "text/plain")
                    .body("{}"),
            ),
            (
                "POST graphql-response",
                request(app, reqwest::Method::POST, "/graphql", None)
                    .header("accept", GRAPHQL_RESPONSE)
                    .json(&json!({ "query": "{ me {" })),
            ),
        ];
        for (case, req) in requests {
            let res = req.send().await.unwrap();
            assert_eq!(res.headers()["www-authenticate"], "Bearer", "{case}");
            let (status, _, body) = status_type_body(res).await;
            assert_eq!(status, 401, "{case}: {body}");
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{case}"
            );
            assert!(body.get("data").is_none(), "{case}: {body}");
        }
    }
);

e2e!(
    a_patient_read_by_get_leaves_its_audit_entry,
    |app| async move {
        let clinic = app.organization("CLINIC", "GETクリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "GET-1").await;
        let url = get_url(
            "query($id: ID!) { patient(id: $id) { name } }",
            Some(json!({ "id": patient })),
            None,
        );
        let res = request(app, reqwest::Method::GET, &url, Some(&doctor))
            .header("accept", GRAPHQL_RESPONSE)
            .header("x-request-id", "get-read-1")
            .send()
            .await
            .unwrap();
        let (status, _, body) = status_type_body(res).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["patient"]["name"], "連携 花子");
        let log = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action requestId outcome } } } }",
                json!({ "p": patient }),
            )
            .await;
        let reads: Vec<&Value> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .filter(|n| n["requestId"] == "get-read-1")
            .collect();
        assert_eq!(reads.len(), 1, "{log}");
        assert_eq!(reads[0]["action"], "READ");
    }
);

e2e!(
    a_browser_opening_the_endpoint_gets_graphiql,
    |app| async move {
        for path in ["/graphql", "/"] {
            let res = request(app, reqwest::Method::GET, path, None)
                .header(
                    "accept",
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                )
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{path}");
            assert!(
                res.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
                "{path}"
            );
            assert!(res.text().await.unwrap().contains("graphiql"), "{path}");
        }
        // A client that is no browser gets no page: a request without `query`.
        let (status, _, body) = status_type_body(
            request(
                app,
                reqwest::Method::GET,
                "/graphql",
                Some(&app.admin_token),
            )
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_code(&body).as_deref(), Some("BAD_REQUEST"));
        // The same browser following a link with a query runs it (with a token).
        let res = request(
            app,
            reqwest::Method::GET,
            &get_url("{ me { kind } }", None, None),
            Some(&app.admin_token),
        )
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
        let (status, content_type, body) = status_type_body(res).await;
        assert_eq!(status, 200);
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(body["data"]["me"]["kind"], "MEMBER");
    }
);

const PORTAL: &str = "https://portal.example.jp";

async fn with_cors() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |c| {
        c.cors_allowed_origins = vec![
            renkei_server::config::AllowedOrigin::parse(PORTAL).unwrap(),
            renkei_server::config::AllowedOrigin::parse("http://localhost:5173").unwrap(),
        ]
    })
    .await
}

fn preflight(app: &TestApp, origin: &str) -> reqwest::RequestBuilder {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
}

fn cors_headers(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .map(|k| k.to_string())
        .collect()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_and_its_calls_may_be_read() {
    let app = with_cors().await;
    let res = preflight(&app, PORTAL).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], PORTAL);
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        methods.contains("post") && methods.contains("get"),
        "{methods}"
    );
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h.get("access-control-allow-credentials").is_none());

    let res = app
        .client
        .post(app.url("/graphql"))
        .header("origin", PORTAL)
        .bearer_auth(&app.admin_token)
        .json(&json!({ "query": "{ me { kind } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], PORTAL);
    assert!(
        res.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-request-id")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["me"]["kind"], "MEMBER");

    // The second listed origin too.
    let res = preflight(&app, "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_origin_not_listed_gets_no_cors_headers() {
    let app = with_cors().await;
    for origin in [
        "https://evil.example.com",
        "http://portal.example.jp",
        "https://portal.example.jp.evil.com",
        "null",
    ] {
        let res = preflight(&app, origin).send().await.unwrap();
        assert_eq!(cors_headers(&res), Vec::<String>::new(), "{origin}");
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("origin", origin)
            .bearer_auth(&app.admin_token)
            .json(&json!({ "query": "{ me { kind } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(cors_headers(&res), Vec::<String>::new(), "{origin}");
    }
    // A page the hub serves itself (GraphiQL) calls from the hub's own
    // origin: browsers send Origin on such a POST and need no CORS answer.
    let own = format!("http://{}", app.addr);
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("origin", &own)
        .bearer_auth(&app.admin_token)
        .json(&json!({ "query": "{ me { kind } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["me"]["kind"], "MEMBER");
    app.stop().await;
}

e2e!(
    without_configured_origins_no_cross_origin_call_is_allowed,
    |app| async move {
        let res = preflight(app, PORTAL).send().await.unwrap();
        assert_eq!(res.status(), 405);
        assert_eq!(cors_headers(&res), Vec::<String>::new());
        let res = app
            .client
            .post(app.url("/graphql"))
            .header("origin", PORTAL)
            .bearer_auth(&app.admin_token)
            .json(&json!({ "query": "{ me { kind } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(cors_headers(&res), Vec::<String>::new());
    }
);

#[test]
fn the_allowed_origins_are_a_comma_list_and_a_bad_one_refuses_the_start() {
    let serve = |origins: &str| {
        renkei_server::cli::Cli::try_parse_from([
            "renkei",
            "serve",
            "--cors-allowed-origins",
            origins,
        ])
        .map(|cli| match cli.command {
            renkei_server::cli::Command::Serve(config) => config
                .cors_allowed_origins
                .iter()
                .map(|o| o.as_str().to_string())
                .collect::<Vec<_>>(),
            _ => unreachable!(),
        })
    };
    assert_eq!(
        serve("https://portal.example.jp,http://LOCALHOST:5173/").unwrap(),
        ["https://portal.example.jp", "http://localhost:5173"]
    );
    for (bad, quoted) in [
        (
            "https://portal.example.jp,portal.example.jp",
            "\"portal.example.jp\"",
        ),
        ("*", "\"*\""),
        (
            "https://portal.example.jp/app",
            "\"https://portal.example.jp/app\"",
        ),
        ("https://portal.example.jp,", "\"\""),
    ] {
        let err = serve(bad).expect_err(bad).to_string();
        assert!(
            err.contains(quoted) && err.contains("RENKEI_CORS_ALLOWED_ORIGINS"),
            "{bad}: {err}"
        );
    }
}

e2e!(
    a_document_nested_too_deep_is_refused_before_it_is_parsed,
    |app| async move {
        // 400 levels of brackets in an argument overflowed the parser's
        // stack and aborted the hub — without a token. Refused now on the
        // text, on every way in, and the hub answers on.
        let deep = format!(
            "{{ publicDirectory(filter: {}1{}) {{ __typename }} }}",
            "[".repeat(400),
            "]".repeat(400)
        );
        let objects = format!(
            "{{ me(x: {}) {{ kind }} }}",
            "{a: ".repeat(300) + "1" + &"}".repeat(300)
        );
        // Without a token: only the public directory is answered, and this is not it.
        let res = request(app, reqwest::Method::POST, "/graphql", None)
            .json(&json!({ "query": deep }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let res = request(app, reqwest::Method::GET, &get_url(&deep, None, None), None)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        // With one: a parse error, naming the limit, answered as any
        // document that does not parse — 200 with `data: null` under
        // application/json (no Accept), 400 under
        // application/graphql-response+json.
        for (query, accept) in [
            (&deep, None),
            (&objects, None),
            (&deep, Some(GRAPHQL_RESPONSE)),
            (&objects, Some(GRAPHQL_RESPONSE)),
        ] {
            let mut req = request(
                app,
                reqwest::Method::POST,
                "/graphql",
                Some(&app.admin_token),
            )
            .json(&json!({ "query": query }));
            if let Some(accept) = accept {
                req = req.header("accept", accept);
            }
            let (status, _, body) = status_type_body(req.send().await.unwrap()).await;
            if accept.is_some() {
                assert_eq!(status, 400, "{body}");
                assert!(body.get("data").is_none(), "{body}");
            } else {
                assert_eq!(status, 200, "{body}");
                assert!(
                    body["data"].is_null() && body.get("data").is_some(),
                    "{body}"
                );
            }
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
                "{body}"
            );
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("nested at most 64"),
                "{body}"
            );
        }
        let mut ws = app.ws(&app.admin_token).await;
        let id = ws.subscribe(&deep, json!({})).await;
        match ws.next_of(&id).await {
            WsMessage::Error(errors) => {
                assert_eq!(
                    errors[0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
                    "{errors}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Still up.
        let data = app.ok(&app.admin_token, "{ me { kind } }", json!({})).await;
        assert_eq!(data["me"]["kind"], "MEMBER");
    }
);

e2e!(
    a_body_naming_a_key_twice_is_refused_and_not_run,
    |app| async move {
        // A proxy keeping the first `query` would see a harmless query where
        // serde_json, keeping the last, would run the mutation.
        let mutation = REGISTER.replace("NAME", "重複キー送信");
        let cases = [
            format!(
                r#"{{"query": "{{ me {{ kind }} }}", "query": {}}}"#,
                json!(mutation)
            ),
            format!(
                r#"{{"query": {}, "variables": {{"a": 1, "a": 2}}}}"#,
                json!(mutation)
            ),
        ];
        for body in cases {
            let (status, _, answer) = status_type_body(
                request(
                    app,
                    reqwest::Method::POST,
                    "/graphql",
                    Some(&app.admin_token),
                )
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap(),
            )
            .await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert_eq!(error_code(&answer).as_deref(), Some("BAD_REQUEST"));
            assert!(
                answer["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("is given twice")),
                "{answer}"
            );
        }
        // The same in a GET's `variables`.
        let url = format!(
            "/graphql?query={}&variables={}",
            url_encode("query($n: Int) { organizations(first: $n) { edges { cursor } } }"),
            url_encode(r#"{"n": 1, "n": 100}"#)
        );
        let (status, _, answer) = status_type_body(
            request(app, reqwest::Method::GET, &url, Some(&app.admin_token))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(error_code(&answer).as_deref(), Some("BAD_REQUEST"));
        let names = organization_names(app).await;
        assert!(!names.iter().any(|n| n == "重複キー送信"), "{names:?}");
    }
);

e2e!(
    numbers_in_variables_are_read_in_every_json_form,
    |app| async move {
        let clinic = app.organization("CLINIC", "数値クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "NUM-1").await;
        // JSON's numbers as serialisers write them: an exponent
        // (JavaScript's JSON.stringify writes 1e-7 so), more digits than a
        // float holds, a whole number for a Float — over POST and GET.
        let write = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { data { ... on VitalSignsData { temperature spo2 } } } } }";
        let post = |variables: String| {
            let body = format!(r#"{{"query": {}, "variables": {variables}}}"#, json!(write));
            request(app, reqwest::Method::POST, "/graphql", Some(&doctor))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        for (n, (temperature, spo2, want)) in [
            ("3.65e1", "98", 36.5),
            ("365E-1", "9.8E1", 36.5),
            ("36.50000000000000000001", "98.0", 36.5),
            ("37", "1e2", 37.0),
        ]
        .into_iter()
        .enumerate()
        {
            let variables = format!(
                r#"{{"i": {{"records": [{{"patientId": "{patient}", "sourceRecordId": "V-{n}", "effectiveAt": "2026-01-05T00:00:00Z", "data": {{"vitalSigns": {{"temperature": {temperature}, "spo2": {spo2}}}}}}}]}}}}"#
            );
            let (status, _, answer) = status_type_body(post(variables).await.unwrap()).await;
            assert_eq!(status, 200, "{temperature}: {answer}");
            let data = &answer["data"]["writeRecords"][0]["record"]["data"];
            assert_eq!(data["temperature"].as_f64(), Some(want), "{answer}");
        }
        // Beyond any float: refused as not a Float.
        let variables = format!(
            r#"{{"i": {{"records": [{{"patientId": "{patient}", "effectiveAt": "2026-01-05T00:00:00Z", "data": {{"vitalSigns": {{"temperature": 1e400}}}}}}]}}}}"#
        );
        let (_, _, answer) = status_type_body(post(variables).await.unwrap()).await;
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("BAD_USER_INPUT"),
            "{answer}"
        );
        // A query over GET: variables in the URL, an exponent too.
        let url = get_url(
            "query($first: Int!) { careTeamPatients(first: $first) { nodes { id } } }",
            Some(serde_json::from_str(r#"{"first": 1e1}"#).unwrap()),
            None,
        );
        let (status, _, answer) = status_type_body(
            request(app, reqwest::Method::GET, &url, Some(&doctor))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["errors"].is_null(), "{answer}");
    }
);
