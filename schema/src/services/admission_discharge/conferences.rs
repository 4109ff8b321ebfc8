//! 退院前カンファレンス: the discharge conference, where the hospital and the
//! team at home agree on how the patient comes home.
//!
//! An organisation of the care team (usually the hospital) proposes a time,
//! a place and/or an online meeting, and invites organisations of the team
//! (or the whole team). Each invited organisation answers — accept or
//! decline, with a comment — and may change its answer until the conference
//! begins. The organiser may cancel it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::{CATEGORY, author};
use crate::audit::AuditStamp;
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, HubEvent, PatientEventKind};
use crate::policy::{PatientAccess, Policy, RowScope};
use crate::services::notifications::{self, NewNotification, NotificationKind};
use entities::{discharge_conference, discharge_conference_invitation, discharge_notice};

crate::domain::domain_enum! {
    pub enum DischargeConferenceStatus {
        /// Proposed to the invited organisations.
        Proposed = "PROPOSED",
        /// Called off by the organiser.
        Cancelled = "CANCELLED",
    }
}

crate::domain::domain_enum! {
    /// An invited organisation's answer.
    pub enum InvitationResponse {
        /// Not answered yet.
        Pending = "PENDING",
        Accepted = "ACCEPTED",
        Declined = "DECLINED",
    }
}

/// How far ahead a conference may be proposed.
pub const MAX_AHEAD_DAYS: i64 = 180;

/// Whom to invite.
#[derive(Debug)]
pub enum Invitees {
    /// Every organisation on the care team today, but the organiser.
    WholeTeam,
    /// These organisations, each on the care team today.
    Organizations(Vec<Uuid>),
}

/// A validated proposal (text and times checked at the edge).
#[derive(Debug)]
pub struct NewConference {
    pub discharge_notice_id: Option<Uuid>,
    pub starts_at: DateTime<Utc>,
    pub place: Option<String>,
    pub online: bool,
    pub note: Option<String>,
    pub invitees: Invitees,
}

/// A conference with its invitations.
#[derive(Clone, Debug)]
pub struct Conference {
    pub model: discharge_conference::Model,
    pub invitations: Vec<discharge_conference_invitation::Model>,
}

