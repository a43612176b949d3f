//! Plain mode: the deriver. The writer appends a batch's events, its cost
//! corrections and its offsets; the deriver folds what was written into
//! everything derived from events — the aggregate levels, the per-tag
//! levels, runs, agents and the coding-agent hierarchy — and then applies
//! the corrections, in chunks of whole writer transactions, each chunk in
//! one transaction with `derive_state` (see
//! `agentops_runtime::storage::deferred`). A crash anywhere leaves either
//! the chunk derived and recorded, or neither: every event is derived
//! exactly once, whatever the batching.
//!
//! Why: upserting a dozen levels, runs and agents per batch of 2,000 events
//! costs about three times the events' own insert, and each row a batch
//! touches is rewritten once per batch. A chunk of several batches touches
//! each row once, and the writer's transaction is left with the events.

use std::time::Duration;

use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::storage::{self, Mode, PROJECTION_LOCK};
use agentops_schemas::AgentEvent;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection};

use crate::corrections::{self, Wanted};
use crate::rows::ts;

/// One deriver at a time (advisory lock key); the others skip their turn.
pub const DERIVE_LOCK: i64 = 0x4167_4f70_0003;

/// The link from a process's writer to its deriver (plain mode): told
/// after each committed batch (the deriver then looks at once), and holding
/// the events of the writer's committed transactions by transaction id, so
/// that the deriver need not read them back from `events`. Only what a
/// writer knows it stored whole goes in (a batch copied without a
/// duplicate), at most `cap` events at a time; whatever is not here (a
/// batch with duplicates, a backlog past the cap, another process's
/// writes, a restart) the deriver reads back. Correct either way: a
/// transaction's events are those it committed, and a transaction is
/// derived once, from here or from the table.
pub struct Handoff {
    held: std::sync::Mutex<Held>,
    cap: usize,
    written: tokio::sync::Notify,
}

#[derive(Default)]
struct Held {
    by_txid: std::collections::HashMap<i64, Vec<AgentEvent>>,
    events: usize,
}

impl Handoff {
    /// A hand-over holding at most `cap` events.
    pub fn new(cap: usize) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            held: std::sync::Mutex::new(Held::default()),
            cap,
            written: tokio::sync::Notify::new(),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // A panic while holding the lock leaves a consistent map.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `n` more events fit (the writer asks before copying them).
    pub(crate) fn has_room(&self, n: usize) -> bool {
        self.held().events + n <= self.cap
    }

    /// The events transaction `txid` committed (the writer, after its
    /// commit); dropped past the cap (they are read back instead).
    pub(crate) fn put(&self, txid: i64, events: Vec<AgentEvent>) {
        let mut h = self.held();
        if h.events + events.len() > self.cap {
            return;
        }
        h.events += events.len();
        if let Some(old) = h.by_txid.insert(txid, events) {
            h.events -= old.len();
        }
    }

    /// Take the events of those of `txids` held here, in `txids`' order;
    /// the others are returned to be read back.
    fn take(&self, txids: &[i64]) -> (Vec<AgentEvent>, Vec<i64>) {
        let mut h = self.held();
        let (mut events, mut missing) = (Vec::new(), Vec::new());
        for t in txids {
            match h.by_txid.remove(t) {
                Some(e) => {
                    h.events -= e.len();
                    events.extend(e);
                }
                None => missing.push(*t),
            }
        }
        (events, missing)
    }

    /// Drop what is held for transactions before `oldest_pending`: none is
    /// waiting any more (another process's deriver had them, or this one
    /// read them back before they were handed over), or it committed after
    /// the list was read and is read back when its turn comes.
    fn forget_before(&self, oldest_pending: i64) {
        let mut h = self.held();
        let before: Vec<i64> = h
            .by_txid
            .keys()
            .copied()
            .filter(|t| *t < oldest_pending)
            .collect();
        for t in before {
            if let Some(e) = h.by_txid.remove(&t) {
                h.events -= e.len();
            }
        }
    }

    /// A batch was committed (handed over or not).
    pub(crate) fn written(&self) {
        self.written.notify_one();
    }

    /// Events held now.
    pub fn held_events(&self) -> usize {
        self.held().events
    }
}

