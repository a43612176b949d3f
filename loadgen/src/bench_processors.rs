//! `bench-processors throughput`: events/s through one processor instance
//! beside a raw consume→produce loop over the same records, in one run.
//!
//! N realistic events (runs of a 1,000-agent fleet: LLM calls with models and
//! tokens, tool calls, run starts and ends) are Avro-encoded once and produced
//! to one raw topic. Each round then reads that topic from the start in a
//! fresh consumer group, twice:
//!
//! - **raw**: the workspace consumer and producer (`kafka::consumer`,
//!   `next_batch`, `send_records`, same batch size and linger as the
//!   processor), each payload produced unchanged to `<out>.a.<round>`, every
//!   ack awaited before the next batch, offsets stored after: the enrich
//!   stage's loop minus decode, pricing, policies, re-encode and budgets;
//! - **processor**: one `agentops-processors` process (spawned here, its own
//!   group and topics) with the org's governance (policies, budgets) in
//!   Postgres, writing `<out>.b.<round>`, at least once (`exactly_once` off);
//! - **transactional** (`--exactly-once true`): the same with
//!   `exactly_once` on (Kafka transactions of ~100 ms), writing
//!   `<out>.c.<round>`.
//!
//! All phases are timed the same way, after the phase, from the output records'
//! CreateTime stamps (set by the producing client): records after the first
//! millisecond / (last stamp − first stamp). Beside it, each runner's own
//! view: the raw loop's first record consumed → last ack, and the
//! processor's events counter on /metrics (polled every 50 ms). (Stamps rather
//! than high watermarks: a transactional topic's watermarks count commit
//! markers too.)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agentops_runtime::config::{DatabaseConfig, KafkaConfig};
use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::storage::{ModeChoice, StorageConfig};
use agentops_schemas::validate::{event_from_json, ValidationLimits};
use agentops_schemas::Codec;
use anyhow::{bail, ensure, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::json;
use sqlx::PgPool;

use crate::fleet::Fleet;
use crate::log;
use crate::procstat::CpuMark;

#[derive(clap::Args, Debug)]
pub struct ProcessorsOptions {
    #[command(subcommand)]
    pub part: Part,
}

#[derive(clap::Subcommand, Debug)]
pub enum Part {
    /// Events/s through one processor beside a raw consume→produce loop.
    Throughput(ThroughputOptions),
    /// Budget crossing's 202 → webhook POST, through the whole pipeline.
    Alerts(crate::bench_alerts::AlertOptions),
    /// The notifier's POST through the outbound guard beside a plain client.
    NotifyGuard(crate::bench_alerts::GuardOptions),
}

#[derive(clap::Args, Debug)]
pub struct ThroughputOptions {
    /// Kafka bootstrap servers.
    #[arg(long)]
    pub brokers: String,
    /// Postgres URL (plain PostgreSQL; migrated and prepared here).
    #[arg(long)]
    pub database_url: String,
    /// The `agentops-processors` binary to run.
    #[arg(long)]
    pub processors_bin: PathBuf,
    /// Events per phase.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Partitions of every benchmark topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Rounds of (raw, processor[, transactional processor]).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also run the processor with `exactly_once` on in each round (a third
    /// phase over the same records) and print its ratios to the raw loop
    /// and to the at-least-once processor.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub exactly_once: bool,
    /// Agents in the fleet.
    #[arg(long, default_value_t = 1000)]
    pub agents: usize,
    /// Org stamped on the events.
    #[arg(long, default_value = "bench")]
    pub org: String,
    /// Give the org policies and budgets (false: the org has none).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub governance: bool,
    /// Topic prefix: `<prefix>.raw`, `<prefix>.out.a.<round>`, ...
    #[arg(long, default_value = "bench")]
    pub topic_prefix: String,
    /// Records per batch (the processor's `batch_max`).
    #[arg(long, default_value_t = 1000)]
    pub batch_max: usize,
    /// Batch linger, ms (the processor's `batch_linger_ms`).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Listen address of the spawned processor's /healthz.
    #[arg(long, default_value = "127.0.0.1:28104")]
    pub listen: String,
    /// Where the spawned processors' logs go.
    #[arg(long, default_value = "target/bench/processors-logs")]
    pub log_dir: PathBuf,
    /// Broker process id, to report its CPU.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Give up on a phase after this long (s).
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
}

pub async fn run(o: ProcessorsOptions) -> Result<()> {
    match o.part {
        Part::Throughput(t) => throughput(t).await,
        Part::Alerts(a) => crate::bench_alerts::run(a).await,
        Part::NotifyGuard(g) => crate::bench_alerts::run_guard(g).await,
    }
}

/// The benchmark org's governance: policies of three kinds (one recording a
/// violation for every o3 call) and two budgets (one crossed during a run).
const GOVERNANCE: &[&str] = &[
    "INSERT INTO policies (org_id, name, kind, names, action)
     VALUES ($1, 'no-o3', 'model_denylist', '{o3}', 'flag') ON CONFLICT DO NOTHING",
    "INSERT INTO policies (org_id, name, kind, limit_value, action)
     VALUES ($1, 'max-tokens-per-call', 'max_tokens_per_call', 150000, 'alert') ON CONFLICT DO NOTHING",
    "INSERT INTO policies (org_id, name, kind, limit_value, action)
     VALUES ($1, 'max-cost-per-run', 'max_cost_per_run', 5, 'alert') ON CONFLICT DO NOTHING",
    "INSERT INTO budgets (org_id, name, period, limit_usd, thresholds)
     VALUES ($1, 'org-monthly', 'month', 1000000, '{80,100}') ON CONFLICT DO NOTHING",
    "INSERT INTO budgets (org_id, name, scope_kind, scope_value, period, limit_usd, thresholds)
     VALUES ($1, 'research-daily', 'workflow', 'research', 'day', 50, '{80,100}') ON CONFLICT DO NOTHING",
];

async fn prepare_db(o: &ThroughputOptions) -> Result<PgPool> {
    let db = DatabaseConfig {
        url: o.database_url.clone(),
        max_connections: 2,
        statement_timeout_ms: None,
        storage: StorageConfig {
            mode: ModeChoice::Postgres,
            ..Default::default()
        },
    };
    let pool = agentops_runtime::db::connect(&db, Duration::from_secs(30)).await?;
    agentops_runtime::db::prepare(&pool, &db).await?;
    sqlx::query("INSERT INTO orgs (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING")
        .bind(&o.org)
        .execute(&pool)
        .await?;
    if o.governance {
        for sql in GOVERNANCE {
            sqlx::query(sql).bind(&o.org).execute(&pool).await?;
        }
    }
    Ok(pool)
}

/// (partition key, Avro payload).
type Record = (String, Vec<u8>);

/// The records and a one-line description.
fn build(o: &ThroughputOptions) -> Result<(Vec<Record>, String)> {
    let mut rng = StdRng::seed_from_u64(42);
    let fleet = Fleet::new(o.agents, &mut rng);
    let now = chrono::Utc::now().timestamp_micros();
    let limits = ValidationLimits::default();
    let codec = Codec::current();
    let mut out = Vec::with_capacity(o.events + 16);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    let mut bytes = 0;
    while out.len() < o.events {
        // Runs started in the last 1–15 minutes (same UTC day unless run at midnight).
        let start = now - rng.random_range(60_000_000..900_000_000);
        for (_, v) in fleet.random_run(&mut rng, start, false) {
            let e = event_from_json(&v, &o.org, now, &limits)
                .map_err(|e| anyhow::anyhow!("generated event fails validation: {e}"))?;
            let payload = codec.encode(&e)?;
            bytes += payload.len();
            *kinds.entry(e.event_type.clone()).or_default() += 1;
            out.push((e.partition_key(), payload));
        }
    }
    out.truncate(o.events);
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let desc = format!(
        "{} events, {} agents, {:.0} Avro bytes/event ({})",
        o.events,
        fleet.agent_count(),
        bytes as f64 / o.events as f64,
        kinds.join(", ")
    );
    Ok((out, desc))
}

async fn produce_all(
    k: &KafkaConfig,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> Result<Duration> {
    let producer = kafka::stage_producer(k)?;
    let started = Instant::now();
    for chunk in records.chunks(5000) {
        let results = kafka::send_records(&producer, topic, chunk, Duration::from_secs(60)).await;
        if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
            bail!("producing the input to {topic}: {e}");
        }
    }
    Ok(started.elapsed())
}

/// Rates from the output records' CreateTime stamps (ms, set by the
/// producing client as it hands each record over): (first → last: records
/// after the first millisecond / (last stamp − first stamp); steady state:
/// the middle 90% of records / the time they span).
fn rate_of(stamps: &mut [i64]) -> (f64, f64) {
    stamps.sort_unstable();
    let (Some(&first), Some(&last)) = (stamps.first(), stamps.last()) else {
        return (f64::NAN, f64::NAN);
    };
    let after_first = stamps.iter().filter(|&&t| t > first).count();
    if std::env::var_os("BENCH_DEBUG").is_some() {
        let mut per: std::collections::BTreeMap<i64, usize> = Default::default();
        for t in stamps.iter() {
            *per.entry((t - first) / 100).or_default() += 1;
        }
        log(&format!("records per 100 ms from the first: {per:?}"));
    }
    let (i, j) = (stamps.len() / 20, stamps.len() - 1 - stamps.len() / 20);
    (
        after_first as f64 / ((last - first) as f64 / 1000.0).max(1e-3),
        (j - i) as f64 / ((stamps[j] - stamps[i]) as f64 / 1000.0).max(1e-3),
    )
}

/// Read all of `topic` (every partition from the start) after a phase: the
/// CreateTime of each record. Fails unless exactly `n` records are there.
fn stamps(brokers: &str, topic: &str, n: usize) -> Result<Vec<i64>> {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("bench-reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .create()?;
    let meta = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let parts = meta
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..parts as i32 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let mut out = Vec::with_capacity(n);
    let mut at_end = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while at_end.len() < parts && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                out.push(m.timestamp().to_millis().unwrap_or(0));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => bail!("reading {topic}: {e}"),
            None => {}
        }
    }
    ensure!(
        out.len() == n,
        "{topic} holds {} records, expected {n}",
        out.len()
    );
    Ok(out)
}

