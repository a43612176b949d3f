//! The coding agents' log events (docs/coding-agents.md), as OTLP/JSON the
//! way their exporters write it.

use serde_json::{json, Value};

use super::logs::*;
use super::Format;
use crate::validate::ValidationLimits;

/// 2026-11-22T10:00:00Z in Unix nanoseconds, and "now" a minute later.
const T0: u64 = 1_795_341_600_000_000_000;
const NOW: i64 = (T0 / 1000) as i64 + 60_000_000;

fn s(k: &str, v: &str) -> Value {
    json!({"key": k, "value": {"stringValue": v}})
}

fn n(k: &str, v: i64) -> Value {
    json!({"key": k, "value": {"intValue": v.to_string()}})
}

fn d(k: &str, v: f64) -> Value {
    json!({"key": k, "value": {"doubleValue": v}})
}

/// One request of `records` (`(body, ms after T0, attributes)`) from `service`.
fn request(service: &str, records: Vec<(&str, u64, Vec<Value>)>) -> Vec<u8> {
    let records: Vec<Value> = records
        .into_iter()
        .map(|(body, ms, attrs)| {
            json!({"timeUnixNano": (T0 + ms * 1_000_000).to_string(),
                   "body": {"stringValue": body}, "attributes": attrs})
        })
        .collect();
    serde_json::to_vec(&json!({"resourceLogs": [{
        "resource": {"attributes": [s("service.name", service), s("host.arch", "arm64")]},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": records}]
    }]}))
    .unwrap()
}

fn map(body: &[u8]) -> MappedLogs {
    decode_and_map_logs(
        body,
        Format::Json,
        "acme",
        NOW,
        &ValidationLimits::default(),
        true,
    )
    .unwrap()
}

#[test]
fn claude_code_requests_errors_and_tools_become_events() {
    let session = [s("session.id", "sess-1"), s("prompt.id", "p-1")];
    let with = |extra: Vec<Value>| -> Vec<Value> { session.iter().cloned().chain(extra).collect() };
    let body = request(
        "claude-code",
        vec![
            (
                "claude_code.user_prompt",
                0,
                with(vec![
                    s("event.name", "user_prompt"),
                    n("prompt_length", 42),
                    s("prompt", "secret text"),
                ]),
            ),
            (
                "claude_code.api_request",
                10,
                with(vec![
                    s("event.name", "api_request"),
                    s("model", "claude-sonnet-4-5"),
                    d("cost_usd", 0.0123),
                    n("duration_ms", 2100),
                    n("input_tokens", 12),
                    n("output_tokens", 340),
                    n("cache_read_tokens", 20000),
                    n("cache_creation_tokens", 1500),
                ]),
            ),
            (
                "claude_code.api_error",
                20,
                with(vec![
                    s("event.name", "api_error"),
                    s("model", "claude-sonnet-4-5"),
                    s("error", "Overloaded"),
                    s("status_code", "529"),
                    n("duration_ms", 300),
                    n("attempt", 1),
                ]),
            ),
            (
                "claude_code.tool_result",
                30,
                with(vec![
                    s("event.name", "tool_result"),
                    s("tool_name", "Bash"),
                    s("success", "false"),
                    n("duration_ms", 80),
                    s("error", "exit 1"),
                    s("tool_parameters", "{\"command\":\"rm -rf\"}"),
                ]),
            ),
            (
                "claude_code.tool_decision",
                40,
                with(vec![
                    s("event.name", "tool_decision"),
                    s("tool_name", "Edit"),
                    s("decision", "accept"),
                ]),
            ),
        ],
    );
    let m = map(&body);
    assert_eq!(
        (m.records, m.ignored, m.rejected.len()),
        (5, 2, 0),
        "{:?}",
        m.rejected
    );
    let [req, err, tool] = &m.accepted[..] else {
        panic!("{:?}", m.accepted)
    };
    assert_eq!(
        (req.event_type.as_str(), req.run_id.as_deref()),
        ("llm_call", Some("sess-1"))
    );
    assert_eq!(req.agent_id, "claude-code");
    assert_eq!(req.provider.as_deref(), Some("anthropic"));
    assert_eq!(req.model.as_deref(), Some("claude-sonnet-4-5"));
    // Claude Code's input_tokens exclude the cache counts already.
    assert_eq!(
        (
            req.input_tokens,
            req.output_tokens,
            req.cache_read_tokens,
            req.cache_write_tokens
        ),
        (Some(12), Some(340), Some(20000), Some(1500))
    );
    assert_eq!((req.cost_usd, req.latency_ms), (Some(0.0123), Some(2100)));
    assert_eq!(
        req.attributes.get("agent_kind").map(String::as_str),
        Some("claude-code")
    );
    assert_eq!(
        req.attributes.get("prompt.id").map(String::as_str),
        Some("p-1")
    );
    assert_eq!(
        req.attributes.get("host.arch").map(String::as_str),
        Some("arm64")
    );
    assert!(
        !req.attributes.contains_key("cost_usd"),
        "{:?}",
        req.attributes
    );

    assert_eq!(
        (err.event_type.as_str(), err.status.as_deref()),
        ("llm_call", Some("error"))
    );
    assert_eq!(err.error_type.as_deref(), Some("529"));
    assert_eq!(err.error_message.as_deref(), Some("Overloaded"));

    assert_eq!(tool.event_type, "tool_call");
    assert_eq!(tool.tool_name.as_deref(), Some("Bash"));
    assert_eq!(
        (tool.status.as_deref(), tool.latency_ms),
        (Some("error"), Some(80))
    );
    // Content never kept: the prompt, the tool's parameters.
    for e in &m.accepted {
        assert!(
            !e.attributes.contains_key("prompt") && !e.attributes.contains_key("tool_parameters")
        );
    }
    let answer = m.response().partial_success.unwrap();
    assert_eq!(answer.rejected_log_records, 0);
    assert!(
        answer.error_message.contains("2 of 5 log records ignored"),
        "{}",
        answer.error_message
    );

    // Exported again (a retry): the same ids, so downstream counts it once.
    let again = map(&body);
    let ids = |m: &MappedLogs| {
        m.accepted
            .iter()
            .map(|e| e.event_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&m), ids(&again));
    // Another org: other ids.
    let other = decode_and_map_logs(
        &body,
        Format::Json,
        "beta",
        NOW,
        &ValidationLimits::default(),
        true,
    )
    .unwrap();
    assert!(ids(&m).iter().all(|i| !ids(&other).contains(i)));
}

