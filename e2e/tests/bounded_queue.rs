//! The spend the enrich stage hands to the budget checker is bounded
//! (`processors/src/budget.rs`): while the database is stopped under load,
//! the processors' memory stays flat.
//!
//! Needs the second PostgreSQL that `deploy/local/test.sh` starts
//! (`AGENTOPS_TEST_PG_RESTART`, `AGENTOPS_TEST_PG_RESTART_CTL`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_e2e::events::enriched_event;
use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use chrono::Utc;

/// Events per second the test writes to the raw topic.
const RATE: u64 = 1_000;
/// Unprojected spend entries the budget checker may hold (the setting).
const PENDING_MAX: u64 = 2_000;

fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

/// The most RSS seen over `span`, sampled every 250 ms.
async fn max_rss(pid: u32, span: Duration) -> Result<u64> {
    let end = Instant::now() + span;
    let mut max = 0;
    while Instant::now() < end {
        max = max.max(rss_bytes(pid)?);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_memory_stays_flat_while_the_database_is_stopped_under_load() -> Result<()> {
    let (admin, ctl) = agentops_e2e::restartable_pg()?;
    let stack = Stack::start(
        "boundedq",
        StackOptions {
            pg_admin_url: Some(admin),
            skip: vec![Component::Gateway, Component::QueryApi],
            env: vec![
                (
                    "AGENTOPS_BUDGET_PENDING_MAX".into(),
                    PENDING_MAX.to_string(),
                ),
                ("AGENTOPS_BUDGET_CHECK_INTERVAL_MS".into(), "200".into()),
            ],
            ..Default::default()
        },
    )
    .await?;
    // A budget, so every priced event is spend the checker keeps; far from
    // its limit (no alert).
    sqlx::query(
        "INSERT INTO budgets (org_id, name, period, limit_usd, thresholds)
         VALUES ($1, 'huge', 'day', 1e9, '{100}')",
    )
    .bind(&stack.org_id)
    .execute(&stack.pool)
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // governance reload

    // Priced LLM calls with ~1 KiB of attributes each, RATE per second.
    let producer = stack.raw_producer()?;
    let org = stack.org_id.clone();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = agentops_runtime::shutdown::CancellationToken::new();
    let load = tokio::spawn({
        let (sent, stop) = (sent.clone(), stop.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut n = 0u64;
            while !stop.is_cancelled() {
                tick.tick().await;
                let chunk: Vec<_> = (0..RATE / 10)
                    .map(|_| {
                        n += 1;
                        let mut e = enriched_event(
                            &org,
                            "llm_call",
                            &format!("agent-{}", n % 50),
                            &format!("run-{}", n / 4),
                            Utc::now(),
                        );
                        e.provider = Some("openai".into());
                        e.model = Some("gpt-4o".into());
                        e.input_tokens = Some(1_000);
                        e.output_tokens = Some(100);
                        for i in 0..16 {
                            e.attributes
                                .insert(format!("attribute.{i}"), format!("{n:0>56}"));
                        }
                        e
                    })
                    .collect();
                producer.send(&chunk).await?;
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            anyhow::Ok(())
        }
    });

    let pid = stack
        .pid(Component::Processors, 0)
        .context("processors pid")?;
    // Warm-up with the database up; the baseline is the most seen at its end.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let baseline = max_rss(pid, Duration::from_secs(5)).await?;
    let enriched_before = stack
        .metric(Component::Processors, "agentops_processor_events_total", "")
        .await?;
    let pg = |action: &str| -> Result<()> {
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{ctl} {action}"))
            .status()?;
        ensure!(status.success(), "{ctl} {action} failed");
        Ok(())
    };
    let sent_before = sent.load(Ordering::SeqCst);
    pg("stop")?;
    let outage = max_rss(pid, Duration::from_secs(30)).await;
    let enriched_during = stack
        .metric(Component::Processors, "agentops_processor_events_total", "")
        .await;
    let sent_during = sent.load(Ordering::SeqCst) - sent_before;
    pg("start")?;
    let (outage, enriched_during) = (outage?, enriched_during?);
    stop.cancel();
    load.await??;

    // An unbounded hand-over holds every priced event that arrives (decoded,
    // so at least its encoded size): the margin is half of what arrived.
    let arrived = sent_during * 1_200;
    let margin = arrived / 2;
    let dropped = stack
        .metric(
            Component::Processors,
            "agentops_budget_local_dropped_total",
            "",
        )
        .await?;
    eprintln!(
        "rss baseline {} MiB, max while stopped {} MiB (+{} MiB), margin {} MiB; \
         {sent_during} events sent while stopped, {} enriched; {dropped} left to the projections",
        baseline >> 20,
        outage >> 20,
        outage.saturating_sub(baseline) >> 20,
        margin >> 20,
        enriched_during - enriched_before,
    );
    ensure!(
        sent_during >= 20 * RATE,
        "the load fell behind ({sent_during} events in 30 s): the test proves nothing"
    );
    // The enrich stage kept going (it is not held by the stopped database).
    ensure!(
        enriched_during - enriched_before >= sent_during as f64 / 2.0,
        "enriched {} of {sent_during} while the database was stopped",
        enriched_during - enriched_before
    );
    // The bound was reached: without it, all of that spend would be held.
    ensure!(
        dropped > 0.0,
        "the budget checker never reached budget_pending_max"
    );
    ensure!(
        outage <= baseline + margin,
        "memory grew by {} MiB while the database was stopped (margin {} MiB)",
        outage.saturating_sub(baseline) >> 20,
        margin >> 20
    );
    stack.wait_healthy(Component::Processors, 0).await?;
    Ok(())
}
