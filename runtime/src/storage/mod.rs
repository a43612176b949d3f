//! The projection relations and the two ways of maintaining them.
//!
//! Relations (same names and columns in both modes; the query API cannot tell
//! the difference):
//! - `events`: every event once, unique on (event_id, org_id, ts): an org
//!   cannot shadow another's event by sending its id first; daily partitions.
//! - `agg_1m`, `agg_1h`, `agg_1d`: counters per (org, bucket, agent, workflow,
//!   provider, model) with run latency histogram bucket counts `lat_b00..`;
//!   `agg_org_1m`, `agg_org_1h`, `agg_org_1d`: the same columns per (org,
//!   bucket) only, for what is read for the whole org; `agg_agent_1h`/`_1d`,
//!   `agg_workflow_1h`/`_1d`, `agg_model_1h`/`_1d` (provider, model): per
//!   one dimension, for breakdowns by it (see [`LEVELS`], [`family_for`]).
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
//! **Plain PostgreSQL mode**: `events` and the per-minute levels are
//! partitioned by day, the per-hour levels by month (the workers create
//! partitions as events arrive and drop whole ones past each retention,
//! [`drop_expired_partitions`]); the aggregates are tables the workers upsert in the same
//! transaction as the events they come from ([`aggregates`] defines each
//! column once for both). In TimescaleDB mode the same retention is a policy
//! on the hypertable and on each continuous aggregate.
//!
//! The chosen mode is recorded in `storage_settings`; a database set up in
//! one mode stays in it until `projections rebuild --mode ...` recreates it.

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::{Error, Result};

pub mod deferred;
mod partitions;
mod schema;

pub use partitions::{
    drop_expired_partitions, ensure_partitions, ensure_partitions_of, partition_name, partition_of,
    partitioned, partitioned_in, Partitioned, Period,
};
pub use schema::{
    agents_from_events_sql, aggregates, family_for, family_level, hist_column,
    levels_from_events_sql, merged_histogram_sql, relation, runs_from_events_sql, tag_level_sql,
    tag_levels_from_events_sql, AggColumn, ColumnKind, Counted, Level, Measure, DIMENSIONS,
    FAMILIES, HIERARCHY_COUNTS, HIERARCHY_TABLES, HIERARCHY_TOTALS, LEVELS, RUN_LIST_CAP,
    RUN_TAGS_CAP, RUN_TAG_KEY_MAX, RUN_TAG_VALUE_MAX, TAG_DIMENSIONS, TAG_LEVELS, TOKENS,
};
use schema::{
    agg_table_ddl, cagg_ddl, level_from_level_sql, refresh_policy, unpriced_index_ddl,
    EVENTS_COLUMNS, EVENTS_INDEXES, RUNS_AND_AGENTS,
};

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
    /// Drop the per-minute levels (`agg_1m`, `agg_org_1m`) older than this
    /// (days; 0 keeps them forever). Must cover the late-data window by two
    /// days; readers take older window bounds at the whole hour.
    pub minute_retention_days: u32,
    /// Drop the per-hour levels (`agg_1h`, `agg_org_1h`) older than this
    /// (days; 0 keeps them forever). At least `minute_retention_days`;
    /// readers take older window bounds at the whole day. The per-day
    /// levels are kept.
    pub hour_retention_days: u32,
    /// Event attributes rolled up per value (`agg_tag_1h`, `agg_tag_1d`):
    /// what tag-scoped budgets and rules read; a tag key not listed is
    /// summed from the raw events (kept `raw_retention_days`). A key added
    /// later is filled from the raw events still kept at the next start.
    /// At most 32 keys of 1–64 bytes; a list or one comma-separated string
    /// (`AGENTOPS_DATABASE__STORAGE__TAG_KEYS=team,cost_center`; empty:
    /// none).
    #[serde(deserialize_with = "crate::config::list_or_csv")]
    pub tag_keys: Vec<String>,
}

