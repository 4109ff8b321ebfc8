//! Hidden versions stay hidden: a record's `version` and `history` count only
//! the versions the caller may read, so a diagnosis first recorded as
//! psychiatric and corrected to a plain one shows a pharmacist a first
//! version and no history, and its physician both. (Issue #10, item 4.)

use renkei_tests::*;
use serde_json::{Value, json};

const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { index outcome record { id version category history { version } } } }";
const RECORD_CONDITION: &str = "mutation($i: ConditionRecordInput!) { recordCondition(input: $i) { outcome record { id version history { version } } } }";
const ENTERED_IN_ERROR: &str = "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { status version history { version status } } }";
const VIEW: &str = "query($id: ID!) { patient(id: $id) {
    timeline(includeEnteredInError: true) { edges { node { id version category status
        history { version status data { ... on ConditionData { name sensitivity } } } } } }
    summary { activeConditions { id version history { version } } } } }";

fn condition(patient: &str, name: &str, sensitivity: Option<&str>) -> Value {
    let mut data = json!({ "name": name, "icd10": "G47.0", "clinicalStatus": "ACTIVE" });
    if let Some(s) = sensitivity {
        data["sensitivity"] = json!(s);
        data["icd10"] = json!("F32.9");
    }
    json!({ "patientId": patient, "sourceRecordId": "DX-1", "effectiveAt": "2026-01-10T09:00:00Z",
            "data": { "condition": data } })
}

/// A clinic's patient with consent; a pharmacy on the team, whose pharmacist
/// reads CONDITIONS but not SENSITIVE_PSYCHIATRIC (the reader these tests
/// need; pharmacists read both since issue 14).
async fn setup(app: &TestApp) -> (String, String, String, String) {
    let clinic = app.organization("CLINIC", "版クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "V-1").await;
    let pharmacy = app.organization("PHARMACY", "版薬局").await;
    app.ok(
        &doctor,
        "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "organizationId": pharmacy, "role": "PHARMACY" } }),
    )
    .await;
    let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    (patient, clinic, doctor, pharmacist)
}

fn only_node(data: &Value) -> Value {
    let edges = data["patient"]["timeline"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{data}");
    edges[0]["node"].clone()
}

e2e!(
    a_psychiatric_first_version_is_invisible_to_a_reader_without_the_category,
    |app| async move {
        let (patient, _, doctor, pharmacist) = setup(app).await;
        // 精神科の診断として記録され、後に通常の傷病名に訂正された.
        let v1 = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [condition(&patient, "うつ病", Some("PSYCHIATRIC"))] } }),
            )
            .await;
        assert_eq!(
            v1["writeRecords"][0]["record"]["category"],
            "SENSITIVE_PSYCHIATRIC"
        );
        let v2 = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [condition(&patient, "不眠症", None)] } }),
            )
            .await;
        assert_eq!(v2["writeRecords"][0]["outcome"], "UPDATED");
        assert_eq!(v2["writeRecords"][0]["record"]["version"], 2);
        assert_eq!(
            v2["writeRecords"][0]["record"]["history"],
            json!([{ "version": 1 }])
        );

        // The pharmacist reads CONDITIONS, not SENSITIVE_PSYCHIATRIC: the
        // record is at its first version, with no history and no hint.
        let body = app.gql(&pharmacist, VIEW, json!({ "id": patient })).await;
        assert!(
            body.get("errors").is_none(),
            "no FORBIDDEN_FIELD either: {body}"
        );
        let node = only_node(&body["data"]);
        assert_eq!(node["category"], "CONDITIONS");
        assert_eq!(node["version"], 1);
        assert_eq!(node["history"], json!([]));
        assert_eq!(
            body["data"]["patient"]["summary"]["activeConditions"],
            json!([{ "id": node["id"], "version": 1, "history": [] }])
        );

        // The physician reads both versions.
        let data = app.ok(&doctor, VIEW, json!({ "id": patient })).await;
        let node = only_node(&data);
        assert_eq!(node["version"], 2);
        assert_eq!(
            node["history"],
            json!([{ "version": 1, "status": "ACTIVE", "data": { "name": "うつ病", "sensitivity": "PSYCHIATRIC" } }])
        );
        assert_eq!(
            data["patient"]["summary"]["activeConditions"][0]["version"],
            2
        );
    }
);

