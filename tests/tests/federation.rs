//! Apollo Federation: the hub is a subgraph whose `Patient`, `Organization`,
//! `Record`, `AdmissionSheet` and `DischargeNotice` entities other subgraphs
//! reference. Entity resolution obeys the same access policy as the direct
//! queries, and answers each representation at its own index: a refused one
//! is null with `NOT_FOUND` at `_entities.<i>`, the others are answered.
//! (Through real gateways: `gateways.rs`.)

use renkei_tests::*;
use serde_json::{Value, json};

const ENTITIES: &str = "query($r: [_Any!]!) {
    _entities(representations: $r) {
        __typename
        ... on Patient { id name birthDate }
        ... on Organization { id name kind }
    }
}";

fn patient_ref(id: &str) -> Value {
    json!({ "__typename": "Patient", "id": id })
}

fn organization_ref(id: &str) -> Value {
    json!({ "__typename": "Organization", "id": id })
}

/// `(code, path)` of each error, paths as text (`_entities.1.summary`), in
/// the order of their paths (errors come in the order they happened).
fn errors(body: &Value) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let path = e["path"]
                        .as_array()
                        .map(|p| {
                            p.iter()
                                .map(|s| match s {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    (
                        e["extensions"]["code"].as_str().unwrap_or("").to_string(),
                        path,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    errors.sort_by(|a, b| a.1.cmp(&b.1));
    errors
}

fn refused_at(indexes: &[usize]) -> Vec<(String, String)> {
    indexes
        .iter()
        .map(|i| ("NOT_FOUND".to_string(), format!("_entities.{i}")))
        .collect()
}

/// The audit entries about a patient: (action, categories, outcome, actor).
async fn audit(app: &TestApp, patient: &str) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action categories outcome actorId } } } }",
            json!({ "p": patient }),
        )
        .await;
    data["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            json!([n["action"], n["categories"], n["outcome"], n["actorId"]])
        })
        .collect()
}

/// A clinic physician with a registered patient, and a pharmacist with no
/// relationship to that patient. Returns (patient id, physician, pharmacist, clinic id).
async fn setting(app: &TestApp) -> (String, String, String, String) {
    let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
    let (_, physician) = app.member(&clinic, "PHYSICIAN").await;
    let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
    let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    let patient = app.patient(&physician, "K-0001").await;
    (patient, physician, pharmacist, clinic)
}

e2e!(
    the_service_sdl_declares_federation_v2_keys_and_the_subscriptions,
    |app| async move {
        let data = app
            .ok(&app.admin_token, "{ _service { sdl } }", json!({}))
            .await;
        let sdl = data["_service"]["sdl"].as_str().expect("sdl");

        assert!(sdl.contains("extend schema @link("), "{sdl}");
        assert!(
            sdl.contains("https://specs.apollo.dev/federation/v2."),
            "{sdl}"
        );
        assert!(sdl.contains("\"@key\""), "the @link imports @key: {sdl}");
        for entity in [
            "Patient",
            "Organization",
            "Record",
            "AdmissionSheet",
            "DischargeNotice",
        ] {
            assert!(
                sdl.contains(&format!("type {entity} @key(fields: \"id\")")),
                "{entity}: {sdl}"
            );
        }
        // The subgraph's own operations are in it — its subscriptions too,
        // so code generated from it has them.
        assert!(sdl.contains("patientByLocalId("), "{sdl}");
        assert!(sdl.contains("registerPatient("), "{sdl}");
        let subscription = &sdl[sdl.find("type Subscription {").expect("Subscription")..];
        assert!(subscription.contains("patientEvents("), "{sdl}");
        assert!(
            subscription.contains("notifications: Notification!"),
            "{sdl}"
        );
        // The same contract as `renkei schema` prints.
        assert_eq!(sdl.trim_end(), renkei_schema::graphql::sdl().trim_end());

        // Any authenticated caller may read it.
        let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
        let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
        let again = app.ok(&pharmacist, "{ _service { sdl } }", json!({})).await;
        assert_eq!(again["_service"]["sdl"], sdl);
    }
);

