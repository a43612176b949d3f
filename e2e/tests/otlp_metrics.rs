//! `POST /v1/metrics` through the whole pipeline (issue 17, item 1): the
//! real OpenTelemetry Python SDK's OTLP/HTTP metric exporter records Claude
//! Code's usage counters (`e2e/python/claude_code_metrics.py`) in cumulative
//! and in delta temporality, every export twice, with a collection that adds
//! nothing and an exporter restart (counters from 0, a new start time): the
//! session's tokens and spend are exact. With `otlp_usage_source = logs`
//! (the default) the same counters are ignored, so usage exported both as
//! logs and as metrics never counts twice. Codex's turn histograms
//! (`e2e/python/codex_metrics.py`) likewise, in OpenAI's token convention.

use std::time::Duration;

use agentops_e2e::python::run_script;
use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::json;

/// Run an exporter script; what it printed.
async fn run(stack: &Stack, script: &str, temporality: &str) -> Result<serde_json::Value> {
    let endpoint = format!("{}/v1/metrics", stack.gateway_url);
    let args = [
        "--endpoint",
        &endpoint,
        "--key",
        &stack.ingest_key,
        "--temporality",
        temporality,
    ];
    run_script(script, &args).await
}

/// Run Claude Code's exporter script; the session id.
async fn export(stack: &Stack, temporality: &str) -> Result<String> {
    let line = run(stack, "claude_code_metrics.py", temporality).await?;
    Ok(line["session"].as_str().context("session")?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_usage_counters_count_once_in_both_temporalities() -> Result<()> {
    let stack = Stack::start(
        "otlp_metrics",
        StackOptions {
            env: vec![("AGENTOPS_OTLP_USAGE_SOURCE".into(), "metrics".into())],
            ..Default::default()
        },
    )
    .await?;
    for temporality in ["cumulative", "delta"] {
        let session = export(&stack, temporality).await?;
        let want_tokens = [
            ("input_tokens", 1_800),
            ("output_tokens", 350),
            ("cache_read_tokens", 5_000),
            ("cache_write_tokens", 300),
        ];
        let run = stack
            .eventually(Duration::from_secs(60), "usage projected", || async {
                let r = stack.get(&format!("/v1/runs/{session}")).await.ok();
                Ok(r.filter(|r| {
                    r["input_tokens"] == json!(1_800) && r["cache_write_tokens"] == json!(300)
                }))
            })
            .await
            .with_context(|| temporality.to_owned())?;
        for (field, want) in want_tokens {
            ensure!(run[field] == json!(want), "{temporality} {field}: {run}");
        }
        let cost = run["cost_usd"].as_f64().unwrap_or(-1.0);
        ensure!(
            (cost - 0.08).abs() < 1e-9,
            "{temporality}: cost {cost}: {run}"
        );
        ensure!(run["agent_id"] == "claude-code", "{run}");
        // Three intervals with usage (the repeated collection and the
        // repeated exports add nothing).
        ensure!(run["event_count"] == 3, "{temporality}: {run}");
    }

    // Codex's turn histograms (`e2e/python/codex_metrics.py`): no
    // conversation id, so one run per agent; OpenAI's token convention.
    for (n, temporality) in [(1, "cumulative"), (2, "delta")] {
        run(&stack, "codex_metrics.py", temporality).await?;
        let want = [
            ("input_tokens", 900 * n),
            ("cache_read_tokens", 1_500 * n),
            ("output_tokens", 400 * n),
            ("reasoning_tokens", 150 * n),
        ];
        let got = stack
            .eventually(Duration::from_secs(60), "codex usage projected", || async {
                let r = stack.get("/v1/runs/codex-unknown-session").await.ok();
                Ok(r.filter(|r| r["event_count"] == json!(3 * n)))
            })
            .await
            .with_context(|| format!("codex {temporality}"))?;
        for (field, want) in want {
            ensure!(
                got[field] == json!(want),
                "codex {temporality} {field}: {got}"
            );
        }
        let cost = got["cost_usd"].as_f64().unwrap_or(-1.0);
        ensure!(
            (cost - 0.04 * n as f64).abs() < 1e-9,
            "codex {temporality}: cost {cost}: {got}"
        );
        ensure!(got["agent_id"] == "codex_exec", "{got}");
    }

    // The default source is the logs: the same counters are ignored.
    let logs_mode = Stack::start("otlp_metrics_logs", StackOptions::default()).await?;
    export(&logs_mode, "cumulative").await?;
    let g = Component::Gateway;
    let ignored = logs_mode
        .metric(g, "agentops_gateway_otlp_metric_points_ignored_total", "")
        .await?;
    ensure!(ignored >= 6.0, "ignored points {ignored}");
    let accepted = logs_mode
        .metric(g, "agentops_gateway_events_accepted_total", "")
        .await?;
    ensure!(
        accepted == 0.0,
        "{accepted} events accepted from metrics in logs mode"
    );
    Ok(())
}
