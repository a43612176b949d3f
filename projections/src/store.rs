//! One transaction per batch: events, runs, per-minute aggregates, offsets.

use std::collections::{BTreeMap, HashSet};

use agentops_schemas::{histogram, AgentEvent, EventType};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// What one batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Events that were new.
    pub inserted: usize,
    /// Events already present (client or producer retries, replays).
    pub duplicates: usize,
}

const INSERT_EVENTS: &str = "
INSERT INTO events (event_id, org_id, ts, agent_id, workflow_id, run_id, type, status, latency_ms,
    provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, cost_usd, cost_source, tool_name, error_type, error_message, trace_id,
    span_id, attributes, ingested_at)
SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::int8[], $10::text[], $11::text[], $12::int8[], $13::int8[],
    $14::int8[], $15::int8[], $16::int8[], $17::float8[], $18::text[], $19::text[], $20::text[],
    $21::text[], $22::text[], $23::text[], $24::jsonb[], $25::timestamptz[])
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id";

const UPSERT_RUNS: &str = "
INSERT INTO runs AS r (org_id, run_id, agent_id, workflow_id, status, started_at, ended_at,
    latency_ms, cost_usd, input_tokens, output_tokens, llm_calls, tool_calls, error_type,
    error_message, updated_at)
SELECT org_id, run_id, agent_id, workflow_id, status, started_at, ended_at, latency_ms, cost_usd,
    input_tokens, output_tokens, llm_calls, tool_calls, error_type, error_message, now()
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
    $7::timestamptz[], $8::int8[], $9::float8[], $10::int8[], $11::int8[], $12::int8[],
    $13::int8[], $14::text[], $15::text[])
    AS t(org_id, run_id, agent_id, workflow_id, status, started_at, ended_at, latency_ms, cost_usd,
         input_tokens, output_tokens, llm_calls, tool_calls, error_type, error_message)
ON CONFLICT (org_id, run_id) DO UPDATE SET
    workflow_id = COALESCE(r.workflow_id, EXCLUDED.workflow_id),
    started_at = LEAST(r.started_at, EXCLUDED.started_at),
    status = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                   AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                  THEN EXCLUDED.status ELSE r.status END,
    latency_ms = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                       AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                      THEN COALESCE(EXCLUDED.latency_ms, r.latency_ms) ELSE r.latency_ms END,
    error_type = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                       AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                      THEN EXCLUDED.error_type ELSE r.error_type END,
    error_message = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                          AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                         THEN EXCLUDED.error_message ELSE r.error_message END,
    ended_at = GREATEST(r.ended_at, EXCLUDED.ended_at),
    cost_usd = r.cost_usd + EXCLUDED.cost_usd,
    input_tokens = r.input_tokens + EXCLUDED.input_tokens,
    output_tokens = r.output_tokens + EXCLUDED.output_tokens,
    llm_calls = r.llm_calls + EXCLUDED.llm_calls,
    tool_calls = r.tool_calls + EXCLUDED.tool_calls,
    updated_at = now()";

const UPSERT_AGG_MINUTE: &str = "
INSERT INTO agg_minute AS a (org_id, bucket, agent_id, events, runs_started, runs_completed,
    runs_failed, errors, llm_calls, tool_calls, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, cost_usd, unpriced_calls, latency_hist)
SELECT org_id, bucket, agent_id, events, runs_started, runs_completed, runs_failed, errors,
    llm_calls, tool_calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, cost_usd, unpriced_calls, latency_hist::int8[]
FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
    $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[],
    $14::int8[], $15::int8[], $16::float8[], $17::int8[], $18::text[])
    AS t(org_id, bucket, agent_id, events, runs_started, runs_completed, runs_failed, errors,
         llm_calls, tool_calls, input_tokens, output_tokens, cache_read_tokens,
         cache_write_tokens, reasoning_tokens, cost_usd, unpriced_calls, latency_hist)
ON CONFLICT (org_id, bucket, agent_id) DO UPDATE SET
    events = a.events + EXCLUDED.events,
    runs_started = a.runs_started + EXCLUDED.runs_started,
    runs_completed = a.runs_completed + EXCLUDED.runs_completed,
    runs_failed = a.runs_failed + EXCLUDED.runs_failed,
    errors = a.errors + EXCLUDED.errors,
    llm_calls = a.llm_calls + EXCLUDED.llm_calls,
    tool_calls = a.tool_calls + EXCLUDED.tool_calls,
    input_tokens = a.input_tokens + EXCLUDED.input_tokens,
    output_tokens = a.output_tokens + EXCLUDED.output_tokens,
    cache_read_tokens = a.cache_read_tokens + EXCLUDED.cache_read_tokens,
    cache_write_tokens = a.cache_write_tokens + EXCLUDED.cache_write_tokens,
    reasoning_tokens = a.reasoning_tokens + EXCLUDED.reasoning_tokens,
    cost_usd = a.cost_usd + EXCLUDED.cost_usd,
    unpriced_calls = a.unpriced_calls + EXCLUDED.unpriced_calls,
    latency_hist = ARRAY(SELECT COALESCE(x, 0) + COALESCE(y, 0)
                         FROM unnest(a.latency_hist, EXCLUDED.latency_hist) AS h(x, y))";

