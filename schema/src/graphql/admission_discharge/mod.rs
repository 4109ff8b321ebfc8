//! Admission and discharge support (入退院支援) in GraphQL: the admission
//! information sheet, the discharge notice, the discharge conference, an
//! organisation's lists of them, and the discharge lead-time report.
//!
//! Every object here is about one patient and under `ADMISSION_DISCHARGE`:
//! it is only built after the policy said the caller may read that category
//! of its patient (and recorded the read in the audit trail). The sections
//! of an admission sheet copied from other records keep their own category
//! and pass their own gate, as the records would.

mod conferences;
mod inputs;
mod mutation;

use std::collections::{BTreeSet, HashMap};

use async_graphql::{
    Context, ID, Object, Result, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use conferences::{CareConference, ConferenceInvitation, ConferenceMinutes};
pub(crate) use conferences::{conference_invitations, patient_conferences};
pub use inputs::*;
pub use mutation::AdmissionDischargeMutation;

use super::inputs::parse_id;
use super::types::{Member, Organization, Patient, load_organization};
use super::{
    Date, ctx_db, ctx_policy, ctx_request, ctx_trail, gate, load_patient, loaders::Loaders,
    patient_access,
};
use crate::domain::DataCategory;
use crate::error::{ApiError, ApiResult};
use crate::policy::{PatientAccess, RowScope};
use crate::records::{
    AdlAssessmentData, CareCertificationData, FamilyCareCapacityData, HomeEnvironmentData,
};
use crate::services::admission_discharge::notices::{
    self, DischargeCriterion, DischargeNoticeStatus, LeadTimeBucket,
};
use crate::services::admission_discharge::report::{self, LeadTimeReport};
use crate::services::admission_discharge::sheets::{
    self, AdmissionSheetStatus, SheetContent, SheetService, SheetSource,
};
use crate::services::admission_discharge::{CATEGORY, region_date};
use entities::{admission_sheet, discharge_notice};

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

async fn member(ctx: &Context<'_>, member_id: Option<Uuid>) -> Result<Option<Member>> {
    let Some(m) = member_id else {
        return Ok(None);
    };
    Ok(ctx
        .data_unchecked::<Loaders>()
        .member
        .load_one(m)
        .await?
        .map(Member))
}

// ---------------------------------------------------------------------------
// The admission information sheet.

/// 入院時情報提供書: an admission information sheet, from the team at home to
/// the admitting hospital. ADMISSION_DISCHARGE; a draft is seen only by the
/// organisation writing it.
pub struct AdmissionSheet {
    access: PatientAccess,
    model: admission_sheet::Model,
    content: SheetContent,
}

impl AdmissionSheet {
    pub(crate) fn new(access: PatientAccess, model: admission_sheet::Model) -> ApiResult<Self> {
        let content = SheetContent::from_json(&model.content)?;
        Ok(AdmissionSheet {
            access,
            model,
            content,
        })
    }
}

#[Object]
impl AdmissionSheet {
    async fn id(&self) -> ID {
        id(self.model.id)
    }
    async fn patient_id(&self) -> ID {
        id(self.model.patient_id)
    }
    /// The patient, under the policy.
    async fn patient(&self, ctx: &Context<'_>) -> Result<Option<Patient>> {
        Ok(load_patient(ctx, self.model.patient_id).await?)
    }
    async fn status(&self) -> Result<AdmissionSheetStatus> {
        Ok(AdmissionSheetStatus::from_db(&self.model.status)?)
    }
    /// The admitting hospital, to which the sheet is (or will be) sent.
    async fn hospital(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.model.hospital_organization_id).await
    }
    /// The organisation that writes and sends it.
    async fn author_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.model.author_organization_id).await
    }
    /// The member who wrote it (null when a system did).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.model.author_member_id).await
    }
    async fn admitted_on(&self) -> Date {
        Date(self.model.admitted_on)
    }
    /// The sections. Each is under its own data category (named on it).
    async fn content(&self) -> AdmissionSheetContent<'_> {
        AdmissionSheetContent { sheet: self }
    }
    /// The records the prefill drew sections from (those of categories you
    /// may read).
    async fn prefilled_from(&self, ctx: &Context<'_>) -> Result<Vec<AdmissionSheetSource>> {
        let sources: Vec<SheetSource> =
            serde_json::from_str(&self.model.sources).map_err(ApiError::internal)?;
        // A source names a record of its category (its id, kind and time):
        // that is a read of the category, audited like the record would be.
        // Sources of other categories are left out quietly, not denied: the
        // list is what the caller may see, as a list of records is.
        let trail = ctx_trail(ctx)?;
        let mut out = Vec::new();
        for s in sources {
            let category = DataCategory::from_db(&s.category)?;
            if self.access.may_read(category) {
                trail.read(&self.access, category);
                out.push(AdmissionSheetSource {
                    category,
                    kind: crate::records::RecordKind::from_db(&s.kind)?,
                    record_id: id(s.record_id),
                    effective_at: s.effective_at,
                });
            }
        }
        Ok(out)
    }
    /// Categories the prefill left out because the author could not read them.
    async fn omitted_categories(&self) -> Result<Vec<DataCategory>> {
        Ok(
            crate::services::admission_discharge::names_from_json(&self.model.omitted_categories)?
                .iter()
                .map(|n| DataCategory::from_db(n))
                .collect::<Result<_, _>>()?,
        )
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.model.sent_at
    }
    async fn sent_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.model.sent_by_member).await
    }
    /// Days from the admission to sending, on Japan's calendar (入院時情報提供
    /// is expected within three days); null until sent.
    async fn days_from_admission_to_sent(&self) -> Option<i64> {
        self.model
            .sent_at
            .map(|t| (region_date(t) - self.model.admitted_on).num_days())
    }
    /// When the hospital acknowledged it.
    async fn received_at(&self) -> Option<DateTime<Utc>> {
        self.model.received_at
    }
    async fn received_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.model.received_by_member).await
    }
}

