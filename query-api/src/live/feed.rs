//! What feeds the hub: a Kafka tail of the enriched-events and alerts
//! topics, and a poll of `agent_controls`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::config::KafkaConfig;
use agentops_runtime::http::Health;
use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::Codec;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message};
use sqlx::PgPool;

use super::frame::{self, AlertRecord, ControlChange, Frame};
use super::hub::{FeedState, Hub};
use super::telemetry;

/// Frames published between two yields of the feed task, so that the
/// clients' socket tasks run between bursts (a transaction's worth of
/// records arrives at once) and a fast client's queue never fills.
const YIELD_EVERY: usize = 32;

/// The consumer's context: lag under the fixed group label `live` (the
/// group id itself is unique per process), partition assignment and broker
/// errors into the hub's feed state.
struct FeedContext {
    hub: Arc<Hub>,
}

impl ClientContext for FeedContext {
    fn stats(&self, stats: rdkafka::Statistics) {
        kafka::record_lag("live", &stats);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let down = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
        );
        if down {
            self.hub.set_feed(FeedState::Unreachable(reason.to_owned()));
        } else {
            tracing::warn!(error = %error, reason, "live feed: kafka client error");
        }
    }
}

impl ConsumerContext for FeedContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if tpl.count() > 0 {
                self.hub.set_feed(FeedState::Streaming);
            }
        }
    }
}

/// Tail both topics until `shutdown`, publishing every frame; reports the
/// feed's state to `/healthz` each second. Returns an error only if the
/// consumer cannot be created (a supervisor restarts it).
pub(crate) async fn run_kafka(
    hub: Arc<Hub>,
    cfg: KafkaConfig,
    health: Health,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let group = format!("agentops-live-{}", uuid::Uuid::new_v4());
    hub.set_feed(FeedState::Starting);
    let consumer: StreamConsumer<FeedContext> =
        kafka::tail_consumer(&cfg, &group, FeedContext { hub: hub.clone() })?;
    consumer.subscribe(&[&cfg.topic_enriched, &cfg.topic_alerts])?;
    tracing::info!(group, topics = ?[&cfg.topic_enriched, &cfg.topic_alerts], "live feed consuming");
    let codec = Codec::current();
    let mut alerts = Recent::new(4096);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut since_yield = 0;
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {
                hub.sample();
                hub.report(&health).await;
                continue;
            }
            m = consumer.recv() => m,
        };
        let m = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "live feed: receive error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if hub.feed() != FeedState::Streaming {
            hub.set_feed(FeedState::Streaming);
        }
        let Some(payload) = m.payload() else {
            continue;
        };
        let frames = if m.topic() == cfg.topic_alerts {
            alert_frames(payload, &mut alerts)
        } else {
            event_frame(&codec, payload).into_iter().collect()
        };
        for f in &frames {
            hub.publish(f);
        }
        since_yield += frames.len();
        if since_yield >= YIELD_EVERY {
            since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
}

fn event_frame(codec: &Codec, payload: &[u8]) -> Option<Frame> {
    let e = match codec.decode(payload) {
        Ok(e) => e,
        Err(_) => {
            telemetry::record_skipped();
            return None;
        }
    };
    let f = frame::from_event(&e)?;
    if let Some(at) = e.ingested_at.and_then(DateTime::from_timestamp_micros) {
        telemetry::feed_lag((Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1e6);
    }
    Some(f)
}

/// An alert's frames, once per (alert, transition): evaluator peers and
/// replays may put the same alert on the topic twice.
fn alert_frames(payload: &[u8], seen: &mut Recent) -> Vec<Frame> {
    let a: AlertRecord = match serde_json::from_slice(payload) {
        Ok(a) => a,
        Err(_) => {
            telemetry::record_skipped();
            return Vec::new();
        }
    };
    if !seen.insert(format!("{}/{}", a.alert_id, a.transition)) {
        return Vec::new();
    }
    frame::from_alert(&a)
}

/// The last `cap` keys seen.
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl Recent {
    fn new(cap: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// Whether `key` is new.
    fn insert(&mut self, key: String) -> bool {
        if self.set.contains(&key) {
            return false;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

/// A row of `agent_controls`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct ControlRow {
    org_id: String,
    agent_id: String,
    action: String,
    reason: Option<String>,
    set_by: String,
    set_at: DateTime<Utc>,
}

type Controls = HashMap<(String, String), ControlRow>;

/// Most control rows one poll reads (one per paused or killed agent).
const MAX_CONTROL_ROWS: i64 = 100_000;

async fn controls(pool: &PgPool) -> Result<Controls, sqlx::Error> {
    let rows: Vec<ControlRow> = sqlx::query_as(
        "SELECT org_id, agent_id, action, reason, set_by, set_at FROM agent_controls LIMIT $1",
    )
    .bind(MAX_CONTROL_ROWS)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.org_id.clone(), r.agent_id.clone()), r))
        .collect())
}

