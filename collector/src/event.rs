//! The gateway's event JSON (`POST /v1/events`, README "Sending events")
//! and deterministic event ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of the collector's UUID v5 event ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6a0e_3f52_9c1d_4b8e_a7f4_2d1c_0b9e_8f31);

/// UUID v5 of the machine and `parts` (joined with a separator no part
/// holds after [`id_part`]): the same inputs always give the same id, so a
/// re-read, a restart or a lost checkpoint re-creates identical events and
/// the pipeline drops the copies by `event_id`.
pub fn event_id(machine_id: &str, parts: &[&str]) -> Uuid {
    let mut name = String::with_capacity(64 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    name.push_str(machine_id);
    for p in parts {
        name.push('\u{1f}');
        name.push_str(p);
    }
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// One event as the gateway takes it. Optional fields are left out when
/// empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutEvent {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub agent_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// The hierarchy (contract v2, top-level fields): the project the work
    /// was for (normalized git remote, else `local:<dir>`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub project_id: Option<String>,
    /// This machine's id (`machine.rs`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub machine_id: Option<String>,
    /// The checkout: hash of (machine, git root).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workspace_id: Option<String>,
    /// The agent session (a subagent's steps carry the parent's).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_id: Option<String>,
    /// RFC 3339, milliseconds, UTC.
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub attributes: BTreeMap<String, String>,
}

impl OutEvent {
    pub fn new(event_id: Uuid, event_type: &str, agent_id: &str, timestamp_ms: i64) -> OutEvent {
        OutEvent {
            event_id: event_id.hyphenated().to_string(),
            event_type: event_type.to_owned(),
            agent_id: agent_id.to_owned(),
            run_id: None,
            workflow_id: None,
            project_id: None,
            machine_id: None,
            workspace_id: None,
            session_id: None,
            timestamp: rfc3339_ms(timestamp_ms),
            status: None,
            latency_ms: None,
            provider: None,
            model: None,
            input_tokens: None,
            output_tokens: None,
            cache_read_tokens: None,
            cache_write_tokens: None,
            reasoning_tokens: None,
            cost_usd: None,
            tool_name: None,
            error_type: None,
            error_message: None,
            attributes: BTreeMap::new(),
        }
    }
}

/// Epoch milliseconds → `2026-01-02T03:04:05.678Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// An identifier the gateway accepts: no control characters or line/paragraph
/// separators (replaced by `_`), at most 256 bytes.
pub fn id_part(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                '_'
            } else {
                c
            }
        })
        .collect();
    crate::step::truncate_utf8(&clean, 256).to_owned()
}

/// A token count within the gateway's bound (100,000,000 per event).
pub fn tokens(n: u64) -> Option<i64> {
    Some(n.min(100_000_000) as i64)
}
