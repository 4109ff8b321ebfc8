//! The everyday documents of home care (issue 14 part 2): standing cautions
//! (留意事項), what the patient and family were told and how they took it
//! (病状説明と受け止め), and the physician's instructions to the visiting-nurse
//! station (訪問看護指示書 / 特別訪問看護指示書), and the request for a dental
//! home visit (歯科往診依頼書 + スクリーニングシート, DENTAL_REFERRAL) — written,
//! validated, read under the policy and shown in the summary.

use chrono::Duration;
use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};

const ADD_MEMBER: &str =
    "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { index outcome record { id kind category } } }";
const CAUTIONS: &str = "query($id: ID!) { patient(id: $id) { summary {
    careCautions { data { ... on CareCautionsData { items { area caution } callWhen } } } } } }";
const EXPLANATION: &str = "query($id: ID!) { patient(id: $id) { summary {
    latestIllnessExplanation { data { ... on IllnessExplanationData { explainedBy told patientUnderstanding familyUnderstanding prognosisTold } } } } } }";
const INSTRUCTIONS: &str = "query($id: ID!) { patient(id: $id) { summary {
    visitingNurseInstructions { data { ... on VisitingNurseInstructionData { instructionType validFrom validTo station reason medicalDevices } } } } } }";

/// A summary part the caller's profession may not read: null, with a
/// FORBIDDEN_FIELD error naming the category at its path.
async fn assert_withheld(
    app: &TestApp,
    token: &str,
    query: &str,
    patient: &str,
    field: &str,
    category: &str,
) {
    let body = app.gql(token, query, json!({ "id": patient })).await;
    assert_eq!(
        body["data"]["patient"]["summary"][field],
        Value::Null,
        "{body}"
    );
    let errors = errors_at(&body, &["patient", "summary", field]);
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["code"], "FORBIDDEN_FIELD", "{body}");
    assert_eq!(errors[0]["category"], category, "{body}");
}

struct Team {
    clinic: String,
    patient: String,
    physician: String,
    nurse: String,
    care_manager: String,
    care_worker: String,
    pharmacist: String,
}

/// A patient of a clinic with a visiting-nurse station, a care manager, a
/// home-help provider and a pharmacy on the care team.
async fn team(app: &TestApp) -> Team {
    let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
    let (_, physician) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&physician, "E-1").await;
    let mut tokens = Vec::new();
    for (kind, name, profession, role) in [
        (
            "VISITING_NURSE_STATION",
            "ひまわり訪問看護",
            "NURSE",
            "VISITING_NURSE",
        ),
        (
            "HOME_CARE_SUPPORT_OFFICE",
            "北見居宅介護支援事業所",
            "CARE_MANAGER",
            "CARE_MANAGER",
        ),
        (
            "CARE_SERVICE_PROVIDER",
            "ひまわり介護",
            "CARE_WORKER",
            "CARE_SERVICE",
        ),
        ("PHARMACY", "北見中央薬局", "PHARMACIST", "PHARMACY"),
    ] {
        let org = app.organization(kind, name).await;
        let (_, token) = app.member(&org, profession).await;
        app.ok(
            &physician,
            ADD_MEMBER,
            json!({ "i": { "patientId": patient, "organizationId": org, "role": role } }),
        )
        .await;
        tokens.push(token);
    }
    let mut tokens = tokens.into_iter();
    Team {
        clinic,
        patient,
        physician,
        nurse: tokens.next().unwrap(),
        care_manager: tokens.next().unwrap(),
        care_worker: tokens.next().unwrap(),
        pharmacist: tokens.next().unwrap(),
    }
}

fn item(patient: &str, source: &str, at: &str, data: Value) -> Value {
    json!({ "patientId": patient, "sourceRecordId": source, "effectiveAt": at, "data": data })
}

fn cautions() -> Value {
    json!({ "careCautions": {
        "items": [
            { "area": "BATHING", "caution": "入浴は 38℃ 以下、10 分以内" },
            { "area": "MOBILITY", "caution": "ふらつきあり、立ち上がりは見守り" }
        ],
        "callWhen": "SpO2 90% 未満、または 38℃ 以上の発熱"
    } })
}

fn explanation() -> Value {
    json!({ "illnessExplanation": {
        "explainedBy": "主治医 佐藤", "told": ["本人", "長女"],
        "explanation": "心不全が進行しており、入退院を繰り返す可能性が高いこと",
        "patientUnderstanding": "できるだけ家で過ごしたい", "familyUnderstanding": "不安はあるが本人の希望に沿いたい",
        "prognosisTold": false
    } })
}

fn instruction(kind: &str, from: &str, to: &str, reason: Option<&str>) -> Value {
    let mut d = json!({
        "instructionType": kind, "validFrom": from, "validTo": to,
        "station": "ひまわり訪問看護", "mainDiagnosis": "慢性心不全",
        "instructions": "体重・浮腫・SpO2 を観察し、増悪時は連絡", "medicalDevices": ["在宅酸素 2L/分"]
    });
    if let Some(r) = reason {
        d["reason"] = json!(r);
    }
    json!({ "visitingNurseInstruction": d })
}

