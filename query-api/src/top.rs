//! `GET /v1/metrics/top`: the largest agents, workflows or models of the
//! window by cost or by runs, each with its runs, failures, cost and run
//! latency p50/p95 (the overview's "top agents" panels and the cost
//! explorer). Read from the aggregates through the same window split as the
//! overview (minutes, then hours, then days), over whole hours or days for
//! long windows (`aggs::breakdown_bound`), so the figures add up to the
//! overview of that window.
//!
//! Parameters: `by` = `cost` (default) | `runs`; `group` = `agent`
//! (default) | `workflow` | `model`; `window` like `24h` (at most 90 days);
//! `limit` 1–100 (default 10). Rows without the dimension (a run with no
//! workflow) are left out.

use std::collections::HashMap;

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
use utoipa::{IntoParams, ToSchema};

use crate::aggs::{breakdown_bound, hist_columns, span_rows, Span};
use crate::error::ApiError;
use crate::params::{limit_param, Query};
use crate::routes::{Access, Routes};
use crate::state::{authenticate, Shared};
use crate::window::parse_secs;

pub(crate) fn routes() -> Routes {
    Routes::new().add("/v1/metrics/top", &[(Method::GET, Access::Read)], get(top))
}

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(top), components(schemas(TopBy, TopGroup)))]
pub(crate) struct Doc;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TopQuery {
    /// Order by spend or by finished runs (default `cost`).
    #[param(value_type = Option<TopBy>)]
    by: Option<String>,
    /// What a row is (default `agent`); it also names the row's key field.
    #[param(value_type = Option<TopGroup>)]
    group: Option<String>,
    /// A duration like `15m`, `24h` or `7d` (at most `90d`; default `24h`).
    #[param(pattern = "^[0-9]+[smhd]$", example = "24h")]
    window: Option<String>,
    /// Rows, 1 to 100 (default 10).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// `by=`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
enum TopBy {
    Cost,
    Runs,
}

/// `group=`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
enum TopGroup {
    Agent,
    Workflow,
    Model,
}

/// `GET /v1/metrics/top`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `top`.
struct Top {
    window: String,
    by: String,
    group: String,
    top: Vec<TopRow>,
}

/// One row; its key is named after `group` (`agent`, `workflow` or `model`).
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `top`.
struct TopRow {
    /// Present when `group=agent`.
    agent: Option<String>,
    /// Present when `group=workflow`.
    workflow: Option<String>,
    /// Present when `group=model`.
    model: Option<String>,
    runs: i64,
    failed: i64,
    cost_usd: f64,
    latency_ms: TopLatency,
}

/// Run latency quantiles (ms); null without finished runs.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `top`.
struct TopLatency {
    p50: Option<f64>,
    p95: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    key: String,
    runs: i64,
    failed: i64,
    cost_usd: f64,
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

/// The largest agents, workflows or models of the window.
#[utoipa::path(get, path = "/v1/metrics/top", tag = "metrics", params(TopQuery),
    responses((status = 200, description = "Largest first", body = Top)))]
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
    // The level keyed by that column alone (a row per key and hour or day).
    let family = storage::family_for(&[column]);
    // Two passes: rank every key on narrow sums, then merge the 80
    // histogram columns of the chosen few only.
    let rank = format!(
        "SELECT {column} AS key,
                COALESCE(sum(runs_completed + runs_failed), 0)::int8 AS runs,
                COALESCE(sum(runs_failed), 0)::int8 AS failed,
                COALESCE(sum(cost_usd), 0)::float8 AS cost_usd
         FROM ({rows}) a WHERE {column} IS NOT NULL AND {column} <> ''
         GROUP BY {column} ORDER BY {order} DESC, key LIMIT $8",
        rows = span_rows(
            family,
            &format!("{column}, runs_completed, runs_failed, cost_usd")
        ),
    );
    let hists = format!(
        "SELECT {column} AS key, {hist} AS histogram FROM ({rows}) a
         WHERE {column} = ANY($8) GROUP BY {column}",
        hist = storage::merged_histogram_sql(),
        rows = span_rows(family, &format!("{column}, {}", hist_columns())),
    );
    let now = Utc::now();
    let span = chrono::Duration::seconds(secs);
    let bounds = Span::new(breakdown_bound(now - span, span), None, now).0;
    let mut q = sqlx::query_as(&rank).bind(&key.org_id);
    for b in bounds {
        q = q.bind(b);
    }
    let rows: Vec<Row> = q.bind(limit).fetch_all(&s.pool).await?;
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    let mut by_key: HashMap<String, Vec<i64>> = if keys.is_empty() {
        HashMap::new()
    } else {
        let mut q = sqlx::query_as::<_, (String, Vec<i64>)>(&hists).bind(&key.org_id);
        for b in bounds {
            q = q.bind(b);
        }
        q.bind(&keys)
            .fetch_all(&s.pool)
            .await?
            .into_iter()
            .collect()
    };
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let h = by_key.remove(&r.key).unwrap_or_default();
            json!({
                group: r.key, "runs": r.runs, "failed": r.failed, "cost_usd": r.cost_usd,
                "latency_ms": {
                    "p50": histogram::quantile(&h, 0.50),
                    "p95": histogram::quantile(&h, 0.95),
                },
            })
        })
        .collect();
    Ok(Json(
        json!({"window": window, "by": by, "group": group, "top": items}),
    ))
}
