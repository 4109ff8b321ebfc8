//! Care conferences in GraphQL: the discharge conference (退院前カンファレンス)
//! and the team's other conferences, one object type for every kind, each
//! shown only where the caller may read its kind's category.

use async_graphql::{Context, ID, Object, Result, SimpleObject, connection::Edge};
use chrono::{DateTime, Utc};

use super::{Page, cursor, id, member, page_args, readable_in};
use crate::graphql::types::{Member, Organization, Patient, load_organization};
use crate::graphql::{Date, ctx_db, ctx_policy, ctx_request, gate, load_patient};
use crate::policy::PatientAccess;
use crate::services::admission_discharge::conferences::{
    self, Conference, ConferenceKind, ConferenceStatus, InvitationResponse,
};
use entities::discharge_conference_invitation;

/// A care conference: a discharge conference (退院前カンファレンス), a
/// care-plan meeting (サービス担当者会議), a case conference or an
/// end-of-life conference (`kind`), governed by its kind's category. The
/// second field: the caller's access to the patient, which decides whether
/// it may see whom the conference invited (`graphql::team_entries`).
pub struct CareConference(pub(crate) Conference, pub(crate) PatientAccess);

impl CareConference {
    /// The conference, with the access it was reached through.
    pub(crate) fn new(conference: Conference, access: &PatientAccess) -> Self {
        CareConference(conference, access.clone())
    }
}

#[Object]
impl CareConference {
    async fn id(&self) -> ID {
        id(self.0.model.id)
    }
    /// What the conference is for; it decides the category it is governed
    /// by: DISCHARGE → ADMISSION_DISCHARGE, SERVICE_MEETING → CARE_PLAN,
    /// CASE_CONFERENCE → LIAISON_MESSAGES, END_OF_LIFE → ADVANCE_CARE_PLANNING.
    async fn kind(&self) -> Result<ConferenceKind> {
        Ok(ConferenceKind::of(&self.0.model)?)
    }
    async fn patient_id(&self) -> ID {
        id(self.0.model.patient_id)
    }
    /// The patient, under the policy.
    async fn patient(&self, ctx: &Context<'_>) -> Result<Option<Patient>> {
        Ok(load_patient(ctx, self.0.model.patient_id).await?)
    }
    /// The organisation that proposed and holds it.
    async fn organizer(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.model.organizer_organization_id).await
    }
    async fn proposed_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.0.model.proposed_by_member).await
    }
    /// The discharge notice it prepares, if linked (discharge conferences).
    async fn discharge_notice_id(&self) -> Option<ID> {
        self.0.model.discharge_notice_id.map(id)
    }
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.model.starts_at
    }
    /// Where it is held, if in person.
    async fn place(&self) -> Option<&str> {
        self.0.model.place.as_deref()
    }
    /// Whether one can join online.
    async fn online(&self) -> bool {
        self.0.model.online
    }
    /// 議題: what is to be discussed.
    async fn agenda(&self) -> Option<&str> {
        self.0.model.agenda.as_deref()
    }
    async fn note(&self) -> Option<&str> {
        self.0.model.note.as_deref()
    }
    async fn status(&self) -> Result<ConferenceStatus> {
        Ok(ConferenceStatus::from_db(&self.0.model.status)?)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.model.created_at
    }
    /// Every invited organisation with its answer (and, once held, whether
    /// it attended) — for a reader of the patient's CARE_TEAM: whom a
    /// conference of the whole team invited is who is on the team. Others
    /// see their own organisation's invitation only.
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<ConferenceInvitation>> {
        Ok(
            super::super::team_entries(ctx, &self.1, self.0.invitations.iter().cloned(), |i| {
                i.organization_id
            })?
            .into_iter()
            .map(ConferenceInvitation)
            .collect(),
        )
    }
    /// Your organisation's invitation, if it is invited.
    async fn my_invitation(&self, ctx: &Context<'_>) -> Result<Option<ConferenceInvitation>> {
        let org = ctx_request(ctx)?.principal.organization_id();
        Ok(self
            .0
            .invitations
            .iter()
            .find(|i| i.organization_id == org)
            .cloned()
            .map(ConferenceInvitation))
    }
    /// The minutes, once the organiser recorded them (status `HELD`).
    async fn minutes(&self) -> Option<ConferenceMinutes> {
        let m = &self.0.model;
        let recorded_at = m.minutes_recorded_at?;
        Some(ConferenceMinutes {
            discussion: m.minutes_discussion.clone().unwrap_or_default(),
            decisions: m.minutes_decisions.clone().unwrap_or_default(),
            open_issues: m.minutes_open_issues.clone(),
            other_attendees: m.minutes_other_attendees.clone(),
            next_meeting_on: m.next_meeting_on.map(Date),
            recorded_at,
            recorded_by_member: m.minutes_recorded_by_member,
        })
    }
}

