//! 退院連絡: the hospital's discharge notice to the care team.
//!
//! Care managers ask for at least five days' notice: a bed, a wheelchair, the
//! helper's visits and the visiting nurse all have to be arranged before the
//! patient comes home. The notice carries the planned discharge date, what
//! the patient will need at home, and Kitami's criteria for a discharge that
//! needs coordination (北見市入退院連絡の手引き: one criterion is enough to
//! call the care manager).
//!
//! The lead time is the number of calendar days (in Japan) from the day the
//! notice was first sent to the day of discharge — the actual day once
//! recorded, the planned day until then. A correction (a new planned date,
//! other needs) becomes a new version; the earlier one is kept and the time
//! of the first notice never changes, so a date moved forward shortens the
//! lead time the team really had, and a late correction cannot make a late
//! notice look early.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::sheets::AdmissionSheetStatus;
use super::{CATEGORY, author, names_from_json, names_json, region_date, require_inpatient_caller};
use crate::audit::AuditStamp;
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, HubEvent, PatientEventKind};
use crate::policy::{PatientAccess, Policy, RowScope};
use crate::services::notifications::{self, NewNotification, NotificationKind};
use entities::{admission_sheet, discharge_notice, discharge_notice_version};

crate::domain::domain_enum! {
    /// Where a discharge notice is.
    pub enum DischargeNoticeStatus {
        /// Sent; the discharge is planned.
        Notified = "NOTIFIED",
        /// The patient was discharged (the actual date is recorded).
        Discharged = "DISCHARGED",
        /// The discharge will not happen as notified (the patient's condition
        /// changed, a transfer …); a new notice follows when it is planned again.
        Cancelled = "CANCELLED",
    }
}

crate::domain::domain_enum! {
    /// 退院調整が必要な患者の基準 (北見市入退院連絡の手引き): any one of them
    /// means the discharge needs coordination with the care manager.
    pub enum DischargeCriterion {
        /// 入院前に比べADLが低下し、退院後に生活様式の再編が必要 (help needed
        /// with excretion, eating, standing up or walking).
        AdlDeclined = "ADL_DECLINED",
        /// 退院後の医療処置: 経管栄養 (tube feeding).
        TubeFeeding = "TUBE_FEEDING",
        /// 退院後の医療処置: 吸引 (suction).
        Suction = "SUCTION",
        /// 退院後の医療処置: インスリン.
        Insulin = "INSULIN",
        /// 退院後の医療処置: 褥瘡 (pressure sores).
        PressureUlcer = "PRESSURE_ULCER",
        /// 退院後の医療処置: 在宅酸素 (home oxygen).
        HomeOxygen = "HOME_OXYGEN",
        /// 在宅療養で介護力 (家族等) に不安.
        FamilyCareCapacityConcern = "FAMILY_CARE_CAPACITY_CONCERN",
        /// 認知症の行動・心理症状や全般的な理解の低下.
        DementiaSymptoms = "DEMENTIA_SYMPTOMS",
        /// 悪性腫瘍 (末期).
        TerminalCancer = "TERMINAL_CANCER",
        /// 誤嚥性肺炎等の急性呼吸器感染症.
        AspirationPneumonia = "ASPIRATION_PNEUMONIA",
        /// 繰り返し入退院など、在宅での (自己) 管理が困難と想定.
        RepeatedAdmissions = "REPEATED_ADMISSIONS",
        /// 住環境整備 (住宅改修、福祉用具) が必要.
        HomeAdaptation = "HOME_ADAPTATION",
    }
}

