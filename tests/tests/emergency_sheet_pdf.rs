//! The printable emergency sheet on paper: rendered to an A4 PDF by headless
//! Chromium (`tests/js/print-pdf.mjs`, with the Japanese font `.ci/run`
//! installs). A typical patient fits one page; a patient with much more
//! to say gets a second page rather than text cut off.

use std::time::Duration;

use renkei_schema::demo::{demo_member_id, demo_patient_id};
use renkei_schema::domain::Profession;
use renkei_server::config::AuthConfig;
use renkei_tests::*;
use serde_json::{Value, json};

const SHEET: &str = "mutation($i: EmergencyInformationRecordInput!) { recordEmergencyInformation(input: $i) { outcome } }";
const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }";

/// Prints the page of `patient` as `token` and returns what the script saw:
/// `status`, `pages`, `fonts`, `clipped`.
async fn print_pdf(app: &TestApp, token: &str, patient: &str) -> Value {
    let url = app.url(&format!("/patients/{patient}/emergency-sheet"));
    let (status, out, err) = run_node("print-pdf.mjs", &[&url, token], &[]).await;
    assert!(status.success(), "print-pdf.mjs failed: {err}{out}");
    serde_json::from_str(out.trim()).expect("one JSON line")
}

/// The PDF embeds a Japanese font: the headings and names are glyphs, not
/// tofu boxes.
fn has_japanese_font(seen: &Value) -> bool {
    seen["fonts"].as_array().is_some_and(|f| {
        f.iter().any(|n| {
            n.as_str()
                .is_some_and(|n| n.contains("CJK") || n.contains("IPA"))
        })
    })
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

async fn demo_first_patient_fits_one_page(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.demo = true;
        c.auth.jwt_secret = None;
    })
    .await;
    let seen = print_pdf(
        &app,
        &demo_token(Profession::Physician),
        &demo_patient_id(0).to_string(),
    )
    .await;
    assert_eq!(seen["status"], 200, "{seen}");
    assert_eq!(
        seen["pages"], 1,
        "the demo's first patient on one A4 page: {seen}"
    );
    assert!(has_japanese_font(&seen), "{seen}");
    assert_eq!(seen["clipped"], 0, "{seen}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_demos_first_patient_prints_on_one_a4_page() {
    demo_first_patient_fits_one_page(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_demos_first_patient_prints_on_one_a4_page() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    demo_first_patient_fits_one_page(Backend::Postgres).await;
}

e2e!(
    a_patient_with_much_to_say_gets_a_second_page_not_cut_text,
    |app| async move {
        let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "K-000003").await;
        // The most the sheet takes: 10 contacts, 10 expected emergencies
        // with long instructions, a long note; and many conditions and
        // prescriptions.
        let contacts: Vec<Value> = (0..10)
            .map(|i| json!({ "name": format!("連絡先 {i} 番目の方（みなみ野市在住）"), "relationship": "親族・近隣の支援者",
                             "phone": format!("090-1234-56{i:02}"), "available": "平日9時〜17時、夜間は留守番電話に伝言", "keyPerson": i == 0 }))
            .collect();
        let emergencies: Vec<Value> = (0..10)
            .map(|i| json!({ "situation": format!("想定される急変 {i}：呼吸困難・意識低下・胸痛など"),
                             "response": "まず本人の呼吸と意識を確認し、楽な姿勢をとらせる。\n訪問看護に連絡して指示を受ける。\n意識がない、呼吸がおかしい、強い胸痛が続くときはためらわず119番。\n救急隊にはこの用紙を渡す。",
                             "callFirst": "訪問看護 0157-27-3300" }))
            .collect();
        app.ok(
            &doctor,
            SHEET,
            json!({ "i": { "patientId": patient, "sourceRecordId": "EI-LONG", "effectiveAt": "2026-01-20T02:00:00Z",
                "data": {
                    "emergencyContacts": contacts,
                    "expectedEmergencies": emergencies,
                    "designatedHospital": { "name": "みなみ野市立総合病院", "phone": "0157-24-3111", "backupBed": true },
                    "note": "玄関の鍵はキーボックス。".repeat(20),
                } } }),
        )
        .await;
        let records: Vec<Value> = (0..15)
            .map(|i| json!({ "patientId": patient, "effectiveAt": "2026-01-10T00:00:00Z",
                             "data": { "condition": { "name": format!("慢性疾患 その{i}"), "icd10": "I10", "clinicalStatus": "ACTIVE" } } }))
            .chain((0..15).map(|i| json!({ "patientId": patient, "effectiveAt": "2026-01-12T00:00:00Z",
                             "data": { "prescription": { "medicationType": "PRESCRIPTION", "drug": format!("内服薬 {i} 錠5mg"), "dose": "1錠",
                                                         "route": "ORAL", "frequency": "1日1回朝食後", "startDate": "2026-01-12" } } })))
            .collect();
        app.ok(&doctor, WRITE, json!({ "i": { "records": records } }))
            .await;

        let seen = print_pdf(app, &doctor, &patient).await;
        assert_eq!(seen["status"], 200, "{seen}");
        assert_eq!(
            seen["pages"], 2,
            "the rest flows onto a second page: {seen}"
        );
        assert_eq!(seen["clipped"], 0, "no text cut off: {seen}");
        assert!(has_japanese_font(&seen), "{seen}");
    }
);

e2e!(
    a_bulk_print_gives_each_patient_pages_of_their_own_after_the_cover,
    |app| async move {
        let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let mut patients = Vec::new();
        for n in 0..3 {
            let patient = app.patient(&doctor, &format!("K-10{n}")).await;
            app.ok(
                &doctor,
                SHEET,
                json!({ "i": { "patientId": patient, "sourceRecordId": format!("EI-{n}"), "effectiveAt": "2026-01-20T02:00:00Z",
                    "data": {
                        "emergencyContacts": [{ "name": "連携 一郎", "relationship": "長男", "phone": "090-1234-5678", "keyPerson": true }],
                        "expectedEmergencies": [{ "situation": "呼吸困難", "response": "楽な姿勢にして訪問看護へ連絡", "callFirst": "訪問看護" }],
                        "designatedHospital": { "name": "みなみ野市立総合病院", "phone": "0157-24-3111", "backupBed": true },
                    } } }),
            )
            .await;
            patients.push(patient);
        }
        let query: Vec<String> = patients.iter().map(|p| format!("patient={p}")).collect();
        let url = app.url(&format!("/emergency-sheets?{}", query.join("&")));
        let (status, out, err) = run_node("print-pdf.mjs", &[&url, &doctor], &[]).await;
        assert!(status.success(), "print-pdf.mjs failed: {err}{out}");
        let seen: Value = serde_json::from_str(out.trim()).expect("one JSON line");
        assert_eq!(seen["status"], 200, "{seen}");
        assert_eq!(
            seen["pages"], 4,
            "a cover, then each patient's sheet on a page of its own: {seen}"
        );
        assert_eq!(seen["clipped"], 0, "{seen}");
        assert!(has_japanese_font(&seen), "{seen}");
    }
);
