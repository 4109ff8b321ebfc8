//! GraphQL output types. They wrap entity models; fields that reach other rows
//! go through the DataLoaders.

use crate::services::admission_discharge::conferences::ConferenceKind;
use async_graphql::{
    ComplexObject, Context, ID, Object, Result, SimpleObject,
    connection::{Connection, EmptyFields},
};
use chrono::{DateTime, Utc};

use super::{Date, ctx_db, loaders};
use crate::audit::AuditAction;
use crate::domain::{
    AccessLevel, Capability, CareTeamRole, ConsentMethod, ConsentScope, ConsentSignatory,
    ConsentStatus, DataCategory, MemberStatus, OrganizationKind, PatientStatus, PlaceOfDeath,
    Profession, Sex, Timestamp,
};
use crate::error::ApiError;
use crate::policy::{AccessReason, PatientAccess};
use crate::services::{audit_log, consents, notifications::NotificationKind};
use entities::{
    api_key, care_team_membership, consent, emergency_grant, emergency_objection, member,
    notification, organization, patient, patient_identifier,
};

fn id(u: uuid::Uuid) -> ID {
    ID(u.to_string())
}

/// A participant of the network (hospital, clinic, pharmacy, care office, …).
pub struct Organization(pub organization::Model);

/// A point in WGS 84 degrees.
#[derive(SimpleObject)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn kind(&self) -> Result<OrganizationKind> {
        Ok(OrganizationKind::from_db(&self.0.kind)?)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The name's reading in katakana.
    async fn name_kana(&self) -> Option<&str> {
        self.0.name_kana.as_deref()
    }
    async fn postal_code(&self) -> Option<&str> {
        self.0.postal_code.as_deref()
    }
    async fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }
    async fn municipality(&self) -> Option<&str> {
        self.0.municipality.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn fax(&self) -> Option<&str> {
        self.0.fax.as_deref()
    }
    /// 医療機関コード (10 digits), for a medical institution: how FHIR
    /// (JP-CLINS) senders name it.
    async fn medical_institution_code(&self) -> Option<&str> {
        self.0.medical_institution_code.as_deref()
    }
    async fn location(&self) -> Option<GeoPoint> {
        match (self.0.latitude, self.0.longitude) {
            (Some(latitude), Some(longitude)) => Some(GeoPoint {
                latitude,
                longitude,
            }),
            _ => None,
        }
    }
    /// What the organisation offers, in a stable order.
    async fn capabilities(&self, ctx: &Context<'_>) -> Result<Vec<Capability>> {
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .capabilities
            .load_one(self.0.id)
            .await?
            .unwrap_or_default())
    }
    /// What the organisation does beyond its kind and capabilities, and
    /// how to reach it (`null`: never described). See docs/directory.md.
    async fn profile(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<super::directory::OrganizationProfile>> {
        super::directory::profile_of(ctx, &self.0).await
    }
    /// Its latest vacancy reports (空床・空き状況), one per bed type.
    async fn vacancies(&self, ctx: &Context<'_>) -> Result<Vec<super::directory::Vacancy>> {
        super::directory::vacancies_of_org(ctx, &self.0).await
    }
    /// The organisation's professionals.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Member>> {
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .org_members
            .load_one(self.0.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Member)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub(crate) async fn load_organization(
    ctx: &Context<'_>,
    org_id: uuid::Uuid,
) -> Result<Organization> {
    ctx.data_unchecked::<loaders::Loaders>()
        .organization
        .load_one(org_id)
        .await?
        .map(Organization)
        .ok_or_else(|| {
            ApiError::internal(format_args!("organisation {org_id} referenced but missing")).into()
        })
}

/// A professional belonging to an organisation.
pub struct Member(pub member::Model);

#[Object]
impl Member {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn name_kana(&self) -> Option<&str> {
        self.0.name_kana.as_deref()
    }
    async fn profession(&self) -> Result<Profession> {
        Ok(Profession::from_db(&self.0.profession)?)
    }
    async fn status(&self) -> Result<MemberStatus> {
        Ok(MemberStatus::from_db(&self.0.status)?)
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    /// The subject by which the hub's identity provider names this member
    /// (`setMemberExternalSubject`); `null` when none is recorded for the
    /// provider the hub now trusts. Network administrators and the member
    /// themselves only: for others, `null` with a `FORBIDDEN` error.
    async fn external_subject(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        crate::policy::may_read_external_subject(&super::ctx_request(ctx)?.principal, self.0.id)?;
        let issuer = &ctx.data_unchecked::<super::TokenIssuer>().0;
        Ok(match (&self.0.external_issuer, &self.0.external_subject) {
            (Some(of), Some(subject)) if of == issuer => Some(subject.as_str()),
            _ => None,
        })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The network's record of a person, however many facilities know them.
///
/// Only the access policy can hand out the capability this object is built
/// from, so holding a `Patient` means the caller may know the patient exists.
/// Every other field belongs to one data category (named in its description);
/// a field the caller may not read resolves to `null` with a `FORBIDDEN_FIELD`
/// error naming the category and the reason, and the rest of the response is
/// delivered. The fields read are recorded in the audit log.
pub struct Patient {
    access: PatientAccess,
    model: std::sync::Arc<patient::Model>,
}

impl Patient {
    pub(crate) fn new(access: PatientAccess, model: std::sync::Arc<patient::Model>) -> Self {
        debug_assert_eq!(access.patient_id(), model.id);
        Patient { access, model }
    }

    /// The one gate of every field; see [`super::gate`].
    fn read(&self, ctx: &Context<'_>, category: DataCategory) -> Result<Option<()>> {
        super::gate(ctx, &self.access, category)
    }
}

pub(crate) fn reason_name(reason: AccessReason) -> &'static str {
    match reason {
        AccessReason::Permitted => "PERMITTED",
        AccessReason::NotPermittedForRole => "NOT_PERMITTED_FOR_ROLE",
        AccessReason::NoConsent => "NO_CONSENT",
        AccessReason::ExcludedByConsent => "EXCLUDED_BY_CONSENT",
        AccessReason::EmergencyAccess => "EMERGENCY_ACCESS",
        AccessReason::NotAnEmergencyCategory => "NOT_AN_EMERGENCY_CATEGORY",
    }
}

/// What the caller may do with one data category of a patient, and why.
#[derive(SimpleObject)]
pub struct CategoryAccess {
    pub category: DataCategory,
    pub read: bool,
    pub write: bool,
    pub reason: AccessReason,
    /// The reason in words.
    pub explanation: String,
}

#[Object]
impl Patient {
    async fn id(&self) -> ID {
        id(self.model.id)
    }
    /// IDENTITY.
    async fn name(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .read(ctx, DataCategory::Identity)?
            .map(|_| self.model.name.as_str()))
    }
    /// IDENTITY. The name's reading in katakana (フリガナ).
    async fn name_kana(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .read(ctx, DataCategory::Identity)?
            .map(|_| self.model.name_kana.as_str()))
    }
    /// IDENTITY.
    async fn birth_date(&self, ctx: &Context<'_>) -> Result<Option<Date>> {
        Ok(self
            .read(ctx, DataCategory::Identity)?
            .map(|_| Date(self.model.birth_date)))
    }
    /// IDENTITY.
    async fn sex(&self, ctx: &Context<'_>) -> Result<Option<Sex>> {
        match self.read(ctx, DataCategory::Identity)? {
            Some(()) => Ok(Some(Sex::from_db(&self.model.sex)?)),
            None => Ok(None),
        }
    }
    /// CONTACTS.
    async fn postal_code(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .read(ctx, DataCategory::Contacts)?
            .and(self.model.postal_code.as_deref()))
    }
    /// CONTACTS.
    async fn address(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .read(ctx, DataCategory::Contacts)?
            .and(self.model.address.as_deref()))
    }
    /// CONTACTS.
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .read(ctx, DataCategory::Contacts)?
            .and(self.model.phone.as_deref()))
    }
    /// IDENTITY.
    async fn status(&self, ctx: &Context<'_>) -> Result<Option<PatientStatus>> {
        match self.read(ctx, DataCategory::Identity)? {
            Some(()) => Ok(Some(PatientStatus::from_db(&self.model.status)?)),
            None => Ok(None),
        }
    }
    /// IDENTITY. Set when `status` is `DECEASED`.
    async fn deceased_on(&self, ctx: &Context<'_>) -> Result<Option<Date>> {
        Ok(self
            .read(ctx, DataCategory::Identity)?
            .and(self.model.deceased_on.map(Date)))
    }
    /// IDENTITY. Set when `status` is `DECEASED`.
    async fn place_of_death(&self, ctx: &Context<'_>) -> Result<Option<PlaceOfDeath>> {
        if self.read(ctx, DataCategory::Identity)?.is_none() {
            return Ok(None);
        }
        Ok(self
            .model
            .place_of_death
            .as_deref()
            .map(PlaceOfDeath::from_db)
            .transpose()?)
    }
    /// IDENTITY. 被保険者個人識別子 (`保険者番号:記号:番号:枝番`), when recorded:
    /// how FHIR (JP-CLINS) senders name the person.
    async fn insured_person_identifier(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        Ok(self
            .read(ctx, DataCategory::Identity)?
            .and(self.model.insured_person_id.as_deref()))
    }
    /// IDENTITY. The patient's local IDs at the facilities that know them
    /// (名寄せ): every facility's to a caller who may read CARE_TEAM — which
    /// organisations know the patient is the care team's business — else
    /// only the caller's own organisation's.
    async fn identifiers(&self, ctx: &Context<'_>) -> Result<Option<Vec<PatientIdentifier>>> {
        if self.read(ctx, DataCategory::Identity)?.is_none() {
            return Ok(None);
        }
        let own = super::ctx_request(ctx)?.principal.organization_id();
        let every = self.access.knows_care_team();
        if every {
            super::ctx_trail(ctx)?.read(&self.access, DataCategory::CareTeam);
        }
        Ok(Some(
            ctx.data_unchecked::<loaders::Loaders>()
                .identifiers
                .load_one(self.access.patient_id())
                .await?
                .unwrap_or_default()
                .into_iter()
                .filter(|i| every || i.organization_id == own)
                .map(PatientIdentifier)
                .collect(),
        ))
    }
    /// CARE_TEAM. Active memberships, or every membership ever with
    /// `includeEnded: true`.
    async fn care_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_ended: bool,
    ) -> Result<Option<Vec<CareTeamMembership>>> {
        if self.read(ctx, DataCategory::CareTeam)?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            ctx.data_unchecked::<loaders::Loaders>()
                .care_team
                .load_one((self.access.patient_id(), include_ended))
                .await?
                .unwrap_or_default()
                .into_iter()
                .map(CareTeamMembership)
                .collect(),
        ))
    }
    /// CONSENT. The consent in force, if any.
    async fn active_consent(&self, ctx: &Context<'_>) -> Result<Option<Consent>> {
        if self.read(ctx, DataCategory::Consent)?.is_none() {
            return Ok(None);
        }
        Ok(consents::in_force(ctx_db(ctx), &self.access)
            .await?
            .map(Consent))
    }
    /// CONSENT. Every consent ever recorded, newest first (history is never
    /// deleted), those pending the coordination centre's confirmation included.
    async fn consents(&self, ctx: &Context<'_>) -> Result<Option<Vec<Consent>>> {
        if self.read(ctx, DataCategory::Consent)?.is_none() {
            return Ok(None);
        }
        Ok(Some(
            consents::history(ctx_db(ctx), &self.access)
                .await?
                .into_iter()
                .map(Consent)
                .collect(),
        ))
    }
    /// CONSENT. The patient's objection to emergency access, if recorded.
    async fn emergency_access_objection(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<EmergencyObjection>> {
        if self.read(ctx, DataCategory::Consent)?.is_none() {
            return Ok(None);
        }
        Ok(
            consents::active_objection(ctx_db(ctx), self.access.patient_id())
                .await?
                .map(EmergencyObjection),
        )
    }
    /// ACCESS_HISTORY. Who accessed this patient's data, newest first —
    /// as far as you may read it: entries about categories closed to you
    /// are left out (pages count only what is shown), and an entry about
    /// some lists only the categories you may read, without its detail and
    /// hash. A refused attempt shows who, when and the categories you may
    /// read, without its detail (which names what was asked for) or hash;
    /// a refused attempt at a liaison thread, a record or another object is
    /// of the object's category. Needs CARE_TEAM as well: the organisations
    /// and members that read a patient's data are, mostly, the care team.
    async fn access_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 50).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Option<Connection<String, AuditEntry, EmptyFields, EmptyFields>>> {
        // Every category decided before any is recorded as read: a history
        // refused for want of CARE_TEAM was not read.
        for category in crate::policy::shown_with(DataCategory::AccessHistory) {
            if !self.access.may_read(category) {
                self.read(ctx, category)?;
                return Ok(None);
            }
        }
        for category in crate::policy::shown_with(DataCategory::AccessHistory) {
            self.read(ctx, category)?;
        }
        let (first, before) = super::audit_page_args(first, after)?;
        let (rows, more) =
            audit_log::patient_history(ctx_db(ctx), &self.access, before, first).await?;
        Ok(Some(super::audit_connection(rows, more, before.is_some())))
    }
    /// The patient summary: identity aside, everything a newcomer to the care
    /// team needs first, each part under its own category.
    async fn summary(&self) -> super::records::PatientSummary {
        super::records::PatientSummary {
            access: self.access.clone(),
        }
    }
    /// 救急医療情報: the emergency information sheet beside the live records
    /// an ambulance crew or receiving hospital needs, each part under its own
    /// category.
    async fn emergency_information(&self) -> super::emergency_information::EmergencyInformation {
        super::emergency_information::EmergencyInformation {
            access: self.access.clone(),
        }
    }
    /// LIAISON_MESSAGES. The liaison threads (連絡票) your organisation may
    /// see — addressed to the whole care team, to it, or started by it —
    /// most recently active first.
    async fn liaison_threads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Option<super::liaison::ThreadConnection>> {
        super::liaison::patient_threads(ctx, &self.access, first, after).await
    }
    /// Every record the caller may read, newest first; filter by kinds and
    /// period (`from` inclusive, `to` exclusive).
    #[allow(clippy::too_many_arguments)]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] kinds: Vec<crate::records::RecordKind>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        #[graphql(default = false)] include_entered_in_error: bool,
        #[graphql(desc = "Page size, 1 to 200 (default 50).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, super::records::Record, EmptyFields, EmptyFields>> {
        super::records::timeline(
            ctx,
            &self.access,
            kinds,
            from.map(Timestamp::get),
            to.map(Timestamp::get),
            include_entered_in_error,
            first,
            after,
        )
        .await
    }
    /// ADMISSION_DISCHARGE. Admission information sheets (入院時情報提供書),
    /// newest first; drafts only your organisation's own.
    async fn admission_sheets(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::admission_discharge::AdmissionSheet>>> {
        super::admission_discharge::patient_sheets(ctx, &self.access).await
    }
    /// ADMISSION_DISCHARGE. Discharge notices (退院連絡), newest first.
    async fn discharge_notices(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::admission_discharge::DischargeNotice>>> {
        super::admission_discharge::patient_notices(ctx, &self.access).await
    }
    /// ADMISSION_DISCHARGE. Discharge conferences (退院前カンファレンス), newest
    /// first: `careConferences(kinds: [DISCHARGE])`.
    async fn discharge_conferences(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<Vec<super::admission_discharge::CareConference>>> {
        super::admission_discharge::patient_conferences(
            ctx,
            &self.access,
            Some(vec![ConferenceKind::Discharge]),
        )
        .await
    }
    /// Care conferences (退院前カンファレンス, サービス担当者会議, case and
    /// end-of-life conferences), newest first, each under its kind's
    /// category. Without `kinds`, every kind whose category you may read;
    /// naming a kind you may not read makes the field null (FORBIDDEN_FIELD).
    async fn care_conferences(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<ConferenceKind>>,
    ) -> Result<Option<Vec<super::admission_discharge::CareConference>>> {
        super::admission_discharge::patient_conferences(ctx, &self.access, kinds).await
    }
    /// What you may read and write of this patient, category by category, and why.
    async fn access(&self) -> Vec<CategoryAccess> {
        self.access
            .grants()
            .map(|(category, grant)| CategoryAccess {
                category,
                read: grant.level >= AccessLevel::Read,
                write: self.access.require_write(category).is_ok(),
                reason: grant.reason,
                explanation: grant.reason.explain(category),
            })
            .collect()
    }
    /// Whether your organisation is on the patient's care team.
    async fn care_relationship(&self) -> bool {
        self.access.has_care_relationship()
    }
    /// Until when your emergency access lasts, if you opened one.
    async fn emergency_access_until(&self) -> Option<DateTime<Utc>> {
        self.access.emergency_until()
    }
    /// IDENTITY.
    async fn created_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .read(ctx, DataCategory::Identity)?
            .map(|_| self.model.created_at))
    }
    /// IDENTITY.
    async fn updated_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .read(ctx, DataCategory::Identity)?
            .map(|_| self.model.updated_at))
    }
}

