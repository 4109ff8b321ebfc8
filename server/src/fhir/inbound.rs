//! `POST /fhir`: a FHIR R4 `Bundle` in — JP-CLINS collections (the six
//! items), transactions of the same resources, and documents (診療情報提供書,
//! 退院時サマリー, 健診結果報告書).
//!
//! The bundle is read by [`renkei_fhir::inbound`] into the patients it names
//! and one `writeRecords` item per resource; every problem is answered at
//! once (`400`, an `OperationOutcome` whose expressions name the elements).
//! Then, as the caller, through the GraphQL schema:
//!
//! 1. each patient is matched (名寄せ) by the caller's local patient ID
//!    (`patientByLocalId`), then by the insured-person identifier
//!    (`patientByInsuredPersonIdentifier`) — and, matched by the latter
//!    only, the caller's local ID is linked to it. A patient the caller may
//!    not see is not matched, exactly like one that does not exist;
//! 2. an unmatched patient is refused (`404`, naming the `Patient` entry)
//!    unless the sender asks to register it with `?register=true`: then the
//!    bundle must also carry the patient's `Consent` (the signed form: its
//!    reference and the day signed), which is recorded with the
//!    registration — without a consent the hub would hold a patient no one
//!    may write for;
//! 3. the records are written in **one** `writeRecords` call: all or
//!    nothing, idempotent by (sender, kind, resource identifier). A bundle
//!    of more records than one call takes (500) is refused (`413`) before
//!    anything is written; so is a body over the server's limit
//!    (`RENKEI_MAX_BODY_BYTES`, 1 MiB by default), as an OperationOutcome.
//!    The write takes the policy's verdicts the lookups of step 1 reached
//!    ([`SharedVerdicts`]) instead of evaluating the same patients again.
//!
//! A patient registered in step 2 stays registered if its consent or step
//! 3 then fails; sending the bundle again (with `?register=true`) matches
//! it by the local ID, records the bundle's Consent if the patient still
//! has none, and writes the records.
//!
//! The answer is a `transaction-response` (for a transaction) or
//! `batch-response` bundle, one entry per entry sent, in order: `201
//! Created` for a new record or patient, `200 OK` for one already there
//! (a new version, or nothing changed), with the hub's `location`
//! (`Condition/<record id>/_history/<version>`); entries read for context
//! only (Organization, Practitioner, Encounter …) answer `200 OK` with an
//! informational outcome saying they were not stored.

use axum::{
    Router,
    body::Bytes,
    extract::{
        Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::Response,
    routing::post,
};
use renkei_fhir::inbound::{self, Inbound};
use renkei_fhir::outcome::{Issue, Outcome, Severity};
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use std::sync::Arc;

use renkei_schema::graphql::{MAX_LOOKUPS, SharedVerdicts};

use super::{Caller, graphql_errors, outcome_response, resource_response};
use crate::http::AppState;

/// The UTF-8 byte order mark.
pub const BOM: &str = "\u{feff}";

pub fn routes() -> Router<AppState> {
    Router::new().route("/", post(post_bundle))
}

/// The most records one bundle may carry: one `writeRecords` call.
pub const MAX_RECORDS: usize = 500;

#[derive(serde::Deserialize, Default)]
pub struct Params {
    /// `true`: register patients the hub cannot match.
    register: Option<String>,
}

const ME: &str = "{ me { organization { id medicalInstitutionCode } } }";
const LINK: &str =
    "mutation($i: LinkPatientIdentifierInput!) { linkPatientIdentifier(input: $i) { id } }";
const REGISTER: &str = "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { id } }";
const CONSENT: &str = "mutation($i: RecordConsentInput!) { recordConsent(input: $i) { id } }";
// The results come in the order of the items (`index` is the position),
// so it is not asked for: each field asked costs its resolution per record.
const WRITE: &str = "mutation($i: WriteRecordsInput!) { writeRecords(input: $i) { outcome record { id version } } }";

async fn post_bundle(
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = match Caller::authenticate(&state, &headers, request_id).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    // A body the server will not take (over `RENKEI_MAX_BODY_BYTES`, or cut
    // off) is an OperationOutcome too, not the framework's plain text.
    let answer = match (params, body) {
        // A query string the server cannot read (`register` twice …) is
        // answered, after authentication, as any bad parameter is.
        (Err(rejection), _) => bad(
            StatusCode::BAD_REQUEST,
            Issue::error(
                "invalid",
                format!(
                    "the query string could not be read: {}",
                    rejection.body_text()
                ),
            ),
        ),
        (Ok(Query(params)), Ok(body)) => import(&state, &caller, &headers, &params, &body).await,
        (Ok(_), Err(rejection)) => {
            let status = rejection.status();
            let (status, code, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                (status, "too-costly", "the bundle is larger than this server accepts in one request (RENKEI_MAX_BODY_BYTES): split it".to_string())
            } else if crate::http::body_timed_out(&rejection) {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    "the bundle did not arrive in time (RENKEI_BODY_READ_TIMEOUT_SECONDS)"
                        .to_string(),
                )
            } else {
                (
                    status,
                    "structure",
                    format!("the body could not be read: {}", rejection.body_text()),
                )
            };
            bad(status, Issue::error(code, message).at("Bundle"))
        }
    };
    caller.finish(&state.audit, answer).await
}

