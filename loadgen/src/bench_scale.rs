//! `bench-scale`: one size of the scale benchmark (`deploy/local/bench-scale.sh`
//! runs it for 1 M and 10 M events, and 100 M when asked). It generates the
//! history in the database (`bench_store::load_history`: skewed agents and
//! models, documented in docs/benchmarks.md), builds the runs the explorer
//! reads and the budgets the gauges show, then times every dashboard
//! endpoint through the query API beside the same answer computed from raw
//! events, checks that both answers agree, and appends one JSON line.
//! `bench-scale-report` prints how each time grows from the smallest size
//! to the largest.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use sqlx::{PgPool, Row};

use crate::bench_console::{quantile, timed};
use crate::bench_store::{raw_overview, RAW_SERIES};

#[derive(clap::Args, Debug)]
pub struct ScaleOptions {
    /// The database (loaded here when it holds no events) and the query
    /// API over it.
    #[command(flatten)]
    pub target: crate::bench_store::Target,
    /// An admin key of org `bench` (creates the budgets).
    #[arg(long)]
    pub admin_key: String,
    #[command(flatten)]
    pub history: crate::bench_store::History,
    /// Timed requests per endpoint.
    #[arg(long, default_value_t = 30)]
    pub repeat: usize,
    /// Timed runs of each raw-events query.
    #[arg(long, default_value_t = 5)]
    pub raw_repeat: usize,
    /// Append the JSON line here too.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ReportOptions {
    /// The JSON lines `bench-scale` appended.
    #[arg(long)]
    pub file: PathBuf,
}

const RAW_TOP: &str = "
SELECT agent_id, COALESCE(sum(cost_usd), 0)::float8 AS cost,
       count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::float8 AS runs,
       (percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms)
            FILTER (WHERE type IN ('run_completed', 'run_failed')))::float8 AS p95
FROM events WHERE org_id = 'bench' AND ts >= now() - interval '24 hours'
GROUP BY agent_id ORDER BY cost DESC LIMIT 5";

fn raw_cost_by(column: &str, w: &str, unit: &str) -> String {
    format!(
        "SELECT date_trunc('{unit}', ts) AS b, {column}, COALESCE(sum(cost_usd), 0)::float8
         FROM events WHERE org_id = 'bench' AND ts >= now() - interval '{w}'
         GROUP BY 1, 2"
    )
}

/// The three budgets' spend (`bench-console` creates them): the org's this
/// month, agent-7's today, gpt-4o's this week.
const RAW_BUDGETS: &str = "
SELECT COALESCE(sum(cost_usd) FILTER (WHERE ts >= date_trunc('month', now())), 0)::float8,
       COALESCE(sum(cost_usd) FILTER (WHERE ts >= date_trunc('day', now()) AND agent_id = 'agent-7'), 0)::float8,
       COALESCE(sum(cost_usd) FILTER (WHERE ts >= date_trunc('week', now()) AND model = 'gpt-4o'), 0)::float8
FROM events WHERE org_id = 'bench' AND ts >= least(date_trunc('month', now()), date_trunc('week', now()))";

const RAW_COMPARE: &str = "
SELECT count(*) FILTER (WHERE ts >= now() - interval '24 hours')::float8,
       count(*) FILTER (WHERE ts < now() - interval '24 hours')::float8,
       COALESCE(sum(cost_usd) FILTER (WHERE ts >= now() - interval '24 hours'), 0)::float8,
       COALESCE(sum(cost_usd) FILTER (WHERE ts < now() - interval '24 hours'), 0)::float8
FROM events WHERE org_id = 'bench' AND ts >= now() - interval '48 hours'";

