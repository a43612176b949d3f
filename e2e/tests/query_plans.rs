//! Every read of the query API has an index that fits (issue 15, item 3).
//!
//! A plain-mode database gets a history large enough that the planner
//! prefers an index wherever one fits ([`agentops_e2e::history`]): 300,000
//! events of one org over 30 days and a third as many of a second org, the
//! three aggregate levels built from them as the plain-mode writer builds
//! them, the runs and agents folded from them, budgets of every scope kind,
//! 40,000 alerts (with history and deliveries), policy violations and audit
//! rows per org; then what a long-lived platform holds beyond the events'
//! retention, which is what makes a month's window a small part of a level
//! (eleven older months of `agg_1d`, two of `agg_1h`, 50,000 agents of other
//! orgs) — a window covering a whole table is rightly read by a sequential
//! scan. Then `VACUUM ANALYZE`.
//!
//! The in-process router (`agentops_query_api::app`, the real handlers) runs
//! on a pool whose connections `LOAD 'auto_explain'` with every statement's
//! plan sent back to the client as a NOTICE (JSON) rather than to the
//! server's log, so the test needs no access to the server's files; sqlx
//! reports each notice as a `tracing` event, filed here under the endpoint
//! being called. Each endpoint is called once, so these are the custom plans
//! PostgreSQL makes for its first executions. Every GET read route of
//! `route_table()` must be called. The test fails, naming the endpoint and
//! the relation, on a `Seq Scan` of a large relation, or a bitmap scan of one
//! without an index condition, with no exceptions (the cost explorer's tag
//! groups read the per-tag levels like tag budgets); `--no-capture` shows
//! every endpoint's scans.
//!
//! "Large" ([`LARGE`]): the relations that grow with traffic — the events
//! and their partitions, the aggregate levels, runs, agents, alerts and
//! their history, policy violations, the audit log. Configuration (orgs,
//! keys, budgets, rules, policies, channels, prices, controls) holds a
//! handful of rows per org and may be scanned.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentops_e2e::{history, prepared_database};
use anyhow::{ensure, Context, Result};
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use tower::ServiceExt;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::Layer;

const ORG: &str = "plans";
const OTHER: &str = "plans-other";
/// Events of [`ORG`] (runs of five events) over [`DAYS`] days.
const EVENTS: i64 = 300_000;
const DAYS: i64 = 30;
const AGENTS: i64 = 200;

/// Relations that grow with traffic, with their partitions (`events_p…`,
/// `agg_1m_p…`, `agg_1h_pre…`: plain mode partitions `events` and the
/// minute and hour levels).
const LARGE: [&str; 18] = [
    "events",
    // Coding sessions grow with traffic; their projects, machines and
    // workspaces with the fleet (checkouts), a few rows per developer.
    "agent_sessions",
    "session_places",
    "agg_agent_1h",
    "agg_tag_1h",
    "agg_1m",
    "agg_1h",
    "agg_1d",
    "agg_org_1m",
    "agg_org_1h",
    "agg_org_1d",
    "runs",
    "agents",
    "alerts",
    "alert_history",
    "alert_deliveries",
    "policy_violations",
    "audit_log",
];

fn is_large(rel: &str) -> bool {
    LARGE.iter().any(|l| {
        rel.strip_prefix(l)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("_p"))
    })
}

/// The endpoint being called, and the plans seen while it ran.
#[derive(Default)]
struct Plans {
    current: String,
    by_endpoint: BTreeMap<String, Vec<Value>>,
}

/// Files each `auto_explain` NOTICE (sqlx's `sqlx::postgres::notice`
/// event) under the current endpoint.
struct Collector(Arc<Mutex<Plans>>);

struct MessageVisitor(Option<String>);

impl tracing::field::Visit for MessageVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Collector {
    fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
        if event.metadata().target() != "sqlx::postgres::notice" {
            return;
        }
        let mut v = MessageVisitor(None);
        event.record(&mut v);
        let Some(msg) = v.0 else { return };
        // "duration: 0.123 ms  plan:\n{json}"
        let Some(at) = msg.find('{') else { return };
        let Ok(plan) = serde_json::from_str::<Value>(&msg[at..]) else {
            return;
        };
        let mut p = self.0.lock().unwrap();
        let key = p.current.clone();
        p.by_endpoint.entry(key).or_default().push(plan);
    }
}

/// Whether a node below `node` (a bitmap's index scans, under any
/// BitmapAnd/BitmapOr) has an index condition.
fn has_index_cond(node: &Value) -> bool {
    node["Plans"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| !p["Index Cond"].is_null() || has_index_cond(p))
}

