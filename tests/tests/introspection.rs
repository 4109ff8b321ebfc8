//! Introspection as the tools send it, the limits that still hold for data,
//! and the switch that turns introspection off (`RENKEI_INTROSPECTION`).

use std::time::{Duration, Instant};

use renkei_tests::*;
use serde_json::{Value, json};

/// `me { member { organization { members { organization … } } } }`, the
/// directory's cycle, `levels` fields deep.
fn directory_chain(levels: usize) -> String {
    assert!(levels >= 3);
    // me(1) member(2), then organization / members alternately, then `name`.
    let mut inner = String::from("name");
    let mut hops = Vec::new();
    for i in 0..levels - 3 {
        hops.push(if i % 2 == 0 {
            "organization"
        } else {
            "members"
        });
    }
    // The leaf must sit on an organisation or a member: both have `name`.
    for hop in hops.iter().rev() {
        inner = format!("{hop} {{ {inner} }}");
    }
    format!("{{ me {{ member {{ {inner} }} }} }}")
}

fn first_error(body: &Value) -> (&str, &str) {
    (
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default(),
        body["errors"][0]["message"].as_str().unwrap_or_default(),
    )
}

e2e!(
    the_standard_introspection_query_builds_a_client_schema_in_graphql_js,
    |app| async move {
        let (_, physician) = app.member(&app.admin_org.to_string(), "PHYSICIAN").await;
        let (status, out, err) =
            run_node("introspection.mjs", &[&app.url(""), &physician], &[]).await;
        assert!(status.success(), "introspection.mjs failed: {err}{out}");
        let seen: Value = serde_json::from_str(out.trim()).expect("one JSON line");
        let has = |list: &str, name: &str| {
            seen[list]
                .as_array()
                .is_some_and(|l| l.iter().any(|v| v == name))
        };
        assert_eq!(seen["queryType"], "Query");
        assert_eq!(seen["mutationType"], "Mutation");
        assert_eq!(seen["subscriptionType"], "Subscription");
        for field in ["patient", "patientByLocalId", "organizations", "me"] {
            assert!(has("queryFields", field), "Query.{field}: {seen}");
        }
        for field in ["patientEvents", "notifications"] {
            assert!(
                has("subscriptionFields", field),
                "Subscription.{field}: {seen}"
            );
        }
        assert!(has("patientFields", "careTeam"), "{seen}");
        assert_eq!(
            seen["readmeErrors"],
            json!([]),
            "the README's query validates"
        );
        assert_ne!(seen["wrongErrors"], json!([]), "an unknown field does not");
    }
);

e2e!(introspection_needs_a_token, |app| async move {
    let query = json!({ "query": "{ __schema { queryType { name } } }" });
    let (status, body) = app.post(None, query.clone()).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(error_code(&body).as_deref(), Some("UNAUTHENTICATED"));
    assert!(body.get("data").is_none(), "{body}");
    let (status, body) = app.post(Some("not-a-token"), query.clone()).await;
    assert_eq!(status, 401, "{body}");
    // With one, it answers.
    let (status, body) = app.post(Some(&app.admin_token), query).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
});

