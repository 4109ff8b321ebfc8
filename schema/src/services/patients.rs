//! Patients and their local identifiers (名寄せ).

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::audit::AuditStamp;
use crate::domain::{
    CareTeamRole, DataCategory, InsuredPersonId, Kana, LocalId, PatientStatus, Phone, PlaceOfDeath,
    PostalCode, Sex, Text,
};
use crate::error::{ApiError, ApiResult};
use crate::policy::PatientAccess;
use crate::principal::Principal;
use entities::{care_team_membership, patient, patient_identifier};

#[derive(Debug)]
pub struct NewPatient {
    pub name: Text,
    pub name_kana: Kana,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub postal_code: Option<PostalCode>,
    pub address: Option<Text>,
    pub phone: Option<Phone>,
    /// The registering organisation's own ID for the patient; it is linked in the
    /// same transaction, which is what makes the patient visible to it.
    pub local_id: LocalId,
    /// 被保険者個人識別子, when the registrar knows it.
    pub insured_person_id: Option<InsuredPersonId>,
}

/// A change of a patient's status. Only a death carries a date and a place.
#[derive(Debug, Clone, Copy)]
pub enum StatusChange {
    Active,
    MovedAway,
    Deceased { on: NaiveDate, place: PlaceOfDeath },
}

/// The refusal of an insured-person identifier another patient holds. It
/// tells the registrar that the person is probably already in the network
/// (名寄せ: match, do not duplicate) — and nothing about that patient.
pub(crate) fn insured_conflict_message(id: &InsuredPersonId) -> String {
    format!(
        "the insured-person identifier {:?} already belongs to a patient of the network: look the patient up (patientByInsuredPersonIdentifier) instead of registering them again",
        id.as_str()
    )
}

fn conflict_message(local_id: &LocalId) -> String {
    format!(
        "the local ID {:?} is already linked to another patient at this organisation",
        local_id.as_str()
    )
}

