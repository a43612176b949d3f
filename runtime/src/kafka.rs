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

/// An idempotent producer that waits for all in-sync replicas (`acks=all`).
pub fn producer(cfg: &KafkaConfig) -> Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("queue.buffering.max.messages", "200000")
        .create()?)
}

/// An at-least-once group consumer: offsets are stored explicitly by the
/// caller once the work they cover is durable, then committed in the background.
pub fn consumer<C, T>(cfg: &KafkaConfig, group: &str, context: C) -> Result<T>
where
    C: ConsumerContext,
    T: rdkafka::config::FromClientConfigAndContext<C>,
{
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
        .set("heartbeat.interval.ms", (cfg.session_timeout_ms / 4).max(500).to_string())
        .set("enable.partition.eof", "false")
        .create_with_context(context)?)
}

/// Create the topics if they do not exist yet (idempotent).
pub async fn ensure_topics(cfg: &KafkaConfig, topics: &[&str]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, cfg.partitions, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(topic) => tracing::info!(topic, partitions = cfg.partitions, "topic created"),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic, "topic exists")
            }
            Err((topic, code)) => {
                return Err(crate::Error::Config(format!("cannot create topic {topic}: {code}")))
            }
        }
    }
    Ok(())
}
