//! The projection consumer loop.

use std::collections::HashMap;
use std::time::Duration;

use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::{db, kafka};
use agentops_schemas::{AgentEvent, Codec};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientContext, Message, Offset};
use sqlx::PgPool;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::store::{self, Writer};
use crate::Config;

/// Tells the loop which partitions were just assigned, so it can seek them
/// to the offsets stored in Postgres.
struct AssignContext {
    assigned: UnboundedSender<Vec<(String, i32)>>,
    group: String,
}

impl ClientContext for AssignContext {
    fn stats(&self, stats: rdkafka::Statistics) {
        kafka::record_lag(&self.group, &stats);
    }
}

impl ConsumerContext for AssignContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let parts = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                let _ = self.assigned.send(parts);
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(partitions = tpl.count(), "partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

fn projected(n: usize, duplicates: usize, events: &[AgentEvent]) {
    metrics::counter!("agentops_projection_events_total").increment(n as u64);
    metrics::counter!("agentops_projection_duplicates_total").increment(duplicates as u64);
    // Freshness: how long the batch's earliest-received event took from the
    // gateway's acknowledgement to being stored (and readable).
    if let Some(oldest) = events.iter().filter_map(|e| e.ingested_at).min() {
        let delay = (chrono::Utc::now().timestamp_micros() - oldest).max(0) as f64 / 1e6;
        metrics::gauge!("agentops_projection_freshness_seconds").set(delay);
        metrics::histogram!("agentops_projection_delay_seconds").record(delay);
    }
}

pub(crate) async fn run(
    config: &Config,
    pool: PgPool,
    mut writer: Writer,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let (tx, mut assigned) = unbounded_channel();
    let consumer: StreamConsumer<AssignContext> = kafka::consumer(
        &config.kafka,
        &config.group,
        AssignContext {
            assigned: tx,
            group: config.group.clone(),
        },
    )?;
    let topic = config.kafka.topic_enriched.clone();
    consumer.subscribe(&[&topic])?;
    let dlq = kafka::stage_producer(&config.kafka)?;
    let codec = Codec::current();
    // Next offset already applied per partition (from Postgres): anything below is skipped.
    let mut applied: HashMap<(String, i32), i64> = HashMap::new();
    let linger = Duration::from_millis(config.batch_linger_ms);
    tracing::info!(topic = %topic, group = %config.group, "projection consuming");
    let mut retention = crate::retention::Retention::new(writer.mode(), &config.database.storage);

    while let Some(batch) = kafka::next_batch(&consumer, config.batch_max, linger, &shutdown).await
    {
        while let Ok(parts) = assigned.try_recv() {
            seek_to_stored(
                &consumer,
                &pool,
                &config.group,
                &parts,
                &mut applied,
                &shutdown,
            )
            .await;
        }
        let fresh: Vec<&OwnedMessage> = batch
            .iter()
            .filter(|m| {
                m.offset()
                    >= applied
                        .get(&(m.topic().to_owned(), m.partition()))
                        .copied()
                        .unwrap_or(0)
            })
            .collect();
        let mut events = Vec::with_capacity(fresh.len());
        let mut sources = Vec::with_capacity(fresh.len());
        for m in &fresh {
            let reason = match m.payload().map(|p| codec.decode(p)) {
                Some(Ok(e)) => {
                    events.push(e);
                    sources.push(*m);
                    continue;
                }
                Some(Err(e)) => e.to_string(),
                None => "empty record".to_owned(),
            };
            if !kafka::dead_letter(&dlq, &config.kafka.topic_dlq, m, &reason, &shutdown).await {
                return Ok(());
            }
        }
        let offsets = kafka::next_offsets(&batch);
        let out = Out {
            pool: &pool,
            dlq: &dlq,
            dlq_topic: &config.kafka.topic_dlq,
            shutdown: &shutdown,
        };
        let Some(applied_batch) = write(&out, &mut writer, &events, &sources, &offsets).await
        else {
            return Ok(());
        };
        projected(applied_batch.inserted, applied_batch.duplicates, &events);
        for (t, p, o) in &offsets {
            let e = applied.entry((t.clone(), *p)).or_insert(0);
            *e = (*e).max(*o);
        }
        kafka::store_offsets(&consumer, &offsets);
        retention.maybe_run(&pool).await;
    }
    // A synchronous commit waits for the broker: off the async workers.
    let commit = tokio::task::spawn_blocking(move || {
        consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
    });
    if let Ok(Err(e)) = commit.await {
        tracing::debug!(error = %e, "final commit");
    }
    Ok(())
}

/// Where a batch goes.
struct Out<'a> {
    pool: &'a PgPool,
    dlq: &'a FutureProducer,
    dlq_topic: &'a str,
    shutdown: &'a CancellationToken,
}

