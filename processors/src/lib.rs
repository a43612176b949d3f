//! Processors: stateless consumers, scaled as a consumer group.
//!
//! - **enrich**: `events.raw` → price each event (versioned price table in
//!   Postgres) → evaluate policies (violations recorded, pauses applied,
//!   alerts raised) → `events.enriched` (undecodable records → dead-letter
//!   topic with their reason and origin).
//! - **budget**: spend per budget scope and period = projection store +
//!   this instance's unprojected records (split by offset); each threshold
//!   crossing emits one alert with a deterministic id; auto-pause.
//! - **rules**: alert rules over the projection store, one instance per pass
//!   (advisory lock), firing/resolved with cooldown.
//! - **notifier**: alerts topic → Slack, Discord, signed webhooks, once per
//!   (alert, channel, transition), with retries and a dead letter; daily digest.
//! - `recompute`: re-price a time range by appending cost corrections to the log.

mod alert;
mod budget;
mod config;
mod enrich;
mod governance;
mod notify;
mod policy;
pub mod price_store;
pub mod pricing;
pub mod recompute;
mod rules;
mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::http::Health;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::telemetry::PrometheusHandle;

pub use config::Config;

/// Run every processor task until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    // No key, no start (unless plaintext is allowed): checked before anything runs.
    agentops_runtime::secrets::Keys::load(&config.secrets)?;
    let pool = agentops_runtime::db::connect(&config.database, Duration::from_secs(60)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    // Seeded from the price file if empty, then reloaded from Postgres.
    let prices = price_store::start(&config, &pool, &shutdown).await?;
    let k = &config.kafka;
    agentops_runtime::kafka::ensure_topics(
        k,
        &[
            &k.topic_raw,
            &k.topic_enriched,
            &k.topic_alerts,
            &k.topic_dlq,
        ],
    )
    .await?;
    let producer = agentops_runtime::kafka::stage_producer(k)?;
    let health = Health::default();
    let ops = agentops_runtime::http::ops_router("processors", metrics, health.clone());
    let http = tokio::spawn(agentops_runtime::http::serve_owned(
        config.listen.clone(),
        ops,
        shutdown.clone(),
    ));

    let governance = governance::Governance::load_and_watch(
        pool.clone(),
        Duration::from_millis(config.governance_reload_ms),
        shutdown.clone(),
    )
    .await?;
    let (spent_tx, spent_rx) = tokio::sync::mpsc::unbounded_channel();
    let config = Arc::new(config);
    let stage = enrich::Stage::new(
        config.clone(),
        prices,
        producer.clone(),
        pool.clone(),
        governance.clone(),
        spent_tx,
    );
    let enrich = if config.exactly_once {
        tokio::spawn(enrich::txn::run(stage, shutdown.clone()))
    } else {
        tokio::spawn(enrich::run(stage, shutdown.clone()))
    };
    let budget = tokio::spawn(budget::run(
        config.clone(),
        pool.clone(),
        producer.clone(),
        governance.clone(),
        spent_rx,
        shutdown.clone(),
    ));
    let rules = tokio::spawn(rules::run(
        config.clone(),
        pool.clone(),
        producer.clone(),
        governance,
        shutdown.clone(),
    ));
    let notify = tokio::spawn(notify::run(
        config.clone(),
        pool.clone(),
        producer.clone(),
        shutdown.clone(),
    ));
    let digest = tokio::spawn(notify::digest::run(
        config.clone(),
        pool,
        producer,
        shutdown.clone(),
    ));
    health.set_ready(true).await;
    for (name, task) in [
        ("enrich", enrich),
        ("budget", budget),
        ("rules", rules),
        ("notifier", notify),
        ("digest", digest),
    ] {
        match task.await {
            Ok(Ok(())) => tracing::info!(task = name, "task stopped"),
            Ok(Err(e)) => {
                tracing::error!(task = name, error = %e, "task failed");
                shutdown.cancel();
            }
            Err(e) => {
                tracing::error!(task = name, error = %e, "task panicked");
                shutdown.cancel();
            }
        }
    }
    let _ = http.await;
    tracing::info!("processors stopped");
    Ok(())
}
