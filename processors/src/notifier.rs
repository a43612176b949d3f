//! Alerts topic → webhook (Slack-compatible JSON), delivered once per alert id.
//!
//! Each alert is recorded in Postgres (`alerts`, keyed by its deterministic id)
//! and claimed there before posting, so several notifier instances, restarts
//! and duplicate alert records lead to one delivery. A crash after the POST
//! but before it is marked delivered re-posts once the claim expires
//! (at-least-once at that single point); receivers can dedupe on the
//! `X-AgentOps-Alert-Id` header.

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use rdkafka::consumer::{Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::Message;
use serde_json::json;
use sqlx::PgPool;

use crate::budget::Alert;
use crate::{telemetry, Config};

pub(crate) async fn run(
    config: Arc<Config>,
    pool: PgPool,
    producer: FutureProducer,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let consumer: StreamConsumer<DefaultConsumerContext> = kafka::consumer(
        &config.kafka,
        &config.notifier_group,
        DefaultConsumerContext,
    )?;
    consumer.subscribe(&[&config.kafka.topic_alerts])?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| agentops_runtime::Error::Config(e.to_string()))?;
    while let Some(batch) =
        kafka::next_batch(&consumer, 100, Duration::from_millis(10), &shutdown).await
    {
        for msg in &batch {
            let parsed = msg
                .payload()
                .ok_or_else(|| "empty record".to_owned())
                .and_then(|p| serde_json::from_slice::<Alert>(p).map_err(|e| e.to_string()));
            let done = match parsed {
                Ok(alert) => deliver(&config, &pool, &http, &alert, &shutdown).await,
                Err(reason) => {
                    kafka::dead_letter(&producer, &config.kafka.topic_dlq, msg, &reason, &shutdown)
                        .await
                }
            };
            if !done {
                return Ok(()); // shutting down; the alert is re-read by the next owner
            }
        }
        kafka::store_offsets(&consumer, &kafka::next_offsets(&batch));
    }
    Ok(())
}

/// Record, claim and post one alert. Database errors are retried (never skipped);
/// false only when shutdown interrupted it.
async fn deliver(
    config: &Config,
    pool: &PgPool,
    http: &reqwest::Client,
    alert: &Alert,
    shutdown: &CancellationToken,
) -> bool {
    let claimed = loop {
        match claim(pool, alert).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, alert_id = %alert.alert_id, "alert store unavailable, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let Some(webhook) = claimed else {
        telemetry::notification("duplicate");
        return true;
    };
    let outcome = match webhook {
        None => Err("no webhook configured for the org".to_owned()),
        Some(url) => post_with_retries(config, http, &url, alert, shutdown).await,
    };
    let result = match &outcome {
        Ok(()) => {
            sqlx::query(
                "UPDATE alerts SET notified_at = now(), last_error = NULL WHERE alert_id = $1",
            )
            .bind(&alert.alert_id)
            .execute(pool)
            .await
        }
        Err(e) => {
            sqlx::query("UPDATE alerts SET last_error = $2 WHERE alert_id = $1")
                .bind(&alert.alert_id)
                .bind(e)
                .execute(pool)
                .await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, alert_id = %alert.alert_id, "could not record delivery outcome");
    }
    match outcome {
        Ok(()) => {
            telemetry::notification("delivered");
            tracing::info!(alert_id = %alert.alert_id, "notification delivered");
        }
        Err(e) => {
            telemetry::notification("failed");
            tracing::error!(alert_id = %alert.alert_id, error = %e, "notification not delivered");
        }
    }
    true
}

/// Insert the alert if new and claim its delivery. `Some(webhook)` when this
/// instance must deliver it, `None` when it was delivered or is being delivered.
async fn claim(pool: &PgPool, a: &Alert) -> Result<Option<Option<String>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (alert_id) DO NOTHING",
    )
    .bind(&a.alert_id)
    .bind(&a.org_id)
    .bind(&a.kind)
    .bind(&a.period)
    .bind(a.threshold)
    .bind(a.value)
    .bind(&a.message)
    .execute(&mut *tx)
    .await?;
    let claimed: Option<(String,)> = sqlx::query_as(
        "UPDATE alerts SET claimed_at = now(), attempts = attempts + 1
         WHERE alert_id = $1 AND notified_at IS NULL
           AND (claimed_at IS NULL OR claimed_at < now() - interval '5 minutes')
         RETURNING alert_id",
    )
    .bind(&a.alert_id)
    .fetch_optional(&mut *tx)
    .await?;
    let webhook = match claimed {
        None => None,
        Some(_) => {
            let url: Option<(Option<String>,)> =
                sqlx::query_as("SELECT webhook_url FROM budgets WHERE org_id = $1")
                    .bind(&a.org_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            Some(url.and_then(|(u,)| u))
        }
    };
    tx.commit().await?;
    Ok(webhook)
}

async fn post_with_retries(
    config: &Config,
    http: &reqwest::Client,
    url: &str,
    alert: &Alert,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let body = json!({
        "text": format!("AgentOps alert: {} — {}/?org={}", alert.message, config.dashboard_url, alert.org_id),
        "alert": alert,
    });
    let mut delay = Duration::from_millis(config.webhook_backoff_ms);
    let mut last = String::new();
    for attempt in 1..=config.webhook_max_attempts {
        let sent = http
            .post(url)
            .header("X-AgentOps-Alert-Id", &alert.alert_id)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("webhook answered {}", r.status()),
            Err(e) => last = format!("webhook unreachable: {e}"),
        }
        tracing::warn!(attempt, alert_id = %alert.alert_id, error = %last, "webhook attempt failed");
        if attempt < config.webhook_max_attempts {
            tokio::select! {
                _ = shutdown.cancelled() => return Err(last),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
    Err(last)
}
