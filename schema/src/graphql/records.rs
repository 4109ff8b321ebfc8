//! Records in GraphQL: the `Record` type, the patient summary, the timeline,
//! and the writes (per kind and in batches).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_graphql::{
    Context, ID, InputObject, Object, Result, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::inputs::parse_id;
use super::types::{CareTeamMembership, Member, Organization, load_organization};
use super::{ctx_db, ctx_events, ctx_policy, ctx_request, ctx_trail, gate, loaders::Loaders};
use crate::domain::{AccessLevel, CareTeamRole, DataCategory, Timestamp};
use crate::error::{ApiError, ApiResult};
use crate::events::{HubEvent, PatientEvent, PatientEventKind};
use crate::policy::PatientAccess;
use crate::records::{
    DIAGNOSIS_CATEGORY, OfPatient, PhysicianOpinionData, RecordData, RecordDataInput, RecordKind,
    VisitingNurseInstructionData,
};
use crate::services::records::{
    self as service, NewRecord, SOURCE_ID_MAX, TimelineCursor, TimelineFilter, WriteOutcome,
};
use entities::{record, record_version};

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

/// One record of any kind. Its `data` is the kind's own object; the record as a
/// whole belongs to one data category (`category`), which the caller may read —
/// a record of a category the caller may not read is never returned.
///
/// The row is parsed once, when it is loaded, and shared: the summary's parts
/// hand out clones of the same `Arc` rather than copies of the row.
#[derive(Clone)]
pub struct Record(Arc<ParsedRecord>);

pub struct ParsedRecord {
    pub model: record::Model,
    pub kind: RecordKind,
    pub category: DataCategory,
    pub data: RecordData,
}

impl std::ops::Deref for Record {
    type Target = ParsedRecord;
    fn deref(&self) -> &ParsedRecord {
        &self.0
    }
}

impl Record {
    pub(crate) fn new(model: record::Model) -> ApiResult<Self> {
        let data = RecordData::from_json(RecordKind::from_db(&model.kind)?, &model.data)?;
        Self::parsed(model, data)
    }

    /// A record whose `data` the caller has already parsed (or has just
    /// serialised from `data`, as a write has): not parsed again.
    pub(crate) fn parsed(model: record::Model, data: RecordData) -> ApiResult<Self> {
        let kind = RecordKind::from_db(&model.kind)?;
        let category = DataCategory::from_db(&model.category)?;
        let data = data.read_as_of(model.patient_id);
        Ok(Record(Arc::new(ParsedRecord {
            model,
            kind,
            category,
            data,
        })))
    }

    /// Whether the summary shows it today (see [`service::data_in_force`]).
    fn in_force(&self, today: chrono::NaiveDate) -> bool {
        service::data_in_force(self.kind, &self.data, today)
    }
}

