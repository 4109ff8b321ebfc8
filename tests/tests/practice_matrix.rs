//! Default permissions that match practice (issue 14, part 1), through
//! GraphQL over HTTP: every matrix cell the issue changed, allowed and
//! denied; the records that moved to VISITING_NURSE_REPORTS and
//! NUTRITION_SWALLOWING reaching the care side; PT, OT and ST told apart, the
//! legacy THERAPIST at the least of the three, and `setMemberProfession`;
//! and the migration that re-files existing rows carrying over the consent
//! exclusions and API-key permissions that named the old categories.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeDelta, Utc};
use migration::{Migrator, MigratorTrait};
use renkei_schema::clock::ManualClock;
use renkei_schema::domain::{AccessLevel, DataCategory, Profession, Text};
use renkei_schema::principal::{Principal, SystemPermissions};
use renkei_tests::*;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, Value as SqlValue};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use uuid::Uuid;

const ACCESS: &str =
    "query($id: ID!) { patient(id: $id) { access { category read write reason } } }";
const WRITE: &str =
    "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id category } } }";
const SET_PROFESSION: &str = "mutation($m: ID!, $p: Profession!) { setMemberProfession(memberId: $m, profession: $p) { id profession } }";

/// A clinic physician's patient with a network-wide consent, and a care
/// service provider on the care team where every other profession works.
/// Returns (patient, physician token, provider id).
async fn patient_with_team(app: &TestApp) -> (String, String, String) {
    let clinic = app.organization("CLINIC", "実務クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "P-1").await;
    let provider = app.organization("CARE_SERVICE_PROVIDER", "実務介護").await;
    app.ok(
        &doctor,
        "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "organizationId": provider, "role": "CARE_SERVICE" } }),
    )
    .await;
    (patient, doctor, provider)
}

/// A member registered as THERAPIST before the split: the API no longer
/// gives the value, so the row is set as the hub of then wrote it — before
/// the member's first request, so no cache holds the registered profession.
async fn legacy_therapist(app: &TestApp, org: &str) -> (String, String) {
    let (id, token) = app.member(org, "PHYSICAL_THERAPIST").await;
    let stmt = Query::update()
        .table(Alias::new("members"))
        .value(Alias::new("profession"), "THERAPIST")
        .and_where(Expr::col(Alias::new("id")).eq(Uuid::parse_str(&id).unwrap()))
        .to_owned();
    app.db.execute(&stmt).await.expect("legacy profession");
    (id, token)
}

/// The caller's access to the patient: category → "RW", "R" or "-".
async fn levels(app: &TestApp, token: &str, patient: &str) -> HashMap<String, &'static str> {
    let data = app.ok(token, ACCESS, json!({ "id": patient })).await;
    data["patient"]["access"]
        .as_array()
        .expect("access list")
        .iter()
        .map(|a| {
            let level = match (a["read"].as_bool(), a["write"].as_bool()) {
                (Some(true), Some(true)) => "RW",
                (Some(true), _) => "R",
                _ => "-",
            };
            (a["category"].as_str().unwrap().to_string(), level)
        })
        .collect()
}

