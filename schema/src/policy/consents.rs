//! Consent rules: what a consent grants, when a new consent widens access,
//! and who may make a widening take effect.
//!
//! A consent grants an (organisation, data category) pair when it covers the
//! organisation ([`ConsentTerms::covers`], the rule the verdicts use) and
//! does not exclude the category. A new consent **widens** access when it
//! grants some pair the consent in force does not ([`ConsentTerms::widens`]):
//! a consent after a withdrawal, an exclusion removed, an organisation added
//! to a 個別同意, 個別 → 包括 …. It **narrows** otherwise.
//!
//! The party a consent excludes must not be able to undo its exclusion, so a
//! widening takes effect at once only when recorded by an organisation the
//! consent in force covers and grants something, or by the coordination centre
//! ([`ConsentAuthority`]); recorded by anyone else it is pending and grants
//! nothing until the centre confirms it. Narrowing takes effect at once,
//! whoever of the care team records it. A patient's very first consent has
//! nothing to widen from and takes effect at once ([`WideningRule::FirstConsent`]).

use std::collections::BTreeSet;

use uuid::Uuid;

use super::Policy;
use crate::domain::{
    AccessLevel, ConsentScope, ConsentStatus, DataCategory, OrganizationKind, Profession,
};
use crate::error::{ApiError, ApiResult};
use crate::principal::Principal;

/// What a consent says: whom it covers and which categories it leaves out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentTerms {
    scope: ConsentScope,
    /// Excluded organisations (`NETWORK`) or the covered ones (`ORGANIZATIONS`).
    organizations: BTreeSet<Uuid>,
    excluded: BTreeSet<DataCategory>,
}

impl ConsentTerms {
    pub fn new(
        scope: ConsentScope,
        organizations: impl IntoIterator<Item = Uuid>,
        excluded: impl IntoIterator<Item = DataCategory>,
    ) -> Self {
        ConsentTerms {
            scope,
            organizations: organizations.into_iter().collect(),
            excluded: excluded.into_iter().collect(),
        }
    }

    /// The terms of a stored consent (its JSON columns).
    pub fn from_row(
        scope: &str,
        organization_ids: &str,
        excluded_categories: &str,
    ) -> ApiResult<Self> {
        let organizations: Vec<Uuid> =
            serde_json::from_str(organization_ids).map_err(ApiError::internal)?;
        let names: Vec<String> =
            serde_json::from_str(excluded_categories).map_err(ApiError::internal)?;
        Ok(ConsentTerms {
            scope: ConsentScope::from_db(scope)?,
            organizations: organizations.into_iter().collect(),
            excluded: names
                .iter()
                .map(|n| DataCategory::from_db(n))
                .collect::<ApiResult<_>>()?,
        })
    }

    pub fn of(consent: &entities::consent::Model) -> ApiResult<Self> {
        Self::from_row(
            &consent.scope,
            &consent.organization_ids,
            &consent.excluded_categories,
        )
    }

    /// The coverage rule: a 包括同意 covers every organisation it does not
    /// exclude — including those registered later —, a 個別同意 only those
    /// it lists.
    pub fn covers(&self, organization: Uuid) -> bool {
        let listed = self.organizations.contains(&organization);
        match self.scope {
            ConsentScope::Network => !listed,
            ConsentScope::Organizations => listed,
        }
    }

    /// Whether these terms grant the organisation anything: it is covered
    /// and some category is not excluded. Only such an organisation may
    /// widen the consent alone: one covered by a consent that excludes every
    /// category is as shut out as one excluded, and such a consent, granting
    /// nothing, is a narrowing anyone of the team may record — counting it
    /// as cover would let the excluded party put itself in charge.
    pub fn grants_any_to(&self, organization: Uuid) -> bool {
        self.covers(organization) && self.granted_categories().next().is_some()
    }

    /// Whether these terms share `category` with `organization`: it is
    /// covered ([`Self::covers`]) and the category not excluded. What a
    /// count of one organisation's rows (a hospital's discharge notices
    /// and admission sheets) may include.
    pub fn shares_with(&self, organization: Uuid, category: DataCategory) -> bool {
        self.covers(organization) && !self.excluded.contains(&category)
    }

