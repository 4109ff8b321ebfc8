//! The patient spine: registration, lookup by local ID (名寄せ), identifiers,
//! care teams and status — and who may see what.
//!
//! An organisation sees a patient while it is on the patient's care team
//! (registering puts it there); the patient's data is readable once a consent
//! is recorded (`app.patient` records a network-wide one).

use chrono::{Duration, NaiveDate};
use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};

const REGISTER: &str = "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }";

const READ: &str = "query($id: ID!) { patient(id: $id) {
    id name nameKana birthDate sex postalCode address phone status deceasedOn placeOfDeath
    careRelationship
    identifiers { localId organization { id } }
} }";

const BY_ID: &str = "query($id: ID!) { patient(id: $id) { id name } }";

const BY_LOCAL_ID: &str = "query($org: ID, $local: String!) {
    patientByLocalId(organizationId: $org, localId: $local) { id name }
}";

const LINK: &str = "mutation($i: LinkPatientIdentifierInput!) {
    linkPatientIdentifier(input: $i) { id localId organization { id } }
}";

const ADD_TO_TEAM: &str = "mutation($i: AddCareTeamMemberInput!) {
    addCareTeamMember(input: $i) {
        id role organization { id } member { id } startDate endDate active
    }
}";

const END_MEMBERSHIP: &str = "mutation($i: EndCareTeamMembershipInput!) {
    endCareTeamMembership(input: $i) { id startDate endDate active }
}";

const CARE_TEAM: &str = "query($id: ID!, $ended: Boolean!) {
    patient(id: $id) {
        careTeam(includeEnded: $ended) { id role organization { id } member { id } startDate endDate active }
    }
}";

const SET_STATUS: &str = "mutation($i: SetPatientStatusInput!) {
    setPatientStatus(input: $i) { id status deceasedOn placeOfDeath }
}";

fn valid_patient(local_id: &str) -> Value {
    json!({
        "name": "連携 花子", "nameKana": "レンケイ ハナコ", "birthDate": "1940-05-01",
        "sex": "FEMALE", "localId": local_id
    })
}

/// The server's "today" in Japan, moved by `offset_days`, as `YYYY-MM-DD`.
fn day(app: &TestApp, offset_days: i64) -> String {
    date(app.clock.today() + Duration::days(offset_days))
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn assert_code(body: &Value, code: &str) {
    assert_eq!(error_code(body).as_deref(), Some(code), "{body}");
}

fn assert_bad_input(body: &Value, field: &str) {
    assert_code(body, "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
}

/// Registers a patient (without consent) from a full input; returns the id.
async fn register(app: &TestApp, token: &str, input: Value) -> String {
    let data = app.ok(token, REGISTER, json!({ "i": input })).await;
    data["registerPatient"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// The patient's id as the caller sees it, or the error code.
async fn seen_by(app: &TestApp, token: &str, patient_id: &str) -> Result<String, Option<String>> {
    let body = app
        .gql(
            token,
            "query($id: ID!) { patient(id: $id) { id } }",
            json!({ "id": patient_id }),
        )
        .await;
    match body["data"]["patient"]["id"].as_str() {
        Some(id) => Ok(id.to_string()),
        None => Err(error_code(&body)),
    }
}

/// The id of the patient a local ID names at an organisation, or the error code.
async fn found_by_local_id(
    app: &TestApp,
    token: &str,
    org: Option<&str>,
    local: &str,
) -> Result<String, Option<String>> {
    let body = app
        .gql(
            token,
            "query($org: ID, $local: String!) { patientByLocalId(organizationId: $org, localId: $local) { id } }",
            json!({ "org": org, "local": local }),
        )
        .await;
    match body["data"]["patientByLocalId"]["id"].as_str() {
        Some(id) => Ok(id.to_string()),
        None => Err(error_code(&body)),
    }
}

fn not_found() -> Result<String, Option<String>> {
    Err(Some("NOT_FOUND".to_string()))
}

/// A clinic with a physician and a pharmacy with a pharmacist.
struct Network {
    clinic: String,
    physician: String,
    physician_id: String,
    pharmacy: String,
    pharmacist: String,
    pharmacist_id: String,
}

async fn network(app: &TestApp) -> Network {
    let clinic = app.organization("CLINIC", "北見在宅クリニック").await;
    let (physician_id, physician) = app.member(&clinic, "PHYSICIAN").await;
    let pharmacy = app.organization("PHARMACY", "北見中央薬局").await;
    let (pharmacist_id, pharmacist) = app.member(&pharmacy, "PHARMACIST").await;
    Network {
        clinic,
        physician,
        physician_id,
        pharmacy,
        pharmacist,
        pharmacist_id,
    }
}

/// A care office with a care manager, who may register patients too.
async fn care_office(app: &TestApp) -> (String, String) {
    let office = app
        .organization("HOME_CARE_SUPPORT_OFFICE", "北見居宅介護支援事業所")
        .await;
    let (_, manager) = app.member(&office, "CARE_MANAGER").await;
    (office, manager)
}

/// The memberships of a patient's care team, as the caller sees them.
async fn care_team(app: &TestApp, token: &str, patient: &str, include_ended: bool) -> Vec<Value> {
    let data = app
        .ok(
            token,
            CARE_TEAM,
            json!({ "id": patient, "ended": include_ended }),
        )
        .await;
    data["patient"]["careTeam"]
        .as_array()
        .expect("careTeam")
        .clone()
}

e2e!(
    a_name_or_text_that_shows_nothing_is_refused_as_empty,
    |app| async move {
        let n = network(app).await;
        // A Hangul filler, a braille blank, a variation selector alone, a
        // noncharacter: nothing a reader would see.
        for blank in ["\u{3164}", "\u{2800}", " \u{FFA0} ", "\u{FE0F}", "\u{FFFE}"] {
            let body = app
                .gql(
                    &n.physician,
                    REGISTER,
                    json!({ "i": { "name": blank, "nameKana": "れんけい はなこ", "birthDate": "1940-05-01",
                        "sex": "FEMALE", "localId": "K-BLANK" } }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{blank:?}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.name",
                "{body}"
            );
        }
        // A record's multi-line text too.
        let patient = app.patient(&n.physician, "K-TEXT").await;
        let body = app
            .gql(
                &n.physician,
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }",
                json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-01T00:00:00Z",
                    "data": { "careCautions": { "items": [{ "area": "BATHING", "caution": "\u{3164}\u{2800}" }] } } }] } }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.records[0].data.careCautions.items[0].caution",
            "{body}"
        );
    }
);

