//! The content of each record kind. Every struct is the GraphQL output object
//! (`ConditionData`), the GraphQL input object (`ConditionDataInput`) and the
//! stored JSON (camelCase, like the API). Field paths in validation errors are
//! the GraphQL field names, relative to the struct.

use async_graphql::{InputObject, SimpleObject};
use base64::Engine;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::checks::{
    DOCUMENT_TEXT_MAX, LONG_MAX, SHORT_MAX, icd10, in_range_i32, long, long_opt, not_before,
    not_future, short, short_opt, yj_code,
};
use super::plausible;
use crate::domain::{DataCategory, Phone, Text};
use crate::error::ApiError;
use crate::graphql::Date;

// ---------------------------------------------------------------------------
// Closed lists
// ---------------------------------------------------------------------------

record_enum! {
    /// Whether a condition is still present.
    pub enum ClinicalStatus {
        Active = "ACTIVE",
        Resolved = "RESOLVED",
    }
}

record_enum! {
    /// Content that moves a condition into a sensitive data category.
    pub enum ConditionSensitivity {
        /// 精神疾患: governed by SENSITIVE_PSYCHIATRIC.
        Psychiatric = "PSYCHIATRIC",
        /// Governed by SENSITIVE_HIV.
        Hiv = "HIV",
        /// 遺伝性疾患 / genetic test results: governed by SENSITIVE_GENETIC.
        Genetic = "GENETIC",
    }
}

record_enum! {
    pub enum AllergyType {
        /// 薬剤アレルギー.
        Drug = "DRUG",
        /// 食物アレルギー.
        Food = "FOOD",
        /// Latex, metal, pollen …
        Other = "OTHER",
    }
}

record_enum! {
    pub enum AllergySeverity {
        Mild = "MILD",
        Moderate = "MODERATE",
        /// Anaphylaxis and other life-threatening reactions.
        Severe = "SEVERE",
        Unknown = "UNKNOWN",
    }
}

record_enum! {
    /// The infections routinely shared before procedures and admissions.
    pub enum Pathogen {
        /// HBs抗原 (hepatitis B).
        HbsAntigen = "HBS_ANTIGEN",
        /// HCV抗体 (hepatitis C).
        HcvAntibody = "HCV_ANTIBODY",
        /// Governed by SENSITIVE_HIV whatever the result.
        Hiv = "HIV",
        /// 梅毒 (TPHA / RPR).
        Syphilis = "SYPHILIS",
        Mrsa = "MRSA",
        /// 疥癬 (scabies; crusted scabies spreads through a facility).
        Scabies = "SCABIES",
        /// ノロウイルス.
        Norovirus = "NOROVIRUS",
        /// インフルエンザ.
        Influenza = "INFLUENZA",
        /// COVID-19 (SARS-CoV-2).
        Covid19 = "COVID_19",
        /// 結核.
        Tuberculosis = "TUBERCULOSIS",
        /// Named in `otherName`.
        Other = "OTHER",
    }
}

record_enum! {
    pub enum InfectionResult {
        Positive = "POSITIVE",
        Negative = "NEGATIVE",
        Unknown = "UNKNOWN",
    }
}

record_enum! {
    /// The laboratory's flag on a result.
    pub enum AbnormalFlag {
        Normal = "NORMAL",
        /// Below the reference range (L).
        Low = "LOW",
        /// Above the reference range (H).
        High = "HIGH",
        /// Abnormal without direction (e.g. a positive qualitative test).
        Abnormal = "ABNORMAL",
        Unknown = "UNKNOWN",
    }
}

record_enum! {
    pub enum MedicationType {
        /// 処方 (internal or external medicine).
        Prescription = "PRESCRIPTION",
        /// 注射.
        Injection = "INJECTION",
    }
}

record_enum! {
    /// 投与経路.
    pub enum MedicationRoute {
        /// 内服.
        Oral = "ORAL",
        /// 外用 (ointment, patch, eye drops …).
        Topical = "TOPICAL",
        Injection = "INJECTION",
        /// 吸入.
        Inhalation = "INHALATION",
        Other = "OTHER",
    }
}

record_enum! {
    pub enum ImagingModality {
        /// 単純X線.
        XRay = "X_RAY",
        Ct = "CT",
        Mri = "MRI",
        /// 超音波.
        Ultrasound = "ULTRASOUND",
        /// 内視鏡.
        Endoscopy = "ENDOSCOPY",
        Other = "OTHER",
    }
}

record_enum! {
    pub enum ClinicalDocumentType {
        /// 診療情報提供書.
        ReferralLetter = "REFERRAL_LETTER",
        /// 退院時サマリー.
        DischargeSummary = "DISCHARGE_SUMMARY",
        /// 看護サマリー.
        NursingSummary = "NURSING_SUMMARY",
        /// 退院調整報告書.
        DischargeCoordinationReport = "DISCHARGE_COORDINATION_REPORT",
        /// 入院診療計画書.
        AdmissionPlan = "ADMISSION_PLAN",
        /// リハビリテーションサマリー.
        RehabilitationSummary = "REHABILITATION_SUMMARY",
        /// 栄養指導・栄養サマリー.
        NutritionSummary = "NUTRITION_SUMMARY",
        /// 健診結果報告書: a health check-up's results (JP-CLINS eCheckup).
        CheckupReport = "CHECKUP_REPORT",
        Other = "OTHER",
    }
}

record_enum! {
    /// A three-step rating: denture fit, oral hygiene, medication adherence.
    pub enum Rating {
        Good = "GOOD",
        Fair = "FAIR",
        Poor = "POOR",
    }
}

record_enum! {
    pub enum DentureType {
        /// 総義歯.
        Full = "FULL",
        /// 部分床義歯.
        Partial = "PARTIAL",
        /// No denture.
        None = "NONE",
    }
}

record_enum! {
    pub enum Jaw {
        /// 上顎.
        Upper = "UPPER",
        /// 下顎.
        Lower = "LOWER",
        Both = "BOTH",
    }
}

record_enum! {
    /// 要介護度.
    pub enum CareLevel {
        /// 要支援1.
        Support1 = "SUPPORT_1",
        /// 要支援2.
        Support2 = "SUPPORT_2",
        /// 要介護1.
        Care1 = "CARE_1",
        /// 要介護2.
        Care2 = "CARE_2",
        /// 要介護3.
        Care3 = "CARE_3",
        /// 要介護4.
        Care4 = "CARE_4",
        /// 要介護5.
        Care5 = "CARE_5",
        /// 非該当 (自立).
        NotApplicable = "NOT_APPLICABLE",
        /// 事業対象者: found eligible by the basic checklist (基本チェックリスト)
        /// for the municipality's comprehensive programme (総合事業) without
        /// a certification.
        ProgramEligible = "PROGRAM_ELIGIBLE",
    }
}

record_enum! {
    /// Where a care-need certification stands.
    pub enum CertificationStatus {
        /// 認定済み.
        Certified = "CERTIFIED",
        /// 申請中: `level` is the expected one, on which the provisional care
        /// plan (暫定ケアプラン) is made, and `validFrom` the day of the
        /// application, from which the decision will apply.
        Applying = "APPLYING",
    }
}

fn certified() -> CertificationStatus {
    CertificationStatus::Certified
}

record_enum! {
    /// 障害高齢者の日常生活自立度 (寝たきり度): 自立, ランクJ (生活自立), A (準寝たきり),
    /// B and C (寝たきり).
    pub enum BedriddenRank {
        Independent = "INDEPENDENT",
        J1 = "J1",
        J2 = "J2",
        A1 = "A1",
        A2 = "A2",
        B1 = "B1",
        B2 = "B2",
        C1 = "C1",
        C2 = "C2",
    }
}

record_enum! {
    /// 認知症高齢者の日常生活自立度: 自立, Ⅰ, Ⅱa, Ⅱb, Ⅲa, Ⅲb, Ⅳ, M.
    pub enum DementiaRank {
        Independent = "INDEPENDENT",
        I = "I",
        IIa = "IIA",
        IIb = "IIB",
        IIIa = "IIIA",
        IIIb = "IIIB",
        IV = "IV",
        M = "M",
    }
}

record_enum! {
    /// How much help an activity of daily living needs.
    pub enum AdlLevel {
        /// 自立.
        Independent = "INDEPENDENT",
        /// 見守り.
        Supervision = "SUPERVISION",
        /// 一部介助.
        PartialAssistance = "PARTIAL_ASSISTANCE",
        /// 全介助.
        FullAssistance = "FULL_ASSISTANCE",
    }
}

record_enum! {
    pub enum HousingType {
        /// 戸建て.
        DetachedHouse = "DETACHED_HOUSE",
        /// 集合住宅.
        Apartment = "APARTMENT",
        /// 公営住宅.
        PublicHousing = "PUBLIC_HOUSING",
        /// サービス付き高齢者向け住宅 and similar.
        ServicedHousing = "SERVICED_HOUSING",
        Other = "OTHER",
    }
}

record_enum! {
    /// 介護力: how far the family can provide care.
    pub enum CareCapacity {
        Sufficient = "SUFFICIENT",
        Limited = "LIMITED",
        /// No one at home can provide care.
        None = "NONE",
    }
}

