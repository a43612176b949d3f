//! Steps → gateway events. The one place that decides what an event carries
//! (the hierarchy fields, token conventions, ids).
//!
//! State lives in [`FileState`] (one per transcript file) and
//! [`SessionState`] (one per agent session, shared by the session's files:
//! a subagent's file, a resumed copy). Both are persisted with the file's
//! checkpoint in the same transaction as the events they produced.
//!
//! Token convention (AgentOps): `input_tokens` = uncached input only,
//! `cache_read_tokens` / `cache_write_tokens` apart, `output_tokens` without
//! reasoning, `reasoning_tokens` apart. Claude Code's usage is already so
//! (Anthropic counts cache reads and writes outside `input_tokens`). Codex
//! counts cached input inside `input_tokens` and reasoning inside
//! `output_tokens` (its `total_tokens` = input + output; `blended_total` =
//! non-cached input + output), so both are subtracted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{event_id, id_part, tokens, OutEvent};
use crate::git::Place;
use crate::machine::Machine;
use crate::sources::AgentKind;
use crate::step::{ContentDigest, Step, StepKind, Usage};

/// At most this many tool uses wait for their result per file; past it the
/// oldest is sent without one.
const MAX_PENDING_TOOLS: usize = 512;
/// An LLM latency longer than this is not a latency (a prompt typed after a
/// pause, a resumed session).
const MAX_LLM_LATENCY_MS: i64 = 3_600_000;

/// What the mapper needs to know about the file and the run.
pub struct MapContext<'a> {
    pub machine: &'a Machine,
    pub kind: AgentKind,
    pub path: &'a Path,
    /// Send prompt and tool-input previews (≤ 1 KiB) besides sizes and hashes.
    pub keep_content: bool,
    /// Events older than this (epoch ms) are not sent (the gateway's
    /// late-data window), only counted.
    pub cutoff_ms: i64,
    /// Timestamp of a step whose line has none (the file's mtime).
    pub fallback_ts: i64,
    /// cwd (+ the agent's own remote URL) → place. I/O (reads `.git`), so
    /// passed in: tests give a fixed one.
    pub resolve: &'a dyn Fn(&str, Option<&str>) -> Place,
}

/// An assistant message seen, not yet sent: its lines may continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingLlm {
    pub message_id: String,
    pub session: String,
    pub model: Option<String>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub ts: i64,
    pub latency_ms: Option<i64>,
    pub sidechain: bool,
    pub git_branch: Option<String>,
    pub prompt: Option<ContentDigest>,
}

/// A tool use waiting for its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingTool {
    pub session: String,
    pub name: String,
    pub ts: i64,
    pub input: ContentDigest,
    pub sidechain: bool,
    pub git_branch: Option<String>,
    /// Insertion order, to evict the oldest.
    pub seq: u64,
}

/// Per-file state, persisted with the file's checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    /// Hash of the file's first line: the file's identity in event ids of
    /// lines that have no id of their own (the same content re-read gives
    /// the same ids, whatever inode or path it has).
    pub file_key: Option<String>,
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub git_branch: Option<String>,
    pub model: Option<String>,
    pub model_provider: Option<String>,
    pub repo_hint: Option<String>,
    /// Codex: the last cumulative usage seen.
    pub prev_total: Option<Usage>,
    pub pending_llm: Option<PendingLlm>,
    pub pending_tools: BTreeMap<String, PendingTool>,
    pub pending_prompt: Option<ContentDigest>,
    pub last_input_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub tool_seq: u64,
}

/// Per-session state, shared by the session's files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    pub place: Option<Place>,
    pub git_branch: Option<String>,
    /// `run_started` was emitted.
    pub started: bool,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// The last step (LLM call, tool call, error) failed.
    pub last_error: bool,
    pub last_error_type: Option<String>,
    /// `last_ts` when `run_completed`/`run_failed` was emitted (a later step
    /// reopens the session).
    pub ended_at: Option<i64>,
    #[serde(skip)]
    pub dirty: bool,
}