e2e!(
    memberships_are_planned_within_a_year_and_the_last_begun_one_stays,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-DATES").await;
        let primary = care_team(app, &n.physician, &patient, false).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (office, _) = care_office(app).await;
        let add = |org: &str, start: String| json!({ "i": { "patientId": patient, "organizationId": org, "role": "CARE_MANAGER", "startDate": start } });
        // Decades ahead: refused.
        let body = app
            .gql(&n.physician, ADD_TO_TEAM, add(&office, day(app, 400)))
            .await;
        assert_bad_input(&body, "input.startDate");
        // A handover planned next month: taken, but it reaches no one yet,
        // so the clinic's membership — the last one begun — does not end.
        app.ok(&n.physician, ADD_TO_TEAM, add(&office, day(app, 30)))
            .await;
        let body = app
            .gql(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": primary } }),
            )
            .await;
        assert_code(&body, "CONFLICT");
        // The pharmacy since last week: its end may be planned within the
        // year, brought forward, never put off.
        let pharmacy = app
            .ok(
                &n.physician,
                ADD_TO_TEAM,
                json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "role": "PHARMACY", "startDate": day(app, -7) } }),
            )
            .await["addCareTeamMember"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let end = |date: String| json!({ "i": { "membershipId": pharmacy, "endDate": date } });
        let body = app
            .gql(&n.physician, END_MEMBERSHIP, end(day(app, 400)))
            .await;
        assert_bad_input(&body, "input.endDate");
        let data = app
            .ok(&n.physician, END_MEMBERSHIP, end(day(app, 20)))
            .await;
        assert_eq!(data["endCareTeamMembership"]["active"], true);
        let body = app
            .gql(&n.physician, END_MEMBERSHIP, end(day(app, 25)))
            .await;
        assert_code(&body, "CONFLICT");
        let data = app
            .ok(&n.physician, END_MEMBERSHIP, end(day(app, -1)))
            .await;
        assert_eq!(data["endCareTeamMembership"]["endDate"], day(app, -1));
        assert_eq!(data["endCareTeamMembership"]["active"], false);
        // Ended, it stays ended.
        let body = app
            .gql(&n.physician, END_MEMBERSHIP, end(day(app, -2)))
            .await;
        assert_code(&body, "CONFLICT");
        // The clinic hands over to the care office on the day its
        // membership begins: planned ahead, no gap.
        let data = app
            .ok(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": primary, "endDate": day(app, 29) } }),
            )
            .await;
        assert_eq!(data["endCareTeamMembership"]["endDate"], day(app, 29));
    }
);

e2e!(
    a_clinic_registers_a_patient_and_finds_them_by_id_and_by_local_id,
    |app| async move {
        let n = network(app).await;
        let id = register(
            app,
            &n.physician,
            json!({
                "name": " 連携 花子 ", "nameKana": "れんけい はなこ", "birthDate": "1940-05-01",
                "sex": "FEMALE", "postalCode": "0900001", "address": "北海道北見市北1条西1丁目",
                "phone": "0157-23-4567", "localId": "K-0001"
            }),
        )
        .await;

        // Registered and on the care team, but unreadable until the patient consents.
        let body = app
            .gql(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { id careRelationship name } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(body["data"]["patient"]["id"], id.as_str(), "{body}");
        assert_eq!(body["data"]["patient"]["careRelationship"], true, "{body}");
        assert_eq!(body["data"]["patient"]["name"], Value::Null, "{body}");
        let errors = errors_at(&body, &["patient", "name"]);
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["code"], "FORBIDDEN_FIELD");
        assert_eq!(errors[0]["reason"], "NO_CONSENT");

        app.consent(&n.physician, &id, json!({ "scope": "NETWORK" }))
            .await;
        let data = app.ok(&n.physician, READ, json!({ "id": id })).await;
        assert_eq!(
            data["patient"],
            json!({
                "id": id, "name": "連携 花子", "nameKana": "レンケイ\u{3000}ハナコ", "birthDate": "1940-05-01",
                "sex": "FEMALE", "postalCode": "090-0001", "address": "北海道北見市北1条西1丁目",
                "phone": "0157-23-4567", "status": "ACTIVE", "deceasedOn": null, "placeOfDeath": null,
                "careRelationship": true,
                "identifiers": [{ "localId": "K-0001", "organization": { "id": n.clinic } }],
            })
        );

        // Registering put the clinic on the care team, as primary physician,
        // naming the registering physician, from today (Japan time).
        let team = care_team(app, &n.physician, &id, false).await;
        assert_eq!(team.len(), 1, "{team:?}");
        assert_eq!(team[0]["role"], "PRIMARY_PHYSICIAN");
        assert_eq!(team[0]["organization"]["id"], n.clinic.as_str());
        assert_eq!(team[0]["member"]["id"], n.physician_id.as_str());
        assert_eq!(team[0]["startDate"], day(app, 0));
        assert_eq!(team[0]["active"], true);

        // By local ID: the caller's organisation by default, or a named one.
        let phys = n.physician.as_str();
        let clinic = Some(n.clinic.as_str());
        assert_eq!(
            found_by_local_id(app, phys, None, "K-0001").await,
            Ok(id.clone())
        );
        assert_eq!(
            found_by_local_id(app, phys, clinic, "K-0001").await,
            Ok(id.clone())
        );
        assert_eq!(
            found_by_local_id(app, phys, None, " K-0001 ").await,
            Ok(id.clone())
        );
        // Local IDs are compared exactly.
        assert_eq!(
            found_by_local_id(app, phys, None, "k-0001").await,
            not_found()
        );
        assert_eq!(
            found_by_local_id(app, phys, None, "K-0002").await,
            not_found()
        );
        // The clinic's local ID names nothing at the pharmacy.
        assert_eq!(
            found_by_local_id(app, &n.physician, Some(&n.pharmacy), "K-0001").await,
            not_found()
        );
        let data = app
            .ok(
                &n.physician,
                BY_LOCAL_ID,
                json!({ "org": null, "local": "K-0001" }),
            )
            .await;
        assert_eq!(
            data["patientByLocalId"],
            json!({ "id": id, "name": "連携 花子" })
        );

        // Malformed ids and local IDs are bad input.
        let body = app
            .gql(
                &n.physician,
                BY_LOCAL_ID,
                json!({ "org": "abc", "local": "K-0001" }),
            )
            .await;
        assert_bad_input(&body, "organizationId");
        let body = app
            .gql(
                &n.physician,
                BY_LOCAL_ID,
                json!({ "org": null, "local": "  " }),
            )
            .await;
        assert_bad_input(&body, "localId");
        let body = app.gql(&n.physician, BY_ID, json!({ "id": "abc" })).await;
        assert_bad_input(&body, "id");
    }
);

const MANY_BY_LOCAL_ID: &str = "query($org: ID, $locals: [String!]!) {
    patientsByLocalIds(organizationId: $org, localIds: $locals) { id name }
}";