fn day(app: &TestApp, offset: i64) -> String {
    (app.clock.today() + Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

fn assert_bad_input(body: &Value, field: &str) {
    assert_eq!(
        error_code(body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["field"].as_str(),
        Some(field),
        "{body}"
    );
}

e2e!(
    cautions_are_written_by_clinicians_and_care_managers_and_read_by_the_whole_team,
    |app| async move {
        let t = team(app).await;
        let data = app
            .ok(&t.nurse, WRITE, json!({ "i": { "records": [item(&t.patient, "C-1", "2026-03-01T00:00:00Z", cautions())] } }))
            .await;
        assert_eq!(data["writeRecords"][0]["record"]["kind"], "CARE_CAUTIONS");
        assert_eq!(data["writeRecords"][0]["record"]["category"], "CAUTIONS");

        // A care manager revises them; the summary shows the latest.
        let mut revised = cautions();
        revised["careCautions"]["items"] =
            json!([{ "area": "MEALS", "caution": "とろみ剤を使用" }]);
        app.ok(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "C-2", "2026-03-02T00:00:00Z", revised)] } }))
            .await;
        for token in [&t.physician, &t.care_worker, &t.pharmacist] {
            let data = app.ok(token, CAUTIONS, json!({ "id": t.patient })).await;
            assert_eq!(
                data["patient"]["summary"]["careCautions"]["data"]["items"],
                json!([{ "area": "MEALS", "caution": "とろみ剤を使用" }])
            );
        }

        // Care workers and pharmacists read cautions but do not write them.
        for token in [&t.care_worker, &t.pharmacist] {
            let body = app
                .gql(token, WRITE, json!({ "i": { "records": [item(&t.patient, "C-3", "2026-03-03T00:00:00Z", cautions())] } }))
                .await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        }

        // Bad input names its field.
        let mut empty = cautions();
        empty["careCautions"]["items"] = json!([]);
        let body = app
            .gql(&t.nurse, WRITE, json!({ "i": { "records": [item(&t.patient, "C-4", "2026-03-03T00:00:00Z", empty)] } }))
            .await;
        assert_bad_input(&body, "input.records[0].data.careCautions.items");
        let mut blank = cautions();
        blank["careCautions"]["items"][1]["caution"] = json!("  ");
        let body = app
            .gql(&t.nurse, WRITE, json!({ "i": { "records": [item(&t.patient, "C-4", "2026-03-03T00:00:00Z", blank)] } }))
            .await;
        assert_bad_input(&body, "input.records[0].data.careCautions.items[1].caution");
    }
);

e2e!(
    what_the_family_was_told_reaches_the_care_manager_and_helper_but_not_the_pharmacy,
    |app| async move {
        let t = team(app).await;
        let data = app
            .ok(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "X-1", "2026-03-01T00:00:00Z", explanation())] } }))
            .await;
        assert_eq!(
            data["writeRecords"][0]["record"]["category"],
            "ADVANCE_CARE_PLANNING"
        );

        let data = app
            .ok(&t.care_manager, EXPLANATION, json!({ "id": t.patient }))
            .await;
        assert_eq!(
            data["patient"]["summary"]["latestIllnessExplanation"]["data"],
            json!({ "explainedBy": "主治医 佐藤", "told": ["本人", "長女"], "patientUnderstanding": "できるだけ家で過ごしたい", "familyUnderstanding": "不安はあるが本人の希望に沿いたい", "prognosisTold": false })
        );
        // The pharmacy's profession does not read the category: the part is
        // withheld.
        // The helper, at the centre of care at home, reads it too.
        let data = app
            .ok(&t.care_worker, EXPLANATION, json!({ "id": t.patient }))
            .await;
        assert_eq!(
            data["patient"]["summary"]["latestIllnessExplanation"]["data"]["explainedBy"],
            "主治医 佐藤"
        );
        assert_withheld(
            app,
            &t.pharmacist,
            EXPLANATION,
            &t.patient,
            "latestIllnessExplanation",
            "ADVANCE_CARE_PLANNING",
        )
        .await;

        // Who took it how must be recorded: an explanation without either
        // understanding is refused, as is one told to nobody.
        let mut bare = explanation();
        bare["illnessExplanation"]["patientUnderstanding"] = Value::Null;
        bare["illnessExplanation"]["familyUnderstanding"] = Value::Null;
        let body = app
            .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "X-2", "2026-03-02T00:00:00Z", bare)] } }))
            .await;
        assert_bad_input(
            &body,
            "input.records[0].data.illnessExplanation.patientUnderstanding",
        );
        let mut nobody = explanation();
        nobody["illnessExplanation"]["told"] = json!([]);
        let body = app
            .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "X-2", "2026-03-02T00:00:00Z", nobody)] } }))
            .await;
        assert_bad_input(&body, "input.records[0].data.illnessExplanation.told");
        // A pharmacist may not write it.
        let body = app
            .gql(&t.pharmacist, WRITE, json!({ "i": { "records": [item(&t.patient, "X-3", "2026-03-02T00:00:00Z", explanation())] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

e2e!(
    a_visiting_nurse_instruction_is_in_the_summary_while_it_is_valid,
    |app| async move {
        let t = team(app).await;
        let regular = instruction("REGULAR", &day(app, -30), &day(app, 150), None);
        let special = instruction(
            "SPECIAL",
            &day(app, -1),
            &day(app, 12),
            Some("心不全の急性増悪のため毎日の観察が必要"),
        );
        let expired = instruction(
            "SPECIAL",
            &day(app, -40),
            &day(app, -27),
            Some("肺炎の治療"),
        );
        let future = instruction("INTRAVENOUS_DRIP", &day(app, 3), &day(app, 9), None);
        let data = app
            .ok(
                &t.physician,
                WRITE,
                json!({ "i": { "records": [
                item(&t.patient, "I-1", "2026-01-01T00:00:00Z", regular),
                item(&t.patient, "I-2", "2026-01-02T00:00:00Z", special),
                item(&t.patient, "I-3", "2026-01-03T00:00:00Z", expired),
                item(&t.patient, "I-4", "2026-01-04T00:00:00Z", future),
            ] } }),
            )
            .await;
        assert_eq!(
            data["writeRecords"][0]["record"]["kind"],
            "VISITING_NURSE_INSTRUCTION"
        );

        let data = app
            .ok(&t.nurse, INSTRUCTIONS, json!({ "id": t.patient }))
            .await;
        let mut kinds: Vec<String> = data["patient"]["summary"]["visitingNurseInstructions"]
            .as_array()
            .expect("instructions")
            .iter()
            .map(|r| r["data"]["instructionType"].as_str().unwrap().to_string())
            .collect();
        kinds.sort();
        assert_eq!(kinds, ["REGULAR", "SPECIAL"], "only those in force today");

        // The care manager and the helper read it (a special instruction
        // moves visits to medical insurance); a pharmacy does not.
        for token in [&t.care_manager, &t.care_worker] {
            let data = app
                .ok(token, INSTRUCTIONS, json!({ "id": t.patient }))
                .await;
            assert_eq!(
                data["patient"]["summary"]["visitingNurseInstructions"]
                    .as_array()
                    .map(Vec::len),
                Some(2)
            );
        }
        assert_withheld(
            app,
            &t.pharmacist,
            INSTRUCTIONS,
            &t.patient,
            "visitingNurseInstructions",
            "VISITING_NURSE_REPORTS",
        )
        .await;

        // The fee schedule's limits: 14 days for a special instruction, six
        // months for a regular one; a reason only (and always) for SPECIAL.
        let cases = [
            (
                instruction("SPECIAL", "2026-03-01", "2026-03-15", Some("急性増悪")),
                "validTo",
            ),
            (
                instruction("REGULAR", "2026-03-01", "2026-09-30", None),
                "validTo",
            ),
            (
                instruction("INTRAVENOUS_DRIP", "2026-03-01", "2026-03-08", None),
                "validTo",
            ),
            (
                instruction("REGULAR", "2026-03-10", "2026-03-01", None),
                "validTo",
            ),
            (
                instruction("SPECIAL", "2026-03-01", "2026-03-14", None),
                "reason",
            ),
            (
                instruction("REGULAR", "2026-03-01", "2026-08-31", Some("急性増悪")),
                "reason",
            ),
        ];
        for (data, field) in cases {
            let body = app
                .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "I-9", "2026-03-01T00:00:00Z", data)] } }))
                .await;
            assert_bad_input(
                &body,
                &format!("input.records[0].data.visitingNurseInstruction.{field}"),
            );
        }
        // The longest allowed periods pass.
        let data = app
            .ok(&t.physician, WRITE, json!({ "i": { "records": [
                item(&t.patient, "I-5", "2026-03-01T00:00:00Z", instruction("SPECIAL", "2026-03-01", "2026-03-14", Some("急性増悪"))),
                item(&t.patient, "I-6", "2026-03-01T00:00:00Z", instruction("REGULAR", "2026-03-01", "2026-08-31", None)),
            ] } }))
            .await;
        assert_eq!(data["writeRecords"][1]["outcome"], "CREATED");

        // A care manager may not issue one.
        let body = app
            .gql(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "I-7", "2026-03-01T00:00:00Z", instruction("REGULAR", "2026-03-01", "2026-03-31", None))] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