/// Every dashboard endpoint and the raw-events query giving its answer.
fn dashboard_endpoints() -> Vec<(&'static str, &'static str, String)> {
    let mut v = Vec::new();
    for (name, path, w) in [
        ("overview 1h", "/v1/metrics/overview?window=1h", "1 hour"),
        (
            "overview 24h",
            "/v1/metrics/overview?window=24h",
            "24 hours",
        ),
        ("overview 7d", "/v1/metrics/overview?window=7d", "7 days"),
        ("overview 30d", "/v1/metrics/overview?window=30d", "30 days"),
    ] {
        v.push((name, path, raw_overview(w)));
    }
    v.extend([
        (
            "series runs 24h hourly",
            "/v1/metrics/timeseries?metric=runs&window=24h&bucket=1h",
            RAW_SERIES.to_owned(),
        ),
        (
            "top agents by cost 24h",
            "/v1/metrics/top?by=cost&window=24h&limit=5",
            RAW_TOP.to_owned(),
        ),
        (
            "cost by agent 24h hourly",
            "/v1/metrics/cost?group=agent&window=24h&bucket=1h",
            raw_cost_by("agent_id", "24 hours", "hour"),
        ),
        (
            "cost by model 7d daily",
            "/v1/metrics/cost?group=model&window=7d&bucket=1d",
            raw_cost_by("model", "7 days", "day"),
        ),
        (
            "cost by tag 24h hourly",
            "/v1/metrics/cost?group=tag:env&window=24h&bucket=1h",
            raw_cost_by("attributes->>'env'", "24 hours", "hour"),
        ),
        (
            "budget status",
            "/v1/budgets/status",
            RAW_BUDGETS.to_owned(),
        ),
        (
            "compare 24h",
            "/v1/metrics/compare?window=24h",
            RAW_COMPARE.to_owned(),
        ),
        (
            "runs: failed + gpt-4o-mini 24h",
            "/v1/runs?window=24h&status=failed&model=gpt-4o-mini&limit=50",
            crate::bench_console::RAW_RUNS_PAGE.to_owned(),
        ),
    ]);
    v
}

/// The rows the hierarchy's drill-downs open: the biggest project (most
/// events), its latest session and that session's machine.
struct Places {
    project: String,
    session: String,
    machine: String,
}

impl Places {
    async fn find(pool: &PgPool) -> Result<Self> {
        let (project, session, machine): (String, String, Option<String>) = sqlx::query_as(
            "SELECT p.project_id, s.session_id, s.machine_id
             FROM (SELECT project_id FROM projects WHERE org_id = 'bench'
                   ORDER BY events DESC, project_id LIMIT 1) p
             CROSS JOIN LATERAL (
                 SELECT session_id, machine_id FROM agent_sessions
                 WHERE org_id = 'bench' AND project_id = p.project_id
                 ORDER BY last_seen DESC, session_id DESC LIMIT 1) s",
        )
        .fetch_optional(pool)
        .await?
        .context("no projects with sessions for org bench")?;
        Ok(Places {
            project,
            session,
            machine: machine.context("the session names no machine")?,
        })
    }
}