fn bad(status: StatusCode, issue: Issue) -> Response {
    outcome_response(status, &issue.into())
}

async fn import(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    params: &Params,
    body: &[u8],
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Media types are case-insensitive (RFC 9110 §8.3.1).
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        essence.as_str(),
        "application/fhir+json" | "application/json"
    ) {
        return bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Issue::error(
                "not-supported",
                "send the bundle as application/fhir+json (FHIR JSON)",
            ),
        );
    }
    // Its parameters, where they say what the hub cannot read: another
    // character set than UTF-8 (the rule of `/graphql` too), another FHIR
    // version than R4 (FHIR's `fhirVersion` parameter, 4.0). Others are
    // ignored.
    if let Some(charset) = crate::graphql_http::unaccepted_charset(content_type) {
        return bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Issue::error(
                "not-supported",
                format!("the charset {charset:?} is not accepted: FHIR JSON is UTF-8"),
            ),
        );
    }
    for parameter in content_type.split(';').skip(1) {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("fhirVersion")
            && value != "4.0"
            && !value.starts_with("4.0.")
        {
            return bad(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Issue::error(
                    "not-supported",
                    format!("fhirVersion {value:?} is not served: this hub speaks FHIR R4 (4.0)"),
                ),
            );
        }
    }
    if let Some(coding) = crate::graphql_http::unaccepted_coding(headers) {
        return bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Issue::error(
                "not-supported",
                format!(
                    "the Content-Encoding {coding:?} is not accepted: send the bundle uncompressed"
                ),
            ),
        );
    }
    let register = match params.register.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return bad(
                StatusCode::BAD_REQUEST,
                Issue::error(
                    "invalid",
                    format!("register must be true or false, not {other:?}"),
                ),
            );
        }
    };
    // A byte order mark before the JSON, as Windows tools write one, is
    // not part of it (RFC 8259 §8.1 lets a parser ignore it).
    let body = body.strip_prefix(BOM.as_bytes()).unwrap_or(body);
    // Strictly: a resource naming `resourceType` (or any element) twice
    // is not one resource (`crate::strict_json`).
    let bundle: Value = match crate::strict_json::from_slice(body) {
        Ok(v) => v,
        Err(e) if e.is_data() => {
            return bad(
                StatusCode::BAD_REQUEST,
                Issue::error("structure", format!("the body repeats an element: {e}")),
            );
        }
        // Nested past the JSON reader's own bound (128 levels), the body is
        // refused before the hub's depth rule (`MAX_DEPTH`) can be: told
        // as that rule tells it, not as text that is not JSON.
        Err(e) if inbound::is_too_deep(&e) => {
            return bad(StatusCode::BAD_REQUEST, inbound::too_deep().at("Bundle"));
        }
        Err(e) => {
            return bad(
                StatusCode::BAD_REQUEST,
                Issue::error("structure", format!("the body is not JSON: {e}")),
            );
        }
    };
    let me = caller.run(&state.schema, ME, json!({})).await;
    if let Some(r) = graphql_errors(&me, |_| None) {
        return r;
    }
    let code = me["data"]["me"]["organization"]["medicalInstitutionCode"].as_str();
    let mut read = match inbound::read(&bundle, code) {
        Ok(r) => r,
        Err(outcome) => return outcome_response(StatusCode::BAD_REQUEST, &outcome),
    };
    // Each patient costs its lookups, and with `?register=true` two writes:
    // bounded like the records, which one write takes at most.
    for (count, what, how) in [
        (read.patients.len(), "patients", "taken"),
        (read.records.len(), "records", "written (all or nothing)"),
    ] {
        if count > MAX_RECORDS {
            return bad(
                StatusCode::PAYLOAD_TOO_LARGE,
                Issue::error(
                    "too-costly",
                    format!("the bundle holds {count} {what}; at most {MAX_RECORDS} are {how} at once: split it"),
                )
                .at("Bundle.entry"),
            );
        }
    }
    // The verdicts the lookups reach, the write takes: between them only a
    // local ID is linked (no patient's access changes), and a patient
    // registered meanwhile is new, evaluated by the write. Registering,
    // the matched patients are evaluated again (see `match_patients`).
    let verdicts = Arc::new(SharedVerdicts::default());
    let patients = match match_patients(state, caller, &read, register, &verdicts).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    write(state, caller, &mut read, &patients, &verdicts).await
}