crate::domain::domain_enum! {
    /// Kitami's buckets of discharge-notice lead time (退院連絡の時期).
    pub enum LeadTimeBucket {
        /// 8日以上前.
        EightDaysOrMore = "EIGHT_DAYS_OR_MORE",
        /// 5~7日前.
        FiveToSevenDays = "FIVE_TO_SEVEN_DAYS",
        /// 2~4日前.
        TwoToFourDays = "TWO_TO_FOUR_DAYS",
        /// 退院前日 (1 day).
        DayBefore = "DAY_BEFORE",
        /// 退院当日 (0 days).
        SameDay = "SAME_DAY",
        /// 退院後: the notice came after the patient had left.
        AfterDischarge = "AFTER_DISCHARGE",
    }
}

impl LeadTimeBucket {
    /// The bucket of a lead time in days (discharge day minus notice day).
    pub fn of(days: i64) -> Self {
        match days {
            8.. => LeadTimeBucket::EightDaysOrMore,
            5..=7 => LeadTimeBucket::FiveToSevenDays,
            2..=4 => LeadTimeBucket::TwoToFourDays,
            1 => LeadTimeBucket::DayBefore,
            0 => LeadTimeBucket::SameDay,
            _ => LeadTimeBucket::AfterDischarge,
        }
    }

    /// The fewest and most days of the bucket (`None`: unbounded).
    pub fn days(self) -> (Option<i64>, Option<i64>) {
        match self {
            LeadTimeBucket::EightDaysOrMore => (Some(8), None),
            LeadTimeBucket::FiveToSevenDays => (Some(5), Some(7)),
            LeadTimeBucket::TwoToFourDays => (Some(2), Some(4)),
            LeadTimeBucket::DayBefore => (Some(1), Some(1)),
            LeadTimeBucket::SameDay => (Some(0), Some(0)),
            LeadTimeBucket::AfterDischarge => (None, Some(-1)),
        }
    }

    /// The bucket's name on Kitami's survey.
    pub fn label(self) -> &'static str {
        match self {
            LeadTimeBucket::EightDaysOrMore => "8日以上前",
            LeadTimeBucket::FiveToSevenDays => "5~7日前",
            LeadTimeBucket::TwoToFourDays => "2~4日前",
            LeadTimeBucket::DayBefore => "退院前日",
            LeadTimeBucket::SameDay => "退院当日",
            LeadTimeBucket::AfterDischarge => "退院後",
        }
    }
}

/// The day the patient leaves: the actual day once recorded, else the planned one.
pub fn discharge_on(n: &discharge_notice::Model) -> NaiveDate {
    n.actual_discharge_on.unwrap_or(n.planned_discharge_on)
}

/// Days from the first notice to the discharge (negative: notified afterwards).
pub fn lead_time_days(n: &discharge_notice::Model) -> i64 {
    (discharge_on(n) - n.notified_on).num_days()
}

pub fn criteria_of(n: &discharge_notice::Model) -> ApiResult<Vec<DischargeCriterion>> {
    criteria_from_json(&n.criteria)
}

pub fn criteria_from_json(json: &str) -> ApiResult<Vec<DischargeCriterion>> {
    names_from_json(json)?
        .iter()
        .map(|n| DischargeCriterion::from_db(n))
        .collect()
}

fn criteria_json(mut criteria: Vec<DischargeCriterion>) -> String {
    criteria.sort();
    criteria.dedup();
    names_json(criteria.iter().map(|c| c.as_str()))
}

/// How long ago an admission may have begun: a stay of more than five years
/// (long-term care wards included) is a typing error, not a stay.
pub const ADMISSION_MAX_AGE_DAYS: u64 = 5 * 366;
/// How far ahead a discharge may be planned: a notice is about a discharge
/// being prepared, not one half a year away.
pub const PLANNED_MAX_AHEAD_DAYS: u64 = 180;
/// How long after a discharge its notice (or its recording) may come: late
/// notices are counted (退院後), but one three months late is a typing error.
pub const DISCHARGE_MAX_BEHIND_DAYS: u64 = 90;

