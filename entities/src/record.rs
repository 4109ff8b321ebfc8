//! A record of any kind (condition, lab result, care plan, ACP …): the current
//! version. Earlier versions are in `record_versions`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    pub kind: String,
    /// The data category the record is governed by (sensitive content may
    /// move a record out of its kind's default category).
    pub category: String,
    pub source_organization_id: Uuid,
    pub author_member_id: Option<Uuid>,
    pub author_api_key_id: Option<Uuid>,
    /// The writing system's own ID; unique per (organisation, kind).
    pub source_record_id: Option<String>,
    pub version: i32,
    /// `ACTIVE` or `ENTERED_IN_ERROR`.
    pub status: String,
    pub effective_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
    /// 未告知: not yet told to the patient.
    pub undisclosed: bool,
    /// A candidate for the patient summary (see `renkei_schema::records::SummaryRule`).
    pub in_summary: bool,
    pub series_key: Option<String>,
    /// The last day the record is in force (`WhileCurrent` kinds: a
    /// prescription's last day, an instruction's validity; 9999-12-31 for no
    /// end and for the other kinds): the summary reads only records whose
    /// day has not passed, whatever the length of the history.
    pub summary_until: Date,
    /// The kind's payload as JSON.
    #[sea_orm(column_type = "Text")]
    pub data: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