record_enum! {
    /// Where the patient wishes to be cared for / to die.
    pub enum PlaceWish {
        /// 自宅.
        Home = "HOME",
        Hospital = "HOSPITAL",
        /// 施設.
        NursingHome = "NURSING_HOME",
        Undecided = "UNDECIDED",
    }
}

record_enum! {
    /// The patient's wish about a treatment.
    pub enum Wish {
        /// 希望する.
        Wants = "WANTS",
        /// 希望しない.
        Declines = "DECLINES",
        /// 決めていない / わからない.
        Undecided = "UNDECIDED",
    }
}

// ---------------------------------------------------------------------------
// Medical
// ---------------------------------------------------------------------------

/// A code as the sending system coded it: ICD-10 or 標準病名マスター for a
/// condition, JLAC10 / JLAC11 for a test, YJ or HOT for a drug, LOINC for a
/// document … Kept as sent (FHIR `Coding`: system, code, display), so a
/// record read back — over GraphQL or FHIR — carries the codes it came with.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "CodingInput")]
#[serde(rename_all = "camelCase")]
pub struct Coding {
    /// The code system's URI (`http://jpfhir.jp/fhir/core/CodeSystem/icd-10`,
    /// `urn:oid:1.2.392.200119.4.504` for JLAC10 …).
    pub system: String,
    pub code: String,
    /// The code's name in the code system.
    pub display: Option<String>,
}

/// Most codings one record carries (a drug coded in YJ, HOT and a
/// 一般名 code is three).
const CODINGS_MAX: usize = 10;
/// Longest code-system URI and code.
const CODING_SYSTEM_MAX: usize = 255;
const CODE_MAX: usize = 64;

/// The codings of a record: at most [`CODINGS_MAX`], each with a URI-like
/// system (a scheme and no spaces), a code of printable characters without
/// spaces at either end, and a one-line display.
fn codings(field: &str, list: &[Coding]) -> Result<(), ApiError> {
    if list.len() > CODINGS_MAX {
        return Err(ApiError::bad_input(
            field,
            format!("at most {CODINGS_MAX} codings, got {}", list.len()),
        ));
    }
    for (i, c) in list.iter().enumerate() {
        let at = |f: &str| format!("{field}[{i}].{f}");
        let system = c.system.as_str();
        if system.is_empty()
            || system.len() > CODING_SYSTEM_MAX
            || !system.contains(':')
            || system
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control())
        {
            return Err(ApiError::bad_input(
                at("system"),
                format!("{system:?} is not a code system URI (e.g. urn:oid:1.2.392.200119.4.504)"),
            ));
        }
        if c.code.trim().is_empty()
            || c.code.trim() != c.code
            || c.code.chars().count() > CODE_MAX
            || c.code.chars().any(char::is_control)
        {
            return Err(ApiError::bad_input(
                at("code"),
                format!("must be 1 to {CODE_MAX} characters without surrounding spaces"),
            ));
        }
        short_opt(&at("display"), &c.display)?;
    }
    Ok(())
}

/// 傷病名: a diagnosis or problem.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "ConditionDataInput")]
#[serde(rename_all = "camelCase")]
pub struct ConditionData {
    /// The condition as named by the clinician (「2型糖尿病」).
    pub name: String,
    /// ICD-10 code, e.g. `E11.9`.
    pub icd10: Option<String>,
    pub clinical_status: ClinicalStatus,
    /// 発症日.
    pub onset: Option<Date>,
    /// 転帰日: when the condition resolved; not before `onset`.
    pub resolved_on: Option<Date>,
    /// Psychiatric, HIV or genetic content: moves the record into the sensitive
    /// category of the same name.
    pub sensitivity: Option<ConditionSensitivity>,
    pub note: Option<String>,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl ConditionData {
    pub(super) fn validate(&self, today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        short("name", &self.name)?;
        icd10("icd10", &self.icd10)?;
        not_future("onset", self.onset, today)?;
        not_future("resolvedOn", self.resolved_on, today)?;
        not_before("resolvedOn", self.resolved_on, "onset", self.onset)?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// アレルギー.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "AllergyDataInput")]
#[serde(rename_all = "camelCase")]
pub struct AllergyData {
    /// The drug, food or other substance (「ペニシリン」「そば」).
    pub substance: String,
    pub allergy_type: AllergyType,
    /// What happened (「全身蕁麻疹」).
    pub reaction: Option<String>,
    pub severity: AllergySeverity,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl AllergyData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        short("substance", &self.substance)?;
        long_opt("reaction", &self.reaction, LONG_MAX)
    }
}

/// 感染症: a test for an infection and its result.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "InfectionDataInput")]
#[serde(rename_all = "camelCase")]
pub struct InfectionData {
    pub pathogen: Pathogen,
    /// The pathogen's name when `pathogen` is OTHER (and only then).
    pub other_name: Option<String>,
    pub result: InfectionResult,
    pub tested_on: Option<Date>,
    pub note: Option<String>,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl InfectionData {
    pub(super) fn validate(&self, today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        match (self.pathogen, &self.other_name) {
            (Pathogen::Other, None) => {
                return Err(ApiError::bad_input(
                    "otherName",
                    "is required when pathogen is OTHER",
                ));
            }
            (Pathogen::Other, name) => short_opt("otherName", name)?,
            (_, Some(_)) => {
                return Err(ApiError::bad_input(
                    "otherName",
                    "is only for pathogen OTHER",
                ));
            }
            (_, None) => {}
        }
        not_future("testedOn", self.tested_on, today)?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 薬剤禁忌.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "DrugContraindicationDataInput")]
#[serde(rename_all = "camelCase")]
pub struct DrugContraindicationData {
    /// The drug or drug class (「ワルファリン」「NSAIDs」).
    pub drug: String,
    /// YJ code (12 characters), when a single product is meant.
    pub yj_code: Option<String>,
    /// Why it must not be given.
    pub reason: String,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl DrugContraindicationData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        short("drug", &self.drug)?;
        yj_code("yjCode", &self.yj_code)?;
        long("reason", &self.reason, LONG_MAX)
    }
}

/// 検査結果: one test's result.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "LabResultDataInput")]
#[serde(rename_all = "camelCase")]
pub struct LabResultData {
    /// The test's code, e.g. JLAC10 (`3D010000001926101`); identifies the series
    /// in the summary when present.
    pub code: Option<String>,
    /// The test's name (「HbA1c」「eGFR」).
    pub name: String,
    /// The result as reported: a number (「7.2」) or text (「陰性」「1+」
    /// 「<0.5」). A number is checked against the plausible values of its
    /// test (`docs/plausible-values.md`): HbA1c `-5.0` is refused with
    /// `IMPLAUSIBLE_VALUE`.
    pub value: String,
    /// `value` as a number when it is a plain one (「7.2」「6,500」「-0.5」),
    /// in `unit`; null for a qualitative result. Read by the hub from
    /// `value`, not sent.
    #[graphql(skip_input)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric_value: Option<f64>,
    /// The unit of a numeric result (「%」「mg/dL」「10^3/µL」).
    pub unit: Option<String>,
    pub reference_low: Option<f64>,
    /// Not below `referenceLow`.
    pub reference_high: Option<f64>,
    pub abnormal: AbnormalFlag,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl LabResultData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        if let Some(code) = &self.code {
            let c = code.trim();
            if c.is_empty()
                || c.len() > 20
                || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            {
                return Err(ApiError::bad_input(
                    "code",
                    format!(
                        "{code:?} is not a test code (1 to 20 letters, digits or hyphens, e.g. a JLAC10 code)"
                    ),
                ));
            }
        }
        short("name", &self.name)?;
        short("value", &self.value)?;
        short_opt("unit", &self.unit)?;
        if plausible::is_out_of_range_number(&self.value) {
            return Err(ApiError::implausible(
                "value",
                format!(
                    "{} is not a possible result of any test: a number beyond what the hub can hold",
                    self.value.trim()
                ),
            ));
        }
        if let Some(v) = plausible::parse_number(&self.value)
            && let Some(test) = plausible::of_lab_result(self.code.as_deref(), &self.name)
        {
            test.check("value", v, self.unit.as_deref())?;
        }
        for (field, v) in [
            ("referenceLow", self.reference_low),
            ("referenceHigh", self.reference_high),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(ApiError::bad_input(field, "must be a finite number"));
            }
        }
        if let (Some(low), Some(high)) = (self.reference_low, self.reference_high)
            && low > high
        {
            return Err(ApiError::bad_input(
                "referenceHigh",
                format!(
                    "{} is below referenceLow ({})",
                    plausible::shown(high),
                    plausible::shown(low)
                ),
            ));
        }
        Ok(())
    }
}

impl LabResultData {
    /// What the hub reads from the result as sent ([`LabResultData::numeric_value`]).
    pub(super) fn derive(&mut self) {
        self.numeric_value = plausible::parse_number(&self.value);
    }
}

