//! GraphiQL, served from the binary: the page in headless Chromium with the
//! network off, and the page's and files' headers over HTTP.

use renkei_server::graphiql::VENDORED;
use renkei_tests::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

e2e!(
    graphiql_works_offline_under_its_csp_and_shows_the_schema_once_a_token_is_set,
    |app| async move {
        let (_, physician) = app.member(&app.admin_org.to_string(), "PHYSICIAN").await;
        let (status, out, err) = run_node("graphiql.mjs", &[&app.url(""), &physician], &[]).await;
        assert!(status.success(), "graphiql.mjs failed: {err}{out}");
        let seen: Value = serde_json::from_str(out.trim()).expect("one JSON line");

        // Nothing but the hub was asked for anything, and the page came up.
        assert_eq!(seen["outside"], serde_json::json!([]), "{seen}");
        assert_eq!(seen["loadingGone"], true, "{seen}");
        // The policy was in force and nothing of the page broke it.
        assert!(
            seen["csp"]
                .as_str()
                .is_some_and(|csp| csp.contains("script-src 'self';")),
            "{seen}"
        );
        assert_eq!(seen["violations"], serde_json::json!([]), "{seen}");
        assert_eq!(seen["consoleErrors"], serde_json::json!([]), "{seen}");
        assert_eq!(seen["pageErrors"], serde_json::json!([]), "{seen}");
        // ... and it would have caught one: an injected inline script is
        // blocked and reported.
        assert_eq!(seen["inlineScriptBlocked"], true, "{seen}");

        // With the token in the Headers pane, the Docs know the Query type.
        let docs: Vec<&str> = seen["docs"]
            .as_array()
            .expect("docs")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for field in ["patient", "patientByLocalId", "careTeamPatients"] {
            assert!(docs.contains(&field), "Query.{field} in the Docs: {docs:?}");
        }
        // The default query ran with it.
        assert_eq!(seen["result"]["data"]["me"]["kind"], "MEMBER", "{seen}");
        assert_eq!(
            seen["result"]["data"]["me"]["member"]["profession"],
            "PHYSICIAN"
        );
        // A subscription went over the hub's WebSocket, the token in
        // connection_init, and was accepted.
        assert_eq!(
            seen["websocket"]["url"],
            format!("ws://{}/graphql/ws", app.addr)
        );
        assert_eq!(
            seen["websocket"]["init"]["payload"]["Authorization"],
            format!("Bearer {physician}")
        );
        assert_eq!(seen["websocket"]["ack"], true, "{seen}");
        // The token was not written to the browser's storage, and the
        // queries went to the tab's session only.
        assert_eq!(seen["storage"]["tokenStored"], false, "{seen}");
        assert_eq!(
            seen["storage"]["localKeys"],
            serde_json::json!([]),
            "{seen}"
        );
        assert!(seen["storage"]["sessionKeys"].as_u64() > Some(0), "{seen}");
    }
);

/// The `src` and `href` values of a page.
fn references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (i, _) in page.match_indices(attribute) {
            let rest = &page[i + attribute.len()..];
            found.push(rest[..rest.find('"').expect("a closing quote")].to_string());
        }
    }
    found
}

e2e!(
    the_page_and_its_files_carry_their_security_and_cache_headers,
    |app| async move {
        let page = app.client.get(app.url("/")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let header = |name: &str| {
            page.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(header("content-type"), "text/html; charset=utf-8");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self';",
            "style-src 'self';",
            "connect-src 'self';",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("cache-control"), "no-cache");
        let html = page.text().await.unwrap();
        assert!(
            !html.contains("unpkg") && !html.contains("https:"),
            "{html}"
        );

        let files: Vec<String> = references(&html)
            .into_iter()
            .filter(|r| r != "data:,")
            .collect();
        assert_eq!(files.len(), 6, "{files:?}");
        let mut vendored_seen = 0;
        for file in &files {
            assert!(file.starts_with("/graphiql/assets/"), "{file}");
            let res = app.client.get(app.url(file)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{file}");
            let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
            let expected = if file.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else {
                "text/css; charset=utf-8"
            };
            assert_eq!(content_type, expected, "{file}");
            assert_eq!(
                res.headers()["cache-control"],
                "public, max-age=31536000, immutable",
                "{file}"
            );
            assert_eq!(res.headers()["x-content-type-options"], "nosniff");
            let bytes = res.bytes().await.unwrap();
            let hash: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            // The path carries the content's digest, so a year's cache is safe.
            let digest = file.split('/').nth(3).unwrap();
            assert!(hash.starts_with(digest), "{file}: {hash}");
            if let Some((_, pinned)) = VENDORED.iter().find(|(name, _)| file.ends_with(name)) {
                assert_eq!(&hash, pinned, "{file} is served as pinned");
                vendored_seen += 1;
            }
        }
        assert_eq!(vendored_seen, VENDORED.len());

        // Another digest, another name, a way out: nothing.
        let script = files
            .iter()
            .find(|f| f.ends_with("renkei-graphiql.js"))
            .unwrap();
        for wrong in [
            script.replace(script.split('/').nth(3).unwrap(), "0000000000000000"),
            script.replace("renkei-graphiql.js", "Cargo.toml"),
            script.replace("renkei-graphiql.js", "..%2F..%2FCargo.toml"),
        ] {
            let res = app.client.get(app.url(&wrong)).send().await.unwrap();
            assert_eq!(res.status(), 404, "{wrong}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(
                error_code(&body).as_deref(),
                Some("NOT_FOUND"),
                "{wrong}: {body}"
            );
        }
    }
);
