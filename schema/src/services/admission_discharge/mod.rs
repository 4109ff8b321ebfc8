//! Admission and discharge support (入退院支援): the three documents that tie
//! a hospital stay to the care at home, all under the data category
//! `ADMISSION_DISCHARGE`.
//!
//! - [`sheets`]: the admission information sheet (入院時情報提供書) the care
//!   manager sends the admitting hospital — DRAFT → SENT → RECEIVED, prefilled
//!   from the patient's records under the policy;
//! - [`notices`]: the hospital's discharge notice (退院連絡) to the care team,
//!   with Kitami's criteria for discharge needing coordination and the lead
//!   time (days from the notice to the discharge), corrections kept as versions;
//! - [`conferences`]: the discharge conference (退院前カンファレンス) with one
//!   invitation per invited organisation and its answer — and the care
//!   team's other conferences (サービス担当者会議 …), each under its kind's
//!   category, with their minutes;
//! - [`report`]: the lead-time buckets Kitami reports (8+ days … after
//!   discharge) over a period, for a hospital or the region.
//!
//! Access has been decided before these functions run: they take the
//! policy's [`PatientAccess`](crate::policy::PatientAccess) and ask it for
//! write permission themselves, so they cannot be called without it. Every
//! change commits with its audit entry and its notifications in one
//! transaction; the events are published after the commit.

pub mod conferences;
pub mod notices;
pub mod report;
pub mod sheets;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
use uuid::Uuid;

use crate::audit::AuditStamp;
use crate::clock::Clock;
use crate::domain::{DataCategory, OrganizationKind};
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, HubEvent, PatientEvent, PatientEventKind};
use crate::policy::active_on;
use crate::principal::Principal;
use entities::{care_team_membership, organization};

/// The category every document of this module is governed by.
pub const CATEGORY: DataCategory = DataCategory::AdmissionDischarge;

/// Organisations that admit patients: hospitals, and clinics with beds
/// (有床診療所), which the directory registers as clinics.
pub const INPATIENT_KINDS: &[OrganizationKind] =
    &[OrganizationKind::Hospital, OrganizationKind::Clinic];

/// The writer of a document: the member, or the system's API key.
pub(crate) fn author(principal: &Principal) -> (Option<Uuid>, Option<Uuid>) {
    match principal {
        Principal::Member { member_id, .. } => (Some(*member_id), None),
        Principal::System { api_key_id, .. } => (None, Some(*api_key_id)),
    }
}

/// The calendar day of a moment in the region (Japan), as the policy clock
/// defines "today": a notice sent at 01:00 JST belongs to that Japanese day,
/// not to the UTC day before.
///
/// A change that stores both a moment and a day reads the clock once and
/// takes the day from the moment with this: two reads of the clock could
/// fall on either side of midnight, and a notice's `notified_on` would then
/// not be the day of its `notified_at`. (Defined through [`Clock::today`] so
/// that the region's offset is written in one place.)
pub fn region_date(at: DateTime<Utc>) -> NaiveDate {
    struct At(DateTime<Utc>);
    impl Clock for At {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }
    At(at).today()
}

/// Publishes, after the commit, the notifications a change created and the
/// patient event that tells the patient's subscribers about `subject_id`;
/// `by` is the organisation that caused the change.
pub(crate) fn publish(
    bus: &EventBus,
    events: Vec<HubEvent>,
    kind: PatientEventKind,
    patient_id: Uuid,
    subject_id: Uuid,
    by: Uuid,
    at: DateTime<Utc>,
) {
    publish_in(bus, events, kind, CATEGORY, patient_id, subject_id, by, at);
}

/// [`publish`] for a subject governed by `category` (a care conference of
/// another kind than discharge).
#[allow(clippy::too_many_arguments)]
pub(crate) fn publish_in(
    bus: &EventBus,
    mut events: Vec<HubEvent>,
    kind: PatientEventKind,
    category: DataCategory,
    patient_id: Uuid,
    subject_id: Uuid,
    by: Uuid,
    at: DateTime<Utc>,
) {
    events.push(HubEvent::Patient(PatientEvent {
        patient_id,
        kind,
        subject_id,
        category,
        organization_id: by,
        occurred_at: at,
        record_version: None,
    }));
    bus.publish_all(events);
}

/// The organisations on the patient's care team on `today`, each once.
pub(crate) async fn team_organizations(
    db: &impl ConnectionTrait,
    patient_id: Uuid,
    today: NaiveDate,
) -> ApiResult<Vec<Uuid>> {
    Ok(care_team_membership::Entity::find()
        .select_only()
        .column(care_team_membership::Column::OrganizationId)
        .distinct()
        .filter(care_team_membership::Column::PatientId.eq(patient_id))
        .filter(active_on(today))
        .into_tuple::<Uuid>()
        .all(db)
        .await?)
}

/// The patients on whose care team `organization_id` is on `today`, as a
/// subquery: an organisation's lists (inbox, notices, invitations) hold only
/// patients it still looks after, in one query.
pub(crate) fn team_patients(
    organization_id: Uuid,
    today: NaiveDate,
) -> sea_orm::sea_query::SelectStatement {
    care_team_membership::Entity::find()
        .select_only()
        .column(care_team_membership::Column::PatientId)
        .filter(care_team_membership::Column::OrganizationId.eq(organization_id))
        .filter(active_on(today))
        .into_query()
}

/// The caller's own organisation, which must admit patients to do `what`.
pub(crate) async fn require_inpatient_caller(
    db: &impl ConnectionTrait,
    stamp: &AuditStamp,
    what: &str,
) -> ApiResult<organization::Model> {
    let org_id = stamp.principal.organization_id();
    let org = organization::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::internal(format_args!(
                "the caller's organisation {org_id} is missing"
            ))
        })?;
    if !is_inpatient(&org)? {
        return Err(ApiError::Forbidden(format!(
            "{what} is for hospitals (and clinics with beds); your organisation is a {}",
            org.kind
        )));
    }
    Ok(org)
}

pub(crate) fn is_inpatient(org: &organization::Model) -> ApiResult<bool> {
    Ok(INPATIENT_KINDS.contains(&OrganizationKind::from_db(&org.kind)?))
}

/// Names stored as a JSON array of strings (criteria, categories).
pub(crate) fn names_json<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn names_from_json(json: &str) -> ApiResult<Vec<String>> {
    serde_json::from_str(json).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_belongs_to_its_japanese_day() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 2026-04-01 00:30 JST is still March 31st in UTC.
        assert_eq!(
            region_date(at("2026-03-31T15:30:00Z")),
            NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
        );
        assert_eq!(
            region_date(at("2026-03-31T14:59:59Z")),
            NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()
        );
    }
}
