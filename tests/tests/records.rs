//! Records: writes from facility systems, the summary, the timeline, versions —
//! all under the policy, and batched so that cost does not grow per patient.

use renkei_tests::*;
use serde_json::{Value, json};

const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { index outcome record { id version kind category author { id } sourceOrganization { id } } } }";

fn lab(patient: &str, source: &str, name: &str, value: &str, at: &str) -> Value {
    json!({ "patientId": patient, "sourceRecordId": source, "effectiveAt": at,
            "data": { "labResult": { "code": format!("LAB-{name}"), "name": name, "value": value, "unit": "%", "abnormal": "HIGH" } } })
}

fn condition(patient: &str, source: &str, name: &str, extra: Value) -> Value {
    let mut data = json!({ "name": name, "icd10": "I10", "clinicalStatus": "ACTIVE" });
    for (k, v) in extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    json!({ "patientId": patient, "sourceRecordId": source, "effectiveAt": "2026-01-10T09:00:00Z", "data": { "condition": data } })
}

/// A clinic physician's patient with consent; a care-service provider on the team.
async fn setup(app: &TestApp) -> (String, String, String, String) {
    let clinic = app.organization("CLINIC", "記録クリニック").await;
    let (doctor_id, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "R-1").await;
    let provider = app
        .organization("CARE_SERVICE_PROVIDER", "記録ヘルパー")
        .await;
    app.ok(
        &doctor,
        "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "organizationId": provider, "role": "CARE_SERVICE" } }),
    )
    .await;
    (patient, doctor, doctor_id, provider)
}

e2e!(
    records_of_many_kinds_are_written_in_one_batch_and_stamped_by_the_hub,
    |app| async move {
        let (patient, doctor, doctor_id, _) = setup(app).await;
        let data = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [
                    condition(&patient, "C-1", "高血圧症", json!({})),
                    lab(&patient, "L-1", "HbA1c", "7.2", "2026-01-05T00:00:00Z"),
                    { "patientId": patient, "effectiveAt": "2026-01-06T00:00:00Z", "data": { "allergy": { "substance": "ペニシリン系抗菌薬", "allergyType": "DRUG", "reaction": "発疹", "severity": "MODERATE" } } },
                    { "patientId": patient, "effectiveAt": "2026-01-07T00:00:00Z", "data": { "prescription": { "medicationType": "PRESCRIPTION", "drug": "アムロジピン錠5mg", "dose": "1錠", "route": "ORAL", "frequency": "1日1回朝食後", "startDate": "2026-01-07" } } },
                ] } }),
            )
            .await;
        let results = data["writeRecords"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r["index"], i);
            assert_eq!(r["outcome"], "CREATED");
            assert_eq!(r["record"]["version"], 1);
            assert_eq!(
                r["record"]["author"]["id"],
                doctor_id.as_str(),
                "the server stamps the author"
            );
        }
        assert_eq!(results[1]["record"]["category"], "LAB_RESULTS");

        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { summary {
                    primaryPhysician { role organization { name } }
                    activeConditions { data { ... on ConditionData { name } } }
                    allergies { data { ... on AllergyData { substance } } }
                    currentPrescriptions { data { ... on PrescriptionData { drug } } }
                    latestLabResults { data { ... on LabResultData { name value } } } } } }",
                json!({ "id": patient }),
            )
            .await;
        let s = &data["patient"]["summary"];
        assert_eq!(s["primaryPhysician"]["role"], "PRIMARY_PHYSICIAN");
        assert_eq!(s["activeConditions"][0]["data"]["name"], "高血圧症");
        assert_eq!(s["allergies"][0]["data"]["substance"], "ペニシリン系抗菌薬");
        assert_eq!(
            s["currentPrescriptions"][0]["data"]["drug"],
            "アムロジピン錠5mg"
        );
        assert_eq!(s["latestLabResults"][0]["data"]["value"], "7.2");
    }
);

e2e!(
    a_source_record_id_belongs_to_one_patient,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let other = app.patient(&doctor, "R-2").await;
        app.ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "L-1", "Hb", "12", "2026-01-05T00:00:00Z")] } }))
            .await;
        // Found inside the batch's transaction, the conflict names the item
        // and its field, as a validation error would; nothing is written.
        let body = app
            .gql(
                &doctor,
                WRITE,
                json!({ "i": { "records": [
                lab(&other, "L-2", "Hb", "12", "2026-01-05T00:00:00Z"),
                lab(&other, "L-1", "Hb", "12", "2026-01-05T00:00:00Z"),
            ] } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "input.records[1].sourceRecordId",
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("input.records[1].sourceRecordId: "),
            "{body}"
        );
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { timeline { edges { cursor } } } }",
                json!({ "id": other }),
            )
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"],
            json!([]),
            "all or nothing"
        );

        // Two patients' writers racing for one new source record ID: one
        // wins, the other is told the same — never INTERNAL.
        for round in 0..5 {
            let source = format!("RACE-{round}");
            let bodies = futures::future::join_all([&patient, &other].map(|p| {
                let input = json!({ "i": { "records": [
                    lab(p, &format!("X-{round}-{p}"), "Hb", "12", "2026-01-05T00:00:00Z"),
                    lab(p, &source, "Hb", "12", "2026-01-05T00:00:00Z"),
                ] } });
                let doctor = doctor.clone();
                async move { app.gql(&doctor, WRITE, input).await }
            }))
            .await;
            let refused: Vec<&Value> = bodies
                .iter()
                .filter(|b| b.get("errors").is_some())
                .collect();
            assert_eq!(refused.len(), 1, "{bodies:?}");
            assert_eq!(
                error_code(refused[0]).as_deref(),
                Some("CONFLICT"),
                "{bodies:?}"
            );
            assert_eq!(
                refused[0]["errors"][0]["extensions"]["field"],
                "input.records[1].sourceRecordId"
            );
        }
    }
);

e2e!(
    a_resubmission_updates_the_same_record_as_a_new_version,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let first = app
            .ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "L-9", "eGFR", "52", "2026-02-01T00:00:00Z")] } }))
            .await;
        let id = first["writeRecords"][0]["record"]["id"].clone();
        // Identical: nothing changes.
        let same = app
            .ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "L-9", "eGFR", "52", "2026-02-01T00:00:00Z")] } }))
            .await;
        assert_eq!(same["writeRecords"][0]["outcome"], "UNCHANGED");
        assert_eq!(same["writeRecords"][0]["record"]["version"], 1);
        // Corrected: same record, version 2; version 1 stays readable.
        let fixed = app
            .ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "L-9", "eGFR", "48", "2026-02-01T00:00:00Z")] } }))
            .await;
        assert_eq!(fixed["writeRecords"][0]["outcome"], "UPDATED");
        assert_eq!(fixed["writeRecords"][0]["record"]["id"], id);
        assert_eq!(fixed["writeRecords"][0]["record"]["version"], 2);
        let data = app
            .ok(&doctor, "query($id: ID!) { patient(id: $id) { timeline(kinds: [LAB_RESULT]) { edges { node { version data { ... on LabResultData { value } } history { version data { ... on LabResultData { value } } } } } } } }", json!({ "id": patient }))
            .await;
        let edges = data["patient"]["timeline"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "no duplicate: {data}");
        assert_eq!(edges[0]["node"]["data"]["value"], "48");
        assert_eq!(
            edges[0]["node"]["history"],
            json!([{ "version": 1, "data": { "value": "52" } }])
        );
    }
);

