//! The binary as a user (and the lead's end-to-end test) drives it:
//! `run --once` against a local gateway stand-in, `status`, `install
//! --dry-run`, and SIGKILLs during a backfill.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use common::*;

type Got = Arc<Mutex<Vec<serde_json::Value>>>;

async fn handler(State(got): State<Got>, body: Bytes) -> (StatusCode, String) {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let n = v["events"].as_array().unwrap().len();
    got.lock()
        .unwrap()
        .extend(v["events"].as_array().unwrap().iter().cloned());
    (
        StatusCode::ACCEPTED,
        format!(r#"{{"accepted":{n},"rejected":[],"directives":[]}}"#),
    )
}

/// A gateway stand-in on its own thread; returns its base URL.
fn gateway() -> (String, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/v1/events", axum::routing::post(handler))
                .with_state(g);
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    (format!("http://{}", rx.recv().unwrap()), got)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

fn cmd(home: &Path, state: &Path, endpoint: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_agentops-collector"));
    c.arg("--home")
        .arg(home)
        .arg("--state-dir")
        .arg(state)
        .arg("--endpoint")
        .arg(endpoint)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AGENTOPS_COLLECTOR_API_KEY", "aok_0123abcd_test")
        .env("AGENTOPS_COLLECTOR_BACKFILL_DAYS", "36500")
        .env("AGENTOPS_COLLECTOR_SETTLE_MS", "0")
        .env("RUST_LOG", "warn");
    c
}

#[test]
fn run_once_sends_everything_once() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let state = tmp.path().join("state");
    copy_tree(&fixtures().join("claude"), &home.join(".claude"));
    copy_tree(&fixtures().join("codex"), &home.join(".codex"));
    let (url, got) = gateway();
    let out = cmd(&home, &state, &url)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // First run: backfill progress on stderr.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backfill: files 5/5"), "{err}");
    let events = got.lock().unwrap().clone();
    assert_eq!(events.len(), 22);
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 22);
    // Again: nothing new to send.
    let out = cmd(&home, &state, &url)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(got.lock().unwrap().len(), 22);

    let out = cmd(&home, &state, &url)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["outbox_depth"], 0);
    assert_eq!(st["counters"]["sent_events"], 22);
    assert!(st["last_send_result"].as_str().unwrap().starts_with("202"));
    let out = cmd(&home, &state, &url).arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 events queued"));
}

#[test]
fn gateway_down_exits_2_and_keeps_the_events() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let state = tmp.path().join("state");
    copy_tree(&fixtures().join("codex"), &home.join(".codex"));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let out = cmd(&home, &state, &dead)
        .args(["run", "--once", "--once-timeout-secs", "1"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (url, got) = gateway();
    let out = cmd(&home, &state, &url)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(got.lock().unwrap().len(), 8);
}

#[test]
fn install_dry_run_prints_the_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agentops-collector"))
        .args(["install", "--dry-run"])
        .env("HOME", tmp.path())
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(".config/systemd/user/agentops-collector.service"),
        "{text}"
    );
    assert!(text.contains("ExecStart="), "{text}");
    assert!(text.contains(" run"), "{text}");
    assert!(text.contains("WantedBy=default.target"), "{text}");
    assert!(!tmp.path().join(".config").exists());
}

/// Many sessions written as Claude Code would, for the kill test.
fn generate(home: &Path, sessions: usize, turns: usize) {
    let dir = home.join(".claude/projects/-home-dev-src-big");
    std::fs::create_dir_all(&dir).unwrap();
    let now = chrono::Utc::now() - chrono::Duration::hours(2);
    for s in 0..sessions {
        let sid = format!("{s:08x}-0000-4000-8000-000000000000");
        let mut text = String::new();
        for t in 0..turns {
            let ts = (now + chrono::Duration::seconds((s * turns + t) as i64)).to_rfc3339();
            text.push_str(&format!(
                r#"{{"type":"user","sessionId":"{sid}","uuid":"u-{s}-{t}","timestamp":"{ts}","cwd":"/home/dev/src/big","message":{{"role":"user","content":"turn {t}"}}}}"#
            ));
            text.push('\n');
            text.push_str(&format!(
                r#"{{"type":"assistant","sessionId":"{sid}","uuid":"a-{s}-{t}","timestamp":"{ts}","cwd":"/home/dev/src/big","message":{{"id":"msg_{s}_{t}","model":"claude-sonnet-4-5","content":[{{"type":"tool_use","id":"tu_{s}_{t}","name":"Bash","input":{{"command":"ls"}}}}],"usage":{{"input_tokens":{t},"output_tokens":7,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}}}}}"#
            ));
            text.push('\n');
            text.push_str(&format!(
                r#"{{"type":"user","sessionId":"{sid}","uuid":"r-{s}-{t}","timestamp":"{ts}","cwd":"/home/dev/src/big","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"tu_{s}_{t}","content":"ok"}}]}}}}"#
            ));
            text.push('\n');
        }
        std::fs::write(dir.join(format!("{sid}.jsonl")), text).unwrap();
    }
}

#[test]
fn sigkill_during_backfill_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let state = tmp.path().join("state");
    let (sessions, turns) = (40, 150);
    generate(&home, sessions, turns);
    let (url, got) = gateway();
    // Kill the collector at growing points of its work, several times.
    for delay_ms in [30u64, 80, 150, 300] {
        let mut child = cmd(&home, &state, &url)
            .args(["run"])
            .env("AGENTOPS_COLLECTOR_SCAN_INTERVAL_MS", "200")
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let out = cmd(&home, &state, &url)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = got.lock().unwrap().clone();
    let mut count: HashMap<String, u32> = HashMap::new();
    for e in &events {
        *count
            .entry(e["event_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    // Every event arrived; a batch in flight at a kill may arrive twice
    // (same ids: the pipeline drops the copy), nothing else does.
    let want = sessions * (1 + 2 * turns);
    assert_eq!(count.len(), want);
    let dup: u32 = count.values().map(|c| c - 1).sum();
    assert!(dup as usize <= 4 * 500, "{dup} duplicates");
    let llm_in: i64 = {
        let mut seen = std::collections::HashSet::new();
        events
            .iter()
            .filter(|e| {
                e["type"] == "llm_call" && seen.insert(e["event_id"].as_str().unwrap().to_owned())
            })
            .map(|e| e["input_tokens"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(llm_in, (sessions * (0..turns).sum::<usize>()) as i64);
}
