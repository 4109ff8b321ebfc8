//! The access policy: the one place that decides who may see and change what.
//!
//! Resolvers never check access by hand. To touch patient data they first obtain
//! a [`PatientAccess`] from this module — the GraphQL `Patient` object can only
//! be built from one — and ask it, field by field, whether a data category may
//! be read or written. Directory administration requires [`AdminAccess`].
//!
//! The rules (see `docs/access-policy.md` for the full picture):
//! 1. **Care relationship.** An organisation sees a patient only while it has an
//!    active care-team membership. Without one — and without emergency access —
//!    the caller learns nothing, not even that the patient exists: `NOT_FOUND`.
//! 2. **Consent.** With a relationship, patient data is readable only while the
//!    patient's active consent covers the organisation (network-wide minus
//!    excluded organisations, or a list of organisations) and the category is
//!    not excluded. The consent category itself needs only the relationship:
//!    one must see whether consent exists in order to take it. Who may widen
//!    a consent, and when a widening waits for the coordination centre:
//!    [`consents`].
//! 3. **Role.** The profession's row of the [`Matrix`] (or an API key's
//!    permissions) caps every category: none, read or read-write.
//! 4. **Break-the-glass** (救急時閲覧). A physician, nurse or EMS crew member
//!    may open time-limited emergency access, which grants read access to the
//!    categories of [`emergency_categories`] only — the emergency set, and for
//!    physicians and nurses drug contraindications and infections too — with
//!    or without relationship and consent, unless the patient has objected.
//! 5. **Writes** need read-write for the category and a care relationship.

pub mod consents;
pub mod matrix;
pub mod rows;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, Order, Query, QueryStatementBuilder, SimpleExpr,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult,
    Iterable, QueryFilter, QuerySelect,
};
use uuid::Uuid;

pub use consents::{ConsentAuthority, ConsentChange, ConsentHistory, ConsentTerms, WideningRule};
pub use matrix::{
    EMERGENCY_CATEGORIES, EMERGENCY_CLINICAL_CATEGORIES, EMERGENCY_PROFESSIONS, Matrix,
    emergency_categories,
};
pub use rows::RowScope;

use crate::clock::SharedClock;
use crate::domain::{AccessLevel, DataCategory, OrganizationKind, Profession};
use crate::error::{ApiError, ApiResult};
use crate::principal::Principal;
use entities::{care_team_membership, consent, emergency_grant, patient};

/// From how many patients [`Policy::evaluate`] asks PostgreSQL for a custom
/// plan of its query.
const CUSTOM_PLAN_FROM_PATIENTS: usize = 32;

/// The policy's configuration, shared by the whole process.
pub struct Policy {
    pub matrix: Matrix,
    /// How long break-the-glass access lasts.
    pub emergency_duration: Duration,
    /// How many emergency patient searches a member may make, and in what
    /// window.
    pub emergency_search: EmergencySearchLimit,
    pub clock: SharedClock,
}

/// Why a category is granted or denied, as the API reports it.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AccessReason {
    /// The caller's profession (or system permissions) allows it and the
    /// patient's consent covers it.
    Permitted,
    /// The caller's profession (or system permissions) does not include it.
    NotPermittedForRole,
    /// The patient has no active consent covering the caller's organisation.
    NoConsent,
    /// The patient's consent excludes this category.
    ExcludedByConsent,
    /// Granted, read-only, by the caller's emergency access.
    EmergencyAccess,
    /// The caller has emergency access only, which does not cover this category.
    NotAnEmergencyCategory,
}

impl AccessReason {
    pub fn explain(self, category: DataCategory) -> String {
        match self {
            AccessReason::Permitted => {
                format!("your role may use {category} and the patient's consent covers it")
            }
            AccessReason::NotPermittedForRole => {
                format!("your profession (or system permissions) does not include {category}")
            }
            AccessReason::NoConsent => {
                "the patient has no active consent covering your organisation".into()
            }
            AccessReason::ExcludedByConsent => format!("the patient's consent excludes {category}"),
            AccessReason::EmergencyAccess => {
                format!("{category} is open to you by emergency access (read only)")
            }
            AccessReason::NotAnEmergencyCategory => {
                format!("emergency access does not cover {category}")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub level: AccessLevel,
    pub reason: AccessReason,
}

/// Proof that the caller may see *that a patient exists*, with the verdict
/// for every data category. Only this module constructs it.
#[derive(Clone, Debug)]
pub struct PatientAccess {
    patient_id: Uuid,
    grants: Arc<BTreeMap<DataCategory, Grant>>,
    care_relationship: bool,
    emergency_until: Option<DateTime<Utc>>,
}

impl PatientAccess {
    pub fn patient_id(&self) -> Uuid {
        self.patient_id
    }

    pub fn grant(&self, category: DataCategory) -> Grant {
        self.grants.get(&category).copied().unwrap_or(Grant {
            level: AccessLevel::None,
            reason: AccessReason::NotPermittedForRole,
        })
    }

    /// Every category with its verdict, in declaration order.
    pub fn grants(&self) -> impl Iterator<Item = (DataCategory, Grant)> + '_ {
        self.grants.iter().map(|(c, g)| (*c, *g))
    }

    pub fn may_read(&self, category: DataCategory) -> bool {
        self.grant(category).level >= AccessLevel::Read
    }

    /// Whether the caller may be shown data of `category`: it reads every
    /// category of [`shown_with`].
    pub fn may_be_shown(&self, category: DataCategory) -> bool {
        shown_with(category).all(|c| self.may_read(c))
    }

    pub fn has_care_relationship(&self) -> bool {
        self.care_relationship
    }

    /// Whether the caller may know which organisations know the patient:
    /// who is on its care team, and so also the local IDs *other*
    /// organisations give it — see them (`Patient.identifiers`), find the
    /// patient by one (`patientByLocalId(organizationId:)`), name team
    /// organisations as addressees ([`Self::require_naming_team`]) or see
    /// whom a conference invited. That is `CARE_TEAM` data: its readers
    /// may. Its own organisation's, any caller who sees the patient may.
    pub fn knows_care_team(&self) -> bool {
        self.may_read(DataCategory::CareTeam)
    }

    /// Naming organisations of the care team (a liaison thread's
    /// addressees, a conference's invitees): the refusal of one not on the
    /// team would tell who is, so only a caller who [`Self::knows_care_team`]
    /// may; others address the whole team.
    pub fn require_naming_team(&self, field: &str) -> ApiResult<()> {
        if self.knows_care_team() {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{field}: naming organisations of the care team needs CARE_TEAM read, which your profession, permissions or the patient's consent do not give: address the whole care team instead"
        ))
        .about(self.patient_id, &[DataCategory::CareTeam]))
    }

    pub fn emergency_until(&self) -> Option<DateTime<Utc>> {
        self.emergency_until
    }

    /// Whether the caller may write a category: read-write for the role,
    /// covered by consent, and a care relationship (emergency access never
    /// writes).
    pub fn may_write(&self, category: DataCategory) -> bool {
        self.care_relationship && self.grant(category).level == AccessLevel::ReadWrite
    }

    /// Permission to write a category ([`PatientAccess::may_write`]), or
    /// `FORBIDDEN` saying why not.
    pub fn require_write(&self, category: DataCategory) -> ApiResult<()> {
        if self.may_write(category) {
            return Ok(());
        }
        let grant = self.grant(category);
        let why = if !self.care_relationship {
            "emergency access is read-only".to_string()
        } else if grant.level == AccessLevel::Read {
            format!("your profession (or system permissions) may read but not write {category}")
        } else {
            grant.reason.explain(category)
        };
        Err(
            ApiError::Forbidden(format!("you may not change {category}: {why}"))
                .about(self.patient_id, &[category]),
        )
    }

