//! `GET /disaster-register.csv`: the disaster register (災害時要配慮者名簿)
//! as a CSV list for 避難行動要支援者 planning — the same GraphQL query as
//! `Query.disasterRegister`, run as the caller, so the one policy decides
//! and every listed patient is audited before the file is sent.

use axum::{
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::indicators::field;
use crate::http::AppState;

const QUERY: &str = r#"query($m: String, $after: String) {
  disasterRegister(municipality: $m, first: 500, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      patientId name nameKana birthDate sex address phone
      dependencies { dependency label sources since }
      careManager { name phone } primaryPhysician { name phone }
    } }
  }
}"#;

/// The most pages of 500 one file holds (10,000 people): beyond, the
/// caller narrows by municipality.
const MAX_PAGES: usize = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Params {
    municipality: String,
}

/// `GET /disaster-register.csv?municipality=…` (municipal staff: their own
/// municipality, the default; a care team's professions: their patients).
pub async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let principal = match super::caller(&state, &headers).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let municipality = Some(params.municipality.trim()).filter(|m| !m.is_empty());
    let mut rows: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let body = match super::query(
            &state,
            Some(&principal),
            "",
            QUERY,
            json!({ "m": municipality, "after": after }),
        )
        .await
        {
            Ok(b) => b,
            Err(page) => return page,
        };
        let register = &body["data"]["disasterRegister"];
        rows.extend(
            register["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["node"].clone()),
        );
        if register["pageInfo"]["hasNextPage"] != true {
            after = None;
            break;
        }
        after = register["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    if after.is_some() {
        return super::error_page(
            StatusCode::BAD_REQUEST,
            "件数が多すぎます / Too many",
            "more than 10,000 people: name the municipality (?municipality=…)",
        );
    }
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
