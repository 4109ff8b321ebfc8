//! What the FHIR tests share (issue 13): the JP-CLINS fixtures and their
//! clinic and patient, FHIR requests over HTTP, and the independent
//! validators.

use serde_json::{Value, json};

use crate::TestApp;

/// The fixtures' clinic's 医療機関コード.
pub const CODE: &str = "0112345678";
/// The fixtures' patient's insured-person identifier (被保険者個人識別子).
pub const INSURED: &str = "00012345:あいう:187:05";
/// The six items and the three documents, `tests/fixtures/fhir/<name>.json`.
pub const FIXTURES: &[&str] = &[
    "condition",
    "allergy",
    "drug-contraindication",
    "infection",
    "lab-result",
    "prescription",
    "referral-letter",
    "discharge-summary",
    "checkup-report",
];

/// A fixture bundle.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/fhir/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

/// A clinic with its 医療機関コード, a physician, and the fixtures' patient
/// (local ID 12345, the insured-person identifier) with consent: (clinic,
/// the physician's token, patient).
pub async fn clinic(app: &TestApp) -> (String, String, String) {
    let org = register_clinic(app, "北見在宅クリニック", CODE).await;
    let (_, doctor) = app.member(&org, "PHYSICIAN").await;
    let data = app
        .ok(
            &doctor,
            "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }",
            json!({ "i": { "name": "北見 花子", "nameKana": "キタミ ハナコ", "birthDate": "1938-07-14",
                "sex": "FEMALE", "localId": "12345", "insuredPersonIdentifier": INSURED } }),
        )
        .await;
    let patient = data["registerPatient"]["id"].as_str().unwrap().to_string();
    app.consent(&doctor, &patient, json!({})).await;
    (org, doctor, patient)
}

/// A care provider's care worker on the patient's care team (the care
/// side: no medical categories): the worker's token.
pub async fn care_worker(app: &TestApp, doctor: &str, patient: &str) -> String {
    let provider = app
        .organization("CARE_SERVICE_PROVIDER", "北見ヘルパー")
        .await;
    let (_, helper) = app.member(&provider, "CARE_WORKER").await;
    app.ok(
        doctor,
        "mutation($i: AddCareTeamMemberInput!) { addCareTeamMember(input: $i) { id } }",
        json!({ "i": { "patientId": patient, "organizationId": provider, "role": "CARE_SERVICE" } }),
    )
    .await;
    helper
}

/// The `renkei` binary set to work on the test hub's database as `token`
/// (`RENKEI_API_KEY`), for the CLI's FHIR commands.
pub fn cli(app: &TestApp, token: &str) -> std::process::Command {
    let mut command = std::process::Command::new(crate::processes::hub_binary());
    command
        .env("RENKEI_DATABASE_URL", &app.database_url)
        .env("RENKEI_JWT_SECRET", crate::TEST_JWT_SECRET)
        .env("RENKEI_AUDIT_KEY", crate::TEST_AUDIT_KEY)
        .env("RENKEI_API_KEY", token)
        .env("RENKEI_LOG", "warn");
    command
}

/// `GET /fhir/Patient/{patient}/$everything` as `token`, which must answer
/// `200` with a bundle the independent validators accept.
pub async fn everything(app: &TestApp, token: &str, patient: &str) -> Value {
    let (status, bundle) = get(
        app,
        Some(token),
        &format!("/fhir/Patient/{patient}/$everything"),
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    validate(&bundle);
    bundle
}

/// Registers a clinic with its 医療機関コード `code`: its id.
pub async fn register_clinic(app: &TestApp, name: &str, code: &str) -> String {
    let data = app
        .ok(
            &app.admin_token,
            "mutation($i: RegisterOrganizationInput!) { registerOrganization(input: $i) { id } }",
            json!({ "i": { "kind": "CLINIC", "name": name, "medicalInstitutionCode": code } }),
        )
        .await;
    data["registerOrganization"]["id"]
        .as_str()
        .expect("the organisation's id")
        .to_string()
}

/// POSTs `body` with `content_type` to `path`; (status, body). Every
/// answer but the router's own 404 must be `application/fhir+json`.
pub async fn post_raw(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    content_type: &str,
    body: String,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = fhir_content_type(&response);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != 404 || !body.is_null() {
        assert!(
            content_type.starts_with("application/fhir+json"),
            "{content_type}"
        );
    }
    (status, body)
}

/// POSTs a FHIR resource to `path`; (status, body).
pub async fn post(app: &TestApp, token: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
    post_raw(app, token, path, "application/fhir+json", body.to_string()).await
}

/// GETs `path`, which must answer `application/fhir+json`; (status, body).
pub async fn get(app: &TestApp, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(app.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = fhir_content_type(&response);
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{path}: {content_type}"
    );
    (status, response.json().await.unwrap_or(Value::Null))
}

fn fhir_content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The Python of the validators: `RENKEI_FHIR_PYTHON`, or the virtual
/// environment `.ci/run` makes (`target/fhir-venv`). Missing, the test
/// fails: an export nobody checked proves nothing.
pub fn validator_python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("RENKEI_FHIR_PYTHON") {
        return p.into();
    }
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let python = workspace.join("target/fhir-venv/bin/python");
    assert!(
        python.exists(),
        "the FHIR validators are not installed: python3 -m venv target/fhir-venv && target/fhir-venv/bin/pip install -r tests/fhir/requirements.txt (.ci/run does this)"
    );
    python
}

/// Runs the independent validators (`tests/fhir/validate.py`) on `value`;
/// fails the test with their report.
pub fn validate(value: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resource.json");
    std::fs::write(&file, value.to_string()).unwrap();
    let script = format!("{}/fhir/validate.py", env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(validator_python())
        .arg(&script)
        .arg(&file)
        .output()
        .expect("the validator runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the validators refused it:\n{report}\n{}\n{value:#}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("0 failures"), "{report}");
}
