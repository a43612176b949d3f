//! Query API: org-scoped reads over the projections, the dashboard, and admin.
//!
//! Routes (read scope unless noted):
//! - `GET /v1/metrics/overview?window=24h`
//! - `GET /v1/metrics/timeseries?metric=runs|errors|cost&bucket=1m|5m|1h|1d&window=24h`
//! - `GET /v1/failures/recent?limit=20`
//! - `GET /v1/runs/{run_id}` (with its event timeline)
//! - `GET /v1/agents?limit=100` (status, last heartbeat, today's totals)
//! - `GET /v1/runs?<filters>&sort=&order=&limit=50&cursor=` (run search, keyset pages;
//!   `limit` ≤ 500, ranges ≤ 90 days) and `GET /v1/runs/export?format=csv|json` (at most
//!   100,000 rows, streamed) (`runs` module)
//! - `GET /v1/agents/{agent_id}?window=24h` (agent page: control, totals, models, recent
//!   runs and failures, covering budgets, violations; 10 of each list)
//! - `GET /v1/metrics/cost?group=agent|workflow|model|provider|tag:<key>&window=24h&bucket=1h&limit=10`
//!   (`limit` ≤ 25, ≤ 1,000 points, tag windows ≤ 30 days) and
//!   `GET /v1/metrics/compare?window=24h` (`cost` module)
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
//! - the coding-agent hierarchy (`hierarchy` module): `GET /v1/projects`,
//!   `GET /v1/projects/{project_id}`, `GET /v1/machines`, `GET /v1/machines/{machine_id}`,
//!   `GET /v1/workspaces/{workspace_id}`, `GET /v1/sessions?project_id=&machine_id=&...`,
//!   `GET /v1/sessions/{session_id}` (with its timeline); admin scope:
//!   `POST /v1/admin/controls/{scope_kind}/{scope_value}/pause|kill|resume`
//! - `GET /v1/live` (WebSocket): the org's runs, budget crossings, alerts and
//!   agent controls as they happen (`live` module)
//! - `GET /openapi.json` (this API's OpenAPI 3.1 document, generated from the
//!   handlers) and `GET /docs` (a reference page rendering it), public
//! - `GET /` the dashboard; `/metrics`, `/healthz`

pub mod admin;
mod agents;
pub mod aggs;
mod api;
mod auth;
mod business;
pub mod caps;
mod config;
mod console;
mod cost;
mod error;
mod governance;
pub mod grafana;
mod hierarchy;
mod live;
mod openapi;
mod params;
mod people;
pub mod prices;
pub mod routes;
mod runs;
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
pub use live::LiveConfig;

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
    // In-process (tests): a hub without a feed.
    let hub = live::Hub::new(LiveConfig::default(), CancellationToken::new());
    router_with(pool, key_cache_ttl, caps, auth, hub)
}

fn router_with(
    pool: sqlx::PgPool,
    key_cache_ttl: Duration,
    caps: caps::Caps,
    auth: AuthConfig,
    live: Arc<live::Hub>,
) -> axum::Router {
    api::router(Arc::new(state::AppState {
        keys: KeyCache::new(pool.clone(), key_cache_ttl),
        pool,
        caps,
        auth,
        live,
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
    aggs::set_retention(&config.database.storage);
    agentops_governance::spend::set_tag_keys(&config.database.storage.tag_keys);
    let mode = agentops_runtime::db::prepare(&pool, &config.database).await?;
    let health = Health::default();
    health
        .set_detail("storage_mode", serde_json::json!(mode.as_str()))
        .await;
    let hub = live::Hub::new(config.live.clone(), shutdown.child_token());
    hub.report(&health).await;
    let router = router_with(
        pool.clone(),
        Duration::from_millis(config.key_cache_ttl_ms),
        config.caps.clone(),
        config.auth.clone(),
        hub.clone(),
    )
    .merge(agentops_runtime::http::ops_router(
        "query-api",
        metrics,
        health.clone(),
    ));
    health.set_ready(true).await;
    // The server is critical (see `agentops_runtime::supervise`): its error
    // (a port taken, a failing listener) stops the process non-zero. The
    // live feed's tasks restart on failure (they hold nothing).
    let mut tasks = Supervisor::new(shutdown.clone());
    live::start(&mut tasks, &hub, &config.kafka, &pool, &health, &shutdown);
    if config.business_metrics_interval_secs > 0 {
        let (pool, every) = (
            pool.clone(),
            Duration::from_secs(config.business_metrics_interval_secs),
        );
        let stop = shutdown.clone();
        tasks.restarting("business-gauges", move || {
            business::run(pool.clone(), every, stop.clone())
        });
    }
    let (listen, origins) = (config.listen.clone(), config.cors_allow_origins.clone());
    tasks.critical("http", async move {
        agentops_runtime::http::serve_with(&listen, router, &origins, shutdown).await
    });
    tasks.wait().await?;
    // Upgraded sockets outlive the server: each closes with 1001.
    hub.drained(Duration::from_secs(3)).await;
    tracing::info!("query api stopped");
    Ok(())
}

/// Every route of the query API with its access (see [`routes`]); the ops
/// routes `/healthz` and `/metrics` are public and not in it.
pub fn route_table() -> Vec<routes::Route> {
    api::routes().into_parts().1
}
