//! `GET /disaster-register.csv`: the disaster register (災害時要配慮者名簿)
//! as a CSV list for 避難行動要支援者 planning — the same GraphQL query as
//! `Query.disasterRegister`, run once as the caller with `complete: true`,
//! so the one policy decides, a register too large for one file is refused
//! before anything is read, and every listed patient is audited before the
//! file is sent.

use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use super::indicators::field;
use crate::http::AppState;

const QUERY: &str = r#"query($m: String, $first: Int) {
  disasterRegister(municipality: $m, first: $first, complete: true) {
    edges { node {
      patientId name nameKana birthDate sex address phone
      dependencies { dependency label sources since }
      careManager { name phone } primaryPhysician { name phone }
    } }
  }
}"#;

/// The most people one file holds (`COMPLETE_MAX` of the query): beyond,
/// the caller narrows by municipality.
const MAX_PEOPLE: i32 = renkei_schema::graphql::disaster::COMPLETE_MAX;

/// `?municipality=…` at most once, nothing else.
fn municipality(raw: Option<&str>) -> Result<Option<String>, String> {
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "municipality" if found.is_none() => found = Some(v.trim().to_string()),
            "municipality" => return Err("give municipality at most once".into()),
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok(found.filter(|m| !m.is_empty()))
}

/// `GET /disaster-register.csv?municipality=…` (municipal staff: their own
/// municipality, the default; a care team's professions: their patients).
pub async fn csv(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let request_id = crate::http::request_id_text(request_id);
    let principal = match super::caller(&state, &headers).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let municipality = match municipality(raw.as_deref()) {
        Ok(m) => m,
        Err(message) => {
            return super::error_page(
                StatusCode::BAD_REQUEST,
                "入力に誤りがあります / Bad input",
                &message,
            );
        }
    };
    let body = match super::query(
        &state,
        Some(&principal),
        &request_id,
        QUERY,
        json!({ "m": municipality, "first": MAX_PEOPLE }),
    )
    .await
    {
        Ok(b) => b,
        Err(page) => return page,
    };
    let mut rows: Vec<Value> = body["data"]["disasterRegister"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["node"].clone())
        .collect();
    rows.sort_by(|a, b| {
        (a["nameKana"].as_str(), a["patientId"].as_str())
            .cmp(&(b["nameKana"].as_str(), b["patientId"].as_str()))
    });
    let mut response = (StatusCode::OK, to_csv(&rows)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"disaster-register.csv\""),
    );
    response
}

/// One line per person, ordered by reading (kana).
pub fn to_csv(rows: &[Value]) -> String {
    let mut out = String::from(
        "patient_id,name,name_kana,birth_date,sex,address,phone,dependencies,sources,care_manager,care_manager_phone,primary_physician,primary_physician_phone\r\n",
    );
    let s = |v: &Value| field(v.as_str().unwrap_or_default());
    for r in rows {
        let deps: Vec<&Value> = r["dependencies"].as_array().into_iter().flatten().collect();
        let labels: Vec<&str> = deps.iter().filter_map(|d| d["label"].as_str()).collect();
        let mut sources: Vec<&str> = deps
            .iter()
            .flat_map(|d| d["sources"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        sources.sort_unstable();
        sources.dedup();
        let line = [
            s(&r["patientId"]),
            s(&r["name"]),
            s(&r["nameKana"]),
            s(&r["birthDate"]),
            s(&r["sex"]),
            s(&r["address"]),
            s(&r["phone"]),
            field(&labels.join("・")),
            field(&sources.join(" ")),
            s(&r["careManager"]["name"]),
            s(&r["careManager"]["phone"]),
            s(&r["primaryPhysician"]["name"]),
            s(&r["primaryPhysician"]["phone"]),
        ];
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}
