//! The ingest gateway: authenticate, validate, append to Kafka, then acknowledge.
//!
//! `POST /v1/events` takes one event object, `{"events":[...]}`, or a bare
//! array. Each event is validated on its own: valid events are produced
//! (acks=all, idempotent producer, keyed by org/agent) and the 202 is sent
//! only after the broker acknowledged every one of them. The answer carries
//! `directives` for the batch's agents that are paused or killed.
//!
//! `GET /openapi.json`: the OpenAPI 3.1 document of these routes (generated
//! from the handlers, `openapi` module), `GET /docs` a page rendering it.

mod api;
mod config;
mod directives;
mod error;
mod ingest;
mod limits;
mod metric_state;
mod openapi;
mod otlp;
mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::http::Health;
use agentops_runtime::keys::KeyCache;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::supervise::Supervisor;
use agentops_runtime::telemetry::PrometheusHandle;

pub use api::routes;
pub use config::Config;

/// Run the gateway until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    if config.max_in_flight == 0 {
        return Err(agentops_runtime::Error::Config(
            "max_in_flight must be at least 1".into(),
        ));
    }
    let pool = agentops_runtime::db::connect(&config.database, Duration::from_secs(60)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    // Serve even when the broker is down: requests answer 503 until it is reachable.
    let topics = [config.kafka.topic_raw.as_str()];
    let ensure = agentops_runtime::kafka::ensure_topics(&config.kafka, &topics);
    match tokio::time::timeout(Duration::from_secs(5), ensure).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot ensure the raw topic exists"),
        Err(_) => tracing::warn!(
            "broker not reachable within 5 s; serving anyway (requests get 503 until it is)"
        ),
    }
    // Delivery bounded by produce_timeout_ms: a 503 means librdkafka gave the record up.
    let producer = agentops_runtime::kafka::producer(
        &config.kafka,
        Duration::from_millis(config.produce_timeout_ms),
    )?;
    let health = Health::default();
    let state = Arc::new(ingest::AppState {
        keys: KeyCache::new(pool.clone(), Duration::from_millis(config.key_cache_ttl_ms)),
        pool: pool.clone(),
        directives: directives::Directives::new(
            pool,
            Duration::from_millis(config.directive_cache_ttl_ms),
        ),
        producer: producer.clone(),
        codec: Arc::new(agentops_schemas::Codec::current()),
        in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight)),
        rate: limits::RateLimiter::new(config.default_rate_limit()),
        config: config.clone(),
    });
    let router =
        api::router(state)
            .merge(openapi::docs_router())
            .merge(agentops_runtime::http::ops_router(
                "ingest-gateway",
                metrics,
                health.clone(),
            ));
    health.set_ready(true).await;
    // One task, critical (see `agentops_runtime::supervise`): the server's
    // error (a port taken, a failing listener) stops the process non-zero.
    let mut tasks = Supervisor::new(shutdown.clone());
    let (listen, origins) = (config.listen.clone(), config.cors_allow_origins.clone());
    tasks.critical("http", async move {
        agentops_runtime::http::serve_with(&listen, router, &origins, shutdown).await
    });
    tasks.wait().await?;
    // In-flight requests have finished; flush anything librdkafka still holds.
    // Flushing waits up to 10 s for the broker: off the async workers.
    use rdkafka::producer::Producer;
    let flush = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(10)));
    if let Ok(Err(e)) = flush.await {
        tracing::warn!(error = %e, "producer flush at shutdown failed");
    }
    tracing::info!("ingest gateway stopped");
    Ok(())
}
