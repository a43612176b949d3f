//! One attempt of a claimed delivery, then its outcome: delivered, due
//! again after exponential backoff with jitter (the slot is given back;
//! bounded in attempts and in total time), or dead-lettered (row marked, a
//! record on the DLQ topic) when it cannot be made.

use std::time::{Duration, Instant};

use agentops_runtime::outbound::{Failure, Outbound};
use agentops_runtime::shutdown::CancellationToken;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde_json::json;
use sqlx::PgPool;

use super::channels::{self, ChannelKind, Class};
use super::store::{self, Job, Outcome};
use crate::alert::Transition;
use crate::telemetry;

/// What every delivery shares.
pub(crate) struct Ctx {
    pub(crate) pool: PgPool,
    /// Opens the channels' sealed URLs and secrets.
    pub(crate) keys: agentops_runtime::secrets::Keys,
    /// Every POST goes through the outbound guard.
    pub(crate) http: Outbound,
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

/// A failed attempt (or a delivery that cannot be attempted).
#[derive(Debug, Clone)]
pub(crate) struct Failed {
    pub(crate) class: Class,
    /// What the delivery row keeps, which read keys can see: a coarse class
    /// (`http_5xx`, `timeout`, `connect_error`, `refused_destination: ...`),
    /// never an error text that could serve as a port-scan oracle.
    pub(crate) error: String,
    /// For operators (logs and the DLQ record); never the URL.
    pub(crate) detail: String,
    pub(crate) retry_after: Option<Duration>,
    /// The destination was refused by the outbound guard (audited).
    pub(crate) refused: bool,
}

impl Failed {
    fn permanent(error: &str, detail: String) -> Failed {
        Failed {
            class: Class::Permanent,
            error: error.to_owned(),
            detail,
            retry_after: None,
            refused: false,
        }
    }

    fn from_outbound(f: Failure) -> Failed {
        let refused = matches!(f, Failure::Refused(_));
        let error = match &f {
            Failure::Refused(r) => format!("{}: {}", f.class(), r.reason()),
            other => other.class().to_owned(),
        };
        Failed {
            // A refused destination will not become allowed by retrying.
            class: if refused {
                Class::Permanent
            } else {
                Class::Transient
            },
            error,
            detail: f.to_string(),
            retry_after: None,
            refused,
        }
    }
}

/// The headers of one attempt. Ids are percent-encoded where they are not
/// visible ASCII, so building them cannot fail.
pub(super) fn headers(
    alert_id: &str,
    transition: Transition,
    kind: ChannelKind,
    secret: Option<&str>,
    now: i64,
    body: &[u8],
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("x-agentops-alert-id", channels::header_value(alert_id));
    h.insert(
        "x-agentops-transition",
        HeaderValue::from_static(transition.as_str()),
    );
    h.insert("x-agentops-timestamp", HeaderValue::from(now));
    if kind == ChannelKind::Webhook {
        if let Some(secret) = secret {
            let sig = channels::signature(secret, now, body);
            h.insert("x-agentops-signature", channels::header_value(&sig));
        }
    }
    h
}

/// Build, sign and send one attempt through the outbound guard.
async fn post(
    ctx: &Ctx,
    job: &Job,
    kind: ChannelKind,
    url: &str,
    body: &[u8],
) -> Result<(), Failed> {
    let now = chrono::Utc::now().timestamp();
    let answer = ctx
        .http
        .post(
            url,
            headers(
                &job.alert.alert_id,
                job.transition,
                kind,
                job.channel.as_ref().and_then(|c| c.secret.as_deref()),
                now,
                body,
            ),
            body.to_vec(),
        )
        .await
        .map_err(Failed::from_outbound)?;
    let status = answer.status.as_u16();
    match channels::classify(status) {
        Class::Delivered => Ok(()),
        class => Err(Failed {
            class,
            error: channels::status_class(status).to_owned(),
            detail: format!("{} answered {}", kind.as_str(), answer.status),
            retry_after: channels::retry_after(
                answer
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            ),
            refused: false,
        }),
    }
}

/// How one claimed delivery's attempt went, for the dispatcher's slots and
/// the channel's circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempted {
    /// Posted (2xx): the channel works.
    Delivered,
    /// A transient failure (timeout, 5xx, 408/429, network): counts
    /// towards the channel's breaker; `retry_in` when the row is due again
    /// (None: it was dead-lettered, attempts or time exhausted).
    Failed { retry_in: Option<Duration> },
    /// Nothing that says the channel is unhealthy: a permanent answer, a
    /// refused destination, a deleted channel, a shutdown.
    Other,
}

