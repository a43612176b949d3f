//! Plain mode's deriver (`agentops_projections::derive`): the writer's
//! transactions hold only events, corrections and offsets; the deriver
//! folds them into the levels, the per-tag levels, runs and agents in
//! chunks of whole transactions. These tests write through the worker's
//! own `Writer` and derive with its own deriver, against real PostgreSQL,
//! and check the derived tables against their definitions over the events.

use std::collections::BTreeMap;
use std::time::Duration;

use agentops_e2e::definitions::{levels_are_their_definition, tag_levels_are_their_definition};
use agentops_e2e::events::{enriched_event, enriched_runs};
use agentops_e2e::{create_database, plain_config, Stack, StackOptions};
use agentops_projections::{Handoff, Writer};
use agentops_runtime::storage::{self, deferred, Mode};
use agentops_schemas::correction::{CORRECTS, COST_CORRECTION};
use agentops_schemas::{histogram, AgentEvent};
use anyhow::{ensure, Result};
use chrono::{Duration as Span, DurationRound, Utc};
use serde_json::json;
use sqlx::PgPool;

async fn plain_db(name: &str) -> Result<PgPool> {
    let db = plain_config(create_database(name).await?);
    let pool = agentops_runtime::db::connect(&db, std::time::Duration::from_secs(30)).await?;
    let mode = agentops_runtime::db::prepare(&pool, &db).await?;
    ensure!(mode == Mode::Postgres);
    Ok(pool)
}

/// `runs` of the history, each with its events.
/// All on one UTC day (yesterday, from 01:00): a test holding a transaction
/// that wrote events open while the writer goes on must not need a new day's
/// partition of `events` meanwhile (creating it waits for that transaction,
/// which waits for the test: the run that crossed midnight hung).
fn tagged_runs(org: &str, n: usize) -> Vec<AgentEvent> {
    let start = (Utc::now() - Span::days(1))
        .duration_trunc(Span::days(1))
        .unwrap()
        + Span::hours(1);
    let mut events = enriched_runs(org, "d", n, start, Span::minutes(2));
    for (i, e) in events.iter_mut().enumerate() {
        e.attributes
            .insert("team".into(), format!("team-{}", i % 3));
    }
    events
}

/// Events of `org` the levels count, runs and their events, agents.
async fn counts(pool: &PgPool, org: &str) -> Result<(i64, i64, i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT COALESCE(sum(events), 0)::int8 FROM agg_org_1h WHERE org_id = $1),
                (SELECT count(*) FROM runs WHERE org_id = $1),
                (SELECT COALESCE(sum(events), 0)::int8 FROM runs WHERE org_id = $1),
                (SELECT count(*) FROM agents WHERE org_id = $1)",
    )
    .bind(org)
    .fetch_one(pool)
    .await?)
}

async fn backlog(pool: &PgPool) -> Result<i64> {
    let mut conn = pool.acquire().await?;
    Ok(deferred::backlog(&mut conn).await?)
}

