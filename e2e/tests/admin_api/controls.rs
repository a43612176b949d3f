//! Agent controls as `GET /v1/agents` sees them, and budget status.

use super::*;

#[tokio::test]
async fn agent_controls_and_budget_status() -> Result<()> {
    let api = Api::start("admin_status").await?;
    let (a, b) = (&api.a, &api.b);
    let ok = StatusCode::OK;

    // Spend through the projection writer: today (in every current period)
    // and yesterday (outside today's).
    let now = Utc::now();
    let today = period_start(Period::Day, now).max(now - Span::seconds(60));
    let mut e1 = enriched_event(&a.id, "llm_call", "a1", "r1", today);
    e1.model = Some("gpt-4o".into());
    e1.workflow_id = Some("wf".into());
    e1.cost_usd = Some(1.25);
    e1.attributes = [("team".to_string(), "pay".to_string())].into();
    let mut e2 = enriched_event(&a.id, "llm_call", "a2", "r2", today);
    e2.model = Some("m2".into());
    e2.cost_usd = Some(0.75);
    let mut old = enriched_event(
        &a.id,
        "llm_call",
        "a-old",
        "r0",
        period_start(Period::Day, now) - Span::hours(1),
    );
    old.cost_usd = Some(100.0);
    let mut other = enriched_event(&b.id, "llm_call", "a1", "rb", today);
    other.cost_usd = Some(5.0);
    other.attributes = [("team".to_string(), "pay".to_string())].into();
    let mut writer = Writer::new(agentops_runtime::storage::Mode::Postgres, "admin-test");
    let mut conn = api.pool.acquire().await?;
    writer
        .apply(&mut conn, &[e1, e2, old, other], &[("admin".into(), 0, 0)])
        .await?;
    writer.settle(&mut conn).await?;
    drop(conn);

    let budgets = [
        json!({"name": "org day", "period": "day", "limit_usd": 4, "thresholds": [25, 50, 100],
               "pause_at_pct": 50}),
        json!({"name": "a1 week", "period": "week", "limit_usd": 10,
               "scope_kind": "agent", "scope_value": "a1"}),
        json!({"name": "m2 month", "period": "month", "limit_usd": 10,
               "scope_kind": "model", "scope_value": "m2"}),
        json!({"name": "wf day", "period": "day", "limit_usd": 10,
               "scope_kind": "workflow", "scope_value": "wf"}),
        json!({"name": "pay day", "period": "day", "limit_usd": 10,
               "scope_kind": "tag", "scope_value": "team=pay"}),
    ];
    for body in budgets {
        api.expect(
            StatusCode::CREATED,
            "POST",
            "/v1/admin/budgets",
            &a.admin,
            Some(body),
        )
        .await?;
    }
    let status = api
        .expect(ok, "GET", "/v1/budgets/status", &a.read, None)
        .await?;
    let rows = status["budgets"].as_array().context("budgets")?;
    let row = |name: &str| rows.iter().find(|r| r["name"] == json!(name)).cloned();
    for (name, spend) in [
        ("org day", 2.0),
        ("a1 week", 1.25),
        ("m2 month", 0.75),
        ("wf day", 1.25),
        ("pay day", 1.25),
    ] {
        let r = row(name).with_context(|| format!("{name} in {status}"))?;
        ensure!(approx(&r["spend_usd"], spend), "{name}: {r}");
    }
    let org = row("org day").context("org day")?;
    ensure!(approx(&org["percent"], 50.0), "{org}");
    ensure!(nums(&org["thresholds_crossed"]) == [25.0, 50.0], "{org}");
    ensure!(org["pause_reached"] == json!(true), "{org}");
    let start = period_start(Period::Day, Utc::now());
    ensure!(
        org["period_start"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            == Some(start.into()),
        "{org}"
    );
    ensure!(
        org["period_key"] == json!(start.format("%Y-%m-%d").to_string()),
        "{org}"
    );
    let week = row("a1 week").context("a1 week")?;
    ensure!(
        week["period_key"]
            .as_str()
            .is_some_and(|k| k.contains("-W")),
        "{week}"
    );
    let empty = api
        .expect(ok, "GET", "/v1/budgets/status", &b.read, None)
        .await?;
    ensure!(empty["budgets"] == json!([]), "{empty}");

    // Pause, kill and resume, as `GET /v1/agents` sees them.
    let agents = |key: String| {
        let api = &api;
        async move {
            let v = api.expect(ok, "GET", "/v1/agents", &key, None).await?;
            let by_id: Vec<(String, String, Value)> = v["agents"]
                .as_array()
                .context("agents")?
                .iter()
                .map(|x| {
                    (
                        x["agent_id"].as_str().unwrap_or_default().to_owned(),
                        x["status"].as_str().unwrap_or_default().to_owned(),
                        x["status_reason"].clone(),
                    )
                })
                .collect();
            anyhow::Ok(by_id)
        }
    };
    let status_of = |list: &[(String, String, Value)], id: &str| {
        list.iter()
            .find(|(a, _, _)| a == id)
            .map(|(_, s, r)| (s.clone(), r.clone()))
    };
    let paused = api
        .expect(
            ok,
            "POST",
            "/v1/admin/agents/a1/pause",
            &a.admin,
            Some(json!({"reason": "runaway spend"})),
        )
        .await?;
    ensure!(paused["status"] == json!("paused"), "{paused}");
    api.expect(ok, "POST", "/v1/admin/agents/a2/kill", &a.admin, None)
        .await?;
    api.expect(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/admin/agents/a2/resume",
        &a.read,
        None,
    )
    .await?;
    api.expect_400(
        "POST",
        "/v1/admin/agents/a1/pause",
        json!({"reason": "x", "until": "tomorrow"}),
        "until",
    )
    .await?;
    let list = agents(a.read.clone()).await?;
    ensure!(
        status_of(&list, "a1") == Some(("paused".into(), json!("runaway spend"))),
        "{list:?}"
    );
    ensure!(
        status_of(&list, "a2").map(|s| s.0) == Some("killed".into()),
        "{list:?}"
    );
    let (set_by,): (String,) =
        sqlx::query_as("SELECT set_by FROM agent_controls WHERE org_id = $1 AND agent_id = 'a1'")
            .bind(&a.id)
            .fetch_one(&api.pool)
            .await?;
    ensure!(set_by.starts_with("admin:"), "{set_by}");
    // The other org's agent of the same name is untouched.
    let list_b = agents(b.read.clone()).await?;
    ensure!(
        status_of(&list_b, "a1").map(|s| s.0) == Some("active".into()),
        "{list_b:?}"
    );

    let resumed = api
        .expect(
            ok,
            "POST",
            "/v1/admin/agents/a1/resume",
            &a.admin,
            Some(json!({"reason": "incident over"})),
        )
        .await?;
    ensure!(
        resumed["resumed"] == json!(true) && resumed["previous"] == json!("pause"),
        "{resumed}"
    );
    let again = api
        .expect(ok, "POST", "/v1/admin/agents/a1/resume", &a.admin, None)
        .await?;
    ensure!(again["resumed"] == json!(false), "{again}");
    let list = agents(a.read.clone()).await?;
    ensure!(
        status_of(&list, "a1").map(|s| s.0) == Some("active".into()),
        "{list:?}"
    );
    ensure!(
        status_of(&list, "a2").map(|s| s.0) == Some("killed".into()),
        "{list:?}"
    );
    let resume_reason: Vec<String> = sqlx::query_scalar(
        "SELECT detail::jsonb->>'reason' FROM audit_log WHERE org_id = $1 AND action = 'agent.resume'",
    )
    .bind(&a.id)
    .fetch_all(&api.pool)
    .await?;
    ensure!(resume_reason == ["incident over"], "{resume_reason:?}");
    api.expect(
        StatusCode::BAD_REQUEST,
        "POST",
        "/v1/admin/agents/a1/resume",
        &a.admin,
        Some(json!({"why": "x"})),
    )
    .await?;
    let actions = api.audit_actions(&a.id).await?;
    for action in ["agent.pause", "agent.kill", "agent.resume"] {
        ensure!(
            actions.iter().filter(|x| *x == action).count() == 1,
            "{action} in {actions:?}"
        );
    }
    Ok(())
}
