//! The projection relations and the two ways of maintaining them.
//!
//! Relations (same names and columns in both modes; the query API cannot tell
//! the difference):
//! - `events`: every event once, unique on (event_id, ts); daily partitions.
//! - `agg_1m`, `agg_1h`, `agg_1d`: counters per (org, bucket, agent, workflow,
//!   provider, model) with run latency histogram bucket counts `lat_b00..`.
//! - `runs`, `agents`: maintained by the projection workers in both modes.
//!
//! **TimescaleDB mode** (the extension can be created): `events` is a
//! hypertable with daily chunks; the aggregates are hierarchical continuous
//! aggregates (1m on events, 1h on 1m, 1d on 1h) with real-time aggregation,
//! refresh policies covering the late-data window, and retention and
//! compression policies on raw events. Continuous aggregates cannot be
//! created inside a transaction, so every statement here runs on its own, and
//! each is idempotent (`IF NOT EXISTS`, policies removed and re-added).
//!
//! **Plain PostgreSQL mode**: `events` is partitioned by day (the workers
//! create partitions as events arrive and drop those past retention); the
//! aggregates are tables the workers upsert in the same transaction as the
//! events they come from ([`AGGREGATES`] defines each column once for both).
//!
//! The chosen mode is recorded in `storage_settings`; a database set up in
//! one mode stays in it until `projections rebuild --mode ...` recreates it.

use std::fmt::Write as _;
use std::sync::OnceLock;

use agentops_schemas::histogram;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

use crate::{Error, Result};

/// Requested storage mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModeChoice {
    /// TimescaleDB when `CREATE EXTENSION timescaledb` succeeds, else plain PostgreSQL.
    #[default]
    Auto,
    Timescaledb,
    Postgres,
}

/// The storage mode in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Timescaledb,
    Postgres,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Timescaledb => "timescaledb",
            Mode::Postgres => "postgres",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "timescaledb" => Some(Mode::Timescaledb),
            "postgres" => Some(Mode::Postgres),
            _ => None,
        }
    }
}

/// `[database.storage]`: how projections are stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `auto` (default), `timescaledb` or `postgres`.
    pub mode: ModeChoice,
    /// How late an event may arrive and still land in its buckets (hours).
    /// TimescaleDB refresh policies re-materialize this far back. Keep it equal
    /// to the gateway's `max_event_age_secs` (both default to 7 days).
    pub late_window_hours: u32,
    /// Drop raw events older than this (days; 0 keeps them forever). The
    /// aggregates are kept. Must exceed the late-data window by two days.
    pub raw_retention_days: u32,
    /// TimescaleDB: compress raw event chunks older than this (days; 0 = never).
    /// Must exceed the late-data window.
    pub compress_after_days: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            mode: ModeChoice::Auto,
            late_window_hours: 7 * 24,
            raw_retention_days: 30,
            compress_after_days: 8,
        }
    }
}

impl StorageConfig {
    /// Reject settings that would lose late data.
    pub fn validate(&self) -> Result<()> {
        let late_days = self.late_window_hours.div_ceil(24);
        if self.raw_retention_days != 0 && self.raw_retention_days < late_days + 2 {
            return Err(Error::Config(format!(
                "database.storage.raw_retention_days ({}) must be at least the late-data window ({late_days} days) + 2",
                self.raw_retention_days
            )));
        }
        if self.compress_after_days != 0 && self.compress_after_days <= late_days {
            return Err(Error::Config(format!(
                "database.storage.compress_after_days ({}) must exceed the late-data window ({late_days} days)",
                self.compress_after_days
            )));
        }
        Ok(())
    }
}

/// Serializes storage set-up across processes (advisory lock key).
const SETUP_LOCK: i64 = 0x4167_4f70_0001;
/// Projection batches take it shared (per transaction); a rebuild takes it
/// exclusively, so live workers wait while the relations are recreated.
pub const PROJECTION_LOCK: i64 = 0x4167_4f70_0002;

