//! `bench-live`: fan-out of the live feed (`GET /v1/live`) through the whole
//! pipeline (gateway → raw topic → processors → enriched topic → query API's
//! tail → WebSocket).
//!
//! Runs are sent at a fixed rate through the gateway, half to each of two
//! orgs, in three phases: a warm-up, a baseline with no WebSocket client, and
//! the same load with `clients` clients connected (split over the orgs, each
//! with its org's read key). Each client notes when every frame arrives, by
//! `data.event_id`; for every run frame (`run.started`, `run.completed`,
//! `run.failed`) the fan-out latency is the time from its batch's 202 to its
//! arrival at each client of its org. The pipeline's throughput (events
//! projected per second, from the projections' `agentops_projection_events_total`,
//! first send → every accepted event projected) is measured in both phases of
//! the same run and reported as a ratio.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;
use anyhow::{bail, ensure, Result};
use serde_json::{json, Value};

use crate::fleet::Fleet;
use crate::http::Gateway;
use crate::procstat::CpuMark;

mod clients;
use clients::{open_client, uuid_bits, ws_url, ClientLog};

#[derive(clap::Args, Debug)]
pub struct LiveOptions {
    /// Gateway base URL.
    #[arg(long)]
    pub gateway: String,
    /// Query API base URL (`/v1/live`, `/healthz`).
    #[arg(long)]
    pub query_url: String,
    /// Ingest key of an org (give two: org a, org b).
    #[arg(long = "ingest-key", required = true)]
    pub ingest_keys: Vec<String>,
    /// Read key of the same orgs, in the same order.
    #[arg(long = "read-key", required = true)]
    pub read_keys: Vec<String>,
    /// WebSocket clients, split evenly over the orgs.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Events per second to send (both orgs together).
    #[arg(long, default_value_t = 2000)]
    pub rate: u64,
    /// Seconds of sending in each measured phase.
    #[arg(long, default_value_t = 30)]
    pub secs: u64,
    /// Seconds of sending before the baseline (not measured).
    #[arg(long, default_value_t = 5)]
    pub warmup_secs: u64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// The projections' `/metrics` URL (`agentops_projection_events_total`).
    #[arg(long)]
    pub projections_metrics: String,
    /// The query API's process id, for its CPU use in each phase.
    #[arg(long)]
    pub query_api_pid: Option<u32>,
}

/// One sending phase.
struct Sent {
    accepted: u64,
    rejected: u64,
    failed_batches: usize,
    first_error: Option<String>,
    /// First send → last 202.
    send_secs: f64,
    /// First send → every accepted event projected.
    projected_secs: f64,
    /// Per accepted batch: (org, time of its 202, its run frames' event ids).
    acks: Vec<(usize, Instant, Vec<u128>)>,
    /// Average cores busy: [query API, loadgen], and machine-wide (busy, cores).
    cpu: Vec<Option<f64>>,
    machine: Option<(f64, f64)>,
}

impl Sent {
    fn send_rate(&self) -> f64 {
        self.accepted as f64 / self.send_secs.max(1e-9)
    }
    fn projected_rate(&self) -> f64 {
        self.accepted as f64 / self.projected_secs.max(1e-9)
    }
}

fn is_run_frame(e: &Value) -> bool {
    matches!(
        e["type"].as_str(),
        Some("run_started" | "run_completed" | "run_failed")
    )
}

/// Sum of a counter's samples in a Prometheus text.
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum()
}

async fn projected(http: &reqwest::Client, url: &str) -> Result<f64> {
    let text = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(counter(&text, "agentops_projection_events_total"))
}

fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Send runs at `o.rate` for `secs` (batches alternate between the orgs,
/// on a fixed schedule), then wait until the projections counted them all.
async fn send_phase(
    o: &LiveOptions,
    gws: &[Gateway],
    fleet: &Fleet,
    http: &reqwest::Client,
    secs: u64,
    pids: &[Option<u32>],
) -> Result<Sent> {
    let before = projected(http, &o.projections_metrics).await?;
    let stop = CancellationToken::new();
    let mut rng = rand::rng();
    let per_sec = (o.rate as f64 / o.batch as f64).max(1.0);
    let n = (per_sec * secs as f64).round() as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
    let mut pending: Vec<Vec<Value>> = vec![Vec::new(); gws.len()];
    let mut tasks = Vec::with_capacity(n);
    let cpu = CpuMark::start(pids);
    let started = Instant::now();
    for i in 0..n {
        tick.tick().await;
        let org = i % gws.len();
        let buf = &mut pending[org];
        while buf.len() < o.batch {
            let now_us = chrono::Utc::now().timestamp_micros();
            let run = fleet.random_run(&mut rng, now_us - 30_000_000, false);
            buf.extend(run.into_iter().map(|(_, v)| v));
        }
        let batch: Vec<Value> = buf.drain(..o.batch).collect();
        let ids: Vec<u128> = batch
            .iter()
            .filter(|e| is_run_frame(e))
            .filter_map(|e| uuid_bits(e["event_id"].as_str()?))
            .collect();
        let (gw, stop) = (gws[org].clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let out = gw.send(&batch, &stop).await;
            (org, Instant::now(), ids, out)
        }));
    }
    let mut sent = Sent {
        accepted: 0,
        rejected: 0,
        failed_batches: 0,
        first_error: None,
        send_secs: 0.0,
        projected_secs: 0.0,
        acks: Vec::with_capacity(n),
        cpu: Vec::new(),
        machine: None,
    };
    let mut last = started;
    for t in tasks {
        let (org, at, ids, out) = t.await?;
        sent.rejected += out.rejected;
        if let Some(e) = out.failed {
            sent.failed_batches += 1;
            sent.first_error.get_or_insert(e);
            continue;
        }
        sent.accepted += out.accepted;
        last = last.max(at);
        sent.acks.push((org, at, ids));
    }
    sent.send_secs = (last - started).as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let now = projected(http, &o.projections_metrics).await?;
        if now - before >= sent.accepted as f64 {
            sent.projected_secs = started.elapsed().as_secs_f64();
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{} of {} accepted events projected 300 s after sending",
            now - before,
            sent.accepted
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sent.cpu = cpu.cores();
    sent.machine = cpu.system();
    Ok(sent)
}

