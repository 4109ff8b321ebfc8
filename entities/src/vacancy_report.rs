//! 空床・空き状況: free beds or places of one type at a facility, as
//! reported at a time (a history; the latest per type counts).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "vacancy_reports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub bed_type: String,
    pub available: i32,
    pub capacity: Option<i32>,
    pub note: Option<String>,
    pub reported_at: DateTimeUtc,
    pub reported_by_member_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
