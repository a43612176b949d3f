//! Plain mode's deferred derivations: the projection writer appends events
//! (and cost corrections) with their offsets, and the deriver
//! (`agentops-projections`) folds them into everything derived from events
//! (the aggregate levels, runs, agents, the coding-agent hierarchy, the
//! per-tag levels) later, in larger chunks, each in one transaction with
//! its progress, the way TimescaleDB's continuous aggregates follow its
//! hypertable.
//!
//! Which events are derived: every event row carries the id of the
//! transaction that wrote it (`events.txid`, a default). `derive_state`
//! keeps a horizon (every transaction below it is derived or wrote nothing
//! that counts) and the ids at or above it already derived (`done`).
//! Corrections wait in `pending_corrections` until the deriver applies them
//! after the events of the same or earlier transactions, then leave it; the
//! batches' offsets wait in `pending_offsets` until their events are
//! derived, then move to `consumer_offsets` under [`derived_group`].

use sqlx::PgConnection;

use super::exec;
use crate::Result;

/// The id of the writing transaction, as `bigint` (`xid8` has no btree
/// order with `bigint` bounds).
pub const TXID_DEFAULT: &str = "pg_current_xact_id()::text::int8";

/// Plain mode's relations and columns for deferred derivations, idempotent
/// (a database from before them: the column is added without a rewrite,
/// its rows count as derived, since the writer derived them in its
/// transaction).
pub fn deferred_ddl() -> Vec<String> {
    vec![
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS txid BIGINT".into(),
        format!("ALTER TABLE events ALTER COLUMN txid SET DEFAULT ({TXID_DEFAULT})"),
        "CREATE INDEX IF NOT EXISTS events_txid ON events (txid) WHERE txid IS NOT NULL".into(),
        "CREATE TABLE IF NOT EXISTS derive_state (
            id          SMALLINT PRIMARY KEY CHECK (id = 1),
            horizon     BIGINT NOT NULL,
            done        BIGINT[] NOT NULL DEFAULT '{}',
            derived     BIGINT NOT NULL DEFAULT 0,
            updated_at  TIMESTAMPTZ NOT NULL DEFAULT now())"
            .into(),
        "INSERT INTO derive_state (id, horizon) VALUES (1, 0) ON CONFLICT (id) DO NOTHING".into(),
        format!(
            "CREATE TABLE IF NOT EXISTS pending_corrections (
            seq         BIGSERIAL PRIMARY KEY,
            txid        BIGINT NOT NULL DEFAULT ({TXID_DEFAULT}),
            org_id      TEXT NOT NULL,
            event_id    UUID NOT NULL,
            ts          TIMESTAMPTZ NOT NULL,
            cost_usd    DOUBLE PRECISION)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS pending_offsets (
            txid            BIGINT NOT NULL DEFAULT ({TXID_DEFAULT}),
            consumer_group  TEXT NOT NULL,
            topic           TEXT NOT NULL,
            partition       INT NOT NULL,
            next_offset     BIGINT NOT NULL)"
        ),
    ]
}

/// The consumer group under which the deriver records, per partition, the
/// next offset of what it derived (`{group}.derived`): where the processors'
/// budget checker splits spend the levels hold from spend they do not yet.
pub fn derived_group(group: &str) -> String {
    format!("{group}.derived")
}

/// The relations [`deferred_ddl`] creates (dropped with the projections).
pub const DEFERRED_TABLES: [&str; 3] = ["derive_state", "pending_corrections", "pending_offsets"];

pub(super) async fn setup(conn: &mut PgConnection) -> Result<()> {
    for ddl in deferred_ddl() {
        exec(conn, &ddl).await?;
    }
    Ok(())
}

/// Whether the database's projections derive later (plain mode's
/// `derive_state` exists), as the processors and the tests need to know
/// without the projections' configuration.
pub async fn enabled(conn: &mut PgConnection) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT to_regclass('derive_state') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Events and corrections written but not derived yet (0 where the writer
/// derives in its own transaction: TimescaleDB mode).
pub async fn backlog(conn: &mut PgConnection) -> Result<i64> {
    if !enabled(conn).await? {
        return Ok(0);
    }
    Ok(sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM events e, derive_state s
                 WHERE e.txid >= s.horizon AND NOT (e.txid = ANY(s.done)))
              + (SELECT count(*) FROM pending_corrections)",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Count every event stored so far as derived: for a history loaded in SQL
/// together with its levels (the benchmarks, the plan test), never while
/// projection workers write. Nothing to do in TimescaleDB mode.
pub async fn mark_all_derived(conn: &mut PgConnection) -> Result<()> {
    if enabled(conn).await? {
        // Every transaction below this one's id has ended.
        exec(
            conn,
            "UPDATE derive_state SET horizon = GREATEST(horizon, pg_current_xact_id()::text::int8),
                 done = '{}', updated_at = now() WHERE id = 1",
        )
        .await?;
    }
    Ok(())
}
