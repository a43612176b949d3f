//! Builders for realistic event batches with known totals.

use chrono::{Duration, Utc};
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