e2e!(
    many_patients_are_found_by_local_ids_in_one_request_each_under_the_policy,
    |app| async move {
        let n = network(app).await;
        let first = register(app, &n.physician, valid_patient("K-0001")).await;
        let second = register(app, &n.physician, valid_patient("K-0002")).await;
        for id in [&first, &second] {
            app.consent(&n.physician, id, json!({})).await;
        }
        // A care office's own patient: the clinic is not on its care team.
        let (office, manager) = care_office(app).await;
        let theirs = register(app, &manager, valid_patient("P-0001")).await;
        app.consent(&manager, &theirs, json!({})).await;

        // One entry per local ID, in order; trimmed, repeated, unknown and
        // exact-case lookups as `patientByLocalId` answers them.
        let data = app
            .ok(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": null, "locals": ["K-0002", "K-0009", " K-0001 ", "k-0001", "K-0002"] }),
            )
            .await;
        let ids: Vec<Value> = data["patientsByLocalIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect();
        assert_eq!(
            ids,
            vec![
                json!(second),
                Value::Null,
                json!(first),
                Value::Null,
                json!(second)
            ]
        );
        assert_eq!(data["patientsByLocalIds"][0]["name"], "連携 花子");

        // Another organisation's local IDs: its own patients are found by
        // it; to the clinic, its patient and an unknown local ID are the
        // same null.
        let data = app
            .ok(
                &manager,
                MANY_BY_LOCAL_ID,
                json!({ "org": null, "locals": ["P-0001"] }),
            )
            .await;
        assert_eq!(data["patientsByLocalIds"][0]["id"], theirs.as_str());
        let hidden = app
            .gql(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": office, "locals": ["P-0001"] }),
            )
            .await;
        let unknown = app
            .gql(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": office, "locals": ["P-0002"] }),
            )
            .await;
        assert_eq!(hidden, json!({ "data": { "patientsByLocalIds": [null] } }));
        assert_eq!(hidden, unknown);
        assert_eq!(
            found_by_local_id(app, &n.physician, Some(&office), "P-0001").await,
            not_found(),
            "as the single lookup answers"
        );

        // None asked, none answered.
        let data = app
            .ok(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": null, "locals": [] }),
            )
            .await;
        assert_eq!(data["patientsByLocalIds"], json!([]));

        // Bad input names the field, and a malformed local ID its index.
        let body = app
            .gql(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": null, "locals": ["K-0001", "  "] }),
            )
            .await;
        assert_bad_input(&body, "localIds[1]");
        let body = app
            .gql(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": "abc", "locals": ["K-0001"] }),
            )
            .await;
        assert_bad_input(&body, "organizationId");
        let too_many: Vec<String> = (0..501).map(|i| format!("K-{i:04}")).collect();
        let body = app
            .gql(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": null, "locals": too_many }),
            )
            .await;
        assert_bad_input(&body, "localIds");
        // 500 are taken, and found in the same order.
        let most: Vec<String> = (0..500).map(|i| format!("K-{:04}", 500 - i)).collect();
        let data = app
            .ok(
                &n.physician,
                MANY_BY_LOCAL_ID,
                json!({ "org": null, "locals": most }),
            )
            .await;
        let answers = data["patientsByLocalIds"].as_array().unwrap();
        assert_eq!(answers.len(), 500);
        assert_eq!(answers[498]["id"], second.as_str());
        assert_eq!(answers[499]["id"], first.as_str());
        assert!(answers[..498].iter().all(Value::is_null));
    }
);

e2e!(
    a_registering_organization_may_choose_its_care_team_role,
    |app| async move {
        let n = network(app).await;
        let mut input = valid_patient("K-0001");
        input["careTeamRole"] = json!("DEPUTY_PHYSICIAN");
        let id = register(app, &n.physician, input).await;
        app.consent(&n.physician, &id, json!({})).await;
        let team = care_team(app, &n.physician, &id, false).await;
        assert_eq!(team.len(), 1, "{team:?}");
        assert_eq!(team[0]["role"], "DEPUTY_PHYSICIAN");

        // A care office defaults to the care manager's role.
        let (office, manager) = care_office(app).await;
        let id = app.patient(&manager, "U-1").await;
        let team = care_team(app, &manager, &id, false).await;
        assert_eq!(team.len(), 1, "{team:?}");
        assert_eq!(team[0]["role"], "CARE_MANAGER");
        assert_eq!(team[0]["organization"]["id"], office.as_str());
    }
);

e2e!(
    registering_patients_needs_write_access_to_identity,
    |app| async move {
        let n = network(app).await;
        // Pharmacists read identity but do not write it; administrators see no patients.
        for token in [&n.pharmacist, &app.admin_token] {
            let body = app
                .gql(token, REGISTER, json!({ "i": valid_patient("P-1") }))
                .await;
            assert_code(&body, "FORBIDDEN");
            assert_eq!(body["data"], Value::Null, "{body}");
            assert_eq!(
                found_by_local_id(app, token, None, "P-1").await,
                not_found()
            );
        }
    }
);

e2e!(
    another_organization_cannot_tell_a_patient_it_does_not_know_from_one_that_does_not_exist,
    |app| async move {
        let n = network(app).await;
        let id = app.patient(&n.physician, "K-0001").await;
        let unknown = uuid::Uuid::now_v7().to_string();

        let hidden = app.gql(&n.pharmacist, BY_ID, json!({ "id": id })).await;
        let missing = app
            .gql(&n.pharmacist, BY_ID, json!({ "id": unknown }))
            .await;
        assert_code(&hidden, "NOT_FOUND");
        assert_eq!(hidden["data"], Value::Null, "{hidden}");
        assert_eq!(hidden, missing, "the two answers are identical");
        assert!(!hidden.to_string().contains("連携"), "{hidden}");

        let hidden = app
            .gql(
                &n.pharmacist,
                BY_LOCAL_ID,
                json!({ "org": n.clinic, "local": "K-0001" }),
            )
            .await;
        let missing = app
            .gql(
                &n.pharmacist,
                BY_LOCAL_ID,
                json!({ "org": n.clinic, "local": "K-9999" }),
            )
            .await;
        assert_code(&hidden, "NOT_FOUND");
        assert_eq!(hidden["data"], Value::Null, "{hidden}");
        assert_eq!(hidden, missing, "the two answers are identical");
        assert!(!hidden.to_string().contains("連携"), "{hidden}");

        // The network administrator's organisation has no relationship either.
        assert_eq!(seen_by(app, &app.admin_token, &id).await, not_found());
        // The registering clinic still sees the patient.
        assert_eq!(seen_by(app, &n.physician, &id).await, Ok(id.clone()));
    }
);

e2e!(
    a_local_id_already_used_at_the_organization_is_a_conflict_and_creates_nobody,
    |app| async move {
        let n = network(app).await;
        let first = app.patient(&n.physician, "K-0001").await;

        for local in ["K-0001", "  K-0001 "] {
            let mut other = valid_patient(local);
            other["name"] = json!("別人 太郎");
            other["sex"] = json!("MALE");
            let body = app.gql(&n.physician, REGISTER, json!({ "i": other })).await;
            assert_code(&body, "CONFLICT");
            assert_eq!(body["data"], Value::Null, "{body}");
        }

        let data = app
            .ok(
                &n.physician,
                BY_LOCAL_ID,
                json!({ "org": null, "local": "K-0001" }),
            )
            .await;
        assert_eq!(
            data["patientByLocalId"],
            json!({ "id": first, "name": "連携 花子" })
        );
        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { identifiers { localId } careTeam { role } } }",
                json!({ "id": first }),
            )
            .await;
        assert_eq!(
            data["patient"]["identifiers"],
            json!([{ "localId": "K-0001" }])
        );
        assert_eq!(
            data["patient"]["careTeam"],
            json!([{ "role": "PRIMARY_PHYSICIAN" }])
        );

        // The same local ID at another organisation is another organisation's business.
        let (_, manager) = care_office(app).await;
        let at_office = app.patient(&manager, "K-0001").await;
        assert_ne!(at_office, first);
        assert_eq!(
            found_by_local_id(app, &manager, None, "K-0001").await,
            Ok(at_office.clone())
        );
        assert_eq!(
            found_by_local_id(app, &n.physician, None, "K-0001").await,
            Ok(first.clone())
        );
        // Neither sees the other's patient.
        assert_eq!(seen_by(app, &n.physician, &at_office).await, not_found());
        assert_eq!(seen_by(app, &manager, &first).await, not_found());
    }
);

