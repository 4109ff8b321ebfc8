//! The demo region, as a newcomer meets it: `serve --demo` and demo tokens.

use std::time::Duration;

use renkei_schema::demo::demo_member_id;
use renkei_schema::domain::Profession;
use renkei_server::config::AuthConfig;
use renkei_tests::*;
use serde_json::json;

fn demo_token(p: Profession) -> String {
    let auth = AuthConfig {
        jwt_algorithm: "RS256".into(),
        jwt_issuer: "renkei".into(),
        jwt_audience: "renkei".into(),
        api_key_cache_seconds: 60,
        ..Default::default()
    };
    renkei_server::auth::demo_token(&auth, demo_member_id(p), Duration::from_secs(600)).unwrap()
}

async fn demo(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.demo = true;
        c.auth.jwt_secret = None;
    })
    .await
}

const BY_LOCAL_ID: &str = "query($l: String!) { patientByLocalId(localId: $l) { id name careTeam { role organization { name } } } }";

macro_rules! demo_test {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let owned = demo(Backend::Sqlite).await;
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !postgres_configured() {
                    return;
                }
                let owned = demo(Backend::Postgres).await;
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }
        }
    };
}

demo_test!(
    a_demo_physician_lists_organisations_and_reads_a_patient_by_local_id,
    |app| async move {
        let token = demo_token(Profession::Physician);
        let data = app
            .ok(
                &token,
                "{ organizations(first: 100) { edges { node { kind } } } }",
                json!({}),
            )
            .await;
        // 22 demo organisations, plus the harness's own coordination centre.
        assert_eq!(data["organizations"]["edges"].as_array().unwrap().len(), 23);
        let data = app
            .ok(&token, BY_LOCAL_ID, json!({ "l": "K-000003" }))
            .await;
        let patient = &data["patientByLocalId"];
        assert!(patient["name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(!patient["careTeam"].as_array().unwrap().is_empty());
        // Without a token: nothing.
        let (status, _) = app
            .post(
                None,
                json!({ "query": "{ organizations { edges { cursor } } }" }),
            )
            .await;
        assert_eq!(status, 401);
    }
);

demo_test!(
    the_demo_has_a_withdrawn_patient_and_an_objector,
    |app| async move {
        let doctor = demo_token(Profession::Physician);
        // Patient 10 (K-000011) withdrew: the team sees only that it exists.
        let body = app
            .gql(&doctor, BY_LOCAL_ID, json!({ "l": "K-000011" }))
            .await;
        assert!(body["data"]["patientByLocalId"]["name"].is_null(), "{body}");
        assert_eq!(
            errors_at(&body, &["patientByLocalId", "name"])[0]["reason"],
            "NO_CONSENT"
        );
        // Patient 15 objected to emergency access.
        let crew = demo_token(Profession::EmsCrew);
        let id = renkei_schema::demo::demo_patient_id(15).to_string();
        let body = app
            .gql(
                &crew,
                "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id } }",
                json!({ "i": { "patientId": id, "reason": "救急搬送中" } }),
            )
            .await;
        // Refused as a patient the hub does not know: the objection is not
        // the crew's to learn.
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
    }
);

demo_test!(every_professions_demo_token_is_accepted, |app| async move {
    for &p in Profession::ALL {
        let data = app
            .ok(
                &demo_token(p),
                "{ me { kind member { profession } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["me"]["member"]["profession"], p.as_str());
    }
});

demo_test!(
    a_demo_ems_crew_finds_the_first_patient_by_name_and_birth_date,
    |app| async move {
        let crew = demo_token(Profession::EmsCrew);
        let data = app
            .ok(
                &crew,
                "mutation($i: EmergencyPatientSearchInput!) { searchPatientsForEmergency(input: $i) { candidates { patientId municipality } } }",
                json!({ "i": { "name": "斎藤 節子", "birthDate": "1950-03-14", "reasonCode": "IN_TRANSPORT" } }),
            )
            .await;
        let found = data["searchPatientsForEmergency"]["candidates"]
            .as_array()
            .unwrap();
        assert_eq!(found.len(), 1, "{data}");
        assert_eq!(
            found[0]["patientId"],
            renkei_schema::demo::demo_patient_id(0).to_string()
        );
        assert_eq!(found[0]["municipality"], "みなみ野市");
    }
);
