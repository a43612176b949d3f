//! Cost: exact prices per provider through the whole pipeline, client costs
//! kept, unknown models counted and listed, a price added through the admin
//! API, `agentops-processors recompute` correcting the log, and a rebuild
//! from the log giving the same numbers. Then cost corrections applied by the
//! projection writer in both storage modes (plain PostgreSQL and TimescaleDB).

use std::process::Output;
use std::time::Duration;

use agentops_e2e::events::{enriched_event, id};
use agentops_e2e::{create_database, timescale_url, Component, Stack, StackOptions};
use agentops_projections::Writer;
use agentops_runtime::config::DatabaseConfig;
use agentops_runtime::storage::{self, Mode, ModeChoice, StorageConfig};
use agentops_schemas::correction::{CORRECTS, COST_CORRECTION};
use agentops_schemas::AgentEvent;
use anyhow::{ensure, Context, Result};
use chrono::{Duration as Span, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn options() -> StackOptions {
    StackOptions {
        env: vec![("AGENTOPS_PRICE_RELOAD_SECS".into(), "1".into())],
        ..Default::default()
    }
}

/// A run of one LLM call: run_started, llm_call (`extra` fields), run_completed.
fn run_of(run: &str, agent: &str, provider: &str, model: &str, extra: Value) -> Vec<Value> {
    let t = |ms: i64| (Utc::now() - Span::seconds(30) + Span::milliseconds(ms)).to_rfc3339();
    let mut call = json!({"event_id": id(), "type": "llm_call", "agent_id": agent, "run_id": run,
        "timestamp": t(1), "provider": provider, "model": model, "latency_ms": 200, "status": "ok"});
    for (k, v) in extra.as_object().unwrap() {
        call[k] = v.clone();
    }
    vec![
        json!({"event_id": id(), "type": "run_started", "agent_id": agent, "run_id": run, "timestamp": t(0)}),
        call,
        json!({"event_id": id(), "type": "run_completed", "agent_id": agent, "run_id": run,
               "timestamp": t(2), "latency_ms": 900, "status": "ok"}),
    ]
}

async fn overview(stack: &Stack) -> Result<Value> {
    stack.get("/v1/metrics/overview?window=24h").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_costs_per_provider_through_the_pipeline() -> Result<()> {
    let stack = Stack::start("pricing_cases", options()).await?;
    // (run, provider, model, tokens, expected USD, cost_source), the rates in
    // processors/prices.toml; cached and reasoning tokens at their own rates.
    let cases = [
        (
            "openai",
            "openai",
            "gpt-5",
            json!({"input_tokens": 100_000, "output_tokens": 20_000, "cache_read_tokens": 400_000, "reasoning_tokens": 50_000}),
            0.125 + 0.2 + 0.05 + 0.5,
            "computed",
        ),
        (
            "anthropic",
            "anthropic",
            "claude-sonnet-4-5-20250929",
            json!({"input_tokens": 10_000, "output_tokens": 2_000, "cache_read_tokens": 50_000, "cache_write_tokens": 8_000}),
            0.03 + 0.03 + 0.015 + 0.03,
            "computed",
        ),
        (
            "google",
            "google",
            "gemini-2.5-pro",
            json!({"input_tokens": 100_000, "output_tokens": 10_000, "cache_read_tokens": 1_000_000, "reasoning_tokens": 20_000}),
            0.125 + 0.1 + 0.125 + 0.2,
            "computed",
        ),
        (
            "deepseek",
            "deepseek",
            "deepseek-chat",
            json!({"input_tokens": 1_000_000, "output_tokens": 1_000_000, "cache_read_tokens": 1_000_000}),
            0.28 + 0.42 + 0.028,
            "computed",
        ),
        (
            "xai",
            "xai",
            "grok-4-fast-reasoning",
            json!({"input_tokens": 1_000_000, "output_tokens": 100_000, "cache_read_tokens": 2_000_000, "reasoning_tokens": 400_000}),
            0.2 + 0.05 + 0.1 + 0.2,
            "computed",
        ),
        (
            "mistral",
            "mistral",
            "mistral-large-latest",
            json!({"input_tokens": 1_000_000, "output_tokens": 1_000_000}),
            2.0 + 6.0,
            "computed",
        ),
        (
            "client",
            "openai",
            "gpt-4o",
            json!({"input_tokens": 1_000_000, "output_tokens": 0, "cost_usd": 0.42}),
            0.42,
            "client",
        ),
    ];
    let mut events = Vec::new();
    for (run, provider, model, tokens, _, _) in &cases {
        events.extend(run_of(run, "pricer", provider, model, tokens.clone()));
    }
    stack.send_all(&events, 100).await?;
    let total: f64 = cases.iter().map(|c| c.4).sum();
    let o = stack
        .eventually(Duration::from_secs(60), "all events projected", || async {
            let o = overview(&stack).await?;
            Ok((o["events"] == json!(events.len())).then_some(o))
        })
        .await?;
    ensure!(
        close(o["cost_usd"].as_f64().unwrap(), total),
        "overview cost {o}, want {total}"
    );
    for (run, _, model, _, want, source) in &cases {
        let r = stack.get(&format!("/v1/runs/{run}")).await?;
        ensure!(
            close(r["cost_usd"].as_f64().unwrap(), *want),
            "{model}: run cost {}, want {want}",
            r["cost_usd"]
        );
        let call = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "llm_call")
            .context("llm_call in the timeline")?;
        ensure!(call["cost_source"] == json!(source), "{model}: {call}");
        ensure!(close(call["cost_usd"].as_f64().unwrap(), *want), "{call}");
    }
    let unknown = stack.get("/v1/prices/unknown").await?;
    ensure!(unknown["models"] == json!([]), "{unknown}");
    // The price file seeded the empty global table once, aliases included.
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../processors/prices.toml"
    ))?;
    let rows = file.matches("[[model]]").count() as i64;
    let (global, seeded, aliased): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE created_by = 'seed'),
                count(*) FILTER (WHERE 'claude-sonnet-4-5' = ANY(aliases))
         FROM model_prices WHERE org_id IS NULL",
    )
    .fetch_one(&stack.pool)
    .await?;
    ensure!(
        global == rows && seeded == rows && aliased == 1,
        "{global} {seeded} {aliased} of {rows}"
    );
    Ok(())
}

