//! Kafka client setup with the settings every stage relies on.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

use crate::config::KafkaConfig;
use crate::Result;

mod replay;
pub use replay::WholeLog;

/// An idempotent producer that waits for all in-sync replicas (`acks=all`).
/// A record not acknowledged within `delivery_timeout` (retries included)
/// fails: the caller answers 503 or retries the batch; it never counts it as
/// written. The request timeout follows Kafka's rule `delivery >= linger +
/// request`, so a hung request is retried within the delivery bound.
pub fn producer(cfg: &KafkaConfig, delivery_timeout: Duration) -> Result<FutureProducer> {
    Ok(producer_config(cfg, delivery_timeout).create()?)
}

/// [`producer`] with the stages' `delivery_timeout_ms`.
pub fn stage_producer(cfg: &KafkaConfig) -> Result<FutureProducer> {
    producer(cfg, Duration::from_millis(cfg.delivery_timeout_ms.into()))
}

/// The settings of [`producer`], for callers that add their own (a
/// transactional id).
pub fn producer_config(cfg: &KafkaConfig, delivery_timeout: Duration) -> ClientConfig {
    let delivery_ms = delivery_timeout.as_millis().clamp(1, i32::MAX as u128) as u64;
    let linger_ms = u64::from(cfg.linger_ms).min(delivery_ms.saturating_sub(1));
    let request_ms = delivery_ms.saturating_sub(linger_ms).clamp(1, 30_000);
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", &cfg.compression)
        .set("linger.ms", linger_ms.to_string())
        .set("batch.size", cfg.batch_bytes.max(1).to_string())
        .set("message.timeout.ms", delivery_ms.to_string())
        .set("request.timeout.ms", request_ms.to_string())
        .set("queue.buffering.max.messages", "200000");
    debug_contexts(&mut c, cfg);
    c
}

/// librdkafka's `debug` setting, when configured.
fn debug_contexts(c: &mut ClientConfig, cfg: &KafkaConfig) {
    if let Some(d) = cfg.debug.as_deref().filter(|d| !d.is_empty()) {
        c.set("debug", d);
    }
}

/// A group consumer: offsets are stored explicitly by the caller once the
/// work they cover is durable, then committed in the background (at least
/// once). Incremental (`cooperative-sticky`) rebalancing: adding or removing
/// an instance moves only the partitions that change owner. Reads only
/// committed records (`read_committed`), so records of an aborted
/// transaction (the transactional enrich stage) are never seen.
///
/// Its statistics come every [`STATS_INTERVAL`]: the context must record
/// them with [`record_lag`] ([`LagContext`] does; librdkafka's default
/// context would log them).
pub fn consumer<C, T>(cfg: &KafkaConfig, group: &str, context: C) -> Result<T>
where
    C: ConsumerContext,
    T: rdkafka::config::FromClientConfigAndContext<C>,
{
    Ok(consumer_config(cfg, group)
        .set(
            "statistics.interval.ms",
            STATS_INTERVAL.as_millis().to_string(),
        )
        .create_with_context(context)?)
}

/// How often a group consumer reports its lag.
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// `agentops_consumer_lag{group, topic, partition}` from a consumer's
/// statistics: records between its position (the next offset the stage
/// will see) and the partition's end (the last stable offset: consumers
/// read committed), for each partition it is fetching. A partition that
/// moved to another instance keeps its last value here: aggregate with
/// `min by (group, topic, partition)`.
pub fn record_lag(group: &str, stats: &rdkafka::Statistics) {
    for (topic, t) in &stats.topics {
        for (partition, p) in &t.partitions {
            if *partition < 0 || p.fetch_state != "active" || p.app_offset < 0 {
                continue;
            }
            let end = if p.ls_offset >= 0 {
                p.ls_offset
            } else {
                p.hi_offset
            };
            if end < 0 {
                continue;
            }
            metrics::gauge!(
                "agentops_consumer_lag",
                "group" => group.to_owned(),
                "topic" => topic.clone(),
                "partition" => partition.to_string()
            )
            .set((end - p.app_offset).max(0) as f64);
        }
    }
}

