//! HTTP handlers of the query API. Every query is scoped to the key's org.

use std::collections::HashMap;
use std::sync::Arc;

use crate::params::{limit_param, Query};
use crate::routes::{Access, Routes};
use crate::state::{authenticate, AppState, Shared};
use agentops_runtime::keys::Scope;
use agentops_schemas::histogram;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::Method;
use axum::response::Html;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::aggs::{overview_totals, Totals};
use crate::error::ApiError;
use crate::window::parse_secs;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    routes()
        .into_parts()
        .0
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::csrf_guard,
        ))
        .with_state(state)
}

/// Every route with its access (see [`crate::routes`]).
pub(crate) fn routes() -> Routes {
    use Access::*;
    Routes::new()
        .add("/", &[(Method::GET, Public)], get(dashboard))
        .add(
            "/v1/metrics/overview",
            &[(Method::GET, Read)],
            get(overview),
        )
        .add(
            "/v1/metrics/timeseries",
            &[(Method::GET, Read)],
            get(timeseries),
        )
        .add(
            "/v1/failures/recent",
            &[(Method::GET, Read)],
            get(recent_failures),
        )
        .add("/v1/runs/{run_id}", &[(Method::GET, Read)], get(run_detail))
        .add(
            "/v1/agents",
            &[(Method::GET, Read)],
            get(crate::agents::list),
        )
        .add("/v1/admin/budget", &[(Method::PUT, Admin)], put(put_budget))
        .merge(crate::console::routes())
        .merge(crate::top::routes())
        .merge(crate::runs::routes())
        .merge(crate::cost::routes())
        .merge(crate::agents::routes())
        .merge(crate::hierarchy::routes())
        .merge(crate::auth::routes())
        .merge(crate::people::routes())
        .merge(crate::governance::routes())
        .merge(crate::tenancy::routes())
        .merge(crate::prices::routes())
        .merge(crate::live::routes())
        .merge(crate::openapi::routes())
}

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(overview, timeseries, recent_failures, run_detail, put_budget),
    components(schemas(SeriesMetric))
)]
pub(crate) struct Doc;

/// `lat_b00, lat_b01, ...`
const DASHBOARD: &str = include_str!("../dashboard/index.html");

/// The dashboard page, under a content security policy that runs only its
/// own inline script.
async fn dashboard() -> axum::response::Response {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    use axum::response::IntoResponse;
    let csp = CSP.get_or_init(|| agentops_runtime::http::page_csp(DASHBOARD));
    (
        [(axum::http::header::CONTENT_SECURITY_POLICY, csp.as_str())],
        Html(DASHBOARD),
    )
        .into_response()
}

fn window_param(
    raw: Option<&str>,
    field: &'static str,
    default: &str,
) -> Result<(String, i64), ApiError> {
    let s = raw.unwrap_or(default);
    let secs = parse_secs(s).ok_or_else(|| ApiError::BadParam {
        field,
        message: format!("`{s}` is not a duration like 15m, 24h or 7d (at most 90d)"),
    })?;
    Ok((s.to_owned(), secs))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct OverviewQuery {
    /// A duration like `15m`, `24h` or `7d` (at most `90d`; default `24h`).
    #[param(pattern = "^[0-9]+[smhd]$", example = "24h")]
    window: Option<String>,
}

/// `GET /v1/metrics/overview`.
#[derive(Serialize, ToSchema)]
struct Overview {
    window: String,
    /// Finished runs (succeeded + failed).
    runs: i64,
    succeeded: i64,
    failed: i64,
    /// succeeded / runs; null without finished runs.
    success_rate: Option<f64>,
    cost_usd: f64,
    latency_ms: OverviewLatency,
    /// Errored events in the last hour (whatever the window).
    errors_last_hour: i64,
    active_agents: i64,
    events: i64,
}

/// Run latency quantiles (ms); null without finished runs.
#[derive(Serialize, ToSchema)]
struct OverviewLatency {
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

/// The window's KPIs: runs, success rate, spend, latency, errors, agents.
#[utoipa::path(get, path = "/v1/metrics/overview", tag = "metrics", params(OverviewQuery),
    responses((status = 200, description = "The window's totals", body = Overview)))]
