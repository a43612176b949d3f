//! Records written straight onto a stack's topics, as the gateway, the
//! processors and the evaluators write them.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::Stack;
use crate::env::kafka_brokers;

impl Stack {
    /// Writes events to this stack's raw topic, Avro-encoded as the gateway
    /// writes them (what the enrich stage consumes).
    pub fn raw_producer(&self) -> Result<EnrichedProducer> {
        let mut p = self.enriched_producer()?;
        p.topic = self.topic("raw");
        Ok(p)
    }

    /// A producer that writes already-enriched events straight to this
    /// stack's enriched topic (the projections' input), as the processors do.
    pub fn enriched_producer(&self) -> Result<EnrichedProducer> {
        let cfg = agentops_runtime::config::KafkaConfig {
            brokers: kafka_brokers(),
            ..Default::default()
        };
        Ok(EnrichedProducer {
            producer: agentops_runtime::kafka::stage_producer(&cfg)?,
            topic: self.topic("enriched"),
            codec: agentops_schemas::Codec::current(),
        })
    }

    /// Put an alert record (JSON) on this stack's alerts topic, keyed by
    /// its org, as the evaluators do.
    pub async fn produce_alert(&self, alert: &Value) -> Result<()> {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let p: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("message.timeout.ms", "60000")
            .create()?;
        let payload = serde_json::to_vec(alert)?;
        let key = alert["org_id"].as_str().unwrap_or(&self.org_id).to_owned();
        p.send(
            FutureRecord::to(&self.topic("alerts"))
                .key(&key)
                .payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("produce an alert: {e}"))?;
        Ok(())
    }
}

/// Writes events to a stack's enriched topic (cloneable, `'static`).
#[derive(Clone)]
pub struct EnrichedProducer {
    producer: rdkafka::producer::FutureProducer,
    topic: String,
    codec: agentops_schemas::Codec,
}

impl EnrichedProducer {
    /// Produce every event and wait for the broker's acknowledgements.
    pub async fn send(&self, events: &[agentops_schemas::AgentEvent]) -> Result<()> {
        let mut records = Vec::with_capacity(events.len());
        for e in events {
            records.push((e.partition_key(), self.codec.encode(e)?));
        }
        for r in agentops_runtime::kafka::send_records(
            &self.producer,
            &self.topic,
            &records,
            Duration::from_secs(30),
        )
        .await
        {
            r?;
        }
        Ok(())
    }
}
