//! 救急時の患者検索: `searchPatientsForEmergency`, finding the patient an
//! ambulance crew is with by the exact name and birth date.

use renkei_tests::*;
use serde_json::{Value, json};

const SEARCH: &str = "mutation($i: EmergencyPatientSearchInput!) { searchPatientsForEmergency(input: $i) { searchesLeft candidates { patientId name nameKana birthDate sex municipality } } }";
const OPEN: &str = "mutation($i: OpenEmergencyAccessInput!) { openEmergencyAccess(input: $i) { patient { id name } } }";
const LOG: &str = "query($a: ID!, $act: AuditAction!) { auditLog(filter: { actorId: $a, action: $act }, first: 50) { edges { node { patientId categories outcome detail } } } }";

/// A clinic, its physician, and a fire department's EMS crew member (not on
/// any care team).
struct Scene {
    clinic: String,
    doctor: String,
    crew_id: String,
    crew: String,
}

async fn scene(app: &TestApp) -> Scene {
    let clinic = app.organization("CLINIC", "みなみ野在宅クリニック").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let fire = app
        .organization("AMBULANCE_SERVICE", "みなみ野市消防本部")
        .await;
    let (crew_id, crew) = app.member(&fire, "EMS_CREW").await;
    Scene {
        clinic,
        doctor,
        crew_id,
        crew,
    }
}

/// Registers a patient with the clinic (with consent), with an address.
async fn patient(
    app: &TestApp,
    token: &str,
    local_id: &str,
    name: &str,
    kana: &str,
    sex: &str,
    address: &str,
) -> String {
    let data = app
        .ok(
            token,
            "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }",
            json!({ "i": {
                "name": name, "nameKana": kana, "birthDate": "1940-05-01",
                "sex": sex, "localId": local_id, "address": address
            } }),
        )
        .await;
    let id = data["registerPatient"]["id"].as_str().unwrap().to_string();
    app.consent(token, &id, json!({ "scope": "NETWORK" })).await;
    id
}

fn search_input(extra: Value) -> Value {
    let mut input = json!({ "birthDate": "1940-05-01", "reasonCode": "IN_TRANSPORT" });
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    json!({ "i": input })
}

fn candidates(data: &Value) -> Vec<Value> {
    data["searchPatientsForEmergency"]["candidates"]
        .as_array()
        .unwrap()
        .clone()
}

/// What a refusal shows a client: the errors without the request-specific
/// parts, and the data.
fn shape(body: &Value) -> Value {
    json!({ "data": body["data"], "errors": body["errors"] })
}

