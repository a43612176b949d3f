//! The scan loop: discover session files, read what is new in each, map it
//! to events and commit chunk by chunk; end idle sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::config::Config;
use crate::event::OutEvent;
use crate::git::{place_of, Place};
use crate::machine::Machine;
use crate::mapper::{end_session, FileState, MapContext, Mapper, Sessions, Stats};
use crate::sources::{discover, AgentKind, Source};
use crate::store::{now_ms, FileRecord, Store};
use crate::tailer::Tail;

/// Bytes of lines read per transaction.
const CHUNK_BYTES: usize = 1 << 20;
/// A margin under the gateway's late window: an event this close to the
/// edge could be refused by the time it is sent.
const CUTOFF_MARGIN_MS: i64 = 10 * 60 * 1000;

struct Entry {
    rec: FileRecord,
    /// (size, mtime ns, inode) at the last look: unchanged files are not opened.
    seen: Option<(u64, i128, u64)>,
    mtime_ms: i64,
}

/// Totals of one scan.
#[derive(Debug, Clone, Default)]
pub struct ScanReport {
    pub files: u64,
    pub files_read: u64,
    pub stats: Stats,
    pub queued: u64,
    pub duplicates: u64,
    pub restarts: u64,
    pub sessions_ended: u64,
}

/// Progress lines on stderr while a large backlog is read.
pub struct Progress {
    started: Instant,
    last: Instant,
    pub files_total: u64,
    pub files_done: u64,
    pub lines: u64,
    pub events: u64,
}

impl Progress {
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            files_total: 0,
            files_done: 0,
            lines: 0,
            events: 0,
        }
    }

    fn tick(&mut self, force: bool) {
        if !force && self.last.elapsed().as_millis() < 1000 {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        eprintln!(
            "backfill: files {}/{}, lines {}, events {}, {:.0} events/s",
            self.files_done,
            self.files_total,
            self.lines,
            self.events,
            self.events as f64 / secs
        );
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

pub struct Collector {
    pub cfg: Config,
    pub machine: Machine,
    pub store: Store,
    pub sources: Vec<Source>,
    files: HashMap<PathBuf, Entry>,
    pub sessions: Sessions,
    places: std::cell::RefCell<HashMap<(String, Option<String>), Place>>,
    /// Called after a commit that queued events (wakes the sender).
    pub on_queued: Option<Arc<dyn Fn() + Send + Sync>>,
}

fn mtime_of(meta: &std::fs::Metadata) -> (i128, i64) {
    let t = meta.modified().unwrap_or(UNIX_EPOCH);
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_nanos() as i128, d.as_millis() as i64),
        Err(_) => (0, 0),
    }
}