e2e!(
    a_bad_item_names_its_index_and_field_and_nothing_is_written,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let mut bad = lab(&patient, "L-2", "HbA1c", "7.0", "2026-01-05T00:00:00Z");
        bad["data"]["labResult"]["referenceLow"] = json!(9.0);
        bad["data"]["labResult"]["referenceHigh"] = json!(4.0);
        let body = app
            .gql(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "L-1", "Hb", "12", "2026-01-05T00:00:00Z"), bad] } }))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        let field = body["errors"][0]["extensions"]["field"].as_str().unwrap();
        assert!(
            field.starts_with("input.records[1].data.labResult."),
            "{field}"
        );
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { timeline { edges { cursor } } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"],
            json!([]),
            "all or nothing"
        );

        // A second kind in one item, an empty batch, a future time: refused too.
        let mut two = lab(&patient, "L-3", "Hb", "12", "2026-01-05T00:00:00Z");
        two["data"]["allergy"] =
            json!({ "substance": "卵", "allergyType": "FOOD", "severity": "MILD" });
        let body = app
            .gql(&doctor, WRITE, json!({ "i": { "records": [two] } }))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        let body = app
            .gql(&doctor, WRITE, json!({ "i": { "records": [] } }))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        let body = app
            .gql(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "L-4", "Hb", "12", "2099-01-01T00:00:00Z")] } }))
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.records[0].effectiveAt"
        );
    }
);

e2e!(
    a_record_entered_in_error_leaves_the_summary_but_not_the_history,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let data = app
            .ok(&doctor, WRITE, json!({ "i": { "records": [condition(&patient, "C-1", "胃癌", json!({ "icd10": "C16.9" }))] } }))
            .await;
        let id = data["writeRecords"][0]["record"]["id"].clone();
        let data = app
            .ok(
                &doctor,
                "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { status version } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            data["markRecordEnteredInError"],
            json!({ "status": "ENTERED_IN_ERROR", "version": 2 })
        );
        let data = app
            .ok(&doctor, "query($id: ID!) { patient(id: $id) { summary { activeConditions { id } } timeline(includeEnteredInError: true) { edges { node { status history { status } } } } } }", json!({ "id": patient }))
            .await;
        assert_eq!(data["patient"]["summary"]["activeConditions"], json!([]));
        assert_eq!(
            data["patient"]["timeline"]["edges"][0]["node"]["status"],
            "ENTERED_IN_ERROR"
        );
        assert_eq!(
            data["patient"]["timeline"]["edges"][0]["node"]["history"],
            json!([{ "status": "ACTIVE" }])
        );
        let body = app
            .gql(
                &doctor,
                "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { status } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"));
    }
);

