//! Lists and pages count only what the caller may see: a caller without the
//! category (by role) or left out by the patient's consent gets the same
//! page — edges, cursors, `hasNextPage` — whether data it may not read
//! exists or not, and a caller with access pages through everything exactly.
//! (Issue #10, item 3: visibility is decided before paging, in SQL.)

use chrono::{Days, Duration};
use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};

const ADD_MEMBER: &str =
    "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const CREATE_SHEET: &str =
    "mutation($i: CreateAdmissionSheetInput!) { createAdmissionSheet(input: $i) { id } }";
const SEND_SHEET: &str = "mutation($id: ID!) { sendAdmissionSheet(id: $id) { id } }";
const SEND_NOTICE: &str =
    "mutation($i: SendDischargeNoticeInput!) { sendDischargeNotice(input: $i) { id } }";
const PROPOSE: &str = "mutation($i: ProposeDischargeConferenceInput!) { proposeDischargeConference(input: $i) { id } }";
const START_THREAD: &str =
    "mutation($i: StartLiaisonThreadInput!) { startLiaisonThread(input: $i) { id } }";
const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { index } }";

/// The page of a list: what a client can see of it.
const PAGE: &str =
    "edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";

fn notices_query() -> String {
    format!(
        "query($first: Int, $after: String) {{ careTeamDischargeNotices(first: $first, after: $after) {{ {PAGE} }} }}"
    )
}
fn sheets_query() -> String {
    format!(
        "query($first: Int, $after: String) {{ admissionSheetsReceived(first: $first, after: $after) {{ {PAGE} }} }}"
    )
}
fn invitations_query() -> String {
    format!(
        "query($first: Int, $after: String) {{ dischargeConferenceInvitations(first: $first, after: $after) {{ {PAGE} }} }}"
    )
}

struct Who {
    org: String,
    token: String,
}

/// Two patients of a care office, each with the same team: a hospital, a
/// clinic and a pharmacy. Besides the professionals who may read
/// ADMISSION_DISCHARGE (care manager, MSW, physician, pharmacist), the
/// hospital and the pharmacy each have a dietitian, whose role does not
/// include it.
struct Scene {
    first: String,
    second: String,
    care_manager: Who,
    msw: Who,
    hospital_dietitian: Who,
    doctor: Who,
    pharmacist: Who,
    pharmacy_dietitian: Who,
}

async fn who(app: &TestApp, org: &str, profession: &str) -> Who {
    let (_, token) = app.member(org, profession).await;
    Who {
        org: org.to_string(),
        token,
    }
}

async fn scene(app: &TestApp) -> Scene {
    let office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "ページ居宅介護支援事業所")
        .await;
    let hospital = app.organization("HOSPITAL", "ページ市立病院").await;
    let clinic = app.organization("CLINIC", "ページ在宅クリニック").await;
    let pharmacy = app.organization("PHARMACY", "ページ調剤薬局").await;
    let care_manager = who(app, &office, "CARE_MANAGER").await;
    let msw = who(app, &hospital, "MEDICAL_SOCIAL_WORKER").await;
    let hospital_dietitian = who(app, &hospital, "DIETITIAN").await;
    let doctor = who(app, &clinic, "PHYSICIAN").await;
    let pharmacist = who(app, &pharmacy, "PHARMACIST").await;
    let pharmacy_dietitian = who(app, &pharmacy, "DIETITIAN").await;
    let mut patients = Vec::new();
    for local in ["PG-0001", "PG-0002"] {
        let p = app.patient(&care_manager.token, local).await;
        for (org, role) in [
            (&hospital, "HOSPITAL"),
            (&clinic, "PRIMARY_PHYSICIAN"),
            (&pharmacy, "PHARMACY"),
        ] {
            app.ok(
                &care_manager.token,
                ADD_MEMBER,
                json!({ "i": { "patientId": p, "organizationId": org, "role": role } }),
            )
            .await;
        }
        patients.push(p);
    }
    Scene {
        first: patients[0].clone(),
        second: patients[1].clone(),
        care_manager,
        msw,
        hospital_dietitian,
        doctor,
        pharmacist,
        pharmacy_dietitian,
    }
}

