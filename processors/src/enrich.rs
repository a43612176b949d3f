//! events.raw → price → events.enriched, at least once.

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::Codec;
use rdkafka::consumer::{Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::Message;
use tokio::sync::mpsc::UnboundedSender;

use crate::pricing::{Priced, Prices};
use crate::{telemetry, Config};

/// Spend seen for an org: tells the budget checker which orgs to look at.
pub(crate) type Touched = String;

pub(crate) async fn run(
    config: Arc<Config>,
    prices: Prices,
    producer: FutureProducer,
    touched: UnboundedSender<Touched>,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let consumer: StreamConsumer<DefaultConsumerContext> =
        kafka::consumer(&config.kafka, &config.group, DefaultConsumerContext)?;
    consumer.subscribe(&[&config.kafka.topic_raw])?;
    let codec = Codec::v1();
    let linger = Duration::from_millis(config.batch_linger_ms);
    tracing::info!(topic = %config.kafka.topic_raw, group = %config.group, "enrich stage consuming");
    while let Some(batch) = kafka::next_batch(&consumer, config.batch_max, linger, &shutdown).await
    {
        if !process(
            &config, &prices, &codec, &producer, &batch, &touched, &shutdown,
        )
        .await
        {
            break; // shutdown before the batch was durable: do not store its offsets
        }
        kafka::store_offsets(&consumer, &kafka::next_offsets(&batch));
    }
    // Commit what was stored so a successor starts where we stopped.
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = %e, "final commit");
    }
    Ok(())
}

/// Enrich and produce one batch; true once every record is durable downstream.
async fn process(
    config: &Config,
    prices: &Prices,
    codec: &Codec,
    producer: &FutureProducer,
    batch: &[OwnedMessage],
    touched: &UnboundedSender<Touched>,
    shutdown: &CancellationToken,
) -> bool {
    let mut out = Vec::with_capacity(batch.len());
    let mut unpriced = 0;
    let mut spenders = std::collections::HashSet::new();
    for msg in batch {
        let decoded = match msg.payload() {
            None => Err("empty record".to_owned()),
            Some(p) => codec.decode(p).map_err(|e| e.to_string()),
        };
        let mut event = match decoded {
            Ok(e) => e,
            Err(reason) => {
                if !kafka::dead_letter(producer, &config.kafka.topic_dlq, msg, &reason, shutdown)
                    .await
                {
                    return false;
                }
                continue;
            }
        };
        match prices.current().enrich(&mut event) {
            Priced::UnknownModel => unpriced += 1,
            Priced::Computed(_) | Priced::Client
                if event.cost_usd.unwrap_or(0.0) > 0.0 && !spenders.contains(&event.org_id) =>
            {
                spenders.insert(event.org_id.clone());
            }
            _ => {}
        }
        match codec.encode(&event) {
            Ok(bytes) => out.push((event.partition_key(), bytes)),
            Err(e) => {
                let reason = format!("cannot re-encode: {e}");
                if !kafka::dead_letter(producer, &config.kafka.topic_dlq, msg, &reason, shutdown)
                    .await
                {
                    return false;
                }
            }
        }
    }
    telemetry::unpriced(unpriced);
    for org in spenders {
        let _ = touched.send(org);
    }
    let fp = codec.fingerprint_hex();
    // Produce all, then retry whatever failed until it is acknowledged (never skip).
    let mut pending: Vec<usize> = (0..out.len()).collect();
    let mut backoff = Duration::from_millis(100);
    while !pending.is_empty() {
        let results = kafka::send_records(
            producer,
            &config.kafka.topic_enriched,
            &fp,
            pending.iter().map(|&i| &out[i]),
            Duration::from_secs(30),
        )
        .await;
        pending = pending
            .into_iter()
            .zip(results)
            .filter_map(|(i, r)| match r {
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "produce to enriched topic failed, will retry");
                    Some(i)
                }
            })
            .collect();
        if !pending.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
    telemetry::events_enriched(out.len());
    true
}
