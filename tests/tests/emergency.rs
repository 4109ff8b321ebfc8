//! Break-the-glass (救急時閲覧).

use renkei_tests::*;
use serde_json::{Value, json};

const OPEN: &str = "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id expiresAt categories patient { id emergencyAccessUntil careRelationship } } }";
const ACCESS: &str =
    "query($id: ID!) { patient(id: $id) { name access { category read write reason } } }";

/// A patient of a clinic with consent, and an EMS crew member of the fire
/// department, which is not on the care team.
async fn scene(app: &TestApp) -> (String, String, String) {
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let patient = app.patient(&doctor, "K-000003").await;
    let fire = app
        .organization("AMBULANCE_SERVICE", "みなみ野市消防本部")
        .await;
    let (_, crew) = app.member(&fire, "EMS_CREW").await;
    (patient, doctor, crew)
}

fn readable(body: &Value) -> Vec<String> {
    let mut r: Vec<String> = body["data"]["patient"]["access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["read"] == true)
        .map(|a| a["category"].as_str().unwrap().to_string())
        .collect();
    r.sort();
    r
}

e2e!(
    emergency_access_grants_only_the_emergency_categories_read_only,
    |app| async move {
        let (patient, _, crew) = scene(app).await;
        // Before: the patient does not exist for the crew.
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));

        let data = app
            .ok(
                &crew,
                OPEN,
                json!({ "i": { "patientId": patient, "reason": "救急搬送中、意識レベル低下" } }),
            )
            .await;
        let opened = &data["openEmergencyAccess"];
        assert_eq!(opened["patient"]["careRelationship"], false);
        assert_eq!(
            opened["expiresAt"],
            opened["patient"]["emergencyAccessUntil"]
        );

        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(
            readable(&body),
            [
                "ADVANCE_CARE_PLANNING",
                "ALLERGIES",
                "CONDITIONS",
                "EMERGENCY_INFORMATION",
                "IDENTITY",
                "MEDICATIONS"
            ]
        );
        let access = body["data"]["patient"]["access"].as_array().unwrap();
        assert!(
            access.iter().all(|a| a["write"] == false),
            "emergency access is read-only"
        );
        assert!(
            access
                .iter()
                .filter(|a| a["read"] == true)
                .all(|a| a["reason"] == "EMERGENCY_ACCESS")
        );
        // Identity is, so that the crew knows whom it is about; contacts
        // are not.
        assert_eq!(body["data"]["patient"]["name"], "連携 花子");
        let body = app
            .gql(
                &crew,
                "query($id: ID!) { patient(id: $id) { phone } }",
                json!({ "id": patient }),
            )
            .await;
        assert!(body["data"]["patient"]["phone"].is_null());
        assert_eq!(
            errors_at(&body, &["patient", "phone"])[0]["reason"],
            "NOT_AN_EMERGENCY_CATEGORY"
        );
    }
);

e2e!(
    emergency_access_expires_after_four_hours,
    |app| async move {
        let (patient, _, crew) = scene(app).await;
        app.ok(
            &crew,
            OPEN,
            json!({ "i": { "patientId": patient, "reason": "心肺停止で搬送" } }),
        )
        .await;
        app.clock.advance(chrono::Duration::minutes(239));
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert!(
            body["data"]["patient"].is_object(),
            "still open at 3h59m: {body}"
        );
        app.clock.advance(chrono::Duration::minutes(2));
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("NOT_FOUND"),
            "expired after 4h: {body}"
        );
    }
);

e2e!(
    emergency_access_is_refused_where_the_patient_objected,
    |app| async move {
        let (patient, doctor, crew) = scene(app).await;
        app.ok(
        &doctor,
        "mutation($i: EmergencyObjectionInput!) { recordEmergencyAccessObjection(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "note": "本人の意向" } }),
    )
    .await;
        let body = app
            .gql(
                &crew,
                OPEN,
                json!({ "i": { "patientId": patient, "reason": "救急搬送中" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
        assert!(body["data"].is_null());
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));

        // The refusal is in the audit log as a denial.
        let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p, action: DENIED }) { edges { node { outcome detail } } } }",
            json!({ "p": patient }),
        )
        .await;
        let details: Vec<&str> = data["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["detail"].as_str().unwrap_or(""))
            .collect();
        assert!(details.iter().any(|d| d.contains("objection")), "{data}");
    }
);

e2e!(
    an_objection_recorded_later_ends_open_emergency_access,
    |app| async move {
        let (patient, doctor, crew) = scene(app).await;
        app.ok(
            &crew,
            OPEN,
            json!({ "i": { "patientId": patient, "reason": "救急搬送中" } }),
        )
        .await;
        app.ok(
        &doctor,
        "mutation($i: EmergencyObjectionInput!) { recordEmergencyAccessObjection(input: $i) { id } }",
        json!({ "i": { "patientId": patient } }),
    )
    .await;
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
    }
);