/// The patient's consent from now on: network-wide, but not for `org`.
async fn exclude(app: &TestApp, by: &Who, patient: &str, org: &str) {
    app.consent(
        &by.token,
        patient,
        json!({ "scope": "NETWORK", "organizationIds": [org] }),
    )
    .await;
}

/// One page of a list (`data.<field>`).
async fn page(
    app: &TestApp,
    who: &Who,
    query: &str,
    field: &str,
    first: i64,
    after: Value,
) -> Value {
    app.ok(&who.token, query, json!({ "first": first, "after": after }))
        .await[field]
        .clone()
}

/// Every page of a list, `first` at a time: the pages as the client saw them.
async fn all_pages(app: &TestApp, who: &Who, query: &str, field: &str, first: i64) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut after = Value::Null;
    loop {
        let p = page(app, who, query, field, first, after).await;
        let more = p["pageInfo"]["hasNextPage"] == json!(true);
        after = p["pageInfo"]["endCursor"].clone();
        pages.push(p);
        if !more {
            return pages;
        }
        assert!(pages.len() < 20, "paging does not end: {pages:?}");
    }
}

fn node_ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["edges"].as_array().cloned().unwrap_or_default())
        .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// What `who` sees of a list, one item per page and all at once.
async fn view(app: &TestApp, who: &Who, query: &str, field: &str) -> (Vec<Value>, Value) {
    (
        all_pages(app, who, query, field, 1).await,
        page(app, who, query, field, 100, Value::Null).await,
    )
}

fn day(app: &TestApp, offset: i64) -> String {
    let t = app.clock.today();
    if offset >= 0 {
        (t + Days::new(offset as u64)).to_string()
    } else {
        (t - Days::new(offset.unsigned_abs())).to_string()
    }
}

