//! Apollo Federation: the hub is a subgraph whose `Patient` and `Organization`
//! entities other subgraphs extend. Entity resolution obeys the same access
//! policy as `patient(id)`.

use renkei_tests::*;
use serde_json::{Value, json};

const ENTITIES: &str = "query($r: [_Any!]!) {
    _entities(representations: $r) {
        __typename
        ... on Patient { id name birthDate }
        ... on Organization { id name kind }
    }
}";

fn patient_ref(id: &str) -> Value {
    json!({ "__typename": "Patient", "id": id })
}

fn organization_ref(id: &str) -> Value {
    json!({ "__typename": "Organization", "id": id })
}

/// A clinic physician with a registered patient, and a pharmacist with no
/// relationship to that patient. Returns (patient id, physician, pharmacist, clinic id).
async fn setting(app: &TestApp) -> (String, String, String, String) {
    let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
    let (_, physician) = app.member(&clinic, "PHYSICIAN").await;
    let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
    let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    let patient = app.patient(&physician, "K-0001").await;
    (patient, physician, pharmacist, clinic)
}

e2e!(
    the_service_sdl_declares_federation_v2_keys_for_patient_and_organization,
    |app| async move {
        let data = app
            .ok(&app.admin_token, "{ _service { sdl } }", json!({}))
            .await;
        let sdl = data["_service"]["sdl"].as_str().expect("sdl");

        assert!(sdl.contains("extend schema @link("), "{sdl}");
        assert!(
            sdl.contains("https://specs.apollo.dev/federation/v2."),
            "{sdl}"
        );
        assert!(sdl.contains("\"@key\""), "the @link imports @key: {sdl}");
        assert!(sdl.contains("type Patient @key(fields: \"id\")"), "{sdl}");
        assert!(
            sdl.contains("type Organization @key(fields: \"id\")"),
            "{sdl}"
        );
        // The subgraph's own operations are in it.
        assert!(sdl.contains("patientByLocalId("), "{sdl}");
        assert!(sdl.contains("registerPatient("), "{sdl}");

        // Any authenticated caller may read it.
        let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
        let (_, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
        let again = app.ok(&pharmacist, "{ _service { sdl } }", json!({})).await;
        assert_eq!(again["_service"]["sdl"], sdl);
    }
);

e2e!(
    a_patient_entity_resolves_only_for_an_organization_that_may_see_it,
    |app| async move {
        let (patient, physician, pharmacist, _) = setting(app).await;

        let data = app
            .ok(
                &physician,
                ENTITIES,
                json!({ "r": [patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(
            data["_entities"],
            json!([{ "__typename": "Patient", "id": patient, "name": "連携 花子", "birthDate": "1940-05-01" }])
        );

        // No relationship: null, exactly like a patient that does not exist, and no
        // trace of the patient anywhere in the response.
        let body = app
            .gql(
                &pharmacist,
                ENTITIES,
                json!({ "r": [patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(body["data"]["_entities"], json!([null]), "{body}");
        let text = body.to_string();
        assert!(
            !text.contains("連携") && !text.contains("1940-05-01"),
            "{text}"
        );
        let unknown = uuid::Uuid::now_v7().to_string();
        let missing = app
            .gql(
                &pharmacist,
                ENTITIES,
                json!({ "r": [patient_ref(&unknown)] }),
            )
            .await;
        assert_eq!(
            body, missing,
            "hidden and missing patients answer identically"
        );

        // The administrator's coordination centre has no relationship either.
        let data = app
            .ok(
                &app.admin_token,
                ENTITIES,
                json!({ "r": [patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(data["_entities"], json!([null]));
    }
);

e2e!(
    entities_resolve_in_the_order_of_the_representations,
    |app| async move {
        let (patient, physician, pharmacist, _) = setting(app).await;
        let office = app
            .organization("HOME_CARE_SUPPORT_OFFICE", "北見居宅介護支援事業所")
            .await;
        let (_, manager) = app.member(&office, "CARE_MANAGER").await;
        let hidden = app.patient(&manager, "U-0001").await;
        let unknown = uuid::Uuid::now_v7().to_string();

        let body = app
        .gql(
            &physician,
            ENTITIES,
            json!({ "r": [patient_ref(&patient), patient_ref(&hidden), patient_ref(&unknown)] }),
        )
        .await;
        assert_eq!(
            body["data"]["_entities"],
            json!([
                { "__typename": "Patient", "id": patient, "name": "連携 花子", "birthDate": "1940-05-01" },
                null,
                null,
            ]),
            "{body}"
        );
        assert!(!body.to_string().contains(&hidden), "{body}");

        // The other way round, from the care office's side; the pharmacy sees neither.
        let data = app
        .ok(
            &manager,
            ENTITIES,
            json!({ "r": [patient_ref(&unknown), patient_ref(&patient), patient_ref(&hidden)] }),
        )
        .await;
        let entities = data["_entities"].as_array().unwrap();
        assert_eq!(entities.len(), 3);
        assert_eq!(entities[0], Value::Null);
        assert_eq!(entities[1], Value::Null);
        assert_eq!(entities[2]["id"], hidden.as_str());
        let data = app
            .ok(
                &pharmacist,
                ENTITIES,
                json!({ "r": [patient_ref(&patient), patient_ref(&hidden)] }),
            )
            .await;
        assert_eq!(data["_entities"], json!([null, null]));

        // A malformed id names nothing.
        let data = app
            .ok(
                &physician,
                ENTITIES,
                json!({ "r": [patient_ref("abc"), patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(data["_entities"][0], Value::Null);
        assert_eq!(data["_entities"][1]["id"], patient.as_str());
    }
);

e2e!(
    organization_entities_resolve_for_any_authenticated_caller,
    |app| async move {
        let (patient, _, pharmacist, clinic) = setting(app).await;
        let unknown = uuid::Uuid::now_v7().to_string();

        let data = app
        .ok(
            &pharmacist,
            ENTITIES,
            json!({ "r": [organization_ref(&clinic), organization_ref(&unknown), patient_ref(&patient)] }),
        )
        .await;
        assert_eq!(
            data["_entities"],
            json!([
                { "__typename": "Organization", "id": clinic, "name": "北見在宅クリニック", "kind": "CLINIC" },
                null,
                null,
            ])
        );

        // A system authenticated by API key resolves them too.
        let key = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "organizationId": clinic, "name": "電子カルテ連携", "permissions": [
                    { "category": "IDENTITY", "level": "READ" },
                ] } }),
            )
            .await;
        let secret = key["createApiKey"]["secret"].as_str().unwrap().to_string();
        let data = app
            .ok(
                &secret,
                ENTITIES,
                json!({ "r": [organization_ref(&clinic), patient_ref(&patient)] }),
            )
            .await;
        assert_eq!(data["_entities"][0]["id"], clinic.as_str());
        // The clinic's system acts for the clinic, which registered the patient.
        assert_eq!(data["_entities"][1]["id"], patient.as_str());
    }
);

e2e!(entities_and_the_sdl_need_authentication, |app| async move {
    let (patient, ..) = setting(app).await;
    let requests = [
        json!({ "query": ENTITIES, "variables": { "r": [patient_ref(&patient)] } }),
        json!({ "query": "{ _service { sdl } }" }),
    ];
    for request in requests {
        for token in [None, Some("not-a-token"), Some("rk_bogus_key")] {
            let (status, body) = app.post(token, request.clone()).await;
            assert_eq!(status, 401, "{token:?}: {body}");
            assert_eq!(
                error_code(&body).as_deref(),
                Some("UNAUTHENTICATED"),
                "{body}"
            );
            assert!(body.get("data").is_none_or(Value::is_null), "{body}");
            assert!(!body.to_string().contains("連携"), "{body}");
        }
    }
});
