//! Outbreak notices (issue 14 part 4, 感染症の集団発生の連絡): a care facility
//! reports an infection outbreak to the organisations sharing its patients,
//! naming patients only to those who may read their INFECTIONS; it updates
//! and ends it; everything is audited and notified.

use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};

const ADD_MEMBER: &str =
    "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }";
const REPORT: &str = "mutation($i: ReportOutbreakInput!) { reportOutbreak(input: $i) { id organization { id } pathogen otherPathogen onsetOn scope residentCases staffCases measures status endedOn affectedPatients { id } } }";
const UPDATE: &str = "mutation($i: UpdateOutbreakInput!) { updateOutbreak(input: $i) { id scope residentCases staffCases measures status endedOn updatedAt } }";
const NOTICE: &str = "query($id: ID!) { outbreakNotice(id: $id) { id pathogen scope status affectedPatients { id } } }";
const LIST: &str = "query($s: [OutbreakStatus!]!) { outbreakNotices(status: $s) { edges { node { id status organization { id } affectedPatients { id } } } pageInfo { hasNextPage } } }";

/// A nursing home (特養) with its physician (配置医), a nurse and a care worker; its residents are
/// patients of a clinic (the 協力医療機関) that registered them. On the team
/// of resident A: a helper station (care worker) too; on the team of
/// resident B: a pharmacy. A hospital shares no patient with the home; it
/// registered a patient of its own.
struct Scene {
    home: String,
    home_doctor: String,
    home_doctor_id: String,
    home_nurse: String,
    home_care_worker: String,
    clinic: String,
    doctor: String,
    helper: String,
    pharmacist: String,
    hospital_doctor: String,
    resident_a: String,
    resident_b: String,
    outsider_patient: String,
}

