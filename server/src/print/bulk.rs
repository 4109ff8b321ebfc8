//! Bulk printable emergency sheets (救急医療情報の一括印刷):
//! `GET /emergency-sheets`, every sheet of an organisation's patients — or
//! of the patients named with `?patient=` — in one HTML document, printed
//! ahead of a blackout.
//!
//! Each patient's sheet is the single page's ([`super::patient_sheet`],
//! the same queries, the same policy, the same audit entries, the same
//! template `emergency_sheet_body.html`), each on a page of its own, after
//! a cover listing the patients printed (name, birth date), when and by
//! whom. A patient the caller may not read the emergency information of is
//! left out and only counted, never named; one the caller may not know of
//! (`?patient=` of a hidden patient) is left out and counted exactly like
//! one that does not exist.
//!
//! The whole print is one `EXPORT` entry in the audit log naming every
//! patient printed, written — with each patient's own reads and refusals —
//! before the document leaves (no entry, no document).
//!
//! At most [`MAX_SHEETS`] sheets a request: more `?patient=` is refused
//! (400); an organisation with more patients gets the first ones in id
//! order and, on the cover, the `?after=` of the next part.

use std::collections::HashSet;
use std::sync::Arc;

use askama::Template;
use axum::{
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::Utc;
use futures_util::StreamExt;
use renkei_schema::Principal;
use renkei_schema::audit::AuditTrail;
use serde_json::json;
use tower_http::request_id::RequestId;
use uuid::Uuid;

use super::sheet::{SheetView, Shown, printer};
use super::{Refusal, error_page, internal, jst, patient_sheet, refuse_on_errors, run};
use crate::http::AppState;

/// The most sheets one request prints.
pub const MAX_SHEETS: usize = 200;

/// How many patients' sheets are read at once.
const CONCURRENCY: usize = 4;

/// The largest page `careTeamPatients` answers.
const LIST_PAGE: usize = 100;

const ME_QUERY: &str = "{ me { member { name profession } organization { name } } }";

const LIST_QUERY: &str = "query($first: Int!, $after: String) { careTeamPatients(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }";

/// Which patients to print.
#[derive(Debug, PartialEq)]
enum Selection {
    /// Every patient the caller's organisation is on the care team of
    /// today, from `after` (a cursor of a previous part) on.
    Organization { after: Option<String> },
    /// These patients (`?patient=`), in the order named, each once.
    Chosen(Vec<Uuid>),
}

fn bad(message: String) -> Refusal {
    (StatusCode::BAD_REQUEST, "不正な指定です", message)
}

fn selection(raw: Option<&str>) -> Result<Selection, Refusal> {
    let mut chosen = Vec::new();
    let mut seen = HashSet::new();
    let mut after = None;
    let mut nth = 0;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match &*key {
            "patient" => {
                nth += 1;
                let id = Uuid::try_parse(value.trim()).map_err(|_| {
                    bad(format!(
                        "patient: not a renkei id (the patient parameter number {nth})"
                    ))
                })?;
                if seen.insert(id) {
                    chosen.push(id);
                }
                if chosen.len() > MAX_SHEETS {
                    return Err(bad(format!(
                        "at most {MAX_SHEETS} patients a request; print the rest in another"
                    )));
                }
            }
            "after" if after.is_none() && !value.is_empty() => after = Some(value.into_owned()),
            "after" => return Err(bad("after: one cursor, not empty".into())),
            _ => {
                return Err(bad(
                    "unknown parameter: only patient (repeated) or after".into()
                ));
            }
        }
    }
    match (chosen.is_empty(), after) {
        (true, after) => Ok(Selection::Organization { after }),
        (false, None) => Ok(Selection::Chosen(chosen)),
        (false, Some(_)) => Err(bad(
            "after pages the organisation's patients; not with patient".into(),
        )),
    }
}

/// The cover page: what was printed, for whom, and how many were left out.
pub struct Cover {
    pub printed_at: String,
    pub printed_by: String,
    pub printer_organization: String,
    /// The organisation's patients, or the patients named.
    pub chosen: bool,
    /// Patients known to the caller whose emergency information it may not
    /// read.
    pub not_permitted: usize,
    /// Patients named that do not exist or that the caller may not know of.
    pub not_found: usize,
    /// The query string of the next part, when the organisation has more.
    pub next: Option<String>,
}

/// The bulk document: the cover, then each sheet on a page of its own.
#[derive(Template)]
#[template(path = "emergency_sheets.html")]
pub struct SheetsPage {
    pub cover: Cover,
    pub sheets: Vec<SheetView>,
}

/// `GET /emergency-sheets[?patient=ID…][&after=CURSOR]`.
pub async fn emergency_sheets(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    request_id: Option<axum::Extension<RequestId>>,
) -> Response {
    let request_id = crate::http::request_id_text(request_id);
    let principal = match crate::pages::caller(&state, &headers).await {
        Ok(p) => p,
        Err(page) => return page,
    };
    let selection = match selection(raw.as_deref()) {
        Ok(s) => s,
        Err((status, title, message)) => return error_page(status, title, &message),
    };
    let trail = Arc::new(AuditTrail::new());
    let outcome = render(&state, &principal, &request_id, &trail, selection).await;
    super::answer(&state, &principal, &request_id, &trail, outcome).await
}

