//! The resource directory for people (issue 15, `docs/directory.md`): what
//! each organisation does (its profile), whether its entry is public, when
//! it was last confirmed, the vacancies facilities report, and the public
//! search that needs no token.
//!
//! Nothing here touches patient data: the public directory is built from
//! the organisations' own entries and only from those marked public.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{BedType, Capability, GeoPoint, OrganizationKind, Weekday};
use crate::error::{ApiError, ApiResult};
use entities::{organization, organization_profile, vacancy_report};

/// A vacancy report older than this is shown as stale (古い情報): beds fill
/// and free within days, so a week-old count misleads more than it helps.
pub const VACANCY_STALE_AFTER: Duration = Duration::hours(72);

/// A time of the week not to call (「12:00–13:00は避けてください」).
#[derive(Clone, Debug, PartialEq)]
pub struct AvoidCalling {
    pub days: Vec<Weekday>,
    /// `HH:MM`, local time.
    pub from: String,
    pub to: String,
    pub note: Option<String>,
}

/// What an organisation says of itself, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileChange {
    pub public: bool,
    pub visiting_areas: Vec<String>,
    pub visiting_radius_km: Option<f64>,
    pub languages: Vec<String>,
    pub home_deaths_last_year: Option<i32>,
    pub contact_person: Option<String>,
    pub contact_hours: Option<String>,
    pub avoid_calling: Vec<AvoidCalling>,
    pub public_note: Option<String>,
}

/// A profile as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub organization_id: Uuid,
    pub change: ProfileChange,
    pub confirmed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// [`AvoidCalling`] as stored: days by their names.
#[derive(Serialize, Deserialize)]
struct StoredAvoidCalling {
    days: Vec<String>,
    from: String,
    to: String,
    note: Option<String>,
}

fn store_avoid(list: &[AvoidCalling]) -> String {
    to_json(
        &list
            .iter()
            .map(|a| StoredAvoidCalling {
                days: a.days.iter().map(|d| d.as_str().to_string()).collect(),
                from: a.from.clone(),
                to: a.to.clone(),
                note: a.note.clone(),
            })
            .collect::<Vec<_>>(),
    )
}

fn read_avoid(text: &str) -> ApiResult<Vec<AvoidCalling>> {
    json_list::<StoredAvoidCalling>(text)?
        .into_iter()
        .map(|a| {
            Ok(AvoidCalling {
                days: a
                    .days
                    .iter()
                    .map(|d| Weekday::from_db(d))
                    .collect::<ApiResult<_>>()?,
                from: a.from,
                to: a.to,
                note: a.note,
            })
        })
        .collect()
}

fn json_list<T: for<'de> Deserialize<'de>>(text: &str) -> ApiResult<Vec<T>> {
    serde_json::from_str(text).map_err(|e| {
        ApiError::internal(format_args!("a stored directory list does not parse: {e}"))
    })
}