/// [`StorageConfig::tag_keys`] by default: the attributes teams budget on.
pub const DEFAULT_TAG_KEYS: [&str; 4] = ["team", "project", "env", "customer"];

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            mode: ModeChoice::Auto,
            late_window_hours: 7 * 24,
            raw_retention_days: 30,
            compress_after_days: 8,
            minute_retention_days: 35,
            hour_retention_days: 400,
            tag_keys: DEFAULT_TAG_KEYS.iter().map(|k| k.to_string()).collect(),
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
        if self.minute_retention_days != 0 && self.minute_retention_days < late_days + 2 {
            return Err(Error::Config(format!(
                "database.storage.minute_retention_days ({}) must be at least the late-data window ({late_days} days) + 2",
                self.minute_retention_days
            )));
        }
        let hours_kept = |d: u32| if d == 0 { u32::MAX } else { d };
        if hours_kept(self.hour_retention_days) < hours_kept(self.minute_retention_days) {
            return Err(Error::Config(format!(
                "database.storage.hour_retention_days ({}) must be 0 (keep) or at least minute_retention_days ({})",
                self.hour_retention_days, self.minute_retention_days
            )));
        }
        if self.tag_keys.len() > RUN_TAGS_CAP {
            return Err(Error::Config(format!(
                "database.storage.tag_keys: {} keys, at most {RUN_TAGS_CAP}",
                self.tag_keys.len()
            )));
        }
        if let Some(k) = self
            .tag_keys
            .iter()
            .find(|k| k.is_empty() || k.len() > RUN_TAG_KEY_MAX || k.chars().any(char::is_control))
        {
            return Err(Error::Config(format!(
                "database.storage.tag_keys: `{}` is not a key of 1 to {RUN_TAG_KEY_MAX} bytes without control characters",
                k.escape_debug()
            )));
        }
        Ok(())
    }

    /// Days a level of `width` (an SQL interval: `1 minute`, `1 hour`,
    /// `1 day`) is kept; 0 = forever.
    pub fn retention_days(&self, width: &str) -> u32 {
        match width {
            "1 minute" => self.minute_retention_days,
            "1 hour" => self.hour_retention_days,
            _ => 0,
        }
    }
}

/// Serializes storage set-up across processes (advisory lock key).
const SETUP_LOCK: i64 = 0x4167_4f70_0001;
/// Projection batches take it shared (per transaction); a rebuild takes it
/// exclusively, so live workers wait while the relations are recreated.
pub const PROJECTION_LOCK: i64 = 0x4167_4f70_0002;

/// Recorded mode of an already set-up database.
async fn stored_mode(conn: &mut PgConnection) -> Result<Option<Mode>> {
    let v: Option<String> =
        sqlx::query_scalar("SELECT value FROM storage_settings WHERE key = 'mode'")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(v.and_then(|s| Mode::parse(&s)))
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
                 run `agentops-projections rebuild --mode {wanted}` to switch",
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
        Mode::Postgres => {
            setup_postgres(conn).await?;
            deferred::setup(conn).await?;
        }
    }
    events_key_with_org(conn).await?;
    for ddl in RUNS_AND_AGENTS {
        ensure(conn, ddl).await?;
    }
    for ddl in schema::hierarchy_ddl() {
        ensure(conn, &ddl).await?;
    }
    tag_levels(conn, mode, cfg).await?;
    sqlx::query(
        "INSERT INTO storage_settings (key, value) VALUES ('mode', $1)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(mode.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(mode)
}