/// Proposes a conference and invites organisations of the care team, which
/// are notified. Needs write access to ADMISSION_DISCHARGE.
pub async fn propose(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    new: NewConference,
) -> ApiResult<Conference> {
    access.require_write(CATEGORY)?;
    let patient_id = access.patient_id();
    let organizer = stamp.principal.organization_id();
    // One reading of the clock: the team invited is the team on the day of
    // the moment the conference is proposed.
    let now = policy.clock.now();
    let today = super::region_date(now);
    if new.starts_at <= now {
        return Err(ApiError::bad_input(
            "input.startsAt",
            format!("{} is not in the future", new.starts_at.to_rfc3339()),
        ));
    }
    if new.starts_at > now + Duration::days(MAX_AHEAD_DAYS) {
        return Err(ApiError::bad_input(
            "input.startsAt",
            format!(
                "{} is more than {MAX_AHEAD_DAYS} days ahead",
                new.starts_at.to_rfc3339()
            ),
        ));
    }
    if let Some(notice_id) = new.discharge_notice_id {
        let found = discharge_notice::Entity::find_by_id(notice_id)
            .one(db)
            .await?
            .is_some_and(|n| n.patient_id == patient_id);
        if !found {
            return Err(ApiError::bad_input(
                "input.dischargeNoticeId",
                "is not a discharge notice about this patient",
            ));
        }
    }
    let team = super::team_organizations(db, patient_id, today).await?;
    let invited: Vec<Uuid> = match new.invitees {
        Invitees::WholeTeam => team.into_iter().filter(|o| *o != organizer).collect(),
        Invitees::Organizations(ids) => {
            let mut out = Vec::new();
            for (i, id) in ids.into_iter().enumerate() {
                if !team.contains(&id) {
                    return Err(ApiError::bad_input(
                        format!("input.invitedOrganizationIds[{i}]"),
                        format!("organisation {id} is not on the patient's care team"),
                    ));
                }
                // The organiser holds the conference; it is not invited to it.
                if id != organizer && !out.contains(&id) {
                    out.push(id);
                }
            }
            out
        }
    };
    if invited.is_empty() {
        return Err(ApiError::bad_input(
            "input.invitedOrganizationIds",
            "invite at least one organisation of the care team other than your own",
        ));
    }
    let (member, api_key) = author(&stamp.principal);
    let id = crate::services::new_id();
    let entry = stamp.write(patient_id, &[CATEGORY]);
    let txn = crate::services::begin_write(db).await?;
    let model = discharge_conference::Entity::insert(discharge_conference::ActiveModel {
        id: Set(id),
        patient_id: Set(patient_id),
        organizer_organization_id: Set(organizer),
        proposed_by_member: Set(member),
        proposed_by_api_key: Set(api_key),
        discharge_notice_id: Set(new.discharge_notice_id),
        starts_at: Set(new.starts_at),
        place: Set(new.place),
        online: Set(new.online),
        note: Set(new.note),
        status: Set(DischargeConferenceStatus::Proposed.as_str().into()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_with_returning(&txn)
    .await?;
    let rows: Vec<_> = invited
        .iter()
        .map(|org| discharge_conference_invitation::ActiveModel {
            conference_id: Set(id),
            organization_id: Set(*org),
            response: Set(InvitationResponse::Pending.as_str().into()),
            responded_by_member: Set(None),
            responded_at: Set(None),
            comment: Set(None),
        })
        .collect();
    discharge_conference_invitation::Entity::insert_many(rows)
        .exec(&txn)
        .await?;
    let drafts = invited
        .iter()
        .map(|org| NewNotification {
            organization_id: *org,
            member_id: None,
            patient_id: Some(patient_id),
            kind: NotificationKind::DischargeConference,
            subject_id: Some(id),
            message: "Your organisation is invited to a discharge conference (退院前カンファレンス) about a patient of your care team; see the patient's discharge conferences and answer".into(),
        })
        .collect();
    let events = notifications::create(&txn, now, drafts).await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let invitations = invitations_of(&txn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    txn.commit().await?;
    publish(bus, events, &model, stamp, now);
    Ok(Conference { model, invitations })
}

fn publish(
    bus: &EventBus,
    events: Vec<HubEvent>,
    conference: &discharge_conference::Model,
    stamp: &AuditStamp,
    now: DateTime<Utc>,
) {
    super::publish(
        bus,
        events,
        PatientEventKind::DischargeConference,
        conference.patient_id,
        conference.id,
        stamp.principal.organization_id(),
        now,
    );
}

fn require_open(conference: &discharge_conference::Model, now: DateTime<Utc>) -> ApiResult<()> {
    if conference.status != DischargeConferenceStatus::Proposed.as_str() {
        return Err(ApiError::Conflict(format!(
            "the discharge conference is {}",
            conference.status
        )));
    }
    if conference.starts_at <= now {
        return Err(ApiError::Conflict(format!(
            "the discharge conference began at {}",
            conference.starts_at.to_rfc3339()
        )));
    }
    Ok(())
}

/// An invited organisation's answer.
#[derive(Debug)]
pub struct Answer {
    pub accept: bool,
    pub comment: Option<String>,
}

/// An invited organisation answers (or changes its answer) until the
/// conference begins; the organiser is notified.
pub async fn answer(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    conference: discharge_conference::Model,
    answer: Answer,
) -> ApiResult<Conference> {
    let org = stamp.principal.organization_id();
    let invitation = discharge_conference_invitation::Entity::find_by_id((conference.id, org))
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::Forbidden(
                "your organisation is not invited to this discharge conference".into(),
            )
        })?;
    // A pharmacy or a care-service provider answers too: see the policy.
    access.require_answer(CATEGORY)?;
    let now = policy.clock.now();
    require_open(&conference, now)?;
    let response = if answer.accept {
        InvitationResponse::Accepted
    } else {
        InvitationResponse::Declined
    };
    let (member, _) = author(&stamp.principal);
    let entry = stamp.write(conference.patient_id, &[CATEGORY]);
    let txn = crate::services::begin_write(db).await?;
    // The conference was checked open before the transaction; the update is
    // guarded again so that an answer racing a cancellation (or the start)
    // is refused instead of recorded on a conference that is off.
    let still_open = discharge_conference::Entity::find()
        .select_only()
        .column(discharge_conference::Column::Id)
        .filter(discharge_conference::Column::Id.eq(conference.id))
        .filter(
            discharge_conference::Column::Status.eq(DischargeConferenceStatus::Proposed.as_str()),
        )
        .filter(discharge_conference::Column::StartsAt.gt(now))
        .into_query();
    let result = discharge_conference_invitation::Entity::update_many()
        .set(discharge_conference_invitation::ActiveModel {
            response: Set(response.as_str().into()),
            responded_by_member: Set(member),
            responded_at: Set(Some(now)),
            comment: Set(answer.comment),
            ..Default::default()
        })
        .filter(discharge_conference_invitation::Column::ConferenceId.in_subquery(still_open))
        .filter(
            discharge_conference_invitation::Column::OrganizationId.eq(invitation.organization_id),
        )
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::Conflict(
            "the discharge conference was cancelled or began at the same moment".into(),
        ));
    }
    let events = notifications::create(
        &txn,
        now,
        vec![NewNotification {
            organization_id: conference.organizer_organization_id,
            member_id: None,
            patient_id: Some(conference.patient_id),
            kind: NotificationKind::DischargeConference,
            subject_id: Some(conference.id),
            message: "An invited organisation answered your discharge conference (退院前カンファレンス) invitation; see the conference's invitations".into(),
        }],
    )
    .await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let invitations = invitations_of(&txn, &[conference.id])
        .await?
        .remove(&conference.id)
        .unwrap_or_default();
    txn.commit().await?;
    publish(bus, events, &conference, stamp, now);
    Ok(Conference {
        model: conference,
        invitations,
    })
}