e2e!(
    an_ems_crew_finds_the_patient_by_exact_name_and_birth_date_and_opens_access,
    |app| async move {
        let s = scene(app).await;
        let hanako = patient(
            app,
            &s.doctor,
            "K-1",
            "連携 花子",
            "レンケイ ハナコ",
            "FEMALE",
            "北海道みなみ野市本町1丁目2-3",
        )
        .await;
        // Harmless differences are folded: spaces, width, hiragana.
        for extra in [
            json!({ "name": "連携花子" }),
            json!({ "name": "連携　花子", "sex": "FEMALE" }),
            json!({ "nameKana": "ﾚﾝｹｲ ﾊﾅｺ" }),
            json!({ "nameKana": "れんけい　はなこ", "area": "みなみ野市" }),
        ] {
            let data = app.ok(&s.crew, SEARCH, search_input(extra.clone())).await;
            let found = candidates(&data);
            assert_eq!(found.len(), 1, "{extra}: {data}");
            assert_eq!(
                found[0],
                json!({
                    "patientId": hanako, "name": "連携 花子", "nameKana": "レンケイ　ハナコ",
                    "birthDate": "1940-05-01", "sex": "FEMALE", "municipality": "みなみ野市"
                })
            );
        }
        // Any other difference is another person: a part of the name, a
        // wrong day, sex or area.
        for extra in [
            json!({ "name": "連携" }),
            json!({ "name": "連携 花" }),
            json!({ "name": "連携 花子", "birthDate": "1940-05-02" }),
            json!({ "name": "連携 花子", "sex": "MALE" }),
            json!({ "name": "連携 花子", "area": "北川町" }),
            json!({ "name": "連携 花子", "nameKana": "レンケイ ハナ" }),
        ] {
            let data = app.ok(&s.crew, SEARCH, search_input(extra.clone())).await;
            assert!(candidates(&data).is_empty(), "{extra}: {data}");
        }
        // The id found opens emergency access.
        let data = app
            .ok(
                &s.crew,
                OPEN,
                json!({ "i": { "patientId": hanako, "reasonCode": "IN_TRANSPORT" } }),
            )
            .await;
        assert_eq!(data["openEmergencyAccess"]["patient"]["name"], "連携 花子");

        // Every search is on record: one entry naming the candidate for
        // each search that found her, one without a patient for each that
        // found no one, with the reason and the criteria.
        let log = app
            .ok(
                &app.admin_token,
                LOG,
                json!({ "a": s.crew_id, "act": "EMERGENCY_SEARCH" }),
            )
            .await;
        let entries = log["auditLog"]["edges"].as_array().unwrap();
        assert_eq!(entries.len(), 10, "{log}");
        let naming: Vec<&Value> = entries
            .iter()
            .filter(|e| e["node"]["patientId"] == hanako.as_str())
            .collect();
        assert_eq!(naming.len(), 4);
        for e in &naming {
            assert_eq!(e["node"]["categories"], json!(["IDENTITY"]));
            assert_eq!(e["node"]["outcome"], "OK");
            let detail = e["node"]["detail"].as_str().unwrap();
            assert!(detail.starts_with("IN_TRANSPORT 救急搬送中"), "{detail}");
            assert!(detail.contains("born 1940-05-01"), "{detail}");
        }
        let none: Vec<&Value> = entries
            .iter()
            .filter(|e| e["node"]["patientId"].is_null())
            .collect();
        assert_eq!(none.len(), 6);
        assert!(none.iter().all(|e| {
            e["node"]["detail"]
                .as_str()
                .unwrap()
                .ends_with("no candidate")
        }));
        // The care team sees the search in the patient's access history.
        let history = app
            .ok(
                &s.doctor,
                "query($id: ID!) { patient(id: $id) { accessHistory(first: 50) { edges { node { action } } } } }",
                json!({ "id": hanako }),
            )
            .await;
        let actions: Vec<&str> = history["patient"]["accessHistory"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["node"]["action"].as_str())
            .collect();
        assert!(actions.contains(&"EMERGENCY_SEARCH"), "{actions:?}");
        let _ = s.clinic;
    }
);

