//! Break-the-glass (救急時閲覧): time-limited emergency access, and the
//! notifications that tell the care team about it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::audit::{AuditAction, AuditStamp};
use crate::domain::Text;
use crate::error::{ApiError, ApiResult};
use crate::policy::{EmergencyOpener, Policy, active_on};
use entities::{care_team_membership, emergency_grant, notification};

/// Opens emergency access for the member, unless the patient has objected.
/// The patient's care-team organisations get a notification.
pub async fn open(
    db: &DatabaseConnection,
    policy: &Policy,
    opener: EmergencyOpener,
    stamp: &AuditStamp,
    patient_id: Uuid,
    reason: Text,
) -> ApiResult<emergency_grant::Model> {
    let now = policy.clock.now();
    let txn = crate::services::begin_write(db).await?;
    // The patient row's lock orders this against a concurrent objection.
    super::lock_patient(&txn, patient_id).await?;
    if super::consents::active_objection(&txn, patient_id)
        .await?
        .is_some()
    {
        return Err(ApiError::Forbidden(
            "the patient has recorded an objection to emergency access".into(),
        ));
    }
    let grant = emergency_grant::Entity::insert(emergency_grant::ActiveModel {
        id: Set(super::new_id()),
        patient_id: Set(patient_id),
        member_id: Set(opener.member_id),
        organization_id: Set(opener.organization_id),
        reason: Set(reason.into_inner()),
        opened_at: Set(now),
        expires_at: Set(now + policy.emergency_duration),
    })
    .exec_with_returning(&txn)
    .await?;
    let team: Vec<Uuid> = care_team_membership::Entity::find()
        .select_only()
        .column(care_team_membership::Column::OrganizationId)
        .distinct()
        .filter(care_team_membership::Column::PatientId.eq(patient_id))
        .filter(active_on(policy.clock.today()))
        .into_tuple::<Uuid>()
        .all(&txn)
        .await?;
    let notifications: Vec<_> = team
        .into_iter()
        .filter(|org| *org != opener.organization_id)
        .map(|org| notification::ActiveModel {
            id: Set(super::new_id()),
            organization_id: Set(org),
            patient_id: Set(Some(patient_id)),
            kind: Set(NotificationKind::BreakTheGlass.as_str().to_string()),
            // No reason and no name here: the reason may be clinical, and
            // notifications are read outside the patient policy. The care
            // team reads who and why in the patient's access history.
            message: Set(format!(
                "Emergency access was opened on a patient of your care team, until {}; see the patient's access history",
                grant.expires_at.to_rfc3339(),
            )),
            created_at: Set(now),
            read_at: Set(None),
        })
        .collect();
    if !notifications.is_empty() {
        notification::Entity::insert_many(notifications)
            .exec(&txn)
            .await?;
    }
    let entry = stamp.entry(
        patient_id,
        AuditAction::BreakTheGlass,
        crate::policy::EMERGENCY_CATEGORIES,
        Some(grant.reason.clone()),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(grant)
}

crate::domain::domain_enum! {
    /// What a notification is about.
    pub enum NotificationKind {
        /// Emergency access was opened on a patient of the organisation's care team.
        BreakTheGlass = "BREAK_THE_GLASS",
    }
}

/// The organisation's notifications, newest first.
pub async fn notifications(
    db: &DatabaseConnection,
    organization_id: Uuid,
    unread_only: bool,
    limit: u64,
) -> ApiResult<Vec<notification::Model>> {
    let mut q = notification::Entity::find()
        .filter(notification::Column::OrganizationId.eq(organization_id))
        .order_by_desc(notification::Column::Id)
        .limit(limit);
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    Ok(q.all(db).await?)
}

/// Marks one of the organisation's notifications read.
pub async fn mark_read(
    db: &DatabaseConnection,
    organization_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<notification::Model> {
    let n = notification::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|n| n.organization_id == organization_id)
        .ok_or_else(|| ApiError::not_found("notification"))?;
    if n.read_at.is_some() {
        return Ok(n);
    }
    let mut a: notification::ActiveModel = n.into();
    a.read_at = Set(Some(now));
    Ok(sea_orm::ActiveModelTrait::update(a, db).await?)
}