/// Registers a patient, links the caller's organisation's local ID, and puts
/// the organisation on the care team in `role` from `today` — the relationship
/// through which it will see the patient once consent is recorded.
pub async fn register(
    db: &DatabaseConnection,
    stamp: &AuditStamp,
    new: NewPatient,
    role: CareTeamRole,
    today: NaiveDate,
) -> ApiResult<patient::Model> {
    let principal = &stamp.principal;
    let org = principal.organization_id();
    let mut written = vec![DataCategory::Identity, DataCategory::CareTeam];
    let conflict = new.insured_person_id.as_ref().map(insured_conflict_message);
    let insured = new.insured_person_id.map(InsuredPersonId::into_inner);
    if new.address.is_some() || new.phone.is_some() || new.postal_code.is_some() {
        written.push(DataCategory::Contacts);
    }
    let txn = crate::services::begin_write(db).await?;
    if find_by_local_id(&txn, org, new.local_id.as_str())
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(conflict_message(&new.local_id)));
    }
    let now = crate::clock::system_now();
    let id = super::new_id();
    let model = patient::ActiveModel {
        id: Set(id),
        name: Set(new.name.into_inner()),
        name_kana: Set(new.name_kana.into_inner()),
        birth_date: Set(new.birth_date),
        sex: Set(new.sex.as_str().to_string()),
        postal_code: Set(new.postal_code.map(PostalCode::into_inner)),
        address: Set(new.address.map(Text::into_inner)),
        phone: Set(new.phone.map(Phone::into_inner)),
        status: Set(PatientStatus::Active.as_str().to_string()),
        deceased_on: Set(None),
        place_of_death: Set(None),
        insured_person_id: Set(insured.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let inserted = patient::Entity::insert(model)
        .exec_with_returning(&txn)
        .await
        .map_err(|e| match conflict {
            Some(message) => super::conflict_on_unique(e, || message),
            None => e.into(),
        })?;
    insert_identifier(&txn, stamp, id, org, &new.local_id).await?;
    care_team_membership::Entity::insert(care_team_membership::ActiveModel {
        id: Set(super::new_id()),
        patient_id: Set(id),
        organization_id: Set(org),
        member_id: Set(match principal {
            Principal::Member { member_id, .. } => Some(*member_id),
            Principal::System { .. } => None,
        }),
        role: Set(role.as_str().to_string()),
        start_date: Set(today),
        end_date: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        recorded_by_organization: Set(Some(org)),
        recorded_by_member: Set(stamp.member_id()),
    })
    .exec(&txn)
    .await?;
    crate::audit::append_in(&txn, &[&stamp.write(id, &written)], now).await?;
    txn.commit().await?;
    Ok(inserted)
}

async fn insert_identifier(
    conn: &impl ConnectionTrait,
    stamp: &AuditStamp,
    patient_id: Uuid,
    organization_id: Uuid,
    local_id: &LocalId,
) -> ApiResult<patient_identifier::Model> {
    let model = patient_identifier::ActiveModel {
        id: Set(super::new_id()),
        organization_id: Set(organization_id),
        local_id: Set(local_id.as_str().to_string()),
        patient_id: Set(patient_id),
        created_at: Set(crate::clock::system_now()),
        recorded_by_organization: Set(Some(stamp.principal.organization_id())),
        recorded_by_member: Set(stamp.member_id()),
    };
    patient_identifier::Entity::insert(model)
        .exec_with_returning(conn)
        .await
        .map_err(|e| super::conflict_on_unique(e, || conflict_message(local_id)))
}

/// Links `(organization, local ID)` to the patient. Linking the same pair to the
/// same patient again returns the existing link (a retry is harmless); a pair
/// already linked to another patient is a `CONFLICT`.
pub async fn link_identifier(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    organization_id: Uuid,
    local_id: LocalId,
) -> ApiResult<patient_identifier::Model> {
    super::organizations::ensure_exists(db, "input.organizationId", organization_id).await?;
    let txn = crate::services::begin_write(db).await?;
    if let Some(existing) = find_by_local_id(&txn, organization_id, local_id.as_str()).await? {
        return if existing.patient_id == access.patient_id() {
            Ok(existing)
        } else {
            Err(ApiError::Conflict(conflict_message(&local_id)))
        };
    }
    let inserted =
        insert_identifier(&txn, stamp, access.patient_id(), organization_id, &local_id).await?;
    let entry = stamp.write(access.patient_id(), &[DataCategory::Identity]);
    crate::audit::append_in(&txn, &[&entry], crate::clock::system_now()).await?;
    txn.commit().await?;
    Ok(inserted)
}

pub async fn find_by_local_id(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    local_id: &str,
) -> ApiResult<Option<patient_identifier::Model>> {
    Ok(patient_identifier::Entity::find()
        .filter(patient_identifier::Column::OrganizationId.eq(organization_id))
        .filter(patient_identifier::Column::LocalId.eq(local_id))
        .one(conn)
        .await?)
}

/// [`find_by_local_id`] for many local IDs of one organisation at once, in
/// one statement per [`LOOKUPS_PER_STATEMENT`]: local ID → patient, for
/// those some patient holds.
pub async fn find_by_local_ids(
    conn: &impl ConnectionTrait,
    organization_id: Uuid,
    local_ids: &[String],
) -> ApiResult<HashMap<String, Uuid>> {
    let mut found = HashMap::new();
    for chunk in local_ids.chunks(LOOKUPS_PER_STATEMENT) {
        let rows: Vec<(String, Uuid)> = patient_identifier::Entity::find()
            .select_only()
            .column(patient_identifier::Column::LocalId)
            .column(patient_identifier::Column::PatientId)
            .filter(patient_identifier::Column::OrganizationId.eq(organization_id))
            .filter(super::text_in(
                conn.get_database_backend(),
                (
                    patient_identifier::Entity,
                    patient_identifier::Column::LocalId,
                ),
                chunk,
            ))
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// The patients holding these insured-person identifiers: identifier →
/// patient, for those some patient holds.
pub async fn find_by_insured_person_ids(
    conn: &impl ConnectionTrait,
    ids: &[String],
) -> ApiResult<HashMap<String, Uuid>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(LOOKUPS_PER_STATEMENT) {
        let rows: Vec<(Option<String>, Uuid)> = patient::Entity::find()
            .select_only()
            .column(patient::Column::InsuredPersonId)
            .column(patient::Column::Id)
            .filter(super::text_in(
                conn.get_database_backend(),
                (patient::Entity, patient::Column::InsuredPersonId),
                chunk,
            ))
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(rows.into_iter().filter_map(|(id, p)| id.map(|id| (id, p))));
    }
    Ok(found)
}

/// Values bound per lookup statement: far below both databases' limits on
/// bound parameters (SQLite binds each value of the list).
const LOOKUPS_PER_STATEMENT: usize = 500;

/// Records (or, with `None`, removes) the patient's insured-person
/// identifier. One another patient holds is a `CONFLICT`.
pub async fn set_insured_person_id(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    id: Option<InsuredPersonId>,
) -> ApiResult<patient::Model> {
    access.require_write(DataCategory::Identity)?;
    let txn = crate::services::begin_write(db).await?;
    let now = crate::clock::system_now();
    let conflict = id.as_ref().map(insured_conflict_message);
    let updated = patient::ActiveModel {
        id: Set(access.patient_id()),
        insured_person_id: Set(id.map(InsuredPersonId::into_inner)),
        updated_at: Set(now),
        ..Default::default()
    }
    .update(&txn)
    .await
    .map_err(|e| match conflict {
        Some(message) => super::conflict_on_unique(e, || message),
        None => e.into(),
    })?;
    let entry = stamp.write(access.patient_id(), &[DataCategory::Identity]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn set_status(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    change: StatusChange,
) -> ApiResult<patient::Model> {
    access.require_write(DataCategory::Identity)?;
    let txn = crate::services::begin_write(db).await?;
    let found = patient::Entity::find_by_id(access.patient_id())
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("patient"))?;
    if let StatusChange::Deceased { on, .. } = change
        && on < found.birth_date
    {
        return Err(ApiError::bad_input(
            "input.deceasedOn",
            format!("{on} is before the patient's birth date"),
        ));
    }
    let (status, on, place) = match change {
        StatusChange::Active => (PatientStatus::Active, None, None),
        StatusChange::MovedAway => (PatientStatus::MovedAway, None, None),
        StatusChange::Deceased { on, place } => (PatientStatus::Deceased, Some(on), Some(place)),
    };
    let mut active: patient::ActiveModel = found.into();
    active.status = Set(status.as_str().to_string());
    active.deceased_on = Set(on);
    active.place_of_death = Set(place.map(|p| p.as_str().to_string()));
    let now = crate::clock::system_now();
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    let entry = stamp.write(updated.id, &[DataCategory::Identity]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn identifiers_of(
    db: &DatabaseConnection,
    patient_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<patient_identifier::Model>>> {
    let rows = patient_identifier::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (
                patient_identifier::Entity,
                patient_identifier::Column::PatientId,
            ),
            patient_ids,
        ))
        .order_by_asc(patient_identifier::Column::Id)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<_>> = HashMap::new();
    for row in rows {
        map.entry(row.patient_id).or_default().push(row);
    }
    Ok(map)
}
