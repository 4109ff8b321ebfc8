//! Categories that follow practice (issue 14, part 1): visiting-nurse reports
//! (訪問看護報告書) leave CLINICAL_DOCUMENTS for VISITING_NURSE_REPORTS, which
//! the care side reads, and swallowing assessments (摂食嚥下・食形態) leave
//! DENTAL for NUTRITION_SWALLOWING, shared by every profession that feeds or
//! treats.
//!
//! Moving records must not open them to anyone the patient or the network had
//! shut out, so what named the old category is carried over to the new one:
//! - a consent (of any status: a pending one may yet come into force, and the
//!   history should read as the patient meant it) that excluded
//!   CLINICAL_DOCUMENTS now excludes VISITING_NURSE_REPORTS too, one that
//!   excluded DENTAL excludes NUTRITION_SWALLOWING too;
//! - an API key that held CLINICAL_DOCUMENTS (or DENTAL) holds the new
//!   category at the same level, so a station's system that filed its
//!   reports keeps filing them — and a key without it gets nothing new.
//!
//! Only rows still in the old category move: a record that sensitive content
//! put elsewhere stays where it is. The audit log is append-only and keeps
//! the categories as they were when the access happened.
//!
//! Members registered as THERAPIST keep the value (the policy gives it the
//! least of PT, OT and ST); `down` turns the three new professions back into
//! it, since the older hub knows only that.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (record kind, old category, new category).
const MOVES: &[(&str, &str, &str)] = &[
    (
        "VISITING_NURSE_REPORT",
        "CLINICAL_DOCUMENTS",
        "VISITING_NURSE_REPORTS",
    ),
    ("SWALLOWING_ASSESSMENT", "DENTAL", "NUTRITION_SWALLOWING"),
];

const NEW_THERAPISTS: &[&str] = &[
    "PHYSICAL_THERAPIST",
    "OCCUPATIONAL_THERAPIST",
    "SPEECH_THERAPIST",
];

fn t(name: &str) -> Alias {
    Alias::new(name)
}

/// Moves the records of `kind` (and their versions) from `from` to `to`.
async fn refile(
    manager: &SchemaManager<'_>,
    kind: &str,
    from: &str,
    to: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let records_of_kind = Query::select()
        .column(t("id"))
        .from(t("records"))
        .and_where(Expr::col(t("kind")).eq(kind))
        .to_owned();
    db.execute(
        &Query::update()
            .table(t("record_versions"))
            .value(t("category"), to)
            .and_where(Expr::col(t("category")).eq(from))
            .and_where(Expr::col(t("record_id")).in_subquery(records_of_kind))
            .to_owned(),
    )
    .await?;
    db.execute(
        &Query::update()
            .table(t("records"))
            .value(t("category"), to)
            .and_where(Expr::col(t("kind")).eq(kind))
            .and_where(Expr::col(t("category")).eq(from))
            .to_owned(),
    )
    .await?;
    Ok(())
}

/// Rewrites every distinct value of a JSON text column with `change`
/// (`None`: unchanged). Values, not row ids, are matched, so the statement is
/// the same on both backends whatever the id's storage.
async fn rewrite_json_column(
    manager: &SchemaManager<'_>,
    table: &str,
    column: &str,
    change: impl Fn(serde_json::Value) -> Option<serde_json::Value>,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let rows = db
        .query_all(
            &Query::select()
                .distinct()
                .column(t(column))
                .from(t(table))
                .to_owned(),
        )
        .await?;
    for row in rows {
        let old: String = row.try_get("", column)?;
        let parsed: serde_json::Value = serde_json::from_str(&old).map_err(|e| {
            DbErr::Migration(format!(
                "{table}.{column} holds unreadable JSON {old:?}: {e}"
            ))
        })?;
        let Some(new) = change(parsed) else { continue };
        db.execute(
            &Query::update()
                .table(t(table))
                .value(t(column), new.to_string())
                .and_where(Expr::col(t(column)).eq(old.as_str()))
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

/// A consent's exclusions with `to` added wherever `from` is excluded.
fn carry_exclusions(value: serde_json::Value, pairs: &[(&str, &str)]) -> Option<serde_json::Value> {
    let serde_json::Value::Array(mut list) = value else {
        return None;
    };
    let mut changed = false;
    for &(from, to) in pairs {
        let has = |name: &str| list.iter().any(|v| v.as_str() == Some(name));
        if has(from) && !has(to) {
            list.push(serde_json::Value::String(to.to_string()));
            changed = true;
        }
    }
    changed.then_some(serde_json::Value::Array(list))
}

/// An API key's permissions with `to` at `from`'s level wherever it has `from`.
fn carry_permissions(
    value: serde_json::Value,
    pairs: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let serde_json::Value::Object(mut map) = value else {
        return None;
    };
    let mut changed = false;
    for &(from, to) in pairs {
        if let Some(level) = map.get(from).cloned()
            && !map.contains_key(to)
        {
            map.insert(to.to_string(), level);
            changed = true;
        }
    }
    changed.then_some(serde_json::Value::Object(map))
}

fn pairs() -> Vec<(&'static str, &'static str)> {
    MOVES.iter().map(|&(_, from, to)| (from, to)).collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for &(kind, from, to) in MOVES {
            refile(manager, kind, from, to).await?;
        }
        let pairs = pairs();
        rewrite_json_column(manager, "consents", "excluded_categories", |v| {
            carry_exclusions(v, &pairs)
        })
        .await?;
        rewrite_json_column(manager, "api_keys", "permissions", |v| {
            carry_permissions(v, &pairs)
        })
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for &(kind, from, to) in MOVES {
            refile(manager, kind, to, from).await?;
        }
        let new: Vec<&str> = MOVES.iter().map(|&(_, _, to)| to).collect();
        rewrite_json_column(manager, "consents", "excluded_categories", |v| {
            let serde_json::Value::Array(list) = v else {
                return None;
            };
            let kept: Vec<_> = (list.iter())
                .filter(|c| !c.as_str().is_some_and(|c| new.contains(&c)))
                .cloned()
                .collect();
            (kept.len() != list.len()).then_some(serde_json::Value::Array(kept))
        })
        .await?;
        rewrite_json_column(manager, "api_keys", "permissions", |v| {
            let serde_json::Value::Object(mut map) = v else {
                return None;
            };
            let before = map.len();
            map.retain(|c, _| !new.contains(&c.as_str()));
            (map.len() != before).then_some(serde_json::Value::Object(map))
        })
        .await?;
        manager
            .get_connection()
            .execute(
                &Query::update()
                    .table(t("members"))
                    .value(t("profession"), "THERAPIST")
                    .and_where(Expr::col(t("profession")).is_in(NEW_THERAPISTS.iter().copied()))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
