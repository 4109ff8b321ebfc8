//! A patient's consent to sharing (同意), with its history: withdrawn and
//! superseded consents stay, marked with `withdrawn_at`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    /// `NETWORK` (包括同意) or `ORGANIZATIONS` (個別同意).
    pub scope: String,
    /// JSON array of organisation ids: excluded ones for `NETWORK`, the
    /// covered ones for `ORGANIZATIONS`.
    pub organization_ids: String,
    /// JSON array of data-category names the consent does not cover.
    pub excluded_categories: String,
    pub method: String,
    pub form_reference: Option<String>,
    pub obtained_on: Date,
    pub recorded_by_member: Option<Uuid>,
    pub recorded_by_organization: Uuid,
    pub recorded_at: DateTimeUtc,
    pub withdrawn_at: Option<DateTimeUtc>,
    pub withdrawn_by_member: Option<Uuid>,
    pub withdrawal_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