/// Kind of an aggregate column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Count,
    Float,
}

/// One aggregate column: its name and how it is computed from `events` rows.
#[derive(Debug, Clone)]
pub struct AggColumn {
    pub name: String,
    pub kind: ColumnKind,
    /// Aggregate expression over rows shaped like `events`.
    pub from_events: String,
}

fn count_where(cond: &str) -> String {
    format!("count(*) FILTER (WHERE {cond})")
}

/// Every aggregate column, in table order: counters, tokens, cost, then the
/// run latency histogram (`lat_b00` .. one per [`histogram::BUCKETS`]).
pub fn aggregates() -> &'static [AggColumn] {
    static COLS: OnceLock<Vec<AggColumn>> = OnceLock::new();
    COLS.get_or_init(|| {
        let mut cols = Vec::new();
        let mut count = |name: &str, expr: String| {
            cols.push(AggColumn {
                name: name.into(),
                kind: ColumnKind::Count,
                from_events: expr,
            })
        };
        count("events", "count(*)".into());
        for (name, ty) in [
            ("runs_started", "run_started"),
            ("runs_completed", "run_completed"),
            ("runs_failed", "run_failed"),
            ("llm_calls", "llm_call"),
            ("tool_calls", "tool_call"),
            ("heartbeats", "heartbeat"),
        ] {
            count(name, count_where(&format!("type = '{ty}'")));
        }
        count(
            "errors",
            count_where("type = 'run_failed' OR status IN ('error', 'failed')"),
        );
        for t in [
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        ] {
            count(t, format!("COALESCE(sum({t}), 0)::int8"));
        }
        count(
            "unpriced_calls",
            count_where(
                "cost_usd IS NULL AND COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) > 0",
            ),
        );
        for i in 0..histogram::BUCKETS {
            count(&hist_column(i), count_where(&format!("lat_bucket = {i}")));
        }
        cols.push(AggColumn {
            name: "cost_usd".into(),
            kind: ColumnKind::Float,
            from_events: "COALESCE(sum(cost_usd), 0)::float8".into(),
        });
        cols
    })
}

/// Name of the histogram column of latency bucket `i`.
pub fn hist_column(i: usize) -> String {
    format!("lat_b{i:02}")
}

/// `ARRAY[sum(lat_b00), ...]::int8[]`: the merged histogram of the rows read.
pub fn merged_histogram_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let sums: Vec<String> = (0..histogram::BUCKETS)
            .map(|i| format!("COALESCE(sum({}), 0)", hist_column(i)))
            .collect();
        format!("ARRAY[{}]::int8[]", sums.join(", "))
    })
}

/// Group-by columns of every aggregate (after `bucket`).
pub const AGG_KEYS: [&str; 5] = ["org_id", "agent_id", "workflow_id", "provider", "model"];

/// The three aggregate levels: relation, bucket width, and the level below it
/// (TimescaleDB builds each on the one below).
pub const LEVELS: [(&str, &str, Option<&str>); 3] = [
    ("agg_1m", "1 minute", None),
    ("agg_1h", "1 hour", Some("agg_1m")),
    ("agg_1d", "1 day", Some("agg_1h")),
];

const EVENTS_COLUMNS: &str = "
    event_id            UUID NOT NULL,
    org_id              TEXT NOT NULL,
    ts                  TIMESTAMPTZ NOT NULL,
    agent_id            TEXT NOT NULL,
    workflow_id         TEXT,
    run_id              TEXT,
    type                TEXT NOT NULL,
    status              TEXT,
    latency_ms          BIGINT,
    lat_bucket          SMALLINT,
    provider            TEXT,
    model               TEXT,
    input_tokens        BIGINT,
    output_tokens       BIGINT,
    cache_read_tokens   BIGINT,
    cache_write_tokens  BIGINT,
    reasoning_tokens    BIGINT,
    cost_usd            DOUBLE PRECISION,
    cost_source         TEXT,
    tool_name           TEXT,
    error_type          TEXT,
    error_message       TEXT,
    trace_id            TEXT,
    span_id             TEXT,
    attributes          JSONB NOT NULL DEFAULT '{}',
    ingested_at         TIMESTAMPTZ,
    PRIMARY KEY (event_id, ts)";

