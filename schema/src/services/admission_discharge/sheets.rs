//! 入院時情報提供書: the admission information sheet. When a patient is
//! admitted, the care manager tells the hospital how the patient lives at
//! home — care level, services used, ADL, the family's capacity to care and
//! the key person, the home, cautions — so that the hospital can plan the
//! discharge from the first day.
//!
//! A sheet is written as a `DRAFT` by an organisation of the care team
//! (usually the care manager's office), prefilled from the patient's latest
//! records where the author may read them, edited, then `SENT` to the
//! hospital, which acknowledges it (`RECEIVED`). Only the author's
//! organisation sees a draft and only a draft can be edited.
//!
//! Each section keeps the data category it was drawn from (ADL stays `ADL`):
//! a reader of the sheet sees a section only if the policy lets it read that
//! category, as it would the record itself.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CATEGORY, author, is_inpatient};
use crate::audit::AuditStamp;
use crate::domain::{AccessLevel, DataCategory};
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, PatientEventKind};
use crate::policy::{PatientAccess, Policy, RowScope};
use crate::principal::{Principal, SystemPermissions};
use crate::records::{
    AdlAssessmentData, CareCertificationData, FamilyCareCapacityData, HomeEnvironmentData,
    RecordData, RecordKind,
};
use crate::services::notifications::{self, NewNotification, NotificationKind};
use crate::services::records::ACTIVE;
use entities::{admission_sheet, organization, record};

crate::domain::domain_enum! {
    /// Where an admission information sheet is in its life.
    pub enum AdmissionSheetStatus {
        /// Being written; only the author's organisation sees it.
        Draft = "DRAFT",
        /// Sent to the hospital; no longer editable.
        Sent = "SENT",
        /// The hospital acknowledged it.
        Received = "RECEIVED",
    }
}

/// One care service the patient uses at home (from the care plan and the
/// service-use records).
#[derive(
    async_graphql::SimpleObject,
    async_graphql::InputObject,
    Serialize,
    Deserialize,
    Clone,
    Debug,
    PartialEq,
)]
#[graphql(
    name = "AdmissionSheetService",
    input_name = "AdmissionSheetServiceInput"
)]
#[serde(rename_all = "camelCase")]
pub struct SheetService {
    /// 「訪問介護」「通所介護」「訪問看護」 …
    pub service_type: String,
    pub provider: Option<String>,
    /// 「週2回」.
    pub frequency: Option<String>,
}

/// The most services listed on one sheet.
pub const SERVICES_MAX: usize = 50;

/// The sheet's content, stored as JSON. Every section is optional: a section
/// the prefill found no record for, or that the author left out.
#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SheetContent {
    #[serde(default)]
    pub care_certification: Option<CareCertificationData>,
    #[serde(default)]
    pub services: Option<Vec<SheetService>>,
    #[serde(default)]
    pub adl_assessment: Option<AdlAssessmentData>,
    #[serde(default)]
    pub family_care_capacity: Option<FamilyCareCapacityData>,
    #[serde(default)]
    pub home_environment: Option<HomeEnvironmentData>,
    /// 留意事項: what the hospital should take care of.
    #[serde(default)]
    pub cautions: Option<String>,
    /// 本人・家族の意向: the patient's and family's wishes for the stay and after.
    #[serde(default)]
    pub wishes: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

impl SheetContent {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(json: &str) -> ApiResult<Self> {
        serde_json::from_str(json).map_err(|e| {
            ApiError::internal(format_args!("stored admission sheet is not readable: {e}"))
        })
    }

    /// The categories of the sections that hold something.
    pub fn categories(&self) -> Vec<DataCategory> {
        Section::ALL
            .iter()
            .filter(|s| s.is_set(self))
            .map(|s| s.category())
            .collect()
    }
}

/// A section of the sheet and the data category it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    CareCertification,
    Services,
    AdlAssessment,
    FamilyCareCapacity,
    HomeEnvironment,
    Cautions,
    Wishes,
    Note,
}