impl Profile {
    fn of(m: organization_profile::Model) -> ApiResult<Self> {
        Ok(Profile {
            organization_id: m.organization_id,
            change: ProfileChange {
                public: m.public,
                visiting_areas: json_list(&m.visiting_areas)?,
                visiting_radius_km: m.visiting_radius_km,
                languages: json_list(&m.languages)?,
                home_deaths_last_year: m.home_deaths_last_year,
                contact_person: m.contact_person,
                contact_hours: m.contact_hours,
                avoid_calling: read_avoid(&m.avoid_calling)?,
                public_note: m.public_note,
            },
            confirmed_at: m.confirmed_at,
            updated_at: m.updated_at,
        })
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Sets an organisation's profile (and confirms the entry): one row per
/// organisation, written in place. The caller has passed
/// `policy::may_edit_directory_entry`.
pub async fn set_profile(
    db: &DatabaseConnection,
    organization_id: Uuid,
    change: ProfileChange,
    now: DateTime<Utc>,
) -> ApiResult<Profile> {
    super::organizations::ensure_exists(db, "input.organizationId", organization_id).await?;
    let model = organization_profile::ActiveModel {
        organization_id: Set(organization_id),
        public: Set(change.public),
        visiting_areas: Set(to_json(&change.visiting_areas)),
        visiting_radius_km: Set(change.visiting_radius_km),
        languages: Set(to_json(&change.languages)),
        home_deaths_last_year: Set(change.home_deaths_last_year),
        contact_person: Set(change.contact_person.clone()),
        contact_hours: Set(change.contact_hours.clone()),
        avoid_calling: Set(store_avoid(&change.avoid_calling)),
        public_note: Set(change.public_note.clone()),
        confirmed_at: Set(now),
        updated_at: Set(now),
    };
    let existing = organization_profile::Entity::find_by_id(organization_id)
        .one(db)
        .await?;
    let saved = match existing {
        Some(_) => organization_profile::Entity::update(model).exec(db).await?,
        None => {
            organization_profile::Entity::insert(model)
                .exec_with_returning(db)
                .await?
        }
    };
    Profile::of(saved)
}

/// Confirms an entry as it stands (確認日): the organisation or the centre
/// checked it and nothing changed. An organisation without a profile gets
/// an empty, non-public one.
pub async fn confirm(
    db: &DatabaseConnection,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<Profile> {
    match organization_profile::Entity::find_by_id(organization_id)
        .one(db)
        .await?
    {
        Some(m) => {
            let mut a: organization_profile::ActiveModel = m.into();
            a.confirmed_at = Set(now);
            Profile::of(organization_profile::Entity::update(a).exec(db).await?)
        }
        None => {
            set_profile(
                db,
                organization_id,
                ProfileChange {
                    public: false,
                    visiting_areas: Vec::new(),
                    visiting_radius_km: None,
                    languages: Vec::new(),
                    home_deaths_last_year: None,
                    contact_person: None,
                    contact_hours: None,
                    avoid_calling: Vec::new(),
                    public_note: None,
                },
                now,
            )
            .await
        }
    }
}

/// The profiles of many organisations, for the loader.
pub async fn profiles_of(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Profile>> {
    organization_profile::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (
                organization_profile::Entity,
                organization_profile::Column::OrganizationId,
            ),
            ids,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|m| Profile::of(m).map(|p| (p.organization_id, p)))
        .collect()
}

/// Entries not confirmed since `cutoff` (never-confirmed ones first, then
/// the oldest), for the centre to chase.
pub async fn stale_entries(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
) -> ApiResult<Vec<(organization::Model, Option<DateTime<Utc>>)>> {
    let orgs = organization::Entity::find()
        .order_by_asc(organization::Column::Id)
        .all(db)
        .await?;
    let confirmed: HashMap<Uuid, DateTime<Utc>> = organization_profile::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.organization_id, p.confirmed_at))
        .collect();
    let mut stale: Vec<_> = orgs
        .into_iter()
        .map(|o| {
            let at = confirmed.get(&o.id).copied();
            (o, at)
        })
        .filter(|(_, at)| at.is_none_or(|t| t < cutoff))
        .collect();
    stale.sort_by_key(|(o, at)| (at.is_some(), *at, o.id));
    Ok(stale)
}

/// One type's count in a vacancy report, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct VacancyCount {
    pub bed_type: BedType,
    pub available: i32,
    pub capacity: Option<i32>,
    pub note: Option<String>,
}

/// Records a facility's report: one row per type, all at `now`.
pub async fn report_vacancies(
    db: &DatabaseConnection,
    organization_id: Uuid,
    reporter: Option<Uuid>,
    counts: Vec<VacancyCount>,
    now: DateTime<Utc>,
) -> ApiResult<Vec<vacancy_report::Model>> {
    super::organizations::ensure_exists(db, "input.organizationId", organization_id).await?;
    let rows: Vec<vacancy_report::Model> = counts
        .into_iter()
        .map(|c| vacancy_report::Model {
            id: super::new_id(),
            organization_id,
            bed_type: c.bed_type.as_str().to_string(),
            available: c.available,
            capacity: c.capacity,
            note: c.note,
            reported_at: now,
            reported_by_member_id: reporter,
        })
        .collect();
    let txn = super::begin_write(db).await?;
    vacancy_report::Entity::insert_many(rows.iter().cloned().map(|m| {
        vacancy_report::ActiveModel {
            id: Set(m.id),
            organization_id: Set(m.organization_id),
            bed_type: Set(m.bed_type),
            available: Set(m.available),
            capacity: Set(m.capacity),
            note: Set(m.note),
            reported_at: Set(m.reported_at),
            reported_by_member_id: Set(m.reported_by_member_id),
        }
    }))
    .exec(&txn)
    .await?;
    txn.commit().await?;
    Ok(rows)
}

