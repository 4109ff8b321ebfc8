//! The root mutation.

use async_graphql::{Context, ID, Object, Result};
use chrono::Utc;

use super::inputs::*;
use super::types::{
    ApiKey, CareTeamMembership, CreatedApiKey, Member, Organization, Patient, PatientIdentifier,
};
use super::{ctx_db, ctx_request, patient_access};
use crate::domain::{LocalId, MemberStatus};
use crate::error::ApiError;
use crate::policy;
use crate::services::{api_keys, care_team, members, organizations, patients};

pub struct Mutation;

#[Object]
impl Mutation {
    /// Registers an organisation in the directory. Network administrators only.
    async fn register_organization(
        &self,
        ctx: &Context<'_>,
        input: RegisterOrganizationInput,
    ) -> Result<Organization> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let new = input.try_into()?;
        Ok(Organization(
            organizations::register(ctx_db(ctx), admin, new).await?,
        ))
    }

    /// Registers a professional of an organisation. Network administrators only.
    async fn register_member(
        &self,
        ctx: &Context<'_>,
        input: RegisterMemberInput,
    ) -> Result<Member> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let new = input.try_into()?;
        Ok(Member(members::register(ctx_db(ctx), admin, new).await?))
    }

    /// Suspends or reactivates a member; a suspended member's tokens are refused
    /// from the next request on. Network administrators only.
    async fn set_member_status(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        status: MemberStatus,
    ) -> Result<Member> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let id = parse_id("memberId", &member_id)?;
        Ok(Member(
            members::set_status(ctx_db(ctx), admin, id, status).await?,
        ))
    }

    /// Registers a patient and links your organisation's local ID to them.
    /// `CONFLICT` if that local ID already belongs to another patient.
    async fn register_patient(
        &self,
        ctx: &Context<'_>,
        input: RegisterPatientInput,
    ) -> Result<Patient> {
        let req = ctx_request(ctx)?;
        let new = input.try_into()?;
        let (model, access) = patients::register(ctx_db(ctx), &req.principal, new).await?;
        Ok(Patient::new(access, model))
    }

    /// Records a patient's status: active, moved away, or deceased with the
    /// date and place of death.
    async fn set_patient_status(
        &self,
        ctx: &Context<'_>,
        input: SetPatientStatusInput,
    ) -> Result<Patient> {
        let id = parse_id("input.patientId", &input.patient_id)?;
        let change = input.change()?;
        let access = patient_access(ctx, id).await?;
        let model = patients::set_status(ctx_db(ctx), &access, change).await?;
        Ok(Patient::new(access, model))
    }

    /// Links an organisation's local ID to a patient (名寄せ). Linking the same
    /// pair again is harmless; a local ID that already belongs to another patient
    /// is a `CONFLICT`.
    async fn link_patient_identifier(
        &self,
        ctx: &Context<'_>,
        input: LinkPatientIdentifierInput,
    ) -> Result<PatientIdentifier> {
        let req = ctx_request(ctx)?;
        let patient_id = parse_id("input.patientId", &input.patient_id)?;
        let org = match &input.organization_id {
            Some(id) => parse_id("input.organizationId", id)?,
            None => req.principal.organization_id(),
        };
        let local_id = LocalId::parse("input.localId", &input.local_id)?;
        let access = patient_access(ctx, patient_id).await?;
        policy::may_link_identifier_for(&req.principal, org)?;
        Ok(PatientIdentifier(
            patients::link_identifier(ctx_db(ctx), &access, org, local_id).await?,
        ))
    }

    /// Adds an organisation (optionally a named member) to a patient's care team.
    async fn add_care_team_member(
        &self,
        ctx: &Context<'_>,
        input: AddCareTeamMemberInput,
    ) -> Result<CareTeamMembership> {
        let patient_id = parse_id("input.patientId", &input.patient_id)?;
        let new = input.membership()?;
        let access = patient_access(ctx, patient_id).await?;
        Ok(CareTeamMembership(
            care_team::add(ctx_db(ctx), &access, new).await?,
        ))
    }

    /// Ends a care-team membership (the end date is its last day).
    async fn end_care_team_membership(
        &self,
        ctx: &Context<'_>,
        input: EndCareTeamMembershipInput,
    ) -> Result<CareTeamMembership> {
        let id = parse_id("input.membershipId", &input.membership_id)?;
        let end_date = input
            .end_date
            .map(|d| d.0)
            .unwrap_or_else(|| Utc::now().date_naive());
        let db = ctx_db(ctx);
        let membership = care_team::find(db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("care-team membership"))?;
        // A membership of a patient the caller cannot see does not exist for it.
        let access = patient_access(ctx, membership.patient_id)
            .await
            .map_err(|_| ApiError::not_found("care-team membership"))?;
        Ok(CareTeamMembership(
            care_team::end(db, &access, membership, end_date).await?,
        ))
    }

    /// Creates an API key for an organisation's system and returns its secret,
    /// once. Network administrators only.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let new = input.try_into()?;
        let (key, secret) = api_keys::create(ctx_db(ctx), admin, new).await?;
        Ok(CreatedApiKey {
            api_key: ApiKey(key),
            secret,
        })
    }

    /// Revokes an API key; it is refused from then on. Network administrators only.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let id = parse_id("id", &id)?;
        let key = api_keys::revoke(ctx_db(ctx), admin, id).await?;
        // This instance forgets the key at once; others within the cache's TTL.
        ctx.data_unchecked::<std::sync::Arc<api_keys::ApiKeyCache>>()
            .forget(id);
        Ok(ApiKey(key))
    }
}
