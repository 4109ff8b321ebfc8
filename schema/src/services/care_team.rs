//! Care-team memberships: who looks after a patient, in which role, since when.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::audit::AuditStamp;
use crate::domain::{CareTeamRole, DataCategory};
use crate::error::{ApiError, ApiResult};
use crate::policy::{self, PatientAccess};
use entities::{care_team_membership, member};

#[derive(Debug)]
pub struct NewMembership {
    pub organization_id: Uuid,
    pub member_id: Option<Uuid>,
    pub role: CareTeamRole,
    pub start_date: NaiveDate,
}

/// How far ahead a membership's start or end may be set: a handover
/// planned for the coming months, not a date decades away — a membership
/// ending in 2100 could never be ended sooner by anyone but its own
/// organisation, and one starting in 2100 would count as the patient's
/// team while reaching no one.
pub const PLANNED_AHEAD_DAYS: i64 = 366;

fn not_too_far_ahead(field: &str, date: NaiveDate, today: NaiveDate) -> ApiResult<()> {
    if date > today + chrono::Duration::days(PLANNED_AHEAD_DAYS) {
        return Err(ApiError::bad_input(
            field,
            format!(
                "{date} is more than {PLANNED_AHEAD_DAYS} days ahead: set it when it comes nearer"
            ),
        ));
    }
    Ok(())
}