/// Lists the organisation's patients from `after`: at most [`MAX_SHEETS`],
/// and the cursor of the next part when there are more.
async fn organization_patients(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    trail: &Arc<AuditTrail>,
    after: Option<String>,
) -> Result<(Vec<String>, Option<String>), Refusal> {
    let mut ids = Vec::new();
    let mut cursor = after;
    loop {
        let first = (MAX_SHEETS - ids.len()).min(LIST_PAGE);
        let body = run(
            state,
            principal,
            request_id,
            trail,
            LIST_QUERY,
            json!({ "first": first, "after": cursor }),
        )
        .await;
        refuse_on_errors(&body)?;
        let list = &body["data"]["careTeamPatients"];
        ids.extend(
            list["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["node"]["id"].as_str().map(str::to_owned)),
        );
        cursor = list["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        if list["pageInfo"]["hasNextPage"] != true {
            return Ok((ids, None));
        }
        if cursor.is_none() {
            return Err(internal("careTeamPatients has a next page but no cursor"));
        }
        if ids.len() >= MAX_SHEETS {
            return Ok((ids, cursor));
        }
    }
}

async fn render(
    state: &AppState,
    principal: &Principal,
    request_id: &str,
    trail: &Arc<AuditTrail>,
    selection: Selection,
) -> Result<String, Refusal> {
    let printed_at = Utc::now();
    let me = run(state, principal, request_id, trail, ME_QUERY, json!({})).await;
    refuse_on_errors(&me)?;
    let chosen = matches!(selection, Selection::Chosen(_));
    let (ids, next) = match selection {
        Selection::Organization { after } => {
            organization_patients(state, principal, request_id, trail, after).await?
        }
        Selection::Chosen(ids) => (ids.iter().map(Uuid::to_string).collect(), None),
    };
    let results: Vec<(String, Result<SheetView, Refusal>)> =
        futures_util::stream::iter(ids.into_iter().map(|id| async move {
            let sheet = patient_sheet(state, principal, request_id, trail, &id, printed_at).await;
            (id, sheet)
        }))
        .buffered(CONCURRENCY)
        .collect()
        .await;

    let mut sheets = Vec::new();
    let mut printed = Vec::new();
    let (mut not_permitted, mut not_found) = (0, 0);
    for (id, sheet) in results {
        match sheet {
            Ok(view) => {
                printed.push(
                    Uuid::try_parse(&id).map_err(|_| internal("a listed patient id is no uuid"))?,
                );
                sheets.push(view);
            }
            // Known to the caller, but not its emergency information.
            Err((StatusCode::FORBIDDEN, ..)) => not_permitted += 1,
            // No such patient, or one the caller may not know of: alike.
            Err((StatusCode::NOT_FOUND, ..)) => not_found += 1,
            // Anything else (the database, the hub) ends the whole print.
            Err(refusal) => return Err(refusal),
        }
    }
    let (printed_by, printer_organization) = printer(&me["data"]["me"]);
    let page = SheetsPage {
        cover: Cover {
            printed_at: printed_at
                .with_timezone(&jst())
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            printed_by,
            printer_organization,
            chosen,
            not_permitted,
            not_found,
            next: next.map(|cursor| {
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("after", &cursor)
                    .finish()
            }),
        },
        sheets,
    };
    let html = page
        .render()
        .map_err(|e| internal(&format!("the emergency sheets did not render: {e}")))?;
    // The print is one export naming every patient on it; recorded only
    // once there is a document to hand out.
    if !printed.is_empty() {
        trail.export(
            &printed,
            &format!(
                "emergency sheets printed together (GET /emergency-sheets{}; {} left out)",
                if chosen { ", chosen patients" } else { "" },
                not_permitted + not_found
            ),
        );
    }
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_the_patients_or_pages_the_organisation() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        // A bad id is named by its place among the patient parameters,
        // duplicates counted.
        let refused = selection(Some(&format!("patient={a}&patient={a}&patient=x"))).unwrap_err();
        assert!(refused.2.contains("number 3"), "{}", refused.2);
        assert_eq!(
            selection(None).unwrap(),
            Selection::Organization { after: None }
        );
        assert_eq!(
            selection(Some("after=abc")).unwrap(),
            Selection::Organization {
                after: Some("abc".into())
            }
        );
        assert_eq!(
            selection(Some(&format!("patient={a}&patient={b}&patient={a}"))).unwrap(),
            Selection::Chosen(vec![a, b])
        );
        let refused = |q: &str| selection(Some(q)).err().map(|r| r.0);
        assert_eq!(refused("patient=nope"), Some(StatusCode::BAD_REQUEST));
        assert_eq!(refused("team=1"), Some(StatusCode::BAD_REQUEST));
        assert_eq!(refused("after="), Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            refused(&format!("patient={a}&after=x")),
            Some(StatusCode::BAD_REQUEST)
        );
        let many: Vec<String> = (0..=MAX_SHEETS)
            .map(|_| format!("patient={}", Uuid::now_v7()))
            .collect();
        assert_eq!(refused(&many.join("&")), Some(StatusCode::BAD_REQUEST));
        let enough: Vec<String> = (0..MAX_SHEETS)
            .map(|_| format!("patient={}", Uuid::now_v7()))
            .collect();
        assert!(selection(Some(&enough.join("&"))).is_ok());
    }
}
