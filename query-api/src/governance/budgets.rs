//! Budgets (`/v1/admin/budgets`) and their status (`GET /v1/budgets/status`).
//!
//! A budget limits the spend of a scope (org, agent, workflow, model, or an
//! event attribute `tag` `key=value`) per UTC day, week (from Monday) or
//! month; alerts fire at each threshold (percent of the limit, default 80
//! and 100) and, with `pause_at_pct`, the agents in scope are paused.
//!
//! Spend so far: org, agent, workflow and model scopes sum `agg_1h.cost_usd`
//! from the period start (exact: periods start on the hour); a tag scope sums
//! `events.cost_usd` of the events carrying the attribute (events are kept
//! `raw_retention_days`, 30 by default, so a month is covered).

use agentops_governance::spend::spend_in_scope;
use agentops_governance::{load, period_end, period_key, period_start, Budget};
use agentops_runtime::keys::Scope as KeyScope;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::crud::Resource;
use crate::error::ApiError;
use crate::state::{authenticate, Shared};

pub(crate) static BUDGETS: Resource = Resource::of::<Budget>("budgets");

/// `GET /v1/budgets/status`: every budget with its current period and the
/// spend so far (read scope).
#[utoipa::path(get, path = "/v1/budgets/status", tag = "alerts",
    responses((status = 200, description = "Every budget, by name", body = super::docs::BudgetsStatus)))]
pub(crate) async fn status(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, KeyScope::Read).await?;
    let now = Utc::now();
    let mut conn = s.pool.acquire().await?;
    // Validated the same way as on the way in, and as the processors read them.
    let budgets = load::<Budget>(&mut conn, Some(&key.org_id), false).await?;
    let mut out = Vec::with_capacity(budgets.len());
    for b in budgets {
        let (start, end) = (period_start(b.period, now), period_end(b.period, now));
        // The processors' crossing check reads the same function.
        let spent = spend_in_scope(&mut conn, &key.org_id, &b.scope, start, Some(end)).await?;
        let pct = b.percent(spent);
        out.push(json!({
            "id": b.id, "name": b.name,
            "scope_kind": b.scope.kind(), "scope_value": b.scope.value(),
            "scope_key": b.scope.scope_key(),
            "period": b.period, "period_key": period_key(b.period, now),
            "period_start": start, "period_end": end,
            "limit_usd": b.limit_usd, "spend_usd": spent, "percent": pct,
            "remaining_usd": (b.limit_usd - spent).max(0.0),
            "thresholds": b.thresholds, "thresholds_crossed": b.crossed(pct),
            "pause_at_pct": b.pause_at_pct, "pause_reached": b.pause_reached(pct),
        }));
    }
    Ok(Json(json!({"as_of": now, "budgets": out})))
}
