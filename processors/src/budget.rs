//! Daily spend budgets per org.
//!
//! Spend comes from the projection store (`agg_1h`, each event counted
//! once), so every processor instance sees the same figure. Orgs that spent
//! recently are checked every `budget_check_interval_ms`; a crossing emits an
//! alert whose id is derived from (kind, org, UTC day, threshold), so peers,
//! restarts and replays all produce the same id and the notifier delivers it once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{telemetry, Config};

/// An alert as carried on the alerts topic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Alert {
    pub(crate) alert_id: String,
    pub(crate) org_id: String,
    pub(crate) kind: String,
    pub(crate) period: String,
    pub(crate) threshold: f64,
    pub(crate) value: f64,
    pub(crate) message: String,
}

pub(crate) fn daily_budget_alert(
    org_id: &str,
    day: chrono::NaiveDate,
    threshold: f64,
    spend: f64,
) -> Alert {
    let period = day.format("%Y-%m-%d").to_string();
    Alert {
        alert_id: format!("budget_daily:{org_id}:{period}:{threshold}"),
        org_id: org_id.to_owned(),
        kind: "budget_daily".into(),
        period: period.clone(),
        threshold,
        value: spend,
        message: format!(
            "Org {org_id} spent ${spend:.2} on {period} (UTC), over its daily budget of ${threshold:.2}"
        ),
    }
}

pub(crate) async fn run(
    config: Arc<Config>,
    pool: PgPool,
    producer: FutureProducer,
    mut touched: UnboundedReceiver<String>,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let watch_for = Duration::from_secs(config.budget_watch_secs);
    let mut watched: HashMap<String, Instant> = HashMap::new();
    let mut fired: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.budget_check_interval_ms));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        while let Ok(org) = touched.try_recv() {
            watched.insert(org, Instant::now());
        }
        watched.retain(|_, at| at.elapsed() < watch_for);
        let today = chrono::Utc::now().date_naive();
        let midnight = today.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        for org in watched.keys() {
            let row: Result<Option<(f64, f64)>, _> = sqlx::query_as(
                "SELECT b.daily_usd,
                        COALESCE((SELECT sum(cost_usd) FROM agg_1h
                                  WHERE org_id = b.org_id AND bucket >= $2), 0)::float8
                 FROM budgets b WHERE b.org_id = $1",
            )
            .bind(org)
            .bind(midnight)
            .fetch_optional(&pool)
            .await;
            let (threshold, spend) = match row {
                Ok(Some(r)) => r,
                Ok(None) => continue, // no budget for this org
                Err(e) => {
                    tracing::warn!(error = %e, "budget query failed; retrying next tick");
                    break;
                }
            };
            if spend < threshold {
                continue;
            }
            let alert = daily_budget_alert(org, today, threshold, spend);
            if fired.contains(&alert.alert_id) {
                continue;
            }
            let payload = serde_json::to_vec(&alert).expect("alert serializes");
            let record = FutureRecord::to(&config.kafka.topic_alerts)
                .key(org.as_str())
                .payload(&payload);
            match producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => {
                    tracing::info!(alert_id = %alert.alert_id, spend, threshold, "budget crossed, alert emitted");
                    telemetry::alert_emitted("budget_daily");
                    fired.insert(alert.alert_id);
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "alert produce failed; retrying next tick")
                }
            }
        }
        if fired.len() > 100_000 {
            fired.clear(); // the notifier's claim still dedupes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_ids_are_deterministic_per_org_day_threshold() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let a = daily_budget_alert("o", d, 10.0, 10.5);
        let b = daily_budget_alert("o", d, 10.0, 99.0);
        assert_eq!(a.alert_id, b.alert_id);
        assert_ne!(
            a.alert_id,
            daily_budget_alert("o", d.succ_opt().unwrap(), 10.0, 10.5).alert_id
        );
        assert_ne!(a.alert_id, daily_budget_alert("p", d, 10.0, 10.5).alert_id);
        assert_eq!(a.alert_id, "budget_daily:o:2026-11-22:10");
    }
}