/// 処方・注射: one prescribed drug or injection.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "PrescriptionDataInput")]
#[serde(rename_all = "camelCase")]
pub struct PrescriptionData {
    pub medication_type: MedicationType,
    /// The product as prescribed (「アムロジピン錠5mg」).
    pub drug: String,
    pub yj_code: Option<String>,
    /// 1回量 (「1錠」).
    pub dose: String,
    pub route: MedicationRoute,
    /// 用法 (「1日1回朝食後」).
    pub frequency: String,
    /// 日数 (1–365).
    pub days: Option<i32>,
    pub start_date: Date,
    /// Last day of administration; not before `startDate`. When absent, `days`
    /// (if given) determines the last day.
    pub end_date: Option<Date>,
    /// The prescribing physician's name.
    pub prescriber: Option<String>,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl PrescriptionData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        short("drug", &self.drug)?;
        yj_code("yjCode", &self.yj_code)?;
        short("dose", &self.dose)?;
        short("frequency", &self.frequency)?;
        in_range_i32("days", self.days, 1, 365)?;
        not_before("endDate", self.end_date, "startDate", Some(self.start_date))?;
        short_opt("prescriber", &self.prescriber)
    }

    /// The last day of administration: `endDate`, else `startDate + days - 1`,
    /// else open-ended (`None`).
    pub fn last_day(&self) -> Option<NaiveDate> {
        self.end_date.map(|d| d.0).or_else(|| {
            let days = u64::try_from(self.days?).ok()?.checked_sub(1)?;
            self.start_date.0.checked_add_days(chrono::Days::new(days))
        })
    }
}

/// 画像診断レポート.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "ImagingReportDataInput")]
#[serde(rename_all = "camelCase")]
pub struct ImagingReportData {
    pub modality: ImagingModality,
    /// 部位 (「胸部」).
    pub body_site: String,
    /// 所見.
    pub findings: String,
    /// 診断 / impression.
    pub impression: Option<String>,
}

impl ImagingReportData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        short("bodySite", &self.body_site)?;
        long("findings", &self.findings, LONG_MAX)?;
        long_opt("impression", &self.impression, LONG_MAX)
    }
}

/// バイタルサイン: at least one measurement, each within its plausible
/// range (`docs/plausible-values.md`: temperature 30–45 °C, SpO2 50–100 % …;
/// beyond, `IMPLAUSIBLE_VALUE`).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "VitalSignsDataInput")]
#[serde(rename_all = "camelCase")]
pub struct VitalSignsData {
    /// Body temperature, °C.
    pub temperature: Option<f64>,
    /// Systolic blood pressure, mmHg.
    pub systolic: Option<f64>,
    /// Diastolic blood pressure, mmHg, not above systolic.
    pub diastolic: Option<f64>,
    /// Pulse, per minute.
    pub pulse: Option<f64>,
    /// Respiratory rate, per minute.
    pub respiratory_rate: Option<f64>,
    /// SpO2, %.
    pub spo2: Option<f64>,
    /// Body weight, kg.
    pub weight_kg: Option<f64>,
}

impl VitalSignsData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        let measured = [
            self.temperature,
            self.systolic,
            self.diastolic,
            self.pulse,
            self.respiratory_rate,
            self.spo2,
            self.weight_kg,
        ];
        if measured.iter().all(Option::is_none) {
            return Err(ApiError::bad_input(
                "temperature",
                "at least one vital sign must be given",
            ));
        }
        for (field, value) in [
            ("temperature", self.temperature),
            ("systolic", self.systolic),
            ("diastolic", self.diastolic),
            ("pulse", self.pulse),
            ("respiratoryRate", self.respiratory_rate),
            ("spo2", self.spo2),
            ("weightKg", self.weight_kg),
        ] {
            let Some(v) = value else { continue };
            if !v.is_finite() {
                return Err(ApiError::bad_input(field, "must be a finite number"));
            }
            if let Some(m) = plausible::of_vital_sign(field) {
                m.check_vital_sign(field, v)?;
            }
        }
        if let (Some(sys), Some(dia)) = (self.systolic, self.diastolic)
            && dia > sys
        {
            return Err(ApiError::bad_input(
                "diastolic",
                format!("{dia} is above systolic ({sys})"),
            ));
        }
        Ok(())
    }
}

/// A file attached to a clinical document (a scanned referral letter …).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "AttachmentInput")]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The file's name, without a directory.
    pub filename: String,
    /// One of application/pdf, image/jpeg, image/png, text/plain.
    pub mime_type: String,
    /// The content, base64 (standard alphabet, padded); at most 512 KiB decoded.
    pub content_base64: String,
}

/// The MIME types an attachment may have (clinical documents, liaison
/// messages).
pub const ATTACHMENT_MIME_TYPES: &[&str] =
    &["application/pdf", "image/jpeg", "image/png", "text/plain"];
/// The largest attachment, decoded. Its base64 (≈ 683 KiB) fits in the
/// default request body limit (`RENKEI_MAX_BODY_BYTES`, 1 MiB).
pub const ATTACHMENT_MAX_BYTES: usize = 512 * 1024;
/// The most attachments on one document or one liaison message; several
/// large files need several messages or a larger body limit.
pub const ATTACHMENTS_MAX: usize = 5;

impl Attachment {
    fn validate(&self) -> Result<(), ApiError> {
        decode_attachment(&self.filename, &self.mime_type, &self.content_base64).map(drop)
    }
}

/// A file to attach, checked and decoded by [`decode_attachment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedAttachment {
    /// Trimmed.
    pub filename: String,
    /// One of [`ATTACHMENT_MIME_TYPES`].
    pub mime_type: &'static str,
    /// 1 to [`ATTACHMENT_MAX_BYTES`] bytes that look like `mime_type`.
    pub content: Vec<u8>,
}

/// The one check of a file attached to anything — a clinical document, a
/// liaison message: a file name without a directory, an accepted MIME type,
/// and base64 content of 1 byte to [`ATTACHMENT_MAX_BYTES`] decoded that
/// looks like its type. Errors name the input fields `filename`, `mimeType`
/// and `contentBase64`; callers prefix them ([`ApiError::in_field`]).
pub(crate) fn decode_attachment(
    filename: &str,
    mime_type: &str,
    content_base64: &str,
) -> Result<DecodedAttachment, ApiError> {
    let filename = Text::parse("filename", filename, SHORT_MAX)?.into_inner();
    if filename.contains(['/', '\\']) {
        return Err(ApiError::bad_input(
            "filename",
            format!("{filename:?} must be a file name without a directory ('/' or '\\')"),
        ));
    }
    let Some(mime_type) = ATTACHMENT_MIME_TYPES
        .iter()
        .copied()
        .find(|m| *m == mime_type.trim())
    else {
        return Err(ApiError::bad_input(
            "mimeType",
            format!(
                "{mime_type:?} is not accepted; use one of {}",
                ATTACHMENT_MIME_TYPES.join(", ")
            ),
        ));
    };
    let too_large = || {
        ApiError::bad_input(
            "contentBase64",
            format!(
                "the file is larger than {} KiB",
                ATTACHMENT_MAX_BYTES / 1024
            ),
        )
    };
    // Refuse an obviously oversized payload before decoding it.
    let encoded = content_base64.trim();
    if encoded.len() > ATTACHMENT_MAX_BYTES.div_ceil(3) * 4 {
        return Err(too_large());
    }
    let content = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| {
            ApiError::bad_input(
                "contentBase64",
                format!("is not base64 (standard alphabet, padded): {e}"),
            )
        })?;
    if content.is_empty() {
        return Err(ApiError::bad_input("contentBase64", "the file is empty"));
    }
    if content.len() > ATTACHMENT_MAX_BYTES {
        return Err(too_large());
    }
    if !looks_like(mime_type, &content) {
        return Err(ApiError::bad_input(
            "contentBase64",
            format!("the content is not a {mime_type} file"),
        ));
    }
    if !named_as(mime_type, &filename) {
        return Err(ApiError::bad_input(
            "filename",
            format!(
                "{filename:?} does not end as a {mime_type} file's name does ({})",
                extensions_of(mime_type)
                    .iter()
                    .map(|e| format!(".{e}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(DecodedAttachment {
        filename,
        mime_type,
        content,
    })
}

/// The file name endings of each accepted type.
fn extensions_of(mime_type: &str) -> &'static [&'static str] {
    match mime_type {
        "application/pdf" => &["pdf"],
        "image/png" => &["png"],
        "image/jpeg" => &["jpg", "jpeg", "jpe"],
        "text/plain" => &["txt", "text"],
        _ => &[],
    }
}

/// Whether a file name fits its declared type: no ending at all, or one of
/// the type's. A reader's computer opens a saved attachment by its name's
/// ending, not by the type the hub checked: 「memo.html」 declared as text
/// would open in a browser, its markup and scripts with it; 「run.exe」 would
/// run.
fn named_as(mime_type: &str, filename: &str) -> bool {
    match filename.rsplit_once('.') {
        None => true,
        Some((_, ending)) => extensions_of(mime_type)
            .iter()
            .any(|e| ending.eq_ignore_ascii_case(e)),
    }
}

/// Whether the content starts the way files of the type do. A reader opens
/// an attachment trusting its declared type, so a PNG declared as a PDF is
/// refused, and so is an HTML or XML document declared as plain text: a
/// viewer that goes by the bytes (or by a file name ending in `.html`) would
/// render its markup, scripts included, where the reader expected a memo.
fn looks_like(mime_type: &str, content: &[u8]) -> bool {
    match mime_type {
        "application/pdf" => content.starts_with(b"%PDF-"),
        "image/png" => content.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => content.starts_with(&[0xFF, 0xD8, 0xFF]),
        "text/plain" => {
            std::str::from_utf8(content).is_ok_and(|s| !s.contains('\0') && !starts_as_markup(s))
        }
        _ => false,
    }
}

/// Whether text opens the way the WHATWG MIME Sniffing Standard recognises
/// an HTML or XML document (`<!DOCTYPE HTML`, `<html`, `<script`, `<!--`,
/// `<?xml` …, after a byte order mark and white space). A memo that merely
/// starts with `<` (「<申し送り> …」) is text and passes.
fn starts_as_markup(text: &str) -> bool {
    /// Tags the standard's "HTML" patterns name; each ends at a space or
    /// `>` (the standard), a tab, a line break or `/` (as browsers read it).
    const TAGS: &[&str] = &[
        "!doctype html",
        "html",
        "head",
        "script",
        "iframe",
        "h1",
        "div",
        "font",
        "table",
        "a",
        "style",
        "title",
        "b",
        "body",
        "br",
        "p",
    ];
    let s = text
        .trim_start_matches('\u{feff}')
        .trim_start_matches(['\t', '\n', '\x0c', '\r', ' '])
        .as_bytes();
    let Some(rest) = s.strip_prefix(b"<") else {
        return false;
    };
    let starts_with = |p: &[u8]| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p);
    if starts_with(b"?xml") || starts_with(b"!--") {
        return true;
    }
    // The standard ends a tag at a space or `>`; a browser reads a tab, a
    // line break or `/` as its end too (`<html\n<script>`, `<svg/onload=…>`).
    TAGS.iter().any(|tag| {
        starts_with(tag.as_bytes())
            && matches!(
                rest.get(tag.len()),
                Some(b' ' | b'>' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/')
            )
    }) || starts_with(b"svg")
}

/// 診療文書: referral letter, discharge summary, nursing summary …
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "ClinicalDocumentDataInput")]
#[serde(rename_all = "camelCase")]
pub struct ClinicalDocumentData {
    pub document_type: ClinicalDocumentType,
    pub title: String,
    /// The document's text, at most 100,000 characters. May be empty only when
    /// the document is an attachment (a scanned letter).
    pub text: String,
    pub author_name: Option<String>,
    /// At most 5 files.
    #[graphql(default)]
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl ClinicalDocumentData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        short("title", &self.title)?;
        let scanned_only = self.text.trim().is_empty() && !self.attachments.is_empty();
        if !scanned_only {
            long("text", &self.text, DOCUMENT_TEXT_MAX)?;
        }
        short_opt("authorName", &self.author_name)?;
        if self.attachments.len() > ATTACHMENTS_MAX {
            return Err(ApiError::bad_input(
                "attachments",
                format!("at most {ATTACHMENTS_MAX} attachments per document"),
            ));
        }
        for (i, a) in self.attachments.iter().enumerate() {
            a.validate()
                .map_err(|e| e.in_field(&format!("attachments[{i}]")))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Dental
// ---------------------------------------------------------------------------

/// 口腔所見.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "OralFindingDataInput")]
#[serde(rename_all = "camelCase")]
pub struct OralFindingData {
    pub findings: String,
    /// 残存歯数 (0–32).
    pub remaining_teeth: Option<i32>,
}

impl OralFindingData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long("findings", &self.findings, LONG_MAX)?;
        in_range_i32("remainingTeeth", self.remaining_teeth, 0, 32)
    }
}