/// The per-tag levels ([`TAG_LEVELS`], both modes). A configured tag key
/// the levels do not hold yet (a new database, one from before them, a key
/// added to `tag_keys`) is filled from the raw events still kept, replacing
/// any rows of that key left from an earlier configuration, in one
/// transaction holding the projection lock exclusively (no batch lands in
/// between). The keys filled are recorded in `storage_settings`
/// (`tag_keys`).
async fn tag_levels(conn: &mut PgConnection, mode: Mode, cfg: &StorageConfig) -> Result<()> {
    for l in &TAG_LEVELS {
        ensure(conn, &agg_table_ddl(l)).await?;
    }
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT value FROM storage_settings WHERE key = 'tag_keys'")
            .fetch_optional(&mut *conn)
            .await?;
    let recorded: Vec<String> = recorded
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default();
    let new: Vec<String> = cfg
        .tag_keys
        .iter()
        .filter(|k| !recorded.contains(k))
        .cloned()
        .collect();
    if new.is_empty() && recorded == cfg.tag_keys {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    if !new.is_empty() {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PROJECTION_LOCK)
            .execute(&mut *tx)
            .await?;
        tracing::info!(keys = ?new, "filling the per-tag levels from the raw events");
        // The hour level's partitions of every month those events fall in.
        let months: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT DISTINCT date_trunc('month', ts, 'UTC') FROM events WHERE attributes ?| $1",
        )
        .bind(&new)
        .fetch_all(&mut *tx)
        .await?;
        let days: Vec<chrono::NaiveDate> = months.iter().map(|m| m.date_naive()).collect();
        let tables = partitions::partitioned_in(mode)
            .filter(|p| TAG_LEVELS.iter().any(|l| l.name == p.table));
        partitions::ensure_partitions_of(&mut tx, tables, &days).await?;
        for l in &TAG_LEVELS {
            sqlx::query(&format!("DELETE FROM {} WHERE tag_key = ANY($1)", l.name))
                .bind(&new)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&tag_level_sql(l, "events", "$1::text[]", ""))
                .bind(&new)
                .execute(&mut *tx)
                .await?;
        }
    }
    if recorded != cfg.tag_keys {
        sqlx::query(
            "INSERT INTO storage_settings (key, value) VALUES ('tag_keys', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(serde_json::to_string(&cfg.tag_keys).unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Databases created before the org was part of the events key (unique on
/// `(event_id, ts)`) get the new key. In TimescaleDB mode with compressed
/// chunks the change is refused; `agentops-projections rebuild` then
/// rebuilds the relations from the log.
async fn events_key_with_org(conn: &mut PgConnection) -> Result<()> {
    const MIGRATE: &str = "
DO $$
DECLARE pk text; cols text[];
BEGIN
    SELECT c.conname, array_agg(a.attname::text ORDER BY k.ord) INTO pk, cols
    FROM pg_constraint c
    CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
    WHERE c.conrelid = 'events'::regclass AND c.contype = 'p'
    GROUP BY c.conname;
    IF cols = ARRAY['event_id', 'ts'] THEN
        RAISE NOTICE 'events: unique key (event_id, ts) -> (event_id, org_id, ts)';
        EXECUTE format('ALTER TABLE events DROP CONSTRAINT %I', pk);
        ALTER TABLE events ADD PRIMARY KEY (event_id, org_id, ts);
    END IF;
END $$";
    exec(conn, MIGRATE).await.map_err(|e| {
        Error::Schema(format!(
            "adding org_id to the events key failed ({e}); \
             run `agentops-projections rebuild` to rebuild the projections from the log"
        ))
    })
}

async fn setup_postgres(conn: &mut PgConnection) -> Result<()> {
    let create =
        format!("CREATE TABLE IF NOT EXISTS events ({EVENTS_COLUMNS}) PARTITION BY RANGE (ts)");
    ensure(conn, &create).await?;
    for ddl in EVENTS_INDEXES {
        ensure(conn, ddl).await?;
    }
    for l in &LEVELS {
        let period = partitions::level_period(l.width);
        if relation_exists(conn, l.name).await? {
            sparse_histograms(conn, l.name).await?;
            if let Some(period) = period {
                if !is_partitioned(conn, l.name).await? {
                    partition_level(conn, l, period).await?;
                }
            }
            continue;
        }
        if l.dims == DIMENSIONS {
            ensure(conn, &agg_table_ddl(l)).await?;
            continue;
        }
        // A database from before this level: create it and fill it from the
        // four-key level of its width in one transaction, holding the
        // projection lock exclusively so no batch lands in between (it would
        // be counted twice).
        let from = same_width(l);
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PROJECTION_LOCK)
            .execute(&mut *tx)
            .await?;
        exec(&mut tx, &agg_table_ddl(l)).await?;
        if let Some(last) = last_bucket(&mut tx, from).await? {
            tracing::info!(
                level = l.name,
                from,
                "creating an aggregate level from the one beside it"
            );
            if let Some(period) = period {
                // Its rows so far in one partition, as if it had been
                // partitioned after the fact.
                let upper = legacy_end(Some(last), period);
                exec(
                    &mut tx,
                    &format!(
                        "CREATE TABLE {} PARTITION OF {} FOR VALUES FROM (MINVALUE) TO ('{upper} 00:00:00+00')
                         WITH (fillfactor = 70)",
                        partitions::legacy_partition(l.name, upper),
                        l.name
                    ),
                )
                .await?;
            }
            exec(&mut tx, &level_from_level_sql(l, from)).await?;
        }
        tx.commit().await?;
    }
    unpriced_indexes(conn).await
}

/// [`unpriced_index_ddl`] on every dimensioned level (both modes).
async fn unpriced_indexes(conn: &mut PgConnection) -> Result<()> {
    for ddl in LEVELS.iter().filter_map(unpriced_index_ddl) {
        ensure(conn, &ddl).await?;
    }
    Ok(())
}

/// The day of the latest bucket of `table`, if it holds rows.
async fn last_bucket(conn: &mut PgConnection, table: &str) -> Result<Option<chrono::NaiveDate>> {
    let last: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar(&format!("SELECT max(bucket) FROM {table}"))
            .fetch_one(&mut *conn)
            .await?;
    Ok(last.map(|t| t.date_naive()))
}

/// Where a partition holding every row so far ends: the end of the
/// `period` holding today, or the `last` bucket's day if that is later.
fn legacy_end(last: Option<chrono::NaiveDate>, period: partitions::Period) -> chrono::NaiveDate {
    let today = chrono::Utc::now().date_naive();
    period.next(period.first(last.map_or(today, |l| l.max(today))))
}

async fn is_partitioned(conn: &mut PgConnection, table: &str) -> Result<bool> {
    let kind: Option<String> =
        sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)")
            .bind(table)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(kind.as_deref() == Some("p"))
}