e2e!(
    linking_local_ids_is_idempotent_and_guarded,
    |app| async move {
        let n = network(app).await;
        let p1 = app.patient(&n.physician, "K-0001").await;
        let p2 = app.patient(&n.physician, "K-0002").await;

        // Another local ID of the clinic for the same person (e.g. an old chart number).
        let data = app
            .ok(
                &n.physician,
                LINK,
                json!({ "i": { "patientId": p1, "localId": "OLD-77" } }),
            )
            .await;
        let link = data["linkPatientIdentifier"].clone();
        assert_eq!(link["localId"], "OLD-77");
        assert_eq!(link["organization"]["id"], n.clinic.as_str());

        // Linking it again is harmless and returns the same identifier.
        let data = app
        .ok(
            &n.physician,
            LINK,
            json!({ "i": { "patientId": p1, "organizationId": n.clinic, "localId": "OLD-77" } }),
        )
        .await;
        assert_eq!(data["linkPatientIdentifier"], link);

        assert_eq!(
            found_by_local_id(app, &n.physician, None, "OLD-77").await,
            Ok(p1.clone())
        );
        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { identifiers { id localId } } }",
                json!({ "id": p1 }),
            )
            .await;
        let locals: Vec<&str> = data["patient"]["identifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["localId"].as_str().unwrap())
            .collect();
        assert_eq!(locals, ["K-0001", "OLD-77"]);

        // A local ID that already names another patient.
        let body = app
            .gql(
                &n.physician,
                LINK,
                json!({ "i": { "patientId": p1, "localId": "K-0002" } }),
            )
            .await;
        assert_code(&body, "CONFLICT");
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(
            found_by_local_id(app, &n.physician, None, "K-0002").await,
            Ok(p2.clone())
        );

        // A member may link only for their own organisation.
        let body = app
            .gql(
                &n.physician,
                LINK,
                json!({ "i": { "patientId": p1, "organizationId": n.pharmacy, "localId": "Y-1" } }),
            )
            .await;
        assert_code(&body, "FORBIDDEN");
        assert_eq!(
            found_by_local_id(app, &n.physician, Some(&n.pharmacy), "Y-1").await,
            not_found(),
            "nothing was linked"
        );

        // A patient the caller cannot see cannot be linked to, even for its own organisation.
        let body = app
            .gql(
                &n.pharmacist,
                LINK,
                json!({ "i": { "patientId": p1, "localId": "Y-1" } }),
            )
            .await;
        assert_code(&body, "NOT_FOUND");
        assert_eq!(seen_by(app, &n.pharmacist, &p1).await, not_found());

        // Malformed input names its field.
        let body = app
            .gql(
                &n.physician,
                LINK,
                json!({ "i": { "patientId": p1, "localId": "  " } }),
            )
            .await;
        assert_bad_input(&body, "input.localId");
        let body = app
            .gql(
                &n.physician,
                LINK,
                json!({ "i": { "patientId": "abc", "localId": "X" } }),
            )
            .await;
        assert_bad_input(&body, "input.patientId");
    }
);

e2e!(
    nobody_links_a_local_id_of_another_organization,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0001").await;

        // Without a relationship the coordination centre cannot see the patient at all.
        let link = json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "localId": "Y-0001" } });
        let body = app.gql(&app.admin_token, LINK, link.clone()).await;
        assert_code(&body, "NOT_FOUND");

        // On the care team, the administrator still may not: it writes no
        // patient data (IDENTITY), and nobody links another facility's numbers.
        app.ok(
            &n.physician,
            ADD_TO_TEAM,
            json!({ "i": { "patientId": patient, "organizationId": app.admin_org.to_string(), "role": "OTHER" } }),
        )
        .await;
        let body = app.gql(&app.admin_token, LINK, link.clone()).await;
        assert_code(&body, "FORBIDDEN");
        let body = app.gql(&n.physician, LINK, link).await;
        assert_code(&body, "FORBIDDEN");
        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { identifiers { localId organization { id } } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"]["identifiers"],
            json!([{ "localId": "K-0001", "organization": { "id": n.clinic } }])
        );
        assert_eq!(
            found_by_local_id(app, &n.pharmacist, None, "Y-0001").await,
            not_found()
        );

        // Linking for an organisation that does not exist is refused too.
        let body = app
            .gql(
                &n.physician,
                LINK,
                json!({ "i": { "patientId": patient, "organizationId": uuid::Uuid::now_v7().to_string(), "localId": "Z" } }),
            )
            .await;
        assert_code(&body, "FORBIDDEN");
    }
);

e2e!(
    a_care_team_membership_grants_access_until_it_ends,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0001").await;
        assert_eq!(seen_by(app, &n.pharmacist, &patient).await, not_found());
        let primary = care_team(app, &n.physician, &patient, false).await[0].clone();

        let start = day(app, -30);
        let data = app
            .ok(
                &n.physician,
                ADD_TO_TEAM,
                json!({ "i": {
                    "patientId": patient, "organizationId": n.pharmacy, "memberId": n.pharmacist_id,
                    "role": "PHARMACY", "startDate": start
                } }),
            )
            .await;
        let membership = data["addCareTeamMember"].clone();
        let membership_id = membership["id"].as_str().expect("id").to_string();
        assert_eq!(
            membership,
            json!({
                "id": membership_id, "role": "PHARMACY", "organization": { "id": n.pharmacy },
                "member": { "id": n.pharmacist_id }, "startDate": start, "endDate": null, "active": true,
            })
        );

        // The pharmacy now sees the patient, by id and through the clinic's local ID.
        let data = app.ok(&n.pharmacist, BY_ID, json!({ "id": patient })).await;
        assert_eq!(
            data["patient"],
            json!({ "id": patient, "name": "連携 花子" })
        );
        assert_eq!(
            found_by_local_id(app, &n.pharmacist, Some(&n.clinic), "K-0001").await,
            Ok(patient.clone())
        );
        assert_eq!(
            care_team(app, &n.pharmacist, &patient, false).await,
            [primary.clone(), membership.clone()]
        );

        // The same organisation, member and role again is a duplicate.
        let body = app
            .gql(
                &n.physician,
                ADD_TO_TEAM,
                json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "memberId": n.pharmacist_id, "role": "PHARMACY" } }),
            )
            .await;
        assert_code(&body, "CONFLICT");

        // A named member must belong to the organisation.
        let body = app
            .gql(
                &n.physician,
                ADD_TO_TEAM,
                json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "memberId": n.physician_id, "role": "OTHER" } }),
            )
            .await;
        assert_bad_input(&body, "input.memberId");
        let body = app
            .gql(
                &n.physician,
                ADD_TO_TEAM,
                json!({ "i": { "patientId": patient, "organizationId": uuid::Uuid::now_v7().to_string(), "role": "OTHER" } }),
            )
            .await;
        assert_bad_input(&body, "input.organizationId");
        assert_eq!(
            care_team(app, &n.physician, &patient, true).await.len(),
            2,
            "nothing was added"
        );

        // The pharmacist reads the care team but may not change it.
        let body = app
            .gql(
                &n.pharmacist,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": primary["id"] } }),
            )
            .await;
        assert_code(&body, "FORBIDDEN");

        // Ending yesterday: the membership is over and the pharmacy loses access.
        let yesterday = day(app, -1);
        let data = app
            .ok(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": membership_id, "endDate": yesterday } }),
            )
            .await;
        assert_eq!(
            data["endCareTeamMembership"],
            json!({ "id": membership_id, "startDate": start, "endDate": yesterday, "active": false })
        );
        assert_eq!(seen_by(app, &n.pharmacist, &patient).await, not_found());
        assert_eq!(
            found_by_local_id(app, &n.pharmacist, Some(&n.clinic), "K-0001").await,
            not_found()
        );

        let team = care_team(app, &n.physician, &patient, false).await;
        assert_eq!(team.len(), 1, "{team:?}");
        assert_eq!(team[0], primary);
        let team = care_team(app, &n.physician, &patient, true).await;
        assert_eq!(team.len(), 2, "{team:?}");
        assert_eq!(team[1]["id"], membership_id.as_str());
        assert_eq!(team[1]["endDate"], yesterday.as_str());
        assert_eq!(team[1]["active"], false);
        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { careTeam { id } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"]["careTeam"],
            json!([{ "id": primary["id"] }]),
            "includeEnded defaults to false"
        );

        // Ending it again is a conflict.
        let body = app
            .gql(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": membership_id, "endDate": yesterday } }),
            )
            .await;
        assert_code(&body, "CONFLICT");

        // Once ended, the same organisation may join again.
        app.ok(
            &n.physician,
            ADD_TO_TEAM,
            json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "memberId": n.pharmacist_id, "role": "PHARMACY" } }),
        )
        .await;
        assert_eq!(
            seen_by(app, &n.pharmacist, &patient).await,
            Ok(patient.clone())
        );
    }
);

