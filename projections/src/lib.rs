//! Projections: `events.enriched` → Postgres / TimescaleDB, every event
//! counted exactly once.
//!
//! Each batch is written in one transaction: new events (deduplicated on
//! event_id) and the next Kafka offset of every partition in the batch, and
//! in TimescaleDB mode what derives from them (runs, agents, the hierarchy,
//! the per-tag levels; TimescaleDB maintains the aggregate levels as
//! continuous aggregates). In plain PostgreSQL mode the deriver
//! ([`derive`]) folds the written events into all of those, aggregate
//! levels included, in chunks of whole batches, each chunk in one
//! transaction with its progress. When partitions are assigned the worker
//! seeks to the offsets stored in Postgres and skips anything below them,
//! so a crash at any point neither loses nor double-counts an event.
//! `rebuild` recreates everything from the log.

mod config;
mod corrections;
mod derive;
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
pub use derive::Derived;
pub use hierarchy::{hierarchy_from_events_sql, hierarchy_select_sql, HIERARCHY_KEYS};
pub use rebuild::{rebuild, Summary};
pub use store::{events_copy_payload, Applied, Writer, DERIVE_CHUNK, EVENTS_COPY_COLUMNS};

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
    // Both on this task (their futures are not `Send`): the deriver stops
    // with the worker.
    let stop_deriver = shutdown.child_token();
    let deriver = derive::run(
        pool.clone(),
        mode,
        config.database.storage.tag_keys.clone(),
        Duration::from_millis(config.derive_interval_ms),
        config.derive_max_events,
        stop_deriver.clone(),
    );
    let consume = async {
        let result = worker::run(&config, pool, writer, shutdown.clone()).await;
        stop_deriver.cancel();
        result
    };
    let worker = async {
        let (consumed, derived) = tokio::join!(consume, deriver);
        consumed.and(derived)
    };
    let result = tasks.wait_with("worker", worker).await;
    tracing::info!("projections stopped");
    Ok(result?)
}
