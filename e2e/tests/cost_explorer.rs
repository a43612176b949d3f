//! `GET /v1/metrics/cost` and `GET /v1/metrics/compare` on a known mix:
//! each group's spend, runs and unpriced calls equal a direct count over the
//! events, the groups (top N plus `(other)`) and the series add up to the
//! overview's spend, tag groups follow the events' attribute, unpriced calls
//! are counted by model, the previous window of the comparison equals the
//! events of that range and the current one the overview; bad parameters
//! answer 400 naming the parameter; another org sees none of it.

use std::collections::BTreeMap;
use std::time::Duration;

use agentops_e2e::events::id;
use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Result};
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{json, Value};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// One run of `agent` started `age` seconds ago: two LLM calls (one priced
/// by the client, one of a model without a price every third run), the end.
fn run(i: usize, agent: &str, age: i64, now: DateTime<Utc>) -> Vec<Value> {
    let t = |ms: i64| (now - Span::seconds(age) + Span::milliseconds(ms)).to_rfc3339();
    let team = ["pay", "search", ""][i % 3];
    let attrs = if team.is_empty() {
        json!({})
    } else {
        json!({"team": team})
    };
    let run_id = format!("ce-{i:03}");
    let workflow = (!i.is_multiple_of(4)).then(|| format!("wf-{}", i % 2));
    let (provider, model) = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4")][i % 2];
    let mut out = vec![
        json!({"event_id": id(), "type": "run_started", "agent_id": agent, "run_id": run_id,
               "workflow_id": workflow, "timestamp": t(0), "attributes": attrs}),
        json!({"event_id": id(), "type": "llm_call", "agent_id": agent, "run_id": run_id,
               "workflow_id": workflow, "timestamp": t(1), "attributes": attrs,
               "provider": provider, "model": model, "input_tokens": 100, "output_tokens": 10,
               "cost_usd": ((i % 7) + 1) as f64 / 256.0, "status": "ok"}),
    ];
    if i.is_multiple_of(3) {
        out.push(
            json!({"event_id": id(), "type": "llm_call", "agent_id": agent, "run_id": run_id,
               "workflow_id": workflow, "timestamp": t(2), "attributes": attrs,
               "provider": "acme", "model": "mystery-llm", "input_tokens": 50,
               "output_tokens": 5, "status": "ok"}),
        );
    }
    let failed = i.is_multiple_of(5);
    out.push(
        json!({"event_id": id(), "type": if failed { "run_failed" } else { "run_completed" },
           "agent_id": agent, "run_id": run_id, "workflow_id": workflow, "timestamp": t(3),
           "attributes": attrs, "latency_ms": 100 + 37 * i as i64,
           "status": if failed { "error" } else { "ok" }}),
    );
    out
}