async fn overview(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<OverviewQuery>,
) -> Result<Json<Overview>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let (window, secs) = window_param(q.window.as_deref(), "window", "24h")?;
    let now = Utc::now();
    let Totals {
        completed,
        failed,
        cost,
        events,
        agents,
        histogram: h,
        errors_last_hour,
    } = overview_totals(
        &s.pool,
        &key.org_id,
        now - chrono::Duration::seconds(secs),
        None,
    )
    .await?;
    let runs = completed + failed;
    Ok(Json(Overview {
        window,
        runs,
        succeeded: completed,
        failed,
        success_rate: (runs > 0).then(|| completed as f64 / runs as f64),
        cost_usd: cost,
        latency_ms: OverviewLatency {
            p50: histogram::quantile(&h, 0.50),
            p95: histogram::quantile(&h, 0.95),
            p99: histogram::quantile(&h, 0.99),
        },
        errors_last_hour,
        active_agents: agents,
        events,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SeriesQuery {
    /// What to count (default `runs`).
    #[param(value_type = Option<SeriesMetric>)]
    metric: Option<String>,
    /// Point width (default `1h`); at most 5000 points.
    #[param(value_type = Option<crate::openapi::reads::Bucket>)]
    bucket: Option<String>,
    /// A duration like `15m`, `24h` or `7d` (at most `90d`; default `24h`).
    #[param(pattern = "^[0-9]+[smhd]$", example = "24h")]
    window: Option<String>,
}

/// `metric=` of the time series.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
enum SeriesMetric {
    Runs,
    Errors,
    Cost,
    Events,
    LlmCalls,
}

/// `GET /v1/metrics/timeseries`.
#[derive(Serialize, ToSchema)]
struct Series {
    metric: String,
    bucket: String,
    window: String,
    /// One point per bucket from the window start to now (0 where empty).
    points: Vec<SeriesPoint>,
}

#[derive(Serialize, ToSchema)]
struct SeriesPoint {
    ts: DateTime<Utc>,
    value: f64,
}

/// A metric per time bucket over the window.
#[utoipa::path(get, path = "/v1/metrics/timeseries", tag = "metrics", params(SeriesQuery),
    responses((status = 200, description = "The series", body = Series)))]
async fn timeseries(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<Series>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let metric = q.metric.as_deref().unwrap_or("runs");
    let expr = match metric {
        "runs" => "runs_completed + runs_failed",
        "errors" => "errors",
        "cost" => "cost_usd",
        "events" => "events",
        "llm_calls" => "llm_calls",
        _ => {
            return Err(ApiError::BadParam {
                field: "metric",
                message: format!("`{metric}` is not one of runs, errors, cost, events, llm_calls"),
            })
        }
    };
    let (window, secs) = window_param(q.window.as_deref(), "window", "24h")?;
    let bucket = q.bucket.as_deref().unwrap_or("1h");
    let (bucket_secs, relation) = match bucket {
        "1m" | "5m" | "15m" => (parse_secs(bucket).unwrap_or(60), "agg_org_1m"),
        "1h" => (3600, "agg_org_1h"),
        "1d" => (86_400, "agg_org_1d"),
        _ => {
            return Err(ApiError::BadParam {
                field: "bucket",
                message: format!("`{bucket}` is not one of 1m, 5m, 15m, 1h, 1d"),
            })
        }
    };
    if secs / bucket_secs > 5000 {
        return Err(ApiError::BadParam {
            field: "bucket",
            message: "more than 5000 points; use a larger bucket".into(),
        });
    }
    crate::aggs::series_kept(bucket_secs, secs)?;
    let sql = format!(
        "WITH s AS (
            SELECT generate_series($2::timestamptz, now(), $3 * interval '1 second') AS ts
         ), a AS (
            SELECT date_bin($3 * interval '1 second', bucket, TIMESTAMPTZ '2000-01-01') AS ts,
                   sum({expr})::float8 AS v
            FROM {relation}
            WHERE org_id = $1 AND bucket >= $2
            GROUP BY 1
         )
         SELECT s.ts, COALESCE(a.v, 0)::float8 AS value FROM s LEFT JOIN a USING (ts) ORDER BY s.ts"
    );
    #[derive(sqlx::FromRow)]
    struct Point {
        ts: DateTime<Utc>,
        value: f64,
    }
    // First point: the window start floored to the step (steps divide a day,
    // so flooring on the Unix epoch is flooring on any UTC day). A bound
    // parameter, not a subquery, so the planner uses the (org, bucket) index.
    let from = Utc::now().timestamp() - secs;
    let first =
        DateTime::from_timestamp(from - from.rem_euclid(bucket_secs), 0).unwrap_or_default();
    let rows: Vec<Point> = sqlx::query_as(&sql)
        .bind(&key.org_id)
        .bind(first)
        .bind(bucket_secs)
        .fetch_all(&s.pool)
        .await?;
    let points = rows
        .into_iter()
        .map(|p| SeriesPoint {
            ts: p.ts,
            value: p.value,
        })
        .collect();
    Ok(Json(Series {
        metric: metric.to_owned(),
        bucket: bucket.to_owned(),
        window,
        points,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FailuresQuery {
    /// Rows, 1 to 500 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

/// `GET /v1/failures/recent`.
#[derive(Serialize, ToSchema)]
struct Failures {
    failures: Vec<Failure>,
}

/// A failed run's failing event (its `run_failed` when present), or an
/// errored event outside a run.
#[derive(Serialize, ToSchema)]
struct Failure {
    event_id: uuid::Uuid,
    timestamp: DateTime<Utc>,
    agent_id: String,
    workflow_id: Option<String>,
    run_id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    error_type: Option<String>,
    error_message: Option<String>,
    model: Option<String>,
}

/// One row of the failures query in [`recent_failures`].
#[derive(sqlx::FromRow)]
struct FailureRow {
    event_id: uuid::Uuid,
    ts: DateTime<Utc>,
    agent_id: String,
    workflow_id: Option<String>,
    run_id: Option<String>,
    #[sqlx(rename = "type")]
    event_type: String,
    error_type: Option<String>,
    error_message: Option<String>,
    model: Option<String>,
}

/// The newest failures, one per run.
#[utoipa::path(get, path = "/v1/failures/recent", tag = "runs", params(FailuresQuery),
    responses((status = 200, description = "Newest first", body = Failures)))]
async fn recent_failures(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<FailuresQuery>,
) -> Result<Json<Failures>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let limit = limit_param(q.limit.as_deref(), 20, 500)?;
    // Newest errored events; a failed run often has an errored call before its
    // run_failed event, so look a little further and keep one row per run.
    let rows: Vec<FailureRow> = sqlx::query_as(
        "SELECT event_id, ts, agent_id, workflow_id, run_id, type, error_type, error_message, model
         FROM events
         WHERE org_id = $1 AND (type = 'run_failed' OR status IN ('error', 'failed'))
         ORDER BY ts DESC LIMIT $2",
    )
    .bind(&key.org_id)
    .bind(limit * 4)
    .fetch_all(&s.pool)
    .await?;
    let failures = one_per_run(rows, limit as usize)
        .into_iter()
        .map(|r| Failure {
            event_id: r.event_id,
            timestamp: r.ts,
            agent_id: r.agent_id,
            workflow_id: r.workflow_id,
            run_id: r.run_id,
            event_type: r.event_type,
            error_type: r.error_type,
            error_message: r.error_message,
            model: r.model,
        })
        .collect();
    Ok(Json(Failures { failures }))
}

/// Keep one failure per run (its `run_failed` event when present), newest first.
fn one_per_run(rows: Vec<FailureRow>, limit: usize) -> Vec<FailureRow> {
    let mut out: Vec<FailureRow> = Vec::new();
    let mut by_run: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let Some(run) = row.run_id.clone() else {
            out.push(row);
            continue;
        };
        match by_run.get(&run) {
            Some(&i) if row.event_type == "run_failed" && out[i].event_type != "run_failed" => {
                out[i] = row
            }
            Some(_) => {}
            None => {
                by_run.insert(run, out.len());
                out.push(row);
            }
        }
    }
    out.truncate(limit);
    out
}

/// The run as [`run_detail`] answers it: every column, named as in the
/// answer (NULL as null).
#[derive(sqlx::FromRow, Serialize, ToSchema)]
struct RunRow {
    run_id: Option<String>,
    agent_id: Option<String>,
    workflow_id: Option<String>,
    status: Option<String>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    latency_ms: Option<i64>,
    event_count: Option<i64>,
    cost_usd: Option<f64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    llm_calls: Option<i64>,
    tool_calls: Option<i64>,
    error_type: Option<String>,
    error_message: Option<String>,
    /// The models and providers of its LLM calls, sorted.
    models: Option<Vec<String>>,
    providers: Option<Vec<String>>,
    /// Its events' attributes, merged (at most 32).
    #[schema(value_type = Option<Object>)]
    tags: Option<sqlx::types::Json<serde_json::Value>>,
}

/// The agent's control (pause or kill) as the run page shows it.
#[derive(sqlx::FromRow, Serialize, ToSchema)]
struct ControlRow {
    action: String,
    reason: String,
    set_by: String,
    set_at: DateTime<Utc>,
}

/// One event of a run's timeline (a row of `events`).
#[derive(Serialize, ToSchema, sqlx::FromRow)]
struct TimelineEvent {
    event_id: uuid::Uuid,
    #[sqlx(rename = "ts")]
    timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    event_type: String,
    model: Option<String>,
    latency_ms: Option<i64>,
    cost_usd: Option<f64>,
    cost_source: Option<String>,
    tool_name: Option<String>,
    provider: Option<String>,
    status: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    error_type: Option<String>,
    error_message: Option<String>,
}

/// The run's columns, the agent's control, then its timeline.
#[derive(Serialize, ToSchema)]
struct RunDetail {
    #[serde(flatten)]
    run: RunRow,
    /// The agent's directive (what the gateway answers its next event with).
    control: Option<ControlRow>,
    /// Its events, oldest first (at most 1000).
    events: Vec<TimelineEvent>,
}

/// A run with its totals and event timeline.
#[utoipa::path(get, path = "/v1/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, description = "The run's id (1 to 256 bytes)")),
    responses((status = 200, description = "The run", body = RunDetail)))]
