//! The network's person record: one per person, however many facilities know them.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "patients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub name_kana: String,
    pub birth_date: Date,
    pub sex: String,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub deceased_on: Option<Date>,
    pub place_of_death: Option<String>,
    /// 被保険者個人識別子 (JP-CLINS): `保険者番号:記号:番号:枝番`, unique.
    pub insured_person_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::patient_identifier::Entity")]
    Identifier,
    #[sea_orm(has_many = "super::care_team_membership::Entity")]
    CareTeam,
}

impl Related<super::patient_identifier::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Identifier.def()
    }
}

impl Related<super::care_team_membership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CareTeam.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
