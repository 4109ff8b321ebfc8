//! FHIR R4 over HTTP (issue 13): `/fhir/…`, JP Core / JP-CLINS in and out.
//!
//! Like the pages ([`crate::print`], [`crate::pages`]), the FHIR endpoints
//! never read or write the database themselves: they authenticate exactly
//! like `/graphql`, then run GraphQL operations against the schema as the
//! caller ([`Caller::run`]) — so the one policy decides every read and
//! write, `writeRecords` is the one write path, and every access lands in
//! the caller's audit trail — write that trail to the audit log before
//! answering ([`Caller::finish`]), and translate between FHIR and the
//! hub's model with the `renkei-fhir` crate.
//!
//! - [`inbound`]: `POST /fhir` — JP-CLINS bundles in.
//! - [`import`]: `renkei import fhir PATH…`, the bulk import through the
//!   router of `POST /fhir`.
//! - [`outbound`]: `GET /fhir/metadata`, `GET /fhir/Patient?identifier=…`,
//!   `GET /fhir/Patient/{id}/$everything` and `$summary`.
//!
//! Errors are `OperationOutcome`s with the usual FHIR HTTP codes; the
//! GraphQL error codes map to them in one place ([`status_of`]).

// A handler's refusal is its response, returned by value as axum handlers do.
#![allow(clippy::result_large_err)]

pub mod export;
pub mod import;
pub mod inbound;
pub mod outbound;

use std::sync::Arc;

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use renkei_fhir::outcome::{Issue, Outcome, Severity};
use renkei_schema::audit::AuditTrail;
use renkei_schema::error::{ApiError, DATABASE_UNAVAILABLE};
use renkei_schema::graphql::SharedVerdicts;
use renkei_schema::graphql::fixed::FixedOperation;
use renkei_schema::{Principal, RequestContext};
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use crate::http::AppState;

/// The `/fhir` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(inbound::routes())
        .merge(outbound::routes())
        // What is not served is an OperationOutcome too, not an empty body.
        .fallback(not_served)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(negotiate))
}

/// FHIR's content negotiation (R4 http.html#mime-type): the hub answers
/// FHIR JSON only, so a request whose `_format` names another format
/// (`xml`, `ttl`, `application/fhir+xml` …), or whose `Accept` header
/// allows no JSON, is `406 Not Acceptable` — an OperationOutcome, in JSON
/// as every answer — before anything runs, instead of JSON the client did
/// not ask for. `_format` decides when both are given, as FHIR says; given
/// twice, each must name JSON (the hub does not guess which one a client
/// meant).
async fn negotiate(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let formats: Vec<String> = request
        .uri()
        .query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .filter(|(name, _)| name == "_format")
                .map(|(_, value)| value.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let refused = match formats.iter().find(|f| !is_json(f)) {
        Some(format) => Some(format!(
            "_format={format:?}: this endpoint answers FHIR JSON only (_format=json)"
        )),
        None if !formats.is_empty() => None,
        None => {
            let accept: Vec<&str> = request
                .headers()
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            let accept = accept.join(",");
            (!accept.trim().is_empty() && !accepts_json(&accept)).then(|| {
                format!(
                    "Accept: {accept:?} allows no JSON: this endpoint answers application/fhir+json only"
                )
            })
        }
    };
    match refused {
        Some(message) => outcome_response(
            StatusCode::NOT_ACCEPTABLE,
            &Issue::error("not-supported", message).into(),
        ),
        None => next.run(request).await,
    }
}

/// The JSON media types of FHIR (`application/json+fhir` is DSTU2's name,
/// which older clients still send), and `_format`'s short form. A `+` typed
/// into a query string unescaped arrives as a space.
fn is_json(media: &str) -> bool {
    let essence = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .replace(' ', "+");
    ["json"]
        .iter()
        .chain(JSON_TYPES)
        .any(|m| essence.eq_ignore_ascii_case(m))
}

/// The media types the hub answers as (`application/fhir+json`), or may
/// answer for (a client asking for plain JSON gets FHIR JSON).
const JSON_TYPES: &[&str] = &[
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
];

/// Whether an `Accept` header allows FHIR JSON: for one of [`JSON_TYPES`],
/// the most specific range that covers it (the type itself, then
/// `application/*`, then `*/*`; RFC 9110 §12.5.1) has a weight above zero.
fn accepts_json(accept: &str) -> bool {
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let essence = parts.next()?.trim().to_ascii_lowercase();
            let weight = parts
                .filter_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("q").then(|| value.trim())
                })
                .next()
                .map_or(Some(1.0), |q| q.parse::<f32>().ok())?;
            (!essence.is_empty()).then_some((essence, weight))
        })
        .collect();
    let weight_of = |essence: &str| {
        ranges
            .iter()
            .filter(|(range, _)| range == essence)
            .map(|(_, w)| *w)
            .reduce(f32::max)
    };
    JSON_TYPES.iter().any(|media| {
        weight_of(media)
            .or_else(|| weight_of("application/*"))
            .or_else(|| weight_of("*/*"))
            .is_some_and(|w| w > 0.0)
    })
}