/// Every cell the issue changed (allowed), and beside each profession what
/// stays closed to it (denied). Written out by hand from the issue and the
/// seeds, not from the matrix code.
const CELLS: &[(&str, &[(&str, &str)])] = &[
    (
        "PHYSICIAN",
        &[
            // RW: the instruction to the station (訪問看護指示書) is filed
            // with the reports; the opinion for the certification is the
            // physician's to write.
            ("VISITING_NURSE_REPORTS", "RW"),
            ("NUTRITION_SWALLOWING", "RW"),
            ("CARE_CERTIFICATION", "RW"),
        ],
    ),
    (
        "DENTIST",
        &[
            ("NUTRITION_SWALLOWING", "RW"),
            ("CARE_CERTIFICATION", "R"),
            ("VISITING_NURSE_REPORTS", "-"),
        ],
    ),
    (
        "DENTAL_HYGIENIST",
        &[
            ("NUTRITION_SWALLOWING", "RW"),
            ("CARE_CERTIFICATION", "R"),
            ("EMERGENCY_INFORMATION", "R"),
            ("CONDITIONS", "-"),
        ],
    ),
    (
        "PHARMACIST",
        &[
            ("NUTRITION_SWALLOWING", "R"),
            ("CARE_CERTIFICATION", "R"),
            ("VISITING_NURSE_REPORTS", "-"),
            ("SENSITIVE_PSYCHIATRIC", "-"),
        ],
    ),
    (
        "NURSE",
        &[
            ("VISITING_NURSE_REPORTS", "RW"),
            ("NUTRITION_SWALLOWING", "R"),
        ],
    ),
    (
        "PUBLIC_HEALTH_NURSE",
        &[
            ("VISITING_NURSE_REPORTS", "-"),
            ("NUTRITION_SWALLOWING", "-"),
        ],
    ),
    (
        "PHYSICAL_THERAPIST",
        &[
            ("VISITING_NURSE_REPORTS", "R"),
            ("NUTRITION_SWALLOWING", "R"),
            ("CARE_CERTIFICATION", "R"),
            ("EMERGENCY_INFORMATION", "R"),
            ("HOME_ENVIRONMENT", "RW"),
            ("LAB_RESULTS", "-"),
        ],
    ),
    (
        "OCCUPATIONAL_THERAPIST",
        &[
            ("VISITING_NURSE_REPORTS", "R"),
            ("NUTRITION_SWALLOWING", "R"),
            ("CARE_CERTIFICATION", "R"),
            ("EMERGENCY_INFORMATION", "R"),
            ("HOME_ENVIRONMENT", "RW"),
            ("DENTAL", "-"),
        ],
    ),
    (
        "SPEECH_THERAPIST",
        &[
            ("VISITING_NURSE_REPORTS", "R"),
            ("NUTRITION_SWALLOWING", "RW"),
            ("CARE_CERTIFICATION", "R"),
            ("EMERGENCY_INFORMATION", "R"),
            ("HOME_ENVIRONMENT", "R"),
            ("DENTAL", "-"),
        ],
    ),
    (
        "DIETITIAN",
        &[
            ("NUTRITION_SWALLOWING", "RW"),
            ("CARE_CERTIFICATION", "R"),
            ("EMERGENCY_INFORMATION", "R"),
            ("VISITING_NURSE_REPORTS", "-"),
        ],
    ),
    (
        "CARE_MANAGER",
        &[
            ("VISITING_NURSE_REPORTS", "R"),
            ("NUTRITION_SWALLOWING", "R"),
            ("SENSITIVE_PSYCHIATRIC", "R"),
            ("LAB_RESULTS", "-"),
            ("SENSITIVE_HIV", "-"),
            ("CLINICAL_DOCUMENTS", "-"),
        ],
    ),
    (
        "CARE_WORKER",
        &[
            ("VISITING_NURSE_REPORTS", "R"),
            ("NUTRITION_SWALLOWING", "R"),
            ("ADVANCE_CARE_PLANNING", "R"),
            ("LAB_RESULTS", "-"),
            ("CLINICAL_DOCUMENTS", "-"),
            ("SENSITIVE_PSYCHIATRIC", "-"),
            ("CARE_CERTIFICATION", "-"),
        ],
    ),
    (
        "MEDICAL_SOCIAL_WORKER",
        &[
            ("CLINICAL_DOCUMENTS", "RW"),
            ("ADMISSION_DISCHARGE", "RW"),
            ("LAB_RESULTS", "-"),
            ("NUTRITION_SWALLOWING", "-"),
        ],
    ),
    (
        "SOCIAL_WORKER",
        &[
            ("VISITING_NURSE_REPORTS", "-"),
            ("NUTRITION_SWALLOWING", "-"),
        ],
    ),
    (
        "EMS_CREW",
        &[
            ("VISITING_NURSE_REPORTS", "-"),
            ("NUTRITION_SWALLOWING", "-"),
        ],
    ),
    (
        "MUNICIPAL_STAFF",
        &[
            ("VISITING_NURSE_REPORTS", "-"),
            ("NUTRITION_SWALLOWING", "-"),
        ],
    ),
];

