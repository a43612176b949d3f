//! Exactly-once projections under failure: the worker SIGKILLed 20 times over
//! a 100,000-event stream, the database restarted mid-stream, and a rebuild
//! from the log that must end with the very same aggregates.
//!
//! Events are produced straight to the stack's enriched topic (what the
//! processors would write), with producer-retry duplicates mixed in.

use std::time::Duration;

use agentops_e2e::events::enriched_runs;
use agentops_e2e::{Component, Stack, StackOptions};
use agentops_schemas::AgentEvent;
use anyhow::{ensure, Result};
use chrono::{Duration as Span, Utc};
use rand::Rng;

fn projections_only() -> StackOptions {
    StackOptions {
        skip: vec![
            Component::Gateway,
            Component::Processors,
            Component::QueryApi,
        ],
        env: vec![("AGENTOPS_BATCH_MAX".into(), "500".into())],
        ..Default::default()
    }
}

/// Totals every projection must hold for `events` (each counted once).
struct Expected {
    events: i64,
    runs: i64,
    failed: i64,
    input_tokens: i64,
    cost: f64,
}

fn expected(events: &[AgentEvent]) -> Expected {
    let count = |ty: &str| events.iter().filter(|e| e.event_type == ty).count() as i64;
    Expected {
        events: events.len() as i64,
        runs: count("run_completed") + count("run_failed"),
        failed: count("run_failed"),
        input_tokens: events.iter().filter_map(|e| e.input_tokens).sum(),
        cost: events.iter().filter_map(|e| e.cost_usd).sum(),
    }
}

/// Check every relation against the expected totals.
async fn assert_exact(stack: &Stack, want: &Expected) -> Result<()> {
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM events")
            .fetch_one(&stack.pool)
            .await?;
    ensure!(
        rows == want.events,
        "{rows} event rows, expected {}",
        want.events
    );
    ensure!(
        rows == distinct,
        "duplicate event rows: {rows} rows, {distinct} ids"
    );
    for rel in agentops_runtime::storage::LEVELS.map(|l| l.name) {
        let (ev, runs, failed, inp, cost, hist): (i64, i64, i64, i64, f64, i64) =
            sqlx::query_as(&format!(
                "SELECT sum(events)::int8, sum(runs_completed + runs_failed)::int8,
                        sum(runs_failed)::int8, sum(input_tokens)::int8, sum(cost_usd)::float8,
                        ({})::int8
                 FROM {rel}",
                (0..agentops_schemas::histogram::BUCKETS)
                    .map(|i| format!(
                        "COALESCE(sum({}), 0)",
                        agentops_runtime::storage::hist_column(i)
                    ))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ))
            .fetch_one(&stack.pool)
            .await?;
        ensure!(ev == want.events, "{rel}: {ev} events");
        ensure!(
            runs == want.runs && failed == want.failed,
            "{rel}: {runs} runs, {failed} failed"
        );
        ensure!(inp == want.input_tokens, "{rel}: {inp} input tokens");
        ensure!(
            (cost - want.cost).abs() < 1e-6,
            "{rel}: cost {cost} vs {}",
            want.cost
        );
        ensure!(hist == want.runs, "{rel}: histogram holds {hist} runs");
    }
    let (runs, events): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status <> 'running'), COALESCE(sum(events), 0)::int8 FROM runs",
    )
    .fetch_one(&stack.pool)
    .await?;
    ensure!(
        runs == want.runs && events == want.events,
        "runs table: {runs} finished runs, {events} events"
    );
    Ok(())
}

/// The worker's progress: events written plus events derived, and each.
async fn progress(stack: &Stack) -> Result<(u64, i64, i64)> {
    let mut conn = stack.pool.acquire().await?;
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let derived = written - agentops_runtime::storage::deferred::backlog(&mut conn).await?;
    Ok(((written + derived) as u64, written, derived))
}

