//! A professional belonging to an organisation.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub name_kana: Option<String>,
    pub profession: String,
    pub status: String,
    /// The identity provider (`iss`) that [`Model::external_subject`] is a
    /// subject of; set together with it.
    pub external_issuer: Option<String>,
    /// The subject the identity provider gives this member, for tokens that
    /// do not carry the member's id (`RENKEI_JWT_MEMBER_BY=external-subject`).
    pub external_subject: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id"
    )]
    Organization,
}

impl Related<super::organization::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
