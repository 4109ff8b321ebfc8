//! Admission and discharge support (入退院支援): the admission information
//! sheet, the discharge notice with its lead time, the discharge conference,
//! and the lead-time report — each under the policy, audited and notified.

use chrono::{Days, NaiveDate};
use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};

const ADD_MEMBER: &str =
    "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { index } }";

const CONTENT: &str = "content { careCertification { level validTo } services { serviceType provider frequency } adlAssessment { excretion walking note } familyCareCapacity { capacity keyPersonName keyPersonRelationship } homeEnvironment { housingType livesAlone barriers } cautions wishes note }";

fn create_sheet() -> String {
    format!(
        "mutation($i: CreateAdmissionSheetInput!) {{ createAdmissionSheet(input: $i) {{ id status admittedOn omittedCategories prefilledFrom {{ category kind recordId }} {CONTENT} }} }}"
    )
}
const CREATE_SHEET_BARE: &str = "mutation($i: CreateAdmissionSheetInput!) { createAdmissionSheet(input: $i) { id status omittedCategories prefilledFrom { category kind } } }";
const UPDATE_SHEET: &str = "mutation($i: UpdateAdmissionSheetInput!) { updateAdmissionSheet(input: $i) { id status content { cautions wishes note adlAssessment { walking } services { serviceType } } } }";
const SEND_SHEET: &str = "mutation($id: ID!) { sendAdmissionSheet(id: $id) { id status sentAt sentBy { id } daysFromAdmissionToSent } }";
const ACK_SHEET: &str = "mutation($id: ID!) { acknowledgeAdmissionSheet(id: $id) { id status receivedAt receivedBy { id } } }";
const SEND_NOTICE: &str = "mutation($i: SendDischargeNoticeInput!) { sendDischargeNotice(input: $i) { id status admittedOn plannedDischargeOn actualDischargeOn dischargeOn notifiedAt notifiedOn leadTimeDays leadTimeBucket needsAtHome criteria needsCoordination admissionSheetId version hospital { id } } }";
const UPDATE_NOTICE: &str = "mutation($i: UpdateDischargeNoticeInput!) { updateDischargeNotice(input: $i) { id status plannedDischargeOn notifiedAt notifiedOn leadTimeDays leadTimeBucket needsAtHome criteria version history { version status plannedDischargeOn needsAtHome criteria author { id } } } }";
const RECORD_DISCHARGE: &str = "mutation($i: RecordDischargeInput!) { recordDischarge(input: $i) { id status plannedDischargeOn actualDischargeOn dischargeOn leadTimeDays leadTimeBucket version } }";
const CANCEL_NOTICE: &str =
    "mutation($id: ID!) { cancelDischargeNotice(id: $id) { id status version } }";
const PROPOSE: &str = "mutation($i: ProposeDischargeConferenceInput!) { proposeDischargeConference(input: $i) { id status startsAt place online note dischargeNoticeId organizer { id } invitations { organization { id } response } } }";
const ANSWER: &str = "mutation($i: AnswerDischargeConferenceInput!) { answerDischargeConference(input: $i) { id invitations { organization { id } response respondedBy { id } respondedAt comment } myInvitation { response comment } } }";
const CANCEL_CONFERENCE: &str =
    "mutation($id: ID!) { cancelDischargeConference(id: $id) { id status } }";
const REPORT: &str = "query($from: Date!, $to: Date!, $h: ID) { dischargeLeadTimeReport(from: $from, to: $to, hospitalId: $h) { from to hospital { id } total atLeastFiveDays measuredOnActualDay admissionsReported admissionsWithDischargeNotice dischargeNoticeRate buckets { bucket label minDays maxDays count share } } }";

/// The region of one patient at home: a care office (care manager) that
/// registered the patient, with consent; on the team a hospital (MSW, nurse,
/// pharmacist), a clinic (physician), a pharmacy (pharmacist) and a helper
/// station (care worker). Another hospital is not on the team.
struct Scene {
    patient: String,
    care_office: String,
    care_manager: String,
    care_manager_id: String,
    hospital: String,
    msw: String,
    msw_id: String,
    hospital_nurse: String,
    hospital_pharmacist: String,
    clinic: String,
    doctor: String,
    doctor_id: String,
    pharmacy: String,
    pharmacist: String,
    pharmacist_id: String,
    helpers: String,
    care_worker: String,
    care_worker_id: String,
    other_hospital: String,
    other_msw: String,
}

