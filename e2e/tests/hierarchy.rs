//! The coding-agent hierarchy (contract v2) on both storage modes: events
//! naming projects, machines, workspaces and sessions go in through the
//! projection writer (the worker's code path) in batches, a replayed batch
//! among them; the four tables must equal their definition over `events`
//! (`agentops_projections::hierarchy_from_events_sql`) and the totals computed
//! here; a cost correction moves every row its event counts in; the same
//! events in another order and batching (another org) give the same rows.
//! Then the query API's hierarchy endpoints, in-process: lists, drill-downs,
//! the session timeline with its breadcrumbs, keyset pages without repeats,
//! org isolation, field-named 400s, and an operator's pause of a project
//! shown on its sessions.

use std::collections::BTreeMap;
use std::time::Duration;

use agentops_e2e::events::enriched_event;
use agentops_e2e::{create_database, timescale_url};
use agentops_projections::{hierarchy_from_events_sql, Writer, HIERARCHY_KEYS};
use agentops_runtime::config::DatabaseConfig;
use agentops_runtime::storage::{self, Mode, ModeChoice, StorageConfig};
use agentops_schemas::correction::{CORRECTS, COST_CORRECTION};
use agentops_schemas::AgentEvent;
use anyhow::{ensure, Context, Result};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{Duration as Span, DurationRound, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

#[tokio::test]
async fn hierarchy_plain_postgres() -> Result<()> {
    let url = create_database("hier_pg").await?;
    suite(&url, ModeChoice::Postgres, Mode::Postgres).await
}

#[tokio::test]
async fn hierarchy_timescaledb() -> Result<()> {
    let url = timescale_url()?;
    suite(&url, ModeChoice::Auto, Mode::Timescaledb).await
}

const SHOP: &str = "github.com/acme/shop";
const INFRA: &str = "gitlab.example.com/ops/infra";

/// One step of a coding session: (session, project, machine, workspace,
/// minutes after the start, type, model or tool, input tokens, cost).
type Step = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static str,
    i64,
    f64,
);

/// Four sessions: two projects, two machines, three workspaces; one
/// session failed, one completed, two still running; a subagent's call
/// (sidechain) in s1; machine and workspace descriptions that change.
const STEPS: [Step; 14] = [
    (
        "s1",
        SHOP,
        "m-laptop",
        "w-shop-a",
        0,
        "run_started",
        "",
        0,
        0.0,
    ),
    (
        "s1",
        SHOP,
        "m-laptop",
        "w-shop-a",
        1,
        "llm_call",
        "claude-sonnet-4-5",
        1200,
        0.05,
    ),
    (
        "s1",
        SHOP,
        "m-laptop",
        "w-shop-a",
        2,
        "tool_call",
        "Bash",
        0,
        0.0,
    ),
    (
        "s1",
        SHOP,
        "m-laptop",
        "w-shop-a",
        3,
        "llm_call",
        "claude-haiku-4-5",
        300,
        0.01,
    ),
    (
        "s1",
        SHOP,
        "m-laptop",
        "w-shop-a",
        4,
        "run_completed",
        "",
        0,
        0.0,
    ),
    (
        "s2",
        SHOP,
        "m-laptop",
        "w-shop-b",
        5,
        "llm_call",
        "claude-sonnet-4-5",
        800,
        0.04,
    ),
    (
        "s2",
        SHOP,
        "m-laptop",
        "w-shop-b",
        6,
        "tool_call",
        "Edit",
        0,
        0.0,
    ),
    (
        "s3",
        SHOP,
        "m-ci",
        "w-shop-ci",
        7,
        "llm_call",
        "gpt-5-codex",
        2000,
        0.02,
    ),
    ("s3", SHOP, "m-ci", "w-shop-ci", 8, "run_failed", "", 0, 0.0),
    ("s4", INFRA, "m-ci", "w-infra", 9, "run_started", "", 0, 0.0),
    (
        "s4", INFRA, "m-ci", "w-infra", 10, "llm_call", "gpt-5", 500, 0.3,
    ),
    (
        "s4",
        INFRA,
        "m-ci",
        "w-infra",
        11,
        "tool_call",
        "Read",
        0,
        0.0,
    ),
    (
        "s4", INFRA, "m-ci", "w-infra", 12, "llm_call", "gpt-5", 700, 0.4,
    ),
    (
        "s2",
        SHOP,
        "m-laptop",
        "w-shop-b",
        13,
        "llm_call",
        "claude-sonnet-4-5",
        100,
        0.005,
    ),
];