e2e!(
    writes_and_removals_report_versions_as_the_writer_sees_them,
    |app| async move {
        let (patient, clinic, doctor, pharmacist) = setup(app).await;
        app.ok(
            &doctor,
            WRITE,
            json!({ "i": { "records": [condition(&patient, "うつ病", Some("PSYCHIATRIC"))] } }),
        )
        .await;
        // The physician corrects it: no longer a psychiatric diagnosis.
        app.ok(
            &doctor,
            WRITE,
            json!({ "i": { "records": [condition(&patient, "不眠症", None)] } }),
        )
        .await;
        // The clinic's records system may write conditions, but not the
        // sensitive categories: the record as it now stands is, as far as
        // it can see, a first version with no history. (It could not have
        // corrected the psychiatric one: `records.rs`,
        // a_record_is_corrected_only_by_a_writer_of_the_category_it_holds.)
        let key = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "organizationId": clinic, "name": "電子カルテ連携", "permissions": [
                    { "category": "IDENTITY", "level": "READ" },
                    { "category": "CONDITIONS", "level": "READ_WRITE" } ] } }),
            )
            .await["createApiKey"]["secret"]
            .as_str()
            .unwrap()
            .to_string();
        // The per-kind mutation takes the condition's data directly.
        let mut input = condition(&patient, "不眠症", None);
        input["data"] = input["data"]["condition"].clone();
        let data = app.ok(&key, RECORD_CONDITION, json!({ "i": input })).await;
        let written = &data["recordCondition"];
        assert_eq!(written["outcome"], "UNCHANGED", "{data}");
        assert_eq!(written["record"]["version"], 1);
        assert_eq!(written["record"]["history"], json!([]));
        let id = written["record"]["id"].as_str().unwrap().to_string();

        // Removing it makes a second version for the system, a third for
        // the physician.
        let data = app.ok(&key, ENTERED_IN_ERROR, json!({ "id": id })).await;
        assert_eq!(
            data["markRecordEnteredInError"],
            json!({ "status": "ENTERED_IN_ERROR", "version": 2, "history": [{ "version": 1, "status": "ACTIVE" }] })
        );
        let node = only_node(&app.ok(&pharmacist, VIEW, json!({ "id": patient })).await);
        assert_eq!(node["version"], 2);
        assert_eq!(
            node["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["version"].clone())
                .collect::<Vec<_>>(),
            [json!(1)]
        );
        let node = only_node(&app.ok(&doctor, VIEW, json!({ "id": patient })).await);
        assert_eq!(node["version"], 3);
        assert_eq!(
            node["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h["version"].clone(), h["data"]["sensitivity"].clone()))
                .collect::<Vec<_>>(),
            [(json!(2), Value::Null), (json!(1), json!("PSYCHIATRIC"))]
        );
    }
);

e2e!(
    a_hidden_version_between_two_identical_readable_ones_is_no_version,
    |app| async move {
        let (patient, _, doctor, pharmacist) = setup(app).await;
        // 不眠症 → うつ病 (psychiatric) → 不眠症 again: to the pharmacist,
        // who may not read the psychiatric version, nothing ever changed —
        // a second version identical to the first would tell that
        // something it may not read happened in between.
        for (name, sensitivity) in [
            ("不眠症", None),
            ("うつ病", Some("PSYCHIATRIC")),
            ("不眠症", None),
        ] {
            app.clock.advance(chrono::Duration::hours(1));
            app.ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [condition(&patient, name, sensitivity)] } }),
            )
            .await;
        }
        let q = "query($id: ID!) { patient(id: $id) { timeline { edges { node { version recordedAt history { version recordedAt } } } } } }";
        let node = only_node(&app.ok(&doctor, q, json!({ "id": patient })).await);
        assert_eq!(node["version"], 3);
        let history = node["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        let first_recorded = history[1]["recordedAt"].clone();

        let node = only_node(&app.ok(&pharmacist, q, json!({ "id": patient })).await);
        assert_eq!(node["version"], 1, "{node}");
        assert_eq!(node["history"], json!([]), "{node}");
        assert_eq!(
            node["recordedAt"], first_recorded,
            "the version the pharmacist sees was recorded with the first"
        );
    }
);