impl Section {
    pub const ALL: &'static [Section] = &[
        Section::CareCertification,
        Section::Services,
        Section::AdlAssessment,
        Section::FamilyCareCapacity,
        Section::HomeEnvironment,
        Section::Cautions,
        Section::Wishes,
        Section::Note,
    ];

    pub fn category(self) -> DataCategory {
        match self {
            Section::CareCertification => DataCategory::CareCertification,
            Section::Services => DataCategory::CarePlan,
            Section::AdlAssessment => DataCategory::Adl,
            Section::FamilyCareCapacity => DataCategory::FamilyCareCapacity,
            Section::HomeEnvironment => DataCategory::HomeEnvironment,
            Section::Cautions => DataCategory::Cautions,
            Section::Wishes | Section::Note => CATEGORY,
        }
    }

    /// The section's field in the API (`content.adlAssessment`).
    pub fn field(self) -> &'static str {
        match self {
            Section::CareCertification => "careCertification",
            Section::Services => "services",
            Section::AdlAssessment => "adlAssessment",
            Section::FamilyCareCapacity => "familyCareCapacity",
            Section::HomeEnvironment => "homeEnvironment",
            Section::Cautions => "cautions",
            Section::Wishes => "wishes",
            Section::Note => "note",
        }
    }

    fn is_set(self, c: &SheetContent) -> bool {
        match self {
            Section::CareCertification => c.care_certification.is_some(),
            Section::Services => c.services.is_some(),
            Section::AdlAssessment => c.adl_assessment.is_some(),
            Section::FamilyCareCapacity => c.family_care_capacity.is_some(),
            Section::HomeEnvironment => c.home_environment.is_some(),
            Section::Cautions => c.cautions.is_some(),
            Section::Wishes => c.wishes.is_some(),
            Section::Note => c.note.is_some(),
        }
    }
}

/// What to do with one section: keep it, remove it, or replace it.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    fn apply(self, slot: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *slot = None,
            Change::Set(v) => *slot = Some(v),
        }
    }

    fn sets(&self) -> bool {
        matches!(self, Change::Set(_))
    }
}

/// Validated changes to a sheet's sections (parsed at the GraphQL edge).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContentPatch {
    pub care_certification: Change<CareCertificationData>,
    pub services: Change<Vec<SheetService>>,
    pub adl_assessment: Change<AdlAssessmentData>,
    pub family_care_capacity: Change<FamilyCareCapacityData>,
    pub home_environment: Change<HomeEnvironmentData>,
    pub cautions: Change<String>,
    pub wishes: Change<String>,
    pub note: Change<String>,
}

impl ContentPatch {
    /// The sections the patch fills in.
    fn sets(&self) -> Vec<Section> {
        let set = [
            (Section::CareCertification, self.care_certification.sets()),
            (Section::Services, self.services.sets()),
            (Section::AdlAssessment, self.adl_assessment.sets()),
            (
                Section::FamilyCareCapacity,
                self.family_care_capacity.sets(),
            ),
            (Section::HomeEnvironment, self.home_environment.sets()),
            (Section::Cautions, self.cautions.sets()),
            (Section::Wishes, self.wishes.sets()),
            (Section::Note, self.note.sets()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(s, _)| s)
            .collect()
    }

    fn apply(self, content: &mut SheetContent) {
        self.care_certification
            .apply(&mut content.care_certification);
        self.services.apply(&mut content.services);
        self.adl_assessment.apply(&mut content.adl_assessment);
        self.family_care_capacity
            .apply(&mut content.family_care_capacity);
        self.home_environment.apply(&mut content.home_environment);
        self.cautions.apply(&mut content.cautions);
        self.wishes.apply(&mut content.wishes);
        self.note.apply(&mut content.note);
    }

    /// Filling in a section is writing data of its category into a document
    /// others will read: the author must at least be allowed to read that
    /// category (the prefill never draws what the author may not read, and a
    /// hand-typed section must not go further).
    fn require_author_may_read(&self, access: &PatientAccess) -> ApiResult<()> {
        for section in self.sets() {
            let category = section.category();
            if !access.may_read(category) {
                return Err(ApiError::Forbidden(format!(
                    "you may not fill in the section {}: {}",
                    section.field(),
                    access.grant(category).reason.explain(category)
                )));
            }
        }
        Ok(())
    }
}

/// A record the prefill drew a section from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SheetSource {
    pub category: String,
    pub kind: String,
    pub record_id: Uuid,
    pub effective_at: DateTime<Utc>,
}

