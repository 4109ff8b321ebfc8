//! Care conferences: the discharge conference (退院前カンファレンス), where
//! the hospital and the team at home agree on how the patient comes home,
//! and the other meetings of a care team ([`ConferenceKind`]) — the care
//! manager's サービス担当者会議, a case conference, an end-of-life
//! conference.
//!
//! An organisation of the care team proposes a time, a place and/or an
//! online meeting, and invites organisations of the team (or the whole
//! team). Each invited organisation answers — accept or decline, with a
//! comment — and may change its answer until the conference begins. The
//! organiser may cancel it, and once it has begun records its minutes
//! (who attended, what was discussed and decided, what remains), which
//! makes it `HELD`; the minutes may be corrected later. Each kind is
//! governed by its own data category ([`ConferenceKind::category`]):
//! proposing, cancelling and recording minutes need write access to it,
//! answering needs read access.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::author;
use crate::audit::AuditStamp;
use crate::domain::DataCategory;
use crate::error::{ApiError, ApiResult};
use crate::events::{EventBus, HubEvent, PatientEventKind};
use crate::policy::{PatientAccess, Policy, RowScope};
use crate::services::notifications::{self, NewNotification, NotificationKind};
use entities::{discharge_conference, discharge_conference_invitation, discharge_notice};
use sea_orm::Condition;

crate::domain::domain_enum! {
    /// What a care conference is for.
    pub enum ConferenceKind {
        /// 退院前カンファレンス: the hospital and the team at home agree on the
        /// discharge. Governed by ADMISSION_DISCHARGE.
        Discharge = "DISCHARGE",
        /// サービス担当者会議: the care manager gathers the services of the
        /// care plan (and the physician's view) to agree on it, at the plan's
        /// start, its renewal and a change of certification. Governed by
        /// CARE_PLAN, which the care manager writes.
        ServiceMeeting = "SERVICE_MEETING",
        /// 多職種カンファレンス / 地域ケア個別会議: any organisation of the team
        /// calls the team together about a difficulty (a fall, refusal of
        /// care, a family in trouble). Governed by LIAISON_MESSAGES, the
        /// team's own exchange.
        CaseConference = "CASE_CONFERENCE",
        /// 看取りカンファレンス / デスカンファレンス: the team agrees on care at
        /// the end of life, or looks back after a death at home. Governed by
        /// ADVANCE_CARE_PLANNING.
        EndOfLife = "END_OF_LIFE",
    }
}

impl ConferenceKind {
    /// The data category the conference, its invitations and minutes are
    /// governed by.
    pub fn category(self) -> DataCategory {
        match self {
            Self::Discharge => DataCategory::AdmissionDischarge,
            Self::ServiceMeeting => DataCategory::CarePlan,
            Self::CaseConference => DataCategory::LiaisonMessages,
            Self::EndOfLife => DataCategory::AdvanceCarePlanning,
        }
    }

    /// The name used in notifications and refusals.
    pub fn label(self) -> &'static str {
        match self {
            Self::Discharge => "discharge conference (退院前カンファレンス)",
            Self::ServiceMeeting => "care-plan meeting (サービス担当者会議)",
            Self::CaseConference => "case conference (多職種カンファレンス)",
            Self::EndOfLife => "end-of-life conference (看取りカンファレンス)",
        }
    }

    fn notification(self) -> NotificationKind {
        match self {
            Self::Discharge => NotificationKind::DischargeConference,
            Self::ServiceMeeting => NotificationKind::ServiceMeeting,
            Self::CaseConference => NotificationKind::CaseConference,
            Self::EndOfLife => NotificationKind::EndOfLifeConference,
        }
    }

    /// The kind of a stored conference; a row written by a newer version
    /// is an internal error here.
    pub fn of(conference: &discharge_conference::Model) -> ApiResult<Self> {
        Self::from_db(&conference.kind)
    }
}

