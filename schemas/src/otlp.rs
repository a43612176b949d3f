//! OTLP/HTTP trace ingestion: decode an `ExportTraceServiceRequest`
//! (protobuf or OTLP/JSON) and map OpenTelemetry GenAI spans
//! (`gen_ai.*` semantic conventions) to agent events.
//!
//! Every mapped event is built as client JSON and validated by
//! [`crate::validate`], so it obeys exactly the limits of `POST /v1/events`.
//! Spans that are not GenAI operations we map are counted as ignored, not
//! errors. No Kafka, no Postgres: the fuzz target runs [`decode_and_map`]
//! as the gateway does. The mapping table is in the README ("OpenTelemetry
//! GenAI traces").

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use serde_json::{json, Map, Value};

pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::batch::Rejected;
use crate::validate::{event_from_json, ValidationLimits};
use crate::AgentEvent;

use attrs::{render, Attrs};

/// The encoding of a request (and of its answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json` (OTLP/JSON: hex ids, lowerCamelCase, enums as ints)
    Json,
}

impl Format {
    /// The format a `Content-Type` names (parameters ignored), if one we take.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-protobuf")
            || media.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Format::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// Why a body could not be decoded (nothing of it is accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    #[error("body is not a protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(String),
    #[error("body is not an OTLP/JSON ExportTraceServiceRequest: {0}")]
    Json(String),
}

/// Decode a request body. Never panics; protobuf nesting is bounded by
/// prost's recursion limit, JSON nesting by serde_json's.
pub fn decode(body: &[u8], format: Format) -> Result<ExportTraceServiceRequest, OtlpError> {
    match format {
        Format::Protobuf => <ExportTraceServiceRequest as prost::Message>::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string())),
        Format::Json => serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string())),
    }
}

/// Encode an answer in the request's format.
pub fn encode_response(response: &ExportTraceServiceResponse, format: Format) -> Vec<u8> {
    match format {
        Format::Protobuf => prost::Message::encode_to_vec(response),
        Format::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// What a request's spans became.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Spans in the request.
    pub spans: usize,
    /// Valid events, in span order.
    pub accepted: Vec<AgentEvent>,
    /// Refused events; `index` is the span's position in the request
    /// (resource spans, then scope spans, then spans, in order).
    pub rejected: Vec<Rejected>,
    /// Spans that are not a GenAI operation we map (dropped, not errors).
    pub ignored_spans: usize,
}

impl Mapped {
    /// Spans with at least one refused event.
    pub fn rejected_spans(&self) -> usize {
        let mut idx: Vec<usize> = self.rejected.iter().map(|r| r.index).collect();
        idx.dedup();
        idx.len()
    }

    /// Spans that became events, all of them valid.
    pub fn mapped_spans(&self) -> usize {
        self.spans - self.ignored_spans - self.rejected_spans()
    }

    /// The OTLP answer: `partial_success` names refused spans (the first few
    /// reasons), or, when everything was taken but some spans were not
    /// GenAI operations, says so with `rejected_spans` 0 (a warning, as the
    /// OTLP specification allows).
    pub fn response(&self) -> ExportTraceServiceResponse {
        let rejected = self.rejected_spans();
        let error_message = if rejected > 0 {
            let mut reasons: Vec<String> = self
                .rejected
                .iter()
                .take(5)
                .map(|r| format!("span {}: field `{}`: {}", r.index, r.field, r.error))
                .collect();
            if self.rejected.len() > 5 {
                reasons.push(format!("and {} more", self.rejected.len() - 5));
            }
            format!(
                "{rejected} of {} spans rejected: {}",
                self.spans,
                reasons.join("; ")
            )
        } else if self.ignored_spans > 0 {
            format!(
                "{} of {} spans ignored: not a GenAI operation this endpoint maps \
                 (gen_ai.operation.name chat, text_completion, generate_content, embeddings, \
                 execute_tool or invoke_agent)",
                self.ignored_spans, self.spans
            )
        } else {
            return ExportTraceServiceResponse {
                partial_success: None,
            };
        };
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message,
            }),
        }
    }
}