/// A consumer context that only records its lag ([`record_lag`]).
#[derive(Clone)]
pub struct LagContext {
    group: String,
}

impl LagContext {
    pub fn new(group: &str) -> Self {
        Self {
            group: group.to_owned(),
        }
    }
}

impl rdkafka::ClientContext for LagContext {
    fn stats(&self, stats: rdkafka::Statistics) {
        record_lag(&self.group, &stats);
    }
}

impl ConsumerContext for LagContext {}

/// The settings of [`consumer`].
fn consumer_config(cfg: &KafkaConfig, group: &str) -> ClientConfig {
    let mut client = ClientConfig::new();
    if let Some(id) = &cfg.instance_id {
        // One process may run several groups; the id only needs to be unique per group.
        client.set("group.instance.id", format!("{id}/{group}"));
    }
    client
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (cfg.session_timeout_ms / 3).max(500).to_string(),
        )
        .set(
            "max.poll.interval.ms",
            cfg.max_poll_interval_ms
                .max(cfg.session_timeout_ms)
                .to_string(),
        )
        .set("fetch.wait.max.ms", cfg.fetch_wait_max_ms.to_string())
        .set("enable.partition.eof", "false");
    debug_contexts(&mut client, cfg);
    client
}

/// A consumer that only watches the head of its topics, for a live view (the
/// query API's WebSocket feed): its own `group` (the caller makes it unique
/// per process, so every instance sees every record), starting at the end
/// (`auto.offset.reset=latest`), committing nothing (a restart starts at the
/// end again), reading committed records only. It never holds back another
/// stage: it is in no other stage's group and stores no offsets.
pub fn tail_consumer<C, T>(cfg: &KafkaConfig, group: &str, context: C) -> Result<T>
where
    C: ConsumerContext,
    T: rdkafka::config::FromClientConfigAndContext<C>,
{
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
        .set("fetch.wait.max.ms", cfg.fetch_wait_max_ms.to_string())
        .set("enable.partition.eof", "false")
        .set(
            "statistics.interval.ms",
            STATS_INTERVAL.as_millis().to_string(),
        );
    debug_contexts(&mut client, cfg);
    Ok(client.create_with_context(context)?)
}

/// Create the topics if they do not exist yet (idempotent).
pub async fn ensure_topics(cfg: &KafkaConfig, topics: &[&str]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                cfg.partitions,
                TopicReplication::Fixed(cfg.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(topic) => tracing::info!(
                topic,
                partitions = cfg.partitions,
                replication_factor = cfg.replication_factor,
                "topic created"
            ),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic, "topic exists")
            }
            Err((topic, code)) => {
                return Err(crate::Error::Topic {
                    topic: topic.to_owned(),
                    message: format!("cannot create it: {code}"),
                })
            }
        }
    }
    Ok(())
}

