//! What the parsers produce: one [`Step`] per meaningful thing a transcript
//! line says. Parsers are pure (bytes in, steps out); the [`crate::mapper`]
//! keeps the state that turns steps into events.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Content previews kept with `keep_content = true` are cut to this many bytes.
pub const PREVIEW_BYTES: usize = 1024;

/// Token counts of one model call (or a cumulative total), in the agent's
/// own convention (the mapper converts to the AgentOps one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

impl Usage {
    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }

    /// Field-wise maximum (a message's usage repeated over several lines,
    /// an early streaming snapshot followed by the final one).
    pub fn max(&self, o: &Usage) -> Usage {
        Usage {
            input: self.input.max(o.input),
            output: self.output.max(o.output),
            cache_read: self.cache_read.max(o.cache_read),
            cache_write: self.cache_write.max(o.cache_write),
            reasoning: self.reasoning.max(o.reasoning),
        }
    }

    /// `self - prev` field-wise, or `None` when any field went down (a
    /// counter reset: the caller takes `self` whole).
    pub fn delta_from(&self, prev: &Usage) -> Option<Usage> {
        Some(Usage {
            input: self.input.checked_sub(prev.input)?,
            output: self.output.checked_sub(prev.output)?,
            cache_read: self.cache_read.checked_sub(prev.cache_read)?,
            cache_write: self.cache_write.checked_sub(prev.cache_write)?,
            reasoning: self.reasoning.checked_sub(prev.reasoning)?,
        })
    }
}

/// Size and SHA-256 of a piece of content, and a short preview that is only
/// sent with `keep_content = true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentDigest {
    pub bytes: u64,
    pub sha256: String,
    pub preview: String,
}

impl ContentDigest {
    pub fn of(text: &str) -> ContentDigest {
        ContentDigest {
            bytes: text.len() as u64,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            preview: truncate_utf8(text, PREVIEW_BYTES).to_owned(),
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes ending on a char boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One thing a line says.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Codex `session_meta`: the session's identity and where it runs.
    SessionMeta {
        model_provider: Option<String>,
        repository_url: Option<String>,
    },
    /// Codex `turn_context`: the model used from here on.
    TurnContext { model: Option<String> },
    /// A prompt typed by the user (not tool results, not injected text).
    UserPrompt(ContentDigest),
    /// Model usage. `message_id` identifies the API message (Claude Code
    /// writes one message over several lines with the same id and usage);
    /// `cumulative` marks Codex's running totals.
    LlmUsage {
        message_id: Option<String>,
        model: Option<String>,
        usage: Usage,
        cost_usd: Option<f64>,
        cumulative: bool,
    },
    /// The model asked for a tool.
    ToolUse {
        id: String,
        name: String,
        input: ContentDigest,
    },
    /// A tool's answer. `is_error` from the agent's own flag (Claude Code's
    /// `is_error`, a non-zero exit code in Codex's output).
    ToolResult {
        tool_use_id: String,
        is_error: bool,
        output_bytes: u64,
    },
    /// A tool call reported whole in one line (Codex `web_search_call`).
    ToolCall { name: String, is_error: bool },
    /// An error the agent recorded (API error, Codex `error` event).
    Error { kind: String, message: String },
    /// A compaction marker (Claude Code `compact_boundary`, a `summary`
    /// line, Codex `compacted`): nothing to send, kept for counting.
    Compaction,
}

/// One step with the line's context.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The session this line belongs to, when the line says (Claude Code:
    /// every line; Codex: `session_meta` only).
    pub session_id: Option<String>,
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    pub cwd: Option<String>,
    pub git_branch: Option<String>,
    /// Claude Code `isSidechain` (a subagent's step).
    pub sidechain: bool,
    /// The line's own id (Claude Code `uuid`).
    pub line_id: Option<String>,
    pub kind: StepKind,
}

/// Why a line was not understood (counted and skipped by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a JSON object.
    NotJson(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::NotJson(e) => write!(f, "not a JSON object: {e}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse an RFC 3339 timestamp to epoch milliseconds.
pub fn parse_ts(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// A line as a JSON object: invalid UTF-8 is replaced (U+FFFD), never a panic.
pub fn line_json(line: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ParseError> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(ParseError::NotJson("not an object".into())),
        Err(e) => Err(ParseError::NotJson(e.to_string())),
    }
}

/// Non-empty string at `v[key]`.
pub fn str_at<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(|x| x.as_str())
        .filter(|s| !s.is_empty())
}

/// A token count at `v[key]` (negative, fractional or absurd values become 0).
pub fn count_at(v: &serde_json::Value, key: &str) -> u64 {
    match v.get(key) {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .map(|f| f as u64)
            })
            .unwrap_or(0),
        _ => 0,
    }
}