/// One attempt of a claimed delivery, then its outcome recorded: delivered,
/// dead-lettered (permanent failure, attempts or time exhausted), or given
/// back with `next_attempt_at` after the backoff (or `Retry-After`), so no
/// slot is held while waiting. Bounded in attempts (`max_attempts`) and in
/// time (`total`, counted from the first attempt, whatever the claims).
pub(crate) async fn run(ctx: &Ctx, job: Job) -> Attempted {
    let attempts = job.attempts.max(0) as u32;
    if let Some(why) = &job.unreadable {
        // A key missing from this instance's configuration: the row is
        // dead-lettered (the DLQ record allows a replay once it is fixed).
        let f = Failed::permanent("secret_unreadable", why.clone());
        dead_letter(ctx, &job, None, attempts, &f).await;
        return Attempted::Other;
    }
    let (kind, url) = match &job.channel {
        None => {
            let f = Failed::permanent("channel_deleted", "the channel no longer exists".into());
            dead_letter(ctx, &job, None, attempts, &f).await;
            return Attempted::Other;
        }
        Some(c) => match c.kind.parse::<ChannelKind>().ok() {
            None => {
                let f = Failed::permanent(
                    "unknown_channel_kind",
                    format!("unknown channel kind {:?}", c.kind),
                );
                dead_letter(ctx, &job, None, attempts, &f).await;
                return Attempted::Other;
            }
            Some(k) => (k, c.url.clone()),
        },
    };
    // Time spent since the first attempt, on the database's clock.
    let spent = (job.claimed_at - job.first_attempt_at)
        .to_std()
        .unwrap_or_default();
    if attempts >= ctx.max_attempts || spent >= ctx.total {
        // Only after a crash between an attempt and its outcome, or a long
        // wait behind an open circuit breaker.
        let mut last = job_error_before(attempts);
        last.detail = format!(
            "gave up after {attempts} attempts in {spent:?} (bounds: {} attempts, {:?})",
            ctx.max_attempts, ctx.total
        );
        dead_letter(ctx, &job, Some(kind), attempts, &last).await;
        return Attempted::Other;
    }
    let left = ctx.total - spent;
    let body = channels::body(kind, &job.alert, job.transition, &ctx.dashboard_url);
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let claimed = Instant::now();
    let attempts = attempts + 1;
    let posted = match tokio::time::timeout(left, post(ctx, &job, kind, &url, &body)).await {
        Ok(p) => p,
        Err(_) => Err(Failed::permanent(
            "timeout",
            format!("no answer within the {:?} delivery bound", ctx.total),
        )),
    };
    let mut last = match posted {
        Ok(()) => {
            telemetry::notification_attempt(kind.as_str(), "delivered");
            finish(ctx, &job, Outcome::Delivered, attempts, None).await;
            telemetry::notification("delivered");
            telemetry::notification_latency(kind.as_str(), claimed.elapsed());
            tracing::info!(
                alert_id = %job.alert.alert_id,
                channel_id = %job.channel_id,
                channel_kind = kind.as_str(),
                transition = job.transition.as_str(),
                attempts,
                "notification delivered"
            );
            return Attempted::Delivered;
        }
        Err(f) => f,
    };
    if last.class == Class::Permanent {
        let outcome = if last.refused { "refused" } else { "permanent" };
        telemetry::notification_attempt(kind.as_str(), outcome);
        dead_letter(ctx, &job, Some(kind), attempts, &last).await;
        // The delivery bound cut the attempt: the channel did not answer.
        return if last.error == "timeout" {
            Attempted::Failed { retry_in: None }
        } else {
            Attempted::Other
        };
    }
    telemetry::notification_attempt(kind.as_str(), "transient");
    if attempts >= ctx.max_attempts {
        last.detail = format!("gave up after {attempts} attempts: {}", last.detail);
        dead_letter(ctx, &job, Some(kind), attempts, &last).await;
        return Attempted::Failed { retry_in: None };
    }
    let jitter = rand::random::<f64>();
    let mut delay = channels::backoff(attempts, ctx.backoff_base, ctx.backoff_max, jitter);
    if let Some(ra) = last.retry_after {
        delay = delay.max(ra.min(ctx.backoff_max));
    }
    if spent + claimed.elapsed() + delay >= ctx.total {
        last.detail = format!(
            "gave up after {attempts} attempts within the {:?} delivery bound: {}",
            ctx.total, last.detail
        );
        dead_letter(ctx, &job, Some(kind), attempts, &last).await;
        return Attempted::Failed { retry_in: None };
    }
    tracing::warn!(
        alert_id = %job.alert.alert_id,
        channel_id = %job.channel_id,
        channel_kind = kind.as_str(),
        attempt = attempts,
        retry_in_ms = delay.as_millis() as u64,
        error = %last.error,
        detail = %last.detail,
        "notification attempt failed"
    );
    // The slot is free again; the row is due after `delay` (any instance).
    let note = store::Note {
        last_error: Some(&last.error),
        retry_in: delay,
        audit: None,
    };
    finish_noted(ctx, &job, Outcome::Retry, attempts, note).await;
    Attempted::Failed {
        retry_in: Some(delay),
    }
}

