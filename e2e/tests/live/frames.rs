//! Frames of the caller's org only, filtered by agent and type; alerts,
//! budget crossings and agent controls.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_the_callers_org_and_follow_the_filter() -> Result<()> {
    let stack = Stack::start("live_frames", StackOptions::default()).await?;
    let (_, b_keys) = other_org(&stack).await?;
    feed_streaming(&stack).await?;
    let q = "";
    let mut all = open_key(&stack, q, &stack.read_key).await?;
    let mut by_agent = open_key(&stack, "?agent_id=agent-x", &stack.read_key).await?;
    let mut failed_only = open_key(&stack, "?types=run.failed", &stack.read_key).await?;
    let mut other = open_key(&stack, q, &b_keys[1]).await?;
    // The key as a subprotocol (browsers), and a filter sent later.
    let proto = format!("agentops.v1, agentops.key.{}", stack.read_key);
    let mut resubscribed = open(&stack, q, &[("sec-websocket-protocol", &proto)]).await?;
    resubscribed
        .send(Message::text(
            json!({"subscribe": {"agent_id": ["agent-y"], "types": ["run.started"]}}).to_string(),
        ))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sent_at = Instant::now();
    post(
        &stack,
        &stack.ingest_key,
        &events::run("agent-x", "a-r1", true, 900, 0),
    )
    .await?;
    post(
        &stack,
        &stack.ingest_key,
        &events::run("agent-y", "a-r2", false, 400, 0),
    )
    .await?;
    post(
        &stack,
        &b_keys[0],
        &events::run("agent-x", "b-r1", true, 700, 0),
    )
    .await?;

    let quiet = Duration::from_secs(2);
    let got = frames(&mut all, 4, quiet).await?;
    eprintln!("first frames within {:?}", sent_at.elapsed());
    let mut seen = types(&got);
    seen.sort();
    ensure!(
        seen == [
            "run.completed:a-r2",
            "run.failed:a-r1",
            "run.started:a-r1",
            "run.started:a-r2"
        ],
        "{got:?}"
    );
    let failed = got
        .iter()
        .find(|f| f["type"] == "run.failed")
        .context("run.failed")?;
    ensure!(failed["v"] == 1, "{failed}");
    ensure!(
        chrono::DateTime::parse_from_rfc3339(failed["ts"].as_str().unwrap_or("")).is_ok(),
        "{failed}"
    );
    let d = &failed["data"];
    ensure!(
        d["run_id"] == "a-r1"
            && d["agent_id"] == "agent-x"
            && d["workflow_id"] == "wf-e2e"
            && d["status"] == "error"
            && d["latency_ms"] == 900
            && d["error_type"] == "tool_error"
            && d["error_message"] == "run a-r1 failed: search tool timed out",
        "{failed}"
    );
    let got = frames(&mut by_agent, 2, quiet).await?;
    ensure!(
        got.iter()
            .all(|f| f["data"]["agent_id"] == "agent-x" && f["data"]["run_id"] == "a-r1"),
        "{got:?}"
    );
    ensure!(got.len() == 2, "{got:?}");
    let got = frames(&mut failed_only, 1, quiet).await?;
    ensure!(types(&got) == ["run.failed:a-r1"], "{got:?}");
    let got = frames(&mut resubscribed, 1, quiet).await?;
    ensure!(types(&got) == ["run.started:a-r2"], "{got:?}");
    let got = frames(&mut other, 2, quiet).await?;
    let mut seen = types(&got);
    seen.sort();
    ensure!(seen == ["run.failed:b-r1", "run.started:b-r1"], "{got:?}");

    // A budget alert on the alerts topic: alert.fired and budget.crossed,
    // about agent-x; the digest is no frame.
    for (id, source) in [("al-digest", "digest"), ("al-1", "budget")] {
        stack
            .produce_alert(&json!({
                "alert_id": id, "org_id": stack.org_id, "source": source, "source_id": "bud-1",
                "kind": "budget_exceeded", "scope_key": "agent=agent-x", "transition": "firing",
                "severity": "critical", "period": "2026-11-22", "threshold": 10.0, "value": 12.5,
                "message": "agent-x spent $12.50 of $10.00", "details": {}, "channels": [],
                "occurred_at": chrono::Utc::now().to_rfc3339(),
            }))
            .await?;
    }
    let got = frames(&mut by_agent, 2, quiet).await?;
    let kinds: Vec<&str> = got.iter().filter_map(|f| f["type"].as_str()).collect();
    ensure!(kinds == ["alert.fired", "budget.crossed"], "{got:?}");
    ensure!(
        got[1]["data"]["budget_id"] == "bud-1" && got[1]["data"]["spend_usd"] == 12.5,
        "{got:?}"
    );
    ensure!(
        got[0]["data"]["alert_id"] == "al-1" && got[0]["data"]["severity"] == "critical",
        "{got:?}"
    );

    // Pause and resume through the API: agent.paused, agent.resumed.
    for action in ["pause", "resume"] {
        let r = stack
            .http
            .post(format!(
                "{}/v1/admin/agents/agent-x/{action}",
                stack.query_url
            ))
            .bearer_auth(&stack.admin_key)
            .header("content-type", "application/json")
            .body(if action == "pause" {
                r#"{"reason":"live test"}"#
            } else {
                "{}"
            })
            .send()
            .await?;
        ensure!(r.status().is_success(), "{action}: {}", r.status());
        let f = next_frame(&mut by_agent, Duration::from_secs(10))
            .await?
            .context("control frame")?;
        let want = if action == "pause" {
            "agent.paused"
        } else {
            "agent.resumed"
        };
        ensure!(
            f["type"] == want && f["data"]["agent_id"] == "agent-x",
            "{f}"
        );
    }
    // The other org saw none of it.
    ensure!(next_frame(&mut other, quiet).await?.is_none());
    let _ = all.close(None).await;
    Ok(())
}
