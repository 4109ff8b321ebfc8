//! A care conference proposed to the care team: a discharge conference
//! (退院前カンファレンス) or another kind (`kind`), with its minutes once held.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "discharge_conferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    /// The organisation that proposes and holds it (stamped from the caller).
    pub organizer_organization_id: Uuid,
    pub proposed_by_member: Option<Uuid>,
    pub proposed_by_api_key: Option<Uuid>,
    pub discharge_notice_id: Option<Uuid>,
    pub starts_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub place: Option<String>,
    pub online: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    /// `PROPOSED`, `CANCELLED` or `HELD` (minutes recorded).
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// `DISCHARGE`, `SERVICE_MEETING`, `CASE_CONFERENCE`, `END_OF_LIFE`.
    pub kind: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub agenda: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub minutes_discussion: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub minutes_decisions: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub minutes_open_issues: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub minutes_other_attendees: Option<String>,
    pub next_meeting_on: Option<Date>,
    pub minutes_recorded_at: Option<DateTimeUtc>,
    pub minutes_recorded_by_member: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
