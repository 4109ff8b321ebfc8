//! GraphQL input objects and their parsing into domain commands. This is the
//! edge: a `BAD_USER_INPUT` error names the input field it is about.

use async_graphql::{ID, InputObject};
use chrono::NaiveDate;
use uuid::Uuid;

use super::Date;
use crate::audit::AuditAction;
use crate::domain::{
    ADDRESS_MAX, AccessLevel, Capability, CareTeamRole, ConsentForm, ConsentMethod, ConsentScope,
    ConsentSignatory, DataCategory, EmergencyReason, EmergencyReasonCode, GeoPoint,
    InsuredPersonId, Kana, LocalId, MedicalInstitutionCode, Municipality, NAME_MAX,
    OrganizationKind, PatientStatus, Phone, PlaceOfDeath, PostalCode, Profession, RawConsentForm,
    Sex, Text, past_date,
};
use crate::error::{ApiError, ApiResult};
use crate::principal::SystemPermissions;
use crate::services::{
    api_keys::NewApiKey,
    audit_log::AuditFilter,
    care_team::NewMembership,
    consents::NewConsent,
    members::NewMember,
    organizations::NewOrganization,
    patients::{NewPatient, StatusChange},
};

/// Parses an opaque id. A malformed id cannot name anything, so it is bad input.
/// The cursor of a list ordered by id: the id's bytes, URL-safe base64.
pub fn id_cursor(id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// A list's paging arguments, checked: `first` from 1 to `max` (`default`
/// when absent), `after` a cursor of [`id_cursor`]; `BAD_USER_INPUT` naming
/// the argument otherwise.
pub fn id_page(
    first: Option<i32>,
    after: Option<&str>,
    default: i32,
    max: i32,
) -> ApiResult<(u64, Option<Uuid>)> {
    let first = first.unwrap_or(default);
    if !(1..=max).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("must be between 1 and {max}, got {first}"),
        ));
    }
    Ok((first as u64, after.map(parse_id_cursor).transpose()?))
}

/// A cursor of [`id_cursor`] given as `after`, back to its id.
pub fn parse_id_cursor(cursor: &str) -> ApiResult<Uuid> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| ApiError::bad_input("after", "is not a cursor returned by this hub"))
}

pub fn parse_id(field: &str, id: &ID) -> ApiResult<Uuid> {
    Uuid::try_parse(id.as_str())
        .map_err(|_| ApiError::bad_input(field, format!("{:?} is not a renkei id", id.as_str())))
}

#[derive(InputObject)]
pub struct GeoPointInput {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(InputObject)]
pub struct RegisterOrganizationInput {
    pub kind: OrganizationKind,
    pub name: String,
    /// Katakana or hiragana.
    pub name_kana: Option<String>,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub municipality: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub location: Option<GeoPointInput>,
    #[graphql(default)]
    pub capabilities: Vec<Capability>,
    /// 医療機関コード (10 digits), for a medical institution: how FHIR
    /// senders (JP-CLINS) name it. Unique across the network.
    pub medical_institution_code: Option<String>,
}

impl TryFrom<RegisterOrganizationInput> for NewOrganization {
    type Error = ApiError;

    fn try_from(i: RegisterOrganizationInput) -> ApiResult<Self> {
        Ok(NewOrganization {
            kind: i.kind,
            name: Text::parse("input.name", &i.name, NAME_MAX)?,
            name_kana: Kana::parse_opt("input.nameKana", i.name_kana.as_deref())?,
            postal_code: PostalCode::parse_opt("input.postalCode", i.postal_code.as_deref())?,
            address: Text::parse_opt("input.address", i.address.as_deref(), ADDRESS_MAX)?,
            municipality: Municipality::parse_opt("input.municipality", i.municipality.as_deref())?,
            phone: Phone::parse_opt("input.phone", i.phone.as_deref())?,
            fax: Phone::parse_opt("input.fax", i.fax.as_deref())?,
            location: i
                .location
                .map(|l| GeoPoint::parse("input.location", l.latitude, l.longitude))
                .transpose()?,
            capabilities: i.capabilities,
            medical_institution_code: MedicalInstitutionCode::parse_opt(
                "input.medicalInstitutionCode",
                i.medical_institution_code.as_deref(),
            )?,
        })
    }
}

#[derive(InputObject)]
pub struct RegisterMemberInput {
    pub organization_id: ID,
    pub name: String,
    pub name_kana: Option<String>,
    pub profession: Profession,
}

impl TryFrom<RegisterMemberInput> for NewMember {
    type Error = ApiError;

    fn try_from(i: RegisterMemberInput) -> ApiResult<Self> {
        Ok(NewMember {
            organization_id: parse_id("input.organizationId", &i.organization_id)?,
            name: Text::parse("input.name", &i.name, NAME_MAX)?,
            name_kana: Kana::parse_opt("input.nameKana", i.name_kana.as_deref())?,
            profession: i.profession,
        })
    }
}

