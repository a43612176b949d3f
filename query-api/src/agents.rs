//! `GET /v1/agents`: the org's agents with status and today's totals.
//!
//! Status: `killed` / `paused` when an agent control says so, else `active`
//! when the agent was seen (event time) in the last five minutes, else `idle`.
//! Totals are for the current UTC day (zero when the agent was last seen on
//! an earlier day).

use crate::params::Query;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::params::limit_param;
use crate::state::{authenticate, Shared};
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