/// What the prefill found.
#[derive(Clone, Debug, Default)]
pub struct Prefill {
    pub content: SheetContent,
    pub sources: Vec<SheetSource>,
    /// Categories left out because the author may not read them.
    pub omitted: Vec<DataCategory>,
    /// Categories whose records were read (for the audit trail).
    pub read: Vec<DataCategory>,
}

/// The record kinds the prefill draws from, with the sheet's category for
/// them. The demo draws its sheets from the same kinds.
pub(crate) const PREFILL_KINDS: &[(RecordKind, DataCategory)] = &[
    (
        RecordKind::CareCertification,
        DataCategory::CareCertification,
    ),
    (RecordKind::CarePlan, DataCategory::CarePlan),
    (RecordKind::ServiceUse, DataCategory::CarePlan),
    (RecordKind::AdlAssessment, DataCategory::Adl),
    (
        RecordKind::FamilyCareCapacity,
        DataCategory::FamilyCareCapacity,
    ),
    (RecordKind::HomeEnvironment, DataCategory::HomeEnvironment),
];

/// Draws the sheet's sections from the patient's latest records, reading
/// only the categories `access` lets the author read: the latest care
/// certification, ADL assessment, family care capacity and home environment;
/// the services of the latest care plan plus the service-use records in
/// force on `today`. One query.
pub async fn prefill(
    db: &DatabaseConnection,
    access: &PatientAccess,
    today: NaiveDate,
) -> ApiResult<Prefill> {
    let mut out = Prefill::default();
    let mut readable = Vec::new();
    for (_, category) in PREFILL_KINDS {
        if access.may_read(*category) {
            if !readable.contains(category) {
                readable.push(*category);
            }
        } else if !out.omitted.contains(category) {
            out.omitted.push(*category);
        }
    }
    if readable.is_empty() {
        return Ok(out);
    }
    let kinds: Vec<&str> = PREFILL_KINDS
        .iter()
        .filter(|(_, c)| readable.contains(c))
        .map(|(k, _)| k.as_str())
        .collect();
    let rows = record::Entity::find()
        .filter(record::Column::PatientId.eq(access.patient_id()))
        .filter(record::Column::Status.eq(ACTIVE))
        .filter(record::Column::Kind.is_in(kinds))
        // The record's own category decides, as everywhere.
        .filter(record::Column::Category.is_in(readable.iter().map(|c| c.as_str())))
        .order_by_desc(record::Column::EffectiveAt)
        .order_by_desc(record::Column::Id)
        .all(db)
        .await?;
    out.read = readable;
    (out.content, out.sources) = draw(&rows, today)?;
    Ok(out)
}

/// The sections drawn from a patient's records (newest first, already
/// limited to what the author may read), and the records used: the newest
/// care certification, ADL assessment, family care capacity and home
/// environment; the newest care plan's services, then the service-use
/// records in force on `today` that the plan does not name. The demo builds
/// its sheets with it too.
pub(crate) fn draw(
    rows: &[record::Model],
    today: NaiveDate,
) -> ApiResult<(SheetContent, Vec<SheetSource>)> {
    let mut content = SheetContent::default();
    let mut sources = Vec::new();
    let c = &mut content;
    // The care plan's services first (the plan is the list the care manager
    // keeps), then service-use records in force that the plan does not name.
    let mut planned: Vec<SheetService> = Vec::new();
    let mut in_use: Vec<SheetService> = Vec::new();
    let mut took_plan = false;
    for r in rows {
        if r.status != ACTIVE {
            continue;
        }
        let kind = RecordKind::from_db(&r.kind)?;
        let used = match RecordData::from_json(kind, &r.data)? {
            RecordData::CareCertification(d) if c.care_certification.is_none() => {
                c.care_certification = Some(d);
                true
            }
            RecordData::AdlAssessment(d) if c.adl_assessment.is_none() => {
                c.adl_assessment = Some(d);
                true
            }
            RecordData::FamilyCareCapacity(d) if c.family_care_capacity.is_none() => {
                c.family_care_capacity = Some(d);
                true
            }
            RecordData::HomeEnvironment(d) if c.home_environment.is_none() => {
                c.home_environment = Some(d);
                true
            }
            RecordData::CarePlan(d) if !took_plan => {
                took_plan = true;
                planned.extend(d.services.into_iter().map(|s| SheetService {
                    service_type: s.service_type,
                    provider: s.provider,
                    frequency: Some(s.frequency),
                }));
                true
            }
            RecordData::ServiceUse(d)
                if d.start_date.0 <= today && d.end_date.is_none_or(|e| e.0 >= today) =>
            {
                in_use.push(SheetService {
                    service_type: d.service_type,
                    provider: d.provider,
                    frequency: d.frequency,
                });
                true
            }
            _ => false,
        };
        if used {
            sources.push(SheetSource {
                category: r.category.clone(),
                kind: r.kind.clone(),
                record_id: r.id,
                effective_at: r.effective_at,
            });
        }
    }
    let mut services: Vec<SheetService> = Vec::new();
    for s in planned.into_iter().chain(in_use) {
        push_service(&mut services, s);
    }
    if !services.is_empty() {
        services.truncate(SERVICES_MAX);
        c.services = Some(services);
    }
    Ok((content, sources))
}

