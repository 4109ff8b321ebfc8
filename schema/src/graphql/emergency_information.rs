//! 救急医療情報 (emergency information, 北まるnet's model) in GraphQL:
//! `Patient.emergencyInformation`, what an ambulance crew or a receiving
//! hospital needs on one page.
//!
//! It composes two sources, each part under its own data category:
//! - the latest emergency information *sheet* (a record of kind
//!   `EMERGENCY_INFORMATION`, written like any record: versioned, idempotent
//!   by `sourceRecordId`, in the timeline) — whom to call, what to expect,
//!   where to go;
//! - the *live* records the hub already holds — active conditions, allergies,
//!   current prescriptions, latest dispensing, the latest ACP — and the care
//!   team's physicians and care manager.
//!
//! Every part passes [`gate`] with its category, so break-the-glass readers
//! get exactly the emergency categories and the rest is `null` with
//! `FORBIDDEN_FIELD`. The candidate records come from the summary loader (one
//! query for every patient in the request).

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};

use super::gate;
use super::records::{CallerVersions, PatientSummary, Record, load_member};
use super::types::{CareTeamMembership, Member, Organization, load_organization};
use crate::domain::{CareTeamRole, DataCategory};
use crate::policy::PatientAccess;
use crate::records::{EmergencyInformationData, RecordData, RecordKind};

/// `Patient.emergencyInformation`. Built from the patient's capability only.
pub struct EmergencyInformation {
    pub(crate) access: PatientAccess,
}

impl EmergencyInformation {
    /// The summary's parts and candidate records: the same gate, the same
    /// loader, the same rule for sensitive records.
    fn summary(&self) -> PatientSummary {
        PatientSummary {
            access: self.access.clone(),
        }
    }

