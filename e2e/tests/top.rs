//! `GET /v1/metrics/top` on a known mix: by cost and by runs, per agent and
//! per model, each row's figures equal a direct count over the events, the
//! rows add up to the overview, ordering and limits hold, bad parameters
//! answer 400 naming the parameter.

use std::collections::HashMap;
use std::time::Duration;

use agentops_e2e::events;
use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Result};
use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_agents_and_models_match_the_events() -> Result<()> {
    let stack = Stack::start("top", StackOptions::default()).await?;
    let (evs, failed, _) = events::fleet(70, 7, 5, "top");
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == 350).then_some(()))
        })
        .await?;

    // Expected per agent from the events themselves.
    #[derive(sqlx::FromRow)]
    struct Expected {
        agent_id: String,
        runs: i64,
        failed: i64,
        cost: f64,
    }
    let expected: Vec<Expected> = sqlx::query_as(
        "SELECT agent_id,
                count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::int8 AS runs,
                count(*) FILTER (WHERE type = 'run_failed')::int8 AS failed,
                COALESCE(sum(cost_usd), 0)::float8 AS cost
         FROM events GROUP BY agent_id",
    )
    .fetch_all(&stack.pool)
    .await?;
    let by_agent: HashMap<&str, &Expected> =
        expected.iter().map(|e| (e.agent_id.as_str(), e)).collect();

    let top = stack
        .get("/v1/metrics/top?by=cost&window=24h&limit=100")
        .await?;
    let rows = top["top"].as_array().cloned().unwrap_or_default();
    ensure!(rows.len() == 7, "{top}");
    let mut total_cost = 0.0;
    let mut total_failed = 0;
    for (i, r) in rows.iter().enumerate() {
        let agent = r["agent"].as_str().unwrap_or_default();
        let e = by_agent
            .get(agent)
            .ok_or_else(|| anyhow::anyhow!("{agent}?"))?;
        ensure!(r["runs"] == e.runs && r["failed"] == e.failed, "{r}");
        ensure!((f(&r["cost_usd"]) - e.cost).abs() < 1e-9, "{r}");
        ensure!(
            f(&r["latency_ms"]["p95"]) >= f(&r["latency_ms"]["p50"]),
            "{r}"
        );
        if i > 0 {
            ensure!(
                f(&rows[i - 1]["cost_usd"]) >= f(&r["cost_usd"]),
                "not by cost: {top}"
            );
        }
        total_cost += f(&r["cost_usd"]);
        total_failed += r["failed"].as_i64().unwrap_or_default();
    }
    let overview = stack.get("/v1/metrics/overview?window=24h").await?;
    ensure!(
        (total_cost - f(&overview["cost_usd"])).abs() < 1e-6,
        "{overview}"
    );
    ensure!(total_failed == failed as i64, "{total_failed} vs {failed}");

    let by_runs = stack.get("/v1/metrics/top?by=runs&limit=3").await?;
    let rows = by_runs["top"].as_array().cloned().unwrap_or_default();
    ensure!(rows.len() == 3, "{by_runs}");
    ensure!(
        rows.windows(2)
            .all(|w| w[0]["runs"].as_i64() >= w[1]["runs"].as_i64()),
        "{by_runs}"
    );

    let models = stack.get("/v1/metrics/top?group=model").await?;
    let rows = models["top"].as_array().cloned().unwrap_or_default();
    ensure!(
        !rows.is_empty() && rows.iter().all(|r| r["model"].is_string()),
        "{models}"
    );

    for (query, field) in [
        ("by=tokens", "by"),
        ("group=team", "group"),
        ("window=1y", "window"),
        ("limit=1000", "limit"),
    ] {
        let r = stack
            .http
            .get(format!("{}/v1/metrics/top?{query}", stack.query_url))
            .bearer_auth(&stack.read_key)
            .send()
            .await?;
        ensure!(r.status() == 400, "{query}: {}", r.status());
        let body: Value = r.json().await?;
        ensure!(body["error"]["field"] == field, "{query}: {body}");
    }
    Ok(())
}