/// 義歯.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "DentureDataInput")]
#[serde(rename_all = "camelCase")]
pub struct DentureData {
    pub denture_type: DentureType,
    pub jaw: Jaw,
    /// 適合.
    pub fit: Rating,
    pub note: Option<String>,
}

impl DentureData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 口腔衛生状態.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "OralHygieneDataInput")]
#[serde(rename_all = "camelCase")]
pub struct OralHygieneData {
    pub level: Rating,
    pub note: Option<String>,
}

impl OralHygieneData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 摂食嚥下評価.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "SwallowingAssessmentDataInput")]
#[serde(rename_all = "camelCase")]
pub struct SwallowingAssessmentData {
    /// The method (「RSST」「改訂水飲みテスト」「VE」「VF」).
    pub method: String,
    /// 摂食嚥下能力グレード / FILS level (1–10).
    pub level: Option<i32>,
    /// 食形態 (「嚥下調整食2-1」「常食」).
    pub diet_form: Option<String>,
    pub findings: String,
}

impl SwallowingAssessmentData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        short("method", &self.method)?;
        in_range_i32("level", self.level, 1, 10)?;
        short_opt("dietForm", &self.diet_form)?;
        long("findings", &self.findings, LONG_MAX)
    }
}

/// 訪問歯科診療の記録.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "VisitingDentalNoteDataInput")]
#[serde(rename_all = "camelCase")]
pub struct VisitingDentalNoteData {
    pub text: String,
}

impl VisitingDentalNoteData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long("text", &self.text, LONG_MAX)
    }
}

// ---------------------------------------------------------------------------
// Pharmacy
// ---------------------------------------------------------------------------

/// 調剤記録: one dispensed drug.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "DispensingDataInput")]
#[serde(rename_all = "camelCase")]
pub struct DispensingData {
    pub drug: String,
    pub yj_code: Option<String>,
    /// The quantity dispensed (> 0).
    pub quantity: f64,
    /// 「錠」「包」「g」 …
    pub unit: String,
    /// 日数 (1–365).
    pub days: Option<i32>,
    pub note: Option<String>,
    /// The codes the sending system gave (kept as sent).
    #[graphql(default)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codings: Vec<Coding>,
}

impl DispensingData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        codings("codings", &self.codings)?;
        short("drug", &self.drug)?;
        yj_code("yjCode", &self.yj_code)?;
        if !(self.quantity.is_finite() && self.quantity > 0.0) {
            return Err(ApiError::bad_input(
                "quantity",
                format!("{} must be a number greater than 0", self.quantity),
            ));
        }
        short("unit", &self.unit)?;
        in_range_i32("days", self.days, 1, 365)?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 居宅療養管理指導報告: the pharmacist's home medication-management report.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "MedicationManagementReportDataInput")]
#[serde(rename_all = "camelCase")]
pub struct MedicationManagementReportData {
    /// 服薬状況.
    pub adherence: Rating,
    /// 残薬.
    pub leftover_medication: Option<String>,
    /// Problems found (side effects, swallowing, interactions …).
    pub problems: Option<String>,
    /// What was done or proposed to the prescriber.
    pub actions: Option<String>,
}

impl MedicationManagementReportData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long_opt("leftoverMedication", &self.leftover_medication, LONG_MAX)?;
        long_opt("problems", &self.problems, LONG_MAX)?;
        long_opt("actions", &self.actions, LONG_MAX)
    }
}

// ---------------------------------------------------------------------------
// Care
// ---------------------------------------------------------------------------

/// 要介護認定.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "CareCertificationDataInput")]
#[serde(rename_all = "camelCase")]
pub struct CareCertificationData {
    /// CERTIFIED unless given (records written before the field existed
    /// are certifications).
    #[graphql(default_with = "certified()")]
    #[serde(default = "certified")]
    pub status: CertificationStatus,
    /// The level decided, or expected while APPLYING.
    pub level: CareLevel,
    /// 認定有効期間の開始.
    pub valid_from: Date,
    /// 認定有効期間の終了; not before `validFrom`.
    pub valid_to: Date,
    /// 保険者番号 (6 digits; 8 accepted).
    pub insurer_number: Option<String>,
    /// 障害高齢者の日常生活自立度, as certified (from the opinion and the survey).
    pub bedridden_rank: Option<BedriddenRank>,
    /// 認知症高齢者の日常生活自立度, as certified.
    pub dementia_rank: Option<DementiaRank>,
}

impl CareCertificationData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        if self.status == CertificationStatus::Applying
            && matches!(
                self.level,
                CareLevel::ProgramEligible | CareLevel::NotApplicable
            )
        {
            return Err(ApiError::bad_input(
                "level",
                "an application expects a level of support or care (SUPPORT_1 … CARE_5)",
            ));
        }
        not_before(
            "validTo",
            Some(self.valid_to),
            "validFrom",
            Some(self.valid_from),
        )?;
        if let Some(n) = &self.insurer_number {
            let n = n.trim();
            if !(n.len() == 6 || n.len() == 8) || !n.chars().all(|c| c.is_ascii_digit()) {
                return Err(ApiError::bad_input(
                    "insurerNumber",
                    format!("{n:?} is not an insurer number (6 digits, e.g. 012211)"),
                ));
            }
        }
        Ok(())
    }
}

/// One service in a care plan.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "PlannedServiceInput")]
#[serde(rename_all = "camelCase")]
pub struct PlannedService {
    /// 「訪問介護」「通所介護」「訪問看護」 …
    pub service_type: String,
    /// The provider's name.
    pub provider: Option<String>,
    /// 「週2回」.
    pub frequency: String,
}

/// The most services in one care plan.
pub const PLANNED_SERVICES_MAX: usize = 50;

/// ケアプラン (居宅サービス計画).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "CarePlanDataInput")]
#[serde(rename_all = "camelCase")]
pub struct CarePlanData {
    /// 長期目標.
    pub long_term_goals: String,
    /// 短期目標.
    pub short_term_goals: String,
    #[graphql(default)]
    #[serde(default)]
    pub services: Vec<PlannedService>,
}