#[Object]
impl Record {
    async fn id(&self) -> ID {
        id(self.model.id)
    }
    async fn kind(&self) -> RecordKind {
        self.kind
    }
    async fn category(&self) -> DataCategory {
        self.category
    }
    async fn patient_id(&self) -> ID {
        id(self.model.patient_id)
    }
    /// The organisation that wrote it (stamped by the hub, never taken from input).
    async fn source_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.model.source_organization_id).await
    }
    /// The member who wrote this version as you count versions (see
    /// `version`; null when a system wrote it).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let versions = CallerVersions::load(ctx, &self.model).await?;
        load_member(ctx, versions.author_member_id(&self.model)).await
    }
    /// The writing system's own ID for the record, if it gave one.
    async fn source_record_id(&self) -> Option<&str> {
        self.model.source_record_id.as_deref()
    }
    /// When it happened or applies (the lab draw, the dispensing, the assessment).
    async fn effective_at(&self) -> DateTime<Utc> {
        self.model.effective_at
    }
    /// When this version reached the hub, as you count versions (see
    /// `version`: when what you see was recorded).
    async fn recorded_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        let versions = CallerVersions::load(ctx, &self.model).await?;
        Ok(versions.recorded_at(&self.model))
    }
    /// Your number of this version: 1 for the first version you may read,
    /// one more for each later one that changed something you may read.
    /// Versions of a category closed to you (a diagnosis first recorded as
    /// psychiatric, then corrected) are neither counted here nor listed in
    /// `history`; versions that changed only what you may not read (an
    /// emergency sheet's hand-typed diagnoses, to a reader without
    /// CONDITIONS) are one version with the one before — its `recordedAt`
    /// and `author` are of the first of them.
    async fn version(&self, ctx: &Context<'_>) -> Result<i32> {
        // A first version is the first any caller sees: nothing to load (a
        // write's results — FHIR's `_history/1` — ask this of every record
        // they create).
        if self.model.version == 1 {
            return Ok(1);
        }
        Ok(CallerVersions::load(ctx, &self.model).await?.number())
    }
    /// `ACTIVE`, or `ENTERED_IN_ERROR` once removed by its author.
    async fn status(&self) -> &str {
        &self.model.status
    }
    /// 未告知: the patient has not yet been told. Do not disclose it to them.
    async fn undisclosed(&self) -> bool {
        self.model.undisclosed
    }
    async fn data(&self) -> &RecordData {
        &self.data
    }
    /// The earlier versions you may read, newest first, numbered as
    /// `version` counts them (each as it was first recorded).
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<RecordVersion>> {
        let versions = CallerVersions::load(ctx, &self.model).await?;
        let trail = ctx_trail(ctx)?;
        let mut out = Vec::new();
        for (number, content, model) in versions.history() {
            if let Some(a) = &versions.access {
                trail.read(a, content.category);
            }
            out.push(RecordVersion {
                number,
                model: model.clone(),
                data: content.data.clone().read_as_of(self.model.patient_id),
            });
        }
        Ok(out)
    }
}

/// 主たる傷病名 on a 訪問看護指示書: a diagnosis, read as one. The instruction
/// is of VISITING_NURSE_REPORTS, which care workers read without reading
/// diagnoses; its main diagnosis is read under CONDITIONS and audited so.
#[async_graphql::ComplexObject]
impl VisitingNurseInstructionData {
    /// 主たる傷病名. Read under CONDITIONS, as diagnoses are, not under the
    /// instruction's category: null with `FORBIDDEN_FIELD` for a reader
    /// without it.
    async fn main_diagnosis(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(read_diagnoses(ctx, self.of_patient)
            .await?
            .map(|()| self.main_diagnosis.as_str()))
    }
}

/// 診断名 on a 主治医意見書, as the instruction's main diagnosis: the
/// opinion is of CARE_CERTIFICATION, which social workers, dental
/// hygienists and municipal staff read without reading diagnoses.
#[async_graphql::ComplexObject]
impl PhysicianOpinionData {
    /// 診断名, the one most behind the loss of function first. Read under
    /// CONDITIONS, as diagnoses are, not under the opinion's category: null
    /// with `FORBIDDEN_FIELD` for a reader without it.
    async fn diagnoses(&self, ctx: &Context<'_>) -> Result<Option<&[String]>> {
        Ok(read_diagnoses(ctx, self.of_patient)
            .await?
            .map(|()| self.diagnoses.as_slice()))
    }
}

/// Whether the caller may read the diagnoses a document of `patient`'s
/// carries ([`DIAGNOSIS_CATEGORY`]): `Some` if so; `None` (with
/// `FORBIDDEN_FIELD` and an audited refusal, through [`gate`]) if not, or
/// if the caller may no longer know of the patient.
async fn read_diagnoses(ctx: &Context<'_>, patient: OfPatient) -> Result<Option<()>> {
    // Set wherever a record's content is read (`Record::parsed`, a
    // version's content): without it no one is asked, and nothing shown.
    let Some(patient) = patient.0 else {
        return Err(ApiError::internal("a document was read without its record's patient").into());
    };
    let Some(access) = record_access(ctx, patient).await? else {
        return Ok(None);
    };
    gate(ctx, &access, DIAGNOSIS_CATEGORY)
}

/// The caller's access to a record's patient, from the request's batched
/// verdicts (`None`: the caller may no longer know of the patient).
async fn record_access(ctx: &Context<'_>, patient_id: Uuid) -> ApiResult<Option<PatientAccess>> {
    let req = ctx_request(ctx)?;
    Ok(ctx
        .data_unchecked::<Loaders>()
        .access
        .load_one((req.principal.clone(), patient_id))
        .await?
        .map(|v| v.access))
}