e2e!(
    a_membership_cannot_end_before_it_started_and_ending_today_keeps_today,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0001").await;
        let start = day(app, -10);
        let data = app
            .ok(
                &n.physician,
                ADD_TO_TEAM,
                json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "role": "PHARMACY", "startDate": start } }),
            )
            .await;
        let membership = data["addCareTeamMember"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(data["addCareTeamMember"]["member"], Value::Null);

        let body = app
            .gql(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": membership, "endDate": day(app, -20) } }),
            )
            .await;
        assert_bad_input(&body, "input.endDate");
        assert_eq!(
            seen_by(app, &n.pharmacist, &patient).await,
            Ok(patient.clone()),
            "still active"
        );

        // Someone without access to the patient cannot end (or learn about) the membership.
        let outsider_org = app
            .organization("VISITING_NURSE_STATION", "北見訪問看護ステーション")
            .await;
        let (_, nurse) = app.member(&outsider_org, "NURSE").await;
        let hidden = app
            .gql(
                &nurse,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": membership } }),
            )
            .await;
        assert_code(&hidden, "NOT_FOUND");
        let missing = app
            .gql(
                &nurse,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": uuid::Uuid::now_v7().to_string() } }),
            )
            .await;
        assert_code(&missing, "NOT_FOUND");
        assert_eq!(
            hidden["errors"][0]["message"],
            missing["errors"][0]["message"]
        );

        // Without an end date the membership ends today; the end date is inclusive.
        let data = app
            .ok(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": membership } }),
            )
            .await;
        assert_eq!(data["endCareTeamMembership"]["endDate"], day(app, 0));
        assert_eq!(data["endCareTeamMembership"]["active"], true);
        assert_eq!(
            seen_by(app, &n.pharmacist, &patient).await,
            Ok(patient.clone())
        );
    }
);

e2e!(
    a_membership_that_starts_in_the_future_grants_nothing_yet,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0001").await;
        let data = app
            .ok(
                &n.physician,
                ADD_TO_TEAM,
                json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "role": "PHARMACY", "startDate": day(app, 7) } }),
            )
            .await;
        assert_eq!(data["addCareTeamMember"]["active"], false);
        assert_eq!(seen_by(app, &n.pharmacist, &patient).await, not_found());
        let team = care_team(app, &n.physician, &patient, false).await;
        assert_eq!(
            team.len(),
            1,
            "only the primary physician is in force today: {team:?}"
        );
        assert_eq!(team[0]["role"], "PRIMARY_PHYSICIAN");
        assert_eq!(care_team(app, &n.physician, &patient, true).await.len(), 2);
    }
);

e2e!(
    registering_a_patient_with_bad_values_is_bad_user_input_and_creates_nobody,
    |app| async move {
        let n = network(app).await;
        let cases: Vec<(&str, Value, &str)> = vec![
            ("name", json!(""), "input.name"),
            ("name", json!(" \u{3000} "), "input.name"),
            ("nameKana", json!("Hanako"), "input.nameKana"),
            ("nameKana", json!("花子"), "input.nameKana"),
            ("nameKana", json!(""), "input.nameKana"),
            ("birthDate", json!(day(app, 2)), "input.birthDate"),
            ("postalCode", json!("12345"), "input.postalCode"),
            ("phone", json!("110"), "input.phone"),
            ("address", json!(""), "input.address"),
            ("localId", json!("   "), "input.localId"),
            ("localId", json!("x".repeat(65)), "input.localId"),
        ];
        for (i, (key, value, field)) in cases.into_iter().enumerate() {
            let local = format!("BAD-{i}");
            let mut input = valid_patient(&local);
            input[key] = value.clone();
            let body = app.gql(&n.physician, REGISTER, json!({ "i": input })).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{key} = {value}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], field,
                "{key} = {value}: {body}"
            );
            assert_eq!(body["data"], Value::Null, "{body}");
            assert_eq!(
                found_by_local_id(app, &n.physician, None, &local).await,
                not_found(),
                "{key} = {value}"
            );
        }

        // Unknown enum values and missing required fields fail GraphQL input coercion.
        let mut input = valid_patient("BAD-sex");
        input["sex"] = json!("ROBOT");
        let body = app.gql(&n.physician, REGISTER, json!({ "i": input })).await;
        assert_code(&body, "BAD_USER_INPUT");
        let mut input = valid_patient("BAD-missing");
        input.as_object_mut().unwrap().remove("birthDate");
        let body = app.gql(&n.physician, REGISTER, json!({ "i": input })).await;
        assert_code(&body, "BAD_USER_INPUT");
        for local in ["BAD-sex", "BAD-missing"] {
            assert_eq!(
                found_by_local_id(app, &n.physician, None, local).await,
                not_found()
            );
        }

        // The earliest accepted birth date.
        let mut input = valid_patient("OK-1900");
        input["birthDate"] = json!("1900-01-01");
        register(app, &n.physician, input).await;
    }
);

e2e!(
    an_unknown_field_in_the_patient_input_is_refused_before_anything_runs,
    |app| async move {
        let n = network(app).await;
        let mut input = valid_patient("BAD-unknown");
        input["nickname"] = json!("はなちゃん");
        let body = app.gql(&n.physician, REGISTER, json!({ "i": input })).await;
        // async-graphql reports it as an invalid argument value: input coercion.
        assert_code(&body, "BAD_USER_INPUT");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("nickname"),
            "{body}"
        );
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(
            found_by_local_id(app, &n.physician, None, "BAD-unknown").await,
            not_found()
        );

        // The same mistake written inline in the query.
        let body = app
            .gql(
                &n.physician,
                r#"mutation { registerPatient(input: {
                name: "連携 花子", nameKana: "レンケイ ハナコ", birthDate: "1940-05-01", sex: FEMALE,
                localId: "BAD-inline", nickname: "はなちゃん"
            }) { id } }"#,
                json!({}),
            )
            .await;
        assert_code(&body, "BAD_USER_INPUT");
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(
            found_by_local_id(app, &n.physician, None, "BAD-inline").await,
            not_found()
        );
    }
);

