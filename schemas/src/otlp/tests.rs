use super::event::EVENT_ID_NAMESPACE;
use super::semconv::OPERATION;
use super::*;
use crate::batch::Rejected;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Any, AnyValue};
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Status};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use proptest::prelude::*;
use serde_json::{json, Value};

/// 2026-11-22T10:00:00Z in Unix nanoseconds.
const T0: u64 = 1_795_341_600_000_000_000;
const NOW: i64 = (T0 / 1000) as i64 + 60_000_000;
const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn s(k: &str, v: &str) -> KeyValue {
    kv(k, Any::StringValue(v.into()))
}

fn i(k: &str, v: i64) -> KeyValue {
    kv(k, Any::IntValue(v))
}

fn kv(k: &str, v: Any) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn id(n: u8) -> Vec<u8> {
    vec![0, 0, 0, 0, 0, 0, 0, n]
}

/// A span of TRACE: `n` its id, `parent` its parent's (0: root), times in ms after T0.
fn span_of(n: u8, parent: u8, name: &str, ms: (u64, u64), attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: id(n),
        parent_span_id: if parent == 0 { vec![] } else { id(parent) },
        name: name.into(),
        kind: 1,
        start_time_unix_nano: T0 + ms.0 * 1_000_000,
        end_time_unix_nano: T0 + ms.1 * 1_000_000,
        attributes,
        ..Default::default()
    }
}

