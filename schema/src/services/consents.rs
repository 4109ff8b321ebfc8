//! Consents (同意) and objections to emergency access. History is kept:
//! nothing is deleted; a consent ends with a status (superseded, withdrawn,
//! rejected) and the time it ended.
//!
//! Whether a new consent takes effect at once or waits, pending, for the
//! coordination centre is the policy's decision ([`Policy::consent_change`],
//! `policy/consents.rs`); this module applies it. Changes to one patient's
//! consent are serialised by the patient row's lock ([`super::lock_patient`]),
//! so each is decided on what the previous one committed.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::notifications::{self, NewNotification, NotificationKind};
use crate::audit::{AuditAction, AuditStamp};
use crate::domain::{
    ConsentForm, ConsentMethod, ConsentScope, ConsentStatus, DataCategory, OrganizationKind,
    Signer, Text,
};
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, HubEvent};
use crate::policy::{ConsentAuthority, ConsentHistory, ConsentTerms, PatientAccess, Policy};
use crate::principal::Principal;
use entities::{consent, emergency_grant, emergency_objection, organization};

#[derive(Debug)]
pub struct NewConsent {
    pub scope: ConsentScope,
    /// Excluded organisations (network scope) or covered ones (organisation scope).
    pub organization_ids: Vec<Uuid>,
    pub excluded_categories: Vec<DataCategory>,
    pub method: ConsentMethod,
    /// The signed form (同意書) the consent is recorded from.
    pub form: ConsentForm,
    /// Only as the patient's first consent: `CONFLICT` when one was ever
    /// recorded (`RecordConsentInput.onlyIfFirst`).
    pub only_if_first: bool,
}

/// The input path of the form, for errors found past the edge.
const FORM_FIELD: &str = "input.form";

/// Why a consent ended, as the history shows it.
const SUPERSEDED_REASON: &str = "superseded by a new consent";
const PENDING_SUPERSEDED_REASON: &str =
    "superseded by a later consent before the coordination centre decided on it";
const PENDING_VOIDED_REASON: &str = "voided: the patient withdrew consent";
const REJECTED_REASON: &str = "rejected by the coordination centre";

fn member_of(principal: &Principal) -> Option<Uuid> {
    match principal {
        Principal::Member { member_id, .. } => Some(*member_id),
        Principal::System { .. } => None,
    }
}

/// The patient's consent in force and pending one, read under the patient's
/// lock, and whether any consent was ever recorded.
struct Current {
    in_force: Option<consent::Model>,
    pending: Option<consent::Model>,
    any_recorded: bool,
}

async fn current(conn: &impl ConnectionTrait, patient_id: Uuid) -> ApiResult<Current> {
    let open = consent::Entity::find()
        .filter(consent::Column::PatientId.eq(patient_id))
        .filter(consent::Column::Status.is_in([
            ConsentStatus::InForce.as_str(),
            ConsentStatus::Pending.as_str(),
        ]))
        .all(conn)
        .await?;
    let any_recorded = !open.is_empty()
        || consent::Entity::find()
            .select_only()
            .column(consent::Column::Id)
            .filter(consent::Column::PatientId.eq(patient_id))
            .into_tuple::<Uuid>()
            .one(conn)
            .await?
            .is_some();
    let (mut in_force, mut pending) = (None, None);
    for c in open {
        if c.status == ConsentStatus::InForce.as_str() {
            in_force = Some(c);
        } else {
            pending = Some(c);
        }
    }
    Ok(Current {
        in_force,
        pending,
        any_recorded,
    })
}

/// Ends a consent in force or pending: `status` from now, with the reason.
async fn end(
    conn: &impl ConnectionTrait,
    row: consent::Model,
    status: ConsentStatus,
    by_member: Option<Uuid>,
    reason: String,
    now: DateTime<Utc>,
) -> ApiResult<consent::Model> {
    let mut a: consent::ActiveModel = row.into();
    a.status = Set(status.as_str().to_string());
    a.withdrawn_at = Set(Some(now));
    a.withdrawn_by_member = Set(by_member);
    a.withdrawal_reason = Set(Some(reason));
    Ok(a.update(conn).await?)
}

/// Notifications about a consent (or an objection to emergency access) of
/// `patient_id`, `subject_id`, for the organisations of its care team but
/// `actor`. No clinical text, no name: the care team reads the consent
/// itself under the policy.
async fn tell_team(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    actor: Uuid,
    kind: NotificationKind,
    subject_id: Uuid,
    message: &str,
    today: NaiveDate,
) -> ApiResult<Vec<NewNotification>> {
    Ok(
        super::admission_discharge::team_organizations(conn, patient_id, today)
            .await?
            .into_iter()
            .filter(|org| *org != actor)
            .map(|org| NewNotification {
                organization_id: org,
                member_id: None,
                patient_id: Some(patient_id),
                kind,
                subject_id: Some(subject_id),
                message: message.to_string(),
            })
            .collect(),
    )
}