/// The errors at `mainDiagnosis` of the first instruction in the summary.
fn diagnosis_errors(body: &Value) -> Vec<Value> {
    let at = json!([
        "patient",
        "summary",
        "visitingNurseInstructions",
        0,
        "data",
        "mainDiagnosis"
    ]);
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["path"] == at)
        .map(|e| e["extensions"].clone())
        .collect()
}

e2e!(
    an_instructions_main_diagnosis_is_read_as_a_diagnosis,
    |app| async move {
        const READ: &str = "query($id: ID!) { patient(id: $id) { summary { visitingNurseInstructions {
            version history { version } data { ... on VisitingNurseInstructionData { station instructions mainDiagnosis } } } } } }";
        const DENIED: &str = "query($p: ID!) { auditLog(filter: { patientId: $p, action: \"DENIED\" }, first: 50) { edges { node { categories } } } }";
        let t = team(app).await;
        let denials = || async {
            app.ok(&app.admin_token, DENIED, json!({ "p": t.patient }))
                .await["auditLog"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["categories"].clone())
                .collect::<Vec<Value>>()
        };
        let mut regular = instruction("REGULAR", &day(app, -30), &day(app, 150), None);
        let write = |data: Value| json!({ "i": { "records": [item(&t.patient, "D-1", "2026-01-01T00:00:00Z", data)] } });
        app.ok(&t.physician, WRITE, write(regular.clone())).await;

        // The nurse it is addressed to and the care manager read diagnoses:
        // the whole instruction.
        for token in [&t.physician, &t.nurse, &t.care_manager] {
            let body = app.gql(token, READ, json!({ "id": t.patient })).await;
            let first = &body["data"]["patient"]["summary"]["visitingNurseInstructions"][0];
            assert_eq!(first["data"]["mainDiagnosis"], "慢性心不全", "{body}");
            assert!(body["errors"].is_null(), "{body}");
        }
        assert!(denials().await.is_empty());

        // The helper reads the instruction, not its diagnosis: CONDITIONS
        // is closed to care workers. Null beside the rest, and a denial in
        // the log under CONDITIONS.
        let body = app
            .gql(&t.care_worker, READ, json!({ "id": t.patient }))
            .await;
        let first = &body["data"]["patient"]["summary"]["visitingNurseInstructions"][0];
        assert_eq!(first["data"]["station"], "ひまわり訪問看護", "{body}");
        assert!(first["data"]["instructions"].is_string(), "{body}");
        assert_eq!(first["data"]["mainDiagnosis"], Value::Null, "{body}");
        let errors = diagnosis_errors(&body);
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["code"], "FORBIDDEN_FIELD");
        assert_eq!(errors[0]["category"], "CONDITIONS");
        assert_eq!(denials().await, [json!(["CONDITIONS"])]);
        // Not asked for, it is not refused (nor logged).
        app.ok(&t.care_worker, INSTRUCTIONS, json!({ "id": t.patient }))
            .await;
        assert_eq!(denials().await.len(), 1);

        // A version that changed only the diagnosis: a new version to those
        // who read it, none to the helper.
        regular["visitingNurseInstruction"]["mainDiagnosis"] = json!("慢性心不全、2型糖尿病");
        let data = app.ok(&t.physician, WRITE, write(regular.clone())).await;
        assert_eq!(data["writeRecords"][0]["outcome"], "UPDATED");
        for (token, version) in [(&t.nurse, 2), (&t.care_worker, 1)] {
            let body = app.gql(token, READ, json!({ "id": t.patient })).await;
            let first = &body["data"]["patient"]["summary"]["visitingNurseInstructions"][0];
            assert_eq!(first["version"], version, "{body}");
            assert_eq!(
                first["history"].as_array().map(Vec::len),
                Some(version as usize - 1),
                "{body}"
            );
        }

        // Writing one is writing a diagnosis: the clinic's system needs
        // write access to CONDITIONS beside VISITING_NURSE_REPORTS, and the
        // write is audited under both.
        let key = |conditions: &str| {
            json!({ "i": { "organizationId": t.clinic, "name": "電子カルテ連携", "permissions": [
                { "category": "IDENTITY", "level": "READ" },
                { "category": "VISITING_NURSE_REPORTS", "level": "READ_WRITE" },
                { "category": "CONDITIONS", "level": conditions }
            ] } })
        };
        const KEY: &str = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }";
        let reader = app.ok(&app.admin_token, KEY, key("READ")).await["createApiKey"]["secret"]
            .as_str()
            .unwrap()
            .to_string();
        regular["visitingNurseInstruction"]["mainDiagnosis"] = json!("慢性心不全、腎不全");
        let body = app.gql(&reader, WRITE, write(regular.clone())).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let writer =
            app.ok(&app.admin_token, KEY, key("READ_WRITE")).await["createApiKey"]["secret"]
                .as_str()
                .unwrap()
                .to_string();
        let data = app
            .ok(&writer, WRITE, json!({ "i": { "records": [item(&t.patient, "D-2", "2026-01-05T00:00:00Z", regular)] } }))
            .await;
        assert_eq!(data["writeRecords"][0]["outcome"], "CREATED");
        let writes = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p, action: \"WRITE\" }, first: 50) { edges { node { categories } } } }",
                json!({ "p": t.patient }),
            )
            .await;
        let last = writes["auditLog"]["edges"]
            .as_array()
            .and_then(|e| {
                e.iter().find(|e| {
                    e["node"]["categories"]
                        .as_array()
                        .is_some_and(|c| c.len() == 2)
                })
            })
            .map(|e| e["node"]["categories"].clone());
        assert!(
            last.as_ref()
                .is_some_and(|c| c.as_array().unwrap().contains(&json!("CONDITIONS"))
                    && c.as_array()
                        .unwrap()
                        .contains(&json!("VISITING_NURSE_REPORTS"))),
            "{writes}"
        );
    }
);

