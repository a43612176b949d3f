//! Projections: `events.enriched` → Postgres / TimescaleDB, every event
//! counted exactly once.
//!
//! Each batch is written in one transaction: new events (deduplicated on
//! event_id), what derives from them (runs, agents and, in plain PostgreSQL
//! mode, the 1m/1h/1d aggregates; TimescaleDB maintains those as continuous
//! aggregates), and the next Kafka offset of every partition in the batch.
//! When partitions are assigned the worker seeks to the offsets stored in
//! Postgres and skips anything below them, so a crash at any point neither
//! loses nor double-counts an event. `rebuild` recreates everything from the log.

mod config;
mod corrections;
mod hierarchy;
mod rebuild;
mod retention;
mod rows;
mod store;
mod worker;

use std::time::Duration;

use agentops_runtime::http::Health;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::supervise::Supervisor;
use agentops_runtime::telemetry::PrometheusHandle;

pub use config::Config;
pub use hierarchy::{hierarchy_from_events_sql, hierarchy_select_sql, HIERARCHY_KEYS};
pub use rebuild::{rebuild, Summary};
pub use store::{Applied, Writer};

/// Run the projection worker until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let pool = agentops_runtime::db::connect(&config.database, Duration::from_secs(60)).await?;
    let mode = agentops_runtime::db::prepare(&pool, &config.database).await?;
    let k = &config.kafka;
    agentops_runtime::kafka::ensure_topics(k, &[&k.topic_enriched, &k.topic_dlq]).await?;
    let health = Health::default();
    health
        .set_detail("storage_mode", serde_json::json!(mode.as_str()))
        .await;
    tracing::info!(storage_mode = mode.as_str(), "projection storage mode");
    let ops = agentops_runtime::http::ops_router("projections", metrics, health.clone());
    // Both critical (see `agentops_runtime::supervise`): the worker owns its
    // consumer and the offsets it writes with the rows; a failure of either
    // stops the process, non-zero, for a clean restart.
    let mut tasks = Supervisor::new(shutdown.clone());
    tasks.critical(
        "http",
        agentops_runtime::http::serve_owned(config.listen.clone(), ops, shutdown.clone()),
    );
    health.set_ready(true).await;
    let writer =
        Writer::new(mode, config.group.clone()).with_tag_keys(&config.database.storage.tag_keys);
    // On this task: its future is not `Send`.
    let worker = worker::run(&config, pool, writer, shutdown.clone());
    let result = tasks.wait_with("worker", worker).await;
    tracing::info!("projections stopped");
    Ok(result?)
}