fn request(service: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: service
                    .map(|s| vec![self::s("service.name", s)])
                    .unwrap_or_default(),
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn map(req: &ExportTraceServiceRequest) -> Mapped {
    to_events(req, "org", NOW, &ValidationLimits::default())
}

fn one(span: Span) -> AgentEvent {
    let m = map(&request(Some("svc"), vec![span]));
    assert_eq!(m.rejected, vec![], "{m:?}");
    assert_eq!(m.accepted.len(), 1, "{m:?}");
    m.accepted.into_iter().next().unwrap()
}

fn chat(attrs: Vec<KeyValue>) -> Span {
    let mut all = vec![s(OPERATION, "chat")];
    all.extend(attrs);
    span_of(2, 1, "chat gpt-4o", (100, 1600), all)
}

#[test]
fn chat_span_becomes_an_llm_call() {
    let e = one(chat(vec![
        s("gen_ai.provider.name", "openai"),
        s("gen_ai.system", "ignored-when-provider-is-set"),
        s("gen_ai.request.model", "gpt-4o"),
        s("gen_ai.response.model", "gpt-4o-2024-08-06"),
        i("gen_ai.usage.input_tokens", 1200),
        i("gen_ai.usage.cache_read.input_tokens", 200),
        i("gen_ai.usage.output_tokens", 300),
        s("gen_ai.conversation.id", "conv-7"),
        s("gen_ai.agent.name", "Support Bot"),
        kv("gen_ai.request.temperature", Any::DoubleValue(0.5)),
    ]));
    assert_eq!(e.event_type, "llm_call");
    assert_eq!(e.org_id, "org");
    assert_eq!(e.agent_id, "Support Bot");
    assert_eq!(e.run_id.as_deref(), Some(TRACE_HEX));
    assert_eq!(e.trace_id.as_deref(), Some(TRACE_HEX));
    assert_eq!(e.span_id.as_deref(), Some("0000000000000002"));
    assert_eq!(e.provider.as_deref(), Some("openai"));
    assert_eq!(e.model.as_deref(), Some("gpt-4o-2024-08-06"));
    // OTel input includes the cached tokens; the contract's input is uncached only.
    assert_eq!(
        (e.input_tokens, e.cache_read_tokens, e.cache_write_tokens),
        (Some(1000), Some(200), None)
    );
    assert_eq!((e.output_tokens, e.reasoning_tokens), (Some(300), None));
    assert_eq!(e.latency_ms, Some(1500));
    assert_eq!(e.timestamp, (T0 / 1000) as i64 + 1_600_000);
    assert_eq!(e.status.as_deref(), Some("ok"));
    let a = &e.attributes;
    assert_eq!(a["otel.parent_span_id"], "0000000000000001");
    assert_eq!(a["otel.span_name"], "chat gpt-4o");
    assert_eq!(a["service.name"], "svc");
    assert_eq!(a["gen_ai.conversation.id"], "conv-7");
    assert_eq!(a["gen_ai.agent.name"], "Support Bot");
    assert_eq!(a["gen_ai.operation.name"], "chat");
    assert_eq!(a["gen_ai.request.temperature"], "0.5");
    // Fields are not repeated as attributes.
    assert!(!a.contains_key("gen_ai.usage.input_tokens"), "{a:?}");
    assert!(!a.contains_key("gen_ai.response.model"), "{a:?}");
}

#[test]
fn every_llm_operation_and_the_old_attribute_names() {
    for op in ["chat", "text_completion", "generate_content", "embeddings"] {
        let e = one(span_of(3, 0, op, (0, 10), vec![s(OPERATION, op)]));
        assert_eq!(e.event_type, "llm_call", "{op}");
    }
    let e = one(span_of(
        3,
        0,
        "anthropic.chat",
        (0, 10),
        vec![
            s("gen_ai.system", "anthropic"),
            s("gen_ai.request.model", "claude-haiku-4-5"),
            i("gen_ai.usage.prompt_tokens", 5000),
            i("gen_ai.usage.completion_tokens", 700),
            i("gen_ai.usage.cache_read_input_tokens", 3000),
            i("gen_ai.usage.cache_creation_input_tokens", 1000),
        ],
    ));
    // No operation name but a model: an LLM call (older instrumentations).
    assert_eq!(e.event_type, "llm_call");
    assert_eq!(e.provider.as_deref(), Some("anthropic"));
    assert_eq!(e.model.as_deref(), Some("claude-haiku-4-5"));
    assert_eq!(
        (
            e.input_tokens,
            e.cache_read_tokens,
            e.cache_write_tokens,
            e.output_tokens
        ),
        (Some(1000), Some(3000), Some(1000), Some(700))
    );
    assert_eq!(e.agent_id, "svc");
}

#[test]
fn cached_and_reasoning_tokens_follow_the_cost_convention() {
    let e = one(chat(vec![
        i("gen_ai.usage.input_tokens", 10_000),
        i("gen_ai.usage.input_tokens.cached", 4_000),
        i("gen_ai.usage.cache_creation.input_tokens", 1_000),
        i("gen_ai.usage.output_tokens", 3_000),
        i("gen_ai.usage.reasoning.output_tokens", 2_000),
    ]));
    assert_eq!(
        (e.input_tokens, e.cache_read_tokens, e.cache_write_tokens),
        (Some(5_000), Some(4_000), Some(1_000))
    );
    assert_eq!(
        (e.output_tokens, e.reasoning_tokens),
        (Some(1_000), Some(2_000))
    );
    // Totals smaller than their parts were already reported apart: kept.
    let e = one(chat(vec![
        i("gen_ai.usage.input_tokens", 100),
        i("gen_ai.usage.cache_read.input_tokens", 5_000),
        i("gen_ai.usage.output_tokens", 50),
        i("gen_ai.usage.output_tokens.reasoning", 400),
    ]));
    assert_eq!(
        (e.input_tokens, e.cache_read_tokens),
        (Some(100), Some(5_000))
    );
    assert_eq!((e.output_tokens, e.reasoning_tokens), (Some(50), Some(400)));
    // opentelemetry-util-genai's name for cache writes.
    let e = one(chat(vec![
        i("gen_ai.usage.input_tokens", 9_000),
        i("gen_ai.usage.cache_write.input_tokens", 3_000),
        i("gen_ai.usage.output_tokens", 10),
    ]));
    assert_eq!(
        (e.input_tokens, e.cache_write_tokens),
        (Some(6_000), Some(3_000))
    );
    // Integral doubles and decimal strings count; a negative count is refused.
    let e = one(chat(vec![
        kv("gen_ai.usage.input_tokens", Any::DoubleValue(12.0)),
        s("gen_ai.usage.output_tokens", "7"),
    ]));
    assert_eq!((e.input_tokens, e.output_tokens), (Some(12), Some(7)));
    let m = map(&request(
        None,
        vec![chat(vec![i("gen_ai.usage.output_tokens", -1)])],
    ));
    assert_eq!(m.rejected[0].field, "output_tokens");
}

#[test]
fn execute_tool_becomes_a_tool_call_with_its_error() {
    let mut span = span_of(
        4,
        1,
        "execute_tool search",
        (10, 35),
        vec![
            s(OPERATION, "execute_tool"),
            s("gen_ai.tool.name", "web_search"),
            s("error.type", "TimeoutError"),
        ],
    );
    span.status = Some(Status {
        message: "upstream timed out".into(),
        code: StatusCode::Error as i32,
    });
    let e = one(span);
    assert_eq!(e.event_type, "tool_call");
    assert_eq!(e.tool_name.as_deref(), Some("web_search"));
    assert_eq!(e.status.as_deref(), Some("error"));
    assert_eq!(e.error_type.as_deref(), Some("TimeoutError"));
    assert_eq!(e.error_message.as_deref(), Some("upstream timed out"));
    assert_eq!(e.latency_ms, Some(25));
    assert!(!e.attributes.contains_key("error.type"));
}

fn agent_span(status: Option<Status>, extra: Vec<KeyValue>) -> Span {
    let mut attrs = vec![
        s(OPERATION, "invoke_agent"),
        s("gen_ai.agent.id", "agent-42"),
        s("gen_ai.agent.name", "Researcher"),
    ];
    attrs.extend(extra);
    let mut sp = span_of(1, 0, "invoke_agent Researcher", (0, 2500), attrs);
    sp.status = status;
    sp
}

#[test]
fn invoke_agent_becomes_a_run() {
    let m = map(&request(Some("svc"), vec![agent_span(None, vec![])]));
    assert_eq!(m.accepted.len(), 2, "{m:?}");
    let (start, end) = (&m.accepted[0], &m.accepted[1]);
    assert_eq!(start.event_type, "run_started");
    assert_eq!(start.timestamp, (T0 / 1000) as i64);
    assert_eq!((start.status.as_deref(), start.latency_ms), (None, None));
    assert_eq!(end.event_type, "run_completed");
    assert_eq!(end.timestamp, (T0 / 1000) as i64 + 2_500_000);
    assert_eq!(end.latency_ms, Some(2500));
    assert_eq!(end.status.as_deref(), Some("ok"));
    for e in [start, end] {
        assert_eq!(e.agent_id, "agent-42");
        assert_eq!(e.run_id.as_deref(), Some(TRACE_HEX));
        assert_eq!(e.attributes["gen_ai.agent.name"], "Researcher");
        assert!(!e.attributes.contains_key("otel.parent_span_id"));
    }
    assert_ne!(start.event_id, end.event_id);
}

#[test]
fn a_failed_agent_span_fails_the_run() {
    let status = Status {
        message: "gave up".into(),
        code: StatusCode::Error as i32,
    };
    let m = map(&request(None, vec![agent_span(Some(status), vec![])]));
    let end = &m.accepted[1];
    assert_eq!(end.event_type, "run_failed");
    assert_eq!(end.error_message.as_deref(), Some("gave up"));
    assert_eq!(end.error_type, None);
    // error.type alone fails it too.
    let m = map(&request(
        None,
        vec![agent_span(None, vec![s("error.type", "RateLimit")])],
    ));
    assert_eq!(m.accepted[1].event_type, "run_failed");
    assert_eq!(m.accepted[1].error_type.as_deref(), Some("RateLimit"));
    // The exception event names the error when the attributes do not.
    let mut sp = agent_span(
        Some(Status {
            message: String::new(),
            code: StatusCode::Error as i32,
        }),
        vec![],
    );
    sp.events.push(span::Event {
        name: "exception".into(),
        attributes: vec![
            s("exception.type", "ValueError"),
            s("exception.message", "bad plan"),
        ],
        ..Default::default()
    });
    let m = map(&request(None, vec![sp]));
    assert_eq!(m.accepted[1].error_type.as_deref(), Some("ValueError"));
    assert_eq!(m.accepted[1].error_message.as_deref(), Some("bad plan"));
    // An OK span with an exception event (handled) stays completed.
    let mut sp = agent_span(None, vec![]);
    sp.events.push(span::Event {
        name: "exception".into(),
        attributes: vec![s("exception.type", "Handled")],
        ..Default::default()
    });
    let m = map(&request(None, vec![sp]));
    assert_eq!(m.accepted[1].event_type, "run_completed");
    assert_eq!(m.accepted[1].error_type, None);
}

#[test]
fn spans_that_are_not_genai_operations_are_ignored() {
    let spans = vec![
        span_of(5, 0, "GET /", (0, 5), vec![s("http.request.method", "GET")]),
        span_of(6, 0, "bare", (0, 5), vec![]),
        span_of(
            7,
            0,
            "future op",
            (0, 5),
            vec![s(OPERATION, "summon_daemon")],
        ),
        span_of(
            8,
            0,
            "create_agent",
            (0, 5),
            vec![s(OPERATION, "create_agent")],
        ),
        span_of(
            9,
            0,
            "gen_ai without model",
            (0, 5),
            vec![s("gen_ai.system", "openai")],
        ),
        chat(vec![]),
    ];
    let m = map(&request(Some("svc"), spans));
    assert_eq!((m.spans, m.ignored_spans, m.accepted.len()), (6, 5, 1));
    assert_eq!((m.rejected_spans(), m.mapped_spans()), (0, 1));
    let warning = m.response().partial_success.unwrap();
    assert_eq!(warning.rejected_spans, 0);
    assert!(
        warning.error_message.contains("5 of 6 spans ignored"),
        "{warning:?}"
    );
    let m = map(&request(Some("svc"), vec![chat(vec![])]));
    assert_eq!(m.response().partial_success, None);
}

#[test]
fn the_agent_comes_from_the_span_its_ancestors_or_the_service() {
    let root = span_of(
        1,
        0,
        "invoke_agent",
        (0, 100),
        vec![
            s(OPERATION, "invoke_agent"),
            s("gen_ai.agent.name", "planner"),
        ],
    );
    let mid = span_of(2, 1, "step", (1, 90), vec![]);
    let leaf = span_of(3, 2, "chat", (2, 80), vec![s(OPERATION, "chat")]);
    let own = span_of(
        4,
        1,
        "chat",
        (2, 80),
        vec![
            s(OPERATION, "chat"),
            s("gen_ai.agent.id", "critic-1"),
            s("gen_ai.agent.name", "critic"),
        ],
    );
    let orphan = span_of(5, 77, "chat", (2, 80), vec![s(OPERATION, "chat")]);
    // Children may come before their parents (they end first).
    let m = map(&request(Some("svc"), vec![leaf, own, orphan, mid, root]));
    let agents: Vec<&str> = m.accepted.iter().map(|e| e.agent_id.as_str()).collect();
    assert_eq!(agents, ["planner", "critic-1", "svc", "planner", "planner"]);
    let m = map(&request(None, vec![chat(vec![])]));
    assert_eq!(m.accepted[0].agent_id, "unknown_service");
    // A parent cycle (malformed input) ends the walk.
    let a = span_of(1, 2, "chat", (0, 1), vec![s(OPERATION, "chat")]);
    let b = span_of(2, 1, "x", (0, 1), vec![]);
    assert_eq!(
        map(&request(Some("svc"), vec![a, b])).accepted[0].agent_id,
        "svc"
    );
}

#[test]
fn a_long_parent_chain_resolves_every_span_to_the_root_agent() {
    // Children first, 3,000 deep: each span resolved once along the walk.
    let n: u16 = 3000;
    let mut spans: Vec<Span> = (1..=n)
        .rev()
        .map(|k| {
            let mut sp = span_of(0, 0, "chat", (0, 10), vec![s(OPERATION, "chat")]);
            sp.span_id = [[0u8; 6].as_slice(), &k.to_be_bytes()].concat();
            sp.parent_span_id = [[0u8; 6].as_slice(), &(k - 1).to_be_bytes()].concat();
            sp
        })
        .collect();
    let mut root = span_of(
        0,
        0,
        "invoke_agent",
        (0, 20),
        vec![s(OPERATION, "invoke_agent"), s("gen_ai.agent.name", "deep")],
    );
    root.span_id = vec![0; 8];
    root.span_id[7] = 0;
    // The root's id is all zero (invalid): it is rejected, yet still names its descendants' agent.
    spans.push(root);
    let m = map(&request(Some("svc"), spans));
    assert_eq!(m.accepted.len(), n as usize);
    assert!(m.accepted.iter().all(|e| e.agent_id == "deep"));
    assert_eq!(m.rejected_spans(), 1);
}

#[test]
fn event_ids_are_deterministic_per_org_trace_span_and_kind() {
    let req = request(Some("svc"), vec![agent_span(None, vec![]), chat(vec![])]);
    let a = map(&req);
    let b = map(&req);
    let ids = |m: &Mapped| {
        m.accepted
            .iter()
            .map(|e| e.event_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    let unique: std::collections::HashSet<_> = ids(&a).into_iter().collect();
    assert_eq!(unique.len(), 3);
    let other = to_events(&req, "other-org", NOW, &ValidationLimits::default());
    assert!(ids(&other).iter().all(|x| !unique.contains(x)));
    let want = uuid::Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("org/{TRACE_HEX}/0000000000000002/llm_call").as_bytes(),
    );
    assert_eq!(a.accepted[2].event_id, want.to_string());
}

#[test]
fn mapped_events_obey_the_validation_limits() {
    let limits = ValidationLimits::default();
    // Attributes beyond the limit are dropped, not a rejection.
    let many: Vec<KeyValue> = (0..200).map(|n| i(&format!("custom.k{n:03}"), n)).collect();
    let e = one(chat(many));
    assert_eq!(e.attributes.len(), limits.max_attributes);
    assert_eq!(e.attributes["custom.k000"], "0");
    // Long values are truncated, nested ones bounded JSON.
    let long = "x".repeat(100_000);
    let nested = Any::KvlistValue(KeyValueList {
        values: vec![kv(
            "list",
            Any::ArrayValue(ArrayValue {
                values: (0..10_000)
                    .map(|_| AnyValue {
                        value: Some(Any::StringValue(long.clone())),
                    })
                    .collect(),
            }),
        )],
    });
    let e = one(chat(vec![
        s("custom.long", &long),
        kv("custom.nested", nested),
        kv("custom.bytes", Any::BytesValue(vec![0xab; 9000])),
    ]));
    assert_eq!(e.attributes["custom.long"].len(), limits.max_message_len);
    assert!(e.attributes["custom.nested"].starts_with("{\"list\":[\"xxx"));
    assert!(e.attributes["custom.nested"].len() <= limits.max_message_len);
    assert!(e.attributes["custom.bytes"].starts_with("abab"));
    // A span too old, a bad trace id, a NUL in the agent: rejected, named, by span index.
    let mut old = chat(vec![]);
    old.end_time_unix_nano = T0 - 30 * 24 * 3600 * 1_000_000_000;
    let mut bad_trace = chat(vec![]);
    bad_trace.trace_id = vec![0; 16];
    let mut bad_span = chat(vec![]);
    bad_span.span_id = vec![1, 2, 3];
    let nul = chat(vec![s("gen_ai.agent.id", "a\0b")]);
    let ignored = span_of(9, 0, "GET", (0, 1), vec![]);
    let m = map(&request(
        Some("svc"),
        vec![ignored, old, bad_trace, bad_span, nul, chat(vec![])],
    ));
    let got: Vec<(usize, &str)> = m
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "timestamp"),
            (2, "traceId"),
            (3, "spanId"),
            (4, "agent_id")
        ]
    );
    assert_eq!(
        (
            m.accepted.len(),
            m.ignored_spans,
            m.rejected_spans(),
            m.mapped_spans()
        ),
        (1, 1, 4, 1)
    );
    let p = m.response().partial_success.unwrap();
    assert_eq!(p.rejected_spans, 4);
    assert!(
        p.error_message
            .starts_with("4 of 6 spans rejected: span 1: field `timestamp`"),
        "{}",
        p.error_message
    );
}