#[tokio::test]
async fn a_transaction_committing_after_later_ones_were_derived_is_derived_once() -> Result<()> {
    let pool = plain_db("deferred_order").await?;
    let org = "deferred";
    let events = tagged_runs(org, 75); // 300 events, 75 runs, 3 agents
    let mut w = Writer::new(Mode::Postgres, "deferred");
    let mut conn = pool.acquire().await?;
    // Should the writer ever wait on the open transaction below, fail
    // rather than wait for it forever (it waits for the test).
    sqlx::query("SET lock_timeout = '60s'")
        .execute(&mut *conn)
        .await?;

    // Written, not derived: the writer's transaction holds the events only.
    for (i, batch) in events[..200].chunks(50).enumerate() {
        let a = w
            .apply(&mut conn, batch, &[("t".into(), 0, i as i64 + 1)])
            .await?;
        ensure!(a.inserted == 50, "{a:?}");
    }
    ensure!(
        backlog(&pool).await? == 200,
        "backlog {}",
        backlog(&pool).await?
    );
    ensure!(
        counts(&pool, org).await? == (0, 0, 0, 0),
        "derived before the deriver ran"
    );

    // A transaction that takes its id now and commits after later ones
    // were written and derived (another worker's slow batch).
    let slow = &events[200..204]; // one whole run
    let mut early = pool.begin().await?;
    for e in slow {
        sqlx::query(
            "INSERT INTO events (event_id, org_id, ts, agent_id, workflow_id, run_id, type, status,
                                 latency_ms, provider, model, input_tokens, output_tokens,
                                 cost_usd, tool_name, attributes, lat_bucket)
             VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                     $17)",
        )
        .bind(&e.event_id)
        .bind(&e.org_id)
        .bind(chrono::DateTime::from_timestamp_micros(e.timestamp))
        .bind(&e.agent_id)
        .bind(&e.workflow_id)
        .bind(&e.run_id)
        .bind(&e.event_type)
        .bind(&e.status)
        .bind(e.latency_ms)
        .bind(&e.provider)
        .bind(&e.model)
        .bind(e.input_tokens)
        .bind(e.output_tokens)
        .bind(e.cost_usd)
        .bind(&e.tool_name)
        .bind(serde_json::to_value(&e.attributes)?)
        // The writer's histogram bucket of a finished run's latency.
        .bind(
            e.event_type
                .starts_with("run_")
                .then_some(e.latency_ms)
                .flatten()
                .map(|l| histogram::bucket_of(l) as i16),
        )
        .execute(&mut *early)
        .await?;
    }
    for (i, batch) in events[204..].chunks(48).enumerate() {
        w.apply(&mut conn, batch, &[("t".into(), 0, 10 + i as i64)])
            .await?;
    }

    // One writer transaction per pass when the chunk holds 50 events.
    let first = w.derive(&mut conn, 50).await?;
    ensure!(
        first.transactions == 1 && first.events == 50 && !first.caught_up,
        "{first:?}"
    );
    let rest = w.settle(&mut conn).await?;
    ensure!(rest.events == 296 - 50 && rest.caught_up, "{rest:?}");
    ensure!(
        counts(&pool, org).await? == (296, 74, 296, 3),
        "{:?}",
        counts(&pool, org).await?
    );
    // Nothing waits but the open transaction's events, which no one sees
    // yet: the pending notes hold the backlog only, however long it stays
    // open.
    let (notes,): (i64,) = sqlx::query_as("SELECT count(*) FROM pending_events")
        .fetch_one(&pool)
        .await?;
    ensure!(notes == 0, "{notes} pending notes after settling");

    early.commit().await?;
    ensure!(backlog(&pool).await? == 4);
    let late = w.settle(&mut conn).await?;
    ensure!(late.events == 4, "{late:?}");
    let again = w.settle(&mut conn).await?;
    ensure!(again.events == 0 && again.transactions == 0, "{again:?}");
    ensure!(backlog(&pool).await? == 0);
    ensure!(
        counts(&pool, org).await? == (300, 75, 300, 3),
        "{:?}",
        counts(&pool, org).await?
    );
    // Every level and per-tag level row equals its definition over the events.
    levels_are_their_definition(&pool, org).await?;
    tag_levels_are_their_definition(&pool, org).await?;
    // Replayed batches add nothing for the deriver either.
    for batch in events.chunks(100) {
        let a = w.apply(&mut conn, batch, &[]).await?;
        ensure!(a.inserted == 0 && a.duplicates == 100, "{a:?}");
    }
    ensure!(w.settle(&mut conn).await?.events == 0);
    // Half stored, half new: the stored ones are skipped, the new ones derived.
    let mut mixed: Vec<AgentEvent> = events[..20].to_vec();
    mixed.extend(tagged_runs(org, 5).into_iter().map(|mut e| {
        e.run_id = e.run_id.map(|r| format!("{r}-more"));
        e
    }));
    let a = w.apply(&mut conn, &mixed, &[]).await?;
    ensure!(a.inserted == 20 && a.duplicates == 20, "{a:?}");
    ensure!(w.settle(&mut conn).await?.events == 20);
    ensure!(counts(&pool, org).await? == (320, 80, 320, 3));
    levels_are_their_definition(&pool, org).await
}

