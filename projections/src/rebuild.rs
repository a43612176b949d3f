//! `agentops-projections rebuild`: drop every projection and rebuild it from
//! the Kafka log, from the earliest retained offset to the end of the log as
//! it was when the rebuild started.
//!
//! Live workers may keep running: the rebuild holds the projection lock
//! exclusively, so their batches wait and then apply on top of the rebuilt
//! tables (event_id dedupe makes any overlap harmless). The offsets it
//! reaches are stored under the live consumer group, so workers resume there.

use std::time::{Duration, Instant};

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::storage::{self, ModeChoice, PROJECTION_LOCK};
use agentops_schemas::Codec;
use rdkafka::Message;

use crate::store::Writer;
use crate::Config;

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub inserted: u64,
    pub duplicates: u64,
    pub undecodable: u64,
    /// Events the database refuses (the live workers dead-lettered them).
    pub refused: u64,
}

/// Progress line on stderr (the command's user watches it).
fn progress(done: u64, total: u64, started: Instant, inserted: u64) {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let pct = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    eprintln!(
        "rebuild: {done}/{total} records ({pct:.1}%), {:.0} records/s, {inserted} events stored",
        done as f64 / secs
    );
}

pub async fn rebuild(
    mut config: Config,
    mode: Option<ModeChoice>,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<Summary> {
    if let Some(m) = mode {
        config.database.storage.mode = m;
    }
    let pool = agentops_runtime::db::connect(&config.database, Duration::from_secs(60)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    pool.close().await;
    let mut conn = agentops_runtime::db::connect_one(&config.database).await?;
    eprintln!("rebuild: waiting for in-flight projection batches to finish");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PROJECTION_LOCK)
        .execute(&mut conn)
        .await?;
    storage::drop_all(&mut conn).await?;
    sqlx::query("DELETE FROM consumer_offsets WHERE consumer_group = ANY($1)")
        .bind([
            config.group.clone(),
            storage::deferred::derived_group(&config.group),
        ])
        .execute(&mut conn)
        .await?;
    let mode = storage::setup(&mut conn, &config.database.storage).await?;
    eprintln!(
        "rebuild: projections dropped and recreated in {} mode",
        mode.as_str()
    );
    tracing::info!(storage_mode = mode.as_str(), "rebuild started");

    let topic = config.kafka.topic_enriched.clone();
    let group = format!("{}.rebuild", config.group);
    let mut log = kafka::WholeLog::open(&config.kafka, &group, &topic)?;
    let (partitions, total) = (log.partitions, log.total);
    eprintln!("rebuild: reading {total} records from {partitions} partitions of {topic}");

    let codec = Codec::current();
    let mut writer =
        Writer::new(mode, config.group.clone()).with_tag_keys(&config.database.storage.tag_keys);
    let mut summary = Summary::default();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut underived = 0usize;
    let linger = Duration::from_millis(config.batch_linger_ms);
    while !log.done() {
        let batch = tokio::time::timeout(
            Duration::from_secs(60),
            log.next_batch(config.batch_max, linger, &shutdown),
        )
        .await
        .map_err(|_| {
            agentops_runtime::Error::Incomplete(
                "no records for 60 s before the end of the log was reached".into(),
            )
        })?;
        let Some(mine) = batch else {
            return Err(agentops_runtime::Error::Interrupted(
                "rebuild stopped; run it again to start over".into(),
            ));
        };
        let mut events = Vec::with_capacity(mine.len());
        for m in &mine {
            match m.payload().map(|p| codec.decode(p)) {
                Some(Ok(e)) => events.push(e),
                // The live workers dead-lettered these already.
                _ => summary.undecodable += 1,
            }
        }
        let offsets = kafka::next_offsets(&mine);
        let applied = match writer.apply(&mut conn, &events, &offsets).await {
            Err(e) if agentops_runtime::db::is_permanent_error(&e) => {
                // One by one, skipping what the database refuses.
                let mut applied = crate::store::Applied::default();
                for event in &events {
                    match writer
                        .apply(&mut conn, std::slice::from_ref(event), &[])
                        .await
                    {
                        Ok(a) => {
                            applied.inserted += a.inserted;
                            applied.duplicates += a.duplicates;
                        }
                        Err(e) if agentops_runtime::db::is_permanent_error(&e) => {
                            tracing::warn!(event_id = %event.event_id, error = %e, "rebuild: event refused, skipped");
                            summary.refused += 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
                writer.apply(&mut conn, &[], &offsets).await?;
                applied
            }
            other => other?,
        };
        summary.records += mine.len() as u64;
        summary.inserted += applied.inserted as u64;
        // Plain mode: derive as the events accumulate (chunks of whole batches).
        underived += applied.inserted;
        if underived >= crate::DERIVE_CHUNK {
            writer.settle(&mut conn).await?;
            underived = 0;
        }
        summary.duplicates += applied.duplicates as u64;
        if last_report.elapsed() >= Duration::from_secs(2) {
            progress(summary.records, total, started, summary.inserted);
            last_report = Instant::now();
        }
    }
    progress(summary.records, total, started, summary.inserted);
    writer.settle(&mut conn).await?;
    if mode == storage::Mode::Timescaledb {
        eprintln!("rebuild: refreshing continuous aggregates");
        storage::refresh_all(&mut conn).await?;
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PROJECTION_LOCK)
        .execute(&mut conn)
        .await?;
    eprintln!(
        "rebuild: done in {:.1} s: {} records, {} events, {} duplicates, {} undecodable, {} refused by the database",
        started.elapsed().as_secs_f64(),
        summary.records,
        summary.inserted,
        summary.duplicates,
        summary.undecodable,
        summary.refused
    );
    tracing::info!(
        records = summary.records,
        events = summary.inserted,
        "rebuild finished"
    );
    Ok(summary)
}