pub(crate) async fn load_member(ctx: &Context<'_>, id: Option<Uuid>) -> Result<Option<Member>> {
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

/// A shown record's versions as the caller sees them
/// ([`service::seen_versions`], the one rule): for the fields of a record —
/// and of the emergency sheet — that number, list, date and sign its
/// versions. The earlier versions come through a loader: one query for a
/// page of records.
pub(crate) struct CallerVersions {
    access: Option<PatientAccess>,
    /// Oldest first.
    earlier: Vec<record_version::Model>,
    /// The earlier versions' contents, then the current one's.
    contents: Vec<service::VersionContent>,
    seen: Vec<service::SeenVersion>,
}

impl CallerVersions {
    pub(crate) async fn load(ctx: &Context<'_>, model: &record::Model) -> Result<Self> {
        let access = record_access(ctx, model.patient_id).await?;
        // A first version has no earlier one to read.
        let earlier = if model.version == 1 {
            Vec::new()
        } else {
            ctx.data_unchecked::<Loaders>()
                .earlier_versions
                .load_one(model.id)
                .await?
                .unwrap_or_default()
        };
        Ok(Self::new(access, model, earlier)?)
    }

    fn new(
        access: Option<PatientAccess>,
        model: &record::Model,
        mut earlier: Vec<record_version::Model>,
    ) -> ApiResult<Self> {
        // The versions before this one: a write's result is resolved after
        // its commit, when a concurrent write may already have moved the
        // record on (its own current version is then an earlier version).
        earlier.retain(|v| v.version < model.version);
        let kind = RecordKind::from_db(&model.kind)?;
        let mut contents = earlier
            .iter()
            .map(|v| service::VersionContent::of_version(kind, v))
            .collect::<ApiResult<Vec<_>>>()?;
        contents.push(service::VersionContent::of_record(model)?);
        let seen = service::seen_versions(access.as_ref(), &contents);
        Ok(CallerVersions {
            access,
            earlier,
            contents,
            seen,
        })
    }

    /// The seen version the current one belongs to (it does whenever the
    /// caller may read the record, which is when the record is shown).
    fn current(&self) -> Option<&service::SeenVersion> {
        self.seen.last().filter(|s| s.last == self.earlier.len())
    }

    /// The caller's number of the current version.
    pub(crate) fn number(&self) -> i32 {
        self.current().map_or_else(
            || i32::try_from(self.seen.len() + 1).unwrap_or(i32::MAX),
            |s| s.number,
        )
    }

    /// The earlier version that recorded what the caller sees now; `None`:
    /// the current one did.
    fn introduced_by(&self) -> Option<&record_version::Model> {
        self.current().and_then(|s| self.earlier.get(s.first))
    }

    pub(crate) fn recorded_at(&self, current: &record::Model) -> DateTime<Utc> {
        self.introduced_by()
            .map_or(current.recorded_at, |v| v.recorded_at)
    }

    pub(crate) fn author_member_id(&self, current: &record::Model) -> Option<Uuid> {
        self.introduced_by()
            .map_or(current.author_member_id, |v| v.author_member_id)
    }

    /// The caller's earlier versions, newest first: each one's number, the
    /// content and row of the version that recorded it.
    fn history(
        &self,
    ) -> impl Iterator<Item = (i32, &service::VersionContent, &record_version::Model)> {
        let current = self.current().copied();
        self.seen
            .iter()
            .rev()
            .filter(move |s| Some(**s) != current)
            .filter_map(|s| {
                Some((
                    s.number,
                    self.contents.get(s.first)?,
                    self.earlier.get(s.first)?,
                ))
            })
    }

    /// What a write did as the writer sees it: a new version that changed
    /// nothing it may read is `UNCHANGED`; one with no earlier version it
    /// may read is `CREATED`.
    fn outcome(&self, outcome: WriteOutcome) -> WriteOutcome {
        match (outcome, self.current()) {
            (WriteOutcome::Updated, Some(s)) if s.first < s.last => WriteOutcome::Unchanged,
            (WriteOutcome::Updated, Some(s)) if s.number == 1 => WriteOutcome::Created,
            (outcome, _) => outcome,
        }
    }
}

/// An earlier version of a record, as you count versions (see
/// `Record.version`): where versions that changed only what you may not
/// read stand together as one, it shows the first of them — what it said,
/// when and by whom it was recorded.
pub struct RecordVersion {
    /// Its number as the caller counts versions (see `Record.version`).
    number: i32,
    model: record_version::Model,
    data: RecordData,
}

#[Object]
impl RecordVersion {
    /// Its number among the versions you may read (see `Record.version`).
    async fn version(&self) -> i32 {
        self.number
    }
    async fn status(&self) -> &str {
        &self.model.status
    }
    async fn effective_at(&self) -> DateTime<Utc> {
        self.model.effective_at
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.model.recorded_at
    }
    async fn undisclosed(&self) -> bool {
        self.model.undisclosed
    }
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let Some(m) = self.model.author_member_id else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<Loaders>()
            .member
            .load_one(m)
            .await?
            .map(Member))
    }
    async fn data(&self) -> &RecordData {
        &self.data
    }
}