/// What is known of the attempts earlier claims made (their class is in
/// the row; only the count matters here).
fn job_error_before(attempts: u32) -> Failed {
    let mut f = Failed::permanent(
        "attempts_exhausted",
        format!("{attempts} earlier attempts failed"),
    );
    f.class = Class::Transient;
    f
}

/// Record an outcome; database errors are retried (the outcome must not be
/// lost), except at shutdown where a few seconds are allowed: an unrecorded
/// outcome leaves the claim to expire and the delivery to be retried.
async fn finish(ctx: &Ctx, job: &Job, outcome: Outcome, attempts: u32, error: Option<&str>) {
    let note = store::Note {
        last_error: error,
        ..Default::default()
    };
    finish_noted(ctx, job, outcome, attempts, note).await;
}

/// [`finish`] with a retry delay or an `audit_log` row.
async fn finish_noted(
    ctx: &Ctx,
    job: &Job,
    outcome: Outcome,
    attempts: u32,
    note: store::Note<'_>,
) {
    let mut stop_at: Option<Instant> = None;
    loop {
        match store::finish(&ctx.pool, job, outcome, attempts as i32, note).await {
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
/// secret, attempts, the coarse error and the operator's detail), then mark
/// the row; a refused destination also gets an `audit_log` row
/// (`notification.destination_refused`, actor `notifier`). At shutdown
/// before the record is written, the claim is released instead.
async fn dead_letter(ctx: &Ctx, job: &Job, kind: Option<ChannelKind>, attempts: u32, f: &Failed) {
    let error = f.error.as_str();
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
        "detail": f.detail,
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
    let audit = f.refused.then(|| store::Audit {
        org_id: job.alert.org_id.clone(),
        actor: "notifier",
        action: "notification.destination_refused",
        detail: json!({
            "channel_id": job.channel_id.to_string(),
            "channel_kind": kind_str,
            "alert_id": job.alert.alert_id,
            "transition": job.transition.as_str(),
            "reason": error,
        }),
    });
    let note = store::Note {
        last_error: Some(error),
        audit: audit.as_ref(),
        ..Default::default()
    };
    finish_noted(ctx, job, Outcome::DeadLettered, attempts, note).await;
    telemetry::notification("dead_lettered");
    telemetry::notification_dead_lettered(kind.map(ChannelKind::as_str).unwrap_or("unknown"));
    tracing::error!(
        alert_id = %job.alert.alert_id,
        channel_id = %job.channel_id,
        channel_kind = kind_str,
        transition = job.transition.as_str(),
        attempts,
        error,
        detail = %f.detail,
        "notification dead-lettered"
    );
}
