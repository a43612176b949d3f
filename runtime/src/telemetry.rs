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

/// Most distinct `org` label values one process exports; the orgs seen
/// after these share [`OTHER_ORGS`], so a platform with many small tenants
/// cannot grow the series without bound.
pub const MAX_ORG_LABELS: usize = 1000;

/// The `org` label of the orgs past [`MAX_ORG_LABELS`].
pub const OTHER_ORGS: &str = "_other";

static ORG_LABELS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::OnceLock::new();

/// The `org` label for `org`: the org itself while fewer than
/// [`MAX_ORG_LABELS`] orgs have been labelled by this process (first come),
/// [`OTHER_ORGS`] after that. Business metrics are per org, never per agent
/// or event.
pub fn org_label(org: &str) -> String {
    let set = ORG_LABELS.get_or_init(Default::default);
    let mut set = match set.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    if set.contains(org) {
        return org.to_owned();
    }
    if set.len() < MAX_ORG_LABELS {
        set.insert(org.to_owned());
        return org.to_owned();
    }
    OTHER_ORGS.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_labels_are_capped() {
        for i in 0..MAX_ORG_LABELS + 10 {
            let org = format!("org-label-test-{i}");
            let want = if i < MAX_ORG_LABELS {
                org.as_str()
            } else {
                OTHER_ORGS
            };
            assert_eq!(org_label(&org), want, "{i}");
        }
        // An org labelled before keeps its label.
        assert_eq!(org_label("org-label-test-3"), "org-label-test-3");
    }
}
