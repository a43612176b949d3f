//! Named metrics of the processors (bounded labels only).

pub(crate) fn events_enriched(n: usize) {
    metrics::counter!("agentops_processor_events_total").increment(n as u64);
}

/// Price rows in the table the enrich stage prices with (set at each load).
pub(crate) fn price_rows(n: usize) {
    metrics::gauge!("agentops_price_rows").set(n as f64);
}

/// LLM calls with tokens but no known price (cost left null).
/// Spend priced (or sent by the client) and events left unpriced (unknown
/// model), per org, as the enrich stage writes them. A batch replayed after
/// a crash counts again here: the exact figures are the projections'.
pub(crate) fn spend(org: &str, usd: f64, unpriced: u64) {
    let org = agentops_runtime::telemetry::org_label(org);
    if usd > 0.0 {
        // Micro-dollars: counters are integers.
        metrics::counter!("agentops_processor_spend_microusd_total", "org" => org.clone())
            .increment((usd * 1e6).round() as u64);
    }
    if unpriced > 0 {
        metrics::counter!("agentops_processor_unpriced_events_total", "org" => org)
            .increment(unpriced);
    }
}

pub(crate) fn alert_emitted(kind: &'static str) {
    metrics::counter!("agentops_alerts_emitted_total", "kind" => kind).increment(1);
}

pub(crate) fn notification(outcome: &'static str) {
    metrics::counter!("agentops_notifications_total", "outcome" => outcome).increment(1);
}

/// Agents paused by a budget or a policy.
pub(crate) fn agents_paused(n: usize) {
    metrics::counter!("agentops_agents_paused_total").increment(n as u64);
}

/// Unprojected spend entries dropped because the projections are far behind.
pub(crate) fn budget_local_dropped() {
    metrics::counter!("agentops_budget_local_dropped_total").increment(1);
}

/// Batches in the enrich → budget queue (of `budget::QUEUE_BATCHES`).
pub(crate) fn budget_queue_depth(n: usize) {
    metrics::gauge!("agentops_budget_queue_depth").set(n as f64);
}

/// Each wait of the enrich stage for room in the budget queue (its count:
/// how often the queue was full; its sum: the time the stage was held).
pub(crate) fn budget_queue_blocked(waited: std::time::Duration) {
    metrics::histogram!("agentops_budget_queue_blocked_seconds").record(waited.as_secs_f64());
}

/// Unprojected spend entries the budget task holds (at most `budget_pending_max`).
pub(crate) fn budget_pending(n: usize) {
    metrics::gauge!("agentops_budget_pending_entries").set(n as f64);
}

/// Policy violations recorded, by action.
pub(crate) fn policy_violations(action: &'static str, n: usize) {
    metrics::counter!("agentops_policy_violations_total", "action" => action).increment(n as u64);
}

/// Alert rule evaluation passes, by outcome.
pub(crate) fn rule_pass(outcome: &'static str) {
    metrics::counter!("agentops_rule_passes_total", "outcome" => outcome).increment(1);
}

/// One notification POST, by channel kind and outcome
/// (`delivered`, `transient`, `permanent`).
pub(crate) fn notification_attempt(channel_kind: &'static str, outcome: &'static str) {
    metrics::counter!("agentops_notification_attempts_total",
        "channel_kind" => channel_kind, "outcome" => outcome)
    .increment(1);
}

/// Time from claiming a notification to its successful POST.
pub(crate) fn notification_latency(channel_kind: &'static str, elapsed: std::time::Duration) {
    metrics::histogram!("agentops_notification_latency_seconds", "channel_kind" => channel_kind)
        .record(elapsed.as_secs_f64());
}

/// A notification given up on (marked and sent to the dead-letter topic).
pub(crate) fn notification_dead_lettered(channel_kind: &'static str) {
    metrics::counter!("agentops_notifications_dead_lettered_total", "channel_kind" => channel_kind)
        .increment(1);
    metrics::counter!("agentops_dead_letters_total").increment(1);
}

/// An alert recorded by the notifier for the first time.
pub(crate) fn alert_recorded() {
    metrics::counter!("agentops_alerts_recorded_total").increment(1);
}

/// A daily digest produced to the alerts topic.
pub(crate) fn digest_emitted() {
    metrics::counter!("agentops_digests_emitted_total").increment(1);
}