/// The sections of an admission sheet. A section you may not read is null
/// with a `FORBIDDEN_FIELD` error naming its category, as the record it came
/// from would be.
pub struct AdmissionSheetContent<'a> {
    sheet: &'a AdmissionSheet,
}

impl AdmissionSheetContent<'_> {
    fn read(&self, ctx: &Context<'_>, category: DataCategory) -> Result<Option<()>> {
        gate(ctx, &self.sheet.access, category)
    }
    fn content(&self) -> &SheetContent {
        &self.sheet.content
    }
}

#[Object]
impl AdmissionSheetContent<'_> {
    /// CARE_CERTIFICATION. 要介護度 and its validity.
    async fn care_certification(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<&CareCertificationData>> {
        Ok(self
            .read(ctx, DataCategory::CareCertification)?
            .and(self.content().care_certification.as_ref()))
    }
    /// CARE_PLAN. The care services used at home.
    async fn services(&self, ctx: &Context<'_>) -> Result<Option<&[SheetService]>> {
        Ok(self
            .read(ctx, DataCategory::CarePlan)?
            .and(self.content().services.as_deref()))
    }
    /// ADL. Eating, excretion, transfer, walking, bathing, dressing, cognition.
    async fn adl_assessment(&self, ctx: &Context<'_>) -> Result<Option<&AdlAssessmentData>> {
        Ok(self
            .read(ctx, DataCategory::Adl)?
            .and(self.content().adl_assessment.as_ref()))
    }
    /// FAMILY_CARE_CAPACITY. 介護力 and the key person.
    async fn family_care_capacity(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<&FamilyCareCapacityData>> {
        Ok(self
            .read(ctx, DataCategory::FamilyCareCapacity)?
            .and(self.content().family_care_capacity.as_ref()))
    }
    /// HOME_ENVIRONMENT. 住環境.
    async fn home_environment(&self, ctx: &Context<'_>) -> Result<Option<&HomeEnvironmentData>> {
        Ok(self
            .read(ctx, DataCategory::HomeEnvironment)?
            .and(self.content().home_environment.as_ref()))
    }
    /// CAUTIONS. 留意事項 for the hospital.
    async fn cautions(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .read(ctx, DataCategory::Cautions)?
            .and(self.content().cautions.as_deref()))
    }
    /// ADMISSION_DISCHARGE. 本人・家族の意向: the patient's and family's wishes.
    async fn wishes(&self) -> Option<&str> {
        self.content().wishes.as_deref()
    }
    /// ADMISSION_DISCHARGE.
    async fn note(&self) -> Option<&str> {
        self.content().note.as_deref()
    }
}