    /// Permission to answer what was addressed to the caller's organisation
    /// (an invitation to a discharge conference): it needs to read the
    /// category and a care relationship, not to write it — the invitation is
    /// what authorises the answer. Emergency access never answers — nor
    /// reads what it answers on the strength of it: an organisation the
    /// patient's consent excludes, on the care team and under
    /// break-the-glass, must not accept a conference it may not otherwise
    /// see.
    pub fn require_answer(&self, category: DataCategory) -> ApiResult<()> {
        self.require_relationship()?;
        if self.may_read(category) && self.grant(category).reason != AccessReason::EmergencyAccess {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "you may not answer: {}",
                self.grant(category).reason.explain(category)
            ))
            .about(self.patient_id, &[category]))
        }
    }

    /// Permission for acts that need a care relationship (linking a local ID).
    pub fn require_relationship(&self) -> ApiResult<()> {
        if self.care_relationship {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this needs a care relationship with the patient; emergency access is read-only"
                    .into(),
            )
            .about(self.patient_id, &[]))
        }
    }
}

/// Proof that the caller administers the network directory.
#[derive(Clone, Copy, Debug)]
pub struct AdminAccess(());

/// An administrator changes other members' profession, status and
/// identity-provider subject, not their own: one who could would grant
/// themselves a clinician's rights over every patient the coordination
/// centre cares for (the administrator is not a clinician) — directly, or
/// by handing their login to a clinician member they register. Another
/// administrator does it, on the record. (Two administrators acting
/// together, or one registering a member whose login it controls, are not
/// told apart from any other change: every one is an ADMINISTRATION entry
/// of the audit log, which is where such a grant is seen.)
pub fn may_change_member(principal: &Principal, member_id: Uuid) -> ApiResult<()> {
    match principal {
        Principal::Member { member_id: own, .. } if *own == member_id => Err(ApiError::Forbidden(
            "an administrator does not change their own profession, status or identity-provider subject: another network administrator does".into(),
        )),
        _ => Ok(()),
    }
}

pub fn require_admin(principal: &Principal) -> ApiResult<AdminAccess> {
    match principal.profession() {
        Some(Profession::NetworkAdministrator) => Ok(AdminAccess(())),
        _ => Err(ApiError::Forbidden(
            "only network administrators may do this (directory, API keys, the whole audit log)"
                .into(),
        )),
    }
}

/// Who may read a member's subject at the identity provider: the member, and
/// the network administrators who set it. It is an account name at another
/// system (often an e-mail address), not a directory entry.
/// The categories whose read showing data of `category` is: the category,
/// and for `ACCESS_HISTORY` also `CARE_TEAM` — who read a patient's data
/// (the history, an emergency access opened) names, mostly, the care team.
/// A reader shown the data reads, and is recorded as reading, all of them.
pub fn shown_with(category: DataCategory) -> impl Iterator<Item = DataCategory> {
    std::iter::once(category)
        .chain((category == DataCategory::AccessHistory).then_some(DataCategory::CareTeam))
}

pub fn may_read_external_subject(principal: &Principal, member_id: Uuid) -> ApiResult<()> {
    match principal {
        Principal::Member { member_id: own, .. } if *own == member_id => Ok(()),
        _ => require_admin(principal).map(|_| ()).map_err(|_| {
            ApiError::Forbidden(
                "a member's subject at the identity provider is for network administrators and the member"
                    .into(),
            )
        }),
    }
}

/// Which organisation a caller may link a local identifier for: its own. (An
/// identifier of another facility would let the caller probe that facility's
/// numbering through `CONFLICT`.)
pub fn may_link_identifier_for(principal: &Principal, organization_id: Uuid) -> ApiResult<()> {
    if principal.organization_id() == organization_id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "a local identifier can only be linked by its own organisation".into(),
        ))
    }
}

/// Who may withdraw a record (mark it entered in error): the organisation
/// that wrote it, which alone knows it was wrong. Another member of the
/// care team — a pharmacy, a care provider — could otherwise take a
/// clinic's drug contraindication out of the summary and the emergency
/// information. A correction by anyone else is a record of their own.
pub fn may_withdraw_record(principal: &Principal, source_organization_id: Uuid) -> ApiResult<()> {
    if principal.organization_id() == source_organization_id {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the organisation that wrote a record may mark it entered in error".into(),
        ))
    }
}

/// Who may write (or withdraw) a record of `kind` beyond its category: a
/// member of one of the kind's professions ([`RecordKind::authored_by`]),
/// or a system of an organisation where they practise — a system has no
/// profession, and a visiting-nurse station's key with
/// VISITING_NURSE_REPORTS write must not issue the physician's instruction.
/// `caller_kind`: the caller's organisation's kind (asked only of systems).
pub fn may_author(
    principal: &Principal,
    caller_kind: Option<OrganizationKind>,
    kind: crate::records::RecordKind,
) -> ApiResult<()> {
    let Some(professions) = kind.authored_by() else {
        return Ok(());
    };
    let allowed = match principal.profession() {
        Some(p) => professions.contains(&p),
        None => {
            caller_kind.is_some_and(|k| professions.iter().any(|p| practises_at(*p).contains(&k)))
        }
    };
    if allowed {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "a {} is written by {} (or a system of their organisation)",
        kind.as_str(),
        professions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Where the professions that author documents practise, for their
/// organisations' systems ([`may_author`]).
fn practises_at(profession: Profession) -> &'static [OrganizationKind] {
    match profession {
        Profession::Physician => &[OrganizationKind::Hospital, OrganizationKind::Clinic],
        Profession::Dentist => &[OrganizationKind::Hospital, OrganizationKind::DentalClinic],
        _ => &[],
    }
}

/// Who may end a care-team membership (with CARE_TEAM write on the
/// patient): the organisation itself, leaving the team; the organisation
/// that added it to the team; and the coordination centre, which keeps the
/// network's teams. Anyone else on the team would lock another facility
/// out of its own patient (a care manager ending the primary physician's
/// membership took the clinic's patient — by its own local ID — from it).
pub fn may_end_membership(
    principal: &Principal,
    caller_kind: Option<OrganizationKind>,
    membership_organization: Uuid,
    added_by: Option<Uuid>,
) -> ApiResult<()> {
    let own = principal.organization_id();
    if own == membership_organization
        || added_by == Some(own)
        || caller_kind == Some(OrganizationKind::CoordinationCenter)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "a care-team membership is ended by its organisation, by the organisation that added it, or by the coordination centre".into(),
        ))
    }
}

/// Who may change an organisation's directory entry — its functions, whether
/// it is public, its vacancies: the organisation itself (its members and its
/// systems: they know what it offers today) and the network administrators
/// who keep the directory.
pub fn may_edit_directory_entry(principal: &Principal, organization_id: Uuid) -> ApiResult<()> {
    if principal.organization_id() == organization_id
        || principal.profession() == Some(Profession::NetworkAdministrator)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "an organisation's directory entry is kept by the organisation and the network administrators"
                .into(),
        ))
    }
}

/// Who reviews the directory as a whole (the entries not confirmed for a
/// long time): the network administrators and municipal staff, who run the
/// programme's resource list (在宅医療・介護資源の把握).
pub fn may_review_directory(principal: &Principal) -> ApiResult<()> {
    if principal
        .profession()
        .is_some_and(|p| REGIONAL_PROFESSIONS.contains(&p))
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the directory's review lists are for network administrators and municipal staff"
                .into(),
        ))
    }
}

