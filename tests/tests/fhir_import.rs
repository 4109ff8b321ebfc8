//! `POST /fhir` (issue 13): JP-CLINS bundles in — the six items and the
//! three documents (`tests/fixtures/fhir/`) — matched to the hub's patients
//! (名寄せ), written through `writeRecords` under the policy, idempotent,
//! all or nothing, and refused with `OperationOutcome`s that name the
//! element.

use renkei_tests::fhir::{FIXTURES, care_worker, clinic, fixture, post, post_raw, register_clinic};
use renkei_tests::*;
use serde_json::{Value, json};

const TIMELINE: &str = "query($id: ID!) { patient(id: $id) { timeline(first: 100) { edges { node {
    kind version sourceRecordId data {
      ... on ConditionData { name icd10 clinicalStatus codings { system code } }
      ... on AllergyData { substance allergyType }
      ... on DrugContraindicationData { drug yjCode reason }
      ... on InfectionData { pathogen result }
      ... on LabResultData { name value unit abnormal code }
      ... on PrescriptionData { drug yjCode days route }
      ... on ClinicalDocumentData { documentType title text authorName }
    } } } } } }";

async fn timeline(app: &TestApp, token: &str, patient: &str) -> Vec<Value> {
    let data = app.ok(token, TIMELINE, json!({ "id": patient })).await;
    data["patient"]["timeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn statuses(body: &Value) -> Vec<String> {
    body["entry"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|e| {
            e["response"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

e2e!(
    every_fixture_is_written_once_and_a_resend_changes_nothing,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let mut expected_records = 0;
        for name in FIXTURES {
            let bundle = fixture(name);
            let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
            assert_eq!(status, 200, "{name}: {body}");
            assert_eq!(body["resourceType"], "Bundle");
            assert_eq!(body["type"], "batch-response", "{name}");
            let entries = bundle["entry"].as_array().unwrap();
            assert_eq!(
                statuses(&body).len(),
                entries.len(),
                "{name}: one answer per entry"
            );
            for (e, answer) in entries.iter().zip(body["entry"].as_array().unwrap()) {
                let ty = e["resource"]["resourceType"].as_str().unwrap();
                let status = answer["response"]["status"].as_str().unwrap();
                if renkei_fhir::inbound::STORED.contains(&ty) {
                    assert_eq!(status, "201 Created", "{name}: {ty}: {answer}");
                    let location = answer["response"]["location"].as_str().unwrap();
                    assert!(location.starts_with(&format!("{ty}/")), "{location}");
                    assert!(location.ends_with("/_history/1"), "{location}");
                    expected_records += 1;
                } else if ty == "Patient" {
                    assert_eq!(status, "200 OK", "{name}: the patient was matched");
                    assert_eq!(answer["response"]["location"], format!("Patient/{patient}"));
                }
            }
            // The same bundle again: every record unchanged.
            let (status, again) = post(app, Some(&doctor), "/fhir", &bundle).await;
            assert_eq!(status, 200, "{again}");
            assert!(
                statuses(&again).iter().all(|s| s == "200 OK"),
                "{name}: {again}"
            );
        }
        let records = timeline(app, &doctor, &patient).await;
        assert_eq!(records.len(), expected_records, "{records:?}");
        let find = |kind: &str, pred: &dyn Fn(&Value) -> bool| {
            records
                .iter()
                .find(|r| r["kind"] == kind && pred(&r["data"]))
                .unwrap_or_else(|| panic!("no {kind} in {records:?}"))
                .clone()
        };
        let diabetes = find("CONDITION", &|d| {
            d["name"] == "2型糖尿病" && d["codings"].as_array().unwrap().len() == 2
        });
        assert_eq!(diabetes["data"]["icd10"], "E11.9");
        assert_eq!(diabetes["sourceRecordId"], "CND-20240501-001");
        let pneumonia = find("CONDITION", &|d| d["name"] == "肺炎");
        assert_eq!(pneumonia["data"]["clinicalStatus"], "RESOLVED");
        let warfarin = find("DRUG_CONTRAINDICATION", &|_| true);
        assert_eq!(warfarin["data"]["yjCode"], "3332001F1029");
        assert_eq!(warfarin["data"]["reason"], "消化管出血の既往のため禁忌");
        let soba = find("ALLERGY", &|d| d["substance"] == "そば");
        assert_eq!(soba["data"]["allergyType"], "FOOD");
        let hbs = find("INFECTION", &|d| d["pathogen"] == "HBS_ANTIGEN");
        assert_eq!(hbs["data"]["result"], "NEGATIVE");
        let hba1c = find("LAB_RESULT", &|d| d["value"] == "7.2");
        assert_eq!(hba1c["data"]["code"], "3D045000001906202");
        assert_eq!(hba1c["data"]["abnormal"], "HIGH");
        let amlodipine = find("PRESCRIPTION", &|d| d["yjCode"] == "2149039F1020");
        assert_eq!(amlodipine["data"]["days"], 28);
        assert_eq!(amlodipine["data"]["route"], "ORAL");
        for (ty, title) in [
            ("REFERRAL_LETTER", "診療情報提供書"),
            ("DISCHARGE_SUMMARY", "退院時サマリー"),
            ("CHECKUP_REPORT", "健診結果報告書"),
        ] {
            let doc = find("CLINICAL_DOCUMENT", &|d| d["documentType"] == ty);
            assert_eq!(doc["data"]["title"], title);
            assert_eq!(doc["data"]["authorName"], "北見 一郎");
            assert!(
                doc["data"]["text"].as_str().unwrap().contains('\n'),
                "{doc}"
            );
        }
    }
);

e2e!(
    a_bundle_asks_the_policy_about_its_patients_once,
    |app| async move {
        use std::sync::atomic::Ordering::SeqCst;
        let (_, doctor, patient) = clinic(app).await;
        let bundle = fixture(FIXTURES[0]);
        // The lookup of the bundle's patient evaluates the policy; the
        // write takes that verdict instead of asking again — within one
        // request only: a second request asks again.
        for round in ["written", "sent again"] {
            let before = app.policy_statements.load(SeqCst);
            let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
            assert_eq!(status, 200, "{round}: {body}");
            assert_eq!(
                app.policy_statements.load(SeqCst) - before,
                1,
                "{round}: one evaluation of the policy per bundle"
            );
        }
        assert!(!timeline(app, &doctor, &patient).await.is_empty());
    }
);

e2e!(
    a_prescriptions_supply_is_read_in_days_and_its_dose_is_more_than_zero,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let with = |duration: Value, dose: Value| {
            let mut bundle = fixture("prescription");
            let r = &mut bundle["entry"][1]["resource"];
            r["dispenseRequest"]["expectedSupplyDuration"] = duration;
            r["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = dose;
            bundle
        };
        let ucum = |value: i64, unit: &str, code: &str| json!({ "value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": code });
        // Four weeks are 28 days, by the code or by the unit's words.
        for duration in [ucum(4, "週", "wk"), json!({ "value": 4, "unit": "週間" })] {
            let (status, body) = post(app, Some(&doctor), "/fhir", &with(duration, json!(1))).await;
            assert_eq!(status, 200, "{body}");
            let days: Vec<Value> = timeline(app, &doctor, &patient)
                .await
                .into_iter()
                .filter(|r| r["sourceRecordId"] == "RX-20240501-1")
                .map(|r| r["data"]["days"].clone())
                .collect();
            assert_eq!(days, [json!(28)]);
        }
        // A month is no number of days; nor is a unit the hub does not know.
        let at = |body: &Value| {
            body["issue"][0]["expression"][0]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        for (duration, element) in [
            (ucum(1, "月", "mo"), "code"),
            (ucum(3, "h", "h"), "code"),
            (json!({ "value": 1, "unit": "ヶ月" }), "unit"),
        ] {
            let (status, body) = post(app, Some(&doctor), "/fhir", &with(duration, json!(1))).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(
                at(&body),
                format!(
                    "Bundle.entry[1].resource.dispenseRequest.expectedSupplyDuration.{element}"
                ),
                "{body}"
            );
        }
        // A dose of nothing, or less, is no dose.
        for dose in [json!(0), json!(-1), json!(-0.5)] {
            let (status, body) = post(
                app,
                Some(&doctor),
                "/fhir",
                &with(ucum(28, "日", "d"), dose.clone()),
            )
            .await;
            assert_eq!(status, 400, "{dose}: {body}");
            assert_eq!(
                at(&body),
                "Bundle.entry[1].resource.dosageInstruction[0].doseAndRate[0].doseQuantity.value",
                "{body}"
            );
        }
    }
);

e2e!(a_changed_resource_is_a_new_version, |app| async move {
    let (_, doctor, patient) = clinic(app).await;
    let mut bundle = fixture("lab-result");
    post(app, Some(&doctor), "/fhir", &bundle).await;
    bundle["entry"][1]["resource"]["valueQuantity"]["value"] = json!(6.9);
    bundle["entry"][1]["resource"]["interpretation"][0]["coding"][0]["code"] = json!("H");
    let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
    assert_eq!(status, 200, "{body}");
    let answer = &body["entry"][1]["response"];
    assert_eq!(answer["status"], "200 OK");
    assert!(
        answer["location"]
            .as_str()
            .unwrap()
            .ends_with("/_history/2"),
        "{answer}"
    );
    let records = timeline(app, &doctor, &patient).await;
    let hba1c: Vec<_> = records
        .iter()
        .filter(|r| r["data"]["name"] == "HbA1c")
        .collect();
    assert_eq!(hba1c.len(), 1);
    assert_eq!(hba1c[0]["version"], 2);
    assert_eq!(hba1c[0]["data"]["value"], "6.9");
});

e2e!(
    an_unknown_patient_is_refused_unless_registered_with_a_consent,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        let mut bundle = fixture("condition");
        let ids = &mut bundle["entry"][0]["resource"]["identifier"];
        ids[0]["value"] = json!("99999");
        ids[1]["value"] = json!("00012345:あいう:999:01");
        let (status, refused) = post(app, Some(&doctor), "/fhir", &bundle).await;
        assert_eq!(status, 404, "{refused}");
        assert_eq!(refused["resourceType"], "OperationOutcome");
        assert_eq!(refused["issue"][0]["code"], "not-found");
        assert_eq!(
            refused["issue"][0]["expression"][0],
            "Bundle.entry[0].resource"
        );
        // Registration needs the patient's consent.
        let (status, no_consent) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
        assert_eq!(status, 400, "{no_consent}");
        assert_eq!(no_consent["issue"][0]["code"], "required");
        // Nothing was registered by the refused attempts.
        let lookup = app
            .gql(
                &doctor,
                "query { patientByLocalId(localId: \"99999\") { id } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&lookup).as_deref(), Some("NOT_FOUND"));

        let entries = bundle["entry"].as_array_mut().unwrap();
        entries.push(json!({ "resource": {
            "resourceType": "Consent", "status": "active",
            "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
            "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
            "patient": { "reference": entries[0]["fullUrl"] },
            "dateTime": "2026-11-01T10:00:00+09:00",
            "sourceReference": { "display": "同意書 2026-0099" }
        } }));
        let (status, registered) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
        assert_eq!(status, 200, "{registered}");
        assert_eq!(registered["entry"][0]["response"]["status"], "201 Created");
        let location = registered["entry"][0]["response"]["location"]
            .as_str()
            .unwrap();
        let new_patient = location.strip_prefix("Patient/").unwrap();
        assert_eq!(timeline(app, &doctor, new_patient).await.len(), 3);
        // Sent again (even asking to register): matched, not duplicated.
        let (status, again) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["entry"][0]["response"]["status"], "200 OK");
        assert_eq!(again["entry"][0]["response"]["location"], location);
    }
);

e2e!(
    another_facility_matches_by_the_insured_person_identifier_only_when_it_may_see_the_patient,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let pharmacy_code = "0142345678";
        let second = register_clinic(app, "第二クリニック", pharmacy_code).await;
        let (_, other) = app.member(&second, "PHYSICIAN").await;
        let mut bundle = fixture("condition");
        bundle["entry"][0]["resource"]["identifier"][0] = json!({
            "system": format!("urn:oid:1.2.392.100495.20.3.51.1{pharmacy_code}"), "value": "B-77" });
        for e in bundle["entry"].as_array_mut().unwrap().iter_mut().skip(1) {
            let id = e["resource"]["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .to_string();
            e["resource"]["identifier"][0]["value"] = json!(format!("second-{id}"));
        }
        // Not on the care team: the patient is not found — as if it did not exist.
        let (status, hidden) = post(app, Some(&other), "/fhir", &bundle).await;
        let mut unknown_bundle = bundle.clone();
        unknown_bundle["entry"][0]["resource"]["identifier"][1]["value"] = json!("00099999:x:1:01");
        let (_, unknown) = post(app, Some(&other), "/fhir", &unknown_bundle).await;
        assert_eq!(status, 404, "{hidden}");
        assert_eq!(hidden, unknown);
        // On the care team: matched by the insured-person identifier, and
        // its local ID linked.
        app.ok(
            &doctor,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": second, "role": "HOSPITAL" } }),
        )
        .await;
        let (status, body) = post(app, Some(&other), "/fhir", &bundle).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["entry"][0]["response"]["location"],
            format!("Patient/{patient}")
        );
        let linked = app
            .ok(
                &other,
                "query { patientByLocalId(localId: \"B-77\") { id } }",
                json!({}),
            )
            .await;
        assert_eq!(linked["patientByLocalId"]["id"], patient.as_str());
    }
);

e2e!(
    bad_bundles_are_refused_with_the_element_named,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let (status, body) = post(app, None, "/fhir", &fixture("condition")).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["issue"][0]["code"], "login");

        let (status, body) = post_raw(app, Some(&doctor), "/fhir", "text/plain", "{}".into()).await;
        assert_eq!(status, 415, "{body}");
        // What the R4 model cannot read is told in FHIR's words, at its
        // element — not serde's (`as u128`, every resource type listed).
        let mut lab = fixture("lab-result");
        let original = lab.clone();
        // (serde_json keeps the digits: the workspace reads numbers with
        // `arbitrary_precision`.)
        lab["entry"][2]["resource"]["valueQuantity"]["value"] =
            serde_json::from_str("123456789012345678901234567890").unwrap();
        let huge = lab.to_string();
        assert!(huge.contains("123456789012345678901234567890"));
        lab = original;
        let (status, body) =
            post_raw(app, Some(&doctor), "/fhir", "application/fhir+json", huge).await;
        assert_eq!(status, 400, "{body}");
        let issue = body["issue"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["diagnostics"].as_str().is_some_and(|d| d.contains("R4")))
            .unwrap_or_else(|| panic!("{body}"));
        assert_eq!(
            issue["expression"][0], "Bundle.entry[2].resource.valueQuantity.value",
            "{body}"
        );
        assert!(!body.to_string().contains("u128"), "{body}");
        // A value of the wrong type, and a required element missing: each
        // at its element too.
        let mut condition = fixture("condition");
        condition["entry"][1]["resource"]["onsetDateTime"] = json!(20240101);
        condition["entry"][2]["resource"]
            .as_object_mut()
            .unwrap()
            .remove("subject");
        let (status, body) = post(app, Some(&doctor), "/fhir", &condition).await;
        assert_eq!(status, 400, "{body}");
        let at: Vec<&str> = body["issue"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["expression"][0].as_str())
            .collect();
        assert_eq!(
            at,
            [
                "Bundle.entry[1].resource.onsetDateTime",
                "Bundle.entry[2].resource.subject"
            ],
            "{body}"
        );
        assert!(body.to_string().contains("subject is required"), "{body}");
        lab["entry"][3]["resource"]["resourceType"] = json!("Observatio");
        let (status, body) = post(app, Some(&doctor), "/fhir", &lab).await;
        assert_eq!(status, 400, "{body}");
        let said = body.to_string();
        assert!(
            said.contains("\\\"Observatio\\\" is not a resource type of FHIR R4"),
            "{body}"
        );
        assert!(
            !said.contains("AccountActivityDefinition") && !said.contains("Account`"),
            "{body}"
        );
        // An element named twice: which would count? Neither: refused.
        let text = fixture("condition").to_string();
        let twice = text.replacen(
            "\"resourceType\":\"Condition\"",
            "\"resourceType\":\"Condition\",\"resourceType\":\"Patient\"",
            1,
        );
        assert_ne!(twice, text, "the fixture names a Condition");
        let (status, body) =
            post_raw(app, Some(&doctor), "/fhir", "application/fhir+json", twice).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["issue"][0]["code"], "structure", "{body}");
        assert!(
            body["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains("\"resourceType\" is given twice")),
            "{body}"
        );
        // A compressed bundle: refused for its coding, not as broken JSON.
        let response = app
            .client
            .post(app.url("/fhir"))
            .bearer_auth(&doctor)
            .header("content-type", "application/fhir+json")
            .header("content-encoding", "gzip")
            .body(fixture("condition").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
        assert_eq!(body["issue"][0]["code"], "not-supported", "{body}");
        assert!(
            body["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains("Content-Encoding")),
            "{body}"
        );
        let (status, body) = post_raw(
            app,
            Some(&doctor),
            "/fhir",
            "application/fhir+json",
            "{not json".into(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["issue"][0]["code"], "structure");

        let mut searchset = fixture("condition");
        searchset["type"] = json!("searchset");
        let (status, body) = post(app, Some(&doctor), "/fhir", &searchset).await;
        assert_eq!(status, 400);
        assert_eq!(body["issue"][0]["expression"][0], "Bundle.type");

        // One bad entry among good ones: refused, nothing written.
        let mut bundle = fixture("condition");
        bundle["entry"][2]["resource"]
            .as_object_mut()
            .unwrap()
            .remove("code");
        let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0],
            "Bundle.entry[2].resource.code"
        );
        // The hub's own validation, pointed back at the element: HbA1c 72 %.
        // So with an exponent (FHIR's decimal allows one; serialisers
        // write large numbers so), and beyond any float.
        for value in ["72.0", "7.2E1", "720e-1", "1e400"] {
            let mut lab = fixture("lab-result");
            lab["entry"][1]["resource"]["valueQuantity"]["value"] =
                serde_json::from_str(value).unwrap();
            let (status, body) = post(app, Some(&doctor), "/fhir", &lab).await;
            assert_eq!(status, 400, "{value}: {body}");
            assert_eq!(
                body["issue"][0]["expression"][0], "Bundle.entry[1].resource.value[x]",
                "{value}: {body}"
            );
        }
        // A choice element holds one type: both values would lose one.
        let mut both = fixture("lab-result");
        both["entry"][1]["resource"]["valueString"] = json!("7.0");
        let (status, body) = post(app, Some(&doctor), "/fhir", &both).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0], "Bundle.entry[1].resource.value[x]",
            "{body}"
        );
        // So within a prescription's dosage: a dose and a range of doses.
        let mut both = fixture("prescription");
        both["entry"][1]["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseRange"] =
            json!({ "low": { "value": 1, "unit": "錠" }, "high": { "value": 2, "unit": "錠" } });
        let (status, body) = post(app, Some(&doctor), "/fhir", &both).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0],
            "Bundle.entry[1].resource.dosageInstruction[0].doseAndRate[0].dose[x]",
            "{body}"
        );
        // Not R4: the model refuses it.
        let mut not_r4 = fixture("condition");
        not_r4["entry"][1]["resource"]["onsetDateTime"] = json!(20180401);
        let (status, body) = post(app, Some(&doctor), "/fhir", &not_r4).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0],
            "Bundle.entry[1].resource.onsetDateTime"
        );
        assert!(
            timeline(app, &doctor, &patient).await.is_empty(),
            "nothing of a refused bundle is written"
        );
    }
);

