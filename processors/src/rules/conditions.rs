//! Each rule kind's condition, evaluated against the projection store: the
//! scope keys where it holds now.

use agentops_governance::spend::{agg_filter, spend_in_scope};
use agentops_governance::{period_start, Condition, Period, RuleKind, ScopeKind};
use agentops_runtime::storage;
use agentops_schemas::histogram;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;

use super::Breach;
use crate::governance::Rule;

/// Most scope keys listed per rule and pass (agents, runs).
pub(super) const MAX_BREACHES: usize = 1000;

/// Where the rule's condition holds now, and whether that list is complete.
pub(super) async fn evaluate(
    conn: &mut PgConnection,
    rule: &Rule,
    now: DateTime<Utc>,
) -> Result<(Vec<Breach>, bool), sqlx::Error> {
    let breaches = match rule.condition {
        Condition::CostPerDay { usd } => cost_today(conn, rule, usd, now).await?,
        Condition::ErrorRate {
            ratio,
            window_secs,
            min_runs,
        } => {
            let w = run_window(conn, rule, window_secs, now).await?;
            w.error_rate(ratio, min_runs, window_secs, &rule.scope.scope_key())
        }
        Condition::LatencyP95 {
            ms,
            window_secs,
            min_runs,
        } => {
            let w = run_window(conn, rule, window_secs, now).await?;
            w.latency_p95(ms, min_runs, window_secs, &rule.scope.scope_key())
        }
        Condition::NoHeartbeat { minutes } => silent_agents(conn, rule, minutes, now).await?,
        Condition::StuckRun { minutes } => stuck_runs(conn, rule, minutes, now).await?,
    };
    let complete = breaches.len() < MAX_BREACHES;
    Ok((breaches, complete))
}

/// `cost_per_day`: spend in scope since UTC midnight, read like the budget
/// status.
pub(super) async fn cost_today(
    conn: &mut PgConnection,
    rule: &Rule,
    usd: f64,
    now: DateTime<Utc>,
) -> Result<Vec<Breach>, sqlx::Error> {
    let start = period_start(Period::Day, now);
    let cost = spend_in_scope(conn, &rule.org_id, &rule.scope, start, None).await?;
    let scope_key = rule.scope.scope_key();
    Ok((cost > usd)
        .then(|| Breach {
            value: cost,
            message: format!("Cost today for {scope_key} is ${cost:.2}, over ${usd:.2}"),
            details: json!({"unit": "usd", "since": start}),
            scope_key,
        })
        .into_iter()
        .collect())
}

/// Runs finished in a rule's window, from the minute aggregates.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RunWindow {
    completed: i64,
    failed: i64,
    /// Merged run-latency histogram.
    hist: Vec<i64>,
}

impl RunWindow {
    fn runs(&self) -> i64 {
        self.completed + self.failed
    }

    fn error_rate(&self, ratio: f64, min_runs: i32, win: i32, scope_key: &str) -> Vec<Breach> {
        let (runs, failed) = (self.runs(), self.failed);
        if runs < i64::from(min_runs.max(1)) {
            return Vec::new();
        }
        let rate = failed as f64 / runs as f64;
        (rate > ratio)
            .then(|| Breach {
                scope_key: scope_key.to_owned(),
                value: rate,
                message: format!(
                    "Error rate for {scope_key} is {:.0}% over the last {win}s ({failed} of {runs} runs failed), over {:.0}%",
                    rate * 100.0, ratio * 100.0
                ),
                details: json!({"unit": "ratio", "failed": failed, "runs": runs, "window_secs": win}),
            })
            .into_iter()
            .collect()
    }

    fn latency_p95(&self, ms: f64, min_runs: i32, win: i32, scope_key: &str) -> Vec<Breach> {
        let runs = self.runs();
        if runs < i64::from(min_runs.max(1)) {
            return Vec::new();
        }
        let p95 = histogram::quantile(&self.hist, 0.95).unwrap_or(0.0);
        (p95 > ms)
            .then(|| Breach {
                scope_key: scope_key.to_owned(),
                value: p95,
                message: format!(
                    "p95 run latency for {scope_key} is {p95:.0} ms over the last {win}s ({runs} runs), over {ms:.0} ms"
                ),
                details: json!({"unit": "ms", "runs": runs, "window_secs": win}),
            })
            .into_iter()
            .collect()
    }
}