e2e!(
    every_changed_cell_opens_and_its_neighbours_stay_closed,
    |app| async move {
        let (patient, doctor, provider) = patient_with_team(app).await;
        for (profession, cells) in CELLS {
            let token = if *profession == "PHYSICIAN" {
                doctor.clone()
            } else if *profession == "EMS_CREW" {
                // Crews work for ambulance services; the row as stored.
                app.member_stored_as(&provider, profession).await.1
            } else {
                app.member(&provider, profession).await.1
            };
            let got = levels(app, &token, &patient).await;
            for (category, want) in *cells {
                assert_eq!(got[*category], *want, "{profession} {category}");
            }
        }

        // The legacy THERAPIST gets, cell by cell, the least of PT, OT and ST:
        // nothing one of them lacks (no swallowing write, no home write).
        let mut rows = Vec::new();
        for p in [
            "PHYSICAL_THERAPIST",
            "OCCUPATIONAL_THERAPIST",
            "SPEECH_THERAPIST",
        ] {
            let (_, token) = app.member(&provider, p).await;
            rows.push(levels(app, &token, &patient).await);
        }
        let (_, legacy) = legacy_therapist(app, &provider).await;
        let got = levels(app, &legacy, &patient).await;
        let rank = |l: &str| ["-", "R", "RW"].iter().position(|x| *x == l).unwrap();
        for c in DataCategory::ALL {
            let least = rows.iter().map(|r| r[c.as_str()]).min_by_key(|l| rank(l));
            assert_eq!(Some(got[c.as_str()]), least, "THERAPIST {c}");
        }
        assert_eq!(got["NUTRITION_SWALLOWING"], "R");
        assert_eq!(got["HOME_ENVIRONMENT"], "R");
        assert_eq!(got["LAB_RESULTS"], "-");
    }
);

/// `writeRecords` as `token`: the written record's category, or the error code.
async fn write(app: &TestApp, token: &str, patient: &str, data: Value) -> Result<String, String> {
    let body = app
        .gql(
            token,
            WRITE,
            json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-10T09:00:00Z", "data": data }] } }),
        )
        .await;
    match error_code(&body) {
        Some(code) => Err(code),
        None => Ok(body["data"]["writeRecords"][0]["record"]["category"]
            .as_str()
            .unwrap()
            .to_string()),
    }
}

/// How many records of `kind` the caller's timeline shows.
async fn seen(app: &TestApp, token: &str, patient: &str, kind: &str) -> usize {
    let q = format!(
        "query($id: ID!) {{ patient(id: $id) {{ timeline(kinds: [{kind}]) {{ edges {{ node {{ id }} }} }} }} }}"
    );
    let body = app.gql(token, &q, json!({ "id": patient })).await;
    body["data"]["patient"]["timeline"]["edges"]
        .as_array()
        .map_or(0, Vec::len)
}

fn swallowing(method: &str) -> Value {
    json!({ "swallowingAssessment": { "method": method, "level": 7, "dietForm": "嚥下調整食3", "findings": "液体で喉頭侵入あり。中間のとろみで誤嚥なし" } })
}