/// A patient of the bundle, as the hub knows it.
struct Matched {
    id: String,
    created: bool,
    /// The bundle's `Consent` was recorded (with the registration, or
    /// after one whose consent was not).
    consent_recorded: bool,
}

async fn match_patients(
    state: &AppState,
    caller: &Caller,
    read: &Inbound,
    register: bool,
    verdicts: &Arc<SharedVerdicts>,
) -> Result<Vec<Matched>, Response> {
    // By local ID first, then by the insured-person identifier for those
    // not found: each kind of lookup for every patient at once.
    let locals: Vec<Option<&str>> = read
        .patients
        .iter()
        .map(|p| p.local_id.as_deref())
        .collect();
    let element = |index: usize| {
        read.patients[index]
            .entry
            .map(|e| format!("Bundle.entry[{e}].resource"))
            .unwrap_or_else(|| "Bundle.entry".to_string())
    };
    // Registering, the lookup also reads whether each patient has a
    // consent (see the repair below): in the same operation.
    let by_local = if register {
        Lookup::LocalIdWithConsents
    } else {
        Lookup::LocalId
    };
    let by_local = lookup_many(state, caller, by_local, &locals, element, verdicts).await?;
    let insured: Vec<Option<&str>> = read
        .patients
        .iter()
        .zip(&by_local)
        .map(|(p, found)| match found {
            Some(_) => None,
            None => p.insured_person_id.as_deref(),
        })
        .collect();
    let by_insured = lookup_many(
        state,
        caller,
        if register {
            Lookup::InsuredPersonIdWithConsents
        } else {
            Lookup::InsuredPersonId
        },
        &insured,
        element,
        verdicts,
    )
    .await?;
    let mut out = Vec::with_capacity(read.patients.len());
    for (index, p) in read.patients.iter().enumerate() {
        let element = p
            .entry
            .map(|e| format!("Bundle.entry[{e}].resource"))
            .unwrap_or_else(|| "Bundle.entry".to_string());
        let by_insured_only = by_local[index].is_none() && by_insured[index].is_some();
        if let Some(found) = by_local[index].as_ref().or(by_insured[index].as_ref()) {
            out.push(
                take_found(
                    state,
                    caller,
                    p,
                    found,
                    register,
                    by_insured_only,
                    &element,
                    verdicts,
                )
                .await?,
            );
            continue;
        }
        if !register {
            return Err(bad(
                StatusCode::NOT_FOUND,
                Issue::error(
                    "not-found",
                    "no patient of yours matches this Patient (by your local patient ID, then the insured-person identifier); to register one, send the bundle with ?register=true and the patient's Consent",
                )
                .at(element),
            ));
        }
        let registration = match &p.registration {
            Ok(r) => r.clone(),
            Err(issue) => {
                return Err(outcome_response(
                    StatusCode::BAD_REQUEST,
                    &issue.clone().into(),
                ));
            }
        };
        let Some(local) = &p.local_id else {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                Issue::error(
                    "required",
                    "registering a patient needs your local patient ID among its identifiers",
                )
                .at(format!("{element}.identifier")),
            ));
        };
        let Some((consent_entry, consent)) = &p.consent else {
            return Err(bad(
                StatusCode::BAD_REQUEST,
                Issue::error(
                    "required",
                    "registering a patient needs the patient's consent: add a Consent resource about this patient (dateTime: the day signed; sourceReference or identifier: the signed form)",
                )
                .at(element),
            ));
        };
        // A consent that cannot be taken refuses the registration before
        // anything is written.
        let consent = consent
            .as_ref()
            .map_err(|issue| outcome_response(StatusCode::BAD_REQUEST, &issue.clone().into()))?;
        // The form as `recordConsent` will take it — its reference, and its
        // day not after today — and not before the birth the bundle gives
        // (`ConsentForm::check_signed_after_birth`, which needs a stored
        // patient): refused now, with nothing registered, not after the
        // patient is, at the consent, leaving a patient without one.
        let day = |v: &Value| {
            v.as_str()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        };
        let dated = format!("Bundle.entry[{consent_entry}].resource.dateTime");
        if let Some(signed) = day(&consent["form"]["signedOn"]) {
            let form = renkei_schema::domain::RawConsentForm {
                reference: consent["form"]["reference"].as_str().unwrap_or_default(),
                signed_on: signed,
                signed_by: renkei_schema::domain::ConsentSignatory::Patient,
                proxy_name: None,
                proxy_relation: None,
            };
            let today = renkei_schema::clock::Clock::today(&*state.clock);
            if let Err(e) = renkei_schema::domain::ConsentForm::parse("form", form, today) {
                let at = if e.field() == Some("form.signedOn") {
                    dated.clone()
                } else {
                    format!("Bundle.entry[{consent_entry}].resource")
                };
                let message = e.message();
                let message = message.split_once(": ").map_or(message.as_str(), |m| m.1);
                return Err(bad(
                    StatusCode::BAD_REQUEST,
                    Issue::error("invalid", format!("the consent: {message}")).at(at),
                ));
            }
            // A birth after today is the Patient's fault, not the
            // consent's: `registerPatient` refuses it below, at birthDate.
            if let Some(born) = day(&registration["birthDate"])
                && born <= today
                && signed < born
            {
                return Err(bad(
                    StatusCode::BAD_REQUEST,
                    Issue::error(
                        "invalid",
                        format!(
                            "the consent is dated {signed}, before the patient's birth ({born})"
                        ),
                    )
                    .at(dated),
                ));
            }
        }
        let mut input = registration;
        input["localId"] = json!(local);
        input["insuredPersonIdentifier"] = json!(p.insured_person_id);
        let registered = caller
            .run(&state.schema, REGISTER, json!({ "i": input }))
            .await;
        // Refused as a clash of the local ID or the insured-person
        // identifier: another request (a bundle in flight beside this one,
        // another import of the same files) registered this patient
        // between the lookup and now. Looked up again as at first — by the
        // local ID, then by the insured-person identifier (whose match
        // links the local ID) — it is that patient, matched as if found
        // first: two bundles naming one new patient both succeed, and only
        // one records its consent. A clash with a patient the caller may
        // not see is not found so, and is refused as before.
        if registered["errors"][0]["extensions"]["code"] == "CONFLICT" {
            let again = |by: Lookup, value: &str| {
                let value = value.to_string();
                let element = element.clone();
                async move {
                    lookup_many(
                        state,
                        caller,
                        by,
                        &[Some(&value)],
                        |_| element.clone(),
                        verdicts,
                    )
                    .await
                    .map(|mut found| found.pop().flatten())
                }
            };
            let mut found = again(Lookup::LocalIdWithConsents, local).await?;
            let mut by_insured_only = false;
            if found.is_none()
                && let Some(insured) = &p.insured_person_id
            {
                found = again(Lookup::InsuredPersonIdWithConsents, insured).await?;
                by_insured_only = found.is_some();
            }
            if let Some(found) = found {
                out.push(
                    take_found(
                        state,
                        caller,
                        p,
                        &found,
                        true,
                        by_insured_only,
                        &element,
                        verdicts,
                    )
                    .await?,
                );
                continue;
            }
        }
        if let Some(r) = graphql_errors(&registered, |e| {
            let field = e["extensions"]["field"].as_str().unwrap_or_default();
            Some(match field {
                "input.name" | "input.nameKana" => format!("{element}.name"),
                "input.birthDate" => format!("{element}.birthDate"),
                "input.postalCode" | "input.address" => format!("{element}.address"),
                "input.phone" => format!("{element}.telecom"),
                _ => format!("{element}.identifier"),
            })
        }) {
            return Err(r);
        }
        let Some(id) = registered["data"]["registerPatient"]["id"].as_str() else {
            return Err(internal("registerPatient answered no id"));
        };
        let consent_recorded = record_consent(state, caller, id, *consent_entry, consent).await?;
        out.push(Matched {
            id: id.to_string(),
            created: true,
            consent_recorded,
        });
    }
    Ok(out)
}

