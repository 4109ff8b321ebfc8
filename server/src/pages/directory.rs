//! `GET /directory`: the public resource directory (医療・介護資源マップ) —
//! no token, only what organisations marked public, from the GraphQL field
//! `publicDirectory` run without a caller: the page cannot reach anything
//! the public API does not answer.
//!
//! `GET /vacancies`: the vacancy board (空床・空き状況) for members of the
//! network (a bearer token, as for the emergency sheet).

use askama::Template;
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header::HeaderValue},
    response::Response,
};
use renkei_schema::domain::{BedType, Capability, OrganizationKind, Weekday};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use super::{Caching, labels};
use crate::http::AppState;

const PUBLIC_QUERY: &str = r#"query($f: PublicDirectoryFilterInput, $after: String, $m: String) {
  publicCommunityResources(municipality: $m) {
    name resourceType municipality area schedule contact description
  }
  publicDirectory(filter: $f, first: 20, after: $after) {
    edges { node {
      name nameKana kind address municipality phone fax capabilities
      visitingAreas visitingRadiusKm languages homeDeathsLastYear contactHours
      avoidCalling { days from to note } note confirmedAt distanceKm
      vacancies { bedType available capacity reportedAt stale }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

/// The search form's fields, as typed.
#[derive(Deserialize, Default, Clone)]
pub struct DirectoryParams {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    capability: String,
    #[serde(default)]
    municipality: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    lat: String,
    #[serde(default)]
    lon: String,
    #[serde(default)]
    radius: String,
    #[serde(default)]
    after: String,
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct VacancyView {
    pub bed_type: &'static str,
    pub text: String,
    pub reported: String,
    pub stale: bool,
    pub note: String,
}

pub struct EntryView {
    pub name: String,
    pub name_kana: String,
    pub kind: &'static str,
    pub address: String,
    pub phone: String,
    pub fax: String,
    pub capabilities: Vec<&'static str>,
    pub visiting: String,
    pub languages: String,
    pub home_deaths: Option<i64>,
    pub contact_hours: String,
    pub avoid: Vec<String>,
    pub note: String,
    pub confirmed: String,
    pub distance: Option<String>,
    pub vacancies: Vec<VacancyView>,
}

pub struct ResourceView {
    pub name: String,
    pub kind: &'static str,
    pub municipality: String,
    pub area: String,
    pub schedule: String,
    pub contact: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "directory.html")]
pub struct DirectoryPage {
    pub resources: Vec<ResourceView>,
    pub form: DirectoryParams,
    pub kinds: Vec<Choice>,
    pub capabilities: Vec<Choice>,
    pub entries: Vec<EntryView>,
    pub next: Option<String>,
    pub error: Option<String>,
}

/// The filter the form describes, or what is wrong with it.
fn filter(p: &DirectoryParams) -> Result<Value, String> {
    let mut f = serde_json::Map::new();
    if !p.kind.is_empty() {
        let k =
            OrganizationKind::parse(&p.kind).ok_or("種別を選び直してください / unknown kind")?;
        f.insert("kinds".into(), json!([k.as_str()]));
    }
    if !p.capability.is_empty() {
        let c = Capability::parse(&p.capability)
            .ok_or("機能を選び直してください / unknown function")?;
        f.insert("capabilities".into(), json!([c.as_str()]));
    }
    if !p.municipality.trim().is_empty() {
        f.insert("municipality".into(), json!(p.municipality.trim()));
    }
    if !p.name.trim().is_empty() {
        f.insert("name".into(), json!(p.name.trim()));
    }
    let (lat, lon, radius) = (p.lat.trim(), p.lon.trim(), p.radius.trim());
    if !(lat.is_empty() && lon.is_empty()) {
        let number = |s: &str, what: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{what}は数値で入力してください / {what} must be a number"))
        };
        let radius = if radius.is_empty() { "5" } else { radius };
        f.insert(
            "near".into(),
            json!({
                "latitude": number(lat, "緯度")?,
                "longitude": number(lon, "経度")?,
                "radiusKm": number(radius, "半径")?,
            }),
        );
    }
    Ok(Value::Object(f))
}

fn choices<T: Copy + PartialEq>(
    all: &[T],
    value: impl Fn(T) -> &'static str,
    label: impl Fn(T) -> &'static str,
    selected: &str,
) -> Vec<Choice> {
    all.iter()
        .map(|&t| Choice {
            value: value(t),
            label: label(t),
            selected: value(t) == selected,
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn day(v: &Value) -> String {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&crate::print::jst())
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
}

fn time(v: &Value) -> String {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            t.with_timezone(&crate::print::jst())
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

pub fn vacancy_view(v: &Value) -> VacancyView {
    let bed = v["bedType"]
        .as_str()
        .and_then(BedType::parse)
        .map(labels::bed_type)
        .unwrap_or("その他");
    let count = match v["capacity"].as_i64() {
        Some(c) => format!("空き {} / {}", text(&v["available"]), c),
        None => format!("空き {}", text(&v["available"])),
    };
    VacancyView {
        bed_type: bed,
        text: count,
        reported: time(&v["reportedAt"]),
        stale: v["stale"] == true,
        note: text(&v["note"]),
    }
}

fn entry(n: &Value) -> EntryView {
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join("、"))
            .unwrap_or_default()
    };
    let mut visiting = list(&n["visitingAreas"]);
    if let Some(r) = n["visitingRadiusKm"].as_f64() {
        if !visiting.is_empty() {
            visiting.push('、');
        }
        visiting.push_str(&format!("所在地から{}km以内", super::chart::number(r)));
    }
    EntryView {
        name: text(&n["name"]),
        name_kana: text(&n["nameKana"]),
        kind: n["kind"]
            .as_str()
            .and_then(OrganizationKind::parse)
            .map(labels::kind)
            .unwrap_or(""),
        address: text(&n["address"]),
        phone: text(&n["phone"]),
        fax: text(&n["fax"]),
        capabilities: n["capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().and_then(Capability::parse))
            .map(labels::capability)
            .collect(),
        visiting,
        languages: list(&n["languages"]),
        home_deaths: n["homeDeathsLastYear"].as_i64(),
        contact_hours: text(&n["contactHours"]),
        avoid: n["avoidCalling"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let days: Vec<&str> = a["days"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str().and_then(Weekday::parse))
                    .map(labels::weekday)
                    .collect();
                let note = a["note"]
                    .as_str()
                    .map(|n| format!("（{n}）"))
                    .unwrap_or_default();
                format!(
                    "{} {}〜{}{note}",
                    days.join("・"),
                    text(&a["from"]),
                    text(&a["to"])
                )
            })
            .collect(),
        note: text(&n["note"]),
        confirmed: day(&n["confirmedAt"]),
        distance: n["distanceKm"]
            .as_f64()
            .map(|d| format!("{} km", super::chart::number(d))),
        vacancies: n["vacancies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(vacancy_view)
            .collect(),
    }
}

/// The URL of the next page: the same search, after `cursor`.
fn next_url(p: &DirectoryParams, cursor: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("kind", &p.kind),
        ("capability", &p.capability),
        ("municipality", &p.municipality),
        ("name", &p.name),
        ("lat", &p.lat),
        ("lon", &p.lon),
        ("radius", &p.radius),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.append_pair("after", cursor);
    format!("/directory?{}", q.finish())
}

/// `GET /directory`.
pub async fn public_directory(
    State(state): State<AppState>,
    Query(params): Query<DirectoryParams>,
) -> Response {
    if let Err(limited) = state.rate_limits.check_public().await {
        let mut page = super::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "リクエストが多すぎます / Too many requests",
            &limited.message(),
        );
        page.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(limited.retry_after_seconds()),
        );
        return page;
    }
    let mut page = DirectoryPage {
        kinds: choices(
            OrganizationKind::ALL,
            OrganizationKind::as_str,
            labels::kind,
            &params.kind,
        ),
        capabilities: choices(
            Capability::ALL,
            Capability::as_str,
            labels::capability,
            &params.capability,
        ),
        form: params.clone(),
        entries: Vec::new(),
        resources: Vec::new(),
        next: None,
        error: None,
    };
    let f = match filter(&params) {
        Ok(f) => f,
        Err(message) => {
            page.error = Some(message);
            return super::render(StatusCode::BAD_REQUEST, &page, Caching::Public);
        }
    };
    let after = (!params.after.is_empty()).then(|| params.after.clone());
    let body = match super::query(
        &state,
        None,
        "",
        PUBLIC_QUERY,
        json!({ "f": f, "after": after, "m": f.get("municipality") }),
    )
    .await
    {
        Ok(body) => body,
        Err(refused) if refused.status() == StatusCode::BAD_REQUEST => {
            // The filter's own checks (above) name their field; what the
            // query refuses besides is one of these.
            page.error = Some(
                "検索条件を確認してください（名称・市区町村は見える文字の短い語で、緯度・経度・半径は範囲内の数値で） / check the search: the name and the municipality as short visible text, latitude, longitude and radius as numbers in range"
                    .into(),
            );
            return super::render(StatusCode::BAD_REQUEST, &page, Caching::Public);
        }
        Err(refused) => return refused,
    };
    let found = &body["data"]["publicDirectory"];
    page.entries = found["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| entry(&e["node"]))
        .collect();
    // The first page only: the community resources are one short list.
    if params.after.is_empty() {
        page.resources = body["data"]["publicCommunityResources"]
            .as_array()
            .into_iter()
            .flatten()
            .take(50)
            .map(|r| ResourceView {
                name: text(&r["name"]),
                kind: r["resourceType"]
                    .as_str()
                    .and_then(renkei_schema::domain::CommunityResourceType::parse)
                    .map(labels::resource_type)
                    .unwrap_or("その他"),
                municipality: text(&r["municipality"]),
                area: text(&r["area"]),
                schedule: text(&r["schedule"]),
                contact: text(&r["contact"]),
                description: text(&r["description"]),
            })
            .collect();
    }
    if found["pageInfo"]["hasNextPage"] == true {
        page.next = found["pageInfo"]["endCursor"]
            .as_str()
            .map(|c| next_url(&params, c));
    }
    super::render(StatusCode::OK, &page, Caching::Public)
}

const BOARD_QUERY: &str = r#"query($m: String, $b: [BedType!]) {
  vacancyBoard(municipality: $m, bedTypes: $b) {
    organization { name kind municipality phone }
    vacancies { bedType available capacity reportedAt stale note }
  }
}"#;

#[derive(Deserialize, Default, Clone)]
pub struct BoardParams {
    #[serde(default)]
    municipality: String,
    #[serde(default)]
    bed_type: String,
}

pub struct BoardRow {
    pub name: String,
    pub kind: &'static str,
    pub municipality: String,
    pub phone: String,
    pub vacancies: Vec<VacancyView>,
}

#[derive(Template)]
#[template(path = "vacancies.html")]
pub struct VacancyPage {
    pub form: BoardParams,
    pub bed_types: Vec<Choice>,
    pub rows: Vec<BoardRow>,
    pub error: Option<String>,
}

/// `GET /vacancies`.
pub async fn vacancy_board(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<BoardParams>,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let request_id = crate::http::request_id_text(request_id);
    let principal = match super::caller(&state, &headers).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let mut page = VacancyPage {
        bed_types: choices(
            BedType::ALL,
            BedType::as_str,
            labels::bed_type,
            &params.bed_type,
        ),
        form: params.clone(),
        rows: Vec::new(),
        error: None,
    };
    let bed_types: Vec<&str> = if params.bed_type.is_empty() {
        Vec::new()
    } else {
        match BedType::parse(&params.bed_type) {
            Some(b) => vec![b.as_str()],
            None => {
                page.error = Some("病床・居室の種類を選び直してください / unknown bed type".into());
                return super::render(StatusCode::BAD_REQUEST, &page, Caching::Private);
            }
        }
    };
    let municipality = params.municipality.trim();
    let vars = json!({
        "m": (!municipality.is_empty()).then_some(municipality),
        "b": bed_types,
    });
    let body = match super::query(&state, Some(&principal), &request_id, BOARD_QUERY, vars).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    page.rows = body["data"]["vacancyBoard"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| BoardRow {
            name: text(&r["organization"]["name"]),
            kind: r["organization"]["kind"]
                .as_str()
                .and_then(OrganizationKind::parse)
                .map(labels::kind)
                .unwrap_or(""),
            municipality: text(&r["organization"]["municipality"]),
            phone: text(&r["organization"]["phone"]),
            vacancies: r["vacancies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(vacancy_view)
                .collect(),
        })
        .collect();
    super::render(StatusCode::OK, &page, Caching::Private)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_filter_or_a_message() {
        let p = DirectoryParams {
            kind: "CLINIC".into(),
            lat: "43.8".into(),
            lon: "143.9".into(),
            ..Default::default()
        };
        let f = filter(&p).unwrap();
        assert_eq!(f["kinds"], json!(["CLINIC"]));
        assert_eq!(f["near"]["radiusKm"], json!(5.0));
        let bad = DirectoryParams {
            lat: "north".into(),
            lon: "143.9".into(),
            ..Default::default()
        };
        assert!(filter(&bad).unwrap_err().contains("緯度"));
        let bad = DirectoryParams {
            kind: "CASTLE".into(),
            ..Default::default()
        };
        assert!(filter(&bad).is_err());
    }

    #[test]
    fn the_next_page_keeps_the_search() {
        let p = DirectoryParams {
            municipality: "みなみ野市".into(),
            ..Default::default()
        };
        let url = next_url(&p, "abc");
        assert!(
            url.starts_with("/directory?municipality=%E3%81%BF"),
            "{url}"
        );
        assert!(url.ends_with("&after=abc"));
    }
}
