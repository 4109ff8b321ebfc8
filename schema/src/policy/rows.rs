//! The policy as SQL, for lists: which rows of patient data a caller may
//! see, decided by the database *before* a list is paged.
//!
//! A list that fetched `first + 1` rows and applied the policy afterwards
//! would tell the caller, through a short page, a `hasNextPage` or a count,
//! that rows it may not read exist. Lists therefore filter with a
//! [`RowScope`] in their `WHERE` clause: the same rule as
//! [`PatientAccess::may_read`](super::PatientAccess::may_read) (and, for
//! [`Policy::known_patients`], as [`Policy::evaluate`](super::Policy::evaluate)
//! giving a [`Verdict`](super::Verdict) at all — which reads its rows through
//! this very scope),
//! expressed over the patient-id column of the listed table, so that a page
//! holds exactly the next `first` visible rows and `hasNextPage` is true
//! exactly when a visible row follows. Each list stays one query.
//!
//! The role is known before any query: a caller whose role (or API key)
//! may not read the category, and whom emergency access does not open it
//! to, gets `None` — an empty list without a scan. The per-patient parts —
//! care relationship, the consent in force and its coverage, emergency
//! access — are correlated subqueries on the same tables and the same
//! conditions [`Policy::evaluate`](super::Policy::evaluate) reads
//! ([`active_on_at`], [`consent_in_force_at`], [`grant_in_force_at`]).
//!
//! Cost: the database walks a list in its own order (its index) and checks
//! each candidate row with at most three index probes — the caller's
//! membership by patient, the consent in force by patient, the caller's
//! grant by member and patient — until it has `first + 1` visible rows. Rows
//! the caller may not read are passed over inside that one statement: no
//! extra round trip, no rescan, and no bound that would make a page inexact.
//! The walk never leaves the list's own base condition (the documents of the
//! organisation's patients, the organisation's notifications, one patient's
//! audit entries). PostgreSQL may instead read the organisation's
//! memberships into a hash once when it expects to check many rows; a
//! statement about a given set of patients rules that out
//! ([`RowScope::probed_per_patient`]), so that its cost follows the set, not
//! the organisation.
//!
//! The consent's organisation list and excluded categories are JSON arrays
//! of strings in text columns. In SQL they are matched with `LIKE` on the
//! quoted value (`%"<uuid>"%`, `%"SENSITIVE_HIV"%`): portable to SQLite and
//! PostgreSQL (no JSON operators, no arrays), and exact because neither a
//! UUID nor a category name needs escaping in JSON and the quotes delimit
//! the value. The policy's `ConsentCoverage` reads the same
//! columns in Rust for [`Policy::evaluate`](super::Policy::evaluate); the
//! two are kept in step by a test that compares them over many consents
//! (`tests/tests/policy_rows.rs`).

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, Func, IntoColumnRef, IntoIden, LikeExpr, Query,
    SelectStatement,
};
use uuid::Uuid;

use super::{Policy, emergency_categories_of};
use crate::domain::{AccessLevel, ConsentScope, ConsentStatus, DataCategory};
use crate::principal::Principal;
use entities::{care_team_membership, consent, emergency_grant};

/// The escape character of the `LIKE` patterns: category names contain `_`,
/// which `LIKE` would otherwise read as "any character".
const LIKE_ESCAPE: char = '!';

/// A care-team membership of table (or alias) `table` is active on `day`: it
/// started on or before it and has not ended before it (the end date is
/// inclusive).
pub fn active_on_at<T: IntoIden + Clone>(table: T, day: NaiveDate) -> Condition {
    use care_team_membership::Column as M;
    Condition::all()
        .add(Expr::col((table.clone(), M::StartDate)).lte(day))
        .add(
            Condition::any()
                .add(Expr::col((table.clone(), M::EndDate)).is_null())
                .add(Expr::col((table, M::EndDate)).gte(day)),
        )
}

/// The consent row of `table` is the one in force: `IN_FORCE` — not a
/// pending widening awaiting the coordination centre, nor superseded,
/// withdrawn or rejected. At most one row per patient satisfies it (a
/// partial unique index). Every reader of "the consent in force" — the verdict and the
/// lists — goes through this condition.
pub fn consent_in_force_at<T: IntoIden + Clone>(table: T) -> Condition {
    Condition::all()
        .add(Expr::col((table, consent::Column::Status)).eq(ConsentStatus::InForce.as_str()))
}

/// The emergency grant of `table` is `member`'s and has not expired at `now`.
pub fn grant_in_force_at<T: IntoIden + Clone>(
    table: T,
    member_id: Uuid,
    now: DateTime<Utc>,
) -> Condition {
    Condition::all()
        .add(Expr::col((table.clone(), emergency_grant::Column::MemberId)).eq(member_id))
        .add(grant_unexpired_at(table, now))
}

/// The emergency grant of `table` has not expired at `now` (whoever holds it).
pub fn grant_unexpired_at<T: IntoIden>(table: T, now: DateTime<Utc>) -> Condition {
    Condition::all().add(Expr::col((table, emergency_grant::Column::ExpiresAt)).gt(now))
}

