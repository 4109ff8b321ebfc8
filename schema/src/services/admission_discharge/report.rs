//! The discharge lead-time report (退院連絡の時期): how many days before the
//! discharge the care team was told, in Kitami's buckets, for one hospital
//! or the whole region, over a period.
//!
//! It counts the discharges whose day (the actual day once recorded, else
//! the planned day) falls in the period, from the notices that were not
//! cancelled. Alongside it, the rate Kitami reports as 退院連絡率, defined on
//! what the hub knows: of the admissions the team reported to the hospital by
//! an admission information sheet (admitted in the period), the share for
//! which the hospital has sent a discharge notice (linked to the sheet, or
//! about the same patient and the same day of admission). Admissions still
//! in progress count as "no notice yet", so a recent period's rate rises as
//! its patients go home; discharges the hub never heard of cannot be counted
//! and are not.
//!
//! The report names no patient. Reading it is still audited (a READ entry
//! of ADMISSION_DISCHARGE without a patient, naming the scope and period).

use std::collections::HashSet;

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::CATEGORY;
use super::notices::{DischargeNoticeStatus, LeadTimeBucket};
use super::sheets::AdmissionSheetStatus;
use crate::domain::OrganizationKind;
use crate::error::ApiResult;
use crate::policy::Policy;
use crate::principal::Principal;
use entities::{admission_sheet, discharge_notice, organization};

/// The longest period one report covers (three years): enough for a yearly
/// comparison, bounded so one request cannot scan the region's whole history.
pub const MAX_PERIOD_DAYS: i64 = 3 * 366;

/// Proof that the caller may run the report for its scope (see
/// [`Policy::require_statistics`]).
pub type ReportAccess = crate::policy::StatisticsAccess;

/// Who may run the report is the policy's rule on regional statistics
/// ([`Policy::require_statistics`], about ADMISSION_DISCHARGE); this reads
/// the caller's organisation kind for it.
pub async fn require_report_access(
    db: &DatabaseConnection,
    policy: &Policy,
    principal: &Principal,
    hospital: Option<Uuid>,
) -> ApiResult<ReportAccess> {
    let kind = match organization::Entity::find_by_id(principal.organization_id())
        .one(db)
        .await?
    {
        Some(o) => Some(OrganizationKind::from_db(&o.kind)?),
        None => None,
    };
    policy.require_statistics(principal, kind, CATEGORY, hospital)
}

/// The report's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct LeadTimeReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub hospital: Option<Uuid>,
    /// Discharges in the period with a (not cancelled) notice.
    pub total: u64,
    /// Every bucket, in Kitami's order, with its count.
    pub buckets: Vec<(LeadTimeBucket, u64)>,
    /// Of `total`, how many were measured on the recorded actual day.
    pub measured_on_actual_day: u64,
    /// Admissions in the period reported to the hospital by an admission sheet.
    pub admissions_reported: u64,
    /// Of those, how many have a discharge notice from the hospital.
    pub admissions_with_notice: u64,
}

impl LeadTimeReport {
    pub fn count(&self, bucket: LeadTimeBucket) -> u64 {
        self.buckets
            .iter()
            .find(|(b, _)| *b == bucket)
            .map_or(0, |(_, n)| *n)
    }
}

/// Counts the lead times of the discharges from `from` to `to` (inclusive).
/// Three queries, reading dates only.
pub async fn lead_times(
    db: &DatabaseConnection,
    access: &ReportAccess,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<LeadTimeReport> {
    let in_period = |c: discharge_notice::Column| Condition::all().add(c.gte(from)).add(c.lte(to));
    let mut q = discharge_notice::Entity::find()
        .select_only()
        .column(discharge_notice::Column::NotifiedOn)
        .column(discharge_notice::Column::PlannedDischargeOn)
        .column(discharge_notice::Column::ActualDischargeOn)
        .filter(discharge_notice::Column::Status.ne(DischargeNoticeStatus::Cancelled.as_str()))
        .filter(
            Condition::any()
                .add(in_period(discharge_notice::Column::ActualDischargeOn))
                .add(
                    Condition::all()
                        .add(discharge_notice::Column::ActualDischargeOn.is_null())
                        .add(in_period(discharge_notice::Column::PlannedDischargeOn)),
                ),
        );
    if let Some(h) = access.hospital() {
        q = q.filter(discharge_notice::Column::HospitalOrganizationId.eq(h));
    }
    let rows: Vec<(NaiveDate, NaiveDate, Option<NaiveDate>)> = q.into_tuple().all(db).await?;
    let mut buckets: Vec<(LeadTimeBucket, u64)> =
        LeadTimeBucket::ALL.iter().map(|b| (*b, 0)).collect();
    let mut measured_on_actual_day = 0;
    for (notified_on, planned, actual) in &rows {
        let day = actual.unwrap_or(*planned);
        if actual.is_some() {
            measured_on_actual_day += 1;
        }
        let bucket = LeadTimeBucket::of((day - *notified_on).num_days());
        if let Some(slot) = buckets.iter_mut().find(|(b, _)| *b == bucket) {
            slot.1 += 1;
        }
    }

    let mut sheets = admission_sheet::Entity::find()
        .select_only()
        .column(admission_sheet::Column::Id)
        .column(admission_sheet::Column::PatientId)
        .column(admission_sheet::Column::HospitalOrganizationId)
        .column(admission_sheet::Column::AdmittedOn)
        .filter(admission_sheet::Column::Status.ne(AdmissionSheetStatus::Draft.as_str()))
        .filter(admission_sheet::Column::AdmittedOn.gte(from))
        .filter(admission_sheet::Column::AdmittedOn.lte(to));
    if let Some(h) = access.hospital() {
        sheets = sheets.filter(admission_sheet::Column::HospitalOrganizationId.eq(h));
    }
    let sheets: Vec<(Uuid, Uuid, Uuid, NaiveDate)> = sheets.into_tuple().all(db).await?;
    // A notice linked to a sheet has the sheet's day of admission, so the
    // notices of admissions in the period are found by that day too.
    let mut notices = discharge_notice::Entity::find()
        .select_only()
        .column(discharge_notice::Column::AdmissionSheetId)
        .column(discharge_notice::Column::PatientId)
        .column(discharge_notice::Column::HospitalOrganizationId)
        .column(discharge_notice::Column::AdmittedOn)
        .filter(discharge_notice::Column::Status.ne(DischargeNoticeStatus::Cancelled.as_str()))
        .filter(discharge_notice::Column::AdmittedOn.gte(from))
        .filter(discharge_notice::Column::AdmittedOn.lte(to));
    if let Some(h) = access.hospital() {
        notices = notices.filter(discharge_notice::Column::HospitalOrganizationId.eq(h));
    }
    let notices: Vec<(Option<Uuid>, Uuid, Uuid, NaiveDate)> = notices.into_tuple().all(db).await?;
    let linked: HashSet<Uuid> = notices.iter().filter_map(|n| n.0).collect();
    let stays: HashSet<(Uuid, Uuid, NaiveDate)> = notices.iter().map(|n| (n.1, n.2, n.3)).collect();
    let admissions_with_notice = sheets
        .iter()
        .filter(|(id, patient, hospital, admitted)| {
            linked.contains(id) || stays.contains(&(*patient, *hospital, *admitted))
        })
        .count() as u64;

    Ok(LeadTimeReport {
        from,
        to,
        hospital: access.hospital(),
        total: rows.len() as u64,
        buckets,
        measured_on_actual_day,
        admissions_reported: sheets.len() as u64,
        admissions_with_notice,
    })
}
