//! Fixtures → exact events and token counts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use agentops_collector::mapper::{end_session, FileState, MapContext, Sessions, Stats};
use agentops_collector::sources::AgentKind;
use common::*;

fn tokens(e: &agentops_collector::event::OutEvent) -> (i64, i64, i64, i64, Option<i64>) {
    (
        e.input_tokens.unwrap(),
        e.output_tokens.unwrap(),
        e.cache_read_tokens.unwrap(),
        e.cache_write_tokens.unwrap(),
        e.reasoning_tokens,
    )
}

#[test]
fn claude_code_main_transcript() {
    let (events, fs, sessions, stats) = map_file(AgentKind::ClaudeCode, &claude_main());
    for e in &events {
        validate(e);
        assert_eq!(e.agent_id, "claude-code");
        assert_eq!(e.run_id.as_deref(), Some(S1));
        assert_eq!(e.workflow_id.as_deref(), Some("local:acme"));
        // The hierarchy: top-level fields, not attributes.
        assert_eq!(e.session_id.as_deref(), Some(S1));
        assert_eq!(e.project_id.as_deref(), Some("local:acme"));
        assert_eq!(e.workspace_id.as_deref(), Some("ws-acme"));
        assert_eq!(
            e.machine_id.as_deref(),
            Some("00112233445566778899aabbccddeeff")
        );
        for k in ["session", "project", "workspace", "machine"] {
            assert!(!e.attributes.contains_key(k), "attributes.{k}");
        }
        assert_eq!(e.attributes["workspace_path"], "/home/dev/src/acme");
        assert_eq!(e.attributes["machine_name"], "devbox");
        assert_eq!(e.attributes["agent_kind"], "claude-code");
        assert_eq!(e.attributes["git_branch"], "main");
    }
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "run_started",
            "llm_call",  // msg_011 (three lines)
            "tool_call", // toolu_01 (its result after midnight)
            "llm_call",  // msg_012
            "tool_call", // toolu_02
            "llm_call",  // msg_013 (sidechain)
            "llm_call",  // msg_014 (after the compaction)
            "llm_call",  // the API error
        ]
    );
    assert_eq!(events[0].timestamp, "2026-03-01T23:58:00.000Z");
    let llm = of_type(&events, "llm_call");
    // msg_011 over three lines: usage counted once, the final output count.
    assert_eq!(tokens(llm[0]), (10, 42, 2000, 1000, None));
    assert_eq!(llm[0].provider.as_deref(), Some("anthropic"));
    assert_eq!(llm[0].model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(llm[0].timestamp, "2026-03-01T23:58:05.000Z");
    assert_eq!(llm[0].latency_ms, Some(5000));
    assert_eq!(llm[0].attributes["prompt_bytes"], "25");
    assert_eq!(
        llm[0].attributes["prompt_sha256"],
        sha256_hex("Add a test for the parser")
    );
    assert!(!llm[0].attributes.contains_key("prompt_preview"));
    assert_eq!(tokens(llm[1]), (3, 100, 3000, 0, None));
    assert_eq!(llm[1].latency_ms, Some(5000));
    assert_eq!(tokens(llm[2]), (7, 20, 0, 500, None));
    assert_eq!(llm[2].attributes["sidechain"], "true");
    assert_eq!(llm[2].session_id.as_deref(), Some(S1)); // inline sidechain: the parent's session
    assert_eq!(llm[2].model.as_deref(), Some("claude-haiku-4-5-20251001"));
    assert_eq!(tokens(llm[3]), (2, 30, 100, 50, None));
    assert_eq!(llm[3].cost_usd, Some(0.0123));
    assert_eq!(llm[4].status.as_deref(), Some("error"));
    assert_eq!(llm[4].error_type.as_deref(), Some("api_error"));
    assert_eq!(
        llm[4].error_message.as_deref(),
        Some("API Error: 529 overloaded_error")
    );
    assert_eq!(llm[4].input_tokens, None);
    for e in &llm[..4] {
        assert_eq!(e.status.as_deref(), Some("ok"));
        assert!(!e.attributes.contains_key("sidechain") || e.attributes["sidechain"] == "true");
    }
    let tools = of_type(&events, "tool_call");
    assert_eq!(tools[0].tool_name.as_deref(), Some("Bash"));
    assert_eq!(tools[0].status.as_deref(), Some("error"));
    assert_eq!(tools[0].timestamp, "2026-03-01T23:58:06.000Z");
    assert_eq!(tools[0].latency_ms, Some(124_000));
    assert_eq!(
        tools[0].attributes["tool_input_sha256"],
        sha256_hex(r#"{"command":"cargo test","description":"Run tests"}"#)
    );
    assert!(!tools[0].attributes.contains_key("tool_input_preview"));
    assert_eq!(tools[1].tool_name.as_deref(), Some("Read"));
    assert_eq!(tools[1].status.as_deref(), Some("ok"));
    assert_eq!(tools[1].latency_ms, Some(1000));
    assert_eq!(tools[1].attributes["tool_output_bytes"], "13");
    // Summary, compact boundary and compact summary: counted, nothing sent.
    assert_eq!(stats.compactions, 3);
    assert_eq!(stats.parse_errors, 0);
    // The prompt with non-UTF-8 bytes waits for a call (U+FFFD in place).
    let p = fs.pending_prompt.as_ref().unwrap();
    assert_eq!(p.preview, "fix the caf\u{fffd} parser");
    let s = &sessions[&(AgentKind::ClaudeCode, S1.to_owned())];
    assert!(s.last_error);
    assert_eq!(s.last_ts, Some(1_772_409_720_000)); // 2026-03-02T00:02:00Z
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[test]
fn claude_code_subagent_file_rolls_up_into_the_parent_session() {
    let (events, ..) = map_file(AgentKind::ClaudeCode, &claude_subagent());
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["run_started", "llm_call", "tool_call", "llm_call"]);
    for e in &events[1..] {
        validate(e);
        // The subagent's cost is the parent session's: same session, run,
        // project, workspace and machine, marked as a sidechain.
        assert_eq!(e.run_id.as_deref(), Some(S1));
        assert_eq!(e.session_id.as_deref(), Some(S1));
        assert_eq!(e.project_id.as_deref(), Some("local:acme"));
        assert_eq!(e.workspace_id.as_deref(), Some("ws-acme"));
        assert_eq!(
            e.machine_id.as_deref(),
            Some("00112233445566778899aabbccddeeff")
        );
        assert_eq!(e.attributes["sidechain"], "true");
    }
    assert_eq!(tokens(&events[1]), (4, 60, 1000, 0, None));
    assert_eq!(events[2].tool_name.as_deref(), Some("Grep"));
    assert_eq!(events[2].status.as_deref(), Some("ok"));
    assert_eq!(tokens(&events[3]), (1, 25, 1100, 0, None));
    // The parent's run_started has the same id whichever file starts it.
    let (main, ..) = map_file(AgentKind::ClaudeCode, &claude_main());
    assert_eq!(events[0].event_id, main[0].event_id);
}

#[test]
fn resumed_session_copies_get_the_same_ids() {
    let (orig, ..) = map_file(AgentKind::ClaudeCode, &claude_resumed());
    let (copy, ..) = map_file(AgentKind::ClaudeCode, &claude_resumed_copy());
    let orig_llm = of_type(&orig, "llm_call");
    let copy_llm = of_type(&copy, "llm_call");
    assert_eq!(orig_llm.len(), 1);
    assert_eq!(copy_llm.len(), 2);
    // msg_031 in both files: one id (the pipeline and the outbox keep one).
    assert_eq!(orig_llm[0].event_id, copy_llm[0].event_id);
    assert_eq!(orig_llm[0].timestamp, copy_llm[0].timestamp);
    assert_ne!(copy_llm[0].event_id, copy_llm[1].event_id);
    assert_eq!(orig[0].event_id, copy[0].event_id); // run_started
    for e in orig.iter().chain(&copy) {
        validate(e);
        assert_eq!(e.run_id.as_deref(), Some(S2));
        assert_eq!(e.attributes["git_branch"], "feature/x");
        assert_eq!(e.attributes["workspace_path"], "/home/dev/src/acme-wt");
    }
}

#[test]
fn codex_rollout_events() {
    let (events, fs, sessions, stats) = map_file(AgentKind::Codex, &codex_rollout());
    for e in &events {
        validate(e);
        assert_eq!(e.agent_id, "codex");
        assert_eq!(e.run_id.as_deref(), Some(CX));
        assert_eq!(e.workflow_id.as_deref(), Some("github.com/acme/repo"));
        assert_eq!(e.attributes["project_url"], "https://github.com/acme/repo");
        assert_eq!(e.attributes["git_branch"], "main");
        assert!(!e.attributes.contains_key("model_provider"));
    }
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "run_started",
            "llm_call",
            "tool_call", // shell, exit code 101
            "llm_call",  // after midnight; the repeated totals add nothing
            "tool_call", // apply_patch
            "tool_call", // web_search
            "llm_call",  // after the compaction
            "llm_call",  // the error event
        ]
    );
    let llm = of_type(&events, "llm_call");
    // Codex counts cached input inside input and reasoning inside output.
    assert_eq!(tokens(llm[0]), (4000, 100, 1000, 0, Some(200)));
    assert_eq!(llm[0].provider.as_deref(), Some("openai"));
    assert_eq!(llm[0].model.as_deref(), Some("gpt-5-codex"));
    assert_eq!(llm[0].latency_ms, Some(3000));
    assert_eq!(llm[0].attributes["prompt_bytes"], "13");
    assert_eq!(tokens(llm[1]), (1000, 150, 5000, 0, Some(50)));
    assert_eq!(llm[1].timestamp, "2026-03-02T00:00:30.000Z");
    assert_eq!(tokens(llm[2]), (1000, 150, 2000, 0, Some(50)));
    assert_eq!(llm[3].status.as_deref(), Some("error"));
    assert_eq!(llm[3].error_type.as_deref(), Some("error"));
    // Sums over the session equal the last cumulative totals, converted.
    let sum = |f: fn(&agentops_collector::event::OutEvent) -> Option<i64>| -> i64 {
        llm.iter().filter_map(|e| f(e)).sum()
    };
    assert_eq!(sum(|e| e.input_tokens), 14000 - 8000);
    assert_eq!(sum(|e| e.cache_read_tokens), 8000);
    assert_eq!(sum(|e| e.output_tokens), 700 - 300);
    assert_eq!(sum(|e| e.reasoning_tokens), 300);
    let tools = of_type(&events, "tool_call");
    assert_eq!(tools[0].tool_name.as_deref(), Some("shell"));
    assert_eq!(tools[0].status.as_deref(), Some("error"));
    assert_eq!(tools[0].latency_ms, Some(2000));
    assert_eq!(tools[1].tool_name.as_deref(), Some("apply_patch"));
    assert_eq!(tools[1].status.as_deref(), Some("ok"));
    assert_eq!(tools[2].tool_name.as_deref(), Some("web_search"));
    assert_eq!(tools[2].status.as_deref(), Some("ok"));
    assert_eq!(stats.zero_usage, 1);
    assert_eq!(stats.compactions, 1);
    assert_eq!(fs.session_id.as_deref(), Some(CX));
    assert_eq!(
        fs.pending_prompt.as_ref().unwrap().preview,
        "try again caf\u{fffd}"
    );
    assert!(sessions[&(AgentKind::Codex, CX.to_owned())].last_error);
}