#[cfg(test)]
mod negotiation {
    use super::{accepts_json, is_json};

    #[test]
    fn accept_headers_allow_json_by_their_most_specific_range() {
        for yes in [
            "application/fhir+json",
            "Application/FHIR+JSON; fhirVersion=4.0",
            "application/json+fhir;q=0.9, application/xml",
            "text/html,application/xhtml+xml,*/*;q=0.8",
            "application/*",
            "application/xml, application/json;Q=0.5",
        ] {
            assert!(accepts_json(yes), "{yes}");
        }
        for no in [
            "application/fhir+xml",
            "application/fhir+json;q=0, application/xml",
            "application/fhir+json;Q=0",
            "application/fhir+json;q=0, application/json;q=0, application/json+fhir;q=0, */*",
            "text/html",
            "*/*;q=0",
        ] {
            assert!(!accepts_json(no), "{no}");
        }
    }

    #[test]
    fn format_names_json_in_every_form() {
        for yes in [
            "json",
            "JSON",
            "application/fhir+json",
            "application/fhir json",
            "application/json",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in ["xml", "ttl", "application/fhir+xml", "html", ""] {
            assert!(!is_json(no), "{no}");
        }
    }
}

pub(crate) async fn not_served() -> Response {
    outcome_response(
        StatusCode::NOT_FOUND,
        &Issue::error(
            "not-supported",
            "not served here: GET /fhir/metadata says what this endpoint supports",
        )
        .into(),
    )
}

async fn method_not_allowed() -> Response {
    outcome_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &Issue::error(
            "not-supported",
            "this method is not served here (bundles are POSTed to /fhir; reads and operations are GETs): GET /fhir/metadata says what this endpoint supports",
        )
        .into(),
    )
}

/// An authenticated FHIR request: who calls, and the audit trail its
/// GraphQL operations record into.
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
    pub trail: Arc<AuditTrail>,
}

impl Caller {
    /// Authenticates the request and applies the caller's rate limits, or
    /// answers the refusal as an `OperationOutcome` (401, 429, 503, 500).
    pub async fn authenticate(
        state: &AppState,
        headers: &HeaderMap,
        request_id: Option<axum::Extension<RequestId>>,
    ) -> Result<Caller, Response> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let principal = match state.auth.authenticate(authorization).await {
            Ok(p) => {
                crate::observe::note_caller(p.organization_id());
                p
            }
            Err(ApiError::Unauthenticated(message)) => {
                let mut r = outcome_response(
                    StatusCode::UNAUTHORIZED,
                    &Issue::error("login", message).into(),
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return Err(r);
            }
            Err(e) => return Err(error_response(&e)),
        };
        if let Err(limited) = state.rate_limits.check(&principal).await {
            state.observe.metrics.rate_limited(
                limited.scope.as_str(),
                crate::observe::metrics::Transport::Http,
            );
            let mut r = outcome_response(
                StatusCode::TOO_MANY_REQUESTS,
                &Issue::error("throttled", limited.message()).into(),
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(limited.retry_after_seconds()),
            );
            crate::observe::set_outcome(&mut r, "RATE_LIMITED");
            return Err(r);
        }
        Ok(Caller {
            principal,
            request_id: crate::http::request_id_text(request_id),
            trail: Arc::new(AuditTrail::new()),
        })
    }