#[derive(InputObject)]
pub struct RegisterPatientInput {
    pub name: String,
    /// Katakana or hiragana; stored as katakana.
    pub name_kana: String,
    pub birth_date: Date,
    pub sex: Sex,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// Your organisation's own ID for the patient (カルテ番号 / 利用者番号).
    pub local_id: String,
    /// 被保険者個人識別子 (`保険者番号:記号:番号:枝番`), when known: what FHIR
    /// senders (JP-CLINS) match the patient by. Unique across the network.
    pub insured_person_identifier: Option<String>,
    /// Your organisation's role on the patient's care team, which registering
    /// starts. Defaults from your organisation's kind (a clinic is the primary
    /// physician, a pharmacy the pharmacy, a care office the care manager …).
    pub care_team_role: Option<CareTeamRole>,
}

impl RegisterPatientInput {
    /// `today` is the region's date, for checking the birth date.
    pub fn into_new(self, today: NaiveDate) -> ApiResult<NewPatient> {
        let i = self;
        Ok(NewPatient {
            name: Text::parse("input.name", &i.name, NAME_MAX)?,
            name_kana: Kana::parse("input.nameKana", &i.name_kana)?,
            birth_date: past_date("input.birthDate", i.birth_date.0, today)?,
            sex: i.sex,
            postal_code: PostalCode::parse_opt("input.postalCode", i.postal_code.as_deref())?,
            address: Text::parse_opt("input.address", i.address.as_deref(), ADDRESS_MAX)?,
            phone: Phone::parse_opt("input.phone", i.phone.as_deref())?,
            local_id: LocalId::parse("input.localId", &i.local_id)?,
            insured_person_id: InsuredPersonId::parse_opt(
                "input.insuredPersonIdentifier",
                i.insured_person_identifier.as_deref(),
            )?,
        })
    }
}

#[derive(InputObject)]
pub struct SetPatientStatusInput {
    pub patient_id: ID,
    pub status: PatientStatus,
    /// Required when `status` is `DECEASED`, refused otherwise.
    pub deceased_on: Option<Date>,
    /// Required when `status` is `DECEASED`, refused otherwise.
    pub place_of_death: Option<PlaceOfDeath>,
}

impl SetPatientStatusInput {
    pub fn change(&self, today: NaiveDate) -> ApiResult<StatusChange> {
        let must_be_empty = |present: bool, field: &str| {
            if present {
                Err(ApiError::bad_input(
                    field,
                    "only a DECEASED status carries a date and place of death",
                ))
            } else {
                Ok(())
            }
        };
        match self.status {
            PatientStatus::Deceased => {
                let on = self.deceased_on.ok_or_else(|| {
                    ApiError::bad_input("input.deceasedOn", "is required when the patient has died")
                })?;
                let place = self.place_of_death.ok_or_else(|| {
                    ApiError::bad_input(
                        "input.placeOfDeath",
                        "is required when the patient has died (UNKNOWN if not known)",
                    )
                })?;
                Ok(StatusChange::Deceased {
                    on: past_date("input.deceasedOn", on.0, today)?,
                    place,
                })
            }
            other => {
                must_be_empty(self.deceased_on.is_some(), "input.deceasedOn")?;
                must_be_empty(self.place_of_death.is_some(), "input.placeOfDeath")?;
                Ok(if other == PatientStatus::Active {
                    StatusChange::Active
                } else {
                    StatusChange::MovedAway
                })
            }
        }
    }
}

#[derive(InputObject)]
pub struct LinkPatientIdentifierInput {
    pub patient_id: ID,
    /// Defaults to the caller's organisation. Only network administrators may
    /// link for another organisation.
    pub organization_id: Option<ID>,
    pub local_id: String,
}

#[derive(InputObject)]
pub struct AddCareTeamMemberInput {
    pub patient_id: ID,
    pub organization_id: ID,
    /// A named professional of that organisation, if any.
    pub member_id: Option<ID>,
    pub role: CareTeamRole,
    /// Defaults to today (Japan time).
    pub start_date: Option<Date>,
}

impl AddCareTeamMemberInput {
    pub fn membership(&self, today: NaiveDate) -> ApiResult<NewMembership> {
        Ok(NewMembership {
            organization_id: parse_id("input.organizationId", &self.organization_id)?,
            member_id: self
                .member_id
                .as_ref()
                .map(|m| parse_id("input.memberId", m))
                .transpose()?,
            role: self.role,
            start_date: self.start_date.map(|d| d.0).unwrap_or(today),
        })
    }
}

