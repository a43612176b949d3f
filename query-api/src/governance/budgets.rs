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

use agentops_runtime::governance::{
    period_end, period_key, period_start, Period, Scope, ScopeKind,
};
use agentops_runtime::keys::Scope as KeyScope;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::crud::{Resource, ROW_JSON};
use super::fields::{bad, channel_ids, name, one_of, opt_positive, present, put_scope, scope, Obj};
use crate::error::ApiError;
use crate::state::{authenticate, Shared};

pub(crate) static BUDGETS: Resource = Resource {
    table: "budgets",
    list_key: "budgets",
    noun: "budget",
    fields: &[
        "name",
        "scope_kind",
        "scope_value",
        "period",
        "limit_usd",
        "thresholds",
        "pause_at_pct",
        "channels",
    ],
    fixed: &[],
    validate,
    output: ROW_JSON,
    on_delete: &[],
    updatable: true,
};

/// Largest accepted limit (USD) and percent.
const MAX_USD: f64 = 1e12;
const MAX_PCT: f64 = 1000.0;

/// Thresholds: percents in (0, 1000], sorted, deduplicated; default [80, 100].
fn thresholds(m: &Obj) -> Result<Vec<f64>, ApiError> {
    let Some(v) = present(m, "thresholds") else {
        return Ok(vec![80.0, 100.0]);
    };
    let msg = "expected a non-empty array of percents, each above 0 and at most 1000";
    let items = v
        .as_array()
        .filter(|a| !a.is_empty() && a.len() <= 20)
        .ok_or_else(|| bad("thresholds", msg))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let x = item
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0 && *x <= MAX_PCT)
            .ok_or_else(|| bad("thresholds", msg))?;
        out.push(x);
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Ok(out)
}

fn validate(m: &Obj) -> Result<Obj, ApiError> {
    let name = name(m)?;
    let scope = scope(m, &ScopeKind::ALL)?;
    let period = one_of(m, "period", &["day", "week", "month"], None)?;
    let limit = opt_positive(m, "limit_usd", MAX_USD)?
        .ok_or_else(|| bad("limit_usd", "required: a number above 0"))?;
    let thresholds = thresholds(m)?;
    let pause = opt_positive(m, "pause_at_pct", MAX_PCT)?;
    let channels = channel_ids(m)?;
    let mut out = Obj::new();
    out.insert("name".into(), name.into());
    put_scope(&mut out, &scope);
    out.insert("period".into(), period.into());
    out.insert("limit_usd".into(), limit.into());
    out.insert("thresholds".into(), json!(thresholds));
    out.insert("pause_at_pct".into(), json!(pause));
    out.insert("channels".into(), json!(channels));
    Ok(out)
}

type BudgetRow = (
    uuid::Uuid,
    String,
    String,
    Option<String>,
    String,
    f64,
    Vec<f64>,
    Option<f64>,
);

/// `GET /v1/budgets/status`: every budget with its current period and the
/// spend so far (read scope).
pub(crate) async fn status(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, KeyScope::Read).await?;
    let rows: Vec<BudgetRow> = sqlx::query_as(
        "SELECT id, name, scope_kind, scope_value, period, limit_usd, thresholds, pause_at_pct
         FROM budgets WHERE org_id = $1 ORDER BY name",
    )
    .bind(&key.org_id)
    .fetch_all(&s.pool)
    .await?;
    let now = Utc::now();
    let mut conn = s.pool.acquire().await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, name, kind, value, period, limit, thresholds, pause) in rows {
        // Rows were validated on the way in; the table's checks agree.
        let (Ok(scope), Ok(period)) = (
            Scope::parse(&kind, value.as_deref()),
            period.parse::<Period>(),
        ) else {
            tracing::warn!(%id, "budget with an invalid scope or period skipped");
            continue;
        };
        let (start, end) = (period_start(period, now), period_end(period, now));
        // The processors' crossing check reads the same function.
        let spent = agentops_runtime::governance::spend_in_scope(
            &mut conn,
            &key.org_id,
            &scope,
            start,
            Some(end),
        )
        .await?;
        let pct = spent / limit * 100.0;
        let crossed: Vec<f64> = thresholds.iter().copied().filter(|t| pct >= *t).collect();
        out.push(json!({
            "id": id, "name": name,
            "scope_kind": kind, "scope_value": value, "scope_key": scope.scope_key(),
            "period": period.as_str(), "period_key": period_key(period, now),
            "period_start": start, "period_end": end,
            "limit_usd": limit, "spend_usd": spent, "percent": pct,
            "remaining_usd": (limit - spent).max(0.0),
            "thresholds": thresholds, "thresholds_crossed": crossed,
            "pause_at_pct": pause, "pause_reached": pause.is_some_and(|p| pct >= p),
        }));
    }
    Ok(Json(json!({"as_of": now, "budgets": out})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::fields::field_error as field;

    fn v(body: Value) -> Result<Obj, ApiError> {
        validate(body.as_object().unwrap())
    }

    #[test]
    fn budgets_normalize() {
        let b = v(json!({"name": "org daily", "period": "day", "limit_usd": 50})).unwrap();
        assert_eq!(b["scope_kind"], json!("org"));
        assert_eq!(b["scope_value"], Value::Null);
        assert_eq!(b["thresholds"], json!([80.0, 100.0]));
        assert_eq!(b["pause_at_pct"], Value::Null);
        assert_eq!(b["channels"], json!([]));
        assert_eq!(b.len(), BUDGETS.fields.len());
        let b = v(
            json!({"name": "pay", "scope_kind": "tag", "scope_value": "team=pay",
                         "period": "month", "limit_usd": 1000.5,
                         "thresholds": [100, 50, 100, 120.5], "pause_at_pct": 150}),
        )
        .unwrap();
        assert_eq!(b["thresholds"], json!([50.0, 100.0, 120.5]));
        assert_eq!(b["pause_at_pct"], json!(150.0));
    }

    #[test]
    fn bad_budgets_name_their_field() {
        let ok = json!({"name": "b", "period": "week", "limit_usd": 5});
        let with = |k: &str, val: Value| {
            let mut b = ok.clone();
            b[k] = val;
            v(b)
        };
        assert!(v(ok.clone()).is_ok());
        assert_eq!(field(with("period", json!("year"))), "period");
        assert_eq!(field(with("limit_usd", json!(0))), "limit_usd");
        assert_eq!(field(with("limit_usd", json!(-3))), "limit_usd");
        assert_eq!(field(with("limit_usd", json!("5"))), "limit_usd");
        assert_eq!(field(with("limit_usd", Value::Null)), "limit_usd");
        assert_eq!(field(with("thresholds", json!([]))), "thresholds");
        assert_eq!(field(with("thresholds", json!([0]))), "thresholds");
        assert_eq!(field(with("thresholds", json!([1001]))), "thresholds");
        assert_eq!(field(with("thresholds", json!(80))), "thresholds");
        assert_eq!(field(with("pause_at_pct", json!(0))), "pause_at_pct");
        assert_eq!(field(with("channels", json!(["x"]))), "channels");
        assert_eq!(field(with("scope_kind", json!("tag"))), "scope_value");
        assert_eq!(field(with("scope_value", json!("a1"))), "scope_value");
        assert_eq!(field(with("name", json!(""))), "name");
    }
}