/// Decode a body and map its spans. Never panics on any input.
pub fn decode_and_map(
    body: &[u8],
    format: Format,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Result<Mapped, OtlpError> {
    let request = decode(body, format)?;
    Ok(to_events(&request, org_id, now_us, limits))
}

// Attribute names (OpenTelemetry GenAI semantic conventions, with the
// aliases older instrumentations write).
const OPERATION: &str = "gen_ai.operation.name";
const PROVIDER: &[&str] = &["gen_ai.provider.name", "gen_ai.system"];
const MODEL: &[&str] = &["gen_ai.response.model", "gen_ai.request.model"];
const AGENT: &[&str] = &["gen_ai.agent.id", "gen_ai.agent.name"];
const INPUT: &[&str] = &["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"];
const OUTPUT: &[&str] = &[
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
];
const CACHE_READ: &[&str] = &[
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
];
const CACHE_WRITE: &[&str] = &[
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
];
const REASONING: &[&str] = &[
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.output_tokens.reasoning",
];
const TOOL: &str = "gen_ai.tool.name";
const ERROR_TYPE: &str = "error.type";
/// Span attributes that become event fields, not event attributes.
const AS_FIELDS: &[&[&str]] = &[
    PROVIDER,
    MODEL,
    INPUT,
    OUTPUT,
    CACHE_READ,
    CACHE_WRITE,
    REASONING,
    &[TOOL, ERROR_TYPE, "gen_ai.agent.id"],
];

/// Names the deterministic event ids (UUID v5 of org, trace, span and kind).
const EVENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6a3e_51c2_8f0d_4b7e_9c1a_2d4f_7b8e_0c35);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Llm,
    Tool,
    Agent,
}

