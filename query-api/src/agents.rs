//! `GET /v1/agents`: the org's agents with status and today's totals.
//!
//! Status: `killed` / `paused` when an agent control says so, else `active`
//! when the agent was seen (event time) in the last five minutes, else `idle`.
//! Totals are for the current UTC day (zero when the agent was last seen on
//! an earlier day).
//!
//! `GET /v1/agents/{agent_id}?window=24h` ([`detail`]): the agent page:
//! status, heartbeat and control (who paused or killed it, why); the
//! window's runs, failures, cost, LLM calls and run latency p50/p95 (read
//! through the overview's window split), the same per hour (per day past two
//! days); the models it used (calls, cost) and its workflows; its 10 latest
//! runs and 10 latest failed runs (by start); the budgets that cover it
//! (entries of `GET /v1/budgets/status` whose scope is the org, the agent,
//! or a workflow, model or tag of its runs in the window); its 10 latest
//! policy violations.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::params::Query;
use agentops_runtime::storage;
use agentops_schemas::histogram;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::aggs::{hist_columns, span_rows, Span};
use crate::error::ApiError;
use crate::params::limit_param;
use crate::routes::{Access, Routes};
use crate::runs::{RunOut, RUN_COLUMNS};
use crate::state::{authenticate, Shared};
use crate::window::parse_secs;
use agentops_runtime::keys::Scope;

#[derive(Deserialize)]
pub(crate) struct AgentsQuery {
    limit: Option<String>,
}

/// One row of the agents query in [`list`].
#[derive(sqlx::FromRow)]
struct AgentRow {
    agent_id: String,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    last_heartbeat: Option<DateTime<Utc>>,
    heartbeat_status: Option<String>,
    status: String,
    status_reason: Option<String>,
    events: i64,
    runs: i64,
    failures: i64,
    tokens: i64,
    cost: f64,
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(crate::openapi::reads::AgentsQuery),
    responses((status = 200, description = "Most recently seen first", body = crate::openapi::reads::Agents)))]
pub(crate) async fn list(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<AgentsQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let limit = limit_param(q.limit.as_deref(), 100, 1000)?;
    let rows: Vec<AgentRow> = sqlx::query_as(
        "SELECT a.agent_id, a.first_seen, a.last_seen, a.last_heartbeat, a.heartbeat_status,
                CASE c.action WHEN 'kill' THEN 'killed' WHEN 'pause' THEN 'paused'
                     ELSE CASE WHEN a.last_seen >= now() - interval '5 minutes'
                               THEN 'active' ELSE 'idle' END END AS status,
                c.reason AS status_reason,
                t.events, t.runs, t.failures, t.tokens, t.cost
         FROM agents a
         LEFT JOIN agent_controls c ON c.org_id = a.org_id AND c.agent_id = a.agent_id
         CROSS JOIN LATERAL (
             SELECT CASE WHEN a.day = (now() AT TIME ZONE 'UTC')::date THEN 1 ELSE 0 END AS today
         ) d
         CROSS JOIN LATERAL (
             SELECT a.events_day * d.today AS events, a.runs_day * d.today AS runs,
                    a.failures_day * d.today AS failures, a.tokens_day * d.today AS tokens,
                    a.cost_day * d.today AS cost
         ) t
         WHERE a.org_id = $1
         ORDER BY a.last_seen DESC, a.agent_id
         LIMIT $2",
    )
    .bind(&key.org_id)
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    let agents: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "agent_id": r.agent_id, "status": r.status, "status_reason": r.status_reason,
                "first_seen": r.first_seen, "last_seen": r.last_seen,
                "last_heartbeat": r.last_heartbeat, "heartbeat_status": r.heartbeat_status,
                "today": {"events": r.events, "runs": r.runs, "failures": r.failures,
                          "tokens": r.tokens, "cost_usd": r.cost},
            })
        })
        .collect();
    Ok(Json(json!({ "agents": agents })))
}

/// The routes of this module beyond the list (registered in `api`).
/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, detail))]
pub(crate) struct Doc;

pub(crate) fn routes() -> Routes {
    Routes::new().add(
        "/v1/agents/{agent_id}",
        &[(Method::GET, Access::Read)],
        get(detail),
    )
}

#[derive(Deserialize)]
pub(crate) struct DetailQuery {
    window: Option<String>,
}

