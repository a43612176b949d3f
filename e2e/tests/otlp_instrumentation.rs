//! Real instrumentation in (issue 16, item 4): the OpenTelemetry project's
//! OpenAI instrumentation (`opentelemetry-instrumentation-openai-v2`, PyPI)
//! around the real `openai` client calling a local OpenAI-compatible server,
//! exporting over OTLP/HTTP to the gateway (`e2e/python/openai_instrumented.py`).
//! The application writes no usage attribute: the run, its calls, tokens and
//! cost come from what the instrumentation emits.

use std::time::Duration;

use agentops_e2e::python::run_script;
use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_instrumentation_lands_as_a_priced_run() -> Result<()> {
    let stack = Stack::start("otlp_openai_v2", StackOptions::default()).await?;
    let endpoint = format!("{}/v1/traces", stack.gateway_url);
    let line = run_script(
        "openai_instrumented.py",
        &["--endpoint", &endpoint, "--key", &stack.ingest_key],
    )
    .await?;
    let trace = line["trace_id"].as_str().context("trace_id")?.to_owned();
    // What the instrumentation wrote (printed for the record when this fails).
    let attrs = &line["attributes"];

    let run = stack
        .eventually(Duration::from_secs(60), "run projected", || async {
            let r = stack.get(&format!("/v1/runs/{trace}")).await.ok();
            Ok(r.filter(|r| r["event_count"] == json!(4) && r["status"] == "completed"))
        })
        .await
        .with_context(|| format!("spans: {attrs}"))?;
    ensure!(run["agent_id"] == "instrumented-agent", "{run}");
    ensure!(run["llm_calls"] == 2, "{run}");
    // The instrumentation's chat path reports prompt and completion totals
    // only (no cached or reasoning split): they are input and output.
    let tokens = [
        ("input_tokens", 12_000 + 3_000),
        ("output_tokens", 800 + 1_500),
        ("cache_read_tokens", 0),
        ("reasoning_tokens", 0),
    ];
    for (field, want) in tokens {
        ensure!(run[field] == json!(want), "{field}: {run}\nspans: {attrs}");
    }
    // processors/prices.toml: gpt-4o (the dated model by prefix) $2.50/$10,
    // o3-mini $1.10/$4.40 per million.
    let gpt = 12_000.0 * 2.50e-6 + 800.0 * 10.0e-6;
    let mini = 3_000.0 * 1.10e-6 + 1_500.0 * 4.40e-6;
    let cost = run["cost_usd"].as_f64().unwrap_or(-1.0);
    ensure!(
        (cost - (gpt + mini)).abs() < 1e-9,
        "cost {cost}, want {}",
        gpt + mini
    );
    let models: Vec<&str> = run["events"]
        .as_array()
        .context("timeline")?
        .iter()
        .filter(|e| e["type"] == "llm_call")
        .filter_map(|e| e["model"].as_str())
        .collect();
    ensure!(models == ["gpt-4o-2024-08-06", "o3-mini"], "{models:?}");
    for e in run["events"].as_array().context("timeline")? {
        if e["type"] == "llm_call" {
            ensure!(
                e["cost_source"] == "computed" && e["provider"] == "openai",
                "{e}"
            );
        }
    }
    Ok(())
}
