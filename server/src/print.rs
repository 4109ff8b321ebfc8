//! The printable emergency information page (救急医療情報の印刷):
//! `GET /patients/{id}/emergency-sheet`, one A4 page of HTML for the
//! disaster case, when networks are down and paper is what is left.
//!
//! The handler never reads the database itself. It authenticates exactly
//! like `/graphql`, then runs GraphQL queries against the schema with the
//! caller's `RequestContext` and a fresh `AuditTrail` — so the one policy
//! decides every part and every part read is recorded — writes the trail to
//! the audit log *before* answering (no entry, no page), and renders what the
//! schema returned. A part the caller may not read (`FORBIDDEN_FIELD`) is
//! printed as 「閲覧権限なし / not permitted」; a caller who may not read the
//! patient at all gets an error page with the status and no data.
//!
//! The page is self-contained: inline print CSS (`@page { size: A4 }`), no
//! scripts, and a Content-Security-Policy that would stop a script even if
//! one slipped through. It is rendered from askama templates
//! (`server/templates/emergency_sheet*.html`), which escape every value they
//! print: the response is first parsed into a typed view ([`sheet`]), so a
//! template can only print a value, never splice markup.

mod bulk;
mod sheet;

pub use bulk::emergency_sheets;

use std::sync::Arc;

use askama::Template;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{DateTime, FixedOffset, Utc};
use renkei_schema::audit::AuditTrail;
use renkei_schema::domain::DataCategory;
use renkei_schema::error::ApiError;
use renkei_schema::{Principal, RequestContext};
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use crate::http::AppState;
use sheet::{SheetPage, SheetView};

/// Japan Standard Time, the region's clock on paper.
pub(crate) fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset")
}

/// Step one: may the caller read this patient's emergency information?
const ACCESS_QUERY: &str =
    "query($id: ID!) { patient(id: $id) { access { category read explanation } } }";

/// Step two: everything the page shows.
const SHEET_QUERY: &str = r#"query($id: ID!) {
  me { kind member { name profession } organization { name } }
  patient(id: $id) {
    name nameKana birthDate sex address phone
    careRelationship emergencyAccessUntil
    emergencyInformation {
      sheet {
        version effectiveAt sourceOrganization { name } author { name }
        data {
          usualHospital { name phone note }
          emergencyContacts { name relationship phone available keyPerson }
          expectedEmergencies { situation response callFirst }
          designatedHospital { name phone backupBed note }
          note
        }
      }
      primaryPhysician { organization { name phone } member { name } }
      careManager { organization { name phone } member { name } }
      activeConditions { undisclosed data { ... on ConditionData { name icd10 onset } } }
      reportedDiagnoses
      allergies { data { ... on AllergyData { substance allergyType reaction severity } } }
      drugContraindications { data { ... on DrugContraindicationData { drug reason } } }
      infections { data { ... on InfectionData { pathogen otherName result testedOn } } }
      currentPrescriptions { data { ... on PrescriptionData { drug dose route frequency startDate } } }
      reportedMedications
      latestDispensing { effectiveAt sourceOrganization { name } data { ... on DispensingData { drug quantity unit days } } }
      advanceCarePlan {
        sourceOrganization { name }
        data { ... on AdvanceCarePlanData { cpr lifeProlongingTreatment tubeFeeding hospitalization placeOfDeath proxyName proxyRelationship confirmedOn note } }
      }
    }
  }
}"#;

/// `GET /patients/{id}/emergency-sheet`.
pub async fn emergency_sheet(
    State(state): State<AppState>,
    Path(patient_id): Path<String>,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let request_id = crate::http::request_id_text(request_id);
    let principal = match crate::pages::caller(&state, &headers).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let trail = Arc::new(AuditTrail::new());
    let outcome = render(&state, &principal, &request_id, &trail, &patient_id).await;
    answer(&state, &principal, &request_id, &trail, outcome).await
}

/// Writes the trail to the audit log, then answers the page or the refusal
/// — or, when the entries could not be written, an error page and no data.
async fn answer(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    trail: &AuditTrail,
    outcome: Result<String, Refusal>,
) -> Response {
    // No patient data leaves before its audit entries are committed.
    let entries = trail.drain(principal, request_id);
    if let Err(e) = state.audit.append(entries).await {
        tracing::error!(error = ?e, "audit entries could not be written; emergency sheet withheld");
        if matches!(e, ApiError::DatabaseUnavailable(_)) {
            return crate::pages::unavailable_page(
                "the database is unavailable: the access could not be recorded in the audit log, so no data is returned; try again shortly",
            );
        }
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "内部エラー",
            "internal error: the access could not be recorded in the audit log, so no data is returned; it has been logged",
        );
    }
    match outcome {
        Ok(html) => {
            crate::pages::html_response(StatusCode::OK, html, crate::pages::Caching::Private)
        }
        Err((StatusCode::SERVICE_UNAVAILABLE, _, message)) => {
            crate::pages::unavailable_page(&message)
        }
        Err((status, title, message)) => error_page(status, title, &message),
    }
}