/// Notifications for the coordination centre's organisations (but `actor`)
/// that a consent awaits their decision. They name no patient: the centre is
/// not on the care team, and reads the consent through `pendingConsents`.
async fn tell_centre(
    conn: &impl ConnectionTrait,
    actor: Uuid,
    consent_id: Uuid,
) -> ApiResult<Vec<NewNotification>> {
    Ok(organization::Entity::find()
        .select_only()
        .column(organization::Column::Id)
        .filter(organization::Column::Kind.eq(OrganizationKind::CoordinationCenter.as_str()))
        .into_tuple::<Uuid>()
        .all(conn)
        .await?
        .into_iter()
        .filter(|org| *org != actor)
        .map(|org| NewNotification {
            organization_id: org,
            member_id: None,
            patient_id: None,
            kind: NotificationKind::ConsentPending,
            subject_id: Some(consent_id),
            message: "A consent widening access awaits your confirmation; see pendingConsents"
                .into(),
        })
        .collect())
}

/// Records a consent. The policy decides whether it takes effect at once
/// (superseding the consent in force) or is stored `PENDING` until the
/// coordination centre confirms it; either way a pending consent recorded
/// earlier is superseded (the patient's latest form counts). A widening
/// notifies the care team. `caller_kind`: the kind of the caller's
/// organisation.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    caller_kind: Option<OrganizationKind>,
    bus: &EventBus,
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
    let patient_id = access.patient_id();
    let terms = ConsentTerms::new(
        new.scope,
        new.organization_ids.iter().copied(),
        new.excluded_categories.iter().copied(),
    );
    let txn = super::begin_patient_write(
        db,
        access,
        principal.organization_id(),
        crate::clock::day_in_japan(now),
    )
    .await?;
    let current = current(&txn, patient_id).await?;
    if new.only_if_first && current.any_recorded {
        return Err(ApiError::conflict_in(
            "input.onlyIfFirst",
            "the patient already has a consent recorded: nothing was recorded",
        ));
    }
    // Only a caller who may read the birth date is told that the form
    // predates it: to anyone else the answer would disclose the date, one
    // request at a time. The patient's *first* consent is checked too:
    // before any consent no one reads IDENTITY, so the registration's own
    // consent — the one that matters most — went unchecked; and whoever
    // records it is on the team and, the moment it is recorded, reads the
    // date anyway (a refusal tells no more than the consent would).
    if access.may_read(DataCategory::Identity) || !current.any_recorded {
        let patient = entities::patient::Entity::find_by_id(patient_id)
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("patient"))?;
        new.form
            .check_signed_after_birth(FORM_FIELD, patient.birth_date)?;
    }
    let in_force_terms = current
        .in_force
        .as_ref()
        .map(ConsentTerms::of)
        .transpose()?;
    let change = policy.consent_change(
        principal,
        caller_kind,
        ConsentHistory {
            any_recorded: current.any_recorded,
            in_force: in_force_terms.as_ref(),
        },
        &terms,
    );
    let status = change.status();
    let member = member_of(principal);
    if let Some(pending) = current.pending {
        end(
            &txn,
            pending,
            ConsentStatus::Superseded,
            member,
            PENDING_SUPERSEDED_REASON.into(),
            now,
        )
        .await?;
    }
    if status == ConsentStatus::InForce
        && let Some(in_force) = current.in_force
    {
        end(
            &txn,
            in_force,
            ConsentStatus::Superseded,
            member,
            SUPERSEDED_REASON.into(),
            now,
        )
        .await?;
    }
    let (signed_by, proxy_name, proxy_relation) = match new.form.signer() {
        Signer::Patient => (new.form.signatory(), None, None),
        Signer::Proxy {
            signatory,
            name,
            relation,
        } => (
            *signatory,
            Some(name.as_str().to_string()),
            Some(relation.as_str().to_string()),
        ),
    };
    let model = consent::ActiveModel {
        id: Set(super::new_id()),
        patient_id: Set(patient_id),
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
        form_reference: Set(Some(new.form.reference().to_string())),
        obtained_on: Set(new.form.signed_on()),
        recorded_by_member: Set(member),
        recorded_by_organization: Set(principal.organization_id()),
        recorded_at: Set(now),
        withdrawn_at: Set(None),
        withdrawn_by_member: Set(None),
        withdrawal_reason: Set(None),
        status: Set(status.as_str().to_string()),
        signed_by: Set(Some(signed_by.as_str().to_string())),
        proxy_name: Set(proxy_name),
        proxy_relation: Set(proxy_relation),
        reviewed_at: Set(None),
        reviewed_by_member: Set(None),
        reviewed_by_organization: Set(None),
    };
    let inserted = consent::Entity::insert(model)
        .exec_with_returning(&txn)
        .await
        .map_err(|e| {
            super::conflict_on_unique(e, || {
                "the patient's consent was changed at the same moment; reload and try again".into()
            })
        })?;
    let mut drafts = Vec::new();
    if change.widens() {
        let today = policy.clock.today();
        let actor = principal.organization_id();
        if status == ConsentStatus::Pending {
            drafts = tell_team(
                &txn,
                patient_id,
                actor,
                NotificationKind::ConsentPending,
                inserted.id,
                "A consent widening access to a patient of your care team was recorded; it awaits the coordination centre's confirmation",
                today,
            )
            .await?;
            drafts.extend(tell_centre(&txn, actor, inserted.id).await?);
        } else {
            drafts = tell_team(
                &txn,
                patient_id,
                actor,
                NotificationKind::ConsentWidened,
                inserted.id,
                "A consent widening access to a patient of your care team took effect; see the patient's consents",
                today,
            )
            .await?;
        }
    }
    let mut events = notifications::create(&txn, now, drafts).await?;
    let entry = stamp.entry(
        patient_id,
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some(format!(
            "consent {} recorded ({}, form {:?}): {}",
            inserted.id,
            new.scope,
            new.form.reference(),
            change.describe()
        )),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    events.push(HubEvent::AccessChanged { patient_id });
    bus.publish_all(events);
    Ok(inserted)
}

