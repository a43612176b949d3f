//! OTLP bodies for `bench --format otlp`: the fleet's runs as GenAI spans.
//!
//! A run becomes one `invoke_agent` span (2 events: `run_started`, then
//! `run_completed` / `run_failed`) and one `chat` or `execute_tool` span per
//! step (1 event each), children first and the agent span last, as an SDK's
//! batch exporter sends them (children end first). Every span carries
//! `gen_ai.agent.id`, so a run split over two requests keeps its agent.
//! Requests are packed to exactly `batch` events (an agent span that does
//! not fit is carried to the next request). Token counts are written in
//! OTel's convention (input includes cache reads and writes, output
//! includes reasoning), so the mapping gives back the fleet's numbers.
//!
//! The raw baseline's records are what the gateway makes of the same bodies:
//! each body is run through [`otlp::decode_and_map`] here, and every span
//! must map (none ignored or refused).

use std::collections::VecDeque;

use agentops_schemas::otlp::{self, Format};
use agentops_schemas::validate::ValidationLimits;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as Any, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;

use crate::bench::Workload;
use crate::fleet::{Fleet, Timed};

/// A span ready to pack: its agent (the resource's `service.name`) and the events it maps to.
struct Packed {
    agent: String,
    span: Span,
    events: usize,
}

fn kv(key: &str, v: Any) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn text(key: &str, v: &str) -> KeyValue {
    kv(key, Any::StringValue(v.into()))
}

fn int(e: &Value, field: &str) -> Option<i64> {
    e[field].as_i64()
}

/// Attributes every span of the run carries: the agent, its workflow and the event attributes.
fn common(e: &Value) -> Vec<KeyValue> {
    let mut out = vec![text(
        "gen_ai.agent.id",
        e["agent_id"].as_str().unwrap_or("?"),
    )];
    if let Some(w) = e["workflow_id"].as_str() {
        out.push(text("agentops.workflow_id", w));
    }
    if let Some(attrs) = e["attributes"].as_object() {
        for (k, v) in attrs {
            out.push(text(k, v.as_str().unwrap_or_default()));
        }
    }
    out
}

/// Status and `error.type` of an event that failed.
fn outcome(e: &Value, attributes: &mut Vec<KeyValue>) -> Option<Status> {
    if e["status"] != "error" {
        return None;
    }
    if let Some(t) = e["error_type"].as_str() {
        attributes.push(text("error.type", t));
    }
    Some(Status {
        message: e["error_message"].as_str().unwrap_or_default().to_owned(),
        code: status::StatusCode::Error as i32,
    })
}

/// The spans of one run (children first, then the agent span).
fn run_spans(rng: &mut StdRng, run: &[Timed]) -> Vec<Packed> {
    let (Some((start_us, first)), Some((end_us, last))) = (run.first(), run.last()) else {
        return Vec::new();
    };
    let agent = first["agent_id"].as_str().unwrap_or("?").to_owned();
    let trace_id = rng.random::<[u8; 16]>().to_vec();
    let agent_span_id = rng.random::<[u8; 8]>().to_vec();
    let ns = |us: i64| (us.max(0) as u64) * 1000;
    let mut out = Vec::with_capacity(run.len());
    for (ts, e) in &run[1..run.len() - 1] {
        let end = ns(*ts);
        let start = end.saturating_sub(int(e, "latency_ms").unwrap_or(0).max(0) as u64 * 1_000_000);
        let mut attributes = common(e);
        let name = match e["type"].as_str() {
            Some("llm_call") => {
                let model = e["model"].as_str().unwrap_or_default();
                attributes.push(text("gen_ai.operation.name", "chat"));
                attributes.push(text("gen_ai.request.model", model));
                if let Some(p) = e["provider"].as_str() {
                    attributes.push(text("gen_ai.provider.name", p));
                }
                let cache_read = int(e, "cache_read_tokens");
                let cache_write = int(e, "cache_write_tokens");
                let reasoning = int(e, "reasoning_tokens");
                let cached = cache_read.unwrap_or(0) + cache_write.unwrap_or(0);
                let tokens = [
                    (
                        "gen_ai.usage.input_tokens",
                        int(e, "input_tokens").map(|n| n + cached),
                    ),
                    (
                        "gen_ai.usage.output_tokens",
                        int(e, "output_tokens").map(|n| n + reasoning.unwrap_or(0)),
                    ),
                    ("gen_ai.usage.cache_read.input_tokens", cache_read),
                    ("gen_ai.usage.cache_creation.input_tokens", cache_write),
                    ("gen_ai.usage.reasoning.output_tokens", reasoning),
                ];
                for (k, v) in tokens {
                    if let Some(n) = v {
                        attributes.push(kv(k, Any::IntValue(n)));
                    }
                }
                format!("chat {model}")
            }
            _ => {
                let tool = e["tool_name"].as_str().unwrap_or_default();
                attributes.push(text("gen_ai.operation.name", "execute_tool"));
                attributes.push(text("gen_ai.tool.name", tool));
                format!("execute_tool {tool}")
            }
        };
        let status = outcome(e, &mut attributes);
        out.push(Packed {
            agent: agent.clone(),
            span: Span {
                trace_id: trace_id.clone(),
                span_id: rng.random::<[u8; 8]>().to_vec(),
                parent_span_id: agent_span_id.clone(),
                name,
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                status,
                ..Default::default()
            },
            events: 1,
        });
    }
    let mut attributes = common(last);
    attributes.push(text("gen_ai.operation.name", "invoke_agent"));
    let status = outcome(last, &mut attributes);
    out.push(Packed {
        span: Span {
            trace_id,
            span_id: agent_span_id,
            name: format!("invoke_agent {agent}"),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: ns(*start_us),
            end_time_unix_nano: ns(*end_us),
            attributes,
            status,
            ..Default::default()
        },
        agent,
        events: 2,
    });
    out
}

