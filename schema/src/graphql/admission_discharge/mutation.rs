//! The mutations of admission and discharge support. Each: parse the input,
//! obtain the patient's access from the policy, call the service (which asks
//! for write permission, writes, audits and notifies in one transaction and
//! publishes the events after it), wrap the result.

use async_graphql::{Context, ID, Object, Result};
use uuid::Uuid;

use super::inputs::*;
use super::{AdmissionSheet, CATEGORY, CareConference, DischargeNotice};
use crate::error::ApiError;
use crate::graphql::inputs::parse_id;
use crate::graphql::loaders::Loaders;
use crate::graphql::reach::Bound;
use crate::graphql::{
    ctx_db, ctx_events, ctx_policy, ctx_request, ctx_stamp, ctx_trail, patient_access,
};
use crate::policy::PatientAccess;
use crate::services::admission_discharge::conferences::{self, ConferenceKind};
use crate::services::admission_discharge::notices::{self, NoticeChange};
use crate::services::admission_discharge::sheets::{self, NewSheet};
use entities::{admission_sheet, discharge_conference, discharge_notice};

/// A document of a patient — or a category — the caller cannot see does not
/// exist for it: refused exactly like one that does not exist (see
/// [`crate::graphql::reach`]).
fn bound(what: &'static str, id: Uuid, patient_id: Option<Uuid>) -> Bound {
    bound_in(what, id, patient_id, CATEGORY)
}

fn bound_in(
    what: &'static str,
    id: Uuid,
    patient_id: Option<Uuid>,
    category: crate::domain::DataCategory,
) -> Bound {
    Bound {
        what,
        id,
        patient_id,
        category: Some(category),
        hidden_without_category: true,
    }
}

/// A sheet by its id and the caller's access to its patient; every
/// reference to a sheet by its id comes here.
pub(super) async fn sheet(
    ctx: &Context<'_>,
    id: Uuid,
) -> Result<(admission_sheet::Model, PatientAccess), ApiError> {
    let org = ctx_request(ctx)?.principal.organization_id();
    let found = ctx
        .data_unchecked::<Loaders>()
        .admission_sheet
        .load_one(id)
        .await?;
    let document = bound("admission sheet", id, found.as_ref().map(|s| s.patient_id));
    let (sheet, access) = document.reach(ctx, found).await?;
    // A draft is its author's alone.
    if !sheets::visible_to(&sheet, org) {
        return Err(document.refuse(ctx, "a draft of another organisation"));
    }
    Ok((sheet, access))
}

/// A notice by its id and the caller's access to its patient; every
/// reference to a notice by its id comes here.
pub(super) async fn notice(
    ctx: &Context<'_>,
    id: Uuid,
) -> Result<(discharge_notice::Model, PatientAccess), ApiError> {
    let found = ctx
        .data_unchecked::<Loaders>()
        .discharge_notice
        .load_one(id)
        .await?;
    bound("discharge notice", id, found.as_ref().map(|n| n.patient_id))
        .reach(ctx, found)
        .await
}

/// A conference by its id and the caller's access to its patient, under
/// its kind's category: one the caller may not read is refused like one
/// that does not exist. (A conference that does not exist is refused under
/// ADMISSION_DISCHARGE, the category of most.)
async fn conference(
    ctx: &Context<'_>,
    id: Uuid,
) -> Result<(discharge_conference::Model, PatientAccess), ApiError> {
    let found = conferences::find(ctx_db(ctx), id).await?;
    let category = match &found {
        Some(c) => ConferenceKind::of(c)?.category(),
        None => CATEGORY,
    };
    bound_in(
        "care conference",
        id,
        found.as_ref().map(|c| c.patient_id),
        category,
    )
    .reach(ctx, found)
    .await
}

#[derive(Default)]
pub struct AdmissionDischargeMutation;

#[Object]
impl AdmissionDischargeMutation {
    /// Writes an admission information sheet (入院時情報提供書) as a draft for
    /// the admitting hospital, prefilled (unless `prefill: false`) from the
    /// patient's latest care certification, care plan and services, ADL,
    /// family care capacity and home environment — only the categories you
    /// may read; the others are listed in `omittedCategories`. Your `content`
    /// is applied over the prefill. Needs write access to ADMISSION_DISCHARGE.
    async fn create_admission_sheet(
        &self,
        ctx: &Context<'_>,
        input: CreateAdmissionSheetInput,
    ) -> Result<AdmissionSheet> {
        let policy = ctx_policy(ctx);
        let today = policy.clock.today();
        let parsed = input.parse(today)?;
        let access = patient_access(ctx, parsed.patient_id).await?;
        let db = ctx_db(ctx);
        let stamp = ctx_stamp(ctx)?;
        let checked = sheets::check_new(
            db,
            policy,
            &access,
            &stamp,
            NewSheet {
                hospital_id: parsed.hospital_id,
                admitted_on: parsed.admitted_on,
                patch: parsed.patch,
            },
        )
        .await?;
        let prefill = if parsed.prefill {
            let p = sheets::prefill(db, &access, today).await?;
            // The prefill reads the records: recorded like any other read.
            let trail = ctx_trail(ctx)?;
            for category in &p.read {
                trail.read(&access, *category);
            }
            Some(p)
        } else {
            None
        };
        let created = sheets::create(db, policy, &access, &stamp, checked, prefill).await?;
        Ok(AdmissionSheet::new(access, created)?)
    }