/// Adds a service unless the same service of the same provider is listed
/// (the care plan and a service-use record often name the same one).
fn push_service(services: &mut Vec<SheetService>, s: SheetService) {
    let same = |o: &SheetService| {
        o.service_type.trim() == s.service_type.trim()
            && o.provider.as_deref().map(str::trim) == s.provider.as_deref().map(str::trim)
    };
    if !services.iter().any(same) {
        services.push(s);
    }
}

/// Why a hospital cannot receive a sheet about the patient.
enum Receiver {
    Ok,
    NotOnTeam(organization::Model),
    NotCovered(organization::Model),
}

/// Asks the policy whether the hospital, as an organisation, could read the
/// sheet: it must be on the patient's care team and the patient's consent
/// must cover it for ADMISSION_DISCHARGE. (The probe is a system principal of
/// the hospital with read permission on the category only, so the verdict is
/// exactly relationship × consent.)
async fn receiver(
    db: &DatabaseConnection,
    policy: &Policy,
    author_org: Uuid,
    patient_id: Uuid,
    hospital_id: Uuid,
    field: &str,
) -> ApiResult<Receiver> {
    let org = crate::services::organizations::require_exists(db, field, hospital_id).await?;
    if !is_inpatient(&org)? {
        return Err(ApiError::bad_input(
            field,
            format!(
                "{} is a {}: admission sheets go to hospitals (and clinics with beds)",
                org.name, org.kind
            ),
        ));
    }
    if org.id == author_org {
        return Err(ApiError::bad_input(
            field,
            "is your own organisation: a sheet goes from the team at home to the admitting hospital",
        ));
    }
    let probe = Principal::System {
        api_key_id: Uuid::nil(),
        organization_id: hospital_id,
        permissions: SystemPermissions::new([(CATEGORY, AccessLevel::Read)]),
    };
    let verdicts = policy.evaluate(db, &probe, &[patient_id]).await?;
    Ok(match verdicts.get(&patient_id).map(|v| &v.access) {
        None => Receiver::NotOnTeam(org),
        Some(a) if !a.may_read(CATEGORY) => Receiver::NotCovered(org),
        Some(_) => Receiver::Ok,
    })
}

fn not_on_team(org: &organization::Model) -> String {
    format!(
        "{} is not on the patient's care team: add it first (addCareTeamMember, role HOSPITAL), so that it may read the sheet",
        org.name
    )
}

fn not_covered(org: &organization::Model) -> String {
    format!(
        "the patient's consent does not cover {} for {CATEGORY}: the hospital could not read the sheet",
        org.name
    )
}

/// Checks a hospital chosen in input (create, update): a wrong hospital is
/// the input's fault, consent that does not cover it is the data's.
async fn require_receiver_input(
    db: &DatabaseConnection,
    policy: &Policy,
    author_org: Uuid,
    patient_id: Uuid,
    hospital_id: Uuid,
    field: &str,
) -> ApiResult<()> {
    match receiver(db, policy, author_org, patient_id, hospital_id, field).await? {
        Receiver::Ok => Ok(()),
        Receiver::NotOnTeam(org) => Err(ApiError::bad_input(field, not_on_team(&org))),
        Receiver::NotCovered(org) => Err(ApiError::Conflict(not_covered(&org))),
    }
}

