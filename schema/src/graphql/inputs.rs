//! GraphQL input objects and their parsing into domain commands. This is the
//! edge: a `BAD_USER_INPUT` error names the input field it is about.

use async_graphql::{ID, InputObject};
use chrono::Utc;
use uuid::Uuid;

use super::Date;
use crate::domain::{
    ADDRESS_MAX, Capability, CareTeamRole, GeoPoint, Kana, LocalId, NAME_MAX, OrganizationKind,
    PatientStatus, Phone, PlaceOfDeath, PostalCode, Profession, Sex, Text, past_date,
};
use crate::error::{ApiError, ApiResult};
use crate::services::{
    api_keys::NewApiKey,
    care_team::NewMembership,
    members::NewMember,
    organizations::NewOrganization,
    patients::{NewPatient, StatusChange},
};

/// Parses an opaque id. A malformed id cannot name anything, so it is bad input.
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
            municipality: Text::parse_opt(
                "input.municipality",
                i.municipality.as_deref(),
                NAME_MAX,
            )?,
            phone: Phone::parse_opt("input.phone", i.phone.as_deref())?,
            fax: Phone::parse_opt("input.fax", i.fax.as_deref())?,
            location: i
                .location
                .map(|l| GeoPoint::parse("input.location", l.latitude, l.longitude))
                .transpose()?,
            capabilities: i.capabilities,
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
}

impl TryFrom<RegisterPatientInput> for NewPatient {
    type Error = ApiError;

    fn try_from(i: RegisterPatientInput) -> ApiResult<Self> {
        Ok(NewPatient {
            name: Text::parse("input.name", &i.name, NAME_MAX)?,
            name_kana: Kana::parse("input.nameKana", &i.name_kana)?,
            birth_date: past_date("input.birthDate", i.birth_date.0)?,
            sex: i.sex,
            postal_code: PostalCode::parse_opt("input.postalCode", i.postal_code.as_deref())?,
            address: Text::parse_opt("input.address", i.address.as_deref(), ADDRESS_MAX)?,
            phone: Phone::parse_opt("input.phone", i.phone.as_deref())?,
            local_id: LocalId::parse("input.localId", &i.local_id)?,
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
    pub fn change(&self) -> ApiResult<StatusChange> {
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
                    on: past_date("input.deceasedOn", on.0)?,
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
    /// Defaults to today (UTC).
    pub start_date: Option<Date>,
}

impl AddCareTeamMemberInput {
    pub fn membership(&self) -> ApiResult<NewMembership> {
        Ok(NewMembership {
            organization_id: parse_id("input.organizationId", &self.organization_id)?,
            member_id: self
                .member_id
                .as_ref()
                .map(|m| parse_id("input.memberId", m))
                .transpose()?,
            role: self.role,
            start_date: self
                .start_date
                .map(|d| d.0)
                .unwrap_or_else(|| Utc::now().date_naive()),
        })
    }
}

#[derive(InputObject)]
pub struct EndCareTeamMembershipInput {
    pub membership_id: ID,
    /// The last day (inclusive). Defaults to today (UTC).
    pub end_date: Option<Date>,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub organization_id: ID,
    /// What the key is for, e.g. "電子カルテ連携".
    pub name: String,
}

impl TryFrom<CreateApiKeyInput> for NewApiKey {
    type Error = ApiError;

    fn try_from(i: CreateApiKeyInput) -> ApiResult<Self> {
        Ok(NewApiKey {
            organization_id: parse_id("input.organizationId", &i.organization_id)?,
            name: Text::parse("input.name", &i.name, NAME_MAX)?,
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
