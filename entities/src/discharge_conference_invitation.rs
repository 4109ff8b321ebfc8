//! One invited organisation of a discharge conference and its answer.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discharge_conference_invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conference_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    /// `PENDING`, `ACCEPTED` or `DECLINED`.
    pub response: String,
    pub responded_by_member: Option<Uuid>,
    pub responded_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    /// Whether the organisation attended, as the minutes record it.
    pub attended: Option<bool>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
