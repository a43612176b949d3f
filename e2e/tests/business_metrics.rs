//! Business metrics on `/metrics` (issue 16, item 6), per org and never per
//! agent or event: events accepted and rejected at the gateway, spend and
//! unpriced events at the processors, freshness at the projections, and the
//! query API's gauges read from the store (spend of the day and month,
//! unpriced calls, budget percent, firing alerts, paused agents), which fall
//! back to 0 when their rows go.

use std::time::Duration;

use agentops_e2e::{events, Component, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use chrono::Utc;
use serde_json::{json, Value};

async fn admin_post(stack: &Stack, path: &str, body: Value) -> Result<Value> {
    let r = stack
        .http
        .post(format!("{}{path}", stack.query_url))
        .bearer_auth(&stack.admin_key)
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    ensure!(status.is_success(), "{path}: {status} {v}");
    Ok(v)
}

fn llm(agent: &str, model: &str, input: i64, output: i64) -> Value {
    json!({"event_id": events::id(), "type": "llm_call", "agent_id": agent,
           "timestamp": Utc::now().to_rfc3339(), "provider": "openai", "model": model,
           "input_tokens": input, "output_tokens": output, "status": "ok"})
}

/// Wait until `c`'s `name{..labels..}` equals `want` (within 1e-9).
async fn gauge_is(stack: &Stack, c: Component, name: &str, labels: &str, want: f64) -> Result<()> {
    let what = format!("{name}{{{labels}}} = {want}");
    stack
        .eventually(Duration::from_secs(60), &what, || async {
            let v = stack.metric(c, name, labels).await?;
            Ok(((v - want).abs() < 1e-9).then_some(()))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_metrics_per_org() -> Result<()> {
    let stack = Stack::start(
        "business_metrics",
        StackOptions {
            env: vec![
                ("AGENTOPS_BUSINESS_METRICS_INTERVAL_SECS".into(), "1".into()),
                ("AGENTOPS_BUDGET_CHECK_INTERVAL_MS".into(), "200".into()),
            ],
            ..Default::default()
        },
    )
    .await?;
    let org = format!("org=\"{}\"", stack.org_id);

    // Four priced calls (gpt-4o: 1,000 x $2.50/M + 100 x $10/M = $0.0035
    // each, processors/prices.toml), one of a model without a price, and one
    // event refused by validation (no agent).
    let mut batch: Vec<Value> = (0..4)
        .map(|_| llm("bm-agent", "gpt-4o", 1000, 100))
        .collect();
    batch.push(llm("bm-agent", "bm-unknown-model-x", 500, 50));
    let mut bad = llm("bm-agent", "gpt-4o", 1, 1);
    bad.as_object_mut().context("object")?.remove("agent_id");
    batch.push(bad);
    let (status, body) = stack.post_events(&json!({ "events": batch })).await?;
    ensure!(status == 202 && body["accepted"] == 5, "{status} {body}");
    let spend = 4.0 * 0.0035;

    // A day budget of $0.01 for the whole org: 140 % (two thresholds crossed,
    // two firing alerts).
    admin_post(
        &stack,
        "/v1/admin/budgets",
        json!({"name": "bm-day", "period": "day", "limit_usd": 0.01, "scope_kind": "org"}),
    )
    .await?;
    admin_post(
        &stack,
        "/v1/admin/agents/bm-agent/pause",
        json!({"reason": "metrics test"}),
    )
    .await?;

    let gw = Component::Gateway;
    gauge_is(
        &stack,
        gw,
        "agentops_gateway_events_accepted_total",
        &org,
        5.0,
    )
    .await?;
    gauge_is(
        &stack,
        gw,
        "agentops_gateway_events_rejected_total",
        &org,
        1.0,
    )
    .await?;
    let p = Component::Processors;
    gauge_is(
        &stack,
        p,
        "agentops_processor_spend_microusd_total",
        &org,
        spend * 1e6,
    )
    .await?;
    gauge_is(
        &stack,
        p,
        "agentops_processor_unpriced_events_total",
        &org,
        1.0,
    )
    .await?;

    let q = Component::QueryApi;
    let day = format!("{org},period=\"day\"");
    let month = format!("{org},period=\"month\"");
    gauge_is(&stack, q, "agentops_org_spend_usd", &day, spend).await?;
    gauge_is(&stack, q, "agentops_org_spend_usd", &month, spend).await?;
    gauge_is(&stack, q, "agentops_org_unpriced_calls", &day, 1.0).await?;
    let budget = format!("{org},budget=\"bm-day\"");
    gauge_is(
        &stack,
        q,
        "agentops_budget_used_percent",
        &budget,
        spend / 0.01 * 100.0,
    )
    .await?;
    let paused = format!("{org},action=\"pause\"");
    gauge_is(&stack, q, "agentops_agents_controlled", &paused, 1.0).await?;
    gauge_is(&stack, q, "agentops_alerts_firing", &org, 2.0).await?;

    // Freshness: the projections timed the batch from the gateway's ack.
    let pj = Component::Projections;
    let delays = stack
        .metric(pj, "agentops_projection_delay_seconds_count", "")
        .await?;
    ensure!(delays >= 1.0, "projection delay histogram count {delays}");
    let text = stack
        .http
        .get(stack.metrics_url(pj, 0))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        text.lines()
            .any(|l| l.starts_with("agentops_projection_freshness_seconds")),
        "no freshness gauge:\n{text}"
    );

    // Rows that go take their series to 0: resume the agent, acknowledge an alert.
    admin_post(&stack, "/v1/admin/agents/bm-agent/resume", json!({})).await?;
    gauge_is(&stack, q, "agentops_agents_controlled", &paused, 0.0).await?;
    let firing = stack.get("/v1/alerts?state=firing&limit=10").await?;
    let id = firing["alerts"][0]["alert_id"]
        .as_str()
        .context("a firing alert")?
        .to_owned();
    admin_post(
        &stack,
        &format!("/v1/alerts/{id}/ack"),
        json!({"note": "seen"}),
    )
    .await?;
    gauge_is(&stack, q, "agentops_alerts_firing", &org, 1.0).await?;

    // Labels stay per org: no agent, run, model or event id in any series.
    for c in [gw, p, q, pj] {
        let text = stack
            .http
            .get(stack.metrics_url(c, 0))
            .send()
            .await?
            .text()
            .await?;
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            for needle in ["bm-agent", "bm-unknown-model", "agent_id=", "event_id="] {
                ensure!(!l.contains(needle), "{c:?} exports {needle}: {l}");
            }
        }
    }
    Ok(())
}