/// The agent's row and control (None: neither seen nor controlled).
#[derive(sqlx::FromRow)]
struct AgentHead {
    first_seen: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    last_heartbeat: Option<DateTime<Utc>>,
    heartbeat_status: Option<String>,
    status: String,
    control_action: Option<String>,
    control_reason: Option<String>,
    control_by: Option<String>,
    control_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct DetailTotals {
    runs: i64,
    failed: i64,
    cost_usd: f64,
    llm_calls: i64,
    histogram: Vec<i64>,
}

#[derive(sqlx::FromRow)]
struct ModelRow {
    provider: Option<String>,
    model: Option<String>,
    workflow_id: Option<String>,
    llm_calls: i64,
    cost_usd: f64,
}

#[derive(sqlx::FromRow)]
struct SeriesRow {
    ts: DateTime<Utc>,
    runs: i64,
    failed: i64,
    cost_usd: f64,
}

/// `GET /v1/agents/{agent_id}?window=24h`: the agent page (see the README).
/// An agent neither seen in this org nor controlled in it answers 404.
#[utoipa::path(get, path = "/v1/agents/{agent_id}", tag = "agents",
    params(("agent_id" = String, Path, description = "The agent's id"), crate::openapi::reads::WindowQuery),
    responses((status = 200, description = "The agent", body = crate::openapi::reads::AgentDetail)))]
