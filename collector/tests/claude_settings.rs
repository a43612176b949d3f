//! `install --claude-hook` / `uninstall --claude-hook` on a developer's
//! existing `~/.claude/settings.json`: merged, idempotent, backed up,
//! removed again without touching anything else.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use agentops_collector::claude_settings::{
    hook_command, is_ours, shell_quote, timeout_secs, with_hook, without_hook, Json,
};

/// A developer's settings: other keys (not in alphabetical order), their
/// own PreToolUse and PostToolUse hooks.
const EXISTING: &str = r#"{
  "model": "opus",
  "permissions": {
    "allow": ["Bash(cargo test:*)"],
    "deny": ["Read(./.env)"]
  },
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {"type": "command", "command": "~/.claude/guard.sh", "timeout": 10}
        ]
      }
    ],
    "PostToolUse": [
      {"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "cargo fmt"}]}
    ]
  },
  "env": {"FOO": "1"},
  "cleanupPeriodDays": 30,
  "includeCoAuthoredBy": false
}
"#;

fn cmd(home: &Path, state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_agentops-collector"));
    c.arg("--home")
        .arg(home)
        .arg("--state-dir")
        .arg(state)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AGENTOPS_COLLECTOR_API_KEY", "aok_0123abcd_test");
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn settings(home: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(home.join(".claude/settings.json")).unwrap()).unwrap()
}

fn backups(home: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(home.join(".claude"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    v.sort();
    v
}

fn ours(s: &serde_json::Value) -> Vec<serde_json::Value> {
    s["hooks"]["PreToolUse"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["hooks"].as_array().unwrap().clone())
        .filter(|h| {
            h["command"]
                .as_str()
                .unwrap()
                .ends_with(" hook claude-code")
        })
        .collect()
}

#[test]
fn install_merges_into_existing_settings_once_and_uninstall_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::write(home.join(".claude/settings.json"), EXISTING).unwrap();
    let before: serde_json::Value = serde_json::from_str(EXISTING).unwrap();

    let out = ok(cmd(&home, &state)
        .args(["install", "--claude-hook"])
        .output()
        .unwrap());
    assert!(
        out.contains("added the Claude Code PreToolUse hook"),
        "{out}"
    );
    let after = settings(&home);
    // Everything else kept.
    for key in [
        "model",
        "permissions",
        "env",
        "cleanupPeriodDays",
        "includeCoAuthoredBy",
    ] {
        assert_eq!(after[key], before[key], "{key}");
    }
    assert_eq!(
        after["hooks"]["PostToolUse"],
        before["hooks"]["PostToolUse"]
    );
    let pre = after["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2);
    assert_eq!(
        pre[0], before["hooks"]["PreToolUse"][0],
        "their hook first, untouched"
    );
    assert_eq!(pre[1]["matcher"], "*");
    let h = &pre[1]["hooks"][0];
    assert_eq!(h["type"], "command");
    assert_eq!(h["timeout"], 3, "1500 ms → 3 s");
    let command = h["command"].as_str().unwrap();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_agentops-collector")).unwrap();
    assert!(
        command.starts_with(&shell_quote(&exe.to_string_lossy()))
            || command.starts_with(&shell_quote(env!("CARGO_BIN_EXE_agentops-collector"))),
        "{command}"
    );
    assert!(command.contains(&format!(
        "--state-dir {}",
        shell_quote(&state.to_string_lossy())
    )));
    assert!(command.ends_with(" hook claude-code"), "{command}");
    // Key order as written (not sorted).
    let text = std::fs::read_to_string(home.join(".claude/settings.json")).unwrap();
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(pos("model") < pos("permissions") && pos("permissions") < pos("hooks"));
    assert!(pos("hooks") < pos("env") && pos("env") < pos("cleanupPeriodDays"));
    // The previous file, byte for byte.
    let b = backups(&home);
    assert_eq!(b.len(), 1);
    assert_eq!(std::fs::read_to_string(&b[0]).unwrap(), EXISTING);

    // Again: one entry, nothing written.
    let out = ok(cmd(&home, &state)
        .args(["install", "--claude-hook"])
        .output()
        .unwrap());
    assert!(out.contains("already"), "{out}");
    assert_eq!(ours(&settings(&home)).len(), 1);
    assert_eq!(settings(&home), after);
    assert_eq!(backups(&home).len(), 1);

    // Another timeout or path: the entry is replaced, not added.
    ok(cmd(&home, &state)
        .env("AGENTOPS_COLLECTOR_HOOK_TIMEOUT_MS", "4000")
        .args(["install", "--claude-hook"])
        .output()
        .unwrap());
    let s = settings(&home);
    assert_eq!(ours(&s).len(), 1);
    assert_eq!(ours(&s)[0]["timeout"], 5);

    // Uninstall: exactly the developer's settings again.
    let out = ok(cmd(&home, &state)
        .args(["uninstall", "--claude-hook"])
        .output()
        .unwrap());
    assert!(out.contains("removed the AgentOps hook"), "{out}");
    assert_eq!(settings(&home), before);
    let out = ok(cmd(&home, &state)
        .args(["uninstall", "--claude-hook"])
        .output()
        .unwrap());
    assert!(out.contains("no AgentOps hook"), "{out}");
    assert_eq!(settings(&home), before);
}

#[test]
fn install_without_settings_creates_them_and_dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&home).unwrap();
    let out = ok(cmd(&home, &state)
        .args(["install", "--claude-hook", "--dry-run"])
        .output()
        .unwrap());
    assert!(out.contains("\"PreToolUse\""), "{out}");
    assert!(out.contains("hook claude-code"), "{out}");
    assert!(!home.join(".claude").exists());

    ok(cmd(&home, &state)
        .args(["install", "--claude-hook"])
        .output()
        .unwrap());
    let s = settings(&home);
    assert_eq!(ours(&s).len(), 1);
    assert!(backups(&home).is_empty(), "nothing to back up");
    ok(cmd(&home, &state)
        .args(["uninstall", "--claude-hook"])
        .output()
        .unwrap());
    assert_eq!(settings(&home), serde_json::json!({}));
}

