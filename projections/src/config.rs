use agentops_runtime::config::{DatabaseConfig, KafkaConfig};
use serde::{Deserialize, Serialize};

/// Projection configuration. Every key can be set as `AGENTOPS_<KEY>`
/// (nested: `AGENTOPS_KAFKA__BROKERS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address for `/metrics` and `/healthz`.
    pub listen: String,
    pub kafka: KafkaConfig,
    pub database: DatabaseConfig,
    /// Consumer group (also the key of the offsets stored in Postgres).
    pub group: String,
    /// Flush a batch at this many records ...
    pub batch_max: usize,
    /// ... or after this long (ms), whichever comes first.
    pub batch_linger_ms: u64,
    /// Plain mode: how long the deriver waits (ms) when everything written
    /// is derived, before it looks again.
    pub derive_interval_ms: u64,
    /// Plain mode: the most events the deriver folds in one transaction
    /// (whole batches; one larger batch still goes whole).
    pub derive_max_events: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9102".into(),
            kafka: KafkaConfig::default(),
            database: DatabaseConfig::default(),
            group: "agentops-projections".into(),
            batch_max: 2000,
            batch_linger_ms: 50,
            derive_interval_ms: 100,
            derive_max_events: crate::DERIVE_CHUNK,
        }
    }
}

impl Config {
    /// Refuse values that cannot work, naming the setting.
    pub fn validate(&self) -> agentops_runtime::Result<()> {
        self.kafka.validate()?;
        self.database.validate()?;
        agentops_runtime::config::require_positive(&[
            ("batch_max", self.batch_max as f64),
            ("derive_interval_ms", self.derive_interval_ms as f64),
            ("derive_max_events", self.derive_max_events as f64),
        ])
    }
}
