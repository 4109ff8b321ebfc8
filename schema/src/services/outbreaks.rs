//! Outbreak notices (感染症の集団発生の連絡, issue 14 part 4): a facility
//! tells the organisations sharing its patients that an infection broke out
//! — the pathogen, the day of onset, where (「2階フロア」「通所の利用者」),
//! how many residents and staff, what it does about it (面会制限、通所の休止)
//! — and later that it has ended. The guide asks the region to settle in
//! advance whom a facility tells when an infection breaks out, and to mind
//! personal information when it does (003:1558); this is that channel.
//!
//! - **Who reports**: a member of the facility ([`Policy`]'s
//!   `require_outbreak_reporter`: not network administrators, municipal
//!   staff or ambulance crews) or its system, for its own organisation only.
//! - **Who receives**: every organisation on the care team today of a
//!   patient the reporter is on the care team of today (the organisations
//!   "sharing its patients"), but the reporter — decided when the notice is
//!   reported and kept ([`outbreak_notice_recipient`]): the facility told
//!   them, whoever joins or leaves its patients' teams later.
//! - **What they are shown**: the notice itself names no patient: its
//!   pathogen, onset, scope, counts and measures are the facility's own
//!   statement about itself, and the notification (`OUTBREAK_NOTICE`) is
//!   shown to the whole organisation. The facility may name affected
//!   patients; each is a statement about the patient's infections, so it
//!   needs the reporter to be on the patient's care team and to read its
//!   INFECTIONS, and a reader is shown it only under the same rule (the
//!   GraphQL layer, `graphql/outbreaks.rs`).
//! - **Audit**: every report, update and end is a `WRITE` entry without a
//!   patient (the detail names the notice); each patient named is a `WRITE`
//!   of INFECTIONS of that patient.
//!
//! The notice, its recipients, its patients, the notifications and the
//! audit entries are written in one transaction; the notification events
//! are published after it commits. Nothing is ever deleted: a notice ends
//! by its status.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use crate::audit::{AuditStamp, EntryDraft};
use crate::domain::DataCategory;
use crate::error::{ApiError, ApiResult};
use crate::events::EventBus;
use crate::policy::{OutbreakReporter, PatientAccess, Policy, active_on};
use crate::services::admission_discharge::{author, region_date, team_patients};
use crate::services::notifications::{self, NewNotification, NotificationKind};
use entities::{
    care_team_membership, outbreak_notice, outbreak_notice_patient, outbreak_notice_recipient,
};

crate::domain::domain_enum! {
    /// What broke out. The infections that spread through care facilities
    /// and day services (高齢者介護施設における感染対策マニュアル); the
    /// names shared with the Infection record's pathogen are spelled alike.
    /// Blood-borne infections (hepatitis, HIV, syphilis) do not break out in
    /// a facility and are not reported here.
    pub enum OutbreakPathogen {
        /// ノロウイルス (感染性胃腸炎).
        Norovirus = "NOROVIRUS",
        /// インフルエンザ.
        Influenza = "INFLUENZA",
        /// COVID-19 (SARS-CoV-2).
        Covid19 = "COVID_19",
        /// 疥癬 (scabies; crusted scabies spreads through a facility).
        Scabies = "SCABIES",
        /// 結核.
        Tuberculosis = "TUBERCULOSIS",
        Mrsa = "MRSA",
        /// 腸管出血性大腸菌 (O157 …).
        EnterohemorrhagicEColi = "ENTEROHEMORRHAGIC_E_COLI",
        /// Named in `otherPathogen`.
        Other = "OTHER",
    }
}

impl OutbreakPathogen {
    /// The name used in notifications.
    pub fn label(self) -> &'static str {
        match self {
            Self::Norovirus => "ノロウイルス",
            Self::Influenza => "インフルエンザ",
            Self::Covid19 => "COVID-19",
            Self::Scabies => "疥癬",
            Self::Tuberculosis => "結核",
            Self::Mrsa => "MRSA",
            Self::EnterohemorrhagicEColi => "腸管出血性大腸菌",
            Self::Other => "その他の感染症",
        }
    }
}

crate::domain::domain_enum! {
    pub enum OutbreakStatus {
        /// Still going on.
        Ongoing = "ONGOING",
        /// Over (終息), as of `endedOn`; no longer updated.
        Ended = "ENDED",
    }
}

/// The category a named affected patient is data of.
pub const CATEGORY: DataCategory = DataCategory::Infections;

/// How far back an onset may be reported: an outbreak is told while it
/// matters to the others; an older one is history.
pub const ONSET_MAX_DAYS_BACK: i64 = 90;
/// The most cases of either kind a notice may state: more than any
/// facility holds, so that a slip of the keyboard is caught.
pub const CASES_MAX: i32 = 10_000;

