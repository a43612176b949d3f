//! The notifier's Postgres side: record an alert and its deliveries (the
//! outbox), claim deliveries, and record their outcome.
//!
//! One row per (alert, channel, transition) in `alert_deliveries`; a
//! delivery is claimed with a conditional UPDATE (`FOR UPDATE SKIP LOCKED`),
//! so instances never claim the same row while the claim is live.

use agentops_runtime::secrets::{self, Keys};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::alert::{Alert, Transition};

/// An alert record that passed validation.
pub(crate) struct Checked<'a> {
    pub(crate) alert: &'a Alert,
    pub(crate) source_id: Option<Uuid>,
    pub(crate) channels: Vec<Uuid>,
}

/// Validate what the database would reject, with a reason for the DLQ.
pub(crate) fn check(alert: &Alert) -> Result<Checked<'_>, String> {
    if alert.alert_id.is_empty() {
        return Err("alert_id is empty".into());
    }
    if alert.org_id.is_empty() {
        return Err("org_id is empty".into());
    }
    let source_id = match alert.source_id.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Uuid::parse_str(s).map_err(|e| format!("source_id {s:?}: {e}"))?),
    };
    let channels = alert
        .channels
        .iter()
        .map(|c| Uuid::parse_str(c).map_err(|e| format!("channel id {c:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Checked {
        alert,
        source_id,
        channels,
    })
}

/// What recording one alert record did.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    /// The alert row was created by this record.
    pub(crate) new_alert: bool,
    /// Delivery rows created (0 for a duplicate record).
    pub(crate) deliveries: u64,
}

const INSERT_ALERT: &str = "
INSERT INTO alerts (alert_id, org_id, source, source_id, kind, scope_key, state, severity,
                    period, threshold, value, message, details, channels, created_at, resolved_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::text, $8, $9, $10, $11, $12, $13, $14, $15,
        CASE WHEN $7::text = 'resolved' THEN $15 END)
ON CONFLICT (alert_id) DO NOTHING
RETURNING alert_id";

const RESOLVE_ALERT: &str = "
UPDATE alerts SET state = 'resolved', resolved_at = COALESCE(resolved_at, $2)
WHERE alert_id = $1 AND state <> 'resolved'
RETURNING alert_id";

const INSERT_HISTORY: &str =
    "INSERT INTO alert_history (alert_id, state, actor, note) VALUES ($1, $2, $3, $4)";

/// One row per channel: the record's channels, else the ones stored with the
/// alert, else every channel of the org (only the org's own channels). Only
/// the first record of a transition creates rows, so a duplicate record read
/// after a channel was added does not notify the new channel of an old alert.
const INSERT_DELIVERIES: &str = "
WITH wanted AS (
    SELECT CASE WHEN cardinality($3::uuid[]) > 0 THEN $3::uuid[]
                ELSE COALESCE((SELECT channels FROM alerts WHERE alert_id = $1), '{}') END AS ids)
INSERT INTO alert_deliveries (alert_id, channel_id, transition)
SELECT $1, c.id, $4 FROM notification_channels c, wanted w
WHERE c.org_id = $2 AND (cardinality(w.ids) = 0 OR c.id = ANY (w.ids))
  AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = $1 AND d.transition = $4)
ON CONFLICT DO NOTHING";

/// Record the alert (once), its history and its delivery rows, in one transaction.
pub(crate) async fn record(pool: &PgPool, c: &Checked<'_>) -> Result<Recorded, sqlx::Error> {
    let a = c.alert;
    let state = a.transition.as_str();
    let mut tx = pool.begin().await?;
    let inserted: Option<String> = sqlx::query_scalar(INSERT_ALERT)
        .bind(&a.alert_id)
        .bind(&a.org_id)
        .bind(&a.source)
        .bind(c.source_id)
        .bind(&a.kind)
        .bind(&a.scope_key)
        .bind(state)
        .bind(&a.severity)
        .bind(&a.period)
        .bind(a.threshold)
        .bind(a.value)
        .bind(&a.message)
        .bind(&a.details)
        .bind(&c.channels)
        .bind(a.occurred_at)
        .fetch_optional(&mut *tx)
        .await?;
    let new_alert = inserted.is_some();
    let changed = if new_alert {
        true
    } else if a.transition == Transition::Resolved {
        let r: Option<String> = sqlx::query_scalar(RESOLVE_ALERT)
            .bind(&a.alert_id)
            .bind(a.occurred_at)
            .fetch_optional(&mut *tx)
            .await?;
        r.is_some()
    } else {
        false
    };
    if changed {
        sqlx::query(INSERT_HISTORY)
            .bind(&a.alert_id)
            .bind(state)
            .bind(&a.source)
            .bind(&a.message)
            .execute(&mut *tx)
            .await?;
    }
    let deliveries = sqlx::query(INSERT_DELIVERIES)
        .bind(&a.alert_id)
        .bind(&a.org_id)
        .bind(&c.channels)
        .bind(state)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(Recorded {
        new_alert,
        deliveries,
    })
}