async fn send_notice(app: &TestApp, s: &Scene, patient: &str) -> String {
    // Ids are time-ordered; a minute apart keeps the order of the lists plain.
    app.clock.advance(Duration::minutes(1));
    app.ok(
        &s.msw.token,
        SEND_NOTICE,
        json!({ "i": { "patientId": patient, "admittedOn": day(app, -3),
                       "plannedDischargeOn": day(app, 6), "needsAtHome": "訪問看護の再開" } }),
    )
    .await["sendDischargeNotice"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

e2e!(
    discharge_notices_of_the_team_page_the_same_with_or_without_notices_the_caller_may_not_read,
    |app| async move {
        let s = scene(app).await;
        let q = notices_query();
        let q = q.as_str();
        let field = "careTeamDischargeNotices";
        let first = send_notice(app, &s, &s.first).await;
        // What the care manager (left out of the second patient's consent
        // below) and the pharmacy's dietitian (no ADMISSION_DISCHARGE) see
        // while there is nothing they may not read.
        let manager_before = view(app, &s.care_manager, q, field).await;
        let dietitian_before = view(app, &s.pharmacy_dietitian, q, field).await;
        assert_eq!(node_ids(&manager_before.0), vec![first.clone()]);
        assert_eq!(dietitian_before.1["edges"], json!([]));
        assert_eq!(dietitian_before.1["pageInfo"]["hasNextPage"], false);

        exclude(app, &s.care_manager, &s.second, &s.care_manager.org).await;
        let hidden = send_notice(app, &s, &s.second).await;

        assert_eq!(
            view(app, &s.care_manager, q, field).await,
            manager_before,
            "a notice the consent closes to the care office changes nothing it sees"
        );
        assert_eq!(
            view(app, &s.pharmacy_dietitian, q, field).await,
            dietitian_before,
            "notices of a category the role lacks change nothing the dietitian sees"
        );
        // The pharmacist may read both: one per page, newest first, exactly.
        let pages = all_pages(app, &s.pharmacist, q, field, 1).await;
        assert_eq!(node_ids(&pages), [hidden.clone(), first.clone()]);
        assert_eq!(pages.len(), 2, "no empty page at the end: {pages:?}");
        assert_eq!(pages[0]["pageInfo"]["hasNextPage"], true);
        assert_eq!(pages[1]["pageInfo"]["hasPreviousPage"], true);
    }
);

e2e!(
    admission_sheets_received_page_the_same_with_or_without_sheets_the_caller_may_not_read,
    |app| async move {
        let s = scene(app).await;
        let q = sheets_query();
        let q = q.as_str();
        let field = "admissionSheetsReceived";
        let hospital = s.msw.org.clone();
        let send = |patient: String| {
            let token = s.care_manager.token.clone();
            let hospital = hospital.clone();
            async move {
                app.clock.advance(Duration::minutes(1));
                let id = app
                    .ok(
                        &token,
                        CREATE_SHEET,
                        json!({ "i": { "patientId": patient, "hospitalId": hospital,
                                       "admittedOn": day(app, -1), "prefill": false } }),
                    )
                    .await["createAdmissionSheet"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                app.ok(&token, SEND_SHEET, json!({ "id": id })).await;
                id
            }
        };
        let first = send(s.first.clone()).await;
        let msw_before = view(app, &s.msw, q, field).await;
        let dietitian_before = view(app, &s.hospital_dietitian, q, field).await;
        assert_eq!(node_ids(&msw_before.0), vec![first.clone()]);
        assert_eq!(dietitian_before.1["edges"], json!([]));

        // A second sheet the hospital may read: the MSW pages through both.
        let second = send(s.second.clone()).await;
        let pages = all_pages(app, &s.msw, q, field, 1).await;
        assert_eq!(node_ids(&pages), [second.clone(), first.clone()]);
        assert_eq!(pages.len(), 2);
        assert_eq!(
            view(app, &s.hospital_dietitian, q, field).await,
            dietitian_before,
            "the dietitian's role lacks ADMISSION_DISCHARGE: the new sheet changes nothing"
        );

        // Then the patient's consent leaves the hospital out: the MSW's
        // lists are as they were before the second sheet.
        exclude(app, &s.care_manager, &s.second, &hospital).await;
        assert_eq!(view(app, &s.msw, q, field).await, msw_before);
        assert_eq!(
            view(app, &s.hospital_dietitian, q, field).await,
            dietitian_before
        );
    }
);

e2e!(
    conference_invitations_page_the_same_with_or_without_conferences_the_caller_may_not_read,
    |app| async move {
        let s = scene(app).await;
        let q = invitations_query();
        let q = q.as_str();
        let field = "dischargeConferenceInvitations";
        let propose = |patient: String| {
            let token = s.msw.token.clone();
            async move {
                app.clock.advance(Duration::minutes(1));
                let starts = (app.clock.now() + Duration::days(3)).to_rfc3339();
                app.ok(
                    &token,
                    PROPOSE,
                    json!({ "i": { "patientId": patient, "startsAt": starts,
                                   "place": "3階 面談室", "inviteWholeTeam": true } }),
                )
                .await["proposeDischargeConference"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let first = propose(s.first.clone()).await;
        let manager_before = view(app, &s.care_manager, q, field).await;
        let dietitian_before = view(app, &s.pharmacy_dietitian, q, field).await;
        assert_eq!(node_ids(&manager_before.0), vec![first.clone()]);
        assert_eq!(dietitian_before.1["edges"], json!([]));

        let second = propose(s.second.clone()).await;
        let pages = all_pages(app, &s.care_manager, q, field, 1).await;
        assert_eq!(node_ids(&pages), [second.clone(), first.clone()]);
        assert_eq!(pages.len(), 2);

        exclude(app, &s.doctor, &s.second, &s.care_manager.org).await;
        assert_eq!(view(app, &s.care_manager, q, field).await, manager_before);
        assert_eq!(
            view(app, &s.pharmacy_dietitian, q, field).await,
            dietitian_before
        );
        // The pharmacist is invited to both and may read both.
        let pages = all_pages(app, &s.pharmacist, q, field, 1).await;
        assert_eq!(node_ids(&pages), [second, first]);
    }
);

async fn notifications(app: &TestApp, who: &Who, first: i64) -> Value {
    app.ok(
        &who.token,
        "query($first: Int!) { notifications(first: $first) { id kind patientId } }",
        json!({ "first": first }),
    )
    .await["notifications"]
        .clone()
}

e2e!(
    notifications_count_only_those_the_caller_may_read,
    |app| async move {
        let s = scene(app).await;
        // A liaison message to the team: every organisation but the clinic
        // is told (NEW_MESSAGE, LIAISON_MESSAGES).
        app.ok(
            &s.doctor.token,
            START_THREAD,
            json!({ "i": { "patientId": s.first, "subject": "服薬の変更", "wholeCareTeam": true,
                           "body": "ご確認ください。" } }),
        )
        .await;
        let manager_before = notifications(app, &s.care_manager, 1).await;
        let dietitian_before = notifications(app, &s.pharmacy_dietitian, 1).await;
        assert_eq!(manager_before[0]["kind"], "NEW_MESSAGE");
        assert_eq!(dietitian_before[0]["kind"], "NEW_MESSAGE");

        // Newer notifications the two may not read: a discharge notice about
        // the second patient, whose consent leaves the care office out, and
        // (for the dietitian's pharmacy) about either patient.
        exclude(app, &s.care_manager, &s.second, &s.care_manager.org).await;
        send_notice(app, &s, &s.first).await;
        send_notice(app, &s, &s.second).await;

        let newest = notifications(app, &s.care_manager, 1).await;
        assert_eq!(newest.as_array().unwrap().len(), 1, "{newest}");
        assert_eq!(
            (&newest[0]["kind"], &newest[0]["patientId"]),
            (&json!("DISCHARGE_NOTICE"), &json!(s.first)),
            "the newest notification the care office may read, not an empty list"
        );
        let listed = notifications(app, &s.care_manager, 3).await;
        assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
        assert_eq!(listed[1], manager_before[0]);
        assert_eq!(
            notifications(app, &s.pharmacy_dietitian, 1).await,
            dietitian_before,
            "discharge notices are closed to the dietitian's role: the list is as before"
        );
        assert_eq!(
            notifications(app, &s.pharmacy_dietitian, 100).await,
            dietitian_before
        );
        // The pharmacist reads all three, newest first.
        let all = notifications(app, &s.pharmacist, 100).await;
        let kinds: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["DISCHARGE_NOTICE", "DISCHARGE_NOTICE", "NEW_MESSAGE"]
        );
        assert_eq!(
            notifications(app, &s.pharmacist, 2)
                .await
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
);

/// A patient's access history as `who` reads it, page by page (`first` at a
/// time): each entry without its number, time and hash — what it says, with
/// the ids of objects the detail names (a consent's) replaced by `<id>`, so
/// two patients' histories can be compared.
async fn history_pages(
    app: &TestApp,
    who: &Who,
    patient: &str,
    first: i64,
) -> Vec<(Vec<Value>, Value)> {
    let q = "query($id: ID!, $first: Int, $after: String) { patient(id: $id) { accessHistory(first: $first, after: $after) {
        edges { node { action actorKind actorId categories outcome detail } } pageInfo { hasNextPage } endCursor: pageInfo { endCursor } } } }";
    let mut pages = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .ok(
                &who.token,
                q,
                json!({ "id": patient, "first": first, "after": after }),
            )
            .await;
        let h = &data["patient"]["accessHistory"];
        let nodes: Vec<Value> = h["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let mut node = e["node"].clone();
                if let Some(detail) = node["detail"].as_str() {
                    node["detail"] = json!(without_ids(detail));
                }
                node
            })
            .collect();
        let more = h["pageInfo"]["hasNextPage"].clone();
        after = h["endCursor"]["endCursor"].clone();
        pages.push((nodes, more.clone()));
        if more != json!(true) {
            return pages;
        }
        assert!(pages.len() < 50, "paging does not end");
    }
}

/// `text` with every UUID in it replaced by `<id>`.
fn without_ids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let candidate = rest.get(..36);
        if let Some(c) = candidate
            && uuid::Uuid::parse_str(c).is_ok()
        {
            out.push_str("<id>");
            rest = &rest[36..];
            continue;
        }
        let ch = rest.chars().next().unwrap();
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

e2e!(
    the_access_history_shows_only_entries_of_categories_the_caller_may_read,
    |app| async move {
        let clinic = app.organization("CLINIC", "履歴クリニック").await;
        let station = app
            .organization("VISITING_NURSE_STATION", "履歴訪問看護ステーション")
            .await;
        let doctor = who(app, &clinic, "PHYSICIAN").await;
        // A nurse reads the access history, and SENSITIVE_PSYCHIATRIC but
        // not SENSITIVE_HIV.
        let nurse = who(app, &station, "NURSE").await;
        let record = |patient: &str, data: Value| json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-10T09:00:00Z", "data": data }] } });
        let hypertension = json!({ "condition": { "name": "高血圧症", "icd10": "I10", "clinicalStatus": "ACTIVE" } });
        // Two patients with the same story, but the doctor also writes of
        // the first an HIV test (closed to the nurse's role) and a
        // psychiatric diagnosis (closed to everyone by the consent that
        // follows), and then reads both in the timeline.
        let mut patients = Vec::new();
        for (local, hidden) in [("H-1", true), ("H-2", false)] {
            let p = app.patient(&doctor.token, local).await;
            app.ok(
                &doctor.token,
                ADD_MEMBER,
                json!({ "i": { "patientId": p, "organizationId": station, "role": "VISITING_NURSE" } }),
            )
            .await;
            app.ok(&doctor.token, WRITE, record(&p, hypertension.clone()))
                .await;
            if hidden {
                app.ok(
                    &doctor.token,
                    WRITE,
                    record(
                        &p,
                        json!({ "infection": { "pathogen": "HIV", "result": "POSITIVE" } }),
                    ),
                )
                .await;
                app.ok(
                    &doctor.token,
                    WRITE,
                    record(&p, json!({ "condition": { "name": "うつ病", "icd10": "F32.9", "clinicalStatus": "ACTIVE", "sensitivity": "PSYCHIATRIC" } })),
                )
                .await;
            }
            app.consent(
                &doctor.token,
                &p,
                json!({ "scope": "NETWORK", "excludedCategories": ["SENSITIVE_PSYCHIATRIC"] }),
            )
            .await;
            app.ok(
                &doctor.token,
                "query($id: ID!) { patient(id: $id) { timeline { edges { node { id category } } } } }",
                json!({ "id": p }),
            )
            .await;
            patients.push(p);
        }
        // The nurse reads the same history of both, page by page: nothing
        // tells that the first patient has data it may not read.
        for first in [1, 3, 100] {
            let hidden = history_pages(app, &nurse, &patients[0], first).await;
            let plain = history_pages(app, &nurse, &patients[1], first).await;
            assert_eq!(hidden, plain, "pages of {first}");
        }
        let entries = history_pages(app, &nurse, &patients[0], 100)
            .await
            .remove(0)
            .0;
        for e in &entries {
            for c in e["categories"].as_array().unwrap() {
                assert!(
                    !["SENSITIVE_HIV", "SENSITIVE_PSYCHIATRIC"].contains(&c.as_str().unwrap()),
                    "{e}"
                );
            }
        }
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == "READ" && e["categories"] == json!(["CONDITIONS"])),
            "the doctor's read shows with the categories the nurse may read: {entries:?}"
        );
        // The doctor's history of the first patient names all it did.
        let doctors = history_pages(app, &doctor, &patients[0], 100).await;
        let categories: Vec<&Value> = doctors[0].0.iter().map(|e| &e["categories"]).collect();
        assert!(
            categories.contains(&&json!(["SENSITIVE_HIV"])),
            "{categories:?}"
        );
        assert!(
            categories.contains(&&json!(["CONDITIONS", "SENSITIVE_HIV"])),
            "{categories:?}"
        );
    }
);

