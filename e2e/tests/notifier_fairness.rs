//! End-to-end: the notifier shares its delivery slots fairly (issue 12).
//! One org's stalling or failing channels cannot delay another org's alert,
//! and a failing channel's circuit breaker holds its deliveries back for the
//! cool-down. Real processors, real HTTP receivers on [`RECEIVER_IP`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_e2e::webhook::{Receiver, RECEIVER_IP};
use agentops_e2e::{kafka_brokers, processors_only, Stack};
use axum::http::StatusCode;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

fn producer() -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("linger.ms", "0")
        .create()?)
}

async fn produce_alert(stack: &Stack, p: &FutureProducer, alert: &Value) -> anyhow::Result<()> {
    let key = alert["org_id"].as_str().unwrap_or_default().to_owned();
    let payload = serde_json::to_vec(alert)?;
    p.send(
        FutureRecord::to(&stack.topic("alerts"))
            .key(&key)
            .payload(&payload),
        Duration::from_secs(30),
    )
    .await
    .map_err(|(e, _)| anyhow::anyhow!("produce alert: {e}"))?;
    Ok(())
}

async fn add_channel(stack: &Stack, org: &str, name: &str, url: &str) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar(
        "INSERT INTO notification_channels (org_id, name, kind, url, secret)
         VALUES ($1, $2, 'webhook', $3, 'fairness-test-secret-0123456789abcdef')
         RETURNING id::text",
    )
    .bind(org)
    .bind(name)
    .bind(url)
    .fetch_one(&stack.pool)
    .await?)
}

/// An alert of `org` to every channel of the org.
fn alert(org: &str, id: &str) -> Value {
    json!({
        "alert_id": id,
        "org_id": org,
        "source": "rule",
        "kind": "error_rate",
        "scope_key": "org",
        "transition": "firing",
        "severity": "warning",
        "period": "",
        "threshold": 0.1,
        "value": 0.5,
        "message": "error rate 50%",
        "details": {},
        "channels": [],
        "occurred_at": chrono::Utc::now().to_rfc3339(),
    })
}

/// Accepts connections and never answers (reads until the client gives up),
/// counting the connections open at once and the most ever open.
#[derive(Clone)]
struct Staller {
    url: String,
    open: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
}

impl Staller {
    async fn start() -> anyhow::Result<Staller> {
        let listener = tokio::net::TcpListener::bind((RECEIVER_IP, 0)).await?;
        let url = format!("http://{}/stall", listener.local_addr()?);
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let (o, m) = (open.clone(), max_open.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let n = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(n, Ordering::SeqCst);
                let o = o.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {}
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Staller {
            url,
            open,
            max_open,
        })
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }
}

