//! 救急医療情報: the emergency information sheet, composed with the live
//! records, read by the care team and — through break-the-glass — by
//! ambulance crews; and its printable page.

use renkei_tests::*;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome record { id version } } }";
const SHEET: &str = "mutation($i: EmergencyInformationRecordInput!) { recordEmergencyInformation(input: $i) { outcome record { id version kind category } } }";
const OPEN: &str =
    "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id } }";
const ADD: &str = "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";

const READ: &str = r#"query($id: ID!) { patient(id: $id) { name emergencyInformation {
    sheet { version sourceOrganization { name } data {
        usualHospital { name phone }
        emergencyContacts { name relationship phone available keyPerson }
        expectedEmergencies { situation response callFirst }
        designatedHospital { name backupBed }
        note } }
    activeConditions { undisclosed data { ... on ConditionData { name } } }
    reportedDiagnoses
    allergies { data { ... on AllergyData { substance severity } } }
    currentPrescriptions { data { ... on PrescriptionData { drug } } }
    reportedMedications
    latestDispensing { data { ... on DispensingData { drug } } }
    advanceCarePlan { data { ... on AdvanceCarePlanData { cpr lifeProlongingTreatment confirmedOn } } }
    primaryPhysician { role organization { name } }
} } }"#;

/// A clinic's patient with consent and records; an EMS crew of the fire
/// department, not on the team; a care-service provider on the team.
struct Scene {
    patient: String,
    doctor: String,
    crew: String,
    care_worker: String,
}

fn sheet_data(contact_name: &str) -> Value {
    json!({
        "usualHospital": { "name": "みなみ野市立総合病院 循環器内科", "phone": "0157-24-3111" },
        "emergencyContacts": [
            { "name": contact_name, "relationship": "長女", "phone": "090-1234-5678", "available": "平日18時以降", "keyPerson": true },
            { "name": "訪問看護ステーションみなみ野", "relationship": "訪問看護（24時間）", "phone": "0157-27-3300", "available": "24時間" }
        ],
        "expectedEmergencies": [
            { "situation": "心不全の増悪（息切れ・むくみ）", "response": "起座位にして訪問看護へ連絡。\n呼吸困難が強ければ119番。", "callFirst": "訪問看護 0157-27-3300" }
        ],
        "designatedHospital": { "name": "みなみ野市立総合病院", "phone": "0157-24-3111", "backupBed": true },
        "diagnoses": ["慢性心不全（他院で診断）"],
        "medications": ["フロセミド錠20mg 1日1回朝"],
        "note": "玄関の鍵は郵便受けの中"
    })
}

async fn register_sheet(app: &TestApp, token: &str, patient: &str, contact_name: &str) -> Value {
    app.ok(
        token,
        SHEET,
        json!({ "i": { "patientId": patient, "sourceRecordId": "EI-1",
                        "effectiveAt": "2026-01-20T02:00:00Z", "data": sheet_data(contact_name) } }),
    )
    .await
}

async fn write_records(app: &TestApp, token: &str, patient: &str, allergy: &str) {
    app.ok(
        token,
        WRITE,
        json!({ "i": { "records": [
            { "patientId": patient, "sourceRecordId": "C-1", "effectiveAt": "2026-01-10T00:00:00Z",
              "data": { "condition": { "name": "高血圧症", "icd10": "I10", "clinicalStatus": "ACTIVE" } } },
            { "patientId": patient, "effectiveAt": "2026-01-11T00:00:00Z",
              "data": { "allergy": { "substance": allergy, "allergyType": "DRUG", "reaction": "全身蕁麻疹", "severity": "SEVERE" } } },
            { "patientId": patient, "effectiveAt": "2026-01-12T00:00:00Z",
              "data": { "prescription": { "medicationType": "PRESCRIPTION", "drug": "アムロジピン錠5mg", "dose": "1錠", "route": "ORAL", "frequency": "1日1回朝食後", "startDate": "2026-01-12" } } },
            { "patientId": patient, "effectiveAt": "2026-01-13T00:00:00Z",
              "data": { "advanceCarePlan": { "cpr": "DECLINES", "lifeProlongingTreatment": "DECLINES", "placeOfDeath": "HOME", "confirmedOn": "2026-01-13", "participants": ["本人", "長女"] } } },
        ] } }),
    )
    .await;
}