/// `id` as a path segment or query value (percent-encoded).
fn enc(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `s` as an SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Sessions of the events matching `filter`, latest first (`GET /v1/sessions`).
fn raw_sessions(filter: &str, limit: u32) -> String {
    format!(
        "SELECT session_id, max(ts) AS last_seen, count(*)::float8 AS events
         FROM events WHERE org_id = 'bench' AND {filter}
         GROUP BY session_id ORDER BY last_seen DESC, session_id DESC LIMIT {limit}"
    )
}

/// Projects or machines (`key`) with totals from raw events, ordered by `order`.
fn raw_nodes(key: &str, order: &str) -> String {
    format!(
        "SELECT {key} AS id, COALESCE(sum(cost_usd), 0)::float8 AS cost, count(*)::float8 AS events,
                count(DISTINCT session_id)::float8 AS sessions, max(ts) AS last_seen
         FROM events WHERE org_id = 'bench' AND {key} IS NOT NULL
         GROUP BY {key} ORDER BY {order}, id LIMIT 100"
    )
}

/// The hierarchy's lists, drill-downs and timeline, each with the raw
/// events query giving its answer.
fn hierarchy_endpoints(p: &Places) -> Vec<(&'static str, String, String)> {
    let (project, machine) = (lit(&p.project), lit(&p.machine));
    // The project page: its totals, its workspaces (and their machines)
    // with totals, its latest 20 sessions.
    let page = format!(
        "WITH p AS MATERIALIZED (
             SELECT workspace_id, machine_id, session_id, ts, cost_usd FROM events
             WHERE org_id = 'bench' AND project_id = {project}),
         w AS (SELECT workspace_id, machine_id, count(*) AS events, sum(cost_usd) AS cost,
                      max(ts) AS last_seen, count(DISTINCT session_id) AS sessions
               FROM p GROUP BY 1, 2),
         s AS (SELECT session_id, max(ts) AS last_seen FROM p GROUP BY 1
               ORDER BY 2 DESC, 1 DESC LIMIT 20)
         SELECT (SELECT sum(events) FROM w)::float8 AS events,
                (SELECT COALESCE(sum(cost), 0) FROM w)::float8 AS cost,
                (SELECT count(*) FROM w)::float8 AS workspaces,
                (SELECT count(DISTINCT machine_id) FROM w)::float8 AS machines,
                (SELECT count(DISTINCT session_id) FROM p)::float8 AS sessions,
                (SELECT array_agg(session_id ORDER BY last_seen DESC, session_id DESC) FROM s)
                    AS latest"
    );
    vec![
        (
            "projects by cost",
            "/v1/projects?sort=cost&limit=100".to_owned(),
            raw_nodes("project_id", "cost DESC"),
        ),
        (
            "project page (biggest)",
            format!("/v1/projects/{}", enc(&p.project)),
            page,
        ),
        (
            "machines by last seen",
            "/v1/machines?limit=100".to_owned(),
            raw_nodes("machine_id", "last_seen DESC"),
        ),
        (
            "sessions of a project",
            format!("/v1/sessions?project_id={}&limit=50", enc(&p.project)),
            raw_sessions(&format!("project_id = {project}"), 50),
        ),
        (
            "session timeline",
            format!("/v1/sessions/{}?limit=1000", enc(&p.session)),
            format!(
                "SELECT event_id::text AS id, ts, type FROM events
                 WHERE org_id = 'bench' AND session_id = {} ORDER BY ts, event_id",
                lit(&p.session)
            ),
        ),
        (
            "sessions: machine + project",
            format!(
                "/v1/sessions?machine_id={}&project_id={}&limit=50",
                enc(&p.machine),
                enc(&p.project)
            ),
            raw_sessions(
                &format!("machine_id = {machine} AND project_id = {project}"),
                50,
            ),
        ),
    ]
}

/// Every endpoint the benchmark times, with its raw twin.
fn endpoints(places: &Places) -> Vec<(&'static str, String, String)> {
    let mut v: Vec<_> = dashboard_endpoints()
        .into_iter()
        .map(|(name, path, raw)| (name, path.to_owned(), raw))
        .collect();
    v.extend(hierarchy_endpoints(places));
    v
}