#[test]
fn codex_counter_reset_is_not_negative() {
    let path = std::path::Path::new(
        "rollout-2026-03-01T00-00-00-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl",
    );
    let line = |ts: &str, i: u64, c: u64, o: u64, r: u64| {
        format!(
            r#"{{"timestamp":"{ts}","type":"event_msg","payload":{{"type":"token_count","info":{{"total_token_usage":{{"input_tokens":{i},"cached_input_tokens":{c},"output_tokens":{o},"reasoning_output_tokens":{r},"total_tokens":0}}}}}}}}"#
        )
    };
    let text = [
        line("2026-03-01T00:00:01Z", 1000, 100, 50, 10),
        line("2026-03-01T00:00:02Z", 1500, 300, 80, 20),
        // A reset (a new process counting from zero): taken whole.
        line("2026-03-01T00:00:03Z", 400, 0, 30, 0),
        line("2026-03-01T00:00:04Z", 900, 100, 60, 5),
    ]
    .join("\n")
        + "\n";
    let mut fs = FileState::default();
    let mut sessions = Sessions::new();
    let mut stats = Stats::default();
    let events = map_bytes(
        AgentKind::Codex,
        path,
        text.as_bytes(),
        &mut fs,
        &mut sessions,
        &mut stats,
        false,
    );
    let llm = of_type(&events, "llm_call");
    let got: Vec<_> = llm.iter().map(|e| tokens(e)).collect();
    assert_eq!(
        got,
        [
            (900, 40, 100, 0, Some(10)),
            (300, 20, 200, 0, Some(10)),
            (400, 30, 0, 0, Some(0)),
            (400, 25, 100, 0, Some(5)),
        ]
    );
    // The session id comes from the file name when no session_meta was read.
    assert_eq!(llm[0].run_id.as_deref(), Some(CX));
}