e2e!(
    a_certification_can_be_pending_or_a_programme_eligibility_with_its_independence_ranks,
    |app| async move {
        let t = team(app).await;
        const READ: &str = "query($id: ID!) { patient(id: $id) { summary { careCertification { data { ... on CareCertificationData { status level validFrom validTo bedriddenRank dementiaRank } } } } } }";
        let cert = |status: Option<&str>, level: &str| {
            let mut d = json!({ "level": level, "validFrom": "2026-02-01", "validTo": "2027-01-31", "bedriddenRank": "A2", "dementiaRank": "IIB" });
            if let Some(s) = status {
                d["status"] = json!(s);
            }
            json!({ "careCertification": d })
        };
        // Applied for (申請中): the expected level carries the provisional plan.
        app.ok(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "Q-1", "2026-02-01T00:00:00Z", cert(Some("APPLYING"), "CARE_2"))] } }))
            .await;
        let data = app
            .ok(&t.care_manager, READ, json!({ "id": t.patient }))
            .await;
        assert_eq!(
            data["patient"]["summary"]["careCertification"]["data"],
            json!({ "status": "APPLYING", "level": "CARE_2", "validFrom": "2026-02-01", "validTo": "2027-01-31", "bedriddenRank": "A2", "dementiaRank": "IIB" })
        );
        // Decided: without a status a certification is CERTIFIED.
        app.ok(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "Q-2", "2026-03-01T00:00:00Z", cert(None, "CARE_3"))] } }))
            .await;
        let data = app.ok(&t.physician, READ, json!({ "id": t.patient })).await;
        assert_eq!(
            data["patient"]["summary"]["careCertification"]["data"]["status"],
            "CERTIFIED"
        );
        assert_eq!(
            data["patient"]["summary"]["careCertification"]["data"]["level"],
            "CARE_3"
        );

        // 事業対象者 is recorded as such, but is never applied for.
        app.ok(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "Q-3", "2026-03-02T00:00:00Z", cert(None, "PROGRAM_ELIGIBLE"))] } }))
            .await;
        let body = app
            .gql(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "Q-4", "2026-03-02T00:00:00Z", cert(Some("APPLYING"), "PROGRAM_ELIGIBLE"))] } }))
            .await;
        assert_bad_input(&body, "input.records[0].data.careCertification.level");
        // A rank outside the scale is refused by the schema.
        let mut bad = cert(None, "CARE_1");
        bad["careCertification"]["dementiaRank"] = json!("V");
        let body = app
            .gql(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "Q-5", "2026-03-02T00:00:00Z", bad)] } }))
            .await;
        assert!(body.get("errors").is_some(), "{body}");
        // A care worker does not write certifications.
        let body = app
            .gql(&t.care_worker, WRITE, json!({ "i": { "records": [item(&t.patient, "Q-6", "2026-03-02T00:00:00Z", cert(None, "CARE_1"))] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

e2e!(
    the_primary_physician_writes_the_opinion_for_the_certification_and_the_care_manager_reads_it,
    |app| async move {
        let t = team(app).await;
        const READ: &str = "query($id: ID!) { patient(id: $id) { summary { latestPhysicianOpinion { category data { ... on PhysicianOpinionData { purpose writtenOn diagnoses bedriddenRank dementiaRank specialMedicalCare careCautions } } } } } }";
        let opinion = json!({ "physicianOpinion": {
            "purpose": "RENEWAL", "writtenOn": "2026-02-10",
            "diagnoses": ["慢性心不全", "アルツハイマー型認知症"],
            "bedriddenRank": "A2", "dementiaRank": "IIB",
            "specialMedicalCare": ["酸素療法"], "careCautions": "息切れに注意し、入浴は短時間で"
        } });
        app.ok(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "O-1", "2026-02-10T00:00:00Z", opinion.clone())] } }))
            .await;
        let data = app
            .ok(&t.care_manager, READ, json!({ "id": t.patient }))
            .await;
        let read = &data["patient"]["summary"]["latestPhysicianOpinion"];
        assert_eq!(read["category"], "CARE_CERTIFICATION");
        assert_eq!(
            read["data"]["diagnoses"],
            json!(["慢性心不全", "アルツハイマー型認知症"])
        );
        assert_eq!(read["data"]["dementiaRank"], "IIB");
        // A care worker neither reads nor writes it.
        assert_withheld(
            app,
            &t.care_worker,
            READ,
            &t.patient,
            "latestPhysicianOpinion",
            "CARE_CERTIFICATION",
        )
        .await;
        let body = app
            .gql(&t.care_worker, WRITE, json!({ "i": { "records": [item(&t.patient, "O-2", "2026-02-10T00:00:00Z", opinion.clone())] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        // The form's limits: 1 to 3 diagnoses, not written in the future.
        let mut four = opinion.clone();
        four["physicianOpinion"]["diagnoses"] = json!(["a", "b", "c", "d"]);
        let body = app
            .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "O-3", "2026-02-10T00:00:00Z", four)] } }))
            .await;
        assert_bad_input(&body, "input.records[0].data.physicianOpinion.diagnoses");
        let mut later = opinion;
        later["physicianOpinion"]["writtenOn"] = json!(day(app, 2));
        let body = app
            .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "O-3", "2026-02-10T00:00:00Z", later)] } }))
            .await;
        assert_bad_input(&body, "input.records[0].data.physicianOpinion.writtenOn");
    }
);

