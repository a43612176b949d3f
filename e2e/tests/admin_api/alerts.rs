//! Alerts: list, detail, acknowledge (once), and policy violations.

use super::*;

#[tokio::test]
async fn alerts_acknowledge_and_violations() -> Result<()> {
    let api = Api::start("admin_alerts").await?;
    let (a, b) = (&api.a, &api.b);
    let ok = StatusCode::OK;
    let hook = api
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/admin/channels",
            &a.admin,
            Some(
                json!({"name": "hook", "kind": "webhook", "url": "https://hooks.test/h",
                        "secret": "0123456789abcdef0123456789abcdef"}),
            ),
        )
        .await?;
    ensure!(
        hook["secret"] == json!("0123456789abcdef0123456789abcdef"),
        "{hook}"
    );
    let hook_id: uuid::Uuid = hook["id"].as_str().context("id")?.parse()?;
    for (id, state, age) in [
        ("rule:r1:org:1", "firing", 60),
        ("budget:b1:2026-11:100", "resolved", 120),
    ] {
        sqlx::query(
            "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message,
                                 source, scope_key, state, created_at, resolved_at)
             VALUES ($1, $2, 'error_rate', '', 0.25, 0.5, 'error rate 50%', 'rule', 'org', $3,
                     now() - $4 * interval '1 second',
                     CASE WHEN $3 = 'resolved' THEN now() END)",
        )
        .bind(id)
        .bind(&a.id)
        .bind(state)
        .bind(age)
        .execute(&api.pool)
        .await?;
        sqlx::query(
            "INSERT INTO alert_history (alert_id, state, actor) VALUES ($1, 'firing', 'rule')",
        )
        .bind(id)
        .execute(&api.pool)
        .await?;
    }
    sqlx::query(
        "INSERT INTO alert_deliveries (alert_id, channel_id, transition, attempts, delivered_at)
         VALUES ('rule:r1:org:1', $1, 'firing', 1, now())",
    )
    .bind(hook_id)
    .execute(&api.pool)
    .await?;

    let all = api.expect(ok, "GET", "/v1/alerts", &a.read, None).await?;
    let ids: Vec<&str> = all["alerts"]
        .as_array()
        .context("alerts")?
        .iter()
        .filter_map(|x| x["alert_id"].as_str())
        .collect();
    ensure!(
        ids == ["rule:r1:org:1", "budget:b1:2026-11:100"],
        "newest first: {all}"
    );
    let firing = api
        .expect(ok, "GET", "/v1/alerts?state=firing&limit=5", &a.read, None)
        .await?;
    ensure!(
        firing["alerts"].as_array().map(Vec::len) == Some(1),
        "{firing}"
    );
    let (status, v) = api
        .call("GET", "/v1/alerts?state=open", &a.read, None)
        .await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && v["error"]["field"] == json!("state"),
        "{v}"
    );
    let none = api.expect(ok, "GET", "/v1/alerts", &b.read, None).await?;
    ensure!(none["alerts"] == json!([]), "{none}");

    let path = "/v1/alerts/rule:r1:org:1";
    let detail = api.expect(ok, "GET", path, &a.read, None).await?;
    ensure!(detail["state"] == json!("firing"), "{detail}");
    ensure!(
        detail["history"].as_array().map(Vec::len) == Some(1),
        "{detail}"
    );
    let d = &detail["deliveries"][0];
    ensure!(
        d["channel_name"] == json!("hook")
            && d["attempts"] == json!(1)
            && d["transition"] == json!("firing")
            && d["delivered_at"].is_string(),
        "{detail}"
    );
    api.expect(StatusCode::NOT_FOUND, "GET", path, &b.read, None)
        .await?;

    // Acknowledge: admin scope; another org's alert is 404.
    let ack = format!("{path}/ack");
    api.expect(StatusCode::FORBIDDEN, "POST", &ack, &a.read, None)
        .await?;
    api.expect(StatusCode::NOT_FOUND, "POST", &ack, &b.admin, None)
        .await?;
    api.expect_400("POST", &ack, json!({"note": 5}), "note")
        .await?;
    let acked = api
        .expect(
            ok,
            "POST",
            &ack,
            &a.admin,
            Some(json!({"note": "looking into it"})),
        )
        .await?;
    ensure!(
        acked["state"] == json!("acknowledged") && acked["acked_at"].is_string(),
        "{acked}"
    );
    ensure!(
        acked["acked_by"]
            .as_str()
            .is_some_and(|s| s.starts_with("admin:")),
        "{acked}"
    );
    let history = acked["history"].as_array().context("history")?;
    ensure!(history.len() == 2, "{acked}");
    ensure!(
        history[1]["state"] == json!("acknowledged")
            && history[1]["note"] == json!("looking into it")
            && history[1]["actor"] == acked["acked_by"],
        "{acked}"
    );
    let again = api
        .expect(StatusCode::CONFLICT, "POST", &ack, &a.admin, None)
        .await?;
    ensure!(
        again["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already acknowledged")),
        "{again}"
    );
    let resolved = api
        .expect(
            StatusCode::CONFLICT,
            "POST",
            "/v1/alerts/budget:b1:2026-11:100/ack",
            &a.admin,
            None,
        )
        .await?;
    ensure!(
        resolved["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("resolved")),
        "{resolved}"
    );
    api.expect(
        StatusCode::NOT_FOUND,
        "POST",
        "/v1/alerts/nope/ack",
        &a.admin,
        None,
    )
    .await?;
    let acks = api.audit_actions(&a.id).await?;
    ensure!(
        acks.iter().filter(|x| *x == "alert.ack").count() == 1,
        "{acks:?}"
    );

    // Policy violations, newest first, with the event.
    let policy = api
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/admin/policies",
            &a.admin,
            Some(json!({"name": "no shell", "kind": "forbidden_tools", "names": ["shell"]})),
        )
        .await?;
    let policy_id: uuid::Uuid = policy["id"].as_str().context("id")?.parse()?;
    for (agent, age) in [("a1", 30), ("a2", 20), ("a1", 10)] {
        sqlx::query(
            "INSERT INTO policy_violations (policy_id, event_id, org_id, agent_id, run_id, ts,
                                            action, detail, event)
             VALUES ($1, $2, $3, $4, 'r1', now() - $5 * interval '1 second', 'flag',
                     'tool `shell` is forbidden', $6)",
        )
        .bind(policy_id)
        .bind(uuid::Uuid::new_v4())
        .bind(&a.id)
        .bind(agent)
        .bind(age)
        .bind(json!({"type": "tool_call", "tool_name": "shell", "agent_id": agent}))
        .execute(&api.pool)
        .await?;
    }
    let v = api
        .expect(
            ok,
            "GET",
            "/v1/policy-violations?agent_id=a1&limit=10",
            &a.read,
            None,
        )
        .await?;
    let rows = v["violations"].as_array().context("violations")?;
    ensure!(rows.len() == 2, "{v}");
    ensure!(
        rows[0]["timestamp"].as_str() > rows[1]["timestamp"].as_str(),
        "{v}"
    );
    ensure!(
        rows[0]["policy_name"] == json!("no shell")
            && rows[0]["event"]["tool_name"] == json!("shell"),
        "{v}"
    );
    let v = api
        .expect(ok, "GET", "/v1/policy-violations?limit=1", &a.read, None)
        .await?;
    ensure!(v["violations"].as_array().map(Vec::len) == Some(1), "{v}");
    let v = api
        .expect(ok, "GET", "/v1/policy-violations", &b.read, None)
        .await?;
    ensure!(v["violations"] == json!([]), "{v}");
    Ok(())
}
