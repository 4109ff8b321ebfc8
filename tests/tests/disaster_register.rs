//! 災害時要配慮者名簿 (issue 14 part 4): the register of medically dependent
//! patients derived from the records — for municipal staff of their own
//! municipality as the consent allows, for the care team's professions —
//! audited per listed patient, and exported as CSV.

use renkei_schema::clock::Clock;
use renkei_tests::*;
use serde_json::{Value, json};

const REGISTER: &str = "query($m: String, $d: [MedicalDependency!], $first: Int, $after: String) { disasterRegister(municipality: $m, dependencies: $d, first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { patientId name address phone dependencies { dependency label sources } careManager { id } primaryPhysician { id } } } } }";
const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome } }";
const ORG: &str =
    "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }";

struct Region {
    clinic: String,
    doctor: String,
    care_worker: String,
    dentist: String,
    official: String,
    official_id: String,
    other_official: String,
    /// On insulin and home oxygen; consent to the network.
    insulin: String,
    /// Dialysis, but the consent excludes CONDITIONS.
    dialysis_hidden: String,
    /// Dialysis; the consent excludes DISASTER_SUPPORT.
    opted_out: String,
    /// No dependency.
    healthy: String,
    /// On insulin, but lives in another municipality.
    elsewhere: String,
    /// On insulin, in a town whose name holds the city's (東北見市).
    look_alike: String,
}