/// The numbers a recompute may change (cost, unpriced) and those it must
/// not (counts, tokens), per relation.
#[derive(Debug)]
struct Snapshot {
    /// Per aggregate level: (events, llm_calls, runs, tokens, unpriced, cost).
    levels: Vec<(i64, i64, i64, i64, i64, f64)>,
    /// Per run: (run, events, tokens, llm_calls, cost).
    runs: Vec<(String, i64, i64, i64, f64)>,
    /// Per agent: (agent, events today, tokens today, cost today).
    agents: Vec<(String, i64, i64, f64)>,
    /// Events: (rows, rows with a cost, recomputed rows, cost sum).
    events: (i64, i64, i64, f64),
}

async fn snapshot(pool: &PgPool) -> Result<Snapshot> {
    snapshot_of(pool, &[]).await
}

/// [`snapshot`] with these levels after the aggregate ones (the per-tag
/// levels, for events that carry a rolled-up attribute).
async fn snapshot_of(pool: &PgPool, more: &[storage::Level]) -> Result<Snapshot> {
    let mut levels = Vec::new();
    for storage::Level { name, .. } in storage::LEVELS.iter().chain(more) {
        levels.push(
            sqlx::query_as(&format!(
                "SELECT COALESCE(sum(events), 0)::int8, COALESCE(sum(llm_calls), 0)::int8,
                        COALESCE(sum(runs_completed + runs_failed), 0)::int8,
                        COALESCE(sum(input_tokens + output_tokens + cache_read_tokens
                                     + cache_write_tokens + reasoning_tokens), 0)::int8,
                        COALESCE(sum(unpriced_calls), 0)::int8, COALESCE(sum(cost_usd), 0)::float8
                 FROM {name}"
            ))
            .fetch_one(pool)
            .await?,
        );
    }
    let runs = sqlx::query_as(
        "SELECT run_id, events, input_tokens + output_tokens + cache_read_tokens
                + cache_write_tokens + reasoning_tokens, llm_calls, cost_usd
         FROM runs ORDER BY run_id",
    )
    .fetch_all(pool)
    .await?;
    let agents = sqlx::query_as(
        "SELECT agent_id, events_day, tokens_day, cost_day FROM agents ORDER BY agent_id",
    )
    .fetch_all(pool)
    .await?;
    let events = sqlx::query_as(
        "SELECT count(*), count(cost_usd), count(*) FILTER (WHERE cost_source = 'recomputed'),
                COALESCE(sum(cost_usd), 0)::float8
         FROM events",
    )
    .fetch_one(pool)
    .await?;
    Ok(Snapshot {
        levels,
        runs,
        agents,
        events,
    })
}

