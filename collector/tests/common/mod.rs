//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use agentops_collector::event::OutEvent;
use agentops_collector::git::Place;
use agentops_collector::machine::Machine;
use agentops_collector::mapper::{FileState, MapContext, Mapper, Sessions, Stats};
use agentops_collector::sources::AgentKind;

pub const S1: &str = "5d1c0a52-7a0e-4f7e-9a51-0c6a2f1e9b01";
pub const S2: &str = "9b3f6c1e-2d4a-4c8b-8e7f-3a5b6c7d8e9f";
pub const CX: &str = "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn claude_main() -> PathBuf {
    fixtures().join(format!("claude/projects/-home-dev-src-acme/{S1}.jsonl"))
}

pub fn claude_subagent() -> PathBuf {
    fixtures().join(format!(
        "claude/projects/-home-dev-src-acme/{S1}/subagents/agent-a1b2c3.jsonl"
    ))
}

pub fn claude_resumed() -> PathBuf {
    fixtures().join(format!("claude/projects/-home-dev-src-acme-wt/{S2}.jsonl"))
}

pub fn claude_resumed_copy() -> PathBuf {
    fixtures().join("claude/projects/-home-dev-src-acme/0c0c0c0c-1d1d-4e4e-8f8f-2a2a2a2a2a2a.jsonl")
}

pub fn claude_append() -> PathBuf {
    fixtures().join("claude-append/resumed-part2.jsonl")
}

pub fn codex_rollout() -> PathBuf {
    fixtures().join(format!(
        "codex/sessions/2026/03/01/rollout-2026-03-01T23-50-00-{CX}.jsonl"
    ))
}

pub fn machine() -> Machine {
    Machine {
        id: "00112233445566778899aabbccddeeff".into(),
        name: "devbox".into(),
        os: "linux".into(),
    }
}

/// A fixed place per cwd (no file system).
pub fn fixed_place(cwd: &str, hint: Option<&str>) -> Place {
    let project = match hint.and_then(agentops_collector::git::normalize_remote) {
        Some(r) => r,
        None => format!("local:{}", cwd.rsplit('/').next().unwrap_or("")),
    };
    Place {
        project_url: (!project.starts_with("local:")).then(|| format!("https://{project}")),
        project,
        workspace: format!("ws-{}", cwd.rsplit('/').next().unwrap_or("")),
        workspace_path: cwd.to_owned(),
    }
}

/// Every complete line of `bytes` through a mapper; the pending assistant
/// message flushed at the end. Returns the events.
pub fn map_bytes(
    kind: AgentKind,
    path: &Path,
    bytes: &[u8],
    fs: &mut FileState,
    sessions: &mut Sessions,
    stats: &mut Stats,
    keep_content: bool,
) -> Vec<OutEvent> {
    let m = machine();
    let resolve = fixed_place;
    let ctx = MapContext {
        machine: &m,
        kind,
        path,
        keep_content,
        cutoff_ms: 0,
        fallback_ts: 1_772_409_600_000,
        resolve: &resolve,
    };
    let mut out = Vec::new();
    let mut mapper = Mapper {
        ctx: &ctx,
        fs,
        sessions,
        out: &mut out,
        stats,
    };
    let mut offset = 0u64;
    for piece in bytes.split_inclusive(|&b| b == b'\n') {
        if piece.ends_with(b"\n") {
            mapper.line(offset, &piece[..piece.len() - 1]);
        }
        offset += piece.len() as u64;
    }
    mapper.flush_llm();
    out
}

pub fn map_file(kind: AgentKind, path: &Path) -> (Vec<OutEvent>, FileState, Sessions, Stats) {
    let bytes = std::fs::read(path).unwrap();
    let mut fs = FileState::default();
    let mut sessions = Sessions::new();
    let mut stats = Stats::default();
    let out = map_bytes(
        kind,
        path,
        &bytes,
        &mut fs,
        &mut sessions,
        &mut stats,
        false,
    );
    (out, fs, sessions, stats)
}

pub fn of_type<'a>(events: &'a [OutEvent], t: &str) -> Vec<&'a OutEvent> {
    events.iter().filter(|e| e.event_type == t).collect()
}

/// Validate with the gateway's own validation (the real contract).
pub fn validate(e: &OutEvent) {
    let v = serde_json::to_value(e).unwrap();
    let ts = agentops_collector::step::parse_ts(&e.timestamp).unwrap();
    let limits = agentops_schemas::validate::ValidationLimits::default();
    if let Err(err) = agentops_schemas::validate::event_from_json(&v, "org", ts * 1000, &limits) {
        panic!("event refused by the gateway's validation: {err}: {v}");
    }
}