/// The query API's `details.live_feed` from `/healthz`.
async fn live_feed(http: &reqwest::Client, query_url: &str) -> Result<Value> {
    let h: Value = http
        .get(format!("{}/healthz", query_url.trim_end_matches('/')))
        .send()
        .await?
        .json()
        .await?;
    Ok(h["details"]["live_feed"].clone())
}

async fn wait_feed(http: &reqwest::Client, o: &LiveOptions, clients: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let f = live_feed(http, &o.query_url).await?;
        if f["state"] == "streaming" && f["clients"].as_u64() == Some(clients) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("live feed not streaming with {clients} clients within 60 s: {f}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(o: LiveOptions) -> Result<()> {
    ensure!(
        o.ingest_keys.len() == o.read_keys.len() && !o.ingest_keys.is_empty(),
        "give as many --read-key as --ingest-key (one pair per org)"
    );
    ensure!(o.batch > 0 && o.rate > 0, "--batch and --rate must be > 0");
    let orgs = o.ingest_keys.len();
    let gws = o
        .ingest_keys
        .iter()
        .map(|k| Gateway::new(&o.gateway, k))
        .collect::<Result<Vec<_>>>()?;
    let http = reqwest::Client::new();
    let fleet = Fleet::new(200, &mut rand::rng());
    let pids = [o.query_api_pid, None];

    crate::log(&format!(
        "warm-up: {} events/s for {} s",
        o.rate, o.warmup_secs
    ));
    send_phase(&o, &gws, &fleet, &http, o.warmup_secs.max(1), &pids).await?;
    // The topics exist now (made by the first records): the feed has its partitions.
    wait_feed(&http, &o, 0).await?;
    crate::log(&format!(
        "baseline, no clients: {} events/s for {} s over {orgs} orgs",
        o.rate, o.secs
    ));
    let base = send_phase(&o, &gws, &fleet, &http, o.secs, &pids).await?;

    crate::log(&format!("opening {} WebSocket clients", o.clients));
    let stop = CancellationToken::new();
    let url = ws_url(&o.query_url);
    let frames = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(o.clients);
    for i in 0..o.clients {
        let org = i % orgs;
        handles
            .push(open_client(&url, &o.read_keys[org], org, frames.clone(), stop.clone()).await?);
    }
    wait_feed(&http, &o, o.clients as u64).await?;
    crate::log(&format!(
        "with {} clients: {} events/s for {} s",
        o.clients, o.rate, o.secs
    ));
    let with = send_phase(&o, &gws, &fleet, &http, o.secs, &pids).await?;

    // Every client's frames: the sum expected, then quiet for 5 s at most.
    let mut expected = vec![0usize; orgs];
    let mut owner: HashMap<u128, (usize, Instant)> = HashMap::new();
    for (org, at, ids) in &with.acks {
        expected[*org] += ids.len();
        owner.extend(ids.iter().map(|id| (*id, (*org, *at))));
    }
    let want: usize = (0..o.clients).map(|i| expected[i % orgs]).sum();
    let (mut seen, mut quiet_since) = (0, Instant::now());
    while frames.load(Ordering::Relaxed) < want && quiet_since.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = frames.load(Ordering::Relaxed);
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        }
    }
    stop.cancel();
    let mut logs = Vec::with_capacity(handles.len());
    for h in handles {
        logs.push(h.await?);
    }
    report(&o, &base, &with, &logs, &expected, &owner);
    Ok(())
}

