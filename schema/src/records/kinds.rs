//! The one list of record kinds: each kind's database name, its field in
//! `RecordDataInput`, its data struct, its data category and its summary rule.

use chrono::NaiveDate;

use super::payloads::*;
use crate::domain::DataCategory;
use crate::error::ApiError;

/// Declares the kinds once and derives from the list: [`RecordKind`], the output
/// union [`RecordData`], the oneof input [`RecordDataInput`], and the dispatch of
/// validation and storage to each kind's struct.
macro_rules! records {
    (
        $(
            $(#[$doc:meta])*
            $variant:ident = $db:literal, $field:literal, $data:ident;
        )+
    ) => {
        record_enum! {
            /// The kind of a shared record. Stored in its own column; the content
            /// is the kind's data object.
            pub enum RecordKind {
                $( $(#[$doc])* $variant = $db ),+
            }
        }

        impl RecordKind {
            /// The kind's field in `RecordDataInput` (`labResult`), which also
            /// prefixes the field paths of validation errors.
            pub fn input_field(self) -> &'static str {
                match self {
                    $( RecordKind::$variant => $field ),+
                }
            }
        }

        /// The content of a record: one object type per kind.
        #[derive(async_graphql::Union, Clone, Debug, PartialEq)]
        pub enum RecordData {
            $( $(#[$doc])* $variant($data) ),+
        }

        /// The content of a record to write: exactly one field, named after the
        /// kind (`{ labResult: { … } }`).
        #[derive(async_graphql::OneofObject, Clone, Debug, PartialEq)]
        pub enum RecordDataInput {
            $( $(#[$doc])* $variant($data) ),+
        }

        impl From<RecordDataInput> for RecordData {
            fn from(input: RecordDataInput) -> Self {
                let data = match input {
                    $( RecordDataInput::$variant(d) => RecordData::$variant(d) ),+
                };
                data.derived()
            }
        }

        impl RecordData {
            pub fn kind(&self) -> RecordKind {
                match self {
                    $( RecordData::$variant(_) => RecordKind::$variant ),+
                }
            }

            /// Validates the content. Errors are `BAD_USER_INPUT` whose field path
            /// starts with the kind's input field: `condition.name`,
            /// `labResult.referenceHigh`, `clinicalDocument.attachments[0].mimeType`.
            /// `today` is the region's date, for dates that must not lie in the future.
            pub fn validate(&self, today: NaiveDate) -> Result<(), ApiError> {
                match self {
                    $( RecordData::$variant(d) => d.validate(today).map_err(|e| e.in_field($field)) ),+
                }
            }

            /// The stored form: JSON of the kind's struct only (the kind has its
            /// own column), with what the hub derives ([`RecordData::derived`]).
            pub fn to_json(&self) -> String {
                let json = match &self.clone().derived() {
                    $( RecordData::$variant(d) => serde_json::to_string(d) ),+
                };
                // Plain structs of strings, numbers, booleans and dates: cannot fail.
                json.expect("record data serialises to JSON")
            }

            /// Reads the stored form back, deriving what a record stored before
            /// the hub derived it lacks ([`RecordData::derived`]); a failure
            /// means the database holds something this version did not write,
            /// an internal error.
            pub fn from_json(kind: RecordKind, json: &str) -> Result<Self, ApiError> {
                let parsed = match kind {
                    $( RecordKind::$variant => serde_json::from_str::<$data>(json).map(RecordData::$variant) ),+
                };
                parsed.map(RecordData::derived).map_err(|e| {
                    ApiError::internal(format_args!("stored {kind} record data is not readable: {e}"))
                })
            }
        }
    };
}

records! {
    // Medical: the national "6 items" and what hospitals share.
    /// 傷病名: a diagnosis or problem.
    Condition = "CONDITION", "condition", ConditionData;
    /// アレルギー.
    Allergy = "ALLERGY", "allergy", AllergyData;
    /// 感染症: HBs antigen, HCV antibody, HIV, syphilis, MRSA …
    Infection = "INFECTION", "infection", InfectionData;
    /// 薬剤禁忌.
    DrugContraindication = "DRUG_CONTRAINDICATION", "drugContraindication", DrugContraindicationData;
    /// 検査結果: one test's result.
    LabResult = "LAB_RESULT", "labResult", LabResultData;
    /// 処方・注射: a prescribed drug or injection.
    Prescription = "PRESCRIPTION", "prescription", PrescriptionData;
    /// 画像診断レポート.
    ImagingReport = "IMAGING_REPORT", "imagingReport", ImagingReportData;
    /// バイタルサイン.
    VitalSigns = "VITAL_SIGNS", "vitalSigns", VitalSignsData;
    /// 診療文書: referral letter, discharge summary, nursing summary …
    ClinicalDocument = "CLINICAL_DOCUMENT", "clinicalDocument", ClinicalDocumentData;
    // Dental (swallowing is its own category, NUTRITION_SWALLOWING).
    /// 口腔所見.
    OralFinding = "ORAL_FINDING", "oralFinding", OralFindingData;
    /// 義歯.
    Denture = "DENTURE", "denture", DentureData;
    /// 口腔衛生状態.
    OralHygiene = "ORAL_HYGIENE", "oralHygiene", OralHygieneData;
    /// 摂食嚥下評価.
    SwallowingAssessment = "SWALLOWING_ASSESSMENT", "swallowingAssessment", SwallowingAssessmentData;
    /// 訪問歯科診療の記録.
    VisitingDentalNote = "VISITING_DENTAL_NOTE", "visitingDentalNote", VisitingDentalNoteData;
    // Pharmacy.
    /// 調剤記録.
    Dispensing = "DISPENSING", "dispensing", DispensingData;
    /// 居宅療養管理指導報告: the pharmacist's home medication-management report.
    MedicationManagementReport = "MEDICATION_MANAGEMENT_REPORT", "medicationManagementReport", MedicationManagementReportData;
    // Care.
    /// 要介護認定: care-need certification (要支援1–2 / 要介護1–5) and its validity.
    CareCertification = "CARE_CERTIFICATION", "careCertification", CareCertificationData;
    /// ケアプラン (居宅サービス計画): goals and services.
    CarePlan = "CARE_PLAN", "carePlan", CarePlanData;
    /// アセスメント / フェイスシート.
    Assessment = "ASSESSMENT", "assessment", AssessmentData;
    /// ADL: eating, excretion, transfer, walking, bathing, dressing, cognition.
    AdlAssessment = "ADL_ASSESSMENT", "adlAssessment", AdlAssessmentData;
    /// 住環境.
    HomeEnvironment = "HOME_ENVIRONMENT", "homeEnvironment", HomeEnvironmentData;
    /// 介護力 and the key person (キーパーソン).
    FamilyCareCapacity = "FAMILY_CARE_CAPACITY", "familyCareCapacity", FamilyCareCapacityData;
    /// 利用サービス: a care service the patient uses.
    ServiceUse = "SERVICE_USE", "serviceUse", ServiceUseData;
    /// 訪問看護報告書.
    VisitingNurseReport = "VISITING_NURSE_REPORT", "visitingNurseReport", VisitingNurseReportData;
    /// 日々の観察: a change in condition observed during care.
    DailyObservation = "DAILY_OBSERVATION", "dailyObservation", DailyObservationData;
    // End of life.
    /// ACP (人生会議) / 看取り: wishes for care at the end of life (わたしのきぼうノート).
    AdvanceCarePlan = "ADVANCE_CARE_PLAN", "advanceCarePlan", AdvanceCarePlanData;
    // Emergencies.
    /// 救急医療情報: the emergency information sheet — contacts, expected
    /// emergencies, where to go (`Patient.emergencyInformation` composes it
    /// with the live records).
    EmergencyInformation = "EMERGENCY_INFORMATION", "emergencyInformation", EmergencyInformationData;
    // Everyday documents of home care.
    /// 留意事項: standing cautions for home care and daily-life support.
    CareCautions = "CARE_CAUTIONS", "careCautions", CareCautionsData;
    /// 病状説明と受け止め: what the patient and family were told, and how they took it.
    IllnessExplanation = "ILLNESS_EXPLANATION", "illnessExplanation", IllnessExplanationData;
    /// 訪問看護指示書 / 特別訪問看護指示書: the physician's instruction to the
    /// visiting-nurse station, with its validity.
    VisitingNurseInstruction = "VISITING_NURSE_INSTRUCTION", "visitingNurseInstruction", VisitingNurseInstructionData;
    /// 主治医意見書: the primary physician's opinion for the care-need certification.
    PhysicianOpinion = "PHYSICIAN_OPINION", "physicianOpinion", PhysicianOpinionData;
    /// 居宅療養管理指導・訪問指導の指示: the instruction to a pharmacist, dietitian
    /// or dental hygienist to visit and guide at home.
    HomeCareGuidanceInstruction = "HOME_CARE_GUIDANCE_INSTRUCTION", "homeCareGuidanceInstruction", HomeCareGuidanceInstructionData;
    /// 歯科往診依頼書 + 歯科治療依頼スクリーニングシート: a visitor's request for
    /// a dental home visit, with the screening that prompted it.
    DentalVisitRequest = "DENTAL_VISIT_REQUEST", "dentalVisitRequest", DentalVisitRequestData;
}

/// How the patient summary uses records of a kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SummaryRule {
    /// Only in the timeline (documents, notes, observations).
    Never,
    /// Every record that is in force today ([`RecordData::is_current`]):
    /// active conditions, allergies, current prescriptions …
    WhileCurrent,
    /// The newest record of each series ([`RecordData::series_key`]): the latest
    /// lab result per test, the latest ADL, the latest ACP …
    LatestOfSeries,
}

impl RecordKind {
    /// The data category of the kind: what the access policy decides on unless
    /// the content is sensitive ([`RecordData::category`]).
    pub fn default_category(self) -> DataCategory {
        use DataCategory as C;
        use RecordKind as K;
        match self {
            K::Condition => C::Conditions,
            K::Allergy => C::Allergies,
            K::Infection => C::Infections,
            K::DrugContraindication => C::DrugContraindications,
            K::LabResult => C::LabResults,
            K::Prescription => C::Medications,
            K::ImagingReport => C::Imaging,
            K::VitalSigns => C::Observations,
            K::ClinicalDocument => C::ClinicalDocuments,
            K::OralFinding | K::Denture | K::OralHygiene | K::VisitingDentalNote => C::Dental,
            K::SwallowingAssessment => C::NutritionSwallowing,
            K::Dispensing | K::MedicationManagementReport => C::Dispensing,
            K::CareCertification => C::CareCertification,
            K::CarePlan | K::Assessment | K::ServiceUse => C::CarePlan,
            K::AdlAssessment => C::Adl,
            K::HomeEnvironment => C::HomeEnvironment,
            K::FamilyCareCapacity => C::FamilyCareCapacity,
            K::VisitingNurseReport => C::VisitingNurseReports,
            K::DailyObservation => C::Observations,
            K::AdvanceCarePlan => C::AdvanceCarePlanning,
            K::EmergencyInformation => C::EmergencyInformation,
            K::CareCautions => C::Cautions,
            // The ground of every conversation about wishes: read by those
            // who hold those conversations.
            K::IllnessExplanation => C::AdvanceCarePlanning,
            // With the reports that answer it: the care manager must know
            // when a special instruction moves visits to medical insurance.
            K::VisitingNurseInstruction => C::VisitingNurseReports,
            K::PhysicianOpinion => C::CareCertification,
            // The pharmacist's; the dietitian's and hygienist's follow their
            // service ([`RecordData::category`]).
            K::HomeCareGuidanceInstruction => C::Medications,
            // Written by whoever visits, read by the dental side: not DENTAL,
            // which only dentists and hygienists write.
            K::DentalVisitRequest => C::DentalReferral,
        }
    }

    /// The professions whose document this kind is, when it is not
    /// everyone's who writes its category: a 主治医意見書 and a 訪問看護指示書
    /// are a physician's, though care managers write CARE_CERTIFICATION and
    /// nurses VISITING_NURSE_REPORTS — and a newer record of the kind
    /// replaces the physician's in the summary. `None`: the category
    /// decides alone. (A system has no profession: its organisation's kind
    /// decides, `policy::may_author`.)
    pub fn authored_by(self) -> Option<&'static [crate::domain::Profession]> {
        use crate::domain::Profession as P;
        match self {
            RecordKind::PhysicianOpinion | RecordKind::VisitingNurseInstruction => {
                Some(&[P::Physician])
            }
            // The instruction to visit and guide at home: the physician's
            // (to a pharmacist or a dietitian) or the dentist's (to a
            // dental hygienist) — not the pharmacist's, who writes
            // MEDICATIONS, its category for the pharmacist's service.
            RecordKind::HomeCareGuidanceInstruction => Some(&[P::Physician, P::Dentist]),
            _ => None,
        }
    }

    pub fn summary_rule(self) -> SummaryRule {
        use RecordKind as K;
        use SummaryRule as R;
        match self {
            K::Condition
            | K::Allergy
            | K::Infection
            | K::DrugContraindication
            | K::Prescription
            | K::VisitingNurseInstruction
            | K::HomeCareGuidanceInstruction => R::WhileCurrent,
            K::LabResult
            | K::Dispensing
            | K::CareCertification
            | K::CarePlan
            | K::AdlAssessment
            | K::HomeEnvironment
            | K::FamilyCareCapacity
            | K::AdvanceCarePlan
            | K::EmergencyInformation
            | K::CareCautions
            | K::IllnessExplanation
            | K::PhysicianOpinion
            // The latest request (one series per patient): what the dental
            // side was last asked, and by whom — a new request replaces it.
            | K::DentalVisitRequest => R::LatestOfSeries,
            K::ImagingReport
            | K::VitalSigns
            | K::ClinicalDocument
            | K::OralFinding
            | K::Denture
            | K::OralHygiene
            | K::SwallowingAssessment
            | K::VisitingDentalNote
            | K::MedicationManagementReport
            | K::Assessment
            | K::ServiceUse
            | K::VisitingNurseReport
            | K::DailyObservation => R::Never,
        }
    }
}