/// Write `events` and then `offsets`. Transient database errors are
/// retried with backoff, never skipped. A permanent one (the data itself,
/// [`db::is_permanent`]) would fail every retry and stop the partition for
/// every org on it, so the batch is split in halves, each written on its
/// own (in order), down to the records the database refuses: those are
/// dead-lettered with the reason and the rest is projected. Halves written
/// before a crash are harmless: a replay finds their events present and
/// counts nothing twice. `None` on shutdown.
async fn write(
    out: &Out<'_>,
    writer: &mut Writer,
    events: &[AgentEvent],
    sources: &[&OwnedMessage],
    offsets: &[(String, i32, i64)],
) -> Option<store::Applied> {
    let first = match attempt(out, writer, events, offsets, 2).await? {
        Ok(a) => return Some(a),
        Err(e) => e,
    };
    tracing::warn!(error = %first, events = events.len(), "the database refuses part of a batch; isolating the records it refuses");
    let mut total = store::Applied::default();
    // [start, end) ranges, the next one on top.
    let mut pending = vec![(0, events.len())];
    while let Some((a, b)) = pending.pop() {
        // A single record gets three tries (as the whole batch got two): a
        // plain-mode partition dropped under the worker, for one, fails once
        // and then works.
        let tries = if b - a == 1 { 3 } else { 1 };
        match attempt(out, writer, &events[a..b], &[], tries).await? {
            Ok(x) => {
                total.inserted += x.inserted;
                total.duplicates += x.duplicates;
                total.corrected += x.corrected;
            }
            Err(e) if b - a == 1 => {
                let reason = format!("the database refused the event: {e}");
                tracing::warn!(event_id = %events[a].event_id, org_id = %events[a].org_id, error = %e, "event dead-lettered");
                metrics::counter!("agentops_projection_refused_total").increment(1);
                if !kafka::dead_letter(out.dlq, out.dlq_topic, sources[a], &reason, out.shutdown)
                    .await
                {
                    return None;
                }
            }
            Err(_) => {
                let mid = a + (b - a) / 2;
                pending.push((mid, b));
                pending.push((a, mid));
            }
        }
    }
    // Offsets hold no event data: whatever the error, they are retried.
    while attempt(out, writer, &[], offsets, 1).await?.is_err() {
        tokio::select! {
            _ = out.shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    Some(total)
}

/// One write, retried with backoff while it fails transiently; a permanent
/// failure is returned once it has failed `tries` times. `None` on shutdown.
async fn attempt(
    out: &Out<'_>,
    writer: &mut Writer,
    events: &[AgentEvent],
    offsets: &[(String, i32, i64)],
    tries: u32,
) -> Option<Result<store::Applied, agentops_runtime::Error>> {
    let mut backoff = Duration::from_millis(100);
    let mut permanent = 0;
    loop {
        let result = match out.pool.acquire().await {
            Ok(mut conn) => writer.apply(&mut conn, events, offsets).await,
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(a) => return Some(Ok(a)),
            Err(e) if db::is_permanent_error(&e) => {
                permanent += 1;
                if permanent >= tries {
                    return Some(Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, events = events.len(), "projection write failed, retrying")
            }
        }
        tokio::select! {
            _ = out.shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Load the Postgres offsets of newly assigned partitions and seek to them.
/// A failed seek is harmless: records below the stored offset are skipped.
async fn seek_to_stored(
    consumer: &StreamConsumer<AssignContext>,
    pool: &PgPool,
    group: &str,
    parts: &[(String, i32)],
    applied: &mut HashMap<(String, i32), i64>,
    shutdown: &CancellationToken,
) {
    let mut topics: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
    topics.dedup();
    for topic in topics {
        let stored = loop {
            let attempt = match pool.acquire().await {
                Ok(mut conn) => store::load_offsets(&mut conn, group, topic).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load stored offsets, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        for (partition, next) in stored {
            if !parts.iter().any(|(t, p)| t == topic && *p == partition) {
                continue;
            }
            applied.insert((topic.to_owned(), partition), next);
            // A blocking call (up to 5 s): the runtime moves other tasks off
            // this worker thread meanwhile.
            let seek = tokio::task::block_in_place(|| {
                consumer.seek(
                    topic,
                    partition,
                    Offset::Offset(next),
                    Duration::from_secs(5),
                )
            });
            match seek {
                Ok(()) => {
                    tracing::info!(topic, partition, offset = next, "seeked to stored offset")
                }
                Err(e) => {
                    tracing::info!(topic, partition, offset = next, error = %e, "seek failed; skipping below stored offset instead")
                }
            }
        }
    }
}