/// A level table from before partitioning becomes the partitioned table's
/// first partition, holding every row so far (up to the end of today's
/// partition period, or of its latest bucket's): no row is copied, and the
/// retention drops it whole once that bound is past. In one transaction
/// holding the projection lock exclusively (batches wait).
async fn partition_level(
    conn: &mut PgConnection,
    l: &Level,
    period: partitions::Period,
) -> Result<()> {
    let name = l.name;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PROJECTION_LOCK)
        .execute(&mut *tx)
        .await?;
    let upper = legacy_end(last_bucket(&mut tx, name).await?, period);
    let legacy = partitions::legacy_partition(name, upper);
    tracing::info!(
        level = name,
        partition = %legacy,
        "partitioning an aggregate level: its rows so far become one partition"
    );
    exec(&mut tx, &format!("ALTER TABLE {name} RENAME TO {legacy}")).await?;
    exec(
        &mut tx,
        &format!("ALTER TABLE {legacy} RENAME CONSTRAINT {name}_key TO {legacy}_key"),
    )
    .await?;
    exec(&mut tx, &agg_table_ddl(l)).await?;
    exec(
        &mut tx,
        &format!(
            "ALTER TABLE {name} ATTACH PARTITION {legacy} FOR VALUES FROM (MINVALUE) TO ('{upper} 00:00:00+00')"
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A table from before the sparse histogram columns (`NOT NULL DEFAULT 0`)
/// accepts NULLs from now on; its zeros stay and add up the same. Checked in
/// the catalog first: the `ALTER` takes a lock the readers would wait for.
async fn sparse_histograms(conn: &mut PgConnection, table: &str) -> Result<()> {
    let sparse: Vec<&str> = aggregates()
        .iter()
        .filter(|c| c.kind == ColumnKind::SparseCount)
        .map(|c| c.name.as_str())
        .collect();
    let not_null: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_attribute
         WHERE attrelid = $1::regclass AND attname = ANY($2) AND attnotnull",
    )
    .bind(table)
    .bind(&sparse)
    .fetch_one(&mut *conn)
    .await?;
    if not_null > 0 {
        tracing::info!(
            table,
            "histogram columns: zeros are stored as NULL from now on"
        );
        let alter: Vec<String> = sparse
            .iter()
            .map(|c| format!("ALTER COLUMN {c} DROP NOT NULL, ALTER COLUMN {c} DROP DEFAULT"))
            .collect();
        exec(conn, &format!("ALTER TABLE {table} {}", alter.join(", "))).await?;
    }
    Ok(())
}

/// The four-key level of `l`'s width (what an org or one-dimension level
/// sums up).
fn same_width(l: &Level) -> &'static str {
    LEVELS
        .iter()
        .find(|x| x.width == l.width && x.dims == DIMENSIONS)
        .map_or("agg_1m", |x| x.name)
}

async fn relation_exists(conn: &mut PgConnection, name: &str) -> Result<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(found.is_some())
}

/// One DDL statement over the simple query protocol (TimescaleDB's utility
/// hooks do not all survive being prepared: "unrecognized node type").
pub(super) async fn exec(conn: &mut PgConnection, sql: &str) -> Result<()> {
    sqlx::raw_sql(sql).execute(&mut *conn).await?;
    Ok(())
}

