//! An earlier version of a record, kept when a record is corrected or entered
//! in error.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    pub category: String,
    pub source_organization_id: Uuid,
    pub author_member_id: Option<Uuid>,
    pub author_api_key_id: Option<Uuid>,
    pub status: String,
    pub effective_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
    pub undisclosed: bool,
    #[sea_orm(column_type = "Text")]
    pub data: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
