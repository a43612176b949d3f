//! `POST /v1/metrics` through the whole pipeline (issue 17, item 1): the
//! real OpenTelemetry Python SDK's OTLP/HTTP metric exporter records Claude
//! Code's usage counters (`e2e/python/claude_code_metrics.py`) in cumulative
//! and in delta temporality, every export twice, with a collection that adds
//! nothing and an exporter restart (counters from 0, a new start time): the
//! session's tokens and spend are exact. With `otlp_usage_source = logs`
//! (the default) the same counters are ignored, so usage exported both as
//! logs and as metrics never counts twice.

use std::time::Duration;

use agentops_e2e::python::run_script;
use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::json;

/// Run the exporter script; the session id.
async fn export(stack: &Stack, temporality: &str) -> Result<String> {
    let endpoint = format!("{}/v1/metrics", stack.gateway_url);
    let args = [
        "--endpoint",
        &endpoint,
        "--key",
        &stack.ingest_key,
        "--temporality",
        temporality,
    ];
    let line = run_script("claude_code_metrics.py", &args).await?;
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