async fn org(app: &TestApp, kind: &str, name: &str, municipality: &str) -> String {
    app.ok(
        &app.admin_token,
        ORG,
        json!({ "i": { "kind": kind, "name": name, "municipality": municipality } }),
    )
    .await["registerOrganization"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn patient(app: &TestApp, doctor: &str, n: usize, address: &str, consent: Value) -> String {
    let id = app
        .ok(
            doctor,
            "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }",
            json!({ "i": { "name": format!("災害 太郎{n}"), "nameKana": format!("サイガイ {}", ["イチロウ", "ジロウ", "サブロウ", "シロウ", "ゴロウ", "ロクロウ"][n - 1]),
                "birthDate": "1938-02-01", "sex": "MALE", "localId": format!("DR-{n}"),
                "address": address, "phone": "0157-00-0000" } }),
        )
        .await["registerPatient"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.consent(doctor, &id, consent).await;
    id
}

async fn write(app: &TestApp, token: &str, patient: &str, source: &str, data: Value) {
    app.ok(
        token,
        WRITE,
        json!({ "i": { "records": [{ "patientId": patient, "sourceRecordId": source,
            "effectiveAt": "2026-01-10T09:00:00Z", "data": data }] } }),
    )
    .await;
}

fn insulin() -> Value {
    json!({ "prescription": { "medicationType": "INJECTION", "drug": "インスリン グラルギンBS注ミリオペン",
        "dose": "8単位", "route": "INJECTION", "frequency": "1日1回朝", "startDate": "2026-01-01" } })
}

fn dialysis() -> Value {
    json!({ "condition": { "name": "慢性腎不全（血液透析中）", "icd10": "N18.5", "clinicalStatus": "ACTIVE" } })
}

async fn region(app: &TestApp) -> Region {
    let clinic = org(app, "CLINIC", "北見在宅クリニック", "北見市").await;
    let (_, doctor) = app.member(&clinic, "PHYSICIAN").await;
    let (_, dentist) = app.member(&clinic, "DENTIST").await;
    let helpers = org(app, "CARE_SERVICE_PROVIDER", "北見ヘルパー", "北見市").await;
    let (_, care_worker) = app.member(&helpers, "CARE_WORKER").await;
    let office = org(app, "MUNICIPALITY", "北見市 防災・福祉課", "北見市").await;
    let (official_id, official) = app.member(&office, "MUNICIPAL_STAFF").await;
    let other = org(app, "MUNICIPALITY", "網走市 福祉課", "網走市").await;
    let (_, other_official) = app.member(&other, "MUNICIPAL_STAFF").await;

    let network = json!({ "scope": "NETWORK" });
    let insulin_patient = patient(app, &doctor, 1, "北海道北見市本町1丁目", network.clone()).await;
    write(app, &doctor, &insulin_patient, "RX-1", insulin()).await;
    write(
        app,
        &doctor,
        &insulin_patient,
        "VNI-1",
        json!({ "visitingNurseInstruction": { "instructionType": "REGULAR",
            "validFrom": (app.clock.today() - chrono::Days::new(30)).to_string(),
            "validTo": (app.clock.today() + chrono::Days::new(60)).to_string(), "station": "北見訪問看護ステーション", "mainDiagnosis": "COPD",
            "instructions": "呼吸状態の観察", "medicalDevices": ["在宅酸素 2L/分"] } }),
    )
    .await;
    // Dialysis recorded, then the consent narrowed to exclude CONDITIONS.
    let dialysis_hidden = patient(app, &doctor, 2, "北海道北見市本町2丁目", network.clone()).await;
    write(app, &doctor, &dialysis_hidden, "C-2", dialysis()).await;
    app.consent(
        &doctor,
        &dialysis_hidden,
        json!({ "scope": "NETWORK", "excludedCategories": ["CONDITIONS"] }),
    )
    .await;
    let opted_out = patient(
        app,
        &doctor,
        3,
        "北海道北見市本町3丁目",
        json!({ "scope": "NETWORK", "excludedCategories": ["DISASTER_SUPPORT"] }),
    )
    .await;
    write(app, &doctor, &opted_out, "C-3", dialysis()).await;
    let healthy = patient(app, &doctor, 4, "北海道北見市本町4丁目", network.clone()).await;
    write(
        app,
        &doctor,
        &healthy,
        "C-4",
        json!({ "condition": { "name": "高血圧症", "icd10": "I10", "clinicalStatus": "ACTIVE" } }),
    )
    .await;
    let elsewhere = patient(app, &doctor, 5, "北海道網走市南1条", network.clone()).await;
    write(app, &doctor, &elsewhere, "RX-5", insulin()).await;
    let look_alike = patient(app, &doctor, 6, "北海道東北見市中央1丁目", network.clone()).await;
    write(app, &doctor, &look_alike, "RX-6", insulin()).await;
    for p in [&insulin_patient, &healthy, &elsewhere] {
        app.ok(
            &doctor,
            "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
            json!({ "i": { "patientId": p, "organizationId": helpers, "role": "CARE_SERVICE" } }),
        )
        .await;
    }
    Region {
        clinic,
        doctor,
        care_worker,
        dentist,
        official,
        official_id,
        other_official,
        insulin: insulin_patient,
        dialysis_hidden,
        opted_out,
        healthy,
        elsewhere,
        look_alike,
    }
}

fn listed(body: &Value) -> Vec<Value> {
    body["data"]["disasterRegister"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no register: {body}"))
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn ids(nodes: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = nodes
        .iter()
        .map(|n| n["patientId"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

e2e!(
    municipal_staff_read_their_residents_who_depend_on_a_machine_or_a_drug,
    |app| async move {
        let r = region(app).await;
        let body = app.gql(&r.official, REGISTER, json!({})).await;
        let nodes = listed(&body);
        // Not the resident of 東北見市, whose address holds 「北見市」 too.
        assert_eq!(ids(&nodes), vec![r.insulin.clone()], "{body}");
        assert!(!body.to_string().contains(&r.look_alike));
        let entry = &nodes[0];
        let mut deps: Vec<&str> = entry["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["dependency"].as_str().unwrap())
            .collect();
        deps.sort();
        assert_eq!(deps, ["HOME_OXYGEN", "INSULIN"]);
        assert_eq!(entry["address"], "北海道北見市本町1丁目");
        assert_eq!(
            entry["primaryPhysician"]["id"],
            r.clinic.as_str(),
            "the registering clinic is the primary physician"
        );
        // Never the record's content: only the kind it came from.
        assert!(!body.to_string().contains("グラルギン"), "{body}");
        // Filtered by dependency.
        let body = app
            .gql(&r.official, REGISTER, json!({ "d": ["DIALYSIS"] }))
            .await;
        assert!(listed(&body).is_empty());
        // Their own municipality only.
        let body = app
            .gql(&r.official, REGISTER, json!({ "m": "網走市" }))
            .await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"));
        let body = app.gql(&r.other_official, REGISTER, json!({})).await;
        assert_eq!(ids(&listed(&body)), vec![r.elsewhere.clone()]);
        // Each listed patient is one READ naming it, with the categories shown.
        let data = app
            .ok(
                &app.admin_token,
                "query($f: AuditLogFilterInput) { auditLog(filter: $f, first: 100) { edges { node { action patientId categories detail } } } }",
                json!({ "f": { "actorId": r.official_id } }),
            )
            .await;
        let entries: Vec<&Value> = data["auditLog"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .filter(|n| n["action"] == "READ")
            .collect();
        assert!(!entries.is_empty());
        for e in &entries {
            assert_eq!(e["patientId"], r.insulin.as_str(), "{e}");
            let cats = e["categories"].to_string();
            assert!(
                cats.contains("DISASTER_SUPPORT") && cats.contains("IDENTITY"),
                "{cats}"
            );
            assert!(e["detail"].as_str().unwrap().contains("北見市"));
        }
        // Nobody else of the kind: a patient who is not listed is not read.
        for p in [&r.opted_out, &r.dialysis_hidden, &r.healthy] {
            assert!(!data.to_string().contains(p.as_str()));
        }
    }
);

e2e!(
    the_care_team_reads_its_own_patients_and_others_are_refused,
    |app| async move {
        let r = region(app).await;
        // The clinic's physician: every patient of its teams with a
        // dependency it may see — any municipality — the opted-out one
        // excepted.
        let body = app.gql(&r.doctor, REGISTER, json!({})).await;
        assert_eq!(
            ids(&listed(&body)),
            {
                let mut v = vec![r.insulin.clone(), r.elsewhere.clone(), r.look_alike.clone()];
                v.sort();
                v
            },
            "{body}"
        );
        let body = app.gql(&r.doctor, REGISTER, json!({ "m": "網走市" })).await;
        assert_eq!(ids(&listed(&body)), vec![r.elsewhere.clone()]);
        // Paged: one at a time, every one once.
        let first = app.gql(&r.doctor, REGISTER, json!({ "first": 1 })).await;
        let page = &first["data"]["disasterRegister"];
        assert_eq!(page["pageInfo"]["hasNextPage"], true);
        let mut seen = ids(&listed(&first));
        let mut cursor = page["pageInfo"]["endCursor"].clone();
        loop {
            let next = app
                .gql(&r.doctor, REGISTER, json!({ "first": 1, "after": cursor }))
                .await;
            seen.extend(ids(&listed(&next)));
            let info = &next["data"]["disasterRegister"]["pageInfo"];
            if info["hasNextPage"] != true {
                break;
            }
            cursor = info["endCursor"].clone();
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3, "every one once");
        // `complete` refuses, before anyone is read, a register larger
        // than `first` — and records the refusal, naming no one: stepping
        // the cursor would otherwise tell who is listed, unrecorded.
        let log = "{ auditLog(first: 100) { edges { node { action patientId } } } }";
        let count = |v: Value| v["auditLog"]["edges"].as_array().unwrap().len();
        let before = count(app.ok(&app.admin_token, log, json!({})).await);
        let body = app
            .gql(
                &r.doctor,
                "{ disasterRegister(first: 2, complete: true) { edges { node { patientId } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        let entries = app.ok(&app.admin_token, log, json!({})).await;
        assert_eq!(
            before + 2,
            count(entries.clone()),
            "the refusal and the administrator's own read of the log"
        );
        assert!(
            entries["auditLog"]["edges"].as_array().unwrap()[..2]
                .iter()
                .any(|e| e["node"] == json!({ "action": "DENIED", "patientId": null })),
            "{entries}"
        );
        // A care worker of the helper station: its own team's patients.
        let body = app.gql(&r.care_worker, REGISTER, json!({})).await;
        let mut expected = vec![r.insulin.clone(), r.elsewhere.clone()];
        expected.sort();
        assert_eq!(ids(&listed(&body)), expected);
        // A dentist's role does not read DISASTER_SUPPORT; nor an
        // administrator; nor a key that reads DISASTER_SUPPORT but not
        // IDENTITY (an entry names the person).
        let key = app
            .ok(
                &app.admin_token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "organizationId": r.clinic, "name": "防災連携", "permissions": [
                    { "category": "DISASTER_SUPPORT", "level": "READ" }
                ] } }),
            )
            .await["createApiKey"]["secret"]
            .as_str()
            .unwrap()
            .to_string();
        for token in [&r.dentist, &app.admin_token, &key] {
            let body = app.gql(token, REGISTER, json!({})).await;
            assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        }
        // Bad input.
        for (vars, field) in [
            (json!({ "first": 0 }), "first"),
            (json!({ "first": 501 }), "first"),
            (json!({ "after": "nope" }), "after"),
            (json!({ "m": "  " }), "municipality"),
            // The filter is matched against the start of addresses: an
            // address (or a name the network does not serve) would confirm
            // where a patient lives, CONTACTS or not.
            (json!({ "m": "北見市本町3丁目" }), "municipality"),
            (json!({ "m": "北見市本町3丁目15-13" }), "municipality"),
            (json!({ "m": "札幌市" }), "municipality"),
        ] {
            let body = app.gql(&r.doctor, REGISTER, vars).await;
            assert_eq!(
                error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
            assert_eq!(body["errors"][0]["extensions"]["field"], field);
        }
    }
);

e2e!(the_register_is_exported_as_csv, |app| async move {
    let r = region(app).await;
    let client = reqwest::Client::new();
    let response = client
        .get(app.url("/disaster-register.csv"))
        .bearer_auth(&r.official)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("patient_id,name,name_kana"));
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].contains(&r.insulin) && lines[1].contains("インスリン"),
        "{text}"
    );
    // A parameter it does not know, or the municipality twice: a 400 page.
    for q in ["?municipality=a&municipality=b", "?town=x"] {
        let response = client
            .get(app.url(&format!("/disaster-register.csv{q}")))
            .bearer_auth(&r.official)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{q}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    // Without a token: refused.
    let response = client
        .get(app.url("/disaster-register.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Another municipality: refused with a page, no data.
    let response = client
        .get(app.url("/disaster-register.csv?municipality=%E7%B6%B2%E8%B5%B0%E5%B8%82"))
        .bearer_auth(&r.official)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
});
