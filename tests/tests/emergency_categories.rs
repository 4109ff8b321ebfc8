//! What break-the-glass opens, by profession: the receiving hospital's
//! physician also reads drug contraindications (薬剤禁忌) and infections
//! (感染症); an ambulance crew reads the emergency set only.

use renkei_tests::*;
use serde_json::{Value, json};

const OPEN: &str =
    "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { categories } }";
const READ: &str = r#"query($id: ID!) { patient(id: $id) { emergencyInformation {
  allergies { id }
  drugContraindications { data { ... on DrugContraindicationData { drug reason } } }
  infections { data { ... on InfectionData { pathogen result } } }
} } }"#;
const LOG: &str = "query($p: ID!, $a: ID!, $act: AuditAction!) { auditLog(filter: { patientId: $p, actorId: $a, action: $act }) { edges { node { categories } } } }";

/// A patient of a clinic with an allergy, a contraindication and an
/// infection on record; a hospital's physician and a crew, neither on the
/// care team.
async fn scene(app: &TestApp) -> (String, (String, String), (String, String)) {
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "K-000003").await;
    app.ok(
        &doctor,
        "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }",
        json!({ "i": { "records": [
            { "patientId": patient, "effectiveAt": "2026-01-11T00:00:00Z",
              "data": { "allergy": { "substance": "ペニシリン系抗菌薬", "allergyType": "DRUG", "severity": "SEVERE" } } },
            { "patientId": patient, "effectiveAt": "2026-01-11T00:00:00Z",
              "data": { "drugContraindication": { "drug": "NSAIDs", "reason": "アスピリン喘息の既往" } } },
            { "patientId": patient, "effectiveAt": "2026-01-11T00:00:00Z",
              "data": { "infection": { "pathogen": "MRSA", "result": "POSITIVE", "testedOn": "2026-01-05" } } },
        ] } }),
    )
    .await;
    let hospital = app.organization("HOSPITAL", "みなみ野市立総合病院").await;
    let er = app.member(&hospital, "PHYSICIAN").await;
    let fire = app
        .organization("AMBULANCE_SERVICE", "みなみ野市消防本部")
        .await;
    let crew = app.member(&fire, "EMS_CREW").await;
    (patient, er, crew)
}

fn categories(data: &Value) -> Vec<&str> {
    let mut c: Vec<&str> = data["openEmergencyAccess"]["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    c.sort();
    c
}

e2e!(
    the_receiving_physician_reads_contraindications_and_infections_a_crew_does_not,
    |app| async move {
        let (patient, (er_id, er), (crew_id, crew)) = scene(app).await;
        let open = json!({ "i": { "patientId": patient, "reasonCode": "IN_TRANSPORT" } });

        let opened = app.ok(&er, OPEN, open.clone()).await;
        assert!(categories(&opened).contains(&"DRUG_CONTRAINDICATIONS"));
        assert!(categories(&opened).contains(&"INFECTIONS"));
        assert!(categories(&opened).contains(&"NUTRITION_SWALLOWING"));
        let body = app.gql(&er, READ, json!({ "id": patient })).await;
        assert!(body["errors"].is_null(), "{body}");
        let info = &body["data"]["patient"]["emergencyInformation"];
        assert_eq!(info["drugContraindications"][0]["data"]["drug"], "NSAIDs");
        assert_eq!(info["infections"][0]["data"]["pathogen"], "MRSA");
        // Recorded as reads under emergency access, category by category.
        let log = app
            .ok(
                &app.admin_token,
                LOG,
                json!({ "p": patient, "a": er_id, "act": "EMERGENCY_READ" }),
            )
            .await;
        let read: Vec<&Value> = log["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["node"]["categories"].as_array().unwrap())
            .collect();
        assert!(read.contains(&&json!("INFECTIONS")), "{log}");
        assert!(read.contains(&&json!("DRUG_CONTRAINDICATIONS")), "{log}");

        let opened = app.ok(&crew, OPEN, open).await;
        assert_eq!(
            categories(&opened),
            [
                "ADVANCE_CARE_PLANNING",
                "ALLERGIES",
                "CONDITIONS",
                "EMERGENCY_INFORMATION",
                "IDENTITY",
                "MEDICATIONS",
                "NUTRITION_SWALLOWING"
            ]
        );
        let body = app.gql(&crew, READ, json!({ "id": patient })).await;
        let info = &body["data"]["patient"]["emergencyInformation"];
        assert!(info["allergies"].is_array(), "{body}");
        for field in ["drugContraindications", "infections"] {
            assert!(info[field].is_null(), "{body}");
            let e = errors_at(&body, &["patient", "emergencyInformation", field]);
            assert_eq!(e[0]["code"], "FORBIDDEN_FIELD", "{body}");
            assert_eq!(e[0]["reason"], "NOT_AN_EMERGENCY_CATEGORY", "{body}");
        }
        // The crew's opening names what it opened, and no more.
        let log = app
            .ok(
                &app.admin_token,
                LOG,
                json!({ "p": patient, "a": crew_id, "act": "BREAK_THE_GLASS" }),
            )
            .await;
        let cats = &log["auditLog"]["edges"][0]["node"]["categories"];
        assert!(
            !cats.as_array().unwrap().contains(&json!("INFECTIONS")),
            "{log}"
        );
    }
);