e2e!(
    withdrawing_the_latest_of_a_series_hands_the_summary_to_the_one_before,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let data = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [
                lab(&patient, "L-1", "HbA1c", "7.0", "2026-01-05T00:00:00Z"),
                lab(&patient, "L-2", "HbA1c", "7.4", "2026-01-20T00:00:00Z"),
                lab(&patient, "L-3", "HbA1c", "6.8", "2026-01-10T00:00:00Z"),
            ] } }),
            )
            .await;
        let ids: Vec<Value> = (0..3)
            .map(|i| data["writeRecords"][i]["record"]["id"].clone())
            .collect();
        let (doctor, patient) = (&doctor, &patient);
        let latest = || async move {
            let data = app
                .ok(doctor, "query($id: ID!) { patient(id: $id) { summary { latestLabResults { data { ... on LabResultData { value } } } } } }", json!({ "id": patient }))
                .await;
            data["patient"]["summary"]["latestLabResults"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["data"]["value"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let withdraw = |id: Value| async move {
            app.ok(
                doctor,
                "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { status } }",
                json!({ "id": id }),
            )
            .await;
        };
        assert_eq!(latest().await, ["7.4"]);
        // An older result withdrawn: the newest keeps its place.
        withdraw(ids[0].clone()).await;
        assert_eq!(latest().await, ["7.4"]);
        // The newest withdrawn: the newest of those left takes its place.
        withdraw(ids[1].clone()).await;
        assert_eq!(latest().await, ["6.8"]);
        withdraw(ids[2].clone()).await;
        assert_eq!(latest().await, Vec::<String>::new());
        // A new result of the series after the withdrawals is the latest.
        app.ok(doctor, WRITE, json!({ "i": { "records": [lab(patient, "L-4", "HbA1c", "6.5", "2026-01-08T00:00:00Z")] } }))
            .await;
        assert_eq!(latest().await, ["6.5"]);
    }
);

e2e!(
    the_summary_and_timeline_show_each_profession_only_its_categories,
    |app| async move {
        let (patient, doctor, _, provider) = setup(app).await;
        app.ok(
            &doctor,
            WRITE,
            json!({ "i": { "records": [
                lab(&patient, "L-1", "HbA1c", "7.2", "2026-01-05T00:00:00Z"),
                condition(&patient, "C-1", "うつ病", json!({ "icd10": "F32.9", "sensitivity": "PSYCHIATRIC" })),
                condition(&patient, "C-2", "高血圧症", json!({})),
            ] } }),
        )
        .await;
        // ADL is the care side's to write (a physician only reads it).
        let (_, manager) = app.member(&provider, "CARE_MANAGER").await;
        let adl = json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-08T00:00:00Z", "data": { "adlAssessment": { "eating": "INDEPENDENT", "walking": "PARTIAL_ASSISTANCE" } } }] } });
        let body = app.gql(&doctor, WRITE, adl.clone()).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        app.ok(&manager, WRITE, adl).await;
        let (_, worker) = app.member(&provider, "CARE_WORKER").await;
        let q = "query($id: ID!) { patient(id: $id) { summary { latestLabResults { id } latestAdl { id } } timeline { edges { node { kind } } } } }";
        let body = app.gql(&worker, q, json!({ "id": patient })).await;
        assert!(body["data"]["patient"]["summary"]["latestLabResults"].is_null());
        assert_eq!(
            errors_at(&body, &["patient", "summary", "latestLabResults"])[0]["category"],
            "LAB_RESULTS"
        );
        assert!(
            body["data"]["patient"]["summary"]["latestAdl"]["id"].is_string(),
            "{body}"
        );
        let kinds: Vec<&str> = body["data"]["patient"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["ADL_ASSESSMENT"],
            "the timeline holds only what the care worker may read"
        );
        // Asking for lab results by kind is answered with FORBIDDEN_FIELD, not an empty list.
        let body = app
            .gql(&worker, "query($id: ID!) { patient(id: $id) { timeline(kinds: [LAB_RESULT]) { edges { cursor } } } }", json!({ "id": patient }))
            .await;
        assert_eq!(
            errors_at(&body, &["patient", "timeline"])[0]["code"],
            "FORBIDDEN_FIELD"
        );

        // A pharmacist reads conditions, but not the psychiatric one; a care
        // manager reads both (Kitami tells the care manager of psychiatric
        // conditions, 002:1113).
        let (_, pharmacist) = app.member(&provider, "PHARMACIST").await;
        let conditions = "query($id: ID!) { patient(id: $id) { summary { activeConditions { data { ... on ConditionData { name } } } } } }";
        let data = app
            .ok(&pharmacist, conditions, json!({ "id": patient }))
            .await;
        assert_eq!(
            data["patient"]["summary"]["activeConditions"],
            json!([{ "data": { "name": "高血圧症" } }])
        );
        let data = app.ok(&manager, conditions, json!({ "id": patient })).await;
        assert_eq!(
            data["patient"]["summary"]["activeConditions"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        // The physician sees both.
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { summary { activeConditions { id } } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"]["summary"]["activeConditions"]
                .as_array()
                .unwrap()
                .len(),
            2
        );

        // Writes follow the matrix: a care worker may not write lab results.
        let body = app
            .gql(&worker, WRITE, json!({ "i": { "records": [lab(&patient, "W-1", "Hb", "12", "2026-01-05T00:00:00Z")] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        app.ok(
            &worker,
            WRITE,
            json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-09T00:00:00Z", "data": { "dailyObservation": { "observation": "食欲低下あり", "concern": true } } }] } }),
        )
        .await;
    }
);

e2e!(
    the_timeline_pages_newest_first_and_filters_by_kind_and_period,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let records: Vec<Value> = (1..=7)
            .map(|d| {
                lab(
                    &patient,
                    &format!("L-{d}"),
                    &format!("T{d}"),
                    "1",
                    &format!("2026-01-0{d}T00:00:00Z"),
                )
            })
            .chain([condition(&patient, "C-1", "高血圧症", json!({}))])
            .collect();
        app.ok(&doctor, WRITE, json!({ "i": { "records": records } }))
            .await;
        let page = |after: Option<String>| {
            let patient = patient.clone();
            let doctor = doctor.clone();
            async move {
                app.ok(&doctor, "query($id: ID!, $a: String) { patient(id: $id) { timeline(kinds: [LAB_RESULT], first: 3, after: $a) { edges { node { effectiveAt } } pageInfo { hasNextPage endCursor } } } }", json!({ "id": patient, "a": after }))
                    .await["patient"]["timeline"]
                    .clone()
            }
        };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let t = page(after.clone()).await;
            for e in t["edges"].as_array().unwrap() {
                seen.push(e["node"]["effectiveAt"].as_str().unwrap().to_string());
            }
            if t["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = t["pageInfo"]["endCursor"].as_str().map(str::to_string);
        }
        assert_eq!(seen.len(), 7);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted, "newest first");
        let data = app
            .ok(&doctor, "query($id: ID!) { patient(id: $id) { timeline(from: \"2026-01-03T00:00:00Z\", to: \"2026-01-05T00:00:00Z\") { edges { node { kind } } } } }", json!({ "id": patient }))
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let body = app
            .gql(&doctor, "query($id: ID!) { patient(id: $id) { timeline(after: \"bogus\") { edges { cursor } } } }", json!({ "id": patient }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
    }
);

fn document_with(patient: &str, source: &str, filename: &str, mime: &str, content: &[u8]) -> Value {
    use base64::Engine;
    json!({ "patientId": patient, "sourceRecordId": source, "effectiveAt": "2026-01-20T09:00:00Z",
            "data": { "clinicalDocument": { "documentType": "REFERRAL_LETTER", "title": "診療情報提供書",
                "text": "", "attachments": [{ "filename": filename, "mimeType": mime,
                    "contentBase64": base64::engine::general_purpose::STANDARD.encode(content) }] } } })
}

e2e!(
    a_clinical_document_attachment_must_be_what_its_type_says,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let pdf = "%PDF-1.4\n% 紹介状\n".as_bytes();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let refused = [
            (
                "a PNG declared as a PDF",
                document_with(&patient, "D-1", "紹介状.pdf", "application/pdf", png),
            ),
            (
                "a PDF declared as a PNG",
                document_with(&patient, "D-1", "紹介状.png", "image/png", pdf),
            ),
            (
                "an HTML page declared as text",
                document_with(
                    &patient,
                    "D-1",
                    "紹介状.txt",
                    "text/plain",
                    b"<!DOCTYPE html><script>alert(1)</script>",
                ),
            ),
        ];
        for (what, record) in refused {
            let body = app
                .gql(&doctor, WRITE, json!({ "i": { "records": [record] } }))
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{what}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"],
                "input.records[0].data.clinicalDocument.attachments[0].contentBase64",
                "{what}: {body}"
            );
        }
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { timeline { edges { cursor } } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"],
            json!([]),
            "nothing was written"
        );

        // The same file under its own type is accepted.
        let data = app
            .ok(&doctor, WRITE, json!({ "i": { "records": [document_with(&patient, "D-1", "紹介状.pdf", "application/pdf", pdf)] } }))
            .await;
        assert_eq!(data["writeRecords"][0]["outcome"], "CREATED", "{data}");
    }
);

const SUMMARY: &str = "{ careTeamPatients(first: 50) { edges { node { id name summary {
    primaryPhysician { organization { name } member { name } } careManager { organization { name } }
    activeConditions { data { ... on ConditionData { name } } } allergies { id } currentPrescriptions { id }
    latestDispensing { id } latestLabResults { id data { ... on LabResultData { value } } }
    careCertification { id } latestAdl { id } carePlan { id } familyCareCapacity { id }
    homeEnvironment { id } latestAdvanceCarePlan { id } } } } } }";