/// The member behind a principal: emergency grants are a member's.
fn member_of(principal: &Principal) -> Option<Uuid> {
    match principal {
        Principal::Member { member_id, .. } => Some(*member_id),
        Principal::System { .. } => None,
    }
}

/// `%"value"%` with `LIKE`'s wildcards in `value` escaped: the quoted
/// element `value` of a JSON array of strings.
fn json_element(value: &str) -> LikeExpr {
    let mut escaped = String::with_capacity(value.len() + 4);
    escaped.push_str("%\"");
    for c in value.chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            escaped.push(LIKE_ESCAPE);
        }
        escaped.push(c);
    }
    escaped.push_str("\"%");
    LikeExpr::new(escaped).escape(LIKE_ESCAPE)
}

/// Which rows of a list the caller may see: built by the policy
/// ([`Policy::readable_rows`], [`Policy::known_patients`]) and turned into a
/// condition on the listed table's patient column with [`RowScope::on`].
/// Services that list patient data take one, so a list cannot be built
/// without it.
#[derive(Clone, Debug)]
pub struct RowScope {
    organization_id: Uuid,
    /// The member, for emergency grants (systems never hold one).
    member_id: Option<Uuid>,
    today: NaiveDate,
    now: DateTime<Utc>,
    rule: Rule,
    /// Probe the care team once per patient ([`probed_per_patient`]).
    per_patient: bool,
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Rule {
    /// May read `category`: through the care relationship and consent when
    /// `by_relationship` (the role allows the category), through emergency
    /// access when `by_emergency` (an emergency category, a member).
    Read {
        category: DataCategory,
        by_relationship: bool,
        by_emergency: bool,
    },
    /// May know that the patient exists: a care relationship or emergency
    /// access.
    Know,
}

impl Policy {
    /// The rows about patients whose `category` the caller may read now —
    /// [`PatientAccess::may_read`](super::PatientAccess::may_read) as SQL.
    /// `None` when the caller may read `category` of no patient at all (its
    /// role lacks it and emergency access does not open it): the list is
    /// empty, and need not be read.
    pub fn readable_rows(&self, principal: &Principal, category: DataCategory) -> Option<RowScope> {
        let by_relationship = self.role_level(principal, category) >= AccessLevel::Read;
        let by_emergency = member_of(principal).is_some()
            && emergency_categories_of(principal).contains(&category);
        (by_relationship || by_emergency).then(|| {
            self.scope(
                principal,
                Rule::Read {
                    category,
                    by_relationship,
                    by_emergency,
                },
            )
        })
    }

    /// The rows about patients the caller may know of now (a care
    /// relationship or emergency access): [`Policy::evaluate`] giving access.
    pub fn known_patients(&self, principal: &Principal) -> RowScope {
        self.scope(principal, Rule::Know)
    }

    fn scope(&self, principal: &Principal, rule: Rule) -> RowScope {
        self.scope_at(principal, rule, self.clock.today(), self.clock.now())
    }

    /// A scope decided on a given day and instant: [`Policy::evaluate`]'s
    /// own, so that the rows it reads and the verdicts it gives agree.
    pub(super) fn scope_at(
        &self,
        principal: &Principal,
        rule: Rule,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> RowScope {
        RowScope {
            organization_id: principal.organization_id(),
            member_id: member_of(principal),
            today,
            now,
            rule,
            per_patient: false,
        }
    }
}

/// Makes `EXISTS (subquery)` over a few rows per patient answered by one
/// index probe per patient, never by reading every row of the caller's
/// organisation first.
///
/// Asked for many patients at once (the ≈ 450 of a write batch),
/// PostgreSQL may turn `EXISTS` on the care team into a *hashed* subplan:
/// it reads all the organisation's memberships (20,000 rows for the bench
/// clinic, 6–9 ms, twice in [`Policy::evaluate`](super::Policy::evaluate))
/// to answer a few hundred patients, whose index probes take 1–2 ms — its
/// cost model, made for uncached pages, prefers the hash (bench/RESULTS.md,
/// issue 16, fourth pass). A subquery with an `OFFSET` is one PostgreSQL
/// neither flattens into a join nor hashes, so each patient is probed
/// through `idx_care_team_patient` and the cost follows the batch, not the
/// organisation's size. `LIMIT 1 OFFSET 0` changes no answer of `EXISTS`,
/// and SQLite (which has no hashed subplans) needs the `LIMIT` for the
/// `OFFSET`.
fn probed_per_patient(query: &mut SelectStatement) {
    query.limit(1).offset(0);
}

impl RowScope {
    /// The caller's organisation.
    pub fn organization_id(&self) -> Uuid {
        self.organization_id
    }

    /// The day the scope was decided on (the policy clock's today).
    pub fn today(&self) -> NaiveDate {
        self.today
    }

