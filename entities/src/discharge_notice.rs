//! 退院連絡: a hospital's notice to the care team that a patient will be
//! discharged. The current version; earlier ones are in
//! `discharge_notice_versions`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discharge_notices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    /// The sending hospital (stamped from the caller).
    pub hospital_organization_id: Uuid,
    pub author_member_id: Option<Uuid>,
    pub author_api_key_id: Option<Uuid>,
    /// The admission information sheet of this stay, when there is one.
    pub admission_sheet_id: Option<Uuid>,
    /// `NOTIFIED`, `DISCHARGED` or `CANCELLED`.
    pub status: String,
    pub admitted_on: Date,
    pub planned_discharge_on: Date,
    pub actual_discharge_on: Option<Date>,
    #[sea_orm(column_type = "Text")]
    pub needs_at_home: String,
    /// Kitami's criteria for discharge needing coordination, a JSON array of names.
    #[sea_orm(column_type = "Text")]
    pub criteria: String,
    /// When the notice was first sent; corrections keep it.
    pub notified_at: DateTimeUtc,
    /// `notified_at`'s day in Japan: where the lead time starts.
    pub notified_on: Date,
    pub version: i32,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