/// `error_rate`, `latency_p95`: the runs of the last `window_secs`.
pub(super) async fn run_window(
    conn: &mut PgConnection,
    rule: &Rule,
    window_secs: i32,
    now: DateTime<Utc>,
) -> Result<RunWindow, sqlx::Error> {
    let Some((filter, v)) = agg_filter(&rule.scope, 3) else {
        // Not reached: these kinds refuse tag scopes.
        return Ok(RunWindow {
            completed: 0,
            failed: 0,
            hist: Vec::new(),
        });
    };
    let since = now - chrono::Duration::seconds(window_secs.into());
    // The whole org: its own minute level (a row per minute).
    let relation = if v.is_some() { "agg_1m" } else { "agg_org_1m" };
    let sql = format!(
        "SELECT COALESCE(sum(runs_completed), 0)::int8 AS completed,
                COALESCE(sum(runs_failed), 0)::int8 AS failed, {hist} AS hist
         FROM {relation} WHERE org_id = $1 AND bucket >= date_trunc('minute', $2::timestamptz)
           AND {filter}",
        hist = storage::merged_histogram_sql(),
    );
    let q = sqlx::query_as::<_, RunWindow>(&sql)
        .bind(&rule.org_id)
        .bind(since);
    match v {
        Some(v) => q.bind(v),
        None => q,
    }
    .fetch_one(conn)
    .await
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct SilentAgent {
    agent_id: String,
    last_seen: DateTime<Utc>,
}

/// `no_heartbeat`: agents that send heartbeats, silent for `minutes`.
pub(super) async fn silent_agents(
    conn: &mut PgConnection,
    rule: &Rule,
    minutes: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Breach>, sqlx::Error> {
    let rows: Vec<SilentAgent> = in_scope_before(
        conn,
        rule,
        "SELECT agent_id, last_seen FROM agents
         WHERE org_id = $1 AND last_heartbeat IS NOT NULL AND last_seen < $2",
        "agent_id",
        now - chrono::Duration::minutes(minutes.into()),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |SilentAgent {
                 agent_id: agent,
                 last_seen: last,
             }| {
                let silent = (now - last).num_seconds() as f64 / 60.0;
                Breach {
                    scope_key: format!("agent={agent}"),
                    value: silent,
                    message: format!(
                    "Agent {agent} silent for {silent:.0} min (last event {}), limit {minutes} min",
                    last.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                    details: json!({"unit": "minutes", "agent_id": agent, "last_seen": last}),
                }
            },
        )
        .collect())
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct OpenRun {
    run_id: String,
    agent_id: String,
    started_at: DateTime<Utc>,
}

/// `stuck_run`: runs open for more than `minutes`.
pub(super) async fn stuck_runs(
    conn: &mut PgConnection,
    rule: &Rule,
    minutes: i32,
    now: DateTime<Utc>,
) -> Result<Vec<Breach>, sqlx::Error> {
    let rows: Vec<OpenRun> = in_scope_before(
        conn,
        rule,
        "SELECT run_id, agent_id, started_at FROM runs
         WHERE org_id = $1 AND ended_at IS NULL AND status = 'running' AND started_at < $2",
        "started_at",
        now - chrono::Duration::minutes(minutes.into()),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let (run, agent) = (r.run_id, r.agent_id);
            let age = (now - r.started_at).num_seconds() as f64 / 60.0;
            Breach {
                scope_key: format!("run={run}"),
                value: age,
                message: format!(
                    "Run {run} of agent {agent} running for {age:.0} min without finishing, limit {minutes} min"
                ),
                details: json!({"unit": "minutes", "run_id": run, "agent_id": agent, "started_at": r.started_at}),
            }
        })
        .collect())
}

/// The rows of `select` (org `$1`, a time bound `$2` = `before`) in the
/// rule's scope ([`agent_filter`], value `$3`), ordered by `order`, at most
/// [`MAX_BREACHES`].
async fn in_scope_before<T>(
    conn: &mut PgConnection,
    rule: &Rule,
    select: &str,
    order: &str,
    before: DateTime<Utc>,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let (filter, v) = agent_filter(rule);
    let sql = format!("{select} AND {filter} ORDER BY {order} LIMIT {MAX_BREACHES}");
    let q = sqlx::query_as::<_, T>(&sql).bind(&rule.org_id).bind(before);
    match v {
        Some(v) => q.bind(v),
        None => q,
    }
    .fetch_all(conn)
    .await
}

/// Scope filter on `agents`/`runs` (both have agent_id; runs also workflow_id,
/// agents via the agents seen in the workflow).
pub(super) fn agent_filter(rule: &Rule) -> (String, Option<String>) {
    let v = rule.scope.value().map(str::to_owned);
    match rule.scope.kind() {
        ScopeKind::Agent => ("agent_id = $3".into(), v),
        ScopeKind::Workflow if rule.kind() == RuleKind::StuckRun => ("workflow_id = $3".into(), v),
        ScopeKind::Workflow => (
            "agent_id IN (SELECT DISTINCT agent_id FROM agg_1d
                          WHERE org_id = $1 AND workflow_id = $3)"
                .into(),
            v,
        ),
        _ => ("TRUE".into(), None),
    }
}