fn near(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

/// The API's answer agrees with the raw one (up to the window edges: the
/// API reads whole minutes, and breakdowns of 6 h or more whole hours).
async fn agree(
    pool: &PgPool,
    name: &str,
    api: &Value,
    raw_sql: &str,
    per_minute: f64,
) -> Result<()> {
    if name.starts_with("overview") {
        let (runs, cost, events): (f64, f64, f64) =
            sqlx::query_as(&format!("SELECT runs, cost, events FROM ({raw_sql}) r"))
                .fetch_one(pool)
                .await?;
        let a = |k: &str| api[k].as_f64().unwrap_or(f64::NAN);
        // The API starts at the first whole minute of the window: up to a
        // minute's events fewer than the raw count (`per_minute` on
        // average; two for slack), however few the window holds.
        let tol = f64::max(2.0 * per_minute / events.max(1.0), 0.01);
        ensure!(
            near(a("runs"), runs, tol)
                && near(a("cost_usd"), cost, tol)
                && near(a("events"), events, tol),
            "{name}: API {api} vs raw runs {runs}, cost {cost}, events {events}"
        );
    } else if name.starts_with("top") {
        let (agent,): (String,) =
            sqlx::query_as(&format!("SELECT agent_id FROM ({raw_sql}) t LIMIT 1"))
                .fetch_one(pool)
                .await?;
        ensure!(
            api["top"][0]["agent"] == agent.as_str(),
            "{name}: API's first {} vs raw {agent}",
            api["top"][0]
        );
    } else if name == "budget status" {
        let (org,): (f64,) = sqlx::query_as(&format!("SELECT r.* FROM ({raw_sql}) r"))
            .fetch_one(pool)
            .await
            .map(|(o, _, _): (f64, f64, f64)| (o,))?;
        let got = api["budgets"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["name"] == "org monthly"))
            .and_then(|b| b["spend_usd"].as_f64())
            .context("org monthly budget")?;
        ensure!(near(got, org, 0.01), "{name}: API {got} vs raw {org}");
    } else if name == "projects by cost" || name == "machines by last seen" {
        let raw = sqlx::query(raw_sql).fetch_all(pool).await?;
        let first = raw.first().context("no rows in the raw answer")?;
        let (id, cost, events, sessions): (String, f64, f64, f64) = (
            first.try_get("id")?,
            first.try_get("cost")?,
            first.try_get("events")?,
            first.try_get("sessions")?,
        );
        let list = api[if name.starts_with("projects") {
            "projects"
        } else {
            "machines"
        }]
        .as_array()
        .context("no list")?;
        let top = &list[0];
        ensure!(
            list.len() == raw.len()
                && top["id"] == id.as_str()
                && near(top["cost_usd"].as_f64().unwrap_or(f64::NAN), cost, 1e-6)
                && top["events"].as_f64() == Some(events)
                && top["sessions"].as_f64() == Some(sessions),
            "{name}: API's first {top} of {} vs raw {id}: cost {cost}, events {events}, sessions {sessions} of {}",
            list.len(),
            raw.len()
        );
    } else if name.starts_with("project page") {
        let r = sqlx::query(raw_sql).fetch_one(pool).await?;
        let latest: Vec<String> = r.try_get("latest")?;
        let p = &api["project"];
        let len = |k: &str| api[k].as_array().map_or(f64::NAN, |a| a.len() as f64);
        let (events, cost, workspaces, machines, sessions): (f64, f64, f64, f64, f64) = (
            r.try_get("events")?,
            r.try_get("cost")?,
            r.try_get("workspaces")?,
            r.try_get("machines")?,
            r.try_get("sessions")?,
        );
        ensure!(
            p["events"].as_f64() == Some(events)
                && near(p["cost_usd"].as_f64().unwrap_or(f64::NAN), cost, 1e-6)
                && p["sessions"].as_f64() == Some(sessions)
                && len("workspaces") == workspaces
                && len("machines") == machines
                && ids(&api["sessions"], "session_id") == latest,
            "{name}: API events {}, cost {}, sessions {}, {} workspaces, {} machines vs raw \
             {events}, {cost}, {sessions}, {workspaces}, {machines} (or the latest sessions differ)",
            p["events"],
            p["cost_usd"],
            p["sessions"],
            len("workspaces"),
            len("machines")
        );
    } else if name.starts_with("sessions") || name == "session timeline" {
        let (list, key, col) = if name == "session timeline" {
            ("timeline", "event_id", "id")
        } else {
            ("sessions", "session_id", "session_id")
        };
        let raw: Vec<String> = sqlx::query(raw_sql)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| r.try_get(col))
            .collect::<Result<_, _>>()?;
        let got = ids(&api[list], key);
        ensure!(
            !raw.is_empty() && got == raw,
            "{name}: API {got:?} vs raw {raw:?}"
        );
    } else if name.starts_with("runs") {
        let raw: Vec<(String,)> = sqlx::query_as(raw_sql).fetch_all(pool).await?;
        let first = api["runs"][0]["run_id"].as_str().unwrap_or_default();
        ensure!(
            raw.first().is_some_and(|(r,)| r == first),
            "{name}: API's first run {first} vs raw {:?}",
            raw.first()
        );
    }
    Ok(())
}