/// What changed between two snapshots: a control set or replaced (a new
/// `set_at` or action), or lifted (its row gone).
pub(crate) fn diff(before: &Controls, after: &Controls) -> Vec<ControlChange> {
    let mut out = Vec::new();
    for (k, r) in after {
        let changed = before
            .get(k)
            .is_none_or(|b| b.set_at != r.set_at || b.action != r.action);
        if changed {
            out.push(ControlChange {
                org_id: r.org_id.clone(),
                agent_id: r.agent_id.clone(),
                action: r.action.clone(),
                reason: r.reason.clone(),
                set_by: r.set_by.clone(),
                resumed: false,
                at: r.set_at,
            });
        }
    }
    for (k, b) in before {
        if !after.contains_key(k) {
            out.push(ControlChange {
                org_id: b.org_id.clone(),
                agent_id: b.agent_id.clone(),
                action: b.action.clone(),
                reason: None,
                set_by: b.set_by.clone(),
                resumed: true,
                at: Utc::now(),
            });
        }
    }
    out.sort_by(|a, b| (a.at, &a.org_id, &a.agent_id).cmp(&(b.at, &b.org_id, &b.agent_id)));
    out
}

/// Poll `agent_controls` every `every` while clients are connected,
/// publishing what changed (see the module comment of `live` for why a
/// poll). Without clients it reads nothing.
pub(crate) async fn run_controls(
    hub: Arc<Hub>,
    pool: PgPool,
    every: Duration,
    shutdown: CancellationToken,
) -> Result<(), sqlx::Error> {
    let mut known: Option<Controls> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        if hub.clients() == 0 {
            known = None;
            continue;
        }
        let now = controls(&pool).await?;
        if let Some(before) = &known {
            for change in diff(before, &now) {
                hub.publish(&frame::from_control(&change));
            }
        }
        known = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(agent: &str, action: &str, secs: i64) -> ((String, String), ControlRow) {
        (
            ("o".into(), agent.into()),
            ControlRow {
                org_id: "o".into(),
                agent_id: agent.into(),
                action: action.into(),
                reason: None,
                set_by: "key:k".into(),
                set_at: DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap_or_default(),
            },
        )
    }

    #[test]
    fn control_changes_are_set_replaced_and_lifted() {
        let before: Controls = [
            row("a", "pause", 0),
            row("b", "pause", 0),
            row("c", "kill", 0),
        ]
        .into_iter()
        .collect();
        let after: Controls = [
            row("a", "pause", 0),
            row("b", "kill", 5),
            row("d", "pause", 6),
        ]
        .into_iter()
        .collect();
        let got: Vec<(String, String, bool)> = diff(&before, &after)
            .into_iter()
            .map(|c| (c.agent_id, c.action, c.resumed))
            .collect();
        assert_eq!(
            got,
            [
                ("b".into(), "kill".into(), false),
                ("d".into(), "pause".into(), false),
                ("c".into(), "kill".into(), true),
            ]
        );
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn an_alert_comes_once_per_transition() {
        let mut seen = Recent::new(2);
        assert!(seen.insert("a/firing".into()));
        assert!(!seen.insert("a/firing".into()));
        assert!(seen.insert("a/resolved".into()));
        assert!(seen.insert("b/firing".into()));
        // The oldest key left the window.
        assert!(seen.insert("a/firing".into()));
    }
}