#[test]
fn codex_completed_responses_are_priced_calls_with_the_contract_tokens() {
    let conv = s("conversation.id", "conv-9");
    let body = request(
        "codex_cli_rs",
        vec![
            (
                "",
                0,
                vec![
                    s("event.name", "codex.conversation_starts"),
                    conv.clone(),
                    s("model", "gpt-5.1"),
                ],
            ),
            (
                "",
                5,
                vec![
                    s("event.name", "codex.sse_event"),
                    s("event.kind", "response.created"),
                    conv.clone(),
                ],
            ),
            (
                "",
                10,
                vec![
                    s("event.name", "codex.sse_event"),
                    s("event.kind", "response.completed"),
                    conv.clone(),
                    s("model", "gpt-5.1"),
                    n("input_token_count", 100),
                    n("cached_token_count", 40),
                    n("output_token_count", 10),
                    n("reasoning_token_count", 5),
                    n("tool_token_count", 110),
                ],
            ),
            (
                "",
                20,
                vec![
                    s("event.name", "codex.tool_result"),
                    conv.clone(),
                    s("tool_name", "shell"),
                    n("duration_ms", 12),
                    s("success", "true"),
                ],
            ),
        ],
    );
    let m = map(&body);
    assert_eq!(
        (m.records, m.ignored, m.rejected.len()),
        (4, 1, 0),
        "{:?}",
        m.rejected
    );
    let [start, call, tool] = &m.accepted[..] else {
        panic!("{:?}", m.accepted)
    };
    assert_eq!(
        (start.event_type.as_str(), start.run_id.as_deref()),
        ("run_started", Some("conv-9"))
    );
    assert_eq!(start.agent_id, "codex_cli_rs");
    assert_eq!(call.provider.as_deref(), Some("openai"));
    // OpenAI counts cached input in the input and reasoning in the output.
    assert_eq!(
        (
            call.input_tokens,
            call.cache_read_tokens,
            call.output_tokens,
            call.reasoning_tokens
        ),
        (Some(60), Some(40), Some(5), Some(5))
    );
    assert_eq!(
        call.cost_usd, None,
        "no cost in Codex telemetry: priced by the processors"
    );
    assert_eq!(
        (tool.tool_name.as_deref(), tool.status.as_deref()),
        (Some("shell"), Some("ok"))
    );
}

