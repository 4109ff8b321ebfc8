//! Consents recorded before forms and statuses existed (migration
//! `m20261204_000007_consent_forms`) stay valid: the one in force still
//! grants access, the history reads as it happened, and what was not
//! recorded (who signed) reads `null`.
//!
//! The database is migrated up to the migration before, filled the way the
//! hub of then wrote it, and the real server is started on it (which applies
//! the rest).

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeDelta, Utc};
use migration::{Migrator, MigratorTrait};
use renkei_schema::clock::ManualClock;
use renkei_tests::*;
use sea_orm::sea_query::{Alias, Query, Value};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// The migrations before the one under test.
const BEFORE: u32 = 6;

async fn insert(db: &DatabaseConnection, table: &str, row: Vec<(&str, Value)>) {
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
    in_force_patient: Uuid,
    withdrawn_patient: Uuid,
    superseded: Uuid,
    in_force: Uuid,
    withdrawn: Uuid,
}

/// One clinic, one physician, two patients: one with an oral consent
/// superseded by a written one, one who withdrew.
async fn fill(db: &DatabaseConnection) -> Legacy {
    let now = Utc::now();
    let day = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
    let clinic = Uuid::now_v7();
    insert(
        db,
        "organizations",
        vec![
            ("id", clinic.into()),
            ("kind", "CLINIC".into()),
            ("name", "旧 クリニック".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .await;
    let doctor = Uuid::now_v7();
    insert(
        db,
        "members",
        vec![
            ("id", doctor.into()),
            ("organization_id", clinic.into()),
            ("name", "旧 医師".into()),
            ("profession", "PHYSICIAN".into()),
            ("status", "ACTIVE".into()),
            ("created_at", now.into()),
            ("updated_at", now.into()),
        ],
    )
    .await;
    let mut patients = Vec::new();
    for _ in 0..2 {
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
        insert(
            db,
            "care_team_memberships",
            vec![
                ("id", Uuid::now_v7().into()),
                ("patient_id", patient.into()),
                ("organization_id", clinic.into()),
                ("member_id", Some(doctor).into()),
                ("role", "PRIMARY_PHYSICIAN".into()),
                ("start_date", day.into()),
                ("created_at", now.into()),
                ("updated_at", now.into()),
            ],
        )
        .await;
        patients.push(patient);
    }
    let consent = |patient: Uuid,
                   method: &str,
                   form: Option<&str>,
                   recorded: chrono::DateTime<Utc>,
                   ended: Option<(chrono::DateTime<Utc>, &str)>| {
        let id = Uuid::now_v7();
        (
            id,
            vec![
                ("id", id.into()),
                ("patient_id", patient.into()),
                ("scope", "NETWORK".into()),
                ("organization_ids", "[]".into()),
                ("excluded_categories", "[]".into()),
                ("method", method.into()),
                ("form_reference", form.map(str::to_string).into()),
                ("obtained_on", day.into()),
                ("recorded_by_member", Some(doctor).into()),
                ("recorded_by_organization", clinic.into()),
                ("recorded_at", recorded.into()),
                ("withdrawn_at", ended.map(|(at, _)| at).into()),
                ("withdrawn_by_member", ended.map(|_| doctor).into()),
                (
                    "withdrawal_reason",
                    ended.map(|(_, why)| why.to_string()).into(),
                ),
            ],
        )
    };
    let earlier = now - TimeDelta::days(30);
    let (superseded, row) = consent(
        patients[0],
        "ORAL",
        None,
        earlier,
        Some((now - TimeDelta::days(10), "superseded by a new consent")),
    );
    insert(db, "consents", row).await;
    let (in_force, row) = consent(
        patients[0],
        "WRITTEN",
        Some("同意書 2025-0001"),
        now - TimeDelta::days(10),
        None,
    );
    insert(db, "consents", row).await;
    let (withdrawn, row) = consent(
        patients[1],
        "WRITTEN",
        Some("同意書 2025-0002"),
        earlier,
        Some((now - TimeDelta::days(5), "本人の申し出")),
    );
    insert(db, "consents", row).await;
    Legacy {
        doctor,
        in_force_patient: patients[0],
        withdrawn_patient: patients[1],
        superseded,
        in_force,
        withdrawn,
    }
}

async fn legacy_consents_stay_valid(backend: Backend) {
    let (database, url) = TestDatabase::create(backend).await;
    let db = Database::connect(&url).await.expect("connect");
    Migrator::up(&db, Some(BEFORE))
        .await
        .expect("migrate to before");
    let legacy = fill(&db).await;
    db.close().await.ok();

    // The server applies the rest at start.
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
    let token = token_for(legacy.doctor);
    let gql = |query: &'static str, variables: Json| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            client
                .post(format!("http://{addr}/graphql"))
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("sent")
                .json::<Json>()
                .await
                .expect("JSON")
        }
    };
    const READ: &str = "query($id: ID!) { patient(id: $id) {
        name
        activeConsent { id }
        consents { id status active withdrawalReason form { reference signedOn signedBy proxyName } }
    } }";

    // The consent in force still grants access; the history reads as it was.
    let body = gql(READ, json!({ "id": legacy.in_force_patient })).await;
    let p = &body["data"]["patient"];
    assert_eq!(p["name"], "連携 花子", "{body}");
    assert_eq!(p["activeConsent"]["id"], legacy.in_force.to_string());
    assert_eq!(
        p["consents"],
        json!([
            { "id": legacy.in_force.to_string(), "status": "IN_FORCE", "active": true, "withdrawalReason": null,
              "form": { "reference": "同意書 2025-0001", "signedOn": "2025-06-01", "signedBy": null, "proxyName": null } },
            { "id": legacy.superseded.to_string(), "status": "SUPERSEDED", "active": false, "withdrawalReason": "superseded by a new consent",
              "form": { "reference": null, "signedOn": "2025-06-01", "signedBy": null, "proxyName": null } },
        ]),
        "{body}"
    );
    // The withdrawn patient stays withdrawn, and a new consent from the
    // team is a widening after a withdrawal: pending.
    let body = gql(READ, json!({ "id": legacy.withdrawn_patient })).await;
    assert!(body["data"]["patient"]["name"].is_null(), "{body}");
    assert_eq!(
        body["data"]["patient"]["consents"][0]["id"],
        legacy.withdrawn.to_string()
    );
    assert_eq!(
        body["data"]["patient"]["consents"][0]["status"],
        "WITHDRAWN"
    );
    const RECORD: &str =
        "mutation($i: RecordConsentInput!) { recordConsent(input: $i) { status } }";
    let input = |patient: Uuid| json!({ "i": { "patientId": patient, "scope": "NETWORK", "method": "WRITTEN", "form": CONSENT_FORM.clone() } });
    let body = gql(RECORD, input(legacy.withdrawn_patient)).await;
    assert_eq!(body["data"]["recordConsent"]["status"], "PENDING", "{body}");
    // The clinic the legacy consent covers renews it on a new form: in
    // force, superseding the legacy one (the index moved with the status).
    let body = gql(RECORD, input(legacy.in_force_patient)).await;
    assert_eq!(
        body["data"]["recordConsent"]["status"], "IN_FORCE",
        "{body}"
    );
    let body = gql(READ, json!({ "id": legacy.in_force_patient })).await;
    let statuses: Vec<&str> = body["data"]["patient"]["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["IN_FORCE", "SUPERSEDED", "SUPERSEDED"], "{body}");

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_consents_stay_valid_on_sqlite() {
    legacy_consents_stay_valid(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_consents_stay_valid_on_postgres() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    legacy_consents_stay_valid(Backend::Postgres).await;
}
