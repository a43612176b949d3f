//! Alert rules, evaluated every `rules_interval_ms` against the projection
//! store (exact, counted-once figures):
//!
//! | kind           | fires when                                                        | one alert per |
//! |----------------|-------------------------------------------------------------------|---------------|
//! | `cost_per_day` | spend in scope since UTC midnight > `threshold` USD               | rule          |
//! | `error_rate`   | failed / finished runs in the last `window_secs` > `threshold`, with ≥ `min_runs` runs | rule |
//! | `latency_p95`  | p95 run latency in the last `window_secs` > `threshold` ms, ≥ `min_runs` runs | rule |
//! | `no_heartbeat` | an agent that sends heartbeats has been silent for `minutes`      | agent         |
//! | `stuck_run`    | a run started more than `minutes` ago has not finished            | run           |
//!
//! An alert fires when its condition holds and no alert of the same rule and
//! scope key is open, unless one fired within `cooldown_secs`; it resolves
//! when the condition stops holding. One instance evaluates at a time (a
//! Postgres advisory lock per pass), and a partial unique index allows one
//! open alert per rule and scope key, so peers never double-fire. The alert
//! is produced before the transaction recording it commits: a crash between
//! the two leaves the notifier to record it from the record.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentops_governance::alert::{rule_alert_id, AlertSource};
use agentops_runtime::shutdown::CancellationToken;
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

mod conditions;

use conditions::evaluate;

use crate::alert::{self, Alert, Transition};
use crate::governance::{channel_names, Governance, Rule};
use crate::{telemetry, Config};

/// Advisory lock key held by the instance evaluating a pass.
const RULES_LOCK: i64 = 0x4167_4f70_0004;

/// One scope key where a rule's condition holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Breach {
    pub(crate) scope_key: String,
    pub(crate) value: f64,
    pub(crate) message: String,
    pub(crate) details: Value,
}

pub(crate) async fn run(
    config: Arc<Config>,
    pool: PgPool,
    producer: FutureProducer,
    governance: Governance,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(config.rules_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        // Even with no rules: the open alerts of deleted rules resolve.
        let snap = governance.current();
        match pass(&config, &pool, &producer, &snap.rules).await {
            Ok(true) => telemetry::rule_pass("evaluated"),
            Ok(false) => telemetry::rule_pass("peer"),
            Err(e) => {
                telemetry::rule_pass("failed");
                tracing::warn!(error = %e, "alert rule pass failed; retrying next tick");
            }
        }
    }
}

/// One evaluation of every rule; false when a peer holds the lock.
async fn pass(
    config: &Config,
    pool: &PgPool,
    producer: &FutureProducer,
    rules: &[Rule],
) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RULES_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !mine {
        return Ok(false);
    }
    let now = Utc::now();
    let mut out: Vec<Alert> = Vec::new();
    // Open alerts of rules that were deleted or disabled resolve.
    sqlx::query(
        "WITH gone AS (
             UPDATE alerts a SET state = 'resolved', resolved_at = now()
             WHERE a.source = 'rule' AND a.state <> 'resolved' AND NOT EXISTS (
                 SELECT 1 FROM alert_rules r WHERE r.id = a.source_id AND r.enabled)
             RETURNING a.alert_id)
         INSERT INTO alert_history (alert_id, state, actor, note)
         SELECT alert_id, 'resolved', 'processors', 'rule deleted or disabled' FROM gone",
    )
    .execute(&mut *tx)
    .await?;
    for rule in rules {
        // One rule's failure (a savepoint) does not hold the others back.
        let mut one = sqlx::Acquire::begin(&mut *tx).await?;
        match evaluate_rule(&mut one, rule, now).await {
            Ok(alerts) => {
                one.commit().await?;
                out.extend(alerts);
            }
            Err(e) => {
                one.rollback().await?;
                tracing::warn!(error = %e, rule = %rule.id, "alert rule evaluation failed; retrying next pass");
            }
        }
    }
    for a in &out {
        alert::produce(producer, &config.kafka.topic_alerts, a).await?;
        tracing::info!(alert_id = %a.alert_id, transition = a.transition.as_str(), "alert rule {}", a.transition.as_str());
        telemetry::alert_emitted("rule");
    }
    tx.commit().await?;
    Ok(true)
}

/// An open alert of a rule.
#[derive(Debug, sqlx::FromRow)]
struct OpenAlert {
    alert_id: String,
    scope_key: String,
}

