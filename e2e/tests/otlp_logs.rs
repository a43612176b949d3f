//! `POST /v1/logs` through the whole pipeline (issue 17, item 1): the real
//! OpenTelemetry Python SDK's OTLP/HTTP log exporter sends the events Claude
//! Code and Codex CLI export about themselves, with their names and
//! attributes (`e2e/python/claude_code_logs.py`), every batch twice: each
//! session lands as a run with its calls, tokens in the contract's
//! convention and cost counted once (Claude Code's own cost kept, Codex
//! priced from the table). Answers and refusals: `schemas/src/otlp/logs_tests.rs`.

use std::time::Duration;

use agentops_e2e::python::run_script;
use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

async fn run_with(stack: &Stack, run: &str, events: i64) -> Result<Value> {
    stack
        .eventually(Duration::from_secs(60), "run projected", || async {
            let r = stack.get(&format!("/v1/runs/{run}")).await.ok();
            Ok(r.filter(|r| r["event_count"] == json!(events)))
        })
        .await
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coding_agent_log_events_land_as_priced_runs() -> Result<()> {
    let stack = Stack::start("otlp_logs", StackOptions::default()).await?;
    let endpoint = format!("{}/v1/logs", stack.gateway_url);
    let line = run_script(
        "claude_code_logs.py",
        &["--endpoint", &endpoint, "--key", &stack.ingest_key],
    )
    .await?;
    let session = line["claude_session"].as_str().context("session")?;
    let conversation = line["codex_conversation"]
        .as_str()
        .context("conversation")?;

    // Claude Code: two requests, an API error, a tool result (the prompt is
    // not an event); each exported twice, counted once.
    let run = run_with(&stack, session, 4).await?;
    ensure!(run["agent_id"] == "claude-code", "{run}");
    ensure!(run["llm_calls"] == 3 && run["tool_calls"] == 1, "{run}");
    let tokens = [
        ("input_tokens", 1200 + 500),
        ("output_tokens", 800 + 300),
        ("cache_read_tokens", 30_000),
        ("cache_write_tokens", 2_000),
    ];
    for (field, want) in tokens {
        ensure!(run[field] == json!(want), "{field}: {run}");
    }
    // Claude Code's own cost estimate is kept as a client cost.
    ensure!(close(&run["cost_usd"], 0.0456 + 0.0021), "{run}");
    let timeline = run["events"].as_array().context("timeline")?;
    ensure!(
        timeline
            .iter()
            .any(|e| e["status"] == "error" && e["error_type"] == "529"),
        "{run}"
    );
    ensure!(
        timeline
            .iter()
            .filter(|e| e["type"] == "llm_call" && e["status"] == "ok")
            .all(|e| e["cost_source"] == "client"),
        "{run}"
    );

    // Codex: a start, a completed response priced from the table
    // (gpt-5.1: 6,000 x $1.25 + 4,000 cached x $0.125 + 300 x $10 + 600
    // reasoning x $10 per million), a failed tool call.
    let run = run_with(&stack, conversation, 3).await?;
    ensure!(run["agent_id"] == "codex_cli_rs", "{run}");
    let tokens = [
        ("input_tokens", 6_000),
        ("cache_read_tokens", 4_000),
        ("output_tokens", 300),
        ("reasoning_tokens", 600),
    ];
    for (field, want) in tokens {
        ensure!(run[field] == json!(want), "{field}: {run}");
    }
    let want = 6_000.0 * 1.25e-6 + 4_000.0 * 0.125e-6 + 300.0 * 10e-6 + 600.0 * 10e-6;
    ensure!(
        close(&run["cost_usd"], want),
        "cost {} want {want}",
        run["cost_usd"]
    );

    // Nothing doubled by the repeated exports.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE run_id = ANY($1)")
        .bind(vec![session.to_owned(), conversation.to_owned()])
        .fetch_one(&stack.pool)
        .await?;
    ensure!(n == 7, "{n} events stored");
    Ok(())
}