/// The latest report of each bed type of each organisation given (`None`:
/// of every organisation), in one statement: a report is the latest when no
/// report of its organisation and type is newer (or as new and written
/// after it).
pub async fn latest_vacancies(
    db: &DatabaseConnection,
    organizations: Option<&[Uuid]>,
    bed_types: &[BedType],
) -> ApiResult<HashMap<Uuid, Vec<vacancy_report::Model>>> {
    let newer = Alias::new("newer");
    let mut q = vacancy_report::Entity::find().filter(
        Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from_as(vacancy_report::Entity, newer.clone())
                .and_where(
                    Expr::col((newer.clone(), vacancy_report::Column::OrganizationId)).equals((
                        vacancy_report::Entity,
                        vacancy_report::Column::OrganizationId,
                    )),
                )
                .and_where(
                    Expr::col((newer.clone(), vacancy_report::Column::BedType))
                        .equals((vacancy_report::Entity, vacancy_report::Column::BedType)),
                )
                // Newer, or as new and written later (ids are UUIDv7).
                .cond_where(
                    Condition::any()
                        .add(
                            Expr::col((newer.clone(), vacancy_report::Column::ReportedAt)).gt(
                                Expr::col((
                                    vacancy_report::Entity,
                                    vacancy_report::Column::ReportedAt,
                                )),
                            ),
                        )
                        .add(
                            Condition::all()
                                .add(
                                    Expr::col((newer.clone(), vacancy_report::Column::ReportedAt))
                                        .equals((
                                            vacancy_report::Entity,
                                            vacancy_report::Column::ReportedAt,
                                        )),
                                )
                                .add(Expr::col((newer.clone(), vacancy_report::Column::Id)).gt(
                                    Expr::col((vacancy_report::Entity, vacancy_report::Column::Id)),
                                )),
                        ),
                )
                .to_owned(),
        )
        .not(),
    );
    if let Some(ids) = organizations {
        q = q.filter(super::id_in(
            db.get_database_backend(),
            (
                vacancy_report::Entity,
                vacancy_report::Column::OrganizationId,
            ),
            ids,
        ));
    }
    if !bed_types.is_empty() {
        q = q.filter(vacancy_report::Column::BedType.is_in(bed_types.iter().map(|b| b.as_str())));
    }
    let mut map: HashMap<Uuid, Vec<vacancy_report::Model>> = HashMap::new();
    for r in q
        .order_by_asc(vacancy_report::Column::BedType)
        .all(db)
        .await?
    {
        map.entry(r.organization_id).or_default().push(r);
    }
    Ok(map)
}

/// Whether a report is too old to trust ([`VACANCY_STALE_AFTER`]).
pub fn is_stale(reported_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - reported_at > VACANCY_STALE_AFTER
}

/// The facilities with vacancies of the types asked (every type: empty) in
/// a municipality (every one: `None`), each with its latest reports, by
/// name.
pub async fn vacancy_board(
    db: &DatabaseConnection,
    municipality: Option<&str>,
    bed_types: &[BedType],
    public_only: bool,
) -> ApiResult<Vec<(organization::Model, Vec<vacancy_report::Model>)>> {
    let latest = latest_vacancies(db, None, bed_types).await?;
    let ids: Vec<Uuid> = latest.keys().copied().collect();
    let orgs = super::organizations::by_ids(db, &ids).await?;
    let public: Vec<Uuid> = if public_only {
        public_ids(db).await?
    } else {
        Vec::new()
    };
    let mut board: Vec<_> = latest
        .into_iter()
        .filter_map(|(id, reports)| orgs.get(&id).cloned().map(|o| (o, reports)))
        .filter(|(o, _)| municipality.is_none_or(|m| o.municipality.as_deref() == Some(m)))
        .filter(|(o, _)| !public_only || public.contains(&o.id))
        .collect();
    board.sort_by(|a, b| (&a.0.name, a.0.id).cmp(&(&b.0.name, b.0.id)));
    Ok(board)
}

async fn public_ids(db: &DatabaseConnection) -> ApiResult<Vec<Uuid>> {
    Ok(organization_profile::Entity::find()
        .filter(organization_profile::Column::Public.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.organization_id)
        .collect())
}

/// What the public directory is asked for; every filter given must match.
#[derive(Clone, Debug, Default)]
pub struct PublicFilter {
    pub kinds: Vec<OrganizationKind>,
    /// The organisation must offer every one of these.
    pub capabilities: Vec<Capability>,
    pub municipality: Option<String>,
    /// Within this distance of this point, nearest first.
    pub near: Option<(GeoPoint, f64)>,
    /// A name (or its reading) containing this text.
    pub name: Option<String>,
}