    pub fn excluded(&self) -> &BTreeSet<DataCategory> {
        &self.excluded
    }

    /// The categories a consent decides (CONSENT itself is readable with a
    /// care relationship alone, whatever the consent says) and does not
    /// exclude.
    fn granted_categories(&self) -> impl Iterator<Item = DataCategory> + '_ {
        DataCategory::ALL
            .iter()
            .copied()
            .filter(|c| *c != DataCategory::Consent && !self.excluded.contains(c))
    }

    /// Whether these terms grant some (organisation, category) that
    /// `current` does not — with no consent in force, whether they grant
    /// anything. Organisations are an open set (the directory grows), so a
    /// 包括同意 always reaches organisations no 個別同意 lists.
    pub fn widens(&self, current: Option<&ConsentTerms>) -> bool {
        if self.granted_categories().next().is_none() {
            return false;
        }
        let Some(current) = current else {
            return true;
        };
        // An organisation newly covered gains every category granted.
        if !self.orgs().subset_of(current.orgs()) {
            return true;
        }
        // An organisation covered by both gains a category no longer excluded.
        self.orgs().intersects(current.orgs())
            && self
                .granted_categories()
                .any(|c| current.excluded.contains(&c))
    }

    fn orgs(&self) -> Orgs<'_> {
        match self.scope {
            ConsentScope::Network => Orgs::AllExcept(&self.organizations),
            ConsentScope::Organizations => Orgs::Only(&self.organizations),
        }
    }
}

/// The organisations a consent covers, as a set: a finite list, or all
/// organisations but a finite list.
#[derive(Clone, Copy)]
enum Orgs<'a> {
    Only(&'a BTreeSet<Uuid>),
    AllExcept(&'a BTreeSet<Uuid>),
}

impl Orgs<'_> {
    fn subset_of(self, other: Orgs<'_>) -> bool {
        match (self, other) {
            (Orgs::Only(a), Orgs::Only(b)) => a.is_subset(b),
            (Orgs::Only(a), Orgs::AllExcept(b)) => a.is_disjoint(b),
            (Orgs::AllExcept(_), Orgs::Only(_)) => false,
            (Orgs::AllExcept(a), Orgs::AllExcept(b)) => b.is_subset(a),
        }
    }

    fn intersects(self, other: Orgs<'_>) -> bool {
        match (self, other) {
            (Orgs::Only(a), Orgs::Only(b)) => !a.is_disjoint(b),
            (Orgs::Only(a), Orgs::AllExcept(b)) | (Orgs::AllExcept(b), Orgs::Only(a)) => {
                a.difference(b).next().is_some()
            }
            (Orgs::AllExcept(_), Orgs::AllExcept(_)) => true,
        }
    }
}

/// What recording a new consent does to the patient's access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentChange {
    /// Grants nothing the consent in force does not: in force at once.
    Narrowing,
    /// Grants more; `rule` says whether it takes effect.
    Widening(WideningRule),
}

/// Why a widening takes effect at once, or does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WideningRule {
    /// The patient never had a consent: nothing is widened against the
    /// patient's word (the registration flow: the registering facility
    /// takes the first consent).
    FirstConsent,
    /// Recorded by an organisation the consent in force already covers and
    /// grants some category ([`ConsentTerms::grants_any_to`]).
    RecorderCovered,
    /// Recorded by the coordination centre.
    CoordinationCentre,
    /// Recorded by anyone else: pending until the centre confirms it.
    NeedsConfirmation,
}

impl WideningRule {
    /// Who made a widening take effect, for the audit log.
    pub fn describe(self) -> &'static str {
        match self {
            WideningRule::FirstConsent => "no consent was ever recorded",
            WideningRule::RecorderCovered => {
                "recorded by an organisation the consent in force covers"
            }
            WideningRule::CoordinationCentre => "recorded by the coordination centre",
            WideningRule::NeedsConfirmation => "awaiting the coordination centre",
        }
    }
}