/// Counts the statements of summary lists. The loaders' batching window is
/// widened so that, on a machine busy with other tests, every load of a level
/// lands in one batch: the count then shows the structure (one statement per
/// loader and level), not the scheduler's timing.
async fn cost_of_summaries(backend: Backend) {
    let owned = TestApp::spawn_with(backend, |c| c.batch_window_micros = 50_000).await;
    let app = &owned;
    {
        let (first, doctor, _, _) = setup(app).await;
        let (_, few) = app.count_statements(&doctor, SUMMARY, json!({})).await;

        // Many more records for the same patient …
        let records: Vec<Value> = (0..60)
            .map(|i| {
                lab(
                    &first,
                    &format!("M-{i}"),
                    &format!("T{}", i % 12),
                    &i.to_string(),
                    &format!("2025-{:02}-{:02}T00:00:00Z", 1 + i % 12, 1 + i / 12),
                )
            })
            .collect();
        app.ok(&doctor, WRITE, json!({ "i": { "records": records } }))
            .await;
        let (body, many_records) = app.count_statements(&doctor, SUMMARY, json!({})).await;
        assert_eq!(
            body["data"]["careTeamPatients"]["edges"][0]["node"]["summary"]["latestLabResults"]
                .as_array()
                .unwrap()
                .len(),
            12
        );
        // … and many more patients, each with records.
        for i in 0..24 {
            let p = app.patient(&doctor, &format!("R-X{i}")).await;
            app.ok(&doctor, WRITE, json!({ "i": { "records": [lab(&p, &format!("X{i}-L"), "HbA1c", "6.5", "2026-01-05T00:00:00Z"), condition(&p, &format!("X{i}-C"), "高血圧症", json!({}))] } })).await;
        }
        let (body, many_patients) = app.count_statements(&doctor, SUMMARY, json!({})).await;
        assert_eq!(
            body["data"]["careTeamPatients"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            25,
            "{body}"
        );
        assert!(body.get("errors").is_none(), "{body}");
        // One statement per loader and level, plus the audit append: the
        // same for one patient with few records, for many records, and for
        // 25 patients (per-patient queries would cost 25 or more).
        const BOUND: u64 = 16;
        assert!(few <= BOUND, "one patient's summary costs {few} statements");
        assert_eq!(many_records, few, "60 more records, same statements");
        assert_eq!(many_patients, few, "25 patients, same statements");
    }
    owned.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_summaries_does_not_grow_with_records_or_patients_on_sqlite() {
    cost_of_summaries(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_summaries_does_not_grow_with_records_or_patients_on_postgres() {
    if postgres_configured() {
        cost_of_summaries(Backend::Postgres).await;
    }
}

/// Outcomes of concurrent requests: how many failed with `INTERNAL`, and
/// every other error (each test asserts both are empty).
fn failures(bodies: &[Value]) -> (usize, Vec<&Value>) {
    let internal = bodies
        .iter()
        .filter(|b| error_code(b).as_deref() == Some("INTERNAL"))
        .count();
    let other = bodies
        .iter()
        .filter(|b| b.get("errors").is_some() && error_code(b).as_deref() != Some("INTERNAL"))
        .collect();
    (internal, other)
}

e2e!(
    concurrent_resubmissions_of_one_source_record_all_succeed_with_contiguous_versions,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        // Twenty systems' retries at once: the same source record ID, some
        // identical, some with a corrected value.
        const N: usize = 20;
        let bodies = futures::future::join_all((0..N).map(|i| {
            let value = ["7.0", "7.1", "7.0", "7.2"][i % 4];
            let input = json!({ "i": { "records": [lab(&patient, "L-RACE", "HbA1c", value, "2026-01-05T00:00:00Z")] } });
            let doctor = doctor.clone();
            async move { app.gql(&doctor, WRITE, input).await }
        }))
        .await;
        let (internal, other) = failures(&bodies);
        eprintln!("{internal} of {N} concurrent writes failed with INTERNAL");
        assert_eq!(internal, 0, "no write may fail: {bodies:?}");
        assert!(other.is_empty(), "no write may fail: {other:?}");

        let results: Vec<&Value> = bodies
            .iter()
            .map(|b| &b["data"]["writeRecords"][0])
            .collect();
        let id = &results[0]["record"]["id"];
        assert!(
            results.iter().all(|r| &r["record"]["id"] == id),
            "one record"
        );
        let outcomes: Vec<&str> = results
            .iter()
            .map(|r| r["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| **o == "CREATED").count(),
            1,
            "exactly one write creates the record: {outcomes:?}"
        );
        assert!(
            outcomes
                .iter()
                .all(|o| ["CREATED", "UPDATED", "UNCHANGED"].contains(o)),
            "{outcomes:?}"
        );
        // Each write that made a version made its own: 1 for the CREATED,
        // 2, 3 … for the UPDATED ones, no number twice, none skipped.
        let mut made: Vec<i64> = results
            .iter()
            .filter(|r| r["outcome"] != "UNCHANGED")
            .map(|r| r["record"]["version"].as_i64().unwrap())
            .collect();
        made.sort();
        let n = made.len() as i64;
        assert_eq!(made, (1..=n).collect::<Vec<_>>(), "{outcomes:?}");

        // The stored record agrees: version n, its history 1 … n−1, and the
        // timeline holds it once.
        let data = app
            .ok(&doctor, "query($id: ID!) { patient(id: $id) { timeline(kinds: [LAB_RESULT]) { edges { node { id version history { version } } } } } }", json!({ "id": patient }))
            .await;
        let edges = data["patient"]["timeline"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{data}");
        assert_eq!(edges[0]["node"]["version"], n);
        let history: Vec<i64> = edges[0]["node"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["version"].as_i64().unwrap())
            .collect();
        assert_eq!(history, (1..n).rev().collect::<Vec<_>>(), "newest first");
    }
);

e2e!(
    concurrent_batches_over_the_same_records_in_opposite_orders_do_not_deadlock,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let other = app.patient(&doctor, "R-2").await;
        // Two patients' series, each written by both batches — one in each
        // order — so that rows locked in input order would cross.
        let items = |value: &str| {
            vec![
                lab(&patient, "D-1", "T-A", value, "2026-01-05T00:00:00Z"),
                lab(&other, "D-2", "T-A", value, "2026-01-05T00:00:00Z"),
                lab(&patient, "D-3", "T-B", value, "2026-01-06T00:00:00Z"),
                lab(&other, "D-4", "T-B", value, "2026-01-06T00:00:00Z"),
            ]
        };
        app.ok(&doctor, WRITE, json!({ "i": { "records": items("50") } }))
            .await;
        let mut internal = 0;
        for round in 0..5 {
            let bodies = futures::future::join_all((0..6).map(|i| {
                let mut records = items(&format!("{}", 51 + round * 6 + i));
                if i % 2 == 1 {
                    records.reverse();
                }
                let doctor = doctor.clone();
                async move {
                    app.gql(&doctor, WRITE, json!({ "i": { "records": records } }))
                        .await
                }
            }))
            .await;
            let (failed, other) = failures(&bodies);
            assert!(other.is_empty(), "{other:?}");
            internal += failed;
        }
        eprintln!("{internal} of 30 crossing batches failed with INTERNAL");
        assert_eq!(internal, 0);
        // Each record went through every batch once: version 31.
        let data = app
            .ok(&doctor, "query($a: ID!, $b: ID!) { a: patient(id: $a) { timeline { edges { node { version } } } } b: patient(id: $b) { timeline { edges { node { version } } } } }", json!({ "a": patient, "b": other }))
            .await;
        for p in ["a", "b"] {
            for e in data[p]["timeline"]["edges"].as_array().unwrap() {
                assert_eq!(e["node"]["version"], 31, "{data}");
            }
        }
    }
);

e2e!(
    a_numeric_lab_result_is_kept_as_a_number_and_an_impossible_one_is_refused,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let result = |source: &str, name: &str, value: &str, unit: Option<&str>| {
            json!({ "patientId": patient, "sourceRecordId": source, "effectiveAt": "2026-01-05T00:00:00Z",
                    "data": { "labResult": { "name": name, "value": value, "unit": unit, "abnormal": "UNKNOWN" } } })
        };
        // HbA1c −5.0 in the second item: refused, naming it; nothing written.
        // Written with an exponent (as JSON serialisers write numbers) or
        // beyond any float, a number all the same.
        for (value, unit) in [
            ("-5.0", Some("%")),
            ("-5.0", None),
            ("72", Some("%")),
            ("7.2e1", Some("%")),
            ("720E-1", Some("%")),
            ("1e400", Some("%")),
        ] {
            let body = app
                .gql(
                    &doctor,
                    WRITE,
                    json!({ "i": { "records": [
                    result("N-1", "Hb", "12.5", Some("g/dL")),
                    result("N-2", "HbA1c", value, unit),
                ] } }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("IMPLAUSIBLE_VALUE"),
                "{value}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.records[1].data.labResult.value",
                "{body}"
            );
        }
        // By JLAC10 code too, whatever the name; one mutation alike.
        let body = app
            .gql(
                &doctor,
                "mutation($i: LabResultRecordInput!) { recordLabResult(input: $i) { outcome } }",
                json!({ "i": { "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
                    "data": { "code": "3H015000002327101", "name": "電解質", "value": "-4.1", "unit": "mmol/L", "abnormal": "UNKNOWN" } } }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("IMPLAUSIBLE_VALUE"),
            "{body}"
        );
        // The code in small letters is the same code.
        let body = app
            .gql(
                &doctor,
                "mutation($i: LabResultRecordInput!) { recordLabResult(input: $i) { outcome } }",
                json!({ "i": { "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
                    "data": { "code": "3d046000001906202", "name": "x", "value": "72", "unit": "%", "abnormal": "UNKNOWN" } } }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("IMPLAUSIBLE_VALUE"),
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.records[0].data.labResult.value"
        );
        // A vital sign beyond what a body can have.
        let body = app
            .gql(&doctor, WRITE, json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z", "data": { "vitalSigns": { "spo2": 101.0 } } }] } }))
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("IMPLAUSIBLE_VALUE"),
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.records[0].data.vitalSigns.spo2"
        );
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { timeline { edges { cursor } } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"],
            json!([]),
            "nothing was written"
        );

        // Plausible numbers are kept as numbers; qualitative results as text.
        app.ok(
            &doctor,
            WRITE,
            json!({ "i": { "records": [
            result("N-1", "HbA1c", "7.2", Some("%")),
            result("N-2", "白血球数", "6,500", Some("/μL")),
            result("N-3", "HBs抗原", "陰性", None),
            result("N-4", "尿蛋白", "<0.5", Some("g/gCr")),
            // An unknown test's negative value (a base excess) is its own.
            result("N-5", "BE", "-2.5", Some("mmol/L")),
            result("N-6", "CRP", "2.5E-1", Some("mg/dL")),
        ] } }),
        )
        .await;
        let data = app
            .ok(&doctor, "query($id: ID!) { patient(id: $id) { summary { latestLabResults { data { ... on LabResultData { name value numericValue unit } } } } } }", json!({ "id": patient }))
            .await;
        let mut results: Vec<Value> = data["patient"]["summary"]["latestLabResults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["data"].clone())
            .collect();
        results.sort_by_key(|r| r["name"].as_str().unwrap().to_string());
        assert_eq!(
            results,
            vec![
                json!({ "name": "BE", "value": "-2.5", "numericValue": -2.5, "unit": "mmol/L" }),
                json!({ "name": "CRP", "value": "2.5E-1", "numericValue": 0.25, "unit": "mg/dL" }),
                json!({ "name": "HBs抗原", "value": "陰性", "numericValue": null, "unit": null }),
                json!({ "name": "HbA1c", "value": "7.2", "numericValue": 7.2, "unit": "%" }),
                json!({ "name": "尿蛋白", "value": "<0.5", "numericValue": null, "unit": "g/gCr" }),
                json!({ "name": "白血球数", "value": "6,500", "numericValue": 6500.0, "unit": "/μL" }),
            ]
        );
    }
);

/// A lab result stored before numeric values were kept (its JSON without
/// `numericValue`) reads with its number, and sending it again is no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_result_stored_before_numbers_were_kept_reads_with_its_number() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !postgres_configured() {
            continue;
        }
        let owned = TestApp::spawn(backend).await;
        let app = &owned;
        let (patient, doctor, _, _) = setup(app).await;
        app.ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "O-1", "HbA1c", "7.2", "2026-01-05T00:00:00Z")] } }))
            .await;
        use sea_orm::ConnectionTrait;
        let old = r#"{"code":"LAB-HbA1c","name":"HbA1c","value":"7.2","unit":"%","referenceLow":null,"referenceHigh":null,"abnormal":"HIGH"}"#;
        app.db
            .execute_unprepared(&format!(
                "UPDATE records SET data = '{old}' WHERE source_record_id = 'O-1'"
            ))
            .await
            .unwrap();
        let data = app
            .ok(&doctor, "query($id: ID!) { patient(id: $id) { timeline { edges { node { data { ... on LabResultData { value numericValue } } } } } } }", json!({ "id": patient }))
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"][0]["node"]["data"],
            json!({ "value": "7.2", "numericValue": 7.2 })
        );
        let data = app
            .ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "O-1", "HbA1c", "7.2", "2026-01-05T00:00:00Z")] } }))
            .await;
        assert_eq!(data["writeRecords"][0]["outcome"], "UNCHANGED", "{data}");
        assert_eq!(data["writeRecords"][0]["record"]["version"], 1);
        owned.stop().await;
    }
}