/// A patient of the bundle the hub found (`found`, as the lookup answered
/// it: `id`, and `consents` when registering).
#[allow(clippy::too_many_arguments)]
async fn take_found(
    state: &AppState,
    caller: &Caller,
    p: &inbound::PatientIn,
    found: &Value,
    register: bool,
    by_insured_only: bool,
    element: &str,
    verdicts: &Arc<SharedVerdicts>,
) -> Result<Matched, Response> {
    let Some(id) = found["id"].as_str().map(str::to_string) else {
        return Err(internal("a patient lookup answered no id"));
    };
    // A patient this caller registered whose consent was not recorded (the
    // registration's second step failed: a refused form, the database gone
    // between the two — or has not yet happened: another bundle registering
    // the same patient at this moment) takes the bundle's Consent now — its
    // first consent, as with the registration, and only as the first
    // (`onlyIfFirst`: of two bundles completing it at once, one records
    // it). Once one is recorded, a resend records nothing. Before the link
    // below, which writes IDENTITY and so needs the consent.
    let mut consent_recorded = false;
    let never_consented = found["consents"].as_array().is_some_and(Vec::is_empty);
    if register
        && never_consented
        && let Some((entry, consent)) = &p.consent
    {
        let consent = consent
            .as_ref()
            .map_err(|issue| outcome_response(StatusCode::BAD_REQUEST, &issue.clone().into()))?;
        consent_recorded = record_consent(state, caller, &id, *entry, consent).await?;
    }
    // Registering, the lookup's verdict may predate the patient's consent:
    // recorded above, or by another bundle registering the same patient at
    // the same time (its registration committed, its consent recorded after
    // the lookup had evaluated the patient but before it read the
    // consents). The write evaluates such a patient again rather than
    // refuse on a stale verdict.
    if register && let Ok(patient) = id.parse() {
        verdicts.forget(patient);
    }
    if by_insured_only && let Some(local) = &p.local_id {
        let linked = caller
            .run(
                &state.schema,
                LINK,
                json!({ "i": { "patientId": id, "localId": local } }),
            )
            .await;
        if let Some(r) = graphql_errors(&linked, |_| Some(format!("{element}.identifier"))) {
            return Err(r);
        }
    }
    Ok(Matched {
        id,
        created: false,
        consent_recorded,
    })
}

