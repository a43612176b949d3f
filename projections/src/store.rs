//! One transaction per batch: events, aggregates (plain mode), runs, agents,
//! offsets.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

use agentops_runtime::storage::{self, ColumnKind, Mode, LEVELS, PROJECTION_LOCK};
use agentops_schemas::{correction, histogram, AgentEvent, EventType};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Connection, PgConnection};

use crate::rows::{self, ts};

/// What one batch changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Events that were new.
    pub inserted: usize,
    /// Events already present (client or producer retries, replays).
    pub duplicates: usize,
    /// Events whose cost a cost correction changed (corrections are not events).
    pub corrected: usize,
}

const INSERT_EVENTS: &str = "
INSERT INTO events (event_id, org_id, ts, agent_id, workflow_id, run_id, type, status, latency_ms,
    lat_bucket, provider, model, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, cost_usd, cost_source, tool_name, error_type,
    error_message, trace_id, span_id, attributes, ingested_at)
SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::int8[], $10::int2[], $11::text[], $12::text[], $13::int8[],
    $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::float8[], $19::text[], $20::text[],
    $21::text[], $22::text[], $23::text[], $24::text[], $25::jsonb[], $26::timestamptz[])
ON CONFLICT (event_id, org_id, ts) DO NOTHING";

const UPSERT_OFFSETS: &str = "
INSERT INTO consumer_offsets (consumer_group, topic, partition, next_offset, updated_at)
SELECT $1, topic, partition, next_offset, now()
FROM UNNEST($2::text[], $3::int4[], $4::int8[]) AS t(topic, partition, next_offset)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
    next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),
    updated_at = now()";

/// TimescaleDB mode: the continuous aggregates follow `events` on their own.
fn timescale_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| format!("{INSERT_EVENTS} RETURNING event_id, org_id, ts"))
}

/// Plain mode: one statement inserts the events and folds the ones that were
/// new into every aggregate level, with the same column definitions the
/// continuous aggregates use.
fn postgres_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols = storage::aggregates();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        let exprs: Vec<&str> = cols.iter().map(|c| c.from_events.as_str()).collect();
        let updates: Vec<String> = cols.iter().map(|c| c.merge_sql()).collect();
        debug_assert!(cols.iter().any(|c| c.kind == ColumnKind::Float));
        let mut sql = format!("WITH ins AS ({INSERT_EVENTS} RETURNING *)");
        for (i, l) in LEVELS.iter().enumerate() {
            let dims = l.dims_list("");
            let _ = write!(
                sql,
                ",
a{i} AS (
    INSERT INTO {name} AS a (org_id, bucket{dims}, {names})
    SELECT org_id, date_bin(INTERVAL '{width}', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b{dims},
        {exprs}
    FROM ins
    GROUP BY org_id, b{dims}
    ORDER BY org_id, b{dims}
    ON CONFLICT ON CONSTRAINT {name}_key DO UPDATE SET {updates})",
                name = l.name,
                width = l.width,
                names = names.join(", "),
                exprs = exprs.join(", "),
                updates = updates.join(", "),
            );
        }
        sql.push_str("\nSELECT event_id, org_id, ts FROM ins");
        sql
    })
}

/// Histogram bucket of a finished run's latency (the aggregates' `lat_bNN`).
fn lat_bucket(e: &AgentEvent) -> Option<i16> {
    match e.kind() {
        Some(EventType::RunCompleted | EventType::RunFailed) => {
            e.latency_ms.map(|l| histogram::bucket_of(l) as i16)
        }
        _ => None,
    }
}

/// Stored next offsets of a consumer group for the given topic:
/// `(partition, next offset)`.
pub(crate) async fn load_offsets(
    conn: &mut PgConnection,
    group: &str,
    topic: &str,
) -> Result<Vec<(i32, i64)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Stored {
        partition: i32,
        next_offset: i64,
    }
    let rows: Vec<Stored> = sqlx::query_as(
        "SELECT partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.partition, r.next_offset))
        .collect())
}

/// Writes batches for one consumer group in one storage mode.
pub struct Writer {
    mode: Mode,
    group: String,
    /// Plain mode: days whose `events` partition is known to exist.
    partitions: HashSet<NaiveDate>,
}