    /// A caller for the CLI (`renkei import fhir`, `renkei export fhir`):
    /// an API key's principal, resolved by the CLI.
    pub fn of(principal: Principal, request_id: impl Into<String>) -> Caller {
        Caller {
            principal,
            request_id: request_id.into(),
            trail: Arc::new(AuditTrail::new()),
        }
    }

    /// Runs one GraphQL operation as the caller, recording into the trail.
    /// The response as JSON (`data`, `errors` with `extensions.code`).
    pub async fn run(
        &self,
        schema: &renkei_schema::RenkeiSchema,
        query: &str,
        variables: Value,
    ) -> Value {
        self.execute(schema, query, variables, None).await
    }

    /// [`Caller::run`] for one step of a request that runs several on the
    /// same patients (a bundle's lookups, then its write): `query` is a
    /// text compiled into the hub, run without validation
    /// ([`FixedOperation`]: the values of its variables are still parsed
    /// into their types), and the policy's verdicts on patients are taken
    /// from `verdicts` and kept there for the next step — only where
    /// nothing run in between changes the access of a patient kept there
    /// ([`SharedVerdicts`]).
    pub async fn run_step(
        &self,
        schema: &renkei_schema::RenkeiSchema,
        query: &'static str,
        variables: Value,
        verdicts: &Arc<SharedVerdicts>,
    ) -> Value {
        self.execute(schema, query, variables, Some(verdicts)).await
    }

    async fn execute(
        &self,
        schema: &renkei_schema::RenkeiSchema,
        query: &str,
        variables: Value,
        verdicts: Option<&Arc<SharedVerdicts>>,
    ) -> Value {
        let mut request = async_graphql::Request::new(query)
            .variables(graphql_variables(variables))
            .data(self.trail.clone())
            .data(RequestContext {
                principal: self.principal.clone(),
                request_id: self.request_id.clone(),
            });
        if let Some(verdicts) = verdicts {
            request = request.data(verdicts.clone()).data(FixedOperation);
        }
        let mut response = schema.execute(request).await;
        renkei_schema::graphql::audit_extension::ensure_codes(&mut response);
        serde_json::to_value(&response).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a GraphQL response did not serialise");
            json!({ "errors": [{ "message": "internal error", "extensions": { "code": "INTERNAL" } }] })
        })
    }

    /// Writes the trail's entries to the audit log.
    pub async fn write_audit(
        &self,
        audit: &renkei_schema::audit::AuditWriter,
    ) -> Result<(), ApiError> {
        let entries = self.trail.drain(&self.principal, &self.request_id);
        audit.append(entries).await
    }

    /// Writes the trail to the audit log, then answers `response` — or,
    /// when the entries could not be written, an `OperationOutcome` and no
    /// data: nothing leaves without its audit entry.
    pub async fn finish(
        &self,
        audit: &renkei_schema::audit::AuditWriter,
        response: Response,
    ) -> Response {
        if let Err(e) = self.write_audit(audit).await {
            tracing::error!(error = ?e, "audit entries could not be written; FHIR response withheld");
            return match e {
                ApiError::DatabaseUnavailable(_) => error_response(&e),
                _ => outcome_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &Issue::error(
                        "exception",
                        "internal error: the access could not be recorded in the audit log, so no data is returned; it has been logged",
                    )
                    .into(),
                ),
            };
        }
        response
    }
}

