//! The demo region's directory entries — functions, contacts, public flags,
//! vacancy reports and informal community resources — read from data
//! (`schema/demo/directory_entries.toml`, embedded at build time), not
//! written as code: a new entry is a new table in the file.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use serde::Deserialize;
use uuid::Builder;

use super::{SplitMix64, demo_organization_id, insert_new};
use crate::domain::{BedType, CommunityResourceType, Weekday};
use entities::{community_resource, organization_profile, vacancy_report};

const DATA: &str = include_str!("../../demo/directory_entries.toml");
const DIRECTORY_SEED: u64 = 0x5EED_2026_0401_0007;
const RESOURCE_SEED: u64 = 0x5EED_2026_0401_0008;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Directory {
    profiles: Vec<ProfileData>,
    vacancies: Vec<VacancyData>,
    #[serde(default)]
    community_resources: Vec<ResourceData>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceData {
    owner: usize,
    resource_type: String,
    name: String,
    municipality: String,
    area: Option<String>,
    schedule: Option<String>,
    contact: Option<String>,
    description: Option<String>,
    public: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileData {
    organization: usize,
    public: bool,
    #[serde(default)]
    visiting_areas: Vec<String>,
    visiting_radius_km: Option<f64>,
    #[serde(default)]
    languages: Vec<String>,
    home_deaths_last_year: Option<i32>,
    contact_person: Option<String>,
    contact_hours: Option<String>,
    #[serde(default)]
    avoid_calling: Vec<AvoidData>,
    public_note: Option<String>,
    confirmed_at: DateTime<Utc>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct AvoidData {
    days: Vec<String>,
    from: String,
    to: String,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VacancyData {
    organization: usize,
    bed_type: String,
    available: i32,
    capacity: Option<i32>,
    note: Option<String>,
    reported_at: DateTime<Utc>,
}

/// The rows the data describes, or what is wrong with it (named by its
/// place in the file).
type Rows = (
    Vec<organization_profile::Model>,
    Vec<vacancy_report::Model>,
    Vec<community_resource::Model>,
);

fn rows(text: &str) -> Result<Rows, String> {
    let data: Directory =
        toml::from_str(text).map_err(|e| format!("demo/directory_entries.toml: {e}"))?;
    let mut profiles = Vec::new();
    for (i, p) in data.profiles.into_iter().enumerate() {
        for (j, a) in p.avoid_calling.iter().enumerate() {
            for d in &a.days {
                Weekday::parse(d).ok_or_else(|| {
                    format!("demo/directory_entries.toml: profiles[{i}].avoid_calling[{j}].days: unknown day {d:?}")
                })?;
            }
        }
        profiles.push(organization_profile::Model {
            organization_id: demo_organization_id(p.organization),
            public: p.public,
            visiting_areas: to_json(&p.visiting_areas),
            visiting_radius_km: p.visiting_radius_km,
            languages: to_json(&p.languages),
            home_deaths_last_year: p.home_deaths_last_year,
            contact_person: p.contact_person,
            contact_hours: p.contact_hours,
            avoid_calling: to_json(&p.avoid_calling),
            public_note: p.public_note,
            confirmed_at: p.confirmed_at,
            updated_at: p.confirmed_at,
        });
    }
    let mut vacancies = Vec::new();
    for (i, v) in data.vacancies.into_iter().enumerate() {
        let bed_type = BedType::parse(&v.bed_type).ok_or_else(|| {
            format!(
                "demo/directory_entries.toml: vacancies[{i}].bed_type: unknown bed type {:?}",
                v.bed_type
            )
        })?;
        let mut h = SplitMix64(DIRECTORY_SEED ^ i as u64);
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&h.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&h.next_u64().to_be_bytes()[..2]);
        let millis = u64::try_from(v.reported_at.timestamp_millis()).unwrap_or_default();
        vacancies.push(vacancy_report::Model {
            id: Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid(),
            organization_id: demo_organization_id(v.organization),
            bed_type: bed_type.as_str().to_string(),
            available: v.available,
            capacity: v.capacity,
            note: v.note,
            reported_at: v.reported_at,
            reported_by_member_id: None,
        });
    }
    let mut resources = Vec::new();
    for (i, r) in data.community_resources.into_iter().enumerate() {
        let kind = CommunityResourceType::parse(&r.resource_type).ok_or_else(|| {
            format!(
                "demo/directory_entries.toml: community_resources[{i}].resource_type: unknown type {:?}",
                r.resource_type
            )
        })?;
        let mut h = SplitMix64(RESOURCE_SEED ^ i as u64);
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&h.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&h.next_u64().to_be_bytes()[..2]);
        let at = super::fixed_time();
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or_default() + i as u64;
        resources.push(community_resource::Model {
            id: Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid(),
            owner_organization_id: demo_organization_id(r.owner),
            owner_member_id: None,
            name: r.name,
            resource_type: kind.as_str().to_string(),
            municipality: r.municipality,
            area: r.area,
            schedule: r.schedule,
            contact: r.contact,
            description: r.description,
            public: r.public,
            created_at: at,
            updated_at: at,
            removed_at: None,
        });
    }
    Ok((profiles, vacancies, resources))
}

/// The rows of the demo's directory entries (for the demo's fingerprint).
#[cfg(test)]
pub(super) fn demo_rows() -> Rows {
    rows(DATA).expect("the demo directory entries are valid (checked by tests)")
}

/// A list as the directory stores it (JSON text).
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Inserts the entries not there yet.
pub(super) async fn seed(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    let (profiles, vacancies, resources) = rows(DATA).map_err(DbErr::Custom)?;
    insert_new::<organization_profile::Entity>(txn, profiles).await?;
    insert_new::<vacancy_report::Entity>(txn, vacancies).await?;
    insert_new::<community_resource::Entity>(txn, resources).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_directory_data_reads() {
        let (profiles, vacancies, resources) = rows(DATA).unwrap();
        assert!(resources.iter().any(|r| r.public) && resources.iter().any(|r| !r.public));
        assert!(profiles.len() >= 10);
        assert!(profiles.iter().any(|p| !p.public));
        assert!(vacancies.iter().all(|v| v.available >= 0));
        let ids: std::collections::HashSet<_> = vacancies.iter().map(|v| v.id).collect();
        assert_eq!(ids.len(), vacancies.len(), "vacancy ids are unique");
    }

    #[test]
    fn a_malformed_entry_is_named_by_its_place() {
        let bad = "profiles = []\n[[vacancies]]\norganization = 1\nbed_type = \"HAMMOCK\"\navailable = 1\nreported_at = \"2026-03-31T00:00:00Z\"\n";
        let e = rows(bad).err().unwrap();
        assert!(e.contains("vacancies[0].bed_type"), "{e}");
        let e = rows("vacancies = []\n[[profiles]]\norganization = 1\n")
            .err()
            .unwrap();
        assert!(
            e.contains("demo/directory_entries.toml") && e.contains("public"),
            "{e}"
        );
    }
}
