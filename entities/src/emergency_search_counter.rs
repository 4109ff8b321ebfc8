//! 救急時の患者検索: how many emergency searches a member made in its current
//! window (one row per member, updated in place).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "emergency_search_counters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: Uuid,
    /// When the window being counted began.
    pub window_started_at: DateTimeUtc,
    /// Searches since then.
    pub searches: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
