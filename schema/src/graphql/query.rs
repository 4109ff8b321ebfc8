//! The root query. Resolvers are thin: parse, obtain a capability, call a
//! service, wrap the result.

use async_graphql::{
    Context, ID, Object, Result,
    connection::{Connection, Edge, EmptyFields},
};
use uuid::Uuid;

use super::admission_discharge::{self, AdmissionSheet, DischargeNotice};
use super::federation::{self, Entity};
use super::inputs::{AuditLogFilterInput, OrganizationFilterInput, parse_id};
use super::records::{self, Record};
use super::types::{AuditEntry, Member, Notification, Organization, Patient, Viewer, ViewerKind};
use super::{
    audit_connection, audit_page_args, ctx_db, ctx_request, ctx_trail, find_patient, find_patients,
    load_patient, loaders::Loaders, reach::PatientRef,
};
use crate::domain::{InsuredPersonId, LocalId, NAME_MAX, Text};
use crate::error::ApiError;
use crate::policy;
use crate::principal::Principal;
use crate::services::organizations;
use crate::services::{audit_log, care_team, notifications};

pub struct Query;

/// Page size when `first` is not given, and the most a page may hold.
const DEFAULT_PAGE: i32 = 20;
const MAX_PAGE: i32 = 100;

fn encode_cursor(id: Uuid) -> String {
    super::inputs::id_cursor(id)
}

fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    super::inputs::parse_id_cursor(cursor)
}

