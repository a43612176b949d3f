//! `GET /v1/metrics/cost` and `GET /v1/metrics/compare` on a known mix:
//! each group's spend, runs and unpriced calls equal a direct count over the
//! events of the same whole hours (the breakdowns' window), for windows read
//! from the hours only, from hours and days, from days only and from minutes
//! and hours; the groups (top N plus `(other)`) and the series add up to the
//! spend of those hours; tag groups (read from the per-tag levels) follow
//! the events' attribute, a run at the window's start counted over its
//! whole first hour, with hourly points when asked for minutes; unpriced
//! calls are counted by model; the previous window of the comparison equals
//! the events of that range and the current one the overview; bad
//! parameters answer 400 naming the parameter (a tag key the per-tag
//! levels do not hold too, listing those they do); another org sees none
//! of it.

use std::collections::BTreeMap;
use std::time::Duration;

use agentops_e2e::events::id;
use agentops_e2e::{Stack, StackOptions};
use anyhow::{ensure, Result};
use chrono::{DateTime, Duration as Span, DurationRound, Utc};
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

/// Expected per key, from the stored events since `from`: cost, finished
/// runs, unpriced calls.
async fn expected(
    stack: &Stack,
    dim: &str,
    from: DateTime<Utc>,
) -> Result<BTreeMap<String, (f64, i64, i64)>> {
    let rows: Vec<(String, f64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT COALESCE(NULLIF({dim}, ''), '(none)'), COALESCE(sum(cost_usd), 0)::float8,
                count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::int8,
                count(*) FILTER (WHERE type = 'llm_call' AND cost_usd IS NULL)::int8
         FROM events WHERE ts >= $1 GROUP BY 1"
    ))
    .bind(from)
    .fetch_all(&stack.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(k, c, r, u)| (k, (c, r, u)))
        .collect())
}

/// Where a breakdown of `window` starts now, per the database's clock:
/// whole hours for 6 hours or more, whole days for 20 days or more; tag
/// groups always whole hours.
async fn breakdown_start(stack: &Stack, window: &str, tag: bool) -> Result<DateTime<Utc>> {
    let (interval, unit) = match window {
        "3h" => ("3 hours", if tag { "hour" } else { "" }),
        "24h" => ("24 hours", "hour"),
        "7d" => ("7 days", "hour"),
        "30d" => ("30 days", "day"),
        _ => anyhow::bail!("no bound for {window}"),
    };
    let sql = if unit.is_empty() {
        format!("SELECT now() - interval '{interval}'")
    } else {
        format!(
            "SELECT date_trunc('{unit}', (now() - interval '{interval}') AT TIME ZONE 'UTC')
                    AT TIME ZONE 'UTC'"
        )
    };
    Ok(sqlx::query_scalar(&sql).fetch_one(&stack.pool).await?)
}