async fn scene(app: &TestApp) -> Scene {
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "K-000003").await;
    write_records(app, &doctor, &patient, "ペニシリン系抗菌薬").await;
    let fire = app
        .organization("AMBULANCE_SERVICE", "みなみ野市消防本部")
        .await;
    let (_, crew) = app.member(&fire, "EMS_CREW").await;
    let helpers = app
        .organization("CARE_SERVICE_PROVIDER", "ヘルパーステーションこぶし")
        .await;
    let (_, care_worker) = app.member(&helpers, "CARE_WORKER").await;
    app.ok(
        &doctor,
        ADD,
        json!({ "i": { "patientId": patient, "organizationId": helpers, "role": "CARE_SERVICE" } }),
    )
    .await;
    Scene {
        patient,
        doctor,
        crew,
        care_worker,
    }
}

fn reason(body: &Value, field: &str) -> Value {
    errors_at(body, &["patient", "emergencyInformation", field])
        .first()
        .map(|e| e["reason"].clone())
        .unwrap_or(Value::Null)
}

e2e!(
    the_care_team_registers_a_sheet_and_reads_it_beside_the_live_records,
    |app| async move {
        let s = scene(app).await;
        // Nothing registered yet: the sheet is null without an error.
        let body = app.gql(&s.doctor, READ, json!({ "id": s.patient })).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert!(body["data"]["patient"]["emergencyInformation"]["sheet"].is_null());

        let written = register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        let record = &written["recordEmergencyInformation"];
        assert_eq!(record["outcome"], "CREATED");
        assert_eq!(record["record"]["kind"], "EMERGENCY_INFORMATION");
        assert_eq!(record["record"]["category"], "EMERGENCY_INFORMATION");

        let data = app.ok(&s.doctor, READ, json!({ "id": s.patient })).await;
        let info = &data["patient"]["emergencyInformation"];
        let sheet = &info["sheet"]["data"];
        assert_eq!(info["sheet"]["version"], 1);
        assert_eq!(sheet["emergencyContacts"][0]["keyPerson"], true);
        assert_eq!(sheet["emergencyContacts"][0]["phone"], "090-1234-5678");
        assert_eq!(sheet["emergencyContacts"][1]["keyPerson"], false);
        assert_eq!(sheet["designatedHospital"]["backupBed"], true);
        assert_eq!(
            sheet["expectedEmergencies"][0]["callFirst"],
            "訪問看護 0157-27-3300"
        );
        assert_eq!(info["activeConditions"][0]["data"]["name"], "高血圧症");
        assert_eq!(
            info["reportedDiagnoses"],
            json!(["慢性心不全（他院で診断）"])
        );
        assert_eq!(
            info["allergies"][0]["data"]["substance"],
            "ペニシリン系抗菌薬"
        );
        assert_eq!(
            info["currentPrescriptions"][0]["data"]["drug"],
            "アムロジピン錠5mg"
        );
        assert_eq!(
            info["reportedMedications"],
            json!(["フロセミド錠20mg 1日1回朝"])
        );
        assert_eq!(info["latestDispensing"], json!([]));
        let acp = &info["advanceCarePlan"]["data"];
        assert_eq!(acp["cpr"], "DECLINES");
        assert_eq!(acp["lifeProlongingTreatment"], "DECLINES");
        assert_eq!(acp["confirmedOn"], "2026-01-13");
        assert_eq!(info["primaryPhysician"]["role"], "PRIMARY_PHYSICIAN");

        // A revision with the same source record ID is a new version of the
        // same sheet; the composed read shows the newest.
        let mut revised = sheet_data("山田 花子");
        revised["note"] = json!("鍵は隣家（佐藤さん）に預けてある");
        let data = app
            .ok(
                &s.doctor,
                SHEET,
                json!({ "i": { "patientId": s.patient, "sourceRecordId": "EI-1",
                                "effectiveAt": "2026-02-01T02:00:00Z", "data": revised } }),
            )
            .await;
        assert_eq!(data["recordEmergencyInformation"]["outcome"], "UPDATED");
        assert_eq!(data["recordEmergencyInformation"]["record"]["version"], 2);
        let data = app.ok(&s.doctor, READ, json!({ "id": s.patient })).await;
        let sheet = &data["patient"]["emergencyInformation"]["sheet"];
        assert_eq!(sheet["version"], 2);
        assert_eq!(sheet["data"]["note"], "鍵は隣家（佐藤さん）に預けてある");

        // It is a record like the others: in the timeline, with its history.
        let data = app
            .ok(
                &s.doctor,
                "query($id: ID!) { patient(id: $id) { timeline(kinds: [EMERGENCY_INFORMATION]) { edges { node { version history { version } data { ... on EmergencyInformationData { note } } } } } } }",
                json!({ "id": s.patient }),
            )
            .await;
        let edges = data["patient"]["timeline"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0]["node"]["history"][0]["version"], 1);
    }
);

