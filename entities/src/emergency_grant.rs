//! 救急時閲覧: a time-limited emergency access of one member to one patient.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "emergency_grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    pub member_id: Uuid,
    pub organization_id: Uuid,
    /// The reason in words (for a code alone, the code's label).
    pub reason: String,
    /// The reason code (`CARDIAC_ARREST` …), when one was given.
    pub reason_code: Option<String>,
    pub opened_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
