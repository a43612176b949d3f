//! Query API: org-scoped reads over the projections, the dashboard, and admin.
//!
//! Routes (read scope unless noted):
//! - `GET /v1/metrics/overview?window=24h`
//! - `GET /v1/metrics/timeseries?metric=runs|errors|cost&bucket=1m|5m|1h|1d&window=24h`
//! - `GET /v1/failures/recent?limit=20`
//! - `GET /v1/runs/{run_id}`
//! - `PUT /v1/admin/budget` (admin scope)
//! - `GET /` the dashboard; `/metrics`, `/healthz`

pub mod admin;
mod api;
mod config;
mod error;
mod window;

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::http::Health;
use agentops_runtime::keys::KeyCache;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::telemetry::PrometheusHandle;

pub use config::Config;

/// Serve until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let pool = admin::pool(&config).await?;
    let health = Health::default();
    let state = Arc::new(api::AppState {
        keys: KeyCache::new(pool.clone(), Duration::from_millis(config.key_cache_ttl_ms)),
        pool,
    });
    let router = api::router(state).merge(agentops_runtime::http::ops_router(
        "query-api",
        metrics,
        health.clone(),
    ));
    health.set_ready(true).await;
    agentops_runtime::http::serve(&config.listen, router, shutdown).await?;
    tracing::info!("query api stopped");
    Ok(())
}
