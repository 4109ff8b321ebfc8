//! How a request reaches a patient — by id, by a facility's local ID, or
//! through an object bound to one (a record, a liaison thread, an admission
//! sheet …) — and how it is refused.
//!
//! A refusal must not tell "there is no such patient" from "there is one,
//! and it is not yours": not by the error, not by what is audited, and not by
//! the time it takes — local IDs are sequential, and one timed request per
//! number would enumerate another facility's patients. So every reference
//! takes this one path:
//!
//! - the policy is evaluated through the access loader whether or not the
//!   reference matched anything (a local ID that matched no patient, an
//!   object that does not exist, is evaluated as a fresh id, which no
//!   patient has — one per reference, so that the loader does not merge
//!   many unknown references into one key where as many hidden patients
//!   are as many keys): both sides pay the batching window and the statement,
//!   and the statement reads no row of a patient the caller may not know
//!   of (`Policy::evaluate`), so naming many of them costs what naming as
//!   many unknown ones costs;
//! - every refusal — unknown patient, unknown local ID, no care
//!   relationship, missing object, a category or addressing rule that closes
//!   the object — leaves a `DENIED` entry in the request's audit trail and
//!   returns the same `NOT_FOUND` error — one entry per distinct
//!   reference, found or not. The response waits for the audit writer's
//!   group commit on both sides alike, and an attempt to reach an unknown
//!   patient is on record for the auditor (with the id that was asked for;
//!   the organisation and local ID in the detail).
//!
//! `bench/README.md` describes the check (`tests/timing/refusal_timing.rs`,
//! run by `.ci/run`) that compares the two kinds of refusal's latency.

use std::sync::Arc;

use async_graphql::Context;
use uuid::Uuid;

use super::{ctx_db, ctx_request, ctx_trail, loaders::Loaders};
use crate::domain::{DataCategory, InsuredPersonId, LocalId};
use crate::error::ApiError;
use crate::policy::{PatientAccess, Verdict};
use crate::principal::Principal;
use crate::services::patients;
use entities::patient;

/// What a request names a patient by.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PatientRef<'a> {
    /// The network's patient id.
    Id(Uuid),
    /// A facility's local ID (名寄せ: the number on a registration card).
    LocalId {
        organization_id: Uuid,
        local_id: &'a LocalId,
    },
    /// 被保険者個人識別子: how a FHIR (JP-CLINS) sender names the person
    /// across institutions.
    InsuredPersonId(&'a InsuredPersonId),
}

impl PatientRef<'_> {
    /// The reference in words, for the audit entry's detail.
    fn describe(&self) -> String {
        match self {
            PatientRef::Id(id) => format!("patient {id}"),
            PatientRef::LocalId {
                organization_id,
                local_id,
            } => format!(
                "local ID {:?} of organisation {organization_id}",
                local_id.as_str()
            ),
            PatientRef::InsuredPersonId(id) => {
                format!("insured-person identifier {:?}", id.as_str())
            }
        }
    }

    /// Refuses the reference for `why`: `NOT_FOUND` of the patient, recorded
    /// as a denial of `categories` on `patient_id` (the patient asked for or
    /// found, if any) with the reference in the detail.
    pub(crate) fn refuse(
        &self,
        ctx: &Context<'_>,
        patient_id: Option<Uuid>,
        categories: &[DataCategory],
        why: &str,
    ) -> ApiError {
        let reference = self.describe();
        refuse(
            ctx,
            "patient",
            patient_id,
            categories,
            format!("{reference}: {why}"),
            reference,
        )
    }

    /// The patient id the reference names, if any patient has it; for a
    /// local ID or an insured-person identifier, one lookup whose cost does
    /// not depend on the answer — the statement [`resolve_many`] runs, so
    /// that one reference and a list of them are resolved by one rule.
    pub(crate) async fn resolve(&self, ctx: &Context<'_>) -> Result<Option<Uuid>, ApiError> {
        if let PatientRef::Id(id) = self {
            return Ok(Some(*id));
        }
        Ok(resolve_many(ctx, std::slice::from_ref(self))
            .await?
            .pop()
            .flatten())
    }
}