/// The day of admission: not in the future, not more than
/// [`ADMISSION_MAX_AGE_DAYS`] ago.
pub fn check_admitted_on(field: &str, day: NaiveDate, today: NaiveDate) -> ApiResult<NaiveDate> {
    if day > today {
        return Err(ApiError::bad_input(
            field,
            format!("{day} is in the future"),
        ));
    }
    if day < today - Days::new(ADMISSION_MAX_AGE_DAYS) {
        return Err(ApiError::bad_input(
            field,
            format!("{day} is more than five years ago"),
        ));
    }
    Ok(day)
}

/// What any discharge day (planned or actual) must be: not before the
/// admission, not more than [`DISCHARGE_MAX_BEHIND_DAYS`] ago.
fn check_discharge_day(
    field: &str,
    day: NaiveDate,
    admitted_on: NaiveDate,
    today: NaiveDate,
) -> ApiResult<()> {
    if day < admitted_on {
        return Err(ApiError::bad_input(
            field,
            format!("{day} is before the admission ({admitted_on})"),
        ));
    }
    if day < today - Days::new(DISCHARGE_MAX_BEHIND_DAYS) {
        return Err(ApiError::bad_input(
            field,
            format!("{day} is more than {DISCHARGE_MAX_BEHIND_DAYS} days ago"),
        ));
    }
    Ok(())
}

/// A planned discharge day: a discharge day at most
/// [`PLANNED_MAX_AHEAD_DAYS`] ahead.
fn check_planned(
    field: &str,
    day: NaiveDate,
    admitted_on: NaiveDate,
    today: NaiveDate,
) -> ApiResult<()> {
    if day > today + Days::new(PLANNED_MAX_AHEAD_DAYS) {
        return Err(ApiError::bad_input(
            field,
            format!("{day} is more than {PLANNED_MAX_AHEAD_DAYS} days ahead"),
        ));
    }
    check_discharge_day(field, day, admitted_on, today)
}

/// A validated new notice (text checked at the edge; dates here, against
/// the admission and today).
#[derive(Debug)]
pub struct NewNotice {
    pub admission_sheet_id: Option<Uuid>,
    pub admitted_on: Option<NaiveDate>,
    pub planned_discharge_on: NaiveDate,
    pub needs_at_home: String,
    pub criteria: Vec<DischargeCriterion>,
}

