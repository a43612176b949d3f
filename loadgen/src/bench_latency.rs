//! The latency phase of `bench`: open-loop load at a fixed request rate.
//!
//! Requests start on a schedule (`start + k / rate`), each on its own task,
//! whether or not earlier ones have finished, so a slow answer does not
//! lower the offered load (no coordinated omission from back-to-back
//! clients). Each request is timed from the moment it is sent until its
//! answer (gateway: 202 / 200; raw producer: every ack of its batch); how
//! late each one started against its schedule is kept too, so a loadgen
//! that cannot hold the rate shows.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::bench::Job;
use crate::report::Phase;

/// Both paths at the same fixed rate.
pub(crate) struct Latency {
    /// Share of the gateway's measured maximum.
    pub(crate) load: f64,
    pub(crate) events_per_sec: f64,
    pub(crate) requests_per_sec: f64,
    pub(crate) secs: f64,
    pub(crate) raw: Phase,
    pub(crate) gateway: Phase,
}

/// Start `job(k mod n)` at `per_sec` a second for `secs` seconds (`sizes[i]`:
/// events of batch `i`) and wait for every answer.
pub(crate) async fn open_loop(job: Job, sizes: Arc<Vec<usize>>, per_sec: f64, secs: f64) -> Phase {
    let n = sizes.len().max(1);
    let total = ((per_sec * secs).round() as usize).max(1);
    let interval = 1.0 / per_sec.max(1e-3);
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(total);
    let mut events = 0;
    for k in 0..total {
        let at = start + Duration::from_secs_f64(interval * k as f64);
        tokio::time::sleep_until(at).await;
        let i = k % n;
        events += sizes.get(i).copied().unwrap_or(0);
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let result = job(i).await;
            (result, sent.elapsed(), sent.saturating_duration_since(at))
        }));
    }
    let mut p = Phase {
        events,
        ..Phase::default()
    };
    for t in tasks {
        match t.await {
            Ok((result, took, lag)) => {
                p.record(result);
                p.latencies_us.push(took.as_micros() as u64);
                p.start_lag_us.push(lag.as_micros() as u64);
            }
            Err(e) => p.record(Err(format!("task failed: {e}"))),
        }
    }
    p.elapsed = start.elapsed();
    p
}