/// How far ahead an admission may be: a planned admission (予定入院) is
/// reported before the day, which hospitals welcome.
pub const ADMISSION_MAX_AHEAD_DAYS: u64 = 30;

/// The day of admission on a sheet: at most [`ADMISSION_MAX_AHEAD_DAYS`]
/// ahead, and not longer ago than a discharge notice accepts.
pub fn check_admitted_on(field: &str, day: NaiveDate, today: NaiveDate) -> ApiResult<NaiveDate> {
    if day > today + chrono::Days::new(ADMISSION_MAX_AHEAD_DAYS) {
        return Err(ApiError::bad_input(
            field,
            format!("{day} is more than {ADMISSION_MAX_AHEAD_DAYS} days ahead"),
        ));
    }
    super::notices::check_admitted_on(field, day.min(today), today)?;
    Ok(day)
}

/// A new sheet: the hospital, the day of admission and the author's changes
/// over the prefill.
#[derive(Debug)]
pub struct NewSheet {
    pub hospital_id: Uuid,
    pub admitted_on: NaiveDate,
    pub patch: ContentPatch,
}

/// A new sheet the caller may write and the hospital may receive; only
/// [`check_new`] makes one, so the prefill runs only for a sheet that will
/// be written (its reads are audited).
#[derive(Debug)]
pub struct CheckedSheet(NewSheet);

/// Checks a new sheet before anything is read for it: write access to
/// ADMISSION_DISCHARGE, sections the author may read, and a hospital on the
/// care team that the patient's consent covers.
pub async fn check_new(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    new: NewSheet,
) -> ApiResult<CheckedSheet> {
    access.require_write(CATEGORY)?;
    new.patch.require_author_may_read(access)?;
    access.require_naming_team("input.hospitalId")?;
    require_receiver_input(
        db,
        policy,
        stamp.principal.organization_id(),
        access.patient_id(),
        new.hospital_id,
        "input.hospitalId",
    )
    .await?;
    Ok(CheckedSheet(new))
}

/// Writes a draft: the prefill (if any) with the author's changes over it.
pub async fn create(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    checked: CheckedSheet,
    prefill: Option<Prefill>,
) -> ApiResult<admission_sheet::Model> {
    let CheckedSheet(new) = checked;
    let org = stamp.principal.organization_id();
    let patient_id = access.patient_id();
    let (content, sources, omitted) = match prefill {
        Some(p) => (p.content, p.sources, p.omitted),
        None => Default::default(),
    };
    let mut content = content;
    new.patch.apply(&mut content);
    let now = policy.clock.now();
    let (member, api_key) = author(&stamp.principal);
    let model = admission_sheet::ActiveModel {
        id: Set(crate::services::new_id()),
        patient_id: Set(patient_id),
        author_organization_id: Set(org),
        author_member_id: Set(member),
        author_api_key_id: Set(api_key),
        hospital_organization_id: Set(new.hospital_id),
        admitted_on: Set(new.admitted_on),
        status: Set(AdmissionSheetStatus::Draft.as_str().into()),
        content: Set(content.to_json()),
        sources: Set(serde_json::to_string(&sources).map_err(ApiError::internal)?),
        omitted_categories: Set(super::names_json(omitted.iter().map(|c| c.as_str()))),
        created_at: Set(now),
        updated_at: Set(now),
        sent_at: Set(None),
        sent_by_member: Set(None),
        received_at: Set(None),
        received_by_member: Set(None),
    };
    let mut written = vec![CATEGORY];
    written.extend(content.categories());
    let entry = stamp.write(patient_id, &written);
    let txn = crate::services::begin_write(db).await?;
    let inserted = admission_sheet::Entity::insert(model)
        .exec_with_returning(&txn)
        .await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Changes to a draft: another hospital or day of admission, section changes.
#[derive(Debug, Default)]
pub struct SheetChange {
    pub hospital_id: Option<Uuid>,
    pub admitted_on: Option<NaiveDate>,
    pub patch: ContentPatch,
}

/// Only the author's organisation changes a sheet, and only its draft.
fn require_author_draft(sheet: &admission_sheet::Model, stamp: &AuditStamp) -> ApiResult<()> {
    if sheet.author_organization_id != stamp.principal.organization_id() {
        return Err(ApiError::Forbidden(
            "only the organisation that wrote the admission sheet may change or send it".into(),
        )
        .about(sheet.patient_id, &[CATEGORY]));
    }
    let status = AdmissionSheetStatus::from_db(&sheet.status)?;
    if status != AdmissionSheetStatus::Draft {
        return Err(ApiError::Conflict(format!(
            "the admission sheet is {status} (sent {}); only a draft can be changed or sent",
            sheet
                .sent_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "earlier".into())
        )));
    }
    Ok(())
}