impl ConsentChange {
    /// The status the new consent is stored with.
    pub fn status(self) -> ConsentStatus {
        match self {
            ConsentChange::Widening(WideningRule::NeedsConfirmation) => ConsentStatus::Pending,
            _ => ConsentStatus::InForce,
        }
    }

    pub fn widens(self) -> bool {
        matches!(self, ConsentChange::Widening(_))
    }

    /// For the audit log.
    pub fn describe(self) -> &'static str {
        match self {
            ConsentChange::Narrowing => "narrows or keeps access: in force",
            ConsentChange::Widening(WideningRule::FirstConsent) => {
                "the patient's first consent: in force"
            }
            ConsentChange::Widening(WideningRule::RecorderCovered) => {
                "widens access, recorded by an organisation the consent in force covers: in force"
            }
            ConsentChange::Widening(WideningRule::CoordinationCentre) => {
                "widens access, recorded by the coordination centre: in force"
            }
            ConsentChange::Widening(WideningRule::NeedsConfirmation) => {
                "widens access, recorded by an organisation the consent in force does not cover: PENDING until the coordination centre confirms it"
            }
        }
    }
}

/// What the patient's consents are when a new one is recorded.
pub struct ConsentHistory<'a> {
    /// Whether the patient has any consent on record (in any status).
    pub any_recorded: bool,
    pub in_force: Option<&'a ConsentTerms>,
}

/// Proof that the caller acts for the coordination centre on consents: it
/// may confirm or reject pending consents (and list them) for any patient,
/// and its own widenings take effect at once. Only this module makes one.
#[derive(Clone, Copy, Debug)]
pub struct ConsentAuthority(());

impl Policy {
    /// The coordination centre's authority over consents: network
    /// administrators, and members or systems of a `COORDINATION_CENTER`
    /// organisation whose role (or key) may write CONSENT. `caller_kind`:
    /// the kind of the caller's organisation.
    pub fn consent_authority(
        &self,
        principal: &Principal,
        caller_kind: Option<OrganizationKind>,
    ) -> Option<ConsentAuthority> {
        let administrator = principal.profession() == Some(Profession::NetworkAdministrator);
        let centre = caller_kind == Some(OrganizationKind::CoordinationCenter)
            && self.role_level(principal, DataCategory::Consent) == AccessLevel::ReadWrite;
        (administrator || centre).then_some(ConsentAuthority(()))
    }

    /// [`Policy::consent_authority`], or `FORBIDDEN`.
    pub fn require_consent_authority(
        &self,
        principal: &Principal,
        caller_kind: Option<OrganizationKind>,
    ) -> ApiResult<ConsentAuthority> {
        self.consent_authority(principal, caller_kind).ok_or_else(|| {
            ApiError::Forbidden(
                "only the coordination centre (its members who may write CONSENT, or a network administrator) reviews pending consents".into(),
            )
        })
    }

    /// What recording `new` does, for a caller who may record consents on
    /// the patient (a care relationship and CONSENT write: `PatientAccess`).
    pub fn consent_change(
        &self,
        principal: &Principal,
        caller_kind: Option<OrganizationKind>,
        history: ConsentHistory<'_>,
        new: &ConsentTerms,
    ) -> ConsentChange {
        if !new.widens(history.in_force) {
            return ConsentChange::Narrowing;
        }
        ConsentChange::Widening(self.widening_rule(principal, caller_kind, &history))
    }

    /// Whether a widening by the caller takes effect at once, and why.
    fn widening_rule(
        &self,
        principal: &Principal,
        caller_kind: Option<OrganizationKind>,
        history: &ConsentHistory<'_>,
    ) -> WideningRule {
        if !history.any_recorded {
            WideningRule::FirstConsent
        } else if history
            .in_force
            .is_some_and(|c| c.grants_any_to(principal.organization_id()))
        {
            WideningRule::RecorderCovered
        } else if self.consent_authority(principal, caller_kind).is_some() {
            WideningRule::CoordinationCentre
        } else {
            WideningRule::NeedsConfirmation
        }
    }