e2e!(
    the_records_that_moved_reach_the_care_side,
    |app| async move {
        let (patient, doctor, provider) = patient_with_team(app).await;
        let provider = &provider;
        let member = |p: &'static str| async move { app.member(provider, p).await.1 };
        let nurse = member("NURSE").await;
        let worker = member("CARE_WORKER").await;
        let manager = member("CARE_MANAGER").await;
        let pharmacist = member("PHARMACIST").await;
        let st = member("SPEECH_THERAPIST").await;
        let pt = member("PHYSICAL_THERAPIST").await;
        let social = member("SOCIAL_WORKER").await;
        let msw = member("MEDICAL_SOCIAL_WORKER").await;

        // 訪問看護報告書: the nurse writes it, the care side reads it; the
        // pharmacist does not, nor the care worker the clinical documents.
        let report = json!({ "visitingNurseReport": { "condition": "血圧安定。食事量やや低下", "careProvided": "服薬確認、清拭" } });
        assert_eq!(
            write(app, &nurse, &patient, report.clone())
                .await
                .as_deref(),
            Ok("VISITING_NURSE_REPORTS")
        );
        assert_eq!(
            write(app, &worker, &patient, report).await,
            Err("FORBIDDEN".into())
        );
        for (token, n) in [(&worker, 1), (&manager, 1), (&doctor, 1), (&pharmacist, 0)] {
            assert_eq!(seen(app, token, &patient, "VISITING_NURSE_REPORT").await, n);
        }
        let letter = |t: &str| json!({ "clinicalDocument": { "documentType": t, "title": "文書", "text": "本文" } });
        write(app, &doctor, &patient, letter("DISCHARGE_SUMMARY"))
            .await
            .unwrap();
        assert_eq!(seen(app, &worker, &patient, "CLINICAL_DOCUMENT").await, 0);

        // The MSW writes the discharge-coordination report, and reads it beside
        // the discharge summary; a care worker may not write one.
        assert_eq!(
            write(app, &msw, &patient, letter("DISCHARGE_COORDINATION_REPORT"))
                .await
                .as_deref(),
            Ok("CLINICAL_DOCUMENTS")
        );
        assert_eq!(seen(app, &msw, &patient, "CLINICAL_DOCUMENT").await, 2);
        assert_eq!(
            write(
                app,
                &worker,
                &patient,
                letter("DISCHARGE_COORDINATION_REPORT")
            )
            .await,
            Err("FORBIDDEN".into())
        );

        // Swallowing: the physician records a VF, the ST a screening; a PT may
        // not record one but reads them, as the care worker does; a social
        // worker does not.
        assert_eq!(
            write(app, &doctor, &patient, swallowing("VF"))
                .await
                .as_deref(),
            Ok("NUTRITION_SWALLOWING")
        );
        assert_eq!(
            write(app, &st, &patient, swallowing("RSST"))
                .await
                .as_deref(),
            Ok("NUTRITION_SWALLOWING")
        );
        assert_eq!(
            write(app, &pt, &patient, swallowing("VE")).await,
            Err("FORBIDDEN".into())
        );
        for (token, n) in [(&pt, 2), (&worker, 2), (&pharmacist, 2), (&social, 0)] {
            assert_eq!(seen(app, token, &patient, "SWALLOWING_ASSESSMENT").await, n);
        }

        // ACP: the care worker reads it (看取り at home), may not write it.
        let acp = json!({ "advanceCarePlan": { "placeOfDeath": "HOME", "cpr": "DECLINES", "note": "自宅で最期を迎えたい" } });
        write(app, &doctor, &patient, acp.clone()).await.unwrap();
        assert_eq!(seen(app, &worker, &patient, "ADVANCE_CARE_PLAN").await, 1);
        assert_eq!(
            write(app, &worker, &patient, acp).await,
            Err("FORBIDDEN".into())
        );

        // A psychiatric condition: the care manager learns of it, the
        // pharmacist (who reads other conditions) does not.
        let depression = json!({ "condition": { "name": "うつ病", "icd10": "F32.9", "clinicalStatus": "ACTIVE", "sensitivity": "PSYCHIATRIC" } });
        assert_eq!(
            write(app, &doctor, &patient, depression).await.as_deref(),
            Ok("SENSITIVE_PSYCHIATRIC")
        );
        assert_eq!(seen(app, &manager, &patient, "CONDITION").await, 1);
        assert_eq!(seen(app, &pharmacist, &patient, "CONDITION").await, 0);
    }
);

