//! Claude Code transcripts: `~/.claude/projects/<encoded cwd>/<session>.jsonl`
//! (and `<session>/subagents/agent-<id>.jsonl`), one JSON object per line.
//!
//! Lines used (`type`): `user` (a prompt, or `tool_result` blocks with
//! `tool_use_id` and `is_error`), `assistant` (`message.id`, `model`,
//! `usage` {`input_tokens`, `output_tokens`, `cache_creation_input_tokens`,
//! `cache_read_input_tokens`}, `tool_use` blocks {`id`, `name`, `input`};
//! `isApiErrorMessage` for an API error; `costUSD` in some versions),
//! `system` with `subtype: compact_boundary` and `summary` (compaction).
//! Every line carries `sessionId`, `uuid`, `timestamp`, `cwd`, `gitBranch`,
//! `isSidechain`. Anything else is ignored.

use serde_json::Value;

use crate::step::{
    count_at, line_json, parse_ts, str_at, ContentDigest, ParseError, Step, StepKind, Usage,
};

/// One transcript line → its steps.
pub fn parse_line(line: &[u8]) -> Result<Vec<Step>, ParseError> {
    let obj = line_json(line)?;
    let v = Value::Object(obj);
    let base = Step {
        session_id: str_at(&v, "sessionId").map(str::to_owned),
        timestamp_ms: str_at(&v, "timestamp").and_then(parse_ts),
        cwd: str_at(&v, "cwd").map(str::to_owned),
        git_branch: str_at(&v, "gitBranch").map(str::to_owned),
        sidechain: v
            .get("isSidechain")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        line_id: str_at(&v, "uuid").map(str::to_owned),
        kind: StepKind::Compaction,
    };
    let step = |kind: StepKind| Step {
        kind,
        ..base.clone()
    };
    let mut out = Vec::new();
    match str_at(&v, "type").unwrap_or("") {
        "user" => {
            let msg = v.get("message").unwrap_or(&Value::Null);
            if v.get("isCompactSummary").and_then(Value::as_bool) == Some(true) {
                out.push(step(StepKind::Compaction));
                return Ok(out);
            }
            let meta = v.get("isMeta").and_then(Value::as_bool) == Some(true);
            match msg.get("content") {
                Some(Value::String(s)) if !meta => {
                    out.push(step(StepKind::UserPrompt(ContentDigest::of(s))));
                }
                Some(Value::Array(blocks)) => {
                    let mut text = String::new();
                    let mut results = false;
                    for b in blocks {
                        match str_at(b, "type") {
                            Some("tool_result") => {
                                results = true;
                                let Some(id) = str_at(b, "tool_use_id") else {
                                    continue;
                                };
                                out.push(step(StepKind::ToolResult {
                                    tool_use_id: id.to_owned(),
                                    is_error: b.get("is_error").and_then(Value::as_bool)
                                        == Some(true),
                                    output_bytes: content_bytes(b.get("content")),
                                }));
                            }
                            Some("text") => {
                                if let Some(t) = str_at(b, "text") {
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(t);
                                }
                            }
                            _ => {}
                        }
                    }
                    if !results && !meta && !text.is_empty() {
                        out.push(step(StepKind::UserPrompt(ContentDigest::of(&text))));
                    }
                }
                _ => {}
            }
        }
        "assistant" => {
            let msg = v.get("message").unwrap_or(&Value::Null);
            let model = str_at(msg, "model");
            if v.get("isApiErrorMessage").and_then(Value::as_bool) == Some(true) {
                let text = first_text(msg.get("content")).unwrap_or("API error");
                out.push(step(StepKind::Error {
                    kind: "api_error".into(),
                    message: crate::step::truncate_utf8(text, 512).to_owned(),
                }));
                return Ok(out);
            }
            if let Some(u) = msg.get("usage").filter(|u| u.is_object()) {
                if model != Some("<synthetic>") {
                    out.push(step(StepKind::LlmUsage {
                        message_id: str_at(msg, "id")
                            .or_else(|| str_at(&v, "requestId"))
                            .map(str::to_owned),
                        model: model.map(str::to_owned),
                        usage: Usage {
                            input: count_at(u, "input_tokens"),
                            output: count_at(u, "output_tokens"),
                            cache_read: count_at(u, "cache_read_input_tokens"),
                            cache_write: count_at(u, "cache_creation_input_tokens"),
                            reasoning: 0,
                        },
                        cost_usd: v
                            .get("costUSD")
                            .and_then(Value::as_f64)
                            .filter(|c| c.is_finite() && *c >= 0.0),
                        cumulative: false,
                    }));
                }
            }
            if let Some(Value::Array(blocks)) = msg.get("content") {
                for b in blocks {
                    if str_at(b, "type") != Some("tool_use") {
                        continue;
                    }
                    let (Some(id), Some(name)) = (str_at(b, "id"), str_at(b, "name")) else {
                        continue;
                    };
                    let input = b.get("input").map(Value::to_string).unwrap_or_default();
                    out.push(step(StepKind::ToolUse {
                        id: id.to_owned(),
                        name: name.to_owned(),
                        input: ContentDigest::of(&input),
                    }));
                }
            }
        }
        "system" if str_at(&v, "subtype") == Some("compact_boundary") => {
            out.push(step(StepKind::Compaction));
        }
        "summary" => out.push(step(StepKind::Compaction)),
        _ => {}
    }
    Ok(out)
}

fn first_text(content: Option<&Value>) -> Option<&str> {
    match content? {
        Value::String(s) => Some(s),
        Value::Array(blocks) => blocks.iter().find_map(|b| str_at(b, "text")),
        _ => None,
    }
}

/// Size of a tool result's content (a string, or text blocks).
fn content_bytes(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(s)) => s.len() as u64,
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|b| str_at(b, "text").map_or(0, |t| t.len() as u64))
            .sum(),
        _ => 0,
    }
}