/// Evaluate one rule: resolve what stopped breaching, fire what started.
async fn evaluate_rule(
    conn: &mut PgConnection,
    rule: &Rule,
    now: DateTime<Utc>,
) -> Result<Vec<Alert>, sqlx::Error> {
    let mut out = Vec::new();
    let (breaches, complete) = evaluate(&mut *conn, rule, now).await?;
    let open: Vec<OpenAlert> = sqlx::query_as(
        "SELECT alert_id, scope_key FROM alerts
         WHERE source = 'rule' AND source_id = $1::uuid AND state <> 'resolved'",
    )
    .bind(&rule.id)
    .fetch_all(&mut *conn)
    .await?;
    let breaching: HashMap<&str, &Breach> =
        breaches.iter().map(|b| (b.scope_key.as_str(), b)).collect();
    for OpenAlert {
        alert_id,
        scope_key,
    } in &open
    {
        if breaching.contains_key(scope_key.as_str()) || !complete {
            continue; // still breaching, or not all breaches were listed
        }
        sqlx::query(
            "UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE alert_id = $1",
        )
        .bind(alert_id)
        .execute(&mut *conn)
        .await?;
        history(&mut *conn, alert_id, "resolved").await?;
        out.push(resolved_alert(rule, alert_id, scope_key, now));
    }
    for b in &breaches {
        if open.iter().any(|o| o.scope_key == b.scope_key) {
            continue;
        }
        let last: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT max(created_at) FROM alerts
             WHERE source = 'rule' AND source_id = $1::uuid AND scope_key = $2",
        )
        .bind(&rule.id)
        .bind(&b.scope_key)
        .fetch_one(&mut *conn)
        .await?;
        if last.is_some_and(|t| now - t < chrono::Duration::seconds(rule.cooldown_secs.into())) {
            continue; // de-bounced
        }
        let a = firing_alert(rule, b, now);
        let inserted = sqlx::query(
            "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message,
                 source, source_id, scope_key, state, severity, details, channels)
             VALUES ($1, $2, $3, '', $4, $5, $6, 'rule', $7::uuid, $8, 'firing', $9, $10,
                 $11::uuid[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&a.alert_id)
        .bind(&a.org_id)
        .bind(&a.kind)
        .bind(a.threshold)
        .bind(a.value)
        .bind(&a.message)
        .bind(&rule.id)
        .bind(&a.scope_key)
        .bind(&a.severity)
        .bind(&a.details)
        .bind(&a.channels)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            history(&mut *conn, &a.alert_id, "firing").await?;
            out.push(a);
        }
    }
    Ok(out)
}

async fn history(tx: &mut PgConnection, alert_id: &str, state: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO alert_history (alert_id, state, actor) VALUES ($1, $2, 'processors')")
        .bind(alert_id)
        .bind(state)
        .execute(tx)
        .await
        .map(|_| ())
}

fn firing_alert(rule: &Rule, b: &Breach, now: DateTime<Utc>) -> Alert {
    let mut details = b.details.clone();
    details["rule"] = json!(rule.name);
    Alert {
        alert_id: rule_alert_id(&rule.id, &b.scope_key, now.timestamp_millis()),
        org_id: rule.org_id.clone(),
        source: AlertSource::Rule.as_str().into(),
        source_id: Some(rule.id.clone()),
        kind: rule.kind().as_str().into(),
        scope_key: b.scope_key.clone(),
        transition: Transition::Firing,
        severity: "warning".into(),
        period: String::new(),
        threshold: rule.condition.alert_threshold(),
        value: b.value,
        message: format!("{} (rule '{}')", b.message, rule.name),
        details,
        channels: channel_names(&rule.channels),
        occurred_at: now,
    }
}

fn resolved_alert(rule: &Rule, alert_id: &str, scope_key: &str, now: DateTime<Utc>) -> Alert {
    Alert {
        alert_id: alert_id.to_owned(),
        org_id: rule.org_id.clone(),
        source: AlertSource::Rule.as_str().into(),
        source_id: Some(rule.id.clone()),
        kind: rule.kind().as_str().into(),
        scope_key: scope_key.to_owned(),
        transition: Transition::Resolved,
        severity: "info".into(),
        period: String::new(),
        threshold: rule.condition.threshold().unwrap_or(0.0),
        value: 0.0,
        message: format!(
            "Resolved: {} for {scope_key} (rule '{}')",
            rule.kind(),
            rule.name
        ),
        details: json!({"rule": rule.name}),
        channels: channel_names(&rule.channels),
        occurred_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::conditions::agent_filter;
    use super::*;
    use agentops_governance::Condition;
    use agentops_governance::{Scope, Stored};

    fn rule() -> Rule {
        Stored {
            id: "00000000-0000-0000-0000-000000000001".into(),
            org_id: "o".into(),
            item: agentops_governance::Rule {
                name: "errors".into(),
                scope: Scope::org(),
                condition: Condition::ErrorRate {
                    ratio: 0.5,
                    window_secs: 600,
                    min_runs: 5,
                },
                cooldown_secs: 3600,
                channels: vec![],
                enabled: true,
            },
        }
    }

    #[test]
    fn firing_and_resolved_alerts_share_the_id() {
        let now = Utc::now();
        let b = Breach {
            scope_key: "org".into(),
            value: 0.8,
            message: "Error rate 80%".into(),
            details: json!({"unit": "ratio"}),
        };
        let f = firing_alert(&rule(), &b, now);
        assert!(f
            .alert_id
            .starts_with("rule:00000000-0000-0000-0000-000000000001:org:"));
        assert_eq!(f.details["rule"], "errors");
        assert_eq!(f.threshold, 0.5);
        assert!(f.message.ends_with("(rule 'errors')"));
        let r = resolved_alert(&rule(), &f.alert_id, "org", now);
        assert_eq!(r.alert_id, f.alert_id);
        assert_eq!(r.transition, Transition::Resolved);
    }

    #[test]
    fn agent_scopes_filter_agents_and_runs() {
        let mut r = rule();
        r.item.condition = Condition::NoHeartbeat { minutes: 10 };
        assert_eq!(agent_filter(&r), ("TRUE".into(), None));
        r.item.scope = Scope::parse("agent", Some("a1")).unwrap();
        assert_eq!(
            agent_filter(&r),
            ("agent_id = $3".into(), Some("a1".into()))
        );
        r.item.scope = Scope::parse("workflow", Some("w")).unwrap();
        assert!(agent_filter(&r).0.contains("agg_1d"));
        r.item.condition = Condition::StuckRun { minutes: 30 };
        assert_eq!(agent_filter(&r).0, "workflow_id = $3");
    }
}
