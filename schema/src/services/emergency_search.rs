//! 救急時の患者検索: finding the patient an ambulance crew is with, by the
//! exact name and birth date it was told (`docs/emergency-information.md`,
//! *Finding the patient*).
//!
//! The policy has decided who may search ([`EmergencySearcher`]); this
//! module counts the searches ([`count`]) and finds the candidates
//! ([`find`]). The resolver audits and refuses.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

use crate::domain::{EmergencySearchCriteria, PatientStatus};
use crate::error::{ApiError, ApiResult};
use crate::policy::{EmergencySearcher, Policy};
use entities::{emergency_objection, emergency_search_counter, patient};

/// Counts one search against the member's limit, or refuses it with
/// `EMERGENCY_SEARCH_LIMIT` when the window's searches are spent. Returns
/// how many searches are left in the window after this one.
///
/// A fixed window per member, kept in the database so that every instance
/// of the hub counts the same searches; the row is locked for the count
/// (`BEGIN IMMEDIATE` on SQLite, the row's update lock on PostgreSQL), so
/// concurrent searches cannot both take the last one.
pub async fn count(
    db: &DatabaseConnection,
    policy: &Policy,
    searcher: &EmergencySearcher,
) -> ApiResult<u32> {
    let limit = policy.emergency_search;
    let now = policy.clock.now();
    let txn = super::begin_write(db).await?;
    // The member's row exists from its first search on; inserting it first
    // (or nothing, when it exists) lets the update below lock it.
    emergency_search_counter::Entity::insert(emergency_search_counter::ActiveModel {
        member_id: Set(searcher.member_id),
        window_started_at: Set(now),
        searches: Set(0),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(&txn)
    .await?;
    // Touching the row takes its lock on PostgreSQL before it is read.
    emergency_search_counter::Entity::update_many()
        .col_expr(
            emergency_search_counter::Column::Searches,
            Expr::col(emergency_search_counter::Column::Searches),
        )
        .filter(emergency_search_counter::Column::MemberId.eq(searcher.member_id))
        .exec(&txn)
        .await?;
    let row = emergency_search_counter::Entity::find_by_id(searcher.member_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("emergency search counter vanished"))?;
    let window_ends: DateTime<Utc> = row.window_started_at + limit.window;
    let (started, used) = if now >= window_ends {
        (now, 0)
    } else {
        (
            row.window_started_at,
            u32::try_from(row.searches).unwrap_or(u32::MAX),
        )
    };
    if used >= limit.searches {
        return Err(ApiError::EmergencySearchLimit(format!(
            "you have made {} emergency searches in {} minutes, the most allowed; the next is possible after {} (or open emergency access by the facility's local ID on the medication notebook or card)",
            limit.searches,
            limit.window.num_minutes(),
            window_ends.to_rfc3339(),
        )));
    }
    emergency_search_counter::Entity::update(emergency_search_counter::ActiveModel {
        member_id: Set(searcher.member_id),
        window_started_at: Set(started),
        searches: Set(i32::try_from(used + 1).unwrap_or(i32::MAX)),
    })
    .exec(&txn)
    .await?;
    txn.commit().await?;
    Ok(limit.searches - used - 1)
}

/// The living patients the criteria name exactly, who have not objected to
/// emergency access, in the order of their reading. Reads the patients born
/// on the day (an index), then compares names here, where the harmless
/// differences are folded alike on both backends.
///
/// A patient who objected to emergency access is not offered to open it
/// on: to the searcher, as if not registered. The objection is asked in the
/// same statement, so a search that names an objecting patient costs what
/// one that names no one does (a second query only when someone matched
/// would time whether such a patient exists).
pub async fn find(
    db: &DatabaseConnection,
    _searcher: &EmergencySearcher,
    criteria: &EmergencySearchCriteria,
) -> ApiResult<Vec<patient::Model>> {
    let objecting = sea_orm::sea_query::Query::select()
        .column(emergency_objection::Column::PatientId)
        .from(emergency_objection::Entity)
        .and_where(emergency_objection::Column::WithdrawnAt.is_null())
        .to_owned();
    let born = patient::Entity::find()
        .filter(patient::Column::BirthDate.eq(criteria.birth_date))
        .filter(patient::Column::Status.ne(PatientStatus::Deceased.as_str()))
        .filter(patient::Column::Id.not_in_subquery(objecting))
        .order_by_asc(patient::Column::NameKana)
        .order_by_asc(patient::Column::Id)
        .all(db)
        .await?;
    Ok(born
        .into_iter()
        .filter(|p| criteria.matches(&p.name, &p.name_kana, &p.sex, p.address.as_deref()))
        .collect())
}
