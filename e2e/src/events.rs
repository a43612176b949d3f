//! Builders for realistic event batches with known totals.

use agentops_schemas::AgentEvent;
use chrono::{DateTime, Duration, Duration as Span, Utc};
use serde_json::{json, Value};

/// USD of one `llm_call` built by [`run`]: gpt-4o, 1,000 input + 200 output tokens
/// at $2.50 / $10.00 per million.
pub const LLM_CALL_COST: f64 = (1000.0 * 2.50 + 200.0 * 10.0) / 1_000_000.0;

pub fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Five events of one run: started, two LLM calls, a tool call, and the end.
/// Timestamps are `age_secs` seconds before now.
pub fn run(agent: &str, run_id: &str, failed: bool, latency_ms: i64, age_secs: i64) -> Vec<Value> {
    let t = |offset_ms: i64| {
        (Utc::now() - Duration::seconds(age_secs) + Duration::milliseconds(offset_ms)).to_rfc3339()
    };
    let llm = |n: i64| {
        json!({"event_id": id(), "type": "llm_call", "agent_id": agent, "run_id": run_id, "workflow_id": "wf-e2e",
               "timestamp": t(n), "provider": "openai", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 200,
               "latency_ms": 300, "status": "ok"})
    };
    let end = if failed {
        json!({"event_id": id(), "type": "run_failed", "agent_id": agent, "run_id": run_id, "workflow_id": "wf-e2e",
               "timestamp": t(3), "latency_ms": latency_ms, "status": "error", "error_type": "tool_error",
               "error_message": format!("run {run_id} failed: search tool timed out")})
    } else {
        json!({"event_id": id(), "type": "run_completed", "agent_id": agent, "run_id": run_id, "workflow_id": "wf-e2e",
               "timestamp": t(3), "latency_ms": latency_ms, "status": "ok"})
    };
    vec![
        json!({"event_id": id(), "type": "run_started", "agent_id": agent, "run_id": run_id, "workflow_id": "wf-e2e", "timestamp": t(0)}),
        llm(1),
        llm(2),
        json!({"event_id": id(), "type": "tool_call", "agent_id": agent, "run_id": run_id, "timestamp": t(2),
               "tool_name": "search", "latency_ms": 40, "status": "ok"}),
        end,
    ]
}

/// A batch of `runs` runs (5 events each) over `agents` agents; every `fail_every`-th fails.
/// Returns (events, failed runs, run latencies).
pub fn fleet(
    runs: usize,
    agents: usize,
    fail_every: usize,
    prefix: &str,
) -> (Vec<Value>, usize, Vec<i64>) {
    let mut events = Vec::with_capacity(runs * 5);
    let mut failed = 0;
    let mut latencies = Vec::with_capacity(runs);
    for i in 0..runs {
        let fail = fail_every > 0 && i % fail_every == 0;
        failed += usize::from(fail);
        let latency = 200 + ((i as i64 * 7919) % 9800);
        latencies.push(latency);
        events.extend(run(
            &format!("agent-{}", i % agents),
            &format!("{prefix}-run-{i}"),
            fail,
            latency,
            60,
        ));
    }
    (events, failed, latencies)
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// One already-enriched event of `run` at `t`.
pub fn enriched_event(org: &str, ty: &str, agent: &str, run: &str, t: DateTime<Utc>) -> AgentEvent {
    AgentEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        org_id: org.into(),
        event_type: ty.into(),
        agent_id: agent.into(),
        run_id: Some(run.into()),
        timestamp: micros(t),
        ..Default::default()
    }
}

/// `n` runs of four already-enriched events each (what the projections
/// consume), starting at `start`, `spacing` apart, over three
/// agents and two models; every fifth run fails; latencies spread over many
/// histogram buckets.
pub fn enriched_runs(
    org: &str,
    prefix: &str,
    n: usize,
    start: DateTime<Utc>,
    spacing: Span,
) -> Vec<AgentEvent> {
    let mut out = Vec::new();
    for i in 0..n {
        let t = start + spacing * i as i32;
        let agent = format!("agent-{}", i % 3);
        let run = format!("{prefix}-{i}");
        let mut started = enriched_event(org, "run_started", &agent, &run, t);
        started.workflow_id = (i % 2 == 0).then(|| "wf-a".to_owned());
        let mut llm = enriched_event(org, "llm_call", &agent, &run, t + Span::seconds(1));
        let (provider, model) = if i % 2 == 0 {
            ("openai", "gpt-4o")
        } else {
            ("anthropic", "claude-sonnet-4")
        };
        llm.provider = Some(provider.into());
        llm.model = Some(model.into());
        llm.input_tokens = Some(1000 + i as i64);
        llm.output_tokens = Some(100);
        llm.cache_read_tokens = Some(10 * i as i64);
        llm.reasoning_tokens = Some(i as i64);
        llm.cost_usd = Some(0.01 * (i + 1) as f64);
        llm.workflow_id.clone_from(&started.workflow_id);
        let mut tool = enriched_event(org, "tool_call", &agent, &run, t + Span::seconds(2));
        tool.tool_name = Some("search".into());
        let failed = i % 5 == 0;
        let mut end = enriched_event(
            org,
            if failed {
                "run_failed"
            } else {
                "run_completed"
            },
            &agent,
            &run,
            t + Span::seconds(3),
        );
        end.latency_ms = Some((100.0 * 1.6f64.powi((i % 13) as i32)) as i64);
        if failed {
            end.status = Some("error".into());
            end.error_type = Some("tool_error".into());
        }
        out.extend([started, llm, tool, end]);
    }
    out
}
