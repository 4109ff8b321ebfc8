//! The demo region's content, read from the TOML files under `schema/demo/`
//! (embedded in the binary when it is built) into typed values; the rules
//! that combine it — the seeded random stream, dates, exceptions, batching —
//! are in the rest of this module. `schema/demo/README.md` describes the files.
//!
//! The files are parsed once, on first use. [`check`] (called by `seed`)
//! turns a malformed file into an error that names the file and the key; a
//! unit test parses every file, so a broken one fails the build's tests, not
//! a demo.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

use crate::domain::{
    Capability as Cap, CareTeamRole as Role, OrganizationKind as Kind, Profession as Prof, Sex,
};
use crate::records::{
    AllergySeverity, AllergyType, CareCapacity, CautionArea, ConditionSensitivity, ImagingModality,
    MedicationRoute, RecordData, RecordKind,
};
use crate::services::admission_discharge::notices::DischargeCriterion;
use crate::services::liaison::LiaisonUrgency;

/// A data file that does not read: which file, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file under `schema/demo/`.
    pub file: &'static str,
    /// The key path in the file (`organization[3].kind`), empty when the
    /// file is not TOML at all.
    pub key: String,
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "schema/demo/{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "schema/demo/{}: at `{}`: {}",
                self.file, self.key, self.message
            )
        }
    }
}

impl std::error::Error for DataError {}

/// Parses one data file into `T`, naming the file and the key on error.
pub(super) fn parse<T: DeserializeOwned>(file: &'static str, text: &str) -> Result<T, DataError> {
    let error = |key: String, message: String| DataError { file, key, message };
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|e| error(String::new(), e.to_string().trim_end().to_owned()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().message().to_owned();
        error(if key == "." { String::new() } else { key }, message)
    })
}

/// Every data file, parsed and cross-checked.
pub(super) struct Content {
    pub directory: Directory,
    pub names: Names,
    pub medical: Medical,
    pub consents: ConsentTexts,
    pub records: Records,
    pub liaison: Liaison,
    pub admission_discharge: AdmissionDischarge,
    pub family: Family,
}

static CONTENT: LazyLock<Result<Content, DataError>> = LazyLock::new(Content::load);

/// The demo's content. Panics with [`DataError`]'s message if a file is
/// malformed; `seed` calls [`check`] first, so it returns the error instead.
pub(super) fn content() -> &'static Content {
    match &*CONTENT {
        Ok(content) => content,
        Err(e) => panic!("the demo data does not read: {e}"),
    }
}

/// Whether the embedded data files read (parsed once; later calls are free).
pub(super) fn check() -> Result<(), DataError> {
    CONTENT.as_ref().map(|_| ()).map_err(Clone::clone)
}

impl Content {
    fn load() -> Result<Content, DataError> {
        let directory: DirectoryFile =
            parse("directory.toml", include_str!("../../demo/directory.toml"))?;
        let content = Content {
            directory: directory.resolve()?,
            names: parse("names.toml", include_str!("../../demo/names.toml"))?,
            medical: parse("medical.toml", include_str!("../../demo/medical.toml"))?,
            consents: parse("consents.toml", include_str!("../../demo/consents.toml"))?,
            records: parse("records.toml", include_str!("../../demo/records.toml"))?,
            liaison: parse("liaison.toml", include_str!("../../demo/liaison.toml"))?,
            admission_discharge: parse(
                "admission_discharge.toml",
                include_str!("../../demo/admission_discharge.toml"),
            )?,
            family: parse("family.toml", include_str!("../../demo/family.toml"))?,
        };
        content.liaison.check()?;
        content.medical.check()?;
        content.records.check(&content.medical)?;
        content.names.check()?;
        Ok(content)
    }