const SHEET: &str = "mutation($i: EmergencyInformationRecordInput!) { recordEmergencyInformation(input: $i) { outcome record { version } } }";
const SHEET_VIEW: &str = "query($id: ID!) { patient(id: $id) {
    emergencyInformation { sheet { version recordedAt author { name } } }
    timeline(kinds: [EMERGENCY_INFORMATION]) { edges { node { version recordedAt author { name }
        history { version recordedAt author { name } } } } } } }";

fn sheet(patient: &str, contact: &str, diagnoses: &[&str], medications: &[&str]) -> Value {
    json!({ "i": { "patientId": patient, "sourceRecordId": "EI-1", "effectiveAt": "2026-01-20T02:00:00Z",
        "data": {
            "emergencyContacts": [{ "name": contact, "relationship": "長女", "phone": "090-1234-5678", "keyPerson": true }],
            "diagnoses": diagnoses, "medications": medications } } })
}

async fn named_member(app: &TestApp, organization: &str, profession: &str, name: &str) -> String {
    let data = app
        .ok(
            &app.admin_token,
            "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { id } }",
            json!({ "i": { "organizationId": organization, "name": name, "profession": profession } }),
        )
        .await;
    token_for(
        data["registerMember"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

/// `(version, recordedAt, author, [(history version, recordedAt, author)])`
/// of the patient's sheet as `token` sees it, after checking that the
/// sheet of `emergencyInformation` and the record of the timeline agree.
async fn seen_sheet(
    app: &TestApp,
    token: &str,
    patient: &str,
) -> (Value, Value, Value, Vec<Value>) {
    let data = app.ok(token, SHEET_VIEW, json!({ "id": patient })).await;
    let node = only_node(&data);
    let sheet = &data["patient"]["emergencyInformation"]["sheet"];
    for field in ["version", "recordedAt", "author"] {
        assert_eq!(sheet[field], node[field], "{field}: {data}");
    }
    let history = node["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!([h["version"], h["recordedAt"], h["author"]["name"]]))
        .collect();
    (
        node["version"].clone(),
        node["recordedAt"].clone(),
        node["author"]["name"].clone(),
        history,
    )
}

async fn printed(app: &TestApp, token: &str, patient: &str) -> String {
    let res = app
        .client
        .get(app.url(&format!("/patients/{patient}/emergency-sheet")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status().as_u16(), 200);
    res.text().await.expect("a page")
}

e2e!(
    a_sheet_revised_only_in_parts_a_reader_may_not_read_is_the_same_version_to_it,
    |app| async move {
        let (patient, clinic, _, _) = setup(app).await;
        let first_name = "医師 一郎";
        let first = named_member(app, &clinic, "PHYSICIAN", first_name).await;
        let second = named_member(app, &clinic, "PHYSICIAN", "医師 二郎").await;
        // A care worker reads the sheet and medications, not diagnoses.
        let helpers = app
            .organization("CARE_SERVICE_PROVIDER", "版ヘルパーステーション")
            .await;
        app.ok(
            &first,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": helpers, "role": "CARE_SERVICE" } }),
        )
        .await;
        let care_worker = named_member(app, &helpers, "CARE_WORKER", "介護 花子").await;

        // v1; v2 changes only the diagnoses; v3 (another physician) the
        // medications; v4 only the diagnoses again.
        let mut recorded = Vec::new();
        for (token, diagnoses, medications) in [
            (&first, &["慢性心不全"][..], &["フロセミド錠20mg"][..]),
            (
                &first,
                &["慢性心不全", "2型糖尿病"][..],
                &["フロセミド錠20mg"][..],
            ),
            (
                &second,
                &["慢性心不全", "2型糖尿病"][..],
                &["フロセミド錠20mg", "アムロジピン錠5mg"][..],
            ),
            (
                &first,
                &["慢性心不全"][..],
                &["フロセミド錠20mg", "アムロジピン錠5mg"][..],
            ),
        ] {
            app.clock.advance(chrono::Duration::hours(1));
            let data = app
                .ok(
                    token,
                    SHEET,
                    sheet(&patient, "山田 花子", diagnoses, medications),
                )
                .await;
            let expected = if recorded.is_empty() {
                "CREATED"
            } else {
                "UPDATED"
            };
            assert_eq!(data["recordEmergencyInformation"]["outcome"], expected);
            let (_, at, _, _) = seen_sheet(app, token, &patient).await;
            recorded.push(at);
        }

        // The physicians read all four.
        let (version, _, author, history) = seen_sheet(app, &first, &patient).await;
        assert_eq!((version, author), (json!(4), json!(first_name)));
        assert_eq!(history.len(), 3);

        // The care worker sees two: the first (v1 and v2, which differ only
        // in the diagnoses) and the second (v3 and v4), each as it was
        // first recorded — when and by whom.
        let (version, at, author, history) = seen_sheet(app, &care_worker, &patient).await;
        assert_eq!(version, 2);
        assert_eq!(at, recorded[2], "recorded with v3, not v4");
        assert_eq!(author, "医師 二郎");
        assert_eq!(history, vec![json!([1, recorded[0], first_name])]);
        // The printed page says the same.
        let html = printed(app, &care_worker, &patient).await;
        assert!(html.contains("第2版 / version 2"), "{html}");
        assert!(html.contains("医師 二郎"), "{html}");

        // A consent that excludes CONDITIONS makes the physicians' view the
        // care worker's.
        app.consent(
            &first,
            &patient,
            json!({ "scope": "NETWORK", "excludedCategories": ["CONDITIONS"] }),
        )
        .await;
        let (version, at, _, history) = seen_sheet(app, &first, &patient).await;
        assert_eq!(version, 2);
        assert_eq!(at, recorded[2]);
        assert_eq!(history.len(), 1);
        let html = printed(app, &first, &patient).await;
        assert!(html.contains("第2版 / version 2"), "{html}");
    }
);

e2e!(
    a_revision_a_subscriber_may_not_read_is_no_event_to_it,
    |app| async move {
        let (patient, clinic, _, _) = setup(app).await;
        let doctor = named_member(app, &clinic, "PHYSICIAN", "医師 一郎").await;
        let helpers = app
            .organization("CARE_SERVICE_PROVIDER", "版ヘルパーステーション")
            .await;
        app.ok(
            &doctor,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": helpers, "role": "CARE_SERVICE" } }),
        )
        .await;
        let care_worker = named_member(app, &helpers, "CARE_WORKER", "介護 花子").await;
        app.ok(
            &doctor,
            SHEET,
            sheet(&patient, "山田 花子", &["慢性心不全"], &[]),
        )
        .await;
        let events = "subscription($p: ID!) { patientEvents(patientId: $p) { kind subjectId } }";
        let mut watchers = Vec::new();
        for token in [&doctor, &care_worker] {
            let mut ws = app.ws(token).await;
            let id = ws.subscribe(events, json!({ "p": patient })).await;
            ws.expect_silence(std::time::Duration::from_millis(300))
                .await;
            watchers.push((ws, id));
        }
        // Only the diagnoses change: the physician is told, the care worker
        // is not — the sheet it may read did not change.
        app.ok(
            &doctor,
            SHEET,
            sheet(&patient, "山田 花子", &["慢性心不全", "2型糖尿病"], &[]),
        )
        .await;
        {
            let (ws, sub) = &mut watchers[0];
            match ws.next_of(sub).await {
                WsMessage::Next(v) => assert_eq!(
                    v["data"]["patientEvents"]["kind"], "EMERGENCY_INFORMATION_UPDATED",
                    "{v}"
                ),
                other => panic!("{other:?}"),
            }
        }
        watchers[1]
            .0
            .expect_silence(std::time::Duration::from_millis(500))
            .await;
        // The contacts change: both are told.
        app.ok(
            &doctor,
            SHEET,
            sheet(&patient, "山田 一郎", &["慢性心不全", "2型糖尿病"], &[]),
        )
        .await;
        for (ws, sub) in &mut watchers {
            match ws.next_of(sub).await {
                WsMessage::Next(v) => assert_eq!(
                    v["data"]["patientEvents"]["kind"], "EMERGENCY_INFORMATION_UPDATED",
                    "{v}"
                ),
                other => panic!("{other:?}"),
            }
        }
    }
);