    /// The scope as a condition on `patient`, the listed table's patient-id
    /// column (qualified with its table: the subqueries read other tables).
    pub fn on<C: IntoColumnRef + Clone>(&self, patient: C) -> Condition {
        match self.rule {
            Rule::Know => {
                let mut any = Condition::any().add(Expr::exists(self.on_team(patient.clone())));
                if let Some(grant) = self.emergency(patient) {
                    any = any.add(Expr::exists(grant));
                }
                any
            }
            Rule::Read {
                category,
                by_relationship,
                by_emergency,
            } => {
                // Never empty: `readable_rows` builds a scope only when one
                // of the two branches can hold.
                let mut any = Condition::any();
                if by_relationship {
                    let mut through_team =
                        Condition::all().add(Expr::exists(self.on_team(patient.clone())));
                    // CONSENT itself needs only the relationship: one must
                    // see whether there is consent in order to take it.
                    if category != DataCategory::Consent {
                        through_team = through_team
                            .add(Expr::exists(self.consent_covers(patient.clone(), category)));
                    }
                    any = any.add(through_team);
                }
                if by_emergency && let Some(grant) = self.emergency(patient) {
                    any = any.add(Expr::exists(grant));
                }
                any
            }
        }
    }

    /// The same scope with the care team probed once per patient
    /// ([`probed_per_patient`]): for a statement about a given set of
    /// patients ([`Policy::evaluate`](super::Policy::evaluate)). Lists keep
    /// the database's own choice, which may hash the organisation's
    /// memberships once for a long walk.
    pub(super) fn probed_per_patient(mut self) -> Self {
        self.per_patient = true;
        self
    }

    /// The caller's organisation is on the patient's care team today (also
    /// [`Policy::evaluate`](super::Policy::evaluate)'s relationship).
    pub(super) fn on_team<C: IntoColumnRef>(&self, patient: C) -> SelectStatement {
        let m = Alias::new("scope_membership");
        let mut query = Query::select();
        query
            .expr(Expr::val(1))
            .from_as(care_team_membership::Entity, m.clone())
            .and_where(
                Expr::col((m.clone(), care_team_membership::Column::PatientId)).equals(patient),
            )
            .and_where(
                Expr::col((m.clone(), care_team_membership::Column::OrganizationId))
                    .eq(self.organization_id),
            )
            .cond_where(active_on_at(m, self.today));
        if self.per_patient {
            probed_per_patient(&mut query);
        }
        query
    }

    /// The consent in force covers the caller's organisation and does not
    /// exclude `category` (the rule of `ConsentCoverage`).
    fn consent_covers<C: IntoColumnRef>(
        &self,
        patient: C,
        category: DataCategory,
    ) -> SelectStatement {
        use consent::Column as K;
        let c = Alias::new("scope_consent");
        // Stored UUIDs are lower case; LOWER keeps the match exact should a
        // writer ever store them otherwise (PostgreSQL's LIKE is
        // case-sensitive, SQLite's is not for ASCII).
        let listed = || {
            Expr::expr(Func::lower(Expr::col((c.clone(), K::OrganizationIds))))
                .like(json_element(&self.organization_id.to_string()))
        };
        let not_listed = || {
            Expr::expr(Func::lower(Expr::col((c.clone(), K::OrganizationIds))))
                .not_like(json_element(&self.organization_id.to_string()))
        };
        let covers = Condition::any()
            .add(
                Condition::all()
                    .add(Expr::col((c.clone(), K::Scope)).eq(ConsentScope::Network.as_str()))
                    .add(not_listed()),
            )
            .add(
                Condition::all()
                    .add(Expr::col((c.clone(), K::Scope)).eq(ConsentScope::Organizations.as_str()))
                    .add(listed()),
            );
        Query::select()
            .expr(Expr::val(1))
            .from_as(consent::Entity, c.clone())
            .and_where(Expr::col((c.clone(), K::PatientId)).equals(patient))
            .cond_where(consent_in_force_at(c.clone()))
            .cond_where(covers)
            .and_where(
                Expr::col((c, K::ExcludedCategories)).not_like(json_element(category.as_str())),
            )
            .to_owned()
    }

    /// The caller (a member) holds emergency access to the patient now.
    fn emergency<C: IntoColumnRef>(&self, patient: C) -> Option<SelectStatement> {
        let member = self.member_id?;
        let g = Alias::new("scope_grant");
        Some(
            Query::select()
                .expr(Expr::val(1))
                .from_as(emergency_grant::Entity, g.clone())
                .and_where(
                    Expr::col((g.clone(), emergency_grant::Column::PatientId)).equals(patient),
                )
                .cond_where(grant_in_force_at(g, member, self.now))
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_element_pattern_escapes_like_wildcards() {
        use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};
        let sql = |value: &str| {
            let q = Query::select()
                .expr(Expr::val(1))
                .and_where(Expr::col(Alias::new("list")).like(json_element(value)))
                .to_owned();
            (
                q.to_string(SqliteQueryBuilder),
                q.to_string(PostgresQueryBuilder),
            )
        };
        let (sqlite, postgres) = sql("SENSITIVE_HIV");
        for s in [sqlite, postgres] {
            assert!(
                s.ends_with(r#"LIKE '%"SENSITIVE!_HIV"%' ESCAPE '!'"#),
                "{s}"
            );
        }
        let (sqlite, _) = sql("a%b!c");
        assert!(sqlite.contains(r#"'%"a!%b!!c"%'"#), "{sqlite}");
    }
}