e2e!(
    a_caller_who_may_not_write_a_category_writes_nothing,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let helper = care_worker(app, &doctor, &patient).await;
        let (status, body) = post(app, Some(&helper), "/fhir", &fixture("condition")).await;
        // The provider has no medical institution code: its local IDs are
        // not named in the bundle; the insured-person identifier matches.
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["issue"][0]["code"], "forbidden");
        assert!(
            body["issue"][0]["expression"][0]
                .as_str()
                .unwrap()
                .starts_with("Bundle.entry[1].resource"),
            "{body}"
        );
        assert!(timeline(app, &doctor, &patient).await.is_empty());
        // The import is audited: the refused write is on record.
        let audit = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 50) { edges { node { action outcome } } } }",
                json!({ "p": patient }),
            )
            .await;
        assert!(
            audit.to_string().contains("READ"),
            "the match is audited: {audit}"
        );
    }
);

/// Runs `renkei import fhir` against the test hub's database as `token`.
fn import_cli(app: &TestApp, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = renkei_tests::fhir::cli(app, token)
        .args(["import", "fhir"])
        .args(args)
        .output()
        .expect("the renkei binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

e2e!(
    the_cli_imports_ndjson_and_bundles_reports_bad_lines_and_resumes,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let dir = tempfile::tempdir().unwrap();
        let condition = fixture("condition");
        let mut patient_resource = condition["entry"][0]["resource"].clone();
        patient_resource["id"] = json!("p1");
        std::fs::write(
            dir.path().join("Patient.ndjson"),
            format!("{patient_resource}\n"),
        )
        .unwrap();
        let mut lines = String::new();
        for e in condition["entry"].as_array().unwrap().iter().skip(1) {
            let mut r = e["resource"].clone();
            r["subject"] = json!({ "reference": "Patient/p1" });
            lines.push_str(&format!("{r}\n"));
        }
        std::fs::write(dir.path().join("Condition.ndjson"), &lines).unwrap();
        // Line 2 lacks its code; line 3 is not JSON.
        let lab = fixture("lab-result");
        let mut good = lab["entry"][1]["resource"].clone();
        good["subject"] = json!({ "reference": "Patient/p1" });
        let mut bad = lab["entry"][2]["resource"].clone();
        bad["subject"] = json!({ "reference": "Patient/p1" });
        bad.as_object_mut().unwrap().remove("code");
        std::fs::write(
            dir.path().join("Observation.ndjson"),
            format!("{good}\n{bad}\n{{oops\n"),
        )
        .unwrap();
        let bundles = dir.path().join("bundles");
        std::fs::create_dir(&bundles).unwrap();
        std::fs::write(
            bundles.join("prescription.json"),
            fixture("prescription").to_string(),
        )
        .unwrap();
        let journal = dir.path().join("journal");
        let path = dir.path().to_str().unwrap();
        let journal_arg = journal.to_str().unwrap();

        let (ok, stdout, stderr) = import_cli(app, &doctor, &[path, "--journal", journal_arg]);
        assert!(!ok, "bad lines make the exit status 1: {stdout}\n{stderr}");
        assert!(
            stderr.contains("Observation.ndjson:3: not JSON"),
            "{stderr}"
        );
        // The bad resource is named by file, line and element; its bundle
        // (the good line with it) is not written.
        let line = stderr
            .lines()
            .find(|l| l.contains("Observation.ndjson:2: resource"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(line.contains("code") && line.contains("400"), "{line}");
        assert!(stdout.contains("2 failed"), "{stdout}");
        let records = timeline(app, &doctor, &patient).await;
        assert_eq!(
            records.len(),
            5,
            "3 conditions and 2 prescriptions: {records:?}"
        );

        // A rerun skips what the journal holds.
        let (_, stdout, stderr) = import_cli(app, &doctor, &[path, "--journal", journal_arg]);
        assert!(
            stderr.contains("skipping 2 bundles already imported"),
            "{stderr}"
        );
        assert!(stdout.contains("imported 0 resources"), "{stdout}");

        // The bad line mended: only its bundle goes, and all is in.
        let mut mended = lab["entry"][2]["resource"].clone();
        mended["subject"] = json!({ "reference": "Patient/p1" });
        std::fs::write(
            dir.path().join("Observation.ndjson"),
            format!("{good}\n{mended}\n"),
        )
        .unwrap();
        let (ok, stdout, stderr) = import_cli(app, &doctor, &[path, "--journal", journal_arg]);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(
            stdout.contains("imported 3 resources in 1 bundles"),
            "{stdout}"
        );
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 7);

        // Without the journal, everything again: nothing changes.
        let (ok, stdout, _) = import_cli(
            app,
            &doctor,
            &[
                path,
                "--journal",
                dir.path().join("other").to_str().unwrap(),
            ],
        );
        assert!(ok, "{stdout}");
        assert!(stdout.contains("0 created"), "{stdout}");
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 7);

        // A run killed in the middle of noting a bundle left the journal's
        // last line without its end: the bundle goes again (nothing
        // changes), its key on a line of its own — so the next run skips
        // every bundle.
        let text = std::fs::read_to_string(&journal).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        std::fs::write(
            &journal,
            format!("{}\n{}\n{}", lines[0], lines[1], &lines[2][..20]),
        )
        .unwrap();
        let (ok, stdout, stderr) = import_cli(app, &doctor, &[path, "--journal", journal_arg]);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("skipping 2 bundles already imported"),
            "{stderr}"
        );
        let (ok, stdout, stderr) = import_cli(app, &doctor, &[path, "--journal", journal_arg]);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("skipping 3 bundles already imported"),
            "{stderr}"
        );
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 7);

        // A journal that is no regular file (a FIFO would wait for a
        // writer for ever) is refused before anything is sent.
        let fifo = dir.path().join("journal.fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let (ok, _, stderr) =
            import_cli(app, &doctor, &[path, "--journal", fifo.to_str().unwrap()]);
        assert!(!ok);
        assert!(stderr.contains("is not a regular file"), "{stderr}");

        // A refused key stops the import before anything is read.
        let (ok, _, stderr) = import_cli(app, "not-a-token", &[path, "--journal", journal_arg]);
        assert!(!ok);
        assert!(stderr.contains("the API key was refused"), "{stderr}");
    }
);