/// [`PatientRef::resolve`] for many references at once: one statement per
/// kind of reference (and organisation, for local IDs) whatever the
/// answers, so a list of references costs alike whichever of them match.
pub(crate) async fn resolve_many(
    ctx: &Context<'_>,
    references: &[PatientRef<'_>],
) -> Result<Vec<Option<Uuid>>, ApiError> {
    use std::collections::{BTreeMap, HashMap};
    let mut local: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    let mut insured: Vec<String> = Vec::new();
    for r in references {
        match r {
            PatientRef::Id(_) => {}
            PatientRef::LocalId {
                organization_id,
                local_id,
            } => local
                .entry(*organization_id)
                .or_default()
                .push(local_id.as_str().to_string()),
            PatientRef::InsuredPersonId(id) => insured.push(id.as_str().to_string()),
        }
    }
    let db = ctx_db(ctx);
    let mut by_local: HashMap<(Uuid, String), Uuid> = HashMap::new();
    for (org, ids) in local {
        for (local_id, patient) in patients::find_by_local_ids(db, org, &ids).await? {
            by_local.insert((org, local_id), patient);
        }
    }
    let by_insured = if insured.is_empty() {
        HashMap::new()
    } else {
        patients::find_by_insured_person_ids(db, &insured).await?
    };
    Ok(references
        .iter()
        .map(|r| match r {
            PatientRef::Id(id) => Some(*id),
            PatientRef::LocalId {
                organization_id,
                local_id,
            } => by_local
                .get(&(*organization_id, local_id.as_str().to_string()))
                .copied(),
            PatientRef::InsuredPersonId(id) => by_insured.get(id.as_str()).copied(),
        })
        .collect())
}

/// The policy's verdict on `patient_id`, batched with the other lookups in
/// flight: `None` when the caller may not know of the patient or there is
/// none. No id at all costs the same statement and the same probe: a fresh
/// id, which no patient has, is evaluated in its place (see the module).
async fn evaluate(
    ctx: &Context<'_>,
    patient_id: Option<Uuid>,
) -> Result<Option<Verdict>, ApiError> {
    let req = ctx_request(ctx)?;
    let shared = ctx.data_opt::<Arc<SharedVerdicts>>();
    if let (Some(shared), Some(id)) = (shared, patient_id)
        && let Some(verdict) = shared.get(&req.principal, id)
    {
        return Ok(Some(verdict));
    }
    let verdict = ctx
        .data_unchecked::<Loaders>()
        .access
        .load_one((
            req.principal.clone(),
            patient_id.unwrap_or_else(Uuid::now_v7),
        ))
        .await?
        .filter(|_| patient_id.is_some());
    if let (Some(shared), Some(id), Some(v)) = (shared, patient_id, &verdict) {
        shared.put(&req.principal, id, v.clone());
    }
    Ok(verdict)
}

/// The policy's verdicts kept across the operations of one request that
/// runs several (a FHIR bundle's patient lookup, then its write): what
/// [`evaluate`] found for a patient in one operation, a later one takes
/// instead of evaluating the patient again. Only verdicts that found the
/// patient are kept; a refusal is evaluated, and recorded, every time.
///
/// Put into an operation's request data (`Arc<SharedVerdicts>`) only by a
/// caller that knows no operation between the two changes the access of a
/// patient kept here (a consent, a care-team change, an emergency access):
/// a kept verdict is not evaluated again. GraphQL requests never carry one.
#[derive(Default)]
pub struct SharedVerdicts(std::sync::Mutex<std::collections::HashMap<(Principal, Uuid), Verdict>>);

impl SharedVerdicts {
    fn get(&self, principal: &Principal, patient_id: Uuid) -> Option<Verdict> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(&(principal.clone(), patient_id)).cloned()
    }

    fn put(&self, principal: &Principal, patient_id: Uuid, verdict: Verdict) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert((principal.clone(), patient_id), verdict);
    }

    /// Lets go of the verdicts on a patient whose access an operation run
    /// in between has changed (a consent recorded): the next operation
    /// evaluates the patient again.
    pub fn forget(&self, patient_id: Uuid) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(_, patient), _| *patient != patient_id);
    }
}

/// The policy's verdict on a patient the hub names to the caller — not one
/// the request named (the affected patients of an outbreak notice sent to
/// the caller's organisation): `None` when the caller may not know of the
/// patient, with nothing recorded. The caller asked for no patient, so
/// there is no refusal to record; what it is shown of one it may know of is
/// recorded by the caller of this, as any read.
pub(crate) async fn named_to_caller(
    ctx: &Context<'_>,
    patient_id: Uuid,
) -> Result<Option<Verdict>, ApiError> {
    evaluate(ctx, Some(patient_id)).await
}

/// Records a refusal as `DENIED` in the request's audit trail and returns
/// what the caller sees: `NOT_FOUND` of `what`, whatever the cause.
/// `patient` is the patient asked for (or the object's), when the request
/// named one; `detail` says why, for the auditor only. Each distinct
/// `reference` gets an entry of its own, found or not
/// ([`AuditTrail::refused`](crate::audit::AuditTrail::refused)).
pub(crate) fn refuse(
    ctx: &Context<'_>,
    what: &str,
    patient: Option<Uuid>,
    categories: &[DataCategory],
    detail: String,
    reference: String,
) -> ApiError {
    match ctx_trail(ctx) {
        Ok(trail) => {
            trail.refused(patient, categories, reference, detail);
            ApiError::not_found(what)
        }
        Err(e) => e,
    }
}

