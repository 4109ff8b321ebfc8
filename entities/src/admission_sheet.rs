//! 入院時情報提供書: an admission information sheet, from the care team (the
//! care manager's office) to the admitting hospital.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "admission_sheets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    /// The organisation that writes and sends it (stamped from the caller).
    pub author_organization_id: Uuid,
    pub author_member_id: Option<Uuid>,
    pub author_api_key_id: Option<Uuid>,
    /// The hospital the patient was admitted to: the receiver.
    pub hospital_organization_id: Uuid,
    pub admitted_on: Date,
    /// `DRAFT`, `SENT` or `RECEIVED`.
    pub status: String,
    /// The sections as JSON (`renkei_schema::services::admission_discharge::SheetContent`).
    #[sea_orm(column_type = "Text")]
    pub content: String,
    /// The records the prefill drew from, as JSON.
    #[sea_orm(column_type = "Text")]
    pub sources: String,
    /// Data categories the prefill left out because the author may not read
    /// them, as a JSON array of names.
    #[sea_orm(column_type = "Text")]
    pub omitted_categories: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub sent_by_member: Option<Uuid>,
    pub received_at: Option<DateTimeUtc>,
    pub received_by_member: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