#[test]
fn re_reading_gives_identical_event_ids() {
    for (kind, path) in [
        (AgentKind::ClaudeCode, claude_main()),
        (AgentKind::ClaudeCode, claude_subagent()),
        (AgentKind::Codex, codex_rollout()),
    ] {
        let (a, ..) = map_file(kind, &path);
        let (b, ..) = map_file(kind, &path);
        assert!(!a.is_empty());
        assert_eq!(a, b, "{}", path.display());
        let mut ids: Vec<&str> = a.iter().map(|e| e.event_id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), a.len(), "ids unique within {}", path.display());
    }
}

#[test]
fn reading_in_two_pieces_gives_the_same_events() {
    // A restart between two reads (state persisted) = one read.
    for (kind, path) in [
        (AgentKind::ClaudeCode, claude_main()),
        (AgentKind::Codex, codex_rollout()),
    ] {
        let bytes = std::fs::read(&path).unwrap();
        let (whole, ..) = map_file(kind, &path);
        for cut_line in 1..8 {
            let cut = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .nth(cut_line)
                .map(|(i, _)| i + 1)
                .unwrap();
            let mut fs = FileState::default();
            let mut sessions = Sessions::new();
            let mut stats = Stats::default();
            // The first piece without the final flush: the state carries
            // the pending message over, as the checkpointed state does.
            let first = {
                let m = machine();
                let resolve = fixed_place;
                let ctx = MapContext {
                    machine: &m,
                    kind,
                    path: &path,
                    keep_content: false,
                    cutoff_ms: 0,
                    fallback_ts: 0,
                    resolve: &resolve,
                };
                let mut out = Vec::new();
                let mut mapper = agentops_collector::mapper::Mapper {
                    ctx: &ctx,
                    fs: &mut fs,
                    sessions: &mut sessions,
                    out: &mut out,
                    stats: &mut stats,
                };
                let mut off = 0u64;
                for piece in bytes[..cut].split_inclusive(|&b| b == b'\n') {
                    mapper.line(off, &piece[..piece.len() - 1]);
                    off += piece.len() as u64;
                }
                out
            };
            // Persisted and loaded back, as between two runs.
            let mut fs: FileState =
                serde_json::from_str(&serde_json::to_string(&fs).unwrap()).unwrap();
            let rest = {
                let m = machine();
                let resolve = fixed_place;
                let ctx = MapContext {
                    machine: &m,
                    kind,
                    path: &path,
                    keep_content: false,
                    cutoff_ms: 0,
                    fallback_ts: 0,
                    resolve: &resolve,
                };
                let mut out = Vec::new();
                let mut mapper = agentops_collector::mapper::Mapper {
                    ctx: &ctx,
                    fs: &mut fs,
                    sessions: &mut sessions,
                    out: &mut out,
                    stats: &mut stats,
                };
                let mut off = cut as u64;
                for piece in bytes[cut..].split_inclusive(|&b| b == b'\n') {
                    if piece.ends_with(b"\n") {
                        mapper.line(off, &piece[..piece.len() - 1]);
                    }
                    off += piece.len() as u64;
                }
                mapper.flush_llm();
                out
            };
            let joined: Vec<_> = first.into_iter().chain(rest).collect();
            assert_eq!(
                joined,
                whole,
                "{} cut after line {cut_line}",
                path.display()
            );
        }
    }
}

