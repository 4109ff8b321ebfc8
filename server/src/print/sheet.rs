//! The emergency sheet as the page shows it: the GraphQL response parsed
//! into typed parts, each one withheld, absent or there, with every value
//! already in the words the page prints (「希望しない / declines」) — and
//! nothing escaped: the templates escape every value they print
//! (`server/templates/emergency_sheet*.html`).

use std::collections::HashSet;

use askama::Template;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;

use super::jst;

/// A part of the page as the policy let it through.
pub enum Shown<T> {
    /// The caller may not read it (`FORBIDDEN_FIELD` at its path).
    Denied,
    /// Nothing is recorded.
    Missing,
    Present(T),
}

impl<T> Shown<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Shown<U> {
        match self {
            Shown::Denied => Shown::Denied,
            Shown::Missing => Shown::Missing,
            Shown::Present(v) => Shown::Present(f(v)),
        }
    }
}

/// Text whose line breaks the page keeps: printed line by line, each line
/// escaped, joined by `<br>`.
pub struct Lines(pub Vec<String>);

impl Lines {
    fn of(s: &str) -> Self {
        Lines(s.split('\n').map(str::to_owned).collect())
    }
}

pub struct Registration {
    pub confirmed: String,
    pub organization: String,
    pub author: Option<String>,
    pub version: String,
}

pub struct Contact {
    pub name: String,
    pub relationship: String,
    pub phone: String,
    pub available: String,
    pub key_person: bool,
}

pub struct TeamEntry {
    pub organization: String,
    pub member: Option<String>,
    pub phone: String,
}

pub struct TeamRow {
    pub label: &'static str,
    pub label_en: &'static str,
    pub entry: Shown<TeamEntry>,
}

pub struct Acp {
    pub cpr: &'static str,
    pub life_prolonging: &'static str,
    pub tube_feeding: &'static str,
    pub hospitalization: &'static str,
    pub place_of_death: &'static str,
    pub proxy: String,
    pub note: Option<Lines>,
    pub confirmed_on: String,
    pub recorded_by: String,
}

pub struct Allergy {
    pub substance: String,
    pub allergy_type: &'static str,
    pub reaction: String,
    pub severity: &'static str,
}

pub struct Contraindication {
    pub drug: String,
    pub reason: Lines,
}

pub struct Infection {
    pub pathogen: String,
    pub result: &'static str,
    pub tested_on: String,
}

pub struct Condition {
    pub name: String,
    pub icd10: String,
    pub onset: String,
    pub undisclosed: bool,
}

pub struct Prescription {
    pub drug: String,
    pub dose: String,
    pub frequency: String,
    pub route: &'static str,
    pub start: String,
}

pub struct Dispensing {
    pub drug: String,
    pub quantity: String,
    pub unit: String,
    pub days: String,
    pub dispensed_on: String,
    pub pharmacy: String,
}

pub struct ExpectedEmergency {
    pub situation: String,
    pub response: Lines,
    pub call_first: String,
}

pub struct Facility {
    pub name: String,
    pub phone: String,
    pub note: Option<Lines>,
}

pub struct Hospitals {
    pub designated: Option<Facility>,
    pub backup_bed: &'static str,
    pub usual: Option<Facility>,
    pub note: Option<Lines>,
}

/// One patient's sheet: what `emergency_sheet_body.html` prints.
pub struct SheetView {
    pub title: String,
    pub printed_at: String,
    pub printed_by: String,
    pub printer_organization: String,
    /// Until when emergency (break-the-glass) access lasts, when the page
    /// was opened under it.
    pub emergency_until: Option<String>,
    pub registration: Shown<Registration>,
    pub name: Shown<String>,
    pub name_kana: Shown<String>,
    pub birth: Shown<String>,
    pub sex: Shown<String>,
    pub address: Shown<String>,
    pub phone: Shown<String>,
    pub contacts: Shown<Vec<Contact>>,
    /// The primary physician and the care manager, from the care team.
    pub team: Vec<TeamRow>,
    pub acp: Shown<Acp>,
    pub allergies: Shown<Vec<Allergy>>,
    pub contraindications: Shown<Vec<Contraindication>>,
    pub infections: Shown<Vec<Infection>>,
    pub conditions: Shown<Vec<Condition>>,
    pub reported_diagnoses: Shown<Vec<String>>,
    pub prescriptions: Shown<Vec<Prescription>>,
    pub reported_medications: Shown<Vec<String>>,
    pub dispensing: Shown<Vec<Dispensing>>,
    pub expected: Shown<Vec<ExpectedEmergency>>,
    pub hospitals: Shown<Hospitals>,
}