/// A patient's consent to sharing (同意).
pub struct Consent(pub consent::Model);

#[Object]
impl Consent {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn scope(&self) -> Result<ConsentScope> {
        Ok(ConsentScope::from_db(&self.0.scope)?)
    }
    /// For `NETWORK` scope: the excluded organisations; for `ORGANIZATIONS`: the covered ones.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        let ids: Vec<uuid::Uuid> =
            serde_json::from_str(&self.0.organization_ids).map_err(ApiError::internal)?;
        let mut out = Vec::with_capacity(ids.len());
        for org in ids {
            out.push(load_organization(ctx, org).await?);
        }
        Ok(out)
    }
    async fn excluded_categories(&self) -> Result<Vec<DataCategory>> {
        let names: Vec<String> =
            serde_json::from_str(&self.0.excluded_categories).map_err(ApiError::internal)?;
        Ok(names
            .iter()
            .map(|n| DataCategory::from_db(n))
            .collect::<Result<_, _>>()?)
    }
    async fn method(&self) -> Result<ConsentMethod> {
        Ok(ConsentMethod::from_db(&self.0.method)?)
    }
    /// Where it stands: only `IN_FORCE` grants access.
    async fn status(&self) -> Result<ConsentStatus> {
        Ok(ConsentStatus::from_db(&self.0.status)?)
    }
    /// The signed form it was recorded from.
    async fn form(&self) -> ConsentFormRecord<'_> {
        ConsentFormRecord(&self.0)
    }
    /// The member who took the consent (null when a system recorded it).
    async fn recorded_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let Some(m) = self.0.recorded_by_member else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .member
            .load_one(m)
            .await?
            .map(Member))
    }
    async fn recorded_by_organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.recorded_by_organization).await
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    /// Set once the consent ends: withdrawn, superseded or rejected (a
    /// pending one also when superseded or voided by a withdrawal).
    async fn withdrawn_at(&self) -> Option<DateTime<Utc>> {
        self.0.withdrawn_at
    }
    /// Why it ended.
    async fn withdrawal_reason(&self) -> Option<&str> {
        self.0.withdrawal_reason.as_deref()
    }
    /// When the coordination centre confirmed or rejected it (pending
    /// consents only).
    async fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.0.reviewed_at
    }
    /// The member of the centre who confirmed or rejected it.
    async fn reviewed_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let Some(m) = self.0.reviewed_by_member else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .member
            .load_one(m)
            .await?
            .map(Member))
    }
    async fn reviewed_by_organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        match self.0.reviewed_by_organization {
            Some(org) => Ok(Some(load_organization(ctx, org).await?)),
            None => Ok(None),
        }
    }
    /// Whether this is the consent in force (`status` is `IN_FORCE`).
    async fn active(&self) -> bool {
        self.0.status == ConsentStatus::InForce.as_str()
    }
}