e2e!(
    the_infections_of_home_care_and_facility_outbreaks_are_recorded,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let pathogens = [
            "SCABIES",
            "NOROVIRUS",
            "INFLUENZA",
            "COVID_19",
            "TUBERCULOSIS",
        ];
        let records: Vec<_> = pathogens
            .iter()
            .enumerate()
            .map(|(i, p)| json!({ "patientId": patient, "effectiveAt": format!("2026-01-1{i}T00:00:00Z"), "data": { "infection": { "pathogen": p, "result": "POSITIVE" } } }))
            .collect();
        let data = app
            .ok(&doctor, WRITE, json!({ "i": { "records": records } }))
            .await;
        for (i, written) in data["writeRecords"].as_array().unwrap().iter().enumerate() {
            assert_eq!(written["outcome"], "CREATED", "{} {written}", pathogens[i]);
            assert_eq!(written["record"]["kind"], "INFECTION");
            assert_eq!(written["record"]["category"], "INFECTIONS");
        }
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { timeline(first: 20, kinds: [INFECTION]) { edges { node { data { ... on InfectionData { pathogen otherName } } } } } } }",
                json!({ "id": patient }),
            )
            .await;
        let mut read: Vec<String> = data["patient"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["node"]["data"]["otherName"], Value::Null);
                e["node"]["data"]["pathogen"].as_str().unwrap().to_string()
            })
            .collect();
        read.sort();
        let mut expected: Vec<String> = pathogens.iter().map(|p| p.to_string()).collect();
        expected.sort();
        assert_eq!(read, expected);

        // A name outside the list still goes through OTHER, never as a code.
        let body = app
            .gql(&doctor, WRITE, json!({ "i": { "records": [
                { "patientId": patient, "effectiveAt": "2026-01-20T00:00:00Z", "data": { "infection": { "pathogen": "SCABIES_CRUSTED", "result": "POSITIVE" } } }
            ] } }))
            .await;
        assert!(
            body.get("errors").is_some(),
            "an unknown pathogen code is refused: {body}"
        );
    }
);