/// Sends a discharge notice to the care team: the caller's organisation must
/// admit patients (hospital, clinic with beds) and be on the team with write
/// access to ADMISSION_DISCHARGE. Every other organisation of the team is
/// notified. One open (NOTIFIED) notice per patient and hospital: a change
/// of plan is a correction of it, not a second notice.
pub async fn create(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    new: NewNotice,
) -> ApiResult<discharge_notice::Model> {
    access.require_write(CATEGORY)?;
    let hospital = require_inpatient_caller(db, stamp, "sending a discharge notice").await?;
    let patient_id = access.patient_id();
    // One reading of the clock: `notified_on` is the day of `notified_at`.
    let now = policy.clock.now();
    let today = region_date(now);
    let admitted_on = match new.admission_sheet_id {
        Some(sheet_id) => {
            let sheet = admission_sheet::Entity::find_by_id(sheet_id)
                .one(db)
                .await?;
            let Some(sheet) = sheet.filter(|s| {
                s.patient_id == patient_id
                    && s.hospital_organization_id == hospital.id
                    && s.status != AdmissionSheetStatus::Draft.as_str()
            }) else {
                return Err(ApiError::bad_input(
                    "input.admissionSheetId",
                    "is not an admission sheet sent to your organisation about this patient",
                ));
            };
            match new.admitted_on {
                Some(d) if d != sheet.admitted_on => {
                    return Err(ApiError::bad_input(
                        "input.admittedOn",
                        format!(
                            "{d} differs from the admission sheet's day of admission ({}); leave it out to use the sheet's",
                            sheet.admitted_on
                        ),
                    ));
                }
                _ => sheet.admitted_on,
            }
        }
        None => new.admitted_on.ok_or_else(|| {
            ApiError::bad_input(
                "input.admittedOn",
                "is required when the notice is not linked to an admission sheet",
            )
        })?,
    };
    check_admitted_on("input.admittedOn", admitted_on, today)?;
    check_planned(
        "input.plannedDischargeOn",
        new.planned_discharge_on,
        admitted_on,
        today,
    )?;
    let (member, api_key) = author(&stamp.principal);
    let entry = stamp.write(patient_id, &[CATEGORY]);
    let txn = crate::services::begin_write(db).await?;
    // Orders this against a concurrent notice for the same patient.
    crate::services::lock_patient(&txn, patient_id).await?;
    if let Some(open) = discharge_notice::Entity::find()
        .filter(discharge_notice::Column::PatientId.eq(patient_id))
        .filter(discharge_notice::Column::HospitalOrganizationId.eq(hospital.id))
        .filter(discharge_notice::Column::Status.eq(DischargeNoticeStatus::Notified.as_str()))
        .one(&txn)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "your organisation's discharge notice {} for this patient (planned discharge {}) is still open: correct it (updateDischargeNotice), record the discharge or cancel it",
            open.id, open.planned_discharge_on
        )));
    }
    let notice = discharge_notice::Entity::insert(discharge_notice::ActiveModel {
        id: Set(crate::services::new_id()),
        patient_id: Set(patient_id),
        hospital_organization_id: Set(hospital.id),
        author_member_id: Set(member),
        author_api_key_id: Set(api_key),
        admission_sheet_id: Set(new.admission_sheet_id),
        status: Set(DischargeNoticeStatus::Notified.as_str().into()),
        admitted_on: Set(admitted_on),
        planned_discharge_on: Set(new.planned_discharge_on),
        actual_discharge_on: Set(None),
        needs_at_home: Set(new.needs_at_home),
        criteria: Set(criteria_json(new.criteria)),
        notified_at: Set(now),
        notified_on: Set(today),
        version: Set(1),
        updated_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await?;
    let events = notify_team(
        &txn,
        &notice,
        today,
        now,
        "A hospital sent a discharge notice (退院連絡) about a patient of your care team; see the patient's discharge notices",
    )
    .await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    publish(bus, events, &notice, now);
    Ok(notice)
}

/// Tells every organisation of the team but the hospital.
async fn notify_team(
    txn: &impl sea_orm::ConnectionTrait,
    notice: &discharge_notice::Model,
    today: NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
    message: &str,
) -> ApiResult<Vec<HubEvent>> {
    let team = super::team_organizations(txn, notice.patient_id, today).await?;
    let drafts = team
        .into_iter()
        .filter(|org| *org != notice.hospital_organization_id)
        .map(|org| NewNotification {
            organization_id: org,
            member_id: None,
            patient_id: Some(notice.patient_id),
            kind: NotificationKind::DischargeNotice,
            subject_id: Some(notice.id),
            message: message.to_string(),
        })
        .collect();
    notifications::create(txn, now, drafts).await
}

fn publish(
    bus: &EventBus,
    events: Vec<HubEvent>,
    notice: &discharge_notice::Model,
    now: chrono::DateTime<chrono::Utc>,
) {
    super::publish(
        bus,
        events,
        PatientEventKind::DischargeNotice,
        notice.patient_id,
        notice.id,
        notice.hospital_organization_id,
        now,
    );
}

/// What a correction changes; `None`: unchanged.
#[derive(Debug, Default)]
pub struct NoticeCorrection {
    pub planned_discharge_on: Option<NaiveDate>,
    pub needs_at_home: Option<String>,
    pub criteria: Option<Vec<DischargeCriterion>>,
}

/// What happens to an open notice.
#[derive(Debug)]
pub enum NoticeChange {
    Correct(NoticeCorrection),
    /// The patient left on this day.
    Discharged(NaiveDate),
    Cancel,
}

/// Corrects an open notice, records the discharge, or cancels it: only the
/// hospital that sent it, only while it is open (NOTIFIED). The version
/// before the change is kept; the team is notified.
pub async fn change(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    notice: discharge_notice::Model,
    change: NoticeChange,
) -> ApiResult<discharge_notice::Model> {
    if notice.hospital_organization_id != stamp.principal.organization_id() {
        return Err(ApiError::Forbidden(
            "only the hospital that sent the discharge notice may change it".into(),
        )
        .about(notice.patient_id, &[CATEGORY]));
    }
    access.require_write(CATEGORY)?;
    let status = DischargeNoticeStatus::from_db(&notice.status)?;
    if status != DischargeNoticeStatus::Notified {
        return Err(ApiError::Conflict(format!(
            "the discharge notice is {status}; only an open (NOTIFIED) notice can be changed"
        )));
    }
    // One reading of the clock, as in `create`.
    let now = policy.clock.now();
    let today = region_date(now);
    let (member, api_key) = author(&stamp.principal);
    let mut next = discharge_notice::ActiveModel {
        author_member_id: Set(member),
        author_api_key_id: Set(api_key),
        version: Set(notice.version + 1),
        updated_at: Set(now),
        ..Default::default()
    };
    let message = match change {
        NoticeChange::Correct(c) => {
            if c.planned_discharge_on.is_none() && c.needs_at_home.is_none() && c.criteria.is_none()
            {
                return Err(ApiError::bad_input(
                    "input",
                    "give at least one of plannedDischargeOn, needsAtHome, criteria",
                ));
            }
            if let Some(day) = c.planned_discharge_on {
                check_planned("input.plannedDischargeOn", day, notice.admitted_on, today)?;
                next.planned_discharge_on = Set(day);
            }
            if let Some(needs) = c.needs_at_home {
                next.needs_at_home = Set(needs);
            }
            if let Some(criteria) = c.criteria {
                next.criteria = Set(criteria_json(criteria));
            }
            "A discharge notice (退院連絡) about a patient of your care team was corrected; see the patient's discharge notices"
        }
        NoticeChange::Discharged(day) => {
            if day > today {
                return Err(ApiError::bad_input(
                    "input.dischargedOn",
                    format!("{day} is in the future: record the discharge once it has happened"),
                ));
            }
            check_discharge_day("input.dischargedOn", day, notice.admitted_on, today)?;
            next.actual_discharge_on = Set(Some(day));
            next.status = Set(DischargeNoticeStatus::Discharged.as_str().into());
            "A patient of your care team was discharged from hospital; see the patient's discharge notices"
        }
        NoticeChange::Cancel => {
            next.status = Set(DischargeNoticeStatus::Cancelled.as_str().into());
            "A discharge notice (退院連絡) about a patient of your care team was withdrawn: the discharge will not happen as notified"
        }
    };
    let entry = stamp.write(notice.patient_id, &[CATEGORY]);
    let txn = crate::services::begin_write(db).await?;
    discharge_notice_version::Entity::insert(discharge_notice_version::ActiveModel {
        notice_id: Set(notice.id),
        version: Set(notice.version),
        status: Set(notice.status.clone()),
        planned_discharge_on: Set(notice.planned_discharge_on),
        actual_discharge_on: Set(notice.actual_discharge_on),
        needs_at_home: Set(notice.needs_at_home.clone()),
        criteria: Set(notice.criteria.clone()),
        changed_at: Set(notice.updated_at),
        changed_by_member: Set(notice.author_member_id),
        changed_by_api_key: Set(notice.author_api_key_id),
    })
    .exec(&txn)
    .await
    .map_err(|e| crate::services::conflict_on_unique(e, concurrent))?;
    let result = discharge_notice::Entity::update_many()
        .set(next)
        .filter(discharge_notice::Column::Id.eq(notice.id))
        .filter(discharge_notice::Column::Version.eq(notice.version))
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::Conflict(concurrent()));
    }
    let changed = discharge_notice::Entity::find_by_id(notice.id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("a discharge notice vanished"))?;
    let events = notify_team(&txn, &changed, today, now, message).await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    publish(bus, events, &changed, now);
    Ok(changed)
}

