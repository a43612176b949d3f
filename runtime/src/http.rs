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

/// Serve a router until `shutdown` is cancelled (in-flight requests finish),
/// with the [security headers](security_headers) and no CORS.
pub async fn serve(
    listen: &str,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    serve_with(listen, router, &[], shutdown).await
}

/// [`serve`], answering cross-origin requests from `cors_origins` (exact
/// origins such as `https://console.example.com`; none: no CORS headers at
/// all, so browsers keep other sites' pages from calling the API).
pub async fn serve_with(
    listen: &str,
    router: Router,
    cors_origins: &[String],
    shutdown: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(listen = %listener.local_addr()?, "http listening");
    let origins: Arc<Vec<String>> = Arc::new(cors_origins.to_vec());
    let router = router
        .layer(axum::middleware::from_fn(request_metrics))
        .layer(axum::middleware::from_fn(move |req, next| {
            cors(origins.clone(), req, next)
        }))
        .layer(axum::middleware::map_response(security_headers));
    // Handlers may read the client's address (`ConnectInfo<SocketAddr>`).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    Ok(())
}

/// `agentops_http_requests_total{route, method, status}` and
/// `agentops_http_request_duration_seconds{route, method}` for every request,
/// `route` being the matched template (`/v1/runs/{run_id}`, so ids do not
/// multiply the series) or `unmatched`.
async fn request_metrics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "agentops_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method.clone()
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "agentops_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .increment(1);
    response
}

/// Headers on every answer: no MIME sniffing, no referrer, no framing, and
/// a content security policy that allows nothing (JSON needs nothing) unless
/// the handler set its own (the dashboard page).
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    response
}

/// CORS for the configured origins only: a preflight (`OPTIONS` with
/// `Access-Control-Request-Method`) from one of them is answered 204 with
/// what it may send; its other requests get `Access-Control-Allow-Origin`.
/// Requests from any other origin pass unchanged, without CORS headers, so
/// the browser withholds the answer from the calling page.
async fn cors(
    origins: Arc<Vec<String>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| origins.iter().any(|allowed| allowed == o))
        .map(str::to_owned);
    let Some(origin) = origin else {
        return next.run(req).await;
    };
    let allow = header::HeaderValue::from_str(&origin)
        .unwrap_or_else(|_| header::HeaderValue::from_static("null"));
    let preflight = req.method() == axum::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::HeaderValue::from_static(
                "authorization, content-type, content-encoding, x-api-key",
            ),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            header::HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    h.append(header::VARY, header::HeaderValue::from_static("origin"));
    response
}

/// [`serve`] taking owned arguments, for `tokio::spawn`.
pub async fn serve_owned(
    listen: String,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> crate::Result<()> {
    serve(&listen, router, shutdown).await
}

/// The content security policy of a self-contained page: its inline
/// `<script>` blocks allowed by their SHA-256 (nothing else runs), inline
/// styles allowed, requests only to this origin, no framing, no plugins, no
/// form posts elsewhere.
pub fn page_csp(html: &str) -> String {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script>") {
        let body = &rest[start + "<script>".len()..];
        let Some(end) = body.find("</script>") else {
            break;
        };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        hashes.push(format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        ));
        rest = &body[end..];
    }
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        if hashes.is_empty() {
            "'none'".to_owned()
        } else {
            hashes.join(" ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_policy_allows_exactly_its_inline_scripts() {
        let csp = page_csp("<p>x</p><script>let a = 1;</script><script>b()</script>");
        // echo -n 'let a = 1;' | openssl dgst -sha256 -binary | base64
        assert!(
            csp.contains("'sha256-xY6QKfH9PRsQnLz56nj6MBwiK5oHg+im1Jkpdp1x/Ck='"),
            "{csp}"
        );
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
        assert!(page_csp("<p>no script</p>").contains("script-src 'none'"));
    }
}