pub struct ConsentFormRecord<'a>(&'a consent::Model);

/// The signed consent form (同意書) a consent was recorded from. On consents
/// recorded before forms were required, what was not recorded is `null`.
#[Object(name = "ConsentForm")]
impl ConsentFormRecord<'_> {
    /// Where the signed form is kept (e.g. a document number).
    async fn reference(&self) -> Option<&str> {
        self.0.form_reference.as_deref()
    }
    /// The day it was signed.
    async fn signed_on(&self) -> Date {
        Date(self.0.obtained_on)
    }
    /// The patient, or a proxy (代諾者).
    async fn signed_by(&self) -> Result<Option<ConsentSignatory>> {
        Ok(self
            .0
            .signed_by
            .as_deref()
            .map(ConsentSignatory::from_db)
            .transpose()?)
    }
    /// The proxy who signed (with `signedBy` FAMILY or GUARDIAN).
    async fn proxy_name(&self) -> Option<&str> {
        self.0.proxy_name.as_deref()
    }
    /// The proxy's relation to the patient (続柄).
    async fn proxy_relation(&self) -> Option<&str> {
        self.0.proxy_relation.as_deref()
    }
}

/// The patient's recorded objection to emergency access.
pub struct EmergencyObjection(pub emergency_objection::Model);

