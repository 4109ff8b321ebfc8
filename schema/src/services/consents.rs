//! Consents (同意) and objections to emergency access. History is kept: a new
//! consent supersedes the active one, a withdrawal marks it; nothing is deleted.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use crate::audit::{AuditAction, AuditStamp};
use crate::domain::{ConsentMethod, ConsentScope, DataCategory, Text};
use crate::error::{ApiError, ApiResult};
use crate::policy::PatientAccess;
use crate::principal::Principal;
use entities::{consent, emergency_grant, emergency_objection, organization};

#[derive(Debug)]
pub struct NewConsent {
    pub scope: ConsentScope,
    /// Excluded organisations (network scope) or covered ones (organisation scope).
    pub organization_ids: Vec<Uuid>,
    pub excluded_categories: Vec<DataCategory>,
    pub method: ConsentMethod,
    pub form_reference: Option<Text>,
    pub obtained_on: NaiveDate,
}

fn member_of(principal: &Principal) -> Option<Uuid> {
    match principal {
        Principal::Member { member_id, .. } => Some(*member_id),
        Principal::System { .. } => None,
    }
}

/// Records a consent; the previously active one, if any, is withdrawn as
/// superseded in the same transaction.
pub async fn record(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    mut new: NewConsent,
    now: DateTime<Utc>,
) -> ApiResult<consent::Model> {
    let principal = &stamp.principal;
    access.require_write(DataCategory::Consent)?;
    if new.excluded_categories.contains(&DataCategory::Consent) {
        return Err(ApiError::bad_input(
            "input.excludedCategories",
            "CONSENT cannot be excluded: the care team must be able to see the consent itself",
        ));
    }
    new.organization_ids.sort();
    new.organization_ids.dedup();
    if new.scope == ConsentScope::Organizations && new.organization_ids.is_empty() {
        return Err(ApiError::bad_input(
            "input.organizationIds",
            "a consent for listed organisations must list at least one",
        ));
    }
    if !new.organization_ids.is_empty() {
        let found = organization::Entity::find()
            .filter(organization::Column::Id.is_in(new.organization_ids.clone()))
            .all(db)
            .await?;
        if let Some(missing) = new
            .organization_ids
            .iter()
            .find(|id| !found.iter().any(|o| o.id == **id))
        {
            return Err(ApiError::bad_input(
                "input.organizationIds",
                format!("no organisation has the id {missing}"),
            ));
        }
    }
    new.excluded_categories.sort();
    new.excluded_categories.dedup();
    let detail = format!("consent recorded: {}", new.scope);
    let txn = crate::services::begin_write(db).await?;
    super::lock_patient(&txn, access.patient_id()).await?;
    let member = member_of(principal);
    if let Some(active) = active(&txn, access.patient_id()).await? {
        let mut a: consent::ActiveModel = active.into();
        a.withdrawn_at = Set(Some(now));
        a.withdrawn_by_member = Set(member);
        a.withdrawal_reason = Set(Some("superseded by a new consent".into()));
        a.update(&txn).await?;
    }
    let model = consent::ActiveModel {
        id: Set(super::new_id()),
        patient_id: Set(access.patient_id()),
        scope: Set(new.scope.as_str().to_string()),
        organization_ids: Set(
            serde_json::to_string(&new.organization_ids).map_err(ApiError::internal)?
        ),
        excluded_categories: Set(serde_json::to_string(
            &new.excluded_categories
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        )
        .map_err(ApiError::internal)?),
        method: Set(new.method.as_str().to_string()),
        form_reference: Set(new.form_reference.map(Text::into_inner)),
        obtained_on: Set(new.obtained_on),
        recorded_by_member: Set(member),
        recorded_by_organization: Set(principal.organization_id()),
        recorded_at: Set(now),
        withdrawn_at: Set(None),
        withdrawn_by_member: Set(None),
        withdrawal_reason: Set(None),
    };
    let inserted = consent::Entity::insert(model)
        .exec_with_returning(&txn)
        .await
        .map_err(|e| {
            super::conflict_on_unique(e, || {
                "the patient's consent was changed at the same moment; reload and try again".into()
            })
        })?;
    let entry = stamp.entry(
        access.patient_id(),
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some(detail),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Withdraws the active consent. It takes effect for the very next request:
/// the policy reads consents on every request.
pub async fn withdraw(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    reason: Option<Text>,
    now: DateTime<Utc>,
) -> ApiResult<consent::Model> {
    access.require_write(DataCategory::Consent)?;
    let txn = crate::services::begin_write(db).await?;
    super::lock_patient(&txn, access.patient_id()).await?;
    let active = active(&txn, access.patient_id()).await?.ok_or_else(|| {
        ApiError::Conflict("the patient has no active consent to withdraw".into())
    })?;
    let mut a: consent::ActiveModel = active.into();
    a.withdrawn_at = Set(Some(now));
    a.withdrawn_by_member = Set(member_of(&stamp.principal));
    a.withdrawal_reason = Set(Some(
        reason
            .map(Text::into_inner)
            .unwrap_or_else(|| "withdrawn by the patient".into()),
    ));
    let updated = a.update(&txn).await?;
    let entry = stamp.entry(
        access.patient_id(),
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some("consent withdrawn".into()),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}

async fn active(
    conn: &impl sea_orm::ConnectionTrait,
    patient_id: Uuid,
) -> ApiResult<Option<consent::Model>> {
    Ok(consent::Entity::find()
        .filter(consent::Column::PatientId.eq(patient_id))
        .filter(consent::Column::WithdrawnAt.is_null())
        .one(conn)
        .await?)
}

/// Every consent of the patient, newest first.
pub async fn history(
    db: &DatabaseConnection,
    access: &PatientAccess,
) -> ApiResult<Vec<consent::Model>> {
    Ok(consent::Entity::find()
        .filter(consent::Column::PatientId.eq(access.patient_id()))
        .order_by_desc(consent::Column::RecordedAt)
        .order_by_desc(consent::Column::Id)
        .all(db)
        .await?)
}

pub async fn active_objection(
    conn: &impl sea_orm::ConnectionTrait,
    patient_id: Uuid,
) -> ApiResult<Option<emergency_objection::Model>> {
    Ok(emergency_objection::Entity::find()
        .filter(emergency_objection::Column::PatientId.eq(patient_id))
        .filter(emergency_objection::Column::WithdrawnAt.is_null())
        .one(conn)
        .await?)
}

/// Records the patient's objection to emergency access. Emergency access
/// already open on the patient ends at once.
pub async fn record_objection(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    note: Option<Text>,
    now: DateTime<Utc>,
) -> ApiResult<emergency_objection::Model> {
    let principal = &stamp.principal;
    access.require_write(DataCategory::Consent)?;
    let txn = crate::services::begin_write(db).await?;
    super::lock_patient(&txn, access.patient_id()).await?;
    if active_objection(&txn, access.patient_id()).await?.is_some() {
        return Err(ApiError::Conflict(
            "the patient's objection to emergency access is already recorded".into(),
        ));
    }
    emergency_grant::Entity::update_many()
        .col_expr(
            emergency_grant::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(emergency_grant::Column::PatientId.eq(access.patient_id()))
        .filter(emergency_grant::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    let inserted = emergency_objection::Entity::insert(emergency_objection::ActiveModel {
        id: Set(super::new_id()),
        patient_id: Set(access.patient_id()),
        note: Set(note.map(Text::into_inner)),
        recorded_by_member: Set(member_of(principal)),
        recorded_by_organization: Set(principal.organization_id()),
        recorded_at: Set(now),
        withdrawn_at: Set(None),
    })
    .exec_with_returning(&txn)
    .await?;
    let entry = stamp.entry(
        access.patient_id(),
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some("objection to emergency access recorded".into()),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(inserted)
}

pub async fn withdraw_objection(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    now: DateTime<Utc>,
) -> ApiResult<emergency_objection::Model> {
    access.require_write(DataCategory::Consent)?;
    let txn = crate::services::begin_write(db).await?;
    super::lock_patient(&txn, access.patient_id()).await?;
    let active = active_objection(&txn, access.patient_id())
        .await?
        .ok_or_else(|| {
            ApiError::Conflict("the patient has no objection to emergency access on record".into())
        })?;
    let mut a: emergency_objection::ActiveModel = active.into();
    a.withdrawn_at = Set(Some(now));
    let updated = a.update(&txn).await?;
    let entry = stamp.entry(
        access.patient_id(),
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some("objection to emergency access withdrawn".into()),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}
