//! The projection consumer loop.

use std::collections::HashMap;
use std::time::Duration;

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::Codec;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientContext, Message, Offset};
use sqlx::PgPool;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::store::{self, Writer};
use crate::Config;

/// Tells the loop which partitions were just assigned, so it can seek them
/// to the offsets stored in Postgres.
struct AssignContext {
    assigned: UnboundedSender<Vec<(String, i32)>>,
}

impl ClientContext for AssignContext {}

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

fn projected(n: usize, duplicates: usize) {
    metrics::counter!("agentops_projection_events_total").increment(n as u64);
    metrics::counter!("agentops_projection_duplicates_total").increment(duplicates as u64);
}

pub(crate) async fn run(
    config: &Config,
    pool: PgPool,
    mut writer: Writer,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let (tx, mut assigned) = unbounded_channel();
    let consumer: StreamConsumer<AssignContext> =
        kafka::consumer(&config.kafka, &config.group, AssignContext { assigned: tx })?;
    let topic = config.kafka.topic_enriched.clone();
    consumer.subscribe(&[&topic])?;
    let dlq = kafka::stage_producer(&config.kafka)?;
    let codec = Codec::v1();
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
        for m in &fresh {
            match m.payload().map(|p| codec.decode(p)) {
                Some(Ok(e)) => events.push(e),
                Some(Err(e)) => {
                    if !kafka::dead_letter(
                        &dlq,
                        &config.kafka.topic_dlq,
                        m,
                        &e.to_string(),
                        &shutdown,
                    )
                    .await
                    {
                        return Ok(());
                    }
                }
                None => {
                    if !kafka::dead_letter(
                        &dlq,
                        &config.kafka.topic_dlq,
                        m,
                        "empty record",
                        &shutdown,
                    )
                    .await
                    {
                        return Ok(());
                    }
                }
            }
        }
        let offsets = kafka::next_offsets(&batch);
        // Transient database errors are retried with backoff, never skipped.
        let mut backoff = Duration::from_millis(100);
        let applied_batch = loop {
            let attempt = match pool.acquire().await {
                Ok(mut conn) => writer.apply(&mut conn, &events, &offsets).await,
                Err(e) => Err(e.into()),
            };
            match attempt {
                Ok(a) => break a,
                Err(e) => {
                    tracing::warn!(error = %e, events = events.len(), "projection write failed, retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        projected(applied_batch.inserted, applied_batch.duplicates);
        for (t, p, o) in &offsets {
            let e = applied.entry((t.clone(), *p)).or_insert(0);
            *e = (*e).max(*o);
        }
        kafka::store_offsets(&consumer, &offsets);
        retention.maybe_run(&pool).await;
    }
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit");
    }
    Ok(())
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
            match consumer.seek(
                topic,
                partition,
                Offset::Offset(next),
                Duration::from_secs(5),
            ) {
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