const UPSERT_OFFSETS: &str = "
INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, updated_at)
SELECT $1, topic, partition, next_offset, now()
FROM UNNEST($2::text[], $3::int4[], $4::int8[]) AS t(topic, partition, next_offset)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
    next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),
    updated_at = now()";

fn ts(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Stored next offsets of a consumer group for the given topic.
pub(crate) async fn load_offsets(
    pool: &PgPool,
    group: &str,
    topic: &str,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2")
        .bind(group)
        .bind(topic)
        .fetch_all(pool)
        .await
}

/// Apply a batch atomically. `offsets` are (topic, partition, next offset).
pub async fn apply_batch(
    pool: &PgPool,
    group: &str,
    events: &[AgentEvent],
    offsets: &[(String, i32, i64)],
) -> Result<Applied, sqlx::Error> {
    // Dedupe inside the batch first (the same event twice in one statement).
    let mut seen = HashSet::with_capacity(events.len());
    let batch: Vec<&AgentEvent> = events
        .iter()
        .filter(|e| uuid::Uuid::parse_str(&e.event_id).is_ok() && seen.insert(e.event_id.as_str()))
        .collect();

    let mut tx = pool.begin().await?;
    let inserted: HashSet<uuid::Uuid> = if batch.is_empty() {
        HashSet::new()
    } else {
        insert_events(&mut tx, &batch).await?
    };
    let new: Vec<&AgentEvent> = batch
        .into_iter()
        .filter(|e| uuid::Uuid::parse_str(&e.event_id).is_ok_and(|id| inserted.contains(&id)))
        .collect();
    if !new.is_empty() {
        upsert_runs(&mut tx, &new).await?;
        upsert_agg_minute(&mut tx, &new).await?;
    }
    if !offsets.is_empty() {
        sqlx::query(UPSERT_OFFSETS)
            .bind(group)
            .bind(offsets.iter().map(|o| o.0.clone()).collect::<Vec<_>>())
            .bind(offsets.iter().map(|o| o.1).collect::<Vec<_>>())
            .bind(offsets.iter().map(|o| o.2).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Applied {
        inserted: new.len(),
        duplicates: events.len() - new.len(),
    })
}

async fn insert_events(
    tx: &mut sqlx::PgConnection,
    batch: &[&AgentEvent],
) -> Result<HashSet<uuid::Uuid>, sqlx::Error> {
    macro_rules! col {
        ($f:expr) => {
            batch.iter().map($f).collect::<Vec<_>>()
        };
    }
    let rows: Vec<(uuid::Uuid,)> = sqlx::query_as(INSERT_EVENTS)
        .bind(col!(
            |e| uuid::Uuid::parse_str(&e.event_id).unwrap_or_default()
        ))
        .bind(col!(|e| e.org_id.clone()))
        .bind(col!(|e| ts(e.timestamp)))
        .bind(col!(|e| e.agent_id.clone()))
        .bind(col!(|e| e.workflow_id.clone()))
        .bind(col!(|e| e.run_id.clone()))
        .bind(col!(|e| e.event_type.clone()))
        .bind(col!(|e| e.status.clone()))
        .bind(col!(|e| e.latency_ms))
        .bind(col!(|e| e.provider.clone()))
        .bind(col!(|e| e.model.clone()))
        .bind(col!(|e| e.input_tokens))
        .bind(col!(|e| e.output_tokens))
        .bind(col!(|e| e.cache_read_tokens))
        .bind(col!(|e| e.cache_write_tokens))
        .bind(col!(|e| e.reasoning_tokens))
        .bind(col!(|e| e.cost_usd))
        .bind(col!(|e| e.cost_source.clone()))
        .bind(col!(|e| e.tool_name.clone()))
        .bind(col!(|e| e.error_type.clone()))
        .bind(col!(|e| e.error_message.clone()))
        .bind(col!(|e| e.trace_id.clone()))
        .bind(col!(|e| e.span_id.clone()))
        .bind(col!(
            |e| serde_json::to_value(&e.attributes).unwrap_or_default()
        ))
        .bind(col!(|e| e.ingested_at.map(ts)))
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

#[derive(Default)]
struct RunDelta {
    agent_id: String,
    workflow_id: Option<String>,
    status: String,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    latency_ms: Option<i64>,
    cost_usd: f64,
    input_tokens: i64,
    output_tokens: i64,
    llm_calls: i64,
    tool_calls: i64,
    error_type: Option<String>,
    error_message: Option<String>,
}

async fn upsert_runs(tx: &mut sqlx::PgConnection, new: &[&AgentEvent]) -> Result<(), sqlx::Error> {
    // Sorted keys: concurrent workers lock rows in the same order (no deadlocks).
    let mut runs: BTreeMap<(String, String), RunDelta> = BTreeMap::new();
    for e in new {
        let Some(run_id) = &e.run_id else { continue };
        let d = runs
            .entry((e.org_id.clone(), run_id.clone()))
            .or_insert_with(|| RunDelta {
                status: "running".into(),
                ..Default::default()
            });
        d.agent_id.clone_from(&e.agent_id);
        if d.workflow_id.is_none() {
            d.workflow_id.clone_from(&e.workflow_id);
        }
        let t = ts(e.timestamp);
        d.cost_usd += e.cost_usd.unwrap_or(0.0);
        d.input_tokens += e.input_tokens.unwrap_or(0);
        d.output_tokens += e.output_tokens.unwrap_or(0);
        match e.kind() {
            Some(EventType::RunStarted) => {
                d.started_at = Some(d.started_at.map_or(t, |s| s.min(t)));
            }
            // The latest terminal event decides the run's outcome.
            Some(k @ (EventType::RunCompleted | EventType::RunFailed))
                if d.ended_at.is_none_or(|end| t >= end) =>
            {
                d.ended_at = Some(t);
                d.status = if k == EventType::RunFailed {
                    "failed"
                } else {
                    "completed"
                }
                .into();
                d.latency_ms = e.latency_ms;
                d.error_type.clone_from(&e.error_type);
                d.error_message.clone_from(&e.error_message);
            }
            Some(EventType::LlmCall) => d.llm_calls += 1,
            Some(EventType::ToolCall) => d.tool_calls += 1,
            _ => {}
        }
    }
    macro_rules! col {
        ($f:expr) => {
            runs.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query(UPSERT_RUNS)
        .bind(col!(|((o, _), _)| o.clone()))
        .bind(col!(|((_, r), _)| r.clone()))
        .bind(col!(|(_, d)| d.agent_id.clone()))
        .bind(col!(|(_, d)| d.workflow_id.clone()))
        .bind(col!(|(_, d)| d.status.clone()))
        .bind(col!(|(_, d)| d.started_at))
        .bind(col!(|(_, d)| d.ended_at))
        .bind(col!(|(_, d)| d.latency_ms))
        .bind(col!(|(_, d)| d.cost_usd))
        .bind(col!(|(_, d)| d.input_tokens))
        .bind(col!(|(_, d)| d.output_tokens))
        .bind(col!(|(_, d)| d.llm_calls))
        .bind(col!(|(_, d)| d.tool_calls))
        .bind(col!(|(_, d)| d.error_type.clone()))
        .bind(col!(|(_, d)| d.error_message.clone()))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Per-minute counters of a set of events (one org, minute, agent).
#[derive(Default, Debug, Clone, PartialEq)]
pub(crate) struct MinuteAgg {
    pub(crate) events: i64,
    pub(crate) runs_started: i64,
    pub(crate) runs_completed: i64,
    pub(crate) runs_failed: i64,
    pub(crate) errors: i64,
    pub(crate) llm_calls: i64,
    pub(crate) tool_calls: i64,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
    pub(crate) cache_read_tokens: i64,
    pub(crate) cache_write_tokens: i64,
    pub(crate) reasoning_tokens: i64,
    pub(crate) cost_usd: f64,
    pub(crate) unpriced_calls: i64,
    pub(crate) latency_hist: Vec<i64>,
}

impl MinuteAgg {
    pub(crate) fn add(&mut self, e: &AgentEvent) {
        self.latency_hist.resize(histogram::BUCKETS, 0);
        self.events += 1;
        match e.kind() {
            Some(EventType::RunStarted) => self.runs_started += 1,
            Some(EventType::RunCompleted) => self.runs_completed += 1,
            Some(EventType::RunFailed) => self.runs_failed += 1,
            Some(EventType::LlmCall) => self.llm_calls += 1,
            Some(EventType::ToolCall) => self.tool_calls += 1,
            _ => {}
        }
        if matches!(
            e.kind(),
            Some(EventType::RunCompleted | EventType::RunFailed)
        ) {
            if let Some(l) = e.latency_ms {
                self.latency_hist[histogram::bucket_of(l)] += 1;
            }
        }
        if e.is_error() {
            self.errors += 1;
        }
        self.input_tokens += e.input_tokens.unwrap_or(0);
        self.output_tokens += e.output_tokens.unwrap_or(0);
        self.cache_read_tokens += e.cache_read_tokens.unwrap_or(0);
        self.cache_write_tokens += e.cache_write_tokens.unwrap_or(0);
        self.reasoning_tokens += e.reasoning_tokens.unwrap_or(0);
        match e.cost_usd {
            Some(c) => self.cost_usd += c,
            None if e.input_tokens.unwrap_or(0) + e.output_tokens.unwrap_or(0) > 0 => {
                self.unpriced_calls += 1
            }
            None => {}
        }
    }
}

fn minute(us: i64) -> DateTime<Utc> {
    ts(us - us.rem_euclid(60_000_000))
}

async fn upsert_agg_minute(
    tx: &mut sqlx::PgConnection,
    new: &[&AgentEvent],
) -> Result<(), sqlx::Error> {
    let mut aggs: BTreeMap<(String, DateTime<Utc>, String), MinuteAgg> = BTreeMap::new();
    for e in new {
        aggs.entry((e.org_id.clone(), minute(e.timestamp), e.agent_id.clone()))
            .or_default()
            .add(e);
    }
    macro_rules! col {
        ($f:expr) => {
            aggs.iter().map($f).collect::<Vec<_>>()
        };
    }
    let hist_literal = |h: &Vec<i64>| {
        let parts: Vec<String> = h.iter().map(i64::to_string).collect();
        format!("{{{}}}", parts.join(","))
    };
    sqlx::query(UPSERT_AGG_MINUTE)
        .bind(col!(|((o, _, _), _)| o.clone()))
        .bind(col!(|((_, b, _), _)| *b))
        .bind(col!(|((_, _, a), _)| a.clone()))
        .bind(col!(|(_, m)| m.events))
        .bind(col!(|(_, m)| m.runs_started))
        .bind(col!(|(_, m)| m.runs_completed))
        .bind(col!(|(_, m)| m.runs_failed))
        .bind(col!(|(_, m)| m.errors))
        .bind(col!(|(_, m)| m.llm_calls))
        .bind(col!(|(_, m)| m.tool_calls))
        .bind(col!(|(_, m)| m.input_tokens))
        .bind(col!(|(_, m)| m.output_tokens))
        .bind(col!(|(_, m)| m.cache_read_tokens))
        .bind(col!(|(_, m)| m.cache_write_tokens))
        .bind(col!(|(_, m)| m.reasoning_tokens))
        .bind(col!(|(_, m)| m.cost_usd))
        .bind(col!(|(_, m)| m.unpriced_calls))
        .bind(col!(|(_, m)| hist_literal(&m.latency_hist)))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_floors_event_time() {
        let t = 1_790_000_123_456_789;
        let m = minute(t);
        assert_eq!(m.timestamp_micros() % 60_000_000, 0);
        assert!(m.timestamp_micros() <= t && t - m.timestamp_micros() < 60_000_000);
    }

    #[test]
    fn minute_agg_counts() {
        let mut a = MinuteAgg::default();
        let base = AgentEvent {
            run_id: Some("r".into()),
            ..Default::default()
        };
        a.add(&AgentEvent {
            event_type: "run_started".into(),
            ..base.clone()
        });
        a.add(&AgentEvent {
            event_type: "run_failed".into(),
            latency_ms: Some(1500),
            ..base.clone()
        });
        a.add(&AgentEvent {
            event_type: "llm_call".into(),
            input_tokens: Some(5),
            cost_usd: Some(0.5),
            ..base.clone()
        });
        a.add(&AgentEvent {
            event_type: "llm_call".into(),
            input_tokens: Some(5),
            ..base.clone()
        });
        assert_eq!(
            (
                a.events,
                a.runs_started,
                a.runs_failed,
                a.errors,
                a.llm_calls
            ),
            (4, 1, 1, 1, 2)
        );
        assert_eq!(a.unpriced_calls, 1);
        assert_eq!(a.cost_usd, 0.5);
        assert_eq!(a.latency_hist.iter().sum::<i64>(), 1);
        assert_eq!(a.latency_hist[histogram::bucket_of(1500)], 1);
    }
}