/// The writer hands each batch it stored whole to its deriver in process;
/// the deriver reads back only the rest (a batch with a stored event, one
/// past the hand-over's cap, another writer's), and what it derives is the
/// same either way.
#[tokio::test]
async fn the_deriver_takes_what_the_writer_handed_over_and_reads_back_the_rest() -> Result<()> {
    let pool = plain_db("deferred_handoff").await?;
    let org = "handoff";
    let handoff = Handoff::new(1_000);
    let mut w = Writer::new(Mode::Postgres, "deferred").handing_over(handoff.clone());
    let mut conn = pool.acquire().await?;
    let events = tagged_runs(org, 75); // 300 events
    for batch in events[..200].chunks(100) {
        ensure!(w.apply(&mut conn, batch, &[]).await?.inserted == 100);
    }
    ensure!(handoff.held_events() == 200, "{}", handoff.held_events());
    let d = w.settle(&mut conn).await?;
    ensure!((d.events, d.handed_over) == (200, 200), "{d:?}");
    ensure!(handoff.held_events() == 0);
    // A batch holding a stored event: only its new ones are stored, and
    // they are read back.
    let mixed: Vec<AgentEvent> = events[190..250].to_vec();
    let a = w.apply(&mut conn, &mixed, &[]).await?;
    ensure!(a.inserted == 50 && a.duplicates == 10, "{a:?}");
    ensure!(handoff.held_events() == 0);
    let d = w.settle(&mut conn).await?;
    ensure!((d.events, d.handed_over) == (50, 0), "{d:?}");
    // Past the cap: read back.
    let small = Handoff::new(10);
    let mut capped = Writer::new(Mode::Postgres, "deferred").handing_over(small.clone());
    ensure!(
        capped
            .apply(&mut conn, &events[250..270], &[])
            .await?
            .inserted
            == 20
    );
    ensure!(small.held_events() == 0);
    let d = capped.settle(&mut conn).await?;
    ensure!((d.events, d.handed_over) == (20, 0), "{d:?}");
    // Handed over, but derived by another deriver (another process's):
    // dropped once an older transaction is no longer pending, never
    // derived twice.
    ensure!(w.apply(&mut conn, &events[270..280], &[]).await?.inserted == 10);
    ensure!(handoff.held_events() == 10);
    let other = Writer::new(Mode::Postgres, "deferred");
    let d = other.settle(&mut conn).await?;
    ensure!((d.events, d.handed_over) == (10, 0), "{d:?}");
    ensure!(w.apply(&mut conn, &events[280..], &[]).await?.inserted == 20);
    let d = w.settle(&mut conn).await?;
    ensure!((d.events, d.handed_over) == (20, 20), "{d:?}");
    ensure!(handoff.held_events() == 0, "{}", handoff.held_events());
    ensure!(backlog(&pool).await? == 0);
    // Every event counted once, wherever the deriver got it.
    ensure!(counts(&pool, org).await? == (300, 75, 300, 3));
    levels_are_their_definition(&pool, org).await?;
    tag_levels_are_their_definition(&pool, org).await
}

/// Rows of `org` in every aggregate level and per-tag level.
async fn level_rows(pool: &PgPool, org: &str) -> Result<i64> {
    let mut n = 0;
    for l in storage::LEVELS.iter().chain(storage::TAG_LEVELS.iter()) {
        let c: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} WHERE org_id = $1",
            l.name
        ))
        .bind(org)
        .fetch_one(pool)
        .await?;
        n += c;
    }
    Ok(n)
}