    /// Withdrawing the patient's objection to emergency access (救急時閲覧
    /// への拒否の撤回) widens access — break-the-glass opens again, to every
    /// physician, nurse and EMS crew of the region — so it follows the
    /// widening rule: an organisation the consent in force covers and grants
    /// something, the coordination centre, or the first word on a patient
    /// without any consent. Anyone else is refused (`FORBIDDEN`): an
    /// objection has no pending state, and recording one (a narrowing) stays
    /// open to the whole care team. For a caller who may write CONSENT on the
    /// patient (`PatientAccess`).
    pub fn require_may_lift_objection(
        &self,
        principal: &Principal,
        caller_kind: Option<OrganizationKind>,
        history: ConsentHistory<'_>,
    ) -> ApiResult<WideningRule> {
        match self.widening_rule(principal, caller_kind, &history) {
            WideningRule::NeedsConfirmation => Err(ApiError::Forbidden(
                "withdrawing the patient's objection to emergency access widens access: only an organisation the consent in force covers (and grants some category), or the coordination centre, may record it".into(),
            )),
            rule => Ok(rule),
        }
    }
}

/// The rule in words, for `docs/access-policy.md`.
pub(super) const DOCUMENT: &str = "## Changing consent (同意の変更)\n\n\
Every consent names the signed form it was recorded from: its reference, the day it was \
signed, and who signed — the patient, or a proxy (代諾者: `FAMILY` or `GUARDIAN`) with \
the proxy's name and relation to the patient. Any organisation of the care team whose role \
may write `CONSENT` records consents (`recordConsent`) and withdrawals (`withdrawConsent`); \
what the new consent does depends on whether it **widens** access.\n\n\
- A consent **widens** access when it grants some (organisation, category) the consent in \
force does not: a consent when none is in force (after a withdrawal), an exclusion removed \
(organisation or category), an organisation added to a 個別同意, 個別同意 → 包括同意. \
Organisations are an open set: a 包括同意 always reaches organisations no 個別同意 lists.\n\
- A **narrowing** (a withdrawal, new exclusions, fewer organisations, the same terms on a \
new form) takes effect at once, whoever of the care team records it.\n\
- A **widening** takes effect at once only when recorded by an organisation the consent in \
force already covers (the coverage rule above) and grants at least one category, or by the \
coordination centre (members or systems of the `COORDINATION_CENTER` organisation whose role \
may write `CONSENT`). Recorded by anyone else — an excluded organisation, one not listed in a \
個別同意, one covered by a consent that excludes every category (such a consent grants \
nothing: a narrowing, which puts no one in charge), any organisation after a withdrawal — it \
is stored as `PENDING`: shown in the consent history with its status, \
it grants nothing until the coordination centre confirms it (`confirmConsent`; \
`rejectConsent` refuses it; `pendingConsents` lists them). Confirmation puts it in force, \
superseding the consent then in force.\n\
- A patient's **first** consent (no consent ever recorded) has nothing to widen from and \
takes effect at once: the registering facility takes it with the registration.\n\
- The centre reaches a patient it is not on the care team of only through a pending consent: \
it lists pending consents (with the consent in force they would replace) and confirms or \
rejects them by id, each audited; it reads nothing else of the patient. Network \
administrators may do the same.\n\
- At most one consent is in force and one pending per patient. Any later consent supersedes \
a pending one (it can no longer be confirmed: `CONFLICT`); a withdrawal withdraws the \
consent in force and voids a pending one (the patient's latest word). Changes to one \
patient's consent are serialised.\n\
- Every widening — pending, in force at once, confirmed — notifies the organisations of \
the care team (`CONSENT_PENDING`, `CONSENT_WIDENED`; a pending one also the coordination \
centre, without naming the patient), and every change makes open subscriptions re-check \
their access. Each is audited as `CONSENT_CHANGE`, saying whether it took effect or is \
pending, confirmed or rejected.\n\
- The patient's **objection to emergency access** (`recordEmergencyAccessObjection`) is a \
narrowing: any organisation of the care team whose role may write `CONSENT` records it, at \
once. Withdrawing it (`withdrawEmergencyAccessObjection`) opens break-the-glass again and is \
a widening: only an organisation the consent in force covers and grants some category, or \
the coordination centre, may record it (with no consent ever recorded, the registering \
facility); anyone else is refused (`FORBIDDEN`). The rest of the care team is notified \
(`EMERGENCY_OBJECTION_WITHDRAWN`).\n\n";

