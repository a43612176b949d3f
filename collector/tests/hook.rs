//! `hook claude-code` as Claude Code runs it (the binary, the hook JSON on
//! stdin) against a stand-in gateway answering `GET /v1/directives` as the
//! contract says: deny on a directive, allow on none, allow (fail-open) and
//! a log line on every failure, within the bound.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentops_collector::hook::{blocking, deny_message, deny_output, parse_answer, Directive};
use agentops_collector::mapper::{FileState, MapContext, Mapper, Sessions, Stats};
use agentops_collector::sources::AgentKind;

const KEY: &str = "aok_0123abcd_hooktest";
const SESSION: &str = "7f3e2a10-4b5c-4d6e-8f90-a1b2c3d4e5f6";
const PAUSED: &str = r#"{"directives":[{"scope":"project","id":"github.com/acme/shop","action":"pause","reason":"budget 'shop' reached 100%"}]}"#;

/// How the stand-in answers.
#[derive(Clone)]
enum Reply {
    /// Status and body.
    With(u16, &'static str),
    /// Accept the connection, read the request, never answer.
    Never,
}

/// One request as received: the target (path and query) and the headers.
#[derive(Debug, Clone)]
struct Got {
    target: String,
    headers: HashMap<String, String>,
}

impl Got {
    fn query(&self) -> HashMap<String, String> {
        let url = reqwest::Url::parse(&format!("http://x{}", self.target)).unwrap();
        url.query_pairs().into_owned().collect()
    }
}

/// A gateway stand-in on its own thread (std::net, one request per
/// connection); returns its base URL and what it received.
fn gateway(reply: Reply) -> (String, Arc<Mutex<Vec<Got>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                buf.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let mut lines = text.split("\r\n");
            let target = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or("")
                .to_owned();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            g.lock().unwrap().push(Got { target, headers });
            match &reply {
                Reply::Never => held.push(s),
                Reply::With(status, body) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
            }
        }
    });
    (url, got)
}

/// A base URL nothing listens on.
fn refused() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// A temporary home, state dir, OS machine id and a git checkout of
/// `git@github.com:Acme/Shop.git` whose subdirectory is the session's cwd.
struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        std::fs::create_dir_all(tmp.path().join("shop/.git")).unwrap();
        std::fs::create_dir_all(tmp.path().join("shop/src/api")).unwrap();
        std::fs::write(
            tmp.path().join("shop/.git/config"),
            "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = git@github.com:Acme/Shop.git\n",
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("os-machine-id"),
            "0a1b2c3d4e5f60718293a4b5c6d7e8f9\n",
        )
        .unwrap();
        Env { tmp }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    fn cwd(&self) -> String {
        self.path("shop/src/api").to_string_lossy().into_owned()
    }

    fn input(&self) -> String {
        serde_json::json!({
            "session_id": SESSION,
            "transcript_path": self.path("home/.claude/projects/x/s.jsonl"),
            "cwd": self.cwd(),
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "cargo test", "description": "Run tests"},
            "tool_use_id": "toolu_01ABC"
        })
        .to_string()
    }

    fn command(&self, endpoint: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_agentops-collector"));
        c.arg("--state-dir")
            .arg(self.path("state"))
            .arg("--endpoint")
            .arg(endpoint)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("AGENTOPS_COLLECTOR_API_KEY", KEY)
            .env(
                "AGENTOPS_COLLECTOR_MACHINE_ID_FILE",
                self.path("os-machine-id"),
            );
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("state/hook.log")).unwrap_or_default()
    }
}

/// Run `c` with `input` on stdin (kept open when `None`): its output, or a
/// panic past `deadline` (the hook must never get there).
fn run(mut c: Command, input: Option<&str>, deadline: Duration) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let held = match input {
        Some(text) => {
            let mut stdin = stdin;
            // A hook that ends without reading (a bad command line) closes
            // its end first: what it answers is what counts.
            if let Err(e) = stdin.write_all(text.as_bytes()) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            }
            None
        }
        None => Some(stdin),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(deadline)
        .unwrap_or_else(|_| panic!("the hook did not return within {deadline:?}"));
    drop(held);
    out.unwrap()
}