/// The patient's summary lab results as (name, value) pairs.
async fn summary_labs(app: &TestApp, token: &str, patient: &str) -> Vec<(String, String)> {
    let data = app
        .ok(
            token,
            "query($id: ID!) { patient(id: $id) { summary { latestLabResults { data { ... on LabResultData { name value } } } } } }",
            json!({ "id": patient }),
        )
        .await;
    let mut labs: Vec<(String, String)> = data["patient"]["summary"]["latestLabResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["data"]["name"].as_str().unwrap().to_string(),
                r["data"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    labs.sort();
    labs
}

e2e!(
    a_batch_means_its_items_written_one_after_the_other,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        app.ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "B-0", "Hb", "11.0", "2026-01-05T00:00:00Z")] } }))
            .await;
        // Out of order, a resubmission of an item of the same batch, and an
        // older result than the one stored: the summary shows each test's
        // newest, and the resubmission is the same record's version 2.
        let data = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [
                lab(&patient, "B-1", "Hb", "10.0", "2026-01-02T00:00:00Z"),
                lab(&patient, "B-2", "Hb", "13.0", "2026-02-01T00:00:00Z"),
                lab(&patient, "B-3", "Hb", "12.0", "2026-01-20T00:00:00Z"),
                lab(&patient, "B-2", "Hb", "13.5", "2026-02-01T00:00:00Z"),
                lab(&patient, "B-4", "Alb", "3.1", "2026-01-20T00:00:00Z"),
                lab(&patient, "B-4", "Alb", "3.1", "2026-01-20T00:00:00Z"),
            ] } }),
            )
            .await;
        let results = data["writeRecords"].as_array().unwrap();
        let outcomes: Vec<&str> = results
            .iter()
            .map(|r| r["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes,
            [
                "CREATED",
                "CREATED",
                "CREATED",
                "UPDATED",
                "CREATED",
                "UNCHANGED"
            ],
            "{data}"
        );
        assert_eq!(results[3]["record"]["id"], results[1]["record"]["id"]);
        assert_eq!(results[3]["record"]["version"], 2);
        assert_eq!(results[5]["record"]["id"], results[4]["record"]["id"]);
        assert_eq!(results[5]["record"]["version"], 1);
        assert_eq!(
            summary_labs(app, &doctor, &patient).await,
            [("Alb".into(), "3.1".into()), ("Hb".into(), "13.5".into())]
        );
        // The newest moved back in time: the next newest takes its place.
        app.ok(&doctor, WRITE, json!({ "i": { "records": [lab(&patient, "B-2", "Hb", "13.5", "2025-12-01T00:00:00Z")] } }))
            .await;
        assert_eq!(
            summary_labs(app, &doctor, &patient).await,
            [("Alb".into(), "3.1".into()), ("Hb".into(), "12.0".into())]
        );
        // Moved to another test (its code changed): it leaves Hb's series.
        let moved = json!({ "patientId": patient, "sourceRecordId": "B-3", "effectiveAt": "2026-01-25T00:00:00Z",
            "data": { "labResult": { "code": "LAB-Alb", "name": "Alb", "value": "3.4", "unit": "g/dL", "abnormal": "NORMAL" } } });
        app.ok(&doctor, WRITE, json!({ "i": { "records": [moved] } }))
            .await;
        assert_eq!(
            summary_labs(app, &doctor, &patient).await,
            [("Alb".into(), "3.4".into()), ("Hb".into(), "11.0".into())]
        );
        // The timeline holds every record once; nothing was lost.
        let data = app
            .ok(&doctor, "query($id: ID!) { patient(id: $id) { timeline(kinds: [LAB_RESULT]) { edges { node { id } } } } }", json!({ "id": patient }))
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            5,
            "{data}"
        );
    }
);

/// A batch costs a fixed number of statements on `records`, not some per
/// record: 10 new records of one patient and 400 of 20 patients run as many
/// (the policy's and the response's loads are counted apart: their batching
/// depends on timing).
async fn cost_of_writes(backend: Backend) {
    let owned = TestApp::spawn_with(backend, |c| {
        c.batch_window_micros = 50_000;
        c.max_body_bytes = 1 << 20;
    })
    .await;
    let app = &owned;
    {
        let (first, doctor, _, _) = setup(app).await;
        let mut patients = vec![first.clone()];
        for i in 0..19 {
            patients.push(app.patient(&doctor, &format!("W-{i}")).await);
        }
        let batch = |prefix: &str, patients: &[String], n: usize| -> Value {
            let records: Vec<Value> = (0..n)
                .map(|i| {
                    let p = &patients[i % patients.len()];
                    if i % 4 == 3 {
                        condition(p, &format!("{prefix}-{i}"), "高血圧症", json!({}))
                    } else {
                        lab(
                            p,
                            &format!("{prefix}-{i}"),
                            &format!("T{}", i % 7),
                            &(i % 50).to_string(),
                            &format!("2025-{:02}-{:02}T00:00:00Z", 1 + i % 12, 1 + i % 28),
                        )
                    }
                })
                .collect();
            json!({ "i": { "records": records } })
        };
        let (body, few) = app
            .count_record_statements(&doctor, WRITE, batch("S", &patients[..1], 10))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        let (body, many) = app
            .count_record_statements(&doctor, WRITE, batch("M", &patients, 400))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["writeRecords"].as_array().unwrap().len(), 400);
        // Lock, source IDs, summary flags, insert — and one statement more
        // for a kind of change the small batch did not need: moving the
        // summary flag off records the batch's newer results replace. One
        // per record would be 400 or more.
        assert!(
            many <= few + 1,
            "400 records of 20 patients cost {many} statements on records, 10 of one {few}"
        );
        // Resubmitting all of them unchanged costs no more either.
        let (body, again) = app
            .count_record_statements(&doctor, WRITE, batch("M", &patients, 400))
            .await;
        assert!(
            body["data"]["writeRecords"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["outcome"] == "UNCHANGED"),
            "{body}"
        );
        assert!(
            again <= few,
            "an unchanged resubmission costs {again} statements"
        );
        // Correcting all of them: 400 new versions, updated in one statement
        // (the replaced versions go to record_versions, also in one).
        let mut corrected = batch("M", &patients, 400);
        for item in corrected["i"]["records"].as_array_mut().unwrap() {
            if let Some(lab) = item["data"].get_mut("labResult") {
                lab["referenceLow"] = json!(1.0);
            } else {
                item["data"]["condition"]["note"] = json!("確認済み");
            }
        }
        let (body, updating) = app.count_record_statements(&doctor, WRITE, corrected).await;
        let results = body["data"]["writeRecords"].as_array().unwrap();
        assert!(
            results
                .iter()
                .all(|r| r["outcome"] == "UPDATED" && r["record"]["version"] == 2),
            "{body}"
        );
        assert!(
            updating <= few + 1,
            "400 corrections cost {updating} statements on records, 10 new records {few}"
        );
        // Patient 0's corrected lab results: each at version 2 with the
        // correction, its version 1 in the history.
        let data = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { timeline(kinds: [LAB_RESULT], first: 100) { edges { node { version data { ... on LabResultData { referenceLow } } history { version data { ... on LabResultData { referenceLow } } } } } } } }",
                json!({ "id": patients[0] }),
            )
            .await;
        let corrected: Vec<&Value> = data["patient"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .filter(|n| n["version"] == 2)
            .collect();
        assert_eq!(corrected.len(), 20, "{data}");
        for n in corrected {
            assert_eq!(n["data"]["referenceLow"], 1.0, "{n}");
            assert_eq!(
                n["history"],
                json!([{ "version": 1, "data": { "referenceLow": null } }])
            );
        }
    }
    owned.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_a_write_does_not_grow_with_its_records_on_sqlite() {
    cost_of_writes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_a_write_does_not_grow_with_its_records_on_postgres() {
    if postgres_configured() {
        cost_of_writes(Backend::Postgres).await;
    }
}

e2e!(
    only_the_organisation_that_wrote_a_record_marks_it_entered_in_error,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        // A second clinic on the care team, whose physician may write
        // conditions of this patient — but not withdraw the first clinic's.
        let other = app.organization("CLINIC", "記録第二クリニック").await;
        let (_, deputy) = app.member(&other, "PHYSICIAN").await;
        app.ok(
            &doctor,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": other, "role": "DEPUTY_PHYSICIAN" } }),
        )
        .await;
        let data = app
            .ok(&doctor, WRITE, json!({ "i": { "records": [condition(&patient, "C-1", "心不全", json!({ "icd10": "I50.9" }))] } }))
            .await;
        let id = data["writeRecords"][0]["record"]["id"].clone();
        const WITHDRAW: &str =
            "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { status version } }";
        let body = app.gql(&deputy, WITHDRAW, json!({ "id": id })).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        // The record stands, in the summary, at its first version.
        let summary = "query($id: ID!) { patient(id: $id) { summary { activeConditions { id version status } } } }";
        let data = app.ok(&deputy, summary, json!({ "id": patient })).await;
        assert_eq!(
            data["patient"]["summary"]["activeConditions"],
            json!([{ "id": id, "version": 1, "status": "ACTIVE" }])
        );
        // The deputy's own record, the deputy withdraws.
        let data = app
            .ok(
                &deputy,
                WRITE,
                json!({ "i": { "records": [condition(&patient, "D-1", "高血圧症", json!({}))] } }),
            )
            .await;
        let own = data["writeRecords"][0]["record"]["id"].clone();
        let data = app.ok(&deputy, WITHDRAW, json!({ "id": own })).await;
        assert_eq!(
            data["markRecordEnteredInError"]["status"],
            "ENTERED_IN_ERROR"
        );
        // And the writing clinic its own.
        let data = app.ok(&doctor, WITHDRAW, json!({ "id": id })).await;
        assert_eq!(
            data["markRecordEnteredInError"]["status"],
            "ENTERED_IN_ERROR"
        );
    }
);

