//! `GET /v1/metrics/top`: the largest agents, workflows or models of the
//! window by cost or by runs, each with its runs, failures, cost and run
//! latency p50/p95 (the overview's "top agents" panels and the cost
//! explorer). Read from the aggregates through the same window split as the
//! overview (minutes, then hours, then days), so the figures add up to it.
//!
//! Parameters: `by` = `cost` (default) | `runs`; `group` = `agent`
//! (default) | `workflow` | `model`; `window` like `24h` (at most 90 days);
//! `limit` 1–100 (default 10). Rows without the dimension (a run with no
//! workflow) are left out.

use agentops_runtime::keys::Scope;
use agentops_runtime::storage;
use agentops_schemas::histogram;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::aggs::{hist_columns, window_rows, Levels};
use crate::error::ApiError;
use crate::params::{limit_param, Query};
use crate::routes::{Access, Routes};
use crate::state::{authenticate, Shared};
use crate::window::parse_secs;

pub(crate) fn routes() -> Routes {
    Routes::new().add("/v1/metrics/top", &[(Method::GET, Access::Read)], get(top))
}

#[derive(Deserialize)]
pub(crate) struct TopQuery {
    by: Option<String>,
    group: Option<String>,
    window: Option<String>,
    limit: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    key: String,
    runs: i64,
    failed: i64,
    cost_usd: f64,
    histogram: Vec<i64>,
}

fn one_of<'a>(
    raw: Option<&'a str>,
    field: &'static str,
    options: &[&'a str],
) -> Result<&'a str, ApiError> {
    let v = raw.unwrap_or(options[0]);
    options
        .iter()
        .find(|o| **o == v)
        .copied()
        .ok_or_else(|| ApiError::BadParam {
            field,
            message: format!("`{v}` is not one of {}", options.join(", ")),
        })
}

async fn top(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<TopQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let by = one_of(q.by.as_deref(), "by", &["cost", "runs"])?;
    let group = one_of(q.group.as_deref(), "group", &["agent", "workflow", "model"])?;
    let window = q.window.as_deref().unwrap_or("24h");
    let secs = parse_secs(window).ok_or_else(|| ApiError::BadParam {
        field: "window",
        message: format!("`{window}` is not a duration like 15m, 24h or 7d (at most 90d)"),
    })?;
    let limit = limit_param(q.limit.as_deref(), 10, 100)?;
    // Fixed column names (not the parameter): nothing user-given reaches the SQL text.
    let column = match group {
        "workflow" => "workflow_id",
        "model" => "model",
        _ => "agent_id",
    };
    let order = if by == "runs" { "runs" } else { "cost_usd" };
    let sql = format!(
        "SELECT {column} AS key,
                COALESCE(sum(runs_completed + runs_failed), 0)::int8 AS runs,
                COALESCE(sum(runs_failed), 0)::int8 AS failed,
                COALESCE(sum(cost_usd), 0)::float8 AS cost_usd, {hist} AS histogram
         FROM ({rows}) a WHERE {column} IS NOT NULL AND {column} <> ''
         GROUP BY {column} ORDER BY {order} DESC, key LIMIT $5",
        hist = storage::merged_histogram_sql(),
        rows = window_rows(&format!(
            "{column}, runs_completed, runs_failed, cost_usd, {}",
            hist_columns()
        )),
    );
    let now = Utc::now();
    let levels = Levels::new(now - chrono::Duration::seconds(secs), now);
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(&key.org_id)
        .bind(levels.start)
        .bind(levels.hours)
        .bind(levels.days)
        .bind(limit)
        .fetch_all(&s.pool)
        .await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                group: r.key, "runs": r.runs, "failed": r.failed, "cost_usd": r.cost_usd,
                "latency_ms": {
                    "p50": histogram::quantile(&r.histogram, 0.50),
                    "p95": histogram::quantile(&r.histogram, 0.95),
                },
            })
        })
        .collect();
    Ok(Json(
        json!({"window": window, "by": by, "group": group, "top": items}),
    ))
}
