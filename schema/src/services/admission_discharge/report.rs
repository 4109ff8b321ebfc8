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

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::CATEGORY;
use super::notices::{DischargeNoticeStatus, LeadTimeBucket};
use super::sheets::AdmissionSheetStatus;
use crate::domain::OrganizationKind;
use crate::error::ApiResult;
use crate::policy::{ConsentTerms, Policy};
use crate::principal::Principal;
use crate::services::indicators::{MIN_CELL, suppress};
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
    /// Whether counts below 5 are hidden (every reader but the hospital
    /// itself: the region's overseers see the counts, not the patients).
    pub hide_small_counts: bool,
}

/// The report's counts as a reader may see them: with small counts hidden,
/// `None` where a count is below 5 or could be derived from the others
/// (docs/indicators.md, "Suppression").
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedLeadTimes {
    pub total: Option<u64>,
    pub buckets: Vec<(LeadTimeBucket, Option<u64>)>,
    pub at_least_five_days: Option<u64>,
    pub measured_on_actual_day: Option<u64>,
    pub admissions_reported: Option<u64>,
    pub admissions_with_notice: Option<u64>,
}

impl LeadTimeReport {
    pub fn published(&self) -> PublishedLeadTimes {
        let at_least_five = self.count(LeadTimeBucket::EightDaysOrMore)
            + self.count(LeadTimeBucket::FiveToSevenDays);
        if !self.hide_small_counts {
            return PublishedLeadTimes {
                total: Some(self.total),
                buckets: self.buckets.iter().map(|(b, n)| (*b, Some(*n))).collect(),
                at_least_five_days: Some(at_least_five),
                measured_on_actual_day: Some(self.measured_on_actual_day),
                admissions_reported: Some(self.admissions_reported),
                admissions_with_notice: Some(self.admissions_with_notice),
            };
        }
        let (cells, total) = suppress(
            self.buckets
                .iter()
                .map(|(b, n)| (b.as_str().to_string(), *n as i64))
                .collect(),
            true,
        );
        let buckets: Vec<(LeadTimeBucket, Option<u64>)> = self
            .buckets
            .iter()
            .zip(&cells)
            .map(|((b, _), c)| (*b, c.value.map(|v| v as u64)))
            .collect();
        let shown = |b: LeadTimeBucket| buckets.iter().any(|(x, v)| *x == b && v.is_some());
        // A pair published with its whole would give away the other part:
        // each part and its complement must be 0 or at least 5.
        let pair = |part: u64, whole: u64| {
            let ok = |n: u64| n == 0 || n >= MIN_CELL as u64;
            (ok(part) && ok(whole - part)).then_some(part)
        };
        let admissions = pair(self.admissions_with_notice, self.admissions_reported);
        PublishedLeadTimes {
            total: total.map(|t| t as u64),
            at_least_five_days: (shown(LeadTimeBucket::EightDaysOrMore)
                && shown(LeadTimeBucket::FiveToSevenDays)
                && total.is_some())
            .then_some(at_least_five),
            measured_on_actual_day: total.and_then(|t| pair(self.measured_on_actual_day, t as u64)),
            admissions_reported: admissions.map(|_| self.admissions_reported),
            admissions_with_notice: admissions,
            buckets,
        }
    }

    pub fn count(&self, bucket: LeadTimeBucket) -> u64 {
        self.buckets
            .iter()
            .find(|(b, _)| *b == bucket)
            .map_or(0, |(_, n)| *n)
    }
}

/// The consents in force of the patients among `ids`. A report counts a
/// notice or sheet only when its patient's consent shares
/// ADMISSION_DISCHARGE **with its hospital** ([`ConsentTerms::shares_with`]):
/// a patient without consent, whose consent excludes the category, or
/// whose consent no longer covers the hospital (a 個別同意 that does not
/// list it, a 包括同意 that excludes it) is not counted at all — a
/// hospital's own report, published as it is, counts only what its
/// ADMISSION_DISCHARGE readers may still be shown. The municipality's
/// indicator of lead times counts by the same rule.
struct Sharing(HashMap<Uuid, ConsentTerms>);

impl Sharing {
    async fn of(db: &DatabaseConnection, ids: &[Uuid]) -> ApiResult<Sharing> {
        Ok(Sharing(
            crate::services::consents::terms_in_force(db, ids).await?,
        ))
    }

    /// The patient's consent shares ADMISSION_DISCHARGE with `hospital`.
    fn with(&self, patient: Uuid, hospital: Uuid) -> bool {
        self.0
            .get(&patient)
            .is_some_and(|t| t.shares_with(hospital, CATEGORY))
    }
}

/// Counts the lead times of the discharges from `from` to `to` (inclusive),
/// of the patients whose consent shares ADMISSION_DISCHARGE with the
/// hospital of the notice or sheet ([`Sharing`]). Small counts
/// are hidden from readers other than the hospital itself
/// ([`LeadTimeReport::published`]). Five queries, reading dates, patients
/// and hospitals only.
pub async fn lead_times(
    db: &DatabaseConnection,
    access: &ReportAccess,
    from: NaiveDate,
    to: NaiveDate,
    hide_small_counts: bool,
) -> ApiResult<LeadTimeReport> {
    let in_period = |c: discharge_notice::Column| Condition::all().add(c.gte(from)).add(c.lte(to));
    let mut q = discharge_notice::Entity::find()
        .select_only()
        .column(discharge_notice::Column::PatientId)
        .column(discharge_notice::Column::HospitalOrganizationId)
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
    let rows: Vec<(Uuid, Uuid, NaiveDate, NaiveDate, Option<NaiveDate>)> =
        q.into_tuple().all(db).await?;
    let mut buckets: Vec<(LeadTimeBucket, u64)> =
        LeadTimeBucket::ALL.iter().map(|b| (*b, 0)).collect();
    let mut measured_on_actual_day = 0;
    let consenting = Sharing::of(db, &rows.iter().map(|r| r.0).collect::<Vec<_>>()).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| consenting.with(r.0, r.1))
        .collect();
    for (_, _, notified_on, planned, actual) in &rows {
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
    let consenting = Sharing::of(db, &sheets.iter().map(|s| s.1).collect::<Vec<_>>()).await?;
    let sheets: Vec<_> = sheets
        .into_iter()
        .filter(|s| consenting.with(s.1, s.2))
        .collect();
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
        hide_small_counts,
    })
}
