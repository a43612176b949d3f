//! OTLP logs: the events coding agents export about themselves (Claude
//! Code's `claude_code.*` and Codex CLI's `codex.*` log events) become agent
//! events. Each record is named by its `event_name` field, else its
//! `event.name` attribute (Claude Code writes it without the
//! `claude_code.` prefix), else its body. The mapping table is in
//! docs/coding-agents.md; other names are counted as ignored, not errors.

use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::{Map, Value};

pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};

use super::attrs::{render, Attrs, Place};
use super::{Format, OtlpError};
use crate::batch::Rejected;
use crate::validate::{event_from_str, ValidationLimits};
use crate::AgentEvent;

/// Names the deterministic event ids of log records.
const LOG_EVENT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x0c4d_2e71_95a3_4f08_b6d1_7e29_a4c8_31f5);

/// The coding agents whose log events are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    ClaudeCode,
    Codex,
}

impl Agent {
    fn kind(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "claude-code",
            Agent::Codex => "codex",
        }
    }

    fn provider(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "anthropic",
            Agent::Codex => "openai",
        }
    }

    /// The attribute naming the session (the run).
    fn session_key(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "session.id",
            Agent::Codex => "conversation.id",
        }
    }
}

/// A record's event name with its agent, if it is one this maps.
fn classify(record: &LogRecord, a: &Attrs<'_>) -> Option<(Agent, String)> {
    let body = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Any::StringValue(s)) => Some(s.clone()),
        _ => None,
    };
    let candidates = [
        (!record.event_name.is_empty()).then(|| record.event_name.clone()),
        a.text("event.name"),
        body,
    ];
    for name in candidates.into_iter().flatten() {
        if name.starts_with("claude_code.") {
            return Some((Agent::ClaudeCode, name));
        }
        if name.starts_with("codex.") {
            return Some((Agent::Codex, name));
        }
    }
    // Claude Code's `event.name` lacks the prefix; its body has it, but a
    // record may come without one: known bare names of its events.
    let bare = a.text("event.name")?;
    const CLAUDE: [&str; 5] = [
        "api_request",
        "api_error",
        "tool_result",
        "tool_decision",
        "user_prompt",
    ];
    CLAUDE
        .contains(&bare.as_str())
        .then(|| (Agent::ClaudeCode, format!("claude_code.{bare}")))
}

/// Attribute keys never copied into an event: prompt and tool content
/// (Claude Code sends them only when asked to; AgentOps keeps none of it) and
/// the keys that became fields.
const NOT_COPIED: &[&str] = &[
    "prompt",
    "tool_parameters",
    "tool_input",
    "arguments",
    "output",
    "event.name",
    "event.timestamp",
    "model",
    "cost_usd",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "input_token_count",
    "output_token_count",
    "cached_token_count",
    "reasoning_token_count",
    "tool_name",
    "success",
    "error",
    "status_code",
];

/// Decode an `ExportLogsServiceRequest`. Never panics.
pub fn decode_logs(body: &[u8], format: Format) -> Result<ExportLogsServiceRequest, OtlpError> {
    match format {
        Format::Protobuf => <ExportLogsServiceRequest as prost::Message>::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string())),
        Format::Json => serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string())),
    }
}

/// Encode a logs answer in the request's format.
pub fn encode_logs_response(response: &ExportLogsServiceResponse, format: Format) -> Vec<u8> {
    match format {
        Format::Protobuf => prost::Message::encode_to_vec(response),
        Format::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// What a request's log records became.
#[derive(Debug, Default)]
pub struct MappedLogs {
    /// Records in the request.
    pub records: usize,
    /// Valid events, in record order.
    pub accepted: Vec<AgentEvent>,
    /// Refused events; `index` is the record's position in the request.
    pub rejected: Vec<Rejected>,
    /// Records that are not a coding-agent event this maps.
    pub ignored: usize,
}

impl MappedLogs {
    /// Records with a refused event.
    pub fn rejected_records(&self) -> usize {
        let mut idx: Vec<usize> = self.rejected.iter().map(|r| r.index).collect();
        idx.dedup();
        idx.len()
    }

    /// The OTLP answer: refused records with the first reasons, or a note
    /// on the ignored ones.
    pub fn response(&self) -> ExportLogsServiceResponse {
        let rejected = self.rejected_records();
        let error_message = if rejected > 0 {
            let mut reasons: Vec<String> = self
                .rejected
                .iter()
                .take(5)
                .map(|r| format!("record {}: field `{}`: {}", r.index, r.field, r.error))
                .collect();
            if self.rejected.len() > 5 {
                reasons.push(format!("and {} more", self.rejected.len() - 5));
            }
            format!(
                "{rejected} of {} log records rejected: {}",
                self.records,
                reasons.join("; ")
            )
        } else if self.ignored > 0 {
            format!(
                "{} of {} log records ignored: not a coding-agent event this endpoint maps \
                 (claude_code.api_request, api_error, tool_result; codex.conversation_starts, \
                 sse_event response.completed, tool_result)",
                self.ignored, self.records
            )
        } else {
            return ExportLogsServiceResponse {
                partial_success: None,
            };
        };
        ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message,
            }),
        }
    }
}