fn events(org: &str, start: chrono::DateTime<Utc>) -> Vec<AgentEvent> {
    STEPS
        .iter()
        .enumerate()
        .map(|(i, &(s, p, m, w, min, ty, what, tokens, cost))| {
            let agent = if s == "s3" || s == "s4" {
                "codex"
            } else {
                "claude-code"
            };
            let mut e = enriched_event(org, ty, agent, s, start + Span::minutes(min));
            e.project_id = Some(p.into());
            e.machine_id = Some(m.into());
            e.workspace_id = Some(w.into());
            e.session_id = Some(s.into());
            match ty {
                "llm_call" => {
                    e.model = Some(what.into());
                    e.input_tokens = Some(tokens);
                    e.output_tokens = Some(tokens / 10);
                    e.cost_usd = Some(cost);
                }
                "tool_call" => e.tool_name = Some(what.into()),
                "run_failed" => {
                    e.status = Some("error".into());
                    e.error_type = Some("exit_1".into());
                }
                _ => {}
            }
            // The machine's name changed between sessions: the latest wins.
            let name = if min < 5 { "old-laptop" } else { "laptop-7" };
            e.attributes.insert(
                "machine_name".into(),
                if m == "m-ci" { "ci-runner" } else { name }.into(),
            );
            e.attributes
                .insert("workspace_path".into(), format!("/src/{w}"));
            if i == 3 {
                e.attributes.insert("sidechain".into(), "true".into());
            }
            e
        })
        .collect()
}

/// An event that names no place: in no hierarchy table.
fn placeless(org: &str, start: chrono::DateTime<Utc>) -> AgentEvent {
    let mut e = enriched_event(org, "llm_call", "plain-agent", "r-plain", start);
    e.cost_usd = Some(1.0);
    e.input_tokens = Some(5);
    e
}

/// One row of a hierarchy table as JSON.
async fn row(pool: &PgPool, org: &str, table: &str, key: &str, id: &str) -> Result<Value> {
    sqlx::query_scalar::<_, Value>(&format!(
        "SELECT to_jsonb(t) FROM (SELECT * FROM {table} WHERE org_id = $1 AND {key} = $2) t"
    ))
    .bind(org)
    .bind(id)
    .fetch_one(pool)
    .await
    .with_context(|| format!("{table} {id}"))
}

async fn write(pool: &PgPool, w: &mut Writer, batch: &[AgentEvent], offset: i64) -> Result<()> {
    let mut conn = pool.acquire().await?;
    w.apply(&mut conn, batch, &[("hier".into(), 0, offset)])
        .await?;
    w.settle(&mut conn).await?;
    Ok(())
}

/// Each table's rows of `org` as stored and as defined from its events
/// (the definition evaluated into a temporary table of the same shape), as
/// JSON text per row without the org and the time of update.
async fn tables(pool: &PgPool, org: &str) -> Result<Vec<(Vec<String>, Vec<String>)>> {
    let mut conn = pool.acquire().await?;
    let mut out = Vec::new();
    for (i, (table, key)) in HIERARCHY_KEYS.iter().enumerate() {
        let rows = |relation: String| {
            format!(
                "SELECT (to_jsonb(t) - 'org_id' - 'updated_at')::text FROM
                 (SELECT * FROM {relation} WHERE org_id = $1 ORDER BY {key}) t"
            )
        };
        let stored: Vec<String> = sqlx::query_scalar(&rows(table.to_string()))
            .bind(org)
            .fetch_all(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS {table}_def (LIKE {table} INCLUDING DEFAULTS)"
        ))
        .execute(&mut *conn)
        .await?;
        sqlx::query(&format!("TRUNCATE {table}_def"))
            .execute(&mut *conn)
            .await?;
        let insert = hierarchy_from_events_sql()[i].replacen(
            &format!("INSERT INTO {table} "),
            &format!("INSERT INTO {table}_def "),
            1,
        );
        sqlx::query(&insert).bind(org).execute(&mut *conn).await?;
        let defined: Vec<String> = sqlx::query_scalar(&rows(format!("{table}_def")))
            .bind(org)
            .fetch_all(&mut *conn)
            .await?;
        out.push((stored, defined));
    }
    Ok(out)
}