/// A claimed delivery with what it needs to be sent.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) alert: Alert,
    pub(crate) transition: Transition,
    pub(crate) channel_id: Uuid,
    /// None when the channel was deleted meanwhile.
    pub(crate) channel: Option<Channel>,
    /// Attempts made by earlier claims.
    pub(crate) attempts: i32,
    /// The claim token: outcome updates only apply while it is ours.
    pub(crate) claimed_at: DateTime<Utc>,
    /// When the first claim was made (database clock, like `claimed_at`):
    /// the delivery's time bound counts from here.
    pub(crate) first_attempt_at: DateTime<Utc>,
    /// The channel's URL or secret cannot be opened (why; never the value).
    pub(crate) unreadable: Option<String>,
}

#[derive(Clone)]
pub(crate) struct Channel {
    pub(crate) kind: String,
    pub(crate) url: String,
    pub(crate) secret: Option<String>,
}

impl std::fmt::Debug for Channel {
    // Webhook URLs and secrets are credentials: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("kind", &self.kind).finish()
    }
}

#[derive(sqlx::FromRow)]
struct JobRow {
    alert_id: String,
    channel_id: Uuid,
    transition: String,
    attempts: i32,
    claimed_at: DateTime<Utc>,
    first_attempt_at: DateTime<Utc>,
    org_id: String,
    source: String,
    source_id: Option<String>,
    kind: String,
    scope_key: String,
    severity: String,
    period: String,
    threshold: f64,
    value: f64,
    message: String,
    details: serde_json::Value,
    channels: Vec<String>,
    created_at: DateTime<Utc>,
    channel_kind: Option<String>,
    url: Option<String>,
    secret: Option<String>,
}

/// Claim up to `$2` deliveries that are due (never attempted, or their
/// `next_attempt_at` has come), not held by a live claim (none, or older
/// than `$1` seconds: its holder died), neither delivered nor dead-lettered
/// — fairly:
///
/// - at most `room` more per channel (`$3`/`$4`, else `$5`) and per org
///   (`$6`/`$7`, else `$8`), what this instance has in flight already
///   subtracted by the caller (an open circuit breaker: room 0);
/// - round robin over orgs: every org's first due row before any org's
///   second, oldest due first within an org.
///
/// The window functions rank the candidates without locking them (Postgres
/// allows no `FOR UPDATE` with windows); the chosen rows are then locked
/// with `SKIP LOCKED` and re-checked, so a row a peer claimed meanwhile is
/// skipped, never claimed twice.
const CLAIM: &str = "
WITH due AS (
    SELECT d.alert_id, d.channel_id, d.transition, a.org_id,
           COALESCE(d.next_attempt_at, '-infinity') AS due_at
    FROM alert_deliveries d
    JOIN alerts a ON a.alert_id = d.alert_id
    WHERE d.delivered_at IS NULL AND d.dead_lettered_at IS NULL
      AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now())
      AND (d.claimed_at IS NULL OR d.claimed_at < now() - make_interval(secs => $1))),
by_channel AS (
    SELECT due.*, row_number() OVER (
        PARTITION BY channel_id ORDER BY due_at, alert_id, transition) AS n
    FROM due),
channel_ok AS (
    SELECT b.* FROM by_channel b
    LEFT JOIN unnest($3::uuid[], $4::int[]) AS c(id, room) ON c.id = b.channel_id
    WHERE b.n <= COALESCE(c.room, $5)),
by_org AS (
    SELECT channel_ok.*, row_number() OVER (
        PARTITION BY org_id ORDER BY due_at, alert_id, channel_id, transition) AS m
    FROM channel_ok),