e2e!(
    an_impossible_or_mistyped_date_is_bad_user_input,
    |app| async move {
        // The `Date` scalar documents that an impossible date is refused with
        // BAD_USER_INPUT, like every other unacceptable input value.
        let n = network(app).await;
        let mut wrong_codes = Vec::new();
        let cases = [
            ("impossible", json!("2023-02-30")),
            ("not-iso", json!("1940/05/01")),
            ("number", json!(19400501)),
        ];
        for (local, value) in cases {
            let mut input = valid_patient(local);
            input["birthDate"] = value.clone();
            let body = app.gql(&n.physician, REGISTER, json!({ "i": input })).await;
            assert!(body["errors"][0]["message"].is_string(), "refused: {body}");
            assert_eq!(body["data"], Value::Null, "{body}");
            assert_eq!(
                found_by_local_id(app, &n.physician, None, local).await,
                not_found()
            );
            if error_code(&body).as_deref() != Some("BAD_USER_INPUT") {
                wrong_codes.push(format!("registerPatient birthDate = {value}: {body}"));
            }
            // Named as the hub names the fields it refuses itself.
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.birthDate",
                "{body}"
            );
        }
        // So is a list's item (async-graphql says `input.records.1`).
        let body = app
            .gql(
                &n.physician,
                "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }",
                json!({ "i": { "records": [{ "patientId": uuid::Uuid::now_v7().to_string(),
                    "effectiveAt": "2026-01-01T00:00:00Z", "data": { "vitalSigns": { "pulse": 70 } } }, null] } }),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], "input.records[1]",
            "{body}"
        );

        // The same for a date of death: the patient stays as it was.
        let patient = app.patient(&n.physician, "K-0001").await;
        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": "2024-02-30", "placeOfDeath": "HOME" } }),
            )
            .await;
        assert!(body["errors"][0]["message"].is_string(), "refused: {body}");
        if error_code(&body).as_deref() != Some("BAD_USER_INPUT") {
            wrong_codes.push(format!(
                "setPatientStatus deceasedOn = \"2024-02-30\": {body}"
            ));
        }
        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { status } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(data["patient"]["status"], "ACTIVE");

        assert!(
            wrong_codes.is_empty(),
            "expected extensions.code BAD_USER_INPUT for:\n{}",
            wrong_codes.join("\n")
        );
    }
);

e2e!(
    a_death_in_the_small_hours_is_recorded_on_that_day_in_japan,
    |app| async move {
        // Care-team and consent dates are calendar days in Japan (UTC+9): move
        // the server's clock to 03:00 tomorrow, Japan time, when the UTC date
        // is still the day before, and record a death on that day.
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0001").await;
        let jst = app.clock.now() + Duration::hours(9);
        let target_jst = (jst.date_naive() + Duration::days(1))
            .and_hms_opt(3, 0, 0)
            .unwrap();
        let target_utc = target_jst - Duration::hours(9);
        app.clock.advance(target_utc - app.clock.now().naive_utc());
        let today = app.clock.today();
        assert_eq!(today, target_jst.date());

        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": date(today), "placeOfDeath": "HOME" } }),
            )
            .await;
        assert!(
            body.get("errors").is_none(),
            "a death on {today} (today in Japan) is refused: {body}"
        );
        assert_eq!(body["data"]["setPatientStatus"]["deceasedOn"], date(today));

        // A baby born that day can be registered too.
        let mut input = valid_patient("NEWBORN");
        input["birthDate"] = json!(date(today));
        let body = app.gql(&n.physician, REGISTER, json!({ "i": input })).await;
        assert!(
            body.get("errors").is_none(),
            "a birth on {today} (today in Japan) is refused: {body}"
        );
    }
);

e2e!(
    a_patients_death_is_recorded_with_its_date_and_place,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0001").await;

        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED" } }),
            )
            .await;
        assert_bad_input(&body, "input.deceasedOn");
        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": "2024-03-01" } }),
            )
            .await;
        assert_bad_input(&body, "input.placeOfDeath");
        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": day(app, 2), "placeOfDeath": "HOME" } }),
            )
            .await;
        assert_bad_input(&body, "input.deceasedOn");
        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": "1930-01-01", "placeOfDeath": "HOME" } }),
            )
            .await;
        assert_bad_input(&body, "input.deceasedOn");

        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { status deceasedOn } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"],
            json!({ "status": "ACTIVE", "deceasedOn": null }),
            "refusals changed nothing"
        );

        // Another organisation cannot record anything about a patient it does not know.
        let body = app
            .gql(
                &n.pharmacist,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": "2024-03-01", "placeOfDeath": "HOME" } }),
            )
            .await;
        assert_code(&body, "NOT_FOUND");

        let data = app
            .ok(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": "2024-03-01", "placeOfDeath": "HOME" } }),
            )
            .await;
        assert_eq!(
            data["setPatientStatus"],
            json!({ "id": patient, "status": "DECEASED", "deceasedOn": "2024-03-01", "placeOfDeath": "HOME" })
        );
        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { status deceasedOn placeOfDeath } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"],
            json!({ "status": "DECEASED", "deceasedOn": "2024-03-01", "placeOfDeath": "HOME" })
        );

        // Only a death carries a date and a place.
        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "ACTIVE", "deceasedOn": "2024-03-01" } }),
            )
            .await;
        assert_bad_input(&body, "input.deceasedOn");
        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "MOVED_AWAY", "placeOfDeath": "HOSPITAL" } }),
            )
            .await;
        assert_bad_input(&body, "input.placeOfDeath");
        let data = app
            .ok(
                &n.physician,
                "query($id: ID!) { patient(id: $id) { status } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(data["patient"]["status"], "DECEASED");

        // A mistaken death record is corrected by setting the patient active again.
        let data = app
            .ok(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "ACTIVE" } }),
            )
            .await;
        assert_eq!(
            data["setPatientStatus"],
            json!({ "id": patient, "status": "ACTIVE", "deceasedOn": null, "placeOfDeath": null })
        );
        let data = app
            .ok(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "MOVED_AWAY" } }),
            )
            .await;
        assert_eq!(data["setPatientStatus"]["status"], "MOVED_AWAY");
    }
);

e2e!(
    a_pharmacist_on_the_care_team_may_not_change_a_patients_status,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0001").await;
        app.ok(
            &n.physician,
            ADD_TO_TEAM,
            json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "role": "PHARMACY" } }),
        )
        .await;
        let body = app
            .gql(
                &n.pharmacist,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "MOVED_AWAY" } }),
            )
            .await;
        assert_code(&body, "FORBIDDEN");
        let data = app
            .ok(
                &n.pharmacist,
                "query($id: ID!) { patient(id: $id) { status } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(data["patient"]["status"], "ACTIVE");
    }
);

e2e!(
    a_clinics_system_registers_patients_for_the_clinic,
    |app| async move {
        let n = network(app).await;
        let data = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "organizationId": n.clinic, "name": "電子カルテ連携", "permissions": [
                    { "category": "IDENTITY", "level": "READ_WRITE" },
                    { "category": "CARE_TEAM", "level": "READ" },
                    { "category": "CONSENT", "level": "READ_WRITE" },
                ] } }),
            )
            .await;
        let system = data["createApiKey"]["secret"].as_str().unwrap().to_string();

        let patient = app.patient(&system, "EHR-1").await;
        let data = app
            .ok(
                &system,
                "query($id: ID!) { patient(id: $id) { name identifiers { localId organization { id } } careTeam { role member { id } organization { id } } } }",
                json!({ "id": patient }),
            )
            .await;
        assert_eq!(
            data["patient"],
            json!({
                "name": "連携 花子",
                "identifiers": [{ "localId": "EHR-1", "organization": { "id": n.clinic } }],
                // A system is no member: the membership names none.
                "careTeam": [{ "role": "PRIMARY_PHYSICIAN", "member": null, "organization": { "id": n.clinic } }],
            })
        );
        // The clinic's members see what its system registered, and vice versa.
        let data = app.ok(&n.physician, BY_ID, json!({ "id": patient })).await;
        assert_eq!(data["patient"]["name"], "連携 花子");
        let by_member = app.patient(&n.physician, "K-0001").await;
        assert_eq!(
            seen_by(app, &system, &by_member).await,
            Ok(by_member.clone())
        );
        assert_eq!(seen_by(app, &n.pharmacist, &patient).await, not_found());

        // A system without identity write may not register.
        let data = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "organizationId": n.clinic, "name": "閲覧専用", "permissions": [
                    { "category": "IDENTITY", "level": "READ" },
                ] } }),
            )
            .await;
        let reader = data["createApiKey"]["secret"].as_str().unwrap();
        let body = app
            .gql(reader, REGISTER, json!({ "i": valid_patient("EHR-2") }))
            .await;
        assert_code(&body, "FORBIDDEN");
    }
);