/// The variables of an operation as GraphQL values: the JSON tree moved
/// into async-graphql's, each object key made a GraphQL name once per
/// operation. `Variables::from_json` goes through serde and allocates a
/// name for every key of every object — for a bundle's `writeRecords`,
/// tens of thousands of copies of the same twenty keys. (A modest saving:
/// 93 M → 77 M of the import's instructions in `bench/RESULTS.md`, issue
/// 13, thirteenth pass — most of what is left is the values' own maps.)
/// The same values come out: a JSON number stays the number it is (both
/// hold a `serde_json::Number`); anything but an object sets no variables.
fn graphql_variables(json: Value) -> async_graphql::Variables {
    fn convert(
        json: Value,
        names: &mut std::collections::HashMap<String, async_graphql::Name>,
    ) -> async_graphql::Value {
        use async_graphql::Value as Graphql;
        match json {
            Value::Null => Graphql::Null,
            Value::Bool(b) => Graphql::Boolean(b),
            Value::Number(n) => Graphql::Number(n),
            Value::String(s) => Graphql::String(s),
            Value::Array(items) => {
                Graphql::List(items.into_iter().map(|v| convert(v, names)).collect())
            }
            Value::Object(map) => {
                let mut object = async_graphql::indexmap::IndexMap::with_capacity(map.len());
                for (key, value) in map {
                    let name = match names.get(&key) {
                        Some(name) => name.clone(),
                        None => {
                            let name = async_graphql::Name::new(&key);
                            names.insert(key, name.clone());
                            name
                        }
                    };
                    object.insert(name, convert(value, names));
                }
                Graphql::Object(object)
            }
        }
    }
    async_graphql::Variables::from_value(convert(json, &mut Default::default()))
}

/// A FHIR resource as the response body (`application/fhir+json`, never cached).
pub fn resource_response(status: StatusCode, resource: &Value) -> Response {
    let mut response = (status, resource.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An `OperationOutcome` as the response body, with `status`. A 503 asks
/// the client to retry (`Retry-After`), as `/graphql` does.
pub fn outcome_response(status: StatusCode, outcome: &Outcome) -> Response {
    let mut response = resource_response(status, &outcome.to_json());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::outage::RETRY_AFTER_SECONDS),
        );
    }
    let code = outcome
        .issues
        .first()
        .map(|i| i.code)
        .unwrap_or("informational");
    crate::observe::set_outcome(&mut response, code);
    response
}

/// The HTTP status and the `issue-type` code of a hub error code
/// (`extensions.code`): the one mapping from the hub's errors to FHIR's.
pub fn status_of(code: &str) -> (StatusCode, &'static str) {
    match code {
        "BAD_USER_INPUT"
        | "IMPLAUSIBLE_VALUE"
        | "GRAPHQL_VALIDATION_FAILED"
        | "GRAPHQL_PARSE_FAILED" => (StatusCode::BAD_REQUEST, "invalid"),
        "UNAUTHENTICATED" => (StatusCode::UNAUTHORIZED, "login"),
        // A patient or object the caller may not know of is refused like
        // one that does not exist (`renkei_schema::graphql::reach`).
        "NOT_FOUND" => (StatusCode::NOT_FOUND, "not-found"),
        "FORBIDDEN" | "FORBIDDEN_FIELD" => (StatusCode::FORBIDDEN, "forbidden"),
        "CONFLICT" => (StatusCode::CONFLICT, "conflict"),
        "RATE_LIMITED" => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
        "QUERY_TOO_COMPLEX" | "QUERY_TOO_LARGE" | "PAYLOAD_TOO_LARGE" => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too-costly")
        }
        DATABASE_UNAVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, "transient"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "exception"),
    }
}

/// A hub error as an `OperationOutcome` response. Internal errors reach the
/// client as an opaque message (their cause is logged where they arose).
pub fn error_response(error: &ApiError) -> Response {
    let (status, code) = status_of(error.code());
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        "internal error: the hub could not complete the request; it has been logged".to_string()
    } else {
        error.message()
    };
    outcome_response(status, &Issue::error(code, message).into())
}