/// The sheet changed under the caller (sent meanwhile by a colleague).
/// The sheet's row still holds what `sheet` was read with: its content,
/// hospital and day of admission. (Not its `updated_at`: two edits within
/// one tick of the clock — a clock that stands still, in tests — would
/// pass that.)
fn unchanged_since_read(sheet: &admission_sheet::Model) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(admission_sheet::Column::Content.eq(sheet.content.clone()))
        .add(admission_sheet::Column::HospitalOrganizationId.eq(sheet.hospital_organization_id))
        .add(admission_sheet::Column::AdmittedOn.eq(sheet.admitted_on))
}

fn moved_on() -> ApiError {
    ApiError::Conflict(
        "the admission sheet was sent or changed at the same moment; reload it".into(),
    )
}

/// Edits a draft.
pub async fn update(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    sheet: admission_sheet::Model,
    change: SheetChange,
) -> ApiResult<admission_sheet::Model> {
    access.require_write(CATEGORY)?;
    require_author_draft(&sheet, stamp)?;
    change.patch.require_author_may_read(access)?;
    if let Some(h) = change.hospital_id {
        access.require_naming_team("input.hospitalId")?;
        require_receiver_input(
            db,
            policy,
            sheet.author_organization_id,
            sheet.patient_id,
            h,
            "input.hospitalId",
        )
        .await?;
    }
    let mut content = SheetContent::from_json(&sheet.content)?;
    let touched: Vec<DataCategory> = change.patch.sets().iter().map(|s| s.category()).collect();
    change.patch.apply(&mut content);
    let now = policy.clock.now();
    let mut written = vec![CATEGORY];
    written.extend(touched);
    let entry = stamp.write(sheet.patient_id, &written);
    let txn = crate::services::begin_write(db).await?;
    let result = admission_sheet::Entity::update_many()
        .set(admission_sheet::ActiveModel {
            hospital_organization_id: Set(change
                .hospital_id
                .unwrap_or(sheet.hospital_organization_id)),
            admitted_on: Set(change.admitted_on.unwrap_or(sheet.admitted_on)),
            content: Set(content.to_json()),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(admission_sheet::Column::Id.eq(sheet.id))
        .filter(admission_sheet::Column::Status.eq(AdmissionSheetStatus::Draft.as_str()))
        // As it was read: the content patched above and the hospital kept
        // are that version's. Another edit committed since would be lost
        // under this one (two members editing two sections at once).
        .filter(unchanged_since_read(&sheet))
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(moved_on());
    }
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let updated = reload(&txn, sheet.id).await?;
    txn.commit().await?;
    Ok(updated)
}

async fn reload(db: &impl sea_orm::ConnectionTrait, id: Uuid) -> ApiResult<admission_sheet::Model> {
    admission_sheet::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::internal("an admission sheet vanished"))
}