/// Wait for the next batch: block for the first message, then take whatever
/// else arrives within `linger`, up to `max`. `None` once `shutdown` fires.
pub async fn next_batch<C: ConsumerContext + 'static>(
    consumer: &rdkafka::consumer::StreamConsumer<C>,
    max: usize,
    linger: Duration,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Option<KafkaBatch> {
    let mut batch = Vec::with_capacity(max.min(4096));
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return None,
            m = consumer.recv() => m,
        };
        match first {
            Ok(m) => {
                batch.push(m.detach());
                break;
            }
            Err(e) => {
                receive_error(&e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let deadline = tokio::time::Instant::now() + linger;
    while batch.len() < max {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => batch.push(m.detach()),
            Ok(Err(e)) => receive_error(&e),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Log an error from a consumer's `recv` (the consumer retries by itself).
/// A fatal one (librdkafka's only one is a static member fenced by the group
/// coordinator, `FencedInstanceId`) leaves the consumer unusable for good:
/// the process exits with status 70 so its supervisor (systemd, Kubernetes)
/// starts a fresh instance, instead of staying up with a dead consumer.
pub fn receive_error(e: &rdkafka::error::KafkaError) {
    if let rdkafka::error::KafkaError::MessageConsumptionFatal(code) = e {
        tracing::error!(
            error = %code,
            "fatal Kafka consumer error: the consumer cannot continue; exiting (status 70)"
        );
        std::process::exit(70)
    }
    tracing::warn!(error = %e, "kafka receive error");
}

pub type KafkaBatch = Vec<rdkafka::message::OwnedMessage>;

/// Highest `offset + 1` per (topic, partition) of a batch: what to store once it is durable.
pub fn next_offsets(batch: &[rdkafka::message::OwnedMessage]) -> Vec<(String, i32, i64)> {
    use rdkafka::Message;
    let mut out: std::collections::BTreeMap<(String, i32), i64> = Default::default();
    for m in batch {
        let e = out
            .entry((m.topic().to_owned(), m.partition()))
            .or_insert(0);
        *e = (*e).max(m.offset() + 1);
    }
    out.into_iter().map(|((t, p), o)| (t, p, o)).collect()
}

/// Store offsets for the next background commit (at-least-once: call only
/// after the work they cover is durable).
pub fn store_offsets<C: ConsumerContext>(
    consumer: &rdkafka::consumer::StreamConsumer<C>,
    offsets: &[(String, i32, i64)],
) {
    use rdkafka::consumer::Consumer;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (t, p, o) in offsets {
        if let Err(e) = tpl.add_partition_offset(t, *p, rdkafka::Offset::Offset(*o)) {
            tracing::warn!(error = %e, topic = %t, partition = p, "bad offset");
        }
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        // A partition revoked meanwhile: its new owner re-reads; sinks are idempotent.
        tracing::debug!(error = %e, "storing offsets failed");
    }
}

/// Send a record that cannot be processed to the dead-letter topic, with the
/// reason and its origin in headers. Retries until the broker takes it or
/// `shutdown` fires (returns false then): a poison record is never dropped.
pub async fn dead_letter(
    producer: &rdkafka::producer::FutureProducer,
    dlq_topic: &str,
    msg: &rdkafka::message::OwnedMessage,
    reason: &str,
    shutdown: &tokio_util::sync::CancellationToken,
) -> bool {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::Message;
    let partition = msg.partition().to_string();
    let offset = msg.offset().to_string();
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "dlq.reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "dlq.topic",
                value: Some(msg.topic()),
            })
            .insert(Header {
                key: "dlq.partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "dlq.offset",
                value: Some(offset.as_str()),
            });
        let mut record =
            rdkafka::producer::FutureRecord::<[u8], [u8]>::to(dlq_topic).headers(headers);
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(_) => {
                metrics::counter!("agentops_dead_letters_total").increment(1);
                tracing::warn!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    reason,
                    "record dead-lettered"
                );
                return true;
            }
            Err((e, _)) => {
                tracing::warn!(error = %e, "dead-letter produce failed, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Produce encoded event records (key, Avro value) to `topic`, each with the
/// writer-schema header, and wait for every acknowledgement. One result per
/// record, in order: the (partition, offset) written, or the error. A full
/// local queue is backpressure: each send waits at most `queue_timeout` for
/// room.
pub async fn send_records<'a>(
    producer: &FutureProducer,
    topic: &str,
    records: impl IntoIterator<Item = &'a (String, Vec<u8>)>,
    queue_timeout: Duration,
) -> Vec<rdkafka::error::KafkaResult<(i32, i64)>> {
    use rdkafka::message::{Header, OwnedHeaders};
    let sends = records.into_iter().map(|(key, payload)| {
        let fp = agentops_schemas::codec::header_value(payload);
        let headers = OwnedHeaders::new().insert(Header {
            key: agentops_schemas::codec::SCHEMA_HEADER,
            value: Some(&*fp),
        });
        let record = rdkafka::producer::FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        producer.send(record, queue_timeout)
    });
    futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.map(|d| (d.partition, d.offset)).map_err(|(e, _)| e))
        .collect()
}