/// The first error of a GraphQL response (JSON) as an `OperationOutcome`
/// response, `None` when it has none. `expression` maps the error's field
/// path (`extensions.field`, e.g. `input.records[3].data.condition.name`)
/// to the FHIR element it came from, when the caller knows it.
pub fn graphql_errors(
    body: &Value,
    expression: impl Fn(&Value) -> Option<String>,
) -> Option<Response> {
    let errors = body["errors"].as_array().filter(|e| !e.is_empty())?;
    let first_code = errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or("INTERNAL");
    let (status, _) = status_of(first_code);
    let issues = errors
        .iter()
        .map(|e| {
            let code = e["extensions"]["code"].as_str().unwrap_or("INTERNAL");
            let (status, fhir_code) = status_of(code);
            let diagnostics = if status == StatusCode::INTERNAL_SERVER_ERROR {
                "internal error: the hub could not complete the request; it has been logged"
                    .to_string()
            } else {
                e["message"].as_str().unwrap_or_default().to_string()
            };
            Issue {
                severity: Severity::Error,
                code: fhir_code,
                diagnostics,
                expression: expression(e),
            }
        })
        .collect();
    Some(outcome_response(status, &Outcome { issues }))
}

/// An identifier a FHIR request names a patient by.
#[derive(Clone, Copy, Debug)]
pub enum PatientKey<'a> {
    /// The caller's own local patient ID.
    LocalId(&'a str),
    /// The JP-CLINS insured-person identifier.
    InsuredPersonId(&'a str),
}

/// The hub's id of the patient `key` names, looked up through GraphQL as
/// the caller — the refusal path of every lookup: `None` for a patient
/// that does not exist and for one the caller may not see alike. Another
/// error is answered as an `OperationOutcome` whose expression is `at`.
pub async fn find_patient(
    state: &AppState,
    caller: &Caller,
    key: PatientKey<'_>,
    at: Option<&str>,
) -> Result<Option<String>, Response> {
    const BY_LOCAL_ID: &str = "query($v: String!) { patientByLocalId(localId: $v) { id } }";
    const BY_INSURED: &str =
        "query($v: String!) { patientByInsuredPersonIdentifier(identifier: $v) { id } }";
    let (query, value) = match key {
        PatientKey::LocalId(v) => (BY_LOCAL_ID, v),
        PatientKey::InsuredPersonId(v) => (BY_INSURED, v),
    };
    let body = caller
        .run(&state.schema, query, json!({ "v": value }))
        .await;
    let Some(errors) = body["errors"].as_array().filter(|e| !e.is_empty()) else {
        let data = body["data"].as_object().and_then(|d| d.values().next());
        return Ok(data.and_then(|p| p["id"].as_str()).map(str::to_string));
    };
    if errors[0]["extensions"]["code"] == "NOT_FOUND" {
        return Ok(None);
    }
    Err(
        graphql_errors(&body, |_| at.map(str::to_string)).unwrap_or_else(|| {
            tracing::error!("a FHIR patient lookup failed without an error");
            outcome_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &Issue::error(
                    "exception",
                    "internal error: the hub could not complete the request; it has been logged",
                )
                .into(),
            )
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_come_out_as_async_graphql_reads_them_from_json() {
        let input = json!({
            "i": {
                "records": [
                    {
                        "patientId": "0190",
                        "sourceRecordId": "Observation/1",
                        "effectiveAt": "2026-12-01T09:00:00+09:00",
                        "undisclosed": false,
                        "data": { "labResult": { "value": 7.25, "count": 3, "big": 18446744073709551615u64, "negative": -4, "unit": "mg/dL", "none": null, "tags": ["a", "b"], "名称": "ＨｂＡ１ｃ" } }
                    },
                    {
                        "patientId": "0191",
                        "data": { "labResult": { "value": 1e-3, "tags": [] } }
                    }
                ]
            },
            "v": ["x", null, 1, true]
        });
        assert_eq!(
            graphql_variables(input.clone()),
            async_graphql::Variables::from_json(input)
        );
        // Anything but an object sets no variables, as `from_json` has it.
        for other in [json!(null), json!([1, 2]), json!("x"), json!(3)] {
            assert_eq!(
                graphql_variables(other.clone()),
                async_graphql::Variables::from_json(other)
            );
        }
        assert!(graphql_variables(json!(1)).is_empty());
    }
}