/// Level rows later than anything their org has in the level are copied
/// straight in; rows of buckets it already has (late events, the bucket
/// still filling) are upserted; the levels are their definition either way.
#[tokio::test]
async fn level_rows_new_to_their_org_are_copied_in_and_the_rest_upserted() -> Result<()> {
    let pool = plain_db("deferred_fresh_rows").await?;
    let org = "fresh";
    let mut w = Writer::new(Mode::Postgres, "deferred");
    let mut conn = pool.acquire().await?;
    let day = (Utc::now() - Span::days(1))
        .duration_trunc(Span::days(1))
        .unwrap();
    let at = |h: i64| day + Span::hours(h);
    // Runs with a rolled-up tag (the per-tag levels too).
    let runs = |prefix: &str, n: usize, start, spacing| {
        let mut events = enriched_runs(org, prefix, n, start, spacing);
        for (i, e) in events.iter_mut().enumerate() {
            e.attributes
                .insert("team".into(), format!("team-{}", i % 2));
        }
        events
    };
    // Into empty levels: every row is new.
    let first = runs("a", 40, at(2), Span::minutes(2));
    w.apply(&mut conn, &first, &[]).await?;
    let d = w.settle(&mut conn).await?;
    let rows = level_rows(&pool, org).await?;
    ensure!(
        rows > 0 && d.level_rows_copied as i64 == rows,
        "{d:?}, {rows} rows"
    );
    levels_are_their_definition(&pool, org).await?;
    // Late events, among the buckets the org has (from 02:00, the same
    // day; some minutes and keys new, none later than its latest): all
    // upserted.
    let late = runs("b", 10, at(2), Span::minutes(3));
    w.apply(&mut conn, &late, &[]).await?;
    let d = w.settle(&mut conn).await?;
    ensure!(d.events == late.len() && d.level_rows_copied == 0, "{d:?}");
    levels_are_their_definition(&pool, org).await?;
    // Events of earlier hours of the day (no minute or hour of theirs is
    // there, but later ones are): upserted too, and counted.
    let earlier = runs("c", 10, at(0), Span::minutes(5));
    w.apply(&mut conn, &earlier, &[]).await?;
    let d = w.settle(&mut conn).await?;
    ensure!(d.level_rows_copied == 0, "{d:?}");
    levels_are_their_definition(&pool, org).await?;
    // Later events: copied in, but for the day rows (the day is there).
    let later = runs("d", 10, at(5), Span::minutes(2));
    w.apply(&mut conn, &later, &[]).await?;
    let before = level_rows(&pool, org).await?;
    let d = w.settle(&mut conn).await?;
    let opened = level_rows(&pool, org).await? - before;
    ensure!(
        opened > 0 && d.level_rows_copied as i64 == opened,
        "{d:?}, {opened} opened"
    );
    levels_are_their_definition(&pool, org).await?;
    tag_levels_are_their_definition(&pool, org).await
}

/// Every column of `org`'s runs but the org and `updated_at`, by run.
async fn run_rows(pool: &PgPool, org: &str) -> Result<Vec<serde_json::Value>> {
    Ok(sqlx::query_scalar(
        "SELECT to_jsonb(r) - 'org_id' - 'updated_at' FROM runs r WHERE org_id = $1 ORDER BY run_id",
    )
    .bind(org)
    .fetch_all(pool)
    .await?)
}

