//! A participant of the network: hospital, clinic, pharmacy, care office, …
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub name_kana: Option<String>,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub municipality: Option<String>,
    pub phone: Option<String>,
    pub fax: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// 医療機関コード: the 10-digit medical institution code (都道府県 2 +
    /// 点数表 1 + 医療機関 7), by which FHIR senders name themselves.
    pub medical_institution_code: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::organization_capability::Entity")]
    Capability,
    #[sea_orm(has_many = "super::member::Entity")]
    Member,
}

impl Related<super::organization_capability::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Capability.def()
    }
}

impl Related<super::member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Member.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