/// Sends a draft to its hospital, which is notified. The hospital must still
/// be on the care team and covered by the patient's consent.
pub async fn send(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    sheet: admission_sheet::Model,
) -> ApiResult<admission_sheet::Model> {
    access.require_write(CATEGORY)?;
    require_author_draft(&sheet, stamp)?;
    match receiver(
        db,
        policy,
        sheet.author_organization_id,
        sheet.patient_id,
        sheet.hospital_organization_id,
        "input.hospitalId",
    )
    .await?
    {
        Receiver::Ok => {}
        // The hospital left the team (or consent changed) after the draft was written.
        Receiver::NotOnTeam(org) => return Err(ApiError::Conflict(not_on_team(&org))),
        Receiver::NotCovered(org) => return Err(ApiError::Conflict(not_covered(&org))),
    }
    let now = policy.clock.now();
    let (member, _) = author(&stamp.principal);
    transition(
        db,
        stamp,
        bus,
        &sheet,
        now,
        Transition {
            from: AdmissionSheetStatus::Draft,
            to: admission_sheet::ActiveModel {
                status: Set(AdmissionSheetStatus::Sent.as_str().into()),
                sent_at: Set(Some(now)),
                sent_by_member: Set(member),
                ..Default::default()
            },
            raced: moved_on(),
            notify: sheet.hospital_organization_id,
            kind: NotificationKind::AdmissionSheetSent,
            // No content here (see services/notifications.rs).
            message: "An admission information sheet (入院時情報提供書) about a patient admitted to your hospital has arrived; read it in the patient's admission sheets and acknowledge it",
            event: PatientEventKind::AdmissionSheetSent,
            by: sheet.author_organization_id,
        },
    )
    .await
}

/// The hospital acknowledges a sheet sent to it; the author's organisation
/// is notified.
pub async fn acknowledge(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    sheet: admission_sheet::Model,
) -> ApiResult<admission_sheet::Model> {
    if sheet.hospital_organization_id != stamp.principal.organization_id() {
        return Err(ApiError::Forbidden(
            "only the hospital the admission sheet was sent to may acknowledge it".into(),
        )
        .about(sheet.patient_id, &[CATEGORY]));
    }
    access.require_write(CATEGORY)?;
    match AdmissionSheetStatus::from_db(&sheet.status)? {
        AdmissionSheetStatus::Sent => {}
        AdmissionSheetStatus::Received => {
            return Err(ApiError::Conflict(format!(
                "the admission sheet was already acknowledged ({})",
                sheet
                    .received_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            )));
        }
        AdmissionSheetStatus::Draft => {
            return Err(ApiError::Conflict(
                "the admission sheet has not been sent yet".into(),
            ));
        }
    }
    let now = policy.clock.now();
    let (member, _) = author(&stamp.principal);
    transition(
        db,
        stamp,
        bus,
        &sheet,
        now,
        Transition {
            from: AdmissionSheetStatus::Sent,
            to: admission_sheet::ActiveModel {
                status: Set(AdmissionSheetStatus::Received.as_str().into()),
                received_at: Set(Some(now)),
                received_by_member: Set(member),
                ..Default::default()
            },
            raced: ApiError::Conflict(
                "the admission sheet was acknowledged at the same moment".into(),
            ),
            notify: sheet.author_organization_id,
            kind: NotificationKind::AdmissionSheetReceived,
            message: "The hospital acknowledged the admission information sheet (入院時情報提供書) you sent",
            event: PatientEventKind::AdmissionSheetReceived,
            by: sheet.hospital_organization_id,
        },
    )
    .await
}

/// A step of a sheet's life (sent, received) that one organisation takes and
/// the other is told of.
struct Transition {
    /// The status the sheet must still have: the update is guarded by it, so
    /// that of two concurrent steps one wins and the other gets `raced`.
    from: AdmissionSheetStatus,
    /// The new status and who took the step, when (`updated_at` is added).
    to: admission_sheet::ActiveModel,
    raced: ApiError,
    /// The organisation notified, of this kind, with this message.
    notify: Uuid,
    kind: NotificationKind,
    message: &'static str,
    /// The patient event published, caused by the organisation `by`.
    event: PatientEventKind,
    by: Uuid,
}

