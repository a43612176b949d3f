//! Authentication and ingest limits that one tenant (or a stranger) cannot
//! turn against others (issue 12, item 0): guessed keys cost at most one
//! database lookup each and stop costing any once their address has failed
//! too often, while a valid client keeps being served; an org's ingest
//! limit is shared by all of its keys.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agentops_e2e::{events, Component, Stack, StackOptions};
use anyhow::{ensure, Result};
use serde_json::json;

fn unknown_key(i: usize) -> String {
    format!("aok_{:08x}_{:064x}", 0xdead_0000u32 + i as u32, i)
}

async fn post_with(stack: &Stack, key: &str, n: usize) -> Result<u16> {
    let batch: Vec<_> = (0..n)
        .map(|_| {
            json!({"event_id": events::id(), "type": "heartbeat", "agent_id": "a",
                   "timestamp": chrono::Utc::now().to_rfc3339()})
        })
        .collect();
    let (status, _) = stack
        .post_raw(
            "/v1/events",
            serde_json::to_vec(&json!({ "events": batch }))?,
            Some(key),
        )
        .await?;
    Ok(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_keys_cost_at_most_one_lookup_each_and_a_valid_client_keeps_going() -> Result<()> {
    let stack = Arc::new(Stack::start("auth_guess", StackOptions::gateway_only(vec![])).await?);
    let lookups = |found: &'static str| {
        let stack = stack.clone();
        async move {
            stack
                .metric(
                    Component::Gateway,
                    "agentops_key_lookups_total",
                    &format!("found=\"{found}\""),
                )
                .await
        }
    };
    let unknown_before = lookups("false").await?;

    // A valid client sends all along.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stack, stop, sent, refused) =
            (stack.clone(), stop.clone(), sent.clone(), refused.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let status = post_with(&stack, &stack.ingest_key, 5).await?;
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 202 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(())
        })
    };

    // 1,000 requests: 200 well-formed unknown keys five times each, and 100
    // malformed ones, from 8 concurrent guessers, over more than a key TTL.
    const DISTINCT: usize = 200;
    let next = Arc::new(AtomicUsize::new(0));
    let guessers: Vec<_> = (0..8)
        .map(|_| {
            let (stack, next) = (stack.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= 1_100 {
                        return anyhow::Ok(());
                    }
                    let key = if i < 1_000 {
                        unknown_key(i % DISTINCT)
                    } else {
                        format!("aok_not-a-key-{i}")
                    };
                    let status = post_with(&stack, &key, 1).await?;
                    ensure!(status == 401, "a guessed key got {status}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    for g in guessers {
        g.await??;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    client.await??;

    let unknown = lookups("false").await? - unknown_before;
    ensure!(
        unknown <= DISTINCT as f64,
        "{unknown} lookups for {DISTINCT} distinct unknown keys"
    );
    // The address ran out of failures early: most guesses were never looked up.
    ensure!(
        unknown < DISTINCT as f64 / 2.0,
        "{unknown} lookups: guesses from one address were not throttled"
    );
    let throttled = stack
        .metric(Component::Gateway, "agentops_auth_throttled_total", "")
        .await?;
    ensure!(throttled > 0.0, "nothing throttled");
    let (sent, refused) = (
        sent.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    ensure!(
        sent > 10 && refused == 0,
        "valid client: {refused} of {sent} refused"
    );
    eprintln!(
        "1,100 guesses: {unknown} database lookups, {throttled} throttled; valid client {sent} batches, none refused"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_of_one_org_share_its_ingest_limit() -> Result<()> {
    let stack = Stack::start("org_limit", StackOptions::gateway_only(vec![])).await?;
    let mut conn = stack.pool.acquire().await?;
    agentops_tenancy::set_org_limits(&mut conn, &stack.org_id, Some(1.0), Some(100.0), "e2e")
        .await?;
    drop(conn);
    let mut keys = Vec::new();
    for i in 0..3 {
        let k = agentops_tenancy::create_key_named(
            &stack.pool,
            &stack.org_id,
            &[agentops_runtime::keys::Scope::Ingest],
            Some(&format!("extra-{i}")),
            "e2e",
        )
        .await?;
        keys.push(k.secret);
    }
    // The org's 100-event burst, spent by one key...
    ensure!(post_with(&stack, &keys[0], 100).await? == 202);
    // ...is spent for the others too.
    for k in &keys[1..] {
        let status = post_with(&stack, k, 10).await?;
        ensure!(status == 429, "another key of the org got {status}");
    }
    // Another org is not affected.
    let other = agentops_query_api::admin::create_org_with_keys(
        &stack.pool,
        &format!("{}-b", stack.org_id),
        "B",
        "e2e",
    )
    .await?;
    ensure!(post_with(&stack, &other[0].secret, 10).await? == 202);
    Ok(())
}