    /// The latest sheet, unchecked: callers gate first.
    async fn latest_sheet(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<(Record, EmergencyInformationData)>> {
        let candidates = self.summary().candidates(ctx).await?;
        let Some(record) = candidates
            .of_kind(RecordKind::EmergencyInformation, &self.access)?
            .next()
        else {
            return Ok(None);
        };
        match &record.data {
            RecordData::EmergencyInformation(data) => Ok(Some((record.clone(), data.clone()))),
            _ => Err(crate::error::ApiError::internal("an emergency sheet of another kind").into()),
        }
    }

    /// The readable records of one kind in force today, newest first; `None`
    /// (and `FORBIDDEN_FIELD`) when the category is closed.
    async fn records(
        &self,
        ctx: &Context<'_>,
        category: DataCategory,
        kind: RecordKind,
    ) -> Result<Option<Vec<Record>>> {
        self.summary().part(ctx, category, kind).await
    }

    /// A list typed in on the sheet, read under `category` (and the sheet's
    /// own category, where it is written).
    async fn reported(
        &self,
        ctx: &Context<'_>,
        category: DataCategory,
        pick: fn(EmergencyInformationData) -> Vec<String>,
    ) -> Result<Option<Vec<String>>> {
        if gate(ctx, &self.access, category)?.is_none()
            || gate(ctx, &self.access, DataCategory::EmergencyInformation)?.is_none()
        {
            return Ok(None);
        }
        Ok(Some(
            self.latest_sheet(ctx)
                .await?
                .map(|(_, data)| pick(data))
                .unwrap_or_default(),
        ))
    }

    async fn member_in_role(
        &self,
        ctx: &Context<'_>,
        role: CareTeamRole,
    ) -> Result<Option<CareTeamMembership>> {
        self.summary().member_in_role(ctx, role).await
    }
}

/// 救急医療情報: the emergency information sheet beside the live records.
/// Each field names its data category; a field the caller may not read is
/// `null` with `FORBIDDEN_FIELD`, the rest is delivered. Emergency access
/// (break-the-glass) opens EMERGENCY_INFORMATION, CONDITIONS, ALLERGIES,
/// MEDICATIONS and ADVANCE_CARE_PLANNING.
#[Object]
impl EmergencyInformation {
    /// EMERGENCY_INFORMATION. The latest sheet: contacts and key person,
    /// usual and designated hospital, expected emergencies and what to do.
    /// `null` without an error when none is registered.
    async fn sheet(&self, ctx: &Context<'_>) -> Result<Option<EmergencySheet>> {
        if gate(ctx, &self.access, DataCategory::EmergencyInformation)?.is_none() {
            return Ok(None);
        }
        Ok(self
            .latest_sheet(ctx)
            .await?
            .map(|(record, data)| EmergencySheet { record, data }))
    }
    /// CONDITIONS. Active conditions from the hub's records (sensitive ones
    /// only with their own category).
    async fn active_conditions(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.records(ctx, DataCategory::Conditions, RecordKind::Condition)
            .await
    }
    /// CONDITIONS (and EMERGENCY_INFORMATION, where they are written).
    /// Diagnoses typed in by hand on the sheet, for what the hub has no
    /// records of.
    async fn reported_diagnoses(&self, ctx: &Context<'_>) -> Result<Option<Vec<String>>> {
        self.reported(ctx, DataCategory::Conditions, |d| d.diagnoses)
            .await
    }
    /// ALLERGIES.
    async fn allergies(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.records(ctx, DataCategory::Allergies, RecordKind::Allergy)
            .await
    }
    /// DRUG_CONTRAINDICATIONS (薬剤禁忌): what the receiving physician must
    /// not give. Opened by emergency access to physicians and nurses only.
    async fn drug_contraindications(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.records(
            ctx,
            DataCategory::DrugContraindications,
            RecordKind::DrugContraindication,
        )
        .await
    }
    /// INFECTIONS (感染症; HIV only with SENSITIVE_HIV): what the receiving
    /// hospital isolates for. Opened by emergency access to physicians and
    /// nurses only.
    async fn infections(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.records(ctx, DataCategory::Infections, RecordKind::Infection)
            .await
    }
    /// MEDICATIONS. Prescriptions and injections in force today.
    async fn current_prescriptions(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.records(ctx, DataCategory::Medications, RecordKind::Prescription)
            .await
    }
    /// MEDICATIONS (and EMERGENCY_INFORMATION, where they are written).
    /// Medications typed in by hand on the sheet (from the medicine notebook
    /// お薬手帳), for what the hub has no records of.
    async fn reported_medications(&self, ctx: &Context<'_>) -> Result<Option<Vec<String>>> {
        self.reported(ctx, DataCategory::Medications, |d| d.medications)
            .await
    }
    /// DISPENSING. The latest dispensing of each drug (not an emergency
    /// category: closed to break-the-glass readers).
    async fn latest_dispensing(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.records(ctx, DataCategory::Dispensing, RecordKind::Dispensing)
            .await
    }
    /// ADVANCE_CARE_PLANNING. The latest ACP: its `cpr` and
    /// `lifeProlongingTreatment` wishes and `confirmedOn`. `null` without an
    /// error when none is recorded.
    async fn advance_care_plan(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        Ok(self
            .records(
                ctx,
                DataCategory::AdvanceCarePlanning,
                RecordKind::AdvanceCarePlan,
            )
            .await?
            .and_then(|v| v.into_iter().next()))
    }
    /// CARE_TEAM. The primary physician (主治医). CARE_TEAM is not an
    /// emergency category: the sheet's contacts name whom to call.
    async fn primary_physician(&self, ctx: &Context<'_>) -> Result<Option<CareTeamMembership>> {
        self.member_in_role(ctx, CareTeamRole::PrimaryPhysician)
            .await
    }
    /// CARE_TEAM. The deputy physician (副主治医).
    async fn deputy_physician(&self, ctx: &Context<'_>) -> Result<Option<CareTeamMembership>> {
        self.member_in_role(ctx, CareTeamRole::DeputyPhysician)
            .await
    }
    /// CARE_TEAM. The care manager (ケアマネジャー).
    async fn care_manager(&self, ctx: &Context<'_>) -> Result<Option<CareTeamMembership>> {
        self.member_in_role(ctx, CareTeamRole::CareManager).await
    }
}

/// The emergency information sheet: the latest version of the patient's
/// `EMERGENCY_INFORMATION` record (earlier versions are in the record's
/// history on the timeline).
pub struct EmergencySheet {
    record: Record,
    data: EmergencyInformationData,
}

#[Object]
impl EmergencySheet {
    /// The record's id (the sheet is a record of kind EMERGENCY_INFORMATION).
    async fn id(&self) -> ID {
        ID(self.record.model.id.to_string())
    }
    /// 1 for the first registration; each revision that changed something
    /// you may read adds one (counted as `Record.version` counts: a
    /// revision of the hand-typed diagnoses alone is no new version to a
    /// reader without CONDITIONS).
    async fn version(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(CallerVersions::load(ctx, &self.record.model)
            .await?
            .number())
    }
    /// The organisation that registered the sheet.
    async fn source_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.record.model.source_organization_id).await
    }
    /// The member who registered this version as you count versions (null
    /// when a system did).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let versions = CallerVersions::load(ctx, &self.record.model).await?;
        load_member(ctx, versions.author_member_id(&self.record.model)).await
    }
    /// When the sheet was confirmed with the patient and family.
    async fn effective_at(&self) -> DateTime<Utc> {
        self.record.model.effective_at
    }
    /// When this version reached the hub, as you count versions.
    async fn recorded_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        let versions = CallerVersions::load(ctx, &self.record.model).await?;
        Ok(versions.recorded_at(&self.record.model))
    }
    async fn data(&self) -> &EmergencyInformationData {
        &self.data
    }
}