/// Every record of the patient's timeline, paged `first` at a time: ids
/// and effective times in the order served.
async fn timeline_pages(
    app: &TestApp,
    token: &str,
    patient: &str,
    first: usize,
) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let data = app
            .ok(
                token,
                "query($id: ID!, $first: Int, $a: String) { patient(id: $id) { timeline(first: $first, after: $a) { edges { node { id effectiveAt } } pageInfo { hasNextPage endCursor } } } }",
                json!({ "id": patient, "first": first, "a": after }),
            )
            .await;
        let t = &data["patient"]["timeline"];
        for e in t["edges"].as_array().unwrap() {
            seen.push((
                e["node"]["id"].as_str().unwrap().to_string(),
                e["node"]["effectiveAt"].as_str().unwrap().to_string(),
            ));
        }
        if t["pageInfo"]["hasNextPage"] != true {
            return seen;
        }
        after = t["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
}

fn lab_at(patient: &str, source: &str, at: &str) -> Value {
    json!({ "patientId": patient, "sourceRecordId": source, "effectiveAt": at,
            "data": { "labResult": { "name": format!("検査 {source}"), "value": "陰性", "abnormal": "NORMAL" } } })
}

e2e!(
    the_timeline_pages_through_times_with_seven_and_nine_fractional_digits,
    |app| async move {
        let clinic = app.organization("CLINIC", "精度クリニック").await;
        let doctor = who(app, &clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor.token, "T-1").await;
        // .NET's round-trip format has seven digits, some systems nine; the
        // hub keeps six, so most of these are one time.
        let times = [
            "2026-01-05T09:00:00.1234567Z",
            "2026-01-05T09:00:00.1234567Z",
            "2026-01-05T09:00:00.1234567Z",
            "2026-01-05T09:00:00.123456789Z",
            "2026-01-05T09:00:00.123456789Z",
            "2026-01-05T09:00:00.1234561Z",
            "2026-01-05T09:00:00.123456Z",
            "2026-01-05T09:00:00.1234571Z",
            "2026-01-05T18:00:00.9999999+09:00",
        ];
        let batch: Vec<Value> = times
            .iter()
            .enumerate()
            .map(|(i, at)| lab_at(&patient, &format!("P-{i}"), at))
            .collect();
        let data = app
            .ok(
                &doctor.token,
                WRITE,
                json!({ "i": { "records": batch.clone() } }),
            )
            .await;
        assert_eq!(data["writeRecords"].as_array().unwrap().len(), times.len());

        let all = timeline_pages(app, &doctor.token, &patient, 200).await;
        assert_eq!(all.len(), times.len());
        for (_, at) in &all {
            assert!(
                [
                    "2026-01-05T09:00:00.999999+00:00",
                    "2026-01-05T09:00:00.123457+00:00",
                    "2026-01-05T09:00:00.123456+00:00",
                ]
                .contains(&at.as_str()),
                "times come back to the microsecond: {at}"
            );
        }
        // Page by page, every record once, in the same order.
        for first in [1, 2, 4] {
            let paged = timeline_pages(app, &doctor.token, &patient, first).await;
            assert_eq!(paged, all, "pages of {first}");
        }

        // The same times again are the same times: nothing changed.
        let data = app
            .ok(
                &doctor.token,
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }",
                json!({ "i": { "records": batch } }),
            )
            .await;
        for r in data["writeRecords"].as_array().unwrap() {
            assert_eq!(r["outcome"], "UNCHANGED", "{data}");
        }

        // A period bounded with seven digits is cut like the records:
        // `from` keeps the seven at .123456, `to` leaves out the .123457.
        let data = app
            .ok(&doctor.token, "query($id: ID!) { patient(id: $id) { timeline(from: \"2026-01-05T09:00:00.1234569Z\", to: \"2026-01-05T09:00:00.1234571Z\") { edges { node { id } } } } }", json!({ "id": patient }))
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            7,
            "{data}"
        );
    }
);