const EVENTS_INDEXES: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS events_org_ts ON events (org_id, ts DESC)",
    "CREATE INDEX IF NOT EXISTS events_org_run ON events (org_id, run_id, ts)",
    "CREATE INDEX IF NOT EXISTS events_org_errors ON events (org_id, ts DESC)
         WHERE type = 'run_failed' OR status IN ('error', 'failed')",
];

const RUNS_AND_AGENTS: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS runs (
        org_id              TEXT NOT NULL,
        run_id              TEXT NOT NULL,
        agent_id            TEXT NOT NULL,
        workflow_id         TEXT,
        status              TEXT NOT NULL,
        started_at          TIMESTAMPTZ,
        ended_at            TIMESTAMPTZ,
        latency_ms          BIGINT,
        events              BIGINT NOT NULL DEFAULT 0,
        cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
        input_tokens        BIGINT NOT NULL DEFAULT 0,
        output_tokens       BIGINT NOT NULL DEFAULT 0,
        cache_read_tokens   BIGINT NOT NULL DEFAULT 0,
        cache_write_tokens  BIGINT NOT NULL DEFAULT 0,
        reasoning_tokens    BIGINT NOT NULL DEFAULT 0,
        llm_calls           BIGINT NOT NULL DEFAULT 0,
        tool_calls          BIGINT NOT NULL DEFAULT 0,
        error_type          TEXT,
        error_message       TEXT,
        updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (org_id, run_id)
    )",
    "CREATE INDEX IF NOT EXISTS runs_org_ended ON runs (org_id, ended_at DESC)",
    // Totals are for `day` (UTC, event time): the latest day this agent was seen.
    "CREATE TABLE IF NOT EXISTS agents (
        org_id              TEXT NOT NULL,
        agent_id            TEXT NOT NULL,
        first_seen          TIMESTAMPTZ NOT NULL,
        last_seen           TIMESTAMPTZ NOT NULL,
        last_heartbeat      TIMESTAMPTZ,
        heartbeat_status    TEXT,
        day                 DATE NOT NULL,
        events_day          BIGINT NOT NULL DEFAULT 0,
        runs_day            BIGINT NOT NULL DEFAULT 0,
        failures_day        BIGINT NOT NULL DEFAULT 0,
        tokens_day          BIGINT NOT NULL DEFAULT 0,
        cost_day            DOUBLE PRECISION NOT NULL DEFAULT 0,
        updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (org_id, agent_id)
    )",
];

fn agg_table_ddl(name: &str) -> String {
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {name} (
        org_id TEXT NOT NULL, bucket TIMESTAMPTZ NOT NULL, agent_id TEXT NOT NULL,
        workflow_id TEXT, provider TEXT, model TEXT"
    );
    for c in aggregates() {
        let ty = match c.kind {
            ColumnKind::Count => "BIGINT",
            ColumnKind::Float => "DOUBLE PRECISION",
        };
        let _ = write!(sql, ",\n        {} {ty} NOT NULL DEFAULT 0", c.name);
    }
    let _ = write!(
        sql,
        ",\n        CONSTRAINT {name}_key UNIQUE NULLS NOT DISTINCT (org_id, bucket, agent_id, workflow_id, provider, model))"
    );
    sql
}