/// Sends requests all at once; returns each response body, in order.
async fn concurrently(app: &TestApp, token: &str, bodies: Vec<Value>) -> Vec<Value> {
    let mut set = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let req = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(token)
            .json(&body);
        set.spawn(async move {
            let res = req.send().await.expect("request sent");
            assert_eq!(res.status().as_u16(), 200);
            (i, res.json::<Value>().await.expect("JSON"))
        });
    }
    let mut out = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, b)| b).collect()
}

e2e!(
    simultaneous_registrations_all_succeed_or_conflict_never_fail,
    |app| async move {
        let n = network(app).await;

        // Different local IDs at once: every one is registered.
        let bodies = (0..8)
            .map(|i| json!({ "query": REGISTER, "variables": { "i": valid_patient(&format!("C-{i}")) } }))
            .collect();
        let results = concurrently(app, &n.physician, bodies).await;
        let failed: Vec<String> = results
            .iter()
            .filter(|b| b.get("errors").is_some())
            .map(Value::to_string)
            .collect();
        assert!(
            failed.is_empty(),
            "{} of 8 simultaneous registrations failed:\n{}",
            failed.len(),
            failed.join("\n")
        );
        for i in 0..8 {
            let local = format!("C-{i}");
            let found = found_by_local_id(app, &n.physician, None, &local).await;
            assert!(found.is_ok(), "{local}: {found:?}");
        }

        // The same local ID at once: exactly one wins, the others are CONFLICT.
        let bodies = (0..8)
            .map(|_| json!({ "query": REGISTER, "variables": { "i": valid_patient("SAME") } }))
            .collect();
        let results = concurrently(app, &n.physician, bodies).await;
        let winners: Vec<&str> = results
            .iter()
            .filter_map(|b| b["data"]["registerPatient"]["id"].as_str())
            .collect();
        let codes: Vec<Option<String>> = results.iter().map(error_code).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert_eq!(
            codes
                .iter()
                .filter(|c| c.as_deref() == Some("CONFLICT"))
                .count(),
            7,
            "{codes:?}"
        );
        assert_eq!(
            found_by_local_id(app, &n.physician, None, "SAME").await,
            Ok(winners[0].to_string())
        );
    }
);

e2e!(
    deaths_in_housing_for_older_people_and_clinics_are_told_apart,
    |app| async move {
        let n = network(app).await;
        // The programme counts deaths at home apart from those in serviced
        // housing, private nursing homes and clinics (在宅看取り).
        for (i, place) in ["SERVICED_HOUSING", "PRIVATE_NURSING_HOME", "CLINIC"]
            .into_iter()
            .enumerate()
        {
            let patient = app.patient(&n.physician, &format!("PLACE-{i}")).await;
            let data = app
                .ok(
                    &n.physician,
                    SET_STATUS,
                    json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": "2024-03-01", "placeOfDeath": place } }),
                )
                .await;
            assert_eq!(data["setPatientStatus"]["placeOfDeath"], place);
            let data = app
                .ok(
                    &n.physician,
                    "query($id: ID!) { patient(id: $id) { placeOfDeath } }",
                    json!({ "id": patient }),
                )
                .await;
            assert_eq!(data["patient"]["placeOfDeath"], place);
        }
        let patient = app.patient(&n.physician, "PLACE-X").await;
        let body = app
            .gql(
                &n.physician,
                SET_STATUS,
                json!({ "i": { "patientId": patient, "status": "DECEASED", "deceasedOn": "2024-03-01", "placeOfDeath": "SAHKOJU" } }),
            )
            .await;
        assert!(
            body.get("errors").is_some(),
            "an unknown place is refused: {body}"
        );
    }
);

e2e!(
    other_facilities_local_ids_are_shown_only_with_the_care_team,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0100").await;
        let (office, manager) = care_office(app).await;
        app.ok(
            &n.physician,
            ADD_TO_TEAM,
            json!({ "i": { "patientId": patient, "organizationId": office, "role": "CARE_MANAGER" } }),
        )
        .await;
        app.ok(
            &manager,
            LINK,
            json!({ "i": { "patientId": patient, "organizationId": office, "localId": "CM-1" } }),
        )
        .await;
        let local_ids = |token: String| {
            let patient = patient.clone();
            async move {
                let body = app
                    .gql(
                        &token,
                        "query($id: ID!) { patient(id: $id) { identifiers { localId } } }",
                        json!({ "id": patient }),
                    )
                    .await;
                let mut ids: Vec<String> = body["data"]["patient"]["identifiers"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{body}"))
                    .iter()
                    .map(|i| i["localId"].as_str().unwrap().to_string())
                    .collect();
                ids.sort();
                ids
            }
        };
        // Which facilities know the patient is the care team's business:
        // readers of CARE_TEAM see every facility's local ID…
        assert_eq!(local_ids(n.physician.clone()).await, ["CM-1", "K-0100"]);
        assert_eq!(local_ids(manager.clone()).await, ["CM-1", "K-0100"]);
        // …and with CARE_TEAM excluded by the consent, each only its own.
        app.consent(
            &n.physician,
            &patient,
            json!({ "excludedCategories": ["CARE_TEAM"] }),
        )
        .await;
        assert_eq!(local_ids(n.physician.clone()).await, ["K-0100"]);
        assert_eq!(local_ids(manager.clone()).await, ["CM-1"]);
    }
);