/// The stored tables equal their definition from the events (costs to
/// 1e-9: sums in another order differ in the last bits).
async fn equal_their_definition(pool: &PgPool, org: &str, when: &str) -> Result<()> {
    let rounded = |rows: &Vec<String>| -> Vec<Value> {
        rows.iter()
            .map(|r| {
                let mut v: Value = serde_json::from_str(r).unwrap_or_default();
                if let Some(c) = v["cost_usd"].as_f64() {
                    v["cost_usd"] = json!((c * 1e9).round() / 1e9);
                }
                v
            })
            .collect()
    };
    for ((stored, defined), (table, _)) in tables(pool, org).await?.iter().zip(HIERARCHY_KEYS) {
        ensure!(!stored.is_empty(), "{table} {when}: no rows");
        ensure!(
            rounded(stored) == rounded(defined),
            "{table} {when}:\nstored  {stored:#?}\ndefined {defined:#?}"
        );
    }
    Ok(())
}

struct Api {
    router: axum::Router,
    read: String,
    admin: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, key: &str) -> Result<(StatusCode, Value)> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(Body::from("{}"))?;
        let resp = self.router.clone().oneshot(req).await?;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let (status, v) = self.call(Method::GET, path, &self.read).await?;
        ensure!(status == StatusCode::OK, "GET {path}: {status} {v}");
        Ok(v)
    }
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

/// Sum of `f` over the steps matching `pick`.
fn total(pick: impl Fn(&Step) -> bool, f: impl Fn(&Step) -> f64) -> f64 {
    STEPS.iter().filter(|s| pick(s)).map(f).sum()
}

