//! `agentops-processors recompute`: re-price a time range after a price change.
//!
//! The Kafka log stays the source of truth: the command reads the enriched
//! topic from its earliest retained offset to its end as of the start,
//! re-prices every event in the range whose cost was computed or unknown
//! (never a client-supplied cost) with the price table now in Postgres, and
//! for each event whose cost changes appends a cost correction (see
//! `agentops_schemas::correction`) to the enriched topic with the event's
//! partition key, so it follows the event in its partition. The projections
//! apply corrections idempotently; replaying the log (`agentops-projections
//! rebuild`) gives the same numbers. An event's current cost is the one of
//! its first copy in the log, or of the latest correction already written,
//! so running the command twice writes nothing the second time.
//!
//! TimescaleDB: once the projections have applied the corrections (their
//! stored offsets pass the last one written), the continuous aggregates are
//! refreshed over the range's days.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::correction::{self, CORRECTS, COST_CORRECTION, RECOMPUTED};
use agentops_schemas::{AgentEvent, Codec};
use chrono::{DateTime, NaiveDate, Utc};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::pricing::{PriceTable, Priced};
use crate::{price_store, Config};

/// What to re-price.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events at or after this instant...
    pub from: DateTime<Utc>,
    /// ...and before this one.
    pub to: DateTime<Utc>,
    /// Only this org's events.
    pub org: Option<String>,
    /// Report what would change, write nothing.
    pub dry_run: bool,
    /// Consumer group of the projections (TimescaleDB: waited for before refreshing).
    pub projections_group: String,
    /// How long to wait for the projections to apply the corrections (s).
    pub wait_secs: u64,
}

/// What a recompute did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Records read from the log.
    pub records: u64,
    /// Distinct re-priceable events in the range.
    pub events: u64,
    /// Corrections written (or that would be, on a dry run).
    pub corrections: u64,
    /// Total cost difference (USD).
    pub cost_delta: f64,
    /// Events without a price before and after.
    pub unpriced_before: u64,
    pub unpriced_after: u64,
}

use agentops_runtime::Error;

fn incomplete(msg: impl Into<String>) -> Error {
    Error::Incomplete(msg.into())
}

fn interrupted(msg: impl Into<String>) -> Error {
    Error::Interrupted(msg.into())
}

