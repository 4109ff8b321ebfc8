//! A liaison thread (連絡票): one subject about one patient, addressed to the
//! whole care team or to named organisations (`liaison_thread_addressees`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "liaison_threads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    pub subject: String,
    /// `NORMAL`, `URGENT` or `EMERGENCY`.
    pub urgency: String,
    /// Addressed to every organisation on the care team (else to the
    /// addressees and the creating organisation only).
    pub whole_care_team: bool,
    pub created_by_organization_id: Uuid,
    pub created_by_member_id: Option<Uuid>,
    pub created_by_api_key_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    /// When the newest message was posted: the order of lists and the inbox.
    pub last_message_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
