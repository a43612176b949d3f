//! `bench-freshness`: how long after the gateway's 202 an event is counted
//! in `/v1/metrics/overview`, at a sustained rate through the whole pipeline
//! (gateway → raw topic → processors → enriched topic → projections → query API).
//!
//! Batches are posted on a fixed schedule (not waiting for the previous one).
//! For every 202 we note the time and how many events had been acknowledged
//! by then; a poller reads the overview's event count every `poll_ms`. A
//! batch's freshness is the time from its 202 to the first poll that counts
//! at least every event acknowledged up to that 202.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;
use anyhow::{ensure, Result};
use serde_json::{json, Value};

use crate::fleet::Fleet;
use crate::http::Gateway;

#[derive(clap::Args, Debug)]
pub struct FreshnessOptions {
    /// Gateway base URL.
    #[arg(long)]
    pub gateway: String,
    /// Ingest key of the benchmark org.
    #[arg(long)]
    pub key: String,
    /// Query API base URL.
    #[arg(long)]
    pub query_url: String,
    /// Read key of the same org.
    #[arg(long)]
    pub read_key: String,
    /// Events per second to sustain.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Overview polling interval (ms): the resolution of the figures.
    #[arg(long, default_value_t = 50)]
    pub poll_ms: u64,
    /// A component's `/metrics` URL to read `agentops_consumer_lag` from
    /// every second during the run (repeat for each: processors,
    /// projections); the largest lag seen per consumer group is reported.
    #[arg(long = "metrics-url")]
    pub metrics_urls: Vec<String>,
}

/// Per consumer group, the sum of `agentops_consumer_lag` over its
/// partitions in one `/metrics` text.
fn lag_by_group(text: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("agentops_consumer_lag{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let (Some(group), Ok(v)) = (
            labels
                .split(',')
                .find_map(|l| l.strip_prefix("group=\""))
                .map(|g| g.trim_end_matches('"')),
            value.trim().parse::<f64>(),
        ) else {
            continue;
        };
        match out.iter_mut().find(|(g, _)| g == group) {
            Some((_, sum)) => *sum += v,
            None => out.push((group.to_owned(), v)),
        }
    }
    out
}

/// Largest lag seen per group, and how many scrapes reported it.
#[derive(Debug, Default, Clone)]
struct LagSeen {
    groups: Vec<(String, f64, u32)>,
}