/// No patient of the clinic has the local ID the test bundles register
/// (88888): a refused registration left nothing behind.
async fn assert_nothing_registered(app: &TestApp, token: &str) {
    let lookup = app
        .gql(
            token,
            "query { patientByLocalId(localId: \"88888\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&lookup).as_deref(),
        Some("NOT_FOUND"),
        "{lookup}"
    );
}

/// A bundle of more records than one `writeRecords` call takes (500), or
/// naming more patients, is refused whole (413, the limit named, nothing
/// written); 500 are written.
/// The server here takes bodies of 4 MiB, so the record limit, not the body
/// limit, is what refuses.
mod a_bundle_of_more_records_than_one_write_is_refused_whole {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if !renkei_tests::postgres_configured() {
            eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
            return;
        }
        run(Backend::Postgres).await;
    }

    async fn run(backend: Backend) {
        let owned = TestApp::spawn_with(backend, |c| c.max_body_bytes = 4 * 1024 * 1024).await;
        let app = &owned;
        let (_, doctor, patient) = clinic(app).await;
        let mut bundle = fixture("lab-result");
        let full = &bundle["entry"][1]["resource"];
        // Compact results, so that 501 of them stay within the body limit.
        let template = json!({ "resource": {
            "resourceType": "Observation", "status": "final",
            "category": full["category"], "code": full["code"], "subject": full["subject"],
            "effectiveDateTime": full["effectiveDateTime"], "valueQuantity": full["valueQuantity"],
            "identifier": [{ "system": "urn:oid:1.2.392.100495.20.3.41.1", "value": "" }] } });
        let mut entries = vec![bundle["entry"][0].clone()];
        // 501 results: one more than one writeRecords call takes.
        for n in 0..501 {
            let mut e = template.clone();
            e["fullUrl"] = json!(format!("urn:uuid:00000000-0000-4000-8000-{n:012}"));
            e["resource"]["id"] = json!(format!("lab-bulk-{n}"));
            if e["resource"]["identifier"].is_array() {
                e["resource"]["identifier"][0]["value"] = json!(format!("LAB-BULK-{n}"));
            }
            entries.push(e);
        }
        bundle["entry"] = json!(entries);
        let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(body["issue"][0]["expression"][0], "Bundle.entry", "{body}");
        assert!(
            body["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("500"),
            "the limit is named: {body}"
        );
        assert!(
            timeline(app, &doctor, &patient).await.is_empty(),
            "nothing written"
        );

        // 500 of them fit in one write: the limit is not off by one.
        let mut fits = bundle.clone();
        fits["entry"].as_array_mut().unwrap().pop();
        let (status, body) = post(app, Some(&doctor), "/fhir", &fits).await;
        assert_eq!(
            status,
            200,
            "{}",
            body.to_string().chars().take(500).collect::<String>()
        );
        assert_eq!(
            statuses(&body)
                .iter()
                .filter(|s| *s == "201 Created")
                .count(),
            500
        );

        // 501 patients in one bundle: refused whole too, nothing registered.
        let patient_entry = fixture("condition")["entry"][0].clone();
        let mut many = json!({ "resourceType": "Bundle", "type": "collection", "entry": [] });
        for n in 0..501 {
            let mut e = patient_entry.clone();
            e["fullUrl"] = json!(format!("urn:uuid:00000000-0000-4000-9000-{n:012}"));
            e["resource"]["identifier"] = json!([{
                "system": "urn:oid:1.2.392.100495.20.3.51.10112345678", "value": format!("MANY-{n}") }]);
            many["entry"].as_array_mut().unwrap().push(e);
        }
        let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &many).await;
        assert_eq!(status, 413, "{body}");
        assert!(
            body["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("501 patients"),
            "{body}"
        );
        let lookup = app
            .gql(
                &doctor,
                "query { patientByLocalId(localId: \"MANY-0\") { id } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&lookup).as_deref(), Some("NOT_FOUND"));
        owned.stop().await;
    }
}

e2e!(
    a_body_over_the_server_limit_is_an_operation_outcome,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let mut bundle = fixture("condition");
        // Over the default RENKEI_MAX_BODY_BYTES (1 MiB).
        bundle["entry"][1]["resource"]["note"] = json!([{ "text": "x".repeat(1_100_000) }]);
        let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
        assert_eq!(status, 413);
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(body["issue"][0]["code"], "too-costly", "{body}");
        assert!(timeline(app, &doctor, &patient).await.is_empty());
        // Without a token it is still 401 first.
        let (status, _) = post(app, None, "/fhir", &bundle).await;
        assert_eq!(status, 401);
    }
);