/// Expected per key, from the stored events: cost, finished runs, unpriced calls.
async fn expected(stack: &Stack, dim: &str) -> Result<BTreeMap<String, (f64, i64, i64)>> {
    let rows: Vec<(String, f64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT COALESCE(NULLIF({dim}, ''), '(none)'), COALESCE(sum(cost_usd), 0)::float8,
                count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::int8,
                count(*) FILTER (WHERE type = 'llm_call' AND cost_usd IS NULL)::int8
         FROM events WHERE ts >= now() - interval '24 hours' GROUP BY 1"
    ))
    .fetch_all(&stack.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(k, c, r, u)| (k, (c, r, u)))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_groups_series_unpriced_and_comparison_match_the_events() -> Result<()> {
    let stack = Stack::start("cost_explorer", StackOptions::default()).await?;
    let now = Utc::now();
    // 40 runs in the current hour (10 to 40 minutes old), 20 in the one
    // before (80 to 100 minutes old): far from both windows' edges.
    let mut events = Vec::new();
    for i in 0..60 {
        let age = if i < 40 {
            600 + 45 * i as i64
        } else {
            4800 + 60 * (i as i64 - 40)
        };
        events.extend(run(i, &format!("agent-{}", i % 6), age, now));
    }
    stack.send_all(&events, 100).await?;
    let total = events.len() as i64;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == total).then_some(()))
        })
        .await?;
    let overview = stack.get("/v1/metrics/overview?window=24h").await?;
    let spend = f(&overview["cost_usd"]);
    ensure!(spend > 0.0, "{overview}");

    for (group, dim) in [
        ("agent", "agent_id"),
        ("workflow", "workflow_id"),
        ("model", "model"),
        ("provider", "provider"),
        ("tag:team", "attributes->>'team'"),
    ] {
        let want = expected(&stack, dim).await?;
        let body = stack
            .get(&format!(
                "/v1/metrics/cost?group={group}&window=24h&bucket=1h&limit=2"
            ))
            .await?;
        ensure!(body["group"] == group, "{body}");
        let groups = body["groups"].as_array().cloned().unwrap_or_default();
        ensure!(groups.len() <= 3, "top 2 and (other): {body}");
        let mut named = 0.0;
        let mut sum = 0.0;
        for g in &groups {
            let key = g["key"].as_str().unwrap_or_default();
            sum += f(&g["cost_usd"]);
            if key == "(other)" {
                continue;
            }
            let (cost, runs, unpriced) = want.get(key).copied().unwrap_or_default();
            ensure!(
                (f(&g["cost_usd"]) - cost).abs() < 1e-9,
                "{group} {g} vs {cost}"
            );
            ensure!(
                g["runs"] == runs && g["unpriced_calls"] == unpriced,
                "{group} {g}"
            );
            named += cost;
        }
        ensure!(
            (sum - spend).abs() < 1e-9,
            "{group}: groups {sum} vs overview {spend}"
        );
        // Largest first; `(other)` is what the top 2 leave.
        let mut costs: Vec<f64> = want.values().map(|v| v.0).collect();
        costs.sort_by(|a, b| b.total_cmp(a));
        let top2: f64 = costs.iter().take(2).sum();
        ensure!(
            (named - top2).abs() < 1e-9,
            "{group}: top {named} vs {top2}"
        );
        // The series: every key at every hour, adding up to the spend.
        let series = body["series"].as_array().cloned().unwrap_or_default();
        let total: f64 = series.iter().map(|p| f(&p["cost_usd"])).sum();
        ensure!(
            (total - spend).abs() < 1e-9,
            "{group}: series {total} vs {spend}"
        );
        ensure!(
            series.len() % groups.len().max(1) == 0,
            "{group}: dense series"
        );
    }

    // Tag groups with room for every key: pay, search and (none).
    let body = stack
        .get("/v1/metrics/cost?group=tag:team&limit=10")
        .await?;
    let keys: Vec<&str> = body["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["key"].as_str()).collect())
        .unwrap_or_default();
    let mut sorted = keys.clone();
    sorted.sort();
    ensure!(sorted == ["(none)", "pay", "search"], "{body}");

    // Unpriced calls: every third run's mystery model.
    let unpriced = &body["unpriced"];
    ensure!(unpriced["calls"] == 20, "{body}");
    ensure!(
        unpriced["models"] == json!([{"provider": "acme", "model": "mystery-llm", "calls": 20}]),
        "{body}"
    );

    // The comparison: current = the overview; previous = the events of its range.
    let cmp = stack.get("/v1/metrics/compare?window=1h").await?;
    let current = &cmp["current"];
    let ov = stack.get("/v1/metrics/overview?window=1h").await?;
    for k in ["runs", "failed", "succeeded", "events", "active_agents"] {
        ensure!(current[k] == ov[k], "{k}: {cmp} vs {ov}");
    }
    ensure!((f(&current["cost_usd"]) - f(&ov["cost_usd"])).abs() < 1e-9);
    ensure!(current["runs"] == 40, "{cmp}");
    let prev = &cmp["previous"];
    let from: DateTime<Utc> = prev["from"].as_str().unwrap_or_default().parse()?;
    let to: DateTime<Utc> = prev["to"].as_str().unwrap_or_default().parse()?;
    ensure!(to - from == Span::hours(1), "{cmp}");
    ensure!(current["from"] == prev["to"], "{cmp}");
    let (runs, failed, cost, events, agents): (i64, i64, f64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::int8,
                count(*) FILTER (WHERE type = 'run_failed')::int8,
                COALESCE(sum(cost_usd), 0)::float8, count(*)::int8,
                count(DISTINCT agent_id)::int8
         FROM events WHERE ts >= $1 AND ts < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&stack.pool)
    .await?;
    ensure!(
        runs == 20 && prev["runs"] == runs && prev["failed"] == failed,
        "{cmp}"
    );
    ensure!(
        prev["events"] == events && prev["active_agents"] == agents,
        "{cmp}"
    );
    ensure!((f(&prev["cost_usd"]) - cost).abs() < 1e-9, "{cmp}");
    ensure!(
        f(&prev["latency_ms"]["p95"]) >= f(&prev["latency_ms"]["p50"]),
        "{cmp}"
    );

    // Bad parameters.
    for (path, field) in [
        ("/v1/metrics/cost?group=team", "group"),
        ("/v1/metrics/cost?group=tag:", "group"),
        ("/v1/metrics/cost?window=1y", "window"),
        ("/v1/metrics/cost?group=tag:team&window=31d", "window"),
        ("/v1/metrics/cost?bucket=2h", "bucket"),
        ("/v1/metrics/cost?window=30d&bucket=1m", "bucket"),
        ("/v1/metrics/cost?limit=26", "limit"),
        ("/v1/metrics/compare?window=91d", "window"),
    ] {
        let r = stack
            .http
            .get(format!("{}{path}", stack.query_url))
            .bearer_auth(&stack.read_key)
            .send()
            .await?;
        ensure!(r.status() == 400, "{path}: {}", r.status());
        let body: Value = r.json().await?;
        ensure!(body["error"]["field"] == field, "{path}: {body}");
    }

    // Another org: nothing.
    let org = format!("{}-other", stack.org_id);
    let keys =
        agentops_query_api::admin::create_org_with_keys(&stack.pool, &org, "Other", "e2e").await?;
    let r = stack
        .http
        .get(format!(
            "{}/v1/metrics/cost?group=tag:team",
            stack.query_url
        ))
        .bearer_auth(&keys[1].secret)
        .send()
        .await?;
    let body: Value = r.json().await?;
    ensure!(
        body["groups"] == json!([]) && body["unpriced"]["calls"] == 0,
        "{body}"
    );
    Ok(())
}