fair AS (
    SELECT b.alert_id, b.channel_id, b.transition FROM by_org b
    LEFT JOIN unnest($6::text[], $7::int[]) AS o(id, room) ON o.id = b.org_id
    WHERE b.m <= COALESCE(o.room, $8)
    ORDER BY b.m, b.due_at
    LIMIT $2),
picked AS (
    SELECT d.alert_id, d.channel_id, d.transition
    FROM alert_deliveries d
    JOIN fair f ON f.alert_id = d.alert_id AND f.channel_id = d.channel_id
               AND f.transition = d.transition
    WHERE d.delivered_at IS NULL AND d.dead_lettered_at IS NULL
      AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= now())
      AND (d.claimed_at IS NULL OR d.claimed_at < now() - make_interval(secs => $1))
    FOR UPDATE OF d SKIP LOCKED),
claimed AS (
    UPDATE alert_deliveries d SET claimed_at = clock_timestamp(),
        first_attempt_at = COALESCE(d.first_attempt_at, clock_timestamp())
    FROM picked p
    WHERE d.alert_id = p.alert_id AND d.channel_id = p.channel_id AND d.transition = p.transition
    RETURNING d.alert_id, d.channel_id, d.transition, d.attempts, d.claimed_at,
              d.first_attempt_at)
SELECT c.alert_id, c.channel_id, c.transition, c.attempts, c.claimed_at, c.first_attempt_at,
       a.org_id, a.source, a.source_id::text AS source_id, a.kind, a.scope_key, a.severity,
       a.period, a.threshold, a.value, a.message, a.details, a.channels::text[] AS channels,
       a.created_at, ch.kind AS channel_kind, ch.url, ch.secret
FROM claimed c
JOIN alerts a ON a.alert_id = c.alert_id
LEFT JOIN notification_channels ch ON ch.id = c.channel_id";

/// How many more deliveries may be claimed: in all, and per channel and
/// per org (those listed; the others get the defaults).
#[derive(Debug, Default, Clone)]
pub(crate) struct Room {
    pub(crate) total: i64,
    pub(crate) channels: Vec<(Uuid, i32)>,
    pub(crate) channel_default: i32,
    pub(crate) orgs: Vec<(String, i32)>,
    pub(crate) org_default: i32,
}

pub(crate) async fn claim(
    pool: &PgPool,
    keys: &Keys,
    claim_timeout_secs: f64,
    room: &Room,
) -> Result<Vec<Job>, sqlx::Error> {
    let (channel_ids, channel_room): (Vec<Uuid>, Vec<i32>) = room.channels.iter().cloned().unzip();
    let (org_ids, org_room): (Vec<String>, Vec<i32>) = room.orgs.iter().cloned().unzip();
    let rows: Vec<JobRow> = sqlx::query_as(CLAIM)
        .bind(claim_timeout_secs)
        .bind(room.total)
        .bind(channel_ids)
        .bind(channel_room)
        .bind(room.channel_default)
        .bind(org_ids)
        .bind(org_room)
        .bind(room.org_default)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| job_from_row(keys, r)).collect())
}

fn job_from_row(keys: &Keys, r: JobRow) -> Job {
    let transition = if r.transition == "resolved" {
        Transition::Resolved
    } else {
        Transition::Firing
    };
    // The URL and secret are stored sealed (runtime::secrets).
    let mut unreadable = None;
    let channel = match (r.channel_kind, r.url) {
        (Some(kind), Some(url)) => {
            let url = keys.open(secrets::CHANNEL_URL, &url);
            let secret = r
                .secret
                .map(|s| keys.open(secrets::CHANNEL_SECRET, &s))
                .transpose();
            match (url, secret) {
                (Ok(url), Ok(secret)) => Some(Channel { kind, url, secret }),
                (Err(e), _) | (_, Err(e)) => {
                    unreadable = Some(e.to_string());
                    Some(Channel {
                        kind,
                        url: String::new(),
                        secret: None,
                    })
                }
            }
        }
        _ => None,
    };
    Job {
        alert: Alert {
            alert_id: r.alert_id,
            org_id: r.org_id,
            source: r.source,
            source_id: r.source_id,
            kind: r.kind,
            scope_key: r.scope_key,
            transition,
            severity: r.severity,
            period: r.period,
            threshold: r.threshold,
            value: r.value,
            message: r.message,
            details: r.details,
            channels: r.channels,
            occurred_at: r.created_at,
        },
        transition,
        channel_id: r.channel_id,
        channel,
        attempts: r.attempts,
        claimed_at: r.claimed_at,
        first_attempt_at: r.first_attempt_at,
        unreadable,
    }
}