/// What one pass derived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    /// Events folded into the derived tables.
    pub events: usize,
    /// Of those, how many the writer handed over in process ([`Handoff`])
    /// rather than read back from `events`.
    pub handed_over: usize,
    /// Aggregate level rows the events opened (buckets later than any their
    /// org had in the level), copied straight in rather than upserted.
    pub level_rows_copied: usize,
    /// Runs the events started (not stored yet), copied straight in rather
    /// than upserted.
    pub runs_copied: usize,
    /// Writer transactions those came from (and corrections-only ones).
    pub transactions: usize,
    /// Events whose cost a correction changed.
    pub corrected: usize,
    /// Whether every transaction the pass saw was derived (false: the chunk
    /// was full, or another deriver held the turn).
    pub caught_up: bool,
    /// The earliest gateway acknowledgement among the derived events (µs
    /// since the epoch): how far the derived tables trail the gateway.
    pub oldest_ingested: Option<i64>,
}

impl Derived {
    pub(crate) fn add(&mut self, other: Derived) {
        self.events += other.events;
        self.handed_over += other.handed_over;
        self.level_rows_copied += other.level_rows_copied;
        self.runs_copied += other.runs_copied;
        self.transactions += other.transactions;
        self.corrected += other.corrected;
        self.caught_up = other.caught_up;
        self.oldest_ingested = match (self.oldest_ingested, other.oldest_ingested) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// The transactions waiting for the deriver, oldest first, at most `$1` of
/// them: those whose events, corrections or offsets are pending, each with
/// its events' count (the `events_txid` index, one probe per transaction).
/// Every pending table holds only what is not derived yet, so this costs
/// what the backlog holds, not what was written since any point in time.
const PENDING_TRANSACTIONS: &str = "
WITH t AS (
    SELECT txid FROM pending_events
    UNION SELECT txid FROM pending_corrections
    UNION SELECT txid FROM pending_offsets
    ORDER BY txid LIMIT $1)
SELECT t.txid, (SELECT count(*) FROM events e WHERE e.txid = t.txid)::int8 AS n
FROM t ORDER BY t.txid";

/// Every column of the chosen transactions' events.
const CHOSEN_EVENTS: &str = "
SELECT event_id, org_id, ts, agent_id, workflow_id, run_id, type, status, latency_ms,
       provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, cost_usd, cost_source, tool_name, error_type, error_message,
       trace_id, span_id, attributes, ingested_at, project_id, machine_id, workspace_id,
       session_id
FROM events WHERE txid = ANY($1)";

/// An event row as stored.
#[derive(sqlx::FromRow)]
struct Row {
    event_id: uuid::Uuid,
    org_id: String,
    ts: DateTime<Utc>,
    agent_id: String,
    workflow_id: Option<String>,
    run_id: Option<String>,
    #[sqlx(rename = "type")]
    event_type: String,
    status: Option<String>,
    latency_ms: Option<i64>,
    provider: Option<String>,
    model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    cost_usd: Option<f64>,
    cost_source: Option<String>,
    tool_name: Option<String>,
    error_type: Option<String>,
    error_message: Option<String>,
    trace_id: Option<String>,
    span_id: Option<String>,
    attributes: Json<std::collections::HashMap<String, String>>,
    ingested_at: Option<DateTime<Utc>>,
    project_id: Option<String>,
    machine_id: Option<String>,
    workspace_id: Option<String>,
    session_id: Option<String>,
}

impl From<Row> for AgentEvent {
    fn from(r: Row) -> Self {
        AgentEvent {
            event_id: r.event_id.to_string(),
            org_id: r.org_id,
            timestamp: r.ts.timestamp_micros(),
            agent_id: r.agent_id,
            workflow_id: r.workflow_id,
            run_id: r.run_id,
            event_type: r.event_type,
            status: r.status,
            latency_ms: r.latency_ms,
            provider: r.provider,
            model: r.model,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cache_write_tokens: r.cache_write_tokens,
            reasoning_tokens: r.reasoning_tokens,
            cost_usd: r.cost_usd,
            cost_source: r.cost_source,
            tool_name: r.tool_name,
            error_type: r.error_type,
            error_message: r.error_message,
            trace_id: r.trace_id,
            span_id: r.span_id,
            attributes: r.attributes.0,
            ingested_at: r.ingested_at.map(|t| t.timestamp_micros()),
            project_id: r.project_id,
            machine_id: r.machine_id,
            workspace_id: r.workspace_id,
            session_id: r.session_id,
        }
    }
}

/// The transactions to derive now: the oldest first, whole, until
/// `max_events` (at least one transaction).
fn choose(pending: &[(i64, i64)], max_events: usize) -> Vec<i64> {
    let mut chosen = Vec::new();
    let mut events = 0usize;
    for &(txid, n) in pending {
        if !chosen.is_empty() && events + n as usize > max_events {
            break;
        }
        chosen.push(txid);
        events += n as usize;
    }
    chosen
}

/// Derive one chunk (plain mode; nothing to do in TimescaleDB mode).
pub(crate) async fn derive_once(
    conn: &mut PgConnection,
    mode: Mode,
    tag_keys: &[String],
    max_events: usize,
    handoff: Option<&Handoff>,
) -> Result<Derived, sqlx::Error> {
    if mode != Mode::Postgres {
        return Ok(Derived {
            caught_up: true,
            ..Derived::default()
        });
    }
    let mut tx = conn.begin().await?;
    // A rebuild holds the projection lock exclusively.
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(PROJECTION_LOCK)
        .execute(&mut *tx)
        .await?;
    let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(DERIVE_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !mine {
        return Ok(Derived::default());
    }
    // A transaction commits its events and its `pending_events` row
    // together: what is listed here is whole, whatever order transactions
    // commit in. One more than the chunk can hold tells whether it is all.
    let limit = max_events.saturating_add(1).min(i64::MAX as usize) as i64;
    let pending: Vec<(i64, i64)> = sqlx::query_as(PENDING_TRANSACTIONS)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    let chosen = choose(&pending, max_events);
    let caught_up = chosen.len() == pending.len() && (pending.len() as i64) < limit;
    let mut result = Derived {
        transactions: chosen.len(),
        caught_up,
        ..Derived::default()
    };
    if let (Some(h), Some(&(oldest, _))) = (handoff, pending.first()) {
        h.forget_before(oldest);
    }
    if chosen.is_empty() {
        return Ok(result);
    }
    // What the writer handed over, then the rest read back. (Taken out of
    // the hand-over even if this pass fails: the retry reads them back.)
    let (mut events, missing) = match handoff {
        Some(h) => h.take(&chosen),
        None => (Vec::new(), chosen.clone()),
    };
    result.handed_over = events.len();
    if !missing.is_empty() {
        events.extend(
            sqlx::query_as::<_, Row>(CHOSEN_EVENTS)
                .bind(&missing)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(AgentEvent::from),
        );
    }
    result.events = events.len();
    result.oldest_ingested = events.iter().filter_map(|e| e.ingested_at).min();
    if !events.is_empty() {
        // Partitions of the levels for these days (the writer made them;
        // a rebuild or a retention drop may have raced it).
        let mut days: Vec<NaiveDate> = events
            .iter()
            .map(|e| ts(e.timestamp).date_naive())
            .collect();
        days.sort();
        days.dedup();
        storage::ensure_partitions_of(&mut tx, storage::partitioned_in(mode), &days)
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        let refs: Vec<&AgentEvent> = events.iter().collect();
        (result.level_rows_copied, result.runs_copied) =
            crate::store::derive(&mut tx, mode, &refs, tag_keys).await?;
    }
    // Corrections after the events of their own and earlier transactions
    // (a correction follows its event in its partition).
    /// A waiting correction and its place in the log (txid, seq).
    type Pending = (uuid::Uuid, DateTime<Utc>, String, Option<f64>, i64, i64);
    let mut waiting: Vec<Pending> = sqlx::query_as(
        "DELETE FROM pending_corrections WHERE txid = ANY($1)
             RETURNING event_id, ts, org_id, cost_usd, txid, seq",
    )
    .bind(&chosen)
    .fetch_all(&mut *tx)
    .await?;
    waiting.sort_by_key(|p| (p.4, p.5));
    let wanted: Vec<Wanted> = waiting
        .into_iter()
        .map(|(id, t, org, cost, _, _)| (id, t, org, cost))
        .collect();
    result.corrected =
        corrections::apply_wanted(&mut tx, mode, corrections::last_of(wanted), tag_keys).await?;
    // What is derived, per partition (the processors' budget split).
    sqlx::query(
        "WITH done AS (DELETE FROM pending_offsets WHERE txid = ANY($1)
                       RETURNING consumer_group, topic, partition, next_offset)
         INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, updated_at)
         SELECT consumer_group || '.derived', topic, partition, max(next_offset), now()
         FROM done GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
         ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
             next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),
             updated_at = now()",
    )
    .bind(&chosen)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH done AS (DELETE FROM pending_events WHERE txid = ANY($1))
         UPDATE derive_state SET derived = derived + $2, updated_at = now() WHERE id = 1",
    )
    .bind(&chosen)
    .bind(result.events as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(result)
}

