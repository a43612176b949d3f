//! Daily digest per subscribed org (`digest_subscriptions`): once the UTC
//! hour reaches the subscription's `hour_utc`, yesterday's (UTC) spend, runs,
//! failures and success rate, the top agents by cost, against the average
//! of the 7 days before, from `agg_1d`.
//!
//! The digest is an ordinary alert with the deterministic id
//! `digest:<org>:<date>` (source `digest`, severity `info`) produced to the
//! alerts topic: the notifier records and delivers it like any other, so
//! peers, restarts and repeated checks send it once per (org, day).

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::shutdown::CancellationToken;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sqlx::PgPool;

use super::channels::amount;
use crate::alert::{Alert, Transition};
use crate::{telemetry, Config};

/// How many agents the digest lists.
const TOP_AGENTS: i64 = 5;

pub(crate) async fn run(
    config: Arc<Config>,
    pool: PgPool,
    producer: FutureProducer,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(config.digest_check_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(e) = check(&config, &pool, &producer, Utc::now()).await {
            tracing::warn!(error = %e, "digest check failed, retrying at the next one");
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The digests due at `now` that were not recorded yet.
const DUE: &str = "
SELECT s.org_id, s.channels::text[] AS channels FROM digest_subscriptions s
WHERE s.hour_utc <= $1
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.alert_id = 'digest:' || s.org_id || ':' || $2)
ORDER BY s.org_id";

/// One row of [`DUE`].
#[derive(sqlx::FromRow)]
struct Due {
    org_id: String,
    channels: Vec<String>,
}

async fn check(
    config: &Config,
    pool: &PgPool,
    producer: &FutureProducer,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let Some(day) = now.date_naive().pred_opt() else {
        return Ok(());
    };
    let due: Vec<Due> = sqlx::query_as(DUE)
        .bind(now.hour() as i32)
        .bind(day.format("%Y-%m-%d").to_string())
        .fetch_all(pool)
        .await?;
    // One org's failure (its figures, its record) does not hold back the
    // orgs after it; it is tried again at the next check.
    for Due {
        org_id: org,
        channels,
    } in due
    {
        if let Err(e) = emit(config, pool, producer, &org, channels, day, now).await {
            metrics::counter!("agentops_digest_failures_total").increment(1);
            tracing::warn!(org_id = %org, error = %e, "digest failed, retrying at the next check");
        }
    }
    Ok(())
}

/// Build and send one org's digest.
async fn emit(
    config: &Config,
    pool: &PgPool,
    producer: &FutureProducer,
    org: &str,
    channels: Vec<String>,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let figures = figures(pool, org, day).await?;
    let alert = digest_alert(org, day, channels, &figures, now);
    let payload = serde_json::to_vec(&alert)?;
    let record = FutureRecord::to(&config.kafka.topic_alerts)
        .key(alert.key())
        .payload(&payload);
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)?;
    telemetry::digest_emitted();
    tracing::info!(org_id = %org, day = %day, alert_id = %alert.alert_id, "digest emitted");
    Ok(())
}

/// One agent's line in the digest (a row of [`TOP`]).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(crate) struct AgentCost {
    pub(crate) agent_id: String,
    #[sqlx(rename = "cost")]
    pub(crate) cost_usd: f64,
    pub(crate) runs: i64,
    pub(crate) failed: i64,
}

/// Yesterday's figures and the 7 days before (sums, not averages): a row of
/// [`TOTALS`], then the rows of [`TOP`].
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub(crate) struct Figures {
    pub(crate) cost_usd: f64,
    pub(crate) completed: i64,
    pub(crate) failed: i64,
    pub(crate) prev_cost_usd: f64,
    pub(crate) prev_completed: i64,
    pub(crate) prev_failed: i64,
    #[sqlx(skip)]
    pub(crate) top: Vec<AgentCost>,
}

const TOTALS: &str = "
SELECT COALESCE(sum(cost_usd) FILTER (WHERE bucket >= $2), 0)::float8 AS cost_usd,
       COALESCE(sum(runs_completed) FILTER (WHERE bucket >= $2), 0)::int8 AS completed,
       COALESCE(sum(runs_failed) FILTER (WHERE bucket >= $2), 0)::int8 AS failed,
       COALESCE(sum(cost_usd) FILTER (WHERE bucket < $2), 0)::float8 AS prev_cost_usd,
       COALESCE(sum(runs_completed) FILTER (WHERE bucket < $2), 0)::int8 AS prev_completed,
       COALESCE(sum(runs_failed) FILTER (WHERE bucket < $2), 0)::int8 AS prev_failed
FROM agg_org_1d WHERE org_id = $1 AND bucket >= $3 AND bucket < $4";

const TOP: &str = "
SELECT agent_id, COALESCE(sum(cost_usd), 0)::float8 AS cost,
       COALESCE(sum(runs_completed + runs_failed), 0)::int8 AS runs,
       COALESCE(sum(runs_failed), 0)::int8 AS failed
FROM agg_agent_1d WHERE org_id = $1 AND bucket >= $2 AND bucket < $3
GROUP BY agent_id ORDER BY cost DESC, agent_id LIMIT $4";

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

async fn figures(pool: &PgPool, org: &str, day: NaiveDate) -> Result<Figures, sqlx::Error> {
    let start = midnight(day);
    let end = start + chrono::Duration::days(1);
    let week_before = start - chrono::Duration::days(7);
    let mut figures: Figures = sqlx::query_as(TOTALS)
        .bind(org)
        .bind(start)
        .bind(week_before)
        .bind(end)
        .fetch_one(pool)
        .await?;
    figures.top = sqlx::query_as(TOP)
        .bind(org)
        .bind(start)
        .bind(end)
        .bind(TOP_AGENTS)
        .fetch_all(pool)
        .await?;
    Ok(figures)
}