/// The request of the JSON test below, built with the protobuf types.
fn js_request() -> ExportTraceServiceRequest {
    let mut root = span_of(
        1,
        0,
        "invoke_agent helper",
        (0, 3000),
        vec![
            s(OPERATION, "invoke_agent"),
            s("gen_ai.agent.name", "helper"),
        ],
    );
    root.kind = 1;
    let mut llm = span_of(
        2,
        1,
        "chat gpt-4o",
        (100, 1100),
        vec![
            s(OPERATION, "chat"),
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.request.model", "gpt-4o"),
            i("gen_ai.usage.input_tokens", 1000),
            i("gen_ai.usage.output_tokens", 200),
            kv(
                "gen_ai.response.finish_reasons",
                Any::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Any::StringValue("stop".into())),
                    }],
                }),
            ),
            kv("custom.flag", Any::BoolValue(true)),
        ],
    );
    llm.kind = 3;
    llm.status = Some(Status {
        message: String::new(),
        code: StatusCode::Ok as i32,
    });
    request(Some("js-agent"), vec![llm, root])
}

/// OTLP/JSON as `@opentelemetry/exporter-trace-otlp-http` writes it: hex
/// ids, lowerCamelCase, times as decimal strings, ints as numbers or
/// strings, enums as integers, empty lists and zero counts spelled out.
fn js_body() -> String {
    let t = |ms: u64| (T0 + ms * 1_000_000).to_string();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-agent"}}], "droppedAttributesCount": 0},
        "scopeSpans": [{
            "scope": {"name": "@example/genai", "version": "1.0.0"},
            "spans": [
                {"traceId": TRACE_HEX, "spanId": "0000000000000002", "parentSpanId": "0000000000000001",
                 "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": t(100), "endTimeUnixNano": t(1100),
                 "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": 1000}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "200"}},
                    {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "stop"}]}}},
                    {"key": "custom.flag", "value": {"boolValue": true}}],
                 "droppedAttributesCount": 0, "events": [], "droppedEventsCount": 0,
                 "status": {"code": 1}, "links": [], "droppedLinksCount": 0},
                {"traceId": TRACE_HEX, "spanId": "0000000000000001",
                 "name": "invoke_agent helper", "kind": 1, "startTimeUnixNano": T0, "endTimeUnixNano": t(3000),
                 "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
                    {"key": "gen_ai.agent.name", "value": {"stringValue": "helper"}}],
                 "droppedAttributesCount": 0, "events": [], "droppedEventsCount": 0,
                 "status": {}, "links": [], "droppedLinksCount": 0}
            ]}]
    }]})
    .to_string()
}