/// The fixtures' condition bundle for a patient the hub does not know
/// (local ID 88888), with the patient's Consent signed on `signed`.
fn unknown_patient_with_consent(signed: &str) -> Value {
    let mut bundle = fixture("condition");
    let ids = &mut bundle["entry"][0]["resource"]["identifier"];
    ids[0]["value"] = json!("88888");
    ids[1]["value"] = json!("00012345:あいう:888:01");
    let patient_url = bundle["entry"][0]["fullUrl"].clone();
    bundle["entry"].as_array_mut().unwrap().push(json!({ "resource": {
        "resourceType": "Consent", "status": "active",
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
        "patient": { "reference": patient_url },
        "dateTime": signed,
        "sourceReference": { "display": "同意書 2026-0123" }
    } }));
    bundle
}

e2e!(
    a_consent_that_refuses_or_limits_sharing_registers_no_one,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        let consent_at = |b: &Value| b["entry"].as_array().unwrap().len() - 1;
        for (change, element) in [
            (json!({ "status": "rejected" }), "status"),
            (json!({ "provision": { "type": "deny" } }), "provision.type"),
            (
                json!({ "provision": { "type": "permit", "actor": [{
                    "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP" }] },
                    "reference": { "display": "北見在宅クリニック" } }] } }),
                "provision.actor",
            ),
        ] {
            let mut bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
            let at = consent_at(&bundle);
            for (k, v) in change.as_object().unwrap() {
                bundle["entry"][at]["resource"][k] = v.clone();
            }
            let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
            assert_eq!(status, 400, "{change}: {body}");
            assert_eq!(
                body["issue"][0]["expression"][0],
                format!("Bundle.entry[{at}].resource.{element}"),
                "{body}"
            );
        }
        // Nothing was registered.
        assert_nothing_registered(app, &doctor).await;
        // A bundle that registers no one is not refused for its Consent:
        // the hub records a consent only with a registration.
        let mut known = fixture("condition");
        let patient_url = known["entry"][0]["fullUrl"].clone();
        known["entry"].as_array_mut().unwrap().push(json!({ "resource": {
            "resourceType": "Consent", "status": "rejected",
            "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
            "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
            "patient": { "reference": patient_url }, "dateTime": "2026-11-01" } }));
        let (status, body) = post(app, Some(&doctor), "/fhir", &known).await;
        assert_eq!(status, 200, "{body}");
    }
);