/// The page of one sheet.
#[derive(Template)]
#[template(path = "emergency_sheet.html")]
pub struct SheetPage {
    pub sheet: SheetView,
}

/// A GraphQL response with the paths of the fields it withheld.
pub struct Response<'a> {
    data: &'a Value,
    /// Dotted paths of the `FORBIDDEN_FIELD` errors (`patient.name`).
    denied: HashSet<String>,
}

impl<'a> Response<'a> {
    pub fn new(body: &'a Value) -> Self {
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
        Response {
            data: &body["data"],
            denied,
        }
    }

    fn get(&self, path: &str) -> &'a Value {
        path.split('.').fold(self.data, |v, key| &v[key])
    }

    pub fn part(&self, path: &str) -> Shown<&'a Value> {
        if self.denied.contains(path) {
            return Shown::Denied;
        }
        match self.get(path) {
            Value::Null => Shown::Missing,
            v => Shown::Present(v),
        }
    }

    fn text(&self, path: &str) -> Shown<String> {
        self.part(path).map(plain)
    }

    fn list<T>(&self, path: &str, item: impl Fn(&Value) -> T) -> Shown<Vec<T>> {
        self.part(path)
            .map(|v| v.as_array().into_iter().flatten().map(&item).collect())
    }

    /// The sheet's view, as printed at `printed_at`.
    pub fn sheet(&self, printed_at: DateTime<Utc>) -> SheetView {
        let now = printed_at.with_timezone(&jst());
        let today = now.date_naive();
        let (printed_by, printer_organization) = printer(self.get("me"));
        let title = match self.part("patient.name") {
            Shown::Present(v) => format!("救急医療情報 — {}", plain(v)),
            _ => "救急医療情報".to_string(),
        };
        let base = "patient.emergencyInformation";
        let sheet = self.part(&format!("{base}.sheet"));
        SheetView {
            title,
            printed_at: now.format("%Y-%m-%d %H:%M").to_string(),
            printed_by,
            printer_organization,
            emergency_until: self
                .get("patient.emergencyAccessUntil")
                .as_str()
                .map(|until| {
                    DateTime::parse_from_rfc3339(until)
                        .map(|t| t.with_timezone(&jst()).format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|_| until.to_string())
                }),
            registration: match &sheet {
                Shown::Denied => Shown::Denied,
                Shown::Missing => Shown::Missing,
                Shown::Present(s) => Shown::Present(Registration {
                    confirmed: day_of(&s["effectiveAt"]),
                    organization: plain(&s["sourceOrganization"]["name"]),
                    author: s["author"]["name"].as_str().map(str::to_owned),
                    version: plain(&s["version"]),
                }),
            },
            name: self.text("patient.name"),
            name_kana: self.text("patient.nameKana"),
            birth: self.part("patient.birthDate").map(|v| birth(v, today)),
            sex: self.part("patient.sex").map(|v| match v.as_str() {
                Some(s) => sex(s).to_string(),
                None => plain(v),
            }),
            address: self.text("patient.address"),
            phone: self.text("patient.phone"),
            contacts: on_sheet(&sheet, |d| {
                d["emergencyContacts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| Contact {
                        name: plain(&c["name"]),
                        relationship: plain(&c["relationship"]),
                        phone: plain(&c["phone"]),
                        available: plain(&c["available"]),
                        key_person: c["keyPerson"] == true,
                    })
                    .collect()
            }),
            team: vec![
                TeamRow {
                    label: "主治医",
                    label_en: "Primary physician",
                    entry: self
                        .part(&format!("{base}.primaryPhysician"))
                        .map(team_entry),
                },
                TeamRow {
                    label: "ケアマネジャー",
                    label_en: "Care manager",
                    entry: self.part(&format!("{base}.careManager")).map(team_entry),
                },
            ],
            acp: self.part(&format!("{base}.advanceCarePlan")).map(acp),
            allergies: self.list(&format!("{base}.allergies"), |r| {
                let d = &r["data"];
                Allergy {
                    substance: plain(&d["substance"]),
                    allergy_type: allergy_type(d["allergyType"].as_str()),
                    reaction: plain(&d["reaction"]),
                    severity: severity(d["severity"].as_str()),
                }
            }),
            contraindications: self.list(&format!("{base}.drugContraindications"), |r| {
                Contraindication {
                    drug: plain(&r["data"]["drug"]),
                    reason: Lines::of(&plain(&r["data"]["reason"])),
                }
            }),
            infections: self.list(&format!("{base}.infections"), |r| {
                let d = &r["data"];
                Infection {
                    pathogen: pathogen(d["pathogen"].as_str(), d["otherName"].as_str()),
                    result: infection_result(d["result"].as_str()),
                    tested_on: plain(&d["testedOn"]),
                }
            }),
            conditions: self.list(&format!("{base}.activeConditions"), |r| {
                let d = &r["data"];
                Condition {
                    name: plain(&d["name"]),
                    icd10: plain(&d["icd10"]),
                    onset: plain(&d["onset"]),
                    undisclosed: r["undisclosed"] == true,
                }
            }),
            reported_diagnoses: self.list(&format!("{base}.reportedDiagnoses"), plain),
            prescriptions: self.list(&format!("{base}.currentPrescriptions"), |r| {
                let d = &r["data"];
                Prescription {
                    drug: plain(&d["drug"]),
                    dose: plain(&d["dose"]),
                    frequency: plain(&d["frequency"]),
                    route: route(d["route"].as_str()),
                    start: plain(&d["startDate"]),
                }
            }),
            reported_medications: self.list(&format!("{base}.reportedMedications"), plain),
            dispensing: self.list(&format!("{base}.latestDispensing"), |r| {
                let d = &r["data"];
                Dispensing {
                    drug: plain(&d["drug"]),
                    quantity: number(&d["quantity"]),
                    unit: plain(&d["unit"]),
                    days: plain(&d["days"]),
                    dispensed_on: day_of(&r["effectiveAt"]),
                    pharmacy: plain(&r["sourceOrganization"]["name"]),
                }
            }),
            expected: on_sheet(&sheet, |d| {
                d["expectedEmergencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| ExpectedEmergency {
                        situation: plain(&e["situation"]),
                        response: Lines::of(&plain(&e["response"])),
                        call_first: plain(&e["callFirst"]),
                    })
                    .collect()
            }),
            hospitals: on_sheet(&sheet, |d| Hospitals {
                designated: facility(&d["designatedHospital"]),
                backup_bed: match d["designatedHospital"]["backupBed"].as_bool() {
                    Some(true) => "あり / yes",
                    Some(false) => "なし / no",
                    None => "–",
                },
                usual: facility(&d["usualHospital"]),
                note: d["note"].as_str().map(Lines::of),
            }),
        }
    }
}