/// `--from` / `--to`: RFC 3339, or a UTC date (`--to` date: through its end).
pub fn parse_bound(s: &str, is_end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d: NaiveDate = s
        .parse()
        .map_err(|_| format!("`{s}` is neither RFC 3339 nor a YYYY-MM-DD date"))?;
    let d = if is_end { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// A deterministic id: the same correction of the same event is the same record.
pub fn correction_id(original: &str, cost: Option<f64>) -> String {
    let value = cost.map_or("null".to_owned(), |c| format!("{:016x}", c.to_bits()));
    let digest = Sha256::digest(format!("agentops.cost_correction\0{original}\0{value}"));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8 (custom)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid::Uuid::from_bytes(b).to_string()
}

/// The correction record of `original` to `cost`.
pub fn correction_for(original: &AgentEvent, cost: Option<f64>, now_us: i64) -> AgentEvent {
    AgentEvent {
        event_id: correction_id(&original.event_id, cost),
        org_id: original.org_id.clone(),
        timestamp: original.timestamp,
        agent_id: original.agent_id.clone(),
        workflow_id: original.workflow_id.clone(),
        run_id: original.run_id.clone(),
        event_type: COST_CORRECTION.into(),
        provider: original.provider.clone(),
        model: original.model.clone(),
        cost_usd: cost,
        cost_source: Some(RECOMPUTED.into()),
        attributes: [(CORRECTS.to_owned(), original.event_id.clone())].into(),
        ingested_at: Some(now_us),
        ..Default::default()
    }
}

/// Events of the range, in log order, with their current cost.
#[derive(Default)]
struct Scan {
    index: HashMap<String, usize>,
    events: Vec<(AgentEvent, Option<f64>)>,
}

impl Scan {
    fn record(&mut self, e: AgentEvent, opts: &Options, table: &PriceTable) {
        if correction::is_correction(&e) {
            let target = e.attributes.get(CORRECTS);
            if let Some(&i) = target.and_then(|id| self.index.get(id)) {
                self.events[i].1 = e.cost_usd;
            }
            return;
        }
        let t = DateTime::from_timestamp_micros(e.timestamp).unwrap_or_default();
        if t < opts.from || t >= opts.to || opts.org.as_ref().is_some_and(|o| *o != e.org_id) {
            return;
        }
        // Client costs are kept; events without tokens have nothing to price.
        if e.cost_source.as_deref() == Some("client")
            || table.price_tokens(&e) == Priced::NotApplicable
            || self.index.contains_key(&e.event_id)
        {
            return; // a later copy of an event: the projections kept the first
        }
        self.index.insert(e.event_id.clone(), self.events.len());
        let cost = e.cost_usd;
        // Keep only what pricing and the correction need (memory per event).
        let mut e = e;
        e.attributes = Default::default();
        e.error_message = None;
        e.error_type = None;
        e.tool_name = None;
        e.trace_id = None;
        e.span_id = None;
        self.events.push((e, cost));
    }

    /// The corrections to write, and the summary figures.
    fn corrections(
        &self,
        table: &PriceTable,
        summary: &mut Summary,
        now_us: i64,
    ) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        for (e, current) in &self.events {
            let new = match table.price_tokens(e) {
                Priced::Computed(c) => Some(c),
                _ => None,
            };
            summary.unpriced_before += u64::from(current.is_none());
            summary.unpriced_after += u64::from(new.is_none());
            if new != *current {
                summary.cost_delta += new.unwrap_or(0.0) - current.unwrap_or(0.0);
                out.push(correction_for(e, new, now_us));
            }
        }
        summary.events = self.events.len() as u64;
        summary.corrections = out.len() as u64;
        out
    }
}

pub async fn recompute(
    config: Config,
    opts: Options,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<Summary> {
    if opts.from >= opts.to {
        return Err(Error::Config("--from must be before --to".into()));
    }
    let pool = agentops_runtime::db::connect(&config.database, Duration::from_secs(60)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    let table = price_store::load_seeded(&config, &pool).await?;
    eprintln!(
        "recompute: {} price rows; events from {} to {}{}",
        table.rows().len(),
        opts.from.to_rfc3339(),
        opts.to.to_rfc3339(),
        opts.org
            .as_deref()
            .map(|o| format!(" of org {o}"))
            .unwrap_or_default()
    );
    let topic = config.kafka.topic_enriched.clone();
    let mut summary = Summary::default();
    let scan = read_log(&config, &topic, &opts, &table, &mut summary, &shutdown).await?;
    let now_us = Utc::now().timestamp_micros();
    let corrections = scan.corrections(&table, &mut summary, now_us);
    eprintln!(
        "recompute: {} events re-priced, {} changed (cost {:+.6} USD), unpriced {} -> {}",
        summary.events,
        summary.corrections,
        summary.cost_delta,
        summary.unpriced_before,
        summary.unpriced_after
    );
    if opts.dry_run || corrections.is_empty() {
        if opts.dry_run {
            eprintln!("recompute: dry run, nothing written");
        }
        return Ok(summary);
    }
    let producer = kafka::stage_producer(&config.kafka)?;
    let last = produce(&producer, &topic, &corrections, &shutdown).await?;
    eprintln!(
        "recompute: {} corrections written to {topic}",
        corrections.len()
    );
    let mode: Option<String> =
        sqlx::query_scalar("SELECT value FROM storage_settings WHERE key = 'mode'")
            .fetch_optional(&pool)
            .await?;
    if mode.is_some_and(|m| m == "timescaledb") {
        wait_applied(&pool, &opts, &topic, &last, &shutdown).await?;
        refresh(&pool, &opts).await?;
    }
    Ok(summary)
}

/// Read the enriched topic from low to high watermark (as of now).
async fn read_log(
    config: &Config,
    topic: &str,
    opts: &Options,
    table: &PriceTable,
    summary: &mut Summary,
    shutdown: &CancellationToken,
) -> agentops_runtime::Result<Scan> {
    let group = format!("{}.recompute", config.group);
    let mut log = kafka::WholeLog::open(&config.kafka, &group, topic)?;
    let (partitions, total) = (log.partitions, log.total);
    eprintln!("recompute: reading {total} records from {partitions} partitions of {topic}");
    let mut scan = Scan::default();
    let codec = Codec::current();
    let started = Instant::now();
    let mut last_report = Instant::now();
    while !log.done() {
        let batch = tokio::time::timeout(
            Duration::from_secs(60),
            log.next_batch(config.batch_max, Duration::from_millis(50), shutdown),
        )
        .await
        .map_err(|_| incomplete("no records for 60 s before the end of the log was reached"))?
        .ok_or_else(|| interrupted("recompute stopped; nothing was written"))?;
        for m in &batch {
            summary.records += 1;
            if let Some(Ok(e)) = m.payload().map(|p| codec.decode(p)) {
                scan.record(e, opts, table);
            }
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            progress(summary.records, total, started, scan.events.len());
            last_report = Instant::now();
        }
    }
    progress(summary.records, total, started, scan.events.len());
    Ok(scan)
}

fn progress(done: u64, total: u64, started: Instant, events: usize) {
    let pct = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    eprintln!(
        "recompute: {done}/{total} records ({pct:.1}%), {:.0} records/s, {events} events in range",
        done as f64 / started.elapsed().as_secs_f64().max(0.001)
    );
}

/// Produce every correction until acknowledged; returns the highest offset
/// written per partition.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    corrections: &[AgentEvent],
    shutdown: &CancellationToken,
) -> agentops_runtime::Result<HashMap<i32, i64>> {
    let codec = Codec::current();
    let mut records = Vec::with_capacity(corrections.len());
    for c in corrections {
        let bytes = codec
            .encode(c)
            .map_err(|e| incomplete(format!("cannot encode a correction: {e}")))?;
        records.push((c.partition_key(), bytes));
    }
    let mut last: HashMap<i32, i64> = HashMap::new();
    let mut pending: Vec<usize> = (0..records.len()).collect();
    let mut backoff = Duration::from_millis(100);
    for attempt in 0.. {
        let mut failed = Vec::new();
        for chunk in pending.chunks(1000) {
            let mut futures = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let (key, payload) = &records[i];
                let fp = agentops_schemas::codec::header_value(payload);
                let headers = OwnedHeaders::new().insert(Header {
                    key: agentops_schemas::codec::SCHEMA_HEADER,
                    value: Some(&*fp),
                });
                let record = FutureRecord::to(topic)
                    .key(key)
                    .payload(payload)
                    .headers(headers);
                futures.push((i, producer.send_result(record).map_err(|(e, _)| e)));
            }
            for (i, f) in futures {
                let delivered = match f {
                    Ok(f) => match f.await {
                        Ok(Ok(d)) => Ok((d.partition, d.offset)),
                        Ok(Err((e, _))) => Err(e.to_string()),
                        Err(_) => Err("delivery canceled".to_owned()),
                    },
                    Err(e) => Err(e.to_string()),
                };
                match delivered {
                    Ok((p, o)) => {
                        let e = last.entry(p).or_insert(o);
                        *e = (*e).max(o);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "producing a correction failed, will retry");
                        failed.push(i);
                    }
                }
            }
        }
        if failed.is_empty() {
            break;
        }
        if attempt >= 20 {
            return Err(incomplete(format!(
                "{} corrections could not be written; run recompute again (it is idempotent)",
                failed.len()
            )));
        }
        pending = failed;
        tokio::select! {
            _ = shutdown.cancelled() => return Err(interrupted("recompute stopped while writing; run it again")),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    Ok(last)
}

/// Wait until the projections' stored offsets pass every correction written.
async fn wait_applied(
    pool: &PgPool,
    opts: &Options,
    topic: &str,
    last: &HashMap<i32, i64>,
    shutdown: &CancellationToken,
) -> agentops_runtime::Result<()> {
    eprintln!(
        "recompute: waiting for the projections (group {}) to apply the corrections",
        opts.projections_group
    );
    let deadline = Instant::now() + Duration::from_secs(opts.wait_secs);
    #[derive(sqlx::FromRow)]
    struct Stored {
        partition: i32,
        next_offset: i64,
    }
    loop {
        let stored: Vec<Stored> = sqlx::query_as(
            "SELECT partition, next_offset FROM consumer_offsets
             WHERE consumer_group = $1 AND topic = $2",
        )
        .bind(&opts.projections_group)
        .bind(topic)
        .fetch_all(pool)
        .await?;
        let stored: HashMap<i32, i64> = stored
            .into_iter()
            .map(|s| (s.partition, s.next_offset))
            .collect();
        if last
            .iter()
            .all(|(p, o)| stored.get(p).is_some_and(|n| n > o))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(incomplete(format!(
                "the projections (group {}) did not apply the corrections within {} s; \
                 the continuous aggregates catch up at their next refresh",
                opts.projections_group, opts.wait_secs
            )));
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(interrupted("recompute stopped while waiting")),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// TimescaleDB: refresh every level over the range's whole days, finest first.
async fn refresh(pool: &PgPool, opts: &Options) -> agentops_runtime::Result<()> {
    let start = opts
        .from
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    let mut end = opts
        .to
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    if end < opts.to {
        end += chrono::Duration::days(1);
    }
    for agentops_runtime::storage::Level { name, .. } in agentops_runtime::storage::LEVELS {
        eprintln!(
            "recompute: refreshing {name} from {} to {}",
            start.to_rfc3339(),
            end.to_rfc3339()
        );
        sqlx::raw_sql(&format!(
            "CALL refresh_continuous_aggregate('{name}', TIMESTAMPTZ '{}', TIMESTAMPTZ '{}')",
            start.to_rfc3339(),
            end.to_rfc3339()
        ))
        .execute(pool)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            from: parse_bound("2026-11-01", false).unwrap(),
            to: parse_bound("2026-11-30", true).unwrap(),
            org: None,
            dry_run: false,
            projections_group: "g".into(),
            wait_secs: 1,
        }
    }

    fn call(id: &str, model: &str, cost: Option<f64>, source: Option<&str>) -> AgentEvent {
        AgentEvent {
            event_id: id.into(),
            org_id: "acme".into(),
            agent_id: "a".into(),
            timestamp: parse_bound("2026-11-22T10:00:00Z", false)
                .unwrap()
                .timestamp_micros(),
            event_type: "llm_call".into(),
            model: Some(model.into()),
            input_tokens: Some(1_000_000),
            cost_usd: cost,
            cost_source: source.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn bounds_take_dates_and_instants() {
        assert_eq!(
            parse_bound("2026-11-22", false).unwrap().to_rfc3339(),
            "2026-11-22T00:00:00+00:00"
        );
        assert_eq!(
            parse_bound("2026-11-22", true).unwrap().to_rfc3339(),
            "2026-11-23T00:00:00+00:00"
        );
        assert_eq!(
            parse_bound("2026-11-22T10:30:00+01:00", true)
                .unwrap()
                .to_rfc3339(),
            "2026-11-22T09:30:00+00:00"
        );
        assert!(parse_bound("yesterday", false).is_err());
    }

    #[test]
    fn correction_ids_are_deterministic_uuids() {
        let a = correction_id("x", Some(1.5));
        assert_eq!(a, correction_id("x", Some(1.5)));
        assert_ne!(a, correction_id("x", Some(1.25)));
        assert_ne!(a, correction_id("x", None));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 8);
    }

    #[test]
    fn only_changed_computed_or_unknown_costs_are_corrected_once() {
        let table = PriceTable::bundled();
        let o = opts();
        let mut scan = Scan::default();
        let stale = call("e1", "gpt-4o", Some(9.0), Some("computed"));
        scan.record(stale.clone(), &o, &table);
        scan.record(
            call("e2", "gpt-4o", Some(2.5), Some("computed")),
            &o,
            &table,
        ); // right already
        scan.record(call("e3", "gpt-4o", Some(0.1), Some("client")), &o, &table); // client: kept
        scan.record(call("e4", "mystery-model", None, None), &o, &table); // still unknown
        let mut out_of_range = call("e5", "gpt-4o", Some(9.0), Some("computed"));
        out_of_range.timestamp = parse_bound("2026-10-01", false).unwrap().timestamp_micros();
        scan.record(out_of_range, &o, &table);
        let mut dup = stale.clone();
        dup.cost_usd = Some(2.5);
        scan.record(dup, &o, &table); // a later copy: the first one counts
        let mut s = Summary::default();
        let c = scan.corrections(&table, &mut s, 0);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].event_type, COST_CORRECTION);
        assert_eq!(c[0].attributes[CORRECTS], "e1");
        assert_eq!(c[0].cost_usd, Some(2.5));
        assert_eq!(c[0].partition_key(), stale.partition_key());
        assert_eq!(c[0].timestamp, stale.timestamp);
        assert_eq!(c[0].input_tokens, None, "corrections carry no tokens");
        assert_eq!(
            (s.events, s.corrections, s.unpriced_before, s.unpriced_after),
            (3, 1, 1, 1)
        );
        assert!((s.cost_delta - (2.5 - 9.0)).abs() < 1e-12);
        // The correction read back from the log makes a second run a no-op.
        scan.record(c[0].clone(), &o, &table);
        let mut s = Summary::default();
        assert!(scan.corrections(&table, &mut s, 0).is_empty());
    }

    #[test]
    fn org_filter_limits_the_range() {
        let table = PriceTable::bundled();
        let o = Options {
            org: Some("other".into()),
            ..opts()
        };
        let mut scan = Scan::default();
        scan.record(
            call("e1", "gpt-4o", Some(9.0), Some("computed")),
            &o,
            &table,
        );
        assert!(scan.events.is_empty());
    }
}