/// Records a registration's consent (the bundle's `Consent` entry `entry`)
/// as the patient's first: `false` when another request recorded one first
/// (`CONFLICT` at `input.onlyIfFirst`), which the patient then keeps.
async fn record_consent(
    state: &AppState,
    caller: &Caller,
    patient: &str,
    entry: usize,
    consent: &Value,
) -> Result<bool, Response> {
    let mut consent = consent.clone();
    consent["patientId"] = json!(patient);
    consent["onlyIfFirst"] = json!(true);
    let recorded = caller
        .run(&state.schema, CONSENT, json!({ "i": consent }))
        .await;
    let first = &recorded["errors"][0];
    if recorded["errors"].as_array().is_some_and(|e| e.len() == 1)
        && first["extensions"]["code"] == "CONFLICT"
        && first["extensions"]["field"] == "input.onlyIfFirst"
    {
        return Ok(false);
    }
    match graphql_errors(&recorded, |_| {
        Some(format!("Bundle.entry[{entry}].resource"))
    }) {
        Some(refused) => Err(refused),
        None => Ok(true),
    }
}

/// What [`lookup_many`] looks patients up by.
#[derive(Clone, Copy)]
enum Lookup {
    LocalId,
    /// By local ID, with each patient's consent history (its ids): whether
    /// a consent was ever recorded, for the repair of a registration.
    LocalIdWithConsents,
    InsuredPersonId,
    /// By insured-person identifier, with the consent history, as
    /// [`Lookup::LocalIdWithConsents`].
    InsuredPersonIdWithConsents,
}