/// A patient's records in its summary, as [`Loaders::summary`] read them.
#[derive(Default)]
pub struct SummaryCandidates {
    /// Newest first.
    pub records: Vec<Record>,
    /// The kinds, and categories where the column reads, of rows that did
    /// not read (logged as they were read).
    pub unreadable: Vec<(RecordKind, Option<DataCategory>)>,
}

impl SummaryCandidates {
    /// The records, or — when a row of `kind` the caller may read (by its
    /// category: a psychiatric condition is no CONDITIONS reader's) did
    /// not read — an internal error: a part shown without one of its
    /// records would look whole.
    pub(crate) fn of_kind(
        &self,
        kind: RecordKind,
        access: &PatientAccess,
    ) -> ApiResult<impl Iterator<Item = &Record>> {
        let failed = self
            .unreadable
            .iter()
            .any(|(k, category)| *k == kind && category.is_none_or(|c| access.may_read(c)));
        if failed {
            return Err(ApiError::internal(format_args!(
                "a stored {kind} record of the summary does not read"
            )));
        }
        Ok(self.records.iter().filter(move |r| r.kind == kind))
    }
}

/// The patient summary: what a newcomer to the care team needs first. Each
/// part is under the policy on its own: a part the caller may not read is
/// `null` with a `FORBIDDEN_FIELD` error, and the rest is delivered.
pub struct PatientSummary {
    pub(crate) access: PatientAccess,
}

