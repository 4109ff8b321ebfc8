//! Reading the audit log: a patient's access history and the whole log.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::audit::AuditAction;
use crate::domain::{AccessLevel, DataCategory};
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
    shown: Option<Condition>,
    before: Option<i64>,
    first: u64,
) -> ApiResult<(Vec<audit_log::Model>, bool)> {
    let mut q = audit_log::Entity::find().order_by_desc(audit_log::Column::Seq);
    if let Some(shown) = shown {
        q = q.filter(shown);
    }
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
/// for a patient's disclosure request), as the caller may see it: an entry
/// about data of categories the caller may not read would tell it that such
/// data exists (someone wrote or read the patient's HIV test), so
/// - an entry whose categories are all closed to the caller is left out —
///   in the query, so that pages and `hasNextPage` count only what is shown;
/// - an entry with some closed categories lists only the others, and loses
///   its detail (which may name them);
/// - no entry shows its hash (over the whole entry: with the hash of the
///   entry before it, closed categories could be found by trying them; and
///   a hash emptied only on entries shown in part would tell of them);
/// - entries without categories (lookups, refusals of the patient itself,
///   emergency access opened) are shown;
/// - a refused attempt (`DENIED`) is shown as such — who, when, the
///   categories the reader may read — without its detail or hash: the
///   detail of someone else's refusal names what was asked for (a liaison
///   thread not addressed to the reader, a local ID), which the reader may
///   not know of. Administrators read it whole in `auditLog`. A refusal of
///   an object bound to the patient is recorded under the object's category
///   (`graphql/reach.rs`), so one of a category closed to the reader is
///   left out like any entry of it.
///
/// What is closed is decided on the caller's verdict now (role, consent).
pub async fn patient_history(
    db: &DatabaseConnection,
    access: &PatientAccess,
    before: Option<i64>,
    first: u64,
) -> ApiResult<(Vec<audit_log::Model>, bool)> {
    let readable: Vec<DataCategory> = access
        .grants()
        .filter(|(_, g)| g.level >= AccessLevel::Read)
        .map(|(c, _)| c)
        .collect();
    let filter = AuditFilter {
        patient_id: Some(access.patient_id()),
        ..Default::default()
    };
    let (rows, more) = page(db, &filter, Some(shown_to(&readable)), before, first).await?;
    Ok((
        rows.into_iter().map(|r| redacted(r, &readable)).collect(),
        more,
    ))
}

/// The entries of a history shown to a reader of `readable`: without
/// categories, or listing one of them. (`categories` is the entry's sorted
/// names joined by commas; a name is matched as a whole element.)
fn shown_to(readable: &[DataCategory]) -> Condition {
    let column = || Expr::col((audit_log::Entity, audit_log::Column::Categories));
    let mut any = Condition::any().add(column().eq(""));
    for c in readable {
        let name = c.as_str().replace('_', "!_");
        for pattern in [
            format!("{name},%"),
            format!("%,{name}"),
            format!("%,{name},%"),
        ] {
            any = any.add(column().like(LikeExpr::new(pattern).escape('!')));
        }
        any = any.add(column().eq(c.as_str()));
    }
    any
}

/// An entry as a reader of `readable` sees it (see [`patient_history`]).
fn redacted(mut entry: audit_log::Model, readable: &[DataCategory]) -> audit_log::Model {
    let names: Vec<&str> = crate::audit::stored_categories(&entry.categories).collect();
    let shown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| DataCategory::parse(n).is_some_and(|c| readable.contains(&c)))
        .collect();
    if shown.len() < names.len() || entry.action == AuditAction::Denied.as_str() {
        entry.categories = shown.join(",");
        entry.detail = None;
    }
    // No entry shows its hash here: emptied only where the entry is shown
    // in part, an empty one beside full ones would tell that the patient
    // has data of a category closed to the reader. Verifying the chain is
    // the administrators' (`auditLog`, `renkei audit verify`).
    entry.hash = String::new();
    entry
}

/// The whole log, filtered (network administrators).
pub async fn search(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    filter: &AuditFilter,
    before: Option<i64>,
    first: u64,
) -> ApiResult<(Vec<audit_log::Model>, bool)> {
    page(db, filter, None, before, first).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(categories: &str, detail: Option<&str>) -> audit_log::Model {
        audit_log::Model {
            seq: 7,
            occurred_at: chrono::Utc::now(),
            actor_kind: "MEMBER".into(),
            actor_id: Uuid::nil(),
            organization_id: Uuid::nil(),
            patient_id: Some(Uuid::nil()),
            action: "READ".into(),
            categories: categories.into(),
            request_id: "r".into(),
            outcome: "OK".into(),
            detail: detail.map(str::to_string),
            prev_hash: "p".into(),
            hash: "h".into(),
            key_id: Some("k1".into()),
        }
    }

    #[test]
    fn an_entry_in_part_hides_its_closed_categories_detail_and_hash() {
        let readable = [DataCategory::Conditions, DataCategory::LabResults];
        let e = redacted(
            entry(
                "CONDITIONS,SENSITIVE_HIV",
                Some("the patient's consent excludes SENSITIVE_HIV"),
            ),
            &readable,
        );
        assert_eq!(e.categories, "CONDITIONS");
        assert_eq!(e.detail, None);
        assert_eq!(e.hash, "");
        // A whole entry keeps its detail; no entry shows its hash, or an
        // empty one would tell of closed categories.
        let whole = redacted(entry("CONDITIONS,LAB_RESULTS", Some("d")), &readable);
        assert_eq!(
            (
                whole.categories.as_str(),
                whole.detail.as_deref(),
                whole.hash.as_str()
            ),
            ("CONDITIONS,LAB_RESULTS", Some("d"), "")
        );
        let mut none = entry("", Some("opened for 救急搬送"));
        none.action = "BREAK_THE_GLASS".into();
        let none = redacted(none, &readable);
        assert_eq!(none.detail.as_deref(), Some("opened for 救急搬送"));
        assert_eq!(none.hash, "");
    }

    #[test]
    fn a_refusal_shows_who_and_what_categories_but_not_its_detail() {
        let readable = [DataCategory::LiaisonMessages];
        for categories in ["", "LIAISON_MESSAGES"] {
            let mut refusal = entry(
                categories,
                Some("liaison thread 0190…: not addressed to your organisation"),
            );
            refusal.action = "DENIED".into();
            refusal.outcome = "DENIED".into();
            let e = redacted(refusal, &readable);
            assert_eq!(e.categories, categories);
            assert_eq!(e.action, "DENIED");
            assert_eq!((e.detail, e.hash.as_str()), (None, ""));
        }
    }
}
