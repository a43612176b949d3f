use agentops_runtime::config::{DatabaseConfig, KafkaConfig};
use agentops_runtime::outbound::OutboundConfig;
use agentops_runtime::secrets::SecretsConfig;
use serde::{Deserialize, Serialize};

/// Processor configuration. Every key can be set as `AGENTOPS_<KEY>`
/// (nested: `AGENTOPS_KAFKA__BROKERS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address for `/metrics` and `/healthz`.
    pub listen: String,
    pub kafka: KafkaConfig,
    pub database: DatabaseConfig,
    /// Consumer group of the enrich stage.
    pub group: String,
    /// Consumer group of the notifier.
    pub notifier_group: String,
    /// Price file that seeds an empty global price table in Postgres; the
    /// bundled `prices.toml` when unset. Postgres is the truth afterwards.
    pub price_file: Option<String>,
    /// How often the price table is reloaded from Postgres (s).
    pub price_reload_secs: u64,
    /// Most records per enrich batch.
    pub batch_max: usize,
    /// Enrich exactly once inside Kafka (`AGENTOPS_EXACTLY_ONCE`; default
    /// **true**). The enriched records, dead letters and policy alerts of
    /// the batches read in ~100 ms commit in one Kafka transaction with the
    /// raw offsets after them, so `read_committed` readers find every raw
    /// event once in the enriched topic through crashes, aborts and
    /// rebalances (see `enrich::txn`). The transactional id is
    /// `<group>/<kafka.instance_id>`; without an instance id it is random,
    /// and a crashed instance's partitions then wait up to 10 s for its open
    /// transaction to be aborted. Off (at least once): offsets are stored
    /// after the records are acknowledged, and a crash or rebalance can write
    /// a batch twice (the projections still count each event id once); for
    /// brokers without transactions.
    ///
    /// The default because it costs no throughput (`BENCH_PARTS=throughput
    /// ./deploy/local/bench-processors.sh`: transactional / at least once
    /// 1.00, and 0.94 in a later run), under the 15% that was the bar. See
    /// docs/kafka.md.
    pub exactly_once: bool,
    /// How long a batch waits for more records (ms).
    pub batch_linger_ms: u64,
    /// How often touched orgs' budgets are checked (ms).
    pub budget_check_interval_ms: u64,
    /// How long after its last event an org's budget keeps being checked (s).
    pub budget_watch_secs: u64,
    /// Most spend entries (priced events of orgs with budgets) the budget
    /// checker holds that the projections have not stored yet. Past it the
    /// oldest are left to the projections (counted in
    /// `agentops_budget_local_dropped_total`): a crossing is then seen once
    /// they are stored, late but once. Bounds the memory a stopped database
    /// can pile up (see `budget::Local`).
    pub budget_pending_max: usize,
    /// Consumer group of the projections: its offsets in Postgres tell
    /// which enriched records the projection store already holds.
    pub projection_group: String,
    /// How often budgets, rules and policies are reloaded from Postgres (ms).
    pub governance_reload_ms: u64,
    /// How often budget pauses of past periods or deleted budgets are lifted (s).
    pub budget_sweep_secs: u64,
    /// How often alert rules are evaluated (ms).
    pub rules_interval_ms: u64,
    /// Attempts per notification (alert, channel, transition) before it is
    /// dead-lettered (Slack, Discord and webhook channels alike).
    pub webhook_max_attempts: u32,
    /// First retry delay (ms); doubles each attempt (with jitter), up to
    /// `notify_backoff_max_ms`.
    pub webhook_backoff_ms: u64,
    /// Longest delay between two notification attempts (ms).
    pub notify_backoff_max_ms: u64,
    /// Timeout of one notification POST (ms).
    pub notify_request_timeout_ms: u64,
    /// Bound on one notification, every attempt and wait included (s); past
    /// it the notification is dead-lettered.
    pub notify_delivery_timeout_secs: u64,
    /// A claimed notification whose instance died is taken over after this
    /// long (s); never less than `notify_delivery_timeout_secs` + 60.
    pub notify_claim_timeout_secs: u64,
    /// Notification attempts in flight at once per processor instance.
    pub notify_concurrency: usize,
    /// Of those, at most this many for one org (so one org's stalling
    /// channels cannot take every slot).
    pub notify_org_concurrency: usize,
    /// And at most this many for one channel.
    pub notify_channel_concurrency: usize,
    /// Consecutive failed attempts (timeouts, 5xx, 408/429, network errors)
    /// after which a channel's circuit breaker opens: its deliveries wait
    /// `notify_breaker_cooldown_ms`, then one is tried (0: no breaker).
    pub notify_breaker_failures: u32,
    /// How long an open breaker holds a channel's deliveries back (ms).
    pub notify_breaker_cooldown_ms: u64,
    /// How often pending notifications are looked for besides the wake-ups
    /// of the notifier's consumer (ms): picks up a dead peer's work.
    pub notify_poll_ms: u64,
    /// Outbound requests on an org's behalf (`notify.allow_destinations`,
    /// `notify.connect_timeout_ms`, `notify.max_response_bytes`): only public
    /// destinations unless allowed here (see `agentops_runtime::outbound`).
    pub notify: OutboundConfig,
    /// Keys that open the channels' sealed URLs and secrets
    /// (`secrets.key`, `secrets.key_file`, `secrets.allow_plaintext`; see
    /// `agentops_runtime::secrets`). Without one the processors refuse to
    /// start unless plaintext is allowed.
    pub secrets: SecretsConfig,
    /// How often the daily digests due are checked (s).
    pub digest_check_secs: u64,
    /// Base URL of the dashboard, used in notification links.
    pub dashboard_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9101".into(),
            kafka: KafkaConfig::default(),
            database: DatabaseConfig::default(),
            group: "agentops-processors".into(),
            notifier_group: "agentops-notifier".into(),
            price_file: None,
            price_reload_secs: 10,
            batch_max: 1000,
            exactly_once: true,
            batch_linger_ms: 5,
            budget_check_interval_ms: 500,
            budget_watch_secs: 30,
            budget_pending_max: 1_000_000,
            projection_group: "agentops-projections".into(),
            governance_reload_ms: 2000,
            rules_interval_ms: 5000,
            budget_sweep_secs: 30,
            webhook_max_attempts: 8,
            webhook_backoff_ms: 250,
            notify_backoff_max_ms: 30_000,
            notify_request_timeout_ms: 10_000,
            notify_delivery_timeout_secs: 120,
            notify_claim_timeout_secs: 300,
            notify_concurrency: 16,
            notify_org_concurrency: 4,
            notify_channel_concurrency: 2,
            notify_breaker_failures: 5,
            notify_breaker_cooldown_ms: 30_000,
            notify_poll_ms: 1000,
            notify: OutboundConfig::default(),
            secrets: SecretsConfig::default(),
            digest_check_secs: 60,
            dashboard_url: "http://127.0.0.1:8081".into(),
        }
    }
}