/// A record an admission sheet's section was drawn from.
#[derive(SimpleObject)]
pub struct AdmissionSheetSource {
    pub category: DataCategory,
    pub kind: crate::records::RecordKind,
    pub record_id: ID,
    pub effective_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------
// The discharge notice.

/// 退院連絡: a hospital's discharge notice to the care team. ADMISSION_DISCHARGE.
pub struct DischargeNotice(pub(crate) discharge_notice::Model);

#[Object]
impl DischargeNotice {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn patient_id(&self) -> ID {
        id(self.0.patient_id)
    }
    /// The patient, under the policy.
    async fn patient(&self, ctx: &Context<'_>) -> Result<Option<Patient>> {
        Ok(load_patient(ctx, self.0.patient_id).await?)
    }
    /// The hospital that sent it.
    async fn hospital(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.hospital_organization_id).await
    }
    /// The member who wrote this version (null when a system did).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.0.author_member_id).await
    }
    async fn status(&self) -> Result<DischargeNoticeStatus> {
        Ok(DischargeNoticeStatus::from_db(&self.0.status)?)
    }
    /// The admission information sheet of this stay, if the notice is linked to one.
    async fn admission_sheet_id(&self) -> Option<ID> {
        self.0.admission_sheet_id.map(id)
    }
    async fn admitted_on(&self) -> Date {
        Date(self.0.admitted_on)
    }
    async fn planned_discharge_on(&self) -> Date {
        Date(self.0.planned_discharge_on)
    }
    /// Set once the hospital records the discharge.
    async fn actual_discharge_on(&self) -> Option<Date> {
        self.0.actual_discharge_on.map(Date)
    }
    /// The day the lead time is measured to: the actual day once recorded,
    /// else the planned one.
    async fn discharge_on(&self) -> Date {
        Date(notices::discharge_on(&self.0))
    }
    /// When the notice was first sent (corrections keep it).
    async fn notified_at(&self) -> DateTime<Utc> {
        self.0.notified_at
    }
    /// `notifiedAt`'s day in Japan, where the lead time starts.
    async fn notified_on(&self) -> Date {
        Date(self.0.notified_on)
    }
    /// Days from `notifiedOn` to `dischargeOn`; negative when the team was
    /// told after the patient had left.
    async fn lead_time_days(&self) -> i64 {
        notices::lead_time_days(&self.0)
    }
    /// Kitami's bucket of the lead time.
    async fn lead_time_bucket(&self) -> LeadTimeBucket {
        LeadTimeBucket::of(notices::lead_time_days(&self.0))
    }
    /// What the patient will need at home.
    async fn needs_at_home(&self) -> &str {
        &self.0.needs_at_home
    }
    /// Kitami's criteria that apply (退院調整が必要な患者の基準).
    async fn criteria(&self) -> Result<Vec<DischargeCriterion>> {
        Ok(notices::criteria_of(&self.0)?)
    }
    /// Whether any criterion applies: the discharge needs coordination with
    /// the care manager.
    async fn needs_coordination(&self) -> Result<bool> {
        Ok(!notices::criteria_of(&self.0)?.is_empty())
    }
    /// 1 for the first notice; each correction, discharge or cancellation adds one.
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Earlier versions, newest first.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<DischargeNoticeVersion>> {
        Ok(ctx
            .data_unchecked::<Loaders>()
            .notice_history
            .load_one(self.0.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(DischargeNoticeVersion)
            .collect())
    }
}

/// An earlier version of a discharge notice.
pub struct DischargeNoticeVersion(entities::discharge_notice_version::Model);

#[Object]
impl DischargeNoticeVersion {
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn status(&self) -> Result<DischargeNoticeStatus> {
        Ok(DischargeNoticeStatus::from_db(&self.0.status)?)
    }
    async fn planned_discharge_on(&self) -> Date {
        Date(self.0.planned_discharge_on)
    }
    async fn actual_discharge_on(&self) -> Option<Date> {
        self.0.actual_discharge_on.map(Date)
    }
    async fn needs_at_home(&self) -> &str {
        &self.0.needs_at_home
    }
    async fn criteria(&self) -> Result<Vec<DischargeCriterion>> {
        Ok(notices::criteria_from_json(&self.0.criteria)?)
    }
    /// When this version was written.
    async fn written_at(&self) -> DateTime<Utc> {
        self.0.changed_at
    }
    /// Who wrote it (null when a system did).
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.0.changed_by_member).await
    }
}