/// What an idempotent set-up statement makes, read from its words: the
/// catalog says whether it is already there.
#[derive(Debug, PartialEq, Eq)]
enum Makes<'a> {
    /// `CREATE TABLE|INDEX IF NOT EXISTS <name>`.
    Relation(&'a str),
    /// `ALTER TABLE <table> ADD COLUMN IF NOT EXISTS <column> ... [, ADD COLUMN ...]`.
    Columns(&'a str, Vec<&'a str>),
    /// `ALTER TABLE <table> SET (<option> = <value>)` (one option).
    Option(&'a str, String),
}

fn makes(ddl: &str) -> Option<Makes<'_>> {
    let w: Vec<&str> = ddl.split_whitespace().collect();
    match w.as_slice() {
        ["CREATE", "TABLE" | "INDEX", "IF", "NOT", "EXISTS", rel, ..] => {
            let rel = rel.split('(').next().unwrap_or_default();
            (!rel.is_empty()).then_some(Makes::Relation(rel))
        }
        ["ALTER", "TABLE", table, "ADD", ..] => {
            let columns: Vec<&str> = w
                .windows(6)
                .filter(|x| x[..5] == ["ADD", "COLUMN", "IF", "NOT", "EXISTS"])
                .map(|x| x[5])
                .collect();
            // Every clause an ADD COLUMN IF NOT EXISTS, or the statement runs.
            let clauses = w.iter().filter(|x| **x == "ADD").count();
            (clauses == columns.len()).then_some(Makes::Columns(table, columns))
        }
        ["ALTER", "TABLE", table, "SET", rest @ ..] => {
            let option: String = rest.concat();
            let option = option.strip_prefix('(')?.strip_suffix(')')?;
            (!option.contains(',')).then(|| Makes::Option(table, option.to_owned()))
        }
        _ => None,
    }
}

/// Run an idempotent set-up statement only when what it makes is missing.
/// `IF NOT EXISTS` alone is not enough at every start of every component:
/// PostgreSQL locks the table before it finds the index or column there
/// (`CREATE INDEX` a share lock, waiting for every open write;
/// `ALTER TABLE ... ADD COLUMN` an exclusive one, waiting for every open
/// read), and every later read and write of the table queues behind it.
pub(super) async fn ensure(conn: &mut PgConnection, ddl: &str) -> Result<()> {
    let there: bool = match makes(ddl) {
        None => false,
        Some(Makes::Relation(rel)) => {
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(rel)
                .fetch_one(&mut *conn)
                .await?
        }
        Some(Makes::Columns(table, columns)) => {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_attribute
                 WHERE attrelid = to_regclass($1) AND attname = ANY($2) AND NOT attisdropped",
            )
            .bind(table)
            .bind(&columns)
            .fetch_one(&mut *conn)
            .await?;
            n == columns.len() as i64
        }
        Some(Makes::Option(table, option)) => {
            sqlx::query_scalar(
                "SELECT COALESCE(bool_or(reloptions @> ARRAY[$2]), false) FROM pg_class
             WHERE oid = to_regclass($1)",
            )
            .bind(table)
            .bind(option)
            .fetch_one(&mut *conn)
            .await?
        }
    };
    if there {
        return Ok(());
    }
    exec(conn, ddl).await
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
        ensure(conn, ddl).await?;
    }
    let late = cfg.late_window_hours;
    for l in &LEVELS {
        let name = l.name;
        // A database from before this level: materialize all its history
        // once (the refresh policy only covers the late window).
        let backfill = !relation_exists(conn, name).await?;
        exec(conn, &cagg_ddl(l)).await?;
        if backfill {
            tracing::info!(
                level = name,
                "materializing a new continuous aggregate over all time"
            );
            exec(
                conn,
                &format!("CALL refresh_continuous_aggregate('{name}', NULL, NULL)"),
            )
            .await?;
        }
        // Real-time aggregation on (an aggregate made before it was the
        // default); altered only when off, not at every start of every
        // component (an ALTER of the view while the workers and the API
        // use it).
        let materialized_only: bool = sqlx::query_scalar(
            "SELECT COALESCE(bool_or(materialized_only), false)
             FROM timescaledb_information.continuous_aggregates WHERE view_name = $1",
        )
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
        if materialized_only {
            exec(
                conn,
                &format!(
                    "ALTER MATERIALIZED VIEW {name} SET (timescaledb.materialized_only = false)"
                ),
            )
            .await?;
        }
        ensure(
            conn,
            &format!("CREATE INDEX IF NOT EXISTS {name}_org_bucket ON {name} (org_id, bucket)"),
        )
        .await?;
        let (start, end, every) = refresh_policy(l, late);
        ensure_policy(
            conn,
            name,
            Proc::Refresh,
            Some(Policy {
                matches: format!(
                    "(config->>'start_offset')::interval = INTERVAL '{start}'
                     AND (config->>'end_offset')::interval = INTERVAL '{end}'
                     AND schedule_interval = INTERVAL '{every}'"
                ),
                add: format!(
                    "SELECT add_continuous_aggregate_policy('{name}', start_offset => INTERVAL '{start}',
                         end_offset => INTERVAL '{end}', schedule_interval => INTERVAL '{every}')"
                ),
            }),
        )
        .await?;
        level_retention_and_compression(conn, cfg, l).await?;
    }
    unpriced_indexes(conn).await?;
    let days = cfg.raw_retention_days;
    ensure_policy(
        conn,
        "events",
        Proc::Retention,
        (days > 0).then(|| Policy::retention("events", &format!("{days} days"))),
    )
    .await?;
    if cfg.compress_after_days == 0 {
        ensure_policy(conn, "events", Proc::Compression, None).await?;
    } else {
        let enabled: Option<bool> = sqlx::query_scalar(
            "SELECT compression_enabled FROM timescaledb_information.hypertables
             WHERE hypertable_name = 'events'",
        )
        .fetch_optional(&mut *conn)
        .await?;
        if !enabled.is_some_and(|e| e) {
            exec(
                conn,
                "ALTER TABLE events SET (timescaledb.compress,
                     timescaledb.compress_segmentby = 'org_id', timescaledb.compress_orderby = 'ts DESC')",
            )
            .await?;
        }
        let after = format!("{} days", cfg.compress_after_days);
        ensure_policy(
            conn,
            "events",
            Proc::Compression,
            Some(Policy::compression("events", &after)),
        )
        .await?;
    }
    Ok(())
}