/// Who printed, and their organisation, from a `me { member { name
/// profession } organization { name } }` answer.
pub fn printer(me: &Value) -> (String, String) {
    let printed_by = match me["member"]["name"].as_str() {
        Some(name) => format!(
            "{name}（{}）",
            profession(me["member"]["profession"].as_str().unwrap_or_default())
        ),
        None => "システム / system".to_string(),
    };
    (printed_by, plain(&me["organization"]["name"]))
}

/// A part drawn from the emergency sheet's own data: withheld or absent
/// with the sheet.
fn on_sheet<T>(sheet: &Shown<&Value>, f: impl FnOnce(&Value) -> T) -> Shown<T> {
    match sheet {
        Shown::Denied => Shown::Denied,
        Shown::Missing => Shown::Missing,
        Shown::Present(s) => Shown::Present(f(&s["data"])),
    }
}

fn team_entry(m: &Value) -> TeamEntry {
    TeamEntry {
        organization: plain(&m["organization"]["name"]),
        member: m["member"]["name"].as_str().map(str::to_owned),
        phone: plain(&m["organization"]["phone"]),
    }
}

fn acp(acp: &Value) -> Acp {
    let d = &acp["data"];
    Acp {
        cpr: wish(d["cpr"].as_str()),
        life_prolonging: wish(d["lifeProlongingTreatment"].as_str()),
        tube_feeding: wish(d["tubeFeeding"].as_str()),
        hospitalization: wish(d["hospitalization"].as_str()),
        place_of_death: place(d["placeOfDeath"].as_str()),
        proxy: match (d["proxyName"].as_str(), d["proxyRelationship"].as_str()) {
            (Some(name), Some(relation)) => format!("{name}（{relation}）"),
            (Some(one), None) | (None, Some(one)) => one.to_string(),
            (None, None) => String::new(),
        },
        note: d["note"].as_str().map(Lines::of),
        confirmed_on: plain(&d["confirmedOn"]),
        recorded_by: plain(&acp["sourceOrganization"]["name"]),
    }
}