/// Counts of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub lines: u64,
    pub parse_errors: u64,
    pub steps: u64,
    pub events: u64,
    /// Events older than the cutoff, not sent.
    pub too_old: u64,
    pub no_session: u64,
    pub orphan_results: u64,
    pub missing_results: u64,
    pub compactions: u64,
    pub zero_usage: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.lines += o.lines;
        self.parse_errors += o.parse_errors;
        self.steps += o.steps;
        self.events += o.events;
        self.too_old += o.too_old;
        self.no_session += o.no_session;
        self.orphan_results += o.orphan_results;
        self.missing_results += o.missing_results;
        self.compactions += o.compactions;
        self.zero_usage += o.zero_usage;
    }
}

pub type Sessions = HashMap<(AgentKind, String), SessionState>;

/// The mapper for one file's lines.
pub struct Mapper<'a> {
    pub ctx: &'a MapContext<'a>,
    pub fs: &'a mut FileState,
    pub sessions: &'a mut Sessions,
    pub out: &'a mut Vec<OutEvent>,
    pub stats: &'a mut Stats,
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

impl Mapper<'_> {
    /// One complete line at byte `offset` of the file.
    pub fn line(&mut self, offset: u64, line: &[u8]) {
        self.stats.lines += 1;
        if self.fs.file_key.is_none() {
            self.fs.file_key = Some(short_hash(line));
        }
        let steps = match self.ctx.kind.parse_line(line) {
            Ok(s) => s,
            Err(e) => {
                self.stats.parse_errors += 1;
                tracing::debug!(path = %self.ctx.path.display(), offset, error = %e, "line skipped");
                return;
            }
        };
        let line_hash = if steps.is_empty() {
            String::new()
        } else {
            short_hash(line)
        };
        for (i, step) in steps.into_iter().enumerate() {
            self.stats.steps += 1;
            self.step(step, offset, &line_hash, i);
        }
    }

    fn line_key(&self, offset: u64, line_hash: &str, index: usize) -> [String; 4] {
        [
            self.fs.file_key.clone().unwrap_or_default(),
            offset.to_string(),
            line_hash.to_owned(),
            index.to_string(),
        ]
    }

    fn step(&mut self, step: Step, offset: u64, line_hash: &str, index: usize) {
        let kind = self.ctx.kind;
        if step.kind == StepKind::Compaction {
            // A marker: nothing to send, and no activity of the session.
            self.stats.compactions += 1;
            return;
        }
        if let Some(cwd) = &step.cwd {
            self.fs.cwd = Some(cwd.clone());
        }
        if let Some(b) = &step.git_branch {
            self.fs.git_branch = Some(b.clone());
        }
        if let StepKind::SessionMeta {
            model_provider,
            repository_url,
        } = &step.kind
        {
            if model_provider.is_some() {
                self.fs.model_provider = model_provider.clone();
            }
            if repository_url.is_some() {
                self.fs.repo_hint = repository_url.clone();
            }
        }
        let session = step
            .session_id
            .clone()
            .or_else(|| self.fs.session_id.clone())
            .or_else(|| crate::sources::session_from_file_name(kind, self.ctx.path));
        let Some(session) = session else {
            self.stats.no_session += 1;
            return;
        };
        if self.fs.session_id.is_none() || matches!(step.kind, StepKind::SessionMeta { .. }) {
            self.fs.session_id = Some(session.clone());
        }
        let ts = step
            .timestamp_ms
            .or(self.fs.last_ts)
            .unwrap_or(self.ctx.fallback_ts);
        self.fs.last_ts = Some(ts);
        let branch = step
            .git_branch
            .clone()
            .or_else(|| self.fs.git_branch.clone());
        self.touch_session(&session, ts, branch.as_deref());
        let sidechain = step.sidechain;
        match step.kind {
            StepKind::SessionMeta { .. } | StepKind::Compaction => {}
            StepKind::TurnContext { model } => {
                if model.is_some() {
                    self.fs.model = model;
                }
            }
            StepKind::UserPrompt(d) => {
                self.flush_llm();
                self.fs.pending_prompt = Some(d);
                self.fs.last_input_ts = Some(ts);
            }
            StepKind::LlmUsage {
                message_id,
                model,
                usage,
                cost_usd,
                cumulative,
            } => {
                let model = model.or_else(|| self.fs.model.clone());
                match (kind, message_id) {
                    (AgentKind::ClaudeCode, Some(mid)) => {
                        if let Some(p) = self.fs.pending_llm.as_mut() {
                            if p.message_id == mid {
                                p.usage = p.usage.max(&usage);
                                p.cost_usd = match (p.cost_usd, cost_usd) {
                                    (Some(a), Some(b)) => Some(a.max(b)),
                                    (a, b) => a.or(b),
                                };
                                if p.model.is_none() {
                                    p.model = model;
                                }
                                return;
                            }
                        }
                        self.flush_llm();
                        let latency_ms = self
                            .fs
                            .last_input_ts
                            .map(|t| ts - t)
                            .filter(|l| (0..=MAX_LLM_LATENCY_MS).contains(l));
                        self.fs.pending_llm = Some(PendingLlm {
                            message_id: mid,
                            session,
                            model,
                            usage,
                            cost_usd,
                            ts,
                            latency_ms,
                            sidechain,
                            git_branch: branch,
                            prompt: self.fs.pending_prompt.take(),
                        });
                    }
                    _ => {
                        let delta = if cumulative {
                            let prev = self.fs.prev_total.unwrap_or_default();
                            self.fs.prev_total = Some(usage);
                            usage.delta_from(&prev).unwrap_or(usage)
                        } else {
                            usage
                        };
                        if delta.is_zero() {
                            self.stats.zero_usage += 1;
                            return;
                        }
                        let converted = match kind {
                            AgentKind::Codex => Usage {
                                input: delta.input.saturating_sub(delta.cache_read),
                                output: delta.output.saturating_sub(delta.reasoning),
                                ..delta
                            },
                            AgentKind::ClaudeCode => delta,
                        };
                        let latency_ms = self
                            .fs
                            .last_input_ts
                            .map(|t| ts - t)
                            .filter(|l| (0..=MAX_LLM_LATENCY_MS).contains(l));
                        let key = self.line_key(offset, line_hash, index);
                        let id = self.id(&["line", &key[0], &key[1], &key[2], &key[3], "llm_call"]);
                        let p = PendingLlm {
                            message_id: String::new(),
                            session,
                            model,
                            usage: converted,
                            cost_usd,
                            ts,
                            latency_ms,
                            sidechain,
                            git_branch: branch,
                            prompt: self.fs.pending_prompt.take(),
                        };
                        self.emit_llm(id, &p);
                    }
                }
            }
            StepKind::ToolUse { id, name, input } => {
                if self.fs.pending_tools.len() >= MAX_PENDING_TOOLS {
                    let oldest = self
                        .fs
                        .pending_tools
                        .iter()
                        .min_by_key(|(_, t)| t.seq)
                        .map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        if let Some(t) = self.fs.pending_tools.remove(&k) {
                            self.emit_tool(&k, &t, None, ts);
                        }
                    }
                }
                self.fs.tool_seq += 1;
                let keep = if self.ctx.keep_content {
                    input
                } else {
                    ContentDigest {
                        preview: String::new(),
                        ..input
                    }
                };
                self.fs.pending_tools.insert(
                    id,
                    PendingTool {
                        session,
                        name,
                        ts,
                        input: keep,
                        sidechain,
                        git_branch: branch,
                        seq: self.fs.tool_seq,
                    },
                );
            }
            StepKind::ToolResult {
                tool_use_id,
                is_error,
                output_bytes,
            } => {
                self.flush_llm();
                self.fs.last_input_ts = Some(ts);
                match self.fs.pending_tools.remove(&tool_use_id) {
                    Some(t) => self.emit_tool(&tool_use_id, &t, Some((is_error, output_bytes)), ts),
                    None => self.stats.orphan_results += 1,
                }
            }
            StepKind::ToolCall { name, is_error } => {
                let key = self.line_key(offset, line_hash, index);
                let id = self.id(&["line", &key[0], &key[1], &key[2], &key[3], "tool_call"]);
                let mut e = self.base(id, "tool_call", ts, &session, sidechain, branch.as_deref());
                e.tool_name = Some(id_part(&name));
                e.status = Some(if is_error { "error" } else { "ok" }.to_owned());
                self.mark(&session, is_error, is_error.then_some("tool_error"));
                self.push(e);
            }
            StepKind::Error { kind: ek, message } => {
                self.flush_llm();
                let id = match &step.line_id {
                    Some(lid) => self.id(&["uuid", lid, "error"]),
                    None => {
                        let key = self.line_key(offset, line_hash, index);
                        self.id(&["line", &key[0], &key[1], &key[2], &key[3], "error"])
                    }
                };
                let mut e = self.base(id, "llm_call", ts, &session, sidechain, branch.as_deref());
                e.provider = Some(kind.provider().to_owned());
                e.model = self.fs.model.as_deref().map(id_part);
                e.status = Some("error".to_owned());
                e.error_type = Some(id_part(&ek));
                e.error_message = Some(message);
                self.mark(&session, true, Some(&ek));
                self.push(e);
            }
        }
    }

    fn id(&self, parts: &[&str]) -> uuid::Uuid {
        let mut all: Vec<&str> = Vec::with_capacity(parts.len() + 1);
        all.push(self.ctx.kind.as_str());
        all.extend_from_slice(parts);
        event_id(&self.ctx.machine.id, &all)
    }

    fn session_mut(&mut self, session: &str) -> &mut SessionState {
        self.sessions
            .entry((self.ctx.kind, session.to_owned()))
            .or_default()
    }

    /// A step of `session` at `ts`: place, first/last time, `run_started`.
    fn touch_session(&mut self, session: &str, ts: i64, branch: Option<&str>) {
        let cwd = self.fs.cwd.clone();
        let hint = self.fs.repo_hint.clone();
        let resolve = self.ctx.resolve;
        let cutoff = self.ctx.cutoff_ms;
        let s = self.session_mut(session);
        s.dirty = true;
        if s.place.is_none() {
            if let Some(cwd) = &cwd {
                s.place = Some(resolve(cwd, hint.as_deref()));
            }
        }
        if let Some(b) = branch {
            s.git_branch = Some(b.to_owned());
        }
        s.first_ts = Some(s.first_ts.map_or(ts, |f| f.min(ts)));
        s.last_ts = Some(s.last_ts.map_or(ts, |l| l.max(ts)));
        if s.ended_at.is_some_and(|e| ts > e) {
            s.ended_at = None;
        }
        if !s.started && ts >= cutoff {
            // The session's first step, or the first inside the window.
            let start = s.first_ts.filter(|f| *f >= cutoff).unwrap_or(ts);
            s.started = true;
            let id = self.id(&["run_started", session]);
            let e = self.base(id, "run_started", start, session, false, branch);
            self.push(e);
        }
    }

    fn mark(&mut self, session: &str, error: bool, error_type: Option<&str>) {
        let s = self.session_mut(session);
        s.last_error = error;
        s.last_error_type = error_type.map(str::to_owned);
        s.dirty = true;
    }

    /// An event with the run, workflow and hierarchy (`project_id`,
    /// `machine_id`, `workspace_id`, `session_id`) of `session`, and the
    /// descriptive attributes (paths, names, branch).
    fn base(
        &self,
        id: uuid::Uuid,
        event_type: &str,
        ts: i64,
        session: &str,
        sidechain: bool,
        branch: Option<&str>,
    ) -> OutEvent {
        let kind = self.ctx.kind;
        let state = self.sessions.get(&(kind, session.to_owned()));
        let place = state
            .and_then(|s| s.place.clone())
            .unwrap_or_else(|| Place {
                project: "local:unknown".to_owned(),
                project_url: None,
                workspace: "unknown".to_owned(),
                workspace_path: String::new(),
            });
        let branch = branch
            .map(str::to_owned)
            .or_else(|| state.and_then(|s| s.git_branch.clone()));
        let mut e = OutEvent::new(id, event_type, kind.as_str(), ts);
        e.run_id = Some(id_part(session));
        e.workflow_id = Some(id_part(&place.project));
        e.project_id = Some(id_part(&place.project));
        e.machine_id = Some(id_part(&self.ctx.machine.id));
        e.workspace_id = Some(id_part(&place.workspace));
        e.session_id = Some(id_part(session));
        let a = &mut e.attributes;
        if let Some(u) = &place.project_url {
            a.insert("project_url".into(), u.clone());
        }
        a.insert("machine_name".into(), self.ctx.machine.name.clone());
        a.insert("machine_os".into(), self.ctx.machine.os.clone());
        a.insert("workspace_path".into(), place.workspace_path.clone());
        a.insert("agent_kind".into(), kind.as_str().to_owned());
        if let Some(b) = branch {
            a.insert("git_branch".into(), b);
        }
        if sidechain {
            a.insert("sidechain".into(), "true".into());
        }
        if let Some(p) = &self.fs.model_provider {
            if p != kind.provider() {
                a.insert("model_provider".into(), p.clone());
            }
        }
        e
    }

    fn push(&mut self, e: OutEvent) {
        let ts = crate::step::parse_ts(&e.timestamp).unwrap_or(0);
        if ts < self.ctx.cutoff_ms {
            self.stats.too_old += 1;
            return;
        }
        self.stats.events += 1;
        self.out.push(e);
    }

    /// Send the assistant message waiting for more of its lines.
    pub fn flush_llm(&mut self) {
        if let Some(p) = self.fs.pending_llm.take() {
            let id = self.id(&["llm", &p.message_id]);
            self.emit_llm(id, &p);
        }
    }

    fn emit_llm(&mut self, id: uuid::Uuid, p: &PendingLlm) {
        let kind = self.ctx.kind;
        let mut e = self.base(
            id,
            "llm_call",
            p.ts,
            &p.session,
            p.sidechain,
            p.git_branch.as_deref(),
        );
        e.provider = Some(kind.provider().to_owned());
        e.model = p.model.as_deref().map(id_part);
        e.status = Some("ok".to_owned());
        e.latency_ms = p.latency_ms;
        e.input_tokens = tokens(p.usage.input);
        e.output_tokens = tokens(p.usage.output);
        e.cache_read_tokens = tokens(p.usage.cache_read);
        e.cache_write_tokens = tokens(p.usage.cache_write);
        if kind == AgentKind::Codex || p.usage.reasoning > 0 {
            e.reasoning_tokens = tokens(p.usage.reasoning);
        }
        e.cost_usd = p.cost_usd.map(|c| c.min(1_000_000.0));
        if let Some(d) = &p.prompt {
            e.attributes
                .insert("prompt_bytes".into(), d.bytes.to_string());
            e.attributes
                .insert("prompt_sha256".into(), d.sha256.clone());
            if self.ctx.keep_content {
                e.attributes
                    .insert("prompt_preview".into(), d.preview.clone());
            }
        }
        let session = p.session.clone();
        self.mark(&session, false, None);
        self.push(e);
    }

    /// A tool call: with its result (`Some((is_error, output_bytes))`) or
    /// without one (the session ended first).
    fn emit_tool(
        &mut self,
        tool_id: &str,
        t: &PendingTool,
        result: Option<(bool, u64)>,
        end_ts: i64,
    ) {
        // Claude Code's tool use ids (`toolu_…`) are unique and survive a
        // resumed session's copy into a new file; Codex's `call_id` is only
        // known to be unique within its session.
        let id = match self.ctx.kind {
            AgentKind::ClaudeCode => self.id(&["tool", tool_id]),
            AgentKind::Codex => self.id(&["tool", &t.session, tool_id]),
        };
        let mut e = self.base(
            id,
            "tool_call",
            t.ts,
            &t.session,
            t.sidechain,
            t.git_branch.as_deref(),
        );
        e.tool_name = Some(id_part(&t.name));
        e.attributes
            .insert("tool_input_bytes".into(), t.input.bytes.to_string());
        e.attributes
            .insert("tool_input_sha256".into(), t.input.sha256.clone());
        if self.ctx.keep_content && !t.input.preview.is_empty() {
            e.attributes
                .insert("tool_input_preview".into(), t.input.preview.clone());
        }
        match result {
            Some((is_error, out_bytes)) => {
                e.status = Some(if is_error { "error" } else { "ok" }.to_owned());
                if is_error {
                    e.error_type = Some("tool_error".to_owned());
                }
                e.latency_ms = Some((end_ts - t.ts).clamp(0, 30 * 24 * 3_600_000));
                e.attributes
                    .insert("tool_output_bytes".into(), out_bytes.to_string());
                let session = t.session.clone();
                self.mark(&session, is_error, is_error.then_some("tool_error"));
            }
            None => {
                self.stats.missing_results += 1;
                e.attributes.insert("tool_result".into(), "missing".into());
            }
        }
        self.push(e);
    }

    /// Everything of `session` still waiting in this file: the assistant
    /// message, tool uses without a result.
    pub fn flush_session(&mut self, session: &str) {
        if self
            .fs
            .pending_llm
            .as_ref()
            .is_some_and(|p| p.session == session)
        {
            self.flush_llm();
        }
        let ids: Vec<String> = self
            .fs
            .pending_tools
            .iter()
            .filter(|(_, t)| t.session == session)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ids {
            if let Some(t) = self.fs.pending_tools.remove(&k) {
                let ts = t.ts;
                self.emit_tool(&k, &t, None, ts);
            }
        }
    }
}

