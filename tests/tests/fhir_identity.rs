//! What FHIR senders name things by (issue 13), through GraphQL: the
//! organisation's 医療機関コード, the patient's 被保険者個人識別子 — set,
//! looked up, refused alike when unknown or not the caller's — and the
//! codings a record keeps as sent.

use renkei_tests::*;
use serde_json::{Value, json};

const REGISTER_ORG: &str = "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id medicalInstitutionCode } }";
const REGISTER: &str = "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }";
const BY_INSURED: &str = "query($v: String!) { patientByInsuredPersonIdentifier(identifier: $v) { id name insuredPersonIdentifier } }";
const SET_INSURED: &str = "mutation($p: ID!, $v: String) { setInsuredPersonIdentifier(patientId: $p, identifier: $v) { id insuredPersonIdentifier } }";
const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome record { id data {
    ... on ConditionData { name icd10 codings { system code display } }
    ... on LabResultData { name code codings { system code display } } } } } }";

fn patient_input(local_id: &str, insured: Option<&str>) -> Value {
    json!({ "i": {
        "name": "名寄 花子", "nameKana": "ナヨセ ハナコ", "birthDate": "1941-02-03",
        "sex": "FEMALE", "localId": local_id, "insuredPersonIdentifier": insured
    } })
}

e2e!(
    an_organisation_carries_its_medical_institution_code_once_in_the_network,
    |app| async move {
        let admin = app.admin_token.clone();
        let data = app
            .ok(
                &admin,
                REGISTER_ORG,
                json!({ "i": { "kind": "CLINIC", "name": "北見コードクリニック", "medicalInstitutionCode": " 0112345678 " } }),
            )
            .await;
        assert_eq!(
            data["registerOrganization"]["medicalInstitutionCode"],
            "0112345678"
        );
        // Read back by anyone who lists organisations.
        let id = data["registerOrganization"]["id"].as_str().unwrap();
        let read = app
            .ok(
                &admin,
                "query($id: ID!) { organization(id: $id) { medicalInstitutionCode } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(read["organization"]["medicalInstitutionCode"], "0112345678");

        let again = app
            .gql(
                &admin,
                REGISTER_ORG,
                json!({ "i": { "kind": "CLINIC", "name": "別のクリニック", "medicalInstitutionCode": "0112345678" } }),
            )
            .await;
        assert_eq!(error_code(&again).as_deref(), Some("CONFLICT"), "{again}");

        for bad in ["011234567", "01123456789", "01123456七8"] {
            let body = app
                .gql(
                    &admin,
                    REGISTER_ORG,
                    json!({ "i": { "kind": "CLINIC", "name": "誤りクリニック", "medicalInstitutionCode": bad } }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{bad}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.medicalInstitutionCode",
                "{body}"
            );
        }
    }
);

e2e!(
    a_patient_is_found_by_the_insured_person_identifier_only_by_those_who_may_see_them,
    |app| async move {
        let clinic = app.organization("CLINIC", "保険者番号クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        // A 6-digit insurer number is stored padded to 8.
        let data = app
            .ok(
                &doctor,
                REGISTER,
                patient_input("N-1", Some("123456:ｱｲｳ:187:05")),
            )
            .await;
        let patient = data["registerPatient"]["id"].as_str().unwrap().to_string();
        app.consent(&doctor, &patient, json!({})).await;

        let found = app
            .ok(&doctor, BY_INSURED, json!({ "v": "00123456:ｱｲｳ:187:05" }))
            .await;
        assert_eq!(
            found["patientByInsuredPersonIdentifier"]["id"],
            patient.as_str()
        );
        // The unpadded form names the same person.
        let found = app
            .ok(&doctor, BY_INSURED, json!({ "v": "123456:ｱｲｳ:187:05" }))
            .await;
        assert_eq!(
            found["patientByInsuredPersonIdentifier"]["id"],
            patient.as_str()
        );

        // Another organisation without a care relationship: refused exactly
        // like an identifier nobody holds.
        let other = app.organization("CLINIC", "無関係クリニック").await;
        let (_, stranger) = app.member(&other, "PHYSICIAN").await;
        let hidden = app
            .gql(&stranger, BY_INSURED, json!({ "v": "00123456:ｱｲｳ:187:05" }))
            .await;
        let unknown = app
            .gql(&stranger, BY_INSURED, json!({ "v": "00999999:ｱｲｳ:187:05" }))
            .await;
        assert_eq!(
            error_code(&hidden).as_deref(),
            Some("NOT_FOUND"),
            "{hidden}"
        );
        assert_eq!(
            hidden["errors"][0]["message"],
            unknown["errors"][0]["message"]
        );
        assert_eq!(
            hidden["errors"][0]["extensions"],
            unknown["errors"][0]["extensions"]
        );
        assert_eq!(hidden["data"], unknown["data"]);

        // Many at once: one entry per identifier, in order, under the same
        // rule (the stranger's null for the hidden person is the null of an
        // identifier nobody holds).
        const MANY: &str =
            "query($v: [String!]!) { patientsByInsuredPersonIdentifiers(identifiers: $v) { id } }";
        let data = app
            .ok(
                &doctor,
                MANY,
                json!({ "v": ["00999999:ｱｲｳ:187:05", "123456:ｱｲｳ:187:05"] }),
            )
            .await;
        assert_eq!(
            data["patientsByInsuredPersonIdentifiers"],
            json!([null, { "id": patient }])
        );
        let hidden = app
            .gql(&stranger, MANY, json!({ "v": ["00123456:ｱｲｳ:187:05"] }))
            .await;
        let unknown = app
            .gql(&stranger, MANY, json!({ "v": ["00999999:ｱｲｳ:187:05"] }))
            .await;
        assert_eq!(
            hidden,
            json!({ "data": { "patientsByInsuredPersonIdentifiers": [null] } })
        );
        assert_eq!(hidden, unknown);
        let bad = app
            .gql(
                &doctor,
                MANY,
                json!({ "v": ["123456:ｱｲｳ:187:05", "nonsense"] }),
            )
            .await;
        assert_eq!(error_code(&bad).as_deref(), Some("BAD_USER_INPUT"), "{bad}");
        assert_eq!(bad["errors"][0]["extensions"]["field"], "identifiers[1]");

        // Registering the same person again is refused: match, do not duplicate.
        let twice = app
            .gql(
                &stranger,
                REGISTER,
                patient_input("X-9", Some("00123456:ｱｲｳ:187:05")),
            )
            .await;
        assert_eq!(error_code(&twice).as_deref(), Some("CONFLICT"), "{twice}");
        assert!(
            !twice["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(&patient),
            "the conflict must not name the patient: {twice}"
        );

        // Malformed identifiers name the field.
        for bad in [
            "00123456:ｱｲｳ:187",
            "1234567:a:1:01",
            "00123456:a::01",
            "00123456:a:1:1",
        ] {
            let body = app.gql(&doctor, BY_INSURED, json!({ "v": bad })).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{bad}: {body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], "identifier");
            let body = app
                .gql(&doctor, REGISTER, patient_input("N-bad", Some(bad)))
                .await;
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.insuredPersonIdentifier",
                "{bad}: {body}"
            );
        }
    }
);

e2e!(
    the_insured_person_identifier_is_set_by_those_who_write_identity,
    |app| async move {
        let clinic = app.organization("CLINIC", "識別子クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "S-1").await;
        let set = app
            .ok(
                &doctor,
                SET_INSURED,
                json!({ "p": patient, "v": "06123456::0042:00" }),
            )
            .await;
        assert_eq!(
            set["setInsuredPersonIdentifier"]["insuredPersonIdentifier"],
            "06123456::0042:00"
        );
        let found = app
            .ok(&doctor, BY_INSURED, json!({ "v": "06123456::0042:00" }))
            .await;
        assert_eq!(
            found["patientByInsuredPersonIdentifier"]["id"],
            patient.as_str()
        );

        // A care-service provider on the team reads IDENTITY but may not write it.
        let provider = app
            .organization("CARE_SERVICE_PROVIDER", "識別子ヘルパー")
            .await;
        let (_, helper) = app.member(&provider, "CARE_WORKER").await;
        app.ok(
            &doctor,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": patient, "organizationId": provider, "role": "CARE_SERVICE" } }),
        )
        .await;
        let read = app
            .ok(&helper, BY_INSURED, json!({ "v": "06123456::0042:00" }))
            .await;
        assert_eq!(
            read["patientByInsuredPersonIdentifier"]["insuredPersonIdentifier"],
            "06123456::0042:00"
        );
        let refused = app
            .gql(
                &helper,
                SET_INSURED,
                json!({ "p": patient, "v": "06123456::0043:00" }),
            )
            .await;
        assert_eq!(
            error_code(&refused).as_deref(),
            Some("FORBIDDEN"),
            "{refused}"
        );

        // Another patient holding it is a conflict; null removes it.
        let second = app.patient(&doctor, "S-2").await;
        let taken = app
            .gql(
                &doctor,
                SET_INSURED,
                json!({ "p": second, "v": "06123456::0042:00" }),
            )
            .await;
        assert_eq!(error_code(&taken).as_deref(), Some("CONFLICT"), "{taken}");
        let cleared = app
            .ok(&doctor, SET_INSURED, json!({ "p": patient, "v": null }))
            .await;
        assert_eq!(
            cleared["setInsuredPersonIdentifier"]["insuredPersonIdentifier"],
            Value::Null
        );
        let gone = app
            .gql(&doctor, BY_INSURED, json!({ "v": "06123456::0042:00" }))
            .await;
        assert_eq!(error_code(&gone).as_deref(), Some("NOT_FOUND"), "{gone}");
        // Now free for the second patient.
        app.ok(
            &doctor,
            SET_INSURED,
            json!({ "p": second, "v": "06123456::0042:00" }),
        )
        .await;
    }
);

e2e!(
    records_keep_the_codings_they_were_sent_with,
    |app| async move {
        let clinic = app.organization("CLINIC", "コードクリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "K-1").await;
        let codings = json!([
            { "system": "http://jpfhir.jp/fhir/core/CodeSystem/icd-10", "code": "E11.9", "display": "2型糖尿病,合併症を伴わないもの" },
            { "system": "http://medis.or.jp/CodeSystem/master-disease-keyNumber", "code": "20054328", "display": null }
        ]);
        let item = |codings: &Value| {
            json!({ "i": { "records": [{ "patientId": patient, "sourceRecordId": "CD-1",
            "effectiveAt": "2026-01-10T09:00:00Z",
            "data": { "condition": { "name": "2型糖尿病", "icd10": "E11.9", "clinicalStatus": "ACTIVE", "codings": codings } } }] } })
        };
        let data = app.ok(&doctor, WRITE, item(&codings)).await;
        let written = &data["writeRecords"][0];
        assert_eq!(written["outcome"], "CREATED");
        assert_eq!(written["record"]["data"]["codings"], codings);
        // The same codings again change nothing; a different one is a new version.
        let again = app.ok(&doctor, WRITE, item(&codings)).await;
        assert_eq!(again["writeRecords"][0]["outcome"], "UNCHANGED");
        let changed = app.ok(&doctor, WRITE, item(&json!([codings[0]]))).await;
        assert_eq!(changed["writeRecords"][0]["outcome"], "UPDATED");

        // A record written without codings reads back an empty list.
        let lab = app
        .ok(
            &doctor,
            WRITE,
            json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-11T09:00:00Z",
                "data": { "labResult": { "name": "HbA1c", "value": "7.0", "unit": "%", "abnormal": "HIGH" } } }] } }),
        )
        .await;
        assert_eq!(
            lab["writeRecords"][0]["record"]["data"]["codings"],
            json!([])
        );

        for (bad, field) in [
            (
                json!([{ "system": "icd-10", "code": "E11" }]),
                "codings[0].system",
            ),
            (
                json!([{ "system": "urn:oid:1.2", "code": " E11" }]),
                "codings[0].code",
            ),
            (
                json!([{ "system": "urn:oid:1.2", "code": "" }]),
                "codings[0].code",
            ),
            (
                json!([{ "system": "urn:oid:1.2", "code": "E11", "display": "a\nb" }]),
                "codings[0].display",
            ),
            (
                Value::Array(
                    (0..11)
                        .map(|i| json!({ "system": "urn:oid:1.2", "code": format!("C{i}") }))
                        .collect(),
                ),
                "codings",
            ),
        ] {
            let body = app.gql(&doctor, WRITE, item(&bad)).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"],
                format!("input.records[0].data.condition.{field}"),
                "{body}"
            );
        }
    }
);