#[derive(InputObject)]
pub struct EndCareTeamMembershipInput {
    pub membership_id: ID,
    /// The last day (inclusive). Defaults to today (Japan time).
    pub end_date: Option<Date>,
}

#[derive(InputObject)]
pub struct CategoryPermissionInput {
    pub category: DataCategory,
    pub level: AccessLevel,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub organization_id: ID,
    /// What the key is for, e.g. "電子カルテ連携".
    pub name: String,
    /// What the system may read and write for its organisation, per data
    /// category (it takes the place of a profession), each category once.
    /// Categories not listed: none.
    #[graphql(default)]
    pub permissions: Vec<CategoryPermissionInput>,
}

impl TryFrom<CreateApiKeyInput> for NewApiKey {
    type Error = ApiError;

    fn try_from(i: CreateApiKeyInput) -> ApiResult<Self> {
        // A category named twice is ambiguous (READ_WRITE beside NONE): the
        // hub does not choose which was meant.
        let mut seen = std::collections::HashMap::new();
        for (index, p) in i.permissions.iter().enumerate() {
            if let Some(first) = seen.insert(p.category, index) {
                return Err(ApiError::bad_input(
                    format!("input.permissions[{index}].category"),
                    format!(
                        "{} is also named at permissions[{first}]: name each category once",
                        p.category
                    ),
                ));
            }
        }
        Ok(NewApiKey {
            organization_id: parse_id("input.organizationId", &i.organization_id)?,
            name: Text::parse("input.name", &i.name, NAME_MAX)?,
            permissions: SystemPermissions::new(
                i.permissions.into_iter().map(|p| (p.category, p.level)),
            ),
        })
    }
}

#[derive(InputObject, Default)]
pub struct OrganizationFilterInput {
    /// Any of these kinds.
    #[graphql(default)]
    pub kinds: Vec<OrganizationKind>,
    /// Exactly this municipality, e.g. "北見市".
    pub municipality: Option<String>,
    /// Every one of these capabilities.
    #[graphql(default)]
    pub capabilities: Vec<Capability>,
}

#[derive(InputObject)]
pub struct RecordConsentInput {
    pub patient_id: ID,
    /// `NETWORK` (包括同意) or `ORGANIZATIONS` (個別同意).
    pub scope: ConsentScope,
    /// For `NETWORK`: organisations excluded. For `ORGANIZATIONS`: those covered
    /// (at least one).
    #[graphql(default)]
    pub organization_ids: Vec<ID>,
    /// Data categories the consent does not cover.
    #[graphql(default)]
    pub excluded_categories: Vec<DataCategory>,
    pub method: ConsentMethod,
    /// The signed form the consent is recorded from.
    pub form: ConsentFormInput,
    /// Record it only as the patient's **first** consent: when any consent
    /// was ever recorded for the patient, nothing is recorded and the answer
    /// is `CONFLICT` (field `input.onlyIfFirst`). Decided under the same lock
    /// as the recording, so that two processes of one system completing the
    /// same registration (a patient registered, its consent not yet
    /// recorded) cannot both record one — the second would supersede the
    /// first with a copy. `POST /fhir?register=true` records a
    /// registration's consent this way.
    #[graphql(default)]
    pub only_if_first: bool,
}

/// The signed consent form (同意書).
#[derive(InputObject)]
pub struct ConsentFormInput {
    /// Where the signed form is kept (e.g. a scanned document's number).
    pub reference: String,
    /// The day it was signed: not in the future, not before the patient's birth.
    pub signed_on: Date,
    /// The patient, or a proxy (代諾者): `FAMILY` or `GUARDIAN`.
    pub signed_by: ConsentSignatory,
    /// The proxy's name; required for a proxy, refused for the patient.
    pub proxy_name: Option<String>,
    /// The proxy's relation to the patient (続柄: 長女, 配偶者; or 成年後見人 …);
    /// required for a proxy, refused for the patient.
    pub proxy_relation: Option<String>,
}

impl RecordConsentInput {
    pub fn consent(&self, today: NaiveDate) -> ApiResult<NewConsent> {
        let form = &self.form;
        Ok(NewConsent {
            scope: self.scope,
            organization_ids: self
                .organization_ids
                .iter()
                .map(|id| parse_id("input.organizationIds", id))
                .collect::<ApiResult<_>>()?,
            excluded_categories: self.excluded_categories.clone(),
            method: self.method,
            only_if_first: self.only_if_first,
            form: ConsentForm::parse(
                "input.form",
                RawConsentForm {
                    reference: &form.reference,
                    signed_on: form.signed_on.0,
                    signed_by: form.signed_by,
                    proxy_name: form.proxy_name.as_deref(),
                    proxy_relation: form.proxy_relation.as_deref(),
                },
                today,
            )?,
        })
    }
}