async fn detail(
    State(s): Shared,
    headers: HeaderMap,
    Path(agent): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let agent = crate::params::identifier("agent_id", &agent)?.to_owned();
    let window = q.window.as_deref().unwrap_or("24h");
    let secs = parse_secs(window).ok_or_else(|| ApiError::BadParam {
        field: "window",
        message: format!("`{window}` is not a duration like 15m, 24h or 7d (at most 90d)"),
    })?;
    let org = key.org_id.as_str();
    let head: AgentHead = sqlx::query_as(
        "SELECT a.first_seen, a.last_seen, a.last_heartbeat, a.heartbeat_status,
                CASE c.action WHEN 'kill' THEN 'killed' WHEN 'pause' THEN 'paused'
                     ELSE CASE WHEN a.last_seen >= now() - interval '5 minutes'
                               THEN 'active' ELSE 'idle' END END AS status,
                c.action AS control_action, c.reason AS control_reason,
                c.set_by AS control_by, c.set_at AS control_at
         FROM (SELECT $1::text AS org_id, $2::text AS agent_id) k
         LEFT JOIN agents a ON a.org_id = k.org_id AND a.agent_id = k.agent_id
         LEFT JOIN agent_controls c ON c.org_id = k.org_id AND c.agent_id = k.agent_id
         WHERE a.agent_id IS NOT NULL OR c.agent_id IS NOT NULL",
    )
    .bind(org)
    .bind(&agent)
    .fetch_optional(&s.pool)
    .await?
    .ok_or(ApiError::NotFound)?;

    let now = Utc::now();
    let start = now - chrono::Duration::seconds(secs);
    let span = Span::new(start, None, now);
    let tq_sql = format!(
        "SELECT COALESCE(sum(runs_completed + runs_failed), 0)::int8 AS runs,
                COALESCE(sum(runs_failed), 0)::int8 AS failed,
                COALESCE(sum(cost_usd), 0)::float8 AS cost_usd,
                COALESCE(sum(llm_calls), 0)::int8 AS llm_calls, {hist} AS histogram
         FROM ({rows}) a WHERE agent_id = $8",
        hist = storage::merged_histogram_sql(),
        rows = span_rows(
            "agg_agent",
            &format!(
                "agent_id, runs_completed, runs_failed, cost_usd, llm_calls, {}",
                hist_columns()
            )
        ),
    );
    let mut tq = sqlx::query_as(&tq_sql).bind(org);
    for b in span.0 {
        tq = tq.bind(b);
    }
    let t: DetailTotals = tq.bind(&agent).fetch_one(&s.pool).await?;

    let mq_sql = format!(
        "SELECT provider, model, workflow_id, COALESCE(sum(llm_calls), 0)::int8 AS llm_calls,
                COALESCE(sum(cost_usd), 0)::float8 AS cost_usd
         FROM ({}) a WHERE agent_id = $8
         GROUP BY provider, model, workflow_id ORDER BY cost_usd DESC LIMIT 1000",
        span_rows(
            "agg",
            "agent_id, provider, model, workflow_id, llm_calls, cost_usd"
        )
    );
    let mut mq = sqlx::query_as(&mq_sql).bind(org);
    for b in span.0 {
        mq = mq.bind(b);
    }
    let dims: Vec<ModelRow> = mq.bind(&agent).fetch_all(&s.pool).await?;
    let mut models: BTreeMap<(Option<String>, String), (i64, f64)> = BTreeMap::new();
    let mut workflows: BTreeSet<String> = BTreeSet::new();
    for d in &dims {
        if let Some(m) = d.model.clone().filter(|m| !m.is_empty()) {
            let e = models.entry((d.provider.clone(), m)).or_default();
            e.0 += d.llm_calls;
            e.1 += d.cost_usd;
        }
        if let Some(w) = d.workflow_id.clone().filter(|w| !w.is_empty()) {
            workflows.insert(w);
        }
    }
    let mut models: Vec<_> = models.into_iter().collect();
    models.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1).then_with(|| a.0.cmp(&b.0)));

    // Points: hours up to two days, days beyond (at most 90).
    let (bucket, relation, step) = if secs <= 2 * 86_400 {
        ("1h", "agg_agent_1h", 3600)
    } else {
        ("1d", "agg_agent_1d", 86_400)
    };
    let from = start.timestamp() - start.timestamp().rem_euclid(step);
    let series: Vec<SeriesRow> = sqlx::query_as(&format!(
        "SELECT bucket AS ts, COALESCE(sum(runs_completed + runs_failed), 0)::int8 AS runs,
                COALESCE(sum(runs_failed), 0)::int8 AS failed,
                COALESCE(sum(cost_usd), 0)::float8 AS cost_usd
         FROM {relation} WHERE org_id = $1 AND agent_id = $2 AND bucket >= $3
         GROUP BY bucket ORDER BY bucket"
    ))
    .bind(org)
    .bind(&agent)
    .bind(DateTime::from_timestamp(from, 0).unwrap_or(start))
    .fetch_all(&s.pool)
    .await?;

    let recent = |failed: bool| {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE org_id = $1 AND agent_id = $2 AND started_at IS NOT NULL {}
             ORDER BY started_at DESC, run_id DESC LIMIT 10",
            if failed { "AND status = 'failed'" } else { "" }
        );
        let (pool, agent) = (s.pool.clone(), agent.clone());
        async move {
            sqlx::query_as::<_, RunOut>(&sql)
                .bind(org)
                .bind(&agent)
                .fetch_all(&pool)
                .await
        }
    };
    let recent_runs = recent(false).await?;
    let recent_failures = recent(true).await?;

    // Tags of the agent's runs in the window: budgets of a tag scope cover it.
    let tags: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT t.key, t.value FROM (
             SELECT tags FROM runs WHERE org_id = $1 AND agent_id = $2 AND started_at >= $3
             ORDER BY started_at DESC LIMIT 1000) r, jsonb_each_text(r.tags) t
         LIMIT 1000",
    )
    .bind(org)
    .bind(&agent)
    .bind(start)
    .fetch_all(&s.pool)
    .await?;
    let mut scopes: HashSet<String> = HashSet::from(["org".to_owned(), format!("agent={agent}")]);
    scopes.extend(workflows.iter().map(|w| format!("workflow={w}")));
    scopes.extend(models.iter().map(|((_, m), _)| format!("model={m}")));
    scopes.extend(tags.iter().map(|(k, v)| format!("tag={k}={v}")));
    // The answer of `GET /v1/budgets/status`, kept to the scopes above.
    let all = crate::governance::budgets::status(State(s.clone()), headers.clone()).await?;
    let budgets: Vec<Value> = serde_json::to_value(all.0)
        .ok()
        .and_then(|v| v.get("budgets").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|b| b["scope_key"].as_str().is_some_and(|k| scopes.contains(k)))
        .collect();

    let violations: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('policy_id', v.policy_id, 'policy_name', p.name,
                    'policy_kind', p.kind, 'event_id', v.event_id, 'run_id', v.run_id,
                    'timestamp', v.ts, 'action', v.action, 'detail', v.detail)
         FROM policy_violations v
         LEFT JOIN policies p ON p.id = v.policy_id AND p.org_id = v.org_id
         WHERE v.org_id = $1 AND v.agent_id = $2
         ORDER BY v.ts DESC, v.event_id LIMIT 10",
    )
    .bind(org)
    .bind(&agent)
    .fetch_all(&s.pool)
    .await?;

    Ok(Json(json!({
        "agent_id": agent,
        "status": head.status,
        "first_seen": head.first_seen,
        "last_seen": head.last_seen,
        "last_heartbeat": head.last_heartbeat,
        "heartbeat_status": head.heartbeat_status,
        "control": head.control_action.map(|a| json!({
            "action": a, "reason": head.control_reason,
            "set_by": head.control_by, "set_at": head.control_at,
        })),
        "window": window,
        "totals": {
            "runs": t.runs, "failed": t.failed, "cost_usd": t.cost_usd,
            "llm_calls": t.llm_calls,
            "latency_ms": {
                "p50": histogram::quantile(&t.histogram, 0.50),
                "p95": histogram::quantile(&t.histogram, 0.95),
            },
        },
        "bucket": bucket,
        "series": series.iter().map(|p| json!({
            "ts": p.ts, "runs": p.runs, "failed": p.failed, "cost_usd": p.cost_usd,
        })).collect::<Vec<_>>(),
        "models": models.iter().map(|((p, m), (calls, cost))| json!({
            "provider": p, "model": m, "llm_calls": calls, "cost_usd": cost,
        })).collect::<Vec<_>>(),
        "workflows": workflows,
        "recent_runs": recent_runs,
        "recent_failures": recent_failures,
        "budgets": budgets,
        "violations": violations,
    })))
}