e2e!(
    an_identifier_found_taken_is_recorded_against_the_patient_who_holds_it,
    |app| async move {
        let clinic = app.organization("CLINIC", "名寄せクリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let holder = app
            .ok(
                &doctor,
                REGISTER,
                patient_input("H-1", Some("06123456::0077:00")),
            )
            .await["registerPatient"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        app.consent(&doctor, &holder, json!({})).await;
        // Another clinic, not on the holder's care team, tries the
        // identifier: registering, and on a patient of its own.
        let other = app.organization("CLINIC", "別の診療所").await;
        let (other_doctor_id, other_doctor) = app.member(&other, "PHYSICIAN").await;
        let body = app
            .gql(
                &other_doctor,
                REGISTER,
                patient_input("O-1", Some("06123456::0077:00")),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        let own = app.patient(&other_doctor, "O-2").await;
        let body = app
            .gql(
                &other_doctor,
                SET_INSURED,
                json!({ "p": own, "v": "06123456::0077:00" }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("CONFLICT"), "{body}");
        // Each answer is recorded as a refusal about the holder, naming who asked.
        let log = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p, action: DENIED }, first: 100) { edges { node { actorId categories detail } } } }",
                json!({ "p": holder }),
            )
            .await;
        let denied: Vec<&Value> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .collect();
        assert_eq!(denied.len(), 2, "{denied:?}");
        for d in denied {
            assert_eq!(d["actorId"], other_doctor_id.as_str(), "{d}");
            assert_eq!(d["categories"], json!(["IDENTITY"]), "{d}");
        }
        // The holder's own team sees that someone tried.
        let history = app
            .ok(
                &doctor,
                "query($id: ID!) { patient(id: $id) { accessHistory(first: 100) { edges { node { action } } } } }",
                json!({ "id": holder }),
            )
            .await;
        let denials = history["patient"]["accessHistory"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["action"] == "DENIED")
            .count();
        assert_eq!(denials, 2, "{history}");
    }
);
