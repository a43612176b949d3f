//! `demo`: a live synthetic fleet posting to the gateway at about `--rate`
//! events/s (batches every 250 ms, timestamps = now), optionally after a
//! backfill of the last N hours at a lower density so charts are not empty.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::fleet::{Fleet, Timed};
use crate::http::Gateway;
use crate::log;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Gateway base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Ingest API key.
    #[arg(long, env = "AGENTOPS_INGEST_KEY", hide_env_values = true)]
    pub key: String,
    /// Number of agents in the fleet.
    #[arg(long, default_value_t = 60)]
    pub agents: usize,
    /// Approximate events per second, overall.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Stop after this many seconds (0 = run until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0)]
    pub duration_secs: u64,
    /// First send history spread over the last N hours (0 = none; at most 167).
    #[arg(long, default_value_t = 0.0)]
    pub backfill_hours: f64,
    /// Backfill density as a share of the live rate.
    #[arg(long, default_value_t = 0.1)]
    pub backfill_density: f64,
    /// Most backfill events per second (history arrives fast without taking
    /// the whole of a small machine from the live fleet).
    #[arg(long, default_value_t = 2000.0)]
    pub backfill_rate: f64,
    /// Random seed (default: from the OS).
    #[arg(long)]
    pub seed: Option<u64>,
}

const TICK: Duration = Duration::from_millis(250);
const MAX_BATCH: usize = 1000;
const HEARTBEAT_US: i64 = 30_000_000;
/// Backfill batches in flight (history goes as fast as the gateway takes it).
const BACKFILL_IN_FLIGHT: usize = 2;

#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    failed_batches: AtomicU64,
    failed_events: AtomicU64,
    retries: AtomicU64,
}

impl Stats {
    fn line(&self) -> String {
        format!(
            "sent {} events: accepted {}, rejected {}; failed batches {} ({} events); retries {}",
            self.sent.load(Relaxed),
            self.accepted.load(Relaxed),
            self.rejected.load(Relaxed),
            self.failed_batches.load(Relaxed),
            self.failed_events.load(Relaxed),
            self.retries.load(Relaxed),
        )
    }
}

/// Events waiting for their timestamp, in time order.
#[derive(Default)]
struct Queue {
    map: BTreeMap<(i64, u64), Value>,
    seq: u64,
}

impl Queue {
    fn push_all(&mut self, events: Vec<Timed>) {
        for (ts, v) in events {
            self.seq += 1;
            self.map.insert((ts, self.seq), v);
        }
    }

    /// Up to `max` events due at `until` (inclusive).
    fn due(&mut self, until: i64, max: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.map.first_entry() {
                Some(e) if e.key().0 <= until => out.push(e.remove()),
                _ => break,
            }
        }
        out
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Exponential inter-arrival time for `per_sec` arrivals a second, in µs.
fn exp_gap_us(rng: &mut impl Rng, per_sec: f64) -> i64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    (-u.ln() / per_sec.max(1e-6) * 1e6) as i64
}

struct Demo {
    opts: DemoOptions,
    fleet: Fleet,
    gw: Gateway,
    rng: StdRng,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    mean_events: f64,
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let shutdown = agentops_runtime::shutdown::on_signal();
    let mut rng = match opts.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_os_rng(),
    };
    let fleet = Fleet::new(opts.agents, &mut rng);
    let mean_events = fleet.mean_events_per_run(&mut rng);
    let gw = Gateway::new(&opts.gateway, &opts.key)?;
    let stats = Arc::new(Stats::default());
    log(&format!(
        "demo fleet: {} agents, ~{} events/s to {} (~{mean_events:.1} events per run)",
        fleet.agent_count(),
        opts.rate,
        opts.gateway
    ));
    let reporter = {
        let (stats, stop) = (stats.clone(), shutdown.child_token());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => log(&stats.line()),
                }
            }
        })
    };
    let mut demo = Demo {
        opts,
        fleet,
        gw,
        rng,
        stats: stats.clone(),
        shutdown: shutdown.clone(),
        mean_events,
    };
    let queue = demo.backfill().await;
    if !shutdown.is_cancelled() {
        demo.live(queue).await;
    }
    shutdown.cancel();
    let _ = reporter.await;
    log(&format!("stopped; {}", stats.line()));
    Ok(())
}

impl Demo {
    /// Post `events` in batches of at most `MAX_BATCH`, counting what became of them.
    async fn post(&self, events: Vec<Value>) {
        for chunk in events.chunks(MAX_BATCH) {
            let out = self.gw.send(chunk, &self.shutdown).await;
            let s = &self.stats;
            s.sent.fetch_add(chunk.len() as u64, Relaxed);
            s.accepted.fetch_add(out.accepted, Relaxed);
            s.rejected.fetch_add(out.rejected, Relaxed);
            s.retries.fetch_add(u64::from(out.retries), Relaxed);
            if let Some(r) = out.first_reject {
                log(&format!("{} event(s) rejected, e.g. {r}", out.rejected));
            }
            if let Some(why) = out.failed {
                s.failed_batches.fetch_add(1, Relaxed);
                s.failed_events
                    .fetch_add((chunk.len() as u64).saturating_sub(out.rejected), Relaxed);
                log(&format!("batch of {} events not sent: {why}", chunk.len()));
            }
        }
    }