e2e!(
    professions_that_cannot_open_emergency_access_cannot_search,
    |app| async move {
        let s = scene(app).await;
        patient(
            app,
            &s.doctor,
            "K-1",
            "連携 花子",
            "レンケイ ハナコ",
            "FEMALE",
            "北海道みなみ野市本町1丁目",
        )
        .await;
        let office = app
            .organization("CARE_SERVICE_PROVIDER", "ヘルパーステーションみなみ野")
            .await;
        let (worker_id, worker) = app.member(&office, "CARE_WORKER").await;
        let body = app
            .gql(
                &worker,
                SEARCH,
                search_input(json!({ "name": "連携 花子" })),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        assert!(body["data"].is_null());
        // An emergency physician may.
        let er = app.organization("HOSPITAL", "みなみ野市立総合病院").await;
        let (_, er_doctor) = app.member(&er, "PHYSICIAN").await;
        let data = app
            .ok(
                &er_doctor,
                SEARCH,
                search_input(json!({ "name": "連携 花子", "reason": "救急外来に搬入" })),
            )
            .await;
        assert_eq!(candidates(&data).len(), 1);
        // The refusal is on record, naming no patient.
        let log = app
            .ok(
                &app.admin_token,
                LOG,
                json!({ "a": worker_id, "act": "DENIED" }),
            )
            .await;
        let entries = log["auditLog"]["edges"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{log}");
        assert!(entries[0]["node"]["patientId"].is_null());
        assert!(
            entries[0]["node"]["detail"]
                .as_str()
                .unwrap()
                .starts_with("emergency search refused")
        );
        // Without a reason, even a crew is refused.
        let body = app
            .gql(
                &s.crew,
                SEARCH,
                json!({ "i": { "name": "連携 花子", "birthDate": "1940-05-01" } }),
            )
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("BAD_USER_INPUT"));
    }
);

e2e!(
    patterns_parts_missing_and_ranged_birth_dates_are_refused,
    |app| async move {
        let s = scene(app).await;
        for (input, field) in [
            (search_input(json!({ "name": "連携*" })), Some("input.name")),
            (search_input(json!({ "name": "連%" })), Some("input.name")),
            (
                search_input(json!({ "nameKana": "レンケイ？" })),
                Some("input.nameKana"),
            ),
            (search_input(json!({ "name": "連" })), Some("input.name")),
            (
                search_input(json!({ "nameKana": "Renkei" })),
                Some("input.nameKana"),
            ),
            (search_input(json!({})), Some("input.name")),
            (
                search_input(json!({ "name": "連携 花子", "birthDate": "1940-05-01..1940-12-31" })),
                None,
            ),
            (
                search_input(json!({ "name": "連携 花子", "birthDate": "1940" })),
                None,
            ),
            (
                search_input(json!({ "name": "連携 花子", "birthDate": "2099-01-01" })),
                Some("input.birthDate"),
            ),
            (
                json!({ "i": { "name": "連携 花子", "reasonCode": "IN_TRANSPORT" } }),
                None,
            ),
        ] {
            let body = app.gql(&s.crew, SEARCH, input.clone()).await;
            let code = error_code(&body);
            assert!(
                matches!(
                    code.as_deref(),
                    Some("BAD_USER_INPUT" | "GRAPHQL_VALIDATION_FAILED")
                ),
                "{input}: {body}"
            );
            assert!(body["data"].is_null() || body["data"]["searchPatientsForEmergency"].is_null());
            if let Some(field) = field {
                assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
            }
        }
    }
);

e2e!(
    more_matches_than_the_cap_ask_for_more_criteria,
    |app| async move {
        let s = scene(app).await;
        // Seven namesakes born the same day: four in the city, three in
        // the town.
        for i in 0..7 {
            let address = if i < 4 {
                "北海道みなみ野市本町1丁目"
            } else {
                "北海道東原郡北川町字東原12番地"
            };
            patient(
                app,
                &s.doctor,
                &format!("K-{i}"),
                "佐藤 和子",
                "サトウ カズコ",
                "FEMALE",
                address,
            )
            .await;
        }
        let body = app
            .gql(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "佐藤 和子" })),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("EMERGENCY_SEARCH_TOO_MANY_MATCHES"),
            "{body}"
        );
        assert!(body["data"].is_null(), "no list: {body}");
        let data = app
            .ok(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "佐藤 和子", "area": "北川町" })),
            )
            .await;
        let found = candidates(&data);
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|c| c["municipality"] == "北川町"));
        // The refused search is on record, without a patient.
        let log = app
            .ok(
                &app.admin_token,
                LOG,
                json!({ "a": s.crew_id, "act": "EMERGENCY_SEARCH" }),
            )
            .await;
        let entries = log["auditLog"]["edges"].as_array().unwrap();
        assert_eq!(entries.len(), 4, "{log}");
        assert!(entries.iter().any(|e| {
            e["node"]["patientId"].is_null()
                && e["node"]["detail"]
                    .as_str()
                    .unwrap()
                    .contains("7 candidates, more than 5")
        }));
    }
);