e2e!(
    an_opinions_diagnoses_are_read_as_diagnoses,
    |app| async move {
        const READ: &str = "query($id: ID!) { patient(id: $id) { summary { latestPhysicianOpinion { version data { ... on PhysicianOpinionData { purpose dementiaRank diagnoses } } } } } }";
        const DENIED: &str = "query($p: ID!) { auditLog(filter: { patientId: $p, action: \"DENIED\" }, first: 50) { edges { node { categories } } } }";
        let t = team(app).await;
        // Readers of CARE_CERTIFICATION who read no diagnoses: the
        // community support centre's social worker, the municipality's
        // staff.
        let mut others = Vec::new();
        for (kind, name, profession, role) in [
            (
                "COMMUNITY_GENERAL_SUPPORT_CENTER",
                "北見地域包括支援センター",
                "SOCIAL_WORKER",
                "COMMUNITY_SUPPORT_CENTER",
            ),
            (
                "MUNICIPALITY",
                "北見市 介護保険課",
                "MUNICIPAL_STAFF",
                "MUNICIPALITY",
            ),
        ] {
            let org = app.organization(kind, name).await;
            let (_, token) = app.member(&org, profession).await;
            app.ok(
                &t.physician,
                ADD_MEMBER,
                json!({ "i": { "patientId": t.patient, "organizationId": org, "role": role } }),
            )
            .await;
            others.push(token);
        }
        let mut opinion = json!({ "physicianOpinion": {
            "purpose": "RENEWAL", "writtenOn": "2026-02-10",
            "diagnoses": ["慢性心不全", "アルツハイマー型認知症"],
            "bedriddenRank": "A2", "dementiaRank": "IIB"
        } });
        let write = |data: Value| json!({ "i": { "records": [item(&t.patient, "OP-1", "2026-02-10T00:00:00Z", data)] } });
        app.ok(&t.physician, WRITE, write(opinion.clone())).await;
        let opinion_of =
            |body: &Value| body["data"]["patient"]["summary"]["latestPhysicianOpinion"].clone();
        // The care manager, who reads diagnoses, reads them all.
        let body = app
            .gql(&t.care_manager, READ, json!({ "id": t.patient }))
            .await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(
            opinion_of(&body)["data"]["diagnoses"],
            json!(["慢性心不全", "アルツハイマー型認知症"])
        );
        // The others read the opinion without them: null, FORBIDDEN_FIELD
        // under CONDITIONS, and a denial in the log.
        for (n, token) in others.iter().enumerate() {
            let body = app.gql(token, READ, json!({ "id": t.patient })).await;
            let read = opinion_of(&body);
            assert_eq!(read["data"]["dementiaRank"], "IIB", "{body}");
            assert_eq!(read["data"]["diagnoses"], Value::Null, "{body}");
            let errors = errors_at(
                &body,
                &[
                    "patient",
                    "summary",
                    "latestPhysicianOpinion",
                    "data",
                    "diagnoses",
                ],
            );
            assert_eq!(errors.len(), 1, "{body}");
            assert_eq!(errors[0]["code"], "FORBIDDEN_FIELD");
            assert_eq!(errors[0]["category"], "CONDITIONS");
            let denials = app
                .ok(&app.admin_token, DENIED, json!({ "p": t.patient }))
                .await;
            let denials = denials["auditLog"]["edges"].as_array().unwrap().clone();
            assert_eq!(denials.len(), n + 1, "{denials:?}");
            assert!(
                denials
                    .iter()
                    .all(|e| e["node"]["categories"] == json!(["CONDITIONS"])),
                "{denials:?}"
            );
        }
        // A version that changed only the diagnoses is a new version to the
        // care manager, none to the social worker.
        opinion["physicianOpinion"]["diagnoses"] = json!(["慢性心不全", "HIV感染症"]);
        app.ok(&t.physician, WRITE, write(opinion.clone())).await;
        for (token, version) in [(&t.care_manager, 2), (&others[0], 1)] {
            let body = app.gql(token, READ, json!({ "id": t.patient })).await;
            assert_eq!(opinion_of(&body)["version"], version, "{body}");
        }
        // Writing one is writing diagnoses: a clinic's key needs write
        // access to CONDITIONS beside CARE_CERTIFICATION.
        const KEY: &str = "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }";
        let key = |conditions: &str| {
            json!({ "i": { "organizationId": t.clinic, "name": "電子カルテ連携", "permissions": [
                { "category": "IDENTITY", "level": "READ" },
                { "category": "CARE_CERTIFICATION", "level": "READ_WRITE" },
                { "category": "CONDITIONS", "level": conditions }
            ] } })
        };
        for (level, refused) in [("READ", true), ("READ_WRITE", false)] {
            let secret = app.ok(&app.admin_token, KEY, key(level)).await["createApiKey"]["secret"]
                .as_str()
                .unwrap()
                .to_string();
            let body = app
                .gql(&secret, WRITE, json!({ "i": { "records": [item(&t.patient, &format!("OP-{level}"), "2026-02-11T00:00:00Z", opinion.clone())] } }))
                .await;
            if refused {
                assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
            } else {
                assert!(body["errors"].is_null(), "{body}");
                assert_eq!(body["data"]["writeRecords"][0]["outcome"], "CREATED");
            }
        }
    }
);