/// One measured phase's figures.
struct Measured {
    /// Events/s from the output records' CreateTime stamps: first → last.
    eps: f64,
    /// The same over the middle 90% of the records (no start-up, no tail).
    steady: f64,
    /// Events/s seen by the runner: the raw loop's first record consumed →
    /// last ack; the processor's events counter (/metrics, polled every
    /// 50 ms) from first > 0 to N.
    own_eps: f64,
    /// Average cores busy: [loadgen, processor, broker].
    cpu: Vec<Option<f64>>,
}

/// The raw consume→produce loop, as the enrich stage runs it minus its work.
/// (events/s from the first record consumed to the last ack, cores busy).
#[allow(clippy::too_many_arguments)]
async fn raw_loop(
    k: &KafkaConfig,
    raw: &str,
    out: &str,
    group: &str,
    n: usize,
    batch_max: usize,
    linger: Duration,
    pids: &[Option<u32>],
) -> Result<(f64, Vec<Option<f64>>)> {
    // The stages' consumer, statistics included (one parse every 5 s).
    let consumer: StreamConsumer<kafka::LagContext> =
        kafka::consumer(k, group, kafka::LagContext::new(group))?;
    consumer.subscribe(&[raw])?;
    let producer = kafka::stage_producer(k)?;
    let never = CancellationToken::new();
    let (mut first, mut done) = (None, 0);
    while done < n {
        let batch = kafka::next_batch(&consumer, batch_max, linger, &never)
            .await
            .context("consumer stopped")?;
        first.get_or_insert_with(|| (Instant::now(), CpuMark::start(pids)));
        let records: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|m| {
                let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
                (
                    key.unwrap_or_default(),
                    m.payload().unwrap_or_default().to_vec(),
                )
            })
            .collect();
        let mut pending: Vec<usize> = (0..records.len()).collect();
        while !pending.is_empty() {
            let results = kafka::send_records(
                &producer,
                out,
                pending.iter().map(|&i| &records[i]),
                Duration::from_secs(30),
            )
            .await;
            pending = pending
                .into_iter()
                .zip(results)
                .filter_map(|(i, r)| r.is_err().then_some(i))
                .collect();
        }
        kafka::store_offsets(&consumer, &kafka::next_offsets(&batch));
        done += batch.len();
    }
    let (t0, cpu) = first.context("no batch")?;
    Ok((n as f64 / t0.elapsed().as_secs_f64(), cpu.cores()))
}