#[Object]
impl EmergencyObjection {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    async fn withdrawn_at(&self) -> Option<DateTime<Utc>> {
        self.0.withdrawn_at
    }
}

/// An emergency access opened by the caller (救急時閲覧).
pub struct EmergencyAccess {
    pub grant: emergency_grant::Model,
    pub patient: Option<Patient>,
}

#[Object]
impl EmergencyAccess {
    async fn id(&self) -> ID {
        id(self.grant.id)
    }
    async fn opened_at(&self) -> DateTime<Utc> {
        self.grant.opened_at
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.grant.expires_at
    }
    /// Why it was opened, in words: the reason code's label (心肺停止 …)
    /// and/or the free text given (「心肺停止: 自宅で倒れていた」).
    async fn reason(&self) -> &str {
        &self.grant.reason
    }
    /// The reason code, if one was given (grants opened with words alone
    /// have none).
    async fn reason_code(&self) -> Result<Option<crate::domain::EmergencyReasonCode>> {
        Ok(self
            .grant
            .reason_code
            .as_deref()
            .map(crate::domain::EmergencyReasonCode::from_db)
            .transpose()?)
    }
    /// The categories emergency access opens to you, read-only: the
    /// emergency set, and for physicians and nurses drug contraindications
    /// and infections too.
    async fn categories(&self, ctx: &Context<'_>) -> Result<Vec<DataCategory>> {
        let req = super::ctx_request(ctx)?;
        Ok(crate::policy::emergency_categories_of(&req.principal).to_vec())
    }
    /// The patient, under the emergency access.
    async fn patient(&self) -> Option<&Patient> {
        self.patient.as_ref()
    }
}