/// Withdraws the consent in force and voids a pending one (the patient's
/// latest word). It takes effect for the very next request: the policy
/// reads consents on every request. Returns the consent withdrawn, or the
/// pending one voided when none was in force.
pub async fn withdraw(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    reason: Option<Text>,
    now: DateTime<Utc>,
) -> ApiResult<consent::Model> {
    access.require_write(DataCategory::Consent)?;
    let patient_id = access.patient_id();
    let txn = super::begin_patient_write(
        db,
        access,
        stamp.principal.organization_id(),
        crate::clock::day_in_japan(now),
    )
    .await?;
    let current = current(&txn, patient_id).await?;
    if current.in_force.is_none() && current.pending.is_none() {
        return Err(ApiError::Conflict(
            "the patient has no consent in force or pending to withdraw".into(),
        ));
    }
    let member = member_of(&stamp.principal);
    let voided = match current.pending {
        Some(p) => Some(
            end(
                &txn,
                p,
                ConsentStatus::Withdrawn,
                member,
                PENDING_VOIDED_REASON.into(),
                now,
            )
            .await?,
        ),
        None => None,
    };
    let withdrawn = match current.in_force {
        Some(c) => Some(
            end(
                &txn,
                c,
                ConsentStatus::Withdrawn,
                member,
                reason
                    .map(Text::into_inner)
                    .unwrap_or_else(|| "withdrawn by the patient".into()),
                now,
            )
            .await?,
        ),
        None => None,
    };
    let detail = match (&withdrawn, &voided) {
        (Some(w), Some(v)) => format!(
            "consent {} withdrawn; pending consent {} voided",
            w.id, v.id
        ),
        (Some(w), None) => format!("consent {} withdrawn", w.id),
        (None, Some(v)) => format!("pending consent {} voided by a withdrawal", v.id),
        (None, None) => return Err(ApiError::internal("a withdrawal ended no consent")),
    };
    let entry = stamp.entry(
        patient_id,
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some(detail),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    bus.publish(HubEvent::AccessChanged { patient_id });
    withdrawn
        .or(voided)
        .ok_or_else(|| ApiError::internal("a withdrawal ended no consent"))
}

/// The consent `consent_id`, under the patient's lock, if it is pending:
/// `NOT_FOUND` when there is no such consent (the answer names no patient),
/// `CONFLICT` when it is no longer pending (confirmed, rejected, superseded
/// by a later consent, voided by a withdrawal).
async fn pending_for_review(
    txn: &impl ConnectionTrait,
    consent_id: Uuid,
    verb: &str,
) -> ApiResult<consent::Model> {
    let patient_id = consent::Entity::find_by_id(consent_id)
        .select_only()
        .column(consent::Column::PatientId)
        .into_tuple::<Uuid>()
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("consent"))?;
    super::lock_patient(txn, patient_id).await?;
    // Read again under the lock: a change committed meanwhile counts.
    let row = consent::Entity::find_by_id(consent_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("consent"))?;
    if row.status != ConsentStatus::Pending.as_str() {
        return Err(ApiError::Conflict(format!(
            "only a pending consent can be {verb}; this one is {}",
            row.status
        )));
    }
    Ok(row)
}

