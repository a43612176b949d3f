//! The scan loop over a temporary home: backfill, follow appends, resumed
//! and ended sessions, crash atomicity of outbox + checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use agentops_collector::collector::Collector;
use agentops_collector::config::Config;
use agentops_collector::event::OutEvent;
use agentops_collector::store::{write_chunk, FileRecord, Store};
use common::*;

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

fn machine_id_file(dir: &Path) -> PathBuf {
    let p = dir.join("machine-id");
    std::fs::write(&p, "4c1c1e0f3b2a4d5e8f90a1b2c3d4e5f6\n").unwrap();
    p
}

struct Env {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    cfg: Config,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let claude = home.join(".claude");
    let codex = home.join(".codex");
    std::fs::create_dir_all(&claude).unwrap();
    std::fs::create_dir_all(&codex).unwrap();
    copy_tree(&fixtures().join("claude"), &claude);
    copy_tree(&fixtures().join("codex"), &codex);
    let cfg = Config {
        state_dir: Some(tmp.path().join("state")),
        home: Some(home.clone()),
        codex_dir: Some(codex),
        backfill_days: 36_500,
        session_idle_secs: 1_000_000_000,
        settle_ms: 0,
        machine_id_file: machine_id_file(tmp.path()),
        ..Config::default()
    };
    Env {
        _tmp: tmp,
        home,
        cfg,
    }
}

fn outbox(store: &Store) -> Vec<OutEvent> {
    store
        .outbox_batch(1_000_000, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, b)| serde_json::from_str(&b).unwrap())
        .collect()
}

fn set_old(path: &Path) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            all_files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn count_by_type(events: &[OutEvent]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for e in events {
        *m.entry(e.event_type.clone()).or_default() += 1;
    }
    m
}