/// Same counts and tokens everywhere; costs equal to 1e-9.
fn same(a: &Snapshot, b: &Snapshot) -> Result<()> {
    let cmp = |x: f64, y: f64, what: &str| -> Result<()> {
        ensure!(close(x, y), "{what}: {x} vs {y}\n{a:?}\n{b:?}");
        Ok(())
    };
    ensure!(a.levels.len() == b.levels.len());
    for (x, y) in a.levels.iter().zip(&b.levels) {
        ensure!(
            (x.0, x.1, x.2, x.3, x.4) == (y.0, y.1, y.2, y.3, y.4),
            "levels {a:?} vs {b:?}"
        );
        cmp(x.5, y.5, "level cost")?;
    }
    ensure!(a.runs.len() == b.runs.len(), "runs {a:?} vs {b:?}");
    for (x, y) in a.runs.iter().zip(&b.runs) {
        ensure!(
            (&x.0, x.1, x.2, x.3) == (&y.0, y.1, y.2, y.3),
            "runs {x:?} vs {y:?}"
        );
        cmp(x.4, y.4, "run cost")?;
    }
    ensure!(a.agents.len() == b.agents.len());
    for (x, y) in a.agents.iter().zip(&b.agents) {
        ensure!(
            (&x.0, x.1, x.2) == (&y.0, y.1, y.2),
            "agents {x:?} vs {y:?}"
        );
        cmp(x.3, y.3, "agent cost")?;
    }
    ensure!(
        (a.events.0, a.events.1, a.events.2) == (b.events.0, b.events.1, b.events.2),
        "events {:?} vs {:?}",
        a.events,
        b.events
    );
    cmp(a.events.3, b.events.3, "event cost")
}

