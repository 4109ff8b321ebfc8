//! 退院前カンファレンス: a discharge conference proposed to the care team.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discharge_conferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    /// The organisation that proposes and holds it (stamped from the caller).
    pub organizer_organization_id: Uuid,
    pub proposed_by_member: Option<Uuid>,
    pub proposed_by_api_key: Option<Uuid>,
    pub discharge_notice_id: Option<Uuid>,
    pub starts_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub place: Option<String>,
    pub online: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    /// `PROPOSED` or `CANCELLED`.
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
