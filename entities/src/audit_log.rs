//! The append-only, hash-chained audit log. Each entry's `hash` covers its
//! content and the previous entry's hash (`prev_hash`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub occurred_at: DateTimeUtc,
    pub actor_kind: String,
    pub actor_id: Uuid,
    pub organization_id: Uuid,
    pub patient_id: Option<Uuid>,
    pub action: String,
    /// Comma-separated data categories, sorted.
    pub categories: String,
    pub request_id: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
