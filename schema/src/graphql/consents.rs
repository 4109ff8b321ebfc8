//! The coordination centre's review of pending consents: the list, and
//! confirming or rejecting one (`services/consents.rs`; the rule in
//! `policy/consents.rs`). Recording and withdrawing consents are in the core
//! mutation, beside the patient they need.
//!
//! The centre is not on the patient's care team as a rule, so these resolvers
//! do not ask for a `PatientAccess`: they obtain the policy's
//! [`ConsentAuthority`](crate::policy::ConsentAuthority) instead, which lets
//! the centre see and decide pending consents and nothing else of the
//! patient. Each pending consent shown is recorded in the audit log as a
//! read of the patient's CONSENT.

use async_graphql::{Context, ID, Object, Result};

use super::inputs::{RejectConsentInput, parse_id};
use super::types::{Consent, load_organization};
use super::{ctx_db, ctx_events, ctx_policy, ctx_request, ctx_stamp, ctx_trail};
use crate::domain::{NAME_MAX, OrganizationKind, Text};
use crate::error::ApiError;
use crate::services::consents;

/// The kind of the caller's organisation, which some consent rules depend on.
pub(crate) async fn caller_kind(ctx: &Context<'_>) -> Result<Option<OrganizationKind>> {
    let org = load_organization(ctx, ctx_request(ctx)?.principal.organization_id()).await?;
    Ok(Some(OrganizationKind::from_db(&org.0.kind)?))
}

async fn authority(ctx: &Context<'_>) -> Result<crate::policy::ConsentAuthority> {
    let req = ctx_request(ctx)?;
    let kind = caller_kind(ctx).await?;
    Ok(ctx_policy(ctx).require_consent_authority(&req.principal, kind)?)
}

/// Page size of the pending list when `first` is not given, and its most.
const PENDING_PAGE: i32 = 50;
const PENDING_PAGE_MAX: i32 = 100;

/// `Query.pendingConsents`.
pub(crate) async fn pending_consents(
    ctx: &Context<'_>,
    first: Option<i32>,
) -> Result<Vec<PendingConsent>> {
    let authority = authority(ctx).await?;
    let first = first.unwrap_or(PENDING_PAGE);
    if !(1..=PENDING_PAGE_MAX).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("must be between 1 and {PENDING_PAGE_MAX}, got {first}"),
        )
        .into());
    }
    let rows = consents::pending(ctx_db(ctx), authority, first as u64).await?;
    let trail = ctx_trail(ctx)?;
    Ok(rows
        .into_iter()
        .map(|p| {
            trail.consent_review(&authority, p.pending.patient_id);
            PendingConsent(p)
        })
        .collect())
}

/// A consent awaiting the coordination centre's decision, with the consent
/// in force it would replace.
pub struct PendingConsent(consents::PendingConsent);

#[Object]
impl PendingConsent {
    /// The patient it is about. The centre reads nothing else of the
    /// patient; `patient(id:)` answers only where it is on the care team.
    async fn patient_id(&self) -> ID {
        ID(self.0.pending.patient_id.to_string())
    }
    async fn consent(&self) -> Consent {
        Consent(self.0.pending.clone())
    }
    /// What the patient's consent is now (none: withdrawn).
    async fn consent_in_force(&self) -> Option<Consent> {
        self.0.in_force.clone().map(Consent)
    }
}

#[derive(Default)]
pub struct ConsentMutation;

#[Object]
impl ConsentMutation {
    /// The coordination centre confirms a pending consent: it takes effect,
    /// superseding the consent in force, and the care team is told.
    /// `FORBIDDEN` for anyone but the centre (members who may write CONSENT,
    /// or network administrators); `NOT_FOUND` if there is no such consent;
    /// `CONFLICT` if it is no longer pending (confirmed, rejected, superseded
    /// by a later consent, voided by a withdrawal).
    async fn confirm_consent(&self, ctx: &Context<'_>, id: ID) -> Result<Consent> {
        let authority = authority(ctx).await?;
        let id = parse_id("id", &id)?;
        let clock = &ctx_policy(ctx).clock;
        let confirmed = consents::confirm(
            ctx_db(ctx),
            authority,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            id,
            clock.today(),
            clock.now(),
        )
        .await?;
        Ok(Consent(confirmed))
    }

    /// The coordination centre rejects a pending consent: it never takes
    /// effect, and the care team is told. Errors as `confirmConsent`.
    async fn reject_consent(
        &self,
        ctx: &Context<'_>,
        input: RejectConsentInput,
    ) -> Result<Consent> {
        let authority = authority(ctx).await?;
        let id = parse_id("input.consentId", &input.consent_id)?;
        let reason = Text::parse_opt("input.reason", input.reason.as_deref(), NAME_MAX)?;
        let clock = &ctx_policy(ctx).clock;
        let rejected = consents::reject(
            ctx_db(ctx),
            authority,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            id,
            reason,
            clock.today(),
            clock.now(),
        )
        .await?;
        Ok(Consent(rejected))
    }
}