type Refusal = (StatusCode, &'static str, String);

/// Runs the queries and renders the page, or says why not.
async fn render(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    trail: &Arc<AuditTrail>,
    patient_id: &str,
) -> Result<String, Refusal> {
    let page = SheetPage {
        sheet: patient_sheet(state, principal, request_id, trail, patient_id, Utc::now()).await?,
    };
    page.render()
        .map_err(|e| internal(&format!("the emergency sheet did not render: {e}")))
}

/// Runs one GraphQL query as the caller, recording into `trail`.
async fn run(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    trail: &Arc<AuditTrail>,
    query: &str,
    variables: Value,
) -> Value {
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables))
        .data(trail.clone())
        .data(RequestContext {
            principal: principal.clone(),
            request_id: request_id.to_string(),
        });
    to_json(state.schema.execute(request).await)
}

/// One patient's sheet as the caller may read it, printed at `printed_at`
/// — or why not: the single page and the bulk print ([`bulk`]) take the
/// same steps, so the policy decides both alike and records both alike.
async fn patient_sheet(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    trail: &Arc<AuditTrail>,
    patient_id: &str,
    printed_at: DateTime<Utc>,
) -> Result<SheetView, Refusal> {
    let variables = || json!({ "id": patient_id });
    let access = run(
        state,
        principal,
        request_id,
        trail,
        ACCESS_QUERY,
        variables(),
    )
    .await;
    refuse_on_errors(&access)?;
    let Some(grant) = access["data"]["patient"]["access"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|g| g["category"] == DataCategory::EmergencyInformation.as_str())
        })
    else {
        return Err(internal("the access list has no EMERGENCY_INFORMATION"));
    };
    if grant["read"] != true {
        let reason = grant["explanation"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Ok(id) = uuid::Uuid::try_parse(patient_id) {
            trail.denied(
                Some(id),
                &[DataCategory::EmergencyInformation],
                format!("emergency sheet refused: {reason}"),
            );
        }
        return Err((
            StatusCode::FORBIDDEN,
            "閲覧権限がありません",
            format!("you may not read this patient's emergency information: {reason}"),
        ));
    }

    let body = run(
        state,
        principal,
        request_id,
        trail,
        SHEET_QUERY,
        variables(),
    )
    .await;
    refuse_on_errors(&body)?;
    Ok(sheet::Response::new(&body).sheet(printed_at))
}

fn to_json(response: async_graphql::Response) -> Value {
    serde_json::to_value(&response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a GraphQL response did not serialise");
        json!({ "errors": [{ "extensions": { "code": "INTERNAL" } }] })
    })
}

fn internal(cause: &str) -> Refusal {
    tracing::error!(cause, "emergency sheet failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "内部エラー",
        "internal error: the hub could not complete the request; it has been logged".into(),
    )
}

/// Any error but a withheld field ends with an error page; the status says
/// which.
fn refuse_on_errors(body: &Value) -> Result<(), Refusal> {
    let Some(errors) = body["errors"].as_array() else {
        return Ok(());
    };
    for e in errors {
        let code = e["extensions"]["code"].as_str().unwrap_or("INTERNAL");
        let message = e["message"].as_str().unwrap_or_default().to_string();
        match code {
            "FORBIDDEN_FIELD" => continue,
            "NOT_FOUND" => {
                return Err((
                    StatusCode::NOT_FOUND,
                    "患者が見つかりません",
                    "patient not found (or not one you may see)".into(),
                ));
            }
            "BAD_USER_INPUT" => {
                return Err((StatusCode::BAD_REQUEST, "不正な指定です", message));
            }
            "FORBIDDEN" => return Err((StatusCode::FORBIDDEN, "閲覧権限がありません", message)),
            "UNAUTHENTICATED" => {
                return Err((StatusCode::UNAUTHORIZED, "ログインが必要です", message));
            }
            renkei_schema::error::DATABASE_UNAVAILABLE => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "一時的に利用できません",
                    message,
                ));
            }
            _ => return Err(internal(&message)),
        }
    }
    Ok(())
}

/// The sheet's error pages are the site's ([`crate::pages`]), with the
/// sheet's own first line.
fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    crate::pages::error_page(
        status,
        title,
        &format!(
            "救急医療情報を表示できません / The emergency information cannot be shown. {message}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_errors_refuse_the_page_with_their_status() {
        let refused = |code: &str| {
            refuse_on_errors(
                &json!({ "errors": [{ "message": "m", "extensions": { "code": code } }] }),
            )
            .err()
            .map(|r| r.0)
        };
        assert_eq!(refused("NOT_FOUND"), Some(StatusCode::NOT_FOUND));
        assert_eq!(refused("BAD_USER_INPUT"), Some(StatusCode::BAD_REQUEST));
        assert_eq!(refused("FORBIDDEN"), Some(StatusCode::FORBIDDEN));
        assert_eq!(refused("INTERNAL"), Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(
            refused("DATABASE_UNAVAILABLE"),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(refused("FORBIDDEN_FIELD"), None);
    }
}