/// How a claimed delivery ended (or paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Posted; also sets `alerts.notified_at` if not set yet.
    Delivered,
    /// Given up: `dead_lettered_at`.
    DeadLettered,
    /// A failed attempt, more to come: the claim is given back and the row
    /// is due again after the delay given to [`finish`].
    Retry,
    /// Shutting down: give the claim back so a peer picks it up at once.
    Released,
}

const DELIVERED: &str = "
WITH d AS (
    UPDATE alert_deliveries SET delivered_at = now(), attempts = $4, last_error = NULL
    WHERE alert_id = $1 AND channel_id = $2 AND transition = $3 AND claimed_at = $5
      AND delivered_at IS NULL
    RETURNING alert_id)
UPDATE alerts SET notified_at = COALESCE(notified_at, now())
WHERE alert_id IN (SELECT alert_id FROM d)";

const DEAD_LETTERED: &str = "
UPDATE alert_deliveries SET dead_lettered_at = now(), attempts = $4, last_error = $6
WHERE alert_id = $1 AND channel_id = $2 AND transition = $3 AND claimed_at = $5";

const RETRY: &str = "
UPDATE alert_deliveries SET claimed_at = NULL, attempts = $4, last_error = $6,
    next_attempt_at = clock_timestamp() + make_interval(secs => $7)
WHERE alert_id = $1 AND channel_id = $2 AND transition = $3 AND claimed_at = $5";

const RELEASED: &str = "
UPDATE alert_deliveries SET claimed_at = NULL, attempts = $4, last_error = $6
WHERE alert_id = $1 AND channel_id = $2 AND transition = $3 AND claimed_at = $5";

/// An `audit_log` row to write with an outcome.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    pub(crate) org_id: String,
    pub(crate) actor: &'static str,
    pub(crate) action: &'static str,
    pub(crate) detail: serde_json::Value,
}

const AUDIT: &str = "INSERT INTO audit_log (org_id, actor, action, detail) VALUES ($1, $2, $3, $4)";

/// What to record with an outcome.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Note<'a> {
    pub(crate) last_error: Option<&'a str>,
    /// [`Outcome::Retry`]: due again after this long.
    pub(crate) retry_in: std::time::Duration,
    /// Written in the same transaction, only when the outcome is recorded.
    pub(crate) audit: Option<&'a Audit>,
}

/// Record an outcome while the claim is ours; false if the claim was lost
/// (expired and taken by a peer), in which case nothing changes.
pub(crate) async fn finish(
    pool: &PgPool,
    job: &Job,
    outcome: Outcome,
    attempts: i32,
    note: Note<'_>,
) -> Result<bool, sqlx::Error> {
    let Note {
        last_error,
        retry_in,
        audit,
    } = note;
    let sql = match outcome {
        Outcome::Delivered => DELIVERED,
        Outcome::DeadLettered => DEAD_LETTERED,
        Outcome::Retry => RETRY,
        Outcome::Released => RELEASED,
    };
    let mut q = sqlx::query(sql)
        .bind(&job.alert.alert_id)
        .bind(job.channel_id)
        .bind(job.transition.as_str())
        .bind(attempts)
        .bind(job.claimed_at);
    if outcome != Outcome::Delivered {
        q = q.bind(last_error);
    }
    if outcome == Outcome::Retry {
        q = q.bind(retry_in.as_secs_f64());
    }
    // DELIVERED reports the alerts row it touched (1), or 0 if the claim was lost.
    let Some(a) = audit else {
        return Ok(q.execute(pool).await?.rows_affected() > 0);
    };
    let mut tx = pool.begin().await?;
    let done = q.execute(&mut *tx).await?.rows_affected() > 0;
    if done {
        sqlx::query(AUDIT)
            .bind(&a.org_id)
            .bind(a.actor)
            .bind(a.action)
            .bind(a.detail.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(done)
}

/// Postgres errors that retrying cannot fix: the record itself is at fault
/// (integrity constraint violation 23xxx, invalid data 22xxx).
pub(crate) fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("23") || c.starts_with("22")),
        _ => false,
    }
}