/// A notification for the caller's organisation, or for the caller alone.
pub struct Notification(pub notification::Model);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn kind(&self) -> Result<NotificationKind> {
        Ok(NotificationKind::from_db(&self.0.kind)?)
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// The patient concerned; read it through `patient(id:)` under the policy.
    async fn patient_id(&self) -> Option<ID> {
        self.0.patient_id.map(id)
    }
    /// What it points at (the message, notice, sheet or emergency access),
    /// read through the patient under the policy.
    async fn subject_id(&self) -> Option<ID> {
        self.0.subject_id.map(id)
    }
    /// True when it is addressed to the caller alone, not the whole organisation.
    async fn personal(&self) -> bool {
        self.0.member_id.is_some()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
}

/// One entry of the audit log.
pub struct AuditEntry(pub entities::audit_log::Model);

#[Object]
impl AuditEntry {
    /// The entry's number in the chain.
    async fn seq(&self) -> i64 {
        self.0.seq
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// `MEMBER` or `SYSTEM`.
    async fn actor_kind(&self) -> &str {
        &self.0.actor_kind
    }
    /// The member id, or the API key id for a system.
    async fn actor_id(&self) -> ID {
        id(self.0.actor_id)
    }
    /// The member, when the actor is one.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        if self.0.actor_kind != "MEMBER" {
            return Ok(None);
        }
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .member
            .load_one(self.0.actor_id)
            .await?
            .map(Member))
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    async fn patient_id(&self) -> Option<ID> {
        self.0.patient_id.map(id)
    }
    async fn action(&self) -> Result<AuditAction> {
        AuditAction::parse(&self.0.action).ok_or_else(|| {
            ApiError::internal(format_args!("unknown audit action {:?}", self.0.action)).into()
        })
    }
    /// The categories actually resolved (or denied). In a patient's
    /// `accessHistory`, only those you may read: an entry about nothing
    /// else is not listed there.
    async fn categories(&self) -> Result<Vec<DataCategory>> {
        Ok(crate::audit::stored_categories(&self.0.categories)
            .map(DataCategory::from_db)
            .collect::<Result<_, _>>()?)
    }
    async fn request_id(&self) -> &str {
        &self.0.request_id
    }
    /// `OK` or `DENIED`.
    async fn outcome(&self) -> &str {
        &self.0.outcome
    }
    /// The reason of an emergency access or a denial. Null in a patient's
    /// `accessHistory` where the entry is shown in part, and for every
    /// denial there.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// The entry's signed hash, chained to the previous one (`auditLog`).
    /// Empty in a patient's `accessHistory`, for every entry: emptied only
    /// where an entry is shown in part, it would tell of data closed to you.
    async fn hash(&self) -> &str {
        &self.0.hash
    }
}