#[test]
fn protobuf_and_json_of_one_request_give_the_same_events() {
    let limits = ValidationLimits::default();
    let proto = prost::Message::encode_to_vec(&js_request());
    let from_proto = decode_and_map(&proto, Format::Protobuf, "org", NOW, &limits).unwrap();
    let from_json =
        decode_and_map(js_body().as_bytes(), Format::Json, "org", NOW, &limits).unwrap();
    assert_eq!(from_proto.accepted.len(), 3, "{from_proto:?}");
    assert_eq!(from_proto.accepted, from_json.accepted);
    let llm = &from_json.accepted[0];
    assert_eq!(llm.agent_id, "helper");
    assert_eq!(
        (llm.input_tokens, llm.output_tokens),
        (Some(1000), Some(200))
    );
    assert_eq!(
        llm.attributes["gen_ai.response.finish_reasons"],
        "[\"stop\"]"
    );
    assert_eq!(llm.attributes["custom.flag"], "true");
    assert_eq!(from_json.accepted[2].event_type, "run_completed");
    // Uppercase hex ids are the same ids.
    let upper = js_body().replace(TRACE_HEX, &TRACE_HEX.to_uppercase());
    let m = decode_and_map(upper.as_bytes(), Format::Json, "org", NOW, &limits).unwrap();
    assert_eq!(m.accepted, from_json.accepted);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let json_err = |b: &str| matches!(decode(b.as_bytes(), Format::Json), Err(OtlpError::Json(_)));
    assert!(json_err("{"));
    assert!(json_err("[1, 2]"));
    assert!(json_err(r#"{"resourceSpans": 5}"#));
    // Protobuf JSON mapping's base64 ids are not OTLP/JSON.
    assert!(json_err(
        &js_body().replace(TRACE_HEX, "S/kvNXezTaajzpKdDg5HNg==")
    ));
    assert!(matches!(
        decode(b"\xff\xff\xff\xff garbage", Format::Protobuf),
        Err(OtlpError::Protobuf(_))
    ));
    // Empty bodies are empty requests.
    assert_eq!(
        decode(b"", Format::Protobuf).unwrap().resource_spans.len(),
        0
    );
    assert_eq!(decode(b"{}", Format::Json).unwrap().resource_spans.len(), 0);
    // Deep nesting is refused by the decoders, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(json_err(&deep));
    let mut v = AnyValue {
        value: Some(Any::StringValue("x".into())),
    };
    for _ in 0..200 {
        v = AnyValue {
            value: Some(Any::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    let req = request(
        None,
        vec![chat(vec![KeyValue {
            key: "deep".into(),
            value: Some(v),
            ..Default::default()
        }])],
    );
    let bytes = prost::Message::encode_to_vec(&req);
    assert!(decode(&bytes, Format::Protobuf).is_err());
}

#[test]
fn content_types_and_answers() {
    assert_eq!(
        Format::from_content_type("application/x-protobuf"),
        Some(Format::Protobuf)
    );
    assert_eq!(
        Format::from_content_type("Application/JSON; charset=utf-8"),
        Some(Format::Json)
    );
    assert_eq!(Format::from_content_type("text/plain"), None);
    let mut m = map(&request(None, vec![chat(vec![])]));
    m.rejected.push(Rejected {
        index: 3,
        field: "timestamp".into(),
        error: "old".into(),
    });
    m.spans += 1;
    let resp = m.response();
    let proto = encode_response(&resp, Format::Protobuf);
    let back: ExportTraceServiceResponse = prost::Message::decode(&proto[..]).unwrap();
    assert_eq!(back, resp);
    let json: Value = serde_json::from_slice(&encode_response(&resp, Format::Json)).unwrap();
    assert_eq!(
        json["partialSuccess"]["errorMessage"],
        "1 of 2 spans rejected: span 3: field `timestamp`: old"
    );
    assert!(
        matches!(json["partialSuccess"]["rejectedSpans"].as_i64(), Some(1))
            || json["partialSuccess"]["rejectedSpans"] == "1"
    );
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for format in [Format::Protobuf, Format::Json] {
            if let Ok(m) = decode_and_map(&body, format, "org", NOW, &ValidationLimits::default()) {
                prop_assert_eq!(m.mapped_spans() + m.ignored_spans + m.rejected_spans(), m.spans);
            }
        }
    }

    /// Any mix of spans: each is ignored, mapped or rejected exactly once.
    #[test]
    fn every_span_is_accounted_for(ops in proptest::collection::vec(prop_oneof![
        Just(None), Just(Some("chat")), Just(Some("execute_tool")), Just(Some("invoke_agent")), Just(Some("other"))
    ], 0..20), old in proptest::collection::vec(any::<bool>(), 20)) {
        let spans: Vec<Span> = ops.iter().enumerate().map(|(n, op)| {
            let mut sp = span_of(n as u8 + 1, 0, "s", (0, 10), op.map(|o| vec![s(OPERATION, o)]).unwrap_or_default());
            if old[n] { sp.end_time_unix_nano = 1; }
            sp
        }).collect();
        let m = map(&request(Some("svc"), spans));
        prop_assert_eq!(m.mapped_spans() + m.ignored_spans + m.rejected_spans(), ops.len());
        let want_ignored = ops.iter().filter(|o| matches!(o, None | Some("other"))).count();
        prop_assert_eq!(m.ignored_spans, want_ignored);
        let want_rejected = ops.iter().zip(&old).filter(|(o, old)| **old && !matches!(o, None | Some("other"))).count();
        prop_assert_eq!(m.rejected_spans(), want_rejected);
    }
}

/// Single-thread µs/event of `to_events` on a loadgen-like request (chat,
/// tool and agent spans), plus a digest of everything it maps to, so a
/// change can be checked to give the very same output:
/// `cargo test --release -p agentops-schemas otlp_mapping_timing -- --ignored --nocapture`
#[test]
#[ignore]
fn otlp_mapping_timing() {
    use std::hash::{Hash, Hasher};
    let mut spans = Vec::new();
    for r in 0..20u8 {
        let trace: Vec<u8> = (0..16).map(|k| k ^ r ^ 0x5a).collect();
        let root = vec![1, 2, 3, 4, 5, 6, 7, r + 1];
        let common = |extra: Vec<KeyValue>| {
            let mut v = vec![
                s("gen_ai.agent.id", &format!("agent-{r}")),
                s("agentops.workflow_id", "wf-checkout"),
                s("env", "prod"),
                s("region", "eu-west-1"),
                s("customer_tier", "gold"),
            ];
            v.extend(extra);
            v
        };
        let mk = |n: u8, parent: &[u8], name: &str, attributes: Vec<KeyValue>, failed: bool| Span {
            trace_id: trace.clone(),
            span_id: vec![9, 8, 7, 6, 5, r, n, 1],
            parent_span_id: parent.to_vec(),
            name: name.into(),
            start_time_unix_nano: T0 + u64::from(n) * 1_000_000,
            end_time_unix_nano: T0 + u64::from(n) * 1_000_000 + 834_000_000,
            attributes,
            status: failed.then(|| Status {
                message: "upstream timeout".into(),
                code: StatusCode::Error as i32,
            }),
            ..Default::default()
        };
        for n in 0..3u8 {
            spans.push(mk(
                n,
                &root,
                "chat gpt-4o",
                common(vec![
                    s("gen_ai.operation.name", "chat"),
                    s("gen_ai.provider.name", "openai"),
                    s("gen_ai.request.model", "gpt-4o"),
                    s("gen_ai.response.model", "gpt-4o-2024-08-06"),
                    i("gen_ai.usage.input_tokens", 1200 + i64::from(n)),
                    i("gen_ai.usage.output_tokens", 340),
                    i("gen_ai.usage.cache_read.input_tokens", 200),
                ]),
                n == 2 && r % 5 == 0,
            ));
        }
        spans.push(mk(
            3,
            &root,
            "execute_tool search",
            common(vec![
                s("gen_ai.operation.name", "execute_tool"),
                s("gen_ai.tool.name", "search"),
            ]),
            false,
        ));
        let mut agent = mk(
            r + 1,
            &[],
            "invoke_agent",
            common(vec![s("gen_ai.operation.name", "invoke_agent")]),
            r % 5 == 0,
        );
        agent.span_id = root.clone();
        spans.push(agent);
    }
    let req = request(Some("checkout-svc"), spans);
    let limits = ValidationLimits::default();
    let first = to_events(&req, "org", NOW, &limits);
    assert!(first.rejected.is_empty(), "{:?}", first.rejected);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for e in &first.accepted {
        let attrs: std::collections::BTreeMap<_, _> = e.attributes.iter().collect();
        let mut e = e.clone();
        e.attributes.clear();
        format!("{e:?} {attrs:?}").hash(&mut h);
    }
    format!("{:?}", first.rejected).hash(&mut h);
    let events = first.accepted.len();
    let iters = 2000;
    let t = std::time::Instant::now();
    for _ in 0..iters {
        std::hint::black_box(to_events(std::hint::black_box(&req), "org", NOW, &limits));
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / (iters * events) as f64;
    println!(
        "events/request {events}; digest {:016x}; {us:.2} us/event",
        h.finish()
    );
}

/// A digest of everything `decode_and_map` makes of each file in
/// `OTLP_CORPUS` (a fuzz corpus), as protobuf and as OTLP/JSON, with the
/// default limits and small ones, so two versions of the mapping can be
/// compared on thousands of bodies:
/// `OTLP_CORPUS=target/fuzz/corpus/otlp cargo test -p agentops-schemas otlp_corpus_digest -- --ignored --nocapture`
#[test]
#[ignore]
fn otlp_corpus_digest() {
    use std::hash::{Hash, Hasher};
    let dir = std::env::var("OTLP_CORPUS").expect("OTLP_CORPUS");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let small = ValidationLimits {
        max_attributes: 4,
        max_message_len: 16,
        max_string_len: 24,
        ..ValidationLimits::default()
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut events = 0;
    for f in &files {
        let body = std::fs::read(f).unwrap();
        for limits in [ValidationLimits::default(), small.clone()] {
            for format in [Format::Protobuf, Format::Json] {
                let Ok(m) =
                    decode_and_map(&body, format, "org-fuzz", 1_790_000_000_000_000, &limits)
                else {
                    0u8.hash(&mut h);
                    continue;
                };
                events += m.accepted.len();
                for e in &m.accepted {
                    let attrs: std::collections::BTreeMap<_, _> = e.attributes.iter().collect();
                    let mut e = e.clone();
                    e.attributes.clear();
                    format!("{e:?} {attrs:?}").hash(&mut h);
                }
                format!(
                    "{:?} {} {} {:?}",
                    m.rejected,
                    m.spans,
                    m.ignored_spans,
                    m.response()
                )
                .hash(&mut h);
            }
        }
    }
    println!(
        "{} files, {events} events; digest {:016x}",
        files.len(),
        h.finish()
    );
}

#[test]
fn spans_carry_the_hierarchy_of_their_resource_and_conversation() {
    let mut req = request(
        Some("svc"),
        vec![chat(vec![
            s("gen_ai.request.model", "gpt-4o"),
            s("gen_ai.conversation.id", "conv-1"),
        ])],
    );
    if let Some(r) = req.resource_spans[0].resource.as_mut() {
        r.attributes
            .push(s("agentops.project.id", "github.com/acme/shop"));
        r.attributes.push(s("host.id", "machine-42"));
    }
    let m = map(&req);
    let [e] = &m.accepted[..] else {
        panic!("{m:?}")
    };
    assert_eq!(e.project_id.as_deref(), Some("github.com/acme/shop"));
    assert_eq!(e.machine_id.as_deref(), Some("machine-42"));
    assert_eq!(e.session_id.as_deref(), Some("conv-1"));
    assert_eq!(e.workspace_id, None);
    // A span without them has none.
    let plain = one(chat(vec![s("gen_ai.request.model", "gpt-4o")]));
    assert!(!plain.has_hierarchy());
}

/// GitHub Copilot Chat in VS Code, as its OTel export is documented
/// (code.visualstudio.com/docs/agents/guides/monitoring-agents): an
/// `invoke_agent copilot` span per interaction carrying the conversation id
/// and the turn's total tokens, with `chat {model}` and `execute_tool
/// {tool}` children that do not repeat the conversation id.
#[test]
fn copilot_chat_traces_map_to_one_session_counting_each_call_once() {
    let root = span_of(
        1,
        0,
        "invoke_agent copilot",
        (0, 9000),
        vec![
            s(OPERATION, "invoke_agent"),
            s("gen_ai.agent.name", "copilot"),
            s("gen_ai.conversation.id", "conv-7"),
            i("gen_ai.usage.input_tokens", 1500),
            i("gen_ai.usage.output_tokens", 400),
            i("copilot_chat.turn_count", 2),
        ],
    );
    let chat = |n: u8, input: i64, output: i64| {
        span_of(
            n,
            1,
            "chat gpt-4o",
            (100, 3000),
            vec![
                s(OPERATION, "chat"),
                s("gen_ai.request.model", "gpt-4o"),
                s("gen_ai.response.model", "gpt-4o-2024-11-20"),
                i("gen_ai.usage.input_tokens", input),
                i("gen_ai.usage.output_tokens", output),
            ],
        )
    };
    let tool = span_of(
        4,
        1,
        "execute_tool readFile",
        (3000, 3050),
        vec![
            s(OPERATION, "execute_tool"),
            s("gen_ai.tool.name", "readFile"),
        ],
    );
    let mut req = request(
        Some("copilot-chat"),
        vec![chat(2, 1000, 100), tool, chat(3, 500, 300), root],
    );
    if let Some(r) = req.resource_spans[0].resource.as_mut() {
        r.attributes.push(s("host.name", "dev-mac"));
    }
    let m = map(&req);
    assert_eq!(m.rejected, vec![], "{m:?}");
    let types: Vec<&str> = m.accepted.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types.iter().filter(|t| **t == "llm_call").count(),
        2,
        "{types:?}"
    );
    assert!(
        types.contains(&"tool_call") && types.contains(&"run_completed"),
        "{types:?}"
    );
    for e in &m.accepted {
        // Every step is in the conversation's session, on the machine.
        assert_eq!(e.session_id.as_deref(), Some("conv-7"), "{e:?}");
        assert_eq!(e.machine_id.as_deref(), Some("dev-mac"));
        assert_eq!(e.agent_id, "copilot");
    }
    // The turn's totals on invoke_agent are not counted again: tokens are
    // the calls', and no cost is made up (the processors price them).
    let input: i64 = m.accepted.iter().filter_map(|e| e.input_tokens).sum();
    let output: i64 = m.accepted.iter().filter_map(|e| e.output_tokens).sum();
    assert_eq!((input, output), (1500, 400));
    assert!(m.accepted.iter().all(|e| e.cost_usd.is_none()));
}