impl CarePlanData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long("longTermGoals", &self.long_term_goals, LONG_MAX)?;
        long("shortTermGoals", &self.short_term_goals, LONG_MAX)?;
        if self.services.len() > PLANNED_SERVICES_MAX {
            return Err(ApiError::bad_input(
                "services",
                format!("at most {PLANNED_SERVICES_MAX} services per plan"),
            ));
        }
        for (i, s) in self.services.iter().enumerate() {
            let at = |f: &str| format!("services[{i}].{f}");
            short(&at("serviceType"), &s.service_type)?;
            short_opt(&at("provider"), &s.provider)?;
            short(&at("frequency"), &s.frequency)?;
        }
        Ok(())
    }
}

/// アセスメント / フェイスシート.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "AssessmentDataInput")]
#[serde(rename_all = "camelCase")]
pub struct AssessmentData {
    pub summary: String,
    pub living_situation: Option<String>,
    /// 課題.
    pub concerns: Option<String>,
}

impl AssessmentData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long("summary", &self.summary, LONG_MAX)?;
        long_opt("livingSituation", &self.living_situation, LONG_MAX)?;
        long_opt("concerns", &self.concerns, LONG_MAX)
    }
}

/// ADL: at least one activity assessed.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "AdlAssessmentDataInput")]
#[serde(rename_all = "camelCase")]
pub struct AdlAssessmentData {
    /// 食事.
    pub eating: Option<AdlLevel>,
    /// 排泄.
    pub excretion: Option<AdlLevel>,
    /// 移乗.
    pub transfer: Option<AdlLevel>,
    /// 歩行.
    pub walking: Option<AdlLevel>,
    /// 入浴.
    pub bathing: Option<AdlLevel>,
    /// 更衣.
    pub dressing: Option<AdlLevel>,
    /// 認知 (how much support decisions and daily life need).
    pub cognition: Option<AdlLevel>,
    pub note: Option<String>,
}

impl AdlAssessmentData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        let levels = [
            self.eating,
            self.excretion,
            self.transfer,
            self.walking,
            self.bathing,
            self.dressing,
            self.cognition,
        ];
        if levels.iter().all(Option::is_none) {
            return Err(ApiError::bad_input(
                "eating",
                "at least one activity must be assessed",
            ));
        }
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 住環境.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "HomeEnvironmentDataInput")]
#[serde(rename_all = "camelCase")]
pub struct HomeEnvironmentData {
    pub housing_type: HousingType,
    /// 独居.
    pub lives_alone: bool,
    /// Steps, stairs, a bath that is hard to enter …
    pub barriers: Option<String>,
    pub note: Option<String>,
}

impl HomeEnvironmentData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long_opt("barriers", &self.barriers, LONG_MAX)?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 介護力 and the key person (キーパーソン).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "FamilyCareCapacityDataInput")]
#[serde(rename_all = "camelCase")]
pub struct FamilyCareCapacityData {
    pub capacity: CareCapacity,
    pub key_person_name: Option<String>,
    /// 続柄 (「長女」).
    pub key_person_relationship: Option<String>,
    pub key_person_phone: Option<String>,
    pub note: Option<String>,
}

impl FamilyCareCapacityData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        short_opt("keyPersonName", &self.key_person_name)?;
        short_opt("keyPersonRelationship", &self.key_person_relationship)?;
        Phone::parse_opt("keyPersonPhone", self.key_person_phone.as_deref())?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 利用サービス: a care service the patient uses.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "ServiceUseDataInput")]
#[serde(rename_all = "camelCase")]
pub struct ServiceUseData {
    /// 「訪問介護」「通所介護」「短期入所」 …
    pub service_type: String,
    pub provider: Option<String>,
    pub frequency: Option<String>,
    pub start_date: Date,
    /// Not before `startDate`.
    pub end_date: Option<Date>,
}

impl ServiceUseData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        short("serviceType", &self.service_type)?;
        short_opt("provider", &self.provider)?;
        short_opt("frequency", &self.frequency)?;
        not_before("endDate", self.end_date, "startDate", Some(self.start_date))
    }
}

/// 訪問看護報告書.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "VisitingNurseReportDataInput")]
#[serde(rename_all = "camelCase")]
pub struct VisitingNurseReportData {
    /// 病状の経過.
    pub condition: String,
    /// 看護の内容.
    pub care_provided: String,
    pub note: Option<String>,
}

impl VisitingNurseReportData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long("condition", &self.condition, LONG_MAX)?;
        long("careProvided", &self.care_provided, LONG_MAX)?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// 日々の観察: a change in condition observed during care.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "DailyObservationDataInput")]
#[serde(rename_all = "camelCase")]
pub struct DailyObservationData {
    pub observation: String,
    /// The observer thinks a clinician should know (気になる変化).
    #[graphql(default)]
    #[serde(default)]
    pub concern: bool,
}

impl DailyObservationData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        long("observation", &self.observation, LONG_MAX)
    }
}

// ---------------------------------------------------------------------------
// End of life
// ---------------------------------------------------------------------------

/// The most participants recorded on one ACP conversation.
pub const ACP_PARTICIPANTS_MAX: usize = 20;

/// ACP (人生会議) / 看取り: the patient's wishes. Any section may be left empty.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "AdvanceCarePlanDataInput")]
#[serde(rename_all = "camelCase")]
pub struct AdvanceCarePlanData {
    /// Where the patient wishes to be cared for (療養場所).
    pub place_of_care: Option<PlaceWish>,
    /// Where the patient wishes to die (最期を迎えたい場所).
    pub place_of_death: Option<PlaceWish>,
    /// 心肺蘇生.
    pub cpr: Option<Wish>,
    /// 延命治療 (ventilation, dialysis …).
    pub life_prolonging_treatment: Option<Wish>,
    /// 経管栄養・胃ろう.
    pub tube_feeding: Option<Wish>,
    /// 入院.
    pub hospitalization: Option<Wish>,
    /// 代理意思決定者.
    pub proxy_name: Option<String>,
    pub proxy_relationship: Option<String>,
    /// Who took part in the conversation (「本人」「長男」「主治医 佐藤」).
    #[graphql(default)]
    #[serde(default)]
    pub participants: Vec<String>,
    /// When the wishes were confirmed; not in the future.
    pub confirmed_on: Option<Date>,
    pub note: Option<String>,
}

