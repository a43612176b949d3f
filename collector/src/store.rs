//! The state dir's SQLite database: file checkpoints and states, session
//! states, the outbox of events to send, the ids already queued, counters.
//!
//! A chunk of lines is committed in one transaction: its events enter the
//! outbox and the file's checkpoint advances together, so a crash anywhere
//! either keeps both or neither (the lines are read again and give the same
//! events, which the `seen` table and the pipeline's event-id dedupe drop).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::event::OutEvent;
use crate::mapper::{FileState, SessionState, Sessions};
use crate::sources::AgentKind;
use crate::tailer::Checkpoint;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    state TEXT NOT NULL,
    session TEXT,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    kind TEXT NOT NULL,
    session TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (kind, session)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    event_id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_ts ON seen (ts);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// A file as `status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub path: String,
    pub kind: String,
    pub checkpoint: Checkpoint,
    pub session: Option<String>,
    pub updated_at: i64,
}

/// A file's persisted record.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub kind: AgentKind,
    pub checkpoint: Checkpoint,
    pub state: FileState,
}

/// What committing a chunk did to the outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    pub queued: u64,
    /// Already queued or sent before (same event id).
    pub duplicates: u64,
    /// Oldest rows dropped to keep the outbox bounded.
    pub dropped: u64,
}

pub struct Store {
    pub conn: Connection,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Open (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: the sender reads while the scanner writes. synchronous=NORMAL
        // survives a process crash (SIGKILL) without an fsync per commit.
        // Pages freed by sent events go back to the file system (set before
        // the first table exists; see `reclaim`).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    /// Open an existing database read-only (`status`).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Store { conn })
    }

    pub fn load_files(&self) -> Result<HashMap<PathBuf, FileRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, kind, checkpoint, state FROM files")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (path, kind, cp, state) = row?;
            let Some(kind) = AgentKind::parse(&kind) else {
                continue;
            };
            let checkpoint = serde_json::from_str(&cp).unwrap_or_default();
            let state = serde_json::from_str(&state).unwrap_or_default();
            out.insert(
                PathBuf::from(path),
                FileRecord {
                    kind,
                    checkpoint,
                    state,
                },
            );
        }
        Ok(out)
    }

    pub fn load_sessions(&self) -> Result<Sessions> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, session, state FROM sessions")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Sessions::new();
        for row in rows {
            let (kind, session, state) = row?;
            let Some(kind) = AgentKind::parse(&kind) else {
                continue;
            };
            let state: SessionState = serde_json::from_str(&state).unwrap_or_default();
            out.insert((kind, session), state);
        }
        Ok(out)
    }

    /// Commit a chunk: file record, the dirty sessions, the events, counter
    /// increments. Clears the sessions' dirty flags once committed.
    pub fn commit_chunk(
        &mut self,
        file: Option<(&Path, &FileRecord)>,
        sessions: &mut Sessions,
        events: &[OutEvent],
        counters: &[(&str, u64)],
        max_outbox_rows: u64,
    ) -> Result<Committed> {
        let tx = self.conn.transaction()?;
        let done = write_chunk(&tx, file, sessions, events, counters, max_outbox_rows)?;
        tx.commit()?;
        for s in sessions.values_mut() {
            s.dirty = false;
        }
        Ok(done)
    }

    /// Rows in the outbox.
    pub fn outbox_depth(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// The oldest rows: at most `max_rows` and about `max_bytes` of bodies
    /// (always at least one row).
    pub fn outbox_batch(&self, max_rows: usize, max_bytes: usize) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, body FROM outbox ORDER BY id LIMIT ?1")?;
        let rows = stmt.query_map([max_rows as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut out: Vec<(i64, String)> = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            let (id, body): (i64, String) = row?;
            if !out.is_empty() && bytes + body.len() + 1 > max_bytes {
                break;
            }
            bytes += body.len() + 1;
            out.push((id, body));
        }
        Ok(out)
    }

    /// Give free pages back to the file system once there are many (a
    /// drained backlog). Returns the pages freed.
    pub fn reclaim(&self) -> Result<u64> {
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free < 2048 {
            return Ok(0);
        }
        // One page per step: run the statement to its end.
        let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum")?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        // Hand the pages back now rather than at the next checkpoint.
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(free.max(0) as u64)
    }

    /// Delete sent (or dropped) rows.
    pub fn outbox_delete(&mut self, ids: &[i64]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn bump(&self, counter: &str, n: u64) -> Result<()> {
        bump(&self.conn, counter, n)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// All counters (`counter.<name>` in `meta`).
    pub fn counters(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT substr(key, 9), value FROM meta WHERE key LIKE 'counter.%' ORDER BY key",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (k, v) = row?;
            out.push((k, v.parse().unwrap_or(0)));
        }
        Ok(out)
    }

    /// Forget queued ids of events older than `before_ms` (their lines are
    /// past the backfill window and are never turned into events again).
    pub fn prune_seen(&self, before_ms: i64) -> Result<u64> {
        Ok(self
            .conn
            .execute("DELETE FROM seen WHERE ts < ?1", [before_ms])? as u64)
    }

    /// Files with their checkpoints, for `status`.
    pub fn file_rows(&self) -> Result<Vec<FileRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT path, kind, checkpoint, session, updated_at FROM files ORDER BY path",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (path, kind, cp, session, updated_at) = row?;
            out.push(FileRow {
                path,
                kind,
                checkpoint: serde_json::from_str(&cp).unwrap_or_default(),
                session,
                updated_at,
            });
        }
        Ok(out)
    }
}

