//! `POST /v1/admin/channels/{id}/test` and `PUT /v1/admin/channels/{id}`
//! against a real query API process and real HTTP receivers: the test
//! notification reaches the receiver signed with the channel's secret (the
//! notifier's headers and body), a failing receiver is reported with its
//! status, nothing lands in `alerts`/`alert_deliveries`, the send is
//! audited; an edit keeps the stored URL and secret unless new ones are
//! given, refuses a kind change naming `kind`; read keys get 403, another
//! org's channel 404.

use agentops_e2e::webhook::Receiver;
use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

async fn call(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = stack
        .http
        .request(method, format!("{}{path}", stack.query_url))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_send_and_edit_channels() -> Result<()> {
    let stack = Stack::start(
        "chan_test",
        StackOptions {
            skip: vec![Component::Processors],
            ..Default::default()
        },
    )
    .await?;
    let (post, put) = (reqwest::Method::POST, reqwest::Method::PUT);
    let ok = Receiver::start(0).await?;
    let (s, created) = call(
        &stack,
        post.clone(),
        "/v1/admin/channels",
        &stack.admin_key,
        Some(json!({"name": "hook", "kind": "webhook", "url": ok.url})),
    )
    .await?;
    ensure!(s == 201, "create: {s} {created}");
    let id = created["id"].as_str().context("id")?.to_owned();
    let secret = created["secret"].as_str().context("secret")?.to_owned();

    // The test send reaches the receiver, signed with the channel's secret.
    let path = format!("/v1/admin/channels/{id}/test");
    let (s, out) = call(&stack, post.clone(), &path, &stack.admin_key, None).await?;
    ensure!(s == 200, "test: {s} {out}");
    ensure!(
        out == json!({"delivered": true, "status": 200, "error": null}),
        "{out}"
    );
    let got = ok.received();
    ensure!(got.len() == 1, "one POST, got {}", got.len());
    ensure!(
        got[0].signed_by(&secret),
        "signed with the channel's secret"
    );
    ensure!(
        got[0].body["source"] == "test" && got[0].body["kind"] == "test",
        "{}",
        got[0].body
    );
    ensure!(got[0].body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("hook"));

    // An edit of the name keeps the URL and the secret.
    let one = format!("/v1/admin/channels/{id}");
    let (s, out) = call(
        &stack,
        put.clone(),
        &one,
        &stack.admin_key,
        Some(json!({"name": "hook2"})),
    )
    .await?;
    ensure!(
        s == 200 && out["name"] == "hook2" && out["has_secret"] == true,
        "{s} {out}"
    );
    let (s, _) = call(&stack, post.clone(), &path, &stack.admin_key, None).await?;
    ensure!(s == 200);
    let got = ok.received();
    ensure!(
        got.len() == 2 && got[1].signed_by(&secret),
        "same secret after a rename"
    );
    ensure!(got[1].body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("hook2"));

    // A new URL and a new secret: the test goes there, signed with it; a
    // failing receiver is reported with its status.
    let failing = Receiver::start_with(1, axum::http::StatusCode::SERVICE_UNAVAILABLE).await?;
    let new_secret = "n".repeat(40);
    let (s, out) = call(
        &stack,
        put.clone(),
        &one,
        &stack.admin_key,
        Some(json!({"url": failing.url, "secret": new_secret})),
    )
    .await?;
    ensure!(s == 200, "{s} {out}");
    ensure!(
        out.get("secret").is_none(),
        "an edit does not echo the secret: {out}"
    );
    let (s, out) = call(&stack, post.clone(), &path, &stack.admin_key, None).await?;
    ensure!(
        s == 200 && out["delivered"] == false && out["status"] == 503,
        "{s} {out}"
    );
    ensure!(
        out["error"].as_str().is_some_and(|e| e.contains("503")),
        "{out}"
    );
    ensure!(failing.attempts() == 1, "one attempt, no retry");
    let (s, out) = call(&stack, post.clone(), &path, &stack.admin_key, None).await?;
    ensure!(s == 200 && out["delivered"] == true, "{s} {out}");
    let got = failing.received();
    ensure!(got.len() == 1, "delivered once");
    ensure!(!got[0].signed_by(&secret), "not with the old secret");
    ensure!(got[0].signed_by(&new_secret), "with the new secret");
    ensure!(ok.received().len() == 2, "the old URL got nothing more");

    // Refusals: the kind is fixed, a bad URL names `url`, read keys 403,
    // unknown ids 404.
    let (s, out) = call(
        &stack,
        put.clone(),
        &one,
        &stack.admin_key,
        Some(json!({"kind": "slack"})),
    )
    .await?;
    ensure!(s == 400 && out["error"]["field"] == "kind", "{s} {out}");
    let (s, out) = call(
        &stack,
        put.clone(),
        &one,
        &stack.admin_key,
        Some(json!({"url": "ftp://x"})),
    )
    .await?;
    ensure!(s == 400 && out["error"]["field"] == "url", "{s} {out}");
    let (s, _) = call(&stack, post.clone(), &path, &stack.read_key, None).await?;
    ensure!(s == 403, "read key: {s}");
    let other = format!("/v1/admin/channels/{}/test", uuid::Uuid::new_v4());
    let (s, _) = call(&stack, post.clone(), &other, &stack.admin_key, None).await?;
    ensure!(s == 404, "unknown channel: {s}");

    // Nothing recorded as an alert or a delivery; each send audited.
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts")
        .fetch_one(&stack.pool)
        .await?;
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_deliveries")
        .fetch_one(&stack.pool)
        .await?;
    ensure!(
        alerts == 0 && deliveries == 0,
        "alerts {alerts}, deliveries {deliveries}"
    );
    let audited: Vec<Value> = sqlx::query_scalar(
        "SELECT detail::jsonb FROM audit_log WHERE action = 'channel.test' ORDER BY id",
    )
    .fetch_all(&stack.pool)
    .await?;
    ensure!(audited.len() == 4, "four sends audited: {audited:?}");
    ensure!(
        audited[2]["delivered"] == false && audited[2]["status"] == 503,
        "{:?}",
        audited[2]
    );
    Ok(())
}
