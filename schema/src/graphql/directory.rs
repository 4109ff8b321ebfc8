//! The resource directory for people (issue 15, `docs/directory.md`): an
//! organisation's functions (`profile`), its vacancies, the centre's list of
//! stale entries, and the public directory — the one field the hub answers
//! without a token (see `server/src/http.rs`), built only from what each
//! organisation marked public and never from patient data.

use async_graphql::{
    ComplexObject, Context, InputObject, Object, Result, SimpleObject,
    connection::{Connection, Edge, EmptyFields},
};
use base64::Engine;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use uuid::Uuid;

use super::inputs::parse_id;
use super::types::{GeoPoint as GeoPointOut, Organization};
use super::{ctx_db, ctx_policy, ctx_request};
use crate::domain::{BedType, Capability, GeoPoint, OrganizationKind, Text, Weekday};
use crate::error::ApiError;
use crate::policy;
use crate::services::directory::{
    self, AvoidCalling, PublicCursor, PublicEntry, PublicFilter, VacancyCount,
};
use entities::{organization, vacancy_report};

const DEFAULT_PAGE: i32 = 20;
const MAX_PAGE: i32 = 100;
const LIST_MAX: usize = 30;
const SHORT_MAX: usize = 100;
const NOTE_MAX: usize = 500;

/// A time of the week not to call.
#[derive(SimpleObject, Clone)]
pub struct AvoidCallingTime {
    pub days: Vec<Weekday>,
    /// `HH:MM`, Japan time.
    pub from: String,
    pub to: String,
    pub note: Option<String>,
}

impl From<&AvoidCalling> for AvoidCallingTime {
    fn from(a: &AvoidCalling) -> Self {
        AvoidCallingTime {
            days: a.days.clone(),
            from: a.from.clone(),
            to: a.to.clone(),
            note: a.note.clone(),
        }
    }
}

/// What an organisation does beyond its kind and capabilities (機能), and how
/// to reach it.
pub struct OrganizationProfile(pub directory::Profile);