/// Who reads a municipality's indicators (活用状況, docs/indicators.md):
/// network administrators and the coordination centre's members for any
/// municipality; municipal staff at a municipality for their own. Nobody
/// else: the indicators are the programme's, not a care team's.
pub fn may_read_indicators(
    principal: &Principal,
    caller_kind: Option<OrganizationKind>,
    caller_municipality: Option<&str>,
    municipality: &str,
) -> ApiResult<()> {
    let profession = principal.profession();
    let allowed = profession == Some(Profession::NetworkAdministrator)
        || (profession.is_some() && caller_kind == Some(OrganizationKind::CoordinationCenter))
        || (profession == Some(Profession::MunicipalStaff)
            && caller_kind == Some(OrganizationKind::Municipality)
            && caller_municipality == Some(municipality));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "indicators are for network administrators, the coordination centre, and municipal staff for their own municipality"
                .into(),
        ))
    }
}

/// Over whom the caller may read the disaster register (災害時要配慮者名簿,
/// `services::disaster`), and which parts of an entry its role may read.
#[derive(Clone, Debug)]
pub struct RegisterScope {
    pub over: RegisterOver,
    /// The role reads CONTACTS (address, telephone); each patient's consent
    /// must share it too.
    pub role_reads_contacts: bool,
    /// The role reads CARE_TEAM (care manager, primary physician); likewise.
    pub role_reads_care_team: bool,
}

/// Whose entries the caller reads.
#[derive(Clone, Debug)]
pub enum RegisterOver {
    /// Municipal staff of a municipality, for residents of their own: each
    /// patient listed only where the consent in force covers the
    /// municipality's organisation and excludes none of IDENTITY and
    /// DISASTER_SUPPORT (CONTACTS, when excluded, is left blank). No care
    /// relationship: the municipality is not on care teams.
    Municipality {
        organization_id: Uuid,
        municipality: String,
    },
    /// A member of a care team whose role reads DISASTER_SUPPORT: the
    /// patients of its organisation's care teams whose DISASTER_SUPPORT it
    /// may read (relationship and consent, as SQL), optionally of one
    /// municipality.
    CareTeams {
        scope: RowScope,
        municipality: Option<String>,
    },
}

impl Policy {
    /// The one rule of who reads the disaster register: municipal staff of
    /// a municipality (for their own municipality: naming another is
    /// FORBIDDEN), and the roles that read DISASTER_SUPPORT, for their
    /// organisation's patients — in both cases a role (or key) that reads
    /// IDENTITY too, for an entry names the person; address and care team
    /// only where the role reads CONTACTS and CARE_TEAM. Anyone else is
    /// FORBIDDEN.
    pub fn disaster_register_scope(
        &self,
        principal: &Principal,
        caller_kind: Option<OrganizationKind>,
        caller_municipality: Option<&str>,
        municipality: Option<&str>,
    ) -> ApiResult<RegisterScope> {
        let reads = |c: DataCategory| self.role_level(principal, c) >= AccessLevel::Read;
        if !reads(DataCategory::DisasterSupport) || !reads(DataCategory::Identity) {
            return Err(ApiError::Forbidden(
                "the disaster register is for municipal staff and the care team's professions that read DISASTER_SUPPORT and IDENTITY"
                    .into(),
            ));
        }
        let scope = |over| RegisterScope {
            over,
            role_reads_contacts: reads(DataCategory::Contacts),
            role_reads_care_team: reads(DataCategory::CareTeam),
        };
        if principal.profession() == Some(Profession::MunicipalStaff)
            && caller_kind == Some(OrganizationKind::Municipality)
        {
            let own = caller_municipality.ok_or_else(|| {
                ApiError::Forbidden(
                    "your municipality's organisation names no municipality in the directory"
                        .into(),
                )
            })?;
            if municipality.is_some_and(|m| m != own) {
                return Err(ApiError::Forbidden(format!(
                    "municipal staff read the disaster register of their own municipality ({own})"
                )));
            }
            return Ok(scope(RegisterOver::Municipality {
                organization_id: principal.organization_id(),
                municipality: own.to_string(),
            }));
        }
        let rows = self
            .readable_rows(principal, DataCategory::DisasterSupport)
            .ok_or_else(|| ApiError::Forbidden("you may not read DISASTER_SUPPORT".into()))?;
        Ok(scope(RegisterOver::CareTeams {
            scope: rows,
            municipality: municipality.map(str::to_string),
        }))
    }
}

/// Proof that the caller speaks for its organisation about an infection
/// outbreak there (感染症の集団発生の連絡, `services::outbreaks`): it reports
/// and updates notices of its own organisation only.
#[derive(Clone, Copy, Debug)]
pub struct OutbreakReporter {
    organization_id: Uuid,
}

impl OutbreakReporter {
    /// The reporting organisation: the caller's own.
    pub fn organization_id(&self) -> Uuid {
        self.organization_id
    }
}

/// Professions that never report an outbreak for their organisation: the
/// network's administrators and municipal staff oversee the region, and an
/// ambulance crew's service has no residents or users to have an outbreak
/// among.
const NOT_OUTBREAK_REPORTERS: &[Profession] = &[
    Profession::NetworkAdministrator,
    Profession::EmsCrew,
    Profession::MunicipalStaff,
];

/// Organisations that have no residents or users of their own to have an
/// outbreak among — they oversee, coordinate or transport — so that none of
/// their members or systems can send a notice to a large share of the
/// region (a municipality sits on many care teams).
const NOT_OUTBREAK_REPORTING_KINDS: &[OrganizationKind] = &[
    OrganizationKind::Municipality,
    OrganizationKind::CoordinationCenter,
    OrganizationKind::AmbulanceService,
    OrganizationKind::PublicHealthCenter,
    OrganizationKind::CommunityGeneralSupportCenter,
];

/// Who reports an outbreak for an organisation (`caller_kind`, from the
/// directory): any of its members but those of [`NOT_OUTBREAK_REPORTERS`],
/// and its systems whose key may write something (a facility's own
/// infection-control software; a read-only key reports nothing) — never
/// for an organisation of [`NOT_OUTBREAK_REPORTING_KINDS`].
pub fn require_outbreak_reporter(
    principal: &Principal,
    caller_kind: Option<OrganizationKind>,
) -> ApiResult<OutbreakReporter> {
    if let Some(kind) = caller_kind.filter(|k| NOT_OUTBREAK_REPORTING_KINDS.contains(k)) {
        return Err(ApiError::Forbidden(format!(
            "outbreak notices are reported by facilities and services with residents or users; an organisation of kind {kind} does not report them"
        )));
    }
    match principal {
        Principal::Member { profession, .. } if NOT_OUTBREAK_REPORTERS.contains(profession) => {
            Err(ApiError::Forbidden(format!(
                "outbreak notices are reported by the facility's own staff; a member of profession {profession} does not report them"
            )))
        }
        Principal::System { permissions, .. }
            if !permissions.iter().any(|(_, l)| l == AccessLevel::ReadWrite) =>
        {
            Err(ApiError::Forbidden(
                "outbreak notices are reported by staff or by a system whose key may write; this key only reads"
                    .into(),
            ))
        }
        _ => Ok(OutbreakReporter {
            organization_id: principal.organization_id(),
        }),
    }
}

/// Proof that the caller may read statistics over patients (counts, no
/// identities) for a scope: one organisation, or the region (`None`).
#[derive(Clone, Copy, Debug)]
pub struct StatisticsAccess {
    organization: Option<Uuid>,
}

impl StatisticsAccess {
    /// The organisation reported on; `None`: the region.
    pub fn organization(&self) -> Option<Uuid> {
        self.organization
    }

    /// The same as [`StatisticsAccess::organization`], for reports about hospitals.
    pub fn hospital(&self) -> Option<Uuid> {
        self.organization
    }
}

/// Professions that oversee the region's coordination programme.
const REGIONAL_PROFESSIONS: &[Profession] =
    &[Profession::NetworkAdministrator, Profession::MunicipalStaff];