fn bump(conn: &Connection, counter: &str, n: u64) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('counter.' || ?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)",
        params![counter, n as i64],
    )?;
    Ok(())
}

/// The body of [`Store::commit_chunk`], inside the caller's transaction (a
/// test drops the transaction to simulate a crash before the commit).
pub fn write_chunk(
    tx: &Transaction<'_>,
    file: Option<(&Path, &FileRecord)>,
    sessions: &Sessions,
    events: &[OutEvent],
    counters: &[(&str, u64)],
    max_outbox_rows: u64,
) -> Result<Committed> {
    let now = now_ms();
    let mut done = Committed::default();
    {
        let mut seen =
            tx.prepare_cached("INSERT OR IGNORE INTO seen (event_id, ts) VALUES (?1, ?2)")?;
        let mut put = tx.prepare_cached(
            "INSERT INTO outbox (event_id, body, created_at) VALUES (?1, ?2, ?3)",
        )?;
        for e in events {
            let ts = crate::step::parse_ts(&e.timestamp).unwrap_or(now);
            if seen.execute(params![e.event_id, ts])? == 0 {
                done.duplicates += 1;
                continue;
            }
            let body = serde_json::to_string(e)?;
            put.execute(params![e.event_id, body, now])?;
            done.queued += 1;
        }
    }
    if done.queued > 0 {
        let (min, max): (Option<i64>, Option<i64>) = tx.query_row(
            "SELECT (SELECT min(id) FROM outbox), (SELECT max(id) FROM outbox)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let (Some(min), Some(max)) = (min, max) {
            let depth = (max - min + 1).max(0) as u64;
            if depth > max_outbox_rows {
                let excess = depth - max_outbox_rows;
                done.dropped = tx.execute(
                    "DELETE FROM outbox WHERE id < ?1",
                    [min.saturating_add(excess as i64)],
                )? as u64;
                tracing::warn!(
                    dropped = done.dropped,
                    max_outbox_rows,
                    "outbox full: oldest events dropped"
                );
            }
        }
    }
    if let Some((path, rec)) = file {
        tx.execute(
            "INSERT INTO files (path, kind, checkpoint, state, session, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (path) DO UPDATE SET kind = excluded.kind,
               checkpoint = excluded.checkpoint, state = excluded.state,
               session = excluded.session, updated_at = excluded.updated_at",
            params![
                path.to_string_lossy(),
                rec.kind.as_str(),
                serde_json::to_string(&rec.checkpoint)?,
                serde_json::to_string(&rec.state)?,
                rec.state.session_id,
                now
            ],
        )?;
    }
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO sessions (kind, session, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, session) DO UPDATE SET state = excluded.state",
        )?;
        for ((kind, session), s) in sessions.iter().filter(|(_, s)| s.dirty) {
            put.execute(params![kind.as_str(), session, serde_json::to_string(s)?])?;
        }
    }
    let dropped = done.dropped;
    let dup = done.duplicates;
    for (name, n) in counters.iter().copied().chain([
        ("dropped_outbox_full", dropped),
        ("duplicates_skipped", dup),
    ]) {
        bump(tx, name, n)?;
    }
    Ok(done)
}