fn hook(env: &Env, endpoint: &str, extra: &[&str]) -> Output {
    let mut c = env.command(endpoint);
    c.args(["hook", "claude-code"]).args(extra);
    run(c, Some(&env.input()), Duration::from_secs(15))
}

fn assert_allowed(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "allow prints nothing: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn paused_project_denies_with_scope_id_and_reason() {
    let env = Env::new();
    let (url, _) = gateway(Reply::With(200, PAUSED));
    let out = hook(&env, &url, &[]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = &v["hookSpecificOutput"];
    assert_eq!(h["hookEventName"], "PreToolUse");
    assert_eq!(h["permissionDecision"], "deny");
    assert_eq!(
        h["permissionDecisionReason"],
        "AgentOps: project github.com/acme/shop is paused: budget 'shop' reached 100%. \
         Ask your platform team or resume it in the AgentOps console."
    );
    assert_eq!(v["systemMessage"], h["permissionDecisionReason"]);
    assert!(
        env.log().contains("denied Bash in session"),
        "{}",
        env.log()
    );
}

#[test]
fn no_directive_allows_with_no_output() {
    let env = Env::new();
    let (url, got) = gateway(Reply::With(200, r#"{"directives":[]}"#));
    let out = hook(&env, &url, &[]);
    assert_allowed(&out);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(got.lock().unwrap().len(), 1);
    assert_eq!(env.log(), "");
}

#[test]
fn the_request_carries_the_sessions_hierarchy_and_the_key() {
    let env = Env::new();
    let (url, got) = gateway(Reply::With(200, r#"{"directives":[]}"#));
    assert_allowed(&hook(&env, &url, &[]));
    let got = got.lock().unwrap()[0].clone();
    assert!(got.target.starts_with("/v1/directives?"), "{}", got.target);
    assert_eq!(got.headers["authorization"], format!("Bearer {KEY}"));
    let q = got.query();
    assert_eq!(q.len(), 5, "{q:?}");
    assert_eq!(q["agent_id"], "claude-code");
    assert_eq!(q["project_id"], "github.com/acme/shop");
    assert_eq!(q["session_id"], SESSION);

    // The same ids the mapper puts on the session's events.
    let machine =
        agentops_collector::machine::detect(&env.path("state"), &env.path("os-machine-id"))
            .unwrap();
    let resolve =
        |cwd: &str, hint: Option<&str>| agentops_collector::git::place_of(&machine.id, cwd, hint);
    let path = env.path("home/.claude/projects/-shop/s.jsonl");
    let ctx = MapContext {
        machine: &machine,
        kind: AgentKind::ClaudeCode,
        path: &path,
        keep_content: false,
        cutoff_ms: 0,
        fallback_ts: 1_772_409_600_000,
        resolve: &resolve,
    };
    let (mut fs, mut sessions, mut stats, mut events) = (
        FileState::default(),
        Sessions::new(),
        Stats::default(),
        Vec::new(),
    );
    let line = serde_json::json!({
        "type": "user", "sessionId": SESSION, "uuid": "u-1",
        "timestamp": "2026-03-02T00:00:00.000Z", "cwd": env.cwd(),
        "message": {"role": "user", "content": "run the tests"}
    })
    .to_string();
    Mapper {
        ctx: &ctx,
        fs: &mut fs,
        sessions: &mut sessions,
        out: &mut events,
        stats: &mut stats,
    }
    .line(0, line.as_bytes());
    let e = &events[0];
    assert_eq!(e.agent_id, q["agent_id"]);
    assert_eq!(e.project_id.as_deref(), Some(q["project_id"].as_str()));
    assert_eq!(e.machine_id.as_deref(), Some(q["machine_id"].as_str()));
    assert_eq!(e.workspace_id.as_deref(), Some(q["workspace_id"].as_str()));
    assert_eq!(e.session_id.as_deref(), Some(q["session_id"].as_str()));
}

#[test]
fn a_gateway_that_never_answers_is_waited_for_within_the_bound() {
    let env = Env::new();
    let (url, got) = gateway(Reply::Never);
    let mut c = env.command(&url);
    c.args(["hook", "claude-code", "--timeout-ms", "300"]);
    // 10× the bound only to fail instead of hanging.
    let out = run(c, Some(&env.input()), Duration::from_secs(3));
    assert_allowed(&out);
    assert_eq!(got.lock().unwrap().len(), 1, "it did ask");
    let log = env.log();
    assert!(log.contains("fail-open"), "{log}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("fail-open"));
}

#[test]
fn the_bound_comes_from_the_configuration_too() {
    let env = Env::new();
    let (url, _) = gateway(Reply::Never);
    let mut c = env.command(&url);
    c.env("AGENTOPS_COLLECTOR_HOOK_TIMEOUT_MS", "200")
        .args(["hook", "claude-code"]);
    let out = run(c, Some(&env.input()), Duration::from_secs(2));
    assert_allowed(&out);
    assert!(env.log().contains("fail-open"));
}

#[test]
fn connection_refused_allows_and_logs_a_line() {
    let env = Env::new();
    let out = hook(&env, &refused(), &[]);
    assert_allowed(&out);
    let log = env.log();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("/v1/directives"), "{log}");
    assert!(log.contains("gateway unreachable"), "{log}");
    assert!(log.contains("waited "), "{log}");
    assert!(log.contains("tool call allowed (fail-open)"), "{log}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), log);
    // Another call: another line.
    assert_allowed(&hook(&env, &refused(), &[]));
    assert_eq!(env.log().lines().count(), 2);
}

#[test]
fn errors_and_bad_answers_allow() {
    for (status, body) in [
        (503, r#"{"error":"unavailable"}"#),
        (401, r#"{"error":"bad key"}"#),
        (200, "<html>"),
        (200, r#"{"directive":[]}"#),
    ] {
        let env = Env::new();
        let (url, _) = gateway(Reply::With(status, body));
        assert_allowed(&hook(&env, &url, &[]));
        assert!(
            env.log().contains("fail-open"),
            "{status} {body}: {}",
            env.log()
        );
    }
}

#[test]
fn stdin_left_open_or_bad_does_not_block() {
    let env = Env::new();
    let (url, got) = gateway(Reply::With(200, PAUSED));
    let mut c = env.command(&url);
    c.args(["hook", "claude-code", "--timeout-ms", "300"]);
    assert_allowed(&run(c, None, Duration::from_secs(3)));
    assert!(env.log().contains("did not arrive"), "{}", env.log());
    let mut c = env.command(&url);
    c.args(["hook", "claude-code"]);
    assert_allowed(&run(c, Some("not json"), Duration::from_secs(15)));
    assert!(env.log().contains("bad hook input"), "{}", env.log());
    assert!(got.lock().unwrap().is_empty());
}

#[test]
fn no_key_or_a_bad_command_line_allows() {
    let env = Env::new();
    let (url, got) = gateway(Reply::With(200, PAUSED));
    let mut c = env.command(&url);
    c.env_remove("AGENTOPS_COLLECTOR_API_KEY")
        .args(["hook", "claude-code"]);
    assert_allowed(&run(c, Some(&env.input()), Duration::from_secs(15)));
    assert!(env.log().contains("no ingest key"), "{}", env.log());
    let mut c = env.command(&url);
    c.args(["hook", "claude-code", "--no-such-flag"]);
    assert_allowed(&run(c, Some(&env.input()), Duration::from_secs(15)));
    assert!(got.lock().unwrap().is_empty());
}

#[test]
fn other_hook_events_are_let_through_without_asking() {
    let env = Env::new();
    let (url, got) = gateway(Reply::With(200, PAUSED));
    let input = env.input().replace("\"PreToolUse\"", "\"PostToolUse\"");
    let mut c = env.command(&url);
    c.args(["hook", "claude-code"]);
    assert_allowed(&run(c, Some(&input), Duration::from_secs(15)));
    assert!(got.lock().unwrap().is_empty());
}

/// The command `install --claude-hook` writes, run the way Claude Code runs
/// it (a shell), denies.
#[test]
fn the_installed_command_denies() {
    let env = Env::new();
    let (url, got) = gateway(Reply::With(200, PAUSED));
    let out = env
        .command(&url)
        .args(["--home"])
        .arg(env.path("home"))
        .args(["install", "--claude-hook"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("home/.claude/settings.json")).unwrap())
            .unwrap();
    let handler = &settings["hooks"]["PreToolUse"][0]["hooks"][0];
    let command = handler["command"].as_str().unwrap();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .env("AGENTOPS_COLLECTOR_API_KEY", KEY)
        .env(
            "AGENTOPS_COLLECTOR_MACHINE_ID_FILE",
            env.path("os-machine-id"),
        )
        .current_dir(env.cwd());
    let out = run(sh, Some(&env.input()), Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
    assert_eq!(got.lock().unwrap().len(), 1);
    assert!(
        env.path("state/hook.log").exists(),
        "--state-dir carried over"
    );
}

// Pure parts: the answer and the message.

fn d(scope: &str, id: &str, action: &str, reason: Option<&str>) -> Directive {
    Directive {
        scope: scope.into(),
        id: id.into(),
        action: action.into(),
        reason: reason.map(str::to_owned),
    }
}

#[test]
fn kill_is_stopped_and_several_are_listed_once() {
    let ds = vec![
        d("session", "s-1", "kill", Some("over budget.")),
        d("machine", "m\n1", "pause", None),
        d("session", "s-1", "kill", Some("over budget.")),
        d("project", "p", "warn", Some("a newer action")),
    ];
    let b = blocking(&ds);
    assert_eq!(b.len(), 2);
    assert_eq!(
        deny_message(&b),
        "AgentOps: session s-1 is stopped: over budget; machine m_1 is paused. \
         Ask your platform team or resume it in the AgentOps console."
    );
}

#[test]
fn answers_and_output() {
    assert_eq!(parse_answer(br#"{"directives":[]}"#).unwrap(), vec![]);
    assert_eq!(parse_answer(PAUSED.as_bytes()).unwrap().len(), 1);
    assert!(parse_answer(b"{}").is_err());
    assert!(parse_answer(b"<html>").is_err());
    assert!(blocking(&[d("agent", "claude-code", "resume", None)]).is_empty());
    let v: serde_json::Value = serde_json::from_str(&deny_output("no\n\"x\"")).unwrap();
    assert_eq!(
        v["hookSpecificOutput"]["permissionDecisionReason"],
        "no\n\"x\""
    );
}

/// Without an OS machine id, hooks starting together with the collector on
/// a fresh machine agree on the one id kept in the state dir.
#[test]
fn a_kept_machine_id_is_created_once_by_concurrent_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let none = tmp.path().join("no-os-machine-id");
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    agentops_collector::machine::detect(&state, &none)
                        .unwrap()
                        .id
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let kept = std::fs::read_to_string(state.join("machine-id")).unwrap();
    assert_eq!(kept.trim(), ids[0]);
    let left: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary files left");
    // A file without a valid id is replaced.
    std::fs::write(state.join("machine-id"), "garbage").unwrap();
    let fresh = agentops_collector::machine::detect(&state, &none)
        .unwrap()
        .id;
    assert_eq!(fresh.len(), 32);
    assert_ne!(fresh, ids[0]);
    assert_eq!(
        agentops_collector::machine::detect(&state, &none)
            .unwrap()
            .id,
        fresh
    );
}