/// A TimescaleDB policy job's procedure.
#[derive(Clone, Copy)]
enum Proc {
    Refresh,
    Retention,
    Compression,
}

impl Proc {
    fn name(self) -> &'static str {
        match self {
            Proc::Refresh => "policy_refresh_continuous_aggregate",
            Proc::Retention => "policy_retention",
            Proc::Compression => "policy_compression",
        }
    }

    fn remove_sql(self, relation: &str) -> String {
        let f = match self {
            Proc::Refresh => "remove_continuous_aggregate_policy",
            Proc::Retention => "remove_retention_policy",
            Proc::Compression => "remove_compression_policy",
        };
        format!("SELECT {f}('{relation}', if_exists => TRUE)")
    }
}

/// A policy as set-up wants it: a condition its job's `config` and
/// `schedule_interval` meet (intervals compared as intervals, not as the
/// text TimescaleDB stores), and the statement that adds it.
struct Policy {
    matches: String,
    add: String,
}

impl Policy {
    fn retention(relation: &str, after: &str) -> Self {
        Self {
            matches: format!("(config->>'drop_after')::interval = INTERVAL '{after}'"),
            add: format!(
                "SELECT add_retention_policy('{relation}', drop_after => INTERVAL '{after}')"
            ),
        }
    }

    fn compression(relation: &str, after: &str) -> Self {
        Self {
            matches: format!("(config->>'compress_after')::interval = INTERVAL '{after}'"),
            add: format!(
                "SELECT add_compression_policy('{relation}', compress_after => INTERVAL '{after}')"
            ),
        }
    }
}

/// Make `relation`'s `proc` policy what `want` says (`None`: none),
/// touching it only when it differs: every component runs set-up at every
/// start, and a policy removed and added again is a new job (its schedule
/// and statistics start over, and for a moment there is none).
async fn ensure_policy(
    conn: &mut PgConnection,
    relation: &str,
    proc: Proc,
    want: Option<Policy>,
) -> Result<()> {
    let matches = want.as_ref().map_or("false", |p| p.matches.as_str());
    let (matching, jobs): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE {matches}), count(*)
         FROM timescaledb_information.jobs WHERE hypertable_name = $1 AND proc_name = $2"
    ))
    .bind(relation)
    .bind(proc.name())
    .fetch_one(&mut *conn)
    .await?;
    match want {
        Some(_) if (matching, jobs) == (1, 1) => Ok(()),
        None if jobs == 0 => Ok(()),
        want => {
            exec(conn, &proc.remove_sql(relation)).await?;
            if let Some(p) = want {
                tracing::info!(
                    relation,
                    policy = proc.name(),
                    "setting a TimescaleDB policy"
                );
                exec(conn, &p.add).await?;
            }
            Ok(())
        }
    }
}