fn run_command(stack: &Stack, c: Component, args: &[&str]) -> Result<String> {
    let out: Output = stack.command(c).args(args).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "{c:?} {args:?} failed:\n{stderr}");
    eprintln!("{stderr}");
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_priced_later_and_recomputed_from_the_log() -> Result<()> {
    // The transactional enrich stage: `recompute` and `rebuild` must read a
    // log that ends in transaction markers to its end.
    let mut opts = options();
    opts.env
        .push(("AGENTOPS_EXACTLY_ONCE".into(), "true".into()));
    let stack = Stack::start("pricing_unknown", opts).await?;
    let tokens = json!({"input_tokens": 1000, "output_tokens": 500, "cache_read_tokens": 2000});
    let mut events = Vec::new();
    for i in 0..3 {
        events.extend(run_of(
            &format!("u{i}"),
            "bot-u",
            "acme",
            "acme-llm-7",
            tokens.clone(),
        ));
    }
    // Known model (2.50 / 10.00 / cache 1.25): 0.0025 + 0.005 + 0.0025.
    events.extend(run_of("k0", "bot-k", "openai", "gpt-4o", tokens.clone()));
    // A client cost on the unknown model: kept, never unpriced, never recomputed.
    let mut client = tokens.clone();
    client["cost_usd"] = json!(0.5);
    events.extend(run_of("c0", "bot-c", "acme", "acme-llm-7", client));
    stack.send_all(&events, 100).await?;
    let known = 0.0025 + 0.005 + 0.0025;
    let o = stack
        .eventually(Duration::from_secs(60), "all events projected", || async {
            let o = overview(&stack).await?;
            Ok((o["events"] == json!(events.len())).then_some(o))
        })
        .await?;
    ensure!(close(o["cost_usd"].as_f64().unwrap(), known + 0.5), "{o}");
    let r = stack.get("/v1/runs/u0").await?;
    ensure!(r["cost_usd"] == json!(0.0), "{r}");
    let call = &r["events"].as_array().unwrap()[1];
    ensure!(
        call["cost_usd"].is_null() && call["cost_source"].is_null(),
        "{call}"
    );
    let unknown = stack.get("/v1/prices/unknown?window=7d").await?;
    let models = unknown["models"].as_array().unwrap();
    ensure!(models.len() == 1, "{unknown}");
    ensure!(
        models[0]["provider"] == "acme" && models[0]["model"] == "acme-llm-7",
        "{unknown}"
    );
    ensure!(models[0]["unpriced_calls"] == json!(3), "{unknown}");
    ensure!(models[0]["first_seen"].is_string() && models[0]["last_seen"].is_string());
    let before = snapshot(&stack.pool).await?;
    ensure!(before.levels.iter().all(|l| l.4 == 3), "{before:?}");

    // Admin API: a bad body names its field; then the org's price.
    let admin = |method: reqwest::Method, body: Option<Value>| {
        let mut req = stack
            .http
            .request(method, format!("{}/v1/admin/prices", stack.query_url))
            .bearer_auth(&stack.admin_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let r = admin(
        reqwest::Method::POST,
        Some(json!({"provider": "acme", "model": "acme-llm-7", "input": "2", "output": 10})),
    )
    .await?;
    ensure!(r.status() == 400);
    let body: Value = r.json().await?;
    ensure!(body["error"]["field"] == "input", "{body}");
    let r = admin(
        reqwest::Method::POST,
        Some(json!({"provider": "acme", "model": "acme-llm-7", "input": 2.0, "output": 10.0, "cache_read": 0.5})),
    )
    .await?;
    ensure!(r.status() == 201, "{}", r.text().await?);
    // Another model may not take its name as an alias (it would never apply).
    let r = admin(
        reqwest::Method::POST,
        Some(
            json!({"provider": "acme", "model": "acme-llm-8", "aliases": ["ACME-llm-7"],
                    "input": 1.0, "output": 1.0}),
        ),
    )
    .await?;
    ensure!(r.status() == 409, "{}", r.text().await?);
    let listed: Value = admin(reqwest::Method::GET, None).await?.json().await?;
    let rows = listed["prices"].as_array().unwrap();
    let listed_rows = rows.len() as u64;
    ensure!(
        rows.iter().any(|p| p["model"] == "acme-llm-7"
            && p["scope"] == "org"
            && p["effective_from"] == "1970-01-01"),
        "{listed}"
    );
    ensure!(rows
        .iter()
        .any(|p| p["model"] == "gpt-4o" && p["scope"] == "global"));
    let (audited,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM audit_log WHERE org_id = $1 AND action = 'price.set'")
            .bind(&stack.org_id)
            .fetch_one(&stack.pool)
            .await?;
    ensure!(audited == 1, "audit rows: {audited}");
    // A read key may not manage prices.
    let r = stack
        .http
        .get(format!("{}/v1/admin/prices", stack.query_url))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    ensure!(r.status() == 403);

    // Re-price today's events from the log.
    let from = (Utc::now() - Span::days(1)).date_naive().to_string();
    let to = (Utc::now() + Span::hours(1)).to_rfc3339();
    let out = run_command(
        &stack,
        Component::Processors,
        &["recompute", "--from", &from, "--to", &to],
    )?;
    ensure!(out.contains("corrections=3"), "{out}");
    // 1000 x 2 + 500 x 10 + 2000 x 0.5 per million, three calls.
    let per_call = 0.002 + 0.005 + 0.001;
    let want = known + 0.5 + 3.0 * per_call;
    let o = stack
        .eventually(Duration::from_secs(60), "corrections projected", || async {
            let o = overview(&stack).await?;
            Ok(close(o["cost_usd"].as_f64().unwrap(), want).then_some(o))
        })
        .await?;
    ensure!(
        o["events"] == json!(events.len()) && o["runs"] == json!(5),
        "{o}"
    );
    let after = snapshot(&stack.pool).await?;
    for (b, a) in before.levels.iter().zip(&after.levels) {
        ensure!(
            (b.0, b.1, b.2, b.3) == (a.0, a.1, a.2, a.3),
            "counts changed: {before:?} {after:?}"
        );
        ensure!(a.4 == 0 && close(a.5, want), "{after:?}");
    }
    for (b, a) in before.runs.iter().zip(&after.runs) {
        ensure!(
            (&b.0, b.1, b.2, b.3) == (&a.0, a.1, a.2, a.3),
            "{before:?} {after:?}"
        );
    }
    ensure!(
        after.events.0 == before.events.0 && after.events.2 == 3,
        "{after:?}"
    );
    let r = stack.get("/v1/runs/u1").await?;
    ensure!(close(r["cost_usd"].as_f64().unwrap(), per_call), "{r}");
    ensure!(r["events"][1]["cost_source"] == "recomputed", "{r}");
    let c = stack.get("/v1/runs/c0").await?;
    ensure!(
        c["cost_usd"] == json!(0.5) && c["events"][1]["cost_source"] == "client",
        "{c}"
    );
    let agents = stack.get("/v1/agents").await?;
    let bot = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == "bot-u")
        .context("bot-u listed")?;
    ensure!(
        close(bot["today"]["cost_usd"].as_f64().unwrap(), 3.0 * per_call),
        "{bot}"
    );
    let unknown = stack.get("/v1/prices/unknown?window=7d").await?;
    ensure!(unknown["models"] == json!([]), "{unknown}");

    // Idempotent: nothing left to correct.
    let out = run_command(
        &stack,
        Component::Processors,
        &["recompute", "--from", &from, "--to", &to],
    )?;
    ensure!(out.contains("corrections=0"), "{out}");

    // New events are priced with the org's price once the processors have
    // reloaded it (every second here; `agentops_price_rows` says when).
    stack
        .eventually(
            Duration::from_secs(30),
            "the processors reload the prices",
            || async {
                let metrics = stack
                    .http
                    .get(stack.metrics_url(Component::Processors, 0))
                    .send()
                    .await?
                    .text()
                    .await?;
                let rows = metrics
                    .lines()
                    .filter(|l| l.starts_with("agentops_price_rows{"))
                    .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
                ensure!(
                    rows == Some(listed_rows as f64),
                    "the processors price with {rows:?} rows, the API lists {listed_rows}"
                );
                Ok(Some(()))
            },
        )
        .await?;
    let more = run_of("u9", "bot-u", "acme", "acme-llm-7", tokens.clone());
    stack.send_all(&more, 10).await?;
    let r = stack
        .eventually(Duration::from_secs(60), "new run projected", || async {
            Ok(stack
                .get("/v1/runs/u9")
                .await
                .ok()
                .filter(|r| r["event_count"] == json!(3)))
        })
        .await?;
    ensure!(close(r["cost_usd"].as_f64().unwrap(), per_call), "{r}");
    ensure!(r["events"][1]["cost_source"] == "computed", "{r}");
    let total = events.len() + more.len();
    stack
        .eventually(
            Duration::from_secs(30),
            "overview has the new run",
            || async {
                let o = overview(&stack).await?;
                Ok((o["events"] == json!(total)).then_some(()))
            },
        )
        .await?;
    let settled = snapshot(&stack.pool).await?;

    // Replaying the log gives the same numbers (the corrections follow their events).
    run_command(&stack, Component::Projections, &["rebuild"])?;
    let rebuilt = snapshot(&stack.pool).await?;
    same(&settled, &rebuilt)?;
    let o = overview(&stack).await?;
    ensure!(
        o["events"] == json!(total) && close(o["cost_usd"].as_f64().unwrap(), want + per_call),
        "{o}"
    );
    Ok(())
}

// --- Corrections in the projection writer, both storage modes ---

async fn writer_target(url: &str, choice: ModeChoice) -> Result<(PgPool, Mode)> {
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
    {
        let mut conn = pool.acquire().await?;
        storage::drop_all(&mut conn).await?;
    }
    let mode = agentops_runtime::db::prepare(&pool, &db).await?;
    Ok((pool, mode))
}

fn correction(of: &AgentEvent, cost: Option<f64>) -> AgentEvent {
    let mut c = AgentEvent {
        event_id: id(),
        org_id: of.org_id.clone(),
        timestamp: of.timestamp,
        agent_id: of.agent_id.clone(),
        workflow_id: of.workflow_id.clone(),
        run_id: of.run_id.clone(),
        event_type: COST_CORRECTION.into(),
        provider: of.provider.clone(),
        model: of.model.clone(),
        cost_usd: cost,
        cost_source: Some("recomputed".into()),
        ..Default::default()
    };
    c.attributes.insert(CORRECTS.into(), of.event_id.clone());
    c
}

async fn apply(pool: &PgPool, w: &mut Writer, events: &[AgentEvent], offset: i64) -> Result<usize> {
    let mut conn = pool.acquire().await?;
    let a = w
        .apply(&mut conn, events, &[("corr".into(), 0, offset)])
        .await?;
    // Plain mode applies corrections as it derives.
    Ok(a.corrected + w.settle(&mut conn).await?.corrected)
}

/// Every level's figures once TimescaleDB has refreshed, the per-tag
/// levels' among them (the suite's events carry a rolled-up attribute).
async fn settle(pool: &PgPool, mode: Mode) -> Result<Snapshot> {
    if mode == Mode::Timescaledb {
        let mut conn = pool.acquire().await?;
        storage::refresh_all(&mut conn).await?;
    }
    snapshot_of(pool, &storage::TAG_LEVELS).await
}

async fn corrections_suite(url: &str, choice: ModeChoice, expect: Mode) -> Result<()> {
    let (pool, mode) = writer_target(url, choice).await?;
    ensure!(mode == expect, "mode {mode:?}");
    let org = format!("corr-{}", &id()[..8]);
    let t = Utc::now() - Span::minutes(10);
    let mut start = enriched_event(&org, "run_started", "a1", "r1", t);
    start.workflow_id = Some("wf".into());
    let llm = |model: &str, cost: Option<f64>, source: Option<&str>| {
        let mut e = enriched_event(&org, "llm_call", "a1", "r1", t + Span::seconds(1));
        e.workflow_id = Some("wf".into());
        e.provider = Some("p".into());
        e.model = Some(model.into());
        e.input_tokens = Some(100);
        e.output_tokens = Some(10);
        e.cost_usd = cost;
        e.cost_source = source.map(Into::into);
        e
    };
    let unknown = llm("mystery", None, None);
    let computed = llm("known", Some(1.0), Some("computed"));
    let client = llm("known", Some(0.25), Some("client"));
    let mut end = enriched_event(&org, "run_completed", "a1", "r1", t + Span::seconds(2));
    end.latency_ms = Some(2000);
    end.workflow_id = Some("wf".into());
    let mut originals = vec![
        start,
        unknown.clone(),
        computed.clone(),
        client.clone(),
        end,
    ];
    // A rolled-up tag (`database.storage.tag_keys` by default): the per-tag
    // levels follow the corrections too.
    for e in &mut originals {
        e.attributes.insert("team".into(), "payments".into());
    }
    let (unknown, computed, client) = (
        originals[1].clone(),
        originals[2].clone(),
        originals[3].clone(),
    );

    let mut w = Writer::new(mode, "corr");
    apply(&pool, &mut w, &originals, 1).await?;
    let before = settle(&pool, mode).await?;
    ensure!(
        before.levels.iter().all(|l| l.4 == 1 && close(l.5, 1.25)),
        "{before:?}"
    );

    // Price the unknown call, re-price the computed one, try the client one.
    let fixes = vec![
        correction(&unknown, Some(0.5)),
        correction(&computed, Some(3.0)),
        correction(&computed, Some(2.0)), // the later one wins
        correction(&client, Some(9.0)),   // client costs are never corrected
    ];
    ensure!(apply(&pool, &mut w, &fixes, 2).await? == 2);
    let after = settle(&pool, mode).await?;
    for (b, a) in before.levels.iter().zip(&after.levels) {
        ensure!(
            (b.0, b.1, b.2, b.3) == (a.0, a.1, a.2, a.3),
            "{before:?} {after:?}"
        );
        ensure!(a.4 == 0 && close(a.5, 2.75), "{after:?}");
    }
    ensure!(
        after.runs.len() == 1 && after.runs[0].1 == 5 && close(after.runs[0].4, 2.75),
        "{after:?}"
    );
    ensure!(
        close(after.agents[0].3, 2.75) && after.agents[0].1 == 5,
        "{after:?}"
    );
    ensure!(after.events == (5, 3, 2, 2.75), "{:?}", after.events);

    // Replayed (a retried batch, a rebuild meeting them again): no change.
    ensure!(apply(&pool, &mut w, &fixes, 3).await? == 0);
    ensure!(apply(&pool, &mut w, &originals, 4).await? == 0);
    same(&after, &settle(&pool, mode).await?)?;

    // Back to no price: unpriced again.
    ensure!(apply(&pool, &mut w, &[correction(&unknown, None)], 5).await? == 1);
    let back = settle(&pool, mode).await?;
    ensure!(
        back.levels.iter().all(|l| l.4 == 1 && close(l.5, 2.25)),
        "{back:?}"
    );
    ensure!(back.events == (5, 2, 1, 2.25), "{:?}", back.events);

    // The whole log in one batch on empty projections gives the same numbers.
    let mut log = originals.clone();
    log.extend(fixes.iter().cloned());
    log.push(correction(&unknown, None));
    pool.close().await;
    let (pool2, _) = writer_target(url, choice).await?;
    let mut w2 = Writer::new(mode, "corr");
    apply(&pool2, &mut w2, &log, 6).await?;
    same(&back, &settle(&pool2, mode).await?)?;
    Ok(())
}

#[tokio::test]
async fn corrections_plain_postgres() -> Result<()> {
    let url = create_database("corr_pg").await?;
    corrections_suite(&url, ModeChoice::Postgres, Mode::Postgres).await
}

#[tokio::test]
async fn corrections_timescaledb() -> Result<()> {
    let url = timescale_url()?;
    corrections_suite(&url, ModeChoice::Auto, Mode::Timescaledb).await
}