impl Lookup {
    fn query(self) -> &'static str {
        match self {
            Lookup::LocalId => "query($v: [String!]!) { patientsByLocalIds(localIds: $v) { id } }",
            Lookup::LocalIdWithConsents => {
                "query($v: [String!]!) { patientsByLocalIds(localIds: $v) { id consents { id } } }"
            }
            Lookup::InsuredPersonId => {
                "query($v: [String!]!) { patientsByInsuredPersonIdentifiers(identifiers: $v) { id } }"
            }
            Lookup::InsuredPersonIdWithConsents => {
                "query($v: [String!]!) { patientsByInsuredPersonIdentifiers(identifiers: $v) { id consents { id } } }"
            }
        }
    }

    fn field(self) -> &'static str {
        match self {
            Lookup::LocalId | Lookup::LocalIdWithConsents => "patientsByLocalIds",
            Lookup::InsuredPersonId | Lookup::InsuredPersonIdWithConsents => {
                "patientsByInsuredPersonIdentifiers"
            }
        }
    }
}

/// The patients `values` name (each as the lookup answered it: `id`, and
/// `consents` for [`Lookup::LocalIdWithConsents`]) — `None` where there is
/// no value, and for a patient that does not exist and one the caller may
/// not see alike — through GraphQL's batch lookups as the caller: one operation
/// per [`MAX_LOOKUPS`] values, so a bundle's patients cost one lookup
/// statement and one policy statement, not one operation each. Another
/// error is answered as an `OperationOutcome` naming the identifier of the
/// patient at fault (`element(i)`: the `Patient` of value `i`).
async fn lookup_many(
    state: &AppState,
    caller: &Caller,
    by: Lookup,
    values: &[Option<&str>],
    element: impl Fn(usize) -> String,
    verdicts: &Arc<SharedVerdicts>,
) -> Result<Vec<Option<Value>>, Response> {
    let asked: Vec<(usize, &str)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let mut found = vec![None; values.len()];
    for chunk in asked.chunks(MAX_LOOKUPS) {
        let list: Vec<&str> = chunk.iter().map(|(_, v)| *v).collect();
        let body = caller
            .run_step(&state.schema, by.query(), json!({ "v": list }), verdicts)
            .await;
        // A bad value is named by its index in the list (`localIds[3]`).
        let at_fault = |e: &Value| {
            let field = e["extensions"]["field"].as_str()?;
            let index: usize = field.split_once('[')?.1.strip_suffix(']')?.parse().ok()?;
            let (position, _) = chunk.get(index)?;
            Some(format!("{}.identifier", element(*position)))
        };
        // A consent history the caller's role may not read is `null` with
        // `FORBIDDEN_FIELD`: no repair for that patient, not a refusal.
        let errors: Vec<&Value> = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["extensions"]["code"] != "FORBIDDEN_FIELD")
            .collect();
        if let Some(r) = graphql_errors(&json!({ "errors": errors }), at_fault) {
            return Err(r);
        }
        let Some(patients) = body["data"][by.field()].as_array() else {
            return Err(internal("a patient lookup answered no list"));
        };
        if patients.len() != chunk.len() {
            return Err(internal(
                "a patient lookup answered a list of another length",
            ));
        }
        for ((position, _), patient) in chunk.iter().zip(patients) {
            found[*position] = patient["id"].is_string().then(|| patient.clone());
        }
    }
    Ok(found)
}

fn internal(cause: &str) -> Response {
    tracing::error!(cause, "FHIR import failed");
    bad(
        StatusCode::INTERNAL_SERVER_ERROR,
        Issue::error(
            "exception",
            "internal error: the hub could not complete the request; it has been logged",
        ),
    )
}