    /// History over the last `--backfill-hours`, with a diurnal swell and a
    /// 20-minute rate-limit incident. Returns runs still in flight at "now".
    async fn backfill(&mut self) -> Queue {
        let mut queue = Queue::default();
        let hours = self.opts.backfill_hours.clamp(0.0, 167.0);
        if hours <= 0.0 {
            return queue;
        }
        let started = Instant::now();
        let end = now_us() - 120_000_000;
        let start = end - (hours * 3600e6) as i64;
        let runs_per_sec = (self.opts.rate * self.opts.backfill_density) / self.mean_events;
        let incident = (
            start + ((end - start) as f64 * 0.65) as i64,
            20 * 60_000_000,
        );
        const PEAK: f64 = 1.4;
        let chunk_us = 5 * 60_000_000;
        let mut next_run = start;
        let mut t = start;
        let sent_before = self.stats.sent.load(Relaxed);
        log(&format!(
            "backfill: {hours} h of history at {:.0}% of the live rate",
            self.opts.backfill_density * 100.0
        ));
        while t < end && !self.shutdown.is_cancelled() {
            let chunk_end = (t + chunk_us).min(end);
            while next_run < chunk_end {
                let hour = (next_run / 3_600_000_000) % 24;
                let diurnal =
                    1.0 + 0.4 * (std::f64::consts::TAU * (hour as f64 - 9.0) / 24.0).sin();
                if self.rng.random_bool((diurnal / PEAK).clamp(0.0, 1.0)) {
                    let in_incident = next_run >= incident.0 && next_run < incident.0 + incident.1;
                    queue.push_all(self.fleet.random_run(&mut self.rng, next_run, in_incident));
                }
                next_run += exp_gap_us(&mut self.rng, runs_per_sec * PEAK);
            }
            for agent in 0..self.fleet.agent_count() {
                let ts = t + self.rng.random_range(0..(chunk_end - t).max(1));
                queue.push_all(vec![(ts, self.fleet.heartbeat(&mut self.rng, agent, ts))]);
            }
            let due = queue.due(chunk_end, usize::MAX);
            let this = &*self;
            futures::stream::iter(due.chunks(500))
                .for_each_concurrent(BACKFILL_IN_FLIGHT, |chunk| async move {
                    if !this.shutdown.is_cancelled() {
                        this.post(chunk.to_vec()).await;
                    }
                })
                .await;
            t = chunk_end;
            // Pace: never faster than --backfill-rate on average.
            let sent = (self.stats.sent.load(Relaxed) - sent_before) as f64;
            let ahead = sent / self.opts.backfill_rate.max(1.0) - started.elapsed().as_secs_f64();
            if ahead > 0.0 {
                tokio::select! {
                    _ = self.shutdown.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_secs_f64(ahead)) => {}
                }
            }
        }
        log(&format!(
            "backfill done: {} events in {:.1} s",
            self.stats.sent.load(Relaxed) - sent_before,
            started.elapsed().as_secs_f64()
        ));
        queue
    }

    async fn live(&mut self, mut queue: Queue) {
        let agents = self.fleet.agent_count();
        let heartbeat_rate = agents as f64 / 30.0;
        let runs_per_sec =
            (self.opts.rate - heartbeat_rate).max(self.opts.rate * 0.2) / self.mean_events;
        let start = now_us();
        let mut next_run = start;
        let mut next_hb: Vec<i64> = (0..agents)
            .map(|_| start + self.rng.random_range(0..HEARTBEAT_US))
            .collect();
        let deadline = (self.opts.duration_secs > 0)
            .then(|| Instant::now() + Duration::from_secs(self.opts.duration_secs));
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let now = now_us();
            // After a stall (gateway down), do not invent a burst of old runs.
            next_run = next_run.max(now - 60_000_000);
            while next_run <= now {
                queue.push_all(self.fleet.random_run(&mut self.rng, next_run, false));
                next_run += exp_gap_us(&mut self.rng, runs_per_sec);
            }
            for (agent, due) in next_hb.iter_mut().enumerate() {
                if *due <= now {
                    queue.push_all(vec![(
                        *due,
                        self.fleet.heartbeat(&mut self.rng, agent, *due),
                    )]);
                    *due = (*due + HEARTBEAT_US + self.rng.random_range(-3_000_000..3_000_000))
                        .max(now);
                }
            }
            // Drop what went stale while the gateway was unreachable.
            let stale = queue.due(now - 600_000_000, usize::MAX);
            if !stale.is_empty() {
                log(&format!(
                    "dropped {} events older than 10 minutes",
                    stale.len()
                ));
            }
            let due = queue.due(now, usize::MAX);
            if !due.is_empty() {
                self.post(due).await;
            }
        }
    }
}
