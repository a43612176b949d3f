//! Structured logs and Prometheus metrics.
//!
//! Logs: `tracing` with key=value fields, JSON lines by default
//! (`AGENTOPS_LOG_FORMAT=text` for humans), filtered by `RUST_LOG`
//! (default `info`).

use metrics_exporter_prometheus::PrometheusBuilder;
pub use metrics_exporter_prometheus::PrometheusHandle;
use tracing_subscriber::EnvFilter;

use crate::{Error, Result};

/// Initialise logging and the Prometheus recorder. Call once from `main`.
pub fn init(component: &'static str) -> Result<PrometheusHandle> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("AGENTOPS_LOG_FORMAT").is_ok_and(|v| v == "text");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let res = if text {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
    res.map_err(|e| Error::Telemetry(e.to_string()))?;
    let handle = PrometheusBuilder::new()
        .add_global_label("component", component)
        .install_recorder()
        .map_err(|e| Error::Telemetry(e.to_string()))?;
    tracing::info!(component, version = env!("CARGO_PKG_VERSION"), "starting");
    Ok(handle)
}
