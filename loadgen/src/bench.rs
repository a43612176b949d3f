//! `bench`: the gateway against a raw Kafka producer, in one run.
//!
//! The same N events are built once, as gateway JSON bodies and as
//! [`AgentEvent`]s. Raw baseline: `concurrency` tasks produce batches of
//! `batch` records with the workspace producer (idempotent, acks=all), same
//! topic, key, header and Avro encoding as the gateway, each awaiting every
//! ack of its batch before the next: the gateway's per-request work minus
//! HTTP, JSON, validation and auth. Gateway: `concurrency` tasks POST the
//! same batches and await 202. Order: raw first, then the gateway; each
//! phase is preceded by an uncounted warm-up.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::config::KafkaConfig;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::validate::{event_from_json, event_from_str, ValidationLimits};
use agentops_schemas::{AgentEvent, Codec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;
use serde_json::{json, Value};

use crate::fleet::Fleet;
use crate::http::{excerpt, Gateway};
use crate::log;
use crate::procstat::{self, CpuMark};
use crate::report::{self, Phase};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Gateway base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Ingest API key of the org the events go to.
    #[arg(long, env = "AGENTOPS_INGEST_KEY", hide_env_values = true)]
    pub key: String,
    /// Kafka bootstrap servers for the raw baseline.
    #[arg(long)]
    pub brokers: String,
    /// Topic both paths write (the gateway's raw topic).
    #[arg(long)]
    pub topic: String,
    /// Events per measured phase.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Events per request / per producer batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Concurrent requests / producer batches in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Gateway process id, to report its peak RSS and CPU.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// Broker process id, to report its CPU.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Uncounted warm-up before each phase, percent of `--events`.
    #[arg(long, default_value_t = 5.0)]
    pub warmup_pct: f64,
    /// Org id stamped on the raw path's events (the gateway uses the key's org).
    #[arg(long, default_value = "bench")]
    pub org: String,
    /// Delivery timeout of both producers (the gateway's default produce_timeout_ms).
    #[arg(long, default_value_t = 10_000)]
    pub delivery_timeout_ms: u64,
}

/// One phase's input: the same batches in both forms.
struct Workload {
    bodies: Vec<Vec<u8>>,
    batches: Vec<Vec<AgentEvent>>,
    events: usize,
    json_bytes: usize,
}

fn build(
    fleet: &Fleet,
    rng: &mut StdRng,
    n: usize,
    batch: usize,
    org: &str,
) -> anyhow::Result<Workload> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut values: Vec<Value> = Vec::with_capacity(n + 16);
    while values.len() < n {
        let start = now - rng.random_range(60_000_000..900_000_000);
        values.extend(
            fleet
                .random_run(rng, start, false)
                .into_iter()
                .map(|(_, v)| v),
        );
    }
    values.truncate(n);
    let limits = ValidationLimits::default();
    let mut w = Workload {
        bodies: Vec::new(),
        batches: Vec::new(),
        events: n,
        json_bytes: 0,
    };
    for chunk in values.chunks(batch.max(1)) {
        let events = chunk
            .iter()
            .map(|v| event_from_json(v, org, now, &limits))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("generated event fails validation: {e}"))?;
        let body = serde_json::to_vec(&json!({ "events": chunk }))?;
        w.json_bytes += body.len();
        w.bodies.push(body);
        w.batches.push(events);
    }
    Ok(w)
}

