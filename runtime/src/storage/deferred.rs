//! Plain mode's deferred derivations: the projection writer appends events
//! (and cost corrections) with their offsets, and the deriver
//! (`agentops-projections`) folds them into everything derived from events
//! (the aggregate levels, runs, agents, the coding-agent hierarchy, the
//! per-tag levels) later, in larger chunks, each in one transaction with
//! its progress, the way TimescaleDB's continuous aggregates follow its
//! hypertable.
//!
//! Which events are derived: every event row carries the id of the
//! transaction that wrote it (`events.txid`, a default), and a statement
//! trigger on `events` notes that id in `pending_events` in the same
//! transaction, whoever writes (the worker, a loader, a hand-written
//! INSERT). The note becomes visible exactly when the transaction's events
//! do, whatever order transactions commit in; the deriver deletes it in the
//! transaction that derives those events. Corrections wait in
//! `pending_corrections` until the deriver applies them after the events of
//! the same or earlier transactions, then leave it; the batches' offsets
//! wait in `pending_offsets` until their events are derived, then move to
//! `consumer_offsets` under [`derived_group`]. Every pending table stays as
//! small as the backlog, however long another transaction on the server
//! runs.

use sqlx::PgConnection;

use super::{ensure, exec};
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
        // The column, then its default, only where the column is missing
        // (rows from before it stay NULL: derived): `ALTER TABLE` locks
        // `events` even when there is nothing to do, and every component
        // runs this set-up when it starts, while the writers insert. The
        // statements after it go through `storage::ensure` (made only
        // where missing).
        format!(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_attribute
                                WHERE attrelid = 'events'::regclass AND attname = 'txid'
                                  AND NOT attisdropped) THEN
                     ALTER TABLE events ADD COLUMN txid BIGINT;
                     ALTER TABLE events ALTER COLUMN txid SET DEFAULT ({TXID_DEFAULT});
                 END IF;
             END $$"
        ),
        "CREATE INDEX IF NOT EXISTS events_txid ON events (txid) WHERE txid IS NOT NULL".into(),
        "CREATE TABLE IF NOT EXISTS derive_state (
            id          SMALLINT PRIMARY KEY CHECK (id = 1),
            derived     BIGINT NOT NULL DEFAULT 0,
            updated_at  TIMESTAMPTZ NOT NULL DEFAULT now())"
            .into(),
        "INSERT INTO derive_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING".into(),
        "CREATE TABLE IF NOT EXISTS pending_events (txid BIGINT PRIMARY KEY)".into(),
        format!(
            "CREATE OR REPLACE FUNCTION agentops_pending_events() RETURNS trigger
             LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO pending_events (txid) VALUES ({TXID_DEFAULT})
                 ON CONFLICT (txid) DO NOTHING;
                 RETURN NULL;
             END $$"
        ),
        // Once per statement (a batch's COPY is one), not per row; created
        // only where missing (replacing it would lock `events`).
        "DO $$ BEGIN
             IF NOT EXISTS (SELECT 1 FROM pg_trigger
                            WHERE tgrelid = 'events'::regclass AND tgname = 'events_pending') THEN
                 CREATE TRIGGER events_pending AFTER INSERT ON events
                 FOR EACH STATEMENT EXECUTE FUNCTION agentops_pending_events();
             END IF;
         END $$"
            .into(),
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
pub const DEFERRED_TABLES: [&str; 4] = [
    "derive_state",
    "pending_events",
    "pending_corrections",
    "pending_offsets",
];

pub(super) async fn setup(conn: &mut PgConnection) -> Result<()> {
    for ddl in deferred_ddl() {
        ensure(conn, &ddl).await?;
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
        "SELECT (SELECT count(*) FROM events
                 WHERE txid = ANY(ARRAY(SELECT txid FROM pending_events)))
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
        exec(conn, "DELETE FROM pending_events").await?;
    }
    Ok(())
}
