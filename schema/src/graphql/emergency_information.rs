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

use super::types::{CareTeamMembership, Member, Organization, load_organization};
use super::{ctx_policy, ctx_trail, gate, loaders::Loaders};
use crate::domain::{CareTeamRole, DataCategory};
use crate::error::ApiResult;
use crate::policy::PatientAccess;
use crate::records::{EmergencyInformationData, RecordData, RecordKind};
use crate::services::records as service;
use entities::record;

/// `Patient.emergencyInformation`. Built from the patient's capability only.
pub struct EmergencyInformation {
    pub(crate) access: PatientAccess,
}

impl EmergencyInformation {
    /// The patient's summary candidates (current and latest-of-series records).
    async fn candidates(&self, ctx: &Context<'_>) -> Result<Vec<record::Model>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .summary
            .load_one(self.access.patient_id())
            .await?
            .unwrap_or_default())
    }

    /// The latest sheet, unchecked: callers gate first.
    async fn latest_sheet(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<(record::Model, EmergencyInformationData)>> {
        let kind = RecordKind::EmergencyInformation;
        let Some(model) = self
            .candidates(ctx)
            .await?
            .into_iter()
            .find(|m| m.kind == kind.as_str())
        else {
            return Ok(None);
        };
        match RecordData::from_json(kind, &model.data)? {
            RecordData::EmergencyInformation(data) => Ok(Some((model, data))),
            _ => Err(crate::error::ApiError::internal("an emergency sheet of another kind").into()),
        }
    }

    /// The readable records of one kind in force today, newest first; `None`
    /// (and `FORBIDDEN_FIELD`) when the category is closed. A record moved to
    /// a sensitive category (a psychiatric condition) needs that category too.
    async fn records(
        &self,
        ctx: &Context<'_>,
        category: DataCategory,
        kind: RecordKind,
    ) -> Result<Option<Vec<EmergencyRecord>>> {
        if gate(ctx, &self.access, category)?.is_none() {
            return Ok(None);
        }
        let today = ctx_policy(ctx).clock.today();
        let trail = ctx_trail(ctx)?;
        let mut out = Vec::new();
        for m in self.candidates(ctx).await? {
            if m.kind != kind.as_str() || !service::in_force(&m, today)? {
                continue;
            }
            let c = DataCategory::from_db(&m.category)?;
            if c != category {
                if !self.access.may_read(c) {
                    continue;
                }
                trail.read(self.access.patient_id(), c);
            }
            out.push(EmergencyRecord::new(m)?);
        }
        Ok(Some(out))
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
        if gate(ctx, &self.access, DataCategory::CareTeam)?.is_none() {
            return Ok(None);
        }
        Ok(ctx
            .data_unchecked::<Loaders>()
            .care_team
            .load_one((self.access.patient_id(), false))
            .await?
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.role == role.as_str())
            .map(CareTeamMembership))
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
            .map(|(model, data)| EmergencySheet { model, data }))
    }
    /// CONDITIONS. Active conditions from the hub's records (sensitive ones
    /// only with their own category).
    async fn active_conditions(&self, ctx: &Context<'_>) -> Result<Option<Vec<EmergencyRecord>>> {
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
    async fn allergies(&self, ctx: &Context<'_>) -> Result<Option<Vec<EmergencyRecord>>> {
        self.records(ctx, DataCategory::Allergies, RecordKind::Allergy)
            .await
    }
    /// MEDICATIONS. Prescriptions and injections in force today.
    async fn current_prescriptions(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<EmergencyRecord>>> {
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
    async fn latest_dispensing(&self, ctx: &Context<'_>) -> Result<Option<Vec<EmergencyRecord>>> {
        self.records(ctx, DataCategory::Dispensing, RecordKind::Dispensing)
            .await
    }
    /// ADVANCE_CARE_PLANNING. The latest ACP: its `cpr` and
    /// `lifeProlongingTreatment` wishes and `confirmedOn`. `null` without an
    /// error when none is recorded.
    async fn advance_care_plan(&self, ctx: &Context<'_>) -> Result<Option<EmergencyRecord>> {
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
    model: record::Model,
    data: EmergencyInformationData,
}

#[Object]
impl EmergencySheet {
    /// The record's id (the sheet is a record of kind EMERGENCY_INFORMATION).
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }
    /// 1 for the first registration; each revision adds one.
    async fn version(&self) -> i32 {
        self.model.version
    }
    /// The organisation that registered this version.
    async fn source_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.model.source_organization_id).await
    }
    /// The member who registered this version (null when a system did).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        load_member(ctx, self.model.author_member_id).await
    }
    /// When the sheet was confirmed with the patient and family.
    async fn effective_at(&self) -> DateTime<Utc> {
        self.model.effective_at
    }
    /// When this version reached the hub.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.model.recorded_at
    }
    async fn data(&self) -> &EmergencyInformationData {
        &self.data
    }
}

/// One record shown in the emergency information: its content and where it
/// comes from. The same fields as `Record` (without the history, which is on
/// the timeline).
pub struct EmergencyRecord {
    model: record::Model,
    data: RecordData,
}

impl EmergencyRecord {
    fn new(model: record::Model) -> ApiResult<Self> {
        let kind = RecordKind::from_db(&model.kind)?;
        let data = RecordData::from_json(kind, &model.data)?;
        Ok(EmergencyRecord { model, data })
    }
}

#[Object]
impl EmergencyRecord {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }
    async fn kind(&self) -> Result<RecordKind> {
        Ok(RecordKind::from_db(&self.model.kind)?)
    }
    async fn category(&self) -> Result<DataCategory> {
        Ok(DataCategory::from_db(&self.model.category)?)
    }
    /// The organisation that wrote it.
    async fn source_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.model.source_organization_id).await
    }
    /// The member who wrote this version (null when a system wrote it).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        load_member(ctx, self.model.author_member_id).await
    }
    async fn effective_at(&self) -> DateTime<Utc> {
        self.model.effective_at
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.model.recorded_at
    }
    async fn version(&self) -> i32 {
        self.model.version
    }
    /// 未告知: the patient has not yet been told. Do not disclose it to them.
    async fn undisclosed(&self) -> bool {
        self.model.undisclosed
    }
    async fn data(&self) -> &RecordData {
        &self.data
    }
}

async fn load_member(ctx: &Context<'_>, id: Option<uuid::Uuid>) -> Result<Option<Member>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(ctx
        .data_unchecked::<Loaders>()
        .member
        .load_one(id)
        .await?
        .map(Member))
}