#[cfg(unix)]
fn ino_of(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn ino_of(_meta: &std::fs::Metadata) -> u64 {
    0
}

impl Collector {
    /// Open the state dir (creating it) and load the persisted state.
    pub fn open(cfg: Config) -> Result<Collector> {
        let state_dir = cfg.state_dir()?;
        std::fs::create_dir_all(&state_dir)?;
        let machine = crate::machine::detect(&state_dir, &cfg.machine_id_file)?;
        let store = Store::open(&cfg.db_path()?)?;
        let sources = cfg.sources()?;
        let mut c = Collector {
            cfg,
            machine,
            store,
            sources,
            files: HashMap::new(),
            sessions: Sessions::new(),
            places: Default::default(),
            on_queued: None,
        };
        c.reload()?;
        c.store
            .set_meta("machine", &serde_json::to_string(&c.machine)?)?;
        c.store
            .set_meta("sources", &serde_json::to_string(&c.sources)?)?;
        Ok(c)
    }

    /// Forget in-memory state and read it back from the database (after a
    /// failed commit, the memory may be ahead of it).
    pub fn reload(&mut self) -> Result<()> {
        self.files = self
            .store
            .load_files()?
            .into_iter()
            .map(|(p, rec)| {
                (
                    p,
                    Entry {
                        rec,
                        seen: None,
                        mtime_ms: 0,
                    },
                )
            })
            .collect();
        self.sessions = self.store.load_sessions()?;
        Ok(())
    }

    /// No file was ever read (first run: backfill).
    pub fn is_first_run(&self) -> bool {
        self.files.is_empty()
    }

    fn cutoff_ms(&self, now: i64) -> i64 {
        now - (self.cfg.backfill_days as i64).saturating_mul(86_400_000) + CUTOFF_MARGIN_MS
    }

    /// One scan: every source, every changed file, then idle sessions.
    /// `flush_all` sends assistant messages without waiting for the file to
    /// settle (`--once`).
    pub fn scan(
        &mut self,
        flush_all: bool,
        mut progress: Option<&mut Progress>,
    ) -> Result<ScanReport> {
        let mut report = ScanReport::default();
        let now = now_ms();
        let mut paths: Vec<(AgentKind, PathBuf)> = Vec::new();
        for src in &self.sources {
            for p in discover(src) {
                paths.push((src.kind, p));
            }
        }
        report.files = paths.len() as u64;
        if let Some(p) = progress.as_deref_mut() {
            p.files_total = paths.len() as u64;
        }
        for (kind, path) in paths {
            let r = self.scan_file(
                kind,
                &path,
                now,
                flush_all,
                &mut report,
                progress.as_deref_mut(),
            );
            if let Err(e) = r {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "file not read");
                if e.downcast_ref::<rusqlite::Error>().is_some() {
                    self.reload()?;
                    return Err(e);
                }
            }
            if let Some(p) = progress.as_deref_mut() {
                p.files_done += 1;
                p.tick(false);
            }
        }
        self.end_idle_sessions(now, &mut report)?;
        if let Some(p) = progress {
            p.tick(true);
        }
        let s = &report.stats;
        self.store.bump("lines", s.lines)?;
        if s.too_old > 0 {
            tracing::info!(
                too_old = s.too_old,
                backfill_days = self.cfg.backfill_days,
                "events older than the backfill window skipped"
            );
        }
        Ok(report)
    }

    fn scan_file(
        &mut self,
        kind: AgentKind,
        path: &Path,
        now: i64,
        flush_all: bool,
        report: &mut ScanReport,
        mut progress: Option<&mut Progress>,
    ) -> Result<()> {
        let meta = std::fs::metadata(path)?;
        let (mtime_ns, mtime_ms) = mtime_of(&meta);
        let sig = (meta.len(), mtime_ns, ino_of(&meta));
        let entry = self
            .files
            .entry(path.to_path_buf())
            .or_insert_with(|| Entry {
                rec: FileRecord {
                    kind,
                    checkpoint: Default::default(),
                    state: FileState::default(),
                },
                seen: None,
                mtime_ms,
            });
        entry.mtime_ms = mtime_ms;
        let quiet = now - mtime_ms >= self.cfg.settle_ms as i64;
        let idle = now - mtime_ms >= (self.cfg.session_idle_secs as i64) * 1000;
        let pending_flush = entry.rec.state.pending_llm.is_some() && (flush_all || quiet);
        if entry.seen == Some(sig) && !pending_flush {
            return Ok(());
        }
        report.files_read += 1;
        let mut tail = Tail::open(path, &entry.rec.checkpoint)?;
        if let Some(r) = tail.restart {
            tracing::info!(path = %path.display(), reason = ?r, "file read again from its start");
            report.restarts += 1;
            entry.rec.state = FileState::default();
            self.store.bump("file_restarts", 1)?;
        }
        let mut current = entry.rec.state.clone();
        let cutoff = self.cutoff_ms(now);
        let machine = self.machine.clone();
        let keep_content = self.cfg.keep_content;
        let places = &self.places;
        let resolve = |cwd: &str, hint: Option<&str>| {
            resolve_place(&mut places.borrow_mut(), &machine.id, cwd, hint)
        };
        let ctx = MapContext {
            machine: &machine,
            kind,
            path,
            keep_content,
            cutoff_ms: cutoff,
            fallback_ts: mtime_ms,
            resolve: &resolve,
        };
        let accept_whole = |b: &[u8]| crate::step::line_json(b).is_ok();
        loop {
            let take: crate::tailer::WholeLine<'_> = if idle { Some(&accept_whole) } else { None };
            let Some(chunk) = tail.next_chunk(CHUNK_BYTES, take)? else {
                break;
            };
            let mut state = current.clone();
            let mut out: Vec<OutEvent> = Vec::new();
            let mut stats = Stats::default();
            {
                let mut m = Mapper {
                    ctx: &ctx,
                    fs: &mut state,
                    sessions: &mut self.sessions,
                    out: &mut out,
                    stats: &mut stats,
                };
                for (off, line) in chunk.lines() {
                    m.line(off, line);
                }
            }
            let rec = FileRecord {
                kind,
                checkpoint: tail.cp.clone(),
                state,
            };
            let counters = stat_counters(&stats);
            let done = match self.store.commit_chunk(
                Some((path, &rec)),
                &mut self.sessions,
                &out,
                &counters,
                self.cfg.max_outbox_rows,
            ) {
                Ok(d) => d,
                Err(e) => {
                    self.reload()?;
                    return Err(e);
                }
            };
            current = rec.state.clone();
            if let Some(e) = self.files.get_mut(path) {
                e.rec = rec;
            }
            report.stats.add(&stats);
            report.queued += done.queued;
            report.duplicates += done.duplicates;
            if let Some(p) = progress.as_deref_mut() {
                p.lines += stats.lines;
                p.events += done.queued;
                p.tick(false);
            }
            if done.queued > 0 {
                if let Some(f) = &self.on_queued {
                    f();
                }
            }
        }
        // The assistant message at the end waits for its file to settle.
        if current.pending_llm.is_some() && (flush_all || quiet) {
            let mut state = current.clone();
            let mut out = Vec::new();
            let mut stats = Stats::default();
            Mapper {
                ctx: &ctx,
                fs: &mut state,
                sessions: &mut self.sessions,
                out: &mut out,
                stats: &mut stats,
            }
            .flush_llm();
            let rec = FileRecord {
                kind,
                checkpoint: tail.cp.clone(),
                state,
            };
            let counters = stat_counters(&stats);
            let done = self.store.commit_chunk(
                Some((path, &rec)),
                &mut self.sessions,
                &out,
                &counters,
                self.cfg.max_outbox_rows,
            )?;
            report.stats.add(&stats);
            report.queued += done.queued;
            report.duplicates += done.duplicates;
            if let Some(e) = self.files.get_mut(path) {
                e.rec = rec;
            }
            if done.queued > 0 {
                if let Some(f) = &self.on_queued {
                    f();
                }
            }
        }
        if let Some(e) = self.files.get_mut(path) {
            e.seen = Some(sig);
        }
        Ok(())
    }

    /// Sessions whose last step is older than `session_idle_secs` and whose
    /// files have not changed since: flush what waits, then `run_completed`
    /// or `run_failed`.
    fn end_idle_sessions(&mut self, now: i64, report: &mut ScanReport) -> Result<()> {
        let idle_ms = (self.cfg.session_idle_secs as i64).saturating_mul(1000);
        let mut candidates: Vec<(AgentKind, String)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ended_at.is_none() && s.last_ts.is_some_and(|t| now - t >= idle_ms))
            .map(|(k, _)| k.clone())
            .collect();
        candidates.sort();
        for (kind, session) in candidates {
            // A file of the session written recently: not ended yet.
            let busy = self.files.values().any(|e| {
                e.rec.kind == kind
                    && e.rec.state.session_id.as_deref() == Some(session.as_str())
                    && now - e.mtime_ms < idle_ms
                    && e.mtime_ms > 0
            });
            if busy {
                continue;
            }
            let cutoff = self.cutoff_ms(now);
            let machine = self.machine.clone();
            let places = &self.places;
            let resolve = |cwd: &str, hint: Option<&str>| {
                resolve_place(&mut places.borrow_mut(), &machine.id, cwd, hint)
            };
            let paths: Vec<PathBuf> = self
                .files
                .iter()
                .filter(|(_, e)| {
                    e.rec.kind == kind
                        && (e
                            .rec
                            .state
                            .pending_llm
                            .as_ref()
                            .is_some_and(|p| p.session == session)
                            || e.rec
                                .state
                                .pending_tools
                                .values()
                                .any(|t| t.session == session))
                })
                .map(|(p, _)| p.clone())
                .collect();
            for path in paths {
                let Some(entry) = self.files.get(&path) else {
                    continue;
                };
                let ctx = MapContext {
                    machine: &machine,
                    kind,
                    path: &path,
                    keep_content: self.cfg.keep_content,
                    cutoff_ms: cutoff,
                    fallback_ts: entry.mtime_ms,
                    resolve: &resolve,
                };
                let mut state = entry.rec.state.clone();
                let mut out = Vec::new();
                let mut stats = Stats::default();
                Mapper {
                    ctx: &ctx,
                    fs: &mut state,
                    sessions: &mut self.sessions,
                    out: &mut out,
                    stats: &mut stats,
                }
                .flush_session(&session);
                let rec = FileRecord {
                    kind,
                    checkpoint: entry.rec.checkpoint.clone(),
                    state,
                };
                let done = self.store.commit_chunk(
                    Some((&path, &rec)),
                    &mut self.sessions,
                    &out,
                    &stat_counters(&stats),
                    self.cfg.max_outbox_rows,
                )?;
                report.stats.add(&stats);
                report.queued += done.queued;
                if let Some(e) = self.files.get_mut(&path) {
                    e.rec = rec;
                }
            }
            let ctx = MapContext {
                machine: &machine,
                kind,
                path: Path::new(""),
                keep_content: self.cfg.keep_content,
                cutoff_ms: cutoff,
                fallback_ts: now,
                resolve: &resolve,
            };
            let mut out = Vec::new();
            let mut stats = Stats::default();
            end_session(&ctx, &session, &mut self.sessions, &mut out, &mut stats);
            let done = self.store.commit_chunk(
                None,
                &mut self.sessions,
                &out,
                &stat_counters(&stats),
                self.cfg.max_outbox_rows,
            )?;
            report.stats.add(&stats);
            report.queued += done.queued;
            report.sessions_ended += 1;
            if done.queued > 0 {
                if let Some(f) = &self.on_queued {
                    f();
                }
            }
        }
        Ok(())
    }

    /// Forget queued ids older than the backfill window (and a day).
    pub fn prune(&self) -> Result<u64> {
        let before = self.cutoff_ms(now_ms()) - 86_400_000;
        self.store.prune_seen(before)
    }
}

/// Places are resolved once per (cwd, remote hint) per process.
fn resolve_place(
    places: &mut HashMap<(String, Option<String>), Place>,
    machine: &str,
    cwd: &str,
    hint: Option<&str>,
) -> Place {
    let key = (cwd.to_owned(), hint.map(str::to_owned));
    places
        .entry(key)
        .or_insert_with(|| place_of(machine, cwd, hint))
        .clone()
}

/// Pass counters persisted with each chunk.
fn stat_counters(s: &Stats) -> Vec<(&'static str, u64)> {
    vec![
        ("parse_errors", s.parse_errors),
        ("events_created", s.events),
        ("too_old_skipped", s.too_old),
        ("orphan_tool_results", s.orphan_results),
        ("tool_results_missing", s.missing_results),
        ("lines_without_session", s.no_session),
        ("compactions", s.compactions),
    ]
}

/// Seconds since the epoch (for logs).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
