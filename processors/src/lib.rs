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
pub mod notify;
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
use agentops_runtime::supervise::Supervisor;
use agentops_runtime::telemetry::PrometheusHandle;

pub use config::Config;

/// Run every processor task until `shutdown` is cancelled, each under the
/// supervisor ([`agentops_runtime::supervise`]):
///
/// - **critical** (a failure stops the process, non-zero, for the process
///   supervisor to start a clean one): `enrich` (its consumer's assignment,
///   stored offsets and open transaction), `budget` (the spend the enrich
///   stage handed over, the alerts it raised: its queue cannot be re-joined),
///   `notifier` (its consumer and the notifications it has claimed), `http`
///   (a process that cannot serve `/healthz` and `/metrics` must not look
///   alive);
/// - **restarted** with backoff: `rules`, `digest`, `price_reload`,
///   `governance_reload`: periodic passes over Postgres that keep nothing
///   between passes (rules and digests record what they sent in the database).
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    // No key, no start (unless plaintext is allowed): checked before anything runs.
    agentops_runtime::secrets::Keys::load(&config.secrets)?;
    let pool = agentops_runtime::db::connect(&config.database, Duration::from_secs(60)).await?;
    agentops_governance::spend::set_tag_keys(&config.database.storage.tag_keys);
    agentops_runtime::db::migrate(&pool).await?;
    // Seeded from the price file if empty, then reloaded from Postgres.
    let prices = price_store::start(&config, &pool).await?;
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
    let governance = governance::Governance::load(&pool).await?;
    let config = Arc::new(config);
    let mut tasks = Supervisor::new(shutdown.clone());
    tasks.critical(
        "http",
        agentops_runtime::http::serve_owned(config.listen.clone(), ops, shutdown.clone()),
    );
    {
        let (config, prices, pool, shutdown) = (
            config.clone(),
            prices.clone(),
            pool.clone(),
            shutdown.clone(),
        );
        tasks.restarting("price_reload", move || {
            let (config, prices, pool, shutdown) = (
                config.clone(),
                prices.clone(),
                pool.clone(),
                shutdown.clone(),
            );
            async move { price_store::reload(&config, prices, pool, shutdown).await }
        });
    }
    {
        let (g, pool, shutdown) = (governance.clone(), pool.clone(), shutdown.clone());
        let every = Duration::from_millis(config.governance_reload_ms);
        tasks.restarting("governance_reload", move || {
            g.clone().watch(pool.clone(), every, shutdown.clone())
        });
    }
    // Bounded: a full queue holds the enrich stage (see `budget::queue`).
    let (spent_tx, spent_rx) = budget::queue();
    let stage = enrich::Stage::new(
        config.clone(),
        prices,
        producer.clone(),
        pool.clone(),
        governance.clone(),
        spent_tx,
    );
    if config.exactly_once {
        tasks.critical("enrich", enrich::txn::run(stage, shutdown.clone()));
    } else {
        tasks.critical("enrich", enrich::run(stage, shutdown.clone()));
    }
    tasks.critical(
        "budget",
        budget::run(
            config.clone(),
            pool.clone(),
            producer.clone(),
            governance.clone(),
            spent_rx,
            shutdown.clone(),
        ),
    );
    {
        let (c, pool, producer, g, shutdown) = (
            config.clone(),
            pool.clone(),
            producer.clone(),
            governance,
            shutdown.clone(),
        );
        tasks.restarting("rules", move || {
            rules::run(
                c.clone(),
                pool.clone(),
                producer.clone(),
                g.clone(),
                shutdown.clone(),
            )
        });
    }
    tasks.critical(
        "notifier",
        notify::run(
            config.clone(),
            pool.clone(),
            producer.clone(),
            shutdown.clone(),
        ),
    );
    {
        let (c, shutdown) = (config.clone(), shutdown.clone());
        tasks.restarting("digest", move || {
            notify::digest::run(c.clone(), pool.clone(), producer.clone(), shutdown.clone())
        });
    }
    health.set_ready(true).await;
    let result = tasks.wait().await;
    tracing::info!("processors stopped");
    Ok(result?)
}