async fn write(
    state: &AppState,
    caller: &Caller,
    read: &mut Inbound,
    patients: &[Matched],
    verdicts: &Arc<SharedVerdicts>,
) -> Response {
    let mut results: Vec<Option<Value>> = vec![None; read.entries];
    for (p, m) in read.patients.iter().zip(patients) {
        if let Some(e) = p.entry {
            results[e] = Some(json!({ "response": {
                "status": if m.created { "201 Created" } else { "200 OK" },
                "location": format!("Patient/{}", m.id),
            } }));
        }
        if let Some((e, _)) = &p.consent {
            results[*e] = Some(json!({ "response": {
                "status": if m.consent_recorded { "201 Created" } else { "200 OK" },
                "outcome": informational(if m.created && m.consent_recorded {
                    "recorded with the patient's registration"
                } else if m.consent_recorded {
                    "recorded: the patient's registration had no consent yet"
                } else if m.created {
                    "not recorded: another request completing the same registration recorded the patient's first consent (consent changes go through recordConsent)"
                } else {
                    "not recorded: the patient was already registered (consent changes go through recordConsent)"
                }),
            } }));
        }
    }
    for (e, why) in &read.not_stored {
        results[*e] = Some(json!({ "response": {
            "status": "200 OK",
            "outcome": Outcome::new(Issue {
                severity: Severity::Warning,
                code: "informational",
                diagnostics: why.clone(),
                expression: Some(format!("Bundle.entry[{e}].resource")),
            })
            .to_json(),
        } }));
    }
    for &e in &read.context {
        results[e] = Some(json!({ "response": {
            "status": "200 OK",
            "outcome": informational("read for context; not stored as a record"),
        } }));
    }
    if !read.records.is_empty() {
        // The inputs moved out, not copied: what is left of `read` only
        // places the results (and the errors) back in the bundle.
        let items: Vec<Value> = read
            .records
            .iter_mut()
            .map(|r| {
                let mut item = std::mem::take(&mut r.input);
                item["patientId"] = json!(patients[r.patient].id);
                item
            })
            .collect();
        // The items moved into the variables: `json!` would copy them.
        let mut variables = json!({ "i": {} });
        variables["i"]["records"] = Value::Array(items);
        let written = caller
            .run_step(&state.schema, WRITE, variables, verdicts)
            .await;
        if let Some(r) = graphql_errors(&written, |e| locate(read, e)) {
            return r;
        }
        let Some(outcomes) = written["data"]["writeRecords"]
            .as_array()
            .filter(|o| o.len() == read.records.len())
        else {
            return internal("writeRecords answered no results, or not one per record");
        };
        // Each outcome's informational `OperationOutcome` built once, not
        // once per record.
        let mut said: std::collections::HashMap<&str, Value> = std::collections::HashMap::new();
        for (r, o) in read.records.iter().zip(outcomes) {
            let outcome = o["outcome"].as_str().unwrap_or_default();
            let said = said
                .entry(outcome)
                .or_insert_with(|| informational(&format!("writeRecords: {outcome}")))
                .clone();
            let status = if outcome == "CREATED" {
                "201 Created"
            } else {
                "200 OK"
            };
            results[r.entry] = Some(json!({ "response": {
                "status": status,
                "location": format!(
                    "{}/{}/_history/{}",
                    r.resource_type,
                    o["record"]["id"].as_str().unwrap_or_default(),
                    o["record"]["version"]
                ),
                "outcome": said,
            } }));
        }
    }
    let entries = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| json!({ "response": { "status": "200 OK" } })))
        .collect();
    resource_response(
        StatusCode::OK,
        &inbound::response_bundle(read.kind, entries),
    )
}

fn informational(text: &str) -> Value {
    Outcome::new(Issue {
        severity: Severity::Information,
        code: "informational",
        diagnostics: text.to_string(),
        expression: None,
    })
    .to_json()
}

/// The FHIR element a `writeRecords` error came from: its field
/// (`input.records[7].data.labResult.unit`) or, for a refusal, the index its
/// message starts with (`input.records[3]: you may not …`).
fn locate(read: &Inbound, error: &Value) -> Option<String> {
    let field = error["extensions"]["field"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            let message = error["message"].as_str()?;
            let end = message.find("]:")?;
            Some(message[..=end].to_string())
        })?;
    match inbound::element_of(&field, "") {
        Some((index, _)) => {
            let record = read.records.get(index)?;
            let (_, element) = inbound::element_of(&field, &record.resource_type)?;
            let element = if field.ends_with(']') {
                String::new()
            } else {
                element
            };
            Some(if element.is_empty() {
                format!("Bundle.entry[{}].resource", record.entry)
            } else {
                format!("Bundle.entry[{}].resource.{element}", record.entry)
            })
        }
        None => None,
    }
}
