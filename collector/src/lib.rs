//! agentops-collector: finds coding-agent sessions in the files the agents
//! keep locally (Claude Code transcripts, Codex CLI rollouts), maps each step
//! to AgentOps events and sends them to the gateway through a durable SQLite
//! outbox. See `collector/README.md`.
//!
//! Layers, from the bytes up:
//! - [`sources`]: pure parsers, one JSONL line → [`step::Step`]s (no I/O).
//! - [`tailer`]: incremental reads with a per-file checkpoint.
//! - [`mapper`]: steps → gateway events, with the per-file and per-session
//!   state (usage once per message, cumulative → delta, pending tool calls).
//! - [`store`]: SQLite state dir: checkpoints, states and the outbox, written
//!   in one transaction per chunk.
//! - [`sender`]: drains the outbox to `POST /v1/events`.
//! - [`collector`]: the scan loop tying them together.
//! - [`hook`]: Claude Code's `PreToolUse` hook (asks the gateway for the
//!   session's directives); [`claude_settings`] installs it.

pub mod claude_settings;
pub mod collector;
pub mod config;
pub mod event;
pub mod git;
pub mod hook;
pub mod install;
pub mod machine;
pub mod mapper;
pub mod sender;
pub mod sources;
pub mod status;
pub mod step;
pub mod store;
pub mod tailer;