async fn raw_phase(
    o: &ThroughputOptions,
    k: &KafkaConfig,
    raw: &str,
    round: usize,
) -> Result<Measured> {
    let out = format!("{}.out.a.{round}", o.topic_prefix);
    kafka::ensure_topics(k, &[&out]).await?;
    let group = format!("bench-raw-{round}-{}", uuid::Uuid::new_v4().simple());
    let pids = [None, None, o.broker_pid];
    let linger = Duration::from_millis(o.linger_ms);
    let (own_eps, cpu) = tokio::time::timeout(
        Duration::from_secs(o.timeout_secs),
        raw_loop(k, raw, &out, &group, o.events, o.batch_max, linger, &pids),
    )
    .await
    .map_err(|_| anyhow::anyhow!("raw loop did not finish within {} s", o.timeout_secs))??;
    let (brokers, n) = (o.brokers.clone(), o.events);
    let mut ts = tokio::task::spawn_blocking(move || stamps(&brokers, &out, n)).await??;
    let (eps, steady) = rate_of(&mut ts);
    Ok(Measured {
        eps,
        steady,
        own_eps,
        cpu,
    })
}

/// Ask a child to stop (SIGTERM), then kill it if it does not within 10 s.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The processor's `agentops_processor_events_total` (0 until it serves /metrics).
async fn enriched_so_far(http: &reqwest::Client, url: &str) -> u64 {
    let Ok(r) = http.get(url).send().await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("agentops_processor_events_total"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// One processor instance over the raw topic, at least once or (with
/// `exactly_once`) transactional.
async fn processor_phase(
    o: &ThroughputOptions,
    raw: &str,
    round: usize,
    exactly_once: bool,
) -> Result<Measured> {
    let p = &o.topic_prefix;
    let phase = if exactly_once { "c" } else { "b" };
    let out = format!("{p}.out.{phase}.{round}");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    std::fs::create_dir_all(&o.log_dir)?;
    let log_path = o.log_dir.join(format!("processors-{phase}-{round}.log"));
    let log_file = std::fs::File::create(&log_path)?;
    let mut child = tokio::process::Command::new(&o.processors_bin)
        .env("AGENTOPS_LISTEN", &o.listen)
        .env("AGENTOPS_DATABASE__URL", &o.database_url)
        .env("AGENTOPS_KAFKA__BROKERS", &o.brokers)
        .env("AGENTOPS_KAFKA__PARTITIONS", o.partitions.to_string())
        .env("AGENTOPS_KAFKA__TOPIC_RAW", raw)
        .env("AGENTOPS_KAFKA__TOPIC_ENRICHED", &out)
        .env(
            "AGENTOPS_KAFKA__TOPIC_ALERTS",
            format!("{p}.alerts.{phase}.{round}"),
        )
        .env(
            "AGENTOPS_KAFKA__TOPIC_DLQ",
            format!("{p}.dlq.{phase}.{round}"),
        )
        .env(
            "AGENTOPS_GROUP",
            format!("bench-proc-{phase}-{round}-{suffix}"),
        )
        .env("AGENTOPS_EXACTLY_ONCE", exactly_once.to_string())
        .env(
            "AGENTOPS_NOTIFIER_GROUP",
            format!("bench-notifier-{phase}-{round}-{suffix}"),
        )
        .env("AGENTOPS_BATCH_MAX", o.batch_max.to_string())
        .env("AGENTOPS_BATCH_LINGER_MS", o.linger_ms.to_string())
        .env_remove("AGENTOPS_KAFKA__INSTANCE_ID")
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", o.processors_bin.display()))?;
    let pids = [None, child.id(), o.broker_pid];
    let http = reqwest::Client::new();
    let metrics = format!("http://{}/metrics", o.listen);
    let deadline = Instant::now() + Duration::from_secs(o.timeout_secs);
    let mut first: Option<(Instant, u64, CpuMark)> = None;
    let (own_eps, cpu) = loop {
        let n = enriched_so_far(&http, &metrics).await;
        if n > 0 && first.is_none() {
            first = Some((Instant::now(), n, CpuMark::start(&pids)));
        }
        if n >= o.events as u64 {
            let (t0, n0, cpu) = first.take().context("no start")?;
            let eps = (n - n0) as f64 / t0.elapsed().as_secs_f64().max(1e-3);
            break (eps, cpu.cores());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the processor exited ({status}); see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            stop(&mut child).await;
            bail!(
                "the processor did not finish within {} s; see {}",
                o.timeout_secs,
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop(&mut child).await;
    let (brokers, n) = (o.brokers.clone(), o.events);
    let mut ts = tokio::task::spawn_blocking(move || stamps(&brokers, &out, n)).await??;
    let (eps, steady) = rate_of(&mut ts);
    Ok(Measured {
        eps,
        steady,
        own_eps,
        cpu,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn cores(m: &Measured, i: usize) -> String {
    m.cpu
        .get(i)
        .copied()
        .flatten()
        .map_or("?".into(), |c| format!("{c:.2}"))
}

async fn throughput(o: ThroughputOptions) -> Result<()> {
    ensure!(
        o.events > 0 && o.rounds > 0,
        "need --events > 0 and --rounds > 0"
    );
    let pool = prepare_db(&o).await?;
    pool.close().await;
    let k = KafkaConfig {
        brokers: o.brokers.clone(),
        partitions: o.partitions,
        ..KafkaConfig::default()
    };
    log("building the events");
    let (records, desc) = build(&o)?;
    let raw = format!("{}.raw", o.topic_prefix);
    kafka::ensure_topics(&k, &[&raw]).await?;
    let took = produce_all(&k, &raw, &records).await?;
    drop(records);
    log(&format!(
        "{desc}: produced to {raw} in {:.1} s",
        took.as_secs_f64()
    ));

    let mut rows = Vec::new();
    for round in 1..=o.rounds {
        log(&format!("round {round}: raw consume→produce loop"));
        let a = raw_phase(&o, &k, &raw, round).await?;
        log(&format!(
            "round {round}: raw {:.0} events/s (own timing {:.0})",
            a.eps, a.own_eps
        ));
        tokio::time::sleep(Duration::from_secs(2)).await;
        // With both processor phases, their order alternates between rounds
        // (the later one finds the earlier one's violations already stored).
        let mut phases = vec![false];
        if o.exactly_once {
            phases.insert(usize::from(round % 2 == 1), true);
        }
        let (mut b, mut c) = (None, None);
        for exactly_once in phases {
            let what = if exactly_once {
                "transactional"
            } else {
                "at-least-once"
            };
            log(&format!("round {round}: one processor instance, {what}"));
            let m = processor_phase(&o, &raw, round, exactly_once).await?;
            log(&format!(
                "round {round}: processor ({what}) {:.0} events/s (its counter {:.0})",
                m.eps, m.own_eps
            ));
            tokio::time::sleep(Duration::from_secs(2)).await;
            if exactly_once {
                c = Some(m);
            } else {
                b = Some(m);
            }
        }
        rows.push((a, b.context("no at-least-once phase")?, c));
    }

    println!("processor throughput, {desc}");
    println!(
        "  {} partitions, batch_max {}, linger {} ms, governance: {}",
        o.partitions,
        o.batch_max,
        o.linger_ms,
        if o.governance {
            "3 policies (model_denylist flag, max_tokens_per_call alert, max_cost_per_run alert), 2 budgets (org month, workflow day)"
        } else {
            "none"
        }
    );
    let (mut ratios, mut steady_ratios, mut json_rounds) = (Vec::new(), Vec::new(), Vec::new());
    // Transactional: to raw, to at least once (first → last, steady).
    let (mut t_raw, mut t_alo, mut t_alo_steady) = (Vec::new(), Vec::new(), Vec::new());
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    for (i, (a, b, c)) in rows.iter().enumerate() {
        let (r, rs) = (b.eps / a.eps, b.steady / a.steady);
        ratios.push(r);
        steady_ratios.push(rs);
        println!(
            "  round {}: raw {:.0} events/s, processor {:.0} events/s, ratio {r:.2} | steady state (middle 90%): raw {:.0}, processor {:.0}, ratio {rs:.2}",
            i + 1,
            a.eps,
            b.eps,
            a.steady,
            b.steady
        );
        println!(
            "           own views: raw loop {:.0} events/s (first consumed → last ack), processor counter {:.0} events/s; cores busy: raw loop {} broker {}, processor {} broker {}",
            a.own_eps,
            b.own_eps,
            cores(a, 0),
            cores(a, 2),
            cores(b, 1),
            cores(b, 2)
        );
        let mut round = json!({
            "raw_eps": a.eps.round(), "processor_eps": b.eps.round(), "ratio": r3(r),
            "raw_steady_eps": a.steady.round(), "processor_steady_eps": b.steady.round(),
            "steady_ratio": r3(rs), "raw_own_timing_eps": a.own_eps.round(),
            "processor_counter_eps": b.own_eps.round(),
            "cores": {"raw_loop": a.cpu.first().copied().flatten(), "processor": b.cpu.get(1).copied().flatten()},
        });
        if let Some(c) = c {
            let (tr, ta, tas) = (c.eps / a.eps, c.eps / b.eps, c.steady / b.steady);
            t_raw.push(tr);
            t_alo.push(ta);
            t_alo_steady.push(tas);
            println!(
                "           transactional processor {:.0} events/s (steady {:.0}, its counter {:.0}; cores busy {} broker {}): ratio {tr:.2} to raw, {ta:.2} to at least once (steady {tas:.2})",
                c.eps,
                c.steady,
                c.own_eps,
                cores(c, 1),
                cores(c, 2)
            );
            round["transactional"] = json!({
                "eps": c.eps.round(), "steady_eps": c.steady.round(),
                "counter_eps": c.own_eps.round(), "ratio_to_raw": r3(tr),
                "ratio_to_at_least_once": r3(ta), "steady_ratio_to_at_least_once": r3(tas),
                "cores": c.cpu.get(1).copied().flatten(),
            });
        }
        json_rounds.push(round);
    }
    let (m, ms) = (median(&mut ratios), median(&mut steady_ratios));
    println!(
        "  median ratio processor/raw: {m:.2} first → last record, {ms:.2} steady state (aim ≥ 0.7)"
    );
    let mut summary = json!({"bench": "processors_throughput", "events": o.events, "partitions": o.partitions,
           "governance": o.governance, "rounds": json_rounds,
           "median_ratio": r3(m), "median_steady_ratio": r3(ms)});
    if o.exactly_once {
        let (tr, ta, tas) = (
            median(&mut t_raw),
            median(&mut t_alo),
            median(&mut t_alo_steady),
        );
        println!(
            "  median ratio transactional/raw: {tr:.2}; transactional/at-least-once: {ta:.2} first → last record, {tas:.2} steady state (cost {:.0}%)",
            (1.0 - ta) * 100.0
        );
        summary["median_transactional_ratio"] = json!(r3(tr));
        summary["median_transactional_to_at_least_once"] = json!(r3(ta));
        summary["median_transactional_to_at_least_once_steady"] = json!(r3(tas));
    }
    println!("{summary}");
    Ok(())
}
