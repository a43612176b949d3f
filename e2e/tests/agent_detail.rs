//! `GET /v1/agents/{agent_id}` on a known mix: status and control after a
//! pause, the window's totals and models equal a direct count over the
//! events, recent runs and failures are the latest by start, exactly the
//! budgets whose scope covers the agent are listed (with their percent),
//! an unknown agent and another org's agent answer 404.

use std::collections::BTreeSet;
use std::time::Duration;

use agentops_e2e::events;
use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Result};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_detail_matches_the_events_and_its_budgets() -> Result<()> {
    let stack = Stack::start("agent_detail", StackOptions::default()).await?;
    // 30 runs over 3 agents, every 4th failed, a minute apart; agent-0's
    // runs carry the tag team=pay.
    let mut evs = Vec::new();
    for i in 0..30usize {
        let agent = format!("agent-{}", i % 3);
        let mut run = events::run(
            &agent,
            &format!("ad-{i:03}"),
            i % 4 == 0,
            500 + 10 * i as i64,
            300 + 60 * i as i64,
        );
        if i % 3 == 0 {
            for e in &mut run {
                e["attributes"] = json!({"team": "pay"});
            }
        }
        evs.extend(run);
    }
    stack.send_all(&evs, 100).await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == 150).then_some(()))
        })
        .await?;

    for (scope_kind, scope_value) in [
        ("org", None),
        ("agent", Some("agent-0")),
        ("agent", Some("agent-1")),
        ("tag", Some("team=pay")),
        ("tag", Some("team=ops")),
        ("model", Some("gpt-4o")),
        ("workflow", Some("wf-e2e")),
        ("workflow", Some("wf-other")),
    ] {
        let name = format!("{scope_kind}-{}", scope_value.unwrap_or("all"));
        admin_post(
            &stack,
            "/v1/admin/budgets",
            json!({
                "name": name, "period": "day", "limit_usd": 10,
                "scope_kind": scope_kind, "scope_value": scope_value,
            }),
        )
        .await?;
    }
    admin_post(
        &stack,
        "/v1/admin/agents/agent-0/pause",
        json!({"reason": "too costly"}),
    )
    .await?;

    let a = stack.get("/v1/agents/agent-0?window=24h").await?;
    ensure!(a["agent_id"] == "agent-0" && a["status"] == "paused", "{a}");
    ensure!(
        a["control"]["action"] == "pause" && a["control"]["reason"] == "too costly",
        "{a}"
    );
    ensure!(
        a["control"]["set_by"]
            .as_str()
            .is_some_and(|b| b.starts_with("admin:")),
        "{a}"
    );
    ensure!(a["last_seen"].is_string(), "{a}");

    let (runs, failed, cost, llm): (i64, i64, f64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::int8,
                count(*) FILTER (WHERE type = 'run_failed')::int8,
                COALESCE(sum(cost_usd), 0)::float8,
                count(*) FILTER (WHERE type = 'llm_call')::int8
         FROM events WHERE agent_id = 'agent-0'",
    )
    .fetch_one(&stack.pool)
    .await?;
    let t = &a["totals"];
    ensure!(
        t["runs"] == runs && t["failed"] == failed && t["llm_calls"] == llm,
        "{a}"
    );
    ensure!(
        (t["cost_usd"].as_f64().unwrap_or(-1.0) - cost).abs() < 1e-9,
        "{a}"
    );
    ensure!(
        t["latency_ms"]["p95"].as_f64() >= t["latency_ms"]["p50"].as_f64(),
        "{a}"
    );
    ensure!(
        a["models"]
            == json!([{"provider": "openai", "model": "gpt-4o", "llm_calls": llm, "cost_usd": a["models"][0]["cost_usd"]}]),
        "{a}"
    );
    ensure!(
        (a["models"][0]["cost_usd"].as_f64().unwrap_or(-1.0) - cost).abs() < 1e-9,
        "{a}"
    );
    ensure!(a["workflows"] == json!(["wf-e2e"]), "{a}");
    let series_runs: i64 = a["series"]
        .as_array()
        .map_or(0, |s| s.iter().filter_map(|p| p["runs"].as_i64()).sum());
    ensure!(series_runs == runs, "{a}");

    // agent-0 ran i = 0, 3, ..., 27; the newest start first (smallest age).
    let ids = |v: &Value| -> Vec<String> {
        v.as_array().map_or(vec![], |r| {
            r.iter()
                .filter_map(|r| r["run_id"].as_str().map(String::from))
                .collect()
        })
    };
    let want: Vec<String> = (0..30)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("ad-{i:03}"))
        .collect();
    ensure!(ids(&a["recent_runs"]) == want, "{a}");
    let want: Vec<String> = (0..30)
        .filter(|i| i % 3 == 0 && i % 4 == 0)
        .map(|i| format!("ad-{i:03}"))
        .collect();
    ensure!(ids(&a["recent_failures"]) == want, "{a}");
    ensure!(a["recent_runs"][0]["tags"] == json!({"team": "pay"}), "{a}");

    let keys: BTreeSet<&str> = a["budgets"].as_array().map_or(BTreeSet::new(), |b| {
        b.iter().filter_map(|b| b["scope_key"].as_str()).collect()
    });
    let want: BTreeSet<&str> = [
        "org",
        "agent=agent-0",
        "tag=team=pay",
        "model=gpt-4o",
        "workflow=wf-e2e",
    ]
    .into();
    ensure!(keys == want, "{keys:?}");
    for b in a["budgets"].as_array().into_iter().flatten() {
        ensure!(b["percent"].is_number() && b["limit_usd"] == 10.0, "{b}");
    }
    ensure!(a["violations"] == json!([]), "{a}");

    // The run page: the agent's directive, the run's models, tokens per step.
    let run = stack.get("/v1/runs/ad-003").await?;
    ensure!(
        run["control"]["action"] == "pause" && run["control"]["reason"] == "too costly",
        "{run}"
    );
    ensure!(
        run["models"] == json!(["gpt-4o"]) && run["providers"] == json!(["openai"]),
        "{run}"
    );
    ensure!(
        run["tags"] == json!({"team": "pay"}) && run["event_count"] == 5,
        "{run}"
    );
    let llm: Vec<&Value> = run["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "llm_call")
        .collect();
    ensure!(llm.len() == 2, "{run}");
    for e in llm {
        ensure!(
            e["input_tokens"] == 1000 && e["output_tokens"] == 200 && e["provider"] == "openai",
            "{e}"
        );
        ensure!(
            (e["cost_usd"].as_f64().unwrap_or(-1.0) - events::LLM_CALL_COST).abs() < 1e-12,
            "{e}"
        );
    }
    let failed = stack.get("/v1/runs/ad-000").await?;
    let end = failed["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    ensure!(
        end["type"] == "run_failed"
            && end["error_type"] == "tool_error"
            && end["status"] == "error",
        "{end}"
    );
    ensure!(stack.get("/v1/runs/ad-001").await?["control"].is_null());

    // agent-1: not paused, its own budgets.
    let b = stack.get("/v1/agents/agent-1").await?;
    ensure!(b["status"] != "paused" && b["control"].is_null(), "{b}");
    let keys: BTreeSet<&str> = b["budgets"].as_array().map_or(BTreeSet::new(), |b| {
        b.iter().filter_map(|b| b["scope_key"].as_str()).collect()
    });
    ensure!(
        keys == ["org", "agent=agent-1", "model=gpt-4o", "workflow=wf-e2e"].into(),
        "{keys:?}"
    );

    // Unknown agent, bad window, another org.
    for (path, status) in [
        ("/v1/agents/agent-9", 404),
        ("/v1/agents/agent-0?window=1y", 400),
    ] {
        let r = stack
            .http
            .get(format!("{}{path}", stack.query_url))
            .bearer_auth(&stack.read_key)
            .send()
            .await?;
        ensure!(r.status() == status, "{path}: {}", r.status());
    }
    let org = format!("{}-other", stack.org_id);
    let keys =
        agentops_query_api::admin::create_org_with_keys(&stack.pool, &org, "Other", "e2e").await?;
    let r = stack
        .http
        .get(format!("{}/v1/agents/agent-0", stack.query_url))
        .bearer_auth(&keys[1].secret)
        .send()
        .await?;
    ensure!(r.status() == 404, "{}", r.status());
    let body: Value = r.json().await?;
    ensure!(body["error"]["code"] == "not_found", "{body}");
    Ok(())
}