fn report(
    o: &LiveOptions,
    base: &Sent,
    with: &Sent,
    logs: &[ClientLog],
    expected: &[usize],
    owner: &HashMap<u128, (usize, Instant)>,
) {
    let (mut lat, mut early, mut foreign, mut stray, mut dups) =
        (Vec::new(), 0u64, 0u64, 0u64, 0u64);
    let (mut complete, mut missing, mut lost, mut ended) = (0usize, 0usize, 0u64, 0usize);
    let (mut lost_frames, mut other) = (0u64, 0u64);
    let (mut least, mut most) = (usize::MAX, 0usize);
    for log in logs {
        let mut got: HashSet<u128> = HashSet::with_capacity(expected[log.org]);
        for (id, at) in &log.arrivals {
            match owner.get(id) {
                Some((org, ack)) if *org == log.org => {
                    if !got.insert(*id) {
                        dups += 1;
                        continue;
                    }
                    if at < ack {
                        early += 1;
                    }
                    lat.push(at.saturating_duration_since(*ack).as_secs_f64() * 1000.0);
                }
                Some(_) => foreign += 1,
                None => stray += 1,
            }
        }
        let want = expected[log.org];
        (least, most) = (least.min(got.len()), most.max(got.len()));
        missing += want.saturating_sub(got.len());
        complete += usize::from(got.len() == want);
        lost += log.lost;
        lost_frames += log.lost_frames;
        other += log.other;
        ended += usize::from(log.ended.is_some());
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| (quantile(&lat, p) * 10.0).round() / 10.0;
    let ratio = with.projected_rate() / base.projected_rate().max(1e-9);
    let r = |x: f64| x.round();

    for (name, s) in [("no clients", base), ("with clients", with)] {
        println!(
            "{name}: sent {} events at {:.0} events/s (target {}; {} batches failed, {} events rejected{}), projected {:.0} events/s (first send → all projected)",
            s.accepted, s.send_rate(), o.rate, s.failed_batches, s.rejected,
            s.first_error.as_deref().map(|e| format!(", first error: {e}")).unwrap_or_default(),
            s.projected_rate()
        );
    }
    let short = [base, with]
        .iter()
        .any(|s| s.send_rate() < 0.95 * o.rate as f64);
    if short {
        println!(
            "NOTE: this machine did not sustain {} events/s through the gateway: it reached {:.0} (no clients) and {:.0} (with clients)",
            o.rate, base.send_rate(), with.send_rate()
        );
    }
    println!(
        "pipeline throughput with {} clients / without: {ratio:.3} ({:.0} / {:.0} events projected/s)",
        o.clients,
        with.projected_rate(),
        base.projected_rate()
    );
    println!(
        "fan-out latency (202 → frame at the client) over {} (client, frame) pairs: p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({early} frames arrived before their 202 was read, counted as 0)",
        lat.len(), q(0.5), q(0.95), q(0.99), q(1.0)
    );
    println!(
        "frames per client: expected {expected:?} (per org), received {least}..{most}; {complete} of {} clients got every frame; {missing} missing, {lost} reported lost (in {lost_frames} `lost` frames), {dups} duplicates, {other} frames without an event id, {ended} sockets ended early",
        logs.len()
    );
    println!("other-org frames seen: {foreign}; frames of events not sent in this phase: {stray}");
    let cores = |s: &Sent, i: usize| {
        s.cpu
            .get(i)
            .copied()
            .flatten()
            .map(|c| (c * 100.0).round() / 100.0)
    };
    let machine = |s: &Sent| s.machine.map(|m| (m.0 * 100.0).round() / 100.0);
    let show = |c: Option<f64>| c.map_or("?".to_owned(), |c| format!("{c:.2}"));
    println!(
        "CPU cores busy (no clients → with clients): query API {} → {}, loadgen {} → {}, machine {} → {} of {}",
        show(cores(base, 0)), show(cores(with, 0)), show(cores(base, 1)), show(cores(with, 1)),
        show(machine(base)), show(machine(with)), show(with.machine.map(|m| m.1)),
    );
    println!(
        "{}",
        json!({"bench": "live_fanout", "clients": o.clients, "target_events_per_s": o.rate, "secs": o.secs,
               "sent_events_per_s": {"no_clients": r(base.send_rate()), "with_clients": r(with.send_rate())},
               "sustained_target": !short,
               "projected_events_per_s": {"no_clients": r(base.projected_rate()), "with_clients": r(with.projected_rate())},
               "throughput_ratio": (ratio * 1000.0).round() / 1000.0,
               "latency_ms": {"pairs": lat.len(), "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": q(1.0)},
               "frames_expected_per_org": expected, "frames_received_min": least, "frames_received_max": most,
               "clients_complete": complete, "missing": missing, "lost": lost, "lost_frames": lost_frames, "no_event_id": other, "duplicates": dups,
               "other_org": foreign, "stray": stray, "ended_early": ended,
               "cpu_cores": {"query_api": [cores(base, 0), cores(with, 0)], "loadgen": [cores(base, 1), cores(with, 1)],
                             "machine": [machine(base), machine(with)]}})
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_by_exact_name() {
        let text = "# TYPE agentops_projection_events_total counter
agentops_projection_events_total 1200
agentops_projection_events_total_other 5
agentops_projection_events_total{x=\"y\"} 30
";
        assert_eq!(counter(text, "agentops_projection_events_total"), 1230.0);
        assert!(is_run_frame(&json!({"type": "run_completed"})));
        assert!(!is_run_frame(&json!({"type": "llm_call"})));
    }
}
