//! Named metrics of the processors (bounded labels only).

pub(crate) fn events_enriched(n: usize) {
    metrics::counter!("agentops_processor_events_total").increment(n as u64);
}

/// LLM calls with tokens but no known price (cost left null).
pub(crate) fn unpriced(n: usize) {
    metrics::counter!("agentops_processor_unpriced_events_total").increment(n as u64);
}

pub(crate) fn alert_emitted(kind: &'static str) {
    metrics::counter!("agentops_alerts_emitted_total", "kind" => kind).increment(1);
}

pub(crate) fn notification(outcome: &'static str) {
    metrics::counter!("agentops_notifications_total", "outcome" => outcome).increment(1);
}