/// Derive until nothing written before the call is left (the rebuild, the
/// benchmarks and the tests that write through the [`crate::Writer`]).
pub(crate) async fn settle(
    conn: &mut PgConnection,
    mode: Mode,
    tag_keys: &[String],
    max_events: usize,
    handoff: Option<&Handoff>,
) -> Result<Derived, sqlx::Error> {
    let mut total = Derived::default();
    loop {
        let pass = derive_once(conn, mode, tag_keys, max_events, handoff).await?;
        let idle = pass.transactions == 0;
        total.add(pass);
        if pass.caught_up {
            return Ok(total);
        }
        if idle {
            // Another deriver has the turn.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The deriver's loop (plain mode): a chunk whenever there is something to
/// derive, else a wait for the writer's next commit (`written`), at most
/// `interval`. Errors are logged and retried: the
/// chunk is derived whole or not at all.
pub(crate) async fn run(
    pool: sqlx::PgPool,
    mode: Mode,
    tag_keys: Vec<String>,
    interval: Duration,
    max_events: usize,
    handoff: std::sync::Arc<Handoff>,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    if mode != Mode::Postgres {
        shutdown.cancelled().await;
        return Ok(());
    }
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let pass = async {
            let mut conn = pool.acquire().await?;
            derive_once(&mut conn, mode, &tag_keys, max_events, Some(&handoff)).await
        }
        .await;
        let pause = match pass {
            Ok(d) => {
                failures = 0;
                record(&d);
                if d.caught_up || d.transactions == 0 {
                    interval
                } else {
                    Duration::ZERO
                }
            }
            Err(e) => {
                failures += 1;
                metrics::counter!("agentops_projection_derive_failures_total").increment(1);
                tracing::warn!(error = %e, failures, "deriving failed; retrying");
                interval * failures.min(20)
            }
        };
        if !pause.is_zero() {
            // Idle: until the writer commits a batch (at once) or `pause`;
            // after failures, `pause` only.
            let woken = async {
                if failures == 0 {
                    handoff.written.notified().await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = woken => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
    Ok(())
}

fn record(d: &Derived) {
    if let Some(oldest) = d.oldest_ingested {
        // From the gateway's acknowledgement to readable in the levels.
        let delay = (chrono::Utc::now().timestamp_micros() - oldest).max(0) as f64 / 1e6;
        metrics::gauge!("agentops_projection_derived_freshness_seconds").set(delay);
    }
    if d.events > 0 {
        metrics::counter!("agentops_projection_derived_events_total").increment(d.events as u64);
        metrics::counter!("agentops_projection_derived_handed_over_events_total")
            .increment(d.handed_over as u64);
    }
    if d.corrected > 0 {
        metrics::counter!("agentops_projection_corrected_events_total")
            .increment(d.corrected as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_take_whole_transactions_oldest_first() {
        let pending = [(10, 2000), (11, 2000), (12, 0), (13, 2000)];
        // Room for two (and the empty one after them).
        assert_eq!(choose(&pending, 4000), vec![10, 11, 12]);
        // A transaction bigger than the chunk still goes whole.
        assert_eq!(choose(&pending, 100), vec![10]);
        assert_eq!(choose(&pending, 1_000_000), vec![10, 11, 12, 13]);
        assert_eq!(choose(&[], 10), Vec::<i64>::new());
    }
}
