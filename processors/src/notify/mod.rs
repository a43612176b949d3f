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
//! - **dispatcher**: claims due deliveries in Postgres (`FOR UPDATE SKIP
//!   LOCKED`; unclaimed, or claimed longer ago than the claim timeout by an
//!   instance that died; never attempted, or their `next_attempt_at` has
//!   come) and makes one attempt of each, up to `notify_concurrency` at
//!   once, fairly: per-org and per-channel limits and a per-channel circuit
//!   breaker ([`fair`]). A failed attempt releases its slot and sets the
//!   row's `next_attempt_at`; a delivery stays bounded in attempts and time
//!   ([`deliver`]). The consumer wakes it as soon as rows are written; it
//!   also polls, which picks up a peer's retries and a dead peer's work.
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
mod fair;
mod store;
mod test_send;

pub use test_send::{test_send, TestSend};

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::kafka;
use agentops_runtime::shutdown::CancellationToken;
use futures::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
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
    // Channel URLs and secrets are stored sealed; rows still in clear (written
    // before encryption) are sealed now.
    let keys = agentops_runtime::secrets::Keys::load(&config.secrets)?;
    let swept = agentops_runtime::secrets::reseal_channels(&pool, &keys, true).await?;
    if swept.rows > 0 || swept.unreadable > 0 {
        tracing::info!(
            rows = swept.rows,
            unreadable = swept.unreadable,
            "channel credentials sealed"
        );
    }
    // Stops the dispatcher when the consumer ends, whatever the reason.
    let stop = shutdown.child_token();
    let ctx = Arc::new(deliver::Ctx {
        pool: pool.clone(),
        keys,
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
    match dispatcher.await {
        // The notifier fails with its dispatcher (the supervisor sees the panic).
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => tracing::error!(error = %e, "notification dispatcher cancelled"),
        Ok(()) => {}
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
    let consumer: StreamConsumer<kafka::LagContext> = kafka::consumer(
        &config.kafka,
        &config.notifier_group,
        kafka::LagContext::new(&config.notifier_group),
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

/// Claim due deliveries and run one attempt of each: at most
/// `notify_concurrency` at once, `notify_org_concurrency` per org and
/// `notify_channel_concurrency` per channel, none of a channel whose
/// circuit breaker is open ([`fair`]). A failed attempt gives its slot back
/// and its row is due again later; the dispatcher wakes for the soonest
/// retry it scheduled or breaker it will half-open, for the consumer's
/// wake-ups and every `notify_poll_ms` (a peer's retries, a dead peer's
/// claims).
async fn dispatch(config: Arc<Config>, ctx: Arc<deliver::Ctx>, wake: Arc<Notify>) {
    let mut slots = fair::Slots::new(fair::Limits {
        total: config.notify_concurrency,
        per_org: config.notify_org_concurrency,
        per_channel: config.notify_channel_concurrency,
        breaker_failures: config.notify_breaker_failures,
        breaker_cooldown: Duration::from_millis(config.notify_breaker_cooldown_ms),
    });
    let claim_timeout = claim_timeout(&config).as_secs_f64();
    let poll = Duration::from_millis(config.notify_poll_ms.max(10));
    let mut inflight = JoinSet::new();
    // The soonest retry this instance scheduled.
    let mut next_retry: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if next_retry.is_some_and(|t| t <= now) {
            next_retry = None;
        }
        if let Some(room) = slots.room(now) {
            match store::claim(&ctx.pool, &ctx.keys, claim_timeout, &room).await {
                Ok(jobs) => {
                    for job in jobs {
                        let (org, channel) = (job.alert.org_id.clone(), job.channel_id);
                        slots.start(&org, channel);
                        let ctx = ctx.clone();
                        inflight.spawn(async move {
                            let result = AssertUnwindSafe(deliver::run(&ctx, job))
                                .catch_unwind()
                                .await
                                .ok();
                            (org, channel, result)
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot claim deliveries, retrying"),
            }
        }
        let mut sleep_until = Instant::now() + poll;
        for t in [next_retry, slots.next_reopen(Instant::now())]
            .into_iter()
            .flatten()
        {
            sleep_until = sleep_until.min(t);
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = wake.notified() => {}
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                match done {
                    Ok((org, channel, result)) => {
                        if result.is_none() {
                            // Its claim expires and a later pass delivers it.
                            tracing::error!(%channel, "delivery task panicked");
                        }
                        if let Some(deliver::Attempted::Failed { retry_in: Some(d) }) = result {
                            let at = Instant::now() + d;
                            next_retry = Some(next_retry.map_or(at, |t| t.min(at)));
                        }
                        slots.done(&org, channel, result, Instant::now());
                    }
                    // Only on cancellation, which is not done here.
                    Err(e) => tracing::error!(error = %e, "delivery task failed"),
                }
            }
            _ = tokio::time::sleep_until(sleep_until.into()) => {}
        }
    }
    // Let in-flight deliveries finish their current attempt and record it.
    while let Some(done) = inflight.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "delivery task failed");
        }
    }
}
