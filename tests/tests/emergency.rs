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
                "MEDICATIONS",
                "NUTRITION_SWALLOWING"
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
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        assert!(body["data"].is_null());
        // Refused exactly as a patient that does not exist: the objection
        // is not the opener's to learn.
        let unknown = app
            .gql(
                &crew,
                OPEN,
                json!({ "i": { "patientId": uuid::Uuid::now_v7().to_string(), "reason": "救急搬送中" } }),
            )
            .await;
        assert_eq!(body, unknown);
        assert!(!body.to_string().contains("objection"), "{body}");
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
        assert_eq!(entry["categories"].as_array().unwrap().len(), 7);

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
    let too_long = "救".repeat(1001);
    for (input, field) in [
        (
            json!({ "patientId": patient, "reason": "  " }),
            "input.reason",
        ),
        // Blank is blank, full-width spaces included, with a code or not.
        (
            json!({ "patientId": patient, "reason": "\u{3000}\u{3000}", "reasonCode": "TRAUMA" }),
            "input.reason",
        ),
        // One character says too little on its own.
        (
            json!({ "patientId": patient, "reason": "急" }),
            "input.reason",
        ),
        (
            json!({ "patientId": patient, "reason": too_long }),
            "input.reason",
        ),
        // Neither a code nor words.
        (json!({ "patientId": patient }), "input.reason"),
        // OTHER says nothing without words.
        (
            json!({ "patientId": patient, "reasonCode": "OTHER" }),
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
        .gql(
            &crew,
            OPEN,
            json!({ "i": { "patientId": patient, "reasonCode": "HEADACHE" } }),
        )
        .await;
    assert_eq!(
        error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "an unknown code: {body}"
    );
    let body = app
        .gql(&crew, OPEN, json!({ "i": { "patientId": uuid::Uuid::now_v7().to_string(), "reason": "救急搬送中" } }))
        .await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
    // Nothing was opened by any of it.
    let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
    assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
});

e2e!(
    a_reason_of_invisible_characters_is_no_reason,
    |app| async move {
        let (patient, _, crew) = scene(app).await;
        for (reason, code) in [
            // Zero-width spaces and joiners: two characters, nothing said.
            ("\u{200B}\u{200B}", None),
            ("\u{200D}\u{2060}\u{FEFF}", None),
            // Hangul fillers and the braille blank render as blanks.
            ("\u{3164}\u{3164}", None),
            ("\u{2800}\u{2800}\u{2800}", None),
            // One visible character padded with invisible ones.
            ("急\u{200B}", None),
            // A direction override makes the log show other words than
            // were written.
            ("\u{202E}送搬急救", None),
            ("救急\u{202E}", Some("IN_TRANSPORT")),
            // OTHER needs words, and these are none.
            ("\u{200B}", Some("OTHER")),
            // A soft hyphen between two blanks.
            ("\u{3000}\u{00AD}\u{3000}", Some("TRAUMA")),
        ] {
            let mut input = json!({ "patientId": patient, "reason": reason });
            if let Some(code) = code {
                input["reasonCode"] = json!(code);
            }
            let body = app.gql(&crew, OPEN, json!({ "i": input })).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{reason:?} {code:?}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.reason",
                "{reason:?}"
            );
        }
        // Nothing was opened by any of it.
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"));
        // Visible words around ordinary spaces still say why.
        let data = app
            .ok(
                &crew,
                OPEN_WITH_REASON,
                json!({ "i": { "patientId": patient, "reason": "意識 なし" } }),
            )
            .await;
        assert_eq!(data["openEmergencyAccess"]["reason"], "意識 なし");
    }
);

const OPEN_WITH_REASON: &str = "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { id reason reasonCode } }";