/// The organiser calls the conference off; the invited are notified.
pub async fn cancel(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    conference: discharge_conference::Model,
) -> ApiResult<Conference> {
    if conference.organizer_organization_id != stamp.principal.organization_id() {
        return Err(ApiError::Forbidden(
            "only the organisation that proposed the discharge conference may cancel it".into(),
        ));
    }
    access.require_write(CATEGORY)?;
    let now = policy.clock.now();
    require_open(&conference, now)?;
    let entry = stamp.write(conference.patient_id, &[CATEGORY]);
    let txn = crate::services::begin_write(db).await?;
    let result = discharge_conference::Entity::update_many()
        .set(discharge_conference::ActiveModel {
            status: Set(DischargeConferenceStatus::Cancelled.as_str().into()),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(discharge_conference::Column::Id.eq(conference.id))
        .filter(
            discharge_conference::Column::Status.eq(DischargeConferenceStatus::Proposed.as_str()),
        )
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::Conflict(
            "the discharge conference was cancelled at the same moment".into(),
        ));
    }
    let invitations = invitations_of(&txn, &[conference.id])
        .await?
        .remove(&conference.id)
        .unwrap_or_default();
    let drafts = invitations
        .iter()
        .map(|i| NewNotification {
            organization_id: i.organization_id,
            member_id: None,
            patient_id: Some(conference.patient_id),
            kind: NotificationKind::DischargeConference,
            subject_id: Some(conference.id),
            message:
                "A discharge conference (退院前カンファレンス) you were invited to was cancelled"
                    .into(),
        })
        .collect();
    let events = notifications::create(&txn, now, drafts).await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let model = discharge_conference::Entity::find_by_id(conference.id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("a discharge conference vanished"))?;
    txn.commit().await?;
    publish(bus, events, &model, stamp, now);
    Ok(Conference { model, invitations })
}