fn facility(f: &Value) -> Option<Facility> {
    if f.is_null() {
        return None;
    }
    Some(Facility {
        name: plain(&f["name"]),
        phone: plain(&f["phone"]),
        note: f["note"].as_str().map(Lines::of),
    })
}

fn birth(v: &Value, today: NaiveDate) -> String {
    let text = plain(v);
    match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        Ok(date) => format!(
            "{}年{}月{}日（{}歳）",
            date.year(),
            date.month(),
            date.day(),
            age(date, today)
        ),
        Err(_) => text,
    }
}

/// A JSON scalar as text; `""` for null.
pub fn plain(v: &Value) -> String {
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

fn wish(v: Option<&str>) -> &'static str {
    match v {
        Some("WANTS") => "希望する / wants",
        Some("DECLINES") => "希望しない / declines",
        Some("UNDECIDED") => "未定 / undecided",
        Some(_) => "その他 / other",
        None => "–",
    }
}

fn place(v: Option<&str>) -> &'static str {
    match v {
        Some("HOME") => "自宅 / home",
        Some("HOSPITAL") => "病院 / hospital",
        Some("NURSING_HOME") => "施設 / nursing home",
        Some("CLINIC") => "診療所 / clinic",
        Some("SERVICED_HOUSING") => "サービス付き高齢者向け住宅 / serviced housing",
        Some("PRIVATE_NURSING_HOME") => "有料老人ホーム / private nursing home",
        Some("UNDECIDED") => "未定 / undecided",
        Some(_) => "その他 / other",
        None => "–",
    }
}

fn severity(v: Option<&str>) -> &'static str {
    match v {
        Some("MILD") => "軽度 / mild",
        Some("MODERATE") => "中等度 / moderate",
        Some("SEVERE") => "重度 / severe",
        Some("UNKNOWN") => "不明 / unknown",
        Some(_) => "その他 / other",
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

fn infection_result(v: Option<&str>) -> &'static str {
    match v {
        Some("POSITIVE") => "陽性 / positive",
        Some("NEGATIVE") => "陰性 / negative",
        Some("UNKNOWN") => "不明 / unknown",
        Some(_) => "その他 / other",
        None => "–",
    }
}

fn allergy_type(v: Option<&str>) -> &'static str {
    match v {
        Some("DRUG") => "薬剤 / drug",
        Some("FOOD") => "食物 / food",
        Some("OTHER") => "その他 / other",
        Some(_) => "その他 / other",
        None => "–",
    }
}

fn route(v: Option<&str>) -> &'static str {
    match v {
        Some("ORAL") => "内服",
        Some("TOPICAL") => "外用",
        Some("INJECTION") => "注射",
        Some("INHALATION") => "吸入",
        Some(_) => "その他",
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

/// A profession's name on paper.
pub fn profession(v: &str) -> &str {
    match renkei_schema::domain::Profession::parse(v) {
        Some(p) => crate::pages::labels::profession(p),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn withheld_parts_are_named_by_their_paths() {
        let body = json!({
            "data": { "patient": { "name": null, "emergencyInformation": { "allergies": [] } } },
            "errors": [{ "message": "no", "path": ["patient", "name"], "extensions": { "code": "FORBIDDEN_FIELD" } }]
        });
        let r = Response::new(&body);
        assert!(matches!(r.part("patient.name"), Shown::Denied));
        assert!(matches!(
            r.part("patient.emergencyInformation.allergies"),
            Shown::Present(_)
        ));
        assert!(matches!(r.part("patient.phone"), Shown::Missing));
    }

    #[test]
    fn every_value_is_escaped_and_line_breaks_are_kept() {
        let body = json!({ "data": {
            "me": { "member": { "name": "<b>x</b>", "profession": "PHYSICIAN" }, "organization": { "name": "A&B" } },
            "patient": {
                "name": "<script>alert('x')</script>",
                "emergencyInformation": {
                    "sheet": { "version": 1, "effectiveAt": "2026-01-13T00:00:00Z", "data": {
                        "emergencyContacts": [{ "name": "\"q\"", "phone": "0157-00-0000", "keyPerson": true }],
                        "expectedEmergencies": [{ "situation": "s", "response": "a<b\nc" }]
                    } },
                    "allergies": []
                }
            }
        } });
        let html = SheetPage {
            sheet: Response::new(&body).sheet(Utc::now()),
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(!html.contains("<b>x</b>"));
        assert!(html.contains("a&#60;b<br>c"), "{html}");
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
