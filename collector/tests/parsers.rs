//! The pure line parsers on fixture lines and odd input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use agentops_collector::sources::{claude, codex, AgentKind};
use agentops_collector::step::{StepKind, Usage};
use common::*;

fn lines(path: &std::path::Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

#[test]
fn claude_assistant_split_lines_carry_the_message_id() {
    let l = lines(&claude_main());
    for (i, output) in [(2usize, 5u64), (3, 40), (4, 42)] {
        let steps = claude::parse_line(&l[i]).unwrap();
        let StepKind::LlmUsage {
            message_id,
            usage,
            model,
            ..
        } = &steps[0].kind
        else {
            panic!("line {i}: {steps:?}")
        };
        assert_eq!(message_id.as_deref(), Some("msg_011"));
        assert_eq!(model.as_deref(), Some("claude-sonnet-4-5-20250929"));
        assert_eq!(
            *usage,
            Usage {
                input: 10,
                output,
                cache_read: 2000,
                cache_write: 1000,
                reasoning: 0
            }
        );
        assert_eq!(steps[0].session_id.as_deref(), Some(S1));
        assert_eq!(steps[0].cwd.as_deref(), Some("/home/dev/src/acme"));
        assert_eq!(steps[0].git_branch.as_deref(), Some("main"));
    }
    // The third line also holds the tool use.
    let steps = claude::parse_line(&l[4]).unwrap();
    let StepKind::ToolUse { id, name, input } = &steps[1].kind else {
        panic!()
    };
    assert_eq!((id.as_str(), name.as_str()), ("toolu_01", "Bash"));
    assert_eq!(input.bytes, 50);
}

#[test]
fn claude_tool_results_and_errors() {
    let l = lines(&claude_main());
    let steps = claude::parse_line(&l[5]).unwrap();
    assert_eq!(
        steps[0].kind,
        StepKind::ToolResult {
            tool_use_id: "toolu_01".into(),
            is_error: true,
            output_bytes: 41
        }
    );
    assert_eq!(steps[0].timestamp_ms, Some(1_772_409_610_000));
    let steps = claude::parse_line(&l[7]).unwrap();
    assert_eq!(
        steps[0].kind,
        StepKind::ToolResult {
            tool_use_id: "toolu_02".into(),
            is_error: false,
            output_bytes: 13
        }
    );
    let steps = claude::parse_line(&l[8]).unwrap();
    assert!(steps[0].sidechain);
    // API error message: an error step, no usage.
    let steps = claude::parse_line(&l[13]).unwrap();
    assert_eq!(steps.len(), 1);
    assert!(matches!(&steps[0].kind, StepKind::Error { kind, .. } if kind == "api_error"));
}

#[test]
fn claude_compaction_markers() {
    let l = lines(&claude_main());
    for i in [0usize, 9, 10] {
        let steps = claude::parse_line(&l[i]).unwrap();
        assert_eq!(steps.len(), 1, "line {i}");
        assert_eq!(steps[0].kind, StepKind::Compaction, "line {i}");
    }
}

#[test]
fn non_utf8_bytes_are_replaced() {
    let l = lines(&claude_main());
    assert!(std::str::from_utf8(&l[12]).is_err());
    let steps = claude::parse_line(&l[12]).unwrap();
    let StepKind::UserPrompt(d) = &steps[0].kind else {
        panic!()
    };
    assert_eq!(d.preview, "fix the caf\u{fffd} parser");
    let c = lines(&codex_rollout());
    let steps = codex::parse_line(&c[17]).unwrap();
    let StepKind::UserPrompt(d) = &steps[0].kind else {
        panic!()
    };
    assert_eq!(d.preview, "try again caf\u{fffd}");
}

#[test]
fn a_partial_line_is_an_error_not_a_panic() {
    let l = lines(&claude_main());
    let partial = l.last().unwrap();
    assert!(!partial.is_empty());
    assert!(claude::parse_line(partial).is_err());
    for bad in [
        &b""[..],
        b"[1,2]",
        b"null",
        b"{",
        b"\xff\xfe",
        b"{\"type\":7}",
        b"{\"type\":\"assistant\",\"message\":[]}",
    ] {
        for kind in AgentKind::ALL {
            let _ = kind.parse_line(bad);
        }
    }
    // Deep nesting: serde_json's recursion limit, an error.
    let deep = "[".repeat(100_000);
    assert!(claude::parse_line(deep.as_bytes()).is_err());
    assert!(codex::parse_line(deep.as_bytes()).is_err());
}

#[test]
fn codex_lines() {
    let l = lines(&codex_rollout());
    let s = codex::parse_line(&l[0]).unwrap();
    assert_eq!(s[0].session_id.as_deref(), Some(CX));
    assert_eq!(s[0].cwd.as_deref(), Some("/home/dev/src/acme"));
    assert_eq!(s[0].git_branch.as_deref(), Some("main"));
    assert_eq!(
        s[0].kind,
        StepKind::SessionMeta {
            model_provider: Some("openai".into()),
            repository_url: Some("git@github.com:Acme/Repo.git".into())
        }
    );
    let s = codex::parse_line(&l[1]).unwrap();
    assert_eq!(
        s[0].kind,
        StepKind::TurnContext {
            model: Some("gpt-5-codex".into())
        }
    );
    // The user message as a response item and reasoning: nothing.
    assert!(codex::parse_line(&l[3]).unwrap().is_empty());
    assert!(codex::parse_line(&l[4]).unwrap().is_empty());
    let s = codex::parse_line(&l[6]).unwrap();
    let StepKind::LlmUsage {
        usage, cumulative, ..
    } = &s[0].kind
    else {
        panic!()
    };
    assert!(cumulative);
    assert_eq!(
        *usage,
        Usage {
            input: 5000,
            output: 300,
            cache_read: 1000,
            cache_write: 0,
            reasoning: 200
        }
    );
    // token_count without info (rate limits only): nothing.
    assert!(codex::parse_line(&l[8]).unwrap().is_empty());
    let s = codex::parse_line(&l[7]).unwrap();
    assert_eq!(
        s[0].kind,
        StepKind::ToolResult {
            tool_use_id: "call_1".into(),
            is_error: true,
            output_bytes: 78
        }
    );
    assert_eq!(
        codex::parse_line(&l[14]).unwrap()[0].kind,
        StepKind::Compaction
    );
}

#[test]
fn codex_output_error_detection() {
    use serde_json::json;
    let cases = [
        (
            json!("{\"output\":\"x\",\"metadata\":{\"exit_code\":0}}"),
            false,
        ),
        (
            json!("{\"output\":\"x\",\"metadata\":{\"exit_code\":2}}"),
            true,
        ),
        (json!({"content": "x", "success": false}), true),
        (json!({"content": "x", "success": true}), false),
        (
            json!("Exit code: 1\nWall time: 0.2 seconds\nOutput:\nboom"),
            true,
        ),
        (
            json!("Exit code: 0\nWall time: 0.2 seconds\nOutput:\nok"),
            false,
        ),
        (
            json!("Chunk ID: 1\nWall time: 0.1\nProcess exited with code 127\nOutput:\n"),
            true,
        ),
        (json!("plain text output"), false),
        (json!(null), false),
    ];
    for (v, want) in cases {
        assert_eq!(codex::output_is_error(&v), want, "{v}");
    }
}

#[test]
fn codex_legacy_rollout_without_envelope() {
    let first = br#"{"id":"0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","timestamp":"2025-05-01T10:00:00.000Z","instructions":null,"git":{"branch":"dev","repository_url":"https://github.com/acme/repo.git"}}"#;
    let s = codex::parse_line(first).unwrap();
    assert_eq!(s[0].session_id.as_deref(), Some(CX));
    assert_eq!(s[0].git_branch.as_deref(), Some("dev"));
    let call = br#"{"type":"function_call","name":"shell","arguments":"{}","call_id":"c1"}"#;
    let s = codex::parse_line(call).unwrap();
    assert!(matches!(&s[0].kind, StepKind::ToolUse { name, .. } if name == "shell"));
    assert!(codex::parse_line(br#"{"record_type":"state"}"#)
        .unwrap()
        .is_empty());
}