/// The `key` of every element of the array `v`.
fn ids(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e[key].as_str().map(str::to_owned))
        .collect()
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub async fn run(o: ScaleOptions) -> Result<()> {
    let pool = crate::bench_store::plain_pool(&o.target.database_url).await?;
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE org_id = 'bench'")
        .fetch_one(&pool)
        .await?;
    let mut load_secs = None;
    if have == 0 {
        let t = Instant::now();
        crate::bench_store::load_history(&pool, &o.history).await?;
        load_secs = Some(t.elapsed().as_secs_f64());
    } else {
        crate::bench_store::ensure_hierarchy(&pool).await?;
    }
    let http = reqwest::Client::new();
    crate::bench_console::build(&pool, &http, &o.target.query_url, &o.admin_key).await?;
    let places = Places::find(&pool).await?;
    let (events, bytes): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE org_id = 'bench'), pg_database_size(current_database())",
    )
    .fetch_one(&pool)
    .await?;
    eprintln!(
        "bench-scale: {events} events, database {:.2} GB ({:.3} GB per million events)",
        bytes as f64 / 1e9,
        bytes as f64 / 1e9 / (events as f64 / 1e6)
    );
    let per_minute = events as f64 / (o.history.days as f64 * 1440.0);
    let mut results = Vec::new();
    println!(
        "{:<32} {:>9} {:>9}   {:>10} {:>10}   {:>8}",
        "endpoint", "API p50", "API p95", "raw p50", "raw p95", "raw/API"
    );
    for (name, path, raw_sql) in endpoints(&places) {
        let url = format!("{}{path}", o.target.query_url);
        let (_, body) = timed(&http, &url, &o.target.key).await.context(name)?; // warm
        agree(&pool, name, &body, &raw_sql, per_minute)
            .await
            .with_context(|| format!("{name}: the API's answer and the raw one differ"))?;
        let mut api = Vec::with_capacity(o.repeat);
        for _ in 0..o.repeat {
            api.push(timed(&http, &url, &o.target.key).await?.0);
        }
        let mut raw = Vec::with_capacity(o.raw_repeat);
        for _ in 0..o.raw_repeat.max(1) {
            let t = Instant::now();
            sqlx::raw_sql(&raw_sql)
                .fetch_all(&pool)
                .await
                .with_context(|| format!("raw {name}"))?;
            raw.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (a50, a95) = (quantile(&mut api, 0.5), quantile(&mut api, 0.95));
        let (r50, r95) = (quantile(&mut raw, 0.5), quantile(&mut raw, 0.95));
        println!(
            "{name:<32} {a50:7.1}ms {a95:7.1}ms   {r50:8.1}ms {r95:8.1}ms   {:7.1}x",
            r50 / a50
        );
        results.push(json!({"endpoint": name, "path": path,
            "api_p50_ms": round1(a50), "api_p95_ms": round1(a95),
            "raw_p50_ms": round1(r50), "raw_p95_ms": round1(r95), "speedup": round1(r50 / a50)}));
    }
    let line = json!({"bench": "scale", "events": events, "agents": o.history.agents, "days": o.history.days,
        "load_secs": load_secs.map(round1), "db_bytes": bytes,
        "gb_per_million_events": (bytes as f64 / 1e9 / (events as f64 / 1e6) * 1000.0).round() / 1000.0,
        "results": results});
    println!("{line}");
    if let Some(path) = &o.out {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{line}")?;
    }
    Ok(())
}

/// The `bench-scale` lines of a file, smallest history first.
fn scale_lines(text: &str) -> Vec<Value> {
    let mut runs: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["bench"] == "scale")
        .collect();
    runs.sort_by_key(|r| r["events"].as_i64().unwrap_or(0));
    runs
}

/// An endpoint's API p95 in one `bench-scale` line.
fn p95(run: &Value, endpoint: &str) -> Option<f64> {
    run["results"]
        .as_array()
        .and_then(|v| v.iter().find(|e| e["endpoint"] == endpoint))
        .and_then(|e| e["api_p95_ms"].as_f64())
}

/// Per endpoint of the smallest run: its p95 at the largest size over its
/// p95 at the smallest (a floor of 0.1 ms under the latter).
fn growth(runs: &[Value]) -> Vec<(String, f64)> {
    let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
        return Vec::new();
    };
    first["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["endpoint"].as_str())
        .filter_map(|name| {
            let g = p95(last, name)? / p95(first, name)?.max(0.1);
            Some((name.to_owned(), g))
        })
        .collect()
}

