//! `bench`: the gateway against a raw Kafka producer, in one run.
//!
//! The same N events are built once, as gateway bodies (`--format json`:
//! `POST /v1/events` batches; `otlp`: protobuf `POST /v1/traces` requests
//! whose GenAI spans map to `batch` events each, see [`crate::bench_otlp`])
//! and as the [`AgentEvent`]s the gateway makes of them. Raw baseline:
//! `concurrency` tasks produce batches of `batch` records with the workspace
//! producer (idempotent, acks=all), same topic, key, header and Avro encoding
//! as the gateway, each awaiting every ack of its batch before the next: the
//! gateway's per-request work minus HTTP, decoding, validation and auth.
//! Gateway: `concurrency` tasks POST the same batches and await 202 / 200.
//! Order: raw first, then the gateway; each phase is preceded by an
//! uncounted warm-up.
//!
//! Then the latency phase ([`crate::bench_latency`]): both paths again,
//! open-loop at `latency_load` × the gateway's measured rate for
//! `latency_secs`, each request timed from its scheduled start.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::config::KafkaConfig;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::otlp::{self, ExportTraceServiceResponse, Format};
use agentops_schemas::validate::{event_from_json, event_from_str, ValidationLimits};
use agentops_schemas::{AgentEvent, Codec};
use futures::future::BoxFuture;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::bench_latency::{open_loop, Latency};
use crate::fleet::Fleet;
use crate::http::{excerpt, Gateway};
use crate::log;
use crate::procstat::{self, CpuMark};
use crate::report::{self, Phase};

/// What the gateway is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    /// `POST /v1/events` JSON batches.
    Json,
    /// `POST /v1/traces` protobuf `ExportTraceServiceRequest`s of GenAI spans.
    Otlp,
}

impl BenchFormat {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BenchFormat::Json => "json",
            BenchFormat::Otlp => "otlp",
        }
    }
}

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
    /// Request bodies: JSON event batches or OTLP protobuf traces.
    #[arg(long, value_enum, default_value = "json")]
    pub format: BenchFormat,
    /// Events per measured phase.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Events per request / per producer batch (OTLP: spans mapping to this many events).
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
    /// Latency phase length per path, seconds (0: no latency phase).
    #[arg(long, default_value_t = 20.0)]
    pub latency_secs: f64,
    /// Latency phase rate, as a share of the gateway's measured events/s.
    #[arg(long, default_value_t = 0.5)]
    pub latency_load: f64,
}

/// One phase's input: the same batches as request bodies and as events.
#[derive(Default)]
pub(crate) struct Workload {
    pub(crate) bodies: Vec<Vec<u8>>,
    pub(crate) batches: Vec<Vec<AgentEvent>>,
    pub(crate) events: usize,
    /// Spans in the bodies (OTLP only).
    pub(crate) spans: usize,
    pub(crate) body_bytes: usize,
}

fn build_json(
    fleet: &Fleet,
    rng: &mut StdRng,
    n: usize,
    batch: usize,
    org: &str,
    now: i64,
) -> anyhow::Result<Workload> {
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
        events: n,
        ..Workload::default()
    };
    for chunk in values.chunks(batch.max(1)) {
        let events = chunk
            .iter()
            .map(|v| event_from_json(v, org, now, &limits))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("generated event fails validation: {e}"))?;
        let body = serde_json::to_vec(&json!({ "events": chunk }))?;
        w.body_bytes += body.len();
        w.bodies.push(body);
        w.batches.push(events);
    }
    Ok(w)
}

fn build(
    format: BenchFormat,
    fleet: &Fleet,
    rng: &mut StdRng,
    n: usize,
    batch: usize,
    org: &str,
) -> anyhow::Result<Workload> {
    let now = chrono::Utc::now().timestamp_micros();
    match format {
        BenchFormat::Json => build_json(fleet, rng, n, batch, org, now),
        BenchFormat::Otlp => crate::bench_otlp::build(fleet, rng, n, batch, org, now),
    }
}