async fn scene(app: &TestApp) -> Scene {
    let care_office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "みなみ野居宅介護支援事業所")
        .await;
    let (care_manager_id, care_manager) = app.member(&care_office, "CARE_MANAGER").await;
    let patient = app.patient(&care_manager, "CM-0001").await;
    let hospital = app.organization("HOSPITAL", "みなみ野市立病院").await;
    let (msw_id, msw) = app.member(&hospital, "MEDICAL_SOCIAL_WORKER").await;
    let (_, hospital_nurse) = app.member(&hospital, "NURSE").await;
    let (_, hospital_pharmacist) = app.member(&hospital, "PHARMACIST").await;
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (doctor_id, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let pharmacy = app.organization("PHARMACY", "さくら調剤薬局").await;
    let (pharmacist_id, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    let helpers = app
        .organization("CARE_SERVICE_PROVIDER", "ひまわりヘルパーステーション")
        .await;
    let (care_worker_id, care_worker) = app.member(&helpers, "CARE_WORKER").await;
    for (org, role) in [
        (&hospital, "HOSPITAL"),
        (&clinic, "PRIMARY_PHYSICIAN"),
        (&pharmacy, "PHARMACY"),
        (&helpers, "CARE_SERVICE"),
    ] {
        join(app, &care_manager, &patient, org, role).await;
    }
    let other_hospital = app.organization("HOSPITAL", "北川町立病院").await;
    let (_, other_msw) = app.member(&other_hospital, "MEDICAL_SOCIAL_WORKER").await;
    Scene {
        patient,
        care_office,
        care_manager,
        care_manager_id,
        hospital,
        msw,
        msw_id,
        hospital_nurse,
        hospital_pharmacist,
        clinic,
        doctor,
        doctor_id,
        pharmacy,
        pharmacist,
        pharmacist_id,
        helpers,
        care_worker,
        care_worker_id,
        other_hospital,
        other_msw,
    }
}

async fn join(app: &TestApp, token: &str, patient: &str, org: &str, role: &str) {
    app.ok(
        token,
        ADD_MEMBER,
        json!({ "i": { "patientId": patient, "organizationId": org, "role": role } }),
    )
    .await;
}

fn today(app: &TestApp) -> NaiveDate {
    app.clock.today()
}

fn day(app: &TestApp, offset: i64) -> String {
    let t = today(app);
    let d = if offset >= 0 {
        t + Days::new(offset as u64)
    } else {
        t - Days::new(offset.unsigned_abs())
    };
    d.to_string()
}

/// The care manager's records of the patient: what the prefill draws from.
/// An older ADL assessment shows that the latest one is taken.
async fn write_home_records(app: &TestApp, s: &Scene) {
    let p = &s.patient;
    let record = |at: &str, data: Value| json!({ "patientId": p, "effectiveAt": at, "data": data });
    app.ok(
        &s.care_manager,
        WRITE,
        json!({ "i": { "records": [
            record("2026-01-05T00:00:00Z", json!({ "careCertification": { "level": "CARE_2", "validFrom": "2025-10-01", "validTo": "2027-09-30", "insurerNumber": "012211" } })),
            record("2026-01-06T00:00:00Z", json!({ "carePlan": { "longTermGoals": "自宅での生活を続ける", "shortTermGoals": "転倒せずに屋内を歩く", "services": [
                { "serviceType": "訪問介護", "provider": "ひまわりヘルパーステーション", "frequency": "週3回" },
                { "serviceType": "通所介護", "provider": "デイサービスみなみ", "frequency": "週2回" } ] } })),
            record("2026-01-07T00:00:00Z", json!({ "serviceUse": { "serviceType": "通所介護", "provider": "デイサービスみなみ", "frequency": "週2回", "startDate": "2025-04-01" } })),
            record("2026-01-08T00:00:00Z", json!({ "serviceUse": { "serviceType": "福祉用具貸与", "provider": "みなみ野福祉用具", "startDate": "2025-06-01" } })),
            record("2026-01-09T00:00:00Z", json!({ "serviceUse": { "serviceType": "短期入所", "provider": "特養みなみ", "startDate": "2025-01-01", "endDate": "2025-03-31" } })),
            record("2025-06-01T00:00:00Z", json!({ "adlAssessment": { "walking": "INDEPENDENT", "note": "古い評価" } })),
            record("2026-01-10T00:00:00Z", json!({ "adlAssessment": { "excretion": "PARTIAL_ASSISTANCE", "walking": "SUPERVISION", "note": "杖歩行" } })),
            record("2026-01-11T00:00:00Z", json!({ "familyCareCapacity": { "capacity": "LIMITED", "keyPersonName": "連携 一郎", "keyPersonRelationship": "長男", "keyPersonPhone": "0157-23-4567" } })),
            record("2026-01-12T00:00:00Z", json!({ "homeEnvironment": { "housingType": "DETACHED_HOUSE", "livesAlone": false, "barriers": "玄関に段差" } })),
        ] } }),
    )
    .await;
}

async fn new_sheet(app: &TestApp, s: &Scene, extra: Value) -> Value {
    let mut input =
        json!({ "patientId": s.patient, "hospitalId": s.hospital, "admittedOn": day(app, -1) });
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    app.ok(&s.care_manager, &create_sheet(), json!({ "i": input }))
        .await["createAdmissionSheet"]
        .clone()
}

async fn sent_sheet(app: &TestApp, s: &Scene) -> String {
    let sheet = new_sheet(app, s, json!({})).await;
    let id = sheet["id"].as_str().unwrap().to_string();
    app.ok(&s.care_manager, SEND_SHEET, json!({ "id": id }))
        .await;
    id
}

async fn notifications(app: &TestApp, token: &str) -> Vec<Value> {
    app.ok(
        token,
        "{ notifications(first: 100) { kind patientId subjectId message } }",
        json!({}),
    )
    .await["notifications"]
        .as_array()
        .unwrap()
        .clone()
}

fn kinds_about(notes: &[Value], subject: &str) -> Vec<String> {
    notes
        .iter()
        .filter(|n| n["subjectId"] == subject)
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

fn code(body: &Value) -> String {
    error_code(body).unwrap_or_else(|| format!("no error: {body}"))
}

fn field(body: &Value) -> String {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn audit_of(app: &TestApp, filter: Value) -> Vec<Value> {
    app.ok(
        &app.admin_token,
        "query($f: AuditLogFilterInput) { auditLog(filter: $f, first: 100) { edges { node { action categories patientId actorId outcome detail } } } }",
        json!({ "f": filter }),
    )
    .await["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn categories(entry: &Value) -> Vec<&str> {
    entry["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// The admission information sheet.

e2e!(
    the_care_manager_sends_a_prefilled_admission_sheet_and_the_hospital_acknowledges_it,
    |app| async move {
        let s = scene(app).await;
        write_home_records(app, &s).await;
        let sheet = new_sheet(app, &s, json!({})).await;
        let id = sheet["id"].as_str().unwrap().to_string();
        assert_eq!(sheet["status"], "DRAFT");
        assert_eq!(sheet["omittedCategories"], json!([]));
        let c = &sheet["content"];
        assert_eq!(c["careCertification"]["level"], "CARE_2");
        assert_eq!(
            c["adlAssessment"],
            json!({ "excretion": "PARTIAL_ASSISTANCE", "walking": "SUPERVISION", "note": "杖歩行" }),
            "the latest ADL assessment"
        );
        assert_eq!(c["familyCareCapacity"]["keyPersonRelationship"], "長男");
        assert_eq!(c["homeEnvironment"]["barriers"], "玄関に段差");
        // The care plan's services and the service-use records in force,
        // each once; the short stay that ended is not in use any more.
        assert_eq!(
            c["services"],
            json!([
                { "serviceType": "訪問介護", "provider": "ひまわりヘルパーステーション", "frequency": "週3回" },
                { "serviceType": "通所介護", "provider": "デイサービスみなみ", "frequency": "週2回" },
                { "serviceType": "福祉用具貸与", "provider": "みなみ野福祉用具", "frequency": null },
            ])
        );
        assert_eq!(c["cautions"], Value::Null);
        let mut kinds: Vec<&str> = sheet["prefilledFrom"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["kind"].as_str().unwrap())
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "ADL_ASSESSMENT",
                "CARE_CERTIFICATION",
                "CARE_PLAN",
                "FAMILY_CARE_CAPACITY",
                "HOME_ENVIRONMENT",
                "SERVICE_USE",
                "SERVICE_USE"
            ]
        );

        // A draft is the care office's alone.
        let sheets = "query($id: ID!) { patient(id: $id) { admissionSheets { id status } } }";
        let data = app.ok(&s.msw, sheets, json!({ "id": s.patient })).await;
        assert_eq!(data["patient"]["admissionSheets"], json!([]));

        // Edited before sending: a caution, the wishes, a corrected ADL item.
        let data = app
            .ok(
                &s.care_manager,
                UPDATE_SHEET,
                json!({ "i": { "sheetId": id, "content": {
                    "cautions": "夜間せん妄の既往あり",
                    "wishes": "本人は自宅退院を希望、長男も同意",
                    "adlAssessment": { "excretion": "PARTIAL_ASSISTANCE", "walking": "PARTIAL_ASSISTANCE", "note": "入院前1週間で歩行が低下" },
                    "note": null
                } } }),
            )
            .await;
        let c = &data["updateAdmissionSheet"]["content"];
        assert_eq!(c["cautions"], "夜間せん妄の既往あり");
        assert_eq!(c["adlAssessment"]["walking"], "PARTIAL_ASSISTANCE");
        assert_eq!(c["services"].as_array().unwrap().len(), 3, "kept");

        let data = app
            .ok(&s.care_manager, SEND_SHEET, json!({ "id": id }))
            .await;
        let sent = &data["sendAdmissionSheet"];
        assert_eq!(sent["status"], "SENT");
        assert_eq!(sent["sentBy"]["id"], s.care_manager_id.as_str());
        assert_eq!(sent["daysFromAdmissionToSent"], 1);

        // The hospital is told, nobody else.
        assert_eq!(
            kinds_about(&notifications(app, &s.msw).await, &id),
            ["ADMISSION_SHEET_SENT"]
        );
        for token in [&s.doctor, &s.pharmacist, &s.care_worker, &s.other_msw] {
            assert!(kinds_about(&notifications(app, token).await, &id).is_empty());
        }
        let note = &notifications(app, &s.msw).await[0];
        assert_eq!(note["patientId"], s.patient.as_str());
        assert!(!note["message"].as_str().unwrap().contains("せん妄"));

        // The hospital's inbox and the patient's sheets.
        let inbox = app
            .ok(
                &s.msw,
                "{ admissionSheetsReceived { edges { node { id status hospital { id } authorOrganization { id } content { cautions wishes } patient { id } } } } }",
                json!({}),
            )
            .await;
        let edges = inbox["admissionSheetsReceived"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(edges.len(), 1);
        let node = &edges[0]["node"];
        assert_eq!(node["id"], id.as_str());
        assert_eq!(node["authorOrganization"]["id"], s.care_office.as_str());
        assert_eq!(
            node["content"]["wishes"],
            "本人は自宅退院を希望、長男も同意"
        );
        assert_eq!(node["patient"]["id"], s.patient.as_str());

        let data = app.ok(&s.msw, ACK_SHEET, json!({ "id": id })).await;
        let received = &data["acknowledgeAdmissionSheet"];
        assert_eq!(received["status"], "RECEIVED");
        assert_eq!(received["receivedBy"]["id"], s.msw_id.as_str());
        assert_eq!(
            kinds_about(&notifications(app, &s.care_manager).await, &id),
            ["ADMISSION_SHEET_RECEIVED"]
        );
        let data = app.ok(&s.msw, sheets, json!({ "id": s.patient })).await;
        assert_eq!(
            data["patient"]["admissionSheets"],
            json!([{ "id": id, "status": "RECEIVED" }])
        );
        // Filters of the inbox.
        let data = app
            .ok(
                &s.msw,
                "{ admissionSheetsReceived(status: [SENT]) { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["admissionSheetsReceived"]["edges"], json!([]));
    }
);

e2e!(
    the_prefill_omits_categories_the_author_may_not_read_and_audits_what_it_read,
    |app| async move {
        let s = scene(app).await;
        write_home_records(app, &s).await;
        // The patient's consent now excludes ADL and the family's capacity.
        app.consent(
            &s.care_manager,
            &s.patient,
            json!({ "excludedCategories": ["ADL", "FAMILY_CARE_CAPACITY"] }),
        )
        .await;
        let data = app
            .ok(
                &s.care_manager,
                CREATE_SHEET_BARE,
                json!({ "i": { "patientId": s.patient, "hospitalId": s.hospital, "admittedOn": day(app, 0) } }),
            )
            .await;
        let sheet = &data["createAdmissionSheet"];
        let id = sheet["id"].as_str().unwrap().to_string();
        assert_eq!(
            sheet["omittedCategories"],
            json!(["ADL", "FAMILY_CARE_CAPACITY"])
        );
        let drawn: Vec<&str> = sheet["prefilledFrom"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["category"].as_str().unwrap())
            .collect();
        assert!(!drawn.contains(&"ADL") && !drawn.contains(&"FAMILY_CARE_CAPACITY"));
        assert!(drawn.contains(&"HOME_ENVIRONMENT") && drawn.contains(&"CARE_CERTIFICATION"));

        // The sections are empty, and say why when read.
        let body = app
            .gql(
                &s.care_manager,
                "query($id: ID!) { patient(id: $id) { admissionSheets { content { adlAssessment { walking } homeEnvironment { barriers } } } } }",
                json!({ "id": s.patient }),
            )
            .await;
        let content = &body["data"]["patient"]["admissionSheets"][0]["content"];
        assert!(content["adlAssessment"].is_null());
        assert_eq!(content["homeEnvironment"]["barriers"], "玄関に段差");
        let errors = body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["extensions"]["category"], "ADL");
        assert_eq!(errors[0]["extensions"]["reason"], "EXCLUDED_BY_CONSENT");

        // Nor can the author type such a section in by hand.
        let body = app
            .gql(
                &s.care_manager,
                UPDATE_SHEET,
                json!({ "i": { "sheetId": id, "content": { "familyCareCapacity": { "capacity": "NONE" } } } }),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN");

        // The create request read the categories it drew from, and wrote
        // the sheet with those it holds — never ADL.
        let entries = audit_of(
            app,
            json!({ "patientId": s.patient, "actorId": s.care_manager_id }),
        )
        .await;
        let read = entries
            .iter()
            .find(|e| e["action"] == "READ" && categories(e).contains(&"CARE_CERTIFICATION"))
            .expect("the prefill's read is audited");
        assert_eq!(
            categories(read),
            ["CARE_CERTIFICATION", "CARE_PLAN", "HOME_ENVIRONMENT"]
        );
        let write = entries
            .iter()
            .find(|e| e["action"] == "WRITE" && categories(e).contains(&"ADMISSION_DISCHARGE"))
            .expect("the write is audited");
        assert_eq!(
            categories(write),
            [
                "CARE_CERTIFICATION",
                "CARE_PLAN",
                "HOME_ENVIRONMENT",
                "ADMISSION_DISCHARGE"
            ]
        );
        assert!(
            entries
                .iter()
                .all(|e| e["action"] != "READ" || !categories(e).contains(&"ADL"))
        );
    }
);

e2e!(
    each_section_of_a_sheet_is_read_under_its_own_category,
    |app| async move {
        let s = scene(app).await;
        write_home_records(app, &s).await;
        sent_sheet(app, &s).await;
        let query = "query($id: ID!) { patient(id: $id) { admissionSheets { status content { adlAssessment { walking } homeEnvironment { barriers } familyCareCapacity { capacity } services { serviceType } } } } }";
        // A pharmacist reads ADMISSION_DISCHARGE and ADL, but not the home
        // or the family's capacity: those sections stay closed to them.
        let body = app
            .gql(&s.pharmacist, query, json!({ "id": s.patient }))
            .await;
        let sheet = &body["data"]["patient"]["admissionSheets"][0];
        assert_eq!(sheet["status"], "SENT");
        assert_eq!(sheet["content"]["adlAssessment"]["walking"], "SUPERVISION");
        assert_eq!(sheet["content"]["services"].as_array().unwrap().len(), 3);
        assert!(sheet["content"]["homeEnvironment"].is_null());
        assert!(sheet["content"]["familyCareCapacity"].is_null());
        let mut closed: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["extensions"]["category"].as_str().unwrap())
            .collect();
        closed.sort();
        assert_eq!(closed, ["FAMILY_CARE_CAPACITY", "HOME_ENVIRONMENT"]);
        // A care worker reads the sheet and all its sections.
        let data = app
            .ok(&s.care_worker, query, json!({ "id": s.patient }))
            .await;
        let sheet = &data["patient"]["admissionSheets"][0];
        assert_eq!(
            sheet["content"]["familyCareCapacity"]["capacity"],
            "LIMITED"
        );
        assert_eq!(
            sheet["content"]["homeEnvironment"]["barriers"],
            "玄関に段差"
        );
    }
);

e2e!(
    reading_where_a_sheet_was_prefilled_from_is_audited_as_a_read_of_those_categories,
    |app| async move {
        let s = scene(app).await;
        write_home_records(app, &s).await;
        sent_sheet(app, &s).await;
        // Only the sources: no section of the content is asked for. A
        // source names a record (id, kind, time) of its category.
        let data = app
            .ok(
                &s.pharmacist,
                "query($id: ID!) { patient(id: $id) { admissionSheets { prefilledFrom { category kind recordId } } } }",
                json!({ "id": s.patient }),
            )
            .await;
        let mut shown: Vec<&str> = data["patient"]["admissionSheets"][0]["prefilledFrom"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["category"].as_str().unwrap())
            .collect();
        shown.sort();
        shown.dedup();
        // The pharmacist reads ADL and the care plan, not the home or the
        // family's capacity: those sources are left out.
        assert!(
            shown.contains(&"ADL") && shown.contains(&"CARE_PLAN"),
            "{shown:?}"
        );
        assert!(!shown.contains(&"HOME_ENVIRONMENT") && !shown.contains(&"FAMILY_CARE_CAPACITY"));

        let entries = audit_of(
            app,
            json!({ "patientId": s.patient, "actorId": s.pharmacist_id }),
        )
        .await;
        let reads: Vec<&Value> = entries.iter().filter(|e| e["action"] == "READ").collect();
        assert_eq!(reads.len(), 1, "{entries:?}");
        let mut read = categories(reads[0]);
        read.sort();
        let mut expected = shown.clone();
        expected.push("ADMISSION_DISCHARGE");
        expected.sort();
        assert_eq!(
            read, expected,
            "the sheet and the categories of its sources"
        );
        // Sources the pharmacist may not read are left out quietly, as in a
        // list of records: no denial.
        assert!(
            entries.iter().all(|e| e["action"] != "DENIED"),
            "{entries:?}"
        );
    }
);

e2e!(
    only_a_draft_can_be_changed_or_sent_and_only_a_sent_sheet_acknowledged,
    |app| async move {
        let s = scene(app).await;
        let sheet = new_sheet(app, &s, json!({ "prefill": false })).await;
        let id = sheet["id"].as_str().unwrap().to_string();
        // The hospital cannot see (so cannot acknowledge) a draft.
        let body = app.gql(&s.msw, ACK_SHEET, json!({ "id": id })).await;
        assert_eq!(code(&body), "NOT_FOUND");
        // Another organisation of the team cannot send or change it either.
        let body = app.gql(&s.doctor, SEND_SHEET, json!({ "id": id })).await;
        assert_eq!(code(&body), "NOT_FOUND");

        app.ok(&s.care_manager, SEND_SHEET, json!({ "id": id }))
            .await;
        let body = app
            .gql(&s.care_manager, SEND_SHEET, json!({ "id": id }))
            .await;
        assert_eq!(code(&body), "CONFLICT");
        let body = app
            .gql(
                &s.care_manager,
                UPDATE_SHEET,
                json!({ "i": { "sheetId": id, "content": { "cautions": "追記" } } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        // Once sent the team sees it, but only the author changes it …
        let body = app
            .gql(
                &s.doctor,
                UPDATE_SHEET,
                json!({ "i": { "sheetId": id, "content": { "cautions": "追記" } } }),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN");
        // … and only the hospital acknowledges it, with write access.
        let body = app
            .gql(&s.care_manager, ACK_SHEET, json!({ "id": id }))
            .await;
        assert_eq!(code(&body), "FORBIDDEN");
        // Each refusal of another organisation's act is in the log, as a
        // denial naming the patient.
        let denied: Vec<Value> = audit_of(
            app,
            json!({ "patientId": s.patient, "actorId": s.care_manager_id, "action": "DENIED" }),
        )
        .await;
        assert_eq!(denied.len(), 1, "{denied:?}");
        assert_eq!(categories(&denied[0]), ["ADMISSION_DISCHARGE"]);
        assert!(
            denied[0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("only the hospital")),
            "{denied:?}"
        );
        let body = app
            .gql(&s.hospital_pharmacist, ACK_SHEET, json!({ "id": id }))
            .await;
        assert_eq!(
            code(&body),
            "FORBIDDEN",
            "a pharmacist reads, does not write"
        );
        app.ok(&s.hospital_nurse, ACK_SHEET, json!({ "id": id }))
            .await;
        let body = app.gql(&s.msw, ACK_SHEET, json!({ "id": id })).await;
        assert_eq!(code(&body), "CONFLICT");
        // Organisations outside the team do not know the sheet exists.
        let body = app.gql(&s.other_msw, ACK_SHEET, json!({ "id": id })).await;
        assert_eq!(code(&body), "NOT_FOUND");
    }
);

e2e!(
    the_receiving_hospital_must_be_on_the_care_team_and_covered_by_consent,
    |app| async move {
        let s = scene(app).await;
        let input = |hospital: &str| json!({ "i": { "patientId": s.patient, "hospitalId": hospital, "admittedOn": day(app, 0) } });
        let body = app
            .gql(&s.care_manager, CREATE_SHEET_BARE, input(&s.other_hospital))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        assert_eq!(field(&body), "input.hospitalId");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("addCareTeamMember")
        );
        let body = app
            .gql(&s.care_manager, CREATE_SHEET_BARE, input(&s.pharmacy))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "a pharmacy admits no one");
        let body = app
            .gql(&s.care_manager, CREATE_SHEET_BARE, input(&s.care_office))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        // A refused sheet reads nothing for its prefill.
        let reads = audit_of(
            app,
            json!({ "actorId": s.care_manager_id, "action": "READ" }),
        )
        .await;
        assert!(
            reads
                .iter()
                .all(|e| !categories(e).contains(&"CARE_CERTIFICATION")),
            "{reads:?}"
        );

        // Added to the team, the other hospital can receive sheets.
        join(
            app,
            &s.care_manager,
            &s.patient,
            &s.other_hospital,
            "HOSPITAL",
        )
        .await;
        let draft = app
            .ok(&s.care_manager, CREATE_SHEET_BARE, input(&s.other_hospital))
            .await["createAdmissionSheet"]["id"]
            .clone();
        // A consent for listed organisations that leaves it out: the
        // hospital could not read the sheet, so it is not sent.
        app.consent(
            &s.care_manager,
            &s.patient,
            json!({ "scope": "ORGANIZATIONS", "organizationIds": [s.care_office, s.hospital] }),
        )
        .await;
        let body = app
            .gql(&s.care_manager, SEND_SHEET, json!({ "id": draft }))
            .await;
        assert_eq!(code(&body), "CONFLICT", "{body}");
        let body = app
            .gql(&s.care_manager, CREATE_SHEET_BARE, input(&s.other_hospital))
            .await;
        assert_eq!(code(&body), "CONFLICT");
        app.ok(&s.care_manager, CREATE_SHEET_BARE, input(&s.hospital))
            .await;
    }
);

e2e!(
    admission_sheets_follow_the_matrix_consent_and_the_care_team,
    |app| async move {
        let s = scene(app).await;
        let create = |token: &str| {
            let token = token.to_string();
            let input = json!({ "i": { "patientId": s.patient, "hospitalId": s.hospital, "admittedOn": day(app, 0) } });
            async move { app.gql(&token, CREATE_SHEET_BARE, input).await }
        };
        // Read-only professions may not write one.
        for token in [&s.pharmacist, &s.care_worker] {
            assert_eq!(code(&create(token).await), "FORBIDDEN");
        }
        // A physician of the team may.
        assert!(create(&s.doctor).await.get("errors").is_none());
        // An organisation not on the team does not know the patient.
        assert_eq!(code(&create(&s.other_msw).await), "NOT_FOUND");
        let sheets = "query($id: ID!) { patient(id: $id) { admissionSheets { id } } }";
        let body = app
            .gql(&s.other_msw, sheets, json!({ "id": s.patient }))
            .await;
        assert_eq!(code(&body), "NOT_FOUND");
        // A care worker reads the team's sheets.
        sent_sheet(app, &s).await;
        let data = app
            .ok(&s.care_worker, sheets, json!({ "id": s.patient }))
            .await;
        assert_eq!(
            data["patient"]["admissionSheets"].as_array().unwrap().len(),
            1
        );
        // A patient who withdrew consent: nothing is read or written.
        app.ok(
            &s.care_manager,
            "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient, "reason": "本人の申し出" } }),
        )
        .await;
        assert_eq!(code(&create(&s.care_manager).await), "FORBIDDEN");
        let body = app
            .gql(&s.care_manager, sheets, json!({ "id": s.patient }))
            .await;
        assert!(body["data"]["patient"]["admissionSheets"].is_null());
        assert_eq!(
            errors_at(&body, &["patient", "admissionSheets"])[0]["reason"],
            "NO_CONSENT"
        );
        let data = app
            .ok(
                &s.msw,
                "{ admissionSheetsReceived { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["admissionSheetsReceived"]["edges"], json!([]));
    }
);

e2e!(admission_sheet_input_is_validated, |app| async move {
    let s = scene(app).await;
    let cases = [
        (json!({ "admittedOn": day(app, 45) }), "input.admittedOn"),
        (json!({ "admittedOn": "2019-01-01" }), "input.admittedOn"),
        (json!({ "patientId": "nope" }), "input.patientId"),
        (json!({ "hospitalId": "nope" }), "input.hospitalId"),
        (
            json!({ "content": { "services": [{ "serviceType": "訪問介護" }, { "serviceType": "  " }] } }),
            "input.content.services[1].serviceType",
        ),
        (
            json!({ "content": { "adlAssessment": { "note": "評価なし" } } }),
            "input.content.adlAssessment.eating",
        ),
        (
            json!({ "content": { "careCertification": { "level": "CARE_1", "validFrom": "2026-04-01", "validTo": "2025-04-01" } } }),
            "input.content.careCertification.validTo",
        ),
        (
            json!({ "content": { "familyCareCapacity": { "capacity": "LIMITED", "keyPersonPhone": "123" } } }),
            "input.content.familyCareCapacity.keyPersonPhone",
        ),
        (
            json!({ "content": { "cautions": " " } }),
            "input.content.cautions",
        ),
        (
            json!({ "content": { "wishes": "a\u{0007}b" } }),
            "input.content.wishes",
        ),
    ];
    for (extra, expected) in cases {
        let mut input =
            json!({ "patientId": s.patient, "hospitalId": s.hospital, "admittedOn": day(app, 0) });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        let body = app
            .gql(&s.care_manager, CREATE_SHEET_BARE, json!({ "i": input }))
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{extra}: {body}");
        assert_eq!(field(&body), expected, "{extra}");
    }
    // A planned admission may be reported ahead of the day.
    let data = app
        .ok(
            &s.care_manager,
            CREATE_SHEET_BARE,
            json!({ "i": { "patientId": s.patient, "hospitalId": s.hospital, "admittedOn": day(app, 7) } }),
        )
        .await;
    assert_eq!(data["createAdmissionSheet"]["status"], "DRAFT");
});

// ---------------------------------------------------------------------------
// The discharge notice.

fn notice_input(s: &Scene, admitted: &str, planned: &str) -> Value {
    json!({ "i": {
        "patientId": s.patient, "admittedOn": admitted, "plannedDischargeOn": planned,
        "needsAtHome": "介護ベッドと車椅子の手配、訪問看護によるインスリン管理",
        "criteria": ["INSULIN", "ADL_DECLINED", "INSULIN"],
    } })
}

e2e!(
    a_hospital_sends_a_discharge_notice_and_every_other_organisation_of_the_team_is_notified,
    |app| async move {
        let s = scene(app).await;
        let sheet = sent_sheet(app, &s).await;
        let mut input = notice_input(&s, "2000-01-01", &day(app, 6));
        input["i"]["admittedOn"] = Value::Null;
        input["i"]["admissionSheetId"] = json!(sheet);
        let data = app.ok(&s.msw, SEND_NOTICE, input).await;
        let n = &data["sendDischargeNotice"];
        let id = n["id"].as_str().unwrap().to_string();
        assert_eq!(n["status"], "NOTIFIED");
        assert_eq!(n["admittedOn"], day(app, -1), "from the sheet");
        assert_eq!(n["admissionSheetId"], sheet.as_str());
        assert_eq!(n["notifiedOn"], today(app).to_string());
        assert_eq!(n["leadTimeDays"], 6);
        assert_eq!(n["leadTimeBucket"], "FIVE_TO_SEVEN_DAYS");
        assert_eq!(n["dischargeOn"], n["plannedDischargeOn"]);
        assert_eq!(n["criteria"], json!(["ADL_DECLINED", "INSULIN"]));
        assert_eq!(n["needsCoordination"], true);
        assert_eq!(n["hospital"]["id"], s.hospital.as_str());

        for token in [&s.care_manager, &s.doctor, &s.pharmacist, &s.care_worker] {
            let kinds = kinds_about(&notifications(app, token).await, &id);
            assert_eq!(kinds, ["DISCHARGE_NOTICE"]);
        }
        for token in [&s.msw, &s.other_msw] {
            assert!(kinds_about(&notifications(app, token).await, &id).is_empty());
        }
        let note = notifications(app, &s.care_manager)
            .await
            .into_iter()
            .find(|n| n["subjectId"] == id.as_str())
            .unwrap();
        assert!(!note["message"].as_str().unwrap().contains("インスリン"));

        // The team reads it through the patient and in its list.
        let query = "query($id: ID!) { patient(id: $id) { dischargeNotices { id needsAtHome } } }";
        let data = app
            .ok(&s.care_worker, query, json!({ "id": s.patient }))
            .await;
        assert_eq!(data["patient"]["dischargeNotices"][0]["id"], id.as_str());
        let data = app
            .ok(
                &s.care_manager,
                "{ careTeamDischargeNotices(status: [NOTIFIED]) { edges { node { id patient { id } hospital { name } } } } }",
                json!({}),
            )
            .await;
        let edges = data["careTeamDischargeNotices"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(edges.len(), 1);
        assert_eq!(edges[0]["node"]["patient"]["id"], s.patient.as_str());
        let data = app
            .ok(
                &s.care_manager,
                "{ careTeamDischargeNotices(status: [DISCHARGED]) { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["careTeamDischargeNotices"]["edges"], json!([]));
        let data = app
            .ok(
                &s.other_msw,
                "{ careTeamDischargeNotices { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["careTeamDischargeNotices"]["edges"], json!([]));
    }
);

e2e!(
    a_corrected_notice_keeps_its_history_and_the_time_of_the_first_notice,
    |app| async move {
        let s = scene(app).await;
        let data = app
            .ok(
                &s.msw,
                SEND_NOTICE,
                notice_input(&s, &day(app, -10), &day(app, 10)),
            )
            .await;
        let first = data["sendDischargeNotice"].clone();
        let id = first["id"].as_str().unwrap().to_string();
        assert_eq!(first["leadTimeBucket"], "EIGHT_DAYS_OR_MORE");

        // Two days later the hospital brings the discharge forward.
        app.clock.advance(chrono::Duration::days(2));
        let data = app
            .ok(
                &s.msw,
                UPDATE_NOTICE,
                json!({ "i": { "noticeId": id, "plannedDischargeOn": day(app, 1), "criteria": ["HOME_OXYGEN"] } }),
            )
            .await;
        let n = &data["updateDischargeNotice"];
        assert_eq!(n["version"], 2);
        assert_eq!(n["notifiedAt"], first["notifiedAt"]);
        assert_eq!(n["notifiedOn"], first["notifiedOn"]);
        // Measured from the first notice: the team had three days.
        assert_eq!(n["leadTimeDays"], 3);
        assert_eq!(n["leadTimeBucket"], "TWO_TO_FOUR_DAYS");
        assert_eq!(n["needsAtHome"], first["needsAtHome"]);
        assert_eq!(n["criteria"], json!(["HOME_OXYGEN"]));
        assert_eq!(
            n["history"],
            json!([{
                "version": 1, "status": "NOTIFIED", "plannedDischargeOn": first["plannedDischargeOn"],
                "needsAtHome": first["needsAtHome"], "criteria": ["ADL_DECLINED", "INSULIN"],
                "author": { "id": s.msw_id }
            }])
        );
        assert_eq!(
            kinds_about(&notifications(app, &s.care_manager).await, &id),
            ["DISCHARGE_NOTICE", "DISCHARGE_NOTICE"]
        );

        // The discharge happens a day later than planned and is recorded.
        app.clock.advance(chrono::Duration::days(2));
        let data = app
            .ok(
                &s.msw,
                RECORD_DISCHARGE,
                json!({ "i": { "noticeId": id, "dischargedOn": day(app, 0) } }),
            )
            .await;
        let n = &data["recordDischarge"];
        assert_eq!(n["status"], "DISCHARGED");
        assert_eq!(n["actualDischargeOn"], day(app, 0));
        assert_eq!(n["dischargeOn"], n["actualDischargeOn"]);
        assert_eq!(n["leadTimeDays"], 4);
        assert_eq!(n["version"], 3);

        // Closed: no more changes.
        let body = app
            .gql(
                &s.msw,
                UPDATE_NOTICE,
                json!({ "i": { "noticeId": id, "needsAtHome": "変更" } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        let body = app.gql(&s.msw, CANCEL_NOTICE, json!({ "id": id })).await;
        assert_eq!(code(&body), "CONFLICT");
        let body = app
            .gql(
                &s.msw,
                RECORD_DISCHARGE,
                json!({ "i": { "noticeId": id, "dischargedOn": day(app, 0) } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        // A new stay gets a new notice.
        app.ok(
            &s.msw,
            SEND_NOTICE,
            notice_input(&s, &day(app, 0), &day(app, 5)),
        )
        .await;
    }
);

e2e!(
    a_cancelled_notice_frees_the_way_for_a_new_one,
    |app| async move {
        let s = scene(app).await;
        let input = notice_input(&s, &day(app, -3), &day(app, 4));
        let id = app.ok(&s.msw, SEND_NOTICE, input.clone()).await["sendDischargeNotice"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // One open notice per patient and hospital.
        let body = app.gql(&s.msw, SEND_NOTICE, input.clone()).await;
        assert_eq!(code(&body), "CONFLICT");
        // Only the hospital that sent it may change it.
        let body = app.gql(&s.doctor, CANCEL_NOTICE, json!({ "id": id })).await;
        assert_eq!(code(&body), "FORBIDDEN");
        let data = app.ok(&s.msw, CANCEL_NOTICE, json!({ "id": id })).await;
        assert_eq!(data["cancelDischargeNotice"]["status"], "CANCELLED");
        assert_eq!(data["cancelDischargeNotice"]["version"], 2);
        app.ok(&s.msw, SEND_NOTICE, input).await;
    }
);

e2e!(
    discharge_notices_are_sent_by_hospitals_of_the_team_with_write_access,
    |app| async move {
        let s = scene(app).await;
        let input = notice_input(&s, &day(app, -3), &day(app, 4));
        // A care office does not discharge anyone.
        assert_eq!(
            code(&app.gql(&s.care_manager, SEND_NOTICE, input.clone()).await),
            "FORBIDDEN"
        );
        // A hospital pharmacist reads but does not write ADMISSION_DISCHARGE.
        assert_eq!(
            code(
                &app.gql(&s.hospital_pharmacist, SEND_NOTICE, input.clone())
                    .await
            ),
            "FORBIDDEN"
        );
        // A hospital not on the team does not know the patient.
        assert_eq!(
            code(&app.gql(&s.other_msw, SEND_NOTICE, input.clone()).await),
            "NOT_FOUND"
        );
        // The clinic (with beds, a clinic may admit) may, being on the team.
        let (_, clinic_nurse) = app.member(&s.clinic, "NURSE").await;
        app.ok(&clinic_nurse, SEND_NOTICE, input.clone()).await;
        let id = app.ok(&s.hospital_nurse, SEND_NOTICE, input.clone()).await["sendDischargeNotice"]
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
        // A pharmacist reads notices; an outsider does not find them.
        let query = "query($id: ID!) { patient(id: $id) { dischargeNotices { id } } }";
        let data = app
            .ok(&s.pharmacist, query, json!({ "id": s.patient }))
            .await;
        assert_eq!(
            data["patient"]["dischargeNotices"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let body = app
            .gql(&s.other_msw, CANCEL_NOTICE, json!({ "id": id }))
            .await;
        assert_eq!(code(&body), "NOT_FOUND");
        // Withdrawn consent: the notice is not sent, nor read.
        app.ok(
            &s.care_manager,
            "mutation($i: WithdrawConsentInput!) { withdrawConsent(input: $i) { id } }",
            json!({ "i": { "patientId": s.patient } }),
        )
        .await;
        let body = app.gql(&s.msw, SEND_NOTICE, input).await;
        assert_eq!(code(&body), "FORBIDDEN");
        let body = app.gql(&s.msw, CANCEL_NOTICE, json!({ "id": id })).await;
        assert_eq!(code(&body), "NOT_FOUND");
        let body = app
            .gql(&s.pharmacist, query, json!({ "id": s.patient }))
            .await;
        assert_eq!(
            errors_at(&body, &["patient", "dischargeNotices"])[0]["reason"],
            "NO_CONSENT"
        );
        let data = app
            .ok(
                &s.care_manager,
                "{ careTeamDischargeNotices { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["careTeamDischargeNotices"]["edges"], json!([]));
    }
);

e2e!(
    discharge_notice_dates_and_text_are_validated,
    |app| async move {
        let s = scene(app).await;
        let other = app.patient(&s.care_manager, "CM-0002").await;
        join(app, &s.care_manager, &other, &s.hospital, "HOSPITAL").await;
        let other_sheet = app
        .ok(
            &s.care_manager,
            CREATE_SHEET_BARE,
            json!({ "i": { "patientId": other, "hospitalId": s.hospital, "admittedOn": day(app, 0) } }),
        )
        .await["createAdmissionSheet"]["id"]
        .clone();
        app.ok(&s.care_manager, SEND_SHEET, json!({ "id": other_sheet }))
            .await;
        let cases = [
            (
                json!({ "plannedDischargeOn": day(app, -12) }),
                "input.plannedDischargeOn",
            ),
            (
                json!({ "plannedDischargeOn": day(app, 181) }),
                "input.plannedDischargeOn",
            ),
            (
                json!({ "plannedDischargeOn": day(app, -91), "admittedOn": day(app, -120) }),
                "input.plannedDischargeOn",
            ),
            (json!({ "admittedOn": day(app, 1) }), "input.admittedOn"),
            (json!({ "admittedOn": "2015-01-01" }), "input.admittedOn"),
            (json!({ "admittedOn": null }), "input.admittedOn"),
            (json!({ "needsAtHome": "  " }), "input.needsAtHome"),
            (
                json!({ "admissionSheetId": other_sheet }),
                "input.admissionSheetId",
            ),
            (json!({ "admissionSheetId": "x" }), "input.admissionSheetId"),
        ];
        for (extra, expected) in cases {
            let mut input = notice_input(&s, &day(app, -10), &day(app, 3));
            for (k, v) in extra.as_object().unwrap() {
                input["i"][k] = v.clone();
            }
            let body = app.gql(&s.msw, SEND_NOTICE, input).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{extra}: {body}");
            assert_eq!(field(&body), expected, "{extra}");
        }
        let body = app
        .gql(&s.msw, SEND_NOTICE, json!({ "i": { "patientId": s.patient, "admittedOn": day(app, 0), "plannedDischargeOn": "2026-02-30", "needsAtHome": "なし" } }))
        .await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

        let id = app
            .ok(
                &s.msw,
                SEND_NOTICE,
                notice_input(&s, &day(app, -10), &day(app, 3)),
            )
            .await["sendDischargeNotice"]["id"]
            .clone();
        for (input, expected) in [
            (
                json!({ "noticeId": id, "dischargedOn": day(app, 1) }),
                "input.dischargedOn",
            ),
            (
                json!({ "noticeId": id, "dischargedOn": day(app, -11) }),
                "input.dischargedOn",
            ),
        ] {
            let body = app
                .gql(&s.msw, RECORD_DISCHARGE, json!({ "i": input }))
                .await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
            assert_eq!(field(&body), expected);
        }
        let body = app
            .gql(&s.msw, UPDATE_NOTICE, json!({ "i": { "noticeId": id } }))
            .await;
        assert_eq!(field(&body), "input");
        let body = app
            .gql(
                &s.msw,
                UPDATE_NOTICE,
                json!({ "i": { "noticeId": id, "plannedDischargeOn": day(app, -11) } }),
            )
            .await;
        assert_eq!(field(&body), "input.plannedDischargeOn");
    }
);

/// Counts the statements of a page of discharge notices with their history:
/// one notice, then twelve, each corrected once. The loaders' batching
/// window is widened (as for the summaries in records.rs) so that, on a busy
/// machine, every load of a level lands in one batch.
async fn cost_of_notice_histories(backend: Backend) {
    // The directory cache outlasts the test, so that both counts find the
    // caller's member row cached.
    let owned = TestApp::spawn_with(backend, |c| {
        c.batch_window_micros = 50_000;
        c.directory_cache_seconds = 3600;
    })
    .await;
    let app = &owned;
    {
        let s = scene(app).await;
        let s = &s;
        let query = "{ careTeamDischargeNotices(first: 100) { edges { node { id version history { version plannedDischargeOn } } } } }";
        let corrected = |id: String| async move {
            app.ok(
                &s.msw,
                UPDATE_NOTICE,
                json!({ "i": { "noticeId": id, "plannedDischargeOn": day(app, 4) } }),
            )
            .await;
        };
        corrected(notify(app, &s.msw, &s.patient, 6).await).await;
        let (body, one) = most_statements(app, &s.care_manager, query).await;
        let edges = body["data"]["careTeamDischargeNotices"]["edges"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(edges.len(), 1, "{body}");
        assert_eq!(edges[0]["node"]["history"][0]["version"], 1);

        for n in 0..11 {
            let p = another_patient(app, s, n).await;
            corrected(notify(app, &s.msw, &p, 6).await).await;
        }
        let (body, many) = most_statements(app, &s.care_manager, query).await;
        assert!(body.get("errors").is_none(), "{body}");
        let edges = body["data"]["careTeamDischargeNotices"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(edges.len(), 12);
        for e in edges {
            let history = e["node"]["history"].as_array().unwrap();
            assert_eq!(history.len(), 1, "{e}");
            assert_eq!(history[0]["version"], 1);
            assert_eq!(e["node"]["version"], 2);
        }
        // The page, the policy, the history loader and the audit append: a
        // fixed number, not one history query per notice.
        assert!(
            many <= one,
            "12 notices with their history cost {many} statements, one notice {one}"
        );
        assert!(one <= 12, "a page of one notice costs {one} statements");
    }
    owned.stop().await;
}

/// The statements a query costs, the most of three runs: on a loaded machine
/// a loader's batch sometimes waits long enough to take in the next level's
/// keys too, which only ever saves a statement.
async fn most_statements(app: &TestApp, token: &str, query: &str) -> (Value, u64) {
    let mut most = (Value::Null, 0);
    for _ in 0..3 {
        let (body, n) = app.count_statements(token, query, json!({})).await;
        if n >= most.1 {
            most = (body, n);
        }
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_notice_histories_does_not_grow_with_notices_on_sqlite() {
    cost_of_notice_histories(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_of_notice_histories_does_not_grow_with_notices_on_postgres() {
    if postgres_configured() {
        cost_of_notice_histories(Backend::Postgres).await;
    }
}

// ---------------------------------------------------------------------------
// The lead-time report.

/// One more patient of the care office, with both hospitals on the team.
async fn another_patient(app: &TestApp, s: &Scene, n: usize) -> String {
    let p = app.patient(&s.care_manager, &format!("CM-1{n:03}")).await;
    join(app, &s.care_manager, &p, &s.hospital, "HOSPITAL").await;
    join(app, &s.care_manager, &p, &s.other_hospital, "HOSPITAL").await;
    p
}

async fn notify(app: &TestApp, token: &str, patient: &str, planned: i64) -> String {
    let data = app
        .ok(
            token,
            SEND_NOTICE,
            json!({ "i": { "patientId": patient, "admittedOn": day(app, -10), "plannedDischargeOn": day(app, planned), "needsAtHome": "自宅退院、サービス再開" } }),
        )
        .await;
    data["sendDischargeNotice"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

e2e!(
    the_lead_time_report_counts_discharges_in_kitamis_buckets,
    |app| async move {
        let s = scene(app).await;
        let t0 = today(app);
        // Notices sent today (day 0), planned for these days: the bucket
        // boundaries 8/7, 5/4, 2/1, 0 and after.
        for (n, planned) in [20, 8, 7, 5, 4, 2, 1, 0, -1].into_iter().enumerate() {
            let p = another_patient(app, &s, n).await;
            notify(app, &s.msw, &p, planned).await;
        }
        // Planned 10 days ahead, but the patient left on day 3: measured on
        // the actual day (2–4 days).
        let early = another_patient(app, &s, 20).await;
        let early_notice = notify(app, &s.msw, &early, 10).await;
        // Planned 1 day ahead, left on day 5: 5–7 days.
        let late = another_patient(app, &s, 21).await;
        let late_notice = notify(app, &s.msw, &late, 1).await;
        // A cancelled notice does not count.
        let cancelled = another_patient(app, &s, 22).await;
        let id = notify(app, &s.msw, &cancelled, 6).await;
        app.ok(&s.msw, CANCEL_NOTICE, json!({ "id": id })).await;
        // Neither does a discharge after the period.
        let outside = another_patient(app, &s, 23).await;
        notify(app, &s.msw, &outside, 40).await;
        // Another hospital's notice counts for the region only.
        let elsewhere = another_patient(app, &s, 24).await;
        notify(app, &s.other_msw, &elsewhere, 5).await;

        app.clock.advance(chrono::Duration::days(3));
        app.ok(
            &s.msw,
            RECORD_DISCHARGE,
            json!({ "i": { "noticeId": early_notice, "dischargedOn": day(app, 0) } }),
        )
        .await;
        app.clock.advance(chrono::Duration::days(2));
        app.ok(
            &s.msw,
            RECORD_DISCHARGE,
            json!({ "i": { "noticeId": late_notice, "dischargedOn": day(app, 0) } }),
        )
        .await;

        let from = (t0 - Days::new(15)).to_string();
        let to = (t0 + Days::new(30)).to_string();
        let data = app
            .ok(
                &s.msw,
                REPORT,
                json!({ "from": from, "to": to, "h": s.hospital }),
            )
            .await;
        let r = &data["dischargeLeadTimeReport"];
        let counts: Vec<(String, u64)> = r["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["bucket"].as_str().unwrap().to_string(),
                    b["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            counts,
            [
                ("EIGHT_DAYS_OR_MORE".to_string(), 2),
                ("FIVE_TO_SEVEN_DAYS".to_string(), 3),
                ("TWO_TO_FOUR_DAYS".to_string(), 3),
                ("DAY_BEFORE".to_string(), 1),
                ("SAME_DAY".to_string(), 1),
                ("AFTER_DISCHARGE".to_string(), 1),
            ],
            "{r}"
        );
        assert_eq!(r["total"], 11);
        assert_eq!(r["atLeastFiveDays"], 5);
        assert_eq!(r["measuredOnActualDay"], 2);
        assert_eq!(r["hospital"]["id"], s.hospital.as_str());
        let first = &r["buckets"][0];
        assert_eq!(first["label"], "8日以上前");
        assert_eq!(first["minDays"], 8);
        assert_eq!(first["maxDays"], Value::Null);
        assert!((first["share"].as_f64().unwrap() - 2.0 / 11.0).abs() < 1e-9);
        assert_eq!(r["buckets"][5]["maxDays"], -1);

        // The region, for the network administrator: the other hospital's too.
        let data = app
            .ok(&app.admin_token, REPORT, json!({ "from": from, "to": to }))
            .await;
        let r = &data["dischargeLeadTimeReport"];
        assert_eq!(r["total"], 12);
        // Read by the region's overseer, not the hospital: counts below 5
        // are hidden (docs/indicators.md), and so is what they would give
        // away.
        for b in r["buckets"].as_array().unwrap() {
            assert_eq!(b["count"], Value::Null, "{r}");
            assert_eq!(b["share"], Value::Null, "{r}");
        }
        assert_eq!(r["atLeastFiveDays"], Value::Null);
        assert!(r["hospital"].is_null());
        // A period that ends before the day-3 discharge leaves later ones out.
        let data = app
            .ok(
                &s.msw,
                REPORT,
                json!({ "from": from, "to": (t0 + Days::new(2)).to_string(), "h": s.hospital }),
            )
            .await;
        let r = &data["dischargeLeadTimeReport"];
        // Planned 2, 1, 0, -1 days: the early discharge (day 3) is out.
        assert_eq!(r["total"], 4);
        assert_eq!(r["measuredOnActualDay"], 0);
    }
);

e2e!(
    the_report_gives_the_share_of_reported_admissions_with_a_discharge_notice,
    |app| async move {
        let s = scene(app).await;
        // Two admissions reported by sheet; the hospital notifies one of them
        // (linked), and one other patient's without a sheet.
        let with_notice = sent_sheet(app, &s).await;
        let second = another_patient(app, &s, 1).await;
        let sheet = app
            .ok(
                &s.care_manager,
                CREATE_SHEET_BARE,
                json!({ "i": { "patientId": second, "hospitalId": s.hospital, "admittedOn": day(app, -1) } }),
            )
            .await["createAdmissionSheet"]["id"]
            .clone();
        app.ok(&s.care_manager, SEND_SHEET, json!({ "id": sheet }))
            .await;
        // A draft is no report to the hospital.
        let third = another_patient(app, &s, 2).await;
        app.ok(
            &s.care_manager,
            CREATE_SHEET_BARE,
            json!({ "i": { "patientId": third, "hospitalId": s.hospital, "admittedOn": day(app, -1) } }),
        )
        .await;
        app.ok(
            &s.msw,
            SEND_NOTICE,
            json!({ "i": { "patientId": s.patient, "admissionSheetId": with_notice, "plannedDischargeOn": day(app, 9), "needsAtHome": "なし" } }),
        )
        .await;
        let fourth = another_patient(app, &s, 3).await;
        notify(app, &s.msw, &fourth, 3).await;
        let range = json!({ "from": day(app, -30), "to": day(app, 30), "h": s.hospital });
        let data = app.ok(&s.msw, REPORT, range).await;
        let r = &data["dischargeLeadTimeReport"];
        assert_eq!(r["admissionsReported"], 2);
        assert_eq!(r["admissionsWithDischargeNotice"], 1);
        assert_eq!(r["dischargeNoticeRate"], 0.5);
        assert_eq!(r["total"], 2);
        // No admissions reported: no rate, rather than a made-up one.
        let data = app
            .ok(
                &s.other_msw,
                REPORT,
                json!({ "from": day(app, -30), "to": day(app, 30), "h": s.other_hospital }),
            )
            .await;
        assert!(data["dischargeLeadTimeReport"]["dischargeNoticeRate"].is_null());
    }
);

e2e!(
    the_region_report_is_for_the_regions_overseers_and_a_hospitals_for_itself,
    |app| async move {
        let s = scene(app).await;
        let range = |h: Option<&str>| json!({ "from": day(app, -30), "to": day(app, 0), "h": h });
        // The hospital's own staff with ADMISSION_DISCHARGE read.
        for token in [&s.msw, &s.hospital_pharmacist] {
            app.ok(token, REPORT, range(Some(&s.hospital))).await;
            assert_eq!(
                code(&app.gql(token, REPORT, range(None)).await),
                "FORBIDDEN"
            );
            assert_eq!(
                code(&app.gql(token, REPORT, range(Some(&s.other_hospital))).await),
                "FORBIDDEN"
            );
        }
        // A profession without ADMISSION_DISCHARGE, even for its own organisation.
        let (_, dentist) = app.member(&s.hospital, "DENTIST").await;
        assert_eq!(
            code(&app.gql(&dentist, REPORT, range(Some(&s.hospital))).await),
            "FORBIDDEN"
        );
        assert_eq!(
            code(&app.gql(&s.care_manager, REPORT, range(None)).await),
            "FORBIDDEN"
        );
        // Municipal staff and the coordination centre see the region and any hospital.
        let city = app
            .organization("MUNICIPALITY", "みなみ野市 介護保険課")
            .await;
        let (_, official) = app.member(&city, "MUNICIPAL_STAFF").await;
        let (_, centre_nurse) = app.member(&app.admin_org.to_string(), "NURSE").await;
        for token in [&official, &centre_nurse, &app.admin_token] {
            app.ok(token, REPORT, range(None)).await;
            app.ok(token, REPORT, range(Some(&s.hospital))).await;
        }
        // Working at the coordination centre is not enough: the role must
        // read the category the statistics are about.
        let (_, centre_dietitian) = app.member(&app.admin_org.to_string(), "DIETITIAN").await;
        assert_eq!(
            code(&app.gql(&centre_dietitian, REPORT, range(None)).await),
            "FORBIDDEN"
        );
        // Bad input.
        for (vars, expected) in [
            (json!({ "from": day(app, 0), "to": day(app, -1) }), "to"),
            (json!({ "from": "2020-01-01", "to": "2026-01-01" }), "to"),
            (
                json!({ "from": day(app, -1), "to": day(app, 0), "h": "nope" }),
                "hospitalId",
            ),
            (
                json!({ "from": day(app, -1), "to": day(app, 0), "h": uuid::Uuid::now_v7().to_string() }),
                "hospitalId",
            ),
        ] {
            let body = app.gql(&app.admin_token, REPORT, vars.clone()).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{vars}");
            assert_eq!(field(&body), expected, "{vars}");
        }
    }
);

e2e!(
    running_the_report_leaves_an_audit_entry_without_a_patient,
    |app| async move {
        let s = scene(app).await;
        app.ok(
            &s.msw,
            REPORT,
            json!({ "from": "2026-01-01", "to": "2026-03-31", "h": s.hospital }),
        )
        .await;
        let entries = audit_of(app, json!({ "actorId": s.msw_id, "action": "READ" })).await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        let e = &entries[0];
        assert!(e["patientId"].is_null());
        assert_eq!(categories(e), ["ADMISSION_DISCHARGE"]);
        let detail = e["detail"].as_str().unwrap();
        assert!(detail.contains("lead-time report"), "{detail}");
        assert!(detail.contains(&s.hospital) && detail.contains("2026-01-01 to 2026-03-31"));
        // A refused report is no read.
        app.gql(
            &s.msw,
            REPORT,
            json!({ "from": "2026-01-01", "to": "2026-03-31" }),
        )
        .await;
        let entries = audit_of(app, json!({ "actorId": s.msw_id, "action": "READ" })).await;
        assert_eq!(entries.len(), 1);
    }
);

// ---------------------------------------------------------------------------
// The discharge conference.

fn starts_in(app: &TestApp, days: i64) -> String {
    (app.clock.now() + chrono::Duration::days(days)).to_rfc3339()
}

e2e!(
    a_hospital_proposes_a_discharge_conference_and_the_invited_answer,
    |app| async move {
        let s = scene(app).await;
        let notice = notify(app, &s.msw, &s.patient, 9).await;
        let data = app
            .ok(
                &s.msw,
                PROPOSE,
                json!({ "i": {
                    "patientId": s.patient, "dischargeNoticeId": notice, "startsAt": starts_in(app, 3),
                    "place": "3階 カンファレンスルーム", "online": true, "note": "退院後のサービス調整",
                    "invitedOrganizationIds": [s.care_office, s.clinic, s.hospital, s.clinic],
                } }),
            )
            .await;
        let c = &data["proposeDischargeConference"];
        let id = c["id"].as_str().unwrap().to_string();
        assert_eq!(c["status"], "PROPOSED");
        assert_eq!(c["dischargeNoticeId"], notice.as_str());
        assert_eq!(c["organizer"]["id"], s.hospital.as_str());
        let mut invited: Vec<&str> = c["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                assert_eq!(i["response"], "PENDING");
                i["organization"]["id"].as_str().unwrap()
            })
            .collect();
        invited.sort();
        let mut expected = vec![s.care_office.as_str(), s.clinic.as_str()];
        expected.sort();
        assert_eq!(
            invited, expected,
            "the organiser is not invited, nobody twice"
        );
        for token in [&s.care_manager, &s.doctor] {
            assert_eq!(
                kinds_about(&notifications(app, token).await, &id),
                ["DISCHARGE_CONFERENCE"]
            );
        }
        for token in [&s.pharmacist, &s.care_worker, &s.msw] {
            assert!(kinds_about(&notifications(app, token).await, &id).is_empty());
        }

        let data = app
            .ok(
                &s.care_manager,
                ANSWER,
                json!({ "i": { "conferenceId": id, "accept": true, "comment": "ケアマネと福祉用具業者が参加します" } }),
            )
            .await;
        let mine = &data["answerDischargeConference"]["myInvitation"];
        assert_eq!(mine["response"], "ACCEPTED");
        app.ok(&s.doctor, ANSWER, json!({ "i": { "conferenceId": id, "accept": false, "comment": "外来のため欠席、書面で意見" } }))
            .await;
        // The organiser hears of each answer.
        assert_eq!(
            kinds_about(&notifications(app, &s.msw).await, &id),
            ["DISCHARGE_CONFERENCE", "DISCHARGE_CONFERENCE"]
        );
        let data = app
            .ok(
                &s.msw,
                "query($id: ID!) { patient(id: $id) { dischargeConferences { id place online invitations { organization { id } response respondedBy { id } comment } } } }",
                json!({ "id": s.patient }),
            )
            .await;
        let conference = &data["patient"]["dischargeConferences"][0];
        let answers: Vec<(&str, &str, &str)> = conference["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["organization"]["id"].as_str().unwrap(),
                    i["response"].as_str().unwrap(),
                    i["respondedBy"]["id"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(answers.contains(&(
            s.care_office.as_str(),
            "ACCEPTED",
            s.care_manager_id.as_str()
        )));
        assert!(answers.contains(&(s.clinic.as_str(), "DECLINED", s.doctor_id.as_str())));

        // The care office's list of invitations.
        let data = app
            .ok(&s.care_manager, "{ dischargeConferenceInvitations { edges { node { id startsAt myInvitation { response comment } patient { id } } } } }", json!({}))
            .await;
        let edges = data["dischargeConferenceInvitations"]["edges"]
            .as_array()
            .unwrap();
        assert_eq!(edges.len(), 1);
        assert_eq!(
            edges[0]["node"]["myInvitation"]["comment"],
            "ケアマネと福祉用具業者が参加します"
        );
        let data = app
            .ok(
                &s.care_manager,
                "{ dischargeConferenceInvitations(response: [PENDING]) { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["dischargeConferenceInvitations"]["edges"], json!([]));
        let data = app
            .ok(
                &s.pharmacist,
                "{ dischargeConferenceInvitations { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["dischargeConferenceInvitations"]["edges"], json!([]));
        // An answer may change until the conference begins; then it may not.
        app.ok(
            &s.doctor,
            ANSWER,
            json!({ "i": { "conferenceId": id, "accept": true } }),
        )
        .await;
        app.clock.advance(chrono::Duration::days(4));
        let body = app
            .gql(
                &s.care_manager,
                ANSWER,
                json!({ "i": { "conferenceId": id, "accept": false } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        let data = app
            .ok(
                &s.care_manager,
                "{ dischargeConferenceInvitations { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["dischargeConferenceInvitations"]["edges"],
            json!([]),
            "past"
        );
        let data = app
            .ok(
                &s.care_manager,
                "{ dischargeConferenceInvitations(upcomingOnly: false) { edges { node { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["dischargeConferenceInvitations"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
);

e2e!(
    conference_invitations_are_answered_by_invited_organisations_that_may_read_them,
    |app| async move {
        let s = scene(app).await;
        let id = app
            .ok(
                &s.msw,
                PROPOSE,
                json!({ "i": { "patientId": s.patient, "startsAt": starts_in(app, 2), "online": true, "inviteWholeTeam": true } }),
            )
            .await["proposeDischargeConference"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let data = app
            .ok(&s.msw, "query($id: ID!) { patient(id: $id) { dischargeConferences { invitations { organization { id } } } } }", json!({ "id": s.patient }))
            .await;
        let mut invited: Vec<&str> = data["patient"]["dischargeConferences"][0]["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["organization"]["id"].as_str().unwrap())
            .collect();
        invited.sort();
        let mut team = vec![
            s.care_office.as_str(),
            s.clinic.as_str(),
            s.pharmacy.as_str(),
            s.helpers.as_str(),
        ];
        team.sort();
        assert_eq!(invited, team, "the whole team but the organiser");
        // Invited as part of the team, a pharmacy answers: answering needs
        // to read the conference, not to write admission/discharge records.
        assert_eq!(
            kinds_about(&notifications(app, &s.pharmacist).await, &id),
            ["DISCHARGE_CONFERENCE"]
        );
        let (_, dietitian) = app.member(&s.pharmacy, "DIETITIAN").await;
        let body = app
            .gql(
                &dietitian,
                ANSWER,
                json!({ "i": { "conferenceId": id, "accept": true } }),
            )
            .await;
        // A profession that may not read admission/discharge data does not
        // find the conference at all, like a record it may not read.
        assert_eq!(code(&body), "NOT_FOUND");
        let body = app
            .gql(
                &s.pharmacist,
                ANSWER,
                json!({ "i": { "conferenceId": id, "accept": true, "comment": "訪問薬剤師が参加します" } }),
            )
            .await;
        assert_eq!(
            body["data"]["answerDischargeConference"]["myInvitation"]["response"], "ACCEPTED",
            "{body}"
        );
        // An organisation outside the team does not find the conference.
        let body = app
            .gql(
                &s.other_msw,
                ANSWER,
                json!({ "i": { "conferenceId": id, "accept": true } }),
            )
            .await;
        assert_eq!(code(&body), "NOT_FOUND");
        // Only the organiser cancels.
        let body = app
            .gql(&s.care_manager, CANCEL_CONFERENCE, json!({ "id": id }))
            .await;
        assert_eq!(code(&body), "FORBIDDEN");
        let data = app
            .ok(&s.hospital_nurse, CANCEL_CONFERENCE, json!({ "id": id }))
            .await;
        assert_eq!(data["cancelDischargeConference"]["status"], "CANCELLED");
        assert_eq!(
            kinds_about(&notifications(app, &s.care_worker).await, &id),
            ["DISCHARGE_CONFERENCE", "DISCHARGE_CONFERENCE"]
        );
        let body = app
            .gql(
                &s.care_manager,
                ANSWER,
                json!({ "i": { "conferenceId": id, "accept": true } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        let body = app
            .gql(&s.msw, CANCEL_CONFERENCE, json!({ "id": id }))
            .await;
        assert_eq!(code(&body), "CONFLICT");
        // A care worker may not propose one; a care manager may.
        let input = json!({ "i": { "patientId": s.patient, "startsAt": starts_in(app, 2), "place": "自宅", "invitedOrganizationIds": [s.hospital] } });
        assert_eq!(
            code(&app.gql(&s.care_worker, PROPOSE, input.clone()).await),
            "FORBIDDEN"
        );
        app.ok(&s.care_manager, PROPOSE, input).await;
    }
);

e2e!(discharge_conference_input_is_validated, |app| async move {
    let s = scene(app).await;
    let other = app.patient(&s.care_manager, "CM-0002").await;
    join(app, &s.care_manager, &other, &s.hospital, "HOSPITAL").await;
    let others_notice = notify(app, &s.msw, &other, 5).await;
    let cases = [
        (json!({ "startsAt": starts_in(app, -1) }), "input.startsAt"),
        (json!({ "startsAt": starts_in(app, 200) }), "input.startsAt"),
        (json!({ "place": null, "online": false }), "input.place"),
        (json!({ "place": "  " }), "input.place"),
        (
            json!({ "inviteWholeTeam": true }),
            "input.invitedOrganizationIds",
        ),
        (
            json!({ "invitedOrganizationIds": [] }),
            "input.invitedOrganizationIds",
        ),
        (
            json!({ "invitedOrganizationIds": [s.clinic, s.other_hospital] }),
            "input.invitedOrganizationIds[1]",
        ),
        (
            json!({ "invitedOrganizationIds": [s.hospital] }),
            "input.invitedOrganizationIds",
        ),
        (
            json!({ "invitedOrganizationIds": ["bad"] }),
            "input.invitedOrganizationIds[0]",
        ),
        (
            json!({ "dischargeNoticeId": others_notice }),
            "input.dischargeNoticeId",
        ),
        (json!({ "note": "" }), "input.note"),
    ];
    for (extra, expected) in cases {
        let mut input = json!({ "patientId": s.patient, "startsAt": starts_in(app, 2), "place": "病棟面談室", "invitedOrganizationIds": [s.care_office] });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        let body = app.gql(&s.msw, PROPOSE, json!({ "i": input })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{extra}: {body}");
        assert_eq!(field(&body), expected, "{extra}");
    }
});

// ---------------------------------------------------------------------------
// Audit.

e2e!(
    writes_and_reads_of_admission_and_discharge_are_audited,
    |app| async move {
        let s = scene(app).await;
        let sheet = sent_sheet(app, &s).await;
        app.ok(&s.msw, ACK_SHEET, json!({ "id": sheet })).await;
        notify(app, &s.msw, &s.patient, 5).await;
        let writes = audit_of(app, json!({ "patientId": s.patient, "action": "WRITE" })).await;
        let on_admission: Vec<&Value> = writes
            .iter()
            .filter(|e| categories(e).contains(&"ADMISSION_DISCHARGE"))
            .collect();
        // Create, send (care office), acknowledge and notice (hospital).
        assert_eq!(on_admission.len(), 4, "{writes:?}");
        assert_eq!(
            on_admission
                .iter()
                .filter(|e| e["actorId"] == s.msw_id.as_str())
                .count(),
            2
        );
        // A list read is recorded per patient, by whoever reads it.
        app.ok(&s.care_worker, "query($id: ID!) { patient(id: $id) { dischargeNotices { id } admissionSheets { id } } }", json!({ "id": s.patient }))
            .await;
        app.ok(
            &s.doctor,
            "{ careTeamDischargeNotices { edges { node { id } } } }",
            json!({}),
        )
        .await;
        let reads = audit_of(app, json!({ "patientId": s.patient, "action": "READ" })).await;
        for actor in [&s.care_worker_id, &s.doctor_id] {
            assert!(
                reads
                    .iter()
                    .any(|e| e["actorId"] == actor.as_str()
                        && categories(e) == ["ADMISSION_DISCHARGE"]),
                "{actor}: {reads:?}"
            );
        }
    }
);

// ---------------------------------------------------------------------------
// The demo region.

mod demo {
    use super::*;
    use renkei_schema::demo::{demo_member_id, demo_organization_id};
    use renkei_schema::domain::Profession;

    fn token(p: Profession) -> String {
        let auth = renkei_server::config::AuthConfig {
            jwt_algorithm: "RS256".into(),
            jwt_issuer: "renkei".into(),
            jwt_audience: "renkei".into(),
            api_key_cache_seconds: 60,
            ..Default::default()
        };
        renkei_server::auth::demo_token(
            &auth,
            demo_member_id(p),
            std::time::Duration::from_secs(600),
        )
        .unwrap()
    }

    async fn counts(app: &TestApp) -> Vec<i64> {
        use sea_orm::{ConnectionTrait, Statement};
        let mut out = Vec::new();
        for table in [
            "admission_sheets",
            "discharge_notices",
            "discharge_notice_versions",
            "discharge_conferences",
            "discharge_conference_invitations",
        ] {
            let row = app
                .db
                .query_one_raw(Statement::from_string(
                    app.db.get_database_backend(),
                    format!("SELECT COUNT(*) AS n FROM {table}"),
                ))
                .await
                .unwrap()
                .unwrap();
            out.push(row.try_get::<i64>("", "n").unwrap());
        }
        out
    }

    async fn run(backend: Backend) {
        let app = TestApp::spawn_with(backend, |c| {
            c.demo = true;
            c.auth.jwt_secret = None;
        })
        .await;
        // The demo MSW works at the city hospital (organisation 1).
        let msw = token(Profession::MedicalSocialWorker);
        let data = app
            .ok(&msw, "{ admissionSheetsReceived(first: 100) { edges { node { status patient { name } content { wishes } } } } }", json!({}))
            .await;
        let sheets = data["admissionSheetsReceived"]["edges"].as_array().unwrap();
        assert!(!sheets.is_empty());
        assert!(sheets.iter().all(|e| e["node"]["status"] != "DRAFT"));
        let hospital = demo_organization_id(1).to_string();
        let data = app
            .ok(
                &msw,
                REPORT,
                json!({ "from": "2024-04-01", "to": "2026-04-30", "h": hospital }),
            )
            .await;
        let r = &data["dischargeLeadTimeReport"];
        let filled = r["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["count"].as_u64().unwrap() > 0)
            .count();
        assert!(filled >= 4, "lead times spread over the buckets: {r}");
        assert!(
            r["dischargeNoticeRate"]
                .as_f64()
                .is_some_and(|x| x > 0.5 && x <= 1.0),
            "{r}"
        );
        // The demo care manager's notices and invitations.
        let cm = token(Profession::CareManager);
        let data = app
            .ok(&cm, "{ careTeamDischargeNotices(first: 100) { edges { node { leadTimeBucket criteria patient { name } } } } dischargeConferenceInvitations(upcomingOnly: false, first: 100) { edges { node { startsAt myInvitation { response } } } } }", json!({}))
            .await;
        assert!(
            !data["careTeamDischargeNotices"]["edges"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert!(
            !data["dischargeConferenceInvitations"]["edges"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        // Seeding again adds nothing.
        let before = counts(&app).await;
        renkei_schema::demo::seed(&app.db).await.unwrap();
        assert_eq!(counts(&app).await, before);
        assert!(before.iter().all(|n| *n > 0), "{before:?}");
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_hospital_has_sheets_notices_and_a_spread_of_lead_times_sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_hospital_has_sheets_notices_and_a_spread_of_lead_times_postgres() {
        if postgres_configured() {
            run(Backend::Postgres).await;
        }
    }
}

e2e!(
    the_lead_time_report_leaves_out_patients_whose_consent_does_not_share_it,
    |app| async move {
        let s = scene(app).await;
        let mut patients = Vec::new();
        for n in 0..6 {
            let p = another_patient(app, &s, 30 + n).await;
            notify(app, &s.msw, &p, 8).await;
            patients.push(p);
        }
        let range = json!({ "from": day(app, -30), "to": day(app, 30), "h": s.hospital });
        let data = app.ok(&s.msw, REPORT, range.clone()).await;
        assert_eq!(data["dischargeLeadTimeReport"]["total"], 6);
        // One patient's new consent excludes admission and discharge: the
        // notice about them no longer counts.
        app.consent(
            &s.care_manager,
            &patients[0],
            json!({ "scope": "NETWORK", "excludedCategories": ["ADMISSION_DISCHARGE"] }),
        )
        .await;
        let data = app.ok(&s.msw, REPORT, range.clone()).await;
        assert_eq!(data["dischargeLeadTimeReport"]["total"], 5, "{data}");
        // Another's consent still shares the category, but no longer with
        // this hospital: a 包括同意 that excludes it, and a 個別同意 that
        // does not list it. The hospital's own report (its counts shown as
        // they are) leaves both out.
        app.consent(
            &s.care_manager,
            &patients[1],
            json!({ "scope": "NETWORK", "organizationIds": [s.hospital] }),
        )
        .await;
        app.consent(
            &s.care_manager,
            &patients[2],
            json!({ "scope": "ORGANIZATIONS", "organizationIds": [s.care_office, s.other_hospital] }),
        )
        .await;
        let data = app.ok(&s.msw, REPORT, range).await;
        assert_eq!(data["dischargeLeadTimeReport"]["total"], 3, "{data}");
    }
);

e2e!(
    a_hospitals_own_report_counts_no_sheet_whose_consent_no_longer_covers_it,
    |app| async move {
        let s = scene(app).await;
        let mut sheets = Vec::new();
        for n in 0..2 {
            let p = another_patient(app, &s, 40 + n).await;
            let sheet = app
                .ok(
                    &s.care_manager,
                    CREATE_SHEET_BARE,
                    json!({ "i": { "patientId": p, "hospitalId": s.hospital, "admittedOn": day(app, -1) } }),
                )
                .await["createAdmissionSheet"]["id"]
                .clone();
            app.ok(&s.care_manager, SEND_SHEET, json!({ "id": sheet }))
                .await;
            sheets.push((p, sheet));
        }
        let range = json!({ "from": day(app, -1), "to": day(app, -1), "h": s.hospital });
        let data = app.ok(&s.msw, REPORT, range.clone()).await;
        assert_eq!(data["dischargeLeadTimeReport"]["admissionsReported"], 2);
        // The first patient's consent now names only the care office: the
        // hospital no longer sees that sheet — and its own report, shown
        // unsuppressed to one day, does not count it either.
        app.consent(
            &s.care_manager,
            &sheets[0].0,
            json!({ "scope": "ORGANIZATIONS", "organizationIds": [s.care_office] }),
        )
        .await;
        let received = app
            .ok(
                &s.msw,
                "{ admissionSheetsReceived(first: 50) { edges { node { id } } } }",
                json!({}),
            )
            .await;
        let shown: Vec<&Value> = received["admissionSheetsReceived"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"]["id"])
            .collect();
        assert!(!shown.contains(&&sheets[0].1), "{received}");
        assert!(shown.contains(&&sheets[1].1), "{received}");
        let data = app.ok(&s.msw, REPORT, range).await;
        assert_eq!(
            data["dischargeLeadTimeReport"]["admissionsReported"], 1,
            "{data}"
        );
    }
);

e2e!(
    edits_of_a_draft_at_once_lose_none_that_succeeded,
    |app| async move {
        let s = scene(app).await;
        // Members of the care office edit two sections of one draft at the
        // same moment, many times over: an edit answered as made must be in
        // the sheet — the other is refused (CONFLICT, reload), not silently
        // overwritten by a copy of the sheet as it was before.
        for round in 0..6 {
            let id = new_sheet(app, &s, json!({})).await["id"].clone();
            let edits = [
                json!({ "cautions": format!("夜間せん妄の既往あり {round}") }),
                json!({ "wishes": format!("自宅退院を希望 {round}") }),
            ];
            let answers = futures::future::join_all(edits.iter().map(|content| {
                app.gql(
                    &s.care_manager,
                    UPDATE_SHEET,
                    json!({ "i": { "sheetId": id, "content": content } }),
                )
            }))
            .await;
            let data = app
                .ok(
                    &s.care_manager,
                    "query($id: ID!) { patient(id: $id) { admissionSheets { id content { cautions wishes } } } }",
                    json!({ "id": s.patient }),
                )
                .await;
            let sheet = data["patient"]["admissionSheets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["id"] == id)
                .unwrap()
                .clone();
            for (answer, edit) in answers.iter().zip(&edits) {
                if answer["errors"].is_null() {
                    let (key, value) = edit.as_object().unwrap().iter().next().unwrap();
                    assert_eq!(&sheet["content"][key], value, "round {round}: {sheet}");
                } else {
                    assert_eq!(code(answer), "CONFLICT", "{answer}");
                }
            }
        }
    }
);
