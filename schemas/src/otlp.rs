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

pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::batch::Rejected;
use crate::validate::{event_from_str, ValidationLimits};
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
    // Each resource's `service.name`, read once for all its spans.
    let services: Vec<Option<String>> = request
        .resource_spans
        .iter()
        .map(|rs| {
            let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            Attrs::new(resource).text("service.name")
        })
        .collect();
    let mut spans: Vec<(&Span, Option<&str>)> = Vec::new();
    for (rs, service) in request.resource_spans.iter().zip(&services) {
        for ss in &rs.scope_spans {
            spans.extend(ss.spans.iter().map(|s| (s, service.as_deref())));
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
    for (index, &(span, service)) in spans.iter().enumerate() {
        let a = &attrs[index];
        let Some(op) = classify(a) else {
            out.ignored_spans += 1;
            continue;
        };
        // The agent: the span's own or its nearest ancestor's in this
        // request, else the resource's service.name.
        let agent = agents[index]
            .clone()
            .or_else(|| service.map(str::to_owned))
            .unwrap_or_else(|| "unknown_service".to_owned());
        let events = match span_events(span, service, a, op, &agent, org_id, limits) {
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
            match event_from_str(&event, org_id, now_us, limits) {
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
fn span_agents(spans: &[(&Span, Option<&str>)], attrs: &[Attrs<'_>]) -> Vec<Option<String>> {
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

/// A field of an event's client JSON.
#[derive(Clone, Copy)]
enum F<'a> {
    Str(&'a str),
    Int(i64),
    /// Text that is already JSON (the attributes object).
    Raw(&'a str),
}

/// An event as compact client JSON, keys in byte order: the very text
/// `serde_json` writes for the same fields in a `serde_json::Map` (a
/// `BTreeMap`), without building one. Keys must be distinct.
fn write_event(fields: &mut [(&str, F<'_>)], out: &mut Vec<u8>) -> std::io::Result<()> {
    fields.sort_unstable_by(|x, y| x.0.cmp(y.0));
    out.push(b'{');
    for (n, (k, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k)?;
        out.push(b':');
        match v {
            F::Str(s) => serde_json::to_writer(&mut *out, s)?,
            F::Int(i) => serde_json::to_writer(&mut *out, i)?,
            F::Raw(r) => out.extend_from_slice(r.as_bytes()),
        }
    }
    out.push(b'}');
    Ok(())
}

/// The events of one span, as client JSON text (validated by the caller).
fn span_events(
    span: &Span,
    service: Option<&str>,
    a: &Attrs<'_>,
    op: Op,
    agent: &str,
    org_id: &str,
    limits: &ValidationLimits,
) -> Result<Vec<String>, (&'static str, String)> {
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
    let attributes = attributes(span, service, limits).map_err(|e| ("(event)", e.to_string()))?;
    let provider = a.text_of(PROVIDER);

    let end = span.end_time_unix_nano;
    let end_kind = match op {
        Op::Llm => "llm_call",
        Op::Tool => "tool_call",
        Op::Agent if failed => "run_failed",
        Op::Agent => "run_completed",
    };
    let (end_id, end_at) = (id(end_kind), rfc3339(end));
    let started =
        (op == Op::Agent).then(|| (id("run_started"), rfc3339(span.start_time_unix_nano)));
    let model = (op == Op::Llm).then(|| a.text_of(MODEL)).flatten();
    let tool = (op == Op::Tool).then(|| a.text(TOOL)).flatten();

    let mut base: Vec<(&str, F<'_>)> = Vec::with_capacity(20);
    base.push(("agent_id", F::Str(agent)));
    base.push(("run_id", F::Str(&trace)));
    base.push(("trace_id", F::Str(&trace)));
    base.push(("span_id", F::Str(&span_hex)));
    base.push(("attributes", F::Raw(&attributes)));
    if let Some(p) = &provider {
        base.push(("provider", F::Str(p)));
    }
    let outcome_len = base.len();
    let mut outcome = base;
    outcome.push(("status", F::Str(if failed { "error" } else { "ok" })));
    if let Some(ms) = latency_ms {
        outcome.push(("latency_ms", F::Int(ms)));
    }
    if let Some(t) = &error_type {
        outcome.push(("error_type", F::Str(t)));
    }
    if let Some(m) = &error_message {
        outcome.push(("error_message", F::Str(m)));
    }
    let text = |mut fields: Vec<(&str, F<'_>)>| {
        let mut out = Vec::with_capacity(1024);
        write_event(&mut fields, &mut out).map_err(|e| ("(event)", e.to_string()))?;
        String::from_utf8(out).map_err(|e| ("(event)", e.to_string()))
    };
    let mut started_fields: Vec<(&str, F<'_>)> = Vec::new();
    if let Some((started_id, started_at)) = &started {
        // The start carries the shared fields only, not the outcome.
        started_fields = outcome[..outcome_len].to_vec();
        started_fields.push(("event_id", F::Str(started_id)));
        started_fields.push(("type", F::Str("run_started")));
        started_fields.push(("timestamp", F::Str(started_at)));
    }
    let mut e = outcome;
    e.push(("event_id", F::Str(&end_id)));
    e.push(("type", F::Str(end_kind)));
    e.push(("timestamp", F::Str(&end_at)));
    if let Some(m) = &model {
        e.push(("model", F::Str(m)));
    }
    if op == Op::Llm {
        tokens(a, &mut e);
    }
    if let Some(t) = &tool {
        e.push(("tool_name", F::Str(t)));
    }
    Ok(if started.is_some() {
        vec![text(started_fields)?, text(e)?]
    } else {
        vec![text(e)?]
    })
}

/// Token counts in the contract's convention (README "Cost"): OTel's
/// `input_tokens` include cache reads and writes, and `output_tokens`
/// include reasoning, so both are subtracted, unless the span's total is
/// smaller than the part (an instrumentation that already reports them apart).
fn tokens(a: &Attrs<'_>, e: &mut Vec<(&str, F<'_>)>) {
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
            e.push((field, F::Int(n)));
        }
    }
}

/// Event attributes: the span name, parent span id and `service.name`, then
/// the span's other attributes (by key) up to `max_attributes` in all, as
/// the JSON text of an object (keys in byte order, the first of a key wins).
fn attributes(
    span: &Span,
    service: Option<&str>,
    limits: &ValidationLimits,
) -> std::io::Result<String> {
    let parent = (!span.parent_span_id.is_empty()).then(|| hex::encode(&span.parent_span_id));
    let mut out: Vec<(&str, String)> = Vec::with_capacity(span.attributes.len() + 3);
    if !span.name.is_empty() {
        out.push(("otel.span_name", span.name.clone()));
    }
    if let Some(p) = parent {
        out.push(("otel.parent_span_id", p));
    }
    if let Some(service) = service {
        out.push(("service.name", service.to_owned()));
    }
    let fixed = out.len();
    let mut rest: Vec<&KeyValue> = span
        .attributes
        .iter()
        .filter(|kv| !kv.key.is_empty() && !is_field(&kv.key))
        .collect();
    rest.sort_by(|x, y| x.key.cmp(&y.key));
    let room = limits.max_message_len;
    for kv in rest {
        if out.len() >= limits.max_attributes {
            break;
        }
        let key = kv.key.as_str();
        // `rest` is sorted, so a repeated key follows the one that won.
        let taken = out[..fixed].iter().any(|(k, _)| *k == key)
            || (out.len() > fixed && out[out.len() - 1].0 == key);
        if taken {
            continue;
        }
        if let Some(v) = kv.value.as_ref().and_then(|v| render(v, room)) {
            out.push((key, v));
        }
    }
    out.sort_unstable_by(|x, y| x.0.cmp(y.0));
    let mut text = Vec::with_capacity(
        out.iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>()
            + 2,
    );
    text.push(b'{');
    for (n, (k, v)) in out.iter().enumerate() {
        if n > 0 {
            text.push(b',');
        }
        serde_json::to_writer(&mut text, k)?;
        text.push(b':');
        serde_json::to_writer(&mut text, v)?;
    }
    text.push(b'}');
    String::from_utf8(text).map_err(std::io::Error::other)
}

/// Whether a span attribute becomes an event field, not an event attribute.
fn is_field(key: &str) -> bool {
    AS_FIELDS.iter().any(|names| names.contains(&key))
}

/// Span time (Unix nanoseconds) as RFC 3339 with microseconds, UTC.
fn rfc3339(nanos: u64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX));
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

mod attrs;
#[cfg(test)]
mod tests;