fn concurrent() -> String {
    "the discharge notice was changed at the same moment; reload it".into()
}

/// Notices by id, for the loader every reference to a notice by its id goes
/// through; the caller then obtains access to each one's patient.
pub async fn by_ids(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, discharge_notice::Model>> {
    Ok(discharge_notice::Entity::find()
        .filter(crate::services::id_in(
            db.get_database_backend(),
            (discharge_notice::Entity, discharge_notice::Column::Id),
            ids,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|n| (n.id, n))
        .collect())
}

/// A patient's notices, newest first.
pub async fn of_patient(
    db: &DatabaseConnection,
    patient_id: Uuid,
) -> ApiResult<Vec<discharge_notice::Model>> {
    Ok(discharge_notice::Entity::find()
        .filter(discharge_notice::Column::PatientId.eq(patient_id))
        .order_by_desc(discharge_notice::Column::Id)
        .all(db)
        .await?)
}

/// The earlier versions of many notices, each notice's newest first, in one
/// query (a page of notices shows every notice's history). Notices without
/// an earlier version are absent.
pub async fn versions_of(
    db: &DatabaseConnection,
    notice_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<discharge_notice_version::Model>>> {
    let mut map: HashMap<Uuid, Vec<_>> = HashMap::new();
    if notice_ids.is_empty() {
        return Ok(map);
    }
    for row in discharge_notice_version::Entity::find()
        .filter(crate::services::id_in(
            db.get_database_backend(),
            (
                discharge_notice_version::Entity,
                discharge_notice_version::Column::NoticeId,
            ),
            notice_ids,
        ))
        .order_by_desc(discharge_notice_version::Column::Version)
        .all(db)
        .await?
    {
        map.entry(row.notice_id).or_default().push(row);
    }
    Ok(map)
}

/// The notices about the patients on whose care team the caller's
/// organisation is today and whose ADMISSION_DISCHARGE the caller may read
/// (`scope`, decided in the query: a page and its `hasNextPage` count only
/// those), newest first: a page of `first` after `after`, and whether more
/// follow. One query.
pub async fn for_team_of(
    db: &DatabaseConnection,
    scope: &RowScope,
    statuses: &[DischargeNoticeStatus],
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<discharge_notice::Model>, bool)> {
    let mut q = discharge_notice::Entity::find()
        .filter(
            discharge_notice::Column::PatientId
                .in_subquery(super::team_patients(scope.organization_id(), scope.today())),
        )
        .filter(scope.on((
            discharge_notice::Entity,
            discharge_notice::Column::PatientId,
        )))
        .order_by_desc(discharge_notice::Column::Id);
    if !statuses.is_empty() {
        q = q.filter(discharge_notice::Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
    }
    if let Some(a) = after {
        q = q.filter(discharge_notice::Column::Id.lt(a));
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_times_fall_into_kitamis_buckets_at_their_boundaries() {
        use LeadTimeBucket as B;
        let cases = [
            (30, B::EightDaysOrMore),
            (8, B::EightDaysOrMore),
            (7, B::FiveToSevenDays),
            (5, B::FiveToSevenDays),
            (4, B::TwoToFourDays),
            (2, B::TwoToFourDays),
            (1, B::DayBefore),
            (0, B::SameDay),
            (-1, B::AfterDischarge),
            (-40, B::AfterDischarge),
        ];
        for (days, bucket) in cases {
            assert_eq!(B::of(days), bucket, "{days} days");
            let (low, high) = bucket.days();
            assert!(low.is_none_or(|l| days >= l) && high.is_none_or(|h| days <= h));
        }
    }
}