impl AdvanceCarePlanData {
    pub(super) fn validate(&self, today: NaiveDate) -> Result<(), ApiError> {
        short_opt("proxyName", &self.proxy_name)?;
        short_opt("proxyRelationship", &self.proxy_relationship)?;
        if self.participants.len() > ACP_PARTICIPANTS_MAX {
            return Err(ApiError::bad_input(
                "participants",
                format!("at most {ACP_PARTICIPANTS_MAX} participants"),
            ));
        }
        for (i, p) in self.participants.iter().enumerate() {
            short(&format!("participants[{i}]"), p)?;
        }
        not_future("confirmedOn", self.confirmed_on, today)?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

// ---------------------------------------------------------------------------
// Emergencies
// ---------------------------------------------------------------------------

/// The most emergency contacts on one sheet.
pub const EMERGENCY_CONTACTS_MAX: usize = 10;
/// The most expected emergencies on one sheet.
pub const EXPECTED_EMERGENCIES_MAX: usize = 10;
/// The most diagnoses or medications typed in by hand on one sheet.
pub const SHEET_LIST_MAX: usize = 30;
/// What to do in one expected emergency: a few sentences, not a care manual.
pub const EMERGENCY_RESPONSE_MAX: usize = 2_000;

/// A hospital named on the emergency information sheet (かかりつけ病院).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "EmergencyFacilityInput")]
#[serde(rename_all = "camelCase")]
pub struct EmergencyFacility {
    /// 「みなみ野市立総合病院 循環器内科」.
    pub name: String,
    pub phone: Option<String>,
    pub note: Option<String>,
}

impl EmergencyFacility {
    fn validate(&self) -> Result<(), ApiError> {
        short("name", &self.name)?;
        Phone::parse_opt("phone", self.phone.as_deref())?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// The hospital that receives the patient in an emergency (救急時の搬送先・受入病院).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "DesignatedHospitalInput")]
#[serde(rename_all = "camelCase")]
pub struct DesignatedHospital {
    pub name: String,
    pub phone: Option<String>,
    /// The hospital keeps a back-up bed (後方支援病床) for the patient.
    #[graphql(default)]
    #[serde(default)]
    pub backup_bed: bool,
    /// How the admission is arranged (「主治医から病院の地域連携室へ連絡」).
    pub note: Option<String>,
}

impl DesignatedHospital {
    fn validate(&self) -> Result<(), ApiError> {
        short("name", &self.name)?;
        Phone::parse_opt("phone", self.phone.as_deref())?;
        long_opt("note", &self.note, LONG_MAX)
    }
}

/// Someone to call in an emergency (緊急連絡先): family, or a professional
/// of the contact chain (「訪問看護ステーション（24時間）」).
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "EmergencyContactInput")]
#[serde(rename_all = "camelCase")]
pub struct EmergencyContact {
    pub name: String,
    /// 続柄 or role: 「長女」「隣人」「主治医」「訪問看護（24時間）」.
    pub relationship: String,
    pub phone: String,
    /// When the contact can be reached (「平日18時以降」「24時間」).
    pub available: Option<String>,
    /// キーパーソン: the person who decides with (or for) the patient. At
    /// most one contact of a sheet.
    #[graphql(default)]
    #[serde(default)]
    pub key_person: bool,
}

impl EmergencyContact {
    fn validate(&self) -> Result<(), ApiError> {
        short("name", &self.name)?;
        short("relationship", &self.relationship)?;
        Phone::parse("phone", &self.phone)?;
        short_opt("available", &self.available)
    }
}

/// An emergency the team expects (想定される急変) and what to do.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "ExpectedEmergencyInput")]
#[serde(rename_all = "camelCase")]
pub struct ExpectedEmergency {
    /// 「低血糖（冷汗・意識低下）」「誤嚥による発熱・呼吸苦」.
    pub situation: String,
    /// What to do (対応), in a few sentences.
    pub response: String,
    /// Whom to call first (「訪問看護ステーション 0157-27-3300」).
    pub call_first: Option<String>,
}

impl ExpectedEmergency {
    fn validate(&self) -> Result<(), ApiError> {
        short("situation", &self.situation)?;
        long("response", &self.response, EMERGENCY_RESPONSE_MAX)?;
        short_opt("callFirst", &self.call_first)
    }
}

/// 救急医療情報: the emergency information sheet (北まるnet's model),
/// registered in advance for ambulance crews and the receiving hospital. It
/// holds what only the sheet knows — whom to call, what to expect, where to
/// go; `Patient.emergencyInformation` shows it beside the hub's live records
/// (conditions, allergies, medications, the ACP's wishes), each under its own
/// category.
///
/// `diagnoses` and `medications` are for what the hub has no records of
/// (typed in by hand from the physician's opinion or the medicine notebook).
/// They are input only: they are read through `Patient.emergencyInformation`
/// under CONDITIONS and MEDICATIONS like the records they stand in for, never
/// as part of this object, so the sheet does not open them to a reader of
/// EMERGENCY_INFORMATION alone.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "EmergencyInformationDataInput")]
#[serde(rename_all = "camelCase")]
pub struct EmergencyInformationData {
    /// かかりつけ病院: where the patient is usually treated.
    pub usual_hospital: Option<EmergencyFacility>,
    /// 緊急連絡先 in the order to call them: 1 to 10, at most one the key person.
    pub emergency_contacts: Vec<EmergencyContact>,
    /// 想定される急変と対応: at most 10.
    #[graphql(default)]
    #[serde(default)]
    pub expected_emergencies: Vec<ExpectedEmergency>,
    /// Where the patient goes in an emergency, and whether a back-up bed is kept.
    pub designated_hospital: Option<DesignatedHospital>,
    /// 傷病名 typed in by hand (at most 30). Input only: read under
    /// CONDITIONS, written with write access to it; without that access,
    /// leave it empty and the diagnoses of the sheet this one replaces are
    /// kept.
    #[graphql(default, skip_output)]
    #[serde(default)]
    pub diagnoses: Vec<String>,
    /// 服薬 typed in by hand (at most 30). Input only: read under
    /// MEDICATIONS, written with write access to it; without that access,
    /// leave it empty and the medications of the sheet this one replaces
    /// are kept.
    #[graphql(default, skip_output)]
    #[serde(default)]
    pub medications: Vec<String>,
    /// 備考: anything else the crew should know (「玄関の鍵は郵便受けの中」).
    pub note: Option<String>,
}

impl EmergencyInformationData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        if let Some(h) = &self.usual_hospital {
            h.validate().map_err(|e| e.in_field("usualHospital"))?;
        }
        if self.emergency_contacts.is_empty()
            || self.emergency_contacts.len() > EMERGENCY_CONTACTS_MAX
        {
            return Err(ApiError::bad_input(
                "emergencyContacts",
                format!(
                    "must hold 1 to {EMERGENCY_CONTACTS_MAX} contacts (whom to call is the point of the sheet), got {}",
                    self.emergency_contacts.len()
                ),
            ));
        }
        for (i, c) in self.emergency_contacts.iter().enumerate() {
            c.validate()
                .map_err(|e| e.in_field(&format!("emergencyContacts[{i}]")))?;
        }
        if let Some((i, _)) = (self.emergency_contacts.iter().enumerate())
            .filter(|(_, c)| c.key_person)
            .nth(1)
        {
            return Err(ApiError::bad_input(
                format!("emergencyContacts[{i}].keyPerson"),
                "only one contact can be the key person",
            ));
        }
        if self.expected_emergencies.len() > EXPECTED_EMERGENCIES_MAX {
            return Err(ApiError::bad_input(
                "expectedEmergencies",
                format!("at most {EXPECTED_EMERGENCIES_MAX} expected emergencies"),
            ));
        }
        for (i, e) in self.expected_emergencies.iter().enumerate() {
            e.validate()
                .map_err(|err| err.in_field(&format!("expectedEmergencies[{i}]")))?;
        }
        if let Some(h) = &self.designated_hospital {
            h.validate().map_err(|e| e.in_field("designatedHospital"))?;
        }
        for (field, list) in [
            ("diagnoses", &self.diagnoses),
            ("medications", &self.medications),
        ] {
            if list.len() > SHEET_LIST_MAX {
                return Err(ApiError::bad_input(
                    field,
                    format!("at most {SHEET_LIST_MAX} entries"),
                ));
            }
            for (i, v) in list.iter().enumerate() {
                short(&format!("{field}[{i}]"), v)?;
            }
        }
        long_opt("note", &self.note, LONG_MAX)
    }

    /// The contact marked as the key person, if any.
    pub fn key_person(&self) -> Option<&EmergencyContact> {
        self.emergency_contacts.iter().find(|c| c.key_person)
    }
}

// ---------------------------------------------------------------------------
// Everyday documents of home care (図 17 of the guide: what medical and care
// staff should share)
// ---------------------------------------------------------------------------

record_enum! {
    /// What a caution is about (留意事項の区分).
    pub enum CautionArea {
        /// 医療処置・疾患の管理 (在宅療養における注意点).
        Medical = "MEDICAL",
        /// 服薬.
        Medication = "MEDICATION",
        /// 食事・水分 (the diet form itself is a swallowing assessment).
        Meals = "MEALS",
        /// 入浴.
        Bathing = "BATHING",
        /// 排泄.
        Excretion = "EXCRETION",
        /// 移動・移乗・転倒.
        Mobility = "MOBILITY",
        /// 睡眠.
        Sleep = "SLEEP",
        /// 認知症の行動・心理症状, communication (コミュニケーション).
        Behaviour = "BEHAVIOUR",
        /// 感染対策.
        InfectionControl = "INFECTION_CONTROL",
        Other = "OTHER",
    }
}

/// One caution: its area and what to do or avoid.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "CautionItemInput")]
#[serde(rename_all = "camelCase")]
pub struct CautionItem {
    pub area: CautionArea,
    /// 「入浴は 38℃ 以下、10 分以内」「ふらつきあり、立ち上がりは見守り」.
    pub caution: String,
}

/// The most cautions on one record.
pub const CAUTION_ITEMS_MAX: usize = 30;
/// One caution: a few sentences.
pub const CAUTION_MAX: usize = 1_000;

/// 留意事項: the standing cautions for home care and daily-life support
/// (在宅療養における注意点, 在宅生活支援や介護の際の留意点). The latest record
/// replaces the earlier ones in the summary; the admission sheet's section
/// of the same name is a snapshot taken at admission.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "CareCautionsDataInput")]
#[serde(rename_all = "camelCase")]
pub struct CareCautionsData {
    /// At least one.
    pub items: Vec<CautionItem>,
    /// 連絡すべき状態: when to call the physician or the visiting nurse.
    pub call_when: Option<String>,
}

impl CareCautionsData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        if self.items.is_empty() {
            return Err(ApiError::bad_input(
                "items",
                "must name at least one caution",
            ));
        }
        if self.items.len() > CAUTION_ITEMS_MAX {
            return Err(ApiError::bad_input(
                "items",
                format!("at most {CAUTION_ITEMS_MAX} cautions"),
            ));
        }
        for (i, item) in self.items.iter().enumerate() {
            long(&format!("items[{i}].caution"), &item.caution, CAUTION_MAX)?;
        }
        long_opt("callWhen", &self.call_when, CAUTION_MAX)
    }
}

/// The most people recorded as told on one explanation.
pub const EXPLANATION_AUDIENCE_MAX: usize = 20;

/// 病状説明と受け止め: what the patient and family were told about the illness
/// and its course, and how each took it — so the care manager, the nurse and
/// the helper speak to them in the same terms (図 17: 患者・利用者とその家族への
/// 病状の説明内容と受け止め方). Governed by ADVANCE_CARE_PLANNING: it is the
/// ground of every conversation about wishes.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "IllnessExplanationDataInput")]
#[serde(rename_all = "camelCase")]
pub struct IllnessExplanationData {
    /// Who explained (「主治医 佐藤」).
    pub explained_by: String,
    /// Who was told (「本人」「長女」); at least one.
    pub told: Vec<String>,
    /// What was explained: diagnosis, course, prognosis, options.
    pub explanation: String,
    /// 本人の受け止め.
    pub patient_understanding: Option<String>,
    /// 家族の受け止め.
    pub family_understanding: Option<String>,
    /// Whether the prognosis (予後) was told.
    pub prognosis_told: Option<bool>,
}