/// Organisations that run and evaluate it: the coordination support centre
/// and the municipalities (在宅医療・介護連携推進事業).
const REGIONAL_KINDS: &[OrganizationKind] = &[
    OrganizationKind::CoordinationCenter,
    OrganizationKind::Municipality,
];

/// Proof that the caller may open emergency access.
#[derive(Clone, Copy, Debug)]
pub struct EmergencyOpener {
    pub member_id: Uuid,
    pub organization_id: Uuid,
    /// What the access opens to this opener ([`emergency_categories`]).
    pub categories: &'static [DataCategory],
}

/// What emergency access opens to `principal`: by profession for a member,
/// nothing for a system.
/// Whether an organisation of `kind` is put on care teams — added to one,
/// or on the team of a patient it registers. Not an ambulance service: its
/// crews reach a patient through emergency access (hours, a reason, a
/// notification to the team, the emergency set, never over the patient's
/// objection), where a membership would open its role's row — the home
/// address besides — for as long as it lasted.
pub fn joins_care_teams(kind: OrganizationKind) -> bool {
    kind != OrganizationKind::AmbulanceService
}

/// Whether a member of `profession` may work for an organisation of
/// `kind`. An ambulance crew (`EMS_CREW`) works for an ambulance service
/// only: its row of the matrix is what break-the-glass opens, for hours,
/// with a reason, and never over the patient's objection — a crew member
/// registered at a hospital on the care team would read it for as long as
/// the membership lasted, without any of that ([`joins_care_teams`]).
pub fn may_work_at(field: &str, profession: Profession, kind: OrganizationKind) -> ApiResult<()> {
    if profession == Profession::EmsCrew && kind != OrganizationKind::AmbulanceService {
        return Err(ApiError::bad_input(
            field,
            "an ambulance crew (EMS_CREW) works for an ambulance service: its crews reach patients through emergency access, not a care team",
        ));
    }
    Ok(())
}

pub fn emergency_categories_of(principal: &Principal) -> &'static [DataCategory] {
    match principal {
        Principal::Member { profession, .. } => emergency_categories(*profession),
        Principal::System { .. } => &[],
    }
}

/// 救急時の患者検索の上限: at most `searches` emergency patient searches per
/// member in a window of `window`. A crew member at one call searches once
/// or twice (a misspelt reading, then the kanji); ten in an hour is more
/// calls than a crew attends, and far too few to sweep birth dates by.
#[derive(Clone, Copy, Debug)]
pub struct EmergencySearchLimit {
    pub searches: u32,
    pub window: Duration,
}

impl Default for EmergencySearchLimit {
    fn default() -> Self {
        EmergencySearchLimit {
            searches: 10,
            window: Duration::minutes(60),
        }
    }
}

/// Proof that the caller may search patients by name and birth date in an
/// emergency (救急時の患者検索): a member of an [`EMERGENCY_PROFESSIONS`]
/// profession — who could open emergency access on whom it finds. What it may
/// learn of a candidate is [`EmergencySearcher::CANDIDATE_CATEGORIES`].
#[derive(Clone, Copy, Debug)]
pub struct EmergencySearcher {
    pub member_id: Uuid,
}

impl EmergencySearcher {
    /// A candidate shows only who it is (name, reading, birth date, sex, the
    /// municipality of the address): IDENTITY, never clinical data.
    pub const CANDIDATE_CATEGORIES: &[DataCategory] = &[DataCategory::Identity];
    /// The most candidates a search returns; more, and the caller is asked
    /// for more criteria rather than shown a list.
    pub const MAX_CANDIDATES: usize = 5;
}

