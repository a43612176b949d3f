//! A three-broker KRaft cluster (each node broker + controller, replication
//! factor 3, `min.insync.replicas=2`, the gateway producing with
//! `acks=all`) under load from ten clients: the leader of the busiest
//! partitions is SIGKILLed, then a second broker, then both come back.
//! Nothing the gateway acknowledged is lost or counted twice, and while
//! fewer than two replicas can be in sync it answers 503, never a 2xx it
//! cannot keep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_e2e::{events, KafkaCluster, Stack, StackOptions};
use anyhow::{bail, ensure, Context, Result};
use tokio::sync::Mutex;

/// One POST of a batch: when it was sent and what came back.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    sent: Instant,
    status: u16,
}

/// One batch of ten events and every attempt to deliver it.
#[derive(Debug, Clone)]
struct Batch {
    ids: Vec<String>,
    attempts: Vec<Attempt>,
}

impl Batch {
    fn acked(&self) -> bool {
        self.attempts.iter().any(|a| a.status == 202)
    }
}

type Log = Arc<Mutex<Vec<Batch>>>;

/// A client that sends two runs per batch until `stop`, retrying a refused
/// batch with the same event ids (as the SDKs do) after its `Retry-After`.
async fn client(stack: Arc<Stack>, c: usize, stop: Arc<AtomicBool>, log: Log) -> Result<()> {
    let mut b = 0;
    while !stop.load(Ordering::Relaxed) {
        let agent = format!("client-{c}");
        let mut batch = events::run(&agent, &format!("c{c}-r{b}-a"), false, 100, 5);
        batch.extend(events::run(
            &agent,
            &format!("c{c}-r{b}-b"),
            b % 7 == 0,
            100,
            5,
        ));
        b += 1;
        let mut record = Batch {
            ids: batch
                .iter()
                .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
                .collect(),
            attempts: Vec::new(),
        };
        loop {
            let sent = Instant::now();
            let (status, retry_after, body) = stack.post_batch(&batch).await?;
            record.attempts.push(Attempt { sent, status });
            match status {
                202 => {
                    ensure!(body["accepted"] == 10, "202 for part of a batch: {body}");
                    break;
                }
                429 | 503 => {
                    let wait = retry_after.context("429/503 without Retry-After")?;
                    ensure!(wait >= 1, "Retry-After {wait}");
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // A tenth of the advised wait: the test wants to probe
                    // the gateway often while brokers are down.
                    tokio::time::sleep(Duration::from_millis(100 * wait)).await;
                }
                other => bail!("unexpected status {other}: {body}"),
            }
        }
        log.lock().await.push(record);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Wait until some batch sent after `after` was acknowledged; returns when.
async fn first_ack_after(log: &Log, after: Instant, what: &str) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let first = log
            .lock()
            .await
            .iter()
            .flat_map(|b| &b.attempts)
            .filter(|a| a.status == 202 && a.sent >= after)
            .map(|a| a.sent)
            .min();
        if let Some(t) = first {
            return Ok(t);
        }
        ensure!(Instant::now() < deadline, "{what}: no 202 within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_brokers_lose_two_and_recover_without_losing_an_acknowledged_event() -> Result<()> {
    let mut kafka = KafkaCluster::start("cluster", 3).await?;
    let stack = Arc::new(
        Stack::start(
            "cluster3",
            StackOptions {
                brokers: Some(kafka.brokers()),
                partitions: Some(6),
                env: vec![("AGENTOPS_PRODUCE_TIMEOUT_MS".into(), "3000".into())],
                dynamic_membership: true,
                ..Default::default()
            },
        )
        .await?,
    );
    let raw = stack.topic("raw");
    let (status, _, body) = stack
        .post_batch(&events::run("client-x", "warm-up", false, 100, 5))
        .await?;
    ensure!(status == 202, "before any fault: {status} {body}");

    const CLIENTS: usize = 10;
    let stop = Arc::new(AtomicBool::new(false));
    let log: Log = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(stack.clone(), c, stop.clone(), log.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 1. The leader of the busiest partitions dies: its partitions move to
    // the two others, which keep taking writes (two replicas in sync).
    let first = kafka.busiest_leader(&raw).await?;
    let killed_first = Instant::now();
    kafka.kill(first)?;
    let failover = first_ack_after(&log, killed_first, "after the first kill").await?;
    stack
        .eventually(
            Duration::from_secs(120),
            "every partition back to two in-sync replicas",
            || async {
                Ok(kafka
                    .isr(&raw)
                    .await?
                    .iter()
                    .all(|(_, n)| *n == 2)
                    .then_some(()))
            },
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. A second broker dies: one replica left, below min.insync.replicas
    // (and below the controller quorum). Nothing may be acknowledged now.
    let second = *kafka
        .node_ids()
        .iter()
        .find(|id| **id != first)
        .context("a second node")?;
    kafka.kill(second)?;
    let killed_second = Instant::now();
    tokio::time::sleep(Duration::from_secs(12)).await;

    // 3. Both come back; writes resume.
    let restarted = Instant::now();
    kafka.restart(first, 2).await?;
    kafka.restart(second, 3).await?;
    let recovered = first_ack_after(&log, restarted, "after the restarts").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await??;
    }

    let batches = log.lock().await.clone();
    let attempts: Vec<Attempt> = batches.iter().flat_map(|b| b.attempts.clone()).collect();
    let during = |a: &Attempt| a.sent >= killed_second && a.sent < restarted;
    let probed = attempts.iter().filter(|a| during(a)).count();
    let wrongly_acked = attempts
        .iter()
        .filter(|a| during(a) && a.status < 300)
        .count();
    ensure!(
        wrongly_acked == 0,
        "{wrongly_acked} of {probed} requests acknowledged with one broker left"
    );
    ensure!(
        probed > 0,
        "no request reached the gateway with one broker left"
    );
    let refused = attempts.iter().filter(|a| a.status != 202).count();
    let acked: Vec<&String> = batches
        .iter()
        .filter(|b| b.acked())
        .flat_map(|b| &b.ids)
        .collect();
    let given_up = batches.iter().filter(|b| !b.acked()).count();

    // Every acknowledged event projected, once; the count then stays put.
    let seen = stack.projected_once(&acked).await?;
    let stored_unacked = seen.len().saturating_sub(acked.len() + 5); // 5: the warm-up run
    eprintln!(
        "three brokers: {} batches ({} events acknowledged, {given_up} batches given up at the end); \
         {} requests, {refused} refused (429/503), {probed} with one broker left and none acknowledged; \
         first 202 {:.1} s after killing node {first}; writes back {:.1} s after restarting nodes {first} and {second}; \
         {stored_unacked} events stored although their last answer was a refusal (a retry or a late replica write, each counted once)",
        batches.len(),
        acked.len(),
        attempts.len(),
        (failover - killed_first).as_secs_f64(),
        (recovered - restarted).as_secs_f64(),
    );
    Ok(())
}
