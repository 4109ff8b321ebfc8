//! FHIR out: `GET /fhir/metadata`, `GET /fhir/Patient?identifier=…`,
//! `GET /fhir/Patient/{id}/$everything` and `…/$summary`.
//!
//! Everything is read through the GraphQL schema as the caller ([`Caller`]),
//! so the policy decides every part and every part read is audited; the
//! trail is written before the answer leaves. A patient the caller may not
//! know of is `404`, exactly like one that does not exist. What the caller
//! may not read is absent, and the bundle says so: `meta.security` marks it
//! REDACTED and an `OperationOutcome` entry (`search.mode = outcome`) names
//! the withheld data categories — never their content, nor whether any
//! record of them exists.
//!
//! `$everything` answers the records the hub expresses in FHIR (the six
//! items and clinical documents, [`renkei_fhir::outbound::EXPORTED_KINDS`]);
//! `$summary` the JP-CLINS six items. Both are `searchset` bundles: the
//! patient (`match`) and its resources (`include`).

use axum::{
    Router,
    extract::{
        Path, Query, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::get,
};
use renkei_fhir::outbound;
use renkei_fhir::outcome::Issue;
use renkei_fhir::systems;
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use super::{
    Caller, PatientKey, find_patient, graphql_errors, outcome_response, resource_response,
};
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/Patient", get(search))
        .route("/Patient/{id}/$everything", get(everything))
        .route("/Patient/{id}/$summary", get(summary))
}

const PATIENT: &str = "query($id: ID!) { patient(id: $id) {
  id name nameKana birthDate sex postalCode address phone status insuredPersonIdentifier
  identifiers { localId organization { medicalInstitutionCode } }
  access { category read } } }";

fn timeline_query() -> String {
    format!(
        "query($id: ID!, $kinds: [RecordKind!]!, $after: String) {{ patient(id: $id) {{
          timeline(kinds: $kinds, first: 200, after: $after) {{
            edges {{ node {{ {} }} }} pageInfo {{ hasNextPage endCursor }} }} }} }}",
        outbound::RECORD_FIELDS
    )
}

/// The categories whose records `$everything` may carry: the kinds' own,
/// and the sensitive ones a condition may move into.
const SENSITIVE: &[&str] = &[
    "SENSITIVE_PSYCHIATRIC",
    "SENSITIVE_HIV",
    "SENSITIVE_GENETIC",
];

/// The categories of the Patient resource's elements.
const PATIENT_CATEGORIES: &[&str] = &["IDENTITY", "CONTACTS"];

/// Whether the caller may read `category` of the patient, as the policy
/// answered in the patient's `access` list.
fn readable(patient: &Value, category: &str) -> bool {
    patient["access"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["category"] == category && a["read"] == true)
}

/// Errors but a withheld field refuse the request.
fn refusal(body: &Value) -> Option<Response> {
    let errors: Vec<Value> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["extensions"]["code"] != "FORBIDDEN_FIELD")
        .cloned()
        .collect();
    if errors.is_empty() {
        return None;
    }
    graphql_errors(&json!({ "errors": errors }), |_| None)
}

async fn everything(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    patient_bundle(state, id, headers, request_id, outbound::EXPORTED_KINDS).await
}

async fn summary(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    patient_bundle(state, id, headers, request_id, outbound::SIX_ITEMS).await
}

async fn patient_bundle(
    state: AppState,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    kinds: &[&str],
) -> Response {
    let caller = match Caller::authenticate(&state, &headers, request_id).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let answer = match id {
        // A path the server cannot read (not UTF-8) names no patient: told
        // after authentication, as any bad id is.
        Err(rejection) => outcome_response(
            StatusCode::BAD_REQUEST,
            &Issue::error(
                "invalid",
                format!(
                    "the patient id could not be read: {}",
                    rejection.body_text()
                ),
            )
            .into(),
        ),
        Ok(Path(id)) => match read_patient(&state, &caller, &id, kinds).await {
            Ok(bundle) => resource_response(StatusCode::OK, &bundle),
            Err(r) => r,
        },
    };
    caller.finish(&state.audit, answer).await
}

/// The patient and its records of `kinds` the caller may read, as a
/// searchset bundle.
pub async fn read_patient(
    state: &AppState,
    caller: &Caller,
    id: &str,
    kinds: &[&str],
) -> Result<Value, Response> {
    let body = caller
        .run(&state.schema, PATIENT, json!({ "id": id }))
        .await;
    if let Some(r) = refusal(&body) {
        return Err(r);
    }
    let p = &body["data"]["patient"];
    let readable = |category: &str| readable(p, category);
    let wanted: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| readable(outbound::category_of(k)))
        .collect();
    let mut withheld: Vec<String> = kinds
        .iter()
        .map(|k| outbound::category_of(k))
        // The Patient's own parts: name, birth date, sex and identifiers;
        // address and phone.
        .chain(PATIENT_CATEGORIES.iter().copied())
        .chain(
            SENSITIVE
                .iter()
                .copied()
                .filter(|_| kinds.contains(&"CONDITION")),
        )
        .filter(|c| !readable(c))
        .map(str::to_string)
        .collect();
    withheld.sort();
    withheld.dedup();
    // The hub's own form of the id, whatever form the path gave (upper
    // case, no hyphens, `urn:uuid:` …): the records' references must name
    // the Patient entry's full URL.
    let patient_url = outbound::full_url(p["id"].as_str().unwrap_or(id));
    let mut resources = Vec::new();
    let query = timeline_query();
    let mut after: Option<String> = None;
    while !wanted.is_empty() {
        let page = caller
            .run(
                &state.schema,
                &query,
                json!({ "id": id, "kinds": wanted, "after": after }),
            )
            .await;
        if let Some(r) = refusal(&page) {
            return Err(r);
        }
        let timeline = &page["data"]["patient"]["timeline"];
        for edge in timeline["edges"].as_array().into_iter().flatten() {
            if let Some(r) = outbound::record(&edge["node"], &patient_url) {
                resources.push(r);
            }
        }
        if timeline["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = timeline["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_string);
    }
    Ok(outbound::searchset(
        outbound::patient(p),
        resources,
        &withheld,
    ))
}