// ---------------------------------------------------------------------------
// By id, from other subgraphs (`_entities`).

/// An admission sheet referenced by id from another subgraph: under the
/// rule of every reference to one ([`mutation::sheet`]), and recorded as a
/// read of ADMISSION_DISCHARGE like the sheets of `Patient.admissionSheets`.
pub(crate) async fn sheet_entity(ctx: &Context<'_>, id: Uuid) -> Result<AdmissionSheet, ApiError> {
    let (model, access) = mutation::sheet(ctx, id).await?;
    ctx_trail(ctx)?.read(&access, CATEGORY);
    AdmissionSheet::new(access, model)
}

/// A discharge notice referenced by id from another subgraph, likewise.
pub(crate) async fn notice_entity(
    ctx: &Context<'_>,
    id: Uuid,
) -> Result<DischargeNotice, ApiError> {
    let (model, access) = mutation::notice(ctx, id).await?;
    ctx_trail(ctx)?.read(&access, CATEGORY);
    Ok(DischargeNotice(model))
}

// ---------------------------------------------------------------------------
// Through the patient: `Patient.admissionSheets` and the others.

/// `Patient.admissionSheets`: the patient's sheets, newest first (drafts only
/// your organisation's own). ADMISSION_DISCHARGE.
pub(crate) async fn patient_sheets(
    ctx: &Context<'_>,
    access: &PatientAccess,
) -> Result<Option<Vec<AdmissionSheet>>> {
    if gate(ctx, access, CATEGORY)?.is_none() {
        return Ok(None);
    }
    let org = ctx_request(ctx)?.principal.organization_id();
    let rows = sheets::of_patient(ctx_db(ctx), access.patient_id(), org).await?;
    Ok(Some(
        rows.into_iter()
            .map(|m| AdmissionSheet::new(access.clone(), m))
            .collect::<ApiResult<_>>()?,
    ))
}

/// `Patient.dischargeNotices`, newest first. ADMISSION_DISCHARGE.
pub(crate) async fn patient_notices(
    ctx: &Context<'_>,
    access: &PatientAccess,
) -> Result<Option<Vec<DischargeNotice>>> {
    if gate(ctx, access, CATEGORY)?.is_none() {
        return Ok(None);
    }
    let rows = notices::of_patient(ctx_db(ctx), access.patient_id()).await?;
    Ok(Some(rows.into_iter().map(DischargeNotice).collect()))
}

// ---------------------------------------------------------------------------
// An organisation's lists.

/// Page size when `first` is not given, and the most a page may hold.
const PAGE: i32 = 20;
const PAGE_MAX: i32 = 100;

pub(crate) fn page_args(
    first: Option<i32>,
    after: Option<String>,
) -> Result<(u64, Option<Uuid>), ApiError> {
    super::inputs::id_page(first, after.as_deref(), PAGE, PAGE_MAX)
}

pub(crate) fn cursor(id: Uuid) -> String {
    super::inputs::id_cursor(id)
}

/// The rows of ADMISSION_DISCHARGE the caller may read, for a list to
/// filter on before it pages (see [`crate::policy::rows`]); `None` when its
/// role (or key) never reads the category: the list is empty, unread.
fn list_scope(ctx: &Context<'_>) -> Result<Option<RowScope>, ApiError> {
    Ok(ctx_policy(ctx).readable_rows(&ctx_request(ctx)?.principal, CATEGORY))
}

/// The policy's verdicts on the patients of a page, batched by the access
/// loader: each read recorded in the audit trail. The page was already
/// restricted to readable patients in its query ([`list_scope`]); a patient
/// whose access changed in the instant between the two statements (consent
/// withdrawn) is left out rather than shown.
async fn readable_patients(
    ctx: &Context<'_>,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, PatientAccess>, ApiError> {
    let rows: BTreeSet<(Uuid, DataCategory)> = ids.into_iter().map(|id| (id, CATEGORY)).collect();
    readable_in(ctx, rows).await
}