async fn suite(url: &str, choice: ModeChoice, expect: Mode) -> Result<()> {
    let db = DatabaseConfig {
        url: url.into(),
        // The PGlite server runs one query at a time.
        max_connections: 1,
        statement_timeout_ms: None,
        storage: StorageConfig {
            mode: choice,
            ..Default::default()
        },
    };
    let pool = agentops_runtime::db::connect(&db, Duration::from_secs(30)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    let mode = agentops_runtime::db::prepare(&pool, &db).await?;
    ensure!(mode == expect, "mode {mode:?}, expected {expect:?}");
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let (org, twin, other) = (
        format!("hier-{suffix}"),
        format!("hier-twin-{suffix}"),
        format!("hier-other-{suffix}"),
    );
    let start = Utc::now().duration_trunc(Span::hours(1))? - Span::hours(3);
    let all = events(&org, start);
    let mut writer = Writer::new(mode, "hierarchy");

    // Batches of 5, the second replayed; a placeless event in the last.
    let mut offset = 0;
    for (i, batch) in all.chunks(5).enumerate() {
        let mut batch = batch.to_vec();
        if i == 2 {
            batch.push(placeless(&org, start));
        }
        write(&pool, &mut writer, &batch, offset).await?;
        if i == 1 {
            write(&pool, &mut writer, &batch, offset).await?;
        }
        offset += 1;
    }
    equal_their_definition(&pool, &org, "after the batches").await?;

    // Known totals, independently of the definition.
    let shop = row(&pool, &org, "projects", "project_id", SHOP).await?;
    let in_shop = |s: &Step| s.1 == SHOP;
    ensure!(
        shop["events"] == json!(STEPS.iter().filter(|s| in_shop(s)).count()),
        "{shop}"
    );
    ensure!(close(&shop["cost_usd"], total(in_shop, |s| s.8)), "{shop}");
    ensure!(
        shop["input_tokens"].as_f64() == Some(total(in_shop, |s| s.7 as f64)),
        "{shop}"
    );
    ensure!(
        shop["errors"] == json!(1) && shop["llm_calls"] == json!(5),
        "{shop}"
    );
    let laptop = row(&pool, &org, "machines", "machine_id", "m-laptop").await?;
    ensure!(laptop["name"] == "laptop-7", "the latest name: {laptop}");
    let s1 = row(&pool, &org, "agent_sessions", "session_id", "s1").await?;
    ensure!(
        s1["status"] == "completed" && s1["ended_at"].is_string(),
        "{s1}"
    );
    ensure!(
        close(&s1["cost_usd"], 0.06),
        "the subagent's call counts in its session: {s1}"
    );
    let s3 = row(&pool, &org, "agent_sessions", "session_id", "s3").await?;
    ensure!(
        s3["status"] == "failed" && s3["agent_id"] == "codex",
        "{s3}"
    );
    let s2 = row(&pool, &org, "agent_sessions", "session_id", "s2").await?;
    ensure!(
        s2["status"] == "running" && s2["ended_at"].is_null(),
        "{s2}"
    );
    let w = row(&pool, &org, "workspaces", "workspace_id", "w-infra").await?;
    ensure!(
        w["project_id"] == INFRA && w["machine_id"] == "m-ci" && w["path"] == "/src/w-infra",
        "{w}"
    );
    let (placed,): (i64,) = sqlx::query_as("SELECT count(*) FROM projects WHERE org_id = $1")
        .bind(&org)
        .fetch_one(&pool)
        .await?;
    ensure!(placed == 2, "{placed} projects");

    // A cost correction moves every row its event counts in.
    let target = &all[1]; // s1's first call: 0.05
    let mut c = AgentEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        org_id: org.clone(),
        timestamp: target.timestamp,
        agent_id: target.agent_id.clone(),
        run_id: target.run_id.clone(),
        event_type: COST_CORRECTION.into(),
        model: target.model.clone(),
        cost_usd: Some(0.5),
        cost_source: Some("recomputed".into()),
        ..Default::default()
    };
    c.attributes
        .insert(CORRECTS.into(), target.event_id.clone());
    // Client costs are never corrected: make the target's cost computed.
    sqlx::query(
        "UPDATE events SET cost_source = 'computed' WHERE org_id = $1 AND event_id = $2::uuid",
    )
    .bind(&org)
    .bind(&target.event_id)
    .execute(&pool)
    .await?;
    write(&pool, &mut writer, &[c], offset).await?;
    offset += 1;
    equal_their_definition(&pool, &org, "after a correction").await?;
    let shop2 = row(&pool, &org, "projects", "project_id", SHOP).await?;
    ensure!(
        close(&shop2["cost_usd"], total(in_shop, |s| s.8) + 0.45),
        "corrected: {shop2}"
    );
    let s1 = row(&pool, &org, "agent_sessions", "session_id", "s1").await?;
    ensure!(close(&s1["cost_usd"], 0.51), "{s1}");
    let _ = offset;

    // The same events in reverse, one at a time (another org): the same rows.
    let mut twin_events = events(&twin, start);
    for (e, o) in twin_events.iter_mut().zip(&all) {
        e.event_id.clone_from(&o.event_id);
    }
    twin_events.reverse();
    let mut twin_writer = Writer::new(mode, "hierarchy-twin");
    for (i, e) in twin_events.iter().enumerate() {
        write(&pool, &mut twin_writer, std::slice::from_ref(e), i as i64).await?;
    }
    let a = tables(&pool, &org).await?;
    let b = tables(&pool, &twin).await?;
    for ((table, _), ((stored_a, _), (stored_b, _))) in HIERARCHY_KEYS.iter().zip(a.iter().zip(&b))
    {
        // The corrected cost differs; compare everything else.
        let strip = |rows: &Vec<String>| -> Vec<Value> {
            rows.iter()
                .map(|r| {
                    let mut v: Value = serde_json::from_str(r).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("cost_usd");
                    }
                    v
                })
                .collect()
        };
        ensure!(
            strip(stored_a) == strip(stored_b),
            "{table}: batching and order changed the rows"
        );
    }

    // ---------------------------------------------------------------- API
    agentops_tenancy::create_org(&pool, &org, "hierarchy").await?;
    agentops_tenancy::create_org(&pool, &other, "other").await?;
    let key = |o: String, s: agentops_runtime::keys::Scope| {
        let pool = pool.clone();
        async move {
            Ok::<_, anyhow::Error>(
                agentops_tenancy::create_key(&pool, &o, s, "test")
                    .await?
                    .secret,
            )
        }
    };
    let api = Api {
        router: agentops_query_api::app(pool.clone(), Duration::from_secs(5)),
        read: key(org.clone(), agentops_runtime::keys::Scope::Read).await?,
        admin: key(org.clone(), agentops_runtime::keys::Scope::Admin).await?,
    };
    let other_read = key(other.clone(), agentops_runtime::keys::Scope::Read).await?;

    let projects = api.get("/v1/projects").await?;
    let ids: Vec<&str> = projects["projects"]
        .as_array()
        .context("projects")?
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    ensure!(ids == [SHOP, INFRA], "latest seen first: {ids:?}");
    let by_cost = api.get("/v1/projects?sort=cost&limit=1").await?;
    let p = &by_cost["projects"][0];
    ensure!(
        p["id"] == INFRA && by_cost["projects"].as_array().map(Vec::len) == Some(1),
        "{by_cost}"
    );
    let in_infra = |s: &Step| s.1 == INFRA;
    ensure!(p["sessions"] == 1 && p["status"] == "idle", "{p}");
    ensure!(
        p["tokens"]["input"].as_f64() == Some(total(in_infra, |s| s.7 as f64)),
        "{p}"
    );
    ensure!(close(&p["cost_usd"], total(in_infra, |s| s.8)), "{p}");

    let page = api.get("/v1/projects/github.com%2Facme%2Fshop").await?;
    let machines: BTreeMap<String, Value> = page["machines"]
        .as_array()
        .context("machines")?
        .iter()
        .map(|m| (m["id"].as_str().unwrap_or_default().to_owned(), m.clone()))
        .collect();
    ensure!(machines.len() == 2, "{page}");
    ensure!(machines["m-laptop"]["name"] == "laptop-7", "{page}");
    ensure!(
        machines["m-laptop"]["workspaces"] == 2
            && close(
                &machines["m-laptop"]["cost_usd"],
                total(|s| s.1 == SHOP && s.2 == "m-laptop", |s| s.8) + 0.45
            ),
        "the laptop's part of the project: {page}"
    );
    ensure!(
        page["workspaces"].as_array().map(Vec::len) == Some(3),
        "{page}"
    );
    ensure!(
        page["sessions"].as_array().map(Vec::len) == Some(3),
        "{page}"
    );

    let m = api.get("/v1/machines/m-ci").await?;
    ensure!(m["machine"]["name"] == "ci-runner", "{m}");
    ensure!(m["projects"].as_array().map(Vec::len) == Some(2), "{m}");
    let w = api.get("/v1/workspaces/w-shop-b").await?;
    ensure!(w["sessions"][0]["session_id"] == "s2", "{w}");

    // The timeline: in time order, the subagent's step marked, breadcrumbs.
    let s = api.get("/v1/sessions/s1").await?;
    let types: Vec<&str> = s["timeline"]
        .as_array()
        .context("timeline")?
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    ensure!(
        types
            == [
                "run_started",
                "llm_call",
                "tool_call",
                "llm_call",
                "run_completed"
            ],
        "{types:?}"
    );
    ensure!(s["timeline"][3]["sidechain"] == true && s["timeline"][1]["sidechain"] == false);
    let crumbs: Vec<(&str, &str)> = s["breadcrumbs"]
        .as_array()
        .context("crumbs")?
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap_or(""),
                c["label"].as_str().unwrap_or(""),
            )
        })
        .collect();
    ensure!(
        crumbs
            == [
                ("project", SHOP),
                ("machine", "laptop-7"),
                ("workspace", "/src/w-shop-a")
            ],
        "{crumbs:?}"
    );
    // Timeline pages: 2 + 2 + 1, nothing repeated or lost.
    let mut seen = Vec::new();
    let mut path = "/v1/sessions/s1?limit=2".to_owned();
    loop {
        let page = api.get(&path).await?;
        for e in page["timeline"].as_array().context("timeline")? {
            seen.push(e["event_id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/sessions/s1?limit=2&cursor={c}"),
            None => break,
        }
    }
    let want: Vec<String> = all[..5].iter().map(|e| e.event_id.clone()).collect();
    ensure!(seen == want, "timeline pages: {seen:?}");

    // Session pages, filtered.
    let mut listed = Vec::new();
    let mut path = "/v1/sessions?limit=1".to_owned();
    loop {
        let page = api.get(&path).await?;
        for e in page["sessions"].as_array().context("sessions")? {
            listed.push(e["session_id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/sessions?limit=1&cursor={c}"),
            None => break,
        }
    }
    ensure!(
        listed == ["s2", "s4", "s3", "s1"],
        "latest first: {listed:?}"
    );
    let failed = api.get("/v1/sessions?status=failed").await?;
    ensure!(
        failed["sessions"].as_array().map(Vec::len) == Some(1),
        "{failed}"
    );
    let on_ci = api
        .get("/v1/sessions?machine_id=m-ci&project_id=github.com%2Facme%2Fshop")
        .await?;
    ensure!(on_ci["sessions"][0]["session_id"] == "s3", "{on_ci}");

    // Bad input: a 400 naming the field; another org's ids: 404.
    for (path, field) in [
        ("/v1/projects?sort=size", "sort"),
        ("/v1/sessions?status=paused", "status"),
        ("/v1/sessions?cursor=nonsense", "cursor"),
        ("/v1/sessions/s1?cursor=1.not-a-uuid", "cursor"),
        ("/v1/machines?limit=0", "limit"),
    ] {
        let (status, v) = api.call(Method::GET, path, &api.read).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && v["error"]["field"] == field,
            "{path}: {status} {v}"
        );
    }
    for path in [
        "/v1/projects/github.com%2Facme%2Fshop",
        "/v1/sessions/s1",
        "/v1/machines/m-ci",
    ] {
        let (status, _) = api.call(Method::GET, path, &other_read).await?;
        ensure!(
            status == StatusCode::NOT_FOUND,
            "{path} as another org: {status}"
        );
    }
    let (status, _) = api
        .call(Method::GET, "/v1/projects/nope", &api.read)
        .await?;
    ensure!(status == StatusCode::NOT_FOUND);

    // An operator pauses the project: its sessions show it; resume lifts it.
    let (status, v) = api
        .call(
            Method::POST,
            "/v1/admin/controls/project/github.com%2Facme%2Fshop/pause",
            &api.read,
        )
        .await?;
    ensure!(
        status == StatusCode::FORBIDDEN,
        "a read key cannot pause: {status} {v}"
    );
    let (status, v) = api
        .call(
            Method::POST,
            "/v1/admin/controls/planet/x/pause",
            &api.admin,
        )
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && v["error"]["field"] == "scope_kind",
        "{status} {v}"
    );
    let (status, v) = api
        .call(
            Method::POST,
            "/v1/admin/controls/project/github.com%2Facme%2Fshop/pause",
            &api.admin,
        )
        .await?;
    ensure!(
        status == StatusCode::OK && v["status"] == "paused",
        "{status} {v}"
    );
    let s2 = api.get("/v1/sessions/s2").await?;
    ensure!(
        s2["session"]["status"] == "paused"
            && s2["session"]["status_reason"] == "paused by an admin"
            && s2["session"]["status_scope"] == "project",
        "{s2}"
    );
    let p = api.get("/v1/projects/github.com%2Facme%2Fshop").await?;
    ensure!(p["project"]["status"] == "paused", "{p}");
    let s4 = api.get("/v1/sessions/s4").await?;
    ensure!(
        s4["session"]["status"] != "paused",
        "another project's session: {s4}"
    );
    let (status, v) = api
        .call(
            Method::POST,
            "/v1/admin/controls/project/github.com%2Facme%2Fshop/resume",
            &api.admin,
        )
        .await?;
    ensure!(
        status == StatusCode::OK && v["resumed"] == true,
        "{status} {v}"
    );
    let s2 = api.get("/v1/sessions/s2").await?;
    ensure!(s2["session"]["status"] != "paused", "{s2}");
    let (audited,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM audit_log WHERE org_id = $1 AND action IN ('scope.pause', 'scope.resume')",
    )
    .bind(&org)
    .fetch_one(&pool)
    .await?;
    ensure!(audited == 2, "{audited} audit rows");
    if mode == Mode::Timescaledb {
        let mut conn = pool.acquire().await?;
        storage::refresh_all(&mut conn).await?;
    }
    Ok(())
}