/// One request: consecutive spans of one agent share a resource.
fn request(spans: Vec<Packed>) -> ExportTraceServiceRequest {
    let mut out: Vec<ResourceSpans> = Vec::new();
    let mut current: Option<String> = None;
    for p in spans {
        if current.as_deref() != Some(p.agent.as_str()) {
            out.push(ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text("service.name", &p.agent)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "agentops-loadgen".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            });
            current = Some(p.agent);
        }
        if let Some(rs) = out.last_mut() {
            rs.scope_spans[0].spans.push(p.span);
        }
    }
    ExportTraceServiceRequest {
        resource_spans: out,
    }
}

/// `n` events as protobuf `ExportTraceServiceRequest`s of `batch` events each,
/// with the events the gateway maps them to (for `org` at `now_us`).
pub(crate) fn build(
    fleet: &Fleet,
    rng: &mut StdRng,
    n: usize,
    batch: usize,
    org: &str,
    now_us: i64,
) -> anyhow::Result<Workload> {
    let limits = ValidationLimits::default();
    let mut queue: VecDeque<Packed> = VecDeque::new();
    let mut w = Workload::default();
    while w.events < n {
        let want = batch.max(1).min(n - w.events);
        let (mut got, mut spans, mut carry) = (0, Vec::new(), Vec::new());
        while got < want {
            let Some(p) = queue.pop_front() else {
                let start = now_us - rng.random_range(60_000_000..900_000_000);
                let run = fleet.random_run(rng, start, false);
                queue.extend(run_spans(rng, &run));
                continue;
            };
            if p.events > want - got {
                carry.push(p);
                continue;
            }
            got += p.events;
            spans.push(p);
        }
        for p in carry.into_iter().rev() {
            queue.push_front(p);
        }
        let n_spans = spans.len();
        let body = prost::Message::encode_to_vec(&request(spans));
        let mapped = otlp::decode_and_map(&body, Format::Protobuf, org, now_us, &limits)
            .map_err(|e| anyhow::anyhow!("generated OTLP body does not decode: {e}"))?;
        anyhow::ensure!(
            mapped.accepted.len() == got && mapped.rejected.is_empty() && mapped.ignored_spans == 0,
            "generated spans do not map one for one: {} events of {got}, {} ignored, first refusal {:?}",
            mapped.accepted.len(),
            mapped.ignored_spans,
            mapped.rejected.first().map(|r| format!("{}: {}", r.field, r.error))
        );
        w.events += got;
        w.spans += n_spans;
        w.body_bytes += body.len();
        w.bodies.push(body);
        w.batches.push(mapped.accepted);
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn requests_map_to_exactly_batch_events_like_the_json() {
        let mut rng = StdRng::seed_from_u64(3);
        let fleet = Fleet::new(24, &mut rng);
        let now = chrono::Utc::now().timestamp_micros();
        let w = build(&fleet, &mut rng, 1050, 100, "org", now).unwrap();
        assert_eq!(w.events, 1050);
        let sizes: Vec<usize> = w.batches.iter().map(Vec::len).collect();
        assert_eq!(sizes.len(), 11);
        assert!(
            sizes[..10].iter().all(|n| *n == 100) && sizes[10] == 50,
            "{sizes:?}"
        );
        assert!(w.spans > 1050 / 2 && w.spans < 1050);
        let all: Vec<_> = w.batches.iter().flatten().collect();
        let kinds = |t: &str| all.iter().filter(|e| e.event_type.as_str() == t).count();
        assert!(kinds("llm_call") > 0 && kinds("tool_call") > 0);
        assert!(kinds("run_started") > 0 && kinds("run_failed") > 0);
        // Tokens come back in the contract's convention: never negative.
        assert!(all.iter().all(|e| e.input_tokens.unwrap_or(0) >= 0));
        assert!(all.iter().any(|e| e.cache_read_tokens.unwrap_or(0) > 0));
    }
}
