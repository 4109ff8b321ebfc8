//! A message in a liaison thread; the author is stamped by the hub.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "liaison_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub thread_id: Uuid,
    /// The thread's patient, repeated so that lists need no join.
    pub patient_id: Uuid,
    pub author_organization_id: Uuid,
    pub author_member_id: Option<Uuid>,
    pub author_api_key_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// The message of the same thread this one answers.
    pub reply_to_message_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