async fn wait_rows(stack: &Stack, n: i64, secs: u64) -> Result<()> {
    stack
        .eventually(
            Duration::from_secs(secs),
            &format!("{n} event rows"),
            || async { Ok((stack.event_rows().await? >= n).then_some(())) },
        )
        .await?;
    // Anything still in flight would show up now as an excess.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.derived().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_sigkilled_20_times_over_100k_events_counts_each_once() -> Result<()> {
    let mut opts = projections_only();
    // 16 partitions: each SIGKILL lands amid many partitions' batches.
    opts.partitions = Some(16);
    // The deriver (plain mode) in chunks of about ten batches, so its
    // progress is as fine-grained as the writer's and kills land mid-chunk.
    opts.env
        .push(("AGENTOPS_DERIVE_MAX_EVENTS".into(), "5000".into()));
    // The worker starts once the whole stream is in the log.
    opts.skip.push(Component::Projections);
    let mut stack = Stack::start("crash100k", opts).await?;
    let events = enriched_runs(
        &stack.org_id,
        "c",
        25_000,
        Utc::now() - Span::hours(3),
        Span::milliseconds(400),
    );
    ensure!(events.len() == 100_000);
    let want = expected(&events);
    // The whole stream is in the log first (with producer-retry duplicates:
    // every tenth chunk partly sent twice); the worker then works through it
    // and is killed 20 times on the way.
    let producer = stack.enriched_producer()?;
    for (i, chunk) in events.chunks(1000).enumerate() {
        producer.send(chunk).await?;
        if i % 10 == 3 {
            producer.send(&chunk[..250]).await?;
        }
    }
    stack.restart(Component::Projections, 0).await?;
    let mut mid_stream = 0;
    for kill in 0..20u64 {
        // Each kill lands at a random point of the work: the k-th once the
        // worker has done about k/21 of it (plus a random share of a step),
        // so kills spread over the whole run however fast the broker
        // delivers: mid-batch, mid-transaction, between commit and the Kafka
        // offset commit, mid-derivation (plain mode). The work is the
        // events written plus the events derived (the same in TimescaleDB
        // mode, where both happen in the batch's transaction).
        let step = 2 * want.events as u64 / 21;
        let target = step * (kill + 1) + rand::rng().random_range(0..step / 2);
        stack
            .eventually(
                Duration::from_secs(120),
                "the worker makes progress",
                || async { Ok((progress(&stack).await?.0 >= target).then_some(())) },
            )
            .await?;
        stack.kill(Component::Projections, 0)?;
        let (_, written, derived) = progress(&stack).await?;
        mid_stream += usize::from(derived < want.events);
        eprintln!("kill {kill}: {written} rows written, {derived} derived");
        stack.restart(Component::Projections, 0).await?;
    }
    ensure!(
        mid_stream >= 15,
        "only {mid_stream} of 20 kills landed mid-stream"
    );
    wait_rows(&stack, want.events, 600).await?;
    assert_exact(&stack, &want).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_mid_stream_resumes_with_exact_counts() -> Result<()> {
    let (admin, ctl) = agentops_e2e::restartable_pg()?;
    let mut opts = projections_only();
    opts.pg_admin_url = Some(admin);
    let stack = Stack::start("dbrestart", opts).await?;
    let events = enriched_runs(
        &stack.org_id,
        "d",
        5_000,
        Utc::now() - Span::hours(1),
        Span::milliseconds(500),
    );
    let want = expected(&events);
    let producer = stack.enriched_producer()?;
    let stream = events.clone();
    let sender = tokio::spawn(async move {
        for chunk in stream.chunks(500) {
            producer.send(chunk).await?;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        anyhow::Ok(())
    });
    wait_rows(&stack, 2_000, 120).await?;
    let pg = |action: &str| -> Result<()> {
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{ctl} {action}"))
            .status()?;
        ensure!(status.success(), "{ctl} {action} failed");
        Ok(())
    };
    pg("stop")?;
    // Longer than the pool's acquire timeout: writes fail and are retried.
    tokio::time::sleep(Duration::from_secs(12)).await;
    pg("start")?;
    sender.await??;
    wait_rows(&stack, want.events, 180).await?;
    assert_exact(&stack, &want).await
}

/// Every projection row, as text, in a stable order (cost rounded: float
/// sums in another batching differ in the last bits).
async fn snapshot(stack: &Stack) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for rel in agentops_runtime::storage::LEVELS.map(|l| l.name) {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT (to_jsonb(a) || jsonb_build_object('cost_usd', round(a.cost_usd::numeric, 9)))::text
             FROM {rel} a ORDER BY 1"
        ))
        .fetch_all(&stack.pool)
        .await?;
        out.extend(rows.into_iter().map(|(r,)| format!("{rel} {r}")));
    }
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT (to_jsonb(r) - 'updated_at' || jsonb_build_object('cost_usd', round(r.cost_usd::numeric, 9)))::text
         FROM runs r ORDER BY org_id, run_id",
    )
    .fetch_all(&stack.pool)
    .await?;
    out.extend(rows.into_iter().map(|(r,)| format!("runs {r}")));
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT (to_jsonb(g) - 'updated_at' || jsonb_build_object('cost_day', round(g.cost_day::numeric, 9)))::text
         FROM agents g ORDER BY org_id, agent_id",
    )
    .fetch_all(&stack.pool)
    .await?;
    out.extend(rows.into_iter().map(|(r,)| format!("agents {r}")));
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&stack.pool)
        .await?;
    out.push(format!("events {n}"));
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_from_the_log_ends_with_identical_aggregates() -> Result<()> {
    let stack = Stack::start("rebuild", projections_only()).await?;
    let org = stack.org_id.clone();
    let mut events = enriched_runs(
        &org,
        "b",
        2_000,
        Utc::now() - Span::hours(2),
        Span::seconds(2),
    );
    // Late data (3 and 6 days old) and producer-retry duplicates.
    events.extend(enriched_runs(
        &org,
        "late",
        50,
        Utc::now() - Span::days(3),
        Span::seconds(30),
    ));
    events.extend(enriched_runs(
        &org,
        "later",
        10,
        Utc::now() - Span::days(6),
        Span::seconds(30),
    ));
    let want = expected(&events);
    let producer = stack.enriched_producer()?;
    producer.send(&events).await?;
    producer.send(&events[..300]).await?;
    wait_rows(&stack, want.events, 180).await?;
    assert_exact(&stack, &want).await?;
    let health: serde_json::Value = reqwest::get(
        stack
            .metrics_url(Component::Projections, 0)
            .replace("/metrics", "/healthz"),
    )
    .await?
    .json()
    .await?;
    ensure!(health["details"]["storage_mode"] == "postgres", "{health}");
    let live = snapshot(&stack).await?;

    // Rebuild while the live worker keeps running (it pauses on the lock).
    let out = tokio::task::spawn_blocking({
        let mut cmd = stack.command(Component::Projections);
        move || cmd.arg("rebuild").output()
    })
    .await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "rebuild failed: {stderr}");
    ensure!(
        stderr.contains("records (100.0%)"),
        "no progress output: {stderr}"
    );
    ensure!(stderr.contains("rebuild: done"), "{stderr}");
    let rebuilt = snapshot(&stack).await?;
    ensure!(
        live.len() == rebuilt.len(),
        "{} rows live, {} rebuilt",
        live.len(),
        rebuilt.len()
    );
    for (a, b) in live.iter().zip(&rebuilt) {
        ensure!(a == b, "rebuild differs:\nlive:    {a}\nrebuilt: {b}");
    }

    // The live worker carries on from where the rebuild stopped.
    let more = enriched_runs(
        &org,
        "after",
        100,
        Utc::now() - Span::minutes(30),
        Span::seconds(5),
    );
    producer.send(&more).await?;
    let mut all = events;
    all.extend(more);
    let want = expected(&all);
    wait_rows(&stack, want.events, 120).await?;
    assert_exact(&stack, &want).await
}