e2e!(
    two_consents_about_one_patient_are_refused_whatever_their_order,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        // A consent that denies, then one that permits: the hub must not
        // take the permission and drop the refusal unseen — nor the other
        // way round.
        for deny_first in [true, false] {
            let mut bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
            let permit_at = bundle["entry"].as_array().unwrap().len() - 1;
            let mut deny = bundle["entry"][permit_at].clone();
            deny["resource"]["provision"] = json!({ "type": "deny" });
            let entries = bundle["entry"].as_array_mut().unwrap();
            if deny_first {
                entries.insert(permit_at, deny);
            } else {
                entries.push(deny);
            }
            let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(
                body["issue"][0]["expression"][0],
                format!("Bundle.entry[{}].resource", permit_at + 1),
                "{body}"
            );
            assert!(
                body["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("Bundle.entry[{permit_at}] is a Consent")),
                "{body}"
            );
        }
        assert_nothing_registered(app, &doctor).await;
    }
);

e2e!(
    a_resource_with_a_modifier_extension_is_refused_naming_it,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let negated = json!([{
            "url": "http://example.org/fhir/StructureDefinition/condition-negated",
            "valueBoolean": true
        }]);
        // On the resource, on an element within it, and on the Patient.
        let mut on_condition = fixture("condition");
        on_condition["entry"][1]["resource"]["modifierExtension"] = negated.clone();
        let mut on_dosage = fixture("prescription");
        on_dosage["entry"][1]["resource"]["dosageInstruction"][0]["modifierExtension"] =
            negated.clone();
        let mut on_patient = fixture("condition");
        on_patient["entry"][0]["resource"]["modifierExtension"] = negated.clone();
        for (bundle, at) in [
            (&on_condition, "Bundle.entry[1].resource.modifierExtension"),
            (
                &on_dosage,
                "Bundle.entry[1].resource.dosageInstruction[0].modifierExtension",
            ),
            (&on_patient, "Bundle.entry[0].resource.modifierExtension"),
        ] {
            let (status, body) = post(app, Some(&doctor), "/fhir", bundle).await;
            assert_eq!(status, 400, "{at}: {body}");
            assert_eq!(body["issue"][0]["code"], "not-supported", "{body}");
            assert_eq!(body["issue"][0]["expression"][0], at, "{body}");
        }
        // Nothing was written.
        assert!(timeline(app, &doctor, &patient).await.is_empty());
        // An extension that is not a modifier is no reason to refuse.
        let mut plain = fixture("condition");
        plain["entry"][1]["resource"]["extension"] = json!([{
            "url": "http://example.org/fhir/StructureDefinition/note", "valueString": "x" }]);
        plain["entry"][1]["resource"]["modifierExtension"] = json!([]);
        let (status, body) = post(app, Some(&doctor), "/fhir", &plain).await;
        assert_eq!(status, 200, "{body}");
    }
);

