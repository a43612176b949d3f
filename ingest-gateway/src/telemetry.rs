//! Named metrics of the gateway (bounded labels only).

use agentops_runtime::telemetry::org_label;

/// Events acknowledged by the broker, per org.
pub(crate) fn events_accepted(org: &str, n: usize) {
    metrics::counter!("agentops_gateway_events_accepted_total", "org" => org_label(org))
        .increment(n as u64);
}

/// Events refused by validation (the rest of their batch accepted), per org.
pub(crate) fn events_rejected(org: &str, n: usize) {
    if n > 0 {
        metrics::counter!("agentops_gateway_events_rejected_total", "org" => org_label(org))
            .increment(n as u64);
    }
}

pub(crate) fn request_failed(code: &'static str) {
    metrics::counter!("agentops_gateway_request_errors_total", "code" => code).increment(1);
}

pub(crate) fn produce_seconds(secs: f64) {
    metrics::histogram!("agentops_gateway_produce_seconds").record(secs);
}

pub(crate) fn in_flight(n: usize) {
    metrics::gauge!("agentops_gateway_requests_in_flight").set(n as f64);
}

/// Spans in `POST /v1/traces` requests that decoded.
pub(crate) fn otlp_spans_received(n: usize) {
    metrics::counter!("agentops_gateway_otlp_spans_received_total").increment(n as u64);
}

/// Spans that became events, all of them valid and acknowledged.
pub(crate) fn otlp_spans_mapped(n: usize) {
    metrics::counter!("agentops_gateway_otlp_spans_mapped_total").increment(n as u64);
}

/// Spans that are not a GenAI operation we map (dropped, not errors).
pub(crate) fn otlp_spans_ignored(n: usize) {
    metrics::counter!("agentops_gateway_otlp_spans_ignored_total").increment(n as u64);
}

/// Spans with an event that failed validation (`partial_success.rejected_spans`).
pub(crate) fn otlp_spans_rejected(n: usize) {
    metrics::counter!("agentops_gateway_otlp_spans_rejected_total").increment(n as u64);
}

/// Log records in `POST /v1/logs` requests that decoded: received, ignored
/// (not a coding-agent event mapped) and rejected (an event failing validation).
pub(crate) fn otlp_logs(received: usize, ignored: usize, rejected: usize) {
    metrics::counter!("agentops_gateway_otlp_log_records_received_total")
        .increment(received as u64);
    metrics::counter!("agentops_gateway_otlp_log_records_ignored_total").increment(ignored as u64);
    metrics::counter!("agentops_gateway_otlp_log_records_rejected_total")
        .increment(rejected as u64);
}

/// Data points in `POST /v1/metrics` requests: received, ignored (not a
/// usage counter mapped, or usage counted from logs) and unchanged (already
/// counted: a re-export, an older point, no increase).
pub(crate) fn otlp_metric_points(received: usize, ignored: usize, unchanged: usize) {
    metrics::counter!("agentops_gateway_otlp_metric_points_received_total")
        .increment(received as u64);
    metrics::counter!("agentops_gateway_otlp_metric_points_ignored_total")
        .increment(ignored as u64);
    metrics::counter!("agentops_gateway_otlp_metric_points_unchanged_total")
        .increment(unchanged as u64);
}