/// Send batch `i`, answering the events done or why it failed.
pub(crate) type Job = Arc<dyn Fn(usize) -> BoxFuture<'static, Result<usize, String>> + Send + Sync>;

/// Run `job(i)` for every batch index on `concurrency` tasks, back to back.
async fn drive(concurrency: usize, n: usize, events: usize, job: Job) -> Phase {
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
                    p.record(job(i).await);
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
            Err(e) => total.record(Err(format!("task failed: {e}"))),
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// What the gateway does per request after decoding and validation: encode,
/// send all, await every ack.
fn raw_job(
    producer: &FutureProducer,
    topic: &str,
    batches: Arc<Vec<Vec<AgentEvent>>>,
    timeout: Duration,
) -> Job {
    let producer = producer.clone();
    let topic: Arc<str> = topic.into();
    let codec = Arc::new(Codec::current());
    Arc::new(move |i| {
        let (batches, producer, topic, codec) = (
            batches.clone(),
            producer.clone(),
            topic.clone(),
            codec.clone(),
        );
        Box::pin(async move {
            let events = &batches[i];
            let mut records = Vec::with_capacity(events.len());
            for e in events {
                let payload = codec.encode(e).map_err(|e| e.to_string())?;
                records.push((e.partition_key(), payload));
            }
            let results =
                agentops_runtime::kafka::send_records(&producer, &topic, &records, timeout).await;
            match results.into_iter().find(Result::is_err) {
                Some(Err(e)) => Err(format!("broker did not acknowledge: {e}")),
                _ => Ok(events.len()),
            }
        })
    })
}

/// The events a gateway answer says were taken, or why the request failed.
fn check_reply(
    format: BenchFormat,
    status: StatusCode,
    body: &[u8],
    sent: usize,
) -> Result<usize, String> {
    match format {
        BenchFormat::Json => {
            if status != StatusCode::ACCEPTED {
                return Err(format!("HTTP {status}: {}", excerpt(body)));
            }
            let reply: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let accepted = reply["accepted"].as_u64().unwrap_or(0) as usize;
            if accepted != sent {
                return Err(format!(
                    "202 but accepted {accepted} of {sent}: {}",
                    excerpt(body)
                ));
            }
            Ok(accepted)
        }
        BenchFormat::Otlp => {
            if status != StatusCode::OK {
                return Err(format!("HTTP {status}: {}", excerpt(body)));
            }
            let reply = <ExportTraceServiceResponse as prost::Message>::decode(body)
                .map_err(|e| format!("200 but the answer does not decode: {e}"))?;
            match reply.partial_success {
                Some(p) if p.rejected_spans != 0 || !p.error_message.is_empty() => Err(format!(
                    "200 with partial success: {} spans rejected: {}",
                    p.rejected_spans, p.error_message
                )),
                _ => Ok(sent),
            }
        }
    }
}

fn gateway_job(gw: &Gateway, format: BenchFormat, w: &Workload) -> Job {
    let sizes: Arc<Vec<usize>> = Arc::new(w.batches.iter().map(Vec::len).collect());
    let bodies = Arc::new(w.bodies.clone());
    let gw = gw.clone();
    Arc::new(move |i| {
        let (gw, bodies, sizes) = (gw.clone(), bodies.clone(), sizes.clone());
        Box::pin(async move {
            let (status, _, body) = gw
                .post_once(bodies[i].clone())
                .await
                .map_err(|e| format!("transport: {e}"))?;
            check_reply(format, status, &body, sizes[i])
        })
    })
}

/// Single-thread CPU cost per event of the gateway's pure steps, in µs:
/// (decode of the bodies, mapping + validation, Avro encode + key). No I/O.
fn step_costs(format: BenchFormat, w: &Workload, org: &str) -> [f64; 3] {
    let n = w.events.max(1) as f64;
    let limits = ValidationLimits::default();
    let now = chrono::Utc::now().timestamp_micros();
    let (decode, validate, events) = match format {
        BenchFormat::Json => {
            // As the gateway does it: split the body into raw events, then
            // validate each straight from its text (no intermediate `Value`).
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
            let decode = t.elapsed();
            let t = Instant::now();
            let events: Vec<AgentEvent> = parsed
                .iter()
                .flat_map(|e| e.events.iter())
                .filter_map(|v| event_from_str(v.get(), org, now, &limits).ok())
                .collect();
            (decode, t.elapsed(), events)
        }
        BenchFormat::Otlp => {
            let t = Instant::now();
            let requests: Vec<_> = w
                .bodies
                .iter()
                .filter_map(|b| otlp::decode(b, Format::Protobuf).ok())
                .collect();
            let decode = t.elapsed();
            let t = Instant::now();
            let events: Vec<AgentEvent> = requests
                .iter()
                .flat_map(|r| otlp::to_events(r, org, now, &limits).accepted)
                .collect();
            (decode, t.elapsed(), events)
        }
    };
    let codec = Codec::current();
    let t = Instant::now();
    let bytes: usize = events
        .iter()
        .map(|e| codec.encode(e).map_or(0, |b| b.len()) + e.partition_key().len())
        .sum();
    let encode = t.elapsed();
    std::hint::black_box(bytes);
    [decode, validate, encode].map(|d| d.as_secs_f64() * 1e6 / n)
}

/// Samples the gateway's RSS until stopped.
struct RssSampler {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<u64>>,
}

impl RssSampler {
    fn start(pid: Option<u32>) -> Self {
        let stop = CancellationToken::new();
        let task = pid.map(|p| {
            tokio::spawn(procstat::max_rss(
                p,
                Duration::from_millis(50),
                stop.clone(),
            ))
        });
        Self { stop, task }
    }

    async fn max_kib(self) -> Option<u64> {
        self.stop.cancel();
        self.task?.await.ok()
    }
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
        "building {} + {warm_n} warm-up events per phase (batch {}, {})",
        o.events,
        o.batch,
        o.format.as_str()
    ));
    let build_all = |rng: &mut StdRng| -> anyhow::Result<(Workload, Workload)> {
        Ok((
            build(o.format, &fleet, rng, warm_n, o.batch, &o.org)?,
            build(o.format, &fleet, rng, o.events, o.batch, &o.org)?,
        ))
    };
    let (raw_warm, raw_main) = build_all(&mut rng)?;
    let (gw_warm, gw_main) = build_all(&mut rng)?;
    let codec = Codec::current();
    let avro_bytes: usize = raw_main
        .batches
        .iter()
        .flatten()
        .map(|e| codec.encode(e).map_or(0, |b| b.len()))
        .sum();
    let step_us = step_costs(o.format, &gw_warm, &o.org);

    let kafka = KafkaConfig {
        brokers: o.brokers.clone(),
        topic_raw: o.topic.clone(),
        ..KafkaConfig::default()
    };
    agentops_runtime::kafka::ensure_topics(&kafka, &[&o.topic]).await?;
    let timeout = Duration::from_millis(o.delivery_timeout_ms);
    let gw = match o.format {
        BenchFormat::Json => Gateway::new(&o.gateway, &o.key)?,
        BenchFormat::Otlp => Gateway::traces(&o.gateway, &o.key)?,
    };
    let procs = [None, o.gateway_pid, o.broker_pid];

    // Phase 1: raw producer.
    let producer = agentops_runtime::kafka::producer(&kafka, timeout)?;
    let raw_batches = Arc::new(raw_main.batches);
    log("raw producer: warm-up");
    let n = raw_warm.batches.len();
    let job = raw_job(&producer, &o.topic, Arc::new(raw_warm.batches), timeout);
    let warm = drive(o.concurrency, n, raw_warm.events, job).await;
    anyhow::ensure!(
        warm.failed_batches == 0,
        "raw warm-up failed: {}",
        warm.first_error.unwrap_or_default()
    );
    log("raw producer: measuring");
    let raw_main_job = raw_job(&producer, &o.topic, raw_batches.clone(), timeout);
    let cpu = CpuMark::start(&procs);
    let mut raw = drive(
        o.concurrency,
        raw_batches.len(),
        raw_main.events,
        raw_main_job.clone(),
    )
    .await;
    raw.cpu = cpu.cores();
    raw.system_cpu = cpu.system();
    log(&format!("raw producer: {:.0} events/s", raw.eps()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Phase 2: gateway.
    log("gateway: warm-up");
    let job = gateway_job(&gw, o.format, &gw_warm);
    let warm = drive(o.concurrency, gw_warm.bodies.len(), gw_warm.events, job).await;
    anyhow::ensure!(
        warm.failed_batches == 0,
        "gateway warm-up failed: {}",
        warm.first_error.unwrap_or_default()
    );
    let rss_before = o.gateway_pid.and_then(|p| procstat::status_kib(p, "VmRSS"));
    let sampler = RssSampler::start(o.gateway_pid);
    log("gateway: measuring");
    let gw_main_job = gateway_job(&gw, o.format, &gw_main);
    let cpu = CpuMark::start(&procs);
    let mut gateway = drive(
        o.concurrency,
        gw_main.bodies.len(),
        gw_main.events,
        gw_main_job.clone(),
    )
    .await;
    gateway.cpu = cpu.cores();
    gateway.system_cpu = cpu.system();
    let rss_max = sampler.max_kib().await;
    log(&format!("gateway: {:.0} events/s", gateway.eps()));

    // Phase 3: latency at a fixed rate below the maximum, raw then gateway.
    let mut latency = None;
    let mut rss_latency = None;
    if o.latency_secs > 0.0 && gateway.failed_batches == 0 {
        let eps = gateway.eps() * o.latency_load;
        let per_sec = eps / o.batch as f64;
        let sizes: Arc<Vec<usize>> = Arc::new(raw_batches.iter().map(Vec::len).collect());
        let gw_sizes: Arc<Vec<usize>> = Arc::new(gw_main.batches.iter().map(Vec::len).collect());
        tokio::time::sleep(Duration::from_secs(1)).await;
        log(&format!(
            "latency: raw producer, {per_sec:.1} batches/s ({eps:.0} events/s) for {} s",
            o.latency_secs
        ));
        let cpu = CpuMark::start(&procs);
        let mut raw_l = open_loop(raw_main_job, sizes, per_sec, o.latency_secs).await;
        raw_l.cpu = cpu.cores();
        raw_l.system_cpu = cpu.system();
        tokio::time::sleep(Duration::from_secs(1)).await;
        log(&format!(
            "latency: gateway, {per_sec:.1} requests/s for {} s",
            o.latency_secs
        ));
        let sampler = RssSampler::start(o.gateway_pid);
        let cpu = CpuMark::start(&procs);
        let mut gw_l = open_loop(gw_main_job, gw_sizes, per_sec, o.latency_secs).await;
        gw_l.cpu = cpu.cores();
        gw_l.system_cpu = cpu.system();
        let max = sampler.max_kib().await;
        let after = o.gateway_pid.and_then(|p| procstat::status_kib(p, "VmRSS"));
        rss_latency = Some((max, after));
        latency = Some(Latency {
            load: o.latency_load,
            events_per_sec: eps,
            requests_per_sec: per_sec,
            secs: o.latency_secs,
            raw: raw_l,
            gateway: gw_l,
        });
    }
    drop(producer);
    let hwm = o.gateway_pid.and_then(|p| procstat::status_kib(p, "VmHWM"));

    let per_event = |bytes: usize| bytes as f64 / o.events as f64;
    let r = report::Report {
        format: o.format,
        events: o.events,
        spans: (o.format == BenchFormat::Otlp).then_some(gw_main.spans),
        warmup: warm_n,
        batch: o.batch,
        concurrency: o.concurrency,
        body_bytes_per_event: per_event(gw_main.body_bytes),
        avro_bytes_per_event: per_event(avro_bytes),
        raw,
        gateway,
        latency,
        rss_before_kib: rss_before,
        rss_max_kib: rss_max,
        rss_latency_max_kib: rss_latency.and_then(|r| r.0),
        rss_after_latency_kib: rss_latency.and_then(|r| r.1),
        hwm_kib: hwm,
        step_us,
    };
    r.print();
    Ok(r.valid())
}