e2e!(
    administrators_name_a_legacy_therapists_profession,
    |app| async move {
        let (patient, doctor, provider) = patient_with_team(app).await;
        let (id, therapist) = legacy_therapist(app, &provider).await;
        let me = "{ me { member { profession } } }";
        assert_eq!(
            app.ok(&therapist, me, json!({})).await["me"]["member"]["profession"],
            "THERAPIST"
        );
        assert_eq!(
            write(app, &therapist, &patient, swallowing("RSST")).await,
            Err("FORBIDDEN".into()),
            "the legacy value has the least of PT, OT and ST"
        );

        // Only an administrator names a profession.
        let set = |token: String, member: String, p: &'static str| async move {
            app.gql(&token, SET_PROFESSION, json!({ "m": member, "p": p }))
                .await
        };
        let body = set(doctor.clone(), id.clone(), "SPEECH_THERAPIST").await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        let body = set(therapist.clone(), id.clone(), "SPEECH_THERAPIST").await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");

        // Bad input: the legacy value itself, a malformed or unknown member, an
        // unknown profession; and registering a new THERAPIST.
        let admin = app.admin_token.clone();
        let body = set(admin.clone(), id.clone(), "THERAPIST").await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        let body = set(admin.clone(), "not-an-id".into(), "SPEECH_THERAPIST").await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        let body = set(
            admin.clone(),
            Uuid::now_v7().to_string(),
            "SPEECH_THERAPIST",
        )
        .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        let body = set(admin.clone(), id.clone(), "ASTRONAUT").await;
        assert!(
            body["errors"].is_array() && Value::is_null(&body["data"]),
            "{body}"
        );
        let body = app
        .gql(
            &admin,
            "mutation($i: RegisterMemberInput!) { registerMember(input: $i) { id } }",
            json!({ "i": { "organizationId": provider, "name": "新人 療法士", "profession": "THERAPIST" } }),
        )
        .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(
            app.ok(&therapist, me, json!({})).await["me"]["member"]["profession"],
            "THERAPIST",
            "refused changes change nothing"
        );

        // Named a speech therapist, the member records swallowing at once …
        let body = set(admin.clone(), id.clone(), "SPEECH_THERAPIST").await;
        assert_eq!(
            body["data"]["setMemberProfession"],
            json!({ "id": id, "profession": "SPEECH_THERAPIST" }),
            "{body}"
        );
        assert_eq!(
            write(app, &therapist, &patient, swallowing("RSST"))
                .await
                .as_deref(),
            Ok("NUTRITION_SWALLOWING")
        );
        // … and renamed a physical therapist, no longer.
        set(admin.clone(), id.clone(), "PHYSICAL_THERAPIST").await;
        assert_eq!(
            write(app, &therapist, &patient, swallowing("RSST")).await,
            Err("FORBIDDEN".into())
        );
    }
);

// ---------------------------------------------------------------------------
// The migration: rows written before it, read after it.

/// The migrations before `m20261212_000012_practice_categories`.
const BEFORE: u32 = 11;

async fn insert(db: &DatabaseConnection, table: &str, row: Vec<(&str, SqlValue)>) {
    let (columns, values): (Vec<_>, Vec<_>) = row.into_iter().unzip();
    let stmt = Query::insert()
        .into_table(Alias::new(table))
        .columns(columns.into_iter().map(Alias::new))
        .values_panic(values.into_iter().map(Into::into))
        .to_owned();
    db.execute(&stmt)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
}

struct Legacy {
    doctor: Uuid,
    manager: Uuid,
    /// Excluded CLINICAL_DOCUMENTS and DENTAL.
    excluding: Uuid,
    /// Excluded nothing.
    open: Uuid,
    /// The clinic's system: CLINICAL_DOCUMENTS read-write, DENTAL read.
    api_key: String,
}