e2e!(
    a_birth_after_today_is_refused_at_the_patients_birth_date,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        let mut bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
        bundle["entry"][0]["resource"]["birthDate"] = json!("2099-01-01");
        let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0], "Bundle.entry[0].resource.birthDate",
            "{body}"
        );
        assert_nothing_registered(app, &doctor).await;
    }
);

e2e!(
    a_registration_whose_consent_failed_takes_the_consent_when_sent_again,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        // A patient registered whose consent was not recorded (the
        // registration's second step failed — the database gone between
        // the two — or the patient was registered through GraphQL alone).
        app.patient_without_consent(&doctor, "88888").await;
        // Sent with the registration's bundle: matched by the local ID, the
        // consent is recorded and the records written.
        let good = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
        let consent_entry = good["entry"].as_array().unwrap().len() - 1;
        let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &good).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["entry"][0]["response"]["status"], "200 OK");
        assert_eq!(
            body["entry"][consent_entry]["response"]["status"], "201 Created",
            "{body}"
        );
        let patient = body["entry"][0]["response"]["location"]
            .as_str()
            .unwrap()
            .strip_prefix("Patient/")
            .unwrap()
            .to_string();
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 3);
        // Once recorded, a resend records no other consent.
        let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &good).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["entry"][consent_entry]["response"]["status"], "200 OK");
        let consents = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { consents { id status } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            consents["patient"]["consents"].as_array().unwrap().len(),
            1,
            "{consents}"
        );
    }
);

e2e!(
    the_hub_survives_a_bundle_nested_to_overflow_its_reader,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let mut section = json!({ "title": "leaf" });
        for _ in 0..50 {
            section = json!({ "title": "s", "section": [section] });
        }
        let bundle = json!({ "resourceType": "Bundle", "type": "document", "entry": [{ "resource": {
            "resourceType": "Composition", "status": "final", "type": { "text": "x" },
            "date": "2024-01-01", "title": "t", "author": [{ "display": "a" }],
            "section": [section] } }] });
        let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["issue"][0]["code"], "too-costly");
        assert_eq!(
            body["issue"][0]["expression"][0],
            "Bundle.entry[0].resource"
        );
        // Nested past the JSON reader's own bound (128): refused as too
        // deep too, not as text that is not JSON.
        let deep = format!(
            r#"{{"resourceType": "Bundle", "type": "collection", "entry": [{{"resource": {}{}}}]}}"#,
            r#"{"a": "#.repeat(300),
            "1".to_string() + &"}".repeat(300)
        );
        let (status, body) =
            post_raw(app, Some(&doctor), "/fhir", "application/fhir+json", deep).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["issue"][0]["code"], "too-costly", "{body}");
        assert_eq!(body["issue"][0]["expression"][0], "Bundle");
        // Still serving.
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 0);
    }
);

e2e!(
    the_request_is_read_as_http_and_json_allow,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        // A media type's parameters saying what the hub cannot read:
        // another charset than UTF-8, another FHIR version than R4.
        for content_type in [
            "application/fhir+json; charset=latin1",
            "application/fhir+json; fhirVersion=3.0",
            "application/fhir+json;fhirVersion=\"5.0\"",
        ] {
            let (status, body) = post_raw(
                app,
                Some(&doctor),
                "/fhir",
                content_type,
                fixture("condition").to_string(),
            )
            .await;
            assert_eq!(status, 415, "{content_type}: {body}");
            assert_eq!(body["issue"][0]["code"], "not-supported");
        }
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 0);
        // Media types are case-insensitive; a byte order mark is not JSON's.
        let (status, body) = post_raw(
            app,
            Some(&doctor),
            "/fhir",
            "Application/FHIR+JSON; charset=\"utf8\"; fhirVersion=4.0",
            format!("\u{feff}{}", fixture("condition")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 3);
        // A query string the server cannot read: an OperationOutcome, after
        // authentication.
        let path = "/fhir?register=true&register=false";
        let (status, body) = post(app, None, path, &fixture("condition")).await;
        assert_eq!(status, 401, "{body}");
        let (status, body) = post(app, Some(&doctor), path, &fixture("condition")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(body["issue"][0]["code"], "invalid");
    }
);

e2e!(
    the_cli_reports_clashing_patient_ids_and_bad_lines_without_stopping,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let dir = tempfile::tempdir().unwrap();
        let condition = fixture("condition");
        let mut ours = condition["entry"][0]["resource"].clone();
        ours["id"] = json!("p1");
        // Another system's patient under the same id.
        let mut theirs = ours.clone();
        theirs["identifier"][0]["value"] = json!("77777");
        theirs["identifier"][1]["value"] = json!("00012345:あいう:777:01");
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // A byte order mark before the first line, as Windows tools write.
        std::fs::write(
            a.join("Patient.ndjson"),
            format!("\u{feff}{ours}\r\n{ours}\r\n"),
        )
        .unwrap();
        std::fs::write(b.join("Patient.ndjson"), format!("{theirs}\n")).unwrap();
        let mut lines = String::new();
        for e in condition["entry"].as_array().unwrap().iter().skip(1) {
            let mut r = e["resource"].clone();
            r["subject"] = json!({ "reference": "Patient/p1" });
            lines.push_str(&format!("{r}\n"));
        }
        std::fs::write(a.join("Condition.ndjson"), &lines).unwrap();
        let (ok, stdout, stderr) = import_cli(
            app,
            &doctor,
            &[
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                "--journal",
                dir.path().join("journal").to_str().unwrap(),
            ],
        );
        assert!(!ok, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("Patient.ndjson:1: Patient.id: Patient/p1 is also"),
            "{stderr}"
        );
        assert!(
            stderr.contains("Condition.ndjson:1: Condition.subject: Patient/p1 names two different Patient lines"),
            "{stderr}"
        );
        // Written to neither patient.
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 0);

        // Without the other system's file, one Patient line read twice is
        // one patient; a line that is not UTF-8 is one bad line.
        let mut bytes = lines.into_bytes();
        bytes.extend_from_slice(b"{\"resourceType\":\"Condition\",\"id\":\"\xe9\"}\n");
        std::fs::write(a.join("Condition.ndjson"), bytes).unwrap();
        let (ok, stdout, stderr) = import_cli(
            app,
            &doctor,
            &[
                a.to_str().unwrap(),
                "--journal",
                dir.path().join("journal").to_str().unwrap(),
            ],
        );
        assert!(!ok, "{stdout}\n{stderr}");
        assert!(
            stderr.contains("Condition.ndjson:4: not JSON: not UTF-8"),
            "{stderr}"
        );
        assert!(
            stdout.contains("imported 4 resources in 1 bundles"),
            "{stdout}\n{stderr}"
        );
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 3);
    }
);

