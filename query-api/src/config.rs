use agentops_runtime::config::DatabaseConfig;
use agentops_runtime::outbound::OutboundConfig;
use serde::{Deserialize, Serialize};

/// Query API configuration. Every key can be set as `AGENTOPS_<KEY>`
/// (nested: `AGENTOPS_DATABASE__URL`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address for the API, the dashboard, `/metrics` and `/healthz`.
    pub listen: String,
    pub database: DatabaseConfig,
    /// How long an API key lookup is cached (a revoked key is refused after at most this).
    pub key_cache_ttl_ms: u64,
    /// Origins whose pages may call this API from a browser (CORS), exact
    /// (`https://console.example.com`); a list, or one comma-separated
    /// string in `AGENTOPS_CORS_ALLOW_ORIGINS`. Empty (the default): none.
    #[serde(deserialize_with = "agentops_runtime::config::list_or_csv")]
    pub cors_allow_origins: Vec<String>,
    /// `notify.allow_destinations`: non-public channel destinations the
    /// operator allows (the processors' setting of the same name; channels
    /// elsewhere are refused at creation).
    pub notify: OutboundConfig,
    /// Per-org caps on configuration rows (`caps.alert_rules` ...).
    pub caps: crate::caps::Caps,
    /// Keys that seal channel URLs and secrets (`secrets.key`,
    /// `secrets.key_file`, `secrets.allow_plaintext`; see
    /// `agentops_runtime::secrets`). Without one the API refuses to start
    /// unless plaintext is allowed.
    pub secrets: agentops_runtime::secrets::SecretsConfig,
    /// Sign-in: `auth.session_hours` (12), `auth.secure_cookies` (false:
    /// `Secure` only on requests that arrived over TLS),
    /// `auth.invitation_hours` (168).
    pub auth: crate::auth::AuthConfig,
    /// The operator console's build (`query-api/console`, `npm run build`),
    /// served under `/console/`; relative to the working directory.
    pub console_dir: String,
    /// The brokers and topics the live feed reads (`kafka.brokers`,
    /// `kafka.topic_enriched`, `kafka.topic_alerts`; the pipeline's
    /// defaults, `127.0.0.1:9092`). Only the live feed uses Kafka.
    pub kafka: agentops_runtime::config::KafkaConfig,
    /// `GET /v1/live`: `live.enabled` (true), `live.max_clients` (2000 per
    /// instance), `live.max_clients_per_org` (250 per instance),
    /// `live.ping_interval_ms` (30000), `live.controls_poll_ms` (1000).
    pub live: crate::live::LiveConfig,
    /// How often the business gauges on `/metrics` (spend, unpriced calls,
    /// budget percent, firing alerts, paused agents per org) are read from
    /// the store, in seconds; 0 turns them off.
    pub business_metrics_interval_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8081".into(),
            // No request may hold the database: a statement is cut after
            // 10 s (503 `unavailable`).
            database: DatabaseConfig {
                statement_timeout_ms: Some(10_000),
                ..DatabaseConfig::default()
            },
            key_cache_ttl_ms: 2_000,
            cors_allow_origins: Vec::new(),
            notify: OutboundConfig::default(),
            caps: crate::caps::Caps::default(),
            secrets: Default::default(),
            auth: crate::auth::AuthConfig::default(),
            console_dir: crate::console::DEFAULT_DIR.into(),
            kafka: Default::default(),
            live: Default::default(),
            business_metrics_interval_secs: 30,
        }
    }
}

impl Config {
    /// Refuse values that cannot work, naming the setting.
    pub fn validate(&self) -> agentops_runtime::Result<()> {
        self.database.validate()?;
        self.live.validate()?;
        if self.live.enabled {
            self.kafka.validate()?;
        }
        self.auth.validate()
    }
}