/// Run `job(i)` for every batch index on `concurrency` tasks; each job returns events done.
async fn drive<F, Fut>(concurrency: usize, n: usize, events: usize, job: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<usize, String>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (job, next) = (job.clone(), next.clone());
            tokio::spawn(async move {
                let mut p = Phase::default();
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    match job(i).await {
                        Ok(k) => p.events_ok += k,
                        Err(e) => {
                            p.failed_batches += 1;
                            p.first_error.get_or_insert(e);
                        }
                    }
                    p.latencies_us.push(t.elapsed().as_micros() as u64);
                }
                p
            })
        })
        .collect();
    let mut total = Phase {
        events,
        ..Phase::default()
    };
    for t in tasks {
        match t.await {
            Ok(p) => total.merge(p),
            Err(e) => {
                total.failed_batches += 1;
                total.first_error.get_or_insert(format!("task failed: {e}"));
            }
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// What the gateway does per request after validation: encode, send all, await every ack.
async fn raw_phase(
    producer: &FutureProducer,
    topic: &str,
    w: Workload,
    conc: usize,
    timeout: Duration,
) -> Phase {
    let batches = Arc::new(w.batches);
    let n = batches.len();
    let producer = producer.clone();
    let topic = topic.to_owned();
    let codec = Arc::new(Codec::v1());
    let fp = codec.fingerprint_hex();
    drive(conc, n, w.events, move |i| {
        let (batches, producer, topic, codec, fp) = (
            batches.clone(),
            producer.clone(),
            topic.clone(),
            codec.clone(),
            fp.clone(),
        );
        async move {
            let events = &batches[i];
            let mut records = Vec::with_capacity(events.len());
            for e in events {
                let payload = codec.encode(e).map_err(|e| e.to_string())?;
                records.push((e.partition_key(), payload));
            }
            let results =
                agentops_runtime::kafka::send_records(&producer, &topic, &fp, &records, timeout)
                    .await;
            match results.into_iter().find(Result::is_err) {
                Some(Err(e)) => Err(format!("broker did not acknowledge: {e}")),
                _ => Ok(events.len()),
            }
        }
    })
    .await
}

async fn gateway_phase(gw: &Gateway, w: Workload, conc: usize) -> Phase {
    let sizes: Arc<Vec<usize>> = Arc::new(w.batches.iter().map(Vec::len).collect());
    let bodies = Arc::new(w.bodies);
    let n = bodies.len();
    let gw = gw.clone();
    drive(conc, n, w.events, move |i| {
        let (gw, bodies, sizes) = (gw.clone(), bodies.clone(), sizes.clone());
        async move {
            let (status, _, body) = gw
                .post_once(bodies[i].clone())
                .await
                .map_err(|e| format!("transport: {e}"))?;
            if status != reqwest::StatusCode::ACCEPTED {
                return Err(format!("HTTP {status}: {}", excerpt(&body)));
            }
            let reply: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let accepted = reply["accepted"].as_u64().unwrap_or(0) as usize;
            if accepted != sizes[i] {
                return Err(format!(
                    "202 but accepted {accepted} of {}: {}",
                    sizes[i],
                    excerpt(&body)
                ));
            }
            Ok(accepted)
        }
    })
    .await
}

/// Single-thread CPU cost per event of the gateway's pure steps, in µs:
/// (JSON parse of the bodies, validation, Avro encode + key). No I/O.
fn step_costs(w: &Workload, org: &str) -> [f64; 3] {
    let n = w.events.max(1) as f64;
    // As the gateway does it: split the body into raw events, then validate
    // each straight from its text (no intermediate `Value`).
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let t = Instant::now();
    let parsed: Vec<Envelope<'_>> = w
        .bodies
        .iter()
        .filter_map(|b| serde_json::from_slice(b).ok())
        .collect();
    let parse = t.elapsed();
    let limits = ValidationLimits::default();
    let now = chrono::Utc::now().timestamp_micros();
    let t = Instant::now();
    let events: Vec<AgentEvent> = parsed
        .iter()
        .flat_map(|e| e.events.iter())
        .filter_map(|v| event_from_str(v.get(), org, now, &limits).ok())
        .collect();
    let validate = t.elapsed();
    let codec = Codec::v1();
    let t = Instant::now();
    let bytes: usize = events
        .iter()
        .map(|e| codec.encode(e).map_or(0, |b| b.len()) + e.partition_key().len())
        .sum();
    let encode = t.elapsed();
    std::hint::black_box(bytes);
    [parse, validate, encode].map(|d| d.as_secs_f64() * 1e6 / n)
}

/// Run the benchmark; `Ok(false)` when the run is invalid (a batch failed).
pub async fn run(o: BenchOptions) -> anyhow::Result<bool> {
    anyhow::ensure!(
        o.events > 0 && o.batch > 0 && o.batch <= 1000,
        "need --events > 0 and 1 <= --batch <= 1000"
    );
    let mut rng = StdRng::seed_from_u64(42);
    let fleet = Fleet::new(24, &mut rng);
    let warm_n = ((o.events as f64 * o.warmup_pct / 100.0) as usize).max(o.batch.min(o.events));
    log(&format!(
        "building {} + {warm_n} warm-up events per phase (batch {})",
        o.events, o.batch
    ));
    let build_all = |rng: &mut StdRng| -> anyhow::Result<(Workload, Workload)> {
        Ok((
            build(&fleet, rng, warm_n, o.batch, &o.org)?,
            build(&fleet, rng, o.events, o.batch, &o.org)?,
        ))
    };
    let (raw_warm, raw_main) = build_all(&mut rng)?;
    let (gw_warm, gw_main) = build_all(&mut rng)?;
    let codec = Codec::v1();
    let avro_bytes: usize = raw_main
        .batches
        .iter()
        .flatten()
        .map(|e| codec.encode(e).map_or(0, |b| b.len()))
        .sum();
    let json_bytes = gw_main.json_bytes;
    let step_us = step_costs(&gw_warm, &o.org);

    let kafka = KafkaConfig {
        brokers: o.brokers.clone(),
        topic_raw: o.topic.clone(),
        ..KafkaConfig::default()
    };
    agentops_runtime::kafka::ensure_topics(&kafka, &[&o.topic]).await?;
    let timeout = Duration::from_millis(o.delivery_timeout_ms);
    let gw = Gateway::new(&o.gateway, &o.key)?;
    let procs = [None, o.gateway_pid, o.broker_pid];

    // Phase 1: raw producer.
    let producer = agentops_runtime::kafka::producer(&kafka, timeout)?;
    log("raw producer: warm-up");
    let warm = raw_phase(&producer, &o.topic, raw_warm, o.concurrency, timeout).await;
    anyhow::ensure!(
        warm.failed_batches == 0,
        "raw warm-up failed: {}",
        warm.first_error.unwrap_or_default()
    );
    log("raw producer: measuring");
    let cpu = CpuMark::start(&procs);
    let mut raw = raw_phase(&producer, &o.topic, raw_main, o.concurrency, timeout).await;
    raw.cpu = cpu.cores();
    raw.system_cpu = cpu.system();
    drop(producer);
    log(&format!("raw producer: {:.0} events/s", raw.eps()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Phase 2: gateway.
    log("gateway: warm-up");
    let warm = gateway_phase(&gw, gw_warm, o.concurrency).await;
    anyhow::ensure!(
        warm.failed_batches == 0,
        "gateway warm-up failed: {}",
        warm.first_error.unwrap_or_default()
    );
    let rss_before = o.gateway_pid.and_then(|p| procstat::status_kib(p, "VmRSS"));
    let stop = CancellationToken::new();
    let sampler = o.gateway_pid.map(|p| {
        tokio::spawn(procstat::max_rss(
            p,
            Duration::from_millis(50),
            stop.clone(),
        ))
    });
    log("gateway: measuring");
    let cpu = CpuMark::start(&procs);
    let mut gateway = gateway_phase(&gw, gw_main, o.concurrency).await;
    gateway.cpu = cpu.cores();
    gateway.system_cpu = cpu.system();
    stop.cancel();
    let rss_max = match sampler {
        Some(h) => h.await.ok(),
        None => None,
    };
    let hwm = o.gateway_pid.and_then(|p| procstat::status_kib(p, "VmHWM"));

    let r = report::Report {
        events: o.events,
        warmup: warm_n,
        batch: o.batch,
        concurrency: o.concurrency,
        json_bytes_per_event: json_bytes as f64 / o.events as f64,
        avro_bytes_per_event: avro_bytes as f64 / o.events as f64,
        raw,
        gateway,
        rss_before_kib: rss_before,
        rss_max_kib: rss_max,
        hwm_kib: hwm,
        step_us,
    };
    r.print();
    Ok(r.valid())
}
