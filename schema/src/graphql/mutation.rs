//! The root mutation. Each resolver: parse input, obtain a capability from the
//! policy, call a service, record the write in the audit trail, wrap the result.

use async_graphql::{Context, ID, Object, Result};

use super::inputs::*;
use super::reach::{Bound, PatientRef};
use super::types::{
    ApiKey, CareTeamMembership, Consent, CreatedApiKey, EmergencyAccess, EmergencyObjection,
    Member, Notification, Organization, Patient, PatientIdentifier,
};
use super::{
    ctx_db, ctx_events, ctx_policy, ctx_request, ctx_stamp, ctx_trail, load_patient, patient_access,
};
use crate::domain::{
    DataCategory, ExternalSubject, InsuredPersonId, LocalId, MemberStatus, NAME_MAX, Profession,
    Text,
};
use crate::error::ApiError;
use crate::events::HubEvent;
use crate::policy::{self, EMERGENCY_CATEGORIES, emergency_categories_of};
use crate::services::{
    api_keys, care_team, consents, emergency, members, notifications, organizations, patients,
};

#[derive(Default)]
pub struct CoreMutation;

#[Object]
impl CoreMutation {
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
        Ok(Member(
            members::register(ctx_db(ctx), admin, &ctx_stamp(ctx)?, new).await?,
        ))
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
        let member = members::set_status(ctx_db(ctx), admin, &ctx_stamp(ctx)?, id, status).await?;
        // This instance forgets the cached member at once (its next request
        // is judged on the new status); other instances on the event.
        ctx.data_unchecked::<super::loaders::Loaders>()
            .forget_directory();
        ctx_events(ctx).publish(HubEvent::MemberChanged { member_id: id });
        Ok(Member(member))
    }

    /// Names a member's profession, for instance a member registered as
    /// `THERAPIST` before PT, OT and ST were told apart. The member's rights
    /// follow the new profession from the next request on; the member's open
    /// WebSocket sessions end. `THERAPIST` itself cannot be given
    /// (`BAD_USER_INPUT`), nor `EMS_CREW` outside an ambulance service.
    /// Network administrators only, and not their own (`FORBIDDEN`).
    async fn set_member_profession(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        profession: Profession,
    ) -> Result<Member> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let id = parse_id("memberId", &member_id)?;
        let member =
            members::set_profession(ctx_db(ctx), admin, &ctx_stamp(ctx)?, id, profession).await?;
        // The principal (and its profession) is cached with the directory:
        // forget it here at once, elsewhere on the event.
        ctx.data_unchecked::<super::loaders::Loaders>()
            .forget_directory();
        ctx_events(ctx).publish(HubEvent::MemberChanged { member_id: id });
        Ok(Member(member))
    }

    /// Records the subject by which the hub's identity provider (its
    /// `RENKEI_JWT_ISSUER`) names a member, so the provider's tokens find the
    /// member when the hub runs with `RENKEI_JWT_MEMBER_BY=external-subject`;
    /// `null` clears it. `CONFLICT` if another member has that subject.
    /// Network administrators only, and not their own (`FORBIDDEN`).
    async fn set_member_external_subject(
        &self,
        ctx: &Context<'_>,
        member_id: ID,
        #[graphql(desc = "The value of the identity provider's subject claim, exactly.")]
        external_subject: Option<String>,
    ) -> Result<Member> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let id = parse_id("memberId", &member_id)?;
        let identity = external_subject
            .map(|raw| {
                ExternalSubject::parse("externalSubject", &raw).map(|subject| {
                    members::ExternalIdentity {
                        issuer: ctx.data_unchecked::<super::TokenIssuer>().0.clone(),
                        subject,
                    }
                })
            })
            .transpose()?;
        let member =
            members::set_external_identity(ctx_db(ctx), admin, &ctx_stamp(ctx)?, id, identity)
                .await?;
        // Authentication checks a subject against the member's (cached) row:
        // forget it here at once, elsewhere on the event.
        ctx.data_unchecked::<super::loaders::Loaders>()
            .forget_directory();
        ctx_events(ctx).publish(HubEvent::MemberChanged { member_id: id });
        Ok(Member(member))
    }

    /// Registers a patient, links your organisation's local ID, and puts your
    /// organisation on the care team. The patient's data becomes readable once
    /// a consent is recorded (`recordConsent`). `CONFLICT` if the local ID
    /// already belongs to another patient. Needs write access to IDENTITY.
    async fn register_patient(
        &self,
        ctx: &Context<'_>,
        input: RegisterPatientInput,
    ) -> Result<Patient> {
        let req = ctx_request(ctx)?;
        let policy = ctx_policy(ctx);
        policy.require_may_register_patient(&req.principal)?;
        let role = input.care_team_role;
        let new = input.into_new(policy.clock.today())?;
        // The registrar's organisation goes on the patient's care team.
        let kind = super::consents::caller_kind(ctx)
            .await?
            .ok_or_else(|| ApiError::internal("the caller's organisation has no kind"))?;
        if !crate::policy::joins_care_teams(kind) {
            return Err(ApiError::Forbidden(format!(
                "an organisation of kind {kind} does not register patients: registering puts it on the patient's care team, and its crews reach patients through emergency access"
            ))
            .into());
        }
        let role = role.unwrap_or_else(|| default_role(kind));
        let stamp = ctx_stamp(ctx)?;
        let asked = new.insured_person_id.clone();
        let model = patients::register(ctx_db(ctx), &stamp, new, role, policy.clock.today()).await;
        let model = insured_conflict_recorded(ctx, asked.as_ref(), model).await?;
        load_patient(ctx, model.id).await?.ok_or_else(|| {
            ApiError::internal("a registered patient is not visible to its registrar").into()
        })
    }

    /// Records a patient's status: active, moved away, or deceased with the
    /// date and place of death. Needs write access to IDENTITY.
    async fn set_patient_status(
        &self,
        ctx: &Context<'_>,
        input: SetPatientStatusInput,
    ) -> Result<Patient> {
        let id = parse_id("input.patientId", &input.patient_id)?;
        let change = input.change(ctx_policy(ctx).clock.today())?;
        let access = patient_access(ctx, id).await?;
        let model = patients::set_status(ctx_db(ctx), &access, &ctx_stamp(ctx)?, change).await?;
        Ok(Patient::new(access, std::sync::Arc::new(model)))
    }

    /// Records the patient's 被保険者個人識別子 (`保険者番号:記号:番号:枝番`),
    /// or removes it with `null`. Needs write access to IDENTITY. An
    /// identifier another patient holds is a `CONFLICT`: the person is
    /// already in the network.
    async fn set_insured_person_identifier(
        &self,
        ctx: &Context<'_>,
        patient_id: ID,
        identifier: Option<String>,
    ) -> Result<Patient> {
        let id = parse_id("patientId", &patient_id)?;
        let identifier = InsuredPersonId::parse_opt("identifier", identifier.as_deref())?;
        let access = patient_access(ctx, id).await?;
        let asked = identifier.clone();
        let model =
            patients::set_insured_person_id(ctx_db(ctx), &access, &ctx_stamp(ctx)?, identifier)
                .await;
        let model = insured_conflict_recorded(ctx, asked.as_ref(), model).await?;
        Ok(Patient::new(access, std::sync::Arc::new(model)))
    }

    /// Links your organisation's local ID to a patient (名寄せ). Needs write
    /// access to IDENTITY. Linking the same pair again is harmless; a local ID
    /// that already belongs to another patient is a `CONFLICT`.
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
        access.require_write(DataCategory::Identity)?;
        policy::may_link_identifier_for(&req.principal, org)?;
        let linked =
            patients::link_identifier(ctx_db(ctx), &access, &ctx_stamp(ctx)?, org, local_id)
                .await?;
        Ok(PatientIdentifier(linked))
    }

    /// Adds an organisation (optionally a named member) to a patient's care
    /// team. Needs write access to CARE_TEAM.
    async fn add_care_team_member(
        &self,
        ctx: &Context<'_>,
        input: AddCareTeamMemberInput,
    ) -> Result<CareTeamMembership> {
        let patient_id = parse_id("input.patientId", &input.patient_id)?;
        let today = ctx_policy(ctx).clock.today();
        let new = input.membership(today)?;
        let access = patient_access(ctx, patient_id).await?;
        let added = care_team::add(ctx_db(ctx), &access, &ctx_stamp(ctx)?, new, today).await?;
        ctx_events(ctx).publish(HubEvent::AccessChanged { patient_id });
        Ok(CareTeamMembership(added))
    }

    /// Ends a care-team membership (the end date is its last day). Needs write
    /// access to CARE_TEAM, and to be the membership's organisation, the
    /// organisation that added it, or the coordination centre (`FORBIDDEN`
    /// otherwise). The patient's last membership does not end (`CONFLICT`):
    /// add the organisation taking over first.
    async fn end_care_team_membership(
        &self,
        ctx: &Context<'_>,
        input: EndCareTeamMembershipInput,
    ) -> Result<CareTeamMembership> {
        let id = parse_id("input.membershipId", &input.membership_id)?;
        let end_date = input
            .end_date
            .map(|d| d.0)
            .unwrap_or_else(|| ctx_policy(ctx).clock.today());
        let db = ctx_db(ctx);
        // A membership of a patient — or a care team — the caller cannot see
        // does not exist for it.
        let found = care_team::find(db, id).await?;
        let (membership, access) = Bound {
            what: "care-team membership",
            id,
            patient_id: found.as_ref().map(|m| m.patient_id),
            category: Some(DataCategory::CareTeam),
            hidden_without_category: true,
        }
        .reach(ctx, found)
        .await?;
        let patient_id = membership.patient_id;
        let caller_kind = super::consents::caller_kind(ctx).await?;
        let ended = care_team::end(
            db,
            &access,
            &ctx_stamp(ctx)?,
            caller_kind,
            membership,
            end_date,
            ctx_policy(ctx).clock.today(),
        )
        .await?;
        ctx_events(ctx).publish(HubEvent::AccessChanged { patient_id });
        Ok(CareTeamMembership(ended))
    }

    /// Records the patient's consent (同意), taken by you from a signed form.
    /// A consent that narrows access, or widens it when recorded by an
    /// organisation the consent in force covers (or by the coordination
    /// centre), replaces the consent in force at once; any other widening is
    /// `PENDING` — in the history, granting nothing — until the coordination
    /// centre confirms it (`docs/access-policy.md`). Needs a care relationship
    /// and write access to CONSENT.
    async fn record_consent(
        &self,
        ctx: &Context<'_>,
        input: RecordConsentInput,
    ) -> Result<Consent> {
        let patient_id = parse_id("input.patientId", &input.patient_id)?;
        let policy = ctx_policy(ctx);
        let new = input.consent(policy.clock.today())?;
        let access = patient_access(ctx, patient_id).await?;
        let caller_kind = super::consents::caller_kind(ctx).await?;
        let recorded = consents::record(
            ctx_db(ctx),
            policy,
            &access,
            &ctx_stamp(ctx)?,
            caller_kind,
            ctx_events(ctx),
            new,
            policy.clock.now(),
        )
        .await?;
        Ok(Consent(recorded))
    }

    /// Withdraws the patient's consent, and voids a consent pending
    /// confirmation. It takes effect for the very next request. Needs write
    /// access to CONSENT.
    async fn withdraw_consent(
        &self,
        ctx: &Context<'_>,
        input: WithdrawConsentInput,
    ) -> Result<Consent> {
        let patient_id = parse_id("input.patientId", &input.patient_id)?;
        let reason = Text::parse_opt("input.reason", input.reason.as_deref(), NAME_MAX)?;
        let access = patient_access(ctx, patient_id).await?;
        let withdrawn = consents::withdraw(
            ctx_db(ctx),
            &access,
            &ctx_stamp(ctx)?,
            ctx_events(ctx),
            reason,
            ctx_policy(ctx).clock.now(),
        )
        .await?;
        Ok(Consent(withdrawn))
    }

    /// Records the patient's objection to emergency access; emergency access
    /// already open on the patient ends. Needs write access to CONSENT.
    async fn record_emergency_access_objection(
        &self,
        ctx: &Context<'_>,
        input: EmergencyObjectionInput,
    ) -> Result<EmergencyObjection> {
        let patient_id = parse_id("input.patientId", &input.patient_id)?;
        let note = Text::parse_opt("input.note", input.note.as_deref(), 1000)?;
        let access = patient_access(ctx, patient_id).await?;
        let recorded = consents::record_objection(
            ctx_db(ctx),
            &access,
            &ctx_stamp(ctx)?,
            note,
            ctx_policy(ctx).clock.now(),
        )
        .await?;
        ctx_events(ctx).publish(HubEvent::AccessChanged { patient_id });
        Ok(EmergencyObjection(recorded))
    }

    /// Withdraws the patient's objection to emergency access. It widens
    /// access, so only an organisation the consent in force covers (and
    /// grants some category), or the coordination centre, may: `FORBIDDEN`
    /// for anyone else. Needs write access to CONSENT.
    async fn withdraw_emergency_access_objection(
        &self,
        ctx: &Context<'_>,
        patient_id: ID,
    ) -> Result<EmergencyObjection> {
        let patient_id = parse_id("patientId", &patient_id)?;
        let access = patient_access(ctx, patient_id).await?;
        let caller_kind = super::consents::caller_kind(ctx).await?;
        let policy = ctx_policy(ctx);
        let withdrawn = consents::withdraw_objection(
            ctx_db(ctx),
            policy,
            &access,
            &ctx_stamp(ctx)?,
            caller_kind,
            ctx_events(ctx),
            policy.clock.now(),
        )
        .await?;
        Ok(EmergencyObjection(withdrawn))
    }

    /// 救急時閲覧 (break-the-glass): a physician, nurse or EMS crew member opens
    /// read access to a patient's emergency categories — emergency information,
    /// allergies, medications, conditions, advance care planning, and for
    /// physicians and nurses drug contraindications and infections — without a
    /// care relationship or consent, for a limited time (4 hours by default).
    /// Say why with `reasonCode` (心肺停止, 救急搬送中 …), `reason` in words
    /// (「救急」 will do), or both. Refused where the patient has objected —
    /// answered as for a patient that does not exist (`NOT_FOUND`).
    /// Audited as an emergency, and every read under it as `EMERGENCY_READ`;
    /// the patient's care team is notified.
    async fn open_emergency_access(
        &self,
        ctx: &Context<'_>,
        input: OpenEmergencyAccessInput,
    ) -> Result<EmergencyAccess> {
        let req = ctx_request(ctx)?;
        let policy = ctx_policy(ctx);
        let (target, reason) = input.parse()?;
        let reference = match &target {
            EmergencyTarget::Patient(id) => PatientRef::Id(*id),
            EmergencyTarget::LocalId {
                organization_id,
                local_id,
            } => PatientRef::LocalId {
                organization_id: *organization_id,
                local_id,
            },
        };
        let requested = match reference {
            PatientRef::Id(id) => Some(id),
            PatientRef::LocalId { .. } | PatientRef::InsuredPersonId(_) => None,
        };
        // Every refusal below is recorded (a miss too, so that probing for
        // patients shows) and is the same whether the patient exists or not.
        let refuse = |patient_id: Option<uuid::Uuid>, why: String| {
            // A refused opener is named with the emergency set: it may open
            // nothing, and its denial tells of no more.
            let categories = match emergency_categories_of(&req.principal) {
                [] => EMERGENCY_CATEGORIES,
                opened => opened,
            };
            reference.refuse(
                ctx,
                patient_id,
                categories,
                &format!("emergency access: {why} ({})", reason.audit_detail()),
            )
        };
        let opener = match policy.require_emergency_opener(&req.principal) {
            Ok(opener) => opener,
            Err(e) => {
                refuse(requested, e.message());
                return Err(e.into());
            }
        };
        let db = ctx_db(ctx);
        // A reference by id resolves to itself; whether a patient has it,
        // and whether that patient objected, is read for every reference —
        // a local ID that matched none too — so that each refusal below
        // takes the same reads (`emergency::standing`). The objection is
        // answered as a patient that does not exist, as the emergency
        // search leaves such a patient out: it is the patient's wish to
        // stay out of reach, and "objected" would tell any opener that the
        // patient is known to the network and has objected; the log keeps
        // why.
        let resolved = reference.resolve(ctx).await?;
        let standing = emergency::standing(db, resolved.unwrap_or(uuid::Uuid::nil())).await?;
        let patient_id = match (resolved, standing) {
            (Some(id), emergency::Standing::Open) => id,
            (Some(id), emergency::Standing::Objected) => {
                return Err(refuse(
                    Some(id),
                    "refused (the patient has recorded an objection to emergency access)".into(),
                )
                .into());
            }
            (requested, _) => return Err(refuse(requested, "no such patient".into()).into()),
        };
        let stamp = ctx_stamp(ctx)?;
        let grant = match emergency::open(
            db,
            policy,
            opener,
            &stamp,
            ctx_events(ctx),
            patient_id,
            reason.clone(),
        )
        .await
        {
            Ok(g) => g,
            // An objection recorded since the read above: refused alike.
            Err(e @ ApiError::Forbidden(_)) => {
                return Err(refuse(Some(patient_id), format!("refused ({})", e.message())).into());
            }
            Err(ApiError::NotFound(_)) => {
                return Err(refuse(Some(patient_id), "no such patient".into()).into());
            }
            Err(e) => return Err(e.into()),
        };
        let patient = load_patient(ctx, patient_id).await?;
        Ok(EmergencyAccess { grant, patient })
    }

    /// Writes many records of many kinds for many patients — all or none. A bad
    /// item is reported with its index and field (`input.records[3].data.labResult.unit`).
    /// Idempotent: an item whose `sourceRecordId` (per organisation and kind)
    /// was written before updates that record (a new version), or changes
    /// nothing if identical. Parts of a record you may not write (an
    /// emergency sheet's hand-typed diagnoses or medications, without write
    /// access to CONDITIONS or MEDICATIONS) are left empty and carried
    /// forward from the version it replaces (see
    /// `recordEmergencyInformation`).
    async fn write_records(
        &self,
        ctx: &Context<'_>,
        input: super::records::WriteRecordsInput,
    ) -> Result<Vec<super::records::RecordWriteResult>> {
        super::records::write_records(ctx, input.records).await
    }

    /// Marks a record entered in error: a new version with that status, out of
    /// the summary and the timeline (unless asked for); never deleted. Only
    /// the organisation that wrote the record may (`FORBIDDEN` otherwise).
    async fn mark_record_entered_in_error(
        &self,
        ctx: &Context<'_>,
        record_id: ID,
    ) -> Result<super::records::Record> {
        super::records::enter_in_error(ctx, record_id).await
    }

    /// Marks one of your notifications read (for your whole organisation when
    /// it was addressed to the organisation).
    async fn mark_notification_read(&self, ctx: &Context<'_>, id: ID) -> Result<Notification> {
        let req = ctx_request(ctx)?;
        let id = parse_id("id", &id)?;
        // Only a notification the caller may be shown (the rule of the
        // list); any other — someone else's, about a patient the caller may
        // no longer read, or none — is refused alike.
        let found = notifications::find_for(ctx_db(ctx), &req.principal, id).await?;
        let notification = Bound {
            what: "notification",
            id,
            patient_id: found.as_ref().and_then(|n| n.patient_id),
            // Refused because its category is closed (or for any other
            // reason), it is recorded under that category: the refusal
            // tells of a liaison message or a discharge notice.
            category: found
                .as_ref()
                .and_then(|n| notifications::NotificationKind::parse(&n.kind))
                .and_then(notifications::NotificationKind::category),
            hidden_without_category: false,
        };
        let shown = match found {
            Some(n) if n.patient_id.is_none() => n,
            found => {
                let (n, access) = notification.reach(ctx, found).await?;
                if !notifications::admit(&n, Some(&access), ctx_trail(ctx)?) {
                    return Err(notification
                        .refuse(ctx, "its category of the patient is closed to you")
                        .into());
                }
                n
            }
        };
        Ok(Notification(
            notifications::mark_read(ctx_db(ctx), shown, ctx_policy(ctx).clock.now()).await?,
        ))
    }

    /// Creates an API key for an organisation's system, with the permissions
    /// it acts with, and returns its secret, once. Network administrators only.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> Result<CreatedApiKey> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let new = input.try_into()?;
        let (key, secret) = api_keys::create(ctx_db(ctx), admin, &ctx_stamp(ctx)?, new).await?;
        Ok(CreatedApiKey {
            api_key: ApiKey(key),
            secret,
        })
    }

    /// Revokes an API key; it is refused from then on. Network administrators only.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let id = parse_id("id", &id)?;
        let key = api_keys::revoke(ctx_db(ctx), admin, &ctx_stamp(ctx)?, id).await?;
        // This instance forgets the key at once; others on the event, or
        // within the cache's TTL.
        ctx.data_unchecked::<std::sync::Arc<api_keys::ApiKeyCache>>()
            .forget(id);
        ctx_events(ctx).publish(HubEvent::ApiKeyRevoked { api_key_id: id });
        Ok(ApiKey(key))
    }
}

/// A `CONFLICT` on an insured-person identifier tells the caller that the
/// person is in the network (名寄せ: match, do not duplicate) — so it is an
/// answer about another patient, and is recorded as `DENIED` against the
/// patient who holds the identifier: their access history shows who asked,
/// and trying identifiers one after another leaves a trace of each.
async fn insured_conflict_recorded<T>(
    ctx: &Context<'_>,
    asked: Option<&crate::domain::InsuredPersonId>,
    result: crate::error::ApiResult<T>,
) -> crate::error::ApiResult<T> {
    if let (Err(ApiError::Conflict(message)), Some(id)) = (&result, asked)
        && *message == patients::insured_conflict_message(id)
    {
        let holder = patients::find_by_insured_person_ids(ctx_db(ctx), &[id.as_str().to_string()])
            .await?
            .remove(id.as_str());
        ctx_trail(ctx)?.refused(
            holder,
            &[DataCategory::Identity],
            format!("insured-person identifier {:?}", id.as_str()),
            "CONFLICT: the identifier belongs to a patient of the network".into(),
        );
    }
    result
}
