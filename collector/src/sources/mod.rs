//! The agents whose local files the collector reads: where they keep them
//! and how one line of each is parsed.

pub mod claude;
pub mod codex;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::step::{ParseError, Step};

/// A kind of coding agent: the `agent_id` of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AgentKind {
    #[serde(rename = "claude-code")]
    ClaudeCode,
    #[serde(rename = "codex")]
    Codex,
}

impl AgentKind {
    pub const ALL: [AgentKind; 2] = [AgentKind::ClaudeCode, AgentKind::Codex];

    /// `agent_id` and the `agent_kind` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::ClaudeCode => "claude-code",
            AgentKind::Codex => "codex",
        }
    }

    pub fn parse(s: &str) -> Option<AgentKind> {
        AgentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The model provider of its calls.
    pub fn provider(self) -> &'static str {
        match self {
            AgentKind::ClaudeCode => "anthropic",
            AgentKind::Codex => "openai",
        }
    }

    /// One line → its steps (pure, never panics).
    pub fn parse_line(self, line: &[u8]) -> Result<Vec<Step>, ParseError> {
        match self {
            AgentKind::ClaudeCode => claude::parse_line(line),
            AgentKind::Codex => codex::parse_line(line),
        }
    }

    /// Does this file under the source's root hold sessions?
    pub fn wants(self, path: &Path) -> bool {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match self {
            AgentKind::ClaudeCode => name.ends_with(".jsonl"),
            AgentKind::Codex => name.starts_with("rollout-") && name.ends_with(".jsonl"),
        }
    }

    /// How deep under the root its session files sit (Claude Code:
    /// `projects/<cwd>/<session>.jsonl` and
    /// `projects/<cwd>/<session>/subagents/agent-<id>.jsonl`; Codex:
    /// `sessions/YYYY/MM/DD/rollout-*.jsonl`).
    pub fn max_depth(self) -> usize {
        match self {
            AgentKind::ClaudeCode => 4,
            AgentKind::Codex => 4,
        }
    }
}

/// A directory the collector scans for one agent's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub kind: AgentKind,
    pub root: PathBuf,
}

/// The session files under `source.root`, shallow ones first. Unreadable
/// directories are skipped; symlinks are not followed.
pub fn discover(source: &Source) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(source.kind, &source.root, 0, &mut out);
    // Shallow files first: a Claude Code session's own transcript before its
    // subagents' (`<session>/subagents/…`), so the session starts where it
    // started whatever the directory order.
    out.sort_by(|a, b| {
        (a.components().count(), a.as_os_str()).cmp(&(b.components().count(), b.as_os_str()))
    });
    out
}

fn walk(kind: AgentKind, dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let path = entry.path();
        if ft.is_dir() {
            if depth < kind.max_depth() {
                walk(kind, &path, depth + 1, out);
            }
        } else if ft.is_file() && kind.wants(&path) {
            out.push(path);
        }
    }
}

/// Session id from a Codex rollout file name
/// (`rollout-2025-05-07T17-24-21-<uuid>.jsonl`): the last 36 characters
/// before `.jsonl` when they look like a UUID.
pub fn session_from_file_name(kind: AgentKind, path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    match kind {
        AgentKind::Codex => {
            let tail = stem.get(stem.len().checked_sub(36)?..)?;
            uuid::Uuid::parse_str(tail).ok().map(|_| tail.to_owned())
        }
        AgentKind::ClaudeCode => uuid::Uuid::parse_str(stem).ok().map(|_| stem.to_owned()),
    }
}