e2e!(
    a_data_query_deeper_than_twelve_levels_is_still_refused,
    |app| async move {
        // Twelve levels run.
        let data = app
            .ok(&app.admin_token, &directory_chain(12), json!({}))
            .await;
        assert!(data["me"]["member"]["organization"].is_object(), "{data}");
        // Thirteen are refused before anything runs.
        let body = app
            .gql(&app.admin_token, &directory_chain(13), json!({}))
            .await;
        let (code, message) = first_error(&body);
        assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(message.contains("nested too deep"), "{body}");
        assert!(body["data"].is_null(), "{body}");
        // Introspection beside it opens no way around the limit.
        let beside = directory_chain(13).replacen('{', "{ __schema { queryType { name } } ", 1);
        let body = app.gql(&app.admin_token, &beside, json!({})).await;
        assert_eq!(first_error(&body).0, "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(first_error(&body).1.contains("nested too deep"), "{body}");
    }
);

e2e!(
    introspection_that_multiplies_through_fields_is_refused,
    |app| async move {
        let body = app
            .gql(
                &app.admin_token,
                "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
                json!({}),
            )
            .await;
        let (code, message) = first_error(&body);
        assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(message.contains("introspection depth"), "{body}");
        assert!(body["data"].is_null(), "{body}");
        // Two levels — a type's fields and their types' fields — answer.
        let data = app
            .ok(
                &app.admin_token,
                "{ __type(name: \"Patient\") { fields { name type { ofType { fields { name } } } } } }",
                json!({}),
            )
            .await;
        assert!(
            data["__type"]["fields"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        );
    }
);

e2e!(
    an_operation_of_more_than_two_thousand_fields_is_refused,
    |app| async move {
        // The same field again and again: aliases are bounded on their own
        // (RENKEI_MAX_ALIASES, tests/tests/fair_use.rs).
        let wide = |n: usize| format!("{{ {} }}", vec!["__typename"; n].join(" "));
        let data = app.ok(&app.admin_token, &wide(2000), json!({})).await;
        assert_eq!(data["__typename"], "Query");
        let body = app.gql(&app.admin_token, &wide(2001), json!({})).await;
        let (code, message) = first_error(&body);
        assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(message.contains("too complex"), "{body}");
    }
);

e2e!(
    fragments_that_spread_each_other_twice_over_are_refused_at_once,
    |app| async move {
        // Thirty lines that expand to 2^30 selections: async-graphql's own
        // checks would walk every one of them before refusing.
        let mut query = String::from("query { ...F0 }");
        for i in 0..30 {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        query.push_str(" fragment F30 on Query { __typename }");
        let started = Instant::now();
        let body = app.gql(&app.admin_token, &query, json!({})).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(first_error(&body).0, "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(first_error(&body).1.contains("too complex"), "{body}");
        // A fragment inside itself, by any route, is refused by name.
        let body = app
            .gql(
                &app.admin_token,
                "query { ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A ...A }",
                json!({}),
            )
            .await;
        assert_eq!(first_error(&body).0, "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(
            first_error(&body).1.contains("\"A\" within itself"),
            "{body}"
        );
    }
);

mod switched_off {
    use super::*;

    async fn hub(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |c| c.introspection = false).await
    }

    async fn check(app: &TestApp) {
        for query in [
            "{ __schema { queryType { name } } }",
            "{ __type(name: \"Patient\") { name } }",
            "query { me { kind } ...I } fragment I on Query { __schema { types { name } } }",
        ] {
            let body = app.gql(&app.admin_token, query, json!({})).await;
            let (code, message) = first_error(&body);
            assert_eq!(code, "INTROSPECTION_DISABLED", "{query}: {body}");
            assert!(message.contains("RENKEI_INTROSPECTION"), "{body}");
            assert!(body["data"].is_null(), "nothing runs: {body}");
        }
        // Over the WebSocket too.
        let mut ws = app.ws(&app.admin_token).await;
        let id = ws
            .subscribe("{ __schema { queryType { name } } }", json!({}))
            .await;
        let errors = match ws.next_of(&id).await {
            WsMessage::Error(errors) => errors,
            WsMessage::Next(payload) => payload["errors"].clone(),
            WsMessage::Complete => panic!("completed without a refusal"),
        };
        assert_eq!(
            errors[0]["extensions"]["code"], "INTROSPECTION_DISABLED",
            "{errors}"
        );
        // Not introspection: `__typename`, data, and the SDL a federation
        // gateway reads.
        let data = app
            .ok(
                &app.admin_token,
                "{ __typename me { kind } _service { sdl } }",
                json!({}),
            )
            .await;
        assert_eq!(data["__typename"], "Query");
        assert_eq!(data["me"]["kind"], "MEMBER");
        assert!(
            data["_service"]["sdl"]
                .as_str()
                .is_some_and(|sdl| sdl.contains("type Patient")),
            "{data}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = hub(Backend::Sqlite).await;
        check(&app).await;
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if !postgres_configured() {
            eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
            return;
        }
        let app = hub(Backend::Postgres).await;
        check(&app).await;
        app.stop().await;
    }
}