/// Decode a body and map its records. Never panics on any input.
/// `usage`: whether Claude Code's `api_request` and Codex's completed
/// `sse_event` records carry their token and cost usage (the gateway's
/// `otlp_usage_source = logs`), or only count the call (usage then comes
/// from their metrics).
pub fn decode_and_map_logs(
    body: &[u8],
    format: Format,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
    usage: bool,
) -> Result<MappedLogs, OtlpError> {
    let request = decode_logs(body, format)?;
    Ok(logs_to_events(&request, org_id, now_us, limits, usage))
}

/// Map every record of a request to events, validated for `org_id` at `now_us`.
pub fn logs_to_events(
    request: &ExportLogsServiceRequest,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
    usage: bool,
) -> MappedLogs {
    let mut out = MappedLogs::default();
    let mut index = 0;
    for rl in &request.resource_logs {
        let resource = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for sl in &rl.scope_logs {
            for record in &sl.log_records {
                let i = index;
                index += 1;
                out.records += 1;
                let a = Attrs::new(&record.attributes);
                let Some((agent, name)) = classify(record, &a) else {
                    out.ignored += 1;
                    continue;
                };
                let Some(event) =
                    record_event(record, &a, resource, agent, &name, org_id, limits, usage)
                else {
                    out.ignored += 1;
                    continue;
                };
                match event_from_str(&event.to_string(), org_id, now_us, limits) {
                    Ok(e) => out.accepted.push(e),
                    Err(e) => out.rejected.push(Rejected {
                        index: i,
                        field: e.field,
                        error: e.error,
                    }),
                }
            }
        }
    }
    out
}