    /// A drug of the catalogue by key; the keys the code names are checked
    /// by a unit test, those in the files when they are loaded.
    pub fn drug(&'static self, key: &str) -> &'static Drug {
        (self.medical.drug.get(key)).unwrap_or_else(|| panic!("no drug `{key}` in medical.toml"))
    }

    /// A condition of the catalogue by key.
    pub fn condition(&'static self, key: &str) -> &'static Dx {
        (self.medical.condition.iter())
            .find(|d| d.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no condition with key `{key}` in medical.toml"))
    }

    /// A laboratory test by key.
    pub fn lab(&'static self, key: &str) -> &'static Lab {
        (self.medical.lab.get(key)).unwrap_or_else(|| panic!("no lab `{key}` in medical.toml"))
    }
}

// ---------------------------------------------------------------------------
// Domain enums in data: by their stored names (`"PHYSICIAN"`).

trait Named: Sized {
    const WHAT: &'static str;
    fn parse_name(s: &str) -> Option<Self>;
}

macro_rules! named {
    ($($t:ident: $what:literal),*) => {$(
        impl Named for $t {
            const WHAT: &'static str = $what;
            fn parse_name(s: &str) -> Option<Self> {
                $t::parse(s)
            }
        }
    )*};
}
named!(
    Kind: "organisation kind",
    Prof: "profession",
    Cap: "capability",
    Sex: "sex",
    Role: "care-team role",
    LiaisonUrgency: "urgency",
    DischargeCriterion: "discharge criterion"
);

fn named<'de, D: Deserializer<'de>, T: Named>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    T::parse_name(&s).ok_or_else(|| D::Error::custom(format!("unknown {} {s:?}", T::WHAT)))
}

fn named_opt<'de, D: Deserializer<'de>, T: Named>(d: D) -> Result<Option<T>, D::Error> {
    named(d).map(Some)
}

fn named_list_opt<'de, D: Deserializer<'de>, T: Named>(d: D) -> Result<Option<Vec<T>>, D::Error> {
    named_list(d).map(Some)
}

fn named_list<'de, D: Deserializer<'de>, T: Named>(d: D) -> Result<Vec<T>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    (names.iter())
        .map(|s| {
            T::parse_name(s).ok_or_else(|| D::Error::custom(format!("unknown {} {s:?}", T::WHAT)))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// directory.toml

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    member: Vec<MemberEntry>,
    organization: Vec<OrgSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberEntry {
    organization: String,
    #[serde(deserialize_with = "named")]
    profession: Prof,
}

/// The organisations and members, numbered by their place in the file.
pub(super) struct Directory {
    pub organizations: Vec<OrgSpec>,
    pub members: Vec<MemberSpec>,
}

impl DirectoryFile {
    fn resolve(self) -> Result<Directory, DataError> {
        let error = |key: String, message: String| DataError {
            file: "directory.toml",
            key,
            message,
        };
        for (n, expected) in super::ORGANIZATION_KEYS.iter().enumerate() {
            let found = self.organization.get(n).map(|o| o.key.as_str());
            if found != Some(*expected) {
                return Err(error(
                    format!("organization[{n}].key"),
                    format!(
                        "organisation {n} must be `{expected}` (the generator's rules name it), found {found:?}: append new organisations, never reorder"
                    ),
                ));
            }
        }
        let mut members = Vec::with_capacity(self.member.len());
        for (i, m) in self.member.iter().enumerate() {
            let org = (self.organization.iter())
                .position(|o| o.key == m.organization)
                .ok_or_else(|| {
                    error(
                        format!("member[{i}].organization"),
                        format!("no organisation with key {:?}", m.organization),
                    )
                })?;
            members.push(MemberSpec {
                org,
                profession: m.profession,
            });
        }
        for &p in Prof::ALL {
            if !members.iter().any(|m| m.profession == p) {
                return Err(error(
                    "member".into(),
                    format!("the profession {p} has no demo member"),
                ));
            }
        }
        Ok(Directory {
            organizations: self.organization,
            members,
        })
    }
}

/// How a facility's system numbers its patients (カルテ番号, 利用者番号 …).
#[derive(Deserialize)]
#[serde(tag = "style", rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum LocalIdStyle {
    /// `prefix` and a zero-padded running number above `base`: `K-000123`.
    Running {
        prefix: String,
        width: usize,
        base: usize,
    },
    /// `prefix`, the year of registration and a running number: `P2024-0456`.
    Yearly { prefix: String, width: usize },
}

impl LocalIdStyle {
    pub fn format(&self, seq: usize, year: i32) -> String {
        match self {
            LocalIdStyle::Running {
                prefix,
                width,
                base,
            } => format!("{prefix}{:0width$}", base + seq),
            LocalIdStyle::Yearly { prefix, width } => format!("{prefix}{year}-{seq:0width$}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OrgSpec {
    pub key: String,
    #[serde(deserialize_with = "named")]
    pub kind: Kind,
    pub name: String,
    pub kana: String,
    pub postal_code: String,
    pub address: String,
    pub phone: String,
    pub fax: String,
    /// Latitude, longitude.
    pub coordinates: (f64, f64),
    #[serde(deserialize_with = "named_list")]
    pub capabilities: Vec<Cap>,
    /// `None`: the facility keeps no patient numbers the network links to.
    #[serde(default)]
    pub local_ids: Option<LocalIdStyle>,
}

pub(super) struct MemberSpec {
    /// Index of the organisation.
    pub org: usize,
    pub profession: Prof,
}

// ---------------------------------------------------------------------------
// names.toml

/// A name or a place, and its reading (or postal code).
pub(super) type NamePart = &'static (String, String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Names {
    pub family: Vec<(String, String)>,
    /// Given names common among people born 1926–1961.
    pub elder_female: Vec<(String, String)>,
    pub elder_male: Vec<(String, String)>,
    pub staff_given: Vec<(String, String)>,
    /// The given names of the patients' children (born 1950–1975).
    pub child_female: Vec<String>,
    pub child_male: Vec<String>,
    /// (district, postal code) of the city; house numbers are 丁目-番-号.
    pub city_districts: Vec<(String, String)>,
    /// (字, postal code) of the town; rural addresses are 番地 only.
    pub town_districts: Vec<(String, String)>,
    pub region: Region,
}

/// The two municipalities and how an address is written in each.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Region {
    pub city: String,
    pub town: String,
    /// `{city}`, `{district}`, `{chome}`, `{ban}`, `{go}`.
    pub city_address: String,
    /// `{town}`, `{district}`, `{banchi}`.
    pub town_address: String,
}

impl Names {
    fn check(&self) -> Result<(), DataError> {
        for (key, len) in [
            ("family", self.family.len()),
            ("elder_female", self.elder_female.len()),
            ("elder_male", self.elder_male.len()),
            ("staff_given", self.staff_given.len()),
            ("child_female", self.child_female.len()),
            ("child_male", self.child_male.len()),
            ("city_districts", self.city_districts.len()),
            ("town_districts", self.town_districts.len()),
        ] {
            if len == 0 {
                return Err(DataError {
                    file: "names.toml",
                    key: key.into(),
                    message: "the list is empty".into(),
                });
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// medical.toml

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Medical {
    pub drug: BTreeMap<String, Drug>,
    pub medication: Medication,
    /// In file order: the chronic ones (with a `weight`) are drawn by weight.
    pub condition: Vec<Dx>,
    pub lab: BTreeMap<String, Lab>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Medication {
    /// Drugs that fill a short list: the usual companions of old age.
    pub fillers: Vec<String>,
}

impl Medical {
    fn check(&self) -> Result<(), DataError> {
        let error = |key: String, message: String| DataError {
            file: "medical.toml",
            key,
            message,
        };
        let known = |key: &str| self.drug.contains_key(key);
        for (i, key) in self.medication.fillers.iter().enumerate() {
            if !known(key) {
                return Err(error(
                    format!("medication.fillers[{i}]"),
                    format!("no drug {key:?}"),
                ));
            }
        }
        for (i, d) in self.condition.iter().enumerate() {
            if d.regimens.is_empty() {
                return Err(error(
                    format!("condition[{i}].regimens"),
                    "a condition needs at least one regimen (`[[]]`: no drug)".into(),
                ));
            }
            for (r, regimen) in d.regimens.iter().enumerate() {
                for (k, key) in regimen.iter().enumerate() {
                    if !known(key) {
                        return Err(error(
                            format!("condition[{i}].regimens[{r}][{k}]"),
                            format!("no drug {key:?}"),
                        ));
                    }
                }
            }
        }
        if !self
            .condition
            .iter()
            .any(|d| d.weight.is_some_and(|w| w > 0))
        {
            return Err(error(
                "condition".into(),
                "no chronic condition (one with a weight above 0)".into(),
            ));
        }
        Ok(())
    }

    /// The drugs that fill a short list, by key.
    pub fn fillers_keys(&self) -> &[String] {
        &self.medication.fillers
    }

    /// The chronic conditions drawn for the patients, in file order.
    pub fn chronic(&'static self) -> impl Iterator<Item = &'static Dx> {
        self.condition.iter().filter(|d| d.weight.is_some())
    }
}

/// How much of a drug a number of days of treatment takes.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub(super) enum Supply {
    /// Units a day.
    Daily(f64),
    /// Units a week (a weekly tablet).
    Weekly(f64),
    /// Units per 28 days (a pen, an inhaler).
    Monthly(f64),
}

impl Supply {
    pub fn quantity(self, days: i32) -> f64 {
        let days = f64::from(days);
        match self {
            Supply::Daily(units) => units * days,
            Supply::Weekly(units) => units * (days / 7.0).ceil(),
            Supply::Monthly(units) => units * (days / 28.0).ceil(),
        }
    }
}

fn oral() -> MedicationRoute {
    MedicationRoute::Oral
}

fn tablets() -> String {
    "錠".to_owned()
}

/// A product as prescribed. The names are generic names; the YJ codes have the
/// code's shape (drug class, ingredient, form, strength) but are not looked
/// up in the master.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Drug {
    pub name: String,
    pub yj: String,
    pub dose: String,
    pub frequency: String,
    #[serde(default = "oral")]
    pub route: MedicationRoute,
    pub supply: Supply,
    #[serde(default = "tablets")]
    pub unit: String,
}

/// A condition of the patients at home, and what it is treated with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Dx {
    /// How the generator's rules name it, if they do.
    #[serde(default)]
    pub key: Option<String>,
    pub name: String,
    pub icd10: String,
    /// Relative frequency among the patients it can apply to; only the
    /// conditions with a weight are drawn.
    #[serde(default)]
    pub weight: Option<u64>,
    /// Only patients of this sex have it.
    #[serde(default, deserialize_with = "named_opt")]
    pub sex: Option<Sex>,
    /// What it adds to the need for care.
    #[serde(default)]
    pub frailty: usize,
    /// Alternative regimens (drug keys); one is prescribed.
    pub regimens: Vec<Vec<String>>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub sensitivity: Option<ConditionSensitivity>,
    /// What the physician's opinion (主治医意見書) lists as 特別な医療 for a
    /// patient with it (「酸素療法」): what the disaster register reads.
    #[serde(default)]
    pub special_medical_care: Vec<String>,
}

impl Dx {
    /// The weight of a chronic condition (0 for the others).
    pub fn weight(&self) -> u64 {
        self.weight.unwrap_or(0)
    }
}

/// A reference range; either end may be open.
#[derive(Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Range {
    #[serde(default)]
    pub low: Option<f64>,
    #[serde(default)]
    pub high: Option<f64>,
}

/// One laboratory test: the code is JLAC10-shaped (analyte, identification,
/// material, method, result), invented but used consistently.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Lab {
    pub name: String,
    pub code: String,
    #[serde(default)]
    pub unit: Option<String>,
    /// The reference range (of men, when `female_range` is given).
    pub range: Range,
    #[serde(default)]
    pub female_range: Option<Range>,
    pub decimals: usize,
}

impl Lab {
    pub fn range_of(&self, female: bool) -> (Option<f64>, Option<f64>) {
        let r = if female {
            self.female_range.unwrap_or(self.range)
        } else {
            self.range
        };
        (r.low, r.high)
    }
}

// ---------------------------------------------------------------------------
// consents.toml

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsentTexts {
    pub withdrawal_reason: String,
    pub objection_note: String,
    pub written_form: String,
    pub oral_form: String,
    pub electronic_form: String,
    pub guardian_relation: String,
    pub pending_proxy: Proxy,
    pub family_proxies: Vec<Proxy>,
    pub guardians: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Proxy {
    pub relation: String,
    pub name: String,
}

// ---------------------------------------------------------------------------
// liaison.toml

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Liaison {
    pub emergency_information: EmergencyTexts,
    /// The thread templates, in the order patients are given them.
    pub thread: Vec<ThreadTemplate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EmergencyTexts {
    pub expected: Vec<Expected>,
    pub everyone: Vec<Expected>,
    pub contacts: ContactTexts,
    pub hospitals: HospitalNames,
    pub notes: SheetNotes,
    pub other_care: Vec<OtherCare>,
}

/// The emergency contacts' relationships and availability.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContactTexts {
    /// The key person's relationships that mean living with the patient.
    pub spouses: Vec<String>,
    pub spouse_available: String,
    pub family_available: Vec<String>,
    pub nurse: String,
    pub nurse_round_the_clock: String,
    pub nurse_available: String,
    pub nurse_available_round_the_clock: String,
    pub physician: String,
    pub physician_available: String,
    pub physician_available_round_the_clock: String,
    pub care_manager: String,
    pub care_manager_available: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HospitalNames {
    pub departments: Vec<Department>,
    /// `{hospital}`, `{department}`.
    pub usual: String,
    /// `{hospital}`, `{department}`.
    pub outpatient: String,
    pub admitted_note: String,
    pub outpatient_note: String,
    pub designated_note: String,
}

/// A hospital department, for patients with a condition of these ICD-10
/// prefixes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Department {
    pub when: Vec<String>,
    pub department: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SheetNotes {
    pub alone: String,
    pub others: Vec<String>,
}

/// Diagnoses and medications a sheet lists for the patients whose number
/// ends in `patients_ending_in`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OtherCare {
    pub patients_ending_in: usize,
    pub diagnoses: Vec<String>,
    pub medications: Vec<String>,
}

/// An expected emergency (予想される急変) and what to do.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Expected {
    /// An ICD-10 prefix of one of the patient's conditions.
    #[serde(default)]
    pub when: Option<String>,
    /// Added only while the sheet has fewer entries than this.
    #[serde(default)]
    pub while_fewer_than: Option<usize>,
    pub situation: String,
    pub response: String,
    pub call_first: String,
}

/// A liaison thread (連絡帳) between members of a care team.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ThreadTemplate {
    pub subject: String,
    #[serde(deserialize_with = "named")]
    pub urgency: LiaisonUrgency,
    /// The roles addressed by name; `None`: the whole care team.
    #[serde(default, deserialize_with = "named_list_opt")]
    pub to: Option<Vec<Role>>,
    pub messages: Vec<ThreadMessage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ThreadMessage {
    /// Written by the team's member in this role, of this profession.
    #[serde(deserialize_with = "named")]
    pub role: Role,
    #[serde(deserialize_with = "named")]
    pub profession: Prof,
    pub body: String,
    /// The index of the message answered (an earlier one).
    #[serde(default)]
    pub reply_to: Option<usize>,
}

impl Liaison {
    fn check(&self) -> Result<(), DataError> {
        for (t, thread) in self.thread.iter().enumerate() {
            if thread.messages.is_empty() {
                return Err(DataError {
                    file: "liaison.toml",
                    key: format!("thread[{t}].messages"),
                    message: "a thread needs a first message".into(),
                });
            }
            for (i, m) in thread.messages.iter().enumerate() {
                if m.reply_to.is_some_and(|r| r >= i) {
                    return Err(DataError {
                        file: "liaison.toml",
                        key: format!("thread[{t}].messages[{i}].reply_to"),
                        message: "a message answers an earlier one".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// family.toml

/// The key persons and their families' situations, by household.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Family {
    pub alone: Vec<KeyPersonText>,
    pub spouse: SpouseText,
    pub together: Vec<KeyPersonText>,
}

/// Whose name a key person gets.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Relative {
    Daughter,
    Son,
    DaughterInLaw,
    Niece,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyPersonText {
    pub relative: Relative,
    pub relationship: String,
    pub capacity: CareCapacity,
    pub note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SpouseText {
    pub husband: String,
    pub wife: String,
    pub capacity: CareCapacity,
    pub note: String,
}

// ---------------------------------------------------------------------------
// admission_discharge.toml

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdmissionDischarge {
    pub admission_sheet: AdmissionSheetTexts,
    pub discharge_notice: DischargeNoticeTexts,
    pub discharge_conference: ConferenceTexts,
    pub service_meeting: ServiceMeetingTexts,
}

/// The care managers' held care-plan meetings (サービス担当者会議): one text
/// of each list is drawn per meeting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServiceMeetingTexts {
    pub place: String,
    pub agendas: Vec<String>,
    pub discussions: Vec<String>,
    pub decisions: Vec<String>,
    pub open_issues: Vec<String>,
    pub other_attendees: Vec<String>,
    pub declined_comment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdmissionSheetTexts {
    pub cautions: Vec<String>,
    pub wishes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DischargeNoticeTexts {
    pub needs: Vec<Need>,
    pub no_criteria_needs: Vec<String>,
}

/// What a discharge-coordination criterion means at home.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Need {
    #[serde(deserialize_with = "named")]
    pub criterion: DischargeCriterion,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConferenceTexts {
    /// `{hospital}`: the hospital's name.
    pub place: String,
    pub note_online: String,
    pub note_in_person: String,
    pub accepted_comment: String,
    pub declined_comment: String,
}

/// `template` with each `{name}` replaced by its value.
pub(super) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

// ---------------------------------------------------------------------------
// records.toml

/// The texts of the records, by record kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Records {
    pub allergy: Vec<AllergyEntry>,
    pub drug_contraindication: Vec<Contraindication>,
    pub infection: InfectionTexts,
    pub visiting_nurse_report: NurseReportTexts,
    pub daily_observation: ObservationTexts,
    pub medication_management_report: ByRating<AdherenceTexts>,
    pub care: CareTexts,
    pub care_cautions: CautionTexts,
    pub dental: DentalTexts,
    pub visiting_nurse_instruction: NurseInstructionTexts,
    pub home_care_guidance_instruction: GuidanceTexts,
    pub illness_explanation: ExplanationTexts,
    pub physician_opinion: OpinionTexts,
    pub undisclosed_cancer: UndisclosedCancerTexts,
    pub hospital: HospitalTexts,
    pub advance_care_plan: AcpTexts,
    pub episode: EpisodeTexts,
    pub dispensing: DispensingTexts,
    pub care_plan: CarePlanTexts,
    pub assessment: AssessmentTexts,
    pub home_environment: HomeEnvironmentTexts,
    pub swallowing_assessment: SwallowingTexts,
    /// Records of any kind, written from their payload (see [`RecordTemplate`]).
    #[serde(default)]
    pub template: Vec<RecordTemplate>,
}

impl Records {
    fn check(&self, medical: &Medical) -> Result<(), DataError> {
        let error = |key: String, message: String| DataError {
            file: "records.toml",
            key,
            message,
        };
        for (i, t) in self.template.iter().enumerate() {
            // The payload must read as the kind's data and pass the checks
            // the API applies to a record written that day.
            let sample = Placeholders::sample();
            let data = t.render(&sample);
            let valid = data.and_then(|d| {
                (d.validate(super::REF_DATE)).map_err(|e| format!("{}: {}", t.kind, e.message()))
            });
            valid.map_err(|message| error(format!("template[{i}].data"), message))?;
        }
        for (i, c) in self.drug_contraindication.iter().enumerate() {
            for (field, key) in [("when_taking", &c.when_taking), ("yj_of", &c.yj_of)] {
                if let Some(key) = key
                    && !medical.drug.contains_key(key)
                {
                    return Err(error(
                        format!("drug_contraindication[{i}].{field}"),
                        format!("no drug {key:?} in medical.toml"),
                    ));
                }
            }
        }
        for (i, illness) in self.episode.illness.iter().enumerate() {
            let Some(course) = &illness.course else {
                continue;
            };
            for (field, key) in [
                ("drug", Some(&course.drug)),
                ("if_allergic", course.if_allergic.as_ref()),
            ] {
                if let Some(key) = key
                    && !medical.drug.contains_key(key)
                {
                    return Err(error(
                        format!("episode.illness[{i}].course.{field}"),
                        format!("no drug {key:?} in medical.toml"),
                    ));
                }
            }
        }
        let plan = &self.care_plan;
        for (key, table) in [
            ("care_plan.home_help", &plan.home_help),
            ("care_plan.day_service", &plan.day_service),
            ("care_plan.visiting_nurse", &plan.visiting_nurse),
            ("care_plan.equipment", &plan.equipment),
        ] {
            if let Some(level) = (0..7).find(|l| !table.iter().any(|s| s.levels.contains(l))) {
                return Err(error(key.into(), format!("no service for level {level}")));
            }
        }
        let swallowing = &self.swallowing_assessment;
        if swallowing.diet.last().is_none_or(|d| d.from_fils != 0)
            || swallowing.tests.last().is_none_or(|t| t.from_fils != 0)
        {
            return Err(error(
                "swallowing_assessment".into(),
                "the last row of `diet` and of `tests` is `from_fils = 0`".into(),
            ));
        }
        if self.episode.illness.last().is_some_and(|i| i.sex.is_some()) {
            return Err(error(
                "episode.illness".into(),
                "the last illness is for both sexes (one for the other sex is passed over for the next)".into(),
            ));
        }
        if self.care.level_names.len() != 7 || self.care.walking.len() != 4 {
            return Err(error(
                "care".into(),
                "level_names has the 7 care levels, walking the 4 ADL levels".into(),
            ));
        }
        for (key, empty) in [
            ("allergy", self.allergy.is_empty()),
            (
                "daily_observation.concerns",
                self.daily_observation.concerns.is_empty(),
            ),
            (
                "daily_observation.ordinary",
                self.daily_observation.ordinary.is_empty(),
            ),
            ("care_cautions.items", self.care_cautions.items.is_empty()),
            ("dental.findings", self.dental.findings.is_empty()),
            ("dental.visit_notes", self.dental.visit_notes.is_empty()),
        ] {
            if empty {
                return Err(error(key.into(), "the list is empty".into()));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AllergyEntry {
    pub substance: String,
    pub allergy_type: AllergyType,
    pub reaction: String,
    pub severity: AllergySeverity,
    /// Skipped for a patient with a condition of these ICD-10 prefixes.
    #[serde(default)]
    pub unless: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Contraindication {
    /// An ICD-10 prefix of one of the patient's conditions.
    #[serde(default)]
    pub when: Option<String>,
    /// A drug (key in medical.toml) the patient currently takes.
    #[serde(default)]
    pub when_taking: Option<String>,
    /// Percent of the patients it applies to who have it.
    pub chance: u64,
    pub drug: String,
    /// The drug of medical.toml whose YJ code is recorded.
    #[serde(default)]
    pub yj_of: Option<String>,
    pub reason: String,
}

/// A planned service (利用サービス) and how often.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlannedServiceText {
    pub service: String,
    pub frequency: String,
}

/// A planned service for some care levels (0 = 要支援1 … 6 = 要介護5).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LeveledService {
    pub levels: Vec<usize>,
    pub service: String,
    pub frequency: String,
}

/// The row of a table for `level` (the tables cover every level; checked
/// when the file is loaded).
pub(super) fn at_level(table: &[LeveledService], level: usize) -> &LeveledService {
    (table.iter())
        .find(|s| s.levels.contains(&level))
        .unwrap_or_else(|| panic!("no service for care level {level} in records.toml"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CarePlanTexts {
    pub home_help: Vec<LeveledService>,
    pub day_service: Vec<LeveledService>,
    pub visiting_nurse: Vec<LeveledService>,
    pub equipment: Vec<LeveledService>,
    pub rehabilitation: PlannedServiceText,
    pub short_stay: PlannedServiceText,
    pub pharmacist: PlannedServiceText,
    pub dentist: PlannedServiceText,
    pub long_term: LongTermGoals,
    pub short_term: ShortTermGoals,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LongTermGoals {
    pub bedridden: String,
    pub dementia: String,
    pub falls: String,
    pub prevention: String,
    pub default: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShortTermGoals {
    pub medication: String,
    pub day_service: String,
    pub home_help: String,
    pub heart_failure: String,
    pub diabetes: String,
    pub knee: String,
    pub oral_care: String,
    pub fallback: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssessmentTexts {
    /// `{age}`, `{sex}`, `{conditions}`, `{care_level}`, `{key_person}`,
    /// `{relationship}`.
    pub summary: String,
    pub female: String,
    pub male: String,
    /// `{living}`, `{family}`.
    pub living_situation: String,
    pub lives_alone: String,
    pub with_family: String,
    pub concerns_dementia: String,
    pub concerns_high_level: String,
    pub concerns_other: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HomeEnvironmentTexts {
    pub barriers: HousingBarriers,
    pub note_dementia: String,
    pub note_town: String,
    pub note_city: String,
}

/// The barriers of a home, by housing type (as the API names it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) struct HousingBarriers {
    pub public_housing: String,
    pub apartment: String,
    pub serviced_housing: String,
    pub detached_house: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SwallowingTexts {
    pub diet: Vec<DietForm>,
    pub tests: Vec<SwallowingTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DietForm {
    pub from_fils: i32,
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SwallowingTest {
    pub from_fils: i32,
    pub method: String,
    pub findings: String,
}

/// An illness that has passed (see `[episode]` in records.toml).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EpisodeTexts {
    /// An allergy whose substance names this is to antibiotics.
    pub antibiotic_allergy: String,
    pub treated_with_drug: String,
    pub treated_without_drug: String,
    pub illness: Vec<Episode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Episode {
    pub name: String,
    pub icd10: String,
    /// Only patients of this sex have it (others get the next illness).
    #[serde(default, deserialize_with = "named_opt")]
    pub sex: Option<Sex>,
    #[serde(default)]
    pub course: Option<Course>,
}

/// A short course of a drug.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Course {
    /// A drug of medical.toml.
    pub drug: String,
    pub days: i32,
    /// The drug given instead to a patient allergic to antibiotics.
    #[serde(default)]
    pub if_allergic: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DispensingTexts {
    pub one_dose_packaging: String,
    pub injection: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InfectionTexts {
    pub hbs_carrier_note: String,
    pub mrsa_note: String,
    pub preoperative_note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NurseReportTexts {
    /// `{low}`, `{high}`, `{low_diastolic}`, `{high_diastolic}`, `{spo2}`.
    pub condition: String,
    pub remarks: Vec<Remark>,
    pub usual_care: Vec<String>,
    pub insulin_care: String,
    pub bedridden_remark: String,
    pub bedridden_care: Vec<String>,
    pub uneventful: String,
    pub notes: Vec<String>,
    pub death_at_home: DeathAtHome,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Remark {
    /// An ICD-10 prefix of one of the patient's conditions.
    pub when: String,
    pub remark: String,
    pub care: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeathAtHome {
    /// `{date}`: the day of death.
    pub condition: String,
    pub care_provided: String,
    pub note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ObservationTexts {
    pub concerns: Vec<String>,
    pub ordinary: Vec<String>,
}

/// One value for each rating (良好・やや不良・不良).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ByRating<T> {
    pub good: T,
    pub fair: T,
    pub poor: T,
}

impl<T> ByRating<T> {
    pub fn of(&self, rating: crate::records::Rating) -> &T {
        use crate::records::Rating;
        match rating {
            Rating::Good => &self.good,
            Rating::Fair => &self.fair,
            Rating::Poor => &self.poor,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdherenceTexts {
    /// `{drug}`: the first drug of the patient's prescriptions.
    #[serde(default)]
    pub leftover: Option<String>,
    #[serde(default)]
    pub problems: Option<String>,
    pub actions: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CareTexts {
    /// 要支援1 … 要介護5 (seven).
    pub level_names: Vec<String>,
    /// By walking level (four).
    pub walking: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CautionTexts {
    pub items: Vec<Caution>,
    pub call_when: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Caution {
    pub area: CautionArea,
    pub caution: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DentalTexts {
    pub findings: Vec<String>,
    pub visit_notes: Vec<String>,
    pub denture_notes: ByRating<String>,
    pub hygiene_notes: ByRating<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NurseInstructionTexts {
    pub regular: String,
    pub special: String,
    pub special_reason: String,
    pub default_diagnosis: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GuidanceTexts {
    pub pharmacist: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExplanationTexts {
    /// `{physician}`.
    pub explained_by: String,
    /// The patient, among those told.
    pub told_patient: String,
    /// `{conditions}`.
    pub explanation: String,
    pub patient_understanding: String,
    pub family_understanding: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpinionTexts {
    pub care_cautions: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UndisclosedCancerTexts {
    pub body_site: String,
    pub findings: String,
    pub impression: String,
    /// `{clinic}`, `{physician}`.
    pub letter_title: String,
    pub letter: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AcpTexts {
    pub patient: String,
    /// `{physician}`.
    pub physician: String,
    pub care_manager: String,
    pub visiting_nurse: String,
    pub undecided: String,
    pub cannot_say: String,
    pub place_home: String,
    pub place_hospital: String,
    pub place_nursing_home: String,
    pub place_undecided: String,
    pub declines_prolonging: String,
    pub declines_tube_feeding: String,
    pub comfort: String,
}

/// The hospital's letters and summaries (placeholders in `records.toml`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HospitalTexts {
    pub referral_title: String,
    pub referral: String,
    pub discharge_summary_title: String,
    pub discharge_summary: String,
    pub nursing_summary_title: String,
    pub nursing_summary: String,
    pub resolved_note: String,
    pub pneumonia: Stay,
    pub fracture: Stay,
}

/// Why a patient was in hospital.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Stay {
    pub name: String,
    pub icd10: String,
    pub course: String,
    pub imaging: Imaging,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Imaging {
    pub modality: ImagingModality,
    pub body_site: String,
    pub findings: String,
    pub impression: String,
}

/// A record of any kind, written as given: for each patient whose care team
/// has `role` with a member of `profession`, who has a condition `when` (an
/// ICD-10 prefix) if given, and `chance` percent of those. The payload `data`
/// is the kind's data as the API takes it (`RecordData`, camelCase fields);
/// its strings may hold [`Placeholders`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordTemplate {
    pub kind: RecordKind,
    #[serde(deserialize_with = "named")]
    pub role: Role,
    #[serde(deserialize_with = "named")]
    pub profession: Prof,
    #[serde(default = "always")]
    pub chance: u64,
    #[serde(default)]
    pub when: Option<String>,
    pub data: toml::Value,
}

fn always() -> u64 {
    100
}

/// What a template's strings may name: `{day}` (the record's day, ISO
/// 8601), `{day+N}` (N days later), `{patient}`, `{physician}` (the primary
/// physician), `{organization}` (the author's), `{key_person}`,
/// `{key_person_relationship}` and `{conditions}` (the chronic ones, joined
/// with 、).
pub(super) struct Placeholders {
    pub day: chrono::NaiveDate,
    pub values: Vec<(&'static str, String)>,
}

impl Placeholders {
    /// Values of the right shape, to check a template when it is loaded.
    fn sample() -> Placeholders {
        let names = [
            "patient",
            "physician",
            "organization",
            "key_person",
            "key_person_relationship",
            "conditions",
        ];
        Placeholders {
            day: super::LAST_DAY,
            values: names.iter().map(|n| (*n, "○○".to_owned())).collect(),
        }
    }

    fn fill(&self, s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
            let name = &rest[open + 1..open + close];
            if name == "day" {
                out.push_str(&self.day.to_string());
            } else if let Some(days) = name.strip_prefix("day+") {
                let days: u64 = days
                    .parse()
                    .map_err(|_| format!("`{{{name}}}`: days must be a number"))?;
                out.push_str(&(self.day + chrono::Days::new(days)).to_string());
            } else {
                let value = (self.values.iter())
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| format!("unknown placeholder `{{{name}}}` in {s:?}"))?;
                out.push_str(&value.1);
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

impl RecordTemplate {
    /// The record's payload with the placeholders filled in.
    pub fn render(&self, values: &Placeholders) -> Result<RecordData, String> {
        fn walk(v: &mut serde_json::Value, values: &Placeholders) -> Result<(), String> {
            match v {
                serde_json::Value::String(s) => *s = values.fill(s)?,
                serde_json::Value::Array(items) => {
                    for item in items {
                        walk(item, values)?;
                    }
                }
                serde_json::Value::Object(fields) => {
                    for (_, item) in fields.iter_mut() {
                        walk(item, values)?;
                    }
                }
                _ => {}
            }
            Ok(())
        }
        let mut json = serde_json::to_value(&self.data).map_err(|e| e.to_string())?;
        walk(&mut json, values)?;
        RecordData::from_json(self.kind, &json.to_string()).map_err(|e| {
            let message = e.message();
            // "stored … record data is not readable: <serde's reason>"
            let reason = message
                .split_once(": ")
                .map_or(message.as_str(), |(_, r)| r);
            format!("not a {} payload: {reason}", self.kind)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_file_reads() {
        check().unwrap();
        let c = content();
        assert_eq!(c.directory.organizations.len(), 22);
        assert_eq!(c.directory.members.len(), 42);
    }

    #[test]
    fn a_malformed_file_is_named_with_the_key() {
        let text = "[drug.x]\nname = \"a\"\nyj = \"b\"\ndose = \"c\"\nfrequency = \"d\"\nsupply = { daily = \"one\" }\n\
                    [medication]\nfillers = []\n[lab]\n";
        let Err(e) = parse::<Medical>("medical.toml", text) else {
            panic!("a string where a number belongs reads")
        };
        assert_eq!(e.file, "medical.toml");
        assert_eq!(e.key, "drug.x.supply.daily");
        let shown = e.to_string();
        assert!(
            shown.starts_with("schema/demo/medical.toml: at `drug.x.supply.daily`: "),
            "{shown}"
        );

        let e = parse::<Names>("names.toml", "family = [")
            .err()
            .expect("not TOML");
        assert_eq!((e.file, e.key.as_str()), ("names.toml", ""));
        assert!(e.to_string().contains("line 1"), "{e}");

        let text = "[[organization]]\nkey = \"centre\"\nkind = \"CASTLE\"\n";
        let e = parse::<DirectoryFile>("directory.toml", text)
            .err()
            .expect("unknown kind");
        assert_eq!(e.key, "organization[0].kind");
        assert!(
            e.message.contains("unknown organisation kind \"CASTLE\""),
            "{e}"
        );
    }

    /// A template, appended to the real records.toml.
    const TEMPLATE: &str = r#"
[[template]]
kind = "ILLNESS_EXPLANATION"
role = "PRIMARY_PHYSICIAN"
profession = "PHYSICIAN"
chance = 30
[template.data]
explainedBy = "主治医 {physician}"
told = ["本人", "{key_person_relationship}"]
explanation = "{conditions}について説明した（{day}、次回 {day+14}）。"
patientUnderstanding = "できるだけ家で過ごしたい"
"#;

    fn with_template(template: &str) -> String {
        format!("{}\n{template}", include_str!("../../demo/records.toml"))
    }

    #[test]
    fn a_record_template_is_the_kinds_payload_with_placeholders() {
        let records: Records = parse("records.toml", &with_template(TEMPLATE)).unwrap();
        let t = records.template.last().unwrap();
        assert_eq!((t.kind, t.chance), (RecordKind::IllnessExplanation, 30));
        let values = Placeholders {
            day: chrono::NaiveDate::from_ymd_opt(2025, 4, 1).unwrap(),
            values: vec![
                ("physician", "木村\u{3000}拓也".to_owned()),
                ("key_person_relationship", "長男".to_owned()),
                ("conditions", "高血圧症、2型糖尿病".to_owned()),
            ],
        };
        let RecordData::IllnessExplanation(data) = t.render(&values).unwrap() else {
            panic!("another kind")
        };
        assert_eq!(data.explained_by, "主治医 木村\u{3000}拓也");
        assert_eq!(data.told, ["本人", "長男"]);
        assert_eq!(
            data.explanation,
            "高血圧症、2型糖尿病について説明した（2025-04-01、次回 2025-04-15）。"
        );
    }

    #[test]
    fn a_template_that_is_not_its_kinds_payload_is_refused_with_its_key() {
        let broken = TEMPLATE.replace("told = [", "toldd = [");
        let records: Records = parse("records.toml", &with_template(&broken)).unwrap();
        // The appended template follows those of the real file.
        let key = format!("template[{}].data", records.template.len() - 1);
        let medical: Medical =
            parse("medical.toml", include_str!("../../demo/medical.toml")).unwrap();
        let e = records.check(&medical).expect_err("an unknown field");
        assert_eq!((e.file, e.key.as_str()), ("records.toml", key.as_str()));
        assert!(e.message.contains("ILLNESS_EXPLANATION"), "{e}");

        let unknown = TEMPLATE.replace("{day+14}", "{tomorrow}");
        let records: Records = parse("records.toml", &with_template(&unknown)).unwrap();
        let e = records.check(&medical).expect_err("an unknown placeholder");
        assert!(
            e.message.contains("unknown placeholder `{tomorrow}`"),
            "{e}"
        );

        // It reads, but the API would refuse it: nobody's understanding.
        let invalid = TEMPLATE.replace("patientUnderstanding = ", "# ");
        let records: Records = parse("records.toml", &with_template(&invalid)).unwrap();
        let e = records.check(&medical).expect_err("an invalid payload");
        assert_eq!(e.key, key);
        assert!(e.message.contains("patientUnderstanding"), "{e}");
    }

    #[test]
    fn a_member_of_an_unknown_organisation_is_refused() {
        let mut text = include_str!("../../demo/directory.toml").to_owned();
        text = text.replacen(
            "organization = \"home_clinic\"",
            "organization = \"castle\"",
            1,
        );
        let file: DirectoryFile = parse("directory.toml", &text).unwrap();
        let Err(e) = file.resolve() else {
            panic!("resolved")
        };
        assert_eq!(e.key, "member[0].organization");
    }
}