e2e!(
    the_cli_registers_patients_from_ndjson_with_their_consent_whatever_the_file_order,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        let dir = tempfile::tempdir().unwrap();
        let bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
        let entries = bundle["entry"].as_array().unwrap();
        let mut patient = entries[0]["resource"].clone();
        patient["id"] = json!("new-1");
        std::fs::write(dir.path().join("Patient.ndjson"), format!("{patient}\n")).unwrap();
        let mut conditions = String::new();
        let mut consent = String::new();
        for e in &entries[1..] {
            let mut r = e["resource"].clone();
            if r["resourceType"] == "Consent" {
                r["patient"] = json!({ "reference": "Patient/new-1" });
                consent.push_str(&format!("{r}\n"));
            } else {
                r["subject"] = json!({ "reference": "Patient/new-1" });
                conditions.push_str(&format!("{r}\n"));
            }
        }
        // "Condition" sorts before "Consent": the consent must go with the
        // patient into the conditions' bundle, which registers it.
        std::fs::write(dir.path().join("Condition.ndjson"), conditions).unwrap();
        std::fs::write(dir.path().join("Consent.ndjson"), consent).unwrap();
        // A result of the same patient in a file of its own: a second
        // bundle, in flight with the first (the default four jobs), which
        // registers the patient too — or, its registration clashing with
        // the other's, matches it; the consent is recorded once either way.
        let mut lab = fixture("lab-result")["entry"][1]["resource"].clone();
        lab["subject"] = json!({ "reference": "Patient/new-1" });
        std::fs::write(dir.path().join("Observation.ndjson"), format!("{lab}\n")).unwrap();
        // A Bulk Data export's context lines name no patient: not stored.
        let organization =
            json!({ "resourceType": "Organization", "id": "o1", "name": "北見在宅クリニック" });
        std::fs::write(
            dir.path().join("Organization.ndjson"),
            format!("{organization}\n"),
        )
        .unwrap();
        let journal = dir.path().join("journal");
        let args = [
            dir.path().to_str().unwrap(),
            "--register-patients",
            "--journal",
            journal.to_str().unwrap(),
        ];
        let (ok, stdout, stderr) = import_cli(app, &doctor, &args);
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains("0 failed"), "{stdout}");
        assert!(stdout.contains("1 lines read for context only"), "{stdout}");
        let found = app
            .ok(
                &doctor,
                "query { patientByLocalId(localId: \"88888\") { id consents { status } } }",
                json!({}),
            )
            .await;
        let id = found["patientByLocalId"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            found["patientByLocalId"]["consents"],
            json!([{ "status": "IN_FORCE" }]),
            "{found}"
        );
        assert_eq!(timeline(app, &doctor, &id).await.len(), 4);
        // Everything again without the journal: nothing changes.
        let (ok, stdout, _) = import_cli(
            app,
            &doctor,
            &[
                args[0],
                "--register-patients",
                "--journal",
                dir.path().join("other").to_str().unwrap(),
            ],
        );
        assert!(ok, "{stdout}");
        assert!(stdout.contains("0 created"), "{stdout}");
        assert_eq!(timeline(app, &doctor, &id).await.len(), 4);
    }
);

e2e!(
    a_resource_entered_in_error_is_not_stored_and_the_rest_is,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let mut bundle = fixture("lab-result");
        bundle["entry"][1]["resource"]["status"] = json!("entered-in-error");
        let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
        assert_eq!(status, 200, "{body}");
        let answer = &body["entry"][1]["response"];
        assert_eq!(answer["status"], "200 OK", "{answer}");
        assert_eq!(
            answer["outcome"]["issue"][0]["severity"], "warning",
            "{answer}"
        );
        assert!(
            answer["outcome"]["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("entered-in-error"),
            "{answer}"
        );
        let entries = bundle["entry"].as_array().unwrap().len();
        // Every other result is written; that one is not.
        assert_eq!(timeline(app, &doctor, &patient).await.len(), entries - 2);
    }
);

e2e!(
    the_cli_walks_a_linked_directory_once_and_refuses_what_is_not_a_file,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        let dir = tempfile::tempdir().unwrap();
        let bundles = dir.path().join("bundles");
        std::fs::create_dir_all(bundles.join("sub")).unwrap();
        std::fs::write(
            bundles.join("prescription.json"),
            fixture("prescription").to_string(),
        )
        .unwrap();
        // A link back up: followed naively, the walk would read
        // `sub/up/sub/up/…/prescription.json` until the path is too long.
        std::os::unix::fs::symlink("..", bundles.join("sub").join("up")).unwrap();
        // A file under two names is one file.
        std::os::unix::fs::symlink("prescription.json", bundles.join("also.json")).unwrap();
        let journal = dir.path().join("journal");
        let (ok, stdout, stderr) = import_cli(
            app,
            &doctor,
            &[
                bundles.to_str().unwrap(),
                "--journal",
                journal.to_str().unwrap(),
            ],
        );
        assert!(ok, "{stdout}\n{stderr}");
        assert!(stdout.contains("in 1 bundles"), "read once: {stdout}");

        // A FIFO named like a bundle would wait for a writer for ever: it
        // stops the import before anything is read, with its name.
        let fifo = dir.path().join("waiting.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let mut command = renkei_tests::fhir::cli(app, &doctor);
        command.args(["import", "fhir", fifo.to_str().unwrap()]);
        std::thread::spawn(move || {
            let _ = tx.send(command.output());
        });
        let output = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the import ends instead of waiting on the FIFO")
            .expect("the renkei binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(
            stderr.contains("waiting.json") && stderr.contains("not a regular file"),
            "{stderr}"
        );
    }
);

e2e!(
    bundles_registering_one_patient_at_once_all_succeed_with_one_consent,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        // Two imports of one folder, or bundles of one import in flight
        // together, register the same new patient at the same moment: each
        // either registers it or, its registration clashing with the
        // other's, matches it — and its consent is recorded once.
        let bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
        let consent_entry = bundle["entry"].as_array().unwrap().len() - 1;
        let answers = futures::future::join_all(
            (0..6).map(|_| post(app, Some(&doctor), "/fhir?register=true", &bundle)),
        )
        .await;
        let mut created = 0;
        let mut consents_recorded = 0;
        let mut locations = std::collections::BTreeSet::new();
        for (status, body) in &answers {
            assert_eq!(*status, 200, "{body}");
            created += usize::from(body["entry"][0]["response"]["status"] == "201 Created");
            consents_recorded +=
                usize::from(body["entry"][consent_entry]["response"]["status"] == "201 Created");
            locations.insert(body["entry"][0]["response"]["location"].to_string());
        }
        assert_eq!(created, 1, "{answers:?}");
        assert_eq!(consents_recorded, 1, "{answers:?}");
        assert_eq!(locations.len(), 1, "{answers:?}");
        let patient = answers[0].1["entry"][0]["response"]["location"]
            .as_str()
            .unwrap()
            .strip_prefix("Patient/")
            .unwrap()
            .to_string();
        let consents = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { consents { id status } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            consents["patient"]["consents"],
            json!([{ "id": consents["patient"]["consents"][0]["id"], "status": "IN_FORCE" }]),
            "{consents}"
        );
        assert_eq!(timeline(app, &doctor, &patient).await.len(), 3);
    }
);