fn success_rate(completed: i64, failed: i64) -> Option<f64> {
    let runs = completed + failed;
    (runs > 0).then(|| completed as f64 / runs as f64)
}

fn pct(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// The digest as an alert: value = yesterday's spend, threshold = the 7-day
/// average spend, `details` with every figure and the lines to show.
pub(crate) fn digest_alert(
    org: &str,
    day: NaiveDate,
    channels: Vec<String>,
    f: &Figures,
    now: DateTime<Utc>,
) -> Alert {
    let date = day.format("%Y-%m-%d").to_string();
    let runs = f.completed + f.failed;
    let rate = success_rate(f.completed, f.failed);
    let avg_cost = f.prev_cost_usd / 7.0;
    let avg_runs = (f.prev_completed + f.prev_failed) as f64 / 7.0;
    let avg_failed = f.prev_failed as f64 / 7.0;
    let avg_rate = success_rate(f.prev_completed, f.prev_failed);
    let change_pct = (avg_cost > 0.0).then(|| (f.cost_usd - avg_cost) / avg_cost * 100.0);
    let vs = match change_pct {
        Some(c) => format!(
            "{c:+.1}% vs the 7-day average of {}",
            amount(avg_cost, "USD")
        ),
        None => "no spend in the 7 days before".to_owned(),
    };
    let message = format!(
        "Daily digest for {org}, {date} (UTC): {} spent ({vs}); {runs} runs, {} failed ({} success).",
        amount(f.cost_usd, "USD"),
        f.failed,
        pct(rate),
    );
    let top_line = if f.top.is_empty() {
        "Top agents by cost: none".to_owned()
    } else {
        let parts: Vec<String> = f
            .top
            .iter()
            .map(|a| {
                format!(
                    "{} {} ({} runs, {} failed)",
                    a.agent_id,
                    amount(a.cost_usd, "USD"),
                    a.runs,
                    a.failed
                )
            })
            .collect();
        format!("Top agents by cost: {}", parts.join(" · "))
    };
    let lines = vec![
        format!(
            "Runs: {runs} ({} failed, {} success); 7-day average {avg_runs:.1} runs/day, {} success",
            f.failed,
            pct(rate),
            pct(avg_rate)
        ),
        top_line,
    ];
    let top: Vec<_> = f
        .top
        .iter()
        .map(|a| json!({"agent_id": a.agent_id, "cost_usd": a.cost_usd, "runs": a.runs, "failed": a.failed}))
        .collect();
    Alert {
        alert_id: format!("digest:{org}:{date}"),
        org_id: org.to_owned(),
        source: "digest".into(),
        source_id: None,
        kind: "digest".into(),
        scope_key: "org".into(),
        transition: Transition::Firing,
        severity: "info".into(),
        period: date.clone(),
        threshold: avg_cost,
        value: f.cost_usd,
        message,
        details: json!({
            "unit": "USD",
            "day": date,
            "cost_usd": f.cost_usd,
            "runs": runs,
            "runs_completed": f.completed,
            "runs_failed": f.failed,
            "success_rate": rate,
            "change_pct": change_pct,
            "avg_7d": {
                "cost_usd": avg_cost,
                "runs": avg_runs,
                "runs_failed": avg_failed,
                "success_rate": avg_rate,
            },
            "top_agents": top,
            "lines": lines,
        }),
        channels,
        occurred_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_compares_yesterday_with_the_week_before() {
        let f = Figures {
            cost_usd: 12.0,
            completed: 95,
            failed: 5,
            prev_cost_usd: 70.0,
            prev_completed: 630,
            prev_failed: 70,
            top: vec![AgentCost {
                agent_id: "a1".into(),
                cost_usd: 8.0,
                runs: 60,
                failed: 1,
            }],
        };
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let now = midnight(day) + chrono::Duration::hours(30);
        let a = digest_alert("acme", day, vec![], &f, now);
        assert_eq!(a.alert_id, "digest:acme:2026-11-21");
        assert_eq!((a.source.as_str(), a.severity.as_str()), ("digest", "info"));
        assert_eq!(a.value, 12.0);
        assert_eq!(a.threshold, 10.0);
        assert_eq!(a.details["runs"], 100);
        assert_eq!(a.details["runs_failed"], 5);
        assert_eq!(a.details["success_rate"], 0.95);
        assert_eq!(a.details["avg_7d"]["runs"], 100.0);
        assert_eq!(a.details["change_pct"], 20.0);
        assert_eq!(a.details["top_agents"][0]["agent_id"], "a1");
        assert!(
            a.message
                .contains("$12.00 spent (+20.0% vs the 7-day average of $10.00)"),
            "{}",
            a.message
        );
        assert!(
            a.message.contains("100 runs, 5 failed (95.0% success)"),
            "{}",
            a.message
        );
        let lines = a.details["lines"].as_array().unwrap();
        assert!(lines[1].as_str().unwrap().contains("a1 $8.00"));
    }

    #[test]
    fn an_idle_org_gets_a_digest_without_ratios() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let a = digest_alert("o", day, vec![], &Figures::default(), midnight(day));
        assert_eq!(a.details["success_rate"], serde_json::Value::Null);
        assert!(a.message.contains("no spend in the 7 days before"));
        assert!(a.message.contains("n/a success"));
    }
}