e2e!(
    a_patient_entity_resolves_only_for_an_organization_that_may_see_it,
    |app| async move {
        let (patient, physician, pharmacist, _) = setting(app).await;

        let data = app
            .ok(
                &physician,
                ENTITIES,
                json!({ "r": [patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(
            data["_entities"],
            json!([{ "__typename": "Patient", "id": patient, "name": "連携 花子", "birthDate": "1940-05-01" }])
        );

        // No relationship: null with NOT_FOUND at its index, exactly like a
        // patient that does not exist, and no trace of the patient anywhere
        // in the response.
        let body = app
            .gql(
                &pharmacist,
                ENTITIES,
                json!({ "r": [patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"], json!([null]), "{body}");
        assert_eq!(errors(&body), refused_at(&[0]), "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("連携") && !text.contains("1940-05-01") && !text.contains(&patient),
            "{text}"
        );
        let unknown = uuid::Uuid::now_v7().to_string();
        let missing = app
            .gql(
                &pharmacist,
                ENTITIES,
                json!({ "r": [patient_ref(&unknown)] }),
            )
            .await;
        assert_eq!(
            body, missing,
            "hidden and missing patients answer identically"
        );
        // Both are on record as refusals, the hidden patient's under its id.
        let pharmacist_id = app
            .ok(&pharmacist, "{ me { member { id } } }", json!({}))
            .await["me"]["member"]["id"]
            .clone();
        assert!(
            audit(app, &patient)
                .await
                .contains(&json!(["DENIED", [], "DENIED", pharmacist_id])),
            "the refusal is audited"
        );
        assert!(
            audit(app, &unknown)
                .await
                .contains(&json!(["DENIED", [], "DENIED", pharmacist_id])),
            "so is the attempt at an unknown patient"
        );

        // The administrator's coordination centre has no relationship either.
        let body = app
            .gql(
                &app.admin_token,
                ENTITIES,
                json!({ "r": [patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"], json!([null]));
        assert_eq!(errors(&body), refused_at(&[0]), "{body}");
    }
);

e2e!(
    entities_resolve_in_the_order_of_the_representations,
    |app| async move {
        let (patient, physician, pharmacist, _) = setting(app).await;
        let office = app
            .organization("HOME_CARE_SUPPORT_OFFICE", "北見居宅介護支援事業所")
            .await;
        let (_, manager) = app.member(&office, "CARE_MANAGER").await;
        let hidden = app.patient(&manager, "U-0001").await;
        let unknown = uuid::Uuid::now_v7().to_string();

        let body = app
        .gql(
            &physician,
            ENTITIES,
            json!({ "r": [patient_ref(&patient), patient_ref(&hidden), patient_ref(&unknown)] }),
        )
        .await;
        assert_eq!(
            body["data"]["_entities"],
            json!([
                { "__typename": "Patient", "id": patient, "name": "連携 花子", "birthDate": "1940-05-01" },
                null,
                null,
            ]),
            "{body}"
        );
        assert_eq!(errors(&body), refused_at(&[1, 2]), "{body}");
        assert!(!body.to_string().contains(&hidden), "{body}");

        // The other way round, from the care office's side; the pharmacy sees neither.
        let body = app
        .gql(
            &manager,
            ENTITIES,
            json!({ "r": [patient_ref(&unknown), patient_ref(&patient), patient_ref(&hidden)] }),
        )
        .await;
        let entities = body["data"]["_entities"].as_array().unwrap();
        assert_eq!(entities.len(), 3);
        assert_eq!(entities[0], Value::Null);
        assert_eq!(entities[1], Value::Null);
        assert_eq!(entities[2]["id"], hidden.as_str());
        assert_eq!(errors(&body), refused_at(&[0, 1]), "{body}");
        let body = app
            .gql(
                &pharmacist,
                ENTITIES,
                json!({ "r": [patient_ref(&patient), patient_ref(&hidden)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"], json!([null, null]));
        assert_eq!(errors(&body), refused_at(&[0, 1]), "{body}");

        // The same representation twice: each answered at its own index.
        let body = app
            .gql(
                &physician,
                ENTITIES,
                json!({ "r": [patient_ref(&hidden), patient_ref(&patient), patient_ref(&hidden)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"][1]["id"], patient.as_str());
        assert_eq!(errors(&body), refused_at(&[0, 2]), "{body}");

        // A malformed id names nothing: BAD_USER_INPUT at its index, and
        // the rest is answered.
        let body = app
            .gql(
                &physician,
                ENTITIES,
                json!({ "r": [patient_ref("abc"), patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"][0], Value::Null);
        assert_eq!(body["data"]["_entities"][1]["id"], patient.as_str());
        assert_eq!(
            errors(&body),
            vec![("BAD_USER_INPUT".to_string(), "_entities.0".to_string())],
            "{body}"
        );
    }
);

e2e!(
    the_fields_of_an_entity_answer_at_its_index,
    |app| async move {
        // A care worker on the team may read the patient, not its lab
        // results: the refused field is null with FORBIDDEN_FIELD at
        // `_entities.<i>.…`, where a gateway finds the entity it belongs to.
        let (patient, physician, _, _) = setting(app).await;
        let helpers = app
            .organization("CARE_SERVICE_PROVIDER", "北見ヘルパーステーション")
            .await;
        let (_, care_worker) = app.member(&helpers, "CARE_WORKER").await;
        app.ok(
            &physician,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": helpers, "role": "CARE_SERVICE" } }),
        )
        .await;
        let unknown = uuid::Uuid::now_v7().to_string();
        let body = app
            .gql(
                &care_worker,
                "query($r: [_Any!]!) { _entities(representations: $r) { ... on Patient { name summary { latestLabResults { id } } } } }",
                json!({ "r": [patient_ref(&unknown), patient_ref(&patient), patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(
            body["data"]["_entities"],
            json!([
                null,
                { "name": "連携 花子", "summary": { "latestLabResults": null } },
                { "name": "連携 花子", "summary": { "latestLabResults": null } },
            ]),
            "{body}"
        );
        assert_eq!(
            errors(&body),
            vec![
                ("NOT_FOUND".to_string(), "_entities.0".to_string()),
                (
                    "FORBIDDEN_FIELD".to_string(),
                    "_entities.1.summary.latestLabResults".to_string()
                ),
                (
                    "FORBIDDEN_FIELD".to_string(),
                    "_entities.2.summary.latestLabResults".to_string()
                ),
            ],
            "{body}"
        );
    }
);

e2e!(
    organization_entities_resolve_for_any_authenticated_caller,
    |app| async move {
        let (patient, _, pharmacist, clinic) = setting(app).await;
        let unknown = uuid::Uuid::now_v7().to_string();

        let body = app
        .gql(
            &pharmacist,
            ENTITIES,
            json!({ "r": [organization_ref(&clinic), organization_ref(&unknown), patient_ref(&patient)] }),
        )
        .await;
        assert_eq!(
            body["data"]["_entities"],
            json!([
                { "__typename": "Organization", "id": clinic, "name": "北見在宅クリニック", "kind": "CLINIC" },
                null,
                null,
            ])
        );
        assert_eq!(errors(&body), refused_at(&[1, 2]), "{body}");

        // A system authenticated by API key resolves them too.
        let key = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "organizationId": clinic, "name": "電子カルテ連携", "permissions": [
                    { "category": "IDENTITY", "level": "READ" },
                ] } }),
            )
            .await;
        let secret = key["createApiKey"]["secret"].as_str().unwrap().to_string();
        let data = app
            .ok(
                &secret,
                ENTITIES,
                json!({ "r": [organization_ref(&clinic), patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(data["_entities"][0]["id"], clinic.as_str());
        // The clinic's system acts for the clinic, which registered the patient.
        assert_eq!(data["_entities"][1]["id"], patient.as_str());
    }
);

const RECORDS: &str = "query($r: [_Any!]!) {
    _entities(representations: $r) {
        ... on Record { id kind category patientId data { ... on LabResultData { name value } } }
    }
}";

fn record_ref(id: &str) -> Value {
    json!({ "__typename": "Record", "id": id })
}

/// A lab result of the physician's patient; a care worker on the team.
/// Returns (record id, care worker, care worker's member id).
async fn lab_result(app: &TestApp, patient: &str, physician: &str) -> (String, String, String) {
    let helpers = app
        .organization("CARE_SERVICE_PROVIDER", "北見ヘルパーステーション")
        .await;
    let (care_worker_id, care_worker) = app.member(&helpers, "CARE_WORKER").await;
    app.ok(
        physician,
        "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "organizationId": helpers, "role": "CARE_SERVICE" } }),
    )
    .await;
    let data = app
        .ok(
            physician,
            "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }",
            json!({ "i": { "records": [{
                "patientId": patient, "sourceRecordId": "LAB-1", "effectiveAt": "2026-11-01T09:00:00Z",
                "data": { "labResult": { "code": "LAB-HbA1c", "name": "HbA1c", "value": "7.9", "unit": "%", "abnormal": "HIGH" } }
            }] } }),
        )
        .await;
    let record = data["writeRecords"][0]["record"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    (record, care_worker, care_worker_id)
}

e2e!(
    a_record_entity_resolves_only_for_a_reader_of_its_category,
    |app| async move {
        let (patient, physician, pharmacist, _) = setting(app).await;
        let (record, care_worker, care_worker_id) = lab_result(app, &patient, &physician).await;
        let unknown = uuid::Uuid::now_v7().to_string();

        let data = app
            .ok(&physician, RECORDS, json!({ "r": [record_ref(&record)] }))
            .await;
        assert_eq!(
            data["_entities"],
            json!([{ "id": record, "kind": "LAB_RESULT", "category": "LAB_RESULTS", "patientId": patient,
                     "data": { "name": "HbA1c", "value": "7.9" } }])
        );

        // The care worker may know of the patient, not of a record of a
        // category closed to it: refused like a record that does not
        // exist, and on record as a denial of that category.
        let body = app
            .gql(&care_worker, RECORDS, json!({ "r": [record_ref(&record)] }))
            .await;
        let missing = app
            .gql(
                &care_worker,
                RECORDS,
                json!({ "r": [record_ref(&unknown)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"], json!([null]), "{body}");
        assert_eq!(errors(&body), refused_at(&[0]), "{body}");
        assert_eq!(body, missing, "a hidden record answers as an unknown one");
        assert_eq!(body["errors"][0]["message"], "record not found");
        assert!(
            audit(app, &patient).await.contains(&json!([
                "DENIED",
                ["LAB_RESULTS"],
                "DENIED",
                care_worker_id
            ])),
            "the refusal is audited under the record's category"
        );
        // An organisation off the team: the same.
        let body = app
            .gql(&pharmacist, RECORDS, json!({ "r": [record_ref(&record)] }))
            .await;
        assert_eq!(body, missing);
        // A malformed id.
        let body = app
            .gql(
                &physician,
                RECORDS,
                json!({ "r": [record_ref("R-1"), record_ref(&record)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"][1]["id"], record.as_str());
        assert_eq!(
            errors(&body),
            vec![("BAD_USER_INPUT".to_string(), "_entities.0".to_string())]
        );
    }
);

/// Counts the statements of `_entities` over one record and over eight: the
/// records and their patients' verdicts load in one batch each, whatever
/// the number. The batching window is widened so that, on a machine busy
/// with other tests, every load lands in one batch (as in `records.rs`).
async fn cost_of_record_entities(backend: Backend) {
    let owned = TestApp::spawn_with(backend, |c| c.batch_window_micros = 50_000).await;
    let app = &owned;
    {
        let (patient, physician, _, _) = setting(app).await;
        let (first, _, _) = lab_result(app, &patient, &physician).await;
        let items: Vec<Value> = (0..8)
            .map(|i| json!({ "patientId": patient, "sourceRecordId": format!("LAB-N{i}"), "effectiveAt": "2026-11-02T09:00:00Z",
                             "data": { "labResult": { "code": format!("LAB-{i}"), "name": "CRP", "value": i.to_string(), "unit": "mg/dL", "abnormal": "NORMAL" } } }))
            .collect();
        let data = app
            .ok(
                &physician,
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }",
                json!({ "i": { "records": items } }),
            )
            .await;
        let many: Vec<Value> = data["writeRecords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| record_ref(r["record"]["id"].as_str().unwrap()))
            .collect();
        let (one, few) = app
            .count_statements(&physician, RECORDS, json!({ "r": [record_ref(&first)] }))
            .await;
        assert!(one.get("errors").is_none(), "{one}");
        let (body, lots) = app
            .count_statements(&physician, RECORDS, json!({ "r": many }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["_entities"].as_array().unwrap().len(), 8);
        assert_eq!(lots, few, "8 records cost what one costs: {few} statements");
    }
    owned.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_entities_cost_the_same_statements_however_many_on_sqlite() {
    cost_of_record_entities(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_entities_cost_the_same_statements_however_many_on_postgres() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    cost_of_record_entities(Backend::Postgres).await;
}

e2e!(
    sheets_and_notices_resolve_under_the_rules_of_their_references,
    |app| async move {
        const DOCUMENTS: &str = "query($r: [_Any!]!) { _entities(representations: $r) {
            ... on AdmissionSheet { id status }
            ... on DischargeNotice { id status needsAtHome }
        } }";
        let office = app
            .organization("HOME_CARE_SUPPORT_OFFICE", "北見居宅介護支援事業所")
            .await;
        let (_, manager) = app.member(&office, "CARE_MANAGER").await;
        let patient = app.patient(&manager, "CM-1").await;
        let hospital = app.organization("HOSPITAL", "北見市立病院").await;
        let (_, msw) = app.member(&hospital, "MEDICAL_SOCIAL_WORKER").await;
        app.ok(
            &manager,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": hospital, "role": "HOSPITAL" } }),
        )
        .await;
        let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
        let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
        let today = renkei_schema::clock::Clock::today(app.clock.as_ref());
        let sheet = app
            .ok(
                &manager,
                "mutation($i: CreateAdmissionSheetInput!) { createAdmissionSheet(input: $i) { id } }",
                json!({ "i": { "patientId": patient, "hospitalId": hospital, "admittedOn": today.to_string() } }),
            )
            .await["createAdmissionSheet"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let notice = app
            .ok(
                &msw,
                "mutation($i: SendDischargeNoticeInput!) { sendDischargeNotice(input: $i) { id } }",
                json!({ "i": { "patientId": patient, "admittedOn": today.to_string(),
                               "plannedDischargeOn": (today + chrono::Days::new(7)).to_string(),
                               "needsAtHome": "訪問看護" } }),
            )
            .await["sendDischargeNotice"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let sheet_ref = json!({ "__typename": "AdmissionSheet", "id": sheet });
        let notice_ref = json!({ "__typename": "DischargeNotice", "id": notice });
        let unknown = uuid::Uuid::now_v7().to_string();

        // The author reads its draft and the notice.
        let data = app
            .ok(&manager, DOCUMENTS, json!({ "r": [sheet_ref, notice_ref] }))
            .await;
        assert_eq!(
            data["_entities"],
            json!([{ "id": sheet, "status": "DRAFT" }, { "id": notice, "status": "NOTIFIED", "needsAtHome": "訪問看護" }])
        );
        // The hospital: not the draft (another organisation's) — refused
        // like a sheet that does not exist.
        let body = app
            .gql(&msw, DOCUMENTS, json!({ "r": [sheet_ref, notice_ref] }))
            .await;
        assert_eq!(body["data"]["_entities"][0], Value::Null, "{body}");
        assert_eq!(body["data"]["_entities"][1]["id"], notice.as_str());
        assert_eq!(errors(&body), refused_at(&[0]), "{body}");
        let missing = app
            .gql(
                &msw,
                DOCUMENTS,
                json!({ "r": [{ "__typename": "AdmissionSheet", "id": unknown }, notice_ref] }),
            )
            .await;
        assert_eq!(body["errors"], missing["errors"]);
        // Once sent, the hospital reads it.
        app.ok(
            &manager,
            "mutation($id: ID!) { sendAdmissionSheet(id: $id) { id } }",
            json!({ "id": sheet }),
        )
        .await;
        let data = app.ok(&msw, DOCUMENTS, json!({ "r": [sheet_ref] })).await;
        assert_eq!(
            data["_entities"],
            json!([{ "id": sheet, "status": "SENT" }])
        );
        // An organisation off the team reads neither.
        let body = app
            .gql(
                &pharmacist,
                DOCUMENTS,
                json!({ "r": [sheet_ref, notice_ref] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"], json!([null, null]));
        assert_eq!(errors(&body), refused_at(&[0, 1]), "{body}");
        // Errors come in the order they happened: by index.
        let mut messages: Vec<(String, &str)> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["path"].to_string(), e["message"].as_str().unwrap()))
            .collect();
        messages.sort();
        assert_eq!(
            messages.into_iter().map(|(_, m)| m).collect::<Vec<_>>(),
            ["admission sheet not found", "discharge notice not found"]
        );
    }
);

e2e!(entities_and_the_sdl_need_authentication, |app| async move {
    let (patient, ..) = setting(app).await;
    let requests = [
        json!({ "query": ENTITIES, "variables": { "r": [patient_ref(&patient)] } }),
        json!({ "query": "{ _service { sdl } }" }),
    ];
    for request in requests {
        for token in [None, Some("not-a-token"), Some("rk_bogus_key")] {
            let (status, body) = app.post(token, request.clone()).await;
            assert_eq!(status, 401, "{token:?}: {body}");
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{body}"
            );
            assert!(body.get("data").is_none_or(Value::is_null), "{body}");
            assert!(!body.to_string().contains("連携"), "{body}");
        }
    }
});

e2e!(
    an_operation_names_at_most_500_entities_and_no_list_holds_more_than_1000,
    |app| async move {
        let (patient, physician, pharmacist, _) = setting(app).await;
        // 500 representations are answered, one audit entry for them all.
        let body = app
            .gql(
                &physician,
                ENTITIES,
                json!({ "r": vec![patient_ref(&patient); 500] }),
            )
            .await;
        assert!(body["errors"].is_null(), "{}", body["errors"]);
        assert_eq!(body["data"]["_entities"].as_array().unwrap().len(), 500);
        let before = audit(app, &patient).await;
        // One more, or two `_entities` fields over 500 together, and
        // nothing is resolved: no denial recorded for each hidden one.
        let refused = |body: &Value| {
            assert!(body["data"].is_null(), "{body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
                "{body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "representations",
                "{body}"
            );
        };
        let body = app
            .gql(
                &pharmacist,
                ENTITIES,
                json!({ "r": vec![patient_ref(&patient); 501] }),
            )
            .await;
        refused(&body);
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("501"),
            "{body}"
        );
        let body = app
            .gql(
                &pharmacist,
                "query($a: [_Any!]!, $b: [_Any!]!) { a: _entities(representations: $a) { __typename } b: _entities(representations: $b) { __typename } }",
                json!({ "a": vec![patient_ref(&patient); 300], "b": vec![patient_ref(&patient); 300] }),
            )
            .await;
        refused(&body);
        // Over the list limit: refused as a list too long.
        let body = app
            .gql(
                &pharmacist,
                ENTITIES,
                json!({ "r": vec![patient_ref("x"); 1_001] }),
            )
            .await;
        assert!(body["data"].is_null(), "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "$r", "{body}");
        assert_eq!(audit(app, &patient).await, before, "nothing was resolved");

        // A filter's list: 1,000 items are read (and the statuses taken
        // once each), 1,001 are refused as bad input, in variables or
        // written in the document.
        const NOTICES: &str = "query($s: [DischargeNoticeStatus!]!) { careTeamDischargeNotices(status: $s) { nodes { id } } }";
        let body = app
            .gql(&physician, NOTICES, json!({ "s": vec!["NOTIFIED"; 1000] }))
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let body = app
            .gql(&physician, NOTICES, json!({ "s": vec!["NOTIFIED"; 1001] }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "$s", "{body}");
        let literal = format!(
            "{{ careTeamDischargeNotices(status: [{}]) {{ nodes {{ id }} }} }}",
            vec!["DISCHARGED"; 1001].join(", ")
        );
        let body = app.gql(&physician, &literal, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "status", "{body}");
        // A variable's default in the document counts like a value sent.
        let defaulted = format!(
            "query($s: [DischargeNoticeStatus!]! = [{}]) {{ careTeamDischargeNotices(status: $s) {{ nodes {{ id }} }} }}",
            vec!["DISCHARGED"; 1001].join(", ")
        );
        let body = app.gql(&physician, &defaulted, json!({})).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "$s", "{body}");
        let defaulted = format!(
            "query($r: [_Any!]! = [{}]) {{ _entities(representations: $r) {{ __typename }} }}",
            vec!["{ __typename: \"Patient\", id: \"x\" }"; 501].join(", ")
        );
        let body = app.gql(&pharmacist, &defaulted, json!({})).await;
        refused(&body);
    }
);