/// Map every span of a request to events, validated for `org_id` at `now_us`.
pub fn to_events(
    request: &ExportTraceServiceRequest,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Mapped {
    let mut spans: Vec<(&Span, &[KeyValue])> = Vec::new();
    for rs in &request.resource_spans {
        let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for ss in &rs.scope_spans {
            spans.extend(ss.spans.iter().map(|s| (s, resource)));
        }
    }
    let attrs: Vec<Attrs<'_>> = spans
        .iter()
        .map(|(s, _)| Attrs::new(&s.attributes))
        .collect();
    let agents = span_agents(&spans, &attrs);
    let mut out = Mapped {
        spans: spans.len(),
        ..Mapped::default()
    };
    for (index, (span, resource)) in spans.iter().enumerate() {
        let a = &attrs[index];
        let Some(op) = classify(a) else {
            out.ignored_spans += 1;
            continue;
        };
        // The agent: the span's own or its nearest ancestor's in this
        // request, else the resource's service.name.
        let agent = agents[index]
            .clone()
            .or_else(|| Attrs::new(resource).text("service.name"))
            .unwrap_or_else(|| "unknown_service".to_owned());
        let events = match span_events(span, resource, a, op, &agent, org_id, limits) {
            Ok(events) => events,
            Err((field, error)) => {
                out.rejected.push(Rejected {
                    index,
                    field: field.to_owned(),
                    error,
                });
                continue;
            }
        };
        for event in events {
            match event_from_json(&event, org_id, now_us, limits) {
                Ok(e) => out.accepted.push(e),
                Err(e) => out.rejected.push(Rejected {
                    index,
                    field: e.field,
                    error: e.error,
                }),
            }
        }
    }
    out
}

/// Each span's `gen_ai.agent.id` / `gen_ai.agent.name`, else its nearest
/// ancestor's in this request. Every span is resolved once (memoized along
/// each walk up), so a long parent chain costs linear time; a parent cycle
/// (malformed input) resolves to none.
fn span_agents(spans: &[(&Span, &[KeyValue])], attrs: &[Attrs<'_>]) -> Vec<Option<String>> {
    let by_id: HashMap<(&[u8], &[u8]), usize> = spans
        .iter()
        .enumerate()
        .map(|(i, (s, _))| ((&s.trace_id[..], &s.span_id[..]), i))
        .collect();
    let parent = |i: usize| {
        let s = spans[i].0;
        if s.parent_span_id.is_empty() {
            return None;
        }
        by_id
            .get(&(&s.trace_id[..], &s.parent_span_id[..]))
            .copied()
    };
    let mut agent: Vec<Option<Option<String>>> = vec![None; spans.len()];
    let mut on_walk = vec![false; spans.len()];
    for start in 0..spans.len() {
        let mut walk = Vec::new();
        let mut cur = start;
        let found = loop {
            if let Some(done) = &agent[cur] {
                break done.clone();
            }
            if on_walk[cur] {
                break None;
            }
            on_walk[cur] = true;
            walk.push(cur);
            if let Some(own) = attrs[cur].text_of(AGENT) {
                break Some(own);
            }
            match parent(cur) {
                Some(p) => cur = p,
                None => break None,
            }
        };
        for i in walk {
            agent[i] = Some(found.clone());
        }
    }
    agent.into_iter().map(Option::flatten).collect()
}

fn classify(a: &Attrs<'_>) -> Option<Op> {
    match a.text(OPERATION).as_deref() {
        Some("chat" | "text_completion" | "generate_content" | "embeddings") => Some(Op::Llm),
        Some("execute_tool") => Some(Op::Tool),
        Some("invoke_agent") => Some(Op::Agent),
        Some(_) => None,
        // Instrumentations older than gen_ai.operation.name: a model call.
        None if a.text_of(MODEL).is_some() => Some(Op::Llm),
        None => None,
    }
}

/// The events of one span, as client JSON (validated by the caller).
fn span_events(
    span: &Span,
    resource: &[KeyValue],
    a: &Attrs<'_>,
    op: Op,
    agent: &str,
    org_id: &str,
    limits: &ValidationLimits,
) -> Result<Vec<Value>, (&'static str, String)> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Err(("traceId", "expected 16 bytes, not all zero".into()));
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Err(("spanId", "expected 8 bytes, not all zero".into()));
    }
    let trace = hex::encode(&span.trace_id);
    let span_hex = hex::encode(&span.span_id);
    let id = |kind: &str| {
        let name = format!("{org_id}/{trace}/{span_hex}/{kind}");
        uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string()
    };
    let status = span.status.as_ref();
    let failed =
        status.is_some_and(|s| s.code == StatusCode::Error as i32) || a.text(ERROR_TYPE).is_some();
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .map(|e| Attrs::new(&e.attributes));
    let error_type = a.text(ERROR_TYPE).or_else(|| {
        exception
            .as_ref()
            .filter(|_| failed)
            .and_then(|x| x.text("exception.type"))
    });
    let error_message = status
        .map(|s| s.message.as_str())
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            exception
                .as_ref()
                .filter(|_| failed)
                .and_then(|x| x.text("exception.message"))
        });
    let latency_ms = (span.start_time_unix_nano > 0
        && span.end_time_unix_nano >= span.start_time_unix_nano)
        .then(|| ((span.end_time_unix_nano - span.start_time_unix_nano) / 1_000_000) as i64);

    let mut base = Map::new();
    base.insert("agent_id".into(), json!(agent));
    base.insert("run_id".into(), json!(trace));
    base.insert("trace_id".into(), json!(trace));
    base.insert("span_id".into(), json!(span_hex));
    base.insert("attributes".into(), attributes(span, resource, limits));
    if let Some(p) = a.text_of(PROVIDER) {
        base.insert("provider".into(), json!(p));
    }
    // Takes its map: only `invoke_agent` spans (two events) clone one.
    let event = |kind: &str, at: u64, mut e: Map<String, Value>| {
        e.insert("event_id".into(), json!(id(kind)));
        e.insert("type".into(), json!(kind));
        e.insert("timestamp".into(), json!(rfc3339(at)));
        e
    };
    let mut outcome = base;
    outcome.insert("status".into(), json!(if failed { "error" } else { "ok" }));
    if let Some(ms) = latency_ms {
        outcome.insert("latency_ms".into(), json!(ms));
    }
    if let Some(t) = error_type {
        outcome.insert("error_type".into(), json!(t));
    }
    if let Some(m) = error_message {
        outcome.insert("error_message".into(), json!(m));
    }
    let end = span.end_time_unix_nano;
    Ok(match op {
        Op::Llm => {
            let mut e = event("llm_call", end, outcome);
            if let Some(m) = a.text_of(MODEL) {
                e.insert("model".into(), json!(m));
            }
            tokens(a, &mut e);
            vec![Value::Object(e)]
        }
        Op::Tool => {
            let mut e = event("tool_call", end, outcome);
            if let Some(t) = a.text(TOOL) {
                e.insert("tool_name".into(), json!(t));
            }
            vec![Value::Object(e)]
        }
        Op::Agent => {
            let mut started = event("run_started", span.start_time_unix_nano, outcome.clone());
            for k in ["status", "latency_ms", "error_type", "error_message"] {
                started.remove(k);
            }
            let kind = if failed {
                "run_failed"
            } else {
                "run_completed"
            };
            vec![
                Value::Object(started),
                Value::Object(event(kind, end, outcome)),
            ]
        }
    })
}

