//! Operational HTTP endpoints every component serves: `/metrics` and `/healthz`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Value};
use tokio::sync::RwLock;

/// Health shared between a component's workers and its `/healthz` handler.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<RwLock<HealthState>>,
}

#[derive(Default)]
struct HealthState {
    ready: bool,
    details: serde_json::Map<String, Value>,
}

impl Health {
    pub async fn set_ready(&self, ready: bool) {
        self.inner.write().await.ready = ready;
    }

    pub async fn set_detail(&self, key: &str, value: Value) {
        self.inner
            .write()
            .await
            .details
            .insert(key.to_owned(), value);
    }

    pub async fn is_ready(&self) -> bool {
        self.inner.read().await.ready
    }
}

#[derive(Clone)]
struct OpsState {
    metrics: PrometheusHandle,
    health: Health,
    component: &'static str,
}

/// `/metrics` (Prometheus text) and `/healthz` (200 when ready, 503 otherwise).
pub fn ops_router(component: &'static str, metrics: PrometheusHandle, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(OpsState {
            metrics,
            health,
            component,
        })
}

async fn render_metrics(State(s): State<OpsState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(s): State<OpsState>) -> Response {
    let state = s.health.inner.read().await;
    let status = if state.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "component": s.component,
        "status": if state.ready { "ok" } else { "starting" },
        "details": Value::Object(state.details.clone()),
    });
    (status, Json(body)).into_response()
}

/// Serve a router until `shutdown` is cancelled (in-flight requests finish).
pub async fn serve(
    listen: &str,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "http listening");
    // Handlers may read the client's address (`ConnectInfo<SocketAddr>`).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    Ok(())
}

/// [`serve`] taking owned arguments, for `tokio::spawn`.
pub async fn serve_owned(
    listen: String,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    serve(&listen, router, shutdown).await
}