/// `run_completed` (or `run_failed` when its last step failed) for a session
/// whose files have all been flushed. Idempotent per (session, last step
/// time): a session that goes on and ends again gets a new end event.
pub fn end_session(
    ctx: &MapContext<'_>,
    session: &str,
    sessions: &mut Sessions,
    out: &mut Vec<OutEvent>,
    stats: &mut Stats,
) {
    let mut fs = FileState::default();
    let key = (ctx.kind, session.to_owned());
    let Some(state) = sessions.get(&key).cloned() else {
        return;
    };
    let Some(last) = state.last_ts else { return };
    let failed = state.last_error;
    let mut m = Mapper {
        ctx,
        fs: &mut fs,
        sessions,
        out,
        stats,
    };
    let ty = if failed {
        "run_failed"
    } else {
        "run_completed"
    };
    let id = m.id(&["run_end", session, &last.to_string()]);
    let mut e = m.base(id, ty, last, session, false, None);
    e.status = Some(if failed { "error" } else { "ok" }.to_owned());
    if failed {
        e.error_type = state.last_error_type.as_deref().map(id_part);
    }
    if let Some(first) = state.first_ts {
        e.latency_ms = Some((last - first).clamp(0, 30 * 24 * 3_600_000));
    }
    if state.started {
        m.push(e);
    }
    if let Some(s) = sessions.get_mut(&key) {
        s.ended_at = Some(last);
        s.dirty = true;
    }
}