/// Token counts in the contract's convention (README "Cost"): OTel's
/// `input_tokens` include cache reads and writes, and `output_tokens`
/// include reasoning, so both are subtracted, unless the span's total is
/// smaller than the part (an instrumentation that already reports them apart).
fn tokens(a: &Attrs<'_>, e: &mut Map<String, Value>) {
    let input = a.int_of(INPUT);
    let cache_read = a.int_of(CACHE_READ);
    let cache_write = a.int_of(CACHE_WRITE);
    let output = a.int_of(OUTPUT);
    let reasoning = a.int_of(REASONING);
    let cached = cache_read
        .unwrap_or(0)
        .max(0)
        .saturating_add(cache_write.unwrap_or(0).max(0));
    let input = input.map(|n| if n >= cached { n - cached } else { n });
    let output = output.map(|n| match reasoning {
        Some(r) if r >= 0 && n >= r => n - r,
        _ => n,
    });
    for (field, v) in [
        ("input_tokens", input),
        ("output_tokens", output),
        ("cache_read_tokens", cache_read),
        ("cache_write_tokens", cache_write),
        ("reasoning_tokens", reasoning),
    ] {
        if let Some(n) = v {
            e.insert(field.into(), json!(n));
        }
    }
}

/// Event attributes: the span name, parent span id and `service.name`, then
/// the span's other attributes (by key) up to `max_attributes` in all.
fn attributes(span: &Span, resource: &[KeyValue], limits: &ValidationLimits) -> Value {
    let mut out = Map::new();
    if !span.name.is_empty() {
        out.insert("otel.span_name".into(), json!(span.name));
    }
    if !span.parent_span_id.is_empty() {
        out.insert(
            "otel.parent_span_id".into(),
            json!(hex::encode(&span.parent_span_id)),
        );
    }
    if let Some(service) = Attrs::new(resource).text("service.name") {
        out.insert("service.name".into(), json!(service));
    }
    let mut rest: Vec<&KeyValue> = span
        .attributes
        .iter()
        .filter(|kv| {
            !kv.key.is_empty()
                && !AS_FIELDS
                    .iter()
                    .any(|names| names.contains(&kv.key.as_str()))
        })
        .collect();
    rest.sort_by(|x, y| x.key.cmp(&y.key));
    let room = limits.max_message_len;
    for kv in rest {
        if out.len() >= limits.max_attributes {
            break;
        }
        if let Some(v) = kv.value.as_ref().and_then(|v| render(v, room)) {
            out.entry(kv.key.clone()).or_insert(json!(v));
        }
    }
    Value::Object(out)
}

/// Span time (Unix nanoseconds) as RFC 3339 with microseconds, UTC.
fn rfc3339(nanos: u64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX));
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

mod attrs;
#[cfg(test)]
mod tests;