e2e!(
    guidance_instructions_follow_their_service_to_the_pharmacy_dietitian_and_hygienist,
    |app| async move {
        let t = team(app).await;
        const READ: &str = "query($id: ID!) { patient(id: $id) { summary { homeCareGuidanceInstructions { category data { ... on HomeCareGuidanceInstructionData { service provider visitsPerMonth } } } } } }";
        let guidance = |service: &str, from: String, to: Option<String>| {
            json!({ "homeCareGuidanceInstruction": {
                "service": service, "provider": "北見中央薬局", "validFrom": from, "validTo": to,
                "visitsPerMonth": 2, "instructions": "残薬確認と服薬カレンダーの調整"
            } })
        };
        let data = app
            .ok(&t.physician, WRITE, json!({ "i": { "records": [
                item(&t.patient, "G-1", "2026-01-01T00:00:00Z", guidance("PHARMACIST", day(app, -10), None)),
                item(&t.patient, "G-2", "2026-01-01T00:00:00Z", guidance("DIETITIAN", day(app, -10), Some(day(app, 20)))),
                item(&t.patient, "G-3", "2026-01-01T00:00:00Z", guidance("PHARMACIST", day(app, -90), Some(day(app, -30)))),
            ] } }))
            .await;
        let categories: Vec<&str> = data["writeRecords"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["record"]["category"].as_str().unwrap())
            .collect();
        assert_eq!(
            categories,
            ["MEDICATIONS", "NUTRITION_SWALLOWING", "MEDICATIONS"]
        );

        // The pharmacist reads the instructions in force — its own, and the
        // dietitian's (the diet form decides the dosage form) — not the
        // ended one.
        let data = app
            .ok(&t.pharmacist, READ, json!({ "id": t.patient }))
            .await;
        let mut services: Vec<&str> = data["patient"]["summary"]["homeCareGuidanceInstructions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["data"]["service"].as_str().unwrap())
            .collect();
        services.sort();
        assert_eq!(services, ["DIETITIAN", "PHARMACIST"]);

        // A hygienist's instruction is the dentist's to write: a physician,
        // who does not write DENTAL, may not.
        let body = app
            .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "G-4", "2026-01-01T00:00:00Z", guidance("DENTAL_HYGIENIST", day(app, -1), None))] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        // Nor does a pharmacist instruct itself.
        let body = app
            .gql(&t.pharmacist, WRITE, json!({ "i": { "records": [item(&t.patient, "G-5", "2026-01-01T00:00:00Z", guidance("PHARMACIST", day(app, -1), None))] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        // A reader of medications who does not read nutrition and
        // swallowing (an MSW) sees the pharmacy's instruction only.
        let clinic = app.organization("HOSPITAL", "北見総合病院").await;
        app.ok(
            &t.physician,
            ADD_MEMBER,
            json!({ "i": { "patientId": t.patient, "organizationId": clinic, "role": "HOSPITAL" } }),
        )
        .await;
        let (_, msw) = app.member(&clinic, "MEDICAL_SOCIAL_WORKER").await;
        let data = app.ok(&msw, READ, json!({ "id": t.patient })).await;
        let seen: Vec<&str> = data["patient"]["summary"]["homeCareGuidanceInstructions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["data"]["service"].as_str().unwrap())
            .collect();
        assert_eq!(seen, ["PHARMACIST"]);

        // Bad input: visits outside 1–8, an end before the start.
        let mut many = guidance("PHARMACIST", day(app, -1), None);
        many["homeCareGuidanceInstruction"]["visitsPerMonth"] = json!(9);
        let body = app
            .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "G-6", "2026-01-01T00:00:00Z", many)] } }))
            .await;
        assert_bad_input(
            &body,
            "input.records[0].data.homeCareGuidanceInstruction.visitsPerMonth",
        );
        let body = app
            .gql(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "G-7", "2026-01-01T00:00:00Z", guidance("PHARMACIST", day(app, 5), Some(day(app, 1))))] } }))
            .await;
        assert_bad_input(
            &body,
            "input.records[0].data.homeCareGuidanceInstruction.validTo",
        );
    }
);

const DENTAL_READ: &str = "query($id: ID!) { patient(id: $id) { summary { latestDentalVisitRequest { category author { profession } data { ... on DentalVisitRequestData {
    requestedProvider requestedOn reasons otherReason patientWishesTreatment familyConsents placeOfVisit facilityName
    preferredTimes canSitUpright usesWheelchair observations urgency } } } } } }";
const RECORD_DENTAL: &str = "mutation($i: DentalVisitRequestRecordInput!) { recordDentalVisitRequest(input: $i) { outcome record { kind category } } }";

fn dental_request(on: &str) -> Value {
    json!({
        "requestedProvider": "ひまわり歯科医院", "requestedOn": on,
        "reasons": ["DENTURE_ILL_FITTING", "CHEWING_DIFFICULTY"],
        "patientWishesTreatment": true, "familyConsents": true,
        "placeOfVisit": "HOME", "preferredTimes": "平日午前",
        "canSitUpright": true, "usesWheelchair": false,
        "observations": "入れ歯が合わず、硬いものが噛めないと訴えあり", "urgency": "SOON"
    })
}

/// The team of [`team`] with a dental clinic's dentist on it.
async fn with_dentist(app: &TestApp, t: &Team) -> String {
    let dental = app.organization("DENTAL_CLINIC", "ひまわり歯科医院").await;
    let (_, dentist) = app.member(&dental, "DENTIST").await;
    app.ok(
        &t.physician,
        ADD_MEMBER,
        json!({ "i": { "patientId": t.patient, "organizationId": dental, "role": "DENTIST" } }),
    )
    .await;
    dentist
}

