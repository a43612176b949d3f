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
    figment = figment.merge(env());
    check_keys::<T>(file.or(env_file.as_deref()))?;
    figment.extract().map_err(|e| Error::Config(e.to_string()))
}

/// The effective configuration, one `key = value  # source` line per
/// setting (`default`, the file, or the variable that set it), credentials
/// masked; for `--print-config`. Fails like [`load`] would.
pub fn describe<T>(file: Option<&str>) -> Result<String>
where
    T: DeserializeOwned + Serialize + Default,
{
    let config: T = load(file)?;
    let path = file
        .map(str::to_owned)
        .or_else(|| std::env::var("AGENTOPS_CONFIG").ok());
    let from_file = match &path {
        Some(p) => provided_keys(Toml::file(p))?,
        None => Vec::new(),
    };
    let from_env = provided_keys(env())?;
    let value = serde_json::to_value(&config).map_err(|e| Error::Config(e.to_string()))?;
    let mut leaves = Vec::new();
    leaf_values(&value, "", &mut leaves);
    let mut out = String::new();
    for (key, v) in leaves {
        let source = if from_env.contains(&key) {
            env_name(&key)
        } else if from_file.contains(&key) {
            path.clone().unwrap_or_default()
        } else {
            "default".to_owned()
        };
        out.push_str(&format!("{key} = {}  # {source}\n", mask(&key, &v)));
    }
    Ok(out)
}

fn leaf_values(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_values(child, &path, out);
            }
        }
        _ => out.push((prefix.to_owned(), v.clone())),
    }
}

/// Credentials never printed: keys and secrets as `***`, a URL's password
/// replaced.
fn mask(key: &str, v: &serde_json::Value) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    if v.is_null() {
        return "null".into();
    }
    if last == "key" || last.contains("secret") || last.contains("password") {
        return "\"***\"".into();
    }
    if let Some(s) = v.as_str().filter(|_| last.ends_with("url")) {
        if let Ok(mut u) = reqwest::Url::parse(s) {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            return serde_json::Value::from(u.to_string()).to_string();
        }
    }
    v.to_string()
}

/// The environment provider: `AGENTOPS_*` but the variables that are not
/// settings (see [`NOT_SETTINGS`]).
fn env() -> Env {
    Env::prefixed("AGENTOPS_")
        .filter(|k| !not_a_setting(k.as_str()))
        .split("__")
}

/// `AGENTOPS_*` variables that are not settings of any component: the
/// config file's path, the log format, and what the scripts, tests and
/// tools read (instance counts, keys, test wiring).
pub const NOT_SETTINGS: &[&str] = &[
    "config",
    "log_format",
    "gateways",
    "processors",
    "projections",
    "image",
    "bin_dir",
    "kafka_libs",
    "ingest_key",
    "read_key",
    "admin_key",
    "org_id",
    "query_url",
    "screenshot",
];

/// Prefixes of variables that are not settings (`AGENTOPS_TEST_*`, `AGENTOPS_DEMO_*`, ...).
const NOT_SETTING_PREFIXES: &[&str] = &["test_", "demo_", "bench_"];

fn not_a_setting(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    NOT_SETTINGS.contains(&k.as_str()) || NOT_SETTING_PREFIXES.iter().any(|p| k.starts_with(p))
}

/// Every dotted key path of a serialized default configuration, sections
/// included (a map setting is an empty section: any key inside it goes).
fn known_keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    if let serde_json::Value::Object(m) = v {
        for (k, child) in m {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(path.clone());
            known_keys(child, &path, out);
        }
    }
}

/// The dotted key paths a provider sets.
fn provided_keys(provider: impl figment::Provider) -> Result<Vec<String>> {
    fn walk(dict: &figment::value::Dict, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in dict {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                figment::value::Value::Dict(_, d) => walk(d, &path, out),
                _ => out.push(path),
            }
        }
    }
    let data = provider.data().map_err(|e| Error::Config(e.to_string()))?;
    let mut out = Vec::new();
    for dict in data.values() {
        walk(dict, "", &mut out);
    }
    Ok(out)
}