impl Policy {
    /// Members who may open emergency access may search for the patient to
    /// open it on; systems (API keys) and other professions may not.
    pub fn require_emergency_searcher(
        &self,
        principal: &Principal,
    ) -> ApiResult<EmergencySearcher> {
        match self.require_emergency_opener(principal) {
            Ok(opener) => Ok(EmergencySearcher {
                member_id: opener.member_id,
            }),
            Err(_) => Err(ApiError::Forbidden(format!(
                "emergency patient search is for {} members only",
                EMERGENCY_PROFESSIONS
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl Policy {
    /// The caller's own level for a category, before consent and relationship.
    pub fn role_level(&self, principal: &Principal, category: DataCategory) -> AccessLevel {
        match principal {
            Principal::Member { profession, .. } => self.matrix.level(*profession, category),
            Principal::System { permissions, .. } => permissions.level(category),
        }
    }

    /// Registering a patient creates identity data: it needs identity write.
    pub fn require_may_register_patient(&self, principal: &Principal) -> ApiResult<()> {
        if self.role_level(principal, DataCategory::Identity) == AccessLevel::ReadWrite {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "registering patients needs write access to IDENTITY, which your profession (or system) lacks".into(),
            ))
        }
    }

    /// Statistics about `category` (counts over patients, no identities)
    /// for one organisation or, with `None`, the region:
    /// - the region, or any organisation: network administrators and
    ///   municipal staff, and members or systems of the coordination centre
    ///   or a municipality whose role (or key) may read `category`;
    /// - one's own organisation: members and systems whose role (or key) may
    ///   read `category` (a hospital's discharge nurse or MSW).
    ///
    /// `caller_kind` is the kind of the caller's organisation.
    pub fn require_statistics(
        &self,
        principal: &Principal,
        caller_kind: Option<OrganizationKind>,
        category: DataCategory,
        subject: Option<Uuid>,
    ) -> ApiResult<StatisticsAccess> {
        let reads = self.role_level(principal, category) >= AccessLevel::Read;
        let regional = principal
            .profession()
            .is_some_and(|p| REGIONAL_PROFESSIONS.contains(&p))
            || (reads && caller_kind.is_some_and(|k| REGIONAL_KINDS.contains(&k)));
        let own = subject == Some(principal.organization_id());
        if regional || (own && reads) {
            return Ok(StatisticsAccess {
                organization: subject,
            });
        }
        Err(ApiError::Forbidden(match subject {
            None => format!(
                "statistics of the region are for network administrators, municipal staff, and the coordination centre's and municipalities' members who may read {category}"
            ),
            Some(_) if own => format!(
                "your profession (or system permissions) does not include {category}, which these statistics are about"
            ),
            Some(_) => "you may read these statistics for your own organisation only".into(),
        }))
    }

    pub fn require_emergency_opener(&self, principal: &Principal) -> ApiResult<EmergencyOpener> {
        match principal {
            Principal::Member {
                member_id,
                organization_id,
                profession,
            } if EMERGENCY_PROFESSIONS.contains(profession) => Ok(EmergencyOpener {
                member_id: *member_id,
                organization_id: *organization_id,
                categories: emergency_categories(*profession),
            }),
            _ => Err(ApiError::Forbidden(
                "emergency access can be opened by physicians, nurses and EMS crews only".into(),
            )),
        }
    }

    /// The verdicts for many patients at once, in one statement whatever
    /// their number: each known patient's row with the caller's care
    /// relationship, its emergency access and the consent in force. Only
    /// patients the caller may know of (a care relationship or emergency
    /// access: [`Policy::known_patients`]) are read; the others are absent,
    /// exactly like patients that do not exist. The database decides that
    /// before it returns a row, so a patient the caller may not know of costs
    /// no more than one that does not exist — no row to send, read and parse
    /// — and a request naming many of them takes no longer than one naming
    /// as many unknown ids (`graphql/reach.rs`).
    ///
    /// The statement is driven by the ids asked about, not by the patients'
    /// table: the care-team and emergency probes run for every id asked,
    /// whether or not a patient has it, and the patient's row is read only
    /// for an id that passed them. Driven by the table, an id no patient has
    /// stopped at the primary key while a hidden patient's went on to the
    /// probes (a black-box attack timed hidden patients ≈ 5 % slower to
    /// refuse; `bench/README.md`, the refusal timing check).
    pub async fn evaluate(
        &self,
        db: &DatabaseConnection,
        principal: &Principal,
        patient_ids: &[Uuid],
    ) -> ApiResult<HashMap<Uuid, Verdict>> {
        if patient_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let today = self.clock.today();
        let now = self.clock.now();
        let backend = db.get_database_backend();

        // One scope for both care-team tests — the verdict's relationship in
        // the select list and the known-patients condition — probed once per
        // patient asked about, whatever the organisation's size.
        let scope = self
            .scope_at(principal, rows::Rule::Know, today, now)
            .probed_per_patient();
        let asked = Alias::new("asked");
        let mut query = Query::select();
        // The ids asked about as a table of one column: an array unnested on
        // PostgreSQL (one statement whatever their number, as `id_in`), a
        // VALUES list on SQLite. Each names its column after its own rules.
        let asked_id = match backend {
            sea_orm::DbBackend::Postgres => {
                query.from_function(
                    Func::cust(Alias::new("unnest")).arg(Expr::val(patient_ids.to_vec())),
                    asked.clone(),
                );
                (asked.clone(), asked.clone())
            }
            _ => {
                query.from_values(patient_ids.iter().copied(), asked.clone());
                (asked.clone(), Alias::new("column1"))
            }
        };
        query
            .columns(patient::Column::iter().map(|c| (patient::Entity, c)))
            .expr_as(
                Expr::exists(scope.on_team(asked_id.clone())),
                Alias::new("on_team"),
            )
            .expr_as(
                Expr::col((consent::Entity, consent::Column::Scope)),
                Alias::new("consent_scope"),
            )
            .expr_as(
                Expr::col((consent::Entity, consent::Column::OrganizationIds)),
                Alias::new("consent_organization_ids"),
            )
            .expr_as(
                Expr::col((consent::Entity, consent::Column::ExcludedCategories)),
                Alias::new("consent_excluded_categories"),
            )
            .inner_join(
                patient::Entity,
                Expr::col((patient::Entity, patient::Column::Id)).equals(asked_id.clone()),
            )
            // At most one consent is in force per patient (a partial unique
            // index on the status), so the join keeps one row per patient.
            // A pending consent, not yet confirmed, grants nothing.
            .left_join(
                consent::Entity,
                Condition::all()
                    .add(
                        Expr::col((consent::Entity, consent::Column::PatientId))
                            .equals((patient::Entity, patient::Column::Id)),
                    )
                    .add(rows::consent_in_force_at(consent::Entity)),
            )
            // On the asked id, not the patient's: decided before the
            // patient's row is looked up.
            .cond_where(scope.on(asked_id.clone()));
        if let Principal::Member { member_id, .. } = principal {
            let latest_grant = Query::select()
                .column((emergency_grant::Entity, emergency_grant::Column::ExpiresAt))
                .from(emergency_grant::Entity)
                .and_where(
                    Expr::col((emergency_grant::Entity, emergency_grant::Column::PatientId))
                        .equals(asked_id.clone()),
                )
                .cond_where(rows::grant_in_force_at(
                    emergency_grant::Entity,
                    *member_id,
                    now,
                ))
                .order_by(emergency_grant::Column::ExpiresAt, Order::Desc)
                .limit(1)
                .to_owned();
            query.expr_as(
                SimpleExpr::SubQuery(None, Box::new(latest_grant.into_sub_query_statement())),
                Alias::new("emergency_until"),
            );
        }

        // Many patients at once (a batch of writes): a custom plan. After
        // five executions of a connection PostgreSQL plans a prepared
        // statement generically — good for the one or few patients of a
        // read, ≈ 7× slower for hundreds (≈ 370 ms instead of ≈ 50 ms for
        // 450 patients, bench/RESULTS.md). `SET LOCAL` keeps the setting to
        // this statement's transaction.
        let rows = if backend == sea_orm::DbBackend::Postgres
            && patient_ids.len() >= CUSTOM_PLAN_FROM_PATIENTS
        {
            let txn = sea_orm::TransactionTrait::begin(db).await?;
            txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
                .await?;
            let rows = txn.query_all(&query).await?;
            txn.commit().await?;
            rows
        } else {
            db.query_all(&query).await?
        };
        let mut out = HashMap::new();
        for row in rows {
            let patient = patient::Model::from_query_result(&row, "")?;
            let relationship: bool = row.try_get("", "on_team")?;
            let emergency_until: Option<DateTime<Utc>> = match principal {
                Principal::Member { .. } => row.try_get("", "emergency_until")?,
                Principal::System { .. } => None,
            };
            if !relationship && emergency_until.is_none() {
                // The condition above let it through: cannot happen.
                continue;
            }
            let consent = match row.try_get::<Option<String>>("", "consent_scope")? {
                Some(scope) => Some(ConsentTerms::from_row(
                    &scope,
                    &row.try_get::<String>("", "consent_organization_ids")?,
                    &row.try_get::<String>("", "consent_excluded_categories")?,
                )?),
                None => None,
            };
            let access = self.decide(
                principal,
                patient.id,
                relationship,
                emergency_until,
                consent,
            )?;
            out.insert(
                patient.id,
                Verdict {
                    patient: Arc::new(patient),
                    access,
                },
            );
        }
        Ok(out)
    }

    /// The verdicts of many callers on one patient — the audience of an
    /// event on the patient (`patientEvents` subscribers) — in four
    /// statements whatever their number, run together: the consent in
    /// force, whether the patient exists, the organisations on its care
    /// team today, and the emergency grants in force of the callers'
    /// members (not asked when no caller is a member). Each caller's verdict is
    /// then [`Policy::evaluate`]'s: a caller neither on the care team nor
    /// holding emergency access may not know of the patient (absent from
    /// the answer, like a patient that does not exist), and the others get
    /// [`Policy::decide`]'s grants from the same facts. The conditions are
    /// the ones `evaluate`'s statement uses ([`active_on`],
    /// [`rows::consent_in_force_at`], [`rows::grant_unexpired_at`], for a set of
    /// members), so the two cannot disagree on a rule.
    pub async fn evaluate_audience(
        &self,
        db: &DatabaseConnection,
        patient_id: Uuid,
        principals: &[Principal],
    ) -> ApiResult<HashMap<Principal, PatientAccess>> {
        if principals.is_empty() {
            return Ok(HashMap::new());
        }
        let today = self.clock.today();
        let now = self.clock.now();
        let consent_row = consent::Entity::find()
            .filter(consent::Column::PatientId.eq(patient_id))
            .filter(rows::consent_in_force_at(consent::Entity))
            .one(db);
        let exists = patient::Entity::find_by_id(patient_id)
            .select_only()
            .column(patient::Column::Id)
            .into_tuple::<Uuid>()
            .one(db);
        let organizations: Vec<Uuid> = principals
            .iter()
            .map(Principal::organization_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let backend = db.get_database_backend();
        let on_team = care_team_membership::Entity::find()
            .select_only()
            .column(care_team_membership::Column::OrganizationId)
            .filter(care_team_membership::Column::PatientId.eq(patient_id))
            .filter(crate::services::id_in(
                backend,
                (
                    care_team_membership::Entity,
                    care_team_membership::Column::OrganizationId,
                ),
                &organizations,
            ))
            .filter(active_on(today))
            .into_tuple::<Uuid>()
            .all(db);
        let members: Vec<Uuid> = principals
            .iter()
            .filter_map(|p| match p {
                Principal::Member { member_id, .. } => Some(*member_id),
                Principal::System { .. } => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let grants = async {
            if members.is_empty() {
                return Ok(Vec::new());
            }
            emergency_grant::Entity::find()
                .select_only()
                .column(emergency_grant::Column::MemberId)
                .column(emergency_grant::Column::ExpiresAt)
                .filter(emergency_grant::Column::PatientId.eq(patient_id))
                .filter(crate::services::id_in(
                    backend,
                    (emergency_grant::Entity, emergency_grant::Column::MemberId),
                    &members,
                ))
                .filter(rows::grant_unexpired_at(emergency_grant::Entity, now))
                .into_tuple::<(Uuid, DateTime<Utc>)>()
                .all(db)
                .await
        };
        let (consent_row, exists, on_team, grants) =
            futures_util::try_join!(consent_row, exists, on_team, grants)?;
        if exists.is_none() {
            return Ok(HashMap::new());
        }
        let on_team: HashSet<Uuid> = on_team.into_iter().collect();
        // The latest expiry per member, as `evaluate`'s sub-select takes it.
        let mut emergency: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
        for (member, expires_at) in grants {
            let latest = emergency.entry(member).or_insert(expires_at);
            *latest = std::cmp::Ord::max(*latest, expires_at);
        }
        let consent = consent_row
            .map(|c| ConsentTerms::from_row(&c.scope, &c.organization_ids, &c.excluded_categories))
            .transpose()?;
        let mut out = HashMap::new();
        for principal in principals.iter().collect::<HashSet<_>>() {
            let relationship = on_team.contains(&principal.organization_id());
            let emergency_until = match principal {
                Principal::Member { member_id, .. } => emergency.get(member_id).copied(),
                Principal::System { .. } => None,
            };
            if !relationship && emergency_until.is_none() {
                continue;
            }
            let access = self.decide(
                principal,
                patient_id,
                relationship,
                emergency_until,
                consent.clone(),
            )?;
            out.insert(principal.clone(), access);
        }
        Ok(out)
    }

    /// The grants of every category for one patient, from what [`Policy::evaluate`] read.
    fn decide(
        &self,
        principal: &Principal,
        patient_id: Uuid,
        relationship: bool,
        emergency_until: Option<DateTime<Utc>>,
        consent: Option<ConsentTerms>,
    ) -> ApiResult<PatientAccess> {
        let coverage = if relationship {
            Some(ConsentCoverage::of(
                consent.as_ref(),
                principal.organization_id(),
            ))
        } else {
            None
        };
        let mut grants = BTreeMap::new();
        for &category in DataCategory::ALL {
            let role = self.role_level(principal, category);
            let mut grant = match &coverage {
                Some(coverage) => coverage.decide(category, role),
                None => Grant {
                    level: AccessLevel::None,
                    reason: AccessReason::NotAnEmergencyCategory,
                },
            };
            if emergency_until.is_some()
                && grant.level == AccessLevel::None
                && emergency_categories_of(principal).contains(&category)
            {
                grant = Grant {
                    level: AccessLevel::Read,
                    reason: AccessReason::EmergencyAccess,
                };
            }
            grants.insert(category, grant);
        }
        Ok(PatientAccess {
            patient_id,
            grants: Arc::new(grants),
            care_relationship: relationship,
            emergency_until,
        })
    }
}

/// What [`Policy::evaluate`] finds for a patient the caller may know of: the
/// row, and the caller's access. There is none for a patient the caller may
/// not know of, as for one that does not exist: both are refused alike
/// (`graphql/reach.rs`).
#[derive(Clone, Debug)]
pub struct Verdict {
    pub patient: Arc<patient::Model>,
    pub access: PatientAccess,
}

/// What the patient's consent in force says about one organisation.
enum ConsentCoverage {
    None,
    Covered { excluded: HashSet<DataCategory> },
    NotCovered,
}

impl ConsentCoverage {
    fn of(consent: Option<&ConsentTerms>, org: Uuid) -> Self {
        match consent {
            None => ConsentCoverage::None,
            Some(c) if c.covers(org) => ConsentCoverage::Covered {
                excluded: c.excluded().iter().copied().collect(),
            },
            Some(_) => ConsentCoverage::NotCovered,
        }
    }

    fn decide(&self, category: DataCategory, role: AccessLevel) -> Grant {
        let deny = |reason| Grant {
            level: AccessLevel::None,
            reason,
        };
        if role == AccessLevel::None {
            return deny(AccessReason::NotPermittedForRole);
        }
        let permitted = Grant {
            level: role,
            reason: AccessReason::Permitted,
        };
        // Consent records are readable with the relationship alone.
        if category == DataCategory::Consent {
            return permitted;
        }
        match self {
            ConsentCoverage::None | ConsentCoverage::NotCovered => deny(AccessReason::NoConsent),
            ConsentCoverage::Covered { excluded } if excluded.contains(&category) => {
                deny(AccessReason::ExcludedByConsent)
            }
            ConsentCoverage::Covered { .. } => permitted,
        }
    }
}

/// A care-team membership is active on `day` when it started on or before it and
/// has not ended before it (the end date is inclusive).
pub fn active_on(day: NaiveDate) -> Condition {
    rows::active_on_at(care_team_membership::Entity, day)
}

/// What break-the-glass opens to whom, and why: a table of
/// [`matrix::EMERGENCY_RATIONALE`] with a column per opening profession.
fn emergency_rationale() -> String {
    let mut out = String::from(
        "What emergency access opens, by profession, and why (the rationale is data in \
`schema/src/policy/matrix.rs`, `EMERGENCY_RATIONALE`):\n\n| category |",
    );
    for p in EMERGENCY_PROFESSIONS {
        out.push_str(&format!(" {} |", p.as_str()));
    }
    out.push_str(" why |\n|---|");
    for _ in EMERGENCY_PROFESSIONS {
        out.push_str(":-:|");
    }
    out.push_str("---|\n");
    for (category, why) in matrix::EMERGENCY_RATIONALE {
        out.push_str(&format!("| `{}` |", category.as_str()));
        for p in EMERGENCY_PROFESSIONS {
            let opened = emergency_categories(*p).contains(category);
            out.push_str(if opened { " R |" } else { " – |" });
        }
        out.push_str(&format!(" {why} |\n"));
    }
    out.push('\n');
    out
}

/// `docs/access-policy.md`, generated from the matrix (`renkei access-policy`).
pub fn document(matrix: &Matrix) -> String {
    let mut out = String::new();
    out.push_str("# Access policy\n\n");
    out.push_str("<!-- Generated by `renkei access-policy` from schema/src/policy/matrix.rs; a test keeps it in step. Do not edit by hand. -->\n\n");
    out.push_str(
        "Every read and write of patient data passes one policy (`schema/src/policy/`). \
A caller — a member (professional, by JWT) or an organisation's system (by API key) — \
sees a data category of a patient only when all of these hold:\n\n\
1. **Care relationship**: the caller's organisation has an active care-team membership \
for the patient. Without one (and without emergency access) the patient does not exist \
for the caller: `NOT_FOUND`, never `FORBIDDEN`.\n\
2. **Consent**: the patient's active consent covers the organisation (network-wide \
包括同意 minus excluded organisations, or 個別同意 listing it) and does not exclude the \
category. `CONSENT` itself needs only the relationship. Withdrawal takes effect for the \
next request; a consent awaiting the coordination centre's confirmation grants nothing \
(see *Changing consent* below).\n\
3. **Role**: the caller's profession (below), or the API key's permissions, allows the \
category. Writing needs `RW` and a care relationship.\n\n\
A field the caller may not read is `null`, with an error whose `extensions` are \
`code: FORBIDDEN_FIELD`, `category` and `reason` (`NOT_PERMITTED_FOR_ROLE`, `NO_CONSENT`, \
`EXCLUDED_BY_CONSENT`, `NOT_AN_EMERGENCY_CATEGORY`); the rest of the response is delivered. \
`Patient.access` lists, for the caller, every category with read/write and the reason.\n\n",
    );
    out.push_str("## A refusal says nothing\n\n");
    out.push_str(
        "A patient the caller may not know of and a patient that does not exist are refused \
alike, on every path — `patient(id:)`, `patientByLocalId`, federation `_entities`, \
subscriptions, the printable page, `openEmergencyAccess` and every mutation that names a \
patient: the same `NOT_FOUND` (code, message, path; in the batch lookups \
`patientsByLocalIds` and `patientsByInsuredPersonIdentifiers`, the same `null` in the \
entry's place), a `DENIED` entry in the audit \
log, one for each reference a request names (with the patient id asked for; for a local \
ID, the organisation and the local ID in the detail — and, for a local ID or an \
insured-person identifier that matched a hidden patient, that patient and why it was refused, \
which only the auditors reading the log see, and the patient's care team as an attempt in its \
access history), and the same work — the policy is \
evaluated even when the reference matched nothing, probes the care team and emergency \
access for every id asked whether a patient has it or not, reads nothing of a patient the \
caller may not know of, and the response waits for the audit entries either way — so it takes \
the same time, for one reference or many in one request (checked by \
`tests/timing/refusal_timing.rs` in CI; what is left is a facility's local-ID lookup \
returning a row for each hidden patient it names and none for an unknown number: \
≈ 40 µs a reference in a debug build, `bench/README.md`). Objects bound to a patient and \
looked up by their own id (records, liaison threads and messages, admission sheets, \
discharge notices and conferences, care-team memberships, notifications) are refused \
alike too — `NOT_FOUND` of the object and a `DENIED` entry — when they do not exist, when \
their patient is hidden from the caller, or when they are not addressed to the caller's \
organisation; records, admission and discharge documents and care-team memberships also \
when their category is closed to the caller. (A liaison thread whose category is closed \
to a member of the patient's care team is `null` with `FORBIDDEN_FIELD`: the care team \
knows of the patient.) The `DENIED` entry of a refused object carries the object's \
category (a record's own, `LIAISON_MESSAGES` for a thread or message, a notification's \
kind's — `LIAISON_MESSAGES`, `ADMISSION_DISCHARGE`, `CONSENT`), whatever the cause of the \
refusal: it tells of an object of that category (see *Access history in part* below).\n\n",
    );
    out.push_str(consents::DOCUMENT);
    out.push_str("## Break-the-glass (救急時閲覧)\n\n");
    out.push_str(&format!(
        "{} may open emergency access to any patient with `openEmergencyAccess`, stating a reason: \
a reason code (`reasonCode`: {}), words (`reason`, at least {} characters alone — 「救急」 \
is a reason — at most {}, counted in characters after trimming whitespace; only characters \
that show count, and invisible formatting characters such as zero-width spaces or direction \
overrides are refused), or both; \
`OTHER` needs words. \
It grants read access to {} only — to physicians and nurses (the receiving hospital) also {} — for a limited time (4 hours by default, \
`RENKEI_EMERGENCY_ACCESS_MINUTES`), is refused where the patient has recorded an objection \
— answered as for a patient that does not exist (`NOT_FOUND`), as the emergency search leaves \
such a patient out: the objection is the patient's wish, not the opener's to learn; the audit \
log records it —, is audited as `BREAK_THE_GLASS` (the detail names the code and its label, then the words), \
and notifies the organisations of the patient's care team. \
An ambulance service's crews reach a patient this way: an ambulance service is not put on \
care teams (`addCareTeamMember`: `BAD_USER_INPUT`) and does not register patients, which \
would put it on one (`registerPatient`: `FORBIDDEN`), where its role's row would open, for as \
long as the membership lasted, what break-the-glass opens for hours with a reason and a \
notification — and over the patient's objection to emergency access. For the same reason an \
`EMS_CREW` member is registered at an ambulance service only (`registerMember`, \
`setMemberProfession`: `BAD_USER_INPUT`), not at a hospital on a care team.\n\n\
Every read made under emergency access — a field, a summary part, the timeline, \
`emergencyInformation`, the printable page, an event delivered to a subscription — is \
recorded as `EMERGENCY_READ` (not `READ`) when the category was open to the caller only by \
its emergency access (or, for the patient itself, when the caller has no care \
relationship). An auditor lists them with `auditLog(filter: {{ action: EMERGENCY_READ }})`; \
reads under a care relationship and consent stay `READ`.\n\n\
A bulk print of emergency sheets (`GET /emergency-sheets`, `docs/emergency-information.md`) \
is decided patient by patient exactly as the single page, and recorded as each patient's \
reads plus one `EXPORT` entry without a patient whose detail names every patient printed \
(`auditLog(filter: {{ action: EXPORT }})`).\n\n",
        EMERGENCY_PROFESSIONS
            .iter()
            .map(|p| format!("`{}`", p.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        crate::domain::EmergencyReasonCode::ALL
            .iter()
            .map(|c| format!("`{}` {}", c.as_str(), c.label()))
            .collect::<Vec<_>>()
            .join(", "),
        crate::domain::EmergencyReason::TEXT_ALONE_MIN_CHARS,
        crate::domain::EmergencyReason::TEXT_MAX_CHARS,
        EMERGENCY_CATEGORIES
            .iter()
            .map(|c| format!("`{}`", c.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        EMERGENCY_CLINICAL_CATEGORIES
            .iter()
            .filter(|c| !EMERGENCY_CATEGORIES.contains(c))
            .map(|c| format!("`{}`", c.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    out.push_str(&emergency_rationale());
    out.push_str("## Lists, pages and versions\n\n");
    out.push_str(
        "What a caller may not read does not show in what it may: not as an item, nor as \
a gap, a count or a version number.\n\n\
- **Lists decide before they page.** An organisation's lists of many patients' data \
(`careTeamDischargeNotices`, `admissionSheetsReceived`, `dischargeConferenceInvitations`, \
`careConferenceInvitations` — each conference kind under its own category —, `notifications`, \
`liaisonInbox`, `disasterRegister`) keep, in their query, only rows whose patient and category \
the caller may read now — the rules above as SQL — and only then take the page. A page holds \
the next `first` readable rows and `hasNextPage` is true exactly when another follows, so a \
caller without the category, or left out by a consent, gets the same page, cursors and \
`hasNextPage` whether rows it may not read exist or not. A role without the category gets an \
empty list without a query.\n\
- **Access history in part.** `Patient.accessHistory` leaves out entries about categories \
closed to the reader (that someone wrote an HIV test is HIV data); an entry about some lists \
only the readable categories, without its detail; no entry shows its hash (emptied only where \
an entry is shown in part, it would tell of closed data). A refused attempt (`DENIED`) \
shows who tried, when, and the categories the reader may read, never its detail: the \
detail of someone else's refusal names what was asked for (a thread not addressed to the \
reader's organisation, another facility's local ID). Administrators read every entry whole \
in `auditLog`.\n\
- **Versions.** A record's versions are counted as the caller sees them. A version of a \
category the caller may not read is not counted, and a version that changed only what the \
caller may not read is one version with the one before it — to a reader without \
`CONDITIONS`, an emergency sheet whose hand-typed diagnoses alone were revised has not \
changed. `version` is 1 for the first version the caller sees and one more for each later \
one; `history` lists the earlier ones, numbered the same way; `recordedAt` and `author` are \
of the first version of those that stand together; an event about a new version \
(`patientEvents`) reaches only subscribers to whom it is a version; the printable page shows \
the same number. So a diagnosis first recorded in a sensitive category and later corrected \
is, to a reader without that category, a first version without history. A write's `outcome` \
is `UNCHANGED` when it changed nothing the writer may read, and `CREATED` only for a new \
record: a writer corrects only a record whose current category it may write (below, *Whose \
work*), so it reads the version it replaces.\n\
- **Parts of a record.** An emergency sheet's hand-typed diagnoses are read and written \
under `CONDITIONS`, its hand-typed medications under `MEDICATIONS` (and the sheet's own \
category). A writer that may not write such a part leaves it empty and it is carried \
forward from the sheet the new one replaces (the record's current version, or the patient's \
newest sheet), so it cannot erase what it may not write; filling it is `FORBIDDEN`. A \
visiting-nurse instruction's main diagnosis (主たる傷病名) and a physician's opinion's \
diagnoses (主治医意見書の診断名) are read as diagnoses, under `CONDITIONS`: null with \
`FORBIDDEN_FIELD` beside the rest of the document for a reader without it (a care worker \
reads the instruction, and a social worker, a dental hygienist or municipal staff the \
opinion, not the diagnoses), audited under `CONDITIONS`, and a version that changed only \
the diagnoses is one version with the one before to such a reader. Whatever they name: one \
that names HIV refused under `SENSITIVE_HIV` would tell every reader of `CONDITIONS` what it \
names. Writing either needs write access to `CONDITIONS` too (they always hold a \
diagnosis), and the write is audited under both categories.\n\n",
    );
    out.push_str("## Whose work\n\n");
    out.push_str(
        "Write access to a category lets a caller add to the patient's record, not undo another \
organisation's work (`FORBIDDEN` otherwise):\n\n\
- **Records** are marked entered in error only by the organisation that wrote them, and a \
`sourceRecordId` names a record of the sender's own organisation: a new version corrects \
one's own record — by a writer that may write the category the record holds: an infection \
record in `SENSITIVE_HIV` is not corrected by a system that writes `INFECTIONS` alone, nor a \
psychiatric diagnosis by a nurse (`FORBIDDEN`, without naming the category). Its `WRITE` \
entry names the category the record held as well as the one it holds now (an HIV result \
corrected to another infection is a write of both).\n\
- **A physician's documents** — `PHYSICIAN_OPINION` (主治医意見書) and \
`VISITING_NURSE_INSTRUCTION` (訪問看護指示書) — are written by physicians, though care \
managers write `CARE_CERTIFICATION` and nurses `VISITING_NURSE_REPORTS`: a newer record of \
the kind replaces the physician's in the summary; `HOME_CARE_GUIDANCE_INSTRUCTION` \
(居宅療養管理指導の指示) by physicians and dentists, not by the pharmacist who carries it \
out. A system (API key) has no profession: it writes them for a hospital or a clinic (the \
guidance instruction also for a dental clinic). The same goes for marking them entered in \
error.\n\
- **Care-team memberships** are ended by the membership's organisation, by the organisation \
that added it, or by the coordination centre; the patient's last open-ended membership does \
not end (`CONFLICT`: nobody could reach the patient again) unless another has begun by the day \
after its last (a handover planned ahead; one beginning later would leave a gap). A start or an end is set at most a year ahead (`BAD_USER_INPUT`); \
an end already set may be brought forward while it has not passed, never put off (`CONFLICT`).\n\
- **Answers** to what was addressed to the caller's organisation (an invitation to a \
conference) need the category readable without break-the-glass: emergency access reads, it \
never answers.\n\
- **Other facilities' local IDs** (`Patient.identifiers`) show only to a reader of \
`CARE_TEAM`: which organisations know the patient is the care team's business. Others see \
their own organisation's, and find a patient by another organisation's local ID \
(`patientByLocalId(organizationId:)`, `patientsByLocalIds`) only as readers of `CARE_TEAM`: \
otherwise `NOT_FOUND`, as for a local ID no patient holds.\n\
- **The care team's organisations** are named only by readers of `CARE_TEAM`: a liaison \
thread's addressees, a conference's invitees and an admission sheet's hospital by id \
(`FORBIDDEN` otherwise, for one on the team and one not alike: address the whole team), \
a conference's `invitations`, a liaison thread's `addressees` and a message's `readBy` \
list others' only to them (recorded as a `CARE_TEAM` read), and `Patient.accessHistory` and \
the `EMERGENCY_ACCESS_OPENED` event (who read the patient's data is, mostly, the team) to \
readers of both `ACCESS_HISTORY` and `CARE_TEAM`. A record's or a message's author is named to whoever may read it: who wrote it \
is part of what was written.\n\
- **Refusals of these acts** (`FORBIDDEN` of a write, a withdrawal, a physician's document, \
ending a membership, naming the team) are recorded as `DENIED` entries naming the patient and \
the categories, as refused reads are.\n\n",
    );
    out.push_str("## Default matrix (職種別アクセス権)\n\n");
    out.push_str("`RW` read and write, `R` read, `–` none. A network overrides cells with a TOML file named by `RENKEI_POLICY_FILE`:\n\n");
    out.push_str("```toml\n[professions.CARE_WORKER]\nLAB_RESULTS = \"READ\"   # NONE, READ or READ_WRITE\n```\n\n");
    out.push_str("An unknown profession, category or level refuses the start, naming it.\n\n");
    out.push_str(&matrix.markdown());
    out.push_str("\nColumns, in order: ");
    out.push_str(
        &Profession::ALL
            .iter()
            .map(|p| format!("`{}`", p.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push_str(".\n");
    out.push_str("\n### Why each row (根拠)\n\n");
    out.push_str(
        "Seed references are `file:line` in the project's source documents (`003` the \
Ministry's guide 手引き Ver.4, `002` the Kitami, Kamaishi and Komatsu talks, `000` Kitakami). \
Visiting-nurse reports (`VISITING_NURSE_REPORTS`) and swallowing and diet form \
(`NUTRITION_SWALLOWING`) have categories of their own so that the care side can read them \
without reading every clinical or dental record; a consent that excluded \
`CLINICAL_DOCUMENTS` or `DENTAL` before they moved excludes them too \
(migration `m20261212_000012_practice_categories`). The request for a dental home visit \
(`DENTAL_REFERRAL`: 歯科往診依頼書 with its screening sheet, Kamaishi's flow 002:2079–2113) is a \
category of its own because it is written by whoever visits the patient — nurse, care manager, \
care worker, pharmacist, therapist, dietitian, physician — and read by the dental side, while \
`DENTAL` is written by dentists and hygienists only; a new category, it is shared under a \
consent unless the consent excludes it by name (excluding `DENTAL` does not exclude it). \
`DISASTER_SUPPORT` (災害時要配慮情報) is what the disaster register shows: which medical \
dependencies — home oxygen, ventilator, dialysis, suction, tube feeding, insulin — the hub \
derives from the records, never the records themselves, so that those who plan evacuation and \
power for 避難行動要支援者 (003:1236, 1558, 1630) can know who depends on a machine or a drug \
without reading the medical record; read by the care team's clinical and care professions and \
by municipal staff, who read it for residents of their own municipality through the register \
only, where the consent covers the municipality and excludes neither it nor the record's own \
category (`docs/disaster-register.md`). Break-the-glass opens \
`NUTRITION_SWALLOWING`: aspiration pneumonia is what this population is most often carried in \
with (002:1103, 003:1877), and silent aspiration, a 嚥下調整食 or thickened fluids bear on the \
first hours (suction, nil by mouth, what the ward serves) while saying little else about the \
patient. It does not open `VISITING_NURSE_REPORTS`: monthly narratives whose emergency content \
the emergency set already holds, as it never opened `CLINICAL_DOCUMENTS`, where they were \
filed before.\n\n",
    );
    out.push_str(&Matrix::rationale_markdown());
    out
}
