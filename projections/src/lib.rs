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
pub use derive::{Derived, Handoff, DERIVE_LOCK};
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
    // The writer wakes the deriver after each commit and hands it the
    // batch's events (up to one chunk's worth waiting).
    let handoff = Handoff::new(config.derive_max_events);
    let writer = Writer::new(mode, config.group.clone())
        .with_tag_keys(&config.database.storage.tag_keys)
        .handing_over(handoff.clone());
    // The deriver on a thread of its own (its chunks fold tens of thousands
    // of events in memory; the consumer's task is not held up meanwhile);
    // it stops with the worker.
    let stop_deriver = shutdown.child_token();
    let deriver = {
        let (pool, tag_keys, stop, all) = (
            pool.clone(),
            config.database.storage.tag_keys.clone(),
            stop_deriver.clone(),
            shutdown.clone(),
        );
        let (interval, max) = (
            Duration::from_millis(config.derive_interval_ms),
            config.derive_max_events,
        );
        std::thread::Builder::new()
            .name("deriver".into())
            .spawn(move || {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(agentops_runtime::Error::from)?
                        .block_on(derive::run(
                            pool, mode, tag_keys, interval, max, handoff, stop,
                        ))
                }));
                // A deriver that ends on its own takes the process down
                // (critical, like the worker): nothing would be derived.
                let result = run.unwrap_or_else(|_| {
                    Err(agentops_runtime::Error::Interrupted(
                        "the deriver panicked".into(),
                    ))
                });
                if result.is_err() {
                    all.cancel();
                }
                result
            })
            .map_err(agentops_runtime::Error::from)?
    };
    let worker = async {
        let consumed = worker::run(&config, pool, writer, shutdown.clone()).await;
        stop_deriver.cancel();
        let derived = tokio::task::spawn_blocking(move || deriver.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| {
                Err(agentops_runtime::Error::Interrupted(
                    "the deriver's thread panicked".into(),
                ))
            });
        consumed.and(derived)
    };
    let result = tasks.wait_with("worker", worker).await;
    tracing::info!("projections stopped");
    Ok(result?)
}
