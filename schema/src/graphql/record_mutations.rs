//! One mutation per record kind (`recordCondition`, `recordLabResult`, …),
//! for systems that send one kind at a time. Each is the batch path with one
//! item: the same validation, policy, idempotency, versioning and audit.

use crate::domain::Timestamp;
use async_graphql::{Context, ID, InputObject, Object, Result};

use super::records::{RecordInput, RecordWriteResult, write_records};
use crate::records::*;

macro_rules! per_kind {
    ($( $method:ident, $input:ident, $variant:ident, $data:ident $(, $more:literal)?; )+) => {
        $(
            #[doc = concat!("Input of `", stringify!($method), "`: one record of kind `", stringify!($variant), "`.")]
            #[derive(InputObject)]
            pub struct $input {
                pub patient_id: ID,
                /// Your system's own ID for the record: resubmitting it updates
                /// the record (a new version) instead of adding one.
                pub source_record_id: Option<String>,
                /// When it happened or applies.
                pub effective_at: Timestamp,
                /// 未告知: the patient has not yet been told.
                #[graphql(default)]
                pub undisclosed: bool,
                pub data: $data,
            }
        )+

        /// The per-kind record mutations.
        #[derive(Default)]
        pub struct RecordMutation;

        #[Object]
        impl RecordMutation {
            $(
                #[doc = concat!("Writes one record of kind `", stringify!($variant), "` (idempotent by `sourceRecordId`).")]
                $( #[doc = ""] #[doc = $more] )?
                async fn $method(&self, ctx: &Context<'_>, input: $input) -> Result<RecordWriteResult> {
                    let item = RecordInput {
                        patient_id: input.patient_id,
                        source_record_id: input.source_record_id,
                        effective_at: input.effective_at,
                        undisclosed: input.undisclosed,
                        data: RecordDataInput::$variant(input.data),
                    };
                    let mut written = write_records(ctx, vec![item]).await?;
                    written
                        .pop()
                        .ok_or_else(|| crate::error::ApiError::internal("a one-record write returned nothing").into())
                }
            )+
        }
    };
}

per_kind! {
    record_condition, ConditionRecordInput, Condition, ConditionData;
    record_allergy, AllergyRecordInput, Allergy, AllergyData;
    record_infection, InfectionRecordInput, Infection, InfectionData;
    record_drug_contraindication, DrugContraindicationRecordInput, DrugContraindication, DrugContraindicationData;
    record_lab_result, LabResultRecordInput, LabResult, LabResultData;
    record_prescription, PrescriptionRecordInput, Prescription, PrescriptionData;
    record_imaging_report, ImagingReportRecordInput, ImagingReport, ImagingReportData;
    record_vital_signs, VitalSignsRecordInput, VitalSigns, VitalSignsData;
    record_clinical_document, ClinicalDocumentRecordInput, ClinicalDocument, ClinicalDocumentData;
    record_oral_finding, OralFindingRecordInput, OralFinding, OralFindingData;
    record_denture, DentureRecordInput, Denture, DentureData;
    record_oral_hygiene, OralHygieneRecordInput, OralHygiene, OralHygieneData;
    record_swallowing_assessment, SwallowingAssessmentRecordInput, SwallowingAssessment, SwallowingAssessmentData;
    record_visiting_dental_note, VisitingDentalNoteRecordInput, VisitingDentalNote, VisitingDentalNoteData;
    record_dispensing, DispensingRecordInput, Dispensing, DispensingData;
    record_medication_management_report, MedicationManagementReportRecordInput, MedicationManagementReport, MedicationManagementReportData;
    record_care_certification, CareCertificationRecordInput, CareCertification, CareCertificationData;
    record_care_plan, CarePlanRecordInput, CarePlan, CarePlanData;
    record_assessment, AssessmentRecordInput, Assessment, AssessmentData;
    record_adl_assessment, AdlAssessmentRecordInput, AdlAssessment, AdlAssessmentData;
    record_home_environment, HomeEnvironmentRecordInput, HomeEnvironment, HomeEnvironmentData;
    record_family_care_capacity, FamilyCareCapacityRecordInput, FamilyCareCapacity, FamilyCareCapacityData;
    record_service_use, ServiceUseRecordInput, ServiceUse, ServiceUseData;
    record_visiting_nurse_report, VisitingNurseReportRecordInput, VisitingNurseReport, VisitingNurseReportData;
    record_daily_observation, DailyObservationRecordInput, DailyObservation, DailyObservationData;
    record_advance_care_plan, AdvanceCarePlanRecordInput, AdvanceCarePlan, AdvanceCarePlanData;
    record_emergency_information, EmergencyInformationRecordInput, EmergencyInformation, EmergencyInformationData,
        "Hand-typed `diagnoses` need write access to CONDITIONS, `medications` to MEDICATIONS. \
         Without it, leave the list empty (or out): it is carried forward from the sheet this \
         one replaces — the record's current version when `sourceRecordId` names one, else the \
         patient's newest sheet — so a care manager updating the contacts does not erase the \
         physician's diagnoses. With it, the list you send replaces the old one (an empty list \
         empties it).";
    record_care_cautions, CareCautionsRecordInput, CareCautions, CareCautionsData;
    record_illness_explanation, IllnessExplanationRecordInput, IllnessExplanation, IllnessExplanationData;
    record_visiting_nurse_instruction, VisitingNurseInstructionRecordInput, VisitingNurseInstruction, VisitingNurseInstructionData;
    record_physician_opinion, PhysicianOpinionRecordInput, PhysicianOpinion, PhysicianOpinionData;
    record_home_care_guidance_instruction, HomeCareGuidanceInstructionRecordInput, HomeCareGuidanceInstruction, HomeCareGuidanceInstructionData;
    record_dental_visit_request, DentalVisitRequestRecordInput, DentalVisitRequest, DentalVisitRequestData;
}
