//! 200 clients of two orgs: every fast client gets exactly its org's
//! frames; a stalled one is told what it lost, its memory stays bounded,
//! and the pipeline's throughput is not reduced by it.

use super::*;

/// What one fast client counted.
#[derive(Default)]
struct Tally {
    frames: AtomicUsize,
    foreign: AtomicUsize,
    lost: AtomicUsize,
}

/// Read frames until the socket ends, counting: frames of its org (run ids
/// starting `own`), foreign ones, lost ones.
fn tally(mut ws: Ws, own: String, t: Arc<Tally>) {
    tokio::spawn(async move {
        let own = format!("\"run_id\":\"{own}");
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(text) = m {
                let s = text.as_str();
                if s.contains("\"type\":\"lost\"") {
                    t.lost.fetch_add(1, Ordering::Relaxed);
                } else if s.contains(&own) {
                    t.frames.fetch_add(1, Ordering::Relaxed);
                } else {
                    t.foreign.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

/// Send `runs` runs per org (5 events each, 2 of them frames) at about
/// `rate` events/s in total, half to each org; returns when all are accepted.
/// Org a's runs fail with a long message (frames of ~4.3 kB).
async fn send_phase(
    stack: &Stack,
    keys: [&str; 2],
    prefix: [&str; 2],
    runs: usize,
    rate: usize,
) -> Result<()> {
    let mut tasks = Vec::new();
    for (key, prefix) in keys.into_iter().zip(prefix) {
        let (http, url, key) = (
            stack.http.clone(),
            format!("{}/v1/events", stack.gateway_url),
            key.to_owned(),
        );
        let (mut evs, _, _) = events::fleet(runs, 20, 7, prefix);
        if prefix.starts_with('a') {
            // Org a's runs all fail with a 4,000-byte message: its frames
            // outgrow what the kernel buffers for the stalled client.
            let long = "x".repeat(4000);
            for e in evs.iter_mut() {
                match e["type"].as_str() {
                    Some("run_completed") => {
                        e["type"] = json!("run_failed");
                        e["status"] = json!("error");
                        e["error_message"] = json!(long);
                    }
                    Some("run_failed") => e["error_message"] = json!(long),
                    _ => {}
                }
            }
        }
        let per_batch = 100;
        let every = Duration::from_secs_f64(per_batch as f64 / (rate as f64 / 2.0));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            for chunk in evs.chunks(per_batch) {
                tick.tick().await;
                let r = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"events": chunk}))
                    .send()
                    .await?;
                ensure!(r.status() == 202, "{}", r.status());
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Resident memory of a process (KiB).
fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_get_every_frame_and_a_stalled_one_only_loses_its_own() -> Result<()> {
    let opts = StackOptions {
        // No ping-driven close while the stalled client holds.
        env: vec![("AGENTOPS_LIVE__PING_INTERVAL_MS".into(), "300000".into())],
        ..Default::default()
    };
    let stack = Stack::start("live_fanout", opts).await?;
    let (_, b_keys) = other_org(&stack).await?;
    feed_streaming(&stack).await?;
    let rate: usize = std::env::var("AGENTOPS_TEST_LIVE_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000);
    let runs = rate * 8 / 10; // per org: ~8 s of events at `rate`

    let mut tallies: Vec<(usize, Arc<Tally>)> = Vec::new();
    for i in 0..200 {
        let (key, own) = if i % 2 == 0 {
            (&stack.read_key, "a")
        } else {
            (&b_keys[1], "b")
        };
        let ws = open_key(&stack, "", key).await?;
        let t = Arc::new(Tally::default());
        tally(ws, own.to_owned(), t.clone());
        tallies.push((i % 2, t));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let qpid = stack.pid(Component::QueryApi, 0).context("query api pid")?;

    // Phase 1: the 200 clients, no stalled one.
    let projected = |n: i64| {
        let stack = &stack;
        async move {
            stack
                .eventually(Duration::from_secs(300), "projected", || async {
                    Ok((stack.event_rows().await? >= n).then_some(()))
                })
                .await
        }
    };
    let phase = |want: usize| {
        let tallies = &tallies;
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            loop {
                let behind = tallies
                    .iter()
                    .filter(|(_, t)| t.frames.load(Ordering::Relaxed) < want)
                    .count();
                if behind == 0 {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("{behind} clients short of {want} frames");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let started = Instant::now();
    send_phase(
        &stack,
        [&stack.ingest_key, &b_keys[0]],
        ["a-p1", "b-p1"],
        runs,
        rate,
    )
    .await?;
    projected((runs * 2 * 5) as i64).await?;
    let phase1 = started.elapsed();
    phase(runs * 2).await?;
    let rss_before = rss_kib(qpid)?;

    // Phase 2: the same again, with a client of org a that never reads
    // (a small receive buffer, so the backlog stays on the server).
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_recv_buffer_size(2048)?;
    let addr: std::net::SocketAddr = stack.query_url.trim_start_matches("http://").parse()?;
    let tcp = sock.connect(addr).await?;
    let mut req = ws_url(&stack, "").into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", stack.read_key))?,
    );
    let (mut stalled, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    send_phase(
        &stack,
        [&stack.ingest_key, &b_keys[0]],
        ["a-p2", "b-p2"],
        runs,
        rate,
    )
    .await?;
    projected((runs * 2 * 5 * 2) as i64).await?;
    let phase2 = started.elapsed();
    // Every fast client has both phases, nothing foreign, nothing lost.
    phase(runs * 4).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (org, t) in &tallies {
        let (f, x, l) = (
            t.frames.load(Ordering::Relaxed),
            t.foreign.load(Ordering::Relaxed),
            t.lost.load(Ordering::Relaxed),
        );
        ensure!(
            f == runs * 4 && x == 0 && l == 0,
            "client of org {org}: {f} frames of {}, {x} foreign, {l} lost",
            runs * 4
        );
    }
    // The stalled client's queue is full and no more: 200 frames waiting in all.
    let queued = stack
        .eventually(Duration::from_secs(10), "queue gauge", || async {
            let q = stack
                .metric(Component::QueryApi, "agentops_live_queued_frames", "")
                .await?;
            Ok((q == 200.0).then_some(q))
        })
        .await?;
    let rss_after = rss_kib(qpid)?;
    let dropped = stack
        .metric(
            Component::QueryApi,
            "agentops_live_frames_dropped_total",
            "",
        )
        .await?;
    eprintln!(
        "phase 1 {phase1:?}, phase 2 {phase2:?}; queued {queued}, dropped {dropped}, rss {rss_before} -> {rss_after} KiB"
    );
    ensure!(
        dropped > 0.0,
        "nothing dropped: the stall did not fill the queue"
    );
    ensure!(
        rss_after < rss_before + 64 * 1024,
        "rss grew {rss_before} -> {rss_after} KiB"
    );

    // The pipeline's throughput: events projected per second with the
    // stalled client at least half of what it was without (a ratio).
    let events = (runs * 2 * 5) as f64;
    let (r1, r2) = (events / phase1.as_secs_f64(), events / phase2.as_secs_f64());
    ensure!(
        r2 >= 0.5 * r1,
        "projected {r1:.0}/s without the stalled client, {r2:.0}/s with it"
    );

    // It resumes: what it receives plus what it is told it lost is exactly
    // phase 2's frames of its org.
    let (mut got, mut lost, mut lost_frames) = (0usize, 0u64, 0);
    while got + (lost as usize) < runs * 2 {
        let m = tokio::time::timeout(Duration::from_secs(30), stalled.next())
            .await
            .context("the stalled client's frames")?
            .context("ended")??;
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str())?;
            match v["type"].as_str() {
                Some("lost") => {
                    lost += v["data"]["frames"].as_u64().context("frames")?;
                    lost_frames += 1;
                }
                _ => {
                    ensure!(
                        v["data"]["run_id"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("a-p2")),
                        "{v}"
                    );
                    got += 1;
                }
            }
        }
    }
    ensure!(lost_frames >= 1 && lost > 0, "never told what it lost");
    ensure!(
        got + lost as usize == runs * 2,
        "{got} + {lost} lost != {}",
        runs * 2
    );
    ensure!(
        lost as f64 == dropped,
        "told {lost} lost, {dropped} dropped"
    );
    Ok(())
}
