//! End-to-end: gateway → Kafka → processors → projections → query API, on the
//! real broker and Postgres, each component its own process.

use std::time::{Duration, Instant};

use agentops_e2e::events::{self, LLM_CALL_COST};
use agentops_e2e::webhook::Receiver;
use agentops_e2e::{Component, Stack, StackOptions};
use serde_json::{json, Value};

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// Nearest-rank quantile of exact values.
fn exact_quantile(mut v: Vec<i64>, q: f64) -> f64 {
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1] as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_counts_a_known_mix_exactly() -> anyhow::Result<()> {
    let stack = Stack::start("overview", StackOptions::default()).await?;
    // 200 runs x 5 events = 1,000 events; every 5th run fails (40 failures).
    let (events, failed, latencies) = events::fleet(200, 17, 5, "ov");
    assert_eq!(events.len(), 1000);
    stack.send_all(&events, 100).await?;
    let want_cost = 400.0 * LLM_CALL_COST;
    let overview = stack
        .eventually(
            Duration::from_secs(60),
            "overview shows all 1,000 events",
            || async {
                let o = stack.get("/v1/metrics/overview?window=24h").await?;
                Ok((o["events"] == json!(1000)).then_some(o))
            },
        )
        .await?;
    assert_eq!(overview["runs"], json!(200), "{overview}");
    assert_eq!(overview["failed"], json!(failed), "{overview}");
    assert_eq!(overview["succeeded"], json!(200 - failed), "{overview}");
    assert!(
        approx(overview["success_rate"].as_f64().unwrap(), 0.8),
        "{overview}"
    );
    assert!(
        approx(overview["cost_usd"].as_f64().unwrap(), want_cost),
        "cost {overview} want {want_cost}"
    );
    assert_eq!(overview["errors_last_hour"], json!(failed), "{overview}");
    assert_eq!(overview["active_agents"], json!(17), "{overview}");
    for (q, name) in [(0.5, "p50"), (0.95, "p95")] {
        let exact = exact_quantile(latencies.clone(), q);
        let got = overview["latency_ms"][name].as_f64().unwrap();
        assert!(
            (got / exact - 1.0).abs() < 0.2,
            "{name}: got {got}, exact {exact}"
        );
    }

    // The timeseries holds the same totals, zero-filled over the window.
    let series = stack
        .get("/v1/metrics/timeseries?metric=runs&bucket=1h&window=24h")
        .await?;
    let points = series["points"].as_array().unwrap();
    assert!(points.len() >= 24, "{series}");
    let total: f64 = points.iter().map(|p| p["value"].as_f64().unwrap()).sum();
    assert_eq!(total, 200.0);
    assert!(
        points.iter().filter(|p| p["value"] == json!(0.0)).count() >= 22,
        "zero-filled: {series}"
    );
    let errors = stack
        .get("/v1/metrics/timeseries?metric=errors&bucket=5m&window=1h")
        .await?;
    let total: f64 = errors["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .sum();
    assert_eq!(total, failed as f64);

    // A run's detail and timeline.
    let run = stack.get("/v1/runs/ov-run-0").await?;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["llm_calls"], 2);
    assert_eq!(run["events"].as_array().unwrap().len(), 5);
    assert!(approx(
        run["cost_usd"].as_f64().unwrap(),
        2.0 * LLM_CALL_COST
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_run_appears_in_recent_failures_within_5s() -> anyhow::Result<()> {
    let stack = Stack::start("failures", StackOptions::default()).await?;
    // Warm the pipeline so consumer-group joins are behind us.
    stack
        .send_all(&events::run("agent-warm", "warm-1", false, 100, 5), 10)
        .await?;
    stack
        .eventually(Duration::from_secs(60), "warm-up projected", || async {
            Ok((stack.event_rows().await? == 5).then_some(()))
        })
        .await?;
    let mut failing = events::run("agent-x", "doomed-run", true, 1234, 0);
    // An errored LLM call inside the run: the run still shows once, as its run_failed event.
    failing[2]["status"] = json!("error");
    let failed_id = failing[4]["event_id"].as_str().unwrap().to_owned();
    stack.send_all(&failing, 10).await?;
    let acked = Instant::now();
    let mut seen = None;
    while acked.elapsed() < Duration::from_secs(5) {
        let f = stack.get("/v1/failures/recent?limit=5").await?;
        if f["failures"][0]["event_id"] == json!(failed_id) {
            seen = Some(f);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let f = seen.ok_or_else(|| {
        anyhow::anyhow!("failed run not in /v1/failures/recent within 5 s of its 202")
    })?;
    assert_eq!(f["failures"][0]["run_id"], "doomed-run");
    assert_eq!(f["failures"][0]["error_type"], "tool_error");
    assert_eq!(
        f["failures"].as_array().unwrap().len(),
        1,
        "one row for the failed run: {f}"
    );
    assert_eq!(f["failures"][0]["type"], "run_failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_webhook_fires_exactly_once_across_two_processors_and_a_restart(
) -> anyhow::Result<()> {
    let hook = Receiver::start(0).await?;
    let mut stack = Stack::start(
        "budget",
        StackOptions {
            processors: 2,
            ..Default::default()
        },
    )
    .await?;
    // $1/day; each run costs 2 x LLM_CALL_COST = $0.009, so the 112th run crosses it.
    // Through the API: the legacy endpoint validates the URL against the
    // query API's `notify.allow_destinations` (the stack allows loopback).
    let answer = stack
        .http
        .put(format!("{}/v1/admin/budget", stack.query_url))
        .bearer_auth(&stack.admin_key)
        .json(&serde_json::json!({"daily_usd": 1.0, "webhook_url": hook.url}))
        .send()
        .await?;
    anyhow::ensure!(answer.status() == 200, "{:?}", answer.text().await);
    let (crossing, _, _) = events::fleet(120, 10, 0, "b1");
    stack.send_all(&crossing, 100).await?;
    let first = stack
        .eventually(
            Duration::from_secs(60),
            "budget webhook received",
            || async { Ok(hook.received().first().cloned()) },
        )
        .await?;
    // The MVP endpoint's budget: one alert at 100%, on a Slack-compatible channel.
    let text = first.body["text"].as_str().unwrap_or_default();
    assert!(text.contains("Budget 'default'"), "{:?}", first.body);
    assert!(text.contains("exceeded"), "{:?}", first.body);
    assert!(first.body["blocks"].is_array(), "{:?}", first.body);
    assert_eq!(
        first.headers["x-agentops-alert-id"]
            .to_str()?
            .rsplit(':')
            .next(),
        Some("100")
    );

    // 5,000 more events, with one processor SIGKILLed and restarted in the middle.
    let (more, _, _) = events::fleet(1000, 10, 0, "b2");
    stack.send_all(&more[..2500], 100).await?;
    stack.kill(Component::Processors, 0)?;
    stack.restart(Component::Processors, 0).await?;
    stack.send_all(&more[2500..], 100).await?;
    stack
        .eventually(
            Duration::from_secs(90),
            "all 5,600 events projected",
            || async { Ok((stack.event_rows().await? == 5600).then_some(())) },
        )
        .await?;
    // Give both budget checkers several more rounds over the now-final spend.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        hook.received().len(),
        1,
        "exactly one POST: {:?}",
        hook.received()
    );
    let notified: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alerts WHERE notified_at IS NOT NULL")
            .fetch_one(&stack.pool)
            .await?;
    assert_eq!(notified, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_sigkilled_mid_stream_count_every_event_once() -> anyhow::Result<()> {
    let mut stack = Stack::start(
        "crash",
        StackOptions {
            // Small batches so the kill lands between many committed transactions.
            env: vec![("AGENTOPS_BATCH_MAX".into(), "50".into())],
            ..Default::default()
        },
    )
    .await?;
    let (events, failed, _) = events::fleet(1000, 25, 10, "cr");
    // Stream all 5,000 events (plus a client retry of one batch) from a task,
    // and SIGKILL the projection worker while they flow.
    let ingest = stack.ingest();
    let to_send = events.clone();
    let sender = tokio::spawn(async move {
        for chunk in to_send.chunks(100) {
            ingest.send_all(chunk, 100).await?;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        ingest.send_all(&to_send[1000..1100], 100).await
    });
    stack
        .eventually(Duration::from_secs(60), "projection under way", || async {
            Ok((stack.event_rows().await? >= 500).then_some(()))
        })
        .await?;
    stack.kill(Component::Projections, 0)?;
    let at_kill = stack.event_rows().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.restart(Component::Projections, 0).await?;
    sender.await??;
    stack
        .eventually(
            Duration::from_secs(90),
            "all 5,000 events projected",
            || async { Ok((stack.event_rows().await? == 5000).then_some(())) },
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        at_kill < 5000,
        "the kill must land mid-stream (had {at_kill})"
    );
    let row: (i64, i64, i64, i64, f64) = sqlx::query_as(
        "SELECT sum(events)::int8, sum(runs_completed)::int8, sum(runs_failed)::int8, sum(llm_calls)::int8, sum(cost_usd)
         FROM agg_1m",
    )
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(row.0, 5000, "aggregate events");
    assert_eq!(row.1 + row.2, 1000, "aggregate runs");
    assert_eq!(row.2, failed as i64, "aggregate failures");
    assert_eq!(row.3, 2000, "aggregate llm calls");
    assert!(
        approx(row.4, 2000.0 * LLM_CALL_COST),
        "aggregate cost {}",
        row.4
    );
    assert_eq!(stack.event_rows().await?, 5000, "no duplicate event rows");
    let runs: (i64, i64) = sqlx::query_as("SELECT count(*), sum(llm_calls)::int8 FROM runs")
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(runs, (1000, 2000), "runs table");
    let o = stack.get("/v1/metrics/overview?window=24h").await?;
    assert_eq!(o["runs"], json!(1000));
    assert_eq!(o["failed"], json!(failed));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_good_events_are_kept() -> anyhow::Result<()> {
    let stack = Stack::start("badinput", StackOptions::default()).await?;
    let good = || events::run("agent-ok", &format!("r-{}", events::id()), false, 100, 1)[0].clone();

    // Malformed JSON.
    let (s, b) = stack
        .post_raw(
            "/v1/events",
            b"{\"events\": [".to_vec(),
            Some(&stack.ingest_key),
        )
        .await?;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["code"], "invalid_json", "{b}");
    // A missing field, named.
    let mut e = good();
    e.as_object_mut().unwrap().remove("agent_id");
    let (s, b) = stack.post_events(&e).await?;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["rejected"][0]["field"], "agent_id", "{b}");
    assert!(b["rejected"][0]["error"]
        .as_str()
        .unwrap()
        .contains("required"));
    // A wrong type, named.
    let mut e = good();
    e["input_tokens"] = json!("lots");
    let (s, b) = stack.post_events(&e).await?;
    assert_eq!(s, 400);
    assert_eq!(b["rejected"][0]["field"], "input_tokens", "{b}");
    // 1,001 events.
    let many: Vec<Value> = (0..1001).map(|_| good()).collect();
    let (s, b) = stack.post_events(&json!({ "events": many })).await?;
    assert_eq!(s, 413);
    assert_eq!(b["error"]["code"], "batch_too_large", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("1001"));
    // An oversized body (over 1 MiB).
    let mut big = good();
    big["error_message"] = json!("x".repeat(1_100_000));
    let (s, b) = stack.post_events(&big).await?;
    assert_eq!(s, 413);
    assert_eq!(b["error"]["code"], "body_too_large", "{b}");
    // No key; an unknown key; a read key cannot ingest.
    let body = serde_json::to_vec(&good())?;
    let (s, b) = stack.post_raw("/v1/events", body.clone(), None).await?;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["code"], "missing_api_key", "{b}");
    let (s, _) = stack
        .post_raw("/v1/events", body.clone(), Some("aok_00000000_nope"))
        .await?;
    assert_eq!(s, 401);
    let (s, b) = stack
        .post_raw("/v1/events", body, Some(&stack.read_key))
        .await?;
    assert_eq!(s, 403, "{b}");
    // A mixed batch: the good ones are accepted and end up projected.
    let mut batch: Vec<Value> = (0..10).map(|_| good()).collect();
    batch[3]["timestamp"] = json!("not a time");
    batch[7] = json!("not an object");
    let (s, b) = stack.post_events(&json!({ "events": batch })).await?;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["accepted"], 8);
    let rejected = b["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(
        (rejected[0]["index"].clone(), rejected[0]["field"].clone()),
        (json!(3), json!("timestamp"))
    );
    assert_eq!(rejected[1]["index"], 7);
    stack
        .eventually(
            Duration::from_secs(60),
            "the 8 good events projected",
            || async { Ok((stack.event_rows().await? == 8).then_some(())) },
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.event_rows().await?,
        8,
        "nothing from the rejected requests was written"
    );
    // Query API: bad parameters are named too, and another org's run is 404.
    let r = stack
        .http
        .get(format!(
            "{}/v1/metrics/overview?window=forever",
            stack.query_url
        ))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await?;
    assert_eq!(b["error"]["field"], "window");
    let r = stack
        .http
        .get(format!("{}/v1/runs/nope", stack.query_url))
        .bearer_auth(&stack.read_key)
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let r = stack
        .http
        .get(format!("{}/v1/metrics/overview", stack.query_url))
        .bearer_auth(&stack.ingest_key)
        .send()
        .await?;
    assert_eq!(r.status(), 403, "an ingest key cannot read");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_answers_503_with_retry_after_when_the_broker_is_down() -> anyhow::Result<()> {
    let dead = agentops_e2e::free_port();
    let stack = Stack::start(
        "nobroker",
        StackOptions::gateway_only(vec![
            (
                "AGENTOPS_KAFKA__BROKERS".into(),
                format!("127.0.0.1:{dead}"),
            ),
            ("AGENTOPS_PRODUCE_TIMEOUT_MS".into(), "1500".into()),
        ]),
    )
    .await?;
    let e = events::run("a", "r", false, 1, 1)[0].clone();
    let r = stack
        .http
        .post(format!("{}/v1/events", stack.gateway_url))
        .bearer_auth(&stack.ingest_key)
        .json(&e)
        .send()
        .await?;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let b: Value = r.json().await?;
    assert_eq!(b["error"]["code"], "unavailable", "{b}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_shut_down_gracefully_and_expose_metrics() -> anyhow::Result<()> {
    let mut stack = Stack::start("lifecycle", StackOptions::default()).await?;
    stack
        .send_all(&events::run("a", "r1", false, 10, 1), 10)
        .await?;
    stack
        .eventually(Duration::from_secs(60), "projected", || async {
            Ok((stack.event_rows().await? == 5).then_some(()))
        })
        .await?;
    let m = stack
        .http
        .get(stack.metrics_url(Component::Gateway, 0))
        .send()
        .await?
        .text()
        .await?;
    assert!(m.contains("agentops_gateway_events_accepted_total"), "{m}");
    let m = stack
        .http
        .get(stack.metrics_url(Component::Projections, 0))
        .send()
        .await?
        .text()
        .await?;
    assert!(m.contains("agentops_projection_events_total"), "{m}");
    for c in [
        Component::Gateway,
        Component::Processors,
        Component::Projections,
        Component::QueryApi,
    ] {
        let status = stack.terminate(c, 0)?;
        assert!(status.success(), "{c:?} exited with {status} on SIGTERM");
    }
    Ok(())
}