#[Object]
impl Query {
    /// The authenticated caller.
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let req = ctx_request(ctx)?;
        Ok(match &req.principal {
            Principal::Member {
                member_id,
                organization_id,
                ..
            } => Viewer {
                kind: ViewerKind::Member,
                member_id: Some(*member_id),
                organization_id: *organization_id,
            },
            Principal::System {
                organization_id, ..
            } => Viewer {
                kind: ViewerKind::System,
                member_id: None,
                organization_id: *organization_id,
            },
        })
    }

    /// The resource directory: organisations in registration order, filtered by
    /// kind, municipality and capabilities (Relay cursor connection).
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        filter: Option<OrganizationFilterInput>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, Organization, EmptyFields, EmptyFields>> {
        ctx_request(ctx)?;
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                format!("must be between 1 and {MAX_PAGE}, got {first}"),
            )
            .into());
        }
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let filter = filter.unwrap_or_default();
        let municipality = Text::parse_opt(
            "filter.municipality",
            filter.municipality.as_deref(),
            NAME_MAX,
        )?;
        let filter = organizations::OrganizationFilter {
            kinds: filter.kinds,
            municipality: municipality.map(Text::into_inner),
            capabilities: filter.capabilities,
        };
        let (rows, has_next) =
            organizations::list(ctx_db(ctx), &filter, after, first as u64).await?;
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(
            rows.into_iter()
                .map(|o| Edge::new(encode_cursor(o.id), Organization(o))),
        );
        Ok(connection)
    }

    /// The public resource directory (医療・介護資源マップ): organisations
    /// whose entry is public, filtered by kind, capability, municipality,
    /// name, and distance from a point (nearest first). Answered without a
    /// token; shows only what each organisation marked public — never its
    /// members, its contact person or anything about patients.
    async fn public_directory(
        &self,
        ctx: &Context<'_>,
        filter: Option<super::directory::PublicDirectoryFilterInput>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, super::directory::PublicOrganization, EmptyFields, EmptyFields>>
    {
        super::directory::public_directory(ctx, filter, first, after).await
    }

    /// Informal community resources (サロン, 見守り, 買い物・移動支援 …) of a
    /// municipality and of types (all: null), by name.
    async fn community_resources(
        &self,
        ctx: &Context<'_>,
        municipality: Option<String>,
        types: Option<Vec<crate::domain::CommunityResourceType>>,
    ) -> Result<Vec<super::directory::CommunityResource>> {
        super::directory::community_resources(ctx, municipality, types, false).await
    }

    /// The community resources their owners made public — answered without
    /// a token, like `publicDirectory` (`owner` is null here).
    async fn public_community_resources(
        &self,
        ctx: &Context<'_>,
        municipality: Option<String>,
        types: Option<Vec<crate::domain::CommunityResourceType>>,
    ) -> Result<Vec<super::directory::CommunityResource>> {
        super::directory::community_resources(ctx, municipality, types, true).await
    }

    /// The vacancy board (空床・空き状況): facilities with their latest
    /// reports, by name, in a municipality and of bed types (all: empty).
    /// Reports older than 72 hours are marked `stale`.
    async fn vacancy_board(
        &self,
        ctx: &Context<'_>,
        municipality: Option<String>,
        #[graphql(desc = "Any of these types (null or empty: every type).")] bed_types: Option<
            Vec<crate::domain::BedType>,
        >,
    ) -> Result<Vec<super::directory::VacancyBoardEntry>> {
        super::directory::vacancy_board(ctx, municipality, bed_types.unwrap_or_default()).await
    }

    /// Directory entries not confirmed for `notConfirmedForMonths` months
    /// (default 12), never-confirmed first: the centre's list to chase.
    /// Network administrators and municipal staff.
    async fn stale_directory_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 12)] not_confirmed_for_months: i32,
    ) -> Result<Vec<super::directory::StaleDirectoryEntry>> {
        super::directory::stale_entries(ctx, not_confirmed_for_months).await
    }

    /// 活用状況: the programme's indicators of `municipality` from `from`
    /// to `to` (exclusive, at most 731 days): organisations, consenting
    /// patients, records shared, reads, emergency-information and ACP
    /// coverage, deaths and wished places, discharge lead times, liaison
    /// response. Aggregates only; cells below 5 suppressed (docs/indicators.md).
    /// Network administrators and the coordination centre; municipal staff
    /// for their own municipality. `municipality` must be named as the
    /// directory names it (some organisation's `municipality`). Audited.
    async fn indicators(
        &self,
        ctx: &Context<'_>,
        municipality: String,
        from: super::Date,
        to: super::Date,
    ) -> Result<Vec<super::indicators::Indicator>> {
        super::indicators::indicators(ctx, municipality, from, to).await
    }

    /// 災害時要配慮者名簿: the patients at home who depend on home oxygen, a
    /// ventilator, dialysis, suction, tube feeding or insulin — derived from
    /// the records in force, showing the dependency and the kind of record
    /// only — ordered by patient id, for planning for 避難行動要支援者.
    /// Municipal staff of a municipality read their own municipality's
    /// residents whose consent covers the municipality; the care team's
    /// professions that read DISASTER_SUPPORT read their organisation's
    /// patients (optionally of one `municipality`). Each listed patient is
    /// a READ in the audit log (docs/disaster-register.md).
    async fn disaster_register(
        &self,
        ctx: &Context<'_>,
        municipality: Option<String>,
        #[graphql(desc = "Only these (default: every dependency).")] dependencies: Option<
            Vec<crate::services::disaster::MedicalDependency>,
        >,
        #[graphql(desc = "Page size, 1 to 500 (default 100); with `complete`, up to 10,000.")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(
            default = false,
            desc = "Everything in one answer, or BAD_USER_INPUT (before anything is read or recorded) when more than `first` people are listed: for an export."
        )]
        complete: bool,
    ) -> Result<Connection<String, super::disaster::DisasterRegisterEntry, EmptyFields, EmptyFields>>
    {
        super::disaster::register(
            ctx,
            municipality,
            dependencies.unwrap_or_default(),
            first,
            after,
            complete,
        )
        .await
    }

    /// One organisation by id.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Organization>> {
        ctx_request(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(ctx
            .data_unchecked::<Loaders>()
            .organization
            .load_one(id)
            .await?
            .map(Organization))
    }

    /// One member by id.
    async fn member(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Member>> {
        ctx_request(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(ctx
            .data_unchecked::<Loaders>()
            .member
            .load_one(id)
            .await?
            .map(Member))
    }

    /// A patient by id. `NOT_FOUND` unless the caller's organisation is on the
    /// patient's care team (or the caller opened emergency access) — it cannot
    /// tell "no such patient" from "not yours".
    async fn patient(&self, ctx: &Context<'_>, id: ID) -> Result<Patient> {
        let id = parse_id("id", &id)?;
        Ok(find_patient(ctx, PatientRef::Id(id)).await?)
    }

    /// A patient by an organisation's local ID (名寄せ lookup). Defaults to the
    /// caller's organisation. Same visibility rule as `patient`: a local ID
    /// that matches no patient and one of a patient you may not see are
    /// answered alike.
    async fn patient_by_local_id(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
        local_id: String,
    ) -> Result<Patient> {
        let req = ctx_request(ctx)?;
        let org = match organization_id {
            Some(id) => parse_id("organizationId", &id)?,
            None => req.principal.organization_id(),
        };
        let local_id = LocalId::parse("localId", &local_id)?;
        Ok(find_patient(
            ctx,
            PatientRef::LocalId {
                organization_id: org,
                local_id: &local_id,
            },
        )
        .await?)
    }

    /// A patient by the 被保険者個人識別子 (`保険者番号:記号:番号:枝番`), as
    /// FHIR (JP-CLINS) senders name the person. Same visibility rule as
    /// `patient`: an identifier no patient holds and one of a patient you
    /// may not see are answered alike.
    async fn patient_by_insured_person_identifier(
        &self,
        ctx: &Context<'_>,
        identifier: String,
    ) -> Result<Patient> {
        let id = InsuredPersonId::parse("identifier", &identifier)?;
        Ok(find_patient(ctx, PatientRef::InsuredPersonId(&id)).await?)
    }

    /// Many patients by an organisation's local IDs at once (名寄せ of a
    /// batch: what a FHIR sender's bundle names), at most 500: one entry per
    /// local ID, in order. Same visibility rule as `patientByLocalId`, per
    /// entry: `null` where no patient holds the local ID or you may not see
    /// the patient — answered alike, and each refusal recorded as one of
    /// `patientByLocalId`. A malformed local ID is bad input naming its
    /// index (`localIds[3]`). One statement for the lookup and one for the
    /// policy, however many.
    async fn patients_by_local_ids(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
        local_ids: Vec<String>,
    ) -> Result<Vec<Option<Patient>>> {
        let req = ctx_request(ctx)?;
        let org = match organization_id {
            Some(id) => parse_id("organizationId", &id)?,
            None => req.principal.organization_id(),
        };
        let parsed = parse_lookups("localIds", &local_ids, LocalId::parse)?;
        let references: Vec<PatientRef<'_>> = parsed
            .iter()
            .map(|local_id| PatientRef::LocalId {
                organization_id: org,
                local_id,
            })
            .collect();
        Ok(find_patients(ctx, &references).await?)
    }

    /// Many patients by 被保険者個人識別子 at once, at most 500: one entry per
    /// identifier, in order; `null` where no patient holds it or you may
    /// not see the patient (answered alike, each refusal recorded as one
    /// of `patientByInsuredPersonIdentifier`). A malformed identifier is
    /// bad input naming its index (`identifiers[3]`).
    async fn patients_by_insured_person_identifiers(
        &self,
        ctx: &Context<'_>,
        identifiers: Vec<String>,
    ) -> Result<Vec<Option<Patient>>> {
        ctx_request(ctx)?;
        let parsed = parse_lookups("identifiers", &identifiers, InsuredPersonId::parse)?;
        let references: Vec<PatientRef<'_>> =
            parsed.iter().map(PatientRef::InsuredPersonId).collect();
        Ok(find_patients(ctx, &references).await?)
    }

    /// The patients your organisation looks after (active care-team
    /// membership), each under the policy — with their summaries, this is the
    /// care team's worklist. Batched: the cost does not grow per patient.
    async fn care_team_patients(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, Patient, EmptyFields, EmptyFields>> {
        let req = ctx_request(ctx)?;
        let first = first.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::bad_input(
                "first",
                format!("must be between 1 and {MAX_PAGE}, got {first}"),
            )
            .into());
        }
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let today = super::ctx_policy(ctx).clock.today();
        let (ids, more) = care_team::patients_of_organization(
            ctx_db(ctx),
            req.principal.organization_id(),
            today,
            after,
            first as u64,
        )
        .await?;
        let patients =
            futures_util::future::try_join_all(ids.iter().map(|id| load_patient(ctx, *id))).await?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(
            ids.into_iter()
                .zip(patients)
                .filter_map(|(id, p)| p.map(|p| Edge::new(encode_cursor(id), p))),
        );
        Ok(connection)
    }

    /// Your notifications, newest first: your organisation's and those
    /// addressed to you.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        #[graphql(default = 50, desc = "At most this many, 1 to 100.")] first: i32,
    ) -> Result<Vec<Notification>> {
        let req = ctx_request(ctx)?;
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(
                ApiError::bad_input("first", format!("must be between 1 and {MAX_PAGE}")).into(),
            );
        }
        let rows = notifications::for_caller(
            ctx_db(ctx),
            super::ctx_policy(ctx),
            &req.principal,
            unread_only,
            first as u64,
        )
        .await?;
        // A notification names a patient and tells of data of a category:
        // the query kept only those the policy lets the caller read now, so
        // the list is not shortened by others; each is audited as a read of
        // it (one batched verdict for all, which also drops one whose access
        // changed in the instant since).
        let patients: std::collections::BTreeSet<Uuid> =
            rows.iter().filter_map(|n| n.patient_id).collect();
        let access: std::collections::HashMap<Uuid, crate::policy::PatientAccess> = ctx
            .data_unchecked::<super::loaders::Loaders>()
            .access
            .load_many(patients.into_iter().map(|p| (req.principal.clone(), p)))
            .await?
            .into_iter()
            .map(|((_, id), v)| (id, v.access))
            .collect();
        let trail = ctx_trail(ctx)?;
        Ok(rows
            .into_iter()
            .filter(|n| {
                let a = n.patient_id.and_then(|p| access.get(&p));
                notifications::admit(n, a, trail)
            })
            .map(Notification)
            .collect())
    }

    /// Consents awaiting the coordination centre's confirmation, oldest
    /// first, each with the consent in force it would replace. For the
    /// coordination centre (members who may write CONSENT) and network
    /// administrators; `FORBIDDEN` for anyone else.
    async fn pending_consents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most this many, 1 to 100 (default 50).")] first: Option<i32>,
    ) -> Result<Vec<super::consents::PendingConsent>> {
        super::consents::pending_consents(ctx, first).await
    }

    /// Admission information sheets sent to your organisation (a hospital),
    /// newest first, about patients you are on the care team of and may read
    /// ADMISSION_DISCHARGE of. Default: SENT and RECEIVED.
    async fn admission_sheets_received(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] status: Vec<
            crate::services::admission_discharge::sheets::AdmissionSheetStatus,
        >,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<
        Connection<String, super::admission_discharge::AdmissionSheet, EmptyFields, EmptyFields>,
    > {
        super::admission_discharge::sheets_received(ctx, status, first, after).await
    }

    /// Discharge notices about the patients of your organisation's care
    /// teams, newest first, where you may read ADMISSION_DISCHARGE.
    async fn care_team_discharge_notices(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] status: Vec<
            crate::services::admission_discharge::notices::DischargeNoticeStatus,
        >,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<
        Connection<String, super::admission_discharge::DischargeNotice, EmptyFields, EmptyFields>,
    > {
        super::admission_discharge::team_notices(ctx, status, first, after).await
    }

    /// Discharge conferences your organisation is invited to, newest first;
    /// by default only those still ahead and not cancelled:
    /// `careConferenceInvitations(kinds: [DISCHARGE])`.
    async fn discharge_conference_invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] response: Vec<
            crate::services::admission_discharge::conferences::InvitationResponse,
        >,
        #[graphql(default = true)] upcoming_only: bool,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<
        Connection<String, super::admission_discharge::CareConference, EmptyFields, EmptyFields>,
    > {
        super::admission_discharge::conference_invitations(
            ctx,
            vec![crate::services::admission_discharge::conferences::ConferenceKind::Discharge],
            response,
            upcoming_only,
            first,
            after,
        )
        .await
    }

    /// Outbreak notices (感染症の集団発生の連絡) your organisation reported or
    /// was sent, newest first; by default of every status.
    async fn outbreak_notices(
        &self,
        ctx: &Context<'_>,
        #[graphql(default, desc = "Only these statuses (default: every status).")] status: Vec<
            crate::services::outbreaks::OutbreakStatus,
        >,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, super::outbreaks::OutbreakNotice, EmptyFields, EmptyFields>>
    {
        super::outbreaks::notices(ctx, status, first, after).await
    }

    /// One outbreak notice your organisation reported or was sent; any
    /// other is NOT_FOUND.
    async fn outbreak_notice(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<super::outbreaks::OutbreakNotice> {
        super::outbreaks::notice_by_id(ctx, id).await
    }

    /// Care conferences of any kind your organisation is invited to, about
    /// patients of its care team whose conference category you may read,
    /// newest first; by default every kind, only those still ahead and not
    /// cancelled.
    async fn care_conference_invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default, desc = "Only these kinds (default: every kind).")] kinds: Vec<
            crate::services::admission_discharge::conferences::ConferenceKind,
        >,
        #[graphql(default)] response: Vec<
            crate::services::admission_discharge::conferences::InvitationResponse,
        >,
        #[graphql(default = true)] upcoming_only: bool,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<
        Connection<String, super::admission_discharge::CareConference, EmptyFields, EmptyFields>,
    > {
        super::admission_discharge::conference_invitations(
            ctx,
            kinds,
            response,
            upcoming_only,
            first,
            after,
        )
        .await
    }

    /// 退院連絡の時期: how many days before the discharge the care team was
    /// told, in Kitami's buckets, for discharges from `from` to `to`
    /// (inclusive) — for a hospital, or the region when `hospitalId` is
    /// left out. The region (and any hospital): network administrators,
    /// municipal staff, the coordination centre and municipalities; your own
    /// organisation: members who may read ADMISSION_DISCHARGE. Audited.
    async fn discharge_lead_time_report(
        &self,
        ctx: &Context<'_>,
        from: super::Date,
        to: super::Date,
        hospital_id: Option<ID>,
    ) -> Result<super::admission_discharge::DischargeLeadTimeReport> {
        super::admission_discharge::lead_time_report(ctx, from, to, hospital_id).await
    }

    /// A liaison thread (連絡票) by id. `NOT_FOUND` unless its patient is
    /// visible to you and the thread is addressed to your organisation (or
    /// the whole care team); `null` with `FORBIDDEN_FIELD` when your role or
    /// the patient's consent closes LIAISON_MESSAGES.
    async fn liaison_thread(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<super::liaison::LiaisonThread>> {
        super::liaison::thread_by_id(ctx, id).await
    }

    /// Your organisation's liaison inbox: threads with messages it has not
    /// read, across its patients, most recently active first — only those
    /// whose patient's LIAISON_MESSAGES you may read, decided before the
    /// page is taken: a page holds up to `first` of them, and `hasNextPage`
    /// says whether another follows.
    async fn liaison_inbox(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<super::liaison::ThreadConnection> {
        super::liaison::inbox(ctx, first, after).await
    }

    /// The whole audit log, newest first, filtered. Network administrators
    /// only; reading it is itself audited.
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditLogFilterInput>,
        #[graphql(desc = "Page size, 1 to 100 (default 50).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<Connection<String, AuditEntry, EmptyFields, EmptyFields>> {
        let admin = policy::require_admin(&ctx_request(ctx)?.principal)?;
        let filter = filter.unwrap_or_default().filter()?;
        let (first, before) = audit_page_args(first, after)?;
        ctx_trail(ctx)?.read_log(format!("audit log searched: {filter:?}"));
        let (rows, more) = audit_log::search(ctx_db(ctx), admin, &filter, before, first).await?;
        Ok(audit_connection(rows, more, before.is_some()))
    }

    /// Apollo Federation: resolves `Patient` representations, under the
    /// same rule as `patient(id)`: a patient the caller may not see is null
    /// with `NOT_FOUND` at its index, exactly like one that does not exist
    /// (see [`super::federation`]).
    #[graphql(entity)]
    async fn find_patient_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Entity<Patient>> {
        federation::resolve(ctx, "Patient", &id, |id| {
            find_patient(ctx, PatientRef::Id(id))
        })
        .await
    }

    /// Apollo Federation: resolves `Organization` representations (the
    /// directory: any authenticated caller).
    #[graphql(entity)]
    async fn find_organization_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Entity<Organization>> {
        ctx_request(ctx)?;
        federation::resolve(ctx, "Organization", &id, |id| async move {
            ctx.data_unchecked::<Loaders>()
                .organization
                .load_one(id)
                .await?
                .map(Organization)
                .ok_or_else(|| ApiError::not_found("organization"))
        })
        .await
    }

    /// Apollo Federation: resolves `Record` representations, under the
    /// rule of every reference to a record: `NOT_FOUND` unless the caller
    /// may read its patient's data of the record's category.
    #[graphql(entity)]
    async fn find_record_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Entity<Record>> {
        federation::resolve(ctx, "Record", &id, |id| records::entity(ctx, id)).await
    }

    /// Apollo Federation: resolves `AdmissionSheet` representations, under
    /// the rule of every reference to a sheet (ADMISSION_DISCHARGE; a draft
    /// is its author's alone).
    #[graphql(entity)]
    async fn find_admission_sheet_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Entity<AdmissionSheet>> {
        federation::resolve(ctx, "AdmissionSheet", &id, |id| {
            admission_discharge::sheet_entity(ctx, id)
        })
        .await
    }

    /// Apollo Federation: resolves `DischargeNotice` representations
    /// (ADMISSION_DISCHARGE of the patient).
    #[graphql(entity)]
    async fn find_discharge_notice_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Entity<DischargeNotice>> {
        federation::resolve(ctx, "DischargeNotice", &id, |id| {
            admission_discharge::notice_entity(ctx, id)
        })
        .await
    }
}

/// Most references one batch lookup takes (`patientsByLocalIds`,
/// `patientsByInsuredPersonIdentifiers`): as many as one `writeRecords`
/// call writes records.
pub const MAX_LOOKUPS: usize = records::MAX_BATCH;

/// The values of a batch lookup's list argument `field`, parsed: at most
/// [`MAX_LOOKUPS`], and a malformed one is bad input naming its index
/// (`localIds[3]`).
fn parse_lookups<T>(
    field: &str,
    raw: &[String],
    parse: impl Fn(&str, &str) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    if raw.len() > MAX_LOOKUPS {
        return Err(ApiError::bad_input(
            field,
            format!("at most {MAX_LOOKUPS} at once, got {}", raw.len()),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, value)| parse(&format!("{field}[{i}]"), value))
        .collect()
}