e2e!(
    a_short_japanese_reason_or_a_reason_code_opens_emergency_access,
    |app| async move {
        let (patient, _, crew) = scene(app).await;
        for (input, reason, code, detail) in [
            // Two characters: a reason, counted in characters, not bytes.
            (json!({ "reason": "　救急 " }), "救急", Value::Null, "救急"),
            (
                json!({ "reasonCode": "CARDIAC_ARREST" }),
                "心肺停止",
                json!("CARDIAC_ARREST"),
                "CARDIAC_ARREST 心肺停止",
            ),
            // With a code, one character of words adds to it.
            (
                json!({ "reasonCode": "TRAUMA", "reason": "転" }),
                "外傷: 転",
                json!("TRAUMA"),
                "TRAUMA 外傷: 転",
            ),
            (
                json!({ "reasonCode": "OTHER", "reason": "施設からの依頼" }),
                "その他: 施設からの依頼",
                json!("OTHER"),
                "OTHER その他: 施設からの依頼",
            ),
        ] {
            let mut input = input;
            input["patientId"] = json!(patient);
            let data = app.ok(&crew, OPEN_WITH_REASON, json!({ "i": input })).await;
            let opened = &data["openEmergencyAccess"];
            assert_eq!(opened["reason"], reason, "{input}");
            assert_eq!(opened["reasonCode"], code, "{input}");
            let log = app
                .ok(
                    &app.admin_token,
                    "query($p: ID!) { auditLog(filter: { patientId: $p, action: BREAK_THE_GLASS }, first: 1) { edges { node { detail } } } }",
                    json!({ "p": patient }),
                )
                .await;
            assert_eq!(
                log["auditLog"]["edges"][0]["node"]["detail"], detail,
                "{input}"
            );
        }
        // The access is open.
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(body["data"]["patient"]["name"], "連携 花子", "{body}");
    }
);

e2e!(
    reads_under_emergency_access_are_marked_and_care_team_reads_are_not,
    |app| async move {
        let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
        let (doctor_id, doctor) = app.member(&clinic, "PHYSICIAN").await;
        let patient = app.patient(&doctor, "K-000003").await;
        let fire = app
            .organization("AMBULANCE_SERVICE", "みなみ野市消防本部")
            .await;
        let (crew_id, crew) = app.member(&fire, "EMS_CREW").await;
        let allergy = |substance: &str| {
            json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-06T00:00:00Z",
                "data": { "allergy": { "substance": substance, "allergyType": "DRUG", "reaction": "発疹", "severity": "MODERATE" } } }] } })
        };
        let write =
            "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { record { id } } }";
        app.ok(&doctor, write, allergy("ペニシリン系抗菌薬")).await;
        app.ok(
            &crew,
            OPEN,
            json!({ "i": { "patientId": patient, "reason": "意識障害" } }),
        )
        .await;

        // Fields, summary parts, emergency information and the timeline.
        let query = "query($id: ID!) { patient(id: $id) { name
            summary { allergies { data { ... on AllergyData { substance } } } }
            emergencyInformation { sheet { version } allergies { id } }
            timeline { edges { node { id category } } } } }";
        let read = async |token: &str, rid: &str| {
            let res = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(token)
                .header("x-request-id", rid)
                .json(&json!({ "query": query, "variables": { "id": patient } }))
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap();
            assert!(
                body["data"]["patient"]["summary"]["allergies"]
                    .as_array()
                    .is_some_and(|a| a
                        .iter()
                        .any(|r| r["data"]["substance"] == "ペニシリン系抗菌薬")),
                "{body}"
            );
        };
        read(&crew, "crew-read").await;
        // A subscription delivered under emergency access.
        let mut ws = app.ws(&crew).await;
        ws.subscribe(
            "subscription($p: ID!) { patientEvents(patientId: $p) { kind category } }",
            json!({ "p": patient }),
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.ok(&doctor, write, allergy("造影剤")).await;
        match ws.next().await.1 {
            WsMessage::Next(v) => {
                assert_eq!(v["data"]["patientEvents"]["category"], "ALLERGIES", "{v}")
            }
            other => panic!("expected an event, got {other:?}"),
        }
        // The printable page.
        let res = app
            .client
            .get(app.url(&format!("/patients/{patient}/emergency-sheet")))
            .bearer_auth(&crew)
            .header("x-request-id", "crew-print")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        // The care team's own read.
        read(&doctor, "doctor-read").await;

        let log = async |actor: &str, action: &str| -> Vec<Value> {
            let data = app
                .ok(
                    &app.admin_token,
                    "query($a: ID!, $x: AuditAction!) { auditLog(filter: { actorId: $a, action: $x }, first: 100) { edges { node { action patientId categories requestId outcome } } } }",
                    json!({ "a": actor, "x": action }),
                )
                .await;
            data["auditLog"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone())
                .collect()
        };
        let marked = log(&crew_id, "EMERGENCY_READ").await;
        let of = |rid: &str| marked.iter().find(|e| e["requestId"] == rid).cloned();
        let query_entry = of("crew-read").expect("the query's reads are marked");
        assert_eq!(query_entry["patientId"], patient.as_str());
        assert_eq!(query_entry["outcome"], "OK");
        for category in ["IDENTITY", "ALLERGIES", "EMERGENCY_INFORMATION"] {
            assert!(
                query_entry["categories"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(category)),
                "{category}: {query_entry}"
            );
        }
        let print_entry = of("crew-print").expect("the printed page's reads are marked");
        assert!(
            print_entry["categories"]
                .as_array()
                .unwrap()
                .contains(&json!("ADVANCE_CARE_PLANNING")),
            "{print_entry}"
        );
        assert!(
            marked
                .iter()
                .any(|e| e["categories"] == json!(["ALLERGIES"])
                    && e["requestId"] != "crew-read"
                    && e["requestId"] != "crew-print"),
            "the event delivered is marked: {marked:?}"
        );
        // Nothing the crew read is an unmarked READ of the patient.
        let unmarked = log(&crew_id, "READ").await;
        assert!(
            unmarked.iter().all(|e| e["patientId"] != patient.as_str()),
            "{unmarked:?}"
        );
        // The care team's reads are plain READs.
        assert!(
            log(&doctor_id, "READ")
                .await
                .iter()
                .any(|e| e["requestId"] == "doctor-read"),
        );
        assert_eq!(log(&doctor_id, "EMERGENCY_READ").await, Vec::<Value>::new());
    }
);