/// An entry of the public directory: the organisation, its profile (always
/// public), its capabilities, its distance from the point searched from.
#[derive(Clone, Debug)]
pub struct PublicEntry {
    pub organization: organization::Model,
    pub profile: Profile,
    pub capabilities: Vec<Capability>,
    pub distance_km: Option<f64>,
}

/// Where a page of the public directory starts: after this entry in the
/// search's order (distance, then id; or id alone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PublicCursor {
    pub distance_km: Option<f64>,
    pub id: Uuid,
}

/// One page of the public directory: only organisations whose entry is
/// public, filtered in the database by kind, municipality and capability,
/// then by distance (computed here: a region has a few thousand entries).
pub async fn public_directory(
    db: &DatabaseConnection,
    filter: &PublicFilter,
    after: Option<PublicCursor>,
    first: usize,
) -> ApiResult<(Vec<PublicEntry>, bool)> {
    let public = organization_profile::Entity::find()
        .filter(organization_profile::Column::Public.eq(true))
        .all(db)
        .await?;
    let ids: Vec<Uuid> = public.iter().map(|p| p.organization_id).collect();
    if ids.is_empty() {
        return Ok((Vec::new(), false));
    }
    let mut q = organization::Entity::find().filter(super::id_in(
        db.get_database_backend(),
        (organization::Entity, organization::Column::Id),
        &ids,
    ));
    if !filter.kinds.is_empty() {
        q = q.filter(organization::Column::Kind.is_in(filter.kinds.iter().map(|k| k.as_str())));
    }
    if let Some(m) = &filter.municipality {
        q = q.filter(organization::Column::Municipality.eq(m.as_str()));
    }
    if let Some(name) = &filter.name {
        q = q.filter(
            Condition::any()
                .add(organization::Column::Name.contains(name.as_str()))
                .add(organization::Column::NameKana.contains(name.as_str())),
        );
    }
    let orgs = q.all(db).await?;
    let org_ids: Vec<Uuid> = orgs.iter().map(|o| o.id).collect();
    let capabilities = super::organizations::capabilities_of(db, &org_ids).await?;
    let mut profiles: HashMap<Uuid, Profile> = public
        .into_iter()
        .map(|m| Profile::of(m).map(|p| (p.organization_id, p)))
        .collect::<ApiResult<_>>()?;
    let mut entries: Vec<PublicEntry> = orgs
        .into_iter()
        .filter_map(|o| {
            let caps = capabilities.get(&o.id).cloned().unwrap_or_default();
            if !filter.capabilities.iter().all(|c| caps.contains(c)) {
                return None;
            }
            let distance_km = match (filter.near, o.latitude, o.longitude) {
                (Some((from, radius)), Some(lat), Some(lon)) => {
                    let d = distance_km(
                        from,
                        GeoPoint {
                            latitude: lat,
                            longitude: lon,
                        },
                    );
                    if d > radius {
                        return None;
                    }
                    Some(d)
                }
                // Searching by distance: an entry without a location cannot
                // be placed.
                (Some(_), _, _) => return None,
                (None, _, _) => None,
            };
            let profile = profiles.remove(&o.id)?;
            Some(PublicEntry {
                organization: o,
                profile,
                capabilities: caps,
                distance_km,
            })
        })
        .collect();
    let key = |e: &PublicEntry| PublicCursor {
        distance_km: e.distance_km,
        id: e.organization.id,
    };
    let before = |a: &PublicCursor, b: &PublicCursor| match (a.distance_km, b.distance_km) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a.id < b.id,
    };
    entries.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        if before(&ka, &kb) {
            std::cmp::Ordering::Less
        } else if before(&kb, &ka) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    if let Some(after) = after {
        entries.retain(|e| before(&after, &key(e)));
    }
    let has_next = entries.len() > first;
    entries.truncate(first);
    Ok((entries, has_next))
}