fn reviewed(row: consent::Model, stamp: &AuditStamp, now: DateTime<Utc>) -> consent::ActiveModel {
    let mut a: consent::ActiveModel = row.into();
    a.reviewed_at = Set(Some(now));
    a.reviewed_by_member = Set(member_of(&stamp.principal));
    a.reviewed_by_organization = Set(Some(stamp.principal.organization_id()));
    a
}

/// The coordination centre confirms a pending consent: it takes effect,
/// superseding the consent then in force, and the care team is told.
pub async fn confirm(
    db: &DatabaseConnection,
    _authority: ConsentAuthority,
    stamp: &AuditStamp,
    bus: &EventBus,
    consent_id: Uuid,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> ApiResult<consent::Model> {
    let txn = crate::services::begin_write(db).await?;
    let row = pending_for_review(&txn, consent_id, "confirmed").await?;
    let patient_id = row.patient_id;
    if let Some(in_force) = current(&txn, patient_id).await?.in_force {
        end(
            &txn,
            in_force,
            ConsentStatus::Superseded,
            member_of(&stamp.principal),
            SUPERSEDED_REASON.into(),
            now,
        )
        .await?;
    }
    let mut a = reviewed(row, stamp, now);
    a.status = Set(ConsentStatus::InForce.as_str().to_string());
    let confirmed = a.update(&txn).await?;
    let drafts = tell_team(
        &txn,
        patient_id,
        stamp.principal.organization_id(),
        NotificationKind::ConsentWidened,
        confirmed.id,
        "The coordination centre confirmed a consent widening access to a patient of your care team; it is in force",
        today,
    )
    .await?;
    let mut events = notifications::create(&txn, now, drafts).await?;
    let entry = stamp.entry(
        patient_id,
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some(format!(
            "pending consent {} confirmed by the coordination centre: in force",
            confirmed.id
        )),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    events.push(HubEvent::AccessChanged { patient_id });
    bus.publish_all(events);
    Ok(confirmed)
}

/// The coordination centre rejects a pending consent: it never takes
/// effect; the care team is told.
#[allow(clippy::too_many_arguments)]
pub async fn reject(
    db: &DatabaseConnection,
    _authority: ConsentAuthority,
    stamp: &AuditStamp,
    bus: &EventBus,
    consent_id: Uuid,
    reason: Option<Text>,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> ApiResult<consent::Model> {
    let txn = crate::services::begin_write(db).await?;
    let row = pending_for_review(&txn, consent_id, "rejected").await?;
    let patient_id = row.patient_id;
    let mut a = reviewed(row, stamp, now);
    a.status = Set(ConsentStatus::Rejected.as_str().to_string());
    a.withdrawn_at = Set(Some(now));
    a.withdrawn_by_member = Set(member_of(&stamp.principal));
    a.withdrawal_reason = Set(Some(
        reason
            .map(|r| format!("{REJECTED_REASON}: {}", r.as_str()))
            .unwrap_or_else(|| REJECTED_REASON.into()),
    ));
    let rejected = a.update(&txn).await?;
    let drafts = tell_team(
        &txn,
        patient_id,
        stamp.principal.organization_id(),
        NotificationKind::ConsentRejected,
        rejected.id,
        "The coordination centre rejected a pending consent of a patient of your care team; the consent in force is unchanged",
        today,
    )
    .await?;
    let mut events = notifications::create(&txn, now, drafts).await?;
    let entry = stamp.entry(
        patient_id,
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some(format!(
            "pending consent {} rejected by the coordination centre",
            rejected.id
        )),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    events.push(HubEvent::AccessChanged { patient_id });
    bus.publish_all(events);
    Ok(rejected)
}

/// A pending consent and the consent in force it would replace.
pub struct PendingConsent {
    pub pending: consent::Model,
    pub in_force: Option<consent::Model>,
}

/// Pending consents of every patient, oldest first (the order the centre
/// works through them), at most `limit`. Visibility is the capability's:
/// the centre sees every pending consent, so nothing is filtered after the
/// limit applies.
pub async fn pending(
    db: &DatabaseConnection,
    _authority: ConsentAuthority,
    limit: u64,
) -> ApiResult<Vec<PendingConsent>> {
    let pending = consent::Entity::find()
        .filter(consent::Column::Status.eq(ConsentStatus::Pending.as_str()))
        .order_by_asc(consent::Column::RecordedAt)
        .order_by_asc(consent::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let patients: Vec<Uuid> = pending.iter().map(|c| c.patient_id).collect();
    let mut in_force: std::collections::HashMap<Uuid, consent::Model> = consent::Entity::find()
        .filter(consent::Column::Status.eq(ConsentStatus::InForce.as_str()))
        .filter(crate::services::id_in(
            db.get_database_backend(),
            (consent::Entity, consent::Column::PatientId),
            &patients,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|c| (c.patient_id, c))
        .collect();
    Ok(pending
        .into_iter()
        .map(|p| PendingConsent {
            in_force: in_force.remove(&p.patient_id),
            pending: p,
        })
        .collect())
}

/// The terms of the consent in force of each of `patients` that has one,
/// in one query — for the programme's views over many patients that are
/// not reads through a care relationship (the indicators, the disaster
/// register), which apply the terms themselves.
pub async fn terms_in_force(
    db: &impl sea_orm::ConnectionTrait,
    patients: &[Uuid],
) -> ApiResult<std::collections::HashMap<Uuid, ConsentTerms>> {
    let mut terms = std::collections::HashMap::new();
    for c in consent::Entity::find()
        .filter(crate::services::id_in(
            db.get_database_backend(),
            (consent::Entity, consent::Column::PatientId),
            patients,
        ))
        .filter(consent::Column::Status.eq(ConsentStatus::InForce.as_str()))
        .all(db)
        .await?
    {
        terms.insert(c.patient_id, ConsentTerms::of(&c)?);
    }
    Ok(terms)
}

/// The consent in force, if any.
pub async fn in_force(
    db: &DatabaseConnection,
    access: &PatientAccess,
) -> ApiResult<Option<consent::Model>> {
    Ok(consent::Entity::find()
        .filter(consent::Column::PatientId.eq(access.patient_id()))
        .filter(consent::Column::Status.eq(ConsentStatus::InForce.as_str()))
        .one(db)
        .await?)
}

/// Every consent of the patient, newest first, pending ones included.
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
    let txn = super::begin_patient_write(
        db,
        access,
        principal.organization_id(),
        crate::clock::day_in_japan(now),
    )
    .await?;
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

/// Withdraws the patient's objection to emergency access: a widening, so
/// the policy decides who may ([`Policy::require_may_lift_objection`]), on
/// the consent in force read under the patient's lock.
pub async fn withdraw_objection(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    caller_kind: Option<OrganizationKind>,
    bus: &EventBus,
    now: DateTime<Utc>,
) -> ApiResult<emergency_objection::Model> {
    access.require_write(DataCategory::Consent)?;
    let patient_id = access.patient_id();
    let txn = super::begin_patient_write(
        db,
        access,
        stamp.principal.organization_id(),
        crate::clock::day_in_japan(now),
    )
    .await?;
    let active = active_objection(&txn, access.patient_id())
        .await?
        .ok_or_else(|| {
            ApiError::Conflict("the patient has no objection to emergency access on record".into())
        })?;
    let current = current(&txn, access.patient_id()).await?;
    let in_force_terms = current
        .in_force
        .as_ref()
        .map(ConsentTerms::of)
        .transpose()?;
    let rule = policy.require_may_lift_objection(
        &stamp.principal,
        caller_kind,
        ConsentHistory {
            any_recorded: current.any_recorded,
            in_force: in_force_terms.as_ref(),
        },
    )?;
    let mut a: emergency_objection::ActiveModel = active.into();
    a.withdrawn_at = Set(Some(now));
    let updated = a.update(&txn).await?;
    // Lifting the objection widens access (break-the-glass is open again):
    // like every widening, the care team is told.
    let drafts = tell_team(
        &txn,
        patient_id,
        stamp.principal.organization_id(),
        NotificationKind::EmergencyObjectionWithdrawn,
        updated.id,
        "The patient's objection to emergency access was withdrawn; emergency access is possible again",
        policy.clock.today(),
    )
    .await?;
    let mut events = notifications::create(&txn, now, drafts).await?;
    let entry = stamp.entry(
        patient_id,
        AuditAction::ConsentChange,
        &[DataCategory::Consent],
        Some(format!(
            "objection to emergency access withdrawn ({})",
            rule.describe()
        )),
    );
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    events.push(HubEvent::AccessChanged { patient_id });
    bus.publish_all(events);
    Ok(updated)
}