/// A SQLite database written before times were cut (the text of nine
/// fractional digits sqlx stored) pages correctly once migration
/// `m20261210_000010_time_precision` has cut the stored text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_sqlite_times_with_nine_digits_are_cut_by_the_migration() {
    use chrono::{DateTime, SecondsFormat, Utc};
    use migration::{MigratorTrait, SchemaManager};
    use sea_orm::ConnectionTrait;

    let owned = TestApp::spawn(Backend::Sqlite).await;
    let app = &owned;
    let clinic = app.organization("CLINIC", "旧精度クリニック").await;
    let doctor = who(app, &clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor.token, "T-1").await;
    let batch: Vec<Value> = (0..6)
        .map(|i| lab_at(&patient, &format!("P-{i}"), "2026-01-05T09:00:00Z"))
        .collect();
    app.ok(&doctor.token, WRITE, json!({ "i": { "records": batch } }))
        .await;
    // What the hub of before stored for times with nanoseconds: three
    // records at one time, the others at times that cut to three digits,
    // to none, and to six.
    let legacy = [
        ("P-0", "2026-01-05T09:00:00.123456789+00:00"),
        ("P-1", "2026-01-05T09:00:00.123456789+00:00"),
        ("P-2", "2026-01-05T09:00:00.123456789+00:00"),
        ("P-3", "2026-01-05T09:00:00.123000700+00:00"),
        ("P-4", "2026-01-05T09:00:00.000000500+00:00"),
        ("P-5", "2026-01-04T23:59:59.999999999+00:00"),
    ];
    for (source, text) in legacy {
        app.db
            .execute_unprepared(&format!(
                "UPDATE records SET effective_at = '{text}', recorded_at = '{text}' WHERE source_record_id = '{source}'"
            ))
            .await
            .unwrap();
    }
    let lost = timeline_pages(app, &doctor.token, &patient, 1).await;
    assert!(
        lost.len() < legacy.len(),
        "before the migration, a page boundary inside one time loses records: {lost:?}"
    );

    let migration = migration::Migrator::migrations()
        .into_iter()
        .find(|m| m.name() == "m20261210_000010_time_precision")
        .expect("the migration is listed");
    migration
        .up(&SchemaManager::new(&app.db))
        .await
        .expect("the migration runs");

    // The stored text is what the hub writes for the cut time, so equal
    // times are equal text …
    for (source, text) in legacy {
        let cut = DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc);
        let cut = DateTime::from_timestamp_micros(cut.timestamp_micros()).unwrap();
        let row = app
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                format!("SELECT effective_at, recorded_at FROM records WHERE source_record_id = '{source}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        let want = cut.to_rfc3339_opts(SecondsFormat::AutoSi, false);
        assert_eq!(row.try_get::<String>("", "effective_at").unwrap(), want);
        assert_eq!(row.try_get::<String>("", "recorded_at").unwrap(), want);
    }
    // … and every record is on some page.
    let all = timeline_pages(app, &doctor.token, &patient, 200).await;
    assert_eq!(all.len(), legacy.len());
    for first in [1, 2] {
        assert_eq!(
            timeline_pages(app, &doctor.token, &patient, first).await,
            all
        );
    }
    owned.stop().await;
}
