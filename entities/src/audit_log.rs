//! The append-only, hash-chained audit log. Each entry's `hash` is an
//! HMAC-SHA256, under the key `key_id` names, over its content and the
//! previous entry's hash (`prev_hash`); entries written before keyed signing
//! have no key id and an unkeyed SHA-256 (see `renkei_schema::audit::chain`).
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
    /// The id of the audit key that signed the entry; `None` only for the
    /// entries written before keyed signing (`audit_head.legacy_seq`).
    pub key_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