/// TimescaleDB: the retention policy of a level (minutes and hours per
/// `minute_retention_days` / `hour_retention_days`) and its compression
/// after `compress_after_days`, but never inside the window its refresh
/// policy re-materializes (TimescaleDB requires `compress_after` beyond
/// the refresh's `start_offset`).
async fn level_retention_and_compression(
    conn: &mut PgConnection,
    cfg: &StorageConfig,
    l: &Level,
) -> Result<()> {
    let name = l.name;
    let days = cfg.retention_days(l.width);
    ensure_policy(
        conn,
        name,
        Proc::Retention,
        (days > 0).then(|| Policy::retention(name, &format!("{days} days"))),
    )
    .await?;
    if cfg.compress_after_days == 0 {
        ensure_policy(conn, name, Proc::Compression, None).await?;
    } else {
        let enabled: Option<bool> = sqlx::query_scalar(
            "SELECT compression_enabled FROM timescaledb_information.continuous_aggregates
             WHERE view_name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        if !enabled.is_some_and(|e| e) {
            exec(
                conn,
                &format!("ALTER MATERIALIZED VIEW {name} SET (timescaledb.compress = true)"),
            )
            .await?;
        }
        let after = format!("{} hours", cagg_compress_after_hours(l, cfg));
        ensure_policy(
            conn,
            name,
            Proc::Compression,
            Some(Policy::compression(name, &after)),
        )
        .await?;
    }
    Ok(())
}

/// Hours after which a level's chunks are compressed: `compress_after_days`,
/// or a day past its refresh window if that ends later.
fn cagg_compress_after_hours(l: &Level, cfg: &StorageConfig) -> u32 {
    let refresh_start = schema::refresh_start_hours(l, cfg.late_window_hours);
    (cfg.compress_after_days * 24).max(refresh_start + 24)
}

/// Drop every projection relation (the rebuild starts from nothing).
/// Configuration tables and `consumer_offsets` other than the projections'
/// are untouched.
pub async fn drop_all(conn: &mut PgConnection) -> Result<()> {
    let mode = stored_mode(conn).await?;
    for Level { name, .. } in LEVELS.iter().rev() {
        let sql = if mode == Some(Mode::Timescaledb) {
            format!("DROP MATERIALIZED VIEW IF EXISTS {name} CASCADE")
        } else {
            format!("DROP TABLE IF EXISTS {name} CASCADE")
        };
        exec(conn, &sql).await?;
    }
    for Level { name, .. } in &TAG_LEVELS {
        exec(conn, &format!("DROP TABLE IF EXISTS {name} CASCADE")).await?;
    }
    for t in ["events", "runs", "agents"]
        .iter()
        .chain(&HIERARCHY_TABLES)
        .chain(&deferred::DEFERRED_TABLES)
    {
        exec(conn, &format!("DROP TABLE IF EXISTS {t} CASCADE")).await?;
    }
    exec(
        conn,
        "DELETE FROM storage_settings WHERE key IN ('mode', 'tag_keys')",
    )
    .await?;
    Ok(())
}

/// What [`fold_history`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Every aggregate level, the per-tag levels and the `runs`.
    All,
    /// The `runs` only (a history whose levels are there).
    RunsOnly,
}