/// How each endpoint's p95 grows with the history: one column per size,
/// then the largest size's time over the smallest's.
pub fn report(o: ReportOptions) -> Result<()> {
    let text = std::fs::read_to_string(&o.file)
        .with_context(|| format!("reading {}", o.file.display()))?;
    let runs = scale_lines(&text);
    ensure!(
        !runs.is_empty(),
        "no bench-scale lines in {}",
        o.file.display()
    );
    let size = |r: &Value| format!("{:.0}M", r["events"].as_f64().unwrap_or(0.0) / 1e6);
    let mut head = format!("{:<32}", "API p95 (ms)");
    for r in &runs {
        head.push_str(&format!(" {:>9}", size(r)));
    }
    println!("{head}   growth");
    let growth = growth(&runs);
    for (name, g) in &growth {
        let mut line = format!("{name:<32}");
        for r in &runs {
            match p95(r, name) {
                Some(v) => line.push_str(&format!(" {v:>9.1}")),
                None => line.push_str(&format!(" {:>9}", "-")),
            }
        }
        println!("{line}   {g:5.2}x");
    }
    let mut sizes = format!("{:<32}", "GB per million events");
    for r in &runs {
        let gb = r["gb_per_million_events"].as_f64().unwrap_or(f64::NAN);
        sizes.push_str(&format!(" {gb:>9.3}"));
    }
    println!("{sizes}");
    let growth: Vec<Value> = growth
        .iter()
        .map(|(n, g)| json!({"endpoint": n, "growth": (g * 100.0).round() / 100.0}))
        .collect();
    println!(
        "{}",
        json!({"bench": "scale-report", "from_events": runs[0]["events"],
               "to_events": runs[runs.len() - 1]["events"], "p95_growth": growth})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dashboard_endpoint_has_a_raw_twin() {
        let e = endpoints(&Places {
            project: "github.com/bench/repo-0".into(),
            session: "run-5".into(),
            machine: "machine-31".into(),
        });
        let names: Vec<&str> = e.iter().map(|(n, _, _)| *n).collect();
        for want in [
            "overview 1h",
            "overview 30d",
            "series runs 24h hourly",
            "top agents by cost 24h",
            "cost by agent 24h hourly",
            "cost by tag 24h hourly",
            "budget status",
            "runs: failed + gpt-4o-mini 24h",
            "projects by cost",
            "project page (biggest)",
            "machines by last seen",
            "sessions of a project",
            "session timeline",
            "sessions: machine + project",
        ] {
            assert!(names.contains(&want), "{want}");
        }
        let path = |n: &str| e.iter().find(|x| x.0 == n).map(|x| x.1.as_str());
        assert_eq!(
            path("project page (biggest)"),
            Some("/v1/projects/github.com%2Fbench%2Frepo-0")
        );
        assert_eq!(
            path("sessions: machine + project"),
            Some("/v1/sessions?machine_id=machine-31&project_id=github.com%2Fbench%2Frepo-0&limit=50")
        );
        assert_eq!(lit("it's"), "'it''s'");
        for (name, path, sql) in &e {
            assert!(path.starts_with("/v1/"), "{name}");
            assert!(sql.contains("FROM events"), "{name}: {sql}");
        }
    }

    #[test]
    fn answers_agree_within_the_window_edges() {
        assert!(near(1000.0, 1009.0, 0.01));
        assert!(!near(1000.0, 1020.0, 0.01));
        // Around zero the tolerance is absolute.
        assert!(near(0.0, 0.005, 0.01));
        assert!(!near(0.0, 0.5, 0.01));
    }

    #[test]
    fn growth_is_the_largest_size_over_the_smallest() {
        let line = |n: i64, ms: f64| {
            json!({"bench": "scale", "events": n, "gb_per_million_events": 0.5,
                   "results": [{"endpoint": "overview 24h", "api_p95_ms": ms},
                               {"endpoint": "top", "api_p95_ms": 0.05}]})
            .to_string()
        };
        let text = format!(
            "{}\nnoise\n{}\n{}\n",
            line(100_000_000, 9.0),
            line(1_000_000, 4.0),
            line(10_000_000, 6.0)
        );
        let runs = scale_lines(&text);
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0]["events"], 1_000_000);
        assert_eq!(
            growth(&runs),
            [("overview 24h".to_owned(), 2.25), ("top".to_owned(), 0.5)]
        );
        assert!(growth(&[]).is_empty());
    }
}