/// A clinic (physician, and an API key) and a care office (care manager) on
/// the care team of two patients, each with a visiting-nurse report (in two
/// versions) and a swallowing assessment filed the old way; one patient's
/// consent excluded CLINICAL_DOCUMENTS and DENTAL.
async fn fill(db: &DatabaseConnection) -> Legacy {
    let now = Utc::now();
    let day = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
    let org = |kind: &'static str, name: &'static str| {
        let id = Uuid::now_v7();
        (
            id,
            vec![
                ("id", id.into()),
                ("kind", kind.into()),
                ("name", name.into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
    };
    let (clinic, row) = org("CLINIC", "旧 クリニック");
    insert(db, "organizations", row).await;
    let (office, row) = org("HOME_CARE_SUPPORT_OFFICE", "旧 居宅介護支援事業所");
    insert(db, "organizations", row).await;
    let mut members = Vec::new();
    for (at, profession) in [(clinic, "PHYSICIAN"), (office, "CARE_MANAGER")] {
        let id = Uuid::now_v7();
        insert(
            db,
            "members",
            vec![
                ("id", id.into()),
                ("organization_id", at.into()),
                ("name", "旧 職員".into()),
                ("profession", profession.into()),
                ("status", "ACTIVE".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        members.push(id);
    }
    let mut patients = Vec::new();
    for excluded in [r#"["CLINICAL_DOCUMENTS","DENTAL"]"#, "[]"] {
        let patient = Uuid::now_v7();
        insert(
            db,
            "patients",
            vec![
                ("id", patient.into()),
                ("name", "連携 花子".into()),
                ("name_kana", "レンケイ\u{3000}ハナコ".into()),
                (
                    "birth_date",
                    NaiveDate::from_ymd_opt(1940, 5, 1).unwrap().into(),
                ),
                ("sex", "FEMALE".into()),
                ("status", "ACTIVE".into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        for (at, member, role) in [
            (clinic, members[0], "PRIMARY_PHYSICIAN"),
            (office, members[1], "CARE_MANAGER"),
        ] {
            insert(
                db,
                "care_team_memberships",
                vec![
                    ("id", Uuid::now_v7().into()),
                    ("patient_id", patient.into()),
                    ("organization_id", at.into()),
                    ("member_id", Some(member).into()),
                    ("role", role.into()),
                    ("start_date", day.into()),
                    ("created_at", now.into()),
                    ("updated_at", now.into()),
                ],
            )
            .await;
        }
        insert(
            db,
            "consents",
            vec![
                ("id", Uuid::now_v7().into()),
                ("patient_id", patient.into()),
                ("scope", "NETWORK".into()),
                ("organization_ids", "[]".into()),
                ("excluded_categories", excluded.into()),
                ("method", "WRITTEN".into()),
                (
                    "form_reference",
                    Some("同意書 2025-0001".to_string()).into(),
                ),
                ("obtained_on", day.into()),
                ("recorded_by_member", Some(members[0]).into()),
                ("recorded_by_organization", clinic.into()),
                ("recorded_at", (now - TimeDelta::days(30)).into()),
                ("status", "IN_FORCE".into()),
                ("signed_by", Some("PATIENT".to_string()).into()),
            ],
        )
        .await;
        let report = |condition: &str| {
            json!({ "condition": condition, "careProvided": "清拭、服薬確認", "note": null })
                .to_string()
        };
        let record = |kind: &str, category: &str, version: i32, data: String| {
            let id = Uuid::now_v7();
            (
                id,
                vec![
                    ("id", id.into()),
                    ("patient_id", patient.into()),
                    ("kind", kind.into()),
                    ("category", category.into()),
                    ("source_organization_id", clinic.into()),
                    ("author_member_id", Some(members[0]).into()),
                    ("author_api_key_id", None::<Uuid>.into()),
                    ("source_record_id", None::<String>.into()),
                    ("version", version.into()),
                    ("status", "ACTIVE".into()),
                    ("effective_at", (now - TimeDelta::days(3)).into()),
                    ("recorded_at", (now - TimeDelta::days(3)).into()),
                    ("undisclosed", false.into()),
                    ("in_summary", false.into()),
                    ("series_key", None::<String>.into()),
                    ("data", data.into()),
                ],
            )
        };
        let (report_id, row) = record(
            "VISITING_NURSE_REPORT",
            "CLINICAL_DOCUMENTS",
            2,
            report("血圧安定"),
        );
        insert(db, "records", row).await;
        insert(
            db,
            "record_versions",
            vec![
                ("record_id", report_id.into()),
                ("version", 1.into()),
                ("category", "CLINICAL_DOCUMENTS".into()),
                ("source_organization_id", clinic.into()),
                ("author_member_id", Some(members[0]).into()),
                ("author_api_key_id", None::<Uuid>.into()),
                ("status", "ACTIVE".into()),
                ("effective_at", (now - TimeDelta::days(4)).into()),
                ("recorded_at", (now - TimeDelta::days(4)).into()),
                ("undisclosed", false.into()),
                ("data", report("血圧やや高め").into()),
            ],
        )
        .await;
        let assessment = json!({ "method": "VF", "level": 7, "dietForm": "嚥下調整食3", "findings": "とろみで誤嚥なし" });
        let (_, row) = record("SWALLOWING_ASSESSMENT", "DENTAL", 1, assessment.to_string());
        insert(db, "records", row).await;
        patients.push(patient);
    }

    // The clinic's system, created the way the hub does, with the
    // permissions of then.
    let admin = Principal::Member {
        member_id: Uuid::now_v7(),
        organization_id: clinic,
        profession: Profession::NetworkAdministrator,
    };
    let (key, api_key) = renkei_schema::services::api_keys::create(
        db,
        renkei_schema::policy::require_admin(&admin).unwrap(),
        &renkei_schema::audit::AuditStamp {
            principal: admin.clone(),
            request_id: "practice-matrix".into(),
        },
        renkei_schema::services::api_keys::NewApiKey {
            organization_id: clinic,
            name: Text::parse("name", "電子カルテ連携", 100).unwrap(),
            permissions: SystemPermissions::new([(DataCategory::Identity, AccessLevel::Read)]),
        },
    )
    .await
    .expect("API key");
    db.execute(
        &Query::update()
            .table(Alias::new("api_keys"))
            .value(
                Alias::new("permissions"),
                r#"{"CLINICAL_DOCUMENTS":"READ_WRITE","DENTAL":"READ","IDENTITY":"READ"}"#,
            )
            .and_where(Expr::col(Alias::new("id")).eq(key.id))
            .to_owned(),
    )
    .await
    .expect("legacy permissions");
    Legacy {
        doctor: members[0],
        manager: members[1],
        excluding: patients[0],
        open: patients[1],
        api_key,
    }
}

async fn the_migration_refiles_and_carries_exclusions_over(backend: Backend) {
    let (database, url) = TestDatabase::create(backend).await;
    let db = Database::connect(&url).await.expect("connect");
    Migrator::up(&db, Some(BEFORE))
        .await
        .expect("migrate to before");
    let legacy = fill(&db).await;
    db.close().await.ok();

    // The server applies the migration at start.
    let app = renkei_server::Application::build_with(
        test_config(url),
        Arc::new(ManualClock::new(Utc::now())),
        None,
    )
    .await
    .expect("the application builds on the legacy database");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let gql = |token: String, query: &'static str, variables: Value| {
        let client = client.clone();
        async move {
            client
                .post(format!("http://{addr}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    const READ: &str = "query($id: ID!) { patient(id: $id) {
        access { category read reason }
        timeline(kinds: [VISITING_NURSE_REPORT, SWALLOWING_ASSESSMENT]) { edges { node { kind category version history { version } } } }
    } }";
    let reason = |body: &Value, category: &str| -> String {
        body["data"]["patient"]["access"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["category"] == category)
            .map(|a| a["reason"].as_str().unwrap().to_string())
            .unwrap()
    };
    let kinds = |body: &Value| -> Vec<(String, String, u64, usize)> {
        let mut out: Vec<_> = body["data"]["patient"]["timeline"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let n = &e["node"];
                (
                    n["kind"].as_str().unwrap().to_string(),
                    n["category"].as_str().unwrap().to_string(),
                    n["version"].as_u64().unwrap(),
                    n["history"].as_array().unwrap().len(),
                )
            })
            .collect();
        out.sort();
        out
    };

    // The patient who excluded CLINICAL_DOCUMENTS and DENTAL keeps the
    // moved records hidden, from the physician who read the rest before …
    let doctor = token_for(legacy.doctor);
    let body = gql(doctor.clone(), READ, json!({ "id": legacy.excluding })).await;
    for c in [
        "VISITING_NURSE_REPORTS",
        "NUTRITION_SWALLOWING",
        "CLINICAL_DOCUMENTS",
        "DENTAL",
    ] {
        assert_eq!(reason(&body, c), "EXCLUDED_BY_CONSENT", "{c}: {body}");
    }
    assert_eq!(kinds(&body), vec![], "{body}");
    // … and from the care manager, to whom the new categories are open.
    let manager = token_for(legacy.manager);
    let body = gql(manager.clone(), READ, json!({ "id": legacy.excluding })).await;
    assert_eq!(
        reason(&body, "VISITING_NURSE_REPORTS"),
        "EXCLUDED_BY_CONSENT"
    );
    assert_eq!(reason(&body, "NUTRITION_SWALLOWING"), "EXCLUDED_BY_CONSENT");
    assert_eq!(kinds(&body), vec![], "{body}");
    // The consent reads as the patient meant it.
    let body = gql(
        doctor.clone(),
        "query($id: ID!) { patient(id: $id) { activeConsent { excludedCategories } } }",
        json!({ "id": legacy.excluding }),
    )
    .await;
    let mut excluded: Vec<String> = serde_json::from_value(
        body["data"]["patient"]["activeConsent"]["excludedCategories"].clone(),
    )
    .unwrap_or_else(|_| panic!("{body}"));
    excluded.sort();
    assert_eq!(
        excluded,
        [
            "CLINICAL_DOCUMENTS",
            "DENTAL",
            "NUTRITION_SWALLOWING",
            "VISITING_NURSE_REPORTS"
        ]
    );

    // The other patient's records moved, versions and all: the care manager
    // reads both, the report with its earlier version.
    let body = gql(manager, READ, json!({ "id": legacy.open })).await;
    assert_eq!(
        kinds(&body),
        vec![
            (
                "SWALLOWING_ASSESSMENT".into(),
                "NUTRITION_SWALLOWING".into(),
                1,
                0
            ),
            (
                "VISITING_NURSE_REPORT".into(),
                "VISITING_NURSE_REPORTS".into(),
                2,
                1
            ),
        ],
        "{body}"
    );

    // The API key that held CLINICAL_DOCUMENTS read-write and DENTAL read
    // holds the new categories alike: it files a report, reads but does not
    // write swallowing.
    let key = legacy.api_key.clone();
    const WRITE_ONE: &str =
        "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { category } } }";
    let one = |data: Value| json!({ "i": { "records": [{ "patientId": legacy.open, "effectiveAt": "2026-01-10T09:00:00Z", "data": data }] } });
    let body = gql(
        key.clone(),
        WRITE_ONE,
        one(json!({ "visitingNurseReport": { "condition": "安定", "careProvided": "清拭" } })),
    )
    .await;
    assert_eq!(
        body["data"]["writeRecords"][0]["record"]["category"], "VISITING_NURSE_REPORTS",
        "{body}"
    );
    let body = gql(key.clone(), WRITE_ONE, one(swallowing("RSST"))).await;
    assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
    let body = gql(key, ACCESS, json!({ "id": legacy.open })).await;
    let access = body["data"]["patient"]["access"].as_array().unwrap();
    let of = |c: &str| access.iter().find(|a| a["category"] == c).unwrap().clone();
    assert_eq!(of("NUTRITION_SWALLOWING")["read"], true, "{body}");
    assert_eq!(of("NUTRITION_SWALLOWING")["write"], false, "{body}");
    assert_eq!(
        of("LAB_RESULTS")["read"],
        false,
        "a key gets nothing it lacked"
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_refiles_and_carries_exclusions_over_on_sqlite() {
    the_migration_refiles_and_carries_exclusions_over(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_refiles_and_carries_exclusions_over_on_postgres() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    the_migration_refiles_and_carries_exclusions_over(Backend::Postgres).await;
}

e2e!(
    a_new_profession_ends_the_members_open_sessions,
    |app| async move {
        let (patient, _, provider) = patient_with_team(app).await;
        let (id, st) = app.member(&provider, "SPEECH_THERAPIST").await;
        let (_, other) = app.member(&provider, "SPEECH_THERAPIST").await;
        const EVENTS: &str = "subscription($p: ID!) { patientEvents(patientId: $p) { kind } }";
        let mut ws = app.ws(&st).await;
        let sub = ws.subscribe(EVENTS, json!({ "p": patient })).await;
        let mut bystander = app.ws(&other).await;
        bystander.subscribe(EVENTS, json!({ "p": patient })).await;
        ws.expect_silence(Duration::from_millis(300)).await;

        // Renamed a PT, the member's session would keep an ST's rights: it ends.
        app.ok(
            &app.admin_token,
            SET_PROFESSION,
            json!({ "m": id, "p": "PHYSICAL_THERAPIST" }),
        )
        .await;
        let (got, message) = ws.next().await;
        assert_eq!(got, sub);
        let WsMessage::Next(body) = message else {
            panic!("expected the end of the subscription, got {message:?}");
        };
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "ACCESS_ENDED",
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("profession"),
            "{body}"
        );
        // Another member's session goes on.
        bystander.expect_silence(Duration::from_millis(300)).await;
        assert!(!bystander.is_closed());
        // The member connects again, with the new profession's rights.
        let mut again = app.ws(&st).await;
        again.subscribe(EVENTS, json!({ "p": patient })).await;
        again.expect_silence(Duration::from_millis(300)).await;
        assert!(!again.is_closed());
        let levels = levels(app, &st, &patient).await;
        assert_eq!(levels["NUTRITION_SWALLOWING"], "R");
    }
);
