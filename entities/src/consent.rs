//! A patient's consent to sharing (同意), with its history: withdrawn,
//! superseded and rejected consents stay, marked with their `status` and
//! `withdrawn_at`. Only a consent `IN_FORCE` grants access.
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
    /// The signed form; null only on rows recorded before forms were required.
    pub form_reference: Option<String>,
    /// The day the form was signed (the consent given).
    pub obtained_on: Date,
    pub recorded_by_member: Option<Uuid>,
    pub recorded_by_organization: Uuid,
    pub recorded_at: DateTimeUtc,
    /// When it ended: withdrawn, superseded or rejected.
    pub withdrawn_at: Option<DateTimeUtc>,
    pub withdrawn_by_member: Option<Uuid>,
    pub withdrawal_reason: Option<String>,
    /// `PENDING`, `IN_FORCE`, `SUPERSEDED`, `WITHDRAWN` or `REJECTED`.
    pub status: String,
    /// `PATIENT`, `FAMILY` or `GUARDIAN`; null on rows recorded before
    /// forms were required.
    pub signed_by: Option<String>,
    /// The proxy (代諾者) who signed, with the relation to the patient.
    pub proxy_name: Option<String>,
    pub proxy_relation: Option<String>,
    /// The coordination centre's confirmation or rejection of a pending consent.
    pub reviewed_at: Option<DateTimeUtc>,
    pub reviewed_by_member: Option<Uuid>,
    pub reviewed_by_organization: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
