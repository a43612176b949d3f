//! Notifier: alerts topic → Slack, Discord and signed webhooks, exactly one
//! delivery per (alert, channel, transition); and the daily digest.
//!
//! Two halves joined by Postgres:
//!
//! - **consumer** (group `notifier_group`): decodes each alert record, records
//!   it (`alerts` once by id, `alert_history` when the row is new or newly
//!   resolved) and one `alert_deliveries` row per channel (the record's
//!   channels, else all of the org's), in one transaction; then stores the
//!   batch's offsets. Undecodable or unrecordable records go to the DLQ topic
//!   with their reason; database errors are retried, never skipped.
//! - **dispatcher**: claims pending deliveries in Postgres (`FOR UPDATE SKIP
//!   LOCKED`; unclaimed, or claimed longer ago than the claim timeout by an
//!   instance that died) and runs up to `notify_concurrency` of them at once,
//!   each bounded in attempts and time ([`deliver`]). The consumer wakes it
//!   as soon as rows are written; it also polls, which picks up a dead
//!   peer's work.
//!
//! Several instances, restarts and duplicate records therefore lead to one
//! POST per delivery row. The one exception is a crash between a successful
//! POST and recording it: the claim expires and the POST is repeated once;
//! receivers can dedupe on `X-AgentOps-Alert-Id` + `X-AgentOps-Transition`.
//!
//! The consumer never waits for HTTP, so a slow channel cannot hold a
//! partition (or the consumer's poll interval) hostage.
//!
//! Every POST goes through the outbound guard
//! ([`agentops_runtime::outbound`]): non-public destinations (unless the
//! operator allows them in `notify.allow_destinations`) are refused before
//! any connection, and the delivery is dead-lettered at once with the
//! reason, audited as `notification.destination_refused`.

mod channels;
mod deliver;
pub(crate) mod digest;
mod store;