impl LagSeen {
    fn add(&mut self, sample: Vec<(String, f64)>) {
        for (g, v) in sample {
            match self.groups.iter_mut().find(|(x, _, _)| *x == g) {
                Some((_, max, n)) => {
                    *max = max.max(v);
                    *n += 1;
                }
                None => self.groups.push((g, v, 1)),
            }
        }
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

async fn visible(http: &reqwest::Client, url: &str, key: &str) -> Result<i64> {
    let body: Value = http.get(url).bearer_auth(key).send().await?.json().await?;
    body["events"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("overview without events: {body}"))
}

pub async fn run(o: FreshnessOptions) -> Result<()> {
    let gateway = Gateway::new(&o.gateway, &o.key)?;
    let http = reqwest::Client::new();
    let overview = format!(
        "{}/v1/metrics/overview?window=1h",
        o.query_url.trim_end_matches('/')
    );
    let baseline = visible(&http, &overview, &o.read_key).await?;
    let shutdown = CancellationToken::new();

    // (time of the 202, events acknowledged up to it), in acknowledgement order.
    let acks: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let acked = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let polls: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let poller = {
        let (http, url, key, polls, stop) = (
            http.clone(),
            overview.clone(),
            o.read_key.clone(),
            polls.clone(),
            shutdown.clone(),
        );
        let every = Duration::from_millis(o.poll_ms);
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok(n) = visible(&http, &url, &key).await {
                    polls
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((Instant::now(), n - baseline));
                }
                tokio::time::sleep(every).await;
            }
        })
    };

    let lag: Arc<Mutex<LagSeen>> = Arc::default();
    let lag_sampler = {
        let (http, urls, lag, stop) = (
            http.clone(),
            o.metrics_urls.clone(),
            lag.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                for url in &urls {
                    let Ok(resp) = http.get(url).send().await else {
                        continue;
                    };
                    if let Ok(text) = resp.text().await {
                        lag.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .add(lag_by_group(&text));
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    let mut rng = rand::rng();
    let fleet = Fleet::new(200, &mut rng);
    let per_sec = (o.rate as f64 / o.batch as f64).max(1.0);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
    let batches = (per_sec * o.secs as f64) as usize;
    let mut pending: Vec<Value> = Vec::new();
    let mut sends = Vec::with_capacity(batches);
    let started = Instant::now();
    crate::log(&format!(
        "sending {} events/s for {} s in batches of {}",
        o.rate, o.secs, o.batch
    ));
    for _ in 0..batches {
        tick.tick().await;
        while pending.len() < o.batch {
            let now_us = chrono::Utc::now().timestamp_micros();
            pending.extend(
                fleet
                    .random_run(&mut rng, now_us - 30_000_000, false)
                    .into_iter()
                    .map(|(_, v)| v),
            );
        }
        let batch: Vec<Value> = pending.drain(..o.batch).collect();
        let (gateway, acks, acked, stop) = (
            gateway.clone(),
            acks.clone(),
            acked.clone(),
            shutdown.clone(),
        );
        sends.push(tokio::spawn(async move {
            let out = gateway.send(&batch, &stop).await;
            if out.failed.is_none() {
                let mut a = acks.lock().unwrap_or_else(PoisonError::into_inner);
                let total = acked
                    .fetch_add(out.accepted as i64, std::sync::atomic::Ordering::SeqCst)
                    + out.accepted as i64;
                a.push((Instant::now(), total));
            }
            out.failed
        }));
    }
    let mut failed = 0;
    for s in sends {
        if s.await.ok().flatten().is_some() {
            failed += 1;
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    let total = acked.load(std::sync::atomic::Ordering::SeqCst);
    crate::log(&format!(
        "{total} events acknowledged in {send_secs:.1} s; waiting until all are visible"
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while polls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last()
        .is_none_or(|(_, n)| *n < total)
    {
        ensure!(
            Instant::now() < deadline,
            "not every acknowledged event became visible within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let _ = poller.await;
    let _ = lag_sampler.await;
    let lag = lag.lock().unwrap_or_else(PoisonError::into_inner).clone();

    let polls = polls.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let acks = acks.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut lat: Vec<f64> = acks
        .iter()
        .filter_map(|(t, need)| {
            polls
                .iter()
                .find(|(pt, n)| pt >= t && n >= need)
                .map(|(pt, _)| (*pt - *t).as_secs_f64() * 1000.0)
        })
        .collect();
    let (p50, p99, max) = (
        quantile(&mut lat, 0.5),
        quantile(&mut lat, 0.99),
        quantile(&mut lat, 1.0),
    );
    let rate = total as f64 / send_secs;
    println!("sent {total} events at {rate:.0} events/s ({failed} batches failed)");
    println!("freshness (202 → counted in /v1/metrics/overview): p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms (poll every {} ms)", o.poll_ms);
    if !o.metrics_urls.is_empty() {
        if lag.groups.is_empty() {
            println!(
                "consumer lag: no agentops_consumer_lag on {:?}",
                o.metrics_urls
            );
        }
        for (group, max, n) in &lag.groups {
            println!("consumer lag of {group} (records, sum over partitions, read every 1 s from /metrics): max {max:.0} over {n} readings");
        }
    }
    let lag_json: serde_json::Map<String, Value> = lag
        .groups
        .iter()
        .map(|(g, max, _)| (g.clone(), json!(max)))
        .collect();
    println!(
        "{}",
        json!({"bench": "freshness", "events": total, "events_per_s": rate.round(), "failed_batches": failed,
               "p50_ms": p50.round(), "p99_ms": p99.round(), "max_ms": max.round(), "poll_ms": o.poll_ms,
               "consumer_lag_max": lag_json})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_summed_per_group() {
        let text = "# TYPE agentops_consumer_lag gauge
agentops_consumer_lag{group=\"agentops-enrich\",topic=\"raw\",partition=\"0\"} 5
agentops_consumer_lag{group=\"agentops-enrich\",topic=\"raw\",partition=\"1\"} 7
agentops_consumer_lag{group=\"agentops-projections\",topic=\"enriched\",partition=\"0\"} 0
agentops_consumer_lagging 3
";
        let got = lag_by_group(text);
        assert_eq!(
            got,
            vec![
                ("agentops-enrich".to_owned(), 12.0),
                ("agentops-projections".to_owned(), 0.0)
            ]
        );
        let mut seen = LagSeen::default();
        seen.add(got);
        seen.add(vec![("agentops-enrich".to_owned(), 3.0)]);
        assert_eq!(seen.groups[0], ("agentops-enrich".to_owned(), 12.0, 2));
    }
}