#[test]
fn bad_records_are_refused_by_index_and_bad_bodies_do_not_decode() {
    // A negative token count fails validation like any event; the record's
    // position in the request is named.
    let body = request(
        "claude-code",
        vec![
            (
                "claude_code.api_request",
                0,
                vec![s("session.id", "s"), s("model", "m"), n("input_tokens", 5)],
            ),
            (
                "claude_code.api_request",
                1,
                vec![s("session.id", "s"), s("model", "m"), n("input_tokens", -5)],
            ),
        ],
    );
    let m = map(&body);
    assert_eq!(m.accepted.len(), 1);
    assert_eq!(m.rejected.len(), 1);
    assert_eq!(
        (m.rejected[0].index, m.rejected[0].field.as_str()),
        (1, "input_tokens")
    );
    let answer = m.response().partial_success.unwrap();
    assert_eq!(answer.rejected_log_records, 1);
    assert!(
        answer
            .error_message
            .contains("record 1: field `input_tokens`"),
        "{}",
        answer.error_message
    );

    assert!(decode_and_map_logs(
        b"{not json",
        Format::Json,
        "o",
        NOW,
        &ValidationLimits::default(),
        true
    )
    .is_err());
    assert!(decode_and_map_logs(
        b"\xff\xff\xff",
        Format::Protobuf,
        "o",
        NOW,
        &ValidationLimits::default(),
        true
    )
    .is_err());
    // Protobuf round trip of the same request maps the same.
    let req: ExportLogsServiceRequest = serde_json::from_slice(&body).unwrap();
    let bytes = prost::Message::encode_to_vec(&req);
    let p = decode_and_map_logs(
        &bytes,
        Format::Protobuf,
        "acme",
        NOW,
        &ValidationLimits::default(),
        true,
    )
    .unwrap();
    assert_eq!(p.accepted.len(), 1);
    assert_eq!(p.accepted[0].event_id, m.accepted[0].event_id);
}

#[test]
fn the_hierarchy_comes_from_the_session_and_the_resource_attributes() {
    let body = serde_json::to_vec(&json!({"resourceLogs": [{
        "resource": {"attributes": [
            s("service.name", "claude-code"),
            s("host.name", "dev-laptop-7"),
            s("agentops.project.id", "github.com/acme/shop"),
            s("agentops.workspace.id", "shop-main"),
        ]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": T0.to_string(),
            "body": {"stringValue": "claude_code.api_request"},
            "attributes": [s("event.name", "api_request"), s("session.id", "sess-9"),
                           s("model", "claude-sonnet-4-5"), n("input_tokens", 5),
                           // The record's own attribute wins over the resource's.
                           s("agentops.workspace.id", "shop-feature")]
        }]}]
    }]}))
    .unwrap();
    let m = map(&body);
    let [e] = &m.accepted[..] else {
        panic!("{:?}", m)
    };
    assert_eq!(e.session_id.as_deref(), Some("sess-9"));
    assert_eq!(e.run_id.as_deref(), Some("sess-9"));
    assert_eq!(e.project_id.as_deref(), Some("github.com/acme/shop"));
    assert_eq!(e.machine_id.as_deref(), Some("dev-laptop-7"));
    assert_eq!(e.workspace_id.as_deref(), Some("shop-feature"));
    // Without them, none is made up.
    let plain = map(&request(
        "claude-code",
        vec![(
            "claude_code.api_request",
            0,
            vec![s("event.name", "api_request"), s("model", "m")],
        )],
    ));
    let [p] = &plain.accepted[..] else {
        panic!("{:?}", plain)
    };
    assert_eq!(
        (&p.project_id, &p.machine_id, &p.workspace_id, &p.session_id),
        (&None, &None, &None, &None)
    );
}

#[test]
fn with_usage_from_the_metrics_a_codex_completion_counts_the_call_only() {
    let body = request(
        "codex_cli_rs",
        vec![(
            "",
            10,
            vec![
                s("event.name", "codex.sse_event"),
                s("event.kind", "response.completed"),
                s("conversation.id", "conv-9"),
                s("model", "gpt-5.1"),
                n("input_token_count", 100),
                n("cached_token_count", 40),
                n("output_token_count", 10),
            ],
        )],
    );
    let m = decode_and_map_logs(
        &body,
        Format::Json,
        "acme",
        NOW,
        &ValidationLimits::default(),
        false,
    )
    .unwrap();
    let [call] = &m.accepted[..] else {
        panic!("{m:?}")
    };
    // `codex.turn.token_usage` carries these tokens: not counted twice.
    assert_eq!(call.event_type, "llm_call");
    assert_eq!(call.model.as_deref(), Some("gpt-5.1"));
    assert_eq!(
        (
            call.input_tokens,
            call.cache_read_tokens,
            call.output_tokens,
            call.cost_usd
        ),
        (None, None, None, None)
    );
}