pub async fn add(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    new: NewMembership,
    today: NaiveDate,
) -> ApiResult<care_team_membership::Model> {
    access.require_write(DataCategory::CareTeam)?;
    not_too_far_ahead("input.startDate", new.start_date, today)?;
    let organization =
        super::organizations::require_exists(db, "input.organizationId", new.organization_id)
            .await?;
    if crate::domain::OrganizationKind::parse(&organization.kind)
        .is_some_and(|k| !crate::policy::joins_care_teams(k))
    {
        return Err(ApiError::bad_input(
            "input.organizationId",
            "an ambulance service is not put on care teams: its crews reach a patient through emergency access (openEmergencyAccess)",
        ));
    }
    if let Some(member_id) = new.member_id {
        let m = member::Entity::find_by_id(member_id)
            .one(db)
            .await?
            .ok_or_else(|| {
                ApiError::bad_input(
                    "input.memberId",
                    format!("no member has the id {member_id}"),
                )
            })?;
        if m.organization_id != new.organization_id {
            return Err(ApiError::bad_input(
                "input.memberId",
                "the member does not belong to the given organisation",
            ));
        }
    }
    // The same organisation (and member) in the same role twice at once is a
    // duplicate, not a second relationship. Asked inside the write, under
    // the patient's lock: asked before it, twenty adds sent at once all
    // found none and six were inserted — and ending "the" membership left
    // the organisation on the team through the others.
    let txn =
        super::begin_patient_write(db, access, stamp.principal.organization_id(), today).await?;
    let today = new.start_date.min(today);
    let mut dup = care_team_membership::Entity::find()
        .filter(care_team_membership::Column::PatientId.eq(access.patient_id()))
        .filter(care_team_membership::Column::OrganizationId.eq(new.organization_id))
        .filter(care_team_membership::Column::Role.eq(new.role.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(care_team_membership::Column::EndDate.is_null())
                .add(care_team_membership::Column::EndDate.gte(today)),
        );
    dup = match new.member_id {
        Some(m) => dup.filter(care_team_membership::Column::MemberId.eq(m)),
        None => dup.filter(care_team_membership::Column::MemberId.is_null()),
    };
    if dup.one(&txn).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "the organisation is already on the care team as {}",
            new.role
        )));
    }
    let now = crate::clock::system_now();
    let model = care_team_membership::ActiveModel {
        id: Set(super::new_id()),
        patient_id: Set(access.patient_id()),
        organization_id: Set(new.organization_id),
        member_id: Set(new.member_id),
        role: Set(new.role.as_str().to_string()),
        start_date: Set(new.start_date),
        end_date: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        recorded_by_organization: Set(Some(stamp.principal.organization_id())),
        recorded_by_member: Set(stamp.member_id()),
    };
    let inserted = care_team_membership::Entity::insert(model)
        .exec_with_returning(&txn)
        .await?;
    let entry = stamp.write(access.patient_id(), &[DataCategory::CareTeam]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Loads a membership for `endCareTeamMembership`; the caller must then obtain
/// access to its patient before ending it.
pub async fn find(
    db: &DatabaseConnection,
    id: Uuid,
) -> ApiResult<Option<care_team_membership::Model>> {
    Ok(care_team_membership::Entity::find_by_id(id).one(db).await?)
}

pub async fn end(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    caller_kind: Option<crate::domain::OrganizationKind>,
    membership: care_team_membership::Model,
    end_date: NaiveDate,
    today: NaiveDate,
) -> ApiResult<care_team_membership::Model> {
    access.require_write(DataCategory::CareTeam)?;
    if membership.patient_id != access.patient_id() {
        return Err(ApiError::not_found("care-team membership"));
    }
    policy::may_end_membership(
        &stamp.principal,
        caller_kind,
        membership.organization_id,
        membership.recorded_by_organization,
    )
    .map_err(|e| e.about(membership.patient_id, &[DataCategory::CareTeam]))?;
    // An end already set may be brought forward while it has not passed
    // (a planned handover that came sooner), never put off.
    match membership.end_date {
        Some(ends) if ends < today => {
            return Err(ApiError::Conflict(
                "the care-team membership has already ended".into(),
            ));
        }
        Some(ends) if end_date >= ends => {
            return Err(ApiError::Conflict(format!(
                "the care-team membership already ends on {ends}: an end can be brought forward, not put off"
            )));
        }
        _ => {}
    }
    not_too_far_ahead("input.endDate", end_date, today)?;
    if end_date < membership.start_date {
        return Err(ApiError::bad_input(
            "input.endDate",
            format!(
                "{end_date} is before the membership's start date {}",
                membership.start_date
            ),
        ));
    }
    let patient_id = membership.patient_id;
    let membership_id = membership.id;
    let ends_as_read = membership.end_date;
    let mut active: care_team_membership::ActiveModel = membership.into();
    active.end_date = Set(Some(end_date));
    let now = crate::clock::system_now();
    active.updated_at = Set(now);
    let txn = super::begin_write(db).await?;
    // Under the patient's lock, so that two organisations ending the last
    // two memberships at once cannot both pass.
    super::records::lock_patients(&txn, [patient_id]).await?;
    super::require_still_on_team(&txn, access, stamp.principal.organization_id(), today).await?;
    // As it stands under the lock: another request may have ended it since
    // it was read.
    let ended_meanwhile = care_team_membership::Entity::find_by_id(membership_id)
        .one(&txn)
        .await?
        .is_none_or(|m| m.end_date != ends_as_read);
    if ended_meanwhile {
        return Err(ApiError::Conflict(
            "the care-team membership has already ended".into(),
        ));
    }
    // The last open-ended membership: without another the patient would,
    // once the end dates pass, be no organisation's — nobody could reach
    // them again, not even to add a team. (Counting memberships that end
    // later would not do: end dates may be backdated, so ending them in the
    // right order would leave nobody.) Another counts if it has begun by
    // the day after this one's last, or by today: a handover planned ahead
    // leaves no gap, one that begins later would. One already ending is
    // not open-ended: bringing its end forward leaves the rest as it was.
    let taken_over_by = today.max(end_date + chrono::Duration::days(1));
    let others = care_team_membership::Entity::find()
        .filter(care_team_membership::Column::PatientId.eq(patient_id))
        .filter(care_team_membership::Column::Id.ne(membership_id))
        .filter(care_team_membership::Column::EndDate.is_null())
        .filter(care_team_membership::Column::StartDate.lte(taken_over_by))
        .count(&txn)
        .await?;
    if ends_as_read.is_none() && others == 0 {
        return Err(ApiError::Conflict(
            "this is the patient's last care-team membership: ending it would leave the patient with no organisation to reach them; add the organisation taking over first".into(),
        ));
    }
    let updated = active.update(&txn).await?;
    let entry = stamp.write(updated.patient_id, &[DataCategory::CareTeam]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Memberships of many patients, active today only unless `include_ended`.
pub async fn of_patients(
    db: &DatabaseConnection,
    patient_ids: &[Uuid],
    include_ended: bool,
    today: NaiveDate,
) -> ApiResult<HashMap<Uuid, Vec<care_team_membership::Model>>> {
    let mut query = care_team_membership::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (
                care_team_membership::Entity,
                care_team_membership::Column::PatientId,
            ),
            patient_ids,
        ))
        .order_by_asc(care_team_membership::Column::Id);
    if !include_ended {
        query = query.filter(policy::active_on(today));
    }
    let mut map: HashMap<Uuid, Vec<_>> = HashMap::new();
    for row in query.all(db).await? {
        map.entry(row.patient_id).or_default().push(row);
    }
    Ok(map)
}

/// The patients on whose care team an organisation is today, by patient id;
/// a page of `first` after `after`, and whether more follow.
pub async fn patients_of_organization(
    db: &DatabaseConnection,
    organization_id: Uuid,
    today: NaiveDate,
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<Uuid>, bool)> {
    use sea_orm::QuerySelect;
    let mut q = care_team_membership::Entity::find()
        .select_only()
        .column(care_team_membership::Column::PatientId)
        .distinct()
        .filter(care_team_membership::Column::OrganizationId.eq(organization_id))
        .filter(policy::active_on(today))
        .order_by_asc(care_team_membership::Column::PatientId);
    if let Some(a) = after {
        q = q.filter(care_team_membership::Column::PatientId.gt(a));
    }
    let mut ids: Vec<Uuid> = q.limit(first + 1).into_tuple().all(db).await?;
    let more = ids.len() as u64 > first;
    ids.truncate(first as usize);
    Ok((ids, more))
}