fn cagg_ddl(name: &str, width: &str, below: Option<&str>) -> String {
    let (source, time) = match below {
        None => ("events", "ts"),
        Some(b) => (b, "bucket"),
    };
    let bucket = format!("time_bucket(INTERVAL '{width}', {time})");
    let mut sql = format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {name}
         WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
         SELECT org_id, {bucket} AS bucket, agent_id, workflow_id, provider, model"
    );
    for c in aggregates() {
        let expr = match (below, c.kind) {
            (None, _) => c.from_events.clone(),
            (Some(_), ColumnKind::Count) => format!("sum({})::int8", c.name),
            (Some(_), ColumnKind::Float) => format!("sum({})::float8", c.name),
        };
        let _ = write!(sql, ", {expr} AS {}", c.name);
    }
    // Group by the expression, not the alias: in the upper levels `bucket`
    // would name the input column.
    let _ = write!(
        sql,
        " FROM {source} GROUP BY org_id, {bucket}, agent_id, workflow_id, provider, model WITH NO DATA"
    );
    sql
}

/// Refresh policy windows per level: (start_offset, end_offset, schedule).
fn refresh_policy(level: &str, late_hours: u32) -> (String, &'static str, &'static str) {
    match level {
        "agg_1m" => (format!("{} hours", late_hours + 1), "1 minute", "1 minute"),
        "agg_1h" => (format!("{} hours", late_hours + 3), "1 hour", "10 minutes"),
        _ => (format!("{} hours", late_hours + 72), "1 day", "1 hour"),
    }
}

/// Recorded mode of an already set-up database.
async fn stored_mode(conn: &mut PgConnection) -> Result<Option<Mode>> {
    let v: Option<(String,)> =
        sqlx::query_as("SELECT value FROM storage_settings WHERE key = 'mode'")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(v.and_then(|(s,)| Mode::parse(&s)))
}

async fn try_timescale(conn: &mut PgConnection) -> bool {
    match sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS timescaledb")
        .execute(&mut *conn)
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::info!(error = %e, "timescaledb extension not available");
            false
        }
    }
}

/// Create (or check) every projection relation and return the mode in use.
/// Idempotent, safe to run from several processes at once.
pub async fn setup(conn: &mut PgConnection, cfg: &StorageConfig) -> Result<Mode> {
    cfg.validate()?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = setup_locked(conn, cfg).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await;
    result
}