/// What broke out: a pathogen of the list, or OTHER with its name (checked
/// at the edge).
#[derive(Clone, Debug)]
pub struct Pathogen {
    pub pathogen: OutbreakPathogen,
    pub other: Option<String>,
}

/// A validated report (texts, counts and the onset checked at the edge).
#[derive(Debug)]
pub struct NewOutbreak {
    pub pathogen: Pathogen,
    pub onset_on: NaiveDate,
    pub scope: String,
    pub resident_cases: Option<i32>,
    pub staff_cases: Option<i32>,
    pub measures: Option<String>,
    /// The patients named as affected, each with the reporter's access.
    pub affected: Vec<PatientAccess>,
}

/// Absent: keep; clear; set.
#[derive(Debug, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    /// The column's new value, or `None` to leave it as it is.
    fn into_set(self) -> Option<Option<T>> {
        match self {
            Change::Keep => None,
            Change::Clear => Some(None),
            Change::Set(v) => Some(Some(v)),
        }
    }
}

/// A validated update (checked at the edge, but for the end's day against
/// the onset, which only the notice knows).
#[derive(Debug, Default)]
pub struct OutbreakChange {
    pub scope: Option<String>,
    pub resident_cases: Change<i32>,
    pub staff_cases: Change<i32>,
    pub measures: Change<String>,
    /// Ends the outbreak on this day (終息).
    pub ended_on: Option<NaiveDate>,
}

/// A notice with the patients it names (all of them: the GraphQL layer
/// shows each only to readers of its INFECTIONS).
#[derive(Clone, Debug)]
pub struct Notice {
    pub model: outbreak_notice::Model,
    pub affected: Vec<Uuid>,
}

/// Whether the reporter may name the patient `access` is about as affected:
/// naming it states an infection of the patient, shown to every reader of
/// its INFECTIONS — a write of INFECTIONS, under the policy's rule for
/// writes (a care relationship, `RW` for the role, a consent that shares
/// the category). Under the default matrix that is the physician; a network
/// whose facility nurses should name residents grants them INFECTIONS
/// `READ_WRITE` (`RENKEI_POLICY_FILE`). A patient the reporter may not know
/// of was refused before (NOT_FOUND).
fn require_may_name(index: usize, access: &PatientAccess) -> ApiResult<()> {
    access.require_write(CATEGORY).map_err(|e| {
        e.reworded(|m| {
            format!(
                "input.affectedPatientIds[{index}]: naming a patient as affected is writing its {CATEGORY}: {m}"
            )
        })
    })
}

/// The organisations sharing a patient with `organization_id` on `today`:
/// on the care team of a patient whose care team it is on, but itself —
/// counting only patients whose consent in force covers both organisations
/// and shares CARE_TEAM, for the notice tells the recipient that the two
/// look after someone together.
async fn sharing_organizations(
    db: &impl ConnectionTrait,
    organization_id: Uuid,
    today: NaiveDate,
) -> ApiResult<Vec<Uuid>> {
    let memberships: Vec<(Uuid, Uuid)> = care_team_membership::Entity::find()
        .select_only()
        .column(care_team_membership::Column::PatientId)
        .column(care_team_membership::Column::OrganizationId)
        .filter(
            care_team_membership::Column::PatientId
                .in_subquery(team_patients(organization_id, today)),
        )
        .filter(active_on(today))
        .into_tuple()
        .all(db)
        .await?;
    let patients: Vec<Uuid> = memberships
        .iter()
        .map(|(p, _)| *p)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let terms = crate::services::consents::terms_in_force(db, &patients).await?;
    let shares = |patient: Uuid, org: Uuid| {
        terms.get(&patient).is_some_and(|t| {
            t.covers(org)
                && !t
                    .excluded()
                    .contains(&crate::domain::DataCategory::CareTeam)
        })
    };
    let recipients: std::collections::BTreeSet<Uuid> = memberships
        .iter()
        .filter(|(p, o)| *o != organization_id && shares(*p, organization_id) && shares(*p, *o))
        .map(|(_, o)| *o)
        .collect();
    Ok(recipients.into_iter().collect())
}

/// The audit entry of a change to a notice, which names no patient.
fn notice_entry(stamp: &AuditStamp, id: Uuid, what: &str) -> EntryDraft {
    stamp.write_without_patient(&[], format!("outbreak notice {id}: {what}"))
}

fn notification(organization_id: Uuid, notice_id: Uuid, message: String) -> NewNotification {
    NewNotification {
        organization_id,
        member_id: None,
        patient_id: None,
        kind: NotificationKind::OutbreakNotice,
        subject_id: Some(notice_id),
        message,
    }
}