#[test]
fn keep_content_sends_previews() {
    let bytes = std::fs::read(claude_main()).unwrap();
    let mut fs = FileState::default();
    let mut sessions = Sessions::new();
    let mut stats = Stats::default();
    let events = map_bytes(
        AgentKind::ClaudeCode,
        &claude_main(),
        &bytes,
        &mut fs,
        &mut sessions,
        &mut stats,
        true,
    );
    let llm = of_type(&events, "llm_call");
    assert_eq!(
        llm[0].attributes["prompt_preview"],
        "Add a test for the parser"
    );
    let tools = of_type(&events, "tool_call");
    assert_eq!(
        tools[0].attributes["tool_input_preview"],
        r#"{"command":"cargo test","description":"Run tests"}"#
    );
}

#[test]
fn session_end_failed_then_reopened() {
    let (_, _, mut sessions, mut stats) = map_file(AgentKind::ClaudeCode, &claude_main());
    let m = machine();
    let resolve = fixed_place;
    let ctx = MapContext {
        machine: &m,
        kind: AgentKind::ClaudeCode,
        path: std::path::Path::new(""),
        keep_content: false,
        cutoff_ms: 0,
        fallback_ts: 0,
        resolve: &resolve,
    };
    let mut out = Vec::new();
    end_session(&ctx, S1, &mut sessions, &mut out, &mut stats);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].event_type, "run_failed");
    assert_eq!(out[0].timestamp, "2026-03-02T00:02:00.000Z");
    assert_eq!(out[0].error_type.as_deref(), Some("api_error"));
    assert_eq!(out[0].latency_ms, Some(240_000));
    validate(&out[0]);
    // The same end again: the same id (a re-run dedups).
    let mut again = Vec::new();
    end_session(&ctx, S1, &mut sessions, &mut again, &mut stats);
    assert_eq!(again[0].event_id, out[0].event_id);
}