pub async fn find(
    db: &DatabaseConnection,
    id: Uuid,
) -> ApiResult<Option<discharge_conference::Model>> {
    Ok(discharge_conference::Entity::find_by_id(id).one(db).await?)
}

/// The invitations of many conferences, in one query.
pub async fn invitations_of(
    db: &impl sea_orm::ConnectionTrait,
    conference_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<discharge_conference_invitation::Model>>> {
    let mut map: HashMap<Uuid, Vec<_>> = HashMap::new();
    if conference_ids.is_empty() {
        return Ok(map);
    }
    for row in discharge_conference_invitation::Entity::find()
        .filter(crate::services::id_in(
            db.get_database_backend(),
            (
                discharge_conference_invitation::Entity,
                discharge_conference_invitation::Column::ConferenceId,
            ),
            conference_ids,
        ))
        .order_by_asc(discharge_conference_invitation::Column::OrganizationId)
        .all(db)
        .await?
    {
        map.entry(row.conference_id).or_default().push(row);
    }
    Ok(map)
}

async fn with_invitations(
    db: &DatabaseConnection,
    rows: Vec<discharge_conference::Model>,
) -> ApiResult<Vec<Conference>> {
    let ids: Vec<Uuid> = rows.iter().map(|c| c.id).collect();
    let mut invitations = invitations_of(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|model| Conference {
            invitations: invitations.remove(&model.id).unwrap_or_default(),
            model,
        })
        .collect())
}

/// A patient's conferences, newest first, with their invitations: two queries.
pub async fn of_patient(db: &DatabaseConnection, patient_id: Uuid) -> ApiResult<Vec<Conference>> {
    let rows = discharge_conference::Entity::find()
        .filter(discharge_conference::Column::PatientId.eq(patient_id))
        .order_by_desc(discharge_conference::Column::Id)
        .all(db)
        .await?;
    with_invitations(db, rows).await
}

/// The conferences the caller's organisation is invited to, about patients
/// it is on the care team of today and whose ADMISSION_DISCHARGE the caller
/// may read (`scope`, decided in the query: a page and its `hasNextPage`
/// count only those), newest first, optionally only with these answers and
/// only those still ahead: a page of `first` after `after`, and whether
/// more follow.
pub async fn invited(
    db: &DatabaseConnection,
    scope: &RowScope,
    responses: &[InvitationResponse],
    upcoming_after: Option<DateTime<Utc>>,
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<Conference>, bool)> {
    let organization_id = scope.organization_id();
    let mut mine = discharge_conference_invitation::Entity::find()
        .select_only()
        .column(discharge_conference_invitation::Column::ConferenceId)
        .filter(discharge_conference_invitation::Column::OrganizationId.eq(organization_id));
    if !responses.is_empty() {
        mine = mine.filter(
            discharge_conference_invitation::Column::Response
                .is_in(responses.iter().map(|r| r.as_str())),
        );
    }
    let mut q = discharge_conference::Entity::find()
        .filter(discharge_conference::Column::Id.in_subquery(mine.into_query()))
        .filter(
            discharge_conference::Column::PatientId
                .in_subquery(super::team_patients(organization_id, scope.today())),
        )
        .filter(scope.on((
            discharge_conference::Entity,
            discharge_conference::Column::PatientId,
        )))
        .order_by_desc(discharge_conference::Column::Id);
    if let Some(now) = upcoming_after {
        q = q
            .filter(discharge_conference::Column::StartsAt.gt(now))
            .filter(
                discharge_conference::Column::Status
                    .eq(DischargeConferenceStatus::Proposed.as_str()),
            );
    }
    if let Some(a) = after {
        q = q.filter(discharge_conference::Column::Id.lt(a));
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((with_invitations(db, rows).await?, more))
}