/// Reports an outbreak at the caller's organisation; the organisations
/// sharing its patients are told.
pub async fn report(
    db: &DatabaseConnection,
    policy: &Policy,
    reporter: OutbreakReporter,
    stamp: &AuditStamp,
    bus: &EventBus,
    new: NewOutbreak,
) -> ApiResult<Notice> {
    let organization_id = reporter.organization_id();
    for (i, access) in new.affected.iter().enumerate() {
        require_may_name(i, access)?;
    }
    let mut affected: Vec<Uuid> = Vec::new();
    for access in &new.affected {
        if !affected.contains(&access.patient_id()) {
            affected.push(access.patient_id());
        }
    }
    // One reading of the clock: the recipients are those sharing a patient
    // on the day of the moment it is reported.
    let now = policy.clock.now();
    let today = region_date(now);
    let (member, api_key) = author(&stamp.principal);
    let id = crate::services::new_id();
    let mut entries = vec![notice_entry(stamp, id, "reported")];
    entries.extend(affected.iter().map(|p| {
        stamp.entry(
            *p,
            crate::audit::AuditAction::Write,
            &[CATEGORY],
            Some(format!("named as affected in outbreak notice {id}")),
        )
    }));
    // The list's own label, never the reporter's free text: a notification
    // goes to every member of the recipient organisations.
    let label = new.pathogen.pathogen.label().to_string();
    let txn = crate::services::begin_write(db).await?;
    let recipients = sharing_organizations(&txn, organization_id, today).await?;
    let model = outbreak_notice::Entity::insert(outbreak_notice::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id),
        reported_by_member: Set(member),
        reported_by_api_key: Set(api_key),
        pathogen: Set(new.pathogen.pathogen.as_str().into()),
        other_pathogen: Set(new.pathogen.other),
        onset_on: Set(new.onset_on),
        scope: Set(new.scope),
        resident_cases: Set(new.resident_cases),
        staff_cases: Set(new.staff_cases),
        measures: Set(new.measures),
        status: Set(OutbreakStatus::Ongoing.as_str().into()),
        ended_on: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await?;
    if !recipients.is_empty() {
        outbreak_notice_recipient::Entity::insert_many(recipients.iter().map(|o| {
            outbreak_notice_recipient::ActiveModel {
                notice_id: Set(id),
                organization_id: Set(*o),
            }
        }))
        .exec(&txn)
        .await?;
    }
    if !affected.is_empty() {
        outbreak_notice_patient::Entity::insert_many(affected.iter().map(|p| {
            outbreak_notice_patient::ActiveModel {
                notice_id: Set(id),
                patient_id: Set(*p),
            }
        }))
        .exec(&txn)
        .await?;
    }
    let drafts = recipients
        .iter()
        .map(|o| {
            notification(
                *o,
                id,
                format!(
                    "A facility sharing patients with you reported an infection outbreak ({label}); see the outbreak notice"
                ),
            )
        })
        .collect();
    let events = notifications::create(&txn, now, drafts).await?;
    let refs: Vec<&EntryDraft> = entries.iter().collect();
    crate::audit::append_in(&txn, &refs, now).await?;
    txn.commit().await?;
    bus.publish_all(events);
    Ok(Notice { model, affected })
}