/// [`readable_patients`] for rows of several categories: the patients of
/// which the caller may read some row's category, each category read
/// recorded; the caller keeps a row only if the patient's access reads its
/// category.
async fn readable_in(
    ctx: &Context<'_>,
    rows: BTreeSet<(Uuid, DataCategory)>,
) -> Result<HashMap<Uuid, PatientAccess>, ApiError> {
    let ids: BTreeSet<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let verdicts = futures_util::future::try_join_all(ids.iter().map(|id| async move {
        match patient_access(ctx, *id).await {
            Ok(a) => Ok(Some(a)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }))
    .await?;
    let trail = ctx_trail(ctx)?;
    let mut out = HashMap::new();
    for access in verdicts.into_iter().flatten() {
        let patient = access.patient_id();
        let categories: Vec<DataCategory> = rows
            .iter()
            .filter(|(id, _)| *id == patient)
            .map(|(_, c)| *c)
            .collect();
        let mut any = false;
        for c in categories.into_iter().filter(|c| access.may_read(*c)) {
            trail.read(&access, c);
            any = true;
        }
        if any {
            out.insert(patient, access);
        }
    }
    Ok(out)
}

pub(crate) type Page<T> = Connection<String, T, EmptyFields, EmptyFields>;

/// `Query.admissionSheetsReceived`.
pub(crate) async fn sheets_received(
    ctx: &Context<'_>,
    status: Vec<AdmissionSheetStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<AdmissionSheet>> {
    let (first, after) = page_args(first, after)?;
    let Some(scope) = list_scope(ctx)? else {
        return Ok(Connection::new(after.is_some(), false));
    };
    let (rows, more) = sheets::sent_to(ctx_db(ctx), &scope, &status, after, first).await?;
    let access = readable_patients(ctx, rows.iter().map(|r| r.patient_id)).await?;
    let mut page = Connection::new(after.is_some(), more);
    for m in rows {
        if let Some(a) = access.get(&m.patient_id) {
            page.edges
                .push(Edge::new(cursor(m.id), AdmissionSheet::new(a.clone(), m)?));
        }
    }
    Ok(page)
}

/// `Query.careTeamDischargeNotices`.
pub(crate) async fn team_notices(
    ctx: &Context<'_>,
    status: Vec<DischargeNoticeStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<DischargeNotice>> {
    let (first, after) = page_args(first, after)?;
    let Some(scope) = list_scope(ctx)? else {
        return Ok(Connection::new(after.is_some(), false));
    };
    let (rows, more) = notices::for_team_of(ctx_db(ctx), &scope, &status, after, first).await?;
    let access = readable_patients(ctx, rows.iter().map(|r| r.patient_id)).await?;
    let mut page = Connection::new(after.is_some(), more);
    page.edges.extend(
        rows.into_iter()
            .filter(|m| access.contains_key(&m.patient_id))
            .map(|m| Edge::new(cursor(m.id), DischargeNotice(m))),
    );
    Ok(page)
}

// ---------------------------------------------------------------------------
// The lead-time report.

/// The number of discharges notified in one of Kitami's buckets.
#[derive(SimpleObject)]
pub struct LeadTimeBucketCount {
    pub bucket: LeadTimeBucket,
    /// The bucket's name on Kitami's survey (「5~7日前」).
    pub label: &'static str,
    /// The fewest days before the discharge it holds (null: no lower bound).
    pub min_days: Option<i64>,
    /// The most days (null: no upper bound).
    pub max_days: Option<i64>,
    /// Null when hidden: fewer than 5 (or derivable from the others) in a
    /// report read by anyone but the hospital itself.
    pub count: Option<u64>,
    /// `count / total`; null when there are none, or either is hidden.
    pub share: Option<f64>,
}

/// 退院連絡の時期: discharge-notice lead times over a period, for one
/// hospital or the region. Counts only: no patient is named.
pub struct DischargeLeadTimeReport(LeadTimeReport);

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[Object]
impl DischargeLeadTimeReport {
    /// First day of the period (inclusive).
    async fn from(&self) -> Date {
        Date(self.0.from)
    }
    /// Last day of the period (inclusive).
    async fn to(&self) -> Date {
        Date(self.0.to)
    }
    /// The hospital reported on; null for the whole region.
    async fn hospital(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        match self.0.hospital {
            Some(h) => Ok(Some(load_organization(ctx, h).await?)),
            None => Ok(None),
        }
    }
    /// Discharges in the period (by the actual day, else the planned day)
    /// that were notified, of patients whose consent shares
    /// ADMISSION_DISCHARGE with the notifying hospital; cancelled notices
    /// are not counted. Null when
    /// hidden (counts below 5 are hidden from every reader but the hospital
    /// itself; docs/indicators.md).
    async fn total(&self) -> Option<u64> {
        self.0.published().total
    }
    /// Every bucket, from 8 days or more to after the discharge.
    async fn buckets(&self) -> Vec<LeadTimeBucketCount> {
        let p = self.0.published();
        p.buckets
            .iter()
            .map(|(bucket, count)| {
                let (min_days, max_days) = bucket.days();
                LeadTimeBucketCount {
                    bucket: *bucket,
                    label: bucket.label(),
                    min_days,
                    max_days,
                    count: *count,
                    share: match (count, p.total) {
                        (Some(c), Some(t)) => ratio(*c, t),
                        _ => None,
                    },
                }
            })
            .collect()
    }
    /// Notified at least five days ahead, what care managers ask for.
    async fn at_least_five_days(&self) -> Option<u64> {
        self.0.published().at_least_five_days
    }
    /// How many of `total` were measured on a recorded actual discharge day
    /// (the rest on the planned day).
    async fn measured_on_actual_day(&self) -> Option<u64> {
        self.0.published().measured_on_actual_day
    }
    /// Admissions with a day of admission in the period that the team
    /// reported to the hospital by an admission sheet.
    async fn admissions_reported(&self) -> Option<u64> {
        self.0.published().admissions_reported
    }
    /// Of those, how many the hospital has sent a discharge notice for.
    async fn admissions_with_discharge_notice(&self) -> Option<u64> {
        self.0.published().admissions_with_notice
    }
    /// 退院連絡率 on what the hub knows: `admissionsWithDischargeNotice /
    /// admissionsReported` (admissions still in progress count as not yet
    /// notified); null when no admission was reported, or the counts are
    /// hidden.
    async fn discharge_notice_rate(&self) -> Option<f64> {
        let p = self.0.published();
        match (p.admissions_with_notice, p.admissions_reported) {
            (Some(part), Some(whole)) => ratio(part, whole),
            _ => None,
        }
    }
}

/// `Query.dischargeLeadTimeReport`: the policy of the report is in
/// `services::admission_discharge::report`; the read is audited without a
/// patient.
pub(crate) async fn lead_time_report(
    ctx: &Context<'_>,
    from: Date,
    to: Date,
    hospital_id: Option<ID>,
) -> Result<DischargeLeadTimeReport> {
    let req = ctx_request(ctx)?;
    let hospital = hospital_id
        .as_ref()
        .map(|h| parse_id("hospitalId", h))
        .transpose()?;
    if from.0 > to.0 {
        return Err(
            ApiError::bad_input("to", format!("{} is before `from` ({})", to.0, from.0)).into(),
        );
    }
    if (to.0 - from.0).num_days() >= report::MAX_PERIOD_DAYS {
        return Err(ApiError::bad_input(
            "to",
            format!(
                "the period may be at most {} days long",
                report::MAX_PERIOD_DAYS
            ),
        )
        .into());
    }
    let db = ctx_db(ctx);
    let access =
        report::require_report_access(db, ctx_policy(ctx), &req.principal, hospital).await?;
    if let Some(h) = hospital {
        crate::services::organizations::require_exists(db, "hospitalId", h).await?;
    }
    ctx_trail(ctx)?.read_aggregate(
        CATEGORY,
        format!(
            "discharge lead-time report: {}, {} to {}",
            hospital.map_or("the region".to_string(), |h| format!("hospital {h}")),
            from.0,
            to.0
        ),
    );
    // The hospital reads its own counts as they are; everyone else (the
    // region's overseers) without the small ones.
    let own = hospital == Some(req.principal.organization_id());
    Ok(DischargeLeadTimeReport(
        report::lead_times(db, &access, from.0, to.0, !own).await?,
    ))
}