/// The caller's access to a patient and the patient's row, or `NOT_FOUND`
/// — recorded as a denial — when the caller may not know of the patient or
/// there is none. Every resolver that takes a patient reference comes here.
pub(crate) async fn reach(
    ctx: &Context<'_>,
    reference: PatientRef<'_>,
) -> Result<(PatientAccess, Arc<patient::Model>), ApiError> {
    let patient_id = reference.resolve(ctx).await?;
    reach_resolved(ctx, reference, patient_id).await
}

/// [`reach`] once the reference is resolved (`patient_id`: the patient it
/// names, if any — [`PatientRef::resolve`], [`resolve_many`]).
pub(crate) async fn reach_resolved(
    ctx: &Context<'_>,
    reference: PatientRef<'_>,
    patient_id: Option<Uuid>,
) -> Result<(PatientAccess, Arc<patient::Model>), ApiError> {
    let own = ctx_request(ctx)?.principal.organization_id();
    let others_local_id =
        matches!(reference, PatientRef::LocalId { organization_id, .. } if organization_id != own);
    match evaluate(ctx, patient_id).await? {
        // Found by another organisation's local ID: confirming that the
        // organisation knows the patient by it is the care team's business.
        Some(Verdict { access, .. }) if others_local_id && !access.knows_care_team() => {
            Err(reference.refuse(
                ctx,
                patient_id,
                &[DataCategory::CareTeam],
                "another organisation's local ID, and no CARE_TEAM read",
            ))
        }
        Some(Verdict { access, patient }) => Ok((access, patient)),
        // The policy reads no more of a patient the caller may not know of
        // than of one that does not exist; which of the two, the auditor
        // can tell from the entry's patient id.
        None => {
            let why = match (reference, patient_id) {
                (PatientRef::LocalId { .. } | PatientRef::InsuredPersonId(_), Some(_)) => {
                    "no care relationship and no emergency access"
                }
                (PatientRef::LocalId { .. } | PatientRef::InsuredPersonId(_), None) => {
                    "no such patient"
                }
                (PatientRef::Id(_), _) => {
                    "no such patient, or no care relationship and no emergency access"
                }
            };
            Err(reference.refuse(ctx, patient_id, &[], why))
        }
    }
}

/// An object bound to a patient, named by its own id: what the request
/// asked for and what the lookup found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bound {
    /// What it is, as the error names it ("record", "liaison thread" …).
    pub what: &'static str,
    /// The id the request gave.
    pub id: Uuid,
    /// Its patient; `None`: there is no such object.
    pub patient_id: Option<Uuid>,
    /// The object's data category (a record's own, LIAISON_MESSAGES for a
    /// thread, a notification's kind's). A refusal is recorded under it:
    /// the entry tells of an object of that category, so a patient's access
    /// history shows it only to readers of the category
    /// (`services::audit_log::patient_history`).
    pub category: Option<DataCategory>,
    /// Whether the object exists for the caller only when it may read
    /// `category` (a record, an admission or discharge document, a
    /// care-team membership). When not, knowing the patient is enough here,
    /// and the category is answered on the object's own terms afterwards (a
    /// liaison thread of a patient the caller knows: `FORBIDDEN_FIELD`; a
    /// notification: its rule of who is shown it, through
    /// [`Bound::refuse`]).
    pub hidden_without_category: bool,
}

impl Bound {
    /// The object (`found`, what the lookup by [`Bound::id`] returned) and
    /// the caller's access to its patient, or `NOT_FOUND` of the object —
    /// recorded as a denial — when there is no such object, the caller may
    /// not know of its patient, or may not read its category.
    pub(crate) async fn reach<T>(
        &self,
        ctx: &Context<'_>,
        found: Option<T>,
    ) -> Result<(T, PatientAccess), ApiError> {
        let verdict = evaluate(ctx, self.patient_id).await?;
        let Some(found) = found else {
            return Err(self.refuse(ctx, &format!("no such {}", self.what)));
        };
        let Some(Verdict { access, .. }) = verdict else {
            return Err(self.refuse(
                ctx,
                "no care relationship and no emergency access to its patient",
            ));
        };
        if let Some(category) = self.category
            && self.hidden_without_category
            && !access.may_read(category)
        {
            return Err(self.refuse(ctx, &access.grant(category).reason.explain(category)));
        }
        Ok((found, access))
    }

    /// Refuses the object for `why` (a rule of its own: not addressed to
    /// the caller's organisation …) exactly as [`Bound::reach`] refuses it.
    pub(crate) fn refuse(&self, ctx: &Context<'_>, why: &str) -> ApiError {
        let reference = format!("{} {}", self.what, self.id);
        refuse(
            ctx,
            self.what,
            self.patient_id,
            self.category.as_slice(),
            format!("{reference}: {why}"),
            reference,
        )
    }
}
