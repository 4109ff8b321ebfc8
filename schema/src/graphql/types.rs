//! GraphQL output types. They wrap entity models; fields that reach other rows
//! go through the DataLoaders.

use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Date, loaders};
use crate::domain::{
    Capability, CareTeamRole, MemberStatus, OrganizationKind, PatientStatus, PlaceOfDeath,
    Profession, Sex,
};
use crate::error::ApiError;
use crate::policy::PatientAccess;
use entities::{api_key, care_team_membership, member, organization, patient, patient_identifier};

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
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The network's record of a person, however many facilities know them.
///
/// Only the access policy can hand out the capability this object is built
/// from, so holding a `Patient` means the caller may see it.
pub struct Patient {
    access: PatientAccess,
    model: patient::Model,
}

impl Patient {
    pub(crate) fn new(access: PatientAccess, model: patient::Model) -> Self {
        debug_assert_eq!(access.patient_id(), model.id);
        Patient { access, model }
    }
}

#[Object]
impl Patient {
    async fn id(&self) -> ID {
        id(self.model.id)
    }
    async fn name(&self) -> &str {
        &self.model.name
    }
    /// The name's reading in katakana (フリガナ).
    async fn name_kana(&self) -> &str {
        &self.model.name_kana
    }
    async fn birth_date(&self) -> Date {
        Date(self.model.birth_date)
    }
    async fn sex(&self) -> Result<Sex> {
        Ok(Sex::from_db(&self.model.sex)?)
    }
    async fn postal_code(&self) -> Option<&str> {
        self.model.postal_code.as_deref()
    }
    async fn address(&self) -> Option<&str> {
        self.model.address.as_deref()
    }
    async fn phone(&self) -> Option<&str> {
        self.model.phone.as_deref()
    }
    async fn status(&self) -> Result<PatientStatus> {
        Ok(PatientStatus::from_db(&self.model.status)?)
    }
    /// Set when `status` is `DECEASED`.
    async fn deceased_on(&self) -> Option<Date> {
        self.model.deceased_on.map(Date)
    }
    /// Set when `status` is `DECEASED`.
    async fn place_of_death(&self) -> Result<Option<PlaceOfDeath>> {
        Ok(self
            .model
            .place_of_death
            .as_deref()
            .map(PlaceOfDeath::from_db)
            .transpose()?)
    }
    /// The patient's local IDs at the facilities that know them (名寄せ).
    async fn identifiers(&self, ctx: &Context<'_>) -> Result<Vec<PatientIdentifier>> {
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .identifiers
            .load_one(self.access.patient_id())
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(PatientIdentifier)
            .collect())
    }
    /// The care team: active memberships, or every membership ever with
    /// `includeEnded: true`.
    async fn care_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_ended: bool,
    ) -> Result<Vec<CareTeamMembership>> {
        Ok(ctx
            .data_unchecked::<loaders::Loaders>()
            .care_team
            .load_one((self.access.patient_id(), include_ended))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(CareTeamMembership)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
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
    /// Whether the membership is in force today.
    async fn active(&self) -> bool {
        let today = Utc::now().date_naive();
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
