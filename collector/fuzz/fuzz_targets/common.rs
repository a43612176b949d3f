// Shared by both targets (included with `include!`): the parser on the whole
// input as one line, then the stateful mapper over its lines; whatever the
// bytes, nothing panics and every event is one the gateway's bounds allow.

fn check(kind: agentops_collector::sources::AgentKind, data: &[u8]) {
    use agentops_collector::git::Place;
    use agentops_collector::machine::Machine;
    use agentops_collector::mapper::{end_session, FileState, MapContext, Mapper, Sessions, Stats};

    let _ = kind.parse_line(data);

    let machine = Machine {
        id: "fuzz".into(),
        name: "fuzz".into(),
        os: "linux".into(),
    };
    let resolve = |cwd: &str, _: Option<&str>| Place {
        project: format!("local:{}", cwd.len()),
        project_url: None,
        workspace: "w".into(),
        workspace_path: cwd.into(),
    };
    let path = std::path::Path::new(
        "rollout-2026-01-01T00-00-00-0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.jsonl",
    );
    let ctx = MapContext {
        machine: &machine,
        kind,
        path,
        keep_content: data.first().is_some_and(|b| b & 1 == 1),
        cutoff_ms: 0,
        fallback_ts: 1_790_000_000_000,
        resolve: &resolve,
    };
    let mut fs = FileState::default();
    let mut sessions = Sessions::new();
    let mut stats = Stats::default();
    let mut out = Vec::new();
    {
        let mut m = Mapper {
            ctx: &ctx,
            fs: &mut fs,
            sessions: &mut sessions,
            out: &mut out,
            stats: &mut stats,
        };
        let mut off = 0u64;
        for line in data.split(|&b| b == b'\n') {
            m.line(off, line);
            off += line.len() as u64 + 1;
        }
        m.flush_llm();
        let keys: Vec<String> = m.sessions.keys().map(|(_, s)| s.clone()).collect();
        for s in &keys {
            m.flush_session(s);
        }
    }
    let keys: Vec<String> = sessions.keys().map(|(_, s)| s.clone()).collect();
    for s in keys {
        end_session(&ctx, &s, &mut sessions, &mut out, &mut stats);
    }
    // The state round-trips (it is persisted between reads).
    let text = serde_json::to_string(&fs).expect("state serializes");
    let back: FileState = serde_json::from_str(&text).expect("state deserializes");
    assert_eq!(back, fs);
    for e in &out {
        let json = serde_json::to_string(e).expect("event serializes");
        assert!(json.len() < 64 * 1024, "event too large");
        for t in [
            e.input_tokens,
            e.output_tokens,
            e.cache_read_tokens,
            e.cache_write_tokens,
            e.reasoning_tokens,
        ]
        .into_iter()
        .flatten()
        {
            assert!((0..=100_000_000).contains(&t), "token count out of bounds");
        }
        for id in [
            Some(&e.agent_id),
            e.run_id.as_ref(),
            e.workflow_id.as_ref(),
            e.model.as_ref(),
            e.tool_name.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(id.len() <= 256, "identifier too long");
            assert!(
                !id.chars().any(|c| c.is_control()),
                "control character in an identifier"
            );
        }
        if let Some(l) = e.latency_ms {
            assert!(l >= 0);
        }
    }
}
