//! Break-the-glass (救急時閲覧): time-limited emergency access, and the
//! notifications that tell the care team about it.

use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use uuid::Uuid;

use super::notifications::{self, NewNotification, NotificationKind};
use crate::audit::{AuditAction, AuditStamp};
use crate::domain::{DataCategory, EmergencyReason};
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, HubEvent, PatientEvent, PatientEventKind};
use crate::policy::{EmergencyOpener, Policy};
use entities::emergency_grant;

/// What [`open`] would find of `patient_id`, read before its transaction:
/// whether a patient has the id, and whether an objection to emergency
/// access is in force. The same two statements whatever the answer, and
/// asked of an id that names no patient too (the nil id, for a local ID
/// that matched none): a patient who objected is then refused as an
/// unknown one is, after the same reads and with no transaction, and the
/// two cannot be told apart by their time. [`open`] reads the objection
/// again under the patient's lock, for one recorded in between.
pub async fn standing(db: &DatabaseConnection, patient_id: Uuid) -> ApiResult<Standing> {
    use sea_orm::QuerySelect;
    let exists = entities::patient::Entity::find_by_id(patient_id)
        .select_only()
        .column(entities::patient::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some();
    let objected = super::consents::active_objection(db, patient_id)
        .await?
        .is_some();
    Ok(match (exists, objected) {
        (false, _) => Standing::Unknown,
        (true, true) => Standing::Objected,
        (true, false) => Standing::Open,
    })
}

/// A patient's standing for emergency access ([`standing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Unknown,
    Objected,
    Open,
}

/// Opens emergency access for the member, unless the patient has objected.
/// The patient's care-team organisations get a notification.
pub async fn open(
    db: &DatabaseConnection,
    policy: &Policy,
    opener: EmergencyOpener,
    stamp: &AuditStamp,
    bus: &EventBus,
    patient_id: Uuid,
    reason: EmergencyReason,
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
        reason: Set(reason.describe()),
        reason_code: Set(reason.code().map(|c| c.as_str().to_string())),
        opened_at: Set(now),
        expires_at: Set(now + policy.emergency_duration),
    })
    .exec_with_returning(&txn)
    .await?;
    let team =
        super::admission_discharge::team_organizations(&txn, patient_id, policy.clock.today())
            .await?;
    let drafts = team
        .into_iter()
        .filter(|org| *org != opener.organization_id)
        .map(|org| NewNotification {
            organization_id: org,
            member_id: None,
            patient_id: Some(patient_id),
            kind: NotificationKind::BreakTheGlass,
            subject_id: Some(grant.id),
            // No reason and no name here: the reason may be clinical, and
            // notifications are read outside the patient policy. The care
            // team reads who and why in the patient's access history.
            message: format!(
                "Emergency access was opened on a patient of your care team, until {}; see the patient's access history",
                grant.expires_at.to_rfc3339(),
            ),
        })
        .collect();
    let mut events = notifications::create(&txn, now, drafts).await?;
    let entry = stamp.entry(
        patient_id,
        AuditAction::BreakTheGlass,
        opener.categories,
        Some(reason.audit_detail()),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    events.push(HubEvent::Patient(PatientEvent {
        patient_id,
        kind: PatientEventKind::EmergencyAccessOpened,
        subject_id: grant.id,
        // Who opened emergency access is the patient's access history, not
        // emergency information: other break-the-glass readers do not learn it.
        category: DataCategory::AccessHistory,
        organization_id: opener.organization_id,
        occurred_at: now,
        record_version: None,
    }));
    bus.publish_all(events);
    Ok(grant)
}