/// Scans of large relations without an index in `node` and below:
/// (relation, node type).
fn bad_scans(node: &Value, out: &mut Vec<(String, String)>) {
    let ty = node["Node Type"].as_str().unwrap_or_default();
    let rel = node["Relation Name"].as_str().unwrap_or_default();
    if is_large(rel) {
        let seq = ty == "Seq Scan";
        // A bitmap heap scan is fed by an index below it; one reading the
        // whole table has no index condition at all (only possible through
        // a `Bitmap Index Scan` without `Index Cond`).
        let bitmap_all = ty == "Bitmap Heap Scan" && !has_index_cond(node);
        if seq || bitmap_all {
            out.push((rel.to_owned(), ty.to_owned()));
        }
    }
    for p in node["Plans"].as_array().into_iter().flatten() {
        bad_scans(p, out);
    }
}

/// Every relation scan in `node` and below, as `node type on relation`.
fn all_scans(node: &Value, out: &mut Vec<String>) {
    if let Some(rel) = node["Relation Name"].as_str() {
        let ty = node["Node Type"].as_str().unwrap_or_default();
        let index = node["Index Name"]
            .as_str()
            .map(|i| format!(" ({i})"))
            .unwrap_or_default();
        out.push(format!("{ty} on {rel}{index}"));
    }
    for p in node["Plans"].as_array().into_iter().flatten() {
        all_scans(p, out);
    }
}

struct Api {
    router: axum::Router,
    key: String,
}