async fn scene(app: &TestApp) -> Scene {
    let home = app
        .organization("NURSING_HOME", "特別養護老人ホーム さくらの郷")
        .await;
    // The home's physician (配置医) reports; its nurse reads INFECTIONS but,
    // under the default matrix, does not write them.
    let (home_doctor_id, home_doctor) = app.member(&home, "PHYSICIAN").await;
    let (_, home_nurse) = app.member(&home, "NURSE").await;
    let (_, home_care_worker) = app.member(&home, "CARE_WORKER").await;
    let clinic = app.organization("CLINIC", "さくら内科クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let helpers = app
        .organization("CARE_SERVICE_PROVIDER", "ひまわりヘルパーステーション")
        .await;
    let (_, helper) = app.member(&helpers, "CARE_WORKER").await;
    let pharmacy = app.organization("PHARMACY", "さくら薬局").await;
    let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    let hospital = app.organization("HOSPITAL", "北川総合病院").await;
    let (_, hospital_doctor) = app.member(&hospital, "PHYSICIAN").await;

    let resident_a = app.patient(&doctor, "K-0001").await;
    let resident_b = app.patient(&doctor, "K-0002").await;
    let outsider_patient = app.patient(&hospital_doctor, "H-0001").await;
    for (patient, org, role) in [
        (&resident_a, &home, "CARE_SERVICE"),
        (&resident_a, &helpers, "CARE_SERVICE"),
        (&resident_b, &home, "CARE_SERVICE"),
        (&resident_b, &pharmacy, "PHARMACY"),
    ] {
        app.ok(
            &doctor,
            ADD_MEMBER,
            json!({ "i": { "patientId": patient, "organizationId": org, "role": role } }),
        )
        .await;
    }
    Scene {
        home,
        home_doctor,
        home_doctor_id,
        home_nurse,
        home_care_worker,
        clinic,
        doctor,
        helper,
        pharmacist,
        hospital_doctor,
        resident_a,
        resident_b,
        outsider_patient,
    }
}

fn days_ago(app: &TestApp, days: u64) -> String {
    (app.clock.today() - chrono::Days::new(days)).to_string()
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

fn norovirus(app: &TestApp) -> Value {
    json!({
        "pathogen": "NOROVIRUS", "onsetOn": days_ago(app, 2), "scope": "  2階フロア ",
        "residentCases": 6, "staffCases": 2, "measures": "面会制限、通所の休止",
    })
}

async fn notification_kinds(app: &TestApp, token: &str, subject: &str) -> Vec<String> {
    app.ok(
        token,
        "{ notifications(first: 100) { kind subjectId patientId } }",
        json!({}),
    )
    .await["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["subjectId"] == subject)
        .map(|n| {
            assert!(n["patientId"].is_null(), "names no patient: {n}");
            n["kind"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The notices listed to `token`; `status` null: every status.
async fn listed(app: &TestApp, token: &str, status: Value) -> Vec<Value> {
    let status = if status.is_null() { json!([]) } else { status };
    app.ok(token, LIST, json!({ "s": status })).await["outbreakNotices"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn affected(notice: &Value) -> Vec<&str> {
    notice["affectedPatients"]
        .as_array()
        .unwrap_or_else(|| panic!("no affectedPatients: {notice}"))
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect()
}

async fn audit_of(app: &TestApp, filter: Value) -> Vec<Value> {
    app.ok(
        &app.admin_token,
        "query($f: AuditLogFilterInput) { auditLog(filter: $f, first: 100) { edges { node { action categories patientId detail } } } }",
        json!({ "f": filter }),
    )
    .await["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

e2e!(
    a_care_facility_reports_an_outbreak_to_the_organisations_sharing_its_patients,
    |app| async move {
        let s = scene(app).await;
        let mut input = norovirus(app);
        input["affectedPatientIds"] = json!([s.resident_a]);
        let data = app.ok(&s.home_doctor, REPORT, json!({ "i": input })).await;
        let n = &data["reportOutbreak"];
        let id = n["id"].as_str().unwrap().to_string();
        assert_eq!(n["organization"]["id"], s.home.as_str());
        assert_eq!(n["pathogen"], "NOROVIRUS");
        assert_eq!(n["scope"], "2階フロア", "trimmed");
        assert_eq!(n["residentCases"], 6);
        assert_eq!(n["status"], "ONGOING");
        assert_eq!(affected(n), [s.resident_a.as_str()]);

        // Every organisation on the team of one of the home's residents is
        // told, without a patient; the home itself is not.
        for token in [&s.doctor, &s.helper, &s.pharmacist] {
            assert_eq!(
                notification_kinds(app, token, &id).await,
                ["OUTBREAK_NOTICE"]
            );
            let list = listed(app, token, json!(null)).await;
            assert_eq!(list.len(), 1, "{list:?}");
            assert_eq!(list[0]["id"], id.as_str());
            assert_eq!(list[0]["organization"]["id"], s.home.as_str());
        }
        assert!(
            notification_kinds(app, &s.home_doctor, &id)
                .await
                .is_empty()
        );
        // The reporter lists its own.
        let own = listed(app, &s.home_care_worker, json!(["ONGOING"])).await;
        assert_eq!(own.len(), 1);

        // The affected resident is shown to those who may read its
        // INFECTIONS: the clinic's physician; the helper station's care
        // worker reads the notice but no patient in it.
        let data = app.ok(&s.doctor, NOTICE, json!({ "id": id })).await;
        assert_eq!(affected(&data["outbreakNotice"]), [s.resident_a.as_str()]);
        let data = app.ok(&s.helper, NOTICE, json!({ "id": id })).await;
        assert_eq!(data["outbreakNotice"]["scope"], "2階フロア");
        assert!(affected(&data["outbreakNotice"]).is_empty());
        // The pharmacy is not on resident A's team: not shown to it either.
        let data = app.ok(&s.pharmacist, NOTICE, json!({ "id": id })).await;
        assert!(affected(&data["outbreakNotice"]).is_empty());
        // The home's care worker may not read INFECTIONS: neither.
        let data = app
            .ok(&s.home_care_worker, NOTICE, json!({ "id": id }))
            .await;
        assert!(affected(&data["outbreakNotice"]).is_empty());

        // The hospital shares no patient with the home: not told, not
        // listed, and the notice does not exist for it.
        assert!(
            notification_kinds(app, &s.hospital_doctor, &id)
                .await
                .is_empty()
        );
        assert!(
            listed(app, &s.hospital_doctor, json!(null))
                .await
                .is_empty()
        );
        let body = app
            .gql(&s.hospital_doctor, NOTICE, json!({ "id": id }))
            .await;
        assert_eq!(code(&body), "NOT_FOUND");
        let body = app
            .gql(
                &s.hospital_doctor,
                NOTICE,
                json!({ "id": uuid::Uuid::now_v7().to_string() }),
            )
            .await;
        assert_eq!(code(&body), "NOT_FOUND", "as one that does not exist");

        // The audit: the report without a patient, the named resident as a
        // write of INFECTIONS, the physician's read of it.
        let writes = audit_of(
            app,
            json!({ "actorId": s.home_doctor_id, "action": "WRITE" }),
        )
        .await;
        let reported: Vec<&Value> = writes
            .iter()
            .filter(|e| e["detail"] == format!("outbreak notice {id}: reported"))
            .collect();
        assert_eq!(reported.len(), 1, "{writes:?}");
        assert!(reported[0]["patientId"].is_null());
        let named: Vec<&Value> = writes
            .iter()
            .filter(|e| e["patientId"] == s.resident_a.as_str())
            .collect();
        assert_eq!(named.len(), 1, "{writes:?}");
        assert_eq!(named[0]["categories"], json!(["INFECTIONS"]));
        let reads = audit_of(
            app,
            json!({ "patientId": s.resident_a, "action": "READ", "organizationId": s.clinic }),
        )
        .await;
        assert!(
            reads
                .iter()
                .any(|e| e["categories"] == json!(["INFECTIONS"])),
            "{reads:?}"
        );
    }
);

e2e!(
    a_patient_is_shown_only_while_its_consent_lets_the_reader_read_infections,
    |app| async move {
        let s = scene(app).await;
        let mut input = norovirus(app);
        input["affectedPatientIds"] = json!([s.resident_b]);
        let data = app.ok(&s.home_doctor, REPORT, json!({ "i": input })).await;
        let id = data["reportOutbreak"]["id"].as_str().unwrap().to_string();
        let data = app.ok(&s.pharmacist, NOTICE, json!({ "id": id })).await;
        assert_eq!(affected(&data["outbreakNotice"]), [s.resident_b.as_str()]);
        // The patient's new consent excludes INFECTIONS: the resident is no
        // longer shown, to anyone, and the notice stays.
        app.consent(
            &s.doctor,
            &s.resident_b,
            json!({ "excludedCategories": ["INFECTIONS"] }),
        )
        .await;
        for token in [&s.pharmacist, &s.doctor, &s.home_doctor] {
            let data = app.ok(token, NOTICE, json!({ "id": id })).await;
            assert_eq!(data["outbreakNotice"]["pathogen"], "NOROVIRUS");
            assert!(affected(&data["outbreakNotice"]).is_empty());
        }
        // Nor is it named again: the reporter no longer reads its INFECTIONS.
        let mut again = norovirus(app);
        again["affectedPatientIds"] = json!([s.resident_b]);
        let body = app.gql(&s.home_doctor, REPORT, json!({ "i": again })).await;
        assert_eq!(code(&body), "FORBIDDEN");
    }
);

e2e!(
    naming_a_patient_the_reporter_may_not_name_writes_nothing,
    |app| async move {
        let s = scene(app).await;
        // A patient of the hospital's, whose team the home is not on: as
        // if there were none, and nothing is written.
        let mut input = norovirus(app);
        input["affectedPatientIds"] = json!([s.resident_a, s.outsider_patient]);
        let body = app.gql(&s.home_doctor, REPORT, json!({ "i": input })).await;
        assert_eq!(code(&body), "NOT_FOUND");
        // A resident the home knows, named by a care worker who may not
        // read INFECTIONS, or by the nurse who reads but does not write
        // them: naming is writing INFECTIONS — FORBIDDEN.
        let mut input = norovirus(app);
        input["affectedPatientIds"] = json!([s.resident_a]);
        for token in [&s.home_care_worker, &s.home_nurse] {
            let body = app.gql(token, REPORT, json!({ "i": input.clone() })).await;
            assert_eq!(code(&body), "FORBIDDEN", "{body}");
        }
        // The nurse reports without naming anyone.
        app.ok(&s.home_nurse, REPORT, json!({ "i": norovirus(app) }))
            .await;
        for token in [&s.home_doctor, &s.doctor] {
            let list = listed(app, token, json!(null)).await;
            assert_eq!(list.len(), 1, "only the nurse's notice: {list:?}");
            assert!(affected(&list[0]).is_empty());
        }
        let denied = audit_of(
            app,
            json!({ "actorId": s.home_doctor_id, "action": "DENIED" }),
        )
        .await;
        assert!(
            denied
                .iter()
                .any(|e| e["patientId"] == s.outsider_patient.as_str()),
            "{denied:?}"
        );
        // The care worker reports without naming anyone; ambulance crews
        // and the network's administrators report nothing.
        let data = app
            .ok(&s.home_care_worker, REPORT, json!({ "i": norovirus(app) }))
            .await;
        assert!(affected(&data["reportOutbreak"]).is_empty());
        let ambulance = app.organization("AMBULANCE_SERVICE", "北川消防署").await;
        let (_, crew) = app.member(&ambulance, "EMS_CREW").await;
        for token in [&crew, &app.admin_token] {
            let body = app.gql(token, REPORT, json!({ "i": norovirus(app) })).await;
            assert_eq!(code(&body), "FORBIDDEN", "{body}");
        }
        // Nor does an organisation that oversees rather than houses: a
        // support centre's public-health nurse, on the team of resident A.
        let centre = app
            .organization(
                "COMMUNITY_GENERAL_SUPPORT_CENTER",
                "みなみ野地域包括支援センター",
            )
            .await;
        let (_, phn) = app.member(&centre, "PUBLIC_HEALTH_NURSE").await;
        app.ok(
            &s.doctor,
            ADD_MEMBER,
            json!({ "i": { "patientId": s.resident_a, "organizationId": centre, "role": "COMMUNITY_SUPPORT_CENTER" } }),
        )
        .await;
        let body = app.gql(&phn, REPORT, json!({ "i": norovirus(app) })).await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
    }
);

e2e!(
    only_patients_whose_consent_shares_the_care_team_make_a_recipient,
    |app| async move {
        let s = scene(app).await;
        // Resident B is all the pharmacy shares with the home; B's consent
        // now excludes CARE_TEAM: the pharmacy must not learn that it and
        // the home look after someone together.
        app.consent(
            &s.doctor,
            &s.resident_b,
            json!({ "scope": "NETWORK", "excludedCategories": ["CARE_TEAM"] }),
        )
        .await;
        let id = app
            .ok(&s.home_doctor, REPORT, json!({ "i": norovirus(app) }))
            .await["reportOutbreak"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(notification_kinds(app, &s.pharmacist, &id).await.is_empty());
        assert!(listed(app, &s.pharmacist, json!(null)).await.is_empty());
        for token in [&s.doctor, &s.helper] {
            assert_eq!(
                notification_kinds(app, token, &id).await,
                ["OUTBREAK_NOTICE"]
            );
        }
        // Two updates of different fields at the same moment both stand.
        let (a, b) = tokio::join!(
            app.gql(
                &s.home_doctor,
                UPDATE,
                json!({ "i": { "id": id, "residentCases": 9 } })
            ),
            app.gql(
                &s.home_doctor,
                UPDATE,
                json!({ "i": { "id": id, "measures": "全館で面会中止" } })
            ),
        );
        assert!(
            a.get("errors").is_none() && b.get("errors").is_none(),
            "{a} {b}"
        );
        let data = app
            .ok(
                &s.home_doctor,
                "query($id: ID!) { outbreakNotice(id: $id) { residentCases staffCases measures } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data["outbreakNotice"]["residentCases"], 9);
        assert_eq!(data["outbreakNotice"]["measures"], "全館で面会中止");
        assert_eq!(data["outbreakNotice"]["staffCases"], 2, "untouched");
    }
);

e2e!(
    the_reporting_facility_updates_and_ends_its_notice,
    |app| async move {
        let s = scene(app).await;
        let data = app
            .ok(&s.home_doctor, REPORT, json!({ "i": norovirus(app) }))
            .await;
        let id = data["reportOutbreak"]["id"].as_str().unwrap().to_string();
        // Only the reporter updates it.
        let body = app
            .gql(
                &s.doctor,
                UPDATE,
                json!({ "i": { "id": id, "residentCases": 9 } }),
            )
            .await;
        assert_eq!(code(&body), "FORBIDDEN");
        let body = app
            .gql(
                &s.hospital_doctor,
                UPDATE,
                json!({ "i": { "id": id, "residentCases": 9 } }),
            )
            .await;
        assert_eq!(code(&body), "NOT_FOUND");

        let data = app
            .ok(
                &s.home_doctor,
                UPDATE,
                json!({ "i": { "id": id, "residentCases": 9, "staffCases": null, "measures": "面会制限、通所の休止、2階の食事は居室で" } }),
            )
            .await;
        let n = &data["updateOutbreak"];
        assert_eq!(n["residentCases"], 9);
        assert_eq!(n["staffCases"], Value::Null);
        assert_eq!(n["scope"], "2階フロア", "kept");
        assert_eq!(n["status"], "ONGOING");
        assert_eq!(
            notification_kinds(app, &s.helper, &id).await,
            ["OUTBREAK_NOTICE", "OUTBREAK_NOTICE"],
            "reported, updated"
        );
        // The end: not before the onset, not in the future.
        let body = app
            .gql(
                &s.home_doctor,
                UPDATE,
                json!({ "i": { "id": id, "end": true, "endedOn": days_ago(app, 5) } }),
            )
            .await;
        assert_eq!(code(&body), "BAD_USER_INPUT");
        assert_eq!(field(&body), "input.endedOn");
        let tomorrow = (app.clock.today() + chrono::Days::new(1)).to_string();
        let body = app
            .gql(
                &s.home_doctor,
                UPDATE,
                json!({ "i": { "id": id, "end": true, "endedOn": tomorrow } }),
            )
            .await;
        assert_eq!(field(&body), "input.endedOn");
        let data = app
            .ok(
                &s.home_doctor,
                UPDATE,
                json!({ "i": { "id": id, "end": true } }),
            )
            .await;
        assert_eq!(data["updateOutbreak"]["status"], "ENDED");
        assert_eq!(
            data["updateOutbreak"]["endedOn"],
            app.clock.today().to_string()
        );
        assert_eq!(notification_kinds(app, &s.doctor, &id).await.len(), 3);
        // Ended: no more updates.
        let body = app
            .gql(
                &s.home_doctor,
                UPDATE,
                json!({ "i": { "id": id, "residentCases": 10 } }),
            )
            .await;
        assert_eq!(code(&body), "CONFLICT");
        assert_eq!(
            listed(app, &s.doctor, json!(["ONGOING"])).await,
            Vec::<Value>::new()
        );
        assert_eq!(listed(app, &s.doctor, json!(["ENDED"])).await.len(), 1);
        let writes = audit_of(
            app,
            json!({ "actorId": s.home_doctor_id, "action": "WRITE" }),
        )
        .await;
        for what in ["reported", "updated", "ended"] {
            assert!(
                writes
                    .iter()
                    .any(|e| e["detail"] == format!("outbreak notice {id}: {what}")),
                "{what}: {writes:?}"
            );
        }
    }
);

e2e!(
    an_outbreak_report_is_validated_naming_the_field,
    |app| async move {
        let s = scene(app).await;
        let base = norovirus(app);
        for (change, expected) in [
            (json!({ "onsetOn": days_ago(app, 91) }), "input.onsetOn"),
            (
                json!({ "onsetOn": (app.clock.today() + chrono::Days::new(1)).to_string() }),
                "input.onsetOn",
            ),
            (json!({ "scope": "   " }), "input.scope"),
            (json!({ "scope": "あ".repeat(201) }), "input.scope"),
            (json!({ "residentCases": -1 }), "input.residentCases"),
            (json!({ "staffCases": 10001 }), "input.staffCases"),
            (json!({ "measures": " \n " }), "input.measures"),
            (json!({ "pathogen": "OTHER" }), "input.otherPathogen"),
            (
                json!({ "pathogen": "OTHER", "otherPathogen": "  " }),
                "input.otherPathogen",
            ),
            (
                json!({ "otherPathogen": "レジオネラ" }),
                "input.otherPathogen",
            ),
            (
                json!({ "affectedPatientIds": ["not-an-id"] }),
                "input.affectedPatientIds[0]",
            ),
        ] {
            let mut input = base.clone();
            for (k, v) in change.as_object().unwrap() {
                input[k] = v.clone();
            }
            let body = app.gql(&s.home_doctor, REPORT, json!({ "i": input })).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{change}: {body}");
            assert_eq!(field(&body), expected, "{body}");
        }
        // Nothing was written.
        assert!(listed(app, &s.home_doctor, json!(null)).await.is_empty());
        let mut other = base.clone();
        other["pathogen"] = json!("OTHER");
        other["otherPathogen"] = json!(" レジオネラ ");
        other["onsetOn"] = json!(days_ago(app, 90));
        let data = app.ok(&s.home_doctor, REPORT, json!({ "i": other })).await;
        assert_eq!(data["reportOutbreak"]["otherPathogen"], "レジオネラ");
        let id = data["reportOutbreak"]["id"].as_str().unwrap().to_string();
        for (change, expected) in [
            (json!({}), "input"),
            (json!({ "residentCases": 10001 }), "input.residentCases"),
            (json!({ "scope": "" }), "input.scope"),
            (json!({ "endedOn": days_ago(app, 1) }), "input.endedOn"),
            (json!({ "id": "x", "residentCases": 1 }), "input.id"),
        ] {
            let mut input = json!({ "id": id });
            for (k, v) in change.as_object().unwrap() {
                input[k] = v.clone();
            }
            let body = app.gql(&s.home_doctor, UPDATE, json!({ "i": input })).await;
            assert_eq!(code(&body), "BAD_USER_INPUT", "{change}: {body}");
            assert_eq!(field(&body), expected, "{body}");
        }
    }
);
