//! An outbreak notice (感染症の集団発生の連絡): a facility's report of an
//! infection outbreak to the organisations sharing its patients.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbreak_notices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The reporting facility.
    pub organization_id: Uuid,
    pub reported_by_member: Option<Uuid>,
    pub reported_by_api_key: Option<Uuid>,
    /// `NOROVIRUS`, `INFLUENZA`, … or `OTHER` (named in `other_pathogen`).
    pub pathogen: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub other_pathogen: Option<String>,
    pub onset_on: Date,
    /// Where: 「2階フロア」「通所の利用者」.
    #[sea_orm(column_type = "Text")]
    pub scope: String,
    pub resident_cases: Option<i32>,
    pub staff_cases: Option<i32>,
    /// 面会制限、通所の休止 …
    #[sea_orm(column_type = "Text", nullable)]
    pub measures: Option<String>,
    /// `ONGOING` or `ENDED`.
    pub status: String,
    pub ended_on: Option<Date>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