/// `kafka.session_timeout_ms` → `AGENTOPS_KAFKA__SESSION_TIMEOUT_MS`.
pub fn env_name(key: &str) -> String {
    format!("AGENTOPS_{}", key.replace('.', "__").to_ascii_uppercase())
}

/// The closest known key to `key` (for "did you mean").
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k.as_str())
}

/// Refuse keys this component does not have, naming the closest one it
/// has. In the file every key must be known. In the environment the same
/// variables often reach every component (compose anchors, test
/// harnesses), so a variable is refused when it is surely a mistake: a key
/// in a section this component has (`AGENTOPS_KAFKA__MAX_INFLIGHT`), or a
/// top-level key within two edits of one of its own (`AGENTOPS_MAX_INFLIGHT`
/// for `max_in_flight`); any other unknown variable is logged and ignored
/// (another component's setting).
fn check_keys<T: Serialize + Default>(file: Option<&str>) -> Result<()> {
    let defaults = serde_json::to_value(T::default()).map_err(|e| Error::Config(e.to_string()))?;
    let mut known = Vec::new();
    known_keys(&defaults, "", &mut known);
    let is_known = |k: &str| {
        known.iter().any(|n| n == k)
            // Inside a map setting (no fixed keys), anything goes.
            || known.iter().any(|n| {
                k.starts_with(&format!("{n}."))
                    && matches!(pointer(&defaults, n), Some(serde_json::Value::Object(m)) if m.is_empty())
            })
    };
    let suggest = |k: &str| match closest(k, &known) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => String::new(),
    };
    if let Some(path) = file {
        for k in provided_keys(Toml::file(path))? {
            if !is_known(&k) {
                return Err(Error::Config(format!(
                    "{path}: unknown setting `{k}`{}",
                    suggest(&k)
                )));
            }
        }
    }
    for k in provided_keys(env())? {
        if is_known(&k) {
            continue;
        }
        let section_known = k
            .rsplit_once('.')
            .is_some_and(|(section, _)| known.iter().any(|n| n == section));
        let near = !k.contains('.')
            && known
                .iter()
                .filter(|n| !n.contains('.'))
                .any(|n| strsim::levenshtein(&k, n) <= 2);
        if section_known || near {
            return Err(Error::Config(format!(
                "unknown setting `{k}` ({}){}",
                env_name(&k),
                suggest(&k)
            )));
        }
        tracing::debug!(variable = %env_name(&k), "not a setting of this component; ignored");
    }
    Ok(())
}

fn pointer<'a>(v: &'a serde_json::Value, dotted: &str) -> Option<&'a serde_json::Value> {
    v.pointer(&format!("/{}", dotted.replace('.', "/")))
}

/// Refuse settings that must be greater than zero (intervals, sizes,
/// concurrency), naming the setting and its variable.
pub fn require_positive(checks: &[(&str, f64)]) -> Result<()> {
    for (key, value) in checks {
        // NaN is refused too.
        if value.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(Error::Config(format!(
                "setting `{key}` ({}) must be greater than 0, not {value}",
                env_name(key)
            )));
        }
    }
    Ok(())
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

impl KafkaConfig {
    /// Refuse values that cannot work (named in the error).
    pub fn validate(&self) -> Result<()> {
        require_positive(&[
            ("kafka.partitions", f64::from(self.partitions)),
            (
                "kafka.session_timeout_ms",
                f64::from(self.session_timeout_ms),
            ),
            (
                "kafka.max_poll_interval_ms",
                f64::from(self.max_poll_interval_ms),
            ),
            (
                "kafka.delivery_timeout_ms",
                f64::from(self.delivery_timeout_ms),
            ),
            ("kafka.batch_bytes", f64::from(self.batch_bytes)),
        ])
    }
}

impl DatabaseConfig {
    /// Refuse values that cannot work (named in the error).
    pub fn validate(&self) -> Result<()> {
        require_positive(&[("database.max_connections", f64::from(self.max_connections))])
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
