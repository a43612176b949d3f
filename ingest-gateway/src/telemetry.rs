//! Named metrics of the gateway (bounded labels only).

pub(crate) fn events_accepted(n: usize) {
    metrics::counter!("agentops_gateway_events_accepted_total").increment(n as u64);
}

pub(crate) fn events_rejected(n: usize) {
    metrics::counter!("agentops_gateway_events_rejected_total").increment(n as u64);
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
