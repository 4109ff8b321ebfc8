//! `GET /indicators` (the dashboard: 活用状況 with charts drawn on the server
//! as SVG) and `GET /indicators.csv` (the same numbers as CSV), for the
//! people `indicators` is for — with a bearer token, through the GraphQL
//! query, so the one policy decides and the read is audited.

use askama::Template;
use axum::{
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{Datelike, Months, NaiveDate, Utc};
use renkei_schema::domain::{DataCategory, OrganizationKind, PlaceOfDeath, Profession};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use super::chart::{BarChart, Datum};
use super::{Caching, labels};
use crate::http::AppState;

const QUERY: &str = r#"query($m: String!, $from: Date!, $to: Date!) {
  indicators(municipality: $m, from: $from, to: $to) {
    key title unit total hasTotal cells { label value suppressed }
  }
}"#;

const ME: &str = "{ me { organization { municipality } } }";

#[derive(Deserialize, Default, Clone)]
pub struct Params {
    #[serde(default)]
    municipality: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

pub struct Section {
    pub chart: BarChart,
    pub total: Option<String>,
}

#[derive(Template)]
#[template(path = "indicators.html")]
pub struct DashboardPage {
    pub municipality: String,
    pub from: String,
    pub to: String,
    pub csv: String,
    pub sections: Vec<Section>,
}

/// The period asked for, or the last twelve whole months.
fn period(p: &Params) -> Result<(NaiveDate, NaiveDate), String> {
    let date = |s: &str, what: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{what}は YYYY-MM-DD で入力してください / {what} must be a date"))
    };
    let today = Utc::now().date_naive();
    let this_month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
    let to = if p.to.trim().is_empty() {
        this_month
    } else {
        date(&p.to, "終了日")?
    };
    let from = if p.from.trim().is_empty() {
        to.checked_sub_months(Months::new(12)).unwrap_or(to)
    } else {
        date(&p.from, "開始日")?
    };
    Ok((from, to))
}

/// A cell's label in words.
fn label(key: &str, raw: &str) -> String {
    let named = match key {
        "organizationsByKind" => OrganizationKind::parse(raw).map(labels::kind),
        "readsByProfession" => Profession::parse(raw).map(labels::profession),
        "readsByCategory" => DataCategory::parse(raw).map(|c| c.as_str()),
        "deathsByPlace" => PlaceOfDeath::parse(raw).map(place),
        "dischargeLeadTimes" => Some(match raw {
            "EIGHT_DAYS_OR_MORE" => "8日以上前",
            "FIVE_TO_SEVEN_DAYS" => "5〜7日前",
            "TWO_TO_FOUR_DAYS" => "2〜4日前",
            "DAY_BEFORE" => "前日",
            "SAME_DAY" => "当日",
            "AFTER_DISCHARGE" => "退院後",
            _ => raw,
        }),
        _ => None,
    };
    named.unwrap_or(raw).to_string()
}

fn place(p: PlaceOfDeath) -> &'static str {
    match p.as_str() {
        "HOME" => "自宅",
        "HOSPITAL" => "病院",
        "NURSING_HOME" => "介護施設",
        "CLINIC" => "診療所",
        "SERVICED_HOUSING" => "サービス付き高齢者向け住宅",
        "PRIVATE_NURSING_HOME" => "有料老人ホーム",
        _ => "その他",
    }
}

/// Runs the query for the page or the CSV.
async fn fetch(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    request_id: &str,
) -> Result<(String, NaiveDate, NaiveDate, Value), Response> {
    let principal = super::caller(state, headers).await?;
    let (from, to) = period(params).map_err(|m| {
        super::error_page(
            StatusCode::BAD_REQUEST,
            "入力に誤りがあります / Bad input",
            &m,
        )
    })?;
    let mut municipality = params.municipality.trim().to_string();
    if municipality.is_empty() {
        let me = super::query(state, Some(&principal), request_id, ME, json!({})).await?;
        municipality = me["data"]["me"]["organization"]["municipality"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    if municipality.is_empty() {
        return Err(super::error_page(
            StatusCode::BAD_REQUEST,
            "市町村を指定してください / Name the municipality",
            "add ?municipality=… to the address",
        ));
    }
    let body = super::query(
        state,
        Some(&principal),
        request_id,
        QUERY,
        json!({ "m": municipality, "from": from.to_string(), "to": to.to_string() }),
    )
    .await?;
    Ok((municipality, from, to, body))
}

/// `GET /indicators`.
pub async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let request_id = crate::http::request_id_text(request_id);
    let (municipality, from, to, body) = match fetch(&state, &headers, &params, &request_id).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let sections = body["data"]["indicators"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let key = t["key"].as_str().unwrap_or_default();
            let data = t["cells"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| Datum {
                    label: label(key, c["label"].as_str().unwrap_or_default()),
                    value: c["value"].as_f64(),
                })
                .collect();
            let title = t["title"].as_str().unwrap_or_default();
            let unit = t["unit"].as_str().unwrap_or_default();
            Section {
                chart: BarChart::new(
                    key,
                    title,
                    &format!("{title}（{unit}）。5未満の値は表示しません。"),
                    unit,
                    data,
                ),
                total: match (t["hasTotal"] == true, t["total"].as_i64()) {
                    (true, Some(n)) => Some(format!("合計 {n} {unit}")),
                    (true, None) => Some("合計 非表示（5未満の値を推定できないように）".into()),
                    (false, _) => None,
                },
            }
        })
        .collect();
    let mut csv = url::form_urlencoded::Serializer::new(String::new());
    csv.append_pair("municipality", &municipality)
        .append_pair("from", &from.to_string())
        .append_pair("to", &to.to_string());
    let page = DashboardPage {
        municipality,
        from: from.to_string(),
        to: to.to_string(),
        csv: format!("/indicators.csv?{}", csv.finish()),
        sections,
    };
    super::render(StatusCode::OK, &page, Caching::Private)
}

