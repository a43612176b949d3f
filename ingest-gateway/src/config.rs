use agentops_runtime::config::{DatabaseConfig, KafkaConfig};
use serde::{Deserialize, Serialize};

/// Gateway configuration. Every key can be set as `AGENTOPS_<KEY>`
/// (nested: `AGENTOPS_KAFKA__BROKERS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address for the API, `/metrics` and `/healthz`.
    pub listen: String,
    pub kafka: KafkaConfig,
    pub database: DatabaseConfig,
    /// Largest accepted request body (bytes).
    pub max_body_bytes: usize,
    /// A request body must arrive within this (ms), else 408: slow clients
    /// cannot hold the in-flight slots.
    pub body_read_timeout_ms: u64,
    /// Most events in one request.
    pub max_batch_events: usize,
    /// How long a request waits for the broker before answering 503.
    pub produce_timeout_ms: u64,
    /// Requests processed at once; beyond this a request gets 429 at once.
    /// Bounds memory too: about `max_in_flight` × 2 × `max_body_bytes`.
    pub max_in_flight: usize,
    /// Default token bucket per org (all its keys together): events per
    /// second (0: unlimited).
    /// An org's own limit (`PATCH /v1/admin/orgs/{id}`) overrides it.
    pub rate_limit_events_per_sec: f64,
    /// Default bucket size (events an org may send at once).
    pub rate_limit_burst: f64,
    /// How long an API key lookup is cached (a revoked key is refused after at most this).
    pub key_cache_ttl_ms: u64,
    /// Origins whose pages may call this API from a browser (CORS), exact
    /// (`https://console.example.com`); a list, or one comma-separated
    /// string in `AGENTOPS_CORS_ALLOW_ORIGINS`. Empty (the default): none.
    #[serde(deserialize_with = "agentops_runtime::config::list_or_csv")]
    pub cors_allow_origins: Vec<String>,
    /// How long an org's paused/killed agents are cached for directives (ms).
    pub directive_cache_ttl_ms: u64,
    /// Events older than this are rejected (late-data window), seconds.
    pub max_event_age_secs: i64,
    /// Events further than this in the future are rejected, seconds.
    pub max_event_future_secs: i64,
    /// Where coding agents' token and cost usage is counted from:
    /// `logs` (default: Claude Code's `api_request` events on `/v1/logs`,
    /// one per API call; its usage counters on `/v1/metrics` are then
    /// ignored) or `metrics` (its `claude_code.token.usage` /
    /// `cost.usage` counters; `api_request` events then count calls and
    /// latency without tokens or cost). One source, so nothing counts twice.
    pub otlp_usage_source: UsageSource,
}

/// See [`Config::otlp_usage_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageSource {
    Logs,
    Metrics,
}

impl Config {
    /// The default per-key token bucket, `None` when unlimited.
    pub(crate) fn default_rate_limit(&self) -> Option<agentops_runtime::keys::RateLimit> {
        (self.rate_limit_events_per_sec > 0.0).then(|| agentops_runtime::keys::RateLimit {
            events_per_sec: self.rate_limit_events_per_sec,
            burst: self.rate_limit_burst.max(1.0),
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            kafka: KafkaConfig::default(),
            database: DatabaseConfig::default(),
            max_body_bytes: 1024 * 1024,
            max_batch_events: 1000,
            body_read_timeout_ms: 30_000,
            produce_timeout_ms: 10_000,
            max_in_flight: 64,
            rate_limit_events_per_sec: 10_000.0,
            rate_limit_burst: 20_000.0,
            key_cache_ttl_ms: 2_000,
            cors_allow_origins: Vec::new(),
            directive_cache_ttl_ms: 2_000,
            max_event_age_secs: 7 * 24 * 3600,
            max_event_future_secs: 300,
            otlp_usage_source: UsageSource::Logs,
        }
    }
}

impl Config {
    /// Refuse values that cannot work, naming the setting.
    pub fn validate(&self) -> agentops_runtime::Result<()> {
        self.kafka.validate()?;
        self.database.validate()?;
        agentops_runtime::config::require_positive(&[
            ("max_body_bytes", self.max_body_bytes as f64),
            ("body_read_timeout_ms", self.body_read_timeout_ms as f64),
            ("max_batch_events", self.max_batch_events as f64),
            ("produce_timeout_ms", self.produce_timeout_ms as f64),
            ("max_in_flight", self.max_in_flight as f64),
            ("max_event_age_secs", self.max_event_age_secs as f64),
        ])?;
        // 0 means unlimited; anything else must be a real rate.
        for (key, v) in [
            ("rate_limit_events_per_sec", self.rate_limit_events_per_sec),
            ("rate_limit_burst", self.rate_limit_burst),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(agentops_runtime::Error::Config(format!(
                    "setting `{key}` ({}) must be 0 (unlimited) or a positive number, not {v}",
                    agentops_runtime::config::env_name(key)
                )));
            }
        }
        Ok(())
    }
}
