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
//! scripts, every value HTML-escaped ([`esc`]), and a Content-Security-Policy
//! that would stop a script even if one slipped through.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use renkei_schema::audit::AuditTrail;
use renkei_schema::domain::DataCategory;
use renkei_schema::error::ApiError;
use renkei_schema::{Principal, RequestContext};
use serde_json::{Value, json};
use tower_http::request_id::RequestId;

use crate::http::AppState;

/// Japan Standard Time, the region's clock on paper.
fn jst() -> FixedOffset {
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
    let request_id = request_id
        .and_then(|r| r.0.header_value().to_str().ok().map(str::to_owned))
        .unwrap_or_default();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let principal = match state.auth.authenticate(authorization).await {
        Ok(p) => p,
        Err(ApiError::Unauthenticated(message)) => {
            return error_page(StatusCode::UNAUTHORIZED, "ログインが必要です", &message);
        }
        // The credentials may well be good: the database that checks them
        // is down (docs/operations.md, "Faults").
        Err(e @ ApiError::DatabaseUnavailable(_)) => return unavailable_page(&e.message()),
        Err(_) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部エラー",
                "internal error: the hub could not check the credentials; it has been logged",
            );
        }
    };
    // The page is a GraphQL query underneath: it counts against the same
    // rate limits (docs/operations.md, "Limits").
    if let Err(limited) = state.rate_limits.check(&principal).await {
        let mut page = error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "リクエストが多すぎます",
            &limited.message(),
        );
        page.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(limited.retry_after_seconds()),
        );
        state.observe.metrics.rate_limited(
            limited.scope.as_str(),
            crate::observe::metrics::Transport::Http,
        );
        crate::observe::set_outcome(&mut page, "RATE_LIMITED");
        return page;
    }
    let trail = Arc::new(AuditTrail::new());
    let outcome = render(&state, &principal, &request_id, &trail, &patient_id).await;
    // No patient data leaves before its audit entries are committed.
    let entries = trail.drain(&principal, &request_id);
    if let Err(e) = state.audit.append(entries).await {
        tracing::error!(error = ?e, "audit entries could not be written; emergency sheet withheld");
        if matches!(e, ApiError::DatabaseUnavailable(_)) {
            return unavailable_page(
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
        Ok(html) => html_response(StatusCode::OK, html),
        Err((StatusCode::SERVICE_UNAVAILABLE, _, message)) => unavailable_page(&message),
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
    let run = |query: &'static str| {
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(
                json!({ "id": patient_id }),
            ))
            .data(trail.clone())
            .data(RequestContext {
                principal: principal.clone(),
                request_id: request_id.to_string(),
            });
        state.schema.execute(request)
    };

    let access = to_json(run(ACCESS_QUERY).await);
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

    let body = to_json(run(SHEET_QUERY).await);
    refuse_on_errors(&body)?;
    let printed_at = Utc::now();
    Ok(Sheet::new(&body).html(printed_at))
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

// ---------------------------------------------------------------------------
// HTML

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with its line breaks kept.
fn esc_lines(s: &str) -> String {
    esc(s).replace('\n', "<br>")
}

const STYLE: &str = r#"
@page { size: A4; margin: 10mm }
* { box-sizing: border-box }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact }
body { font-family: "Hiragino Kaku Gothic ProN", "Noto Sans CJK JP", "Yu Gothic", Meiryo, sans-serif;
       font-size: 8pt; line-height: 1.2; color: #000; margin: 0 }
@media screen { body { max-width: 190mm; margin: 8mm auto } }
header { border-bottom: 2px solid #000; margin-bottom: 1mm; padding-bottom: 0.5mm }
h1 { font-size: 14pt; margin: 0; display: inline-block; margin-right: 3mm }
h2 { font-size: 8.5pt; margin: 1.5mm 0 0.5mm; padding: 0.2mm 1.5mm; background: #e8e8e8; border-left: 3px solid #000 }
h1 small, h2 small { font-weight: normal; font-size: 7pt; color: #333; margin-left: 1.5mm }
th small { font-weight: normal; font-size: 6.5pt; color: #333; margin-left: 1mm }
.meta { font-size: 7.5pt; margin: 0.3mm 0 }
header .meta:first-of-type { display: inline }
table { width: 100%; border-collapse: collapse }
th, td { border: 1px solid #777; padding: 0.3mm 1.2mm; text-align: left; vertical-align: top }
th { background: #f3f3f3; font-weight: bold; white-space: nowrap }
table.kv th { width: 1% }
tr, section.keep { break-inside: avoid; page-break-inside: avoid }
h2 { break-after: avoid; page-break-after: avoid }
.cols { display: grid; grid-template-columns: 1fr 1fr; column-gap: 3mm; align-items: start }
.cols > section { min-width: 0 }
.tel, .date { white-space: nowrap }
td.n { width: 1%; text-align: right }
ul { margin: 0; padding-left: 5mm }
p { margin: 0.5mm 0 }
.denied { border: 1px dashed #000; padding: 0.4mm 2mm; font-weight: bold }
.none { color: #333 }
.emphasis { font-weight: bold; font-size: 9.5pt }
.flag { border: 1px solid #000; padding: 0 1mm; font-size: 7pt; font-weight: bold; white-space: nowrap }
footer { margin-top: 1.5mm; border-top: 1px solid #000; font-size: 6.5pt; line-height: 1.2 }
"#;
const DENIED: &str = r#"<p class="denied">閲覧権限なし / not permitted</p>"#;

/// What the schema returned, and which fields it withheld.
struct Sheet<'a> {
    data: &'a Value,
    /// Dotted paths of the `FORBIDDEN_FIELD` errors (`patient.name`).
    denied: HashSet<String>,
}

/// A part of the page: withheld, absent, or there.
enum Part<'a> {
    Denied,
    Missing,
    Present(&'a Value),
}

impl<'a> Sheet<'a> {
    fn new(body: &'a Value) -> Self {
        let denied = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["extensions"]["code"] == "FORBIDDEN_FIELD")
            .filter_map(|e| e["path"].as_array())
            .map(|path| {
                path.iter()
                    .map(|p| match p {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect();
        Sheet {
            data: &body["data"],
            denied,
        }
    }

    fn get(&self, path: &str) -> &'a Value {
        path.split('.').fold(self.data, |v, key| &v[key])
    }

    fn part(&self, path: &str) -> Part<'a> {
        if self.denied.contains(path) {
            return Part::Denied;
        }
        match self.get(path) {
            Value::Null => Part::Missing,
            v => Part::Present(v),
        }
    }

    /// A field's text, escaped; the denial note when withheld; `–` when absent.
    fn text(&self, path: &str) -> String {
        match self.part(path) {
            Part::Denied => "閲覧権限なし / not permitted".into(),
            Part::Missing => "–".into(),
            Part::Present(v) => esc(&plain(v)),
        }
    }

    /// A section: heading, then the rendered part, the denial note, or `none`.
    fn section(
        &self,
        out: &mut String,
        heading: (&str, &str),
        path: &str,
        none: &str,
        render: impl FnOnce(&'a Value) -> String,
    ) {
        let _ = write!(
            out,
            "<section><h2>{}<small>{}</small></h2>",
            heading.0, heading.1
        );
        match self.part(path) {
            Part::Denied => out.push_str(DENIED),
            Part::Missing => {
                let _ = write!(out, r#"<p class="none">{none}</p>"#);
            }
            Part::Present(v) => {
                let html = render(v);
                if html.is_empty() {
                    let _ = write!(out, r#"<p class="none">{none}</p>"#);
                } else {
                    out.push_str(&html);
                }
            }
        }
        out.push_str("</section>");
    }

    fn html(&self, printed_at: DateTime<Utc>) -> String {
        let now = printed_at.with_timezone(&jst());
        let mut out = String::with_capacity(16 * 1024);
        let title = match self.part("patient.name") {
            Part::Present(v) => format!("救急医療情報 — {}", esc(&plain(v))),
            _ => "救急医療情報".to_string(),
        };
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{STYLE}</style></head><body>"
        );
        self.header(&mut out, now);
        self.patient(&mut out, now.date_naive());
        // What a crew needs first: whom to call, the wishes, the allergies,
        // what to do and where to go; then the treatment.
        self.contacts(&mut out);
        self.wishes(&mut out);
        self.allergies(&mut out);
        self.plan(&mut out);
        self.treatment(&mut out);
        let _ = write!(
            out,
            "<footer>この用紙には要配慮個人情報が含まれます。取り扱いに注意し、不要になったら適切に廃棄してください。\
             内容は印刷時点のものです。 / This page holds sensitive personal health information and shows \
             what the network held when it was printed; keep it safe and shred it when done.</footer>"
        );
        out.push_str("</body></html>\n");
        out
    }

    fn header(&self, out: &mut String, now: DateTime<FixedOffset>) {
        let me = self.get("me");
        let who = match me["member"]["name"].as_str() {
            Some(name) => format!(
                "{}（{}）",
                esc(name),
                esc(profession(
                    me["member"]["profession"].as_str().unwrap_or_default()
                ))
            ),
            None => "システム / system".to_string(),
        };
        let _ = write!(
            out,
            "<header><h1>救急医療情報<small>Emergency information</small></h1>\
             <p class=\"meta\">印刷日時 / Printed: {} (JST)　印刷者 / Printed by: {}、{}</p>",
            now.format("%Y-%m-%d %H:%M"),
            who,
            esc(me["organization"]["name"].as_str().unwrap_or_default()),
        );
        if let Some(until) = self.get("patient.emergencyAccessUntil").as_str() {
            let until = DateTime::parse_from_rfc3339(until)
                .map(|t| t.with_timezone(&jst()).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|_| until.to_string());
            let _ = write!(
                out,
                "<p class=\"meta\"><span class=\"flag\">救急時閲覧</span> 緊急時アクセスによる表示（{} JST まで） / \
                 Shown under emergency access (until {} JST)</p>",
                esc(&until),
                esc(&until)
            );
        }
        match self.part("patient.emergencyInformation.sheet") {
            Part::Present(sheet) => {
                let registered = sheet["effectiveAt"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&jst()).format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "<p class=\"meta\">救急医療情報の確認日 / Sheet confirmed: {}　登録 / Registered by: {}{}（第{}版 / version {}）</p>",
                    esc(&registered),
                    esc(sheet["sourceOrganization"]["name"].as_str().unwrap_or_default()),
                    sheet["author"]["name"]
                        .as_str()
                        .map(|n| format!(" {}", esc(n)))
                        .unwrap_or_default(),
                    sheet["version"],
                    sheet["version"],
                );
            }
            Part::Missing => out.push_str(
                "<p class=\"meta\"><span class=\"flag\">未登録</span> 救急医療情報（連絡先・急変時の対応）は登録されていません / \
                 No emergency information sheet is registered</p>",
            ),
            Part::Denied => {}
        }
        out.push_str("</header>");
    }

    fn patient(&self, out: &mut String, today: NaiveDate) {
        let birth = match self.part("patient.birthDate") {
            Part::Present(Value::String(d)) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                Ok(date) => format!(
                    "{}年{}月{}日（{}歳）",
                    date.year(),
                    date.month(),
                    date.day(),
                    age(date, today)
                ),
                Err(_) => esc(d),
            },
            _ => self.text("patient.birthDate"),
        };
        let sex = match self.part("patient.sex") {
            Part::Present(Value::String(s)) => esc(sex(s)),
            _ => self.text("patient.sex"),
        };
        // Two rows: who (name, reading, birth date, sex), then where.
        let _ = write!(
            out,
            "<section class=\"keep\"><h2>患者<small>Patient</small></h2><table class=\"kv\">\
             <tr><th>氏名<small>Name</small></th><td class=\"emphasis\">{}</td>\
             <th>フリガナ<small>Reading</small></th><td>{}</td></tr>\
             <tr><th>生年月日<small>Born</small></th><td class=\"date\">{}</td>\
             <th>性別<small>Sex</small></th><td>{}</td></tr>\
             <tr><th>住所<small>Address</small></th><td>{}</td>\
             <th>電話<small>Phone</small></th><td class=\"tel\">{}</td></tr></table></section>",
            self.text("patient.name"),
            self.text("patient.nameKana"),
            birth,
            sex,
            self.text("patient.address"),
            self.text("patient.phone"),
        );
    }

    fn contacts(&self, out: &mut String) {
        let sheet = "patient.emergencyInformation.sheet";
        self.section(
            out,
            ("緊急連絡先・キーパーソン", "Emergency contacts (call in this order) and key person"),
            sheet,
            "登録なし / none registered",
            |s| {
                let contacts = s["data"]["emergencyContacts"].as_array().cloned().unwrap_or_default();
                if contacts.is_empty() {
                    return String::new();
                }
                let mut t = String::from(
                    "<table><tr><th>順</th><th>氏名<small>Name</small></th><th>続柄・役割<small>Relation</small></th>\
                     <th>電話<small>Phone</small></th><th>連絡可能<small>Reachable</small></th></tr>",
                );
                for (i, c) in contacts.iter().enumerate() {
                    let key = if c["keyPerson"] == true {
                        " <span class=\"flag\">キーパーソン</span>"
                    } else {
                        ""
                    };
                    let _ = write!(
                        t,
                        "<tr><td class=\"n\">{}</td><td>{}{key}</td><td>{}</td><td class=\"emphasis tel\">{}</td><td>{}</td></tr>",
                        i + 1,
                        esc(&plain(&c["name"])),
                        esc(&plain(&c["relationship"])),
                        esc(&plain(&c["phone"])),
                        esc(&plain(&c["available"])),
                    );
                }
                t.push_str("</table>");
                t
            },
        );
        self.team(out);
    }

    /// The physician and care manager from the care team (CARE_TEAM, not an
    /// emergency category: an emergency reader sees the sheet's contacts).
    fn team(&self, out: &mut String) {
        out.push_str(
            "<section class=\"keep\"><h2>主治医・ケアマネジャー<small>Primary physician and care manager</small></h2>\
             <table class=\"kv\">",
        );
        for (label, path) in [
            (
                "主治医<small>Primary physician</small>",
                "patient.emergencyInformation.primaryPhysician",
            ),
            (
                "ケアマネジャー<small>Care manager</small>",
                "patient.emergencyInformation.careManager",
            ),
        ] {
            let cell = match self.part(path) {
                Part::Denied => "閲覧権限なし / not permitted".to_string(),
                Part::Missing => "–".to_string(),
                Part::Present(m) => format!(
                    "{}{}　<span class=\"tel\">{}</span>",
                    esc(&plain(&m["organization"]["name"])),
                    m["member"]["name"]
                        .as_str()
                        .map(|n| format!(" {}", esc(n)))
                        .unwrap_or_default(),
                    esc(&plain(&m["organization"]["phone"])),
                ),
            };
            let _ = write!(out, "<tr><th>{label}</th><td>{cell}</td></tr>");
        }
        out.push_str("</table></section>");
    }

    fn wishes(&self, out: &mut String) {
        self.section(
            out,
            ("心肺蘇生・延命治療の希望", "Wishes on CPR and life-prolonging treatment (ACP)"),
            "patient.emergencyInformation.advanceCarePlan",
            "記録なし / none recorded",
            |acp| {
                let d = &acp["data"];
                let proxy = match (d["proxyName"].as_str(), d["proxyRelationship"].as_str()) {
                    (Some(name), Some(relation)) => format!("{name}（{relation}）"),
                    (Some(one), None) | (None, Some(one)) => one.to_string(),
                    (None, None) => String::new(),
                };
                // Two wishes a row: the page must fit one sheet of A4.
                let mut t = String::from("<table class=\"kv\">");
                let _ = write!(
                    t,
                    "<tr><th>心肺蘇生<small>CPR</small></th><td class=\"emphasis\">{}</td>\
                     <th>延命治療<small>Life-prolonging</small></th><td class=\"emphasis\">{}</td></tr>\
                     <tr><th>経管栄養<small>Tube feeding</small></th><td>{}</td>\
                     <th>入院<small>Hospitalisation</small></th><td>{}</td></tr>\
                     <tr><th>最期を迎えたい場所<small>Place of death</small></th><td>{}</td>\
                     <th>代理意思決定者<small>Proxy</small></th><td>{}</td></tr>",
                    esc(wish(d["cpr"].as_str())),
                    esc(wish(d["lifeProlongingTreatment"].as_str())),
                    esc(wish(d["tubeFeeding"].as_str())),
                    esc(wish(d["hospitalization"].as_str())),
                    esc(place(d["placeOfDeath"].as_str())),
                    esc(&proxy),
                );
                if let Some(note) = d["note"].as_str() {
                    let _ = write!(
                        t,
                        "<tr><th>備考<small>Note</small></th><td colspan=\"3\">{}</td></tr>",
                        esc_lines(note)
                    );
                }
                let _ = write!(
                    t,
                    "<tr><th>確認日<small>Confirmed on</small></th><td class=\"date\">{}</td>\
                     <th>記録<small>Recorded by</small></th><td>{}</td></tr></table>",
                    esc(&plain(&d["confirmedOn"])),
                    esc(&plain(&acp["sourceOrganization"]["name"]))
                );
                t
            },
        );
    }

    /// Allergies beside what the receiving physician must not give and the
    /// infections to isolate for (薬剤禁忌・感染症: opened by emergency access
    /// to physicians and nurses, not to a crew — `docs/access-policy.md`).
    fn allergies(&self, out: &mut String) {
        let base = "patient.emergencyInformation";
        out.push_str("<div class=\"cols\">");
        self.section(
            out,
            ("アレルギー", "Allergies"),
            &format!("{base}.allergies"),
            "記録なし / none recorded",
            |list| {
                rows(
                    list,
                    "<tr><th>物質<small>Substance</small></th><th>種類<small>Type</small></th><th>症状<small>Reaction</small></th><th>重症度<small>Severity</small></th></tr>",
                    |r| {
                        let d = &r["data"];
                        format!(
                            "<tr><td class=\"emphasis\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(&plain(&d["substance"])),
                            esc(allergy_type(d["allergyType"].as_str())),
                            esc(&plain(&d["reaction"])),
                            esc(severity(d["severity"].as_str())),
                        )
                    },
                )
            },
        );
        out.push_str("<div>");
        self.section(
            out,
            ("薬剤禁忌", "Drug contraindications"),
            &format!("{base}.drugContraindications"),
            "記録なし / none recorded",
            |list| {
                rows(
                    list,
                    "<tr><th>薬剤<small>Drug</small></th><th>理由<small>Reason</small></th></tr>",
                    |r| {
                        let d = &r["data"];
                        format!(
                            "<tr><td class=\"emphasis\">{}</td><td>{}</td></tr>",
                            esc(&plain(&d["drug"])),
                            esc_lines(&plain(&d["reason"])),
                        )
                    },
                )
            },
        );
        self.section(
            out,
            ("感染症", "Infections"),
            &format!("{base}.infections"),
            "記録なし / none recorded",
            |list| {
                rows(
                    list,
                    "<tr><th>病原体<small>Pathogen</small></th><th>結果<small>Result</small></th><th>検査日<small>Tested</small></th></tr>",
                    |r| {
                        let d = &r["data"];
                        format!(
                            "<tr><td>{}</td><td>{}</td><td class=\"date\">{}</td></tr>",
                            esc(&pathogen(d["pathogen"].as_str(), d["otherName"].as_str())),
                            esc(infection_result(d["result"].as_str())),
                            esc(&plain(&d["testedOn"])),
                        )
                    },
                )
            },
        );
        out.push_str("</div></div>");
    }

    fn treatment(&self, out: &mut String) {
        let base = "patient.emergencyInformation";
        // Diagnoses beside medications: short rows, half the width each.
        out.push_str("<div class=\"cols\">");
        self.section(
            out,
            ("病名", "Diagnoses"),
            &format!("{base}.activeConditions"),
            "記録なし / none recorded",
            |list| {
                let mut html = rows(
                    list,
                    "<tr><th>病名<small>Condition</small></th><th>ICD-10</th><th>発症<small>Onset</small></th></tr>",
                    |r| {
                        let d = &r["data"];
                        let flag = if r["undisclosed"] == true {
                            " <span class=\"flag\">未告知 / not told</span>"
                        } else {
                            ""
                        };
                        format!(
                            "<tr><td>{}{flag}</td><td>{}</td><td class=\"date\">{}</td></tr>",
                            esc(&plain(&d["name"])),
                            esc(&plain(&d["icd10"])),
                            esc(&plain(&d["onset"])),
                        )
                    },
                );
                html.push_str(&self.reported(
                    &format!("{base}.reportedDiagnoses"),
                    "手書き登録の病名 / Diagnoses noted on the sheet",
                ));
                html
            },
        );
        self.section(
            out,
            ("服薬", "Current medications"),
            &format!("{base}.currentPrescriptions"),
            "記録なし / none recorded",
            |list| {
                let mut html = rows(
                    list,
                    "<tr><th>薬剤<small>Drug</small></th><th>用量<small>Dose</small></th><th>用法<small>Frequency</small></th><th>経路</th><th>開始<small>Since</small></th></tr>",
                    |r| {
                        let d = &r["data"];
                        format!(
                            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"date\">{}</td></tr>",
                            esc(&plain(&d["drug"])),
                            esc(&plain(&d["dose"])),
                            esc(&plain(&d["frequency"])),
                            esc(route(d["route"].as_str())),
                            esc(&plain(&d["startDate"])),
                        )
                    },
                );
                html.push_str(&self.reported(&format!("{base}.reportedMedications"), "手書き登録の服薬 / Medications noted on the sheet"));
                html
            },
        );
        out.push_str("</div>");
        self.section(
            out,
            ("最近の調剤（薬剤ごとの最新）", "Latest dispensing of each drug"),
            &format!("{base}.latestDispensing"),
            "記録なし / none recorded",
            |list| {
                let head = "<tr><th>薬剤<small>Drug</small></th><th>数量</th><th>日数</th><th>調剤日・薬局<small>Dispensed</small></th></tr>";
                let row = |r: &Value| {
                    let d = &r["data"];
                    format!(
                        "<tr><td>{}</td><td class=\"date\">{} {}</td><td class=\"date\">{}日</td><td><span class=\"date\">{}</span> {}</td></tr>",
                        esc(&plain(&d["drug"])),
                        esc(&number(&d["quantity"])),
                        esc(&plain(&d["unit"])),
                        esc(&plain(&d["days"])),
                        esc(&day_of(&r["effectiveAt"])),
                        esc(&plain(&r["sourceOrganization"]["name"])),
                    )
                };
                rows(list, head, row)
            },
        );
    }

    /// A hand-typed list of the sheet, under its own gate.
    fn reported(&self, path: &str, label: &str) -> String {
        match self.part(path) {
            Part::Denied => format!("<p>{label}: </p>{DENIED}"),
            Part::Present(Value::Array(items)) if !items.is_empty() => {
                let mut t = format!("<p>{label}:</p><ul>");
                for i in items {
                    let _ = write!(t, "<li>{}</li>", esc(&plain(i)));
                }
                t.push_str("</ul>");
                t
            }
            _ => String::new(),
        }
    }

    fn plan(&self, out: &mut String) {
        let sheet = "patient.emergencyInformation.sheet";
        self.section(
            out,
            ("想定される急変と対応", "Expected emergencies and what to do"),
            sheet,
            "登録なし / none registered",
            |s| {
                rows(
                    &s["data"]["expectedEmergencies"],
                    "<tr><th>想定される状態<small>Situation</small></th><th>対応<small>What to do</small></th><th>最初の連絡先<small>Call first</small></th></tr>",
                    |e| {
                        format!(
                            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(&plain(&e["situation"])),
                            esc_lines(&plain(&e["response"])),
                            esc(&plain(&e["callFirst"])),
                        )
                    },
                )
            },
        );
        self.section(
            out,
            (
                "搬送先・かかりつけ病院",
                "Designated hospital, back-up bed, usual hospital",
            ),
            sheet,
            "登録なし / none registered",
            |s| {
                let d = &s["data"];
                let mut t = String::from("<table class=\"kv\">");
                let facility = |f: &Value| {
                    if f.is_null() {
                        return "–".to_string();
                    }
                    let mut cell = format!(
                        "{}　<span class=\"tel\">{}</span>",
                        esc(&plain(&f["name"])),
                        esc(&plain(&f["phone"]))
                    );
                    if let Some(note) = f["note"].as_str() {
                        let _ = write!(cell, "<br>{}", esc_lines(note));
                    }
                    cell
                };
                let backup = match d["designatedHospital"]["backupBed"].as_bool() {
                    Some(true) => "あり / yes",
                    Some(false) => "なし / no",
                    None => "–",
                };
                let _ = write!(
                    t,
                    "<tr><th>救急時の搬送先<small>Designated hospital</small></th><td>{}</td>\
                     <th>後方支援病床<small>Back-up bed</small></th><td class=\"tel\">{backup}</td></tr>\
                     <tr><th>かかりつけ病院<small>Usual hospital</small></th><td colspan=\"3\">{}</td></tr>",
                    facility(&d["designatedHospital"]),
                    facility(&d["usualHospital"]),
                );
                if let Some(note) = d["note"].as_str() {
                    let _ = write!(
                        t,
                        "<tr><th>備考<small>Notes</small></th><td colspan=\"3\">{}</td></tr>",
                        esc_lines(note)
                    );
                }
                t.push_str("</table>");
                t
            },
        );
    }
}

/// A table of the list's items, or nothing when the list is empty.
fn rows(list: &Value, head: &str, row: impl Fn(&Value) -> String) -> String {
    let Some(items) = list.as_array().filter(|a| !a.is_empty()) else {
        return String::new();
    };
    let mut t = format!("<table>{head}");
    for i in items {
        t.push_str(&row(i));
    }
    t.push_str("</table>");
    t
}

/// A JSON scalar as text (not yet escaped); `""` for null.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A quantity without a needless `.0` (「112 錠」, 「1.5 g」).
fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => plain(v),
    }
}

fn day_of(v: &Value) -> String {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&jst()).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn age(born: NaiveDate, today: NaiveDate) -> i32 {
    let mut years = today.year() - born.year();
    if (today.month(), today.day()) < (born.month(), born.day()) {
        years -= 1;
    }
    years
}

fn wish(v: Option<&str>) -> &str {
    match v {
        Some("WANTS") => "希望する / wants",
        Some("DECLINES") => "希望しない / declines",
        Some("UNDECIDED") => "未定 / undecided",
        Some(other) => other,
        None => "–",
    }
}

fn place(v: Option<&str>) -> &str {
    match v {
        Some("HOME") => "自宅 / home",
        Some("HOSPITAL") => "病院 / hospital",
        Some("NURSING_HOME") => "施設 / nursing home",
        Some("UNDECIDED") => "未定 / undecided",
        Some(other) => other,
        None => "–",
    }
}

fn severity(v: Option<&str>) -> &str {
    match v {
        Some("MILD") => "軽度 / mild",
        Some("MODERATE") => "中等度 / moderate",
        Some("SEVERE") => "重度 / severe",
        Some("UNKNOWN") => "不明 / unknown",
        Some(other) => other,
        None => "–",
    }
}

fn pathogen(v: Option<&str>, other: Option<&str>) -> String {
    match v {
        Some("HBS_ANTIGEN") => "HBs抗原".into(),
        Some("HCV_ANTIBODY") => "HCV抗体".into(),
        Some("HIV") => "HIV".into(),
        Some("SYPHILIS") => "梅毒 / syphilis".into(),
        Some("MRSA") => "MRSA".into(),
        Some("SCABIES") => "疥癬 / scabies".into(),
        Some("NOROVIRUS") => "ノロウイルス / norovirus".into(),
        Some("INFLUENZA") => "インフルエンザ / influenza".into(),
        Some("COVID_19") => "COVID-19".into(),
        Some("TUBERCULOSIS") => "結核 / tuberculosis".into(),
        Some("OTHER") => other.unwrap_or("その他 / other").to_string(),
        Some(other) => other.to_string(),
        None => "–".into(),
    }
}

fn infection_result(v: Option<&str>) -> &str {
    match v {
        Some("POSITIVE") => "陽性 / positive",
        Some("NEGATIVE") => "陰性 / negative",
        Some("UNKNOWN") => "不明 / unknown",
        Some(other) => other,
        None => "–",
    }
}

fn allergy_type(v: Option<&str>) -> &str {
    match v {
        Some("DRUG") => "薬剤 / drug",
        Some("FOOD") => "食物 / food",
        Some("OTHER") => "その他 / other",
        Some(other) => other,
        None => "–",
    }
}

fn route(v: Option<&str>) -> &str {
    match v {
        Some("ORAL") => "内服",
        Some("TOPICAL") => "外用",
        Some("INJECTION") => "注射",
        Some("INHALATION") => "吸入",
        Some("OTHER") => "その他",
        Some(other) => other,
        None => "–",
    }
}

fn sex(v: &str) -> &str {
    match v {
        "MALE" => "男 / male",
        "FEMALE" => "女 / female",
        "OTHER" => "その他 / other",
        "UNKNOWN" => "不明 / unknown",
        other => other,
    }
}

fn profession(v: &str) -> &str {
    match v {
        "PHYSICIAN" => "医師",
        "DENTIST" => "歯科医師",
        "DENTAL_HYGIENIST" => "歯科衛生士",
        "PHARMACIST" => "薬剤師",
        "NURSE" => "看護師",
        "PUBLIC_HEALTH_NURSE" => "保健師",
        "PHYSICAL_THERAPIST" => "理学療法士",
        "OCCUPATIONAL_THERAPIST" => "作業療法士",
        "SPEECH_THERAPIST" => "言語聴覚士",
        "THERAPIST" => "療法士",
        "DIETITIAN" => "管理栄養士",
        "CARE_MANAGER" => "介護支援専門員",
        "CARE_WORKER" => "介護職",
        "MEDICAL_SOCIAL_WORKER" => "医療ソーシャルワーカー",
        "SOCIAL_WORKER" => "社会福祉士",
        "EMS_CREW" => "救急隊員",
        "MUNICIPAL_STAFF" => "自治体職員",
        "NETWORK_ADMINISTRATOR" => "ネットワーク管理者",
        other => other,
    }
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Patient data: never kept by a browser or a proxy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No script runs on this page even if one were injected; only the inline
    // style is allowed.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// An error page: the status, a Japanese title, the hub's message; never data.
/// The page while the database is down: 503 with `Retry-After`, as the
/// GraphQL endpoint answers (crate::outage), so a browser or a script may
/// simply try again.
fn unavailable_page(message: &str) -> Response {
    let mut page = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "一時的に利用できません",
        message,
    );
    page.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::outage::RETRY_AFTER_SECONDS),
    );
    crate::observe::set_outcome(&mut page, renkei_schema::error::DATABASE_UNAVAILABLE);
    page
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body {{ font-family: sans-serif; margin: 12mm }}</style></head><body>\
         <h1>{t}</h1><p>救急医療情報を表示できません / The emergency information cannot be shown.</p>\
         <p>{m}</p><p>HTTP {s}</p></body></html>\n",
        t = esc(title),
        m = esc(message),
        s = status.as_u16(),
    );
    html_response(status, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert('x') & "y"</script>"#),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(esc("ペニシリン系"), "ペニシリン系");
        assert_eq!(
            esc("&amp;"),
            "&amp;amp;",
            "escaping is not idempotent by design"
        );
        assert_eq!(esc_lines("a<b\nc"), "a&lt;b<br>c");
    }

    #[test]
    fn withheld_parts_are_named_by_their_paths() {
        let body = json!({
            "data": { "patient": { "name": null, "emergencyInformation": { "allergies": [] } } },
            "errors": [{ "message": "no", "path": ["patient", "name"], "extensions": { "code": "FORBIDDEN_FIELD" } }]
        });
        let sheet = Sheet::new(&body);
        assert!(matches!(sheet.part("patient.name"), Part::Denied));
        assert!(matches!(
            sheet.part("patient.emergencyInformation.allergies"),
            Part::Present(_)
        ));
        assert!(matches!(sheet.part("patient.phone"), Part::Missing));
        assert_eq!(sheet.text("patient.name"), "閲覧権限なし / not permitted");
    }

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

    #[test]
    fn quantities_drop_a_needless_fraction() {
        assert_eq!(number(&json!(112.0)), "112");
        assert_eq!(number(&json!(1.5)), "1.5");
        assert_eq!(number(&json!(null)), "");
    }

    #[test]
    fn ages_count_whole_years() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(age(d("1940-05-01"), d("2026-04-30")), 85);
        assert_eq!(age(d("1940-05-01"), d("2026-05-01")), 86);
    }
}
