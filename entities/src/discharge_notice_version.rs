//! An earlier version of a discharge notice (before a correction).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discharge_notice_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub notice_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub status: String,
    pub planned_discharge_on: Date,
    pub actual_discharge_on: Option<Date>,
    #[sea_orm(column_type = "Text")]
    pub needs_at_home: String,
    #[sea_orm(column_type = "Text")]
    pub criteria: String,
    /// When this version was written (the notice's `updated_at` then).
    pub changed_at: DateTimeUtc,
    pub changed_by_member: Option<Uuid>,
    pub changed_by_api_key: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