/// Great-circle distance in km (haversine, mean Earth radius).
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let r = 6371.0088_f64;
    let (la1, la2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let dla = la2 - la1;
    let dlo = (b.longitude - a.longitude).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circle_kilometres() {
        // 北見駅 → 網走駅, about 41 km as the crow flies.
        let kitami = GeoPoint {
            latitude: 43.8075,
            longitude: 143.8946,
        };
        let abashiri = GeoPoint {
            latitude: 44.0206,
            longitude: 144.2733,
        };
        let d = distance_km(kitami, abashiri);
        assert!((38.0..44.0).contains(&d), "{d}");
        assert_eq!(distance_km(kitami, kitami), 0.0);
    }

    #[test]
    fn a_report_goes_stale_after_three_days() {
        let now = Utc::now();
        assert!(!is_stale(now - Duration::hours(71), now));
        assert!(is_stale(now - Duration::hours(73), now));
    }
}

/// An informal community resource, validated.
#[derive(Clone, Debug)]
pub struct CommunityResourceChange {
    pub resource_type: crate::domain::CommunityResourceType,
    pub name: String,
    pub municipality: String,
    pub area: Option<String>,
    pub schedule: Option<String>,
    pub contact: Option<String>,
    pub description: Option<String>,
    pub public: bool,
}

/// Registers a resource owned by `owner` (and the member who registered it).
pub async fn register_resource(
    db: &DatabaseConnection,
    owner: Uuid,
    member: Option<Uuid>,
    change: CommunityResourceChange,
    now: DateTime<Utc>,
) -> ApiResult<entities::community_resource::Model> {
    use entities::community_resource as cr;
    let model = cr::ActiveModel {
        id: Set(super::new_id()),
        owner_organization_id: Set(owner),
        owner_member_id: Set(member),
        name: Set(change.name),
        resource_type: Set(change.resource_type.as_str().to_string()),
        municipality: Set(change.municipality),
        area: Set(change.area),
        schedule: Set(change.schedule),
        contact: Set(change.contact),
        description: Set(change.description),
        public: Set(change.public),
        created_at: Set(now),
        updated_at: Set(now),
        removed_at: Set(None),
    };
    Ok(cr::Entity::insert(model).exec_with_returning(db).await?)
}

/// A resource that has not been removed.
pub async fn resource(
    db: &DatabaseConnection,
    id: Uuid,
) -> ApiResult<Option<entities::community_resource::Model>> {
    use entities::community_resource as cr;
    Ok(cr::Entity::find_by_id(id)
        .filter(cr::Column::RemovedAt.is_null())
        .one(db)
        .await?)
}

/// Changes a resource (its owner stays). The caller checked the owner.
pub async fn update_resource(
    db: &DatabaseConnection,
    current: entities::community_resource::Model,
    change: CommunityResourceChange,
    now: DateTime<Utc>,
) -> ApiResult<entities::community_resource::Model> {
    use entities::community_resource as cr;
    let mut a: cr::ActiveModel = current.into();
    a.name = Set(change.name);
    a.resource_type = Set(change.resource_type.as_str().to_string());
    a.municipality = Set(change.municipality);
    a.area = Set(change.area);
    a.schedule = Set(change.schedule);
    a.contact = Set(change.contact);
    a.description = Set(change.description);
    a.public = Set(change.public);
    a.updated_at = Set(now);
    Ok(cr::Entity::update(a).exec(db).await?)
}

/// Removes a resource from the lists (kept, marked removed).
pub async fn remove_resource(
    db: &DatabaseConnection,
    current: entities::community_resource::Model,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    use entities::community_resource as cr;
    let mut a: cr::ActiveModel = current.into();
    a.removed_at = Set(Some(now));
    a.updated_at = Set(now);
    cr::Entity::update(a).exec(db).await?;
    Ok(())
}

/// The resources of a municipality (every one: `None`) of the types asked
/// (every type: empty), public ones only when asked, by name — at most 500.
pub async fn resources(
    db: &DatabaseConnection,
    municipality: Option<&str>,
    types: &[crate::domain::CommunityResourceType],
    public_only: bool,
) -> ApiResult<Vec<entities::community_resource::Model>> {
    use entities::community_resource as cr;
    let mut q = cr::Entity::find()
        .filter(cr::Column::RemovedAt.is_null())
        .order_by_asc(cr::Column::Name)
        .order_by_asc(cr::Column::Id);
    if let Some(m) = municipality {
        q = q.filter(cr::Column::Municipality.eq(m));
    }
    if !types.is_empty() {
        q = q.filter(cr::Column::ResourceType.is_in(types.iter().map(|t| t.as_str())));
    }
    if public_only {
        q = q.filter(cr::Column::Public.eq(true));
    }
    Ok(sea_orm::QuerySelect::limit(q, 500).all(db).await?)
}