impl PatientSummary {
    pub(crate) async fn candidates(&self, ctx: &Context<'_>) -> Result<Arc<SummaryCandidates>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .summary
            .load_one(self.access.patient_id())
            .await?
            .unwrap_or_default())
    }

    /// The readable records of one kind in the summary, newest first.
    pub(crate) async fn part(
        &self,
        ctx: &Context<'_>,
        category: DataCategory,
        kind: RecordKind,
    ) -> Result<Option<Vec<Record>>> {
        if gate(ctx, &self.access, category)?.is_none() {
            return Ok(None);
        }
        let today = ctx_policy(ctx).clock.today();
        let trail = ctx_trail(ctx)?;
        let mut out = Vec::new();
        let candidates = self.candidates(ctx).await?;
        for r in candidates.of_kind(kind, &self.access)? {
            if !r.in_force(today) {
                continue;
            }
            // Sensitive records of the kind (a psychiatric condition) need
            // their own category.
            if r.category != category {
                if !self.access.may_read(r.category) {
                    continue;
                }
                trail.read(&self.access, r.category);
            }
            out.push(r.clone());
        }
        Ok(Some(out))
    }

    async fn latest(
        &self,
        ctx: &Context<'_>,
        category: DataCategory,
        kind: RecordKind,
    ) -> Result<Option<Record>> {
        Ok(self
            .part(ctx, category, kind)
            .await?
            .and_then(|v| v.into_iter().next()))
    }

    pub(crate) async fn member_in_role(
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

#[Object]
impl PatientSummary {
    /// CARE_TEAM. The primary physician (主治医), with organisation and contacts.
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
    /// CONDITIONS. Active conditions (sensitive ones only with their category).
    async fn active_conditions(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(ctx, DataCategory::Conditions, RecordKind::Condition)
            .await
    }
    /// ALLERGIES.
    async fn allergies(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(ctx, DataCategory::Allergies, RecordKind::Allergy)
            .await
    }
    /// INFECTIONS (HIV only with SENSITIVE_HIV).
    async fn infections(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(ctx, DataCategory::Infections, RecordKind::Infection)
            .await
    }
    /// DRUG_CONTRAINDICATIONS.
    async fn drug_contraindications(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(
            ctx,
            DataCategory::DrugContraindications,
            RecordKind::DrugContraindication,
        )
        .await
    }
    /// MEDICATIONS. Prescriptions and injections in force today.
    async fn current_prescriptions(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(ctx, DataCategory::Medications, RecordKind::Prescription)
            .await
    }
    /// DISPENSING. The latest dispensing of each drug, newest first.
    async fn latest_dispensing(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(ctx, DataCategory::Dispensing, RecordKind::Dispensing)
            .await
    }
    /// LAB_RESULTS. The latest result of each test.
    async fn latest_lab_results(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(ctx, DataCategory::LabResults, RecordKind::LabResult)
            .await
    }
    /// CARE_CERTIFICATION. The latest care-need certification (要介護認定).
    async fn care_certification(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(
            ctx,
            DataCategory::CareCertification,
            RecordKind::CareCertification,
        )
        .await
    }
    /// CARE_CERTIFICATION. The latest physician's opinion for the
    /// certification (主治医意見書).
    async fn latest_physician_opinion(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(
            ctx,
            DataCategory::CareCertification,
            RecordKind::PhysicianOpinion,
        )
        .await
    }
    /// ADL. The latest assessment.
    async fn latest_adl(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(ctx, DataCategory::Adl, RecordKind::AdlAssessment)
            .await
    }
    /// CARE_PLAN. The current care plan.
    async fn care_plan(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(ctx, DataCategory::CarePlan, RecordKind::CarePlan)
            .await
    }
    /// FAMILY_CARE_CAPACITY. Family care capacity and the key person.
    async fn family_care_capacity(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(
            ctx,
            DataCategory::FamilyCareCapacity,
            RecordKind::FamilyCareCapacity,
        )
        .await
    }
    /// HOME_ENVIRONMENT.
    async fn home_environment(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(
            ctx,
            DataCategory::HomeEnvironment,
            RecordKind::HomeEnvironment,
        )
        .await
    }
    /// CAUTIONS. The standing cautions for home care and daily-life support
    /// (留意事項), latest version.
    async fn care_cautions(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(ctx, DataCategory::Cautions, RecordKind::CareCautions)
            .await
    }
    /// ADVANCE_CARE_PLANNING. What the patient and family were last told
    /// about the illness, and how they took it (病状説明と受け止め).
    async fn latest_illness_explanation(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(
            ctx,
            DataCategory::AdvanceCarePlanning,
            RecordKind::IllnessExplanation,
        )
        .await
    }
    /// VISITING_NURSE_REPORTS. The physician's instructions to
    /// visiting-nurse stations in force today (訪問看護指示書, 特別訪問看護指示書).
    async fn visiting_nurse_instructions(&self, ctx: &Context<'_>) -> Result<Option<Vec<Record>>> {
        self.part(
            ctx,
            DataCategory::VisitingNurseReports,
            RecordKind::VisitingNurseInstruction,
        )
        .await
    }
    /// MEDICATIONS (the pharmacist's), NUTRITION_SWALLOWING (the
    /// dietitian's), DENTAL (the hygienist's): the instructions to visit and
    /// guide at home in force today (居宅療養管理指導), each only with its
    /// category.
    async fn home_care_guidance_instructions(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<Record>>> {
        self.part(
            ctx,
            DataCategory::Medications,
            RecordKind::HomeCareGuidanceInstruction,
        )
        .await
    }
    /// DENTAL_REFERRAL. The latest request for a dental home visit
    /// (歯科往診依頼書) with its screening items.
    async fn latest_dental_visit_request(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(
            ctx,
            DataCategory::DentalReferral,
            RecordKind::DentalVisitRequest,
        )
        .await
    }
    /// ADVANCE_CARE_PLANNING. The latest version of the patient's wishes.
    async fn latest_advance_care_plan(&self, ctx: &Context<'_>) -> Result<Option<Record>> {
        self.latest(
            ctx,
            DataCategory::AdvanceCarePlanning,
            RecordKind::AdvanceCarePlan,
        )
        .await
    }
}

fn encode_cursor(m: &record::Model) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "rec:{}:{}",
        m.effective_at.timestamp_micros(),
        m.id
    ))
}