impl Config {
    /// Refuse values that cannot work, naming the setting: intervals and
    /// timeouts of zero (a zero interval would panic its timer), empty
    /// batches, no delivery slots.
    pub fn validate(&self) -> agentops_runtime::Result<()> {
        self.kafka.validate()?;
        self.database.validate()?;
        let n = |v: u64| v as f64;
        agentops_runtime::config::require_positive(&[
            ("price_reload_secs", n(self.price_reload_secs)),
            ("batch_max", self.batch_max as f64),
            ("budget_check_interval_ms", n(self.budget_check_interval_ms)),
            ("budget_watch_secs", n(self.budget_watch_secs)),
            ("governance_reload_ms", n(self.governance_reload_ms)),
            ("budget_sweep_secs", n(self.budget_sweep_secs)),
            ("rules_interval_ms", n(self.rules_interval_ms)),
            ("webhook_max_attempts", f64::from(self.webhook_max_attempts)),
            (
                "notify_request_timeout_ms",
                n(self.notify_request_timeout_ms),
            ),
            (
                "notify_delivery_timeout_secs",
                n(self.notify_delivery_timeout_secs),
            ),
            (
                "notify_claim_timeout_secs",
                n(self.notify_claim_timeout_secs),
            ),
            ("notify_concurrency", self.notify_concurrency as f64),
            ("notify_org_concurrency", self.notify_org_concurrency as f64),
            (
                "notify_channel_concurrency",
                self.notify_channel_concurrency as f64,
            ),
            ("notify_poll_ms", n(self.notify_poll_ms)),
            ("digest_check_secs", n(self.digest_check_secs)),
        ])
    }
}
