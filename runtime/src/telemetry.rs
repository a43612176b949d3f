//! Structured logs and Prometheus metrics.
//!
//! Logs: `tracing` with key=value fields, JSON lines by default
//! (`AGENTOPS_LOG_FORMAT=text` for humans), filtered by `RUST_LOG`
//! (default `info`).

use metrics_exporter_prometheus::PrometheusBuilder;
pub use metrics_exporter_prometheus::PrometheusHandle;
use tracing_subscriber::EnvFilter;

use crate::{Error, Result};

/// Bucket bounds of every histogram (seconds): 1 ms to 60 s.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

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
        // Real histograms (buckets, not summaries), so they aggregate
        // across instances: every histogram is in seconds.
        .set_buckets(&SECONDS_BUCKETS)
        .map_err(|e| Error::Telemetry(e.to_string()))?
        .install_recorder()
        .map_err(|e| Error::Telemetry(e.to_string()))?;
    tracing::info!(component, version = env!("CARGO_PKG_VERSION"), "starting");
    Ok(handle)
}
