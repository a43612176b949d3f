//! Scaling out under load: 2 gateways, 3 processor instances and 2
//! projection instances on one topic set while agents keep sending; a
//! fourth processor joins and a projection is SIGKILLed mid-stream. The
//! result is exact: every event counted once, one alert per budget
//! threshold crossed, and every partition owned by exactly one live instance
//! (as the broker's group coordinator reports it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agentops_e2e::kafka::group_owners;
use agentops_e2e::webhook::Receiver;
use agentops_e2e::{events, kafka_brokers, Component, Stack, StackOptions};
use anyhow::{ensure, Result};

const PARTITIONS: i32 = 8;

/// Every partition of `topic` owned by exactly one member of `group`, and
/// `members` distinct members owning them; None until then.
fn ownership(group: &str, topic: &str, members: usize) -> Result<Option<BTreeMap<String, usize>>> {
    let owners = group_owners(&kafka_brokers(), group)?;
    let mut per_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for (t, p, m) in owners {
        if t == topic {
            per_partition.entry(p).or_default().extend(m);
        }
    }
    let all_once =
        per_partition.len() == PARTITIONS as usize && per_partition.values().all(|m| m.len() == 1);
    let mut load: BTreeMap<String, usize> = BTreeMap::new();
    for m in per_partition.values().flatten() {
        *load.entry(m.clone()).or_default() += 1;
    }
    Ok((all_once && load.len() == members).then_some(load))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processors_and_projections_scale_out_and_lose_an_instance_under_load() -> Result<()> {
    let hook = Receiver::start(0).await?;
    let mut stack = Stack::start(
        "scaleout",
        StackOptions {
            gateways: 2,
            processors: 3,
            projections: 2,
            partitions: Some(PARTITIONS),
            env: vec![("AGENTOPS_BUDGET_CHECK_INTERVAL_MS".into(), "200".into())],
            ..Default::default()
        },
    )
    .await?;
    let channel: String = sqlx::query_scalar(
        "INSERT INTO notification_channels (org_id, name, kind, url, secret)
         VALUES ($1, 'scale-hook', 'webhook', $2, 'test-secret') RETURNING id::text",
    )
    .bind(&stack.org_id)
    .bind(&hook.url)
    .fetch_one(&stack.pool)
    .await?;
    // 1,200 runs of 2 LLM calls: $10.80 in all. A $8/day budget: 50% at run
    // 445, 80% at run 712, 100% at run 889 — all in the second half of the
    // stream, after the fourth processor joined and a projection died.
    sqlx::query(
        "INSERT INTO budgets (org_id, name, period, limit_usd, thresholds, channels)
         VALUES ($1, 'fleet', 'day', 8.0, '{50,80,100}', ARRAY[$2::uuid])",
    )
    .bind(&stack.org_id)
    .bind(&channel)
    .execute(&stack.pool)
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // configuration reload

    let (all, _, _) = events::fleet(1200, 40, 9, "scale");
    ensure!(all.len() == 6000);
    let raw = stack.topic("raw");
    let enriched = stack.topic("enriched");
    let pgroup = stack.group_of(Component::Processors).expect("group");
    let jgroup = stack.group_of(Component::Projections).expect("group");
    stack
        .eventually(
            Duration::from_secs(60),
            "3 processors own the raw partitions",
            || async { ownership(&pgroup, &raw, 3) },
        )
        .await?;

    // Four senders, two per gateway, each a quarter of the stream in
    // batches of 25, paced so the stream lasts while the group changes.
    let quarter = all.len() / 4;
    let mut senders = Vec::new();
    for s in 0..4 {
        let ingest = stack.ingest_at(s % 2);
        let part: Vec<_> = all[s * quarter..(s + 1) * quarter].to_vec();
        senders.push(tokio::spawn(async move {
            for chunk in part.chunks(25) {
                ingest.send_all(chunk, 25).await?;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fourth = stack.add_instance(Component::Processors).await?;
    ensure!(fourth == 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.kill(Component::Projections, 1)?;
    for s in senders {
        s.await??;
    }

    stack
        .eventually(
            Duration::from_secs(120),
            "all 6,000 events projected",
            || async { Ok((stack.event_rows().await? >= 6000).then_some(())) },
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // anything late shows up as excess
    let (rows, distinct, llm_calls, tokens): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE type = 'llm_call'),
                COALESCE(sum(input_tokens + output_tokens), 0)::int8
           FROM events WHERE org_id = $1",
    )
    .bind(&stack.org_id)
    .fetch_one(&stack.pool)
    .await?;
    ensure!(
        rows == 6000 && distinct == 6000,
        "{rows} rows, {distinct} distinct"
    );
    ensure!(
        llm_calls == 2400 && tokens == 2400 * 1200,
        "{llm_calls} calls, {tokens} tokens"
    );
    let (agg_events, agg_cost): (i64, f64) = sqlx::query_as(
        "SELECT COALESCE(sum(events), 0)::int8, COALESCE(sum(cost_usd), 0)::float8
           FROM agg_1h WHERE org_id = $1",
    )
    .bind(&stack.org_id)
    .fetch_one(&stack.pool)
    .await?;
    ensure!(agg_events == 6000, "agg_1h counts {agg_events}");
    let want_cost = 2400.0 * events::LLM_CALL_COST;
    ensure!(
        (agg_cost - want_cost).abs() < 1e-6,
        "agg_1h cost {agg_cost}, want {want_cost}"
    );

    // One notification per threshold crossed, whichever instance saw it.
    stack
        .eventually(
            Duration::from_secs(60),
            "three budget notifications",
            || async { Ok((hook.received().len() >= 3).then_some(())) },
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await; // budget checkers keep looking
    let mut kinds: Vec<(String, String)> = hook
        .received()
        .iter()
        .map(|r| {
            let a = if r.body.get("kind").is_some() {
                &r.body
            } else {
                &r.body["alert"]
            };
            (
                a["kind"].as_str().unwrap_or("?").to_owned(),
                a["alert_id"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    kinds.sort();
    let ids: BTreeSet<&String> = kinds.iter().map(|(_, id)| id).collect();
    ensure!(
        kinds.len() == 3 && ids.len() == 3,
        "one notification per crossing (50/80/100%): {kinds:?}"
    );
    let (alert_rows,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM alerts WHERE org_id = $1 AND kind LIKE 'budget%'")
            .bind(&stack.org_id)
            .fetch_one(&stack.pool)
            .await?;
    ensure!(alert_rows == 3, "{alert_rows} budget alerts stored");

    // The broker's view: the 4 processors share the raw partitions, the
    // surviving projection owns every enriched partition.
    let load = stack
        .eventually(
            Duration::from_secs(60),
            "4 processors own the raw partitions",
            || async { ownership(&pgroup, &raw, 4) },
        )
        .await?;
    eprintln!("processors' partitions per member: {load:?}");
    stack
        .eventually(
            Duration::from_secs(60),
            "the surviving projection owns every partition",
            || async { ownership(&jgroup, &enriched, 1) },
        )
        .await?;
    Ok(())
}