/// Runs the deriver meets for the first time are copied straight in, and
/// hold what upserting them a batch at a time would: lists, tags, outcome,
/// totals (a model name with a quote and a backslash included).
#[tokio::test]
async fn new_runs_are_copied_in_and_match_runs_built_a_batch_at_a_time() -> Result<()> {
    let pool = plain_db("deferred_new_runs").await?;
    let mut w = Writer::new(Mode::Postgres, "deferred");
    let mut conn = pool.acquire().await?;
    let start = (Utc::now() - Span::days(1))
        .duration_trunc(Span::days(1))
        .unwrap()
        + Span::hours(3);
    let runs = |org: &str| {
        let mut events = enriched_runs(org, "r", 20, start, Span::minutes(1));
        let mut more = Vec::new();
        for (i, e) in events.iter_mut().enumerate() {
            e.attributes
                .insert("team".into(), format!("team-{}", i % 3));
            if e.event_type == "llm_call" {
                let mut other = e.clone();
                other.event_id = uuid::Uuid::new_v4().to_string();
                other.model = Some(r#"m"x\y"#.into());
                other.provider = Some("local".into());
                other.timestamp += 500_000;
                more.push(other);
            }
        }
        events.extend(more);
        events
    };
    // Whole: every run new, copied.
    let whole = runs("whole");
    w.apply(&mut conn, &whole, &[]).await?;
    let d = w.settle(&mut conn).await?;
    ensure!(d.runs_copied == 20, "{d:?}");
    // Split: each run's start copied, the rest of it upserted onto it.
    let split = runs("split");
    let (first, rest): (Vec<AgentEvent>, Vec<AgentEvent>) = split
        .into_iter()
        .partition(|e| e.event_type == "run_started");
    w.apply(&mut conn, &first, &[]).await?;
    ensure!(w.settle(&mut conn).await?.runs_copied == 20);
    w.apply(&mut conn, &rest, &[]).await?;
    let d = w.settle(&mut conn).await?;
    ensure!(d.runs_copied == 0 && d.events == rest.len(), "{d:?}");
    let (a, b) = (
        run_rows(&pool, "whole").await?,
        run_rows(&pool, "split").await?,
    );
    ensure!(a.len() == 20 && a == b, "copied {a:#?}\nupserted {b:#?}");
    let models = &a[1]["models"];
    ensure!(
        models == &json!(["claude-sonnet-4", r#"m"x\y"#]),
        "{models}"
    );
    ensure!(
        a[0]["tags"] == json!({"team": "team-0"}) && a[0]["status"] == "failed",
        "{}",
        a[0]
    );
    Ok(())
}

fn correction(of: &AgentEvent, cost: f64) -> AgentEvent {
    let mut c = enriched_event(
        &of.org_id,
        COST_CORRECTION,
        &of.agent_id,
        of.run_id.as_deref().unwrap_or_default(),
        chrono::DateTime::from_timestamp_micros(of.timestamp).unwrap(),
    );
    c.cost_usd = Some(cost);
    c.provider.clone_from(&of.provider);
    c.model.clone_from(&of.model);
    c.attributes.insert(CORRECTS.into(), of.event_id.clone());
    c
}

#[tokio::test]
async fn corrections_are_applied_after_their_events_in_the_same_chunk() -> Result<()> {
    let pool = plain_db("deferred_corr").await?;
    let org = "deferred";
    let events = tagged_runs(org, 4);
    let call = events.iter().find(|e| e.event_type == "llm_call").unwrap();
    let before = call.cost_usd.unwrap();
    let mut w = Writer::new(Mode::Postgres, "deferred");
    let mut conn = pool.acquire().await?;
    // The event, then two corrections of it in later transactions, the
    // last one winning; nothing derived in between.
    w.apply(&mut conn, &events, &[("t".into(), 0, 1)]).await?;
    w.apply(&mut conn, &[correction(call, 2.5)], &[("t".into(), 0, 2)])
        .await?;
    w.apply(&mut conn, &[correction(call, 3.0)], &[("t".into(), 0, 3)])
        .await?;
    ensure!(backlog(&pool).await? == 16 + 2);
    let d = w.settle(&mut conn).await?;
    ensure!(d.events == 16 && d.corrected == 1, "{d:?}");
    let total: f64 = events.iter().filter_map(|e| e.cost_usd).sum::<f64>() - before + 3.0;
    let (event_cost, run_cost, level_cost, pending): (f64, f64, f64, i64) = sqlx::query_as(
        "SELECT (SELECT cost_usd FROM events WHERE event_id = $2::uuid),
                (SELECT cost_usd FROM runs WHERE org_id = $1 AND run_id = $3),
                (SELECT sum(cost_usd) FROM agg_org_1h WHERE org_id = $1),
                (SELECT count(*) FROM pending_corrections)",
    )
    .bind(org)
    .bind(&call.event_id)
    .bind(&call.run_id)
    .fetch_one(&pool)
    .await?;
    ensure!(event_cost == 3.0, "event cost {event_cost}");
    ensure!(
        (level_cost - total).abs() < 1e-9,
        "levels {level_cost}, want {total}"
    );
    let run: f64 = events
        .iter()
        .filter(|e| e.run_id == call.run_id)
        .filter_map(|e| e.cost_usd)
        .sum::<f64>()
        - before
        + 3.0;
    ensure!((run_cost - run).abs() < 1e-9, "run {run_cost}, want {run}");
    ensure!(pending == 0, "{pending} corrections left");
    levels_are_their_definition(&pool, org).await?;
    tag_levels_are_their_definition(&pool, org).await?;
    // The same correction again changes nothing.
    w.apply(&mut conn, &[correction(call, 3.0)], &[("t".into(), 0, 4)])
        .await?;
    let d = w.settle(&mut conn).await?;
    ensure!(d.corrected == 0 && d.transactions == 1, "{d:?}");
    levels_are_their_definition(&pool, org).await
}

/// Budget alerts of `stack`'s org: (alert id, value).
async fn budget_alerts(stack: &Stack) -> Result<Vec<(String, f64)>> {
    Ok(sqlx::query_as(
        "SELECT alert_id, value FROM alerts WHERE org_id = $1 AND alert_id LIKE 'budget:%'",
    )
    .bind(&stack.org_id)
    .fetch_all(&stack.pool)
    .await?)
}

/// The processors' budget checker adds the spend the projections do not
/// hold yet (kept per partition and offset) to what they do: in plain mode
/// the levels hold what the deriver folded and `events` what the writer
/// stored, a pass earlier. A budget read from the levels counts the
/// written-but-not-derived spend at once; one read from `events` (a
/// project's) counts it once, not twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_count_spend_written_but_not_derived_once() -> Result<()> {
    let mut opts = StackOptions::default();
    opts.env
        .push(("AGENTOPS_GOVERNANCE_RELOAD_MS".into(), "200".into()));
    let stack = Stack::start("deferred-budgets", opts).await?;
    // Hold the deriver's turn (as another worker's deriver would): the
    // projections write, nothing is derived until it is let go.
    let mut turn = stack.pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(agentops_projections::DERIVE_LOCK)
        .execute(&mut *turn)
        .await?;
    let mut ids = BTreeMap::new();
    for (name, scope) in [
        ("org", json!({})),
        (
            "shop",
            json!({"scope_kind": "project", "scope_value": "github.com/acme/shop"}),
        ),
    ] {
        let mut body = json!({"name": name, "period": "day", "limit_usd": 1.0,
                              "thresholds": [50, 100]});
        body.as_object_mut()
            .unwrap()
            .extend(scope.as_object().unwrap().clone());
        ids.insert(name, stack.create_budget(&body).await?);
    }
    // The processors keep spend only for orgs with budgets: let them load these.
    tokio::time::sleep(Duration::from_secs(2)).await; // configuration reload
    let now = Utc::now().to_rfc3339();
    let call = |project: Option<&str>, agent: &str, cost: f64| {
        let mut v = json!({"event_id": agentops_e2e::events::id(), "type": "llm_call",
                           "agent_id": agent, "timestamp": now, "provider": "openai",
                           "model": "gpt-4o", "input_tokens": 100, "cost_usd": cost});
        if let Some(p) = project {
            v["project_id"] = json!(p);
            v["session_id"] = json!("s-1");
        }
        v
    };
    // $0.60 in the project, $0.60 elsewhere: the org at 120%, the project at 60%.
    let (status, body) = stack
        .post_events(&json!([
            call(Some("github.com/acme/shop"), "claude-code", 0.6),
            call(None, "a2", 0.6)
        ]))
        .await?;
    ensure!(status == 202, "{status} {body}");
    let fired = |alerts: &[(String, f64)], name: &str, pct: &str| {
        alerts.iter().any(|(a, _)| {
            a.starts_with(&format!("budget:{}:", ids[name])) && a.ends_with(&format!(":{pct}"))
        })
    };
    // The org's 100% fires from the budget checker's own entries while
    // nothing is derived (the deriver sleeps): the levels hold none of it.
    stack
        .eventually(Duration::from_secs(60), "org at 100%", || async {
            let a = budget_alerts(&stack).await?;
            Ok((fired(&a, "org", "100") && fired(&a, "shop", "50")).then_some(()))
        })
        .await?;
    let (written, derived): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE org_id = $1),
                (SELECT COALESCE(sum(events), 0)::int8 FROM agg_org_1h WHERE org_id = $1)",
    )
    .bind(&stack.org_id)
    .fetch_one(&stack.pool)
    .await?;
    ensure!(
        written == 2 && derived == 0,
        "{written} written, {derived} derived: the check did not run before the deriver"
    );
    // The project's spend comes from `events` (written): counted once, 60%.
    ensure!(
        !fired(&budget_alerts(&stack).await?, "shop", "100"),
        "the project's written spend was counted twice"
    );
    // The deriver folds it once let go (the next batch wakes it); the checks
    // go on from the levels, still once.
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(agentops_projections::DERIVE_LOCK)
        .execute(&mut *turn)
        .await?;
    // New spend keeps the org under watch (the checker reads it again).
    let (status, _) = stack.post_events(&json!([call(None, "a3", 0.01)])).await?;
    ensure!(status == 202);
    stack.derived().await?;
    // Several budget ticks (500 ms) after the derivation.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        !fired(&budget_alerts(&stack).await?, "shop", "100"),
        "the project's spend was counted twice after the derivation"
    );
    Ok(())
}