e2e!(
    a_consent_asked_to_be_the_first_is_refused_once_one_is_recorded,
    |app| async move {
        let (_, doctor, patient) = clinic(app).await;
        let input = |only: bool| {
            json!({ "i": { "patientId": patient, "scope": "NETWORK", "method": "WRITTEN", "onlyIfFirst": only,
                "form": { "reference": "同意書 2026-0200", "signedOn": "2026-11-02", "signedBy": "PATIENT" } } })
        };
        const RECORD: &str =
            "mutation($i: RecordConsentInput!) { recordConsent(input: $i) { id status } }";
        let before = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { consents { id } } }",
                json!({ "id": patient }),
            )
            .await["patient"]["consents"]
            .as_array()
            .unwrap()
            .len();
        assert!(before > 0);
        let refused = app.gql(&doctor, RECORD, input(true)).await;
        assert_eq!(
            error_code(&refused).as_deref(),
            Some("CONFLICT"),
            "{refused}"
        );
        assert_eq!(
            refused["errors"][0]["extensions"]["field"],
            "input.onlyIfFirst"
        );
        let after = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { consents { id } } }",
                json!({ "id": patient }),
            )
            .await["patient"]["consents"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(after, before, "nothing recorded");
        // Without it, a new consent supersedes the one in force, as ever.
        let data = app.ok(&doctor, RECORD, input(false)).await;
        assert_eq!(data["recordConsent"]["status"], "IN_FORCE");
    }
);

e2e!(
    a_bundle_of_many_bad_entries_is_told_its_first_hundred_issues,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        // 3,000 empty entries: each a problem, the answer bounded.
        let bundle = json!({ "resourceType": "Bundle", "type": "collection",
            "entry": vec![json!({}); 3000] });
        let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
        assert_eq!(status, 400, "{body}");
        let issues = body["issue"].as_array().unwrap();
        assert_eq!(issues.len(), 101, "{body}");
        assert_eq!(issues[0]["expression"][0], "Bundle.entry[0].resource");
        assert_eq!(issues[100]["code"], "too-costly");
        assert!(
            issues[100]["diagnostics"]
                .as_str()
                .unwrap()
                .starts_with("and 2900 more issues"),
            "{}",
            issues[100]
        );
    }
);

e2e!(
    a_consent_form_reference_the_hub_would_refuse_registers_no_one,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        for (reference, told) in [
            ("同".repeat(6000), "must be at most 200 characters"),
            ("同意書\u{0}0001".to_string(), "control characters"),
        ] {
            let mut bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
            let at = bundle["entry"].as_array().unwrap().len() - 1;
            bundle["entry"][at]["resource"]["sourceReference"]["display"] = json!(reference);
            let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
            assert_eq!(status, 400, "{body}");
            assert_eq!(
                body["issue"][0]["expression"][0],
                format!("Bundle.entry[{at}].resource.sourceReference.display"),
                "{body}"
            );
            let told_as = body["issue"][0]["diagnostics"].as_str().unwrap();
            assert!(
                told_as.starts_with("the signed form's reference ") && told_as.contains(told),
                "{told_as}"
            );
        }
        // Nothing was registered.
        assert_nothing_registered(app, &doctor).await;
    }
);

e2e!(
    a_consent_dated_before_the_patients_birth_registers_no_one,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        // The fixture's patient was born on 1938-07-14.
        let bundle = unknown_patient_with_consent("1930-01-01T10:00:00+09:00");
        let at = bundle["entry"].as_array().unwrap().len() - 1;
        let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0],
            format!("Bundle.entry[{at}].resource.dateTime"),
            "{body}"
        );
        assert_nothing_registered(app, &doctor).await;
    }
);

e2e!(
    a_consent_dated_in_the_future_registers_no_one,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        let bundle = unknown_patient_with_consent("2099-01-01T10:00:00+09:00");
        let at = bundle["entry"].as_array().unwrap().len() - 1;
        let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["issue"][0]["code"], "invalid", "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0],
            format!("Bundle.entry[{at}].resource.dateTime"),
            "{body}"
        );
        assert_eq!(
            body["issue"][0]["diagnostics"], "the consent: 2099-01-01 is in the future",
            "{body}"
        );
        assert_nothing_registered(app, &doctor).await;
    }
);

e2e!(
    dates_the_hub_cannot_take_are_told_at_their_element,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        // A birth date not a whole day of the calendar, or out of the
        // hub's years: told at Patient.birthDate, in FHIR's words.
        for birth in ["2023-02-29", "1938", "1938-07", "1800-01-01"] {
            let mut bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
            bundle["entry"][0]["resource"]["birthDate"] = json!(birth);
            let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
            assert_eq!(status, 400, "{birth}: {body}");
            assert_eq!(
                body["issue"][0]["expression"][0], "Bundle.entry[0].resource.birthDate",
                "{birth}: {body}"
            );
            let said = body["issue"][0]["diagnostics"].as_str().unwrap();
            assert!(!said.contains("argument"), "GraphQL's words: {said}");
        }
        assert_nothing_registered(app, &doctor).await;
        // A record's time outside the years 1900 to 2100.
        for when in [
            "0000-01-01T00:00:00Z",
            "9999-12-31T00:00:00+09:00",
            "1899-12-31",
        ] {
            let mut bundle = fixture("condition");
            bundle["entry"][1]["resource"]["recordedDate"] = json!(when);
            bundle["entry"][1]["resource"]
                .as_object_mut()
                .unwrap()
                .remove("onsetDateTime");
            let (status, body) = post(app, Some(&doctor), "/fhir", &bundle).await;
            assert_eq!(status, 400, "{when}: {body}");
            assert_eq!(
                body["issue"][0]["expression"][0], "Bundle.entry[1].resource.recordedDate",
                "{when}: {body}"
            );
        }
    }
);

e2e!(
    codes_outside_their_value_sets_and_repeated_full_urls_are_refused,
    |app| async move {
        let (_, doctor, _) = clinic(app).await;
        let mut lab = fixture("lab-result");
        lab["entry"][1]["resource"]["status"] = json!("bogus");
        let (status, body) = post(app, Some(&doctor), "/fhir", &lab).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["issue"][0]["code"], "code-invalid", "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0], "Bundle.entry[1].resource.status",
            "{body}"
        );
        let mut allergy = fixture("allergy");
        allergy["entry"][1]["resource"]["category"] = json!(["medication", "drinks"]);
        let (status, body) = post(app, Some(&doctor), "/fhir", &allergy).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0], "Bundle.entry[1].resource.category",
            "{body}"
        );
        let mut bundle = unknown_patient_with_consent("2026-11-01T10:00:00+09:00");
        bundle["entry"][0]["resource"]["gender"] = json!("bogus");
        let (status, body) = post(app, Some(&doctor), "/fhir?register=true", &bundle).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0], "Bundle.entry[0].resource.gender",
            "{body}"
        );
        assert_nothing_registered(app, &doctor).await;
        // bdl-7: two entries of one fullUrl — but for two versions of one
        // resource.
        let mut twice = fixture("condition");
        let url = twice["entry"][1]["fullUrl"].clone();
        twice["entry"][2]["fullUrl"] = url;
        let (status, body) = post(app, Some(&doctor), "/fhir", &twice).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["issue"][0]["expression"][0], "Bundle.entry[2].fullUrl",
            "{body}"
        );
        twice["entry"][1]["resource"]["meta"]["versionId"] = json!("1");
        twice["entry"][2]["resource"]["meta"]["versionId"] = json!("2");
        let (status, body) = post(app, Some(&doctor), "/fhir", &twice).await;
        assert_ne!(
            body["issue"][0]["expression"][0], "Bundle.entry[2].fullUrl",
            "{status}: {body}"
        );
    }
);