/// Plain mode: fill every aggregate level, the per-tag levels (for
/// `tag_keys`) and the `runs` of org `org` (only the runs with
/// [`Fold::RunsOnly`]) from its events, one UTC day of `days` at a time, in order (each statement reads
/// one day's partition of `events`, so a history of 100 million events
/// needs no sort or hash spill larger than a day's; see
/// [`levels_from_events_sql`], [`tag_levels_from_events_sql`] and
/// [`runs_from_events_sql`]). What the benchmarks and tests that load a
/// history in SQL run instead of the writer; `progress` is called after each
/// day.
pub async fn fold_history(
    conn: &mut PgConnection,
    org: &str,
    tag_keys: &[String],
    days: &[NaiveDate],
    what: Fold,
    mut progress: impl FnMut(NaiveDate),
) -> Result<()> {
    let (levels, tags) = match what {
        Fold::All => (levels_from_events_sql(), tag_levels_from_events_sql()),
        Fold::RunsOnly => (Vec::new(), Vec::new()),
    };
    for day in days {
        let from = day.and_time(NaiveTime::MIN).and_utc();
        let to = from + chrono::TimeDelta::days(1);
        for sql in &levels {
            sqlx::query(sql)
                .bind(org)
                .bind(from)
                .bind(to)
                .execute(&mut *conn)
                .await?;
        }
        for sql in &tags {
            sqlx::query(sql)
                .bind(org)
                .bind(tag_keys)
                .bind(from)
                .bind(to)
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(runs_from_events_sql())
            .bind(org)
            .bind(from)
            .bind(to)
            .execute(&mut *conn)
            .await?;
        progress(*day);
    }
    Ok(())
}

/// TimescaleDB: bring the continuous aggregates up to date over all time
/// (the rebuild and the tests; live systems rely on the refresh policies).
pub async fn refresh_all(conn: &mut PgConnection) -> Result<()> {
    for Level { name, .. } in LEVELS {
        exec(
            conn,
            &format!("CALL refresh_continuous_aggregate('{name}', NULL, NULL)"),
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_statements_say_what_they_make() {
        assert_eq!(
            makes("CREATE INDEX IF NOT EXISTS runs_org_latency\n ON runs (org_id)"),
            Some(Makes::Relation("runs_org_latency"))
        );
        assert_eq!(
            makes(&agg_table_ddl(&LEVELS[0])),
            Some(Makes::Relation("agg_1m"))
        );
        assert_eq!(
            makes("CREATE TABLE IF NOT EXISTS t(a int)"),
            Some(Makes::Relation("t"))
        );
        let hierarchy = schema::hierarchy_ddl();
        assert_eq!(
            makes(&hierarchy[0]),
            Some(Makes::Columns(
                "events",
                vec!["project_id", "machine_id", "workspace_id", "session_id"]
            ))
        );
        assert_eq!(
            makes("ALTER TABLE agents SET (fillfactor = 70)"),
            Some(Makes::Option("agents", "fillfactor=70".into()))
        );
        // Anything else runs every time.
        assert_eq!(
            makes(
                "ALTER TABLE runs ADD COLUMN IF NOT EXISTS a int, ADD CONSTRAINT c CHECK (a > 0)"
            ),
            None
        );
        assert_eq!(makes("ALTER TABLE t SET (a = 1, b = 2)"), None);
        assert_eq!(makes("CREATE INDEX i ON t (a)"), None);
        assert_eq!(makes("DO $$ BEGIN END $$"), None);
        // Every statement of the lists run at each start is recognised.
        for ddl in RUNS_AND_AGENTS.iter().chain(&EVENTS_INDEXES) {
            assert!(makes(ddl).is_some(), "{ddl}");
        }
        for ddl in hierarchy {
            assert!(makes(&ddl).is_some(), "{ddl}");
        }
        assert!(deferred::deferred_ddl()
            .iter()
            .any(|ddl| makes(ddl) == Some(Makes::Relation("events_txid"))));
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
    fn tag_keys_are_a_list_or_csv_and_validated() {
        let cfg: StorageConfig =
            serde_json::from_value(serde_json::json!({"tag_keys": "team, cost_center"})).unwrap();
        assert_eq!(cfg.tag_keys, ["team", "cost_center"]);
        assert_eq!(
            cfg.late_window_hours, 168,
            "other settings keep their defaults"
        );
        let none: StorageConfig =
            serde_json::from_value(serde_json::json!({"tag_keys": ""})).unwrap();
        assert!(none.tag_keys.is_empty() && none.validate().is_ok());
        assert_eq!(StorageConfig::default().tag_keys, DEFAULT_TAG_KEYS);
        let long = StorageConfig {
            tag_keys: vec!["k".repeat(65)],
            ..StorageConfig::default()
        };
        assert!(long
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tag_keys"));
        let many = StorageConfig {
            tag_keys: (0..33).map(|i| format!("k{i}")).collect(),
            ..StorageConfig::default()
        };
        assert!(many
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at most 32"));
    }

    #[test]
    fn level_compression_starts_past_its_refresh_window() {
        let cfg = StorageConfig::default();
        let hours: Vec<u32> = LEVELS
            .iter()
            .map(|l| cagg_compress_after_hours(l, &cfg))
            .collect();
        // Late window 168 h: refreshes start 169 h, 171 h and 240 h back.
        assert_eq!(
            hours,
            [193, 195, 264, 193, 195, 264, 195, 264, 195, 264, 195, 264]
        );
        let late = StorageConfig {
            compress_after_days: 30,
            ..cfg
        };
        assert_eq!(cagg_compress_after_hours(&LEVELS[0], &late), 720);
    }

    #[test]
    fn level_retention_covers_the_late_window_and_hours_outlive_minutes() {
        let ok = StorageConfig::default();
        assert_eq!(ok.retention_days("1 minute"), 35);
        assert_eq!(ok.retention_days("1 hour"), 400);
        assert_eq!(ok.retention_days("1 day"), 0);
        let err = |c: StorageConfig| c.validate().unwrap_err().to_string();
        assert!(err(StorageConfig {
            minute_retention_days: 8,
            ..ok.clone()
        })
        .contains("minute_retention_days (8)"));
        assert!(StorageConfig {
            minute_retention_days: 9,
            hour_retention_days: 9,
            ..ok.clone()
        }
        .validate()
        .is_ok());
        assert!(err(StorageConfig {
            hour_retention_days: 30,
            ..ok.clone()
        })
        .contains("hour_retention_days (30)"));
        // Minutes kept forever: so must the hours be.
        assert!(err(StorageConfig {
            minute_retention_days: 0,
            ..ok.clone()
        })
        .contains("hour_retention_days (400)"));
        assert!(StorageConfig {
            minute_retention_days: 0,
            hour_retention_days: 0,
            ..ok
        }
        .validate()
        .is_ok());
    }
}