/// Takes the step in one transaction with its notification and its audit
/// entry (a write of ADMISSION_DISCHARGE), and publishes the events after
/// the commit. Returns the sheet as it now is.
async fn transition(
    db: &DatabaseConnection,
    stamp: &AuditStamp,
    bus: &EventBus,
    sheet: &admission_sheet::Model,
    now: DateTime<Utc>,
    step: Transition,
) -> ApiResult<admission_sheet::Model> {
    let entry = stamp.write(sheet.patient_id, &[CATEGORY]);
    let mut to = step.to;
    to.updated_at = Set(now);
    let txn = crate::services::begin_write(db).await?;
    let result = admission_sheet::Entity::update_many()
        .set(to)
        .filter(admission_sheet::Column::Id.eq(sheet.id))
        .filter(admission_sheet::Column::Status.eq(step.from.as_str()))
        // As it was read and checked (its hospital covered and on the team,
        // whom the notification goes to): an edit committed since — another
        // hospital named — is not sent unseen.
        .filter(unchanged_since_read(sheet))
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(step.raced);
    }
    let events = notifications::create(
        &txn,
        now,
        vec![NewNotification {
            organization_id: step.notify,
            member_id: None,
            patient_id: Some(sheet.patient_id),
            kind: step.kind,
            subject_id: Some(sheet.id),
            message: step.message.into(),
        }],
    )
    .await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let changed = reload(&txn, sheet.id).await?;
    txn.commit().await?;
    super::publish(
        bus,
        events,
        step.event,
        changed.patient_id,
        changed.id,
        step.by,
        now,
    );
    Ok(changed)
}

/// Sheets by id, for the loader every reference to a sheet by its id goes
/// through; the caller then obtains access to each one's patient.
pub async fn by_ids(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<std::collections::HashMap<Uuid, admission_sheet::Model>> {
    Ok(admission_sheet::Entity::find()
        .filter(crate::services::id_in(
            db.get_database_backend(),
            (admission_sheet::Entity, admission_sheet::Column::Id),
            ids,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

/// Whether an organisation may know of a sheet it may read the category of:
/// a draft is its author's alone.
pub fn visible_to(sheet: &admission_sheet::Model, organization_id: Uuid) -> bool {
    sheet.status != AdmissionSheetStatus::Draft.as_str()
        || sheet.author_organization_id == organization_id
}

/// A patient's sheets that `organization_id` may see, newest first.
pub async fn of_patient(
    db: &DatabaseConnection,
    patient_id: Uuid,
    organization_id: Uuid,
) -> ApiResult<Vec<admission_sheet::Model>> {
    Ok(admission_sheet::Entity::find()
        .filter(admission_sheet::Column::PatientId.eq(patient_id))
        .filter(
            Condition::any()
                .add(admission_sheet::Column::Status.ne(AdmissionSheetStatus::Draft.as_str()))
                .add(admission_sheet::Column::AuthorOrganizationId.eq(organization_id)),
        )
        .order_by_desc(admission_sheet::Column::Id)
        .all(db)
        .await?)
}

/// The sheets sent to the caller's organisation, a hospital (never drafts),
/// about patients it is on the care team of today and whose
/// ADMISSION_DISCHARGE the caller may read (`scope`, decided in the query:
/// a page and its `hasNextPage` count only those), newest first: a page of
/// `first` after `after` (an id), and whether more follow.
pub async fn sent_to(
    db: &DatabaseConnection,
    scope: &RowScope,
    statuses: &[AdmissionSheetStatus],
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<admission_sheet::Model>, bool)> {
    let statuses: Vec<&str> = if statuses.is_empty() {
        vec![
            AdmissionSheetStatus::Sent.as_str(),
            AdmissionSheetStatus::Received.as_str(),
        ]
    } else {
        statuses
            .iter()
            .filter(|s| **s != AdmissionSheetStatus::Draft)
            .map(|s| s.as_str())
            .collect()
    };
    let hospital_id = scope.organization_id();
    let mut q = admission_sheet::Entity::find()
        .filter(admission_sheet::Column::HospitalOrganizationId.eq(hospital_id))
        .filter(
            admission_sheet::Column::PatientId
                .in_subquery(super::team_patients(hospital_id, scope.today())),
        )
        .filter(scope.on((admission_sheet::Entity, admission_sheet::Column::PatientId)))
        .filter(admission_sheet::Column::Status.is_in(statuses))
        .order_by_desc(admission_sheet::Column::Id);
    if let Some(a) = after {
        q = q.filter(admission_sheet::Column::Id.lt(a));
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
}