fn decode_cursor(cursor: &str) -> ApiResult<TimelineCursor> {
    let bad = || ApiError::bad_input("after", "is not a cursor returned by this hub");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("rec"), Some(micros), Some(id)) => Ok(TimelineCursor {
            effective_at: micros
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(bad)?,
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// Page sizes of the timeline.
const TIMELINE_PAGE: i32 = 50;
const TIMELINE_PAGE_MAX: i32 = 200;

/// `Patient.timeline`: every kind the caller may read, newest first.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn timeline(
    ctx: &Context<'_>,
    access: &PatientAccess,
    kinds: Vec<RecordKind>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    include_entered_in_error: bool,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, Record, EmptyFields, EmptyFields>> {
    let first = first.unwrap_or(TIMELINE_PAGE);
    if !(1..=TIMELINE_PAGE_MAX).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("must be between 1 and {TIMELINE_PAGE_MAX}, got {first}"),
        )
        .into());
    }
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(ApiError::bad_input("from", "must be before `to`").into());
    }
    let cursor = after.as_deref().map(decode_cursor).transpose()?;
    // Asking for a kind whose category is closed to the caller is answered
    // with FORBIDDEN_FIELD for that category (whether or not records exist),
    // and the rest of the timeline.
    let requested: BTreeSet<DataCategory> = if kinds.is_empty() {
        BTreeSet::new()
    } else {
        kinds.iter().map(|k| k.default_category()).collect()
    };
    for category in requested {
        if !access.may_read(category) {
            gate(ctx, access, category)?;
        }
    }
    let readable: Vec<DataCategory> = access
        .grants()
        .filter(|(_, g)| g.level >= AccessLevel::Read)
        .map(|(c, _)| c)
        .collect();
    let filter = TimelineFilter {
        kinds,
        from,
        to,
        include_entered_in_error,
    };
    let (rows, more) = service::timeline(
        ctx_db(ctx),
        access,
        &readable,
        &filter,
        cursor,
        first as u64,
    )
    .await?;
    let trail = ctx_trail(ctx)?;
    let mut connection = Connection::new(cursor.is_some(), more);
    for m in rows {
        trail.read(access, DataCategory::from_db(&m.category)?);
        connection
            .edges
            .push(Edge::new(encode_cursor(&m), Record::new(m)?));
    }
    Ok(connection)
}

/// One record to write.
#[derive(InputObject)]
pub struct RecordInput {
    pub patient_id: ID,
    /// Your system's own ID for the record: resubmitting the same ID (for the
    /// same kind) updates that record — a new version — instead of adding one.
    pub source_record_id: Option<String>,
    /// When it happened or applies.
    pub effective_at: Timestamp,
    /// 未告知: the patient has not yet been told.
    #[graphql(default)]
    pub undisclosed: bool,
    /// Exactly one kind's data.
    pub data: RecordDataInput,
}

#[derive(InputObject)]
pub struct WriteRecordsInput {
    /// At most 500; all are written or none.
    pub records: Vec<RecordInput>,
}

/// The result of one written record.
#[derive(SimpleObject)]
pub struct RecordWriteResult {
    /// The item's position in the input.
    pub index: i32,
    pub outcome: WriteOutcome,
    pub record: Record,
}

/// Largest batch: bounds one transaction's size and the request's work.
pub const MAX_BATCH: usize = 500;
/// How far in the future an effective time may lie (clock skew between systems).
const FUTURE_SLACK_HOURS: i64 = 24;