e2e!(
    an_ems_crew_reads_the_emergency_information_only_with_emergency_access,
    |app| async move {
        let s = scene(app).await;
        register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        // Without emergency access the patient does not exist for the crew.
        let body = app.gql(&s.crew, READ, json!({ "id": s.patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        assert!(body["data"].is_null(), "{body}");

        app.ok(
            &s.crew,
            OPEN,
            json!({ "i": { "patientId": s.patient, "reason": "自宅で呼吸困難、救急搬送中" } }),
        )
        .await;
        let body = app.gql(&s.crew, READ, json!({ "id": s.patient })).await;
        let info = &body["data"]["patient"]["emergencyInformation"];
        assert_eq!(
            info["sheet"]["data"]["emergencyContacts"][0]["name"],
            "山田 花子"
        );
        assert_eq!(
            info["allergies"][0]["data"]["substance"],
            "ペニシリン系抗菌薬"
        );
        assert_eq!(info["activeConditions"][0]["data"]["name"], "高血圧症");
        assert_eq!(info["reportedDiagnoses"][0], "慢性心不全（他院で診断）");
        assert_eq!(
            info["currentPrescriptions"][0]["data"]["drug"],
            "アムロジピン錠5mg"
        );
        assert_eq!(info["advanceCarePlan"]["data"]["cpr"], "DECLINES");
        // Categories outside emergency access stay closed.
        assert!(info["latestDispensing"].is_null());
        assert_eq!(
            reason(&body, "latestDispensing"),
            "NOT_AN_EMERGENCY_CATEGORY"
        );
        assert!(info["primaryPhysician"].is_null());
        assert_eq!(
            reason(&body, "primaryPhysician"),
            "NOT_AN_EMERGENCY_CATEGORY"
        );
        // The crew knows whom it is about.
        assert_eq!(body["data"]["patient"]["name"], NAME);
        // And emergency access never writes.
        let body = app
            .gql(
                &s.crew,
                SHEET,
                json!({ "i": { "patientId": s.patient, "effectiveAt": "2026-02-01T00:00:00Z", "data": sheet_data("救急 隊員") } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

e2e!(
    a_care_worker_on_the_team_reads_the_sheet_but_not_the_diagnoses,
    |app| async move {
        let s = scene(app).await;
        register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        let body = app
            .gql(&s.care_worker, READ, json!({ "id": s.patient }))
            .await;
        let info = &body["data"]["patient"]["emergencyInformation"];
        assert_eq!(
            info["sheet"]["data"]["expectedEmergencies"][0]["situation"],
            "心不全の増悪（息切れ・むくみ）"
        );
        assert_eq!(info["allergies"][0]["data"]["severity"], "SEVERE");
        assert_eq!(
            info["currentPrescriptions"][0]["data"]["drug"],
            "アムロジピン錠5mg"
        );
        assert_eq!(info["reportedMedications"][0], "フロセミド錠20mg 1日1回朝");
        // A care worker does not read diagnoses — not even those typed on the
        // sheet — but reads the ACP, being at the centre of 看取り at home
        // (手引き 003:1363).
        for field in ["activeConditions", "reportedDiagnoses"] {
            assert!(info[field].is_null(), "{field}: {body}");
            assert_eq!(reason(&body, field), "NOT_PERMITTED_FOR_ROLE", "{field}");
        }
        assert_eq!(info["advanceCarePlan"]["data"]["cpr"], "DECLINES", "{body}");
        assert!(reason(&body, "advanceCarePlan").is_null(), "{body}");
        // The sheet as a record does not carry the typed diagnoses either.
        let body = app
            .gql(
                &s.care_worker,
                "query($id: ID!) { patient(id: $id) { timeline(kinds: [EMERGENCY_INFORMATION]) { edges { node { data { ... on EmergencyInformationData { diagnoses } } } } } } }",
                json!({ "id": s.patient }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "the output type has no diagnoses: {body}"
        );
        // A care worker may read the sheet, not register it.
        let body = app
            .gql(
                &s.care_worker,
                SHEET,
                json!({ "i": { "patientId": s.patient, "effectiveAt": "2026-02-01T00:00:00Z", "data": sheet_data("山田 花子") } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    }
);

e2e!(
    a_sheet_without_contacts_or_with_two_key_persons_is_refused,
    |app| async move {
        let s = scene(app).await;
        let mut data = sheet_data("山田 花子");
        data["emergencyContacts"] = json!([]);
        let body = app
            .gql(
                &s.doctor,
                SHEET,
                json!({ "i": { "patientId": s.patient, "effectiveAt": "2026-02-01T00:00:00Z", "data": data } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.records[0].data.emergencyInformation.emergencyContacts"
        );
        let mut data = sheet_data("山田 花子");
        data["emergencyContacts"][1]["keyPerson"] = json!(true);
        let body = app
            .gql(
                &s.doctor,
                SHEET,
                json!({ "i": { "patientId": s.patient, "effectiveAt": "2026-02-01T00:00:00Z", "data": data } }),
            )
            .await;
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.records[0].data.emergencyInformation.emergencyContacts[1].keyPerson"
        );
    }
);

// ---------------------------------------------------------------------------
// The printable page

async fn print(
    app: &TestApp,
    token: Option<&str>,
    patient: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = app
        .client
        .get(app.url(&format!("/patients/{patient}/emergency-sheet")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.expect("a body"), headers)
}

const NAME: &str = "連携 花子";

e2e!(
    the_printed_sheet_shows_the_patient_the_allergies_and_the_cpr_wish,
    |app| async move {
        let s = scene(app).await;
        register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        let (status, html, headers) = print(app, Some(&s.doctor), &s.patient).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(r#"<meta charset="utf-8">"#));
        assert!(html.contains("@page { size: A4; margin: 10mm }"));
        assert!(!html.to_lowercase().contains("<script"), "no scripts");
        assert!(html.contains(NAME), "the patient's name");
        assert!(html.contains("ペニシリン系抗菌薬"), "the allergy");
        assert!(html.contains("重度 / severe"));
        assert!(
            html.contains(r#"<td class="emphasis">希望しない / declines</td>"#),
            "the CPR wish: {html}"
        );
        assert!(
            html.contains("2026-01-13"),
            "the date the wish was confirmed"
        );
        assert!(html.contains("090-1234-5678") && html.contains("キーパーソン"));
        assert!(html.contains("起座位にして訪問看護へ連絡。<br>呼吸困難が強ければ119番。"));
        assert!(
            html.contains(
                "後方支援病床<small>Back-up bed</small></th><td class=\"tel\">あり / yes"
            )
        );
        assert!(html.contains("印刷者 / Printed by: 試験 太郎（医師）、みなみ野在宅クリニック"));
        assert!(html.contains("Allergies") && html.contains("アレルギー"));
        // Dispensing is open to a physician (read) but none is recorded.
        assert!(
            !html.contains("閲覧権限なし"),
            "a physician reads every part: {html}"
        );
    }
);

e2e!(
    the_printed_sheet_marks_what_the_caller_may_not_read,
    |app| async move {
        let s = scene(app).await;
        register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        // An EMS crew under emergency access: the emergency categories
        // (identity among them), not the care team.
        app.ok(
            &s.crew,
            OPEN,
            json!({ "i": { "patientId": s.patient, "reason": "意識レベル低下で搬送" } }),
        )
        .await;
        let (status, html, _) = print(app, Some(&s.crew), &s.patient).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("ペニシリン系抗菌薬"));
        assert!(html.contains("山田 花子"), "the sheet's contacts");
        assert!(html.contains("閲覧権限なし / not permitted"));
        assert!(html.contains(NAME), "identity is an emergency category");
        assert!(
            html.contains("救急時閲覧"),
            "the page says how it was opened"
        );
        // A care worker: the sheet and allergies, not the diagnoses.
        let (status, html, _) = print(app, Some(&s.care_worker), &s.patient).await;
        assert_eq!(status, 200);
        assert!(html.contains(NAME));
        assert!(!html.contains("高血圧症"), "{html}");
        assert!(html.contains("閲覧権限なし / not permitted"));
    }
);

e2e!(
    the_printed_sheet_is_refused_to_callers_who_may_not_read_it,
    |app| async move {
        let s = scene(app).await;
        register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        let (status, html, headers) = print(app, None, &s.patient).await;
        assert_eq!(status, 401);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert!(!html.contains(NAME));
        let (status, _, _) = print(app, Some("not-a-token"), &s.patient).await;
        assert_eq!(status, 401);
        // Not on the team, no emergency access: no such patient.
        let (status, html, headers) = print(app, Some(&s.crew), &s.patient).await;
        assert_eq!(status, 404, "{html}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            !html.contains(NAME) && !html.contains("ペニシリン"),
            "{html}"
        );
        let (status, _, _) = print(app, Some(&s.doctor), "not-an-id").await;
        assert_eq!(status, 400);
        let (status, _, _) = print(app, Some(&s.doctor), &uuid::Uuid::now_v7().to_string()).await;
        assert_eq!(status, 404);
        // On the team, but the role does not include emergency information.
        let city = app
            .organization("MUNICIPALITY", "みなみ野市 介護保険課")
            .await;
        let (_, clerk) = app.member(&city, "MUNICIPAL_STAFF").await;
        app.ok(
            &s.doctor,
            ADD,
            json!({ "i": { "patientId": s.patient, "organizationId": city, "role": "MUNICIPALITY" } }),
        )
        .await;
        let (status, html, _) = print(app, Some(&clerk), &s.patient).await;
        assert_eq!(status, 403, "{html}");
        assert!(
            !html.contains(NAME) && !html.contains("山田 花子"),
            "{html}"
        );
        // The refusal is in the audit log.
        let log = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action outcome categories detail } } } }",
                json!({ "p": s.patient }),
            )
            .await;
        assert!(
            log["auditLog"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| {
                    e["node"]["outcome"] == "DENIED"
                        && e["node"]["categories"] == json!(["EMERGENCY_INFORMATION"])
                        && e["node"]["detail"]
                            .as_str()
                            .is_some_and(|d| d.contains("emergency sheet refused"))
                }),
            "{log}"
        );
    }
);

e2e!(
    hostile_record_text_is_escaped_on_the_printed_sheet,
    |app| async move {
        let clinic = app.organization("CLINIC", "<b>クリニック</b>").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "H-1").await;
        write_records(app, &doctor, &patient, r#"<script>alert("x")</script>"#).await;
        register_sheet(app, &doctor, &patient, "<img src=x onerror=alert(1)>").await;
        let (status, html, headers) = print(app, Some(&doctor), &patient).await;
        assert_eq!(status, 200);
        // The template engine escapes with numeric character references.
        assert!(
            html.contains("&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;"),
            "{html}"
        );
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"));
        assert!(html.contains("&#60;b&#62;クリニック&#60;/b&#62;"));
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script") && !lower.contains("<img") && !lower.contains("<b>"));
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
        );
    }
);

e2e!(
    printing_leaves_an_audit_entry_and_without_one_there_is_no_page,
    |app| async move {
        let s = scene(app).await;
        register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        let (status, _, headers) = print(app, Some(&s.doctor), &s.patient).await;
        assert_eq!(status, 200);
        let request_id = headers["x-request-id"].to_str().unwrap().to_string();
        let log = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p }, first: 100) { edges { node { action outcome categories requestId } } } }",
                json!({ "p": s.patient }),
            )
            .await;
        let entry = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .find(|n| n["requestId"] == request_id.as_str() && n["action"] == "READ")
            .cloned()
            .unwrap_or_else(|| panic!("no READ entry for {request_id}: {log}"));
        let categories: Vec<&str> = entry["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for c in [
            "IDENTITY",
            "EMERGENCY_INFORMATION",
            "ALLERGIES",
            "CONDITIONS",
            "MEDICATIONS",
            "ADVANCE_CARE_PLANNING",
        ] {
            assert!(categories.contains(&c), "{c} in {categories:?}");
        }

        app.db
            .execute_unprepared("DROP TABLE audit_head")
            .await
            .unwrap();
        let (status, html, _) = print(app, Some(&s.doctor), &s.patient).await;
        assert_eq!(status, 500);
        assert!(
            !html.contains(NAME) && !html.contains("ペニシリン"),
            "{html}"
        );
    }
);

e2e!(
    diagnoses_and_medications_typed_on_the_sheet_need_write_access_to_those_categories,
    |app| async move {
        let s = scene(app).await;
        // A care manager may write the sheet but only read CONDITIONS and
        // MEDICATIONS: hand-typed diagnoses or medications would be read back
        // under those categories, so they are refused.
        let office = app
            .organization("HOME_CARE_SUPPORT_OFFICE", "こぶし居宅介護支援事業所")
            .await;
        let (_, care_manager) = app.member(&office, "CARE_MANAGER").await;
        app.ok(
            &s.doctor,
            ADD,
            json!({ "i": { "patientId": s.patient, "organizationId": office, "role": "CARE_MANAGER" } }),
        )
        .await;
        let input = |data: Value| {
            json!({ "i": { "patientId": s.patient, "sourceRecordId": "CM-EI",
                            "effectiveAt": "2026-01-21T02:00:00Z", "data": data } })
        };
        let mut data = sheet_data("山田 花子");
        let body = app.gql(&care_manager, SHEET, input(data.clone())).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("CONDITIONS"),
            "{body}"
        );
        data["diagnoses"] = json!([]);
        let body = app.gql(&care_manager, SHEET, input(data.clone())).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("MEDICATIONS"),
            "{body}"
        );
        data["medications"] = json!([]);
        let written = app.ok(&care_manager, SHEET, input(data)).await;
        assert_eq!(written["recordEmergencyInformation"]["outcome"], "CREATED");

        // The physician may; the write's audit entry names every category
        // written.
        register_sheet(app, &s.doctor, &s.patient, "山田 花子").await;
        let log = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p, action: WRITE }, first: 100) { edges { node { categories } } } }",
                json!({ "p": s.patient }),
            )
            .await;
        let edges = log["auditLog"]["edges"].as_array().unwrap();
        assert!(
            edges.iter().any(|e| e["node"]["categories"]
                == json!(["CONDITIONS", "MEDICATIONS", "EMERGENCY_INFORMATION"])),
            "{log}"
        );
    }
);

