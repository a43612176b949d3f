//! The alert record carried on the alerts topic (JSON), from the evaluators
//! (budgets, rules, policies, digest) to the notifier.
//!
//! `alert_id` is deterministic for budgets and policies (derived from what
//! crossed, where and when), so peers, restarts and replays produce the same
//! id; rule alerts get theirs from the row the evaluator inserted. The
//! notifier records each alert once (`alerts`, keyed by id) and delivers each
//! (alert, channel, transition) once (`alert_deliveries`).

use serde::{Deserialize, Serialize};

/// What happened to the alert: it started firing, or it resolved.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Transition {
    Firing,
    Resolved,
}

impl Transition {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Alert {
    pub(crate) alert_id: String,
    pub(crate) org_id: String,
    /// `budget`, `rule`, `policy` or `digest`.
    pub(crate) source: String,
    /// The budget, rule or policy (UUID) that raised it.
    #[serde(default)]
    pub(crate) source_id: Option<String>,
    /// `budget_warn`/`budget_exceeded`, a rule kind (`error_rate`, ...), a
    /// policy kind (`model_denylist`, ...), or `digest`.
    pub(crate) kind: String,
    /// Where: `org`, `agent=a1`, `workflow=w`, `model=m`, `tag=team=x`, `run=r`.
    #[serde(default)]
    pub(crate) scope_key: String,
    pub(crate) transition: Transition,
    /// `info`, `warning` or `critical`.
    pub(crate) severity: String,
    /// The period the alert is about (`2026-11-22`, `2026-W47`, `2026-11`), if any.
    #[serde(default)]
    pub(crate) period: String,
    /// The threshold crossed (USD, ratio, ms, percent; see `details.unit`).
    pub(crate) threshold: f64,
    /// The observed value.
    pub(crate) value: f64,
    /// One line saying what, where and how much.
    pub(crate) message: String,
    /// Anything else worth showing (agents paused, run ids, unit, ...).
    #[serde(default)]
    pub(crate) details: serde_json::Value,
    /// Channel ids to notify; empty means every channel of the org.
    #[serde(default)]
    pub(crate) channels: Vec<String>,
    /// When the evaluator decided it (RFC 3339).
    pub(crate) occurred_at: chrono::DateTime<chrono::Utc>,
}

impl Alert {
    /// The partition key on the alerts topic: one org's alerts stay in order.
    pub(crate) fn key(&self) -> &str {
        &self.org_id
    }
}

/// Produce one alert record and wait for the broker's acknowledgement.
pub(crate) async fn produce(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    alert: &Alert,
) -> Result<(), rdkafka::error::KafkaError> {
    #[allow(
        clippy::expect_used,
        reason = "an Alert is strings, numbers and a JSON value: it always serializes"
    )]
    let payload = serde_json::to_vec(alert).expect("an alert serializes");
    let record = rdkafka::producer::FutureRecord::to(topic)
        .key(alert.key())
        .payload(&payload);
    producer
        .send(record, std::time::Duration::from_secs(10))
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

/// Produce several alerts concurrently; the first error if any failed.
pub(crate) async fn produce_all(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    alerts: &[Alert],
) -> Result<(), rdkafka::error::KafkaError> {
    let sends = alerts.iter().map(|a| produce(producer, topic, a));
    futures::future::join_all(sends)
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()
        .map(|_| ())
}