e2e!(
    a_membership_is_ended_by_its_organisation_the_one_that_added_it_or_the_centre,
    |app| async move {
        let n = network(app).await;
        let patient = app.patient(&n.physician, "K-0200").await;
        let team = care_team(app, &n.physician, &patient, false).await;
        let primary = team[0]["id"].as_str().unwrap().to_string();
        let (office, manager) = care_office(app).await;
        let added = |token: String, org: String, role: &'static str| {
            let patient = patient.clone();
            async move {
                app.ok(
                    &token,
                    ADD_TO_TEAM,
                    json!({ "i": { "patientId": patient, "organizationId": org, "role": role } }),
                )
                .await["addCareTeamMember"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let added_to = |patient: String, org: String| {
            let physician = n.physician.clone();
            async move {
                app.ok(
                    &physician,
                    ADD_TO_TEAM,
                    json!({ "i": { "patientId": patient, "organizationId": org, "role": "PHARMACY" } }),
                )
                .await["addCareTeamMember"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let care_manager = added(n.physician.clone(), office.clone(), "CARE_MANAGER").await;
        let pharmacy = added(n.physician.clone(), n.pharmacy.clone(), "PHARMACY").await;
        let end = |token: String, membership: String| async move {
            app.gql(
                &token,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": membership } }),
            )
            .await
        };
        // The care manager may write CARE_TEAM, yet may not end the
        // clinic's membership, nor the pharmacy's the clinic added.
        for membership in [&primary, &pharmacy] {
            let body = end(manager.clone(), membership.clone()).await;
            assert_code(&body, "FORBIDDEN");
        }
        assert_eq!(
            seen_by(app, &n.physician, &patient).await,
            Ok(patient.clone())
        );
        assert_eq!(care_team(app, &n.physician, &patient, false).await.len(), 3);
        // An organisation leaves by itself.
        let body = end(manager.clone(), care_manager).await;
        assert!(body["errors"].is_null(), "{body}");
        // The coordination centre, on the team, ends any.
        let centre = app
            .organization("COORDINATION_CENTER", "北見市在宅医療介護連携支援センター")
            .await;
        let (_, coordinator) = app.member(&centre, "CARE_MANAGER").await;
        let centres = added(n.physician.clone(), centre, "COMMUNITY_SUPPORT_CENTER").await;
        let body = end(coordinator, pharmacy).await;
        assert!(body["errors"].is_null(), "{body}");
        // The clinic ends the membership it added.
        let body = end(n.physician.clone(), centres).await;
        assert!(body["errors"].is_null(), "{body}");

        // The patient's last membership does not end: nobody could reach
        // the patient again, not even to add a team.
        let alone = app.patient(&n.physician, "K-0201").await;
        let only = care_team(app, &n.physician, &alone, false).await[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let body = end(n.physician.clone(), only.clone()).await;
        assert_code(&body, "CONFLICT");
        assert_eq!(seen_by(app, &n.physician, &alone).await, Ok(alone.clone()));
        // Nor while the only other membership has an end date: ended in
        // the right order, with dates backdated, they would leave nobody.
        let pharmacy = added_to(alone.clone(), n.pharmacy.clone()).await;
        let body = app
            .gql(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": pharmacy, "endDate": day(app, 30) } }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let body = end(n.physician.clone(), only).await;
        assert_code(&body, "CONFLICT");
    }
);

e2e!(
    adds_of_one_membership_sent_at_once_make_one_and_ending_it_ends_access,
    |app| async move {
        let n = network(app).await;
        // A client retrying, a double click: fifty adds at once — in eight
        // rounds, each on a patient of its own (the window the race needs
        // is short: one round alone often finds it shut).
        for round in 0..8 {
            let patient = app.patient(&n.physician, &format!("K-07{round:02}")).await;
            let input = json!({ "i": { "patientId": patient, "organizationId": n.pharmacy, "role": "PHARMACY", "startDate": day(app, -5) } });
            let answers = futures::future::join_all(
                (0..50).map(|_| app.gql(&n.physician, ADD_TO_TEAM, input.clone())),
            )
            .await;
            let added: Vec<&Value> = answers.iter().filter(|b| b["errors"].is_null()).collect();
            assert_eq!(added.len(), 1, "round {round}: {answers:?}");
            for refused in answers.iter().filter(|b| !b["errors"].is_null()) {
                assert_code(refused, "CONFLICT");
            }
            let pharmacy_rows = care_team(app, &n.physician, &patient, false)
                .await
                .into_iter()
                .filter(|m| m["organization"]["id"] == n.pharmacy.as_str())
                .count();
            assert_eq!(pharmacy_rows, 1);
            assert!(seen_by(app, &n.pharmacist, &patient).await.is_ok());
            // Ended, it is ended: the pharmacy no longer sees the patient.
            let id = added[0]["data"]["addCareTeamMember"]["id"].clone();
            app.ok(
                &n.physician,
                END_MEMBERSHIP,
                json!({ "i": { "membershipId": id, "endDate": day(app, -1) } }),
            )
            .await;
            assert_eq!(seen_by(app, &n.pharmacist, &patient).await, not_found());
        }
    }
);

e2e!(
    identifiers_with_invisible_characters_are_refused,
    |app| async move {
        let n = network(app).await;
        let register = |local: &str, insured: &str| {
            json!({ "i": { "name": "連携 花子", "nameKana": "レンケイ ハナコ", "birthDate": "1940-05-01",
                "sex": "FEMALE", "localId": local, "insuredPersonIdentifier": insured } })
        };
        app.ok(
            &n.physician,
            REGISTER,
            register("K-0900", "00012345:ZZ:187:05"),
        )
        .await;
        // The same person's identifier with a zero-width space or a word
        // joiner would be another identifier, and so another patient; a
        // local ID with a direction override reads as another text.
        for (input, field) in [
            (
                register("K-0901", "00012345:ZZ\u{200B}:187:05"),
                "input.insuredPersonIdentifier",
            ),
            (
                register("K-0902", "00012345:ZZ:187\u{2060}:05"),
                "input.insuredPersonIdentifier",
            ),
            (
                register("K-\u{202E}0903", "00012345:ZZ:188:05"),
                "input.localId",
            ),
            (
                register("K-0904\u{FEFF}", "00012345:ZZ:189:05"),
                "input.localId",
            ),
        ] {
            let body = app.gql(&n.physician, REGISTER, input.clone()).await;
            assert_bad_input(&body, field);
        }
        let lookup = app
            .gql(
                &n.physician,
                "query { patientByInsuredPersonIdentifier(identifier: \"00012345:ZZ:187\u{2060}:05\") { id } }",
                json!({}),
            )
            .await;
        assert_code(&lookup, "BAD_USER_INPUT");
    }
);

e2e!(
    names_and_one_line_text_refuse_invisible_formatting_characters,
    |app| async move {
        let clinic = app.organization("CLINIC", "不可視文字クリニック").await;
        let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
        // A name that shows nothing, or another order than written, or
        // that an exact search for the name it looks like misses.
        for (n, name) in [
            "\u{200B}",
            "北見\u{202E}花子",
            "北見\u{200B}花子",
            "\u{FEFF}北見 花子",
        ]
        .into_iter()
        .enumerate()
        {
            let body = app
                .gql(
                    &doctor,
                    REGISTER,
                    json!({ "i": { "name": name, "nameKana": "キタミ ハナコ", "birthDate": "1940-05-01",
                                   "sex": "FEMALE", "localId": format!("INV-{n}") } }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{name:?}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.name",
                "{body}"
            );
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("invisible formatting characters"),
                "{body}"
            );
        }
        // Record fields of one line, and a record's source ID, alike.
        let patient = app.patient(&doctor, "INV-OK").await;
        let write = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }";
        for (name, source, field) in [
            (
                "Hb\u{200B}A1c",
                "L-1",
                "input.records[0].data.labResult.name",
            ),
            ("HbA1c", "L-\u{2060}2", "input.records[0].sourceRecordId"),
        ] {
            let body = app
                .gql(
                    &doctor,
                    write,
                    json!({ "i": { "records": [{ "patientId": patient, "sourceRecordId": source,
                        "effectiveAt": "2026-01-05T00:00:00Z",
                        "data": { "labResult": { "name": name, "value": "72", "unit": "%", "abnormal": "UNKNOWN" } } }] } }),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        }
        // Free text keeps what changes no word (a zero-width space pasted
        // from a document), and refuses what reorders it.
        let note = |text: &str| {
            json!({ "i": { "records": [{ "patientId": patient, "effectiveAt": "2026-01-05T00:00:00Z",
                "data": { "imagingReport": { "modality": "X_RAY", "bodySite": "胸部", "findings": text } } }] } })
        };
        for kept in ["異常\u{200B}なし", "連絡先 \u{202A}011-123-4567\u{202C}"] {
            let body = app.gql(&doctor, write, note(kept)).await;
            assert!(body["errors"].is_null(), "{kept:?}: {body}");
        }
        let body = app.gql(&doctor, write, note("異常\u{202E}なし")).await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            "input.records[0].data.imagingReport.findings",
            "{body}"
        );
    }
);