/// (organisation, local patient ID) → patient.
pub struct PatientIdentifier(pub patient_identifier::Model);

#[Object]
impl PatientIdentifier {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    /// The organisation's own ID for the patient.
    async fn local_id(&self) -> &str {
        &self.0.local_id
    }
    /// The organisation whose caller linked it (stamped by the hub).
    async fn recorded_by_organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        match self.0.recorded_by_organization {
            Some(o) => Ok(Some(load_organization(ctx, o).await?)),
            None => Ok(None),
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// An organisation (optionally a named member) on a patient's care team.
pub struct CareTeamMembership(pub care_team_membership::Model);

#[Object]
impl CareTeamMembership {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn role(&self) -> Result<CareTeamRole> {
        Ok(CareTeamRole::from_db(&self.0.role)?)
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    /// The named professional, when the membership names one.
    async fn member(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let Some(member_id) = self.0.member_id else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .member
            .load_one(member_id)
            .await?
            .map(Member))
    }
    async fn start_date(&self) -> Date {
        Date(self.0.start_date)
    }
    /// The last day of the membership (inclusive); null while it is open.
    async fn end_date(&self) -> Option<Date> {
        self.0.end_date.map(Date)
    }
    /// The organisation whose caller added the membership (stamped by the hub).
    async fn recorded_by_organization(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        match self.0.recorded_by_organization {
            Some(o) => Ok(Some(load_organization(ctx, o).await?)),
            None => Ok(None),
        }
    }
    /// The member who added it, when a member did.
    async fn recorded_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let Some(m) = self.0.recorded_by_member else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .member
            .load_one(m)
            .await?
            .map(Member))
    }
    /// Whether the membership is in force today.
    async fn active(&self, ctx: &Context<'_>) -> bool {
        let today = super::ctx_policy(ctx).clock.today();
        self.0.start_date <= today && self.0.end_date.is_none_or(|e| e >= today)
    }
}

/// An API key of an organisation's system. The secret is never shown again
/// after creation.
pub struct ApiKey(pub api_key::Model);

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        id(self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.0.organization_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// A newly created API key with its secret, shown this once.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The bearer token for the system: `Authorization: Bearer <secret>`.
    /// Store it now; the hub keeps only a hash.
    pub secret: String,
}

/// What kind of caller the request is authenticated as.
#[derive(async_graphql::Enum, Copy, Clone, PartialEq, Eq)]
pub enum ViewerKind {
    /// A professional, by JWT.
    Member,
    /// An organisation's system, by API key.
    System,
}

/// The authenticated caller.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Viewer {
    pub kind: ViewerKind,
    #[graphql(skip)]
    pub member_id: Option<uuid::Uuid>,
    #[graphql(skip)]
    pub organization_id: uuid::Uuid,
}

#[ComplexObject]
impl Viewer {
    /// The member, when the caller is a member.
    async fn member(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        let Some(member_id) = self.member_id else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .member
            .load_one(member_id)
            .await?
            .map(Member))
    }
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        load_organization(ctx, self.organization_id).await
    }
}