    /// Changes a draft admission sheet: only your organisation's own, only
    /// while it is a draft (`CONFLICT` once sent).
    async fn update_admission_sheet(
        &self,
        ctx: &Context<'_>,
        input: UpdateAdmissionSheetInput,
    ) -> Result<AdmissionSheet> {
        let policy = ctx_policy(ctx);
        let (id, change) = input.parse(policy.clock.today())?;
        let (current, access) = sheet(ctx, id).await?;
        let updated = sheets::update(
            ctx_db(ctx),
            policy,
            &access,
            &ctx_stamp(ctx)?,
            current,
            change,
        )
        .await?;
        Ok(AdmissionSheet::new(access, updated)?)
    }

    /// Sends a draft admission sheet to its hospital, which is notified
    /// (`ADMISSION_SHEET_SENT`). The hospital must still be on the care team
    /// and covered by the patient's consent.
    async fn send_admission_sheet(&self, ctx: &Context<'_>, id: ID) -> Result<AdmissionSheet> {
        let (current, access) = sheet(ctx, parse_id("id", &id)?).await?;
        let sent = sheets::send(
            ctx_db(ctx),
            ctx_policy(ctx),
            &access,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            current,
        )
        .await?;
        Ok(AdmissionSheet::new(access, sent)?)
    }