impl Api {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))?;
        let resp = self.router.clone().oneshot(req).await?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 26).await?;
        ensure!(
            status.is_success(),
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_uses_an_index_on_large_relations() -> Result<()> {
    let plans = Arc::new(Mutex::new(Plans::default()));
    let subscriber = tracing_subscriber::registry().with(Collector(plans.clone()).with_filter(
        tracing_subscriber::filter::filter_fn(|m| m.target() == "sqlx::postgres::notice"),
    ));
    tracing::subscriber::set_global_default(subscriber)?;

    let (url, pool) = prepared_database("qplans").await?;
    let verdict = check(&url, &pool, &plans).await;
    // The history is large (~1 GB): drop the database whatever the verdict.
    pool.close().await;
    let admin = std::env::var("AGENTOPS_TEST_PG")
        .unwrap_or_else(|_| "postgres://agentops:agentops@127.0.0.1:5432/postgres".into());
    let name = url.rsplit('/').next().unwrap_or_default().to_owned();
    let admin = PgPool::connect(&admin).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    verdict
}

/// Load the history, call every read, judge the plans.
async fn check(url: &str, pool: &PgPool, plans: &Mutex<Plans>) -> Result<()> {
    let keys = agentops_query_api::admin::create_org_with_keys(pool, ORG, ORG, "test").await?;
    agentops_query_api::admin::create_org_with_keys(pool, OTHER, OTHER, "test").await?;
    // keys: ingest, read, admin.
    let admin_key = keys[2].secret.clone();
    history::load_org(pool, ORG, EVENTS, AGENTS, DAYS).await?;
    history::load_org(pool, OTHER, EVENTS / 3, AGENTS / 4, DAYS).await?;
    history::load_governance(pool, ORG).await?;
    history::load_governance(pool, OTHER).await?;
    history::load_older(pool).await?;

    // Budgets of every scope kind, through a router without auto_explain.
    let api = Api {
        router: agentops_query_api::app(pool.clone(), Duration::from_secs(60)),
        key: admin_key.clone(),
    };
    for body in [
        json!({"name": "org monthly", "period": "month", "limit_usd": 50_000.0}),
        json!({"name": "agent-7 daily", "period": "day", "limit_usd": 5.0, "scope_kind": "agent", "scope_value": "agent-7"}),
        json!({"name": "wf weekly", "period": "week", "limit_usd": 500.0, "scope_kind": "workflow", "scope_value": "wf-3"}),
        json!({"name": "gpt-4o weekly", "period": "week", "limit_usd": 10_000.0, "scope_kind": "model", "scope_value": "gpt-4o"}),
        json!({"name": "team-1 daily", "period": "day", "limit_usd": 50.0, "scope_kind": "tag", "scope_value": "team=team-1"}),
    ] {
        api.send("POST", "/v1/admin/budgets", Some(body)).await?;
    }
    sqlx::raw_sql("VACUUM ANALYZE").execute(pool).await?;

    // The router under test: every statement's plan comes back as a NOTICE.
    let explained = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "LOAD 'auto_explain';
                     SET auto_explain.log_min_duration = 0;
                     SET auto_explain.log_format = 'json';
                     SET auto_explain.log_nested_statements = on;
                     SET auto_explain.log_level = 'notice';
                     SET client_min_messages = 'notice';",
                )
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    let api = Api {
        router: agentops_query_api::app(explained, Duration::ZERO),
        key: admin_key,
    };

    // A page and its cursor, a run and an alert to read.
    let first = api
        .send(
            "GET",
            "/v1/runs?window=7d&status=failed&model=gpt-4o-mini&limit=20",
            None,
        )
        .await?;
    let cursor = first["next_cursor"]
        .as_str()
        .context("a second page")?
        .to_owned();
    let run_id = first["runs"][0]["run_id"]
        .as_str()
        .context("a run")?
        .to_owned();
    let alert_id = format!("{ORG}-alert-3");
    // A coding session: a run the history made one (one in four).
    let session_id = format!("{ORG}-run-4");

    let enc = |s: &str| {
        s.replace('=', "%3D")
            .replace(':', "%3A")
            .replace('+', "%2B")
    };
    let calls: Vec<(&str, String)> = vec![
        ("overview 1h", "/v1/metrics/overview?window=1h".into()),
        ("overview 24h", "/v1/metrics/overview?window=24h".into()),
        ("overview 30d", "/v1/metrics/overview?window=30d".into()),
        (
            "timeseries runs 1m",
            "/v1/metrics/timeseries?metric=runs&bucket=1m&window=1h".into(),
        ),
        (
            "timeseries errors 5m",
            "/v1/metrics/timeseries?metric=errors&bucket=5m&window=24h".into(),
        ),
        (
            "timeseries cost 1h",
            "/v1/metrics/timeseries?metric=cost&bucket=1h&window=24h".into(),
        ),
        (
            "timeseries runs 1d",
            "/v1/metrics/timeseries?metric=runs&bucket=1d&window=30d".into(),
        ),
        (
            "top agents by cost",
            "/v1/metrics/top?by=cost&window=24h&limit=10".into(),
        ),
        (
            "top models by runs",
            "/v1/metrics/top?by=runs&group=model&window=7d".into(),
        ),
        ("failures recent", "/v1/failures/recent?limit=20".into()),
        (
            "runs page 1",
            "/v1/runs?window=7d&status=failed&model=gpt-4o-mini&limit=20".into(),
        ),
        (
            "runs cursor page",
            format!(
                "/v1/runs?window=7d&status=failed&model=gpt-4o-mini&limit=20&cursor={}",
                enc(&cursor)
            ),
        ),
        (
            "runs by agent",
            "/v1/runs?window=24h&agent_id=agent-7".into(),
        ),
        (
            "runs by cost",
            "/v1/runs?window=24h&sort=cost_usd&min_cost_usd=0.01".into(),
        ),
        (
            "runs by latency",
            "/v1/runs?window=30d&sort=latency_ms&order=desc&workflow_id=wf-2".into(),
        ),
        (
            "runs by tag",
            "/v1/runs?window=24h&tag=team%3Dteam-1&provider=openai".into(),
        ),
        (
            "runs by error",
            "/v1/runs?window=7d&error_type=tool_error&q=timed".into(),
        ),
        (
            "runs export",
            "/v1/runs/export?format=json&window=24h&status=failed".into(),
        ),
        ("run detail", format!("/v1/runs/{run_id}")),
        ("agents list", "/v1/agents?limit=100".into()),
        ("agent detail", "/v1/agents/agent-7?window=24h".into()),
        (
            "cost by agent",
            "/v1/metrics/cost?group=agent&window=7d&bucket=1h".into(),
        ),
        (
            "cost by workflow",
            "/v1/metrics/cost?group=workflow&window=24h&bucket=1h".into(),
        ),
        (
            "cost by model",
            "/v1/metrics/cost?group=model&window=30d&bucket=1d".into(),
        ),
        (
            "cost by provider",
            "/v1/metrics/cost?group=provider&window=24h&bucket=1h".into(),
        ),
        (
            "cost by tag",
            "/v1/metrics/cost?group=tag%3Ateam&window=24h&bucket=1h".into(),
        ),
        (
            "cost by tag 30d",
            "/v1/metrics/cost?group=tag%3Ateam&window=30d&bucket=1d".into(),
        ),
        ("compare", "/v1/metrics/compare?window=24h".into()),
        ("budgets status", "/v1/budgets/status".into()),
        ("alerts firing", "/v1/alerts?state=firing&limit=50".into()),
        ("alerts all", "/v1/alerts?limit=50".into()),
        ("alert detail", format!("/v1/alerts/{alert_id}")),
        ("policy violations", "/v1/policy-violations?limit=50".into()),
        (
            "policy violations by agent",
            "/v1/policy-violations?limit=50&agent_id=agent-3".into(),
        ),
        ("prices unknown", "/v1/prices/unknown".into()),
        ("audit", "/v1/admin/audit?limit=50".into()),
        ("me", "/v1/auth/me".into()),
        (
            "projects by cost",
            "/v1/projects?sort=cost&limit=100".into(),
        ),
        ("machines", "/v1/machines?limit=100".into()),
        (
            "project page",
            "/v1/projects/github.com%2Fe2e%2Frepo-8".into(),
        ),
        ("machine page", "/v1/machines/machine-7".into()),
        ("workspace page", "/v1/workspaces/ws-7-8".into()),
        (
            "sessions of a project on a machine",
            "/v1/sessions?project_id=github.com%2Fe2e%2Frepo-8&machine_id=machine-7&limit=50"
                .into(),
        ),
        ("session timeline", format!("/v1/sessions/{session_id}")),
    ];
    // Every GET read route is called (a new one has to be added here).
    let called: Vec<String> = calls
        .iter()
        .map(|(_, p)| p.split('?').next().unwrap_or_default().to_owned())
        .collect();
    for r in agentops_query_api::route_table() {
        if r.method != axum::http::Method::GET
            || r.access != agentops_query_api::routes::Access::Read
            || r.path == "/v1/live"
        {
            continue;
        }
        let pattern: Vec<&str> = r.path.split('/').collect();
        let hit = called.iter().any(|c| {
            let parts: Vec<&str> = c.split('/').collect();
            parts.len() == pattern.len()
                && parts
                    .iter()
                    .zip(&pattern)
                    .all(|(a, b)| a == b || b.starts_with('{'))
        });
        ensure!(hit, "GET {} is not checked: add a call for it", r.path);
    }

    let mut failures = Vec::new();
    for (label, path) in &calls {
        plans.lock().unwrap().current = (*label).to_owned();
        api.send("GET", path, None).await?;
        let seen = plans
            .lock()
            .unwrap()
            .by_endpoint
            .get(*label)
            .cloned()
            .unwrap_or_default();
        ensure!(!seen.is_empty(), "{label}: no plan captured");
        // What each endpoint read and how (shown with --no-capture).
        let mut scans = Vec::new();
        for p in &seen {
            all_scans(&p["Plan"], &mut scans);
        }
        scans.sort();
        scans.dedup();
        eprintln!("{label}: {} statements; {}", seen.len(), scans.join(", "));
        for p in &seen {
            let mut bad = Vec::new();
            bad_scans(&p["Plan"], &mut bad);
            for (rel, ty) in bad {
                // A partition holding next to nothing (tomorrow's, or the
                // few minutes of the history's first day when the test runs
                // just before midnight) costs little to read whole, and the
                // planner knows it.
                if small_partition(pool, &rel).await? {
                    continue;
                }
                let text = p["Query Text"].as_str().unwrap_or_default();
                let short: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                failures.push(format!("{label} ({path}): {ty} on {rel}\n    {short:.300}"));
            }
        }
    }
    ensure!(
        failures.is_empty(),
        "{} scans of large relations:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

/// Whether `rel` is a partition (by the catalog) holding under 1% of its
/// table's rows.
async fn small_partition(pool: &PgPool, rel: &str) -> Result<bool> {
    let parent: Option<String> = sqlx::query_scalar(
        "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = $1::regclass",
    )
    .bind(rel)
    .fetch_optional(pool)
    .await?;
    let Some(table) = parent else {
        return Ok(false);
    };
    let (small,): (bool,) = sqlx::query_as(&format!(
        "SELECT (SELECT count(*) FROM {rel}) * 100 < (SELECT count(*) FROM {table})"
    ))
    .fetch_one(pool)
    .await?;
    Ok(small)
}

#[test]
fn partitions_are_as_large_as_their_table() {
    for rel in [
        "events",
        "events_p20261205",
        "agg_1m_p20261205",
        "agg_org_1h_p20261201",
        "agg_1h_pre20270101",
        "agg_1d",
        "runs",
    ] {
        assert!(is_large(rel), "{rel}");
    }
    for rel in ["prices", "orgs", "agg_1mx", "runs_tags"] {
        assert!(!is_large(rel), "{rel}");
    }
}
