//! Channels, budgets, alert rules, policies and the digest: CRUD, field-named
//! 400s, other orgs' ids, duplicate names, the audit log.

use super::*;

#[tokio::test]
async fn channels_budgets_rules_policies_and_digest() -> Result<()> {
    let api = Api::start("admin_cfg").await?;
    let (a, b) = (&api.a, &api.b);
    let created = StatusCode::CREATED;
    let ok = StatusCode::OK;

    // Scopes: a read key cannot manage; no key is 401.
    api.expect(
        StatusCode::FORBIDDEN,
        "GET",
        "/v1/admin/budgets",
        &a.read,
        None,
    )
    .await?;
    api.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/admin/budgets",
        "nope",
        None,
    )
    .await?;

    // Channels: a webhook gets a secret shown once.
    let hook = api
        .expect(
            created,
            "POST",
            "/v1/admin/channels",
            &a.admin,
            Some(json!({"name": "ops-hook", "kind": "webhook", "url": "https://hooks.test/ops"})),
        )
        .await?;
    let secret = hook["secret"]
        .as_str()
        .context("webhook secret")?
        .to_owned();
    ensure!(secret.len() >= 64, "{hook}");
    ensure!(hook["has_secret"] == json!(true), "{hook}");
    let hook_id = hook["id"].as_str().context("id")?.to_owned();
    let slack = api
        .expect(
            created,
            "POST",
            "/v1/admin/channels",
            &a.admin,
            Some(json!({"name": "slack", "kind": "slack", "url": "https://hooks.slack.test/x"})),
        )
        .await?;
    let slack_id = slack["id"].as_str().context("id")?.to_owned();
    ensure!(slack.get("secret").is_none() && slack["has_secret"] == json!(false));
    let list = api
        .expect(ok, "GET", "/v1/admin/channels", &a.admin, None)
        .await?;
    let chans = list["channels"].as_array().context("channels")?;
    ensure!(chans.len() == 2, "{list}");
    ensure!(
        !list.to_string().contains(&secret),
        "a listed secret: {list}"
    );
    let one = api
        .expect(
            ok,
            "GET",
            &format!("/v1/admin/channels/{hook_id}"),
            &a.admin,
            None,
        )
        .await?;
    ensure!(
        one["name"] == json!("ops-hook") && one.get("secret").is_none(),
        "{one}"
    );
    api.expect(
        StatusCode::CONFLICT,
        "POST",
        "/v1/admin/channels",
        &a.admin,
        Some(json!({"name": "slack", "kind": "discord", "url": "https://d.test/x"})),
    )
    .await?;
    // The same name in another org is fine; another org's id is 404.
    let b_chan = api
        .expect(
            created,
            "POST",
            "/v1/admin/channels",
            &b.admin,
            Some(json!({"name": "slack", "kind": "slack", "url": "https://hooks.slack.test/b"})),
        )
        .await?;
    let b_chan_id = b_chan["id"].as_str().context("id")?.to_owned();
    api.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &format!("/v1/admin/channels/{hook_id}"),
        &b.admin,
        None,
    )
    .await?;
    api.expect(
        StatusCode::NOT_FOUND,
        "DELETE",
        &format!("/v1/admin/channels/{hook_id}"),
        &b.admin,
        None,
    )
    .await?;
    api.expect(
        StatusCode::NOT_FOUND,
        "GET",
        "/v1/admin/channels/not-a-uuid",
        &a.admin,
        None,
    )
    .await?;
    api.expect_400(
        "POST",
        "/v1/admin/channels",
        json!({"name": "x", "kind": "email", "url": "https://x.test"}),
        "kind",
    )
    .await?;
    api.expect_400(
        "POST",
        "/v1/admin/channels",
        json!({"name": "x", "kind": "slack", "url": "ftp://x.test"}),
        "url",
    )
    .await?;

    // Budgets.
    let path = "/v1/admin/budgets";
    let budget = api
        .expect(
            created,
            "POST",
            path,
            &a.admin,
            Some(
                json!({"name": "pay team", "scope_kind": "tag", "scope_value": "team=pay",
                        "period": "month", "limit_usd": 500, "thresholds": [100, 50, 50],
                        "pause_at_pct": 120, "channels": [slack_id]}),
            ),
        )
        .await?;
    let budget_id = budget["id"].as_str().context("id")?.to_owned();
    ensure!(nums(&budget["thresholds"]) == [50.0, 100.0], "{budget}");
    ensure!(budget["scope_key"] == json!("tag=team=pay"), "{budget}");
    ensure!(budget.get("org_id").is_none(), "{budget}");
    let daily = api
        .expect(
            created,
            "POST",
            path,
            &a.admin,
            Some(json!({"name": "daily", "period": "day", "limit_usd": 20})),
        )
        .await?;
    ensure!(nums(&daily["thresholds"]) == [80.0, 100.0], "{daily}");
    ensure!(daily["scope_kind"] == json!("org") && daily["scope_value"].is_null());
    api.expect(
        StatusCode::CONFLICT,
        "POST",
        path,
        &a.admin,
        Some(json!({"name": "daily", "period": "week", "limit_usd": 5})),
    )
    .await?;
    for (body, field) in [
        (
            json!({"name": "x", "period": "year", "limit_usd": 5}),
            "period",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 0}),
            "limit_usd",
        ),
        (json!({"name": "x", "period": "day"}), "limit_usd"),
        (json!({"period": "day", "limit_usd": 5}), "name"),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "thresholds": [0]}),
            "thresholds",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "thresholds": [2000]}),
            "thresholds",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "pause_at_pct": -1}),
            "pause_at_pct",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "scope_kind": "team",
                "scope_value": "a"}),
            "scope_kind",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "scope_kind": "tag",
                "scope_value": "team"}),
            "scope_value",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "scope_value": "a1"}),
            "scope_value",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "scope_kind": "agent"}),
            "scope_value",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "channels": ["nope"]}),
            "channels",
        ),
        // Another org's channel is not a channel of this org.
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "channels": [b_chan_id]}),
            "channels",
        ),
        (
            json!({"name": "x", "period": "day", "limit_usd": 5, "limt_usd": 5}),
            "limt_usd",
        ),
    ] {
        api.expect_400("POST", path, body, field).await?;
    }
    let (status, v) = api
        .call("POST", path, &a.admin, Some(json!(["not", "an", "object"])))
        .await?;
    ensure!(status == StatusCode::BAD_REQUEST && v["error"]["code"] == json!("invalid_json"));
    // PUT merges: absent fields keep their value.
    let one = format!("{path}/{budget_id}");
    let updated = api
        .expect(
            ok,
            "PUT",
            &one,
            &a.admin,
            Some(json!({"limit_usd": 750, "pause_at_pct": null})),
        )
        .await?;
    ensure!(approx(&updated["limit_usd"], 750.0), "{updated}");
    ensure!(updated["pause_at_pct"].is_null() && updated["name"] == json!("pay team"));
    ensure!(updated["channels"] == json!([slack_id]), "{updated}");
    api.expect_400("PUT", &one, json!({"limit_usd": -5}), "limit_usd")
        .await?;
    api.expect(
        StatusCode::CONFLICT,
        "PUT",
        &one,
        &a.admin,
        Some(json!({"name": "daily"})),
    )
    .await?;
    api.expect(
        StatusCode::NOT_FOUND,
        "PUT",
        &one,
        &b.admin,
        Some(json!({"limit_usd": 1})),
    )
    .await?;
    api.expect(StatusCode::NOT_FOUND, "GET", &one, &b.admin, None)
        .await?;
    let got = api.expect(ok, "GET", &one, &a.admin, None).await?;
    ensure!(approx(&got["limit_usd"], 750.0), "{got}");
    let listed = api.expect(ok, "GET", path, &a.admin, None).await?;
    ensure!(
        listed["budgets"].as_array().map(Vec::len) == Some(2),
        "{listed}"
    );
    let listed_b = api.expect(ok, "GET", path, &b.admin, None).await?;
    ensure!(listed_b["budgets"] == json!([]), "{listed_b}");

    // Deleting a channel removes it from the budgets that named it.
    api.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/admin/channels/{slack_id}"),
        &a.admin,
        None,
    )
    .await?;
    let got = api.expect(ok, "GET", &one, &a.admin, None).await?;
    ensure!(got["channels"] == json!([]), "{got}");

    // Alert rules.
    let path = "/v1/admin/alert-rules";
    let rule = api
        .expect(
            created,
            "POST",
            path,
            &a.admin,
            Some(
                json!({"name": "errors", "kind": "error_rate", "threshold": 0.25,
                        "window_secs": 900, "min_runs": 20, "scope_kind": "agent",
                        "scope_value": "a1", "channels": [hook_id]}),
            ),
        )
        .await?;
    let rule_id = rule["id"].as_str().context("id")?.to_owned();
    ensure!(
        rule["cooldown_secs"] == json!(3600) && rule["enabled"] == json!(true),
        "{rule}"
    );
    ensure!(
        rule["minutes"].is_null() && rule["scope_key"] == json!("agent=a1"),
        "{rule}"
    );
    api.expect(
        created,
        "POST",
        path,
        &a.admin,
        Some(json!({"name": "silent", "kind": "no_heartbeat", "minutes": 10})),
    )
    .await?;
    for (body, field) in [
        (
            json!({"name": "x", "kind": "error_rate", "threshold": 2, "window_secs": 60}),
            "threshold",
        ),
        (
            json!({"name": "x", "kind": "error_rate", "threshold": 0.5}),
            "window_secs",
        ),
        (
            json!({"name": "x", "kind": "latency_p95", "threshold": 900, "window_secs": 60,
                "min_runs": 0}),
            "min_runs",
        ),
        (json!({"name": "x", "kind": "cost_per_day"}), "threshold"),
        (json!({"name": "x", "kind": "stuck_run"}), "minutes"),
        (
            json!({"name": "x", "kind": "stuck_run", "minutes": 5, "scope_kind": "tag",
                "scope_value": "a=b"}),
            "scope_kind",
        ),
        (
            json!({"name": "x", "kind": "error_rate", "threshold": 0.5, "window_secs": 60,
                "scope_kind": "tag", "scope_value": "a=b"}),
            "scope_kind",
        ),
        (
            json!({"name": "x", "kind": "stuck_run", "minutes": 5, "threshold": 3}),
            "threshold",
        ),
        (json!({"name": "x", "kind": "disk_full"}), "kind"),
    ] {
        api.expect_400("POST", path, body, field).await?;
    }
    let one = format!("{path}/{rule_id}");
    let updated = api
        .expect(
            ok,
            "PUT",
            &one,
            &a.admin,
            Some(json!({"enabled": false, "threshold": 0.5})),
        )
        .await?;
    ensure!(updated["enabled"] == json!(false) && approx(&updated["threshold"], 0.5));
    ensure!(updated["min_runs"] == json!(20), "{updated}");
    api.expect_400("PUT", &one, json!({"kind": "cost_per_day"}), "kind")
        .await?;
    api.expect(StatusCode::NOT_FOUND, "DELETE", &one, &b.admin, None)
        .await?;
    let listed = api.expect(ok, "GET", path, &a.admin, None).await?;
    ensure!(
        listed["alert_rules"].as_array().map(Vec::len) == Some(2),
        "{listed}"
    );
    api.expect(StatusCode::NO_CONTENT, "DELETE", &one, &a.admin, None)
        .await?;
    api.expect(StatusCode::NOT_FOUND, "GET", &one, &a.admin, None)
        .await?;
    api.expect(StatusCode::NOT_FOUND, "DELETE", &one, &a.admin, None)
        .await?;

    // Policies.
    let path = "/v1/admin/policies";
    let policy = api
        .expect(
            created,
            "POST",
            path,
            &a.admin,
            Some(json!({"name": "approved models", "kind": "model_allowlist",
                        "names": ["gpt-4o", "claude-sonnet-4", "gpt-4o"], "action": "alert"})),
        )
        .await?;
    ensure!(
        policy["names"] == json!(["gpt-4o", "claude-sonnet-4"]),
        "{policy}"
    );
    let policy_id = policy["id"].as_str().context("id")?.to_owned();
    for (body, field) in [
        (
            json!({"name": "x", "kind": "model_denylist", "names": []}),
            "names",
        ),
        (json!({"name": "x", "kind": "forbidden_tools"}), "names"),
        (
            json!({"name": "x", "kind": "max_cost_per_run", "limit_value": 0}),
            "limit_value",
        ),
        (
            json!({"name": "x", "kind": "max_tokens_per_call"}),
            "limit_value",
        ),
        (
            json!({"name": "x", "kind": "max_cost_per_run", "limit_value": 1, "action": "kill"}),
            "action",
        ),
    ] {
        api.expect_400("POST", path, body, field).await?;
    }
    api.expect(
        StatusCode::CONFLICT,
        "POST",
        path,
        &a.admin,
        Some(json!({"name": "approved models", "kind": "forbidden_tools", "names": ["shell"]})),
    )
    .await?;
    let one = format!("{path}/{policy_id}");
    let updated = api
        .expect(
            ok,
            "PUT",
            &one,
            &a.admin,
            Some(json!({"names": ["gpt-4o-mini"], "action": "pause"})),
        )
        .await?;
    ensure!(updated["names"] == json!(["gpt-4o-mini"]) && updated["action"] == json!("pause"));
    api.expect_400("PUT", &one, json!({"names": []}), "names")
        .await?;
    api.expect(StatusCode::NOT_FOUND, "GET", &one, &b.admin, None)
        .await?;
    api.expect(StatusCode::NO_CONTENT, "DELETE", &one, &a.admin, None)
        .await?;

    // Digest.
    api.expect(
        StatusCode::NOT_FOUND,
        "GET",
        "/v1/admin/digest",
        &a.admin,
        None,
    )
    .await?;
    let d = api
        .expect(
            ok,
            "PUT",
            "/v1/admin/digest",
            &a.admin,
            Some(json!({"hour_utc": 7})),
        )
        .await?;
    ensure!(
        d["hour_utc"] == json!(7) && d["channels"] == json!([]),
        "{d}"
    );
    let d = api
        .expect(
            ok,
            "PUT",
            "/v1/admin/digest",
            &a.admin,
            Some(json!({"channels": [hook_id]})),
        )
        .await?;
    ensure!(
        d["hour_utc"] == json!(7) && d["channels"] == json!([hook_id]),
        "{d}"
    );
    let err = json!({"hour_utc": 24});
    api.expect_400("PUT", "/v1/admin/digest", err, "hour_utc")
        .await?;
    api.expect_400(
        "PUT",
        "/v1/admin/digest",
        json!({"channels": [b_chan_id]}),
        "channels",
    )
    .await?;
    api.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        "/v1/admin/digest",
        &a.admin,
        None,
    )
    .await?;
    api.expect(
        StatusCode::NOT_FOUND,
        "DELETE",
        "/v1/admin/digest",
        &a.admin,
        None,
    )
    .await?;

    // Every change is in the audit log, under its org, never with a secret.
    let actions = api.audit_actions(&a.id).await?;
    let count = |action: &str| actions.iter().filter(|a| *a == action).count();
    for (action, n) in [
        ("channel.create", 2),
        ("channel.delete", 1),
        ("budget.create", 2),
        ("budget.update", 1),
        ("alert_rule.create", 2),
        ("alert_rule.update", 1),
        ("alert_rule.delete", 1),
        ("policy.create", 1),
        ("policy.update", 1),
        ("policy.delete", 1),
        ("digest.update", 2),
        ("digest.delete", 1),
    ] {
        ensure!(
            count(action) == n,
            "{action}: {} in {actions:?}",
            count(action)
        );
    }
    let (leaks,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM audit_log WHERE strpos(detail, $1) > 0")
            .bind(&secret)
            .fetch_one(&api.pool)
            .await?;
    ensure!(leaks == 0, "the webhook secret is in the audit log");
    let (actor,): (String,) = sqlx::query_as(
        "SELECT actor FROM audit_log WHERE org_id = $1 AND action = 'budget.update'",
    )
    .bind(&a.id)
    .fetch_one(&api.pool)
    .await?;
    ensure!(actor.starts_with("admin:"), "{actor}");
    let b_actions = api.audit_actions(&b.id).await?;
    ensure!(
        b_actions
            .iter()
            .filter(|a| a.as_str() == "channel.create")
            .count()
            == 1,
        "{b_actions:?}"
    );
    Ok(())
}