crate::domain::domain_enum! {
    pub enum ConferenceStatus {
        /// Proposed to the invited organisations.
        Proposed = "PROPOSED",
        /// Called off by the organiser.
        Cancelled = "CANCELLED",
        /// Held: the organiser recorded its minutes.
        Held = "HELD",
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
    pub kind: ConferenceKind,
    /// Only for a discharge conference.
    pub discharge_notice_id: Option<Uuid>,
    /// 議題: what is to be discussed.
    pub agenda: Option<String>,
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
/// are notified. Needs write access to the kind's category.
pub async fn propose(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    new: NewConference,
) -> ApiResult<Conference> {
    let category = new.kind.category();
    access.require_write(category)?;
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
        if new.kind != ConferenceKind::Discharge {
            return Err(ApiError::bad_input(
                "input.dischargeNoticeId",
                "only a discharge conference prepares a discharge notice",
            ));
        }
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
            access.require_naming_team("input.invitedOrganizationIds")?;
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
    let entry = stamp.write(patient_id, &[category]);
    let txn = crate::services::begin_write(db).await?;
    let model = discharge_conference::Entity::insert(discharge_conference::ActiveModel {
        kind: Set(new.kind.as_str().into()),
        agenda: Set(new.agenda),
        minutes_discussion: Set(None),
        minutes_decisions: Set(None),
        minutes_open_issues: Set(None),
        minutes_other_attendees: Set(None),
        next_meeting_on: Set(None),
        minutes_recorded_at: Set(None),
        minutes_recorded_by_member: Set(None),
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
        status: Set(ConferenceStatus::Proposed.as_str().into()),
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
            attended: Set(None),
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
            kind: new.kind.notification(),
            subject_id: Some(id),
            message: format!("Your organisation is invited to a {} about a patient of your care team; see the patient's care conferences and answer", new.kind.label()),
        })
        .collect();
    let events = notifications::create(&txn, now, drafts).await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let invitations = invitations_of(&txn, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    txn.commit().await?;
    publish(bus, events, &model, stamp, now)?;
    Ok(Conference { model, invitations })
}

fn publish(
    bus: &EventBus,
    events: Vec<HubEvent>,
    conference: &discharge_conference::Model,
    stamp: &AuditStamp,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let kind = ConferenceKind::of(conference)?;
    super::publish_in(
        bus,
        events,
        if kind == ConferenceKind::Discharge {
            PatientEventKind::DischargeConference
        } else {
            PatientEventKind::CareConference
        },
        kind.category(),
        conference.patient_id,
        conference.id,
        stamp.principal.organization_id(),
        now,
    );
    Ok(())
}

fn require_open(conference: &discharge_conference::Model, now: DateTime<Utc>) -> ApiResult<()> {
    let kind = ConferenceKind::of(conference)?;
    if conference.status != ConferenceStatus::Proposed.as_str() {
        return Err(ApiError::Conflict(format!(
            "the {} is {}",
            kind.label(),
            conference.status
        )));
    }
    if conference.starts_at <= now {
        return Err(ApiError::Conflict(format!(
            "the {} began at {}",
            kind.label(),
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
    let kind = ConferenceKind::of(&conference)?;
    let category = kind.category();
    let invitation = discharge_conference_invitation::Entity::find_by_id((conference.id, org))
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::Forbidden(format!(
                "your organisation is not invited to this {}",
                kind.label()
            ))
            .about(conference.patient_id, &[category])
        })?;
    // A pharmacy or a care-service provider answers too: see the policy.
    access.require_answer(category)?;
    let now = policy.clock.now();
    require_open(&conference, now)?;
    let response = if answer.accept {
        InvitationResponse::Accepted
    } else {
        InvitationResponse::Declined
    };
    let (member, _) = author(&stamp.principal);
    let entry = stamp.write(conference.patient_id, &[category]);
    let txn = crate::services::begin_write(db).await?;
    // The conference was checked open before the transaction; the update is
    // guarded again so that an answer racing a cancellation (or the start)
    // is refused instead of recorded on a conference that is off.
    let still_open = discharge_conference::Entity::find()
        .select_only()
        .column(discharge_conference::Column::Id)
        .filter(discharge_conference::Column::Id.eq(conference.id))
        .filter(discharge_conference::Column::Status.eq(ConferenceStatus::Proposed.as_str()))
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
        return Err(ApiError::Conflict(format!(
            "the {} was cancelled or began at the same moment",
            kind.label()
        )));
    }
    let events = notifications::create(
        &txn,
        now,
        vec![NewNotification {
            organization_id: conference.organizer_organization_id,
            member_id: None,
            patient_id: Some(conference.patient_id),
            kind: kind.notification(),
            subject_id: Some(conference.id),
            message: format!("An invited organisation answered your {} invitation; see the conference's invitations", kind.label()),
        }],
    )
    .await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let invitations = invitations_of(&txn, &[conference.id])
        .await?
        .remove(&conference.id)
        .unwrap_or_default();
    txn.commit().await?;
    publish(bus, events, &conference, stamp, now)?;
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
    let kind = ConferenceKind::of(&conference)?;
    let category = kind.category();
    if conference.organizer_organization_id != stamp.principal.organization_id() {
        return Err(ApiError::Forbidden(format!(
            "only the organisation that proposed the {} may cancel it",
            kind.label()
        ))
        .about(conference.patient_id, &[category]));
    }
    access.require_write(category)?;
    let now = policy.clock.now();
    require_open(&conference, now)?;
    let entry = stamp.write(conference.patient_id, &[category]);
    let txn = crate::services::begin_write(db).await?;
    let result = discharge_conference::Entity::update_many()
        .set(discharge_conference::ActiveModel {
            status: Set(ConferenceStatus::Cancelled.as_str().into()),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(discharge_conference::Column::Id.eq(conference.id))
        .filter(discharge_conference::Column::Status.eq(ConferenceStatus::Proposed.as_str()))
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::Conflict(format!(
            "the {} was cancelled at the same moment",
            kind.label()
        )));
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
            kind: kind.notification(),
            subject_id: Some(conference.id),
            message: format!("A {} you were invited to was cancelled", kind.label()),
        })
        .collect();
    let events = notifications::create(&txn, now, drafts).await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let model = discharge_conference::Entity::find_by_id(conference.id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("a discharge conference vanished"))?;
    txn.commit().await?;
    publish(bus, events, &model, stamp, now)?;
    Ok(Conference { model, invitations })
}

/// The minutes of a conference (checked at the edge): the points of the
/// 居宅サービス計画 第4表 (サービス担当者会議の要点), used for every kind.
#[derive(Debug)]
pub struct Minutes {
    /// The invited organisations that attended (the organiser is present).
    pub attended: Vec<Uuid>,
    /// Others present: the patient, the family (本人、長女).
    pub other_attendees: Option<String>,
    /// 検討内容: what was discussed.
    pub discussion: String,
    /// 結論: what was agreed.
    pub decisions: String,
    /// 残された課題: what remains open.
    pub open_issues: Option<String>,
    /// 次回の開催時期.
    pub next_meeting_on: Option<chrono::NaiveDate>,
}

/// The organiser records (or corrects) the minutes once the conference has
/// begun; it becomes `HELD` and the invited organisations are notified.
/// Needs write access to the kind's category.
pub async fn record_minutes(
    db: &DatabaseConnection,
    policy: &Policy,
    access: &PatientAccess,
    stamp: &AuditStamp,
    bus: &EventBus,
    conference: discharge_conference::Model,
    minutes: Minutes,
) -> ApiResult<Conference> {
    let kind = ConferenceKind::of(&conference)?;
    let category = kind.category();
    if conference.organizer_organization_id != stamp.principal.organization_id() {
        return Err(ApiError::Forbidden(format!(
            "only the organisation that holds the {} records its minutes",
            kind.label()
        ))
        .about(conference.patient_id, &[category]));
    }
    access.require_write(category)?;
    let now = policy.clock.now();
    if conference.status == ConferenceStatus::Cancelled.as_str() {
        return Err(ApiError::Conflict(format!(
            "the {} was cancelled",
            kind.label()
        )));
    }
    if conference.starts_at > now {
        return Err(ApiError::Conflict(format!(
            "the {} begins at {}: record its minutes once it has been held",
            kind.label(),
            conference.starts_at.to_rfc3339()
        )));
    }
    let held_on = super::region_date(conference.starts_at);
    if let Some(next) = minutes.next_meeting_on
        && next <= held_on
    {
        return Err(ApiError::bad_input(
            "input.nextMeetingOn",
            format!("{next} is not after the conference ({held_on})"),
        ));
    }
    // Which organisations were invited is who is on the team: the refusal
    // of one that was not would tell.
    if !minutes.attended.is_empty() {
        access.require_naming_team("input.attendedOrganizationIds")?;
    }
    let invited = invitations_of(db, &[conference.id])
        .await?
        .remove(&conference.id)
        .unwrap_or_default();
    for (i, org) in minutes.attended.iter().enumerate() {
        if !invited.iter().any(|inv| inv.organization_id == *org) {
            return Err(ApiError::bad_input(
                format!("input.attendedOrganizationIds[{i}]"),
                format!("organisation {org} was not invited to this conference"),
            ));
        }
    }
    let (member, _) = author(&stamp.principal);
    let entry = stamp.write(conference.patient_id, &[category]);
    let txn = crate::services::begin_write(db).await?;
    // Guarded on the status, so that minutes cannot land on a conference
    // cancelled in the meantime.
    let result = discharge_conference::Entity::update_many()
        .set(discharge_conference::ActiveModel {
            status: Set(ConferenceStatus::Held.as_str().into()),
            minutes_discussion: Set(Some(minutes.discussion)),
            minutes_decisions: Set(Some(minutes.decisions)),
            minutes_open_issues: Set(minutes.open_issues),
            minutes_other_attendees: Set(minutes.other_attendees),
            next_meeting_on: Set(minutes.next_meeting_on),
            minutes_recorded_at: Set(Some(now)),
            minutes_recorded_by_member: Set(member),
            updated_at: Set(now),
            ..Default::default()
        })
        .filter(discharge_conference::Column::Id.eq(conference.id))
        .filter(discharge_conference::Column::Status.ne(ConferenceStatus::Cancelled.as_str()))
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::Conflict(format!(
            "the {} was cancelled at the same moment",
            kind.label()
        )));
    }
    for attended in [true, false] {
        let orgs: Vec<Uuid> = invited
            .iter()
            .map(|i| i.organization_id)
            .filter(|o| minutes.attended.contains(o) == attended)
            .collect();
        if orgs.is_empty() {
            continue;
        }
        discharge_conference_invitation::Entity::update_many()
            .set(discharge_conference_invitation::ActiveModel {
                attended: Set(Some(attended)),
                ..Default::default()
            })
            .filter(discharge_conference_invitation::Column::ConferenceId.eq(conference.id))
            .filter(discharge_conference_invitation::Column::OrganizationId.is_in(orgs))
            .exec(&txn)
            .await?;
    }
    let drafts = invited
        .iter()
        .map(|i| NewNotification {
            organization_id: i.organization_id,
            member_id: None,
            patient_id: Some(conference.patient_id),
            kind: kind.notification(),
            subject_id: Some(conference.id),
            message: format!(
                "The minutes of a {} you were invited to were recorded; see the conference",
                kind.label()
            ),
        })
        .collect();
    let events = notifications::create(&txn, now, drafts).await?;
    crate::audit::append_in(&txn, &[&entry], now).await?;
    let model = discharge_conference::Entity::find_by_id(conference.id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("a care conference vanished"))?;
    let invitations = invitations_of(&txn, &[conference.id])
        .await?
        .remove(&conference.id)
        .unwrap_or_default();
    txn.commit().await?;
    publish(bus, events, &model, stamp, now)?;
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

/// A patient's conferences of these kinds, newest first, with their
/// invitations: two queries.
pub async fn of_patient(
    db: &DatabaseConnection,
    patient_id: Uuid,
    kinds: &[ConferenceKind],
) -> ApiResult<Vec<Conference>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let rows = discharge_conference::Entity::find()
        .filter(discharge_conference::Column::PatientId.eq(patient_id))
        .filter(discharge_conference::Column::Kind.is_in(kinds.iter().map(|k| k.as_str())))
        .order_by_desc(discharge_conference::Column::Id)
        .all(db)
        .await?;
    with_invitations(db, rows).await
}

/// The conferences the caller's organisation is invited to, about patients
/// it is on the care team of today, of the kinds in `scopes` and only where
/// the caller may read the kind's category (each kind's scope, decided in
/// the query: a page and its `hasNextPage` count only those), newest first,
/// optionally only with these answers and only those still ahead: a page
/// of `first` after `after`, and whether more follow. `scopes` is not
/// empty.
pub async fn invited(
    db: &DatabaseConnection,
    scopes: &[(ConferenceKind, RowScope)],
    responses: &[InvitationResponse],
    upcoming_after: Option<DateTime<Utc>>,
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<Conference>, bool)> {
    let Some((_, first_scope)) = scopes.first() else {
        return Ok((Vec::new(), false));
    };
    let organization_id = first_scope.organization_id();
    let mut readable = Condition::any();
    for (kind, scope) in scopes {
        readable = readable.add(
            Condition::all()
                .add(discharge_conference::Column::Kind.eq(kind.as_str()))
                .add(scope.on((
                    discharge_conference::Entity,
                    discharge_conference::Column::PatientId,
                ))),
        );
    }
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
                .in_subquery(super::team_patients(organization_id, first_scope.today())),
        )
        .filter(readable)
        .order_by_desc(discharge_conference::Column::Id);
    if let Some(now) = upcoming_after {
        q = q
            .filter(discharge_conference::Column::StartsAt.gt(now))
            .filter(discharge_conference::Column::Status.eq(ConferenceStatus::Proposed.as_str()));
    }
    if let Some(a) = after {
        q = q.filter(discharge_conference::Column::Id.lt(a));
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((with_invitations(db, rows).await?, more))
}
