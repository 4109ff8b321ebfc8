//! Reading the audit log: a patient's access history and the whole log.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::audit::AuditAction;
use crate::error::ApiResult;
use crate::policy::{AdminAccess, PatientAccess};
use entities::audit_log;

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub patient_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub action: Option<AuditAction>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Newest first; `before` is an entry number from the previous page.
async fn page(
    db: &DatabaseConnection,
    filter: &AuditFilter,
    before: Option<i64>,
    first: u64,
) -> ApiResult<(Vec<audit_log::Model>, bool)> {
    let mut q = audit_log::Entity::find().order_by_desc(audit_log::Column::Seq);
    if let Some(p) = filter.patient_id {
        q = q.filter(audit_log::Column::PatientId.eq(p));
    }
    if let Some(a) = filter.actor_id {
        q = q.filter(audit_log::Column::ActorId.eq(a));
    }
    if let Some(o) = filter.organization_id {
        q = q.filter(audit_log::Column::OrganizationId.eq(o));
    }
    if let Some(a) = filter.action {
        q = q.filter(audit_log::Column::Action.eq(a.as_str()));
    }
    if let Some(f) = filter.from {
        q = q.filter(audit_log::Column::OccurredAt.gte(f));
    }
    if let Some(t) = filter.to {
        q = q.filter(audit_log::Column::OccurredAt.lt(t));
    }
    if let Some(b) = before {
        q = q.filter(audit_log::Column::Seq.lt(b));
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
}

/// The access history of one patient (for the care team's coordinator and
/// for a patient's disclosure request).
pub async fn patient_history(
    db: &DatabaseConnection,
    access: &PatientAccess,
    before: Option<i64>,
    first: u64,
) -> ApiResult<(Vec<audit_log::Model>, bool)> {
    let filter = AuditFilter {
        patient_id: Some(access.patient_id()),
        ..Default::default()
    };
    page(db, &filter, before, first).await
}

/// The whole log, filtered (network administrators).
pub async fn search(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    filter: &AuditFilter,
    before: Option<i64>,
    first: u64,
) -> ApiResult<(Vec<audit_log::Model>, bool)> {
    page(db, filter, before, first).await
}
