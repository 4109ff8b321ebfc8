//! 救急医療情報の一括印刷: `GET /emergency-sheets`, the emergency sheets of
//! an organisation's patients (or of the patients named) in one document
//! printed ahead of a blackout — a cover, then each sheet on a page of its
//! own — audited as one `EXPORT` entry naming every patient printed.

use renkei_tests::*;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const REGISTER: &str = "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }";
const SHEET: &str = "mutation($i: EmergencyInformationRecordInput!) { recordEmergencyInformation(input: $i) { outcome } }";
const ADD: &str = "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const LOG: &str = "query($f: AuditLogFilterInput) { auditLog(filter: $f, first: 100) { edges { node { patientId action outcome categories detail requestId } } } }";

/// A care management office with three patients it may print, one whose
/// consent leaves out EMERGENCY_INFORMATION, and a clinic's patient the
/// office is not on the care team of.
struct Scene {
    care_manager: String,
    /// (id, name) of the three printable patients.
    printable: Vec<(String, &'static str)>,
    excluded: String,
    hidden: String,
}

const EXCLUDED_NAME: &str = "江藤 四郎";
const HIDDEN_NAME: &str = "秘密 五郎";
const CONTACT: &str = "青木 花子";

async fn register(app: &TestApp, token: &str, name: &str, local_id: &str) -> String {
    app.ok(
        token,
        REGISTER,
        json!({ "i": { "name": name, "nameKana": "テスト", "birthDate": "1938-07-15",
                        "sex": "MALE", "localId": local_id } }),
    )
    .await["registerPatient"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn scene(app: &TestApp) -> Scene {
    let care_office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "こぶし居宅介護支援事業所")
        .await;
    let (_, care_manager) = app.member(&care_office, "CARE_MANAGER").await;
    let mut printable = Vec::new();
    for (i, name) in ["青木 一郎", "井上 二葉", "上田 三郎"]
        .into_iter()
        .enumerate()
    {
        let id = register(app, &care_manager, name, &format!("CM-{i}")).await;
        app.consent(&care_manager, &id, json!({ "scope": "NETWORK" }))
            .await;
        printable.push((id, name));
    }
    // The first has a sheet registered; the others print 「未登録」.
    app.ok(
        &care_manager,
        SHEET,
        json!({ "i": { "patientId": printable[0].0, "sourceRecordId": "EI-1",
            "effectiveAt": "2026-01-20T02:00:00Z", "data": {
                "emergencyContacts": [{ "name": CONTACT, "relationship": "長女", "phone": "090-1234-5678", "keyPerson": true }],
                "diagnoses": [], "medications": []
            } } }),
    )
    .await;
    let excluded = register(app, &care_manager, EXCLUDED_NAME, "CM-X").await;
    app.consent(
        &care_manager,
        &excluded,
        json!({ "scope": "NETWORK", "excludedCategories": ["EMERGENCY_INFORMATION"] }),
    )
    .await;
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let hidden = register(app, &doctor, HIDDEN_NAME, "K-1").await;
    app.consent(&doctor, &hidden, json!({ "scope": "NETWORK" }))
        .await;
    Scene {
        care_manager,
        printable,
        excluded,
        hidden,
    }
}

/// Status, body, headers of `GET /emergency-sheets?{query}`.
async fn print(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = app
        .client
        .get(app.url(&format!("/emergency-sheets{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.expect("a body"), headers)
}

fn patients_query(ids: &[&str]) -> String {
    let params: Vec<String> = ids.iter().map(|id| format!("patient={id}")).collect();
    format!("?{}", params.join("&"))
}

/// The sheets of a document (each an `<article class="sheet">`; the cover
/// is `sheet cover`).
fn sheets(html: &str) -> usize {
    html.matches(r#"<article class="sheet">"#).count()
}

/// The document without the minute it was printed.
fn without_time(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find("Printed: ") {
        let end = at + "Printed: ".len();
        out.push_str(&rest[..end]);
        rest = &rest[(end + "2026-01-01 00:00".len()).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

async fn log(app: &TestApp, filter: Value) -> Vec<Value> {
    app.ok(&app.admin_token, LOG, json!({ "f": filter })).await["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn request_id(headers: &reqwest::header::HeaderMap) -> String {
    headers["x-request-id"].to_str().unwrap().to_string()
}

e2e!(
    a_care_manager_prints_every_patient_of_the_organisation,
    |app| async move {
        let s = scene(app).await;
        let (status, html, headers) = print(app, Some(&s.care_manager), "").await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
        );
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.to_lowercase().contains("<script"), "no scripts");
        assert!(html.contains("@page { size: A4; margin: 10mm }"));
        // A cover, then one sheet a patient, each on a new page.
        assert!(html.contains(r#"<article class="sheet cover">"#));
        assert_eq!(sheets(&html), 3, "{html}");
        assert!(html.contains(".sheet + .sheet { break-before: page"));
        let cover = &html[..html.find(r#"<article class="sheet">"#).unwrap()];
        for (_, name) in &s.printable {
            assert!(cover.contains(name), "{name} on the cover: {cover}");
            assert!(
                html.matches(*name).count() >= 2,
                "{name} on the cover and on the sheet"
            );
        }
        assert!(cover.contains("1938年7月15日"), "birth dates on the cover");
        assert!(cover.contains("印刷日時 / Printed:"));
        assert!(html.contains(CONTACT), "the registered sheet is printed");
        assert!(html.contains("未登録"), "an unregistered one says so");
        // Left out and only counted: the excluded consent; never the
        // patient of a team the office is not on.
        assert!(!html.contains(EXCLUDED_NAME), "{html}");
        assert!(!html.contains(HIDDEN_NAME));
        assert!(
            cover.contains(
                "ほかに1名は印刷していません（救急医療情報の閲覧権限なし 1名、該当なし 0名）"
            ),
            "{cover}"
        );

        // One EXPORT entry for the print, naming every patient printed.
        let request = request_id(&headers);
        let exports = log(app, json!({ "action": "EXPORT" })).await;
        assert_eq!(exports.len(), 1, "{exports:?}");
        let export = &exports[0];
        assert_eq!(export["requestId"], request.as_str());
        assert_eq!(export["outcome"], "OK");
        assert!(export["patientId"].is_null());
        let detail = export["detail"].as_str().unwrap();
        for (id, _) in &s.printable {
            assert!(detail.contains(id.as_str()), "{id} in {detail}");
        }
        assert!(!detail.contains(&s.excluded) && !detail.contains(&s.hidden));
        assert!(detail.contains("3 patients"), "{detail}");
        let categories = export["categories"].as_array().unwrap();
        for c in ["IDENTITY", "EMERGENCY_INFORMATION"] {
            assert!(categories.contains(&json!(c)), "{c} in {export}");
        }
        // Beside it, each patient's own reads, and the refusal.
        let of_request: Vec<Value> = log(app, json!({}))
            .await
            .into_iter()
            .filter(|e| e["requestId"] == request.as_str())
            .collect();
        for (id, _) in &s.printable {
            assert!(
                of_request.iter().any(|e| e["patientId"] == id.as_str()
                    && e["action"] == "READ"
                    && e["categories"]
                        .as_array()
                        .unwrap()
                        .contains(&json!("EMERGENCY_INFORMATION"))),
                "a READ of {id}: {of_request:?}"
            );
        }
        assert!(
            of_request
                .iter()
                .any(|e| e["patientId"] == s.excluded.as_str() && e["outcome"] == "DENIED"),
            "{of_request:?}"
        );

        // No entry, no document.
        app.db
            .execute_unprepared("DROP TABLE audit_head")
            .await
            .unwrap();
        let (status, html, _) = print(app, Some(&s.care_manager), "").await;
        assert_eq!(status, 500);
        assert!(
            s.printable.iter().all(|(_, name)| !html.contains(name)),
            "{html}"
        );
    }
);

e2e!(
    chosen_patients_print_and_unknown_ones_are_counted_alike,
    |app| async move {
        let s = scene(app).await;
        let (a, b) = (&s.printable[0], &s.printable[2]);
        let (status, html, headers) = print(
            app,
            Some(&s.care_manager),
            &patients_query(&[&a.0, &b.0, &a.0]),
        )
        .await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(sheets(&html), 2, "each named patient once");
        assert!(html.contains(a.1) && html.contains(b.1));
        assert!(!html.contains(s.printable[1].1));
        assert!(html.contains("指定された患者"));
        let exports = log(app, json!({ "action": "EXPORT" })).await;
        assert_eq!(exports.len(), 1);
        assert_eq!(exports[0]["requestId"], request_id(&headers).as_str());
        assert!(
            exports[0]["detail"]
                .as_str()
                .unwrap()
                .contains("2 patients")
        );

        // A patient of another team and one that does not exist: left out,
        // counted as not found, the same document and the same entries.
        let nowhere = uuid::Uuid::now_v7().to_string();
        let (status, hidden_html, hidden_headers) = print(
            app,
            Some(&s.care_manager),
            &patients_query(&[&a.0, &s.hidden]),
        )
        .await;
        assert_eq!(status, 200, "{hidden_html}");
        let (status, nowhere_html, nowhere_headers) = print(
            app,
            Some(&s.care_manager),
            &patients_query(&[&a.0, &nowhere]),
        )
        .await;
        assert_eq!(status, 200, "{nowhere_html}");
        assert_eq!(without_time(&hidden_html), without_time(&nowhere_html));
        assert_eq!(sheets(&hidden_html), 1);
        assert!(!hidden_html.contains(HIDDEN_NAME));
        assert!(
            hidden_html.contains(
                "ほかに1名は印刷していません（救急医療情報の閲覧権限なし 0名、該当なし 1名）"
            ),
            "{hidden_html}"
        );
        let entries = |request: String| async move {
            let mut shape: Vec<(String, String, bool)> = log(app, json!({}))
                .await
                .into_iter()
                .filter(|e| e["requestId"] == request.as_str())
                .map(|e| {
                    (
                        e["action"].as_str().unwrap().to_string(),
                        e["outcome"].as_str().unwrap().to_string(),
                        e["patientId"] == a.0.as_str(),
                    )
                })
                .collect();
            shape.sort();
            shape
        };
        let hidden_entries = entries(request_id(&hidden_headers)).await;
        assert_eq!(hidden_entries, entries(request_id(&nowhere_headers)).await);
        assert!(
            hidden_entries
                .iter()
                .any(|(action, _, _)| action == "DENIED"),
            "{hidden_entries:?}"
        );

        // Only those left out: a cover, no sheet, no export.
        let (status, html, _) =
            print(app, Some(&s.care_manager), &patients_query(&[&s.excluded])).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(sheets(&html), 0);
        assert!(!html.contains(EXCLUDED_NAME));
        assert!(html.contains("印刷できる患者はいません"));
        assert_eq!(log(app, json!({ "action": "EXPORT" })).await.len(), 3);

        // Bad requests.
        let (status, _, _) = print(app, Some(&s.care_manager), "?patient=not-an-id").await;
        assert_eq!(status, 400);
        let (status, _, _) = print(app, Some(&s.care_manager), "?team=1").await;
        assert_eq!(status, 400);
        let too_many: Vec<String> = (0..201).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        let (status, html, _) = print(app, Some(&s.care_manager), &patients_query(&too_many)).await;
        assert_eq!(status, 400, "{html}");
        assert!(html.contains("at most 200"), "{html}");
        let (status, _, _) = print(app, Some(&s.care_manager), "?after=garbage").await;
        assert_eq!(status, 400);
    }
);

e2e!(
    strangers_and_roles_without_emergency_information_get_no_sheet,
    |app| async move {
        let s = scene(app).await;
        let (status, html, headers) = print(app, None, "").await;
        assert_eq!(status, 401);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert!(s.printable.iter().all(|(_, name)| !html.contains(name)));
        let (status, _, _) = print(app, Some("not-a-token"), "").await;
        assert_eq!(status, 401);
        let query = patients_query(&[&s.printable[0].0]);
        let (status, _, _) = print(app, None, &query).await;
        assert_eq!(status, 401);

        // A municipality on the care team: its role does not read
        // emergency information, so nothing is printed or named.
        let city = app
            .organization("MUNICIPALITY", "みなみ野市 介護保険課")
            .await;
        let (_, clerk) = app.member(&city, "MUNICIPAL_STAFF").await;
        app.ok(
            &s.care_manager,
            ADD,
            json!({ "i": { "patientId": s.printable[0].0, "organizationId": city, "role": "MUNICIPALITY" } }),
        )
        .await;
        let (status, html, _) = print(app, Some(&clerk), "").await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(sheets(&html), 0);
        assert!(!html.contains(s.printable[0].1), "{html}");
        assert!(html.contains("閲覧権限なし 1名"), "{html}");
        assert!(log(app, json!({ "action": "EXPORT" })).await.is_empty());
    }
);