#[test]
fn settings_that_are_not_json_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::write(home.join(".claude/settings.json"), "{ \"model\": ").unwrap();
    let out = cmd(&home, &tmp.path().join("state"))
        .args(["install", "--claude-hook"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    assert_eq!(
        std::fs::read_to_string(home.join(".claude/settings.json")).unwrap(),
        "{ \"model\": "
    );
}

// Pure parts.

#[test]
fn merge_keeps_other_handlers_in_a_shared_group() {
    let s = Json::parse(
        r#"{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[
            {"type":"command","command":"/old/agentops-collector hook claude-code","timeout":9},
            {"type":"command","command":"audit.sh"}]}]}}"#,
    )
    .unwrap();
    let s = with_hook(s, "/new/agentops-collector hook claude-code", 3).unwrap();
    let v: serde_json::Value = serde_json::from_str(&s.pretty().unwrap()).unwrap();
    let pre = v["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2);
    assert_eq!(pre[0]["hooks"].as_array().unwrap().len(), 1);
    assert_eq!(pre[0]["hooks"][0]["command"], "audit.sh");
    assert_eq!(
        pre[1]["hooks"][0]["command"],
        "/new/agentops-collector hook claude-code"
    );
    let back: serde_json::Value = serde_json::from_str(&without_hook(s).pretty().unwrap()).unwrap();
    assert_eq!(
        back,
        serde_json::json!({"hooks":{"PreToolUse":[{"matcher":"*","hooks":[
            {"type":"command","command":"audit.sh"}]}]}})
    );
}

#[test]
fn merge_refuses_shapes_it_does_not_know() {
    for bad in [r#"[]"#, r#"{"hooks":[]}"#, r#"{"hooks":{"PreToolUse":{}}}"#] {
        assert!(
            with_hook(Json::parse(bad).unwrap(), "x hook claude-code", 3).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn commands_quoting_and_timeouts() {
    assert_eq!(
        hook_command(
            Path::new("/opt/agent ops/agentops-collector"),
            Some(Path::new("/etc/it's.toml")),
            None,
            Some("https://gw.example.com"),
        ),
        r#"'/opt/agent ops/agentops-collector' --config '/etc/it'\''s.toml' --endpoint https://gw.example.com hook claude-code"#
    );
    assert_eq!(timeout_secs(1500), 3);
    assert_eq!(timeout_secs(1000), 2);
    assert_eq!(timeout_secs(1), 2);
    let h = |c: &str| Json::parse(&serde_json::json!({"command": c}).to_string()).unwrap();
    assert!(is_ours(&h(
        "/x/agentops-collector --state-dir /s hook claude-code"
    )));
    assert!(!is_ours(&h("guard.sh")));
    assert!(!is_ours(&h("my-hook claude-code-ish")));
}