/// The reporting organisation updates its notice (scope, counts, measures)
/// or ends it; the recipients are told again. An ended notice is not
/// updated (`CONFLICT`).
pub async fn update(
    db: &DatabaseConnection,
    policy: &Policy,
    reporter: OutbreakReporter,
    stamp: &AuditStamp,
    bus: &EventBus,
    notice: outbreak_notice::Model,
    change: OutbreakChange,
) -> ApiResult<Notice> {
    if notice.organization_id != reporter.organization_id() {
        return Err(ApiError::Forbidden(
            "only the facility that reported an outbreak notice updates or ends it".into(),
        ));
    }
    if notice.status == OutbreakStatus::Ended.as_str() {
        return Err(ApiError::Conflict(
            "the outbreak notice was ended; it is no longer updated".into(),
        ));
    }
    let now = policy.clock.now();
    let today = region_date(now);
    if let Some(ended) = change.ended_on {
        if ended < notice.onset_on {
            return Err(ApiError::bad_input(
                "input.endedOn",
                format!("{ended} is before the onset ({})", notice.onset_on),
            ));
        }
        if ended > today {
            return Err(ApiError::bad_input(
                "input.endedOn",
                format!("{ended} is in the future"),
            ));
        }
    }
    let ends = change.ended_on.is_some();
    let label = OutbreakPathogen::from_db(&notice.pathogen)?
        .label()
        .to_string();
    let entry = notice_entry(stamp, notice.id, if ends { "ended" } else { "updated" });
    let txn = crate::services::begin_write(db).await?;
    // Guarded on the status: an update cannot land on a notice ended in
    // the meantime.
    // Only the columns the change names: two updates of different fields
    // racing each other both stand, neither puts back what the other
    // changed.
    let mut set = outbreak_notice::ActiveModel {
        updated_at: Set(now),
        ..Default::default()
    };
    if let Some(scope) = change.scope {
        set.scope = Set(scope);
    }
    if let Some(v) = change.resident_cases.into_set() {
        set.resident_cases = Set(v);
    }
    if let Some(v) = change.staff_cases.into_set() {
        set.staff_cases = Set(v);
    }
    if let Some(v) = change.measures.into_set() {
        set.measures = Set(v);
    }
    if let Some(ended) = change.ended_on {
        set.status = Set(OutbreakStatus::Ended.as_str().into());
        set.ended_on = Set(Some(ended));
    }
    let result = outbreak_notice::Entity::update_many()
        .set(set)
        .filter(outbreak_notice::Column::Id.eq(notice.id))
        .filter(outbreak_notice::Column::Status.eq(OutbreakStatus::Ongoing.as_str()))
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::Conflict(
            "the outbreak notice was ended at the same moment".into(),
        ));
    }
    let recipients = outbreak_notice_recipient::Entity::find()
        .filter(outbreak_notice_recipient::Column::NoticeId.eq(notice.id))
        .all(&txn)
        .await?;
    let message = if ends {
        format!(
            "An infection outbreak ({label}) you were told of has ended; see the outbreak notice"
        )
    } else {
        format!(
            "An infection outbreak ({label}) you were told of was updated; see the outbreak notice"
        )
    };
    let drafts = recipients
        .iter()
        .map(|r| notification(r.organization_id, notice.id, message.clone()))
        .collect();
    let events = notifications::create(&txn, now, drafts).await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let model = outbreak_notice::Entity::find_by_id(notice.id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("an outbreak notice vanished"))?;
    let affected = affected_of(&txn, &[notice.id])
        .await?
        .remove(&notice.id)
        .unwrap_or_default();
    txn.commit().await?;
    bus.publish_all(events);
    Ok(Notice { model, affected })
}

/// A notice by id, if the organisation reported or received it; `None`
/// otherwise, as when there is none.
pub async fn find_for(
    db: &DatabaseConnection,
    organization_id: Uuid,
    id: Uuid,
) -> ApiResult<Option<Notice>> {
    let found = outbreak_notice::Entity::find_by_id(id)
        .filter(reported_or_received_by(organization_id))
        .one(db)
        .await?;
    match found {
        Some(model) => Ok(with_affected(db, vec![model]).await?.pop()),
        None => Ok(None),
    }
}

/// The notices `organization_id` reported or was sent.
fn reported_or_received_by(organization_id: Uuid) -> Condition {
    let received = outbreak_notice_recipient::Entity::find()
        .select_only()
        .column(outbreak_notice_recipient::Column::NoticeId)
        .filter(outbreak_notice_recipient::Column::OrganizationId.eq(organization_id))
        .into_query();
    Condition::any()
        .add(outbreak_notice::Column::OrganizationId.eq(organization_id))
        .add(outbreak_notice::Column::Id.in_subquery(received))
}

/// The notices the organisation reported or received, newest first,
/// optionally only of these statuses: a page of `first` after `after`, and
/// whether more follow.
pub async fn for_organization(
    db: &DatabaseConnection,
    organization_id: Uuid,
    statuses: &[OutbreakStatus],
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<Notice>, bool)> {
    let mut q = outbreak_notice::Entity::find()
        .filter(reported_or_received_by(organization_id))
        .order_by_desc(outbreak_notice::Column::Id);
    if !statuses.is_empty() {
        q = q.filter(outbreak_notice::Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
    }
    if let Some(a) = after {
        q = q.filter(outbreak_notice::Column::Id.lt(a));
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((with_affected(db, rows).await?, more))
}

/// The patients named by many notices, in one query.
async fn affected_of(
    db: &impl ConnectionTrait,
    notice_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<Uuid>>> {
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    if notice_ids.is_empty() {
        return Ok(map);
    }
    for row in outbreak_notice_patient::Entity::find()
        .filter(crate::services::id_in(
            db.get_database_backend(),
            (
                outbreak_notice_patient::Entity,
                outbreak_notice_patient::Column::NoticeId,
            ),
            notice_ids,
        ))
        .order_by_asc(outbreak_notice_patient::Column::PatientId)
        .all(db)
        .await?
    {
        map.entry(row.notice_id).or_default().push(row.patient_id);
    }
    Ok(map)
}

async fn with_affected(
    db: &DatabaseConnection,
    rows: Vec<outbreak_notice::Model>,
) -> ApiResult<Vec<Notice>> {
    let ids: Vec<Uuid> = rows.iter().map(|n| n.id).collect();
    let mut affected = affected_of(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|model| Notice {
            affected: affected.remove(&model.id).unwrap_or_default(),
            model,
        })
        .collect())
}