/// `reportedDiagnoses`, `reportedMedications` and the key person's name of
/// the patient's sheet as `token` reads them.
async fn reported(app: &TestApp, token: &str, patient: &str) -> (Value, Value, Value) {
    let data = app
        .ok(
            token,
            "query($id: ID!) { patient(id: $id) { emergencyInformation { reportedDiagnoses reportedMedications sheet { data { emergencyContacts { name } } } } } }",
            json!({ "id": patient }),
        )
        .await;
    let info = &data["patient"]["emergencyInformation"];
    (
        info["reportedDiagnoses"].clone(),
        info["reportedMedications"].clone(),
        info["sheet"]["data"]["emergencyContacts"][0]["name"].clone(),
    )
}

e2e!(
    a_writer_who_may_not_write_the_diagnoses_leaves_them_on_the_sheet,
    |app| async move {
        let s = scene(app).await;
        let patient = s.patient.clone();
        register_sheet(app, &s.doctor, &patient, "山田 花子").await;
        let diagnoses = json!(["慢性心不全（他院で診断）"]);
        let medications = json!(["フロセミド錠20mg 1日1回朝"]);
        // The clinic's front-desk system keeps the contacts up to date: it
        // may write the sheet, and read — not write — diagnoses and
        // medications.
        let clinic = app
            .ok(&s.doctor, "{ me { organization { id } } }", json!({}))
            .await["me"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let system = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "organizationId": clinic, "name": "受付システム", "permissions": [
                    { "category": "IDENTITY", "level": "READ" },
                    { "category": "CONDITIONS", "level": "READ" },
                    { "category": "MEDICATIONS", "level": "READ" },
                    { "category": "EMERGENCY_INFORMATION", "level": "READ_WRITE" } ] } }),
            )
            .await["createApiKey"]["secret"]
            .as_str()
            .unwrap()
            .to_string();
        let input = |contact: &str, data: Value| {
            let mut d = sheet_data(contact);
            for (k, v) in data.as_object().unwrap() {
                d[k] = v.clone();
            }
            json!({ "i": { "patientId": patient, "sourceRecordId": "EI-1",
                            "effectiveAt": "2026-01-20T02:00:00Z", "data": d } })
        };
        // It resubmits the sheet with a new key person, without the lists
        // it may not write (left out, or empty): the physician's lists stay.
        for (contact, lists) in [
            ("山田 一郎", json!({ "diagnoses": [], "medications": [] })),
            (
                "山田 二郎",
                json!({ "diagnoses": null, "medications": null }),
            ),
        ] {
            let mut i = input(contact, lists.clone());
            for k in ["diagnoses", "medications"] {
                if lists[k].is_null() {
                    i["i"]["data"].as_object_mut().unwrap().remove(k);
                }
            }
            let data = app.ok(&system, SHEET, i).await;
            assert_eq!(data["recordEmergencyInformation"]["outcome"], "UPDATED");
            assert_eq!(
                reported(app, &s.doctor, &patient).await,
                (diagnoses.clone(), medications.clone(), json!(contact)),
                "{contact}"
            );
            // The system reads back what it may read: the lists too.
            assert_eq!(
                reported(app, &system, &patient).await,
                (diagnoses.clone(), medications.clone(), json!(contact))
            );
        }
        // Sent again, the same: nothing changed.
        let data = app
            .ok(
                &system,
                SHEET,
                input("山田 二郎", json!({ "diagnoses": [], "medications": [] })),
            )
            .await;
        assert_eq!(data["recordEmergencyInformation"]["outcome"], "UNCHANGED");
        // Changing them is still refused, and changes nothing.
        let body = app
            .gql(
                &system,
                SHEET,
                input(
                    "山田 三郎",
                    json!({ "diagnoses": ["高血圧症"], "medications": [] }),
                ),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert_eq!(
            reported(app, &s.doctor, &patient).await,
            (diagnoses.clone(), medications.clone(), json!("山田 二郎"))
        );
        // The system's writes are audited as writes of the sheet alone: the
        // lists it carried are not its writing.
        let log = app
            .ok(
                &app.admin_token,
                "query($p: ID!) { auditLog(filter: { patientId: $p, action: WRITE }, first: 100) { edges { node { actorKind categories } } } }",
                json!({ "p": patient }),
            )
            .await;
        let by_system: Vec<&Value> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["actorKind"] == "SYSTEM")
            .map(|e| &e["node"]["categories"])
            .collect();
        assert_eq!(by_system.len(), 3, "{log}");
        assert!(
            by_system
                .iter()
                .all(|c| **c == json!(["EMERGENCY_INFORMATION"])),
            "{log}"
        );

        // A care manager of another office registers a sheet of its own (the
        // newest of the patient's): the lists of the sheet it replaces in
        // the composed read are carried into it.
        let office = app
            .organization("HOME_CARE_SUPPORT_OFFICE", "こぶし居宅介護支援事業所")
            .await;
        let (_, care_manager) = app.member(&office, "CARE_MANAGER").await;
        app.ok(
            &s.doctor,
            ADD,
            json!({ "i": { "patientId": patient, "organizationId": office, "role": "CARE_MANAGER" } }),
        )
        .await;
        let mut own = sheet_data("山田 四郎");
        own["diagnoses"] = json!([]);
        own["medications"] = json!([]);
        let data = app
            .ok(
                &care_manager,
                SHEET,
                json!({ "i": { "patientId": patient, "sourceRecordId": "CM-EI",
                                "effectiveAt": "2026-02-01T02:00:00Z", "data": own } }),
            )
            .await;
        assert_eq!(data["recordEmergencyInformation"]["outcome"], "CREATED");
        assert_eq!(
            reported(app, &s.doctor, &patient).await,
            (diagnoses.clone(), medications.clone(), json!("山田 四郎"))
        );

        // The physician may write the lists: an empty list from the
        // physician empties them.
        let mut cleared = sheet_data("山田 四郎");
        cleared["diagnoses"] = json!([]);
        app.ok(
            &s.doctor,
            SHEET,
            json!({ "i": { "patientId": patient, "sourceRecordId": "EI-2",
                            "effectiveAt": "2026-02-02T02:00:00Z", "data": cleared } }),
        )
        .await;
        assert_eq!(
            reported(app, &s.doctor, &patient).await,
            (json!([]), medications.clone(), json!("山田 四郎"))
        );
    }
);
