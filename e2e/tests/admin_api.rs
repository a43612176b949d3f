//! The governance API through the in-process router on its own database
//! (plain PostgreSQL mode): two orgs, each with read and admin keys.
//!
//! Checks create / list / get / update / delete of channels, budgets, alert
//! rules and policies, the digest, field-named 400s, 404 for the other org's
//! ids, 409 for duplicate names and for acknowledging twice, the audit log,
//! agent controls as seen by `GET /v1/agents`, and budget spend so far.

use std::time::Duration;

use agentops_e2e::create_database;
use agentops_e2e::events::enriched_event;
use agentops_projections::Writer;
use agentops_runtime::config::DatabaseConfig;
use agentops_runtime::governance::{period_start, Period};
use agentops_runtime::storage::{ModeChoice, StorageConfig};
use anyhow::{ensure, Context, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration as Span, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

struct Org {
    id: String,
    read: String,
    admin: String,
}

struct Api {
    pool: PgPool,
    router: axum::Router,
    a: Org,
    b: Org,
}

impl Api {
    async fn start(prefix: &str) -> Result<Api> {
        let db = DatabaseConfig {
            url: create_database(prefix).await?,
            max_connections: 4,
            statement_timeout_ms: None,
            storage: StorageConfig {
                mode: ModeChoice::Postgres,
                ..Default::default()
            },
        };
        let pool = agentops_runtime::db::connect(&db, Duration::from_secs(30)).await?;
        agentops_runtime::db::prepare(&pool, &db).await?;
        let mut orgs = Vec::new();
        for id in ["org-a", "org-b"] {
            let keys =
                agentops_query_api::admin::create_org_with_keys(&pool, id, id, "test").await?;
            orgs.push(Org {
                id: id.into(),
                read: keys[1].secret.clone(),
                admin: keys[2].secret.clone(),
            });
        }
        let b = orgs.pop().context("org b")?;
        let a = orgs.pop().context("org a")?;
        Ok(Api {
            router: agentops_query_api::app(pool.clone(), Duration::from_millis(100)),
            pool,
            a,
            b,
        })
    }

    /// One request; the status and the JSON body (`null` when empty).
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(match body {
                Some(b) => Body::from(b.to_string()),
                None => Body::empty(),
            })?;
        let resp = self.router.clone().oneshot(req).await?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await?;
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{method} {path}: {}", String::from_utf8_lossy(&bytes)))?
        };
        Ok((status, v))
    }

    /// A request that must answer `want`.
    async fn expect(
        &self,
        want: StatusCode,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let (status, v) = self.call(method, path, key, body).await?;
        ensure!(
            status == want,
            "{method} {path}: {status} (wanted {want}) {v}"
        );
        Ok(v)
    }

    /// A 400 naming `field`.
    async fn expect_400(&self, method: &str, path: &str, body: Value, field: &str) -> Result<()> {
        let v = self
            .expect(
                StatusCode::BAD_REQUEST,
                method,
                path,
                &self.a.admin,
                Some(body.clone()),
            )
            .await?;
        ensure!(
            v["error"]["field"] == json!(field),
            "{method} {path} {body}: expected field {field}, got {v}"
        );
        ensure!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        Ok(())
    }

    async fn audit_actions(&self, org: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT action FROM audit_log WHERE org_id = $1 ORDER BY id")
                .bind(org)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(a,)| a).collect())
    }
}

fn approx(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

/// An array of numbers (Postgres renders `80.0` as `80`).
fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

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
        .expect(ok, "POST", "/v1/admin/agents/a1/resume", &a.admin, None)
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
    let actions = api.audit_actions(&a.id).await?;
    for action in ["agent.pause", "agent.kill", "agent.resume"] {
        ensure!(
            actions.iter().filter(|x| *x == action).count() == 1,
            "{action} in {actions:?}"
        );
    }
    Ok(())
}