/// Produce one alert of `org` and wait until `hook` has received one more
/// POST; the time from produce to receipt (None past `limit`).
async fn latency(
    stack: &Stack,
    p: &FutureProducer,
    hook: &Receiver,
    org: &str,
    id: &str,
    limit: Duration,
) -> anyhow::Result<Option<Duration>> {
    let before = hook.received().len();
    let t0 = Instant::now();
    produce_alert(stack, p, &alert(org, id)).await?;
    while t0.elapsed() < limit {
        if hook.received().len() > before {
            return Ok(Some(t0.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(None)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Org A: 16 channels that accept and never answer and 16 that answer 503,
/// and a stream of alerts to all of them. Org B: one healthy channel. B's
/// alerts are timed alone, then during A's storm. Each request may take 60 s
/// before it times out, so under shared slots (every slot held by A's
/// stalled requests and its retries sleeping in their slots) B would wait a
/// minute or more; with per-org limits B's alert takes a free slot at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_orgs_stalling_channels_do_not_delay_another_orgs_alert() -> anyhow::Result<()> {
    let request_timeout = Duration::from_secs(60);
    let timeout_ms = request_timeout.as_millis().to_string();
    let stack = Stack::start(
        "notify_fair",
        processors_only(
            1,
            &[
                ("AGENTOPS_NOTIFY_REQUEST_TIMEOUT_MS", timeout_ms.as_str()),
                ("AGENTOPS_NOTIFY_DELIVERY_TIMEOUT_SECS", "600"),
                // The defaults: 16 slots, 4 per org, 2 per channel.
            ],
        ),
    )
    .await?;
    let org_a = stack.org_id.clone();
    let org_b = format!("{org_a}-b");
    agentops_query_api::admin::create_org_with_keys(&stack.pool, &org_b, "Org B", "e2e").await?;
    let staller = Staller::start().await?;
    let failing = Receiver::always_failing(503).await?;
    for i in 0..16 {
        add_channel(&stack, &org_a, &format!("stall-{i}"), &staller.url).await?;
        add_channel(&stack, &org_a, &format!("down-{i}"), &failing.url).await?;
    }
    let healthy = Receiver::start(0).await?;
    add_channel(&stack, &org_b, "ops", &healthy.url).await?;
    let p = producer()?;
    let samples = 20;

    // B alone (the first one warms up the consumer and the connection).
    latency(&stack, &p, &healthy, &org_b, "b-warmup", request_timeout)
        .await?
        .ok_or_else(|| anyhow::anyhow!("B's warm-up alert was not delivered"))?;
    let mut alone = Vec::new();
    for i in 0..samples {
        let id = format!("b-alone-{i}");
        let d = latency(&stack, &p, &healthy, &org_b, &id, request_timeout).await?;
        alone.push(d.ok_or_else(|| anyhow::anyhow!("{id} not delivered alone"))?);
    }

    // A's storm: 8 alerts x 32 channels, 256 deliveries that never succeed.
    for i in 0..8 {
        produce_alert(&stack, &p, &alert(&org_a, &format!("a-storm-{i}"))).await?;
    }
    // A has taken every slot it may: its stalled requests hold them (the
    // 503s give theirs back at once, the stalls keep them for 60 s).
    stack
        .eventually(Duration::from_secs(30), "A's requests stalled", || async {
            Ok((staller.open() >= 4).then_some(()))
        })
        .await?;
    let mut storm = Vec::new();
    for i in 0..samples {
        let id = format!("b-storm-{i}");
        // Past half a request timeout B counts as starved.
        let d = latency(&stack, &p, &healthy, &org_b, &id, request_timeout / 2).await?;
        let stalled = staller.open();
        let d = d.ok_or_else(|| {
            anyhow::anyhow!(
                "{id} waited over {:?} behind org A's storm ({stalled} stalled requests open)",
                request_timeout / 2
            )
        })?;
        storm.push(d);
    }
    // The storm was on throughout, and A never held more than its share.
    let a_delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_deliveries d JOIN alerts a USING (alert_id)
         WHERE a.org_id = $1 AND d.delivered_at IS NOT NULL",
    )
    .bind(&org_a)
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(a_delivered, 0);
    assert!(staller.open() >= 1, "A's stalled requests were still open");
    assert!(
        staller.max_open() <= 4,
        "org A had {} requests in flight at once, over notify_org_concurrency = 4",
        staller.max_open()
    );
    let b: Vec<String> = healthy
        .received()
        .iter()
        .map(|r| r.body["alert_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(b.len(), 2 * samples + 1, "each of B's alerts once: {b:?}");

    alone.sort();
    storm.sort();
    eprintln!(
        "notifier fairness: B's delivery latency (produce -> receipt, {samples} alerts each): \
         alone p50 {:?} p99 {:?}; during A's storm p50 {:?} p99 {:?} \
         (request timeout {request_timeout:?}; A: {} stalled at most at once, {} 503 answers)",
        percentile(&alone, 0.5),
        percentile(&alone, 0.99),
        percentile(&storm, 0.5),
        percentile(&storm, 0.99),
        staller.max_open(),
        failing.attempts(),
    );
    Ok(())
}

/// A channel failing twice in a row opens its breaker: none of its
/// deliveries is attempted during the cool-down (under plain backoff they
/// would be retried every ~100 ms), then one is tried, succeeds, and every
/// delivery goes through once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channels_breaker_holds_its_deliveries_for_the_cooldown() -> anyhow::Result<()> {
    let cooldown = Duration::from_secs(6);
    let cooldown_ms = cooldown.as_millis().to_string();
    let stack = Stack::start(
        "notify_breaker",
        processors_only(
            1,
            &[
                ("AGENTOPS_NOTIFY_BREAKER_FAILURES", "2"),
                ("AGENTOPS_NOTIFY_BREAKER_COOLDOWN_MS", cooldown_ms.as_str()),
                // One attempt at a time on the channel: the two failures are
                // the two first attempts, whatever the timing.
                ("AGENTOPS_NOTIFY_CHANNEL_CONCURRENCY", "1"),
            ],
        ),
    )
    .await?;
    let hook = Receiver::start_with(2, StatusCode::SERVICE_UNAVAILABLE).await?;
    let org = stack.org_id.clone();
    add_channel(&stack, &org, "flaky", &hook.url).await?;
    let p = producer()?;
    for i in 0..5 {
        produce_alert(&stack, &p, &alert(&org, &format!("breaker-{i}"))).await?;
    }
    stack
        .eventually(Duration::from_secs(30), "two failed attempts", || async {
            Ok((hook.attempts() >= 2).then_some(()))
        })
        .await?;
    // Half the cool-down: with the breaker open nothing more was tried.
    tokio::time::sleep(cooldown / 2).await;
    assert_eq!(
        hook.attempts(),
        2,
        "attempts during the breaker's cool-down"
    );
    assert!(hook.received().is_empty());
    stack
        .eventually(Duration::from_secs(60), "all five delivered", || async {
            Ok((hook.received().len() >= 5).then_some(()))
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.received().len(), 5, "each alert once");
    assert_eq!(hook.attempts(), 7, "two failures, then five successes");
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL),
                count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) FROM alert_deliveries",
    )
    .fetch_all(&stack.pool)
    .await?;
    assert_eq!(rows, vec![(5, 0)]);
    Ok(())
}