#[Object]
impl OrganizationProfile {
    /// Shown in the public directory.
    async fn public(&self) -> bool {
        self.0.change.public
    }
    /// Municipalities or areas visited (往診・訪問の範囲).
    async fn visiting_areas(&self) -> &[String] {
        &self.0.change.visiting_areas
    }
    /// Or a radius from the address, in km.
    async fn visiting_radius_km(&self) -> Option<f64> {
        self.0.change.visiting_radius_km
    }
    /// Languages besides Japanese.
    async fn languages(&self) -> &[String] {
        &self.0.change.languages
    }
    /// 看取り: deaths at home attended in the last fiscal year.
    async fn home_deaths_last_year(&self) -> Option<i32> {
        self.0.change.home_deaths_last_year
    }
    /// Whom to ask for (not shown in the public directory).
    async fn contact_person(&self) -> Option<&str> {
        self.0.change.contact_person.as_deref()
    }
    async fn contact_hours(&self) -> Option<&str> {
        self.0.change.contact_hours.as_deref()
    }
    /// Times not to call (診療中・訪問中 …).
    async fn avoid_calling(&self) -> Vec<AvoidCallingTime> {
        self.0.change.avoid_calling.iter().map(Into::into).collect()
    }
    async fn public_note(&self) -> Option<&str> {
        self.0.change.public_note.as_deref()
    }
    /// When the entry was last confirmed (確認日).
    async fn confirmed_at(&self) -> DateTime<Utc> {
        self.0.confirmed_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Free beds or places of one type, as last reported (空床・空き状況).
#[derive(SimpleObject)]
pub struct Vacancy {
    pub bed_type: BedType,
    pub available: i32,
    pub capacity: Option<i32>,
    pub note: Option<String>,
    pub reported_at: DateTime<Utc>,
    /// Older than 72 hours: call before relying on it.
    pub stale: bool,
}

impl Vacancy {
    pub fn of(m: &vacancy_report::Model, now: DateTime<Utc>) -> Result<Self, ApiError> {
        Ok(Vacancy {
            bed_type: BedType::from_db(&m.bed_type)?,
            available: m.available,
            capacity: m.capacity,
            note: m.note.clone(),
            reported_at: m.reported_at,
            stale: directory::is_stale(m.reported_at, now),
        })
    }
}

pub fn vacancies_of(
    reports: &[vacancy_report::Model],
    now: DateTime<Utc>,
) -> Result<Vec<Vacancy>, ApiError> {
    reports.iter().map(|r| Vacancy::of(r, now)).collect()
}

/// A facility on the vacancy board: the organisation and its latest
/// reports.
#[derive(SimpleObject)]
pub struct VacancyBoardEntry {
    pub organization: Organization,
    pub vacancies: Vec<Vacancy>,
}

/// An entry of the public directory: only what the organisation marked
/// public — no members, no contact person, no patients.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PublicOrganization {
    pub id: async_graphql::ID,
    pub kind: OrganizationKind,
    pub name: String,
    pub name_kana: Option<String>,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub municipality: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub location: Option<GeoPointOut>,
    pub capabilities: Vec<Capability>,
    pub visiting_areas: Vec<String>,
    pub visiting_radius_km: Option<f64>,
    pub languages: Vec<String>,
    pub home_deaths_last_year: Option<i32>,
    pub contact_hours: Option<String>,
    pub avoid_calling: Vec<AvoidCallingTime>,
    pub note: Option<String>,
    /// When the entry was last confirmed.
    pub confirmed_at: DateTime<Utc>,
    /// From the point searched from, in km (searches by distance only).
    pub distance_km: Option<f64>,
    #[graphql(skip)]
    pub organization_id: Uuid,
}

#[ComplexObject]
impl PublicOrganization {
    /// Its latest vacancy reports.
    async fn vacancies(&self, ctx: &Context<'_>) -> Result<Vec<Vacancy>> {
        let now = ctx_policy(ctx).clock.now();
        let latest =
            directory::latest_vacancies(ctx_db(ctx), Some(&[self.organization_id]), &[]).await?;
        Ok(vacancies_of(
            latest
                .get(&self.organization_id)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            now,
        )?)
    }
}

impl From<PublicEntry> for PublicOrganization {
    fn from(e: PublicEntry) -> Self {
        let o = e.organization;
        let p = e.profile.change;
        PublicOrganization {
            id: async_graphql::ID(o.id.to_string()),
            organization_id: o.id,
            kind: OrganizationKind::parse(&o.kind).unwrap_or(OrganizationKind::Clinic),
            name: o.name,
            name_kana: o.name_kana,
            postal_code: o.postal_code,
            address: o.address,
            municipality: o.municipality,
            phone: o.phone,
            fax: o.fax,
            location: match (o.latitude, o.longitude) {
                (Some(latitude), Some(longitude)) => Some(GeoPointOut {
                    latitude,
                    longitude,
                }),
                _ => None,
            },
            capabilities: e.capabilities,
            visiting_areas: p.visiting_areas,
            visiting_radius_km: p.visiting_radius_km,
            languages: p.languages,
            home_deaths_last_year: p.home_deaths_last_year,
            contact_hours: p.contact_hours,
            avoid_calling: p.avoid_calling.iter().map(Into::into).collect(),
            note: p.public_note,
            confirmed_at: e.profile.confirmed_at,
            distance_km: e.distance_km.map(|d| (d * 10.0).round() / 10.0),
        }
    }
}

/// A directory entry not confirmed for a long time.
#[derive(SimpleObject)]
pub struct StaleDirectoryEntry {
    pub organization: Organization,
    /// `null`: never confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct AvoidCallingInput {
    pub days: Vec<Weekday>,
    /// `HH:MM`.
    pub from: String,
    /// `HH:MM`, after `from`.
    pub to: String,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct SetOrganizationProfileInput {
    pub organization_id: async_graphql::ID,
    /// Show the entry in the public directory (default: no).
    #[graphql(default)]
    pub public: bool,
    #[graphql(default)]
    pub visiting_areas: Vec<String>,
    pub visiting_radius_km: Option<f64>,
    #[graphql(default)]
    pub languages: Vec<String>,
    pub home_deaths_last_year: Option<i32>,
    pub contact_person: Option<String>,
    pub contact_hours: Option<String>,
    #[graphql(default)]
    pub avoid_calling: Vec<AvoidCallingInput>,
    pub public_note: Option<String>,
}

#[derive(InputObject)]
pub struct VacancyCountInput {
    pub bed_type: BedType,
    /// Free now, 0 or more.
    pub available: i32,
    /// Beds or places of the type in all, at least `available`.
    pub capacity: Option<i32>,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct ReportVacanciesInput {
    pub organization_id: async_graphql::ID,
    /// One count per bed type (1 to 20).
    pub vacancies: Vec<VacancyCountInput>,
}

#[derive(InputObject)]
pub struct NearInput {
    pub latitude: f64,
    pub longitude: f64,
    /// Up to 200 km.
    pub radius_km: f64,
}

#[derive(InputObject, Default)]
pub struct PublicDirectoryFilterInput {
    #[graphql(default)]
    pub kinds: Vec<OrganizationKind>,
    /// Every one of these.
    #[graphql(default)]
    pub capabilities: Vec<Capability>,
    pub municipality: Option<String>,
    /// Nearest first, within the radius.
    pub near: Option<NearInput>,
    /// Part of the name or its reading.
    pub name: Option<String>,
}

fn opt_text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Ok(Some(Text::parse(field, s, max)?.into_inner())),
    }
}

fn texts(field: &str, list: &[String], max: usize) -> Result<Vec<String>, ApiError> {
    if list.len() > LIST_MAX {
        return Err(ApiError::bad_input(
            field,
            format!("at most {LIST_MAX} entries"),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| Ok(Text::parse(&format!("{field}[{i}]"), s, max)?.into_inner()))
        .collect()
}

fn time_of_day(field: &str, s: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| ApiError::bad_input(field, format!("{s:?} is not a time HH:MM")))
}

fn parse_profile(
    input: &SetOrganizationProfileInput,
) -> Result<directory::ProfileChange, ApiError> {
    let radius = match input.visiting_radius_km {
        Some(r) if !(r > 0.0 && r <= 200.0) => {
            return Err(ApiError::bad_input(
                "input.visitingRadiusKm",
                "must be more than 0 and at most 200",
            ));
        }
        r => r,
    };
    if let Some(n) = input.home_deaths_last_year
        && !(0..=10_000).contains(&n)
    {
        return Err(ApiError::bad_input(
            "input.homeDeathsLastYear",
            "must be between 0 and 10000",
        ));
    }
    if input.avoid_calling.len() > LIST_MAX {
        return Err(ApiError::bad_input(
            "input.avoidCalling",
            format!("at most {LIST_MAX} entries"),
        ));
    }
    let avoid_calling = input
        .avoid_calling
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let f = |name: &str| format!("input.avoidCalling[{i}].{name}");
            if a.days.is_empty() {
                return Err(ApiError::bad_input(f("days"), "name at least one day"));
            }
            let from = time_of_day(&f("from"), &a.from)?;
            let to = time_of_day(&f("to"), &a.to)?;
            if to <= from {
                return Err(ApiError::bad_input(f("to"), "must be after `from`"));
            }
            let mut days = a.days.clone();
            days.sort();
            days.dedup();
            Ok(AvoidCalling {
                days,
                from: from.format("%H:%M").to_string(),
                to: to.format("%H:%M").to_string(),
                note: opt_text(&f("note"), a.note.as_deref(), SHORT_MAX)?,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(directory::ProfileChange {
        public: input.public,
        visiting_areas: texts("input.visitingAreas", &input.visiting_areas, SHORT_MAX)?,
        visiting_radius_km: radius,
        languages: texts("input.languages", &input.languages, SHORT_MAX)?,
        home_deaths_last_year: input.home_deaths_last_year,
        contact_person: opt_text(
            "input.contactPerson",
            input.contact_person.as_deref(),
            SHORT_MAX,
        )?,
        contact_hours: opt_text(
            "input.contactHours",
            input.contact_hours.as_deref(),
            SHORT_MAX,
        )?,
        avoid_calling,
        public_note: opt_text("input.publicNote", input.public_note.as_deref(), NOTE_MAX)?,
    })
}

fn parse_counts(input: &ReportVacanciesInput) -> Result<Vec<VacancyCount>, ApiError> {
    if input.vacancies.is_empty() || input.vacancies.len() > 20 {
        return Err(ApiError::bad_input(
            "input.vacancies",
            "report 1 to 20 bed types",
        ));
    }
    let mut seen = Vec::new();
    input
        .vacancies
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let f = |name: &str| format!("input.vacancies[{i}].{name}");
            if seen.contains(&v.bed_type) {
                return Err(ApiError::bad_input(
                    f("bedType"),
                    format!("{} is reported twice", v.bed_type),
                ));
            }
            seen.push(v.bed_type);
            if !(0..=10_000).contains(&v.available) {
                return Err(ApiError::bad_input(
                    f("available"),
                    "must be between 0 and 10000",
                ));
            }
            if let Some(c) = v.capacity
                && !(v.available..=10_000).contains(&c)
            {
                return Err(ApiError::bad_input(
                    f("capacity"),
                    "must be at least `available` and at most 10000",
                ));
            }
            Ok(VacancyCount {
                bed_type: v.bed_type,
                available: v.available,
                capacity: v.capacity,
                note: opt_text(&f("note"), v.note.as_deref(), SHORT_MAX)?,
            })
        })
        .collect()
}

fn public_filter(input: PublicDirectoryFilterInput) -> Result<PublicFilter, ApiError> {
    let near = match input.near {
        None => None,
        Some(n) => {
            let point = GeoPoint::parse("filter.near", n.latitude, n.longitude)?;
            if !(n.radius_km > 0.0 && n.radius_km <= 200.0) {
                return Err(ApiError::bad_input(
                    "filter.near.radiusKm",
                    "must be more than 0 and at most 200",
                ));
            }
            Some((point, n.radius_km))
        }
    };
    Ok(PublicFilter {
        kinds: input.kinds,
        capabilities: input.capabilities,
        municipality: opt_text(
            "filter.municipality",
            input.municipality.as_deref(),
            SHORT_MAX,
        )?,
        near,
        name: opt_text("filter.name", input.name.as_deref(), SHORT_MAX)?,
    })
}

fn encode_cursor(c: PublicCursor) -> String {
    let d = c
        .distance_km
        .map(|d| d.to_bits().to_string())
        .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("pub:{d}:{}", c.id))
}

fn decode_cursor(s: &str) -> Result<PublicCursor, ApiError> {
    let bad = || ApiError::bad_input("after", "is not a cursor returned by this hub");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("pub"), Some(d), Some(id)) => Ok(PublicCursor {
            distance_km: if d.is_empty() {
                None
            } else {
                Some(f64::from_bits(d.parse::<u64>().map_err(|_| bad())?))
            },
            id: Uuid::try_parse(id).map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// The public directory: answered without a token.
pub async fn public_directory(
    ctx: &Context<'_>,
    filter: Option<PublicDirectoryFilterInput>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, PublicOrganization, EmptyFields, EmptyFields>> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(ApiError::bad_input(
            "first",
            format!("must be between 1 and {MAX_PAGE}, got {first}"),
        )
        .into());
    }
    let after = after.as_deref().map(decode_cursor).transpose()?;
    let filter = public_filter(filter.unwrap_or_default())?;
    let (entries, has_next) =
        directory::public_directory(ctx_db(ctx), &filter, after, first as usize).await?;
    let mut connection = Connection::new(after.is_some(), has_next);
    connection.edges.extend(entries.into_iter().map(|e| {
        let cursor = encode_cursor(PublicCursor {
            distance_km: e.distance_km,
            id: e.organization.id,
        });
        Edge::new(cursor, PublicOrganization::from(e))
    }));
    Ok(connection)
}

/// The vacancy board for members of the network.
pub async fn vacancy_board(
    ctx: &Context<'_>,
    municipality: Option<String>,
    bed_types: Vec<BedType>,
) -> Result<Vec<VacancyBoardEntry>> {
    ctx_request(ctx)?;
    let municipality = opt_text("municipality", municipality.as_deref(), SHORT_MAX)?;
    let now = ctx_policy(ctx).clock.now();
    let board =
        directory::vacancy_board(ctx_db(ctx), municipality.as_deref(), &bed_types, false).await?;
    board
        .into_iter()
        .map(|(o, reports)| {
            Ok(VacancyBoardEntry {
                organization: Organization(o),
                vacancies: vacancies_of(&reports, now)?,
            })
        })
        .collect()
}

/// Entries not confirmed for `months` months.
pub async fn stale_entries(ctx: &Context<'_>, months: i32) -> Result<Vec<StaleDirectoryEntry>> {
    let req = ctx_request(ctx)?;
    policy::may_review_directory(&req.principal)?;
    if !(1..=120).contains(&months) {
        return Err(
            ApiError::bad_input("notConfirmedForMonths", "must be between 1 and 120").into(),
        );
    }
    let cutoff = ctx_policy(ctx).clock.now() - Duration::days(30 * i64::from(months));
    Ok(directory::stale_entries(ctx_db(ctx), cutoff)
        .await?
        .into_iter()
        .map(|(o, confirmed_at)| StaleDirectoryEntry {
            organization: Organization(o),
            confirmed_at,
        })
        .collect())
}

#[derive(Default)]
pub struct DirectoryMutation;

#[Object]
impl DirectoryMutation {
    /// Sets an organisation's functions and contacts, and whether its entry
    /// is public; confirms the entry as of now. The organisation's own
    /// members and systems, and network administrators.
    async fn set_organization_profile(
        &self,
        ctx: &Context<'_>,
        input: SetOrganizationProfileInput,
    ) -> Result<OrganizationProfile> {
        let req = ctx_request(ctx)?;
        let org = parse_id("input.organizationId", &input.organization_id)?;
        policy::may_edit_directory_entry(&req.principal, org)?;
        let change = parse_profile(&input)?;
        let now = ctx_policy(ctx).clock.now();
        let profile = directory::set_profile(ctx_db(ctx), org, change, now).await?;
        Ok(OrganizationProfile(profile))
    }

    /// Confirms an organisation's entry as it stands (確認日 = now).
    async fn confirm_directory_entry(
        &self,
        ctx: &Context<'_>,
        organization_id: async_graphql::ID,
    ) -> Result<OrganizationProfile> {
        let req = ctx_request(ctx)?;
        let org = parse_id("organizationId", &organization_id)?;
        policy::may_edit_directory_entry(&req.principal, org)?;
        crate::services::organizations::require_exists(ctx_db(ctx), "organizationId", org).await?;
        let now = ctx_policy(ctx).clock.now();
        let profile = directory::confirm(ctx_db(ctx), org, now).await?;
        Ok(OrganizationProfile(profile))
    }

    /// Reports free beds or places by type, as of now (空床・空き状況). The
    /// facility's own members and systems, and network administrators.
    async fn report_vacancies(
        &self,
        ctx: &Context<'_>,
        input: ReportVacanciesInput,
    ) -> Result<Vec<Vacancy>> {
        let req = ctx_request(ctx)?;
        let org = parse_id("input.organizationId", &input.organization_id)?;
        policy::may_edit_directory_entry(&req.principal, org)?;
        let counts = parse_counts(&input)?;
        let now = ctx_policy(ctx).clock.now();
        let reporter = match &req.principal {
            crate::principal::Principal::Member { member_id, .. } => Some(*member_id),
            crate::principal::Principal::System { .. } => None,
        };
        let rows = directory::report_vacancies(ctx_db(ctx), org, reporter, counts, now).await?;
        Ok(vacancies_of(&rows, now)?)
    }
}

/// The organisation's profile and vacancies, for `Organization`.
pub async fn profile_of(
    ctx: &Context<'_>,
    org: &organization::Model,
) -> Result<Option<OrganizationProfile>> {
    Ok(directory::profiles_of(ctx_db(ctx), &[org.id])
        .await?
        .remove(&org.id)
        .map(OrganizationProfile))
}

pub async fn vacancies_of_org(
    ctx: &Context<'_>,
    org: &organization::Model,
) -> Result<Vec<Vacancy>> {
    let now = ctx_policy(ctx).clock.now();
    let latest = directory::latest_vacancies(ctx_db(ctx), Some(&[org.id]), &[]).await?;
    Ok(vacancies_of(
        latest.get(&org.id).map(Vec::as_slice).unwrap_or_default(),
        now,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for c in [
            PublicCursor {
                distance_km: Some(3.25),
                id: Uuid::now_v7(),
            },
            PublicCursor {
                distance_km: None,
                id: Uuid::now_v7(),
            },
        ] {
            assert_eq!(decode_cursor(&encode_cursor(c)).unwrap(), c);
        }
        assert!(decode_cursor("bm90IGEgY3Vyc29y").is_err());
    }
}

/// An informal community resource (サロン, 見守り, 買い物・移動支援 …).
pub struct CommunityResource(pub entities::community_resource::Model);

#[Object]
impl CommunityResource {
    async fn id(&self) -> async_graphql::ID {
        async_graphql::ID(self.0.id.to_string())
    }
    async fn resource_type(&self) -> Result<crate::domain::CommunityResourceType> {
        Ok(crate::domain::CommunityResourceType::from_db(
            &self.0.resource_type,
        )?)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn municipality(&self) -> &str {
        &self.0.municipality
    }
    /// The area or place (町内会, 公民館 …).
    async fn area(&self) -> Option<&str> {
        self.0.area.as_deref()
    }
    async fn schedule(&self) -> Option<&str> {
        self.0.schedule.as_deref()
    }
    async fn contact(&self) -> Option<&str> {
        self.0.contact.as_deref()
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Shown in the public directory.
    async fn public(&self) -> bool {
        self.0.public
    }
    /// The organisation that registered it and keeps it (`null` in the
    /// public listing).
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<Organization>> {
        if ctx_request(ctx).is_err() {
            return Ok(None);
        }
        Ok(
            crate::services::organizations::by_ids(ctx_db(ctx), &[self.0.owner_organization_id])
                .await?
                .remove(&self.0.owner_organization_id)
                .map(Organization),
        )
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(InputObject)]
pub struct CommunityResourceInput {
    pub resource_type: crate::domain::CommunityResourceType,
    pub name: String,
    pub municipality: String,
    pub area: Option<String>,
    pub schedule: Option<String>,
    pub contact: Option<String>,
    pub description: Option<String>,
    /// Show in the public directory (default: no).
    #[graphql(default)]
    pub public: bool,
}

fn parse_resource(
    i: &CommunityResourceInput,
) -> Result<directory::CommunityResourceChange, ApiError> {
    Ok(directory::CommunityResourceChange {
        resource_type: i.resource_type,
        name: Text::parse("input.name", &i.name, SHORT_MAX)?.into_inner(),
        municipality: Text::parse("input.municipality", &i.municipality, SHORT_MAX)?.into_inner(),
        area: opt_text("input.area", i.area.as_deref(), SHORT_MAX)?,
        schedule: opt_text("input.schedule", i.schedule.as_deref(), SHORT_MAX)?,
        contact: opt_text("input.contact", i.contact.as_deref(), SHORT_MAX)?,
        description: opt_text("input.description", i.description.as_deref(), NOTE_MAX)?,
        public: i.public,
    })
}

/// A resource the caller may change: it exists (`NOT_FOUND`) and the caller
/// keeps it — its organisation or a network administrator (`FORBIDDEN`).
async fn owned_resource(
    ctx: &Context<'_>,
    id: &async_graphql::ID,
) -> Result<entities::community_resource::Model> {
    let req = ctx_request(ctx)?;
    let id = parse_id("id", id)?;
    let Some(r) = directory::resource(ctx_db(ctx), id).await? else {
        return Err(ApiError::not_found("community resource").into());
    };
    policy::may_edit_directory_entry(&req.principal, r.owner_organization_id)?;
    Ok(r)
}

#[derive(Default)]
pub struct CommunityResourceMutation;

#[Object]
impl CommunityResourceMutation {
    /// Registers an informal community resource, owned by your organisation
    /// (and you).
    async fn register_community_resource(
        &self,
        ctx: &Context<'_>,
        input: CommunityResourceInput,
    ) -> Result<CommunityResource> {
        let req = ctx_request(ctx)?;
        let change = parse_resource(&input)?;
        let member = match &req.principal {
            crate::principal::Principal::Member { member_id, .. } => Some(*member_id),
            crate::principal::Principal::System { .. } => None,
        };
        let now = ctx_policy(ctx).clock.now();
        Ok(CommunityResource(
            directory::register_resource(
                ctx_db(ctx),
                req.principal.organization_id(),
                member,
                change,
                now,
            )
            .await?,
        ))
    }

    /// Changes a resource: its organisation's members and systems, and
    /// network administrators.
    async fn update_community_resource(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
        input: CommunityResourceInput,
    ) -> Result<CommunityResource> {
        let current = owned_resource(ctx, &id).await?;
        let change = parse_resource(&input)?;
        let now = ctx_policy(ctx).clock.now();
        Ok(CommunityResource(
            directory::update_resource(ctx_db(ctx), current, change, now).await?,
        ))
    }

    /// Removes a resource from the lists (as for changing it).
    async fn remove_community_resource(
        &self,
        ctx: &Context<'_>,
        id: async_graphql::ID,
    ) -> Result<bool> {
        let current = owned_resource(ctx, &id).await?;
        let now = ctx_policy(ctx).clock.now();
        directory::remove_resource(ctx_db(ctx), current, now).await?;
        Ok(true)
    }
}

/// Resources of a municipality and types; `public_only` for callers without
/// a token.
pub async fn community_resources(
    ctx: &Context<'_>,
    municipality: Option<String>,
    types: Option<Vec<crate::domain::CommunityResourceType>>,
    public_only: bool,
) -> Result<Vec<CommunityResource>> {
    if !public_only {
        ctx_request(ctx)?;
    }
    let municipality = opt_text("municipality", municipality.as_deref(), SHORT_MAX)?;
    Ok(directory::resources(
        ctx_db(ctx),
        municipality.as_deref(),
        &types.unwrap_or_default(),
        public_only,
    )
    .await?
    .into_iter()
    .map(CommunityResource)
    .collect())
}