e2e!(
    an_ambulance_service_is_not_put_on_a_care_team,
    |app| async move {
        // A crew reaches a patient through emergency access — four hours,
        // a reason, a notification, EMERGENCY_READ, the emergency set only,
        // never over an objection — not through a care team its service is
        // put on, which would open its role's row for as long as the
        // membership lasted, the home address besides.
        let (patient, doctor, crew) = scene(app).await;
        let fire_id = app
            .ok(&crew, "{ me { organization { id } } }", json!({}))
            .await["me"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let body = app
            .gql(
                &doctor,
                "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
                json!({ "i": { "patientId": patient, "organizationId": fire_id, "role": "OTHER" } }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.organizationId"
        );
        // Nor by registering a patient, which puts the registrar's
        // organisation on its team — whatever the member's profession.
        let fire = uuid::Uuid::parse_str(&fire_id).unwrap().to_string();
        let (_, fire_doctor) = app.member(&fire, "PHYSICIAN").await;
        let body = app
            .gql(
                &fire_doctor,
                "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }",
                json!({ "i": { "name": "救急 太郎", "nameKana": "キュウキュウ タロウ", "birthDate": "1940-01-01",
                    "sex": "MALE", "localId": "FIRE-1" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        // Not on the team, the crew does not know the patient.
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        assert_eq!(error_code(&body).as_deref(), Some("NOT_FOUND"), "{body}");
        // Emergency access opens the emergency set, and only it.
        app.ok(
            &crew,
            OPEN,
            json!({ "i": { "patientId": patient, "reasonCode": "IN_TRANSPORT" } }),
        )
        .await;
        let body = app.gql(&crew, ACCESS, json!({ "id": patient })).await;
        let access = body["data"]["patient"]["access"].as_array().unwrap();
        let contacts = access.iter().find(|a| a["category"] == "CONTACTS").unwrap();
        assert_eq!(contacts["read"], false, "{body}");
        assert!(
            access
                .iter()
                .filter(|a| a["read"] == true)
                .all(|a| a["reason"] == "EMERGENCY_ACCESS"),
            "{body}"
        );
    }
);
