//! What an organisation does and how to reach it, beyond its kind and
//! capabilities (the directory's 機能 entry), one row per organisation.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "organization_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// Shown in the public, unauthenticated directory.
    pub public: bool,
    /// JSON array of municipality / area names the organisation visits.
    pub visiting_areas: String,
    /// Or a radius from its address, in km.
    pub visiting_radius_km: Option<f64>,
    /// JSON array of languages besides Japanese.
    pub languages: String,
    /// 看取り: deaths at home attended in the last fiscal year.
    pub home_deaths_last_year: Option<i32>,
    pub contact_person: Option<String>,
    pub contact_hours: Option<String>,
    /// JSON array of `{days, from, to, note}`: times to avoid calling.
    pub avoid_calling: String,
    pub public_note: Option<String>,
    /// When the organisation (or the centre) last confirmed the entry.
    pub confirmed_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
