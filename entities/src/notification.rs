//! A notification for an organisation, or one of its members (a new liaison
//! message, a discharge notice, emergency access opened on a patient of theirs).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    /// Set when the notification is for one member rather than the organisation.
    pub member_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
    pub kind: String,
    /// What it points at (a message, a sheet, a notice …).
    pub subject_id: Option<Uuid>,
    pub message: String,
    pub created_at: DateTimeUtc,
    pub read_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
