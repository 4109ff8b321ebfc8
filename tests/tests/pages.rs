//! Pages for people, as people see them: headless Chromium
//! (`tests/js/page-check.mjs`) loads each page at a phone's width and at a
//! desk's, and the tests check that it renders, in Japanese, with a CJK font,
//! without sideways scrolling on the phone, without scripts, with every chart
//! and form control named — and that it shows what it should and nothing
//! else. Screenshots go to `target/page-screenshots/` (or
//! `RENKEI_SCREENSHOTS_DIR`), for people to look at.

use std::time::Duration;

use renkei_schema::demo::{demo_member_id, demo_patient_id};
use renkei_schema::domain::Profession;
use renkei_server::config::AuthConfig;
use renkei_tests::*;
use serde_json::Value;

/// Where the screenshots go: named by the tests, kept after them.
fn screenshot_dir() -> String {
    std::env::var("RENKEI_SCREENSHOTS_DIR").unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/page-screenshots")
            .to_string_lossy()
            .into_owned()
    })
}

/// Loads `path` in Chromium (as `token`, when given) and returns what the
/// page checker saw.
async fn check_page(app: &TestApp, path: &str, name: &str, token: Option<&str>) -> Value {
    let url = app.url(path);
    let dir = screenshot_dir();
    let mut args = vec![url.as_str(), dir.as_str(), name];
    if let Some(t) = token {
        args.push(t);
    }
    let (status, out, err) = run_node("page-check.mjs", &args, &[]).await;
    assert!(status.success(), "page-check.mjs failed: {err}{out}");
    let seen: Value = serde_json::from_str(out.trim()).expect("one JSON line");
    eprintln!("screenshots: {}", seen["screenshots"]);
    seen
}

/// What every page must be, whatever it shows.
fn assert_readable(seen: &Value) {
    for view in ["phone", "desk"] {
        let v = &seen[view];
        assert_eq!(v["lang"], "ja", "{view}: {v}");
        assert_eq!(v["scripts"], 0, "{view}: no scripts");
        assert_eq!(v["unnamedGraphics"], 0, "{view}: every chart is named");
        assert_eq!(
            v["unlabelledControls"], 0,
            "{view}: every control is labelled"
        );
        assert_eq!(v["headings"], 1, "{view}: one h1");
        assert_eq!(v["pageErrors"], serde_json::json!([]), "{view}");
    }
    assert_eq!(
        seen["phone"]["overflow"], false,
        "no sideways scrolling on a phone"
    );
    assert!(
        seen["fonts"].as_array().is_some_and(|f| f
            .iter()
            .any(|n| n.as_str().is_some_and(|n| n.contains("CJK")))),
        "a Japanese font renders the page: {}",
        seen["fonts"]
    );
}

fn demo_token(p: Profession) -> String {
    let auth = AuthConfig {
        jwt_algorithm: "RS256".into(),
        jwt_issuer: "renkei".into(),
        jwt_audience: "renkei".into(),
        api_key_cache_seconds: 60,
        ..Default::default()
    };
    renkei_server::auth::demo_token(&auth, demo_member_id(p), Duration::from_secs(600)).unwrap()
}

async fn demo(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.demo = true;
        c.auth.jwt_secret = None;
    })
    .await
}

macro_rules! demo_page_test {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let owned = demo(Backend::Sqlite).await;
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !postgres_configured() {
                    eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
                    return;
                }
                let owned = demo(Backend::Postgres).await;
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }
        }
    };
}

demo_page_test!(
    the_emergency_sheet_reads_on_a_phone_and_a_desk,
    |app| async move {
        let patient = demo_patient_id(0).to_string();
        let seen = check_page(
            app,
            &format!("/patients/{patient}/emergency-sheet"),
            &format!("emergency-sheet-{:?}", app.backend).to_lowercase(),
            Some(&demo_token(Profession::Physician)),
        )
        .await;
        assert_eq!(seen["status"], 200, "{seen}");
        assert_readable(&seen);
        let text = seen["phone"]["text"].as_str().unwrap();
        assert!(
            text.contains("救急医療情報") && text.contains("アレルギー"),
            "{text}"
        );
        assert!(
            !text.contains("閲覧権限なし"),
            "a physician of the team reads every part"
        );
    }
);