e2e!(
    refusals_and_misses_look_the_same_whether_the_patient_exists_or_not,
    |app| async move {
        let s = scene(app).await;
        let hanako = patient(
            app,
            &s.doctor,
            "K-1",
            "連携 花子",
            "レンケイ ハナコ",
            "FEMALE",
            "北海道みなみ野市本町1丁目",
        )
        .await;
        // A patient who objected to emergency access is not found: to the
        // crew, the same answer as for no one.
        app.ok(
            &s.doctor,
            "mutation($i: EmergencyObjectionInput!) { recordEmergencyAccessObjection(input: $i) { id } }",
            json!({ "i": { "patientId": hanako } }),
        )
        .await;
        let objected = app
            .ok(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "連携 花子" })),
            )
            .await;
        let nobody = app
            .ok(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "存在 しない" })),
            )
            .await;
        assert!(candidates(&objected).is_empty());
        assert_eq!(
            objected["searchPatientsForEmergency"]["candidates"],
            nobody["searchPatientsForEmergency"]["candidates"]
        );
        // … and it costs the same statements: the objection is asked in the
        // search's own statement, not after a match.
        let (objected, objected_cost) = app
            .count_statements(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "連携 花子" })),
            )
            .await;
        let (nobody, nobody_cost) = app
            .count_statements(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "存在 しない" })),
            )
            .await;
        assert!(
            candidates(&objected["data"]).is_empty() && candidates(&nobody["data"]).is_empty(),
            "{objected} {nobody}"
        );
        assert_eq!(objected_cost, nobody_cost);
        // Input refusals: the same for a name that exists and one that
        // does not.
        let a = app
            .gql(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "連携 花子*" })),
            )
            .await;
        let b = app
            .gql(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "存在 しない*" })),
            )
            .await;
        assert_eq!(a["errors"][0]["extensions"], b["errors"][0]["extensions"]);
        assert_eq!(a["data"], b["data"]);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_limit_refuses_searches_beyond_the_window_count() {
    limit_scenario(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_limit_refuses_searches_beyond_the_window_count() {
    if !postgres_configured() {
        eprintln!("PostgreSQL run skipped: RENKEI_TEST_DATABASE_URL is not set");
        return;
    }
    limit_scenario(Backend::Postgres).await;
}

/// Three searches an hour: the fourth is refused — the same refusal for a
/// name that exists and one that does not — until the hour is over; another
/// member is not affected.
async fn limit_scenario(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.policy.emergency_search_limit = 3;
        c.policy.emergency_search_window_minutes = 60;
    })
    .await;
    {
        let app = &app;
        let s = scene(app).await;
        patient(
            app,
            &s.doctor,
            "K-1",
            "連携 花子",
            "レンケイ ハナコ",
            "FEMALE",
            "北海道みなみ野市本町1丁目",
        )
        .await;
        for left in [2, 1, 0] {
            let data = app
                .ok(
                    &s.crew,
                    SEARCH,
                    search_input(json!({ "name": "連携 花子" })),
                )
                .await;
            assert_eq!(data["searchPatientsForEmergency"]["searchesLeft"], left);
        }
        let existing = app
            .gql(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "連携 花子" })),
            )
            .await;
        let missing = app
            .gql(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "存在 しない" })),
            )
            .await;
        assert_eq!(
            error_code(&existing).as_deref(),
            Some("EMERGENCY_SEARCH_LIMIT"),
            "{existing}"
        );
        assert_eq!(shape(&existing), shape(&missing));
        // Refused searches are on record as refusals, without a patient.
        let log = app
            .ok(
                &app.admin_token,
                LOG,
                json!({ "a": s.crew_id, "act": "DENIED" }),
            )
            .await;
        let entries = log["auditLog"]["edges"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{log}");
        assert!(entries.iter().all(|e| e["node"]["patientId"].is_null()));
        // A colleague has searches of its own.
        let fire = app.organization("AMBULANCE_SERVICE", "北川町消防署").await;
        let (_, colleague) = app.member(&fire, "EMS_CREW").await;
        let data = app
            .ok(
                &colleague,
                SEARCH,
                search_input(json!({ "name": "連携 花子" })),
            )
            .await;
        assert_eq!(candidates(&data).len(), 1);
        // An hour later the window starts again.
        app.clock.advance(chrono::Duration::minutes(61));
        let data = app
            .ok(
                &s.crew,
                SEARCH,
                search_input(json!({ "name": "連携 花子" })),
            )
            .await;
        assert_eq!(candidates(&data).len(), 1);
        assert_eq!(data["searchPatientsForEmergency"]["searchesLeft"], 2);
    }
    app.stop().await;
}

e2e!(
    the_area_is_a_whole_municipality_never_part_of_an_address,
    |app| async move {
        let s = scene(app).await;
        let hanako = patient(
            app,
            &s.doctor,
            "K-1",
            "連携 花子",
            "レンケイ ハナコ",
            "FEMALE",
            "北海道みなみ野市本町1丁目2-3",
        )
        .await;
        // With or without its prefecture, the municipality finds her.
        for area in ["北海道みなみ野市", "みなみ野市"] {
            let data = app
                .ok(
                    &s.crew,
                    SEARCH,
                    search_input(json!({ "name": "連携 花子", "area": area })),
                )
                .await;
            assert_eq!(
                candidates(&data)[0]["patientId"],
                hanako.as_str(),
                "{area}: {data}"
            );
        }
        // A street, a block, or a fragment would confirm where she lives,
        // match or not: refused before any patient is read, alike whoever
        // is searched for.
        for area in ["本町1丁目", "みなみ野", "本町1丁目2-3", "本町３番"] {
            let body = app
                .gql(
                    &s.crew,
                    SEARCH,
                    search_input(json!({ "name": "連携 花子", "area": area })),
                )
                .await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{area}: {body}"
            );
            assert_eq!(
                body["errors"][0]["extensions"]["field"], "input.area",
                "{area}: {body}"
            );
        }
        // A town's name that is also the name of her street (本町, as
        // 北海道の町 are named) is taken as a municipality, and matched as
        // the one her address names first: not found, as for any other
        // town she does not live in.
        for area in ["本町", "栄町"] {
            let data = app
                .ok(
                    &s.crew,
                    SEARCH,
                    search_input(json!({ "name": "連携 花子", "area": area })),
                )
                .await;
            assert!(candidates(&data).is_empty(), "{area}: {data}");
        }
    }
);