impl IllnessExplanationData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        short("explainedBy", &self.explained_by)?;
        if self.told.is_empty() {
            return Err(ApiError::bad_input("told", "must name who was told"));
        }
        if self.told.len() > EXPLANATION_AUDIENCE_MAX {
            return Err(ApiError::bad_input(
                "told",
                format!("at most {EXPLANATION_AUDIENCE_MAX} people"),
            ));
        }
        for (i, p) in self.told.iter().enumerate() {
            short(&format!("told[{i}]"), p)?;
        }
        long("explanation", &self.explanation, LONG_MAX)?;
        if self.patient_understanding.is_none() && self.family_understanding.is_none() {
            return Err(ApiError::bad_input(
                "patientUnderstanding",
                "record how the patient or the family took it (patientUnderstanding or familyUnderstanding)",
            ));
        }
        long_opt(
            "patientUnderstanding",
            &self.patient_understanding,
            LONG_MAX,
        )?;
        long_opt("familyUnderstanding", &self.family_understanding, LONG_MAX)
    }
}

record_enum! {
    /// The kind of a physician's instruction to a visiting-nurse station.
    pub enum VisitingNurseInstructionType {
        /// 訪問看護指示書: up to 6 months.
        Regular = "REGULAR",
        /// 特別訪問看護指示書: up to 14 days of daily visits after an acute
        /// change; visits are then paid by medical insurance, which the care
        /// manager must know for the care plan.
        Special = "SPECIAL",
        /// 在宅患者訪問点滴注射指示書: up to 7 days.
        IntravenousDrip = "INTRAVENOUS_DRIP",
    }
}

impl VisitingNurseInstructionType {
    /// The longest validity, in days counted inclusively.
    pub fn max_days(self) -> i64 {
        match self {
            // Six months: the longest period the fee schedule allows.
            VisitingNurseInstructionType::Regular => 184,
            VisitingNurseInstructionType::Special => 14,
            VisitingNurseInstructionType::IntravenousDrip => 7,
        }
    }
}

/// 訪問看護指示書 / 特別訪問看護指示書: the physician's instruction to the
/// visiting-nurse station, in force from `validFrom` to `validTo`; the
/// summary lists those in force today.
///
/// Its main diagnosis is a diagnosis: read under CONDITIONS, not under the
/// instruction's own category, which care workers read without reading
/// diagnoses.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(complex, input_name = "VisitingNurseInstructionDataInput")]
#[serde(rename_all = "camelCase")]
pub struct VisitingNurseInstructionData {
    pub instruction_type: VisitingNurseInstructionType,
    /// 指示期間の開始.
    pub valid_from: Date,
    /// 指示期間の終了: at most 6 months (REGULAR), 14 days (SPECIAL) or 7 days
    /// (INTRAVENOUS_DRIP) counted from `validFrom`.
    pub valid_to: Date,
    /// 指示先: the visiting-nurse station's name.
    pub station: String,
    /// 主たる傷病名. Written with the instruction; read under CONDITIONS.
    #[graphql(skip_output)]
    pub main_diagnosis: String,
    /// 留意事項及び指示事項.
    pub instructions: String,
    /// 装着・使用医療機器 (「在宅酸素 2L/分」「膀胱留置カテーテル 16Fr」).
    #[graphql(default)]
    #[serde(default)]
    pub medical_devices: Vec<String>,
    /// SPECIAL only, and required there: 頻回の訪問看護が必要な理由.
    pub reason: Option<String>,
    /// The patient whose record this is, set where a record is read
    /// ([`super::RecordData::read_as_of`]): the main diagnosis's resolver
    /// asks the policy about that patient. Neither input, output nor stored.
    #[graphql(skip)]
    #[serde(skip)]
    pub of_patient: OfPatient,
}

/// The patient a record's content belongs to, for the resolvers of its
/// parts governed by another category. Not part of the content: any two
/// compare equal.
#[derive(Clone, Copy, Debug, Default)]
pub struct OfPatient(pub Option<uuid::Uuid>);

impl PartialEq for OfPatient {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The most medical devices on one instruction.
pub const MEDICAL_DEVICES_MAX: usize = 20;

/// The category a document's diagnoses are read under, as diagnoses are —
/// a visiting-nurse instruction's main diagnosis, a physician's opinion's
/// diagnoses — whatever the document's own category. Always CONDITIONS,
/// whatever they name: were one that names HIV read under SENSITIVE_HIV,
/// its refusal — on a document every reader of CONDITIONS sees — would
/// tell what it names.
pub const DIAGNOSIS_CATEGORY: DataCategory = DataCategory::Conditions;

impl VisitingNurseInstructionData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        not_before(
            "validTo",
            Some(self.valid_to),
            "validFrom",
            Some(self.valid_from),
        )?;
        let days = (self.valid_to.0 - self.valid_from.0).num_days() + 1;
        let max = self.instruction_type.max_days();
        if days > max {
            return Err(ApiError::bad_input(
                "validTo",
                format!(
                    "a {} instruction lasts at most {max} days, this one {days}",
                    self.instruction_type.as_str()
                ),
            ));
        }
        short("station", &self.station)?;
        short("mainDiagnosis", &self.main_diagnosis)?;
        long("instructions", &self.instructions, LONG_MAX)?;
        if self.medical_devices.len() > MEDICAL_DEVICES_MAX {
            return Err(ApiError::bad_input(
                "medicalDevices",
                format!("at most {MEDICAL_DEVICES_MAX} devices"),
            ));
        }
        for (i, d) in self.medical_devices.iter().enumerate() {
            short(&format!("medicalDevices[{i}]"), d)?;
        }
        match (self.instruction_type, &self.reason) {
            (VisitingNurseInstructionType::Special, None) => Err(ApiError::bad_input(
                "reason",
                "is required for a SPECIAL instruction (頻回の訪問看護が必要な理由)",
            )),
            (VisitingNurseInstructionType::Special, reason) => long_opt("reason", reason, LONG_MAX),
            (_, Some(_)) => Err(ApiError::bad_input(
                "reason",
                "is only for a SPECIAL instruction",
            )),
            (_, None) => Ok(()),
        }
    }

    /// In force on `today`.
    pub fn in_force(&self, today: NaiveDate) -> bool {
        self.valid_from.0 <= today && today <= self.valid_to.0
    }
}

record_enum! {
    /// Why the physician's opinion was written.
    pub enum OpinionPurpose {
        /// 新規申請.
        New = "NEW",
        /// 更新申請.
        Renewal = "RENEWAL",
        /// 区分変更申請.
        Change = "CHANGE",
    }
}

/// The most diagnoses on an opinion (the form has three lines).
pub const OPINION_DIAGNOSES_MAX: usize = 3;
/// The most special medical treatments listed (the form lists twelve).
pub const SPECIAL_MEDICAL_CARE_MAX: usize = 12;

/// 主治医意見書: the primary physician's opinion for the care-need
/// certification — the diagnoses behind the loss of function, the
/// independence ranks, the special medical care given, and the cautions
/// for care services. Governed by CARE_CERTIFICATION, with the
/// certification it informs.
///
/// Its diagnoses are diagnoses: read under CONDITIONS, not under
/// CARE_CERTIFICATION, which social workers, dental hygienists and
/// municipal staff read without reading diagnoses.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(complex, input_name = "PhysicianOpinionDataInput")]
#[serde(rename_all = "camelCase")]
pub struct PhysicianOpinionData {
    pub purpose: OpinionPurpose,
    /// 記入日; not in the future.
    pub written_on: Date,
    /// 診断名, the one most behind the loss of function first; 1–3.
    /// Written with the opinion; read under CONDITIONS.
    #[graphql(skip_output)]
    pub diagnoses: Vec<String>,
    pub bedridden_rank: Option<BedriddenRank>,
    pub dementia_rank: Option<DementiaRank>,
    /// 特別な医療 (「酸素療法」「経管栄養」「褥瘡の処置」); at most 12.
    #[graphql(default)]
    #[serde(default)]
    pub special_medical_care: Vec<String>,
    /// 介護サービスにおける医学的観点からの留意事項.
    pub care_cautions: Option<String>,
    /// 特記すべき事項.
    pub remarks: Option<String>,
    /// The patient whose record this is, as on a visiting-nurse
    /// instruction ([`VisitingNurseInstructionData::of_patient`]).
    #[graphql(skip)]
    #[serde(skip)]
    pub of_patient: OfPatient,
}

impl PhysicianOpinionData {
    pub(super) fn validate(&self, today: NaiveDate) -> Result<(), ApiError> {
        not_future("writtenOn", Some(self.written_on), today)?;
        if self.diagnoses.is_empty() || self.diagnoses.len() > OPINION_DIAGNOSES_MAX {
            return Err(ApiError::bad_input(
                "diagnoses",
                format!("must name 1 to {OPINION_DIAGNOSES_MAX} diagnoses"),
            ));
        }
        for (i, d) in self.diagnoses.iter().enumerate() {
            short(&format!("diagnoses[{i}]"), d)?;
        }
        if self.special_medical_care.len() > SPECIAL_MEDICAL_CARE_MAX {
            return Err(ApiError::bad_input(
                "specialMedicalCare",
                format!("at most {SPECIAL_MEDICAL_CARE_MAX} entries"),
            ));
        }
        for (i, c) in self.special_medical_care.iter().enumerate() {
            short(&format!("specialMedicalCare[{i}]"), c)?;
        }
        long_opt("careCautions", &self.care_cautions, LONG_MAX)?;
        long_opt("remarks", &self.remarks, LONG_MAX)
    }
}