e2e!(
    a_care_worker_requests_a_dental_visit_and_the_dentist_reads_it,
    |app| async move {
        let t = team(app).await;
        let dentist = with_dentist(app, &t).await;

        // The helper, who sees the mouth at every meal, sends the request
        // (the per-kind mutation).
        let data = app
            .ok(&t.care_worker, RECORD_DENTAL, json!({ "i": {
                "patientId": t.patient, "sourceRecordId": "D-1", "effectiveAt": "2026-03-01T00:00:00Z",
                "data": dental_request(&day(app, -3)) } }))
            .await;
        let written = &data["recordDentalVisitRequest"];
        assert_eq!(written["outcome"], "CREATED");
        assert_eq!(written["record"]["kind"], "DENTAL_VISIT_REQUEST");
        assert_eq!(written["record"]["category"], "DENTAL_REFERRAL");

        // The dentist reads it whole.
        let data = app
            .ok(&dentist, DENTAL_READ, json!({ "id": t.patient }))
            .await;
        let read = &data["patient"]["summary"]["latestDentalVisitRequest"];
        assert_eq!(read["category"], "DENTAL_REFERRAL");
        assert_eq!(read["author"]["profession"], "CARE_WORKER");
        assert_eq!(
            read["data"],
            json!({
                "requestedProvider": "ひまわり歯科医院", "requestedOn": day(app, -3),
                "reasons": ["DENTURE_ILL_FITTING", "CHEWING_DIFFICULTY"], "otherReason": null,
                "patientWishesTreatment": true, "familyConsents": true,
                "placeOfVisit": "HOME", "facilityName": null, "preferredTimes": "平日午前",
                "canSitUpright": true, "usesWheelchair": false,
                "observations": "入れ歯が合わず、硬いものが噛めないと訴えあり", "urgency": "SOON"
            })
        );

        // A later request by the nurse, for a short stay at a facility,
        // replaces it in the summary.
        let mut later = dental_request(&day(app, -1));
        later["reasons"] = json!(["PAIN", "OTHER"]);
        later["otherReason"] = json!("舌の白い苔");
        later["placeOfVisit"] = json!("FACILITY");
        later["facilityName"] = json!("ショートステイ はまなす");
        later["patientWishesTreatment"] = json!(false);
        app.ok(&t.nurse, WRITE, json!({ "i": { "records": [item(&t.patient, "D-2", "2026-03-03T00:00:00Z", json!({ "dentalVisitRequest": later }))] } }))
            .await;
        for token in [&dentist, &t.pharmacist, &t.care_manager, &t.physician] {
            let data = app.ok(token, DENTAL_READ, json!({ "id": t.patient })).await;
            let read = &data["patient"]["summary"]["latestDentalVisitRequest"]["data"];
            assert_eq!(read["reasons"], json!(["PAIN", "OTHER"]), "{data}");
            assert_eq!(read["facilityName"], "ショートステイ はまなす");
        }

        // Municipal staff on the team neither read nor write it.
        let city = app.organization("MUNICIPALITY", "北見市介護保険課").await;
        app.ok(
            &t.physician,
            ADD_MEMBER,
            json!({ "i": { "patientId": t.patient, "organizationId": city, "role": "MUNICIPALITY" } }),
        )
        .await;
        let (_, clerk) = app.member(&city, "MUNICIPAL_STAFF").await;
        assert_withheld(
            app,
            &clerk,
            DENTAL_READ,
            &t.patient,
            "latestDentalVisitRequest",
            "DENTAL_REFERRAL",
        )
        .await;
        let body = app
            .gql(&clerk, WRITE, json!({ "i": { "records": [item(&t.patient, "D-3", "2026-03-03T00:00:00Z", json!({ "dentalVisitRequest": dental_request(&day(app, 0)) }))] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

        // Writing the request opens nothing of the dental record: the helper
        // still may not write an oral finding.
        let body = app
            .gql(
                &t.care_worker,
                WRITE,
                json!({ "i": { "records": [item(&t.patient, "D-4", "2026-03-03T00:00:00Z",
                json!({ "oralFinding": { "findings": "歯肉の腫れ" } }))] } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

e2e!(
    emergency_access_does_not_open_a_dental_visit_request,
    |app| async move {
        let t = team(app).await;
        app.ok(&t.nurse, WRITE, json!({ "i": { "records": [item(&t.patient, "D-1", "2026-03-01T00:00:00Z", json!({ "dentalVisitRequest": dental_request(&day(app, -1)) }))] } }))
            .await;
        const OPEN: &str = "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { categories } }";
        let fire = app
            .organization("AMBULANCE_SERVICE", "北見市消防本部")
            .await;
        let (_, crew) = app.member(&fire, "EMS_CREW").await;
        let hospital = app.organization("HOSPITAL", "北見赤十字病院").await;
        let (_, er) = app.member(&hospital, "PHYSICIAN").await;
        // Neither the crew, whose profession has no DENTAL_REFERRAL, nor the
        // receiving physician, whose profession writes it off the team:
        // emergency access does not cover it.
        for token in [&crew, &er] {
            let data = app
                .ok(
                    token,
                    OPEN,
                    json!({ "i": { "patientId": t.patient, "reasonCode": "IN_TRANSPORT" } }),
                )
                .await;
            let opened = data["openEmergencyAccess"]["categories"]
                .as_array()
                .unwrap();
            assert!(!opened.contains(&json!("DENTAL_REFERRAL")), "{data}");
            let body = app
                .gql(token, DENTAL_READ, json!({ "id": t.patient }))
                .await;
            assert_eq!(
                body["data"]["patient"]["summary"]["latestDentalVisitRequest"],
                Value::Null,
                "{body}"
            );
            let errors = errors_at(&body, &["patient", "summary", "latestDentalVisitRequest"]);
            assert_eq!(errors.len(), 1, "{body}");
            assert_eq!(errors[0]["code"], "FORBIDDEN_FIELD", "{body}");
            assert_eq!(errors[0]["category"], "DENTAL_REFERRAL", "{body}");
            assert_eq!(errors[0]["reason"], "NOT_AN_EMERGENCY_CATEGORY", "{body}");
            // Nor may it write one.
            let body = app
                .gql(token, WRITE, json!({ "i": { "records": [item(&t.patient, "D-2", "2026-03-01T00:00:00Z", json!({ "dentalVisitRequest": dental_request(&day(app, 0)) }))] } }))
                .await;
            assert!(
                matches!(
                    error_code(&body).as_deref(),
                    Some("FORBIDDEN" | "NOT_FOUND")
                ),
                "{body}"
            );
        }
    }
);

e2e!(
    a_dental_visit_request_with_bad_input_names_the_field,
    |app| async move {
        let t = team(app).await;
        let with = |field: &str, value: Value| {
            let mut d = dental_request(&day(app, 0));
            d[field] = value;
            d
        };
        let cases = [
            (with("reasons", json!([])), "reasons"),
            (with("reasons", json!(["PAIN", "PAIN"])), "reasons[1]"),
            (with("reasons", json!(["PAIN", "OTHER"])), "otherReason"),
            (with("requestedOn", json!(day(app, 1))), "requestedOn"),
            (with("placeOfVisit", json!("FACILITY")), "facilityName"),
            (with("observations", json!("  ")), "observations"),
        ];
        for (d, field) in cases {
            let body = app
                .gql(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "D-9", "2026-03-01T00:00:00Z", json!({ "dentalVisitRequest": d }))] } }))
                .await;
            assert_bad_input(
                &body,
                &format!("input.records[0].data.dentalVisitRequest.{field}"),
            );
        }
        // Today is not the future.
        let data = app
            .ok(&t.care_manager, WRITE, json!({ "i": { "records": [item(&t.patient, "D-9", "2026-03-01T00:00:00Z", json!({ "dentalVisitRequest": dental_request(&day(app, 0)) }))] } }))
            .await;
        assert_eq!(data["writeRecords"][0]["outcome"], "CREATED");
    }
);

e2e!(
    a_physicians_opinion_and_instruction_are_written_by_physicians_only,
    |app| async move {
        let t = team(app).await;
        let opinion = json!({ "physicianOpinion": {
            "purpose": "NEW", "writtenOn": "2026-02-10", "diagnoses": ["慢性心不全"],
            "bedriddenRank": "A1", "dementiaRank": "I"
        } });
        let nursing = instruction("REGULAR", &day(app, 0), &day(app, 30), None);
        // The care manager writes CARE_CERTIFICATION, the nurse
        // VISITING_NURSE_REPORTS: neither writes the physician's documents,
        // which would replace the physician's in the summary.
        for (token, data) in [(&t.care_manager, &opinion), (&t.nurse, &nursing)] {
            let body = app
                .gql(token, WRITE, json!({ "i": { "records": [item(&t.patient, "X-1", "2026-02-10T00:00:00Z", data.clone())] } }))
                .await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.starts_with("input.records[0]: "), "{message}");
            assert!(message.contains("PHYSICIAN"), "{message}");
        }
        // The physician writes both.
        let mut written = Vec::new();
        for (source, data) in [("X-2", &opinion), ("X-3", &nursing)] {
            let data = app
                .ok(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, source, "2026-02-10T00:00:00Z", data.clone())] } }))
                .await;
            written.push(data["writeRecords"][0]["record"]["id"].clone());
        }
        // A nurse of the physician's own clinic writes VISITING_NURSE_REPORTS
        // but withdraws no physician's instruction.
        let clinic = app
            .ok(&t.physician, "{ me { organization { id } } }", json!({}))
            .await["me"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, clinic_nurse) = app.member(&clinic, "NURSE").await;
        const WITHDRAW: &str =
            "mutation($id: ID!) { markRecordEnteredInError(recordId: $id) { status } }";
        let body = app
            .gql(&clinic_nurse, WITHDRAW, json!({ "id": written[1] }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let data = app
            .ok(&t.physician, WITHDRAW, json!({ "id": written[1] }))
            .await;
        assert_eq!(
            data["markRecordEnteredInError"]["status"],
            "ENTERED_IN_ERROR"
        );
        // The instruction to visit and guide at home is the physician's (or
        // the dentist's), not the pharmacist's who carries it out.
        let guidance = json!({ "homeCareGuidanceInstruction": {
            "service": "PHARMACIST", "provider": "北見中央薬局", "validFrom": day(app, 0),
            "visitsPerMonth": 2, "instructions": "残薬確認と服薬カレンダーの調整"
        } });
        let body = app
            .gql(&t.pharmacist, WRITE, json!({ "i": { "records": [item(&t.patient, "X-4", "2026-02-10T00:00:00Z", guidance.clone())] } }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        app.ok(&t.physician, WRITE, json!({ "i": { "records": [item(&t.patient, "X-4", "2026-02-10T00:00:00Z", guidance)] } }))
            .await;
        // A system has no profession: its organisation must be where
        // physicians practise. The station's key may write
        // VISITING_NURSE_REPORTS, not issue the instruction; the clinic's may.
        let org_of = |token: String| async move {
            app.ok(&token, "{ me { organization { id } } }", json!({}))
                .await["me"]["organization"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        for (org, allowed) in [
            (org_of(t.nurse.clone()).await, false),
            (clinic.clone(), true),
        ] {
            let key = app
                .ok(
                    &app.admin_token,
                    "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                    json!({ "i": { "organizationId": org, "name": "連携システム", "permissions": [
                        { "category": "IDENTITY", "level": "READ" },
                        { "category": "VISITING_NURSE_REPORTS", "level": "READ_WRITE" },
                        // The instruction's main diagnosis is a diagnosis.
                        { "category": "CONDITIONS", "level": "READ_WRITE" }
                    ] } }),
                )
                .await["createApiKey"]["secret"]
                .as_str()
                .unwrap()
                .to_string();
            let body = app
                .gql(&key, WRITE, json!({ "i": { "records": [item(&t.patient, "K-1", "2026-02-10T00:00:00Z", nursing.clone())] } }))
                .await;
            if allowed {
                assert!(body["errors"].is_null(), "{body}");
            } else {
                assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
            }
        }
    }
);