#[derive(serde::Deserialize)]
struct SearchParams {
    identifier: Option<String>,
}

const ME: &str = "{ me { organization { medicalInstitutionCode } } }";

async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let caller = match Caller::authenticate(&state, &headers, request_id).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let answer = match params {
        Ok(Query(params)) => search_patient(&state, &caller, params.identifier.as_deref()).await,
        // `identifier` twice (FHIR's AND of two identifiers) and the like.
        Err(rejection) => outcome_response(
            StatusCode::BAD_REQUEST,
            &Issue::error(
                "not-supported",
                format!(
                    "the search could not be read: {}; search by one identifier=system|value",
                    rejection.body_text()
                ),
            )
            .at("identifier")
            .into(),
        ),
    };
    caller.finish(&state.audit, answer).await
}

async fn search_patient(state: &AppState, caller: &Caller, identifier: Option<&str>) -> Response {
    let Some((system, value)) = identifier.and_then(|i| i.split_once('|')) else {
        return outcome_response(
            StatusCode::BAD_REQUEST,
            &Issue::error(
                "required",
                "search by identifier=system|value (your local patient IDs' system, or the insured-person identifier's)",
            )
            .at("identifier")
            .into(),
        );
    };
    let me = caller.run(&state.schema, ME, json!({})).await;
    // The database gone is a 503 to retry, not "no code registered".
    if let Some(r) = graphql_errors(&me, |_| None) {
        return r;
    }
    let code = me["data"]["me"]["organization"]["medicalInstitutionCode"].as_str();
    let local_system = code.map(|c| format!("{}{c}", systems::LOCAL_PATIENT_ID_OID_PREFIX));
    let key = if system == systems::INSURED_PERSON_ID {
        PatientKey::InsuredPersonId(value)
    } else if Some(system) == local_system.as_deref() {
        PatientKey::LocalId(value)
    } else {
        return outcome_response(
            StatusCode::BAD_REQUEST,
            &Issue::error(
                "not-supported",
                format!(
                    "identifier system {system:?} is not searched here: use {}{} or {}",
                    local_system.as_deref().unwrap_or("your local patient IDs' system (once your medical institution code is registered)"),
                    "",
                    systems::INSURED_PERSON_ID
                ),
            )
            .at("identifier")
            .into(),
        );
    };
    // Not found and not permitted look the same: an empty searchset.
    let id = match find_patient(state, caller, key, Some("identifier")).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let Some(id) = id else {
        // FHIR JSON has no empty lists: no `entry` at all.
        return resource_response(
            StatusCode::OK,
            &json!({ "resourceType": "Bundle", "type": "searchset", "total": 0 }),
        );
    };
    let body = caller
        .run(&state.schema, PATIENT, json!({ "id": id }))
        .await;
    if let Some(r) = refusal(&body) {
        return r;
    }
    let p = &body["data"]["patient"];
    let withheld: Vec<String> = PATIENT_CATEGORIES
        .iter()
        .filter(|c| !readable(p, c))
        .map(|c| c.to_string())
        .collect();
    resource_response(
        StatusCode::OK,
        &outbound::searchset(outbound::patient(p), Vec::new(), &withheld),
    )
}

/// `GET /fhir/metadata`: what this endpoint supports, and nothing more.
/// Public, like the directory: it holds no patient data.
async fn metadata() -> Response {
    let resource = |ty: &str, profile: &str| {
        json!({ "type": ty, "supportedProfile": [profile],
                "documentation": "Written through POST /fhir (collection, transaction or document bundles); read through Patient/$everything and $summary." })
    };
    let statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-05",
        "publisher": "renkei",
        "kind": "instance",
        "software": { "name": "renkei", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "renkei (連携): the regional medical and care information hub" },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Bearer tokens (a member's JWT or an organisation's API key) as for /graphql. Every read and write passes the hub's access policy and is audited. POST /fhir?register=true registers a patient the hub cannot match, with the patient's Consent in the bundle.",
            "security": { "cors": false, "description": "Authorization: Bearer <token>" },
            "resource": [
                { "type": "Patient", "supportedProfile": [systems::profile::PATIENT],
                  "searchParam": [{ "name": "identifier", "type": "token",
                    "documentation": "your local patient IDs (urn:oid:1.2.392.100495.20.3.51.1 + your medical institution code) or the insured-person identifier" }],
                  "interaction": [{ "code": "search-type" }],
                  "operation": [
                    { "name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything" },
                    { "name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary" }
                  ] },
                resource("Condition", systems::profile::CONDITION),
                resource("AllergyIntolerance", systems::profile::ALLERGY_INTOLERANCE),
                { "type": "Observation",
                  "supportedProfile": [systems::profile::OBSERVATION_LAB, systems::profile::OBSERVATION_INFECTION],
                  "documentation": "Written through POST /fhir (collection, transaction or document bundles); read through Patient/$everything and $summary." },
                resource("MedicationRequest", systems::profile::MEDICATION_REQUEST),
                resource("Composition", systems::profile::COMPOSITION),
            ],
            // Collections and documents are accepted too, but FHIR names
            // no interaction for them; a `batch` bundle is refused.
            "interaction": [{ "code": "transaction" }],
        }],
    });
    resource_response(StatusCode::OK, &statement)
}