/// Names of the demo's patients a physician of the team can see: none may
/// appear on a public page.
async fn some_patient_names(app: &TestApp) -> Vec<String> {
    // Some are withheld (FORBIDDEN_FIELD: no consent covers the clinic).
    let body = app
        .gql(
            &demo_token(Profession::Physician),
            "{ careTeamPatients(first: 50) { edges { node { name } } } }",
            serde_json::json!({}),
        )
        .await;
    body["data"]["careTeamPatients"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"]["name"].as_str().map(str::to_string))
        .collect()
}

demo_page_test!(
    the_public_directory_page_shows_public_entries_and_nothing_else,
    |app| async move {
        let seen = check_page(
            app,
            "/directory?lat=43.80&lon=143.89&radius=20",
            &format!("directory-{:?}", app.backend).to_lowercase(),
            None,
        )
        .await;
        assert_eq!(seen["status"], 200, "{seen}");
        assert_readable(&seen);
        let text = seen["desk"]["text"].as_str().unwrap();
        assert!(text.contains("医療・介護資源マップ"), "{text}");
        assert!(
            text.contains("みなみ野在宅クリニック") && text.contains("在宅看取り"),
            "{text}"
        );
        assert!(
            text.contains("古い情報"),
            "stale vacancies are marked: {text}"
        );
        assert!(
            !text.contains("すずらん薬局"),
            "an entry not marked public: {text}"
        );
        assert!(!text.contains("看護師長"), "contact persons are not public");
        assert!(
            text.contains("ふれあいサロン 栄町"),
            "public community resources: {text}"
        );
        assert!(
            !text.contains("見守りネットワーク"),
            "a resource not marked public: {text}"
        );
        let patients = some_patient_names(app).await;
        assert!(!patients.is_empty());
        for name in &patients {
            assert!(
                !text.contains(name.as_str()),
                "a patient's name on the public page: {name}"
            );
        }
        // Bad input is said on the page, with the form kept.
        let res = app
            .client
            .get(app.url("/directory?lat=north&lon=143.9"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let html = res.text().await.unwrap();
        assert!(html.contains("緯度は数値で入力してください") && html.contains("value=\"north\""));
    }
);

demo_page_test!(
    the_vacancy_board_is_for_members_of_the_network,
    |app| async move {
        let res = app.client.get(app.url("/vacancies")).send().await.unwrap();
        assert_eq!(res.status(), 401, "no token, no board");
        let seen = check_page(
            app,
            "/vacancies",
            &format!("vacancies-{:?}", app.backend).to_lowercase(),
            Some(&demo_token(Profession::CareManager)),
        )
        .await;
        assert_eq!(seen["status"], 200, "{seen}");
        assert_readable(&seen);
        let text = seen["desk"]["text"].as_str().unwrap();
        assert!(
            text.contains("特別養護老人ホーム　緑風荘") && text.contains("空き 0 / 80"),
            "{text}"
        );
        assert!(
            text.contains("空き 2 / 10"),
            "the latest short-stay report, not the older one: {text}"
        );
        assert!(!text.contains("空き 4 / 10"), "{text}");
    }
);

demo_page_test!(
    the_indicators_dashboard_draws_its_charts_on_the_server,
    |app| async move {
        let seen = check_page(
        app,
        "/indicators?municipality=%E3%81%BF%E3%81%AA%E3%81%BF%E9%87%8E%E5%B8%82&from=2025-04-01&to=2026-04-01",
        &format!("indicators-{:?}", app.backend).to_lowercase(),
        Some(&demo_token(Profession::MunicipalStaff)),
    )
    .await;
        assert_eq!(seen["status"], 200, "{seen}");
        assert_readable(&seen);
        let text = seen["desk"]["text"].as_str().unwrap();
        assert!(
            text.contains("活用状況") && text.contains("共有された記録（種類別）"),
            "{text}"
        );
        assert!(text.contains("5未満"), "suppressed cells say so: {text}");
        let patients = some_patient_names(app).await;
        for name in &patients {
            assert!(
                !text.contains(name.as_str()),
                "a patient's name on the dashboard: {name}"
            );
        }
        // A physician is not the programme.
        let res = app
            .client
            .get(app.url("/indicators?municipality=%E3%81%BF%E3%81%AA%E3%81%BF%E9%87%8E%E5%B8%82"))
            .bearer_auth(demo_token(Profession::Physician))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
);