e2e!(
    a_record_is_corrected_only_by_a_writer_of_the_category_it_holds,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let clinic = app
            .ok(&doctor, "{ me { organization { id } } }", json!({}))
            .await["me"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let key_of = |name: &str, hiv: bool| {
            let mut permissions = vec![
                json!({ "category": "IDENTITY", "level": "READ" }),
                json!({ "category": "INFECTIONS", "level": "READ_WRITE" }),
            ];
            if hiv {
                permissions.push(json!({ "category": "SENSITIVE_HIV", "level": "READ_WRITE" }));
            }
            json!({ "i": { "organizationId": clinic, "name": name, "permissions": permissions } })
        };
        let create =
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id } } }";
        // The clinic's lab system may write infections, not HIV results.
        let data = app
            .ok(&app.admin_token, create, key_of("検査システム", false))
            .await;
        let lab = data["createApiKey"]["secret"].as_str().unwrap().to_string();
        let lab_id = data["createApiKey"]["apiKey"]["id"].clone();
        let infection = |pathogen: &str, result: &str| {
            json!({ "i": { "records": [{ "patientId": patient, "sourceRecordId": "INF-77", "effectiveAt": "2026-01-05T00:00:00Z",
                "data": { "infection": { "pathogen": pathogen, "result": result, "testedOn": "2026-01-05" } } }] } })
        };
        let data = app.ok(&doctor, WRITE, infection("HIV", "POSITIVE")).await;
        assert_eq!(
            data["writeRecords"][0]["record"]["category"],
            "SENSITIVE_HIV"
        );
        let id = data["writeRecords"][0]["record"]["id"].clone();
        let timeline = "query($id: ID!) { patient(id: $id) { timeline { edges { node { id version data { ... on InfectionData { pathogen } } history { data { ... on InfectionData { pathogen } } } } } } } }";
        // The clinic's own record, "corrected" by the lab system into an
        // MRSA result: refused, without saying what the record is.
        let body = app.gql(&lab, WRITE, infection("MRSA", "NEGATIVE")).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("input.records[0]"), "{message}");
        assert!(message.contains("INF-77"), "{message}");
        assert!(!message.contains("HIV"), "{message}");
        // Nothing changed: the HIV result stands, at its first version.
        let data = app.ok(&doctor, timeline, json!({ "id": patient })).await;
        assert_eq!(
            data["patient"]["timeline"]["edges"],
            json!([{ "node": { "id": id, "version": 1, "data": { "pathogen": "HIV" }, "history": [] } }])
        );
        // The refusal is in the log, under the category it concerned.
        let log = "query($p: ID!, $a: ID!) { auditLog(filter: { patientId: $p, actorId: $a }, first: 100) { edges { node { action categories } } } }";
        let data = app
            .ok(&app.admin_token, log, json!({ "p": patient, "a": lab_id }))
            .await;
        assert_eq!(
            data["auditLog"]["edges"],
            json!([{ "node": { "action": "DENIED", "categories": ["SENSITIVE_HIV"] } }])
        );

        // A system that may write HIV results corrects it: a second
        // version, the first in its history …
        let data = app
            .ok(&app.admin_token, create, key_of("感染症システム", true))
            .await;
        let both = data["createApiKey"]["secret"].as_str().unwrap().to_string();
        let both_id = data["createApiKey"]["apiKey"]["id"].clone();
        let data = app.ok(&both, WRITE, infection("MRSA", "NEGATIVE")).await;
        assert_eq!(data["writeRecords"][0]["outcome"], "UPDATED");
        assert_eq!(data["writeRecords"][0]["record"]["id"], id);
        let data = app.ok(&doctor, timeline, json!({ "id": patient })).await;
        assert_eq!(
            data["patient"]["timeline"]["edges"],
            json!([{ "node": { "id": id, "version": 2, "data": { "pathogen": "MRSA" }, "history": [{ "data": { "pathogen": "HIV" } }] } }])
        );
        // … and in the log a write of both categories: it replaced an HIV result.
        let data = app
            .ok(&app.admin_token, log, json!({ "p": patient, "a": both_id }))
            .await;
        assert_eq!(
            data["auditLog"]["edges"],
            json!([{ "node": { "action": "WRITE", "categories": ["INFECTIONS", "SENSITIVE_HIV"] } }])
        );
        // The corrected record, no longer an HIV result, the lab system
        // may correct again (to it, the version it can read is corrected).
        let data = app.ok(&lab, WRITE, infection("MRSA", "POSITIVE")).await;
        assert_eq!(data["writeRecords"][0]["outcome"], "UPDATED");
    }
);

