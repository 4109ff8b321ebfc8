//! The URIs the hub reads and writes: code systems, identifier systems and
//! profiles of JP Core and JP-CLINS. One place, so that the importer and the
//! exporter cannot disagree on a spelling (note JP-CLINS's lower-case
//! "Idsystem" in the insured-person identifier's system).

/// 医療機関コード (10 digits) as an Organization identifier.
pub const MEDICAL_INSTITUTION_CODE: &str =
    "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no";
/// 被保険者個人識別子 (`保険者番号:記号:番号:枝番`) as a Patient identifier.
pub const INSURED_PERSON_ID: &str = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID";
/// The resource types of a JP-CLINS collection bundle, as `meta.tag`.
pub const CLINS_BUNDLE_RESOURCE_TYPE: &str =
    "http://jpfhir.jp/fhir/clins/CodeSystem/BundleResourceType_CS";
/// An organisation's local patient ID (院内患者ID): JP Core's pattern is
/// `urn:oid:1.2.392.100495.20.3.51.1` + the 10-digit institution code.
pub const LOCAL_PATIENT_ID_OID_PREFIX: &str = "urn:oid:1.2.392.100495.20.3.51.1";

/// JP Core's resource instance identifier (リソースインスタンスID).
pub const RESOURCE_INSTANCE_IDENTIFIER: &str =
    "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier";
/// ISO 21090 name representation: `IDE` (kanji), `SYL` (kana reading).
pub const NAME_REPRESENTATION: &str =
    "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";
/// LOINC (document types of JP-CLINS compositions).
pub const LOINC: &str = "http://loinc.org";

/// ICD-10 (ICD-10 2013 as used in Japan).
pub const ICD10: &str = "http://jpfhir.jp/fhir/core/CodeSystem/icd-10";
/// 標準病名マスター 病名交換用コード.
pub const DISEASE_EXCHANGE_CODE: &str = "http://medis.or.jp/CodeSystem/master-disease-keyNumber";
/// JLAC10.
pub const JLAC10: &str = "urn:oid:1.2.392.200119.4.504";
/// JLAC11.
pub const JLAC11: &str = "http://jpfhir.jp/fhir/core/CodeSystem/JLAC11";
/// YJ code (個別医薬品コード).
pub const YJ: &str = "urn:oid:1.2.392.100495.20.2.73";
/// HOT9 (HOT code, 9 digits).
pub const HOT9: &str = "urn:oid:1.2.392.200119.4.403.1";

/// JP Core profiles (v1.1.x canonical URLs).
/// HL7 v3 ActCode: the security labels' policy codes.
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// ActCode `NOPAT`, a refrain policy: not to be disclosed to the patient,
/// family or caregivers without the attending provider's authorisation —
/// the hub's 未告知 (`undisclosed`), carried in `meta.security`.
pub const NOT_FOR_THE_PATIENT: &str = "NOPAT";
/// ActCode information sensitivity policies, in `meta.security`: the
/// label, the hub's condition sensitivity (`ConditionSensitivity`) it
/// stands for, and the category that keeps such data. A record of a
/// sensitive category is exported with its label; a diagnosis sent with
/// one is of that sensitivity — so that what was exported from a sensitive
/// category and is sent back stays in it.
pub const SENSITIVITY_LABELS: &[(&str, &str, &str)] = &[
    ("PSY", "PSYCHIATRIC", "SENSITIVE_PSYCHIATRIC"),
    ("HIV", "HIV", "SENSITIVE_HIV"),
    ("GDIS", "GENETIC", "SENSITIVE_GENETIC"),
];

pub mod profile {
    pub const PATIENT: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient";
    pub const ORGANIZATION: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Organization";
    pub const PRACTITIONER: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Practitioner";
    pub const CONDITION: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Condition";
    pub const ALLERGY_INTOLERANCE: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_AllergyIntolerance";
    pub const OBSERVATION_LAB: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Observation_LabResult";
    pub const OBSERVATION_VITAL: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Observation_VitalSigns";
    pub const OBSERVATION_COMMON: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Observation_Common";
    pub const MEDICATION_REQUEST: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_MedicationRequest";
    pub const MEDICATION_DISPENSE: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_MedicationDispense";
    pub const DOCUMENT_REFERENCE: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_DocumentReference";
    pub const COMPOSITION: &str = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Composition";
    /// JP-CLINS 感染症 (infection) results.
    pub const OBSERVATION_INFECTION: &str =
        "http://jpfhir.jp/fhir/clins/StructureDefinition/JP_Observation_InfectionLabo_eCS";
    pub const DIAGNOSTIC_REPORT_RADIOLOGY: &str =
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_DiagnosticReport_Radiology";
}
