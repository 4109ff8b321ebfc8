//! An informal community resource (サロン, 見守り, 買い物・移動支援 …), owned by
//! the organisation (and member) that registered it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "community_resources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub owner_organization_id: Uuid,
    pub owner_member_id: Option<Uuid>,
    pub name: String,
    pub resource_type: String,
    pub municipality: String,
    pub area: Option<String>,
    pub schedule: Option<String>,
    pub contact: Option<String>,
    pub description: Option<String>,
    /// Shown in the public directory.
    pub public: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Removed by its owner: kept, no longer listed.
    pub removed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
