//! 活用状況 (issue 15, `docs/indicators.md`): the programme's indicators of
//! a municipality over a period, computed from use — aggregates only, small
//! cells suppressed — for the municipality's own staff and the network's
//! administrators and coordination centre.

use async_graphql::{Context, Result, SimpleObject};

use super::{Date, ctx_db, ctx_request, ctx_trail};
use crate::domain::{DataCategory, Municipality, OrganizationKind};
use crate::error::ApiError;
use crate::policy;
use crate::services::indicators::{self, Scope};

/// The longest period one request covers.
const MAX_PERIOD_DAYS: i64 = 731;

/// One cell of an indicator.
#[derive(SimpleObject)]
pub struct IndicatorCell {
    /// What is counted (a kind, a month `2026-03`, a place …).
    pub label: String,
    /// `null` when suppressed: fewer than 5, hidden so that another
    /// suppressed cell cannot be derived from the total, or a part 1 to 4
    /// short of a population it belongs to (`docs/indicators.md`).
    pub value: Option<i64>,
    pub suppressed: bool,
}

/// One indicator: a table of counts.
#[derive(SimpleObject)]
pub struct Indicator {
    /// A stable name (`recordsByKind`).
    pub key: String,
    pub title: String,
    /// 人, 件, 回, 機関.
    pub unit: String,
    pub cells: Vec<IndicatorCell>,
    /// The cells' total, when they add up to one and it may be shown.
    pub total: Option<i64>,
    /// Whether the cells add up to a total (shown or suppressed).
    pub has_total: bool,
}

impl From<indicators::Table> for Indicator {
    fn from(t: indicators::Table) -> Self {
        Indicator {
            key: t.key.to_string(),
            title: t.title.to_string(),
            unit: t.unit.to_string(),
            cells: t
                .cells
                .into_iter()
                .map(|c| IndicatorCell {
                    label: c.label,
                    suppressed: c.value.is_none(),
                    value: c.value,
                })
                .collect(),
            total: t.total,
            has_total: t.has_total,
        }
    }
}

pub async fn indicators(
    ctx: &Context<'_>,
    municipality: String,
    from: Date,
    to: Date,
) -> Result<Vec<Indicator>> {
    let req = ctx_request(ctx)?;
    let municipality = Municipality::parse("municipality", &municipality)?;
    if to.0 <= from.0 {
        return Err(ApiError::bad_input("to", "must be after `from`").into());
    }
    if (to.0 - from.0).num_days() > MAX_PERIOD_DAYS {
        return Err(ApiError::bad_input(
            "to",
            format!("the period may be at most {MAX_PERIOD_DAYS} days long"),
        )
        .into());
    }
    let db = ctx_db(ctx);
    let caller = crate::services::organizations::by_ids(db, &[req.principal.organization_id()])
        .await?
        .remove(&req.principal.organization_id());
    let caller_kind = caller
        .as_ref()
        .and_then(|o| OrganizationKind::parse(&o.kind));
    let caller_municipality = caller.as_ref().and_then(|o| o.municipality.as_deref());
    policy::may_read_indicators(
        &req.principal,
        caller_kind,
        caller_municipality,
        municipality.as_str(),
    )?;
    crate::services::organizations::require_served(db, &municipality).await?;
    let municipality = municipality.into_inner();
    ctx_trail(ctx)?.read_aggregate(
        DataCategory::AccessHistory,
        format!("indicators: {municipality}, {} to {}", from.0, to.0),
    );
    let scope = Scope {
        municipality,
        from: from.0,
        to: to.0,
    };
    Ok(indicators::compute(db, &scope)
        .await?
        .into_iter()
        .map(Indicator::from)
        .collect())
}
