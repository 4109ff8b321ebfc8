//! Hidden versions stay hidden: a record's `version` and `history` count only
//! the versions the caller may read, so a diagnosis first recorded as
//! psychiatric and corrected to a plain one shows a care manager a first
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

/// A clinic's patient with consent; a care office on the team.
async fn setup(app: &TestApp) -> (String, String, String, String) {
    let clinic = app.organization("CLINIC", "版クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "V-1").await;
    let office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "版ケアプラン")
        .await;
    app.ok(
        &doctor,
        "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "organizationId": office, "role": "CARE_MANAGER" } }),
    )
    .await;
    let (_, manager) = app.member(&office, "CARE_MANAGER").await;
    (patient, clinic, doctor, manager)
}

fn only_node(data: &Value) -> Value {
    let edges = data["patient"]["timeline"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{data}");
    edges[0]["node"].clone()
}

e2e!(
    a_psychiatric_first_version_is_invisible_to_a_reader_without_the_category,
    |app| async move {
        let (patient, _, doctor, manager) = setup(app).await;
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

        // The care manager reads CONDITIONS, not SENSITIVE_PSYCHIATRIC: the
        // record is at its first version, with no history and no hint.
        let body = app.gql(&manager, VIEW, json!({ "id": patient })).await;
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
        let (patient, clinic, doctor, manager) = setup(app).await;
        app.ok(
            &doctor,
            WRITE,
            json!({ "i": { "records": [condition(&patient, "うつ病", Some("PSYCHIATRIC"))] } }),
        )
        .await;
        // The clinic's records system may write conditions, but not the
        // sensitive categories. Its correction of the record (same source
        // ID) is, as far as it can see, a new record.
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
        assert_eq!(written["outcome"], "CREATED", "{data}");
        assert_eq!(written["record"]["version"], 1);
        assert_eq!(written["record"]["history"], json!([]));
        let id = written["record"]["id"].as_str().unwrap().to_string();
        // Sent again unchanged: unchanged, still the first version it sees.
        let data = app.ok(&key, RECORD_CONDITION, json!({ "i": input })).await;
        assert_eq!(data["recordCondition"]["outcome"], "UNCHANGED");
        assert_eq!(data["recordCondition"]["record"]["version"], 1);

        // Removing it makes a second version for the system, a third for
        // the physician.
        let data = app.ok(&key, ENTERED_IN_ERROR, json!({ "id": id })).await;
        assert_eq!(
            data["markRecordEnteredInError"],
            json!({ "status": "ENTERED_IN_ERROR", "version": 2, "history": [{ "version": 1, "status": "ACTIVE" }] })
        );
        let node = only_node(&app.ok(&manager, VIEW, json!({ "id": patient })).await);
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