#[test]
fn backfill_follow_resume_and_end() {
    let env = env();
    let mut c = Collector::open(env.cfg.clone()).unwrap();
    assert!(c.is_first_run());
    let r = c.scan(false, None).unwrap();
    assert_eq!(r.files, 5);
    assert_eq!(r.stats.parse_errors, 0);
    let events = outbox(&c.store);
    for e in &events {
        validate(e);
    }
    // S1 main (8) + subagent (3: S1 has started), the resumed copy (S2's
    // run_started, msg_031, msg_033) + S2's own file (msg_031 again:
    // dropped), Codex (8).
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "no event queued twice");
    assert_eq!(r.duplicates, 1, "msg_031 in both of S2's files");
    let by = count_by_type(&events);
    assert_eq!(by["run_started"], 3);
    assert_eq!(by["llm_call"], 5 + 2 + 2 + 4);
    assert_eq!(by["tool_call"], 2 + 1 + 3);
    assert_eq!(events.len(), 22);
    // The machine id: the OS id hashed with the collector's salt.
    assert_eq!(events[0].machine_id.as_ref(), Some(&c.machine.id));
    // Subagent work (the inline sidechain message and the subagent's own
    // file, read as separate files) rolls up into the parent session.
    let side: Vec<_> = events
        .iter()
        .filter(|e| e.attributes.get("sidechain").map(String::as_str) == Some("true"))
        .collect();
    assert_eq!(side.len(), 1 + 3);
    for e in side {
        assert_eq!(e.session_id.as_deref(), Some(S1));
        assert_eq!(e.run_id.as_deref(), Some(S1));
    }
    assert_eq!(c.machine.id.len(), 32);
    assert!(!c.machine.id.contains("4c1c1e0f"));

    // Nothing new: nothing queued, unchanged files not even opened.
    let r = c.scan(false, None).unwrap();
    assert_eq!((r.queued, r.files_read), (0, 0));

    // A restart (new process, same state dir): nothing again.
    drop(c);
    let mut c = Collector::open(env.cfg.clone()).unwrap();
    assert!(!c.is_first_run());
    let r = c.scan(false, None).unwrap();
    assert_eq!(r.queued, 0);

    // The partial last line of S1 completes; S2 resumes 40 minutes later.
    let s1 = env
        .home
        .join(format!(".claude/projects/-home-dev-src-acme/{S1}.jsonl"));
    let mut tail = b"2,\"output_tokens\":8,\"cache_read_input_tokens\":0,\"cache_creation_input_tokens\":0}},\"sessionId\":\"".to_vec();
    tail.extend_from_slice(S1.as_bytes());
    tail.extend_from_slice(b"\",\"uuid\":\"a0000014-0000-4000-8000-000000000014\",\"timestamp\":\"2026-03-02T00:03:00.000Z\",\"cwd\":\"/home/dev/src/acme\"}\n");
    append(&s1, &tail);
    let s2 = env
        .home
        .join(format!(".claude/projects/-home-dev-src-acme-wt/{S2}.jsonl"));
    append(&s2, &std::fs::read(claude_append()).unwrap());
    let before = outbox(&c.store).len();
    let r = c.scan(false, None).unwrap();
    assert_eq!(r.queued, 2);
    let events = outbox(&c.store);
    let new = &events[before..];
    let s1_new = new
        .iter()
        .find(|e| e.run_id.as_deref() == Some(S1))
        .unwrap();
    assert_eq!(s1_new.input_tokens, Some(12));
    assert_eq!(s1_new.output_tokens, Some(8));
    assert_eq!(s1_new.attributes["prompt_bytes"], "21"); // the non-UTF-8 prompt, lossy
    let s2_new = new
        .iter()
        .find(|e| e.run_id.as_deref() == Some(S2))
        .unwrap();
    assert_eq!(s2_new.output_tokens, Some(90));
    assert_eq!(s2_new.latency_ms, Some(6000));

    // Every file idle: each session ends once.
    let mut files = Vec::new();
    all_files(&env.home, &mut files);
    for f in &files {
        set_old(f);
    }
    let mut cfg = env.cfg.clone();
    cfg.session_idle_secs = 60;
    drop(c);
    let mut c = Collector::open(cfg.clone()).unwrap();
    let r = c.scan(false, None).unwrap();
    assert_eq!(r.sessions_ended, 3);
    let events = outbox(&c.store);
    let ends: Vec<&OutEvent> = events
        .iter()
        .filter(|e| e.event_type.starts_with("run_") && e.event_type != "run_started")
        .collect();
    let mut got: Vec<(String, String)> = ends
        .iter()
        .map(|e| (e.run_id.clone().unwrap(), e.event_type.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (CX.to_owned(), "run_failed".to_owned()),
            (S1.to_owned(), "run_completed".to_owned()),
            (S2.to_owned(), "run_completed".to_owned()),
        ]
    );
    let r = c.scan(false, None).unwrap();
    assert_eq!((r.sessions_ended, r.queued), (0, 0));

    // The status reads the same database.
    let st = agentops_collector::status::status_json(&cfg).unwrap();
    assert_eq!(st["outbox_depth"], events.len() as u64);
    assert_eq!(st["files"].as_array().unwrap().len(), 5);
    let text = agentops_collector::status::status_text(&st);
    assert!(text.contains("events queued"), "{text}");
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn crash_before_commit_loses_and_doubles_nothing() {
    let env = env();
    // What a complete run queues.
    let expected: Vec<OutEvent> = {
        let mut c = Collector::open(env.cfg.clone()).unwrap();
        c.scan(false, None).unwrap();
        outbox(&c.store)
    };
    let mut cfg = env.cfg.clone();
    cfg.state_dir = Some(env.home.join("state2"));
    let mut c = Collector::open(cfg.clone()).unwrap();
    // A crash in the middle of a commit: the chunk's events and the
    // checkpoint advance were written inside a transaction never committed.
    {
        let tx = c.store.conn.transaction().unwrap();
        let rec = FileRecord {
            kind: agentops_collector::sources::AgentKind::Codex,
            checkpoint: agentops_collector::tailer::Checkpoint {
                offset: 999,
                ..Default::default()
            },
            state: Default::default(),
        };
        let path = env.home.join(".codex/sessions/x.jsonl");
        write_chunk(
            &tx,
            Some((&path, &rec)),
            &Default::default(),
            &expected[..5],
            &[],
            1_000_000,
        )
        .unwrap();
        drop(tx);
    }
    assert_eq!(c.store.outbox_depth().unwrap(), 0);
    assert!(c.store.load_files().unwrap().is_empty());
    // After the crash the run reads everything: each event once.
    c.scan(false, None).unwrap();
    let got = outbox(&c.store);
    assert_eq!(got, expected);

    // A lost checkpoint (the files' rows gone, the queued ids kept): read
    // again, the same ids, nothing queued twice.
    c.store.conn.execute("DELETE FROM files", []).unwrap();
    c.reload().unwrap();
    let r = c.scan(false, None).unwrap();
    assert_eq!(r.queued, 0);
    // Everything again but the run_started (the sessions say started), and
    // msg_031 twice (both of S2's files).
    assert_eq!(r.duplicates, expected.len() as u64 - 3 + 1);

    // A lost state dir: the same ids again (the pipeline dedups them).
    let mut cfg3 = cfg.clone();
    cfg3.state_dir = Some(env.home.join("state3"));
    let mut c3 = Collector::open(cfg3).unwrap();
    c3.scan(false, None).unwrap();
    let mut a: Vec<String> = outbox(&c3.store).into_iter().map(|e| e.event_id).collect();
    let mut b: Vec<String> = expected.iter().map(|e| e.event_id.clone()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn outbox_is_bounded() {
    let env = env();
    let mut cfg = env.cfg.clone();
    cfg.max_outbox_rows = 5;
    let mut c = Collector::open(cfg).unwrap();
    c.scan(false, None).unwrap();
    assert_eq!(c.store.outbox_depth().unwrap(), 5);
    let dropped: u64 = c
        .store
        .counters()
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "dropped_outbox_full")
        .map(|(_, v)| v)
        .unwrap();
    assert_eq!(dropped, 22 - 5);
}

#[test]
fn backfill_window_skips_old_events_with_a_count() {
    let env = env();
    let mut cfg = env.cfg.clone();
    cfg.backfill_days = 7; // the fixtures are from March 2026
    let mut c = Collector::open(cfg).unwrap();
    let r = c.scan(false, None).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let old = agentops_collector::step::parse_ts("2026-03-10T00:00:00Z").unwrap();
    if now - old > 8 * 86_400_000 {
        assert_eq!(r.queued, 0);
        // Every event but the three run_started (a session wholly outside
        // the window never starts), and msg_031's copy.
        assert_eq!(r.stats.too_old, 22 - 3 + 1);
        let too_old = c
            .store
            .counters()
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == "too_old_skipped")
            .map(|(_, v)| v);
        assert_eq!(too_old, Some(20));
    }
}