impl Writer {
    pub fn new(mode: Mode, group: impl Into<String>) -> Self {
        Self {
            mode,
            group: group.into(),
            partitions: HashSet::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Apply a batch atomically: the new events, everything derived from
    /// them, and `offsets` (topic, partition, next offset). Events already
    /// stored are skipped, so a replayed batch changes nothing but offsets.
    pub async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[AgentEvent],
        offsets: &[(String, i32, i64)],
    ) -> agentops_runtime::Result<Applied> {
        // Cost corrections are applied after the batch's events, never stored as events.
        let (corrections, events): (Vec<&AgentEvent>, Vec<&AgentEvent>) =
            events.iter().partition(|e| correction::is_correction(e));
        // Dedupe inside the batch first (the same event twice in one
        // statement), on the table's key.
        let mut seen = HashSet::with_capacity(events.len());
        let batch: Vec<&AgentEvent> = events
            .iter()
            .copied()
            .filter(|e| {
                uuid::Uuid::parse_str(&e.event_id).is_ok()
                    && seen.insert((e.event_id.as_str(), e.org_id.as_str(), e.timestamp))
            })
            .collect();
        if self.mode == Mode::Postgres {
            let mut days: Vec<NaiveDate> = batch
                .iter()
                .map(|e| ts(e.timestamp).date_naive())
                .filter(|d| !self.partitions.contains(d))
                .collect();
            days.sort();
            days.dedup();
            if !days.is_empty() {
                storage::ensure_partitions(conn, &days).await?;
                self.partitions.extend(days);
            }
        }
        let result = self.apply_tx(conn, batch, &corrections, offsets).await;
        if result.is_err() {
            // A rebuild may have dropped partitions under us: check them again.
            self.partitions.clear();
        }
        let (inserted, corrected) = result?;
        Ok(Applied {
            inserted,
            duplicates: events.len() - inserted,
            corrected,
        })
    }

    async fn apply_tx(
        &self,
        conn: &mut PgConnection,
        batch: Vec<&AgentEvent>,
        corrections: &[&AgentEvent],
        offsets: &[(String, i32, i64)],
    ) -> Result<(usize, usize), sqlx::Error> {
        let mut tx = conn.begin().await?;
        // Shared with other workers; a rebuild holds it exclusively.
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(PROJECTION_LOCK)
            .execute(&mut *tx)
            .await?;
        let inserted: HashSet<Key> = if batch.is_empty() {
            HashSet::new()
        } else {
            let sql = match self.mode {
                Mode::Timescaledb => timescale_insert_sql(),
                Mode::Postgres => postgres_insert_sql(),
            };
            insert_events(&mut tx, sql, &batch).await?
        };
        let new: Vec<&AgentEvent> = batch
            .into_iter()
            .filter(|e| {
                uuid::Uuid::parse_str(&e.event_id)
                    .is_ok_and(|id| inserted.contains(&(id, e.org_id.clone(), e.timestamp)))
            })
            .collect();
        if !new.is_empty() {
            rows::upsert_runs(&mut tx, &new).await?;
            rows::upsert_agents(&mut tx, &new).await?;
        }
        let corrected = crate::corrections::apply(&mut tx, self.mode, corrections).await?;
        if !offsets.is_empty() {
            sqlx::query(UPSERT_OFFSETS)
                .bind(&self.group)
                .bind(offsets.iter().map(|o| o.0.clone()).collect::<Vec<_>>())
                .bind(offsets.iter().map(|o| o.1).collect::<Vec<_>>())
                .bind(offsets.iter().map(|o| o.2).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((new.len(), corrected))
    }
}

/// The events table's key: (event_id, org_id, ts in µs).
type Key = (uuid::Uuid, String, i64);

async fn insert_events(
    tx: &mut PgConnection,
    sql: &str,
    batch: &[&AgentEvent],
) -> Result<HashSet<Key>, sqlx::Error> {
    macro_rules! col {
        ($f:expr) => {
            batch.iter().map($f).collect::<Vec<_>>()
        };
    }
    /// The key of an inserted row (`RETURNING event_id, org_id, ts`).
    #[derive(sqlx::FromRow)]
    struct Inserted {
        event_id: uuid::Uuid,
        org_id: String,
        ts: DateTime<Utc>,
    }
    let rows: Vec<Inserted> = sqlx::query_as(sql)
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
        .bind(col!(|e| lat_bucket(e)))
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
    Ok(rows
        .into_iter()
        .map(|r| (r.event_id, r.org_id, r.ts.timestamp_micros()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_mode_statement_feeds_every_level() {
        let sql = postgres_insert_sql();
        for l in LEVELS {
            let name = l.name;
            assert!(sql.contains(&format!("INSERT INTO {name} AS a")), "{name}");
            assert!(sql.contains(&format!("ON CONFLICT ON CONSTRAINT {name}_key")));
        }
        assert!(sql.contains("INSERT INTO agg_org_1h AS a (org_id, bucket, events,"));
        assert!(sql.contains(
            "lat_b79 = COALESCE(a.lat_b79 + EXCLUDED.lat_b79, a.lat_b79, EXCLUDED.lat_b79)"
        ));
        assert!(sql.contains("events = a.events + EXCLUDED.events"));
        assert!(sql.ends_with("SELECT event_id, org_id, ts FROM ins"));
    }

    #[test]
    fn only_finished_runs_have_a_latency_bucket() {
        let done = AgentEvent {
            event_type: "run_completed".into(),
            latency_ms: Some(1500),
            ..Default::default()
        };
        assert_eq!(lat_bucket(&done), Some(histogram::bucket_of(1500) as i16));
        let call = AgentEvent {
            event_type: "llm_call".into(),
            latency_ms: Some(1500),
            ..Default::default()
        };
        assert_eq!(lat_bucket(&call), None);
    }
}