#[cfg(test)]
mod tests {
    use super::*;
    use ConsentScope::{Network, Organizations};

    fn ids() -> [Uuid; 3] {
        [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)]
    }

    /// The definition itself, checked pair by pair over the organisations
    /// the terms name plus one they do not (standing for every other).
    fn widens_by_enumeration(new: &ConsentTerms, current: Option<&ConsentTerms>) -> bool {
        let grants = |t: &ConsentTerms, org: Uuid, c: DataCategory| {
            t.covers(org) && !t.excluded.contains(&c)
        };
        let fresh = Uuid::from_u128(99);
        ids().into_iter().chain([fresh]).any(|org| {
            DataCategory::ALL
                .iter()
                .filter(|c| **c != DataCategory::Consent)
                .any(|&c| grants(new, org, c) && !current.is_some_and(|cur| grants(cur, org, c)))
        })
    }

    #[test]
    fn widening_agrees_with_the_definition_for_every_small_case() {
        let [a, b, c] = ids();
        let org_sets: Vec<Vec<Uuid>> = vec![vec![], vec![a], vec![b], vec![a, b], vec![a, b, c]];
        let cat_sets: Vec<Vec<DataCategory>> = vec![
            vec![],
            vec![DataCategory::LabResults],
            vec![DataCategory::LabResults, DataCategory::Contacts],
            DataCategory::ALL.to_vec(),
        ];
        let mut all = Vec::new();
        for scope in [Network, Organizations] {
            for orgs in &org_sets {
                if scope == Organizations && orgs.is_empty() {
                    continue;
                }
                for cats in &cat_sets {
                    all.push(ConsentTerms::new(scope, orgs.clone(), cats.clone()));
                }
            }
        }
        for new in &all {
            assert_eq!(
                new.widens(None),
                widens_by_enumeration(new, None),
                "{new:?} after none"
            );
            for current in &all {
                assert_eq!(
                    new.widens(Some(current)),
                    widens_by_enumeration(new, Some(current)),
                    "{new:?} after {current:?}"
                );
            }
        }
    }

    #[test]
    fn the_cases_of_the_issue() {
        let [pharmacy, clinic, _] = ids();
        let network = ConsentTerms::new(Network, [], []);
        let without_pharmacy = ConsentTerms::new(Network, [pharmacy], []);
        let only_clinic = ConsentTerms::new(Organizations, [clinic], []);
        let without_labs = ConsentTerms::new(Network, [], [DataCategory::LabResults]);
        assert!(
            network.widens(Some(&without_pharmacy)),
            "an exclusion removed"
        );
        assert!(network.widens(Some(&only_clinic)), "個別 → 包括");
        assert!(network.widens(None), "after a withdrawal");
        assert!(
            network.widens(Some(&without_labs)),
            "a category no longer excluded"
        );
        assert!(
            ConsentTerms::new(Organizations, [clinic, pharmacy], []).widens(Some(&only_clinic)),
            "an organisation added"
        );
        assert!(!without_pharmacy.widens(Some(&network)), "a new exclusion");
        assert!(!without_labs.widens(Some(&network)));
        assert!(!only_clinic.widens(Some(&network)), "包括 → 個別");
        assert!(
            !network.widens(Some(&network)),
            "the same terms on a new form"
        );
        let nothing = ConsentTerms::new(Network, [], DataCategory::ALL.iter().copied());
        assert!(!nothing.widens(None), "a consent that grants nothing");
        assert!(!nothing.widens(Some(&without_pharmacy)));
        assert!(
            nothing.covers(pharmacy) && !nothing.grants_any_to(pharmacy),
            "covered, granted nothing: no say in widening"
        );
        assert!(network.grants_any_to(pharmacy));
        assert!(!without_pharmacy.grants_any_to(pharmacy));
        assert!(without_labs.grants_any_to(clinic));
    }
}
