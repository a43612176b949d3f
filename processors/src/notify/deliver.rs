//! One claimed delivery: post, retry transient failures with exponential
//! backoff and jitter (bounded in attempts and in total time), then record
//! the outcome; a delivery that cannot be made is dead-lettered (row marked,
//! a record on the DLQ topic).

use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sqlx::PgPool;

use super::channels::{self, ChannelKind, Class};
use super::store::{self, Job, Outcome};
use crate::telemetry;

/// What every delivery shares.
pub(crate) struct Ctx {
    pub(crate) pool: PgPool,
    pub(crate) http: reqwest::Client,
    pub(crate) producer: FutureProducer,
    pub(crate) dlq_topic: String,
    pub(crate) alerts_topic: String,
    pub(crate) dashboard_url: String,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    /// Bound on one delivery, all attempts and waits included.
    pub(crate) total: Duration,
    pub(crate) shutdown: CancellationToken,
}

/// One POST's result.
enum Posted {
    Ok,
    Failed {
        class: Class,
        error: String,
        retry_after: Option<Duration>,
    },
}

/// Build, sign and send one attempt. Errors never carry the URL (Slack and
/// Discord webhook URLs are credentials).
async fn post(ctx: &Ctx, job: &Job, kind: ChannelKind, url: &str, body: &[u8]) -> Posted {
    let now = chrono::Utc::now().timestamp();
    let mut req = ctx
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-AgentOps-Alert-Id", &job.alert.alert_id)
        .header("X-AgentOps-Transition", job.transition.as_str())
        .header("X-AgentOps-Timestamp", now.to_string());
    if kind == ChannelKind::Webhook {
        if let Some(secret) = job.channel.as_ref().and_then(|c| c.secret.as_deref()) {
            req = req.header(
                "X-AgentOps-Signature",
                channels::signature(secret, now, body),
            );
        }
    }
    match req.body(body.to_vec()).send().await {
        Ok(r) => {
            let status = r.status();
            match channels::classify(status.as_u16()) {
                Class::Delivered => Posted::Ok,
                class => Posted::Failed {
                    class,
                    error: format!("{} answered {status}", kind.as_str()),
                    retry_after: channels::retry_after(
                        r.headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok()),
                    ),
                },
            }
        }
        Err(e) => Posted::Failed {
            class: Class::Transient,
            error: error_chain(&e.without_url()),
            retry_after: None,
        },
    }
}

