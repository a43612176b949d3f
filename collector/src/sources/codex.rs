//! Codex CLI rollouts: `~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`,
//! one `{"timestamp", "type", "payload"}` object per line (openai/codex,
//! `codex-rs/protocol`: `RolloutItem`).
//!
//! Lines used: `session_meta` (`id`, `cwd`, `model_provider`, `git`
//! {`branch`, `repository_url`}), `turn_context` (`model`, `cwd`),
//! `response_item` of type `function_call` / `custom_tool_call` /
//! `local_shell_call` (a tool use, by `call_id`), `function_call_output` /
//! `custom_tool_call_output` (its result; an error when the output reports a
//! non-zero exit code or `success: false`), `web_search_call`; `event_msg` of
//! type `token_count` (`info.total_token_usage` cumulative,
//! `info.last_token_usage`, each {`input_tokens`, `cached_input_tokens`,
//! `output_tokens`, `reasoning_output_tokens`}), `user_message`, `error`;
//! `compacted`. Older rollouts without the envelope (a bare first line with
//! `id` and bare response items) are read too.

use serde_json::Value;

use crate::step::{
    count_at, line_json, parse_ts, str_at, ContentDigest, ParseError, Step, StepKind, Usage,
};

/// One rollout line → its steps.
pub fn parse_line(line: &[u8]) -> Result<Vec<Step>, ParseError> {
    let obj = line_json(line)?;
    let v = Value::Object(obj);
    let mut step = Step {
        session_id: None,
        timestamp_ms: str_at(&v, "timestamp").and_then(parse_ts),
        cwd: None,
        git_branch: None,
        sidechain: false,
        line_id: None,
        kind: StepKind::Compaction,
    };
    let (kind, payload) = match (str_at(&v, "type"), v.get("payload")) {
        (Some(t), Some(p)) => (t, p),
        // Older rollouts: a bare first line `{id, timestamp, instructions,
        // git}` and bare response items.
        (None, None) if str_at(&v, "id").is_some() && v.get("record_type").is_none() => {
            ("session_meta", &v)
        }
        (Some(_), None) => ("response_item", &v),
        _ => return Ok(Vec::new()),
    };
    let kind = match kind {
        "session_meta" => {
            let meta = payload.get("meta").unwrap_or(payload);
            step.session_id = str_at(meta, "id").map(str::to_owned);
            step.cwd = str_at(meta, "cwd").map(str::to_owned);
            if step.timestamp_ms.is_none() {
                step.timestamp_ms = str_at(meta, "timestamp").and_then(parse_ts);
            }
            let git = payload.get("git").or_else(|| meta.get("git"));
            step.git_branch = git.and_then(|g| str_at(g, "branch")).map(str::to_owned);
            StepKind::SessionMeta {
                model_provider: str_at(meta, "model_provider").map(str::to_owned),
                repository_url: git
                    .and_then(|g| str_at(g, "repository_url"))
                    .map(str::to_owned),
            }
        }
        "turn_context" => {
            step.cwd = str_at(payload, "cwd").map(str::to_owned);
            StepKind::TurnContext {
                model: str_at(payload, "model").map(str::to_owned),
            }
        }
        "compacted" => StepKind::Compaction,
        "response_item" => match response_item(payload) {
            Some(k) => k,
            None => return Ok(Vec::new()),
        },
        "event_msg" => match event_msg(payload) {
            Some(k) => k,
            None => return Ok(Vec::new()),
        },
        _ => return Ok(Vec::new()),
    };
    step.kind = kind;
    Ok(vec![step])
}

fn response_item(p: &Value) -> Option<StepKind> {
    let call_id = || {
        str_at(p, "call_id")
            .or_else(|| str_at(p, "id"))
            .map(str::to_owned)
    };
    match str_at(p, "type")? {
        "function_call" => Some(StepKind::ToolUse {
            id: call_id()?,
            name: str_at(p, "name")?.to_owned(),
            input: ContentDigest::of(&text_of(p.get("arguments"))),
        }),
        "custom_tool_call" => Some(StepKind::ToolUse {
            id: call_id()?,
            name: str_at(p, "name")?.to_owned(),
            input: ContentDigest::of(&text_of(p.get("input"))),
        }),
        "local_shell_call" => Some(StepKind::ToolUse {
            id: call_id()?,
            name: "local_shell".to_owned(),
            input: ContentDigest::of(&text_of(p.get("action"))),
        }),
        "function_call_output" | "custom_tool_call_output" => {
            let output = p.get("output").unwrap_or(&Value::Null);
            Some(StepKind::ToolResult {
                tool_use_id: str_at(p, "call_id")?.to_owned(),
                is_error: output_is_error(output),
                output_bytes: text_of(Some(output)).len() as u64,
            })
        }
        "web_search_call" => Some(StepKind::ToolCall {
            name: "web_search".to_owned(),
            is_error: str_at(p, "status") == Some("failed"),
        }),
        _ => None,
    }
}

fn event_msg(p: &Value) -> Option<StepKind> {
    match str_at(p, "type")? {
        "token_count" => {
            let info = p.get("info").filter(|i| i.is_object())?;
            let (u, cumulative) = match info.get("total_token_usage").filter(|u| u.is_object()) {
                Some(t) => (t, true),
                None => (
                    info.get("last_token_usage").filter(|u| u.is_object())?,
                    false,
                ),
            };
            Some(StepKind::LlmUsage {
                message_id: None,
                model: None,
                usage: Usage {
                    input: count_at(u, "input_tokens"),
                    output: count_at(u, "output_tokens"),
                    cache_read: count_at(u, "cached_input_tokens"),
                    cache_write: count_at(u, "cache_write_input_tokens"),
                    reasoning: count_at(u, "reasoning_output_tokens"),
                },
                cost_usd: None,
                cumulative,
            })
        }
        "user_message" => Some(StepKind::UserPrompt(ContentDigest::of(
            str_at(p, "message").unwrap_or(""),
        ))),
        "error" => Some(StepKind::Error {
            kind: "error".into(),
            message: crate::step::truncate_utf8(str_at(p, "message").unwrap_or("error"), 512)
                .to_owned(),
        }),
        _ => None,
    }
}

/// A string as itself, anything else as its JSON text.
fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Did a tool's output say it failed? `{"success": false}`, a JSON string
/// with `metadata.exit_code` ≠ 0, or text starting with an exit-code line
/// (`Exit code: 1`, `Process exited with code 1`) that is not 0.
pub fn output_is_error(output: &Value) -> bool {
    match output {
        Value::Object(_) => {
            if output.get("success").and_then(Value::as_bool) == Some(false) {
                return true;
            }
            output
                .get("metadata")
                .and_then(|m| m.get("exit_code"))
                .and_then(Value::as_i64)
                .is_some_and(|c| c != 0)
        }
        Value::String(s) => {
            let t = s.trim_start();
            if t.starts_with('{') {
                if let Ok(inner @ Value::Object(_)) = serde_json::from_str::<Value>(t) {
                    return output_is_error(&inner);
                }
            }
            for line in t.lines().take(8) {
                let line = line.trim();
                let code = line
                    .strip_prefix("Exit code:")
                    .or_else(|| line.strip_prefix("Process exited with code"));
                if let Some(code) = code {
                    return code.trim().parse::<i64>().is_ok_and(|c| c != 0);
                }
            }
            false
        }
        _ => false,
    }
}