/// A float attribute (a double, an int or a decimal string).
fn float(a: &Attrs<'_>, key: &str) -> Option<f64> {
    a.text(key)?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// The record's time: its own, else when it was observed, else the
/// `event.timestamp` attribute (RFC 3339), as Unix nanoseconds.
fn record_time(record: &LogRecord, a: &Attrs<'_>) -> Option<u64> {
    if record.time_unix_nano > 0 {
        return Some(record.time_unix_nano);
    }
    if record.observed_time_unix_nano > 0 {
        return Some(record.observed_time_unix_nano);
    }
    let t = chrono::DateTime::parse_from_rfc3339(&a.text("event.timestamp")?).ok()?;
    u64::try_from(t.timestamp_nanos_opt()?).ok()
}

/// The agent event of one record (client JSON), or `None` for an event of
/// a known agent that carries nothing this maps (a prompt, a decision, a
/// stream event other than a completed response).
#[allow(clippy::too_many_arguments)]
fn record_event(
    record: &LogRecord,
    a: &Attrs<'_>,
    resource: &[KeyValue],
    agent: Agent,
    name: &str,
    org_id: &str,
    limits: &ValidationLimits,
    usage: bool,
) -> Option<Value> {
    let short = name.split_once('.').map_or(name, |(_, s)| s);
    let r = Attrs::new(resource);
    let mut e = Map::new();
    let ty = match (agent, short) {
        (Agent::ClaudeCode, "api_request") if !usage => {
            // Usage comes from the metrics: the call, its model and latency.
            e.insert("status".into(), "ok".into());
            "llm_call"
        }
        (Agent::ClaudeCode, "api_request") => {
            let input = a.int("input_tokens");
            let output = a.int("output_tokens");
            put_int(&mut e, "input_tokens", input);
            put_int(&mut e, "output_tokens", output);
            put_int(&mut e, "cache_read_tokens", a.int("cache_read_tokens"));
            put_int(&mut e, "cache_write_tokens", a.int("cache_creation_tokens"));
            if let Some(c) = float(a, "cost_usd") {
                e.insert("cost_usd".into(), Value::from(c));
            }
            e.insert("status".into(), "ok".into());
            "llm_call"
        }
        (Agent::ClaudeCode, "api_error") => {
            e.insert("status".into(), "error".into());
            let code = a.text("status_code").unwrap_or_else(|| "api_error".into());
            e.insert("error_type".into(), Value::from(code));
            if let Some(m) = a.text("error") {
                e.insert("error_message".into(), Value::from(m));
            }
            "llm_call"
        }
        (Agent::Codex, "sse_event") if !usage => {
            if a.text("event.kind").as_deref() != Some("response.completed") {
                return None;
            }
            // Usage comes from the metrics (`codex.turn.token_usage`): the call only.
            e.insert("status".into(), "ok".into());
            "llm_call"
        }
        (Agent::Codex, "sse_event") => {
            if a.text("event.kind").as_deref() != Some("response.completed") {
                return None;
            }
            // OpenAI counts cached input inside the input and reasoning
            // inside the output; the contract counts them apart.
            let input = a.int("input_token_count");
            let cached = a.int("cached_token_count");
            let output = a.int("output_token_count");
            let reasoning = a.int("reasoning_token_count");
            let c = cached.unwrap_or(0).max(0);
            let rs = reasoning.unwrap_or(0).max(0);
            put_int(
                &mut e,
                "input_tokens",
                input.map(|n| if n >= c { n - c } else { n }),
            );
            put_int(&mut e, "cache_read_tokens", cached);
            put_int(
                &mut e,
                "output_tokens",
                output.map(|n| if n >= rs { n - rs } else { n }),
            );
            put_int(&mut e, "reasoning_tokens", reasoning);
            e.insert("status".into(), "ok".into());
            "llm_call"
        }
        (_, "tool_result") => {
            let tool = a.text("tool_name").unwrap_or_else(|| "unknown".into());
            e.insert("tool_name".into(), Value::from(tool));
            let ok = a.text("success").is_none_or(|s| s == "true" || s == "1");
            e.insert("status".into(), if ok { "ok" } else { "error" }.into());
            if let (false, Some(m)) = (ok, a.text("error")) {
                e.insert("error_message".into(), Value::from(m));
            }
            "tool_call"
        }
        (Agent::Codex, "conversation_starts") => "run_started",
        _ => return None,
    };
    if ty == "llm_call" {
        e.insert("provider".into(), agent.provider().into());
        if let Some(m) = a.text("model") {
            e.insert("model".into(), Value::from(m));
        }
    }
    if let Some(ms) = a
        .int("duration_ms")
        .filter(|ms| *ms >= 0 && ty != "run_started")
    {
        e.insert("latency_ms".into(), Value::from(ms));
    }
    let session = a
        .text(agent.session_key())
        .or_else(|| r.text(agent.session_key()));
    let agent_id = r
        .text("service.name")
        .unwrap_or_else(|| agent.kind().into());
    let run = session
        .clone()
        .unwrap_or_else(|| format!("{}-unknown-session", agent.kind()));
    let nanos = record_time(record, a).unwrap_or(0);
    let t = chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX));
    e.insert(
        "timestamp".into(),
        Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
    e.insert("type".into(), ty.into());
    e.insert("agent_id".into(), Value::from(agent_id));
    e.insert("run_id".into(), Value::from(run));
    Place::of(a, &r).insert_into(&mut e, session.as_deref());
    let attributes = attributes(resource, &record.attributes, agent, name, limits);
    // The same record exported twice has the same id: its org, name, time
    // and attributes (sequence numbers and prompt ids among them).
    let identity = format!(
        "{org_id}\u{1f}{name}\u{1f}{nanos}\u{1f}{}",
        Value::Object(attributes.clone())
    );
    let id = uuid::Uuid::new_v5(&LOG_EVENT_NAMESPACE, identity.as_bytes());
    e.insert("event_id".into(), Value::from(id.to_string()));
    e.insert("attributes".into(), Value::Object(attributes));
    Some(Value::Object(e))
}

fn put_int(e: &mut Map<String, Value>, field: &str, v: Option<i64>) {
    if let Some(n) = v {
        e.insert(field.into(), Value::from(n));
    }
}

/// Event attributes: `agent_kind` and `otel.event_name`, then the record's
/// attributes and the resource's (the record's win), up to
/// `max_attributes`, without content or the keys that became fields.
fn attributes(
    resource: &[KeyValue],
    record: &[KeyValue],
    agent: Agent,
    name: &str,
    limits: &ValidationLimits,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("agent_kind".into(), agent.kind().into());
    out.insert("otel.event_name".into(), name.into());
    let room = limits.max_message_len;
    let mut keys: Vec<&KeyValue> = record.iter().chain(resource.iter()).collect();
    // Stable by key, the record's first: a resource attribute never
    // replaces the record's.
    keys.sort_by(|x, y| x.key.cmp(&y.key));
    for kv in keys {
        if out.len() >= limits.max_attributes {
            break;
        }
        if kv.key.is_empty() || NOT_COPIED.contains(&kv.key.as_str()) || out.contains_key(&kv.key) {
            continue;
        }
        if let Some(v) = kv.value.as_ref().and_then(|v| render(v, room)) {
            out.insert(kv.key.clone(), Value::from(v));
        }
    }
    out
}
