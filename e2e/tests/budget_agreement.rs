//! The budget status the console reads and the crossings the processors
//! alert on come from one function (`agentops_governance::spend::spend_in_scope`)
//! and agree on a crafted stream (issue 13): at every step the thresholds
//! the status says are crossed are exactly those alerted, for an org scope
//! and a tag scope, and spend before the period counts for neither.

use std::time::Duration;

use agentops_e2e::{events, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

/// (spend, thresholds crossed) of budget `id` as `GET /v1/budgets/status` says.
async fn status(stack: &Stack, id: &str) -> Result<(f64, Vec<f64>)> {
    let v = stack.get("/v1/budgets/status").await?;
    let b = v["budgets"]
        .as_array()
        .and_then(|a| a.iter().find(|b| b["id"] == id))
        .context("budget in the status")?;
    let crossed = b["thresholds_crossed"]
        .as_array()
        .context("crossed")?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    Ok((b["spend_usd"].as_f64().unwrap_or(-1.0), crossed))
}

/// Thresholds the processors alerted on for budget `id`.
async fn alerted(stack: &Stack, id: &str) -> Result<Vec<f64>> {
    Ok(sqlx::query_scalar(
        // Stored as a fraction of the limit.
        "SELECT round((threshold * 100)::numeric, 6)::float8 FROM alerts
         WHERE source_id = $1::uuid ORDER BY threshold",
    )
    .bind(id)
    .fetch_all(&stack.pool)
    .await?)
}

fn spend(cost: f64, at: chrono::DateTime<chrono::Utc>, tagged: bool) -> Value {
    let mut e = json!({"event_id": events::id(), "type": "llm_call", "agent_id": "a1",
        "run_id": "r1", "timestamp": at.to_rfc3339(), "provider": "openai", "model": "gpt-4o",
        "input_tokens": 10, "cost_usd": cost});
    if tagged {
        e["attributes"] = json!({"team": "pay"});
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_status_and_budget_alerts_agree_at_every_step() -> Result<()> {
    let stack = Stack::start(
        "budget_agree",
        StackOptions {
            env: vec![
                ("AGENTOPS_BUDGET_CHECK_INTERVAL_MS".into(), "200".into()),
                ("AGENTOPS_GOVERNANCE_RELOAD_MS".into(), "200".into()),
            ],
            ..Default::default()
        },
    )
    .await?;
    let org = stack
        .create_budget(
            &json!({"name": "org", "period": "day", "limit_usd": 1.0, "thresholds": [50, 100]}),
        )
        .await?;
    let tag = stack
        .create_budget(
            &json!({"name": "team", "period": "day", "limit_usd": 1.0, "thresholds": [50, 100],
                    "scope_kind": "tag", "scope_value": "team=pay"}),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the budgets are loaded
    let now = chrono::Utc::now();
    // Before the period: counted by neither.
    let yesterday = now - chrono::Duration::days(1);
    let steps: [(Vec<Value>, f64, Vec<f64>); 3] = [
        (vec![spend(5.0, yesterday, true)], 0.0, vec![]),
        (
            vec![spend(0.3, now, true), spend(0.3, now, true)],
            0.6,
            vec![50.0],
        ),
        (vec![spend(0.5, now, true)], 1.1, vec![50.0, 100.0]),
    ];
    for (batch, want_spend, want_crossed) in steps {
        let (status_code, body) = stack.post_events(&json!({ "events": batch })).await?;
        ensure!(status_code == 202, "{status_code} {body}");
        for id in [&org, &tag] {
            // The status reaches the step's spend...
            let (spent, crossed) = stack
                .eventually(
                    Duration::from_secs(30),
                    "the status at this step",
                    || async {
                        let s = status(&stack, id).await?;
                        Ok(((s.0 - want_spend).abs() < 1e-9).then_some(s))
                    },
                )
                .await?;
            ensure!(
                crossed == want_crossed,
                "{id}: status says {crossed:?} at {spent}"
            );
            if want_crossed.is_empty() {
                // Nothing may be alerted: give the checker a few ticks to err.
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            // ...and the processors alert on exactly what it says is crossed.
            let got = stack
                .eventually(
                    Duration::from_secs(30),
                    "the alerts at this step",
                    || async {
                        let a = alerted(&stack, id).await?;
                        Ok((a == want_crossed).then_some(a))
                    },
                )
                .await;
            ensure!(
                got.is_ok(),
                "{id}: alerts {:?}, status crossed {want_crossed:?}",
                alerted(&stack, id).await?
            );
        }
    }
    Ok(())
}
