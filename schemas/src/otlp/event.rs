//! One span's events as client JSON: ids, outcome, tokens and attributes.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

use super::attrs::{render, Attrs, Place};
use super::semconv::{
    is_field, Op, CACHE_READ, CACHE_WRITE, ERROR_TYPE, INPUT, MODEL, OUTPUT, PROVIDER, REASONING,
    TOOL,
};
use crate::validate::ValidationLimits;

/// Names the deterministic event ids (UUID v5 of org, trace, span and kind).
pub(super) const EVENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6a3e_51c2_8f0d_4b7e_9c1a_2d4f_7b8e_0c35);

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
#[allow(clippy::too_many_arguments)]
pub(super) fn span_events(
    span: &Span,
    service: Option<&str>,
    a: &Attrs<'_>,
    place: &Place,
    session: Option<&str>,
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
    let session = session.map(str::to_owned);
    for (field, v) in [
        ("project_id", &place.project),
        ("machine_id", &place.machine),
        ("workspace_id", &place.workspace),
        ("session_id", &session),
    ] {
        if let Some(v) = v {
            base.push((field, F::Str(v)));
        }
    }
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

/// Span time (Unix nanoseconds) as RFC 3339 with microseconds, UTC.
fn rfc3339(nanos: u64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX));
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