/// The one write path of records: validate every item (naming its index and
/// field), check write access for each, write all in one transaction, audit.
pub(crate) async fn write_records(
    ctx: &Context<'_>,
    items: Vec<RecordInput>,
) -> Result<Vec<RecordWriteResult>> {
    let req = ctx_request(ctx)?;
    let policy = ctx_policy(ctx);
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::bad_input(
            "input.records",
            format!("must hold 1 to {MAX_BATCH} records, got {}", items.len()),
        )
        .into());
    }
    let today = policy.clock.today();
    let latest = policy.clock.now() + Duration::hours(FUTURE_SLACK_HOURS);
    let mut parsed = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let field = |f: &str| format!("input.records[{index}].{f}");
        let patient_id = parse_id(&field("patientId"), &item.patient_id)?;
        let source_record_id = match item.source_record_id {
            Some(s) => {
                let s = s.trim().to_string();
                if s.is_empty()
                    || s.chars().count() > SOURCE_ID_MAX
                    || crate::domain::has_control_or_format(&s)
                {
                    return Err(ApiError::bad_input(
                        field("sourceRecordId"),
                        format!("must be 1 to {SOURCE_ID_MAX} printable characters"),
                    )
                    .into());
                }
                Some(s)
            }
            None => None,
        };
        let effective_at = item.effective_at.get();
        if effective_at > latest {
            return Err(ApiError::bad_input(
                field("effectiveAt"),
                format!("{} is in the future", effective_at.to_rfc3339()),
            )
            .into());
        }
        let data: RecordData = item.data.into();
        data.validate(today)
            .map_err(|e| e.in_field(&format!("input.records[{index}].data")))?;
        parsed.push(NewRecord {
            patient_id,
            source_record_id,
            effective_at,
            undisclosed: item.undisclosed,
            data,
        });
    }
    // The policy's verdicts for every patient in the batch, batched into one
    // evaluation by the access loader. A patient the caller may not know of
    // is refused like one that does not exist, and each refusal is audited
    // ([`super::reach`]).
    let ids: Vec<Uuid> = parsed
        .iter()
        .map(|r| r.patient_id)
        .collect::<BTreeSet<Uuid>>()
        .into_iter()
        .collect();
    let verdicts = futures_util::future::join_all(
        ids.iter()
            .map(|id| super::reach::reach(ctx, super::reach::PatientRef::Id(*id))),
    )
    .await;
    let mut access: HashMap<Uuid, PatientAccess> = HashMap::new();
    for (id, verdict) in ids.into_iter().zip(verdicts) {
        match verdict {
            Ok((a, _)) => {
                access.insert(id, a);
            }
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Asked once, and only when the batch holds a kind whose authors are
    // named: the caller's organisation's kind, for a system.
    let author_kind = if parsed.iter().any(|r| r.data.kind().authored_by().is_some()) {
        system_kind(ctx).await?
    } else {
        None
    };
    for (index, r) in parsed.iter().enumerate() {
        let a = access
            .get(&r.patient_id)
            .ok_or_else(|| ApiError::not_found("patient"))?;
        let item = |e: ApiError| e.reworded(|m| format!("input.records[{index}]: {m}"));
        // Who may author the kind first: a nurse refused a physician's
        // instruction is told that, not which of its categories it lacks.
        crate::policy::may_author(&req.principal, author_kind, r.data.kind())
            .map_err(|e| item(e.about(r.patient_id, &[r.data.category()])))?;
        for category in r.data.written_categories() {
            a.require_write(category).map_err(item)?;
        }
    }
    let written = service::write(
        ctx_db(ctx),
        &super::ctx_stamp(ctx)?,
        &access,
        parsed,
        policy.clock.now(),
    )
    .await?;
    // Each outcome as the writer sees the record (`CallerVersions::outcome`):
    // a correction that changed nothing the writer may read is unchanged to
    // it, and one of a record none of whose earlier versions it may read
    // would be a new record — which the service's rule (a writer corrects
    // only a record whose category it may write) no longer lets happen;
    // kept so that no outcome could tell that hidden versions exist.
    let updated: Vec<Uuid> = written
        .iter()
        .filter(|(_, _, outcome)| *outcome == WriteOutcome::Updated)
        .map(|(model, _, _)| model.id)
        .collect();
    let mut earlier = ctx
        .data_unchecked::<Loaders>()
        .earlier_versions
        .load_many(updated)
        .await?;
    let mut seen_as = |model: &record::Model, outcome: WriteOutcome| -> ApiResult<WriteOutcome> {
        if outcome != WriteOutcome::Updated {
            return Ok(outcome);
        }
        let versions = CallerVersions::new(
            access.get(&model.patient_id).cloned(),
            model,
            earlier.remove(&model.id).unwrap_or_default(),
        )?;
        Ok(versions.outcome(outcome))
    };
    let organization_id = req.principal.organization_id();
    ctx_events(ctx).publish_all(
        written
            .iter()
            .filter(|(_, _, outcome)| *outcome != WriteOutcome::Unchanged)
            .map(|(model, _, _)| {
                record_event(model, PatientEventKind::RecordWritten, organization_id)
            })
            .collect::<ApiResult<Vec<_>>>()?,
    );
    let mut results = Vec::with_capacity(written.len());
    for (index, (model, content, outcome)) in written.into_iter().enumerate() {
        results.push(RecordWriteResult {
            index: index as i32,
            outcome: seen_as(&model, outcome)?,
            record: Record::parsed(model, content)?,
        });
    }
    Ok(results)
}

/// A record by its id and the caller's access to its patient. A record of
/// a patient — or a category — the caller cannot see does not exist for it:
/// refused exactly like a record that does not exist (see
/// [`super::reach`]). Every reference to a record by its id comes here.
async fn reach_record(
    ctx: &Context<'_>,
    id: Uuid,
) -> ApiResult<(record::Model, PatientAccess, DataCategory)> {
    let found = ctx.data_unchecked::<Loaders>().record.load_one(id).await?;
    let category = found
        .as_ref()
        .map(|r| DataCategory::from_db(&r.category))
        .transpose()?;
    let (model, access) = super::reach::Bound {
        what: "record",
        id,
        patient_id: found.as_ref().map(|r| r.patient_id),
        category,
        hidden_without_category: true,
    }
    .reach(ctx, found)
    .await?;
    // `reach` found it, so it had a category.
    let category = DataCategory::from_db(&model.category)?;
    Ok((model, access, category))
}

/// A record referenced by id from another subgraph (`_entities`): read
/// under the policy and recorded like a record of the timeline.
pub(crate) async fn entity(ctx: &Context<'_>, id: Uuid) -> ApiResult<Record> {
    let (model, access, category) = reach_record(ctx, id).await?;
    ctx_trail(ctx)?.read(&access, category);
    Record::new(model)
}

/// The kind of a system's organisation ([`crate::policy::may_author`]
/// decides a system's documents by it); `None` for a member, whose
/// profession decides.
async fn system_kind(ctx: &Context<'_>) -> Result<Option<crate::domain::OrganizationKind>> {
    match ctx_request(ctx)?.principal {
        crate::principal::Principal::System { .. } => super::consents::caller_kind(ctx).await,
        crate::principal::Principal::Member { .. } => Ok(None),
    }
}

/// Marks a record entered in error.
pub(crate) async fn enter_in_error(ctx: &Context<'_>, record_id: ID) -> Result<Record> {
    let id = parse_id("recordId", &record_id)?;
    let db = ctx_db(ctx);
    let (current, access, _) = reach_record(ctx, id).await?;
    let author_kind = match RecordKind::from_db(&current.kind)?.authored_by() {
        Some(_) => system_kind(ctx).await?,
        None => None,
    };
    let updated = service::enter_in_error(
        db,
        &access,
        &super::ctx_stamp(ctx)?,
        author_kind,
        current,
        ctx_policy(ctx).clock.now(),
    )
    .await?;
    ctx_events(ctx).publish(record_event(
        &updated,
        PatientEventKind::RecordEnteredInError,
        ctx_request(ctx)?.principal.organization_id(),
    )?);
    Ok(Record::new(updated)?)
}

/// The event of a record written or withdrawn, for subscribers of the patient.
fn record_event(
    model: &record::Model,
    kind: PatientEventKind,
    organization_id: Uuid,
) -> ApiResult<HubEvent> {
    // Registering or revising the emergency information is its own event:
    // the care team (and anyone watching for it) cares about that one.
    let kind = match kind {
        PatientEventKind::RecordWritten
            if model.kind == RecordKind::EmergencyInformation.as_str() =>
        {
            PatientEventKind::EmergencyInformationUpdated
        }
        other => other,
    };
    Ok(HubEvent::Patient(PatientEvent {
        patient_id: model.patient_id,
        kind,
        subject_id: model.id,
        category: DataCategory::from_db(&model.category)?,
        organization_id,
        occurred_at: model.recorded_at,
        record_version: Some(model.version),
    }))
}