    /// The hospital acknowledges an admission sheet sent to it; the sender's
    /// organisation is notified (`ADMISSION_SHEET_RECEIVED`).
    async fn acknowledge_admission_sheet(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<AdmissionSheet> {
        let (current, access) = sheet(ctx, parse_id("id", &id)?).await?;
        let received = sheets::acknowledge(
            ctx_db(ctx),
            ctx_policy(ctx),
            &access,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            current,
        )
        .await?;
        Ok(AdmissionSheet::new(access, received)?)
    }

    /// Sends a discharge notice (退院連絡) to the care team, every organisation
    /// of which (but yours) is notified (`DISCHARGE_NOTICE`). For hospitals
    /// (and clinics with beds) on the care team with write access to
    /// ADMISSION_DISCHARGE. One open notice per patient and hospital: correct
    /// it rather than send another (`CONFLICT`).
    async fn send_discharge_notice(
        &self,
        ctx: &Context<'_>,
        input: SendDischargeNoticeInput,
    ) -> Result<DischargeNotice> {
        let (patient_id, new) = input.parse()?;
        let access = patient_access(ctx, patient_id).await?;
        let sent = notices::create(
            ctx_db(ctx),
            ctx_policy(ctx),
            &access,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            new,
        )
        .await?;
        Ok(DischargeNotice(sent))
    }

    /// Corrects an open discharge notice (a new planned day, other needs or
    /// criteria): a new version, the earlier one kept in `history`; the time
    /// of the first notice — where the lead time starts — never changes. The
    /// sending hospital only.
    async fn update_discharge_notice(
        &self,
        ctx: &Context<'_>,
        input: UpdateDischargeNoticeInput,
    ) -> Result<DischargeNotice> {
        let (id, correction) = input.parse()?;
        let (current, access) = notice(ctx, id).await?;
        change(ctx, current, access, NoticeChange::Correct(correction)).await
    }

    /// Records the day the patient was discharged: the lead time is measured
    /// to it from then on. The sending hospital only.
    async fn record_discharge(
        &self,
        ctx: &Context<'_>,
        input: RecordDischargeInput,
    ) -> Result<DischargeNotice> {
        let id = parse_id("input.noticeId", &input.notice_id)?;
        let (current, access) = notice(ctx, id).await?;
        change(
            ctx,
            current,
            access,
            NoticeChange::Discharged(input.discharged_on.0),
        )
        .await
    }

    /// Withdraws an open discharge notice (the discharge will not happen as
    /// notified); it no longer counts in the lead-time report. The sending
    /// hospital only.
    async fn cancel_discharge_notice(&self, ctx: &Context<'_>, id: ID) -> Result<DischargeNotice> {
        let (current, access) = notice(ctx, parse_id("id", &id)?).await?;
        change(ctx, current, access, NoticeChange::Cancel).await
    }

    /// Proposes a discharge conference (退院前カンファレンス) and invites
    /// organisations of the care team (or the whole team), which are notified
    /// (`DISCHARGE_CONFERENCE`). Needs write access to ADMISSION_DISCHARGE:
    /// `proposeCareConference` with `kind: DISCHARGE`.
    async fn propose_discharge_conference(
        &self,
        ctx: &Context<'_>,
        input: ProposeDischargeConferenceInput,
    ) -> Result<CareConference> {
        propose(ctx, input.parse()?).await
    }

    /// Proposes a care conference of any kind — a care-plan meeting
    /// (サービス担当者会議), a case conference, an end-of-life conference, a
    /// discharge conference — and invites organisations of the care team,
    /// which are notified. Needs write access to the kind's category
    /// (`CareConference.kind`).
    async fn propose_care_conference(
        &self,
        ctx: &Context<'_>,
        input: ProposeCareConferenceInput,
    ) -> Result<CareConference> {
        propose(ctx, input.parse()?).await
    }

    /// Accepts or declines your organisation's invitation (again, to change
    /// the answer) until the conference begins; the organiser is notified.
    /// Any kind of conference.
    async fn answer_discharge_conference(
        &self,
        ctx: &Context<'_>,
        input: AnswerDischargeConferenceInput,
    ) -> Result<CareConference> {
        answer(ctx, input).await
    }

    /// Accepts or declines your organisation's invitation to a care
    /// conference (again, to change the answer) until it begins; the
    /// organiser is notified. Needs read access to the kind's category.
    async fn answer_care_conference(
        &self,
        ctx: &Context<'_>,
        input: AnswerDischargeConferenceInput,
    ) -> Result<CareConference> {
        answer(ctx, input).await
    }

    /// Calls a proposed conference off; the invited are notified. The
    /// organiser only. Any kind of conference.
    async fn cancel_discharge_conference(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<CareConference> {
        cancel(ctx, id).await
    }

    /// Calls a proposed care conference off; the invited are notified. The
    /// organiser only, with write access to the kind's category.
    async fn cancel_care_conference(&self, ctx: &Context<'_>, id: ID) -> Result<CareConference> {
        cancel(ctx, id).await
    }

    /// Records (or corrects) the minutes of a conference that has begun: who
    /// of the invited attended, who else was there, what was discussed and
    /// decided, what remains and when to meet next. The conference becomes
    /// `HELD`; the invited are notified. The organiser only, with write
    /// access to the kind's category.
    async fn record_conference_minutes(
        &self,
        ctx: &Context<'_>,
        input: RecordConferenceMinutesInput,
    ) -> Result<CareConference> {
        let (id, minutes) = input.parse()?;
        let (current, access) = conference(ctx, id).await?;
        let recorded = conferences::record_minutes(
            ctx_db(ctx),
            ctx_policy(ctx),
            &access,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            current,
            minutes,
        )
        .await?;
        Ok(CareConference::new(recorded, &access))
    }
}

async fn propose(
    ctx: &Context<'_>,
    (patient_id, new): (Uuid, conferences::NewConference),
) -> Result<CareConference> {
    let access = patient_access(ctx, patient_id).await?;
    let proposed = conferences::propose(
        ctx_db(ctx),
        ctx_policy(ctx),
        &access,
        &ctx_stamp(ctx)?,
        ctx_events(ctx),
        new,
    )
    .await?;
    Ok(CareConference::new(proposed, &access))
}

async fn answer(
    ctx: &Context<'_>,
    input: AnswerDischargeConferenceInput,
) -> Result<CareConference> {
    let (id, answer) = input.parse()?;
    let (current, access) = conference(ctx, id).await?;
    let answered = conferences::answer(
        ctx_db(ctx),
        ctx_policy(ctx),
        &access,
        &ctx_stamp(ctx)?,
        ctx_events(ctx),
        current,
        answer,
    )
    .await?;
    Ok(CareConference::new(answered, &access))
}

async fn cancel(ctx: &Context<'_>, id: ID) -> Result<CareConference> {
    let (current, access) = conference(ctx, parse_id("id", &id)?).await?;
    let cancelled = conferences::cancel(
        ctx_db(ctx),
        ctx_policy(ctx),
        &access,
        &ctx_stamp(ctx)?,
        ctx_events(ctx),
        current,
    )
    .await?;
    Ok(CareConference::new(cancelled, &access))
}

async fn change(
    ctx: &Context<'_>,
    current: discharge_notice::Model,
    access: PatientAccess,
    change: NoticeChange,
) -> Result<DischargeNotice> {
    let changed = notices::change(
        ctx_db(ctx),
        ctx_policy(ctx),
        &access,
        &ctx_stamp(ctx)?,
        ctx_events(ctx),
        current,
        change,
    )
    .await?;
    Ok(DischargeNotice(changed))
}
