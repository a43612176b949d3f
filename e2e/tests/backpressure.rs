//! Backpressure and limits of the gateway against a real broker that is
//! killed (SIGKILL) and comes back: 2xx only for events the broker
//! acknowledged, 429/503 with `Retry-After` otherwise, never a duplicate and
//! never half a batch; every component reconnects by itself.

use std::sync::Arc;
use std::time::Duration;

use agentops_e2e::{events, KafkaCluster, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tokio::sync::Mutex;

/// What one client saw for one batch.
#[derive(Debug, Clone)]
struct Outcome {
    ids: Vec<String>,
    statuses: Vec<u16>,
    acked: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_clients_through_a_broker_restart_get_2xx_only_for_acknowledged_events() -> Result<()>
{
    // A private single Kafka node, so killing it disturbs no other test.
    let mut kafka = KafkaCluster::start("restart", 1).await?;
    let stack = Arc::new(
        Stack::start(
            "brokerrestart",
            StackOptions {
                brokers: Some(kafka.brokers()),
                env: vec![
                    ("AGENTOPS_PRODUCE_TIMEOUT_MS".into(), "2000".into()),
                    ("AGENTOPS_MAX_IN_FLIGHT".into(), "8".into()),
                ],
                dynamic_membership: true,
                ..Default::default()
            },
        )
        .await?,
    );
    // The broker works before it is stopped.
    let first = events::run("client-x", "warm-up", false, 100, 5);
    let (status, _, body) = stack.post_batch(&first).await?;
    ensure!(status == 202, "before the restart: {status} {body}");

    const CLIENTS: usize = 20;
    const BATCHES: usize = 40;
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let stack = stack.clone();
        let outcomes = outcomes.clone();
        // Odd clients retry a refused batch (same event ids) until it is
        // acknowledged, as the SDKs do; even ones give it up.
        let retries = c % 2 == 1;
        clients.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let mut batch = events::run(
                    &format!("client-{c}"),
                    &format!("c{c}-r{b}-a"),
                    false,
                    100,
                    5,
                );
                batch.extend(events::run(
                    &format!("client-{c}"),
                    &format!("c{c}-r{b}-b"),
                    b % 7 == 0,
                    100,
                    5,
                ));
                let ids = batch
                    .iter()
                    .map(|e| e["event_id"].as_str().unwrap().to_owned())
                    .collect();
                let mut o = Outcome {
                    ids,
                    statuses: Vec::new(),
                    acked: false,
                };
                loop {
                    let (status, retry_after, body) = stack.post_batch(&batch).await?;
                    o.statuses.push(status);
                    match status {
                        202 => {
                            ensure!(body["accepted"] == 10, "202 for part of a batch: {body}");
                            o.acked = true;
                            break;
                        }
                        429 | 503 => {
                            let wait = retry_after.context("429/503 without Retry-After")?;
                            ensure!(wait >= 1, "Retry-After {wait}");
                            let code = &body["error"]["code"];
                            // Far below the default rate limit: a 429 is the in-flight bound.
                            let want = if status == 429 {
                                "overloaded"
                            } else {
                                "unavailable"
                            };
                            ensure!(code == want, "{status}: {body}");
                            if !retries {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(500 * wait)).await;
                        }
                        other => anyhow::bail!("unexpected status {other}: {body}"),
                    }
                }
                outcomes.lock().await.push(o);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kafka.kill(1)?; // SIGKILL: no controlled shutdown
    tokio::time::sleep(Duration::from_secs(6)).await;
    kafka.restart(1, 1).await?;
    for c in clients {
        c.await??;
    }

    let outcomes = outcomes.lock().await.clone();
    let statuses: Vec<u16> = outcomes.iter().flat_map(|o| o.statuses.clone()).collect();
    for s in [202, 429, 503] {
        ensure!(
            statuses.contains(&s),
            "no {s} seen: the test did not exercise it"
        );
    }
    let acked: Vec<&String> = outcomes
        .iter()
        .filter(|o| o.acked)
        .flat_map(|o| &o.ids)
        .collect();
    let retried = outcomes.iter().filter(|o| o.statuses.len() > 1).count();
    eprintln!(
        "{} batches: {} acknowledged ({retried} after a retry), {} given up; statuses 202/429/503: {}/{}/{}",
        outcomes.len(),
        outcomes.iter().filter(|o| o.acked).count(),
        outcomes.iter().filter(|o| !o.acked).count(),
        statuses.iter().filter(|s| **s == 202).count(),
        statuses.iter().filter(|s| **s == 429).count(),
        statuses.iter().filter(|s| **s == 503).count(),
    );

    // Every acknowledged event projected, once (records refused with 503
    // may still arrive: librdkafka keeps them queued until the broker is back).
    let seen = stack.projected_once(&acked).await?;
    for o in &outcomes {
        let present = o.ids.iter().filter(|id| seen.contains_key(*id)).count();
        if o.acked {
            ensure!(
                present == o.ids.len(),
                "acknowledged batch with {present} of 10 events"
            );
        } else {
            ensure!(
                present == 0 || present == o.ids.len(),
                "refused batch half written: {present} of 10"
            );
        }
    }
    Ok(())
}

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB.
fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bodies_get_their_status_and_the_gateway_memory_stays_bounded() -> Result<()> {
    use agentops_e2e::Component;
    use std::io::Write;
    let stack = Stack::start("bodies", StackOptions::gateway_only(Vec::new())).await?;
    let send = |body: Vec<u8>, encoding: Option<&'static str>| {
        let mut r = stack
            .http
            .post(format!("{}/v1/events", stack.gateway_url))
            .bearer_auth(&stack.ingest_key)
            .header("content-type", "application/json");
        if let Some(e) = encoding {
            r = r.header("content-encoding", e);
        }
        async move {
            let r = r.body(body).send().await?;
            let status = r.status().as_u16();
            let body: Value = r.json().await?;
            anyhow::Ok((status, body))
        }
    };
    let expect = |(status, body): (u16, Value), want: u16, code: &str, says: &str| -> Result<()> {
        ensure!(status == want, "expected {want}, got {status}: {body}");
        ensure!(body["error"]["code"] == code, "expected {code}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        ensure!(
            message.contains(says),
            "message {message:?} should say {says:?}"
        );
        Ok(())
    };

    // 1 GiB of zeros in about 1 MiB (gzip) and a few KiB (zstd).
    let zeros = vec![b'0'; 1 << 30];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&zeros[..256 << 20])?;
    let gzip_bomb = gz.finish()?;
    let zstd_bomb = zstd::stream::encode_all(&zeros[..], 3)?;
    drop(zeros);
    ensure!(gzip_bomb.len() < 1 << 20 && zstd_bomb.len() < 1 << 20);
    let ten_mb = {
        let mut b = br#"{"events":[{"error_message":""#.to_vec();
        b.resize(10 << 20, b'x');
        b.extend_from_slice(br#""}]}"#);
        b
    };
    let now = chrono::Utc::now().to_rfc3339();
    let one_event = |i: usize| json!({"event_id": uuid::Uuid::new_v4().to_string(), "type": "heartbeat", "agent_id": format!("a{i}"), "timestamp": now});
    let too_many =
        serde_json::to_vec(&json!({"events": (0..1001).map(one_event).collect::<Vec<_>>()}))?;
    let deep = format!(
        r#"{{"events":[{{"event_id":"{}","type":"heartbeat","agent_id":"a","timestamp":"{now}","attributes":{{"x":{}{}}}}}]}}"#,
        uuid::Uuid::new_v4(),
        "[".repeat(100_000),
        "]".repeat(100_000)
    )
    .into_bytes();
    let mut bad_utf8 = serde_json::to_vec(&json!({"events": [one_event(0)]}))?;
    let at = bad_utf8
        .windows(2)
        .position(|w| w == b"a0")
        .context("agent id")?;
    bad_utf8[at + 1] = 0xff;

    let pid = stack.pid(Component::Gateway, 0).context("gateway pid")?;
    let (rss_before, _) = memory_kib(pid)?;

    expect(
        send(gzip_bomb.clone(), Some("gzip")).await?,
        413,
        "body_too_large",
        "decompressed",
    )?;
    expect(
        send(zstd_bomb.clone(), Some("zstd")).await?,
        413,
        "body_too_large",
        "decompressed",
    )?;
    expect(
        send(ten_mb.clone(), None).await?,
        413,
        "body_too_large",
        "larger than 1048576 bytes",
    )?;
    expect(
        send(too_many, None).await?,
        413,
        "batch_too_large",
        "1001 events; at most 1000",
    )?;
    // Nesting is skipped without recursion (no stack to exhaust); the event
    // is refused by name.
    let (status, body) = send(deep, None).await?;
    ensure!(
        status == 400 && body["rejected"][0]["field"] == "attributes.x",
        "deep nesting: {status} {body}"
    );
    let deep_event = format!(
        r#"{{"events":[{}{}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, body) = send(deep_event.into_bytes(), None).await?;
    ensure!(
        status == 400 && body["rejected"][0]["index"] == 0,
        "deep event: {status} {body}"
    );
    expect(
        send(bad_utf8, None).await?,
        400,
        "invalid_json",
        "not UTF-8",
    )?;

    // 20 clients at once, each sending bombs and 10 MB bodies (one of them
    // twice over): every answer is a 413 (or 429) and the peak
    // memory stays within what the in-flight bound allows.
    let mut tasks = Vec::new();
    for c in 0..20 {
        let (stack_url, key, http) = (
            stack.gateway_url.clone(),
            stack.ingest_key.clone(),
            stack.http.clone(),
        );
        let (g, z, t) = (gzip_bomb.clone(), zstd_bomb.clone(), ten_mb.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..3 {
                let (body, enc) = match (c + round) % 3 {
                    0 => (g.clone(), Some("gzip")),
                    1 => (z.clone(), Some("zstd")),
                    _ => (t.clone(), None),
                };
                let mut r = http
                    .post(format!("{stack_url}/v1/events"))
                    .bearer_auth(&key);
                if let Some(e) = enc {
                    r = r.header("content-encoding", e);
                }
                let status = r.body(body).send().await?.status().as_u16();
                ensure!(
                    status == 413 || status == 429,
                    "hostile body answered {status}"
                );
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let (rss_after, peak) = memory_kib(pid)?;
    eprintln!("gateway RSS before {rss_before} KiB, after {rss_after} KiB, peak {peak} KiB");
    // Uncapped, one bomb alone would take 256 MiB (gzip) or 1 GiB (zstd).
    ensure!(
        peak < rss_before + 128 * 1024,
        "gateway peak RSS {peak} KiB, {} KiB above its start",
        peak - rss_before
    );
    let ok = send(
        serde_json::to_vec(&json!({"events": [one_event(1)]}))?,
        None,
    )
    .await?;
    ensure!(
        ok.0 == 202,
        "the gateway still accepts good batches: {:?}",
        ok
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_and_do_not_hold_the_gateway() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start(
        "slowbody",
        StackOptions::gateway_only(vec![
            ("AGENTOPS_BODY_READ_TIMEOUT_MS".into(), "1500".into()),
            ("AGENTOPS_MAX_IN_FLIGHT".into(), "2".into()),
        ]),
    )
    .await?;
    let addr = stack.gateway_url.trim_start_matches("http://").to_owned();
    // Two clients announce 100 bytes and send 10, taking both slots.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(&addr).await?;
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"events\":",
            stack.ingest_key
        );
        c.write_all(head.as_bytes()).await?;
        slow.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let batch = events::run("a", "r-slow", false, 100, 5);
    let (status, _, body) = stack.post_batch(&batch).await?;
    ensure!(
        status == 429 && body["error"]["code"] == "overloaded",
        "while both slots are held: {status} {body}"
    );
    // Each slow client gets a 408 once the read timeout passes.
    for mut c in slow {
        let mut answer = vec![0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(15), c.read(&mut answer))
            .await
            .context("no answer to a stalled body")??;
        let text = String::from_utf8_lossy(&answer[..n]);
        ensure!(
            text.starts_with("HTTP/1.1 408"),
            "stalled body answered {text}"
        );
        ensure!(text.contains("request_timeout"), "{text}");
    }
    let (status, _, body) = stack.post_batch(&batch).await?;
    ensure!(status == 202, "slots free again: {status} {body}");
    Ok(())
}
