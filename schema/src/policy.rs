//! The access policy: the one place that decides who may see and change what.
//!
//! Resolvers never check access by hand. To touch patient data they first obtain
//! a capability from this module — a [`PatientAccess`] — and the GraphQL
//! `Patient` object can only be built from one. Directory administration
//! (organisations, members, API keys) requires [`AdminAccess`].
//!
//! Rules implemented here:
//! - **Relationship**: an organisation sees a patient only while it holds a local
//!   identifier for the patient (it registered or linked them) or has an active
//!   care-team membership. Without one the caller learns nothing, not even that
//!   the patient exists: the answer is `NOT_FOUND`, never `FORBIDDEN`.
//! - **Directory administration** is for network administrators (members of
//!   the profession `NETWORK_ADMINISTRATOR`), never for systems.
//! - **Identifiers** may be linked by a caller for its own organisation only;
//!   network administrators may link for any organisation (名寄せ work at the
//!   coordination centre).

use std::collections::HashSet;

use chrono::{NaiveDate, Utc};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::domain::Profession;
use crate::error::{ApiError, ApiResult};
use crate::principal::Principal;
use entities::{care_team_membership, patient_identifier};

/// Proof that the caller may read and write a patient's core record (identity,
/// identifiers, care team). Only this module constructs it.
#[derive(Clone, Debug)]
pub struct PatientAccess {
    patient_id: Uuid,
}

impl PatientAccess {
    pub fn patient_id(&self) -> Uuid {
        self.patient_id
    }
}

/// Proof that the caller administers the network directory.
#[derive(Clone, Copy, Debug)]
pub struct AdminAccess(());

pub fn require_admin(principal: &Principal) -> ApiResult<AdminAccess> {
    match principal.profession() {
        Some(Profession::NetworkAdministrator) => Ok(AdminAccess(())),
        _ => Err(ApiError::Forbidden(
            "only network administrators may change the directory (organisations, members, API keys)"
                .into(),
        )),
    }
}

/// Which organisation a caller may link a local identifier for.
pub fn may_link_identifier_for(principal: &Principal, organization_id: Uuid) -> ApiResult<()> {
    if principal.organization_id() == organization_id || require_admin(principal).is_ok() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "a local identifier can only be linked by its own organisation".into(),
        ))
    }
}

/// Grants access to a freshly registered patient: the registering organisation
/// holds its identifier from the same transaction on.
pub fn access_for_registered(patient_id: Uuid) -> PatientAccess {
    PatientAccess { patient_id }
}

/// The access check for one patient. `NOT_FOUND` when there is no relationship.
pub async fn patient(
    db: &DatabaseConnection,
    principal: &Principal,
    patient_id: Uuid,
) -> ApiResult<PatientAccess> {
    let visible = visible_patients(db, principal, &[patient_id]).await?;
    if visible.contains(&patient_id) {
        Ok(PatientAccess { patient_id })
    } else {
        Err(ApiError::not_found("patient"))
    }
}

/// The access check for many patients at once (lists, federation `_entities`):
/// two queries whatever the number of ids. Ids without access are simply absent.
pub async fn patients(
    db: &DatabaseConnection,
    principal: &Principal,
    patient_ids: &[Uuid],
) -> ApiResult<Vec<PatientAccess>> {
    let visible = visible_patients(db, principal, patient_ids).await?;
    Ok(patient_ids
        .iter()
        .filter(|id| visible.contains(id))
        .map(|id| PatientAccess { patient_id: *id })
        .collect())
}

async fn visible_patients(
    db: &DatabaseConnection,
    principal: &Principal,
    patient_ids: &[Uuid],
) -> ApiResult<HashSet<Uuid>> {
    if patient_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let org = principal.organization_id();
    let ids = patient_ids.to_vec();
    let mut visible: HashSet<Uuid> = patient_identifier::Entity::find()
        .select_only()
        .column(patient_identifier::Column::PatientId)
        .filter(patient_identifier::Column::OrganizationId.eq(org))
        .filter(patient_identifier::Column::PatientId.is_in(ids.clone()))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    if visible.len() == patient_ids.len() {
        return Ok(visible);
    }
    let today = Utc::now().date_naive();
    visible.extend(
        care_team_membership::Entity::find()
            .select_only()
            .column(care_team_membership::Column::PatientId)
            .filter(care_team_membership::Column::OrganizationId.eq(org))
            .filter(care_team_membership::Column::PatientId.is_in(ids))
            .filter(active_on(today))
            .into_tuple::<Uuid>()
            .all(db)
            .await?,
    );
    Ok(visible)
}

/// A care-team membership is active on `day` when it started on or before it and
/// has not ended before it (the end date is inclusive).
pub fn active_on(day: NaiveDate) -> Condition {
    Condition::all()
        .add(care_team_membership::Column::StartDate.lte(day))
        .add(
            Condition::any()
                .add(care_team_membership::Column::EndDate.is_null())
                .add(care_team_membership::Column::EndDate.gte(day)),
        )
}
