//! Query API: org-scoped reads over the projections, the dashboard, and admin.
//!
//! Routes (read scope unless noted):
//! - `GET /v1/metrics/overview?window=24h`
//! - `GET /v1/metrics/timeseries?metric=runs|errors|cost&bucket=1m|5m|1h|1d&window=24h`
//! - `GET /v1/failures/recent?limit=20`
//! - `GET /v1/runs/{run_id}` (with its event timeline)
//! - `GET /v1/agents?limit=100` (status, last heartbeat, today's totals)
//! - `PUT /v1/admin/budget` (admin scope)
//! - `GET /v1/alerts?state=firing|acknowledged|resolved&limit=50`, `GET /v1/alerts/{alert_id}`
//!   (with history and deliveries), `POST /v1/alerts/{alert_id}/ack` `{note?}` (admin scope)
//! - `GET /v1/policy-violations?limit=50&agent_id=`
//! - `GET /v1/budgets/status` (each budget's current period and spend so far)
//! - admin scope, every change audited (`governance` module):
//!   - `GET|POST /v1/admin/channels`, `GET|DELETE /v1/admin/channels/{id}`
//!   - `GET|POST /v1/admin/budgets`, `GET|PUT|DELETE /v1/admin/budgets/{id}`
//!   - `GET|POST /v1/admin/alert-rules`, `GET|PUT|DELETE /v1/admin/alert-rules/{id}`
//!   - `GET|POST /v1/admin/policies`, `GET|PUT|DELETE /v1/admin/policies/{id}`
//!   - `GET|PUT|DELETE /v1/admin/digest`
//!   - `POST /v1/admin/agents/{agent_id}/pause|kill|resume`
//! - orgs and API keys (`tenancy` module, every change audited):
//!   - admin scope: `GET|POST /v1/admin/keys`, `POST /v1/admin/keys/{id}/revoke`
//!     (or `DELETE /v1/admin/keys/{id}`), `GET /v1/admin/audit?limit=50`
//!   - platform admins: `GET|POST /v1/admin/orgs`, `GET|PATCH /v1/admin/orgs/{id}`,
//!     `GET|POST /v1/admin/orgs/{id}/keys`, `POST /v1/admin/orgs/{id}/keys/{key_id}/revoke`
//! - people (`auth` and `people` modules; a session cookie instead of a key,
//!   its role mapped onto the scopes, CSRF token on mutating calls):
//!   `POST /v1/auth/login|logout`, `GET /v1/auth/me`,
//!   `POST /v1/auth/accept-invitation`, `GET /v1/admin/members`,
//!   `PUT|DELETE /v1/admin/members/{user_id}`, `GET|POST /v1/admin/invitations`,
//!   `DELETE /v1/admin/invitations/{id}`
//! - `GET /` the dashboard; `/metrics`, `/healthz`

pub mod admin;
mod agents;
mod aggs;
mod api;
mod auth;
pub mod caps;
mod config;
mod console;
mod error;
mod governance;
mod params;
mod people;
pub mod prices;
pub mod routes;
mod state;
pub mod tenancy;
mod top;
mod window;

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::http::Health;
use agentops_runtime::keys::KeyCache;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::supervise::Supervisor;
use agentops_runtime::telemetry::PrometheusHandle;

pub use auth::AuthConfig;
pub use config::Config;

/// The API and dashboard routes over `pool` (also used in-process by tests).
pub fn app(pool: sqlx::PgPool, key_cache_ttl: Duration) -> axum::Router {
    app_with(pool, key_cache_ttl, caps::Caps::default())
}

/// [`app`] with the org caps of the configuration.
pub fn app_with(pool: sqlx::PgPool, key_cache_ttl: Duration, caps: caps::Caps) -> axum::Router {
    app_with_auth(pool, key_cache_ttl, caps, AuthConfig::default())
}

/// [`app_with`] with the sign-in settings (`auth.*`).
pub fn app_with_auth(
    pool: sqlx::PgPool,
    key_cache_ttl: Duration,
    caps: caps::Caps,
    auth: AuthConfig,
) -> axum::Router {
    api::router(Arc::new(state::AppState {
        keys: KeyCache::new(pool.clone(), key_cache_ttl),
        pool,
        caps,
        auth,
    }))
}

/// Serve until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    admin::install_guard(&config)?;
    console::set_dir(std::path::Path::new(&config.console_dir));
    let keys = admin::install_secrets(&config)?;
    let pool = admin::pool(&config).await?;
    admin::seal_plaintext_channels(&pool, &keys).await?;
    let mode = agentops_runtime::db::prepare(&pool, &config.database).await?;
    let health = Health::default();
    health
        .set_detail("storage_mode", serde_json::json!(mode.as_str()))
        .await;
    let router = app_with_auth(
        pool,
        Duration::from_millis(config.key_cache_ttl_ms),
        config.caps.clone(),
        config.auth.clone(),
    )
    .merge(agentops_runtime::http::ops_router(
        "query-api",
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
    tracing::info!("query api stopped");
    Ok(())
}

/// Every route of the query API with its access (see [`routes`]); the ops
/// routes `/healthz` and `/metrics` are public and not in it.
pub fn route_table() -> Vec<routes::Route> {
    api::routes().into_parts().1
}