e2e!(
    a_time_outside_the_years_1900_to_2100_is_bad_user_input,
    |app| async move {
        // chrono reads years from −262143 to +262142; PostgreSQL refuses
        // times before 4713 BC (an internal error, from a client's input)
        // and SQLite compares times as text. Refused as the argument is
        // read (before the field resolves), on writes and on reads, on both
        // databases alike.
        let (patient, doctor, _, _) = setup(app).await;
        for at in [
            "-4714-11-23T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "1899-12-31T23:59:59Z",
            "2101-01-01T00:00:00Z",
            "+12026-01-01T00:00:00Z",
            "99999-01-01T00:00:00Z",
            // A leap second: read by chrono as the next minute's start.
            "2026-12-20T10:00:60+09:00",
        ] {
            let mut item = condition(&patient, "T-RANGE", "高血圧症", json!({}));
            item["effectiveAt"] = json!(at);
            let body = app
                .gql(&doctor, WRITE, json!({ "i": { "records": [item] } }))
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("years 1900 to 2100")),
                "{at}: {body}"
            );
            let body = app
                .gql(
                    &doctor,
                    "query($p: ID!, $from: DateTime) { patient(id: $p) { timeline(from: $from) { edges { node { id } } } } }",
                    json!({ "p": patient, "from": at }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
            let body = app
                .gql(
                    &app.admin_token,
                    "query($from: DateTime) { auditLog(first: 1, filter: { from: $from }) { edges { node { seq } } } }",
                    json!({ "from": at }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
        }
        // The range's ends, in any offset, are times like any other.
        for at in ["1900-01-01T00:00:00+09:00", "2026-01-10T09:00:00Z"] {
            let mut item = condition(&patient, &format!("T-{at}"), "高血圧症", json!({}));
            item["effectiveAt"] = json!(at);
            app.ok(&doctor, WRITE, json!({ "i": { "records": [item] } }))
                .await;
        }
        // Written inline, the same refusal.
        let body = app
            .gql(
                &doctor,
                &format!(
                    r#"{{ patient(id: "{patient}") {{ timeline(to: "-5000-01-01T00:00:00Z") {{ edges {{ node {{ id }} }} }} }} }}"#
                ),
                json!({}),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
    }
);

e2e!(
    a_record_that_does_not_read_fails_only_the_summary_parts_of_its_kind,
    |app| async move {
        // A row changed in the database (its data no longer the kind's
        // shape): the parts of its kind fail, opaquely; the others — the
        // allergies an emergency sheet shows — are delivered.
        use entities::record::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let (patient, doctor, _, provider) = setup(app).await;
        let written = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [
                    lab(&patient, "L-BROKEN", "HbA1c", "7.2", "2026-01-05T00:00:00Z"),
                    { "patientId": patient, "effectiveAt": "2026-01-06T00:00:00Z", "data": { "allergy": { "substance": "ペニシリン系抗菌薬", "allergyType": "DRUG", "reaction": "発疹", "severity": "MODERATE" } } },
                    condition(&patient, "C-OK", "高血圧症", json!({})),
                ] } }),
            )
            .await;
        let lab_id: uuid::Uuid = written["writeRecords"][0]["record"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let allergy_id: uuid::Uuid = written["writeRecords"][1]["record"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let summary = "query($p: ID!) { patient(id: $p) { summary { allergies { id } latestLabResults { id } activeConditions { id } } } }";
        let corrupt = |id: uuid::Uuid| async move {
            Entity::update_many()
                .col_expr(Column::Data, Expr::value(r#"{"code": 1}"#))
                .filter(Column::Id.eq(id))
                .exec(&app.db)
                .await
                .unwrap();
        };
        corrupt(lab_id).await;
        let body = app.gql(&doctor, summary, json!({ "p": patient })).await;
        let parts = &body["data"]["patient"]["summary"];
        assert_eq!(
            parts["allergies"].as_array().map(Vec::len),
            Some(1),
            "{body}"
        );
        assert_eq!(
            parts["activeConditions"].as_array().map(Vec::len),
            Some(1),
            "{body}"
        );
        assert!(parts["latestLabResults"].is_null(), "{body}");
        let errors = body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["extensions"]["code"], "INTERNAL", "{body}");
        assert_eq!(
            errors[0]["path"],
            json!(["patient", "summary", "latestLabResults"]),
            "{body}"
        );
        assert!(!body.to_string().contains("code\\\": 1"), "{body}");
        // A row of a category the reader may not read does not fail its
        // part: a pharmacist (CONDITIONS, not SENSITIVE_PSYCHIATRIC) is
        // shown the conditions it may read, as if the broken one were
        // whole and closed to it; the physician, who may read it, is told.
        let written = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [condition(&patient, "C-PSY", "うつ病", json!({ "icd10": "F32.9", "sensitivity": "PSYCHIATRIC" }))] } }),
            )
            .await;
        let psychiatric: uuid::Uuid = written["writeRecords"][0]["record"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        corrupt(psychiatric).await;
        let (_, pharmacist) = app.member(&provider, "PHARMACIST").await;
        let conditions =
            "query($p: ID!) { patient(id: $p) { summary { activeConditions { id } } } }";
        let body = app
            .gql(&pharmacist, conditions, json!({ "p": patient }))
            .await;
        assert_eq!(
            body["data"]["patient"]["summary"]["activeConditions"]
                .as_array()
                .map(Vec::len),
            Some(1),
            "{body}"
        );
        assert!(body.get("errors").is_none(), "{body}");
        let body = app.gql(&doctor, conditions, json!({ "p": patient })).await;
        assert!(
            body["data"]["patient"]["summary"]["activeConditions"].is_null(),
            "{body}"
        );
        assert_eq!(error_code(&body).as_deref(), Some("INTERNAL"), "{body}");
        // Now an allergy: the allergies fail — shown without it, the list
        // would look whole — and the rest is delivered.
        corrupt(allergy_id).await;
        let body = app.gql(&pharmacist, summary, json!({ "p": patient })).await;
        let parts = &body["data"]["patient"]["summary"];
        assert!(parts["allergies"].is_null(), "{body}");
        assert_eq!(
            parts["activeConditions"].as_array().map(Vec::len),
            Some(1),
            "{body}"
        );
    }
);

e2e!(
    whatever_names_hiv_is_sensitive_hiv_and_shown_to_no_pharmacist,
    |app| async move {
        let (patient, doctor, _, _) = setup(app).await;
        let pharmacy = app.organization("PHARMACY", "記録薬局").await;
        let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
        app.ok(
            &doctor,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": pharmacy, "role": "PHARMACY" } }),
        )
        .await;
        // Neither marked nor coded in `icd10`, nor of pathogen HIV: named
        // so, in full-width letters or katakana, or coded so in a coding.
        let data = app
            .ok(
                &doctor,
                WRITE,
                json!({ "i": { "records": [
                    condition(&patient, "H-1", "HIV感染症", json!({})),
                    condition(&patient, "H-2", "免疫不全", json!({ "codings": [{ "system": "http://jpfhir.jp/fhir/core/CodeSystem/icd-10", "code": "B24" }] })),
                    { "patientId": patient, "sourceRecordId": "H-3", "effectiveAt": "2026-01-05T00:00:00Z",
                      "data": { "infection": { "pathogen": "OTHER", "otherName": "ＨＩＶ抗体", "result": "POSITIVE", "testedOn": "2026-01-05" } } },
                    { "patientId": patient, "sourceRecordId": "H-4", "effectiveAt": "2026-01-05T00:00:00Z",
                      "data": { "infection": { "pathogen": "OTHER", "otherName": "ヒト免疫不全ウイルス抗体", "result": "NEGATIVE", "testedOn": "2026-01-05" } } },
                    // Spaced out, or in Greek letters that show as H and I.
                    { "patientId": patient, "sourceRecordId": "H-6", "effectiveAt": "2026-01-05T00:00:00Z",
                      "data": { "infection": { "pathogen": "OTHER", "otherName": "H I V抗体", "result": "NEGATIVE", "testedOn": "2026-01-05" } } },
                    { "patientId": patient, "sourceRecordId": "H-7", "effectiveAt": "2026-01-05T00:00:00Z",
                      "data": { "infection": { "pathogen": "OTHER", "otherName": "\u{397}\u{399}V抗体", "result": "NEGATIVE", "testedOn": "2026-01-05" } } },
                    condition(&patient, "H-5", "高血圧症", json!({})),
                ] } }),
            )
            .await;
        let categories: Vec<&str> = data["writeRecords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record"]["category"].as_str().unwrap())
            .collect();
        assert_eq!(
            categories,
            [
                "SENSITIVE_HIV",
                "SENSITIVE_HIV",
                "SENSITIVE_HIV",
                "SENSITIVE_HIV",
                "SENSITIVE_HIV",
                "SENSITIVE_HIV",
                "CONDITIONS"
            ],
            "{data}"
        );
        // The pharmacist (CONDITIONS and INFECTIONS readable) sees the
        // hypertension only.
        let data = app
            .ok(
                &pharmacist,
                "query($id: ID!) { patient(id: $id) { timeline { edges { node { category } } } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"]["timeline"]["edges"],
            json!([{ "node": { "category": "CONDITIONS" } }]),
            "{data}"
        );
    }
);
