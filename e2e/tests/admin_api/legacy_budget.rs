//! The MVP's `PUT /v1/admin/budget` goes through the budgets and channels
//! CRUD path: validated (field named in the legacy body's terms), audited,
//! visible in `/v1/admin/budgets`, and an update of the same `default` rows.

use super::*;

#[tokio::test]
async fn the_legacy_budget_endpoint_is_validated_and_audited() -> Result<()> {
    let api = Api::start("legacy_budget").await?;
    let admin = api.a.admin.clone();
    let put = |body: Value| api.call("PUT", "/v1/admin/budget", &admin, Some(body));
    // The audit rows of budgets and channels (org set-up writes others).
    let audited = || async {
        let all = api.audit_actions(&api.a.id).await?;
        Ok::<_, anyhow::Error>(
            all.into_iter()
                .filter(|a| a.starts_with("budget.") || a.starts_with("channel."))
                .collect::<Vec<_>>(),
        )
    };

    // Bad input: a 400 naming the legacy field, nothing written.
    api.expect_400(
        "PUT",
        "/v1/admin/budget",
        json!({"daily_usd": 0}),
        "daily_usd",
    )
    .await?;
    api.expect_400(
        "PUT",
        "/v1/admin/budget",
        json!({"daily_usd": "5"}),
        "daily_usd",
    )
    .await?;
    api.expect_400("PUT", "/v1/admin/budget", json!({}), "daily_usd")
        .await?;
    api.expect_400(
        "PUT",
        "/v1/admin/budget",
        json!({"daily_usd": 5, "webhook_url": "ftp://x"}),
        "webhook_url",
    )
    .await?;
    let (status, v) = put(json!({"daily_usd": 5, "dailyusd": 6})).await?;
    ensure!(status == StatusCode::BAD_REQUEST, "{status} {v}");
    ensure!(v["error"]["code"] == "unknown_field", "{v}");
    ensure!(audited().await?.is_empty());

    // Create: a day budget alerting at 100%, and the default channel.
    let url = "https://hooks.slack.com/services/T0/B0/legacy";
    let (status, v) = put(json!({"daily_usd": 5, "webhook_url": url})).await?;
    ensure!(status == StatusCode::OK, "{status} {v}");
    let budgets = api
        .expect(StatusCode::OK, "GET", "/v1/admin/budgets", &admin, None)
        .await?;
    let b = &budgets["budgets"][0];
    ensure!(b["name"] == "default" && b["period"] == "day", "{budgets}");
    ensure!(approx(&b["limit_usd"], 5.0), "{b}");
    ensure!(nums(&b["thresholds"]) == [100.0], "{b}");
    let channels = api
        .expect(StatusCode::OK, "GET", "/v1/admin/channels", &admin, None)
        .await?;
    let c = &channels["channels"][0];
    ensure!(c["name"] == "default" && c["kind"] == "slack", "{channels}");
    ensure!(
        !channels.to_string().contains("legacy"),
        "URL answered: {channels}"
    );
    let actions = audited().await?;
    ensure!(
        actions == ["channel.create", "budget.create"],
        "{actions:?}"
    );

    // Again: the same rows updated, and audited as updates.
    let (status, v) = put(json!({"daily_usd": 7.5})).await?;
    ensure!(status == StatusCode::OK, "{status} {v}");
    let budgets = api
        .expect(StatusCode::OK, "GET", "/v1/admin/budgets", &admin, None)
        .await?;
    ensure!(
        budgets["budgets"].as_array().map(Vec::len) == Some(1),
        "{budgets}"
    );
    ensure!(
        approx(&budgets["budgets"][0]["limit_usd"], 7.5),
        "{budgets}"
    );
    let actions = audited().await?;
    ensure!(
        actions.last().map(String::as_str) == Some("budget.update"),
        "{actions:?}"
    );
    ensure!(actions.len() == 3, "{actions:?}");

    // An operator's changes to the default budget survive a legacy update.
    let id = budgets["budgets"][0]["id"]
        .as_str()
        .context("id")?
        .to_owned();
    api.expect(
        StatusCode::OK,
        "PUT",
        &format!("/v1/admin/budgets/{id}"),
        &admin,
        Some(json!({"thresholds": [50, 100]})),
    )
    .await?;
    put(json!({"daily_usd": 9})).await?;
    let b = api
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/admin/budgets/{id}"),
            &admin,
            None,
        )
        .await?;
    ensure!(
        approx(&b["limit_usd"], 9.0) && nums(&b["thresholds"]) == [50.0, 100.0],
        "{b}"
    );
    Ok(())
}