/// One CSV field, quoted (RFC 4180), and never read as a formula by a
/// spreadsheet: a field whose first character that shows is one a
/// spreadsheet starts a formula with (= + - @, their full-width forms, or a
/// tab or line break before them) is prefixed with an apostrophe.
pub(crate) fn field(s: &str) -> String {
    let first = s.trim_start_matches([' ', '\u{3000}']).chars().next();
    let formula = matches!(
        first,
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n' | '＝' | '＋' | '－' | '＠')
    );
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The indicators as CSV: one line per cell, then its total.
pub fn to_csv(municipality: &str, from: NaiveDate, to: NaiveDate, indicators: &Value) -> String {
    let mut out =
        String::from("municipality,from,to,indicator,title,label,value,unit,suppressed\r\n");
    for t in indicators.as_array().into_iter().flatten() {
        let key = t["key"].as_str().unwrap_or_default();
        let mut line = |label: &str, value: Option<i64>| {
            let row = [
                field(municipality),
                field(&from.to_string()),
                field(&to.to_string()),
                field(key),
                field(t["title"].as_str().unwrap_or_default()),
                field(label),
                value.map(|v| v.to_string()).unwrap_or_default(),
                field(t["unit"].as_str().unwrap_or_default()),
                if value.is_none() { "true" } else { "false" }.to_string(),
            ];
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        };
        for c in t["cells"].as_array().into_iter().flatten() {
            line(c["label"].as_str().unwrap_or_default(), c["value"].as_i64());
        }
        if t["hasTotal"] == true {
            line("TOTAL", t["total"].as_i64());
        }
    }
    out
}

/// `GET /indicators.csv`.
pub async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let request_id = crate::http::request_id_text(request_id);
    let (municipality, from, to, body) = match fetch(&state, &headers, &params, &request_id).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let text = to_csv(&municipality, from, to, &body["data"]["indicators"]);
    let mut response = (StatusCode::OK, text).into_response();
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
        HeaderValue::from_static("attachment; filename=\"indicators.csv\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(field("a\"b"), "\"a\"\"b\"");
        assert_eq!(field("=SUM(A1)"), "\"'=SUM(A1)\"");
        for formula in ["\t=1+1", "\r=1", " =1", "　＝１＋１", "＠SUM(A1)", "－1"] {
            assert!(field(formula).starts_with("\"'"), "{formula}");
        }
        assert_eq!(field("北見市 1-2"), "\"北見市 1-2\"");
        let body = json!([{ "key": "k", "title": "t, \"x\"", "unit": "人", "hasTotal": true, "total": null,
            "cells": [{ "label": "a", "value": 7 }, { "label": "b", "value": null }] }]);
        let d = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        let csv = to_csv("みなみ野市", d, d, &body);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[1],
            "\"みなみ野市\",\"2026-04-01\",\"2026-04-01\",\"k\",\"t, \"\"x\"\"\",\"a\",7,\"人\",false"
        );
        assert!(lines[2].ends_with(",,\"人\",true"));
        assert!(lines[3].contains("\"TOTAL\",,"));
    }

    #[test]
    fn the_period_defaults_to_the_last_twelve_months() {
        let (from, to) = period(&Params::default()).unwrap();
        assert_eq!(to.day(), 1);
        assert_eq!(from.checked_add_months(Months::new(12)), Some(to));
        assert!(
            period(&Params {
                from: "2026/04/01".into(),
                ..Default::default()
            })
            .is_err()
        );
    }
}
