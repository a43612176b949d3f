//! Named metrics of the live feed (no labels: one series each).

/// `agentops_live_clients`: sockets open on this instance.
pub(crate) fn clients(n: usize) {
    metrics::gauge!("agentops_live_clients").set(n as f64);
}

/// `agentops_live_queued_frames`: frames waiting in every client's queue
/// (at most 200 per client).
pub(crate) fn queued_frames(n: usize) {
    metrics::gauge!("agentops_live_queued_frames").set(n as f64);
}

/// `agentops_live_frames_sent_total`: frames written to sockets (`lost`
/// frames included).
pub(crate) fn frames_sent(n: usize) {
    metrics::counter!("agentops_live_frames_sent_total").increment(n as u64);
}

/// `agentops_live_frames_dropped_total`: frames a full queue dropped.
pub(crate) fn frames_dropped(n: usize) {
    if n > 0 {
        metrics::counter!("agentops_live_frames_dropped_total").increment(n as u64);
    }
}

/// `agentops_live_feed_lag_seconds`: from the gateway's acceptance of a
/// run event (`ingested_at`) to its frame being queued for the clients.
pub(crate) fn feed_lag(secs: f64) {
    metrics::histogram!("agentops_live_feed_lag_seconds").record(secs.max(0.0));
}

/// `agentops_live_records_skipped_total`: records of the watched topics
/// that could not be decoded (the pipeline dead-letters them; the feed
/// only skips them).
pub(crate) fn record_skipped() {
    metrics::counter!("agentops_live_records_skipped_total").increment(1);
}

/// `agentops_live_refusals_total{reason}`: upgrades refused
/// (`unauthenticated`, `forbidden`, `cross_origin`, `bad_filter`, `full`).
pub(crate) fn refused(reason: &'static str) {
    metrics::counter!("agentops_live_refusals_total", "reason" => reason).increment(1);
}