/// The minutes of a held conference: the points of the 居宅サービス計画 第4表
/// (サービス担当者会議の要点), for every kind. Who of the invited attended is
/// on each invitation (`attended`).
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ConferenceMinutes {
    /// 検討内容: what was discussed.
    pub discussion: String,
    /// 結論: what was agreed.
    pub decisions: String,
    /// 残された課題: what remains open.
    pub open_issues: Option<String>,
    /// Others present: the patient, the family (本人、長女).
    pub other_attendees: Option<String>,
    /// 次回の開催時期.
    pub next_meeting_on: Option<Date>,
    pub recorded_at: DateTime<Utc>,
    #[graphql(skip)]
    pub recorded_by_member: Option<uuid::Uuid>,
}

#[async_graphql::ComplexObject]
impl ConferenceMinutes {
    /// The member who recorded them (last).
    async fn recorded_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.recorded_by_member).await
    }
}

/// One invited organisation of a care conference and its answer.
pub struct ConferenceInvitation(discharge_conference_invitation::Model);

#[Object]
impl ConferenceInvitation {
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    async fn response(&self) -> Result<InvitationResponse> {
        Ok(InvitationResponse::from_db(&self.0.response)?)
    }
    /// The member who answered.
    async fn responded_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        member(ctx, self.0.responded_by_member).await
    }
    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.0.responded_at
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// Whether the organisation attended, once the minutes are recorded.
    async fn attended(&self) -> Option<bool> {
        self.0.attended
    }
}

/// `Patient.careConferences` (and `Patient.dischargeConferences`, which is
/// `kinds: [DISCHARGE]`), newest first. Kinds named in `kinds` must all be
/// readable, or the field is null with `FORBIDDEN_FIELD`; without `kinds`,
/// every kind whose category the caller may read.
pub(crate) async fn patient_conferences(
    ctx: &Context<'_>,
    access: &PatientAccess,
    kinds: Option<Vec<ConferenceKind>>,
) -> Result<Option<Vec<CareConference>>> {
    let kinds = match kinds {
        Some(named) => {
            let mut readable = Vec::new();
            for kind in named {
                if gate(ctx, access, kind.category())?.is_none() {
                    return Ok(None);
                }
                if !readable.contains(&kind) {
                    readable.push(kind);
                }
            }
            readable
        }
        None => {
            let readable: Vec<ConferenceKind> = ConferenceKind::ALL
                .iter()
                .copied()
                .filter(|k| access.may_read(k.category()))
                .collect();
            for kind in &readable {
                gate(ctx, access, kind.category())?;
            }
            readable
        }
    };
    let rows = conferences::of_patient(ctx_db(ctx), access.patient_id(), &kinds).await?;
    Ok(Some(
        rows.into_iter()
            .map(|c| CareConference::new(c, access))
            .collect(),
    ))
}

/// `Query.careConferenceInvitations` (and `dischargeConferenceInvitations`,
/// `kinds: [DISCHARGE]`): every kind asked for whose category the caller's
/// role may read, decided in the query before it pages.
pub(crate) async fn conference_invitations(
    ctx: &Context<'_>,
    kinds: Vec<ConferenceKind>,
    response: Vec<InvitationResponse>,
    upcoming_only: bool,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Page<CareConference>> {
    let (first, after) = page_args(first, after)?;
    let principal = &ctx_request(ctx)?.principal;
    let policy = ctx_policy(ctx);
    let kinds = if kinds.is_empty() {
        ConferenceKind::ALL.to_vec()
    } else {
        kinds
    };
    let mut scopes = Vec::new();
    for kind in kinds {
        if scopes.iter().any(|(k, _)| *k == kind) {
            continue;
        }
        if let Some(scope) = policy.readable_rows(principal, kind.category()) {
            scopes.push((kind, scope));
        }
    }
    if scopes.is_empty() {
        return Ok(Page::new(after.is_some(), false));
    }
    let (rows, more) = conferences::invited(
        ctx_db(ctx),
        &scopes,
        &response,
        upcoming_only.then(|| policy.clock.now()),
        after,
        first,
    )
    .await?;
    let kinds_of: Vec<(uuid::Uuid, ConferenceKind)> = rows
        .iter()
        .map(|c| Ok((c.model.patient_id, ConferenceKind::of(&c.model)?)))
        .collect::<crate::error::ApiResult<_>>()?;
    let access = readable_in(
        ctx,
        kinds_of.iter().map(|(p, k)| (*p, k.category())).collect(),
    )
    .await?;
    let mut page = Page::new(after.is_some(), more);
    page.edges
        .extend(rows.into_iter().zip(kinds_of).filter_map(|(c, (_, kind))| {
            let a = access
                .get(&c.model.patient_id)
                .filter(|a| a.may_read(kind.category()))?;
            Some(Edge::new(cursor(c.model.id), CareConference::new(c, a)))
        }));
    Ok(page)
}