#[test]
fn old_steps_are_counted_not_sent() {
    let bytes = std::fs::read(codex_rollout()).unwrap();
    let m = machine();
    let resolve = fixed_place;
    // Cut-off just after midnight: the steps of the evening before are old.
    let ctx = MapContext {
        machine: &m,
        kind: AgentKind::Codex,
        path: &codex_rollout(),
        keep_content: false,
        cutoff_ms: 1_772_409_600_000, // 2026-03-02T00:00:00Z
        fallback_ts: 0,
        resolve: &resolve,
    };
    let mut fs = FileState::default();
    let mut sessions = Sessions::new();
    let mut stats = Stats::default();
    let mut out = Vec::new();
    let mut mapper = agentops_collector::mapper::Mapper {
        ctx: &ctx,
        fs: &mut fs,
        sessions: &mut sessions,
        out: &mut out,
        stats: &mut stats,
    };
    let mut off = 0;
    for piece in bytes.split_inclusive(|&b| b == b'\n') {
        mapper.line(off, &piece[..piece.len() - 1]);
        off += piece.len() as u64;
    }
    let types: Vec<&str> = out.iter().map(|e| e.event_type.as_str()).collect();
    // run_started moves to the first step inside the window.
    assert_eq!(
        types,
        [
            "run_started",
            "llm_call",
            "tool_call",
            "tool_call",
            "llm_call",
            "llm_call"
        ]
    );
    assert_eq!(out[0].timestamp, "2026-03-02T00:00:30.000Z");
    // The first call's delta still counts from the old totals.
    assert_eq!(tokens(&out[1]), (1000, 150, 5000, 0, Some(50)));
    assert_eq!(stats.too_old, 2); // the evening's llm_call and tool_call
}

#[test]
fn codex_call_ids_are_per_session() {
    // Two Codex sessions that both number their calls `c0`: two tool calls.
    let mk = |sid: &str| {
        format!(
            "{{\"timestamp\":\"2026-03-01T00:00:00Z\",\"type\":\"session_meta\",\"payload\":{{\"id\":\"{sid}\",\"cwd\":\"/r\"}}}}\n\
             {{\"timestamp\":\"2026-03-01T00:00:01Z\",\"type\":\"response_item\",\"payload\":{{\"type\":\"function_call\",\"name\":\"shell\",\"arguments\":\"{{}}\",\"call_id\":\"c0\"}}}}\n\
             {{\"timestamp\":\"2026-03-01T00:00:02Z\",\"type\":\"response_item\",\"payload\":{{\"type\":\"function_call_output\",\"call_id\":\"c0\",\"output\":\"ok\"}}}}\n"
        )
    };
    let mut ids = Vec::new();
    for sid in [
        "0199a1b2-0000-7000-8000-000000000001",
        "0199a1b2-0000-7000-8000-000000000002",
    ] {
        let mut fs = FileState::default();
        let mut sessions = Sessions::new();
        let mut stats = Stats::default();
        let path = std::path::Path::new("x.jsonl");
        let events = map_bytes(
            AgentKind::Codex,
            path,
            mk(sid).as_bytes(),
            &mut fs,
            &mut sessions,
            &mut stats,
            false,
        );
        ids.push(of_type(&events, "tool_call")[0].event_id.clone());
    }
    assert_ne!(ids[0], ids[1]);
}