async fn setup_locked(conn: &mut PgConnection, cfg: &StorageConfig) -> Result<Mode> {
    let stored = stored_mode(conn).await?;
    let mode = match (stored, cfg.mode) {
        (Some(m), ModeChoice::Auto) => m,
        (Some(Mode::Timescaledb), ModeChoice::Timescaledb) => Mode::Timescaledb,
        (Some(Mode::Postgres), ModeChoice::Postgres) => Mode::Postgres,
        (Some(m), _) => {
            let wanted = if m == Mode::Postgres {
                "timescaledb"
            } else {
                "postgres"
            };
            return Err(Error::Config(format!(
                "the database holds projections in {} mode but database.storage.mode is {wanted}; \
                 run `projections rebuild --mode {wanted}` to switch",
                m.as_str()
            )));
        }
        (None, ModeChoice::Auto) => {
            if try_timescale(conn).await {
                Mode::Timescaledb
            } else {
                Mode::Postgres
            }
        }
        (None, ModeChoice::Timescaledb) => {
            if !try_timescale(conn).await {
                return Err(Error::Config(
                    "database.storage.mode is timescaledb but `CREATE EXTENSION timescaledb` failed".into(),
                ));
            }
            Mode::Timescaledb
        }
        (None, ModeChoice::Postgres) => Mode::Postgres,
    };
    match mode {
        Mode::Timescaledb => setup_timescale(conn, cfg).await?,
        Mode::Postgres => setup_postgres(conn).await?,
    }
    for ddl in RUNS_AND_AGENTS {
        exec(conn, ddl).await?;
    }
    sqlx::query(
        "INSERT INTO storage_settings (key, value) VALUES ('mode', $1)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(mode.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(mode)
}

async fn setup_postgres(conn: &mut PgConnection) -> Result<()> {
    let create =
        format!("CREATE TABLE IF NOT EXISTS events ({EVENTS_COLUMNS}) PARTITION BY RANGE (ts)");
    exec(conn, &create).await?;
    for ddl in EVENTS_INDEXES {
        exec(conn, ddl).await?;
    }
    for (name, _, _) in LEVELS {
        exec(conn, &agg_table_ddl(name)).await?;
    }
    Ok(())
}

/// One DDL statement over the simple query protocol (TimescaleDB's utility
/// hooks do not all survive being prepared: "unrecognized node type").
async fn exec(conn: &mut PgConnection, sql: &str) -> Result<()> {
    sqlx::raw_sql(sql).execute(&mut *conn).await?;
    Ok(())
}

async fn setup_timescale(conn: &mut PgConnection, cfg: &StorageConfig) -> Result<()> {
    exec(
        conn,
        &format!("CREATE TABLE IF NOT EXISTS events ({EVENTS_COLUMNS})"),
    )
    .await?;
    exec(
        conn,
        "SELECT create_hypertable('events', by_range('ts', INTERVAL '1 day'), if_not_exists => TRUE)",
    )
    .await?;
    for ddl in EVENTS_INDEXES {
        exec(conn, ddl).await?;
    }
    let late = cfg.late_window_hours;
    for (name, width, below) in LEVELS {
        exec(conn, &cagg_ddl(name, width, below)).await?;
        exec(
            conn,
            &format!("ALTER MATERIALIZED VIEW {name} SET (timescaledb.materialized_only = false)"),
        )
        .await?;
        exec(
            conn,
            &format!("CREATE INDEX IF NOT EXISTS {name}_org_bucket ON {name} (org_id, bucket)"),
        )
        .await?;
        let (start, end, every) = refresh_policy(name, late);
        exec(
            conn,
            &format!("SELECT remove_continuous_aggregate_policy('{name}', if_exists => TRUE)"),
        )
        .await?;
        exec(
            conn,
            &format!(
                "SELECT add_continuous_aggregate_policy('{name}', start_offset => INTERVAL '{start}',
                     end_offset => INTERVAL '{end}', schedule_interval => INTERVAL '{every}')"
            ),
        )
        .await?;
    }
    exec(
        conn,
        "SELECT remove_retention_policy('events', if_exists => TRUE)",
    )
    .await?;
    if cfg.raw_retention_days > 0 {
        exec(
            conn,
            &format!(
                "SELECT add_retention_policy('events', INTERVAL '{} days')",
                cfg.raw_retention_days
            ),
        )
        .await?;
    }
    exec(
        conn,
        "SELECT remove_compression_policy('events', if_exists => TRUE)",
    )
    .await?;
    if cfg.compress_after_days > 0 {
        let enabled: Option<(bool,)> = sqlx::query_as(
            "SELECT compression_enabled FROM timescaledb_information.hypertables
             WHERE hypertable_name = 'events'",
        )
        .fetch_optional(&mut *conn)
        .await?;
        if !enabled.is_some_and(|(e,)| e) {
            exec(
                conn,
                "ALTER TABLE events SET (timescaledb.compress,
                     timescaledb.compress_segmentby = 'org_id', timescaledb.compress_orderby = 'ts DESC')",
            )
            .await?;
        }
        exec(
            conn,
            &format!(
                "SELECT add_compression_policy('events', INTERVAL '{} days')",
                cfg.compress_after_days
            ),
        )
        .await?;
    }
    Ok(())
}

/// Drop every projection relation (the rebuild starts from nothing).
/// Configuration tables and `consumer_offsets` other than the projections'
/// are untouched.
pub async fn drop_all(conn: &mut PgConnection) -> Result<()> {
    let mode = stored_mode(conn).await?;
    for (name, _, _) in LEVELS.iter().rev() {
        let sql = if mode == Some(Mode::Timescaledb) {
            format!("DROP MATERIALIZED VIEW IF EXISTS {name} CASCADE")
        } else {
            format!("DROP TABLE IF EXISTS {name} CASCADE")
        };
        exec(conn, &sql).await?;
    }
    for t in ["events", "runs", "agents"] {
        exec(conn, &format!("DROP TABLE IF EXISTS {t} CASCADE")).await?;
    }
    exec(conn, "DELETE FROM storage_settings WHERE key = 'mode'").await?;
    Ok(())
}