record_enum! {
    /// Who is instructed to give home-care guidance (居宅療養管理指導 and the
    /// medical-insurance visits of the same professions).
    pub enum GuidanceService {
        /// 訪問薬剤管理指導 / 居宅療養管理指導 (薬剤師): the physician's instruction
        /// to the pharmacy. Governed by MEDICATIONS.
        Pharmacist = "PHARMACIST",
        /// 居宅療養管理指導 (管理栄養士): the physician's instruction to the
        /// dietitian. Governed by NUTRITION_SWALLOWING.
        Dietitian = "DIETITIAN",
        /// 訪問歯科衛生指導 / 居宅療養管理指導 (歯科衛生士): the dentist's
        /// instruction to the dental hygienist. Governed by DENTAL.
        DentalHygienist = "DENTAL_HYGIENIST",
    }
}

/// The most visits a month an instruction may name (the fee schedules allow
/// at most 8, for terminal cancer or central venous nutrition).
pub const GUIDANCE_VISITS_MAX: i32 = 8;

/// 居宅療養管理指導・訪問指導の指示: a physician's (or, for the hygienist, a
/// dentist's) instruction to visit and guide at home — to whom, what to
/// watch for, how often, from when (and until when, if limited). The
/// summary lists those in force today. Its category follows `service`, so
/// that the one who writes the instruction and the one who carries it out
/// are those who write and read the subject.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "HomeCareGuidanceInstructionDataInput")]
#[serde(rename_all = "camelCase")]
pub struct HomeCareGuidanceInstructionData {
    pub service: GuidanceService,
    /// 指示先: the pharmacy, the dietitian's or the dental clinic's name.
    pub provider: String,
    pub valid_from: Date,
    /// Open-ended when absent; not before `validFrom`.
    pub valid_to: Option<Date>,
    /// 1–8 visits a month.
    pub visits_per_month: Option<i32>,
    /// 指示内容 (「残薬確認と服薬カレンダーの調整」「減塩食の調理指導」).
    pub instructions: String,
}

impl HomeCareGuidanceInstructionData {
    pub(super) fn validate(&self, _today: NaiveDate) -> Result<(), ApiError> {
        short("provider", &self.provider)?;
        not_before("validTo", self.valid_to, "validFrom", Some(self.valid_from))?;
        in_range_i32(
            "visitsPerMonth",
            self.visits_per_month,
            1,
            GUIDANCE_VISITS_MAX,
        )?;
        long("instructions", &self.instructions, LONG_MAX)
    }

    /// In force on `today`.
    pub fn in_force(&self, today: NaiveDate) -> bool {
        self.valid_from.0 <= today && self.valid_to.is_none_or(|to| today <= to.0)
    }

    /// The category the instruction is governed by (see [`GuidanceService`]).
    pub fn category(&self) -> crate::domain::DataCategory {
        use crate::domain::DataCategory as C;
        match self.service {
            GuidanceService::Pharmacist => C::Medications,
            GuidanceService::Dietitian => C::NutritionSwallowing,
            GuidanceService::DentalHygienist => C::Dental,
        }
    }
}

record_enum! {
    /// スクリーニング項目: what the visitor saw or was told, the items of
    /// Kamaishi's 歯科治療依頼スクリーニングシート.
    pub enum DentalScreeningReason {
        /// 痛み (teeth, gums, under the denture).
        Pain = "PAIN",
        /// 義歯の破損.
        DentureBroken = "DENTURE_BROKEN",
        /// 義歯が合わない (loose, sore, falls out).
        DentureIllFitting = "DENTURE_ILL_FITTING",
        /// 義歯紛失.
        DentureLost = "DENTURE_LOST",
        /// 歯の動揺.
        LooseTooth = "LOOSE_TOOTH",
        /// 歯肉の出血・腫れ.
        GumBleedingSwelling = "GUM_BLEEDING_SWELLING",
        /// 口臭.
        BadBreath = "BAD_BREATH",
        /// 噛めない.
        ChewingDifficulty = "CHEWING_DIFFICULTY",
        /// むせ・飲み込みにくい.
        SwallowingChoking = "SWALLOWING_CHOKING",
        /// 口腔乾燥.
        DryMouth = "DRY_MOUTH",
        /// 口内炎・傷.
        OralUlcer = "ORAL_ULCER",
        /// 口腔清掃不良.
        PoorOralHygiene = "POOR_ORAL_HYGIENE",
        /// Described in `otherReason`.
        Other = "OTHER",
    }
}

record_enum! {
    /// Where the dentist is asked to visit.
    pub enum DentalVisitPlace {
        /// 居宅: the patient's home.
        Home = "HOME",
        /// 施設: a nursing home, group home, serviced housing … named in
        /// `facilityName`.
        Facility = "FACILITY",
    }
}

record_enum! {
    /// How soon the visitor asks the dentist to come.
    pub enum DentalVisitUrgency {
        /// 通常: at the clinic's next round.
        Routine = "ROUTINE",
        /// 早めに: within days (pain, a broken denture that stops meals).
        Soon = "SOON",
        /// 至急: today or tomorrow (swelling, bleeding that does not stop,
        /// unable to eat).
        Urgent = "URGENT",
    }
}

/// 歯科往診依頼書 with its 歯科治療依頼スクリーニングシート: the request for a
/// dental home visit that a professional visiting the patient (nurse, care
/// manager, care worker, pharmacist, therapist, dietitian, physician …) sends
/// to a dental clinic or the dental association when the patient wants
/// dental treatment or seems to need it (Kamaishi's 多職種連携フロー). Governed
/// by DENTAL_REFERRAL, which the visitors write and the dental side reads;
/// the summary shows the latest request.
#[derive(SimpleObject, InputObject, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[graphql(input_name = "DentalVisitRequestDataInput")]
#[serde(rename_all = "camelCase")]
pub struct DentalVisitRequestData {
    /// 依頼先: the dental clinic or the dental association (歯科医師会).
    pub requested_provider: String,
    /// 依頼日; not in the future.
    pub requested_on: Date,
    /// What the screening found; at least one, each at most once.
    pub reasons: Vec<DentalScreeningReason>,
    /// When `reasons` holds OTHER (and only then): what it is.
    pub other_reason: Option<String>,
    /// 本人の治療希望: the patient wants dental treatment (else the visitor
    /// judged it needed).
    pub patient_wishes_treatment: bool,
    /// 家族の同意, when asked.
    pub family_consents: Option<bool>,
    pub place_of_visit: DentalVisitPlace,
    /// The facility's name: required when `placeOfVisit` is FACILITY, not
    /// given for HOME.
    pub facility_name: Option<String>,
    /// 希望日時 (「平日午前」「火曜はデイサービス」).
    pub preferred_times: Option<String>,
    /// 座位保持: whether the patient can sit upright for treatment.
    pub can_sit_upright: Option<bool>,
    /// 車椅子の使用.
    pub uses_wheelchair: Option<bool>,
    /// 状況: what the visitor saw or was told.
    pub observations: String,
    pub urgency: Option<DentalVisitUrgency>,
}

impl DentalVisitRequestData {
    pub(super) fn validate(&self, today: NaiveDate) -> Result<(), ApiError> {
        short("requestedProvider", &self.requested_provider)?;
        not_future("requestedOn", Some(self.requested_on), today)?;
        if self.reasons.is_empty() {
            return Err(ApiError::bad_input(
                "reasons",
                "must name at least one screening item",
            ));
        }
        for (i, r) in self.reasons.iter().enumerate() {
            if self.reasons[..i].contains(r) {
                return Err(ApiError::bad_input(
                    format!("reasons[{i}]"),
                    format!("{} is named twice", r.as_str()),
                ));
            }
        }
        match (
            self.reasons.contains(&DentalScreeningReason::Other),
            &self.other_reason,
        ) {
            (true, None) => {
                return Err(ApiError::bad_input(
                    "otherReason",
                    "is required when reasons include OTHER",
                ));
            }
            (true, reason) => short_opt("otherReason", reason)?,
            (false, Some(_)) => {
                return Err(ApiError::bad_input(
                    "otherReason",
                    "is only for reasons that include OTHER",
                ));
            }
            (false, None) => {}
        }
        match (self.place_of_visit, &self.facility_name) {
            (DentalVisitPlace::Facility, None) => {
                return Err(ApiError::bad_input(
                    "facilityName",
                    "is required when placeOfVisit is FACILITY",
                ));
            }
            (DentalVisitPlace::Facility, name) => short_opt("facilityName", name)?,
            (DentalVisitPlace::Home, Some(_)) => {
                return Err(ApiError::bad_input(
                    "facilityName",
                    "is only for placeOfVisit FACILITY",
                ));
            }
            (DentalVisitPlace::Home, None) => {}
        }
        short_opt("preferredTimes", &self.preferred_times)?;
        long("observations", &self.observations, LONG_MAX)
    }
}