async fn run_detail(
    State(s): Shared,
    headers: HeaderMap,
    Path(run_id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let run_id = crate::params::identifier("run_id", &run_id)?.to_owned();
    let run: RunRow = sqlx::query_as(
        "SELECT run_id, agent_id, workflow_id, status, started_at, ended_at, latency_ms, events AS event_count,
                cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                reasoning_tokens, llm_calls, tool_calls, error_type, error_message,
                models, providers, tags
         FROM runs WHERE org_id = $1 AND run_id = $2",
    )
    .bind(&key.org_id)
    .bind(&run_id)
    .fetch_optional(&s.pool)
    .await?
    .ok_or(ApiError::NotFound)?;
    let events: Vec<TimelineEvent> = sqlx::query_as(
        "SELECT event_id, ts, type, model, latency_ms, cost_usd, tool_name, cost_source, provider,
                status, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                reasoning_tokens, error_type, error_message FROM events
             WHERE org_id = $1 AND run_id = $2 ORDER BY ts LIMIT 1000",
    )
    .bind(&key.org_id)
    .bind(&run_id)
    .fetch_all(&s.pool)
    .await?;
    // The agent's directive: what the gateway answers its next event with.
    let control: Option<ControlRow> = sqlx::query_as(
        "SELECT action, reason, set_by, set_at FROM agent_controls
         WHERE org_id = $1 AND agent_id = $2",
    )
    .bind(&key.org_id)
    .bind(&run.agent_id)
    .fetch_optional(&s.pool)
    .await?;
    Ok(Json(RunDetail {
        run,
        control,
        events,
    }))
}

/// `PUT /v1/admin/budget` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct LegacyBudgetBody {
    /// The org's daily limit in USD, at least 0.0001.
    #[schema(minimum = 0.0001, maximum = 1e12)]
    daily_usd: f64,
    /// A Slack-compatible webhook for its alerts (a public destination).
    #[schema(pattern = "^https?://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,}(/[A-Za-z0-9._~-]*)*$")]
    webhook_url: Option<String>,
}