#[derive(InputObject)]
pub struct WithdrawConsentInput {
    pub patient_id: ID,
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct RejectConsentInput {
    /// The pending consent.
    pub consent_id: ID,
    /// Why (the form could not be verified …); kept in the consent's history.
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct EmergencyObjectionInput {
    pub patient_id: ID,
    pub note: Option<String>,
}

/// Whom to open emergency access on: a patient id, or a facility's local ID
/// (the number on a medication notebook or a registration card); and why: a
/// reason code, a reason in words, or both.
#[derive(InputObject)]
pub struct OpenEmergencyAccessInput {
    pub patient_id: Option<ID>,
    /// With `localId`: the facility whose number it is.
    pub organization_id: Option<ID>,
    pub local_id: Option<String>,
    /// Why, as a code (心肺停止, 意識障害, 救急搬送中 …). `OTHER` needs
    /// `reason` too.
    pub reason_code: Option<EmergencyReasonCode>,
    /// Why, in words (「救急」 is enough alone; with `reasonCode`, anything
    /// that adds to it): at least 2 characters alone, at most 1000,
    /// whitespace trimmed; only characters that show count, and invisible
    /// formatting characters (zero-width spaces, direction overrides) are
    /// refused. Recorded in the audit log; the care team reads it
    /// in the patient's access history.
    pub reason: Option<String>,
}

pub enum EmergencyTarget {
    Patient(Uuid),
    LocalId {
        organization_id: Uuid,
        local_id: LocalId,
    },
}

impl OpenEmergencyAccessInput {
    pub fn parse(&self) -> ApiResult<(EmergencyTarget, EmergencyReason)> {
        let reason =
            EmergencyReason::parse("input.reason", self.reason_code, self.reason.as_deref())?;
        let target = match (&self.patient_id, &self.organization_id, &self.local_id) {
            (Some(p), None, None) => EmergencyTarget::Patient(parse_id("input.patientId", p)?),
            (None, Some(o), Some(l)) => EmergencyTarget::LocalId {
                organization_id: parse_id("input.organizationId", o)?,
                local_id: LocalId::parse("input.localId", l)?,
            },
            _ => {
                return Err(ApiError::bad_input(
                    "input",
                    "give either patientId, or organizationId and localId",
                ));
            }
        };
        Ok((target, reason))
    }
}

#[derive(InputObject, Default)]
pub struct AuditLogFilterInput {
    pub patient_id: Option<ID>,
    /// A member id, or an API key id.
    pub actor_id: Option<ID>,
    pub organization_id: Option<ID>,
    pub action: Option<AuditAction>,
    /// From this time (inclusive).
    pub from: Option<crate::domain::Timestamp>,
    /// Until this time (exclusive).
    pub to: Option<crate::domain::Timestamp>,
}

impl AuditLogFilterInput {
    pub fn filter(&self) -> ApiResult<AuditFilter> {
        let opt =
            |field: &str, id: &Option<ID>| id.as_ref().map(|i| parse_id(field, i)).transpose();
        Ok(AuditFilter {
            patient_id: opt("filter.patientId", &self.patient_id)?,
            actor_id: opt("filter.actorId", &self.actor_id)?,
            organization_id: opt("filter.organizationId", &self.organization_id)?,
            action: self.action,
            from: self.from.map(crate::domain::Timestamp::get),
            to: self.to.map(crate::domain::Timestamp::get),
        })
    }
}

/// The care-team role a newly registering organisation takes by default.
pub fn default_role(kind: OrganizationKind) -> CareTeamRole {
    match kind {
        OrganizationKind::Hospital => CareTeamRole::Hospital,
        OrganizationKind::Clinic => CareTeamRole::PrimaryPhysician,
        OrganizationKind::DentalClinic => CareTeamRole::Dentist,
        OrganizationKind::Pharmacy => CareTeamRole::Pharmacy,
        OrganizationKind::VisitingNurseStation => CareTeamRole::VisitingNurse,
        OrganizationKind::HomeCareSupportOffice => CareTeamRole::CareManager,
        OrganizationKind::CareServiceProvider
        | OrganizationKind::NursingHome
        | OrganizationKind::SmallMultifunctionalCare
        | OrganizationKind::RegularRoundsOnCallCare
        | OrganizationKind::WelfareEquipmentRental => CareTeamRole::CareService,
        // 看多機 nurses visit: the team knows them as its visiting nurses.
        OrganizationKind::NursingSmallMultifunctionalCare => CareTeamRole::VisitingNurse,
        OrganizationKind::RehabilitationProvider => CareTeamRole::Rehabilitation,
        OrganizationKind::CommunityGeneralSupportCenter => CareTeamRole::CommunitySupportCenter,
        OrganizationKind::Municipality => CareTeamRole::Municipality,
        _ => CareTeamRole::Other,
    }
}