/// `path`'s answer and the window's start it was computed over (asked
/// again if an hour went by meanwhile).
async fn at_start(
    stack: &Stack,
    path: &str,
    window: &str,
    tag: bool,
) -> Result<(Value, DateTime<Utc>)> {
    loop {
        let before = breakdown_start(stack, window, tag).await?;
        let body = stack.get(path).await?;
        if window == "3h" && !tag {
            // To the minute, and no event near it.
            return Ok((body, before));
        }
        if breakdown_start(stack, window, tag).await? == before {
            return Ok((body, before));
        }
    }
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
    // One costly run of team `ops` in the hour where the 24 h window
    // starts, before its first minute: in the breakdowns' whole hours,
    // not in the overview's window.
    let day = now - Span::hours(24);
    let hour = day.duration_trunc(Span::hours(1))?;
    let at = (hour + (day - hour) / 2).to_rfc3339();
    let attrs = json!({"team": "ops"});
    for mut e in [
        json!({"type": "run_started", "timestamp": at}),
        json!({"type": "llm_call", "timestamp": at, "provider": "openai", "model": "gpt-4o",
               "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.8125, "status": "ok"}),
        json!({"type": "run_completed", "timestamp": at, "latency_ms": 900, "status": "ok"}),
    ] {
        e["event_id"] = json!(id());
        e["agent_id"] = json!("agent-edge");
        e["run_id"] = json!("ce-edge");
        e["workflow_id"] = json!("wf-edge");
        e["attributes"] = attrs.clone();
        events.push(e);
    }
    stack.send_all(&events, 100).await?;
    let total = events.len() as i64;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == total).then_some(()))
        })
        .await?;
    let overview = stack.get("/v1/metrics/overview?window=24h").await?;
    ensure!(f(&overview["cost_usd"]) > 0.0, "{overview}");

    for (group, dim) in [
        ("agent", "agent_id"),
        ("workflow", "workflow_id"),
        ("model", "model"),
        ("provider", "provider"),
        ("tag:team", "attributes->>'team'"),
    ] {
        let tag = group.starts_with("tag:");
        // Hours only (one pass over them), hours and days, days only,
        // minutes and hours (tags: hours, their levels have no minutes).
        for (window, bucket) in [("24h", "1h"), ("7d", "1h"), ("30d", "1d"), ("3h", "15m")] {
            let case = format!("{group} {window} {bucket}");
            let (body, from) = at_start(
                &stack,
                &format!("/v1/metrics/cost?group={group}&window={window}&bucket={bucket}&limit=2"),
                window,
                tag,
            )
            .await?;
            let want = expected(&stack, dim, from).await?;
            let spend: f64 = want.values().map(|v| v.0).sum();
            ensure!(spend > 0.0, "{case}: no events");
            ensure!(body["group"] == group, "{case}: {body}");
            let answered = if tag && bucket == "15m" { "1h" } else { bucket };
            ensure!(body["bucket"] == answered, "{case}: {body}");
            let groups = body["groups"].as_array().cloned().unwrap_or_default();
            ensure!(groups.len() <= 3, "{case}: top 2 and (other): {body}");
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
                    "{case}: {g} vs {cost}"
                );
                ensure!(
                    g["runs"] == runs && g["unpriced_calls"] == unpriced,
                    "{case}: {g} vs runs {runs}, unpriced {unpriced}"
                );
                named += cost;
            }
            ensure!(
                (sum - spend).abs() < 1e-9,
                "{case}: groups {sum} vs the events' {spend}"
            );
            // Largest first; `(other)` is what the top 2 leave.
            let mut costs: Vec<f64> = want.values().map(|v| v.0).collect();
            costs.sort_by(|a, b| b.total_cmp(a));
            let top2: f64 = costs.iter().take(2).sum();
            ensure!((named - top2).abs() < 1e-9, "{case}: top {named} vs {top2}");
            // The series: every key at every point, adding up to the spend.
            let series = body["series"].as_array().cloned().unwrap_or_default();
            let total: f64 = series.iter().map(|p| f(&p["cost_usd"])).sum();
            ensure!(
                (total - spend).abs() < 1e-9,
                "{case}: series {total} vs {spend}"
            );
            ensure!(
                series.len() % groups.len().max(1) == 0,
                "{case}: dense series"
            );
            // Each key's points add up to its spend.
            for g in &groups {
                let key = g["key"].as_str().unwrap_or_default();
                let points: f64 = series
                    .iter()
                    .filter(|p| p["key"] == key)
                    .map(|p| f(&p["cost_usd"]))
                    .sum();
                ensure!(
                    (points - f(&g["cost_usd"])).abs() < 1e-9,
                    "{case}: {key}'s points {points} vs {g}"
                );
            }
        }
    }

    // Tag groups with room for every key: the values of the same hours
    // (ops, pay, search) and (none).
    let (body, from) = at_start(
        &stack,
        "/v1/metrics/cost?group=tag:team&limit=10",
        "24h",
        true,
    )
    .await?;
    let mut keys: Vec<&str> = body["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["key"].as_str()).collect())
        .unwrap_or_default();
    keys.sort();
    let want = expected(&stack, "attributes->>'team'", from).await?;
    ensure!(
        keys == want.keys().map(String::as_str).collect::<Vec<_>>(),
        "{body} vs {want:?}"
    );
    ensure!(keys.contains(&"(none)") && keys.len() >= 3, "{body}");

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
        ("/v1/metrics/cost?group=tag:team&bucket=2h", "bucket"),
        ("/v1/metrics/cost?group=tag:cost_center", "group"),
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
        if path.contains("cost_center") {
            // The keys the per-tag levels hold (the defaults here).
            let message = body["error"]["message"].as_str().unwrap_or_default();
            ensure!(
                message.contains("team, project, env, customer"),
                "{path}: {body}"
            );
        }
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