/// `PUT /v1/admin/budget` answer.
#[derive(Serialize, ToSchema)]
struct LegacyBudget {
    org_id: String,
    daily_usd: f64,
    webhook_url: Option<String>,
}

/// `PUT /v1/admin/budget` `{daily_usd, webhook_url?}`: the MVP's one-call
/// budget, written through the budgets and channels CRUD path (validated,
/// capped, audited).
#[utoipa::path(put, path = "/v1/admin/budget", tag = "governance",
    request_body = LegacyBudgetBody,
    responses((status = 200, description = "The org's daily budget", body = LegacyBudget),
              (status = 409, description = "A cap is reached", body = agentops_runtime::openapi::ErrorBody)))]
async fn put_budget(
    State(s): Shared,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<LegacyBudget>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let m = crate::governance::fields::parse_body(&body, &["daily_usd", "webhook_url"])?;
    let daily = crate::governance::fields::opt_f64(&m, "daily_usd")?.ok_or(ApiError::BadField {
        field: "daily_usd",
        message: "required: a number above 0".into(),
    })?;
    let webhook = crate::governance::fields::opt_str(&m, "webhook_url")?;
    let who = crate::governance::crud::Writer {
        org_id: &key.org_id,
        actor: &crate::governance::actor(&key),
        caps: &s.caps,
    };
    crate::admin::set_budget_as(&s.pool, &who, daily, webhook).await?;
    Ok(Json(LegacyBudget {
        org_id: key.org_id,
        daily_usd: daily,
        webhook_url: webhook.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: Option<&str>, ty: &str, secs: i64) -> FailureRow {
        let ts = DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap();
        FailureRow {
            event_id: uuid::Uuid::new_v4(),
            ts,
            agent_id: "a".into(),
            workflow_id: None,
            run_id: run.map(Into::into),
            event_type: ty.into(),
            error_type: None,
            error_message: None,
            model: None,
        }
    }

    #[test]
    fn one_row_per_run_preferring_run_failed() {
        // Newest first, as the query returns them.
        let rows = vec![
            row(Some("r1"), "llm_call", 10),
            row(Some("r1"), "run_failed", 9),
            row(None, "tool_call", 8),
            row(Some("r2"), "run_failed", 7),
            row(Some("r2"), "tool_call", 6),
        ];
        let out = one_per_run(rows, 10);
        let got: Vec<(Option<String>, String)> = out
            .iter()
            .map(|r| (r.run_id.clone(), r.event_type.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("r1".into()), "run_failed".into()),
                (None, "tool_call".into()),
                (Some("r2".into()), "run_failed".into()),
            ]
        );
        assert_eq!(
            one_per_run(vec![row(None, "x", 1), row(None, "y", 0)], 1).len(),
            1
        );
    }
}