e2e!(
    emergency_access_is_audited_and_the_care_team_is_notified,
    |app| async move {
        let (patient, doctor, crew) = scene(app).await;
        app.ok(
            &crew,
            OPEN,
            json!({ "i": { "patientId": patient, "reason": "自宅で転倒、頭部外傷" } }),
        )
        .await;

        let data = app
        .ok(
            &app.admin_token,
            "query($p: ID!) { auditLog(filter: { patientId: $p, action: BREAK_THE_GLASS }) { edges { node { actor { profession } categories detail } } } }",
            json!({ "p": patient }),
        )
        .await;
        let entry = &data["auditLog"]["edges"][0]["node"];
        assert_eq!(entry["actor"]["profession"], "EMS_CREW");
        assert_eq!(entry["detail"], "自宅で転倒、頭部外傷");
        assert_eq!(entry["categories"].as_array().unwrap().len(), 6);

        let data = app
            .ok(
                &doctor,
                "{ notifications(unreadOnly: true) { id kind patientId message } }",
                json!({}),
            )
            .await;
        let n = &data["notifications"][0];
        assert_eq!(n["kind"], "BREAK_THE_GLASS");
        // The reason may be clinical: it stays in the audited access history.
        assert!(!n["message"].as_str().unwrap().contains("頭部外傷"), "{n}");
        assert_eq!(n["patientId"], patient.as_str());
        let id = n["id"].as_str().unwrap();
        app.ok(
            &doctor,
            "mutation($id: ID!) { markNotificationRead(id: $id) { readAt } }",
            json!({ "id": id }),
        )
        .await;
        let data = app
            .ok(
                &doctor,
                "{ notifications(unreadOnly: true) { id } }",
                json!({}),
            )
            .await;
        assert_eq!(data["notifications"], json!([]));
        // The crew's own organisation is not told about its own access.
        let data = app.ok(&crew, "{ notifications { id } }", json!({})).await;
        assert_eq!(data["notifications"], json!([]));
    }
);

e2e!(
    only_physicians_nurses_and_ems_crews_may_break_the_glass,
    |app| async move {
        let (patient, _, _) = scene(app).await;
        let home = app
            .organization("CARE_SERVICE_PROVIDER", "ヘルパーステーション")
            .await;
        for (profession, allowed) in [
            ("CARE_WORKER", false),
            ("PHARMACIST", false),
            ("NURSE", true),
            ("PHYSICIAN", true),
        ] {
            let (_, token) = app.member(&home, profession).await;
            let body = app
                .gql(
                    &token,
                    OPEN,
                    json!({ "i": { "patientId": patient, "reason": "急変のため確認" } }),
                )
                .await;
            if allowed {
                assert!(body.get("errors").is_none(), "{profession}: {body}");
            } else {
                assert_eq!(
                    error_code(&body).as_deref(),
                    Some("FORBIDDEN"),
                    "{profession}"
                );
            }
        }
    }
);

e2e!(
    emergency_access_can_find_the_patient_by_a_facilitys_local_id,
    |app| async move {
        let (patient, _, crew) = scene(app).await;
        let clinic_id = app
            .ok(
                &app.admin_token,
                "{ organizations(filter: { kinds: [CLINIC] }) { edges { node { id } } } }",
                json!({}),
            )
            .await["organizations"]["edges"][0]["node"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let data = app
        .ok(&crew, OPEN, json!({ "i": { "organizationId": clinic_id, "localId": "K-000003", "reason": "お薬手帳の番号で照会" } }))
        .await;
        assert_eq!(
            data["openEmergencyAccess"]["patient"]["id"],
            patient.as_str()
        );
        let body = app
        .gql(&crew, OPEN, json!({ "i": { "organizationId": clinic_id, "localId": "K-999999", "reason": "お薬手帳で照会" } }))
        .await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
    }
);

e2e!(emergency_access_input_is_validated, |app| async move {
    let (patient, _, crew) = scene(app).await;
    for (input, field) in [
        (
            json!({ "patientId": patient, "reason": "  " }),
            "input.reason",
        ),
        (
            json!({ "patientId": patient, "reason": "急" }),
            "input.reason",
        ),
        (json!({ "reason": "救急搬送中" }), "input"),
        (
            json!({ "patientId": patient, "localId": "K-1", "reason": "救急搬送中" }),
            "input",
        ),
        (
            json!({ "patientId": "nope", "reason": "救急搬送中" }),
            "input.patientId",
        ),
    ] {
        let body = app.gql(&crew, OPEN, json!({ "i": input })).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{input}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{input}");
    }
    let body = app
        .gql(&crew, OPEN, json!({ "i": { "patientId": uuid::Uuid::now_v7().to_string(), "reason": "救急搬送中" } }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
});