use std::sync::Arc;
use std::time::Duration;

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use rdkafka::consumer::{Consumer, DefaultConsumerContext, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::Message;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::alert::Alert;
use crate::{telemetry, Config};

/// Run the consumer and the dispatcher until `shutdown`.
pub(crate) async fn run(
    config: Arc<Config>,
    pool: PgPool,
    producer: FutureProducer,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    // Every POST on an org's behalf goes through the outbound guard.
    let http = agentops_runtime::outbound::Outbound::new(
        &config.notify,
        Duration::from_millis(config.notify_request_timeout_ms.max(1)),
        concat!("agentops-notifier/", env!("CARGO_PKG_VERSION")),
    )?;
    // Stops the dispatcher when the consumer ends, whatever the reason.
    let stop = shutdown.child_token();
    let ctx = Arc::new(deliver::Ctx {
        pool: pool.clone(),
        http,
        producer: producer.clone(),
        dlq_topic: config.kafka.topic_dlq.clone(),
        alerts_topic: config.kafka.topic_alerts.clone(),
        dashboard_url: config.dashboard_url.clone(),
        max_attempts: config.webhook_max_attempts.max(1),
        backoff_base: Duration::from_millis(config.webhook_backoff_ms),
        backoff_max: Duration::from_millis(config.notify_backoff_max_ms),
        total: Duration::from_secs(config.notify_delivery_timeout_secs.max(1)),
        shutdown: stop.clone(),
    });
    let wake = Arc::new(Notify::new());
    let dispatcher = tokio::spawn(dispatch(config.clone(), ctx, wake.clone()));
    let consumed = consume(&config, &pool, &producer, &wake, &shutdown).await;
    stop.cancel();
    if let Err(e) = dispatcher.await {
        tracing::error!(error = %e, "notification dispatcher panicked");
    }
    consumed
}

/// The claim timeout in effect: never shorter than one delivery's bound plus
/// a minute, so a live instance's claim cannot expire under it.
fn claim_timeout(config: &Config) -> Duration {
    let floor = config.notify_delivery_timeout_secs.max(1) + 60;
    Duration::from_secs(config.notify_claim_timeout_secs.max(floor))
}

async fn consume(
    config: &Config,
    pool: &PgPool,
    producer: &FutureProducer,
    wake: &Notify,
    shutdown: &CancellationToken,
) -> agentops_runtime::Result<()> {
    let consumer: StreamConsumer<DefaultConsumerContext> = kafka::consumer(
        &config.kafka,
        &config.notifier_group,
        DefaultConsumerContext,
    )?;
    consumer.subscribe(&[&config.kafka.topic_alerts])?;
    while let Some(batch) =
        kafka::next_batch(&consumer, 100, Duration::from_millis(10), shutdown).await
    {
        for msg in &batch {
            match handle(config, pool, producer, msg, shutdown).await {
                Handled::Recorded { deliveries } if deliveries > 0 => wake.notify_one(),
                Handled::Recorded { .. } | Handled::DeadLettered => {}
                // Shutting down: the batch is re-read by the next owner.
                Handled::Interrupted => return Ok(()),
            }
        }
        kafka::store_offsets(&consumer, &kafka::next_offsets(&batch));
    }
    Ok(())
}

enum Handled {
    Recorded { deliveries: u64 },
    DeadLettered,
    Interrupted,
}

/// Decode an alert record; the reason otherwise.
fn decode(msg: &OwnedMessage) -> Result<Alert, String> {
    let payload = msg.payload().ok_or("empty alert record")?;
    serde_json::from_slice::<Alert>(payload).map_err(|e| format!("undecodable alert record: {e}"))
}

async fn handle(
    config: &Config,
    pool: &PgPool,
    producer: &FutureProducer,
    msg: &OwnedMessage,
    shutdown: &CancellationToken,
) -> Handled {
    let dlq = |reason: String| async move {
        telemetry::notification("rejected");
        if kafka::dead_letter(producer, &config.kafka.topic_dlq, msg, &reason, shutdown).await {
            Handled::DeadLettered
        } else {
            Handled::Interrupted
        }
    };
    let alert = match decode(msg) {
        Ok(a) => a,
        Err(reason) => return dlq(reason).await,
    };
    let checked = match store::check(&alert) {
        Ok(c) => c,
        Err(reason) => return dlq(format!("invalid alert record: {reason}")).await,
    };
    loop {
        match store::record(pool, &checked).await {
            Ok(r) => {
                if r.new_alert {
                    telemetry::alert_recorded();
                } else if r.deliveries == 0 {
                    telemetry::notification("duplicate");
                }
                tracing::debug!(
                    alert_id = %alert.alert_id,
                    transition = alert.transition.as_str(),
                    new = r.new_alert,
                    deliveries = r.deliveries,
                    "alert recorded"
                );
                return Handled::Recorded {
                    deliveries: r.deliveries,
                };
            }
            Err(e) if store::is_permanent(&e) => {
                return dlq(format!("alert cannot be recorded: {e}")).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, alert_id = %alert.alert_id, "alert store unavailable, retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Handled::Interrupted,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Claim pending deliveries and run them, at most `notify_concurrency` at once.
async fn dispatch(config: Arc<Config>, ctx: Arc<deliver::Ctx>, wake: Arc<Notify>) {
    let concurrency = config.notify_concurrency.max(1);
    let claim_timeout = claim_timeout(&config).as_secs_f64();
    let poll = Duration::from_millis(config.notify_poll_ms.max(10));
    let mut inflight = JoinSet::new();
    loop {
        let free = concurrency.saturating_sub(inflight.len());
        if free > 0 {
            match store::claim(&ctx.pool, claim_timeout, free as i64).await {
                Ok(jobs) => {
                    for job in jobs {
                        let ctx = ctx.clone();
                        inflight.spawn(async move { deliver::run(&ctx, job).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot claim deliveries, retrying"),
            }
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = wake.notified() => {}
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Err(e) = done {
                    // Its claim expires and a later pass delivers it.
                    tracing::error!(error = %e, "delivery task panicked");
                }
            }
            _ = tokio::time::sleep(poll) => {}
        }
    }
    // Let in-flight deliveries finish their current attempt and record it.
    while let Some(done) = inflight.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "delivery task panicked");
        }
    }
}