/// TimescaleDB: bring the continuous aggregates up to date over all time
/// (the rebuild and the tests; live systems rely on the refresh policies).
pub async fn refresh_all(conn: &mut PgConnection) -> Result<()> {
    for (name, _, _) in LEVELS {
        exec(
            conn,
            &format!("CALL refresh_continuous_aggregate('{name}', NULL, NULL)"),
        )
        .await?;
    }
    Ok(())
}

/// Name of the daily partition of `events` holding `day` (plain mode).
pub fn partition_name(day: NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

/// Plain mode: create the daily partitions for `days` if missing. Runs
/// outside the batch transaction; a concurrent creator is harmless.
pub async fn ensure_partitions(conn: &mut PgConnection, days: &[NaiveDate]) -> Result<()> {
    for &day in days {
        let next = day.succ_opt().unwrap_or(day);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF events
             FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
            partition_name(day)
        );
        if let Err(e) = sqlx::raw_sql(&sql).execute(&mut *conn).await {
            // Lost a race with another worker creating the same partition?
            let exists: (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
                .bind(partition_name(day))
                .fetch_one(&mut *conn)
                .await?;
            if !exists.0 {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// Plain mode: drop daily partitions of `events` older than `retention_days`.
/// Returns how many were dropped.
pub async fn drop_expired_partitions(
    conn: &mut PgConnection,
    retention_days: u32,
    today: NaiveDate,
) -> Result<usize> {
    if retention_days == 0 {
        return Ok(0);
    }
    let parts: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass",
    )
    .fetch_all(&mut *conn)
    .await?;
    let cutoff = today - chrono::Days::new(u64::from(retention_days));
    let mut dropped = 0;
    for (name,) in parts {
        let Some(day) = name
            .strip_prefix("events_p")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        if day < cutoff {
            exec(conn, &format!("DROP TABLE IF EXISTS {name}")).await?;
            tracing::info!(partition = %name, "dropped expired events partition");
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// Connect one dedicated connection (DDL, rebuild) with the pool's settings.
pub async fn connect_one(cfg: &crate::config::DatabaseConfig) -> Result<PgConnection> {
    let opts = crate::db::connect_options(cfg)?;
    Ok(PgConnection::connect_with(&opts).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_histogram_bucket_has_a_column() {
        let names: Vec<&str> = aggregates().iter().map(|c| c.name.as_str()).collect();
        for i in 0..histogram::BUCKETS {
            assert!(names.contains(&hist_column(i).as_str()));
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate column names");
    }

    #[test]
    fn retention_and_compression_must_cover_the_late_window() {
        let ok = StorageConfig::default();
        assert!(ok.validate().is_ok());
        let short = StorageConfig {
            raw_retention_days: 7,
            ..ok.clone()
        };
        assert!(short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("raw_retention_days"));
        let early = StorageConfig {
            compress_after_days: 7,
            ..ok
        };
        assert!(early
            .validate()
            .unwrap_err()
            .to_string()
            .contains("compress_after_days"));
    }

    #[test]
    fn cagg_hierarchy_reads_the_level_below() {
        let h = cagg_ddl("agg_1h", "1 hour", Some("agg_1m"));
        assert!(h.contains("FROM agg_1m"));
        assert!(h.contains("sum(lat_b79)::int8 AS lat_b79"));
        let m = cagg_ddl("agg_1m", "1 minute", None);
        assert!(m.contains("FROM events"));
        assert!(m.contains("count(*) FILTER (WHERE lat_bucket = 3) AS lat_b03"));
    }
}