/// `error: cause: cause` of a request error.
fn error_chain(e: &reqwest::Error) -> String {
    let mut s = format!("unreachable: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// Deliver one claimed job to the end (delivered, dead-lettered, or released
/// at shutdown).
pub(crate) async fn run(ctx: &Ctx, job: Job) {
    let started = Instant::now();
    let mut attempts = job.attempts.max(0) as u32;
    let (kind, url) = match &job.channel {
        None => {
            let e = "the channel no longer exists".to_owned();
            return dead_letter(ctx, &job, None, attempts, &e).await;
        }
        Some(c) => match ChannelKind::parse(&c.kind) {
            None => {
                let e = format!("unknown channel kind {:?}", c.kind);
                return dead_letter(ctx, &job, None, attempts, &e).await;
            }
            Some(k) => (k, c.url.clone()),
        },
    };
    let body = channels::body(kind, &job.alert, job.transition, &ctx.dashboard_url);
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut last_error = job_error_before(attempts);
    loop {
        if attempts >= ctx.max_attempts {
            let e = format!("gave up after {attempts} attempts: {last_error}");
            return dead_letter(ctx, &job, Some(kind), attempts, &e).await;
        }
        let left = ctx.total.saturating_sub(started.elapsed());
        attempts += 1;
        let posted = match tokio::time::timeout(left, post(ctx, &job, kind, &url, &body)).await {
            Ok(p) => p,
            Err(_) => Posted::Failed {
                class: Class::Permanent,
                error: format!("no answer within the {:?} delivery bound", ctx.total),
                retry_after: None,
            },
        };
        let (class, error, retry_after) = match posted {
            Posted::Ok => {
                telemetry::notification_attempt(kind.as_str(), "delivered");
                finish(ctx, &job, Outcome::Delivered, attempts, None).await;
                telemetry::notification("delivered");
                telemetry::notification_latency(kind.as_str(), started.elapsed());
                tracing::info!(
                    alert_id = %job.alert.alert_id,
                    channel_id = %job.channel_id,
                    channel_kind = kind.as_str(),
                    transition = job.transition.as_str(),
                    attempts,
                    "notification delivered"
                );
                return;
            }
            Posted::Failed {
                class,
                error,
                retry_after,
            } => (class, error, retry_after),
        };
        last_error = error;
        if class == Class::Permanent {
            telemetry::notification_attempt(kind.as_str(), "permanent");
            return dead_letter(ctx, &job, Some(kind), attempts, &last_error).await;
        }
        telemetry::notification_attempt(kind.as_str(), "transient");
        if attempts >= ctx.max_attempts {
            continue; // dead-lettered at the top of the loop
        }
        let jitter = rand::random::<f64>();
        let mut delay = channels::backoff(attempts, ctx.backoff_base, ctx.backoff_max, jitter);
        if let Some(ra) = retry_after {
            delay = delay.max(ra.min(ctx.backoff_max));
        }
        if started.elapsed() + delay >= ctx.total {
            let e = format!(
                "gave up after {attempts} attempts within the {:?} delivery bound: {last_error}",
                ctx.total
            );
            return dead_letter(ctx, &job, Some(kind), attempts, &e).await;
        }
        tracing::warn!(
            alert_id = %job.alert.alert_id,
            channel_id = %job.channel_id,
            channel_kind = kind.as_str(),
            attempt = attempts,
            retry_in_ms = delay.as_millis() as u64,
            error = %last_error,
            "notification attempt failed"
        );
        // Best effort: the attempt count survives a crash (a later claim continues it).
        if let Err(e) = store::finish(
            &ctx.pool,
            &job,
            Outcome::Progress,
            attempts as i32,
            Some(&last_error),
        )
        .await
        {
            tracing::warn!(error = %e, "could not record the attempt");
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => {
                finish(ctx, &job, Outcome::Released, attempts, Some(&last_error)).await;
                return;
            }
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn job_error_before(attempts: u32) -> String {
    if attempts == 0 {
        String::new()
    } else {
        format!("{attempts} earlier attempts failed")
    }
}

/// Record an outcome; database errors are retried (the outcome must not be
/// lost), except at shutdown where a few seconds are allowed: an unrecorded
/// outcome leaves the claim to expire and the delivery to be retried.
async fn finish(ctx: &Ctx, job: &Job, outcome: Outcome, attempts: u32, error: Option<&str>) {
    let mut stop_at: Option<Instant> = None;
    loop {
        match store::finish(&ctx.pool, job, outcome, attempts as i32, error).await {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(
                    alert_id = %job.alert.alert_id,
                    channel_id = %job.channel_id,
                    ?outcome,
                    "delivery claim expired and was taken over before its outcome was recorded"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, alert_id = %job.alert.alert_id, ?outcome,
                    "could not record delivery outcome, retrying");
            }
        }
        if ctx.shutdown.is_cancelled() {
            let at = *stop_at.get_or_insert_with(|| Instant::now() + Duration::from_secs(5));
            if Instant::now() >= at {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Produce a DLQ record (the alert, channel id and kind, never the URL or
/// secret, attempts, last error), then mark the row. At shutdown before the
/// record is written, the claim is released instead.
async fn dead_letter(ctx: &Ctx, job: &Job, kind: Option<ChannelKind>, attempts: u32, error: &str) {
    let kind_str = kind
        .map(ChannelKind::as_str)
        .or(job.channel.as_ref().map(|c| c.kind.as_str()))
        .unwrap_or("unknown");
    let record = json!({
        "type": "notification_dead_lettered",
        "alert": job.alert,
        "transition": job.transition.as_str(),
        "channel_id": job.channel_id.to_string(),
        "channel_kind": kind_str,
        "attempts": attempts,
        "last_error": error,
        "dead_lettered_at": chrono::Utc::now(),
    });
    let payload = serde_json::to_vec(&record).unwrap_or_default();
    let reason = format!("notification dead-lettered: {error}");
    loop {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "dlq.reason",
                value: Some(reason.as_str()),
            })
            .insert(Header {
                key: "dlq.topic",
                value: Some(ctx.alerts_topic.as_str()),
            })
            .insert(Header {
                key: "dlq.source",
                value: Some("notifier"),
            });
        let rec = FutureRecord::to(&ctx.dlq_topic)
            .key(&job.alert.org_id)
            .payload(&payload)
            .headers(headers);
        match ctx.producer.send(rec, Duration::from_secs(10)).await {
            Ok(_) => break,
            Err((e, _)) => {
                tracing::warn!(error = %e, "dead-letter produce failed, retrying");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => {
                        finish(ctx, job, Outcome::Released, attempts, Some(error)).await;
                        return;
                    }
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    finish(ctx, job, Outcome::DeadLettered, attempts, Some(error)).await;
    telemetry::notification("dead_lettered");
    telemetry::notification_dead_lettered(kind.map(ChannelKind::as_str).unwrap_or("unknown"));
    tracing::error!(
        alert_id = %job.alert.alert_id,
        channel_id = %job.channel_id,
        channel_kind = kind_str,
        transition = job.transition.as_str(),
        attempts,
        error,
        "notification dead-lettered"
    );
}
