//! Configuration loading: defaults, then an optional TOML file, then
//! `AGENTOPS_*` environment variables (highest precedence).
//!
//! The file comes from `--config PATH` (passed by the binary) or the
//! `AGENTOPS_CONFIG` environment variable. Nested keys use `__` in the
//! environment: `AGENTOPS_KAFKA__BROKERS=127.0.0.1:9092`.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::{Error, Result};

/// Load a component's configuration.
pub fn load<T>(file: Option<&str>) -> Result<T>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    let env_file = std::env::var("AGENTOPS_CONFIG").ok();
    if let Some(path) = file.or(env_file.as_deref()) {
        if !std::path::Path::new(path).exists() {
            return Err(Error::Config(format!("config file {path} does not exist")));
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("AGENTOPS_").ignore(&["config"]).split("__"));
    figment.extract().map_err(|e| Error::Config(e.to_string()))
}

/// Kafka connection settings shared by every component. The client settings
/// they turn into are in [`crate::kafka`] (and README "Kafka client settings").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Topic the gateway writes and the processors read.
    pub topic_raw: String,
    /// Topic the processors write and the projections read.
    pub topic_enriched: String,
    /// Topic carrying alerts from processors to the notifier.
    pub topic_alerts: String,
    /// Dead-letter topic for records that cannot be processed.
    pub topic_dlq: String,
    /// Partitions used when a component creates a missing topic.
    pub partitions: i32,
    /// Replication factor of topics a component creates; -1 takes the
    /// broker's `default.replication.factor` (3 in production, 1 locally).
    pub replication_factor: i32,
    /// Consumer group session timeout (ms): how long a member that stopped
    /// heartbeating (a killed process) keeps its partitions.
    pub session_timeout_ms: u32,
    /// Longest pause between polls before a consumer leaves its group (ms);
    /// also the rebalance timeout.
    pub max_poll_interval_ms: u32,
    /// Longest time the broker may hold a fetch waiting for data (ms). Low,
    /// for freshness.
    pub fetch_wait_max_ms: u32,
    /// Static group membership (`group.instance.id`): give each instance a
    /// stable id and a restarted instance takes its own place back without a
    /// rebalance (within `session_timeout_ms`). Unset (the default): dynamic
    /// membership. Caveat: librdkafka may fence a static member that rejoins
    /// after its group coordinator moved to another broker (a fatal
    /// `FencedInstanceId`, confluentinc/librdkafka#3437); the process then
    /// exits with status 70 for its supervisor to restart it.
    pub instance_id: Option<String>,
    /// How long a produced record may wait for its acknowledgement, retries
    /// included (`message.timeout.ms`), in the stages that retry a failed
    /// batch (processors, projections' dead letters). The gateway uses its
    /// own `produce_timeout_ms` instead, so a 503 means the record was given up.
    pub delivery_timeout_ms: u32,
    /// Producer compression: none, gzip, snappy, lz4 or zstd.
    pub compression: String,
    /// How long the producer waits to fill a batch (ms).
    pub linger_ms: u32,
    /// Largest producer batch (bytes) per partition.
    pub batch_bytes: u32,
    /// librdkafka debug contexts for every client of the component (its
    /// `debug` setting, e.g. `cgrp,fetch,eos`), logged under the `librdkafka`
    /// target at debug level (`RUST_LOG=info,librdkafka=debug`). Unset (the
    /// default): none. For diagnosing client behaviour only: it is verbose.
    pub debug: Option<String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_raw: "agentops.events.raw".into(),
            topic_enriched: "agentops.events.enriched".into(),
            topic_alerts: "agentops.alerts".into(),
            topic_dlq: "agentops.dlq".into(),
            partitions: 12,
            replication_factor: -1,
            session_timeout_ms: 10_000,
            max_poll_interval_ms: 60_000,
            fetch_wait_max_ms: 100,
            instance_id: None,
            delivery_timeout_ms: 60_000,
            compression: "lz4".into(),
            linger_ms: 5,
            batch_bytes: 1_000_000,
            debug: None,
        }
    }
}

/// Postgres connection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    /// Longest one statement may run on this component's pooled
    /// connections (`statement_timeout`, ms); a statement cut short fails
    /// like any database error. Unset: no limit, the default of the
    /// pipeline's writers; the query API defaults to 10000 so that no
    /// request can hold the database. Migrations and storage set-up are
    /// never limited.
    pub statement_timeout_ms: Option<u64>,
    /// How projections are stored (`[database.storage]`).
    pub storage: crate::storage::StorageConfig,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "postgres://agentops:agentops@127.0.0.1:5432/agentops".into(),
            max_connections: 8,
            statement_timeout_ms: None,
            storage: Default::default(),
        }
    }
}

/// A list setting given either as a list (file, or
/// `AGENTOPS_X='["a", "b"]'`) or as one comma-separated string
/// (`AGENTOPS_X=a,b`); items trimmed, empty ones dropped.
pub fn list_or_csv<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        One(String),
    }
    let items = match Either::deserialize(d)? {
        Either::List(v) => v,
        Either::One(s) => s.split(',').map(str::to_owned).collect(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default)]
    struct Sample {
        listen: String,
        kafka: KafkaConfig,
    }

    #[test]
    // figment's `Jail` dictates the closure's (large) error type.
    #[allow(clippy::result_large_err)]
    fn env_overrides_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "listen = \"0.0.0.0:1\"\n[kafka]\nbrokers = \"file:1\"\n",
            )?;
            jail.set_env("AGENTOPS_KAFKA__BROKERS", "env:2");
            let c: Sample = load(Some("c.toml")).expect("load");
            assert_eq!(c.listen, "0.0.0.0:1");
            assert_eq!(c.kafka.brokers, "env:2");
            assert_eq!(c.kafka.topic_raw, "agentops.events.raw");
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load::<Sample>(Some("/nonexistent/agentops.toml")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
