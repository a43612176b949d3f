//! End-to-end: channel credentials at rest (issue 12). Webhook secrets and
//! Slack/Discord URLs created over the API are in no table in clear, never
//! answered again, deliveries still sign correctly, and a key rotation
//! (`admin reencrypt-secrets`) re-seals every row, a row written in clear
//! before encryption included, after which the old key can go.

use std::time::Duration;

use agentops_e2e::webhook::Receiver;
use agentops_e2e::{Component, Stack, StackOptions};
use serde_json::{json, Value};

async fn api(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = stack
        .http
        .request(method, format!("{}{path}", stack.query_url))
        .bearer_auth(&stack.admin_key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Every row of every table of the stack's database, as text (`row::text`
/// shows text, jsonb and arrays as written, bytea as hex).
async fn dump(stack: &Stack) -> anyhow::Result<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables
         WHERE table_type = 'BASE TABLE'
           AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&stack.pool)
    .await?;
    assert!(tables.iter().any(|(_, t)| t == "notification_channels"));
    let mut out = String::new();
    for (schema, table) in tables {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT t::text FROM \"{schema}\".\"{table}\" t"))
                .fetch_all(&stack.pool)
                .await?;
        for (r,) in rows {
            out.push_str(&r);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `needle` in `dump` in clear, or hex-encoded (a bytea column).
fn holds(dump: &str, needle: &str) -> bool {
    dump.contains(needle) || dump.contains(&hex::encode(needle.as_bytes()))
}

async fn produce_alert(stack: &Stack, id: &str) -> anyhow::Result<()> {
    let alert = json!({
        "alert_id": id, "org_id": stack.org_id, "source": "rule", "kind": "error_rate",
        "scope_key": "org", "transition": "firing", "severity": "warning", "period": "",
        "threshold": 0.1, "value": 0.5, "message": "error rate 50%", "details": {},
        "channels": [], "occurred_at": chrono::Utc::now().to_rfc3339(),
    });
    stack.produce_alert(&alert).await
}

/// Sealed values per key id: `(url's key, secret's key)` of every channel.
async fn key_ids(stack: &Stack) -> anyhow::Result<Vec<(String, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT split_part(url, ':', 3), split_part(secret, ':', 3)
         FROM notification_channels ORDER BY name",
    )
    .fetch_all(&stack.pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_credentials_are_sealed_signed_and_rotated() -> anyhow::Result<()> {
    let mut stack = Stack::start(
        "secrets",
        StackOptions {
            skip: vec![Component::Gateway, Component::Projections],
            ..Default::default()
        },
    )
    .await?;
    let old_key = stack
        .env("AGENTOPS_SECRETS__KEY")
        .expect("the harness provides a key")
        .to_owned();
    let (hook, slack, discord) = (
        Receiver::start(0).await?,
        Receiver::start(0).await?,
        Receiver::start(0).await?,
    );
    // Slack and Discord URLs carry their credential in the path or query.
    let slack_url = format!(
        "{}?token=xoxb-slack-token-{}",
        slack.url,
        uuid::Uuid::new_v4()
    );
    let discord_url = format!(
        "{}?token=discord-token-{}",
        discord.url,
        uuid::Uuid::new_v4()
    );
    let mut created = Vec::new();
    for (name, kind, url) in [
        ("discord", "discord", &discord_url),
        ("hook", "webhook", &hook.url),
        ("slack", "slack", &slack_url),
    ] {
        let (status, body) = api(
            &stack,
            reqwest::Method::POST,
            "/v1/admin/channels",
            Some(json!({"name": name, "kind": kind, "url": url})),
        )
        .await?;
        assert_eq!(status, 201, "{body}");
        created.push(body);
    }
    let secret = created[1]["secret"].as_str().unwrap_or_default().to_owned();
    assert!(
        secret.len() >= 32,
        "the webhook secret, shown once: {}",
        created[1]
    );
    // The legacy budget endpoint writes a Slack URL too.
    let budget_url = format!("{}?token=budget-token-{}", slack.url, uuid::Uuid::new_v4());
    let (status, body) = api(
        &stack,
        reqwest::Method::PUT,
        "/v1/admin/budget",
        Some(json!({"daily_usd": 5, "webhook_url": budget_url})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let credentials = [
        secret.as_str(),
        slack_url.as_str(),
        discord_url.as_str(),
        budget_url.as_str(),
        hook.url.as_str(),
    ];

    // Answers: masked URLs, has_secret, never a secret.
    let (_, list) = api(&stack, reqwest::Method::GET, "/v1/admin/channels", None).await?;
    let channels = list["channels"].as_array().cloned().unwrap_or_default();
    assert_eq!(channels.len(), 4, "{list}");
    let text = list.to_string();
    for c in credentials {
        assert!(!text.contains(c), "{c} in {text}");
    }
    assert!(
        !text.contains("token") && !text.contains("enc:v1"),
        "{text}"
    );
    for c in &channels {
        let url = c["url"].as_str().unwrap_or_default();
        assert!(
            url.starts_with("http://127.0.0.2:") && url.ends_with("/…"),
            "{c}"
        );
        assert!(c.get("secret").is_none(), "{c}");
        let id = c["id"].as_str().unwrap_or_default();
        let (_, one) = api(
            &stack,
            reqwest::Method::GET,
            &format!("/v1/admin/channels/{id}"),
            None,
        )
        .await?;
        assert_eq!(one["url"], c["url"], "{one}");
        assert_eq!(one["has_secret"], json!(c["kind"] == "webhook"), "{one}");
    }
    for c in &created {
        assert!(
            !c["url"].as_str().unwrap_or_default().contains("token"),
            "{c}"
        );
    }

    // The database: no credential in clear in any table (the audit log too).
    let d = dump(&stack).await?;
    for c in credentials {
        assert!(!holds(&d, c), "{c} in the database dump");
    }
    assert_eq!(
        key_ids(&stack).await?,
        vec![
            ("e2e".into(), None),
            ("e2e".into(), None),
            ("e2e".into(), Some("e2e".into())),
            ("e2e".into(), None),
        ],
        "every value sealed with the harness's key (discord, default, hook, slack)"
    );

    // Deliveries open them: the webhook's signature checks with the secret
    // shown at creation, Slack and Discord get their POSTs.
    produce_alert(&stack, "secrets-1").await?;
    stack
        .eventually(
            Duration::from_secs(60),
            "three channels notified",
            || async {
                Ok((!hook.received().is_empty()
                    && slack.received().len() >= 2
                    && !discord.received().is_empty())
                .then_some(()))
            },
        )
        .await?;
    let got = hook.received()[0].clone();
    assert!(got.signed_by(&secret), "signature: {:?}", got.headers);
    assert!(!got.signed_by("another secret"));

    // A row written in clear by an older version, straight into the table.
    let legacy_secret = format!("legacy-secret-{}", uuid::Uuid::new_v4());
    let legacy = Receiver::start(0).await?;
    sqlx::query(
        "INSERT INTO notification_channels (org_id, name, kind, url, secret)
         VALUES ($1, 'legacy', 'webhook', $2, $3)",
    )
    .bind(&stack.org_id)
    .bind(&legacy.url)
    .bind(&legacy_secret)
    .execute(&stack.pool)
    .await?;

    // Rotation: the new key first, the old one kept, then re-encrypt.
    let new_key = agentops_runtime::secrets::new_key("k2");
    stack.set_env("AGENTOPS_SECRETS__KEY", &format!("{new_key},{old_key}"));
    let out = stack
        .command(Component::QueryApi)
        .args(["admin", "reencrypt-secrets"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 rows rewritten"), "{stdout}");
    for c in credentials
        .iter()
        .copied()
        .chain([legacy_secret.as_str(), legacy.url.as_str()])
    {
        assert!(
            !stdout.contains(c) && !holds(&dump(&stack).await?, c),
            "{c}"
        );
    }
    let ids = key_ids(&stack).await?;
    assert_eq!(ids.len(), 5);
    for (url_key, secret_key) in &ids {
        assert_eq!(url_key, "k2", "{ids:?}");
        assert!(
            matches!(secret_key.as_deref(), None | Some("k2")),
            "{ids:?}"
        );
    }

    // The old key gone: the processors restarted with the new one only
    // still deliver, signed with the same secrets.
    stack.set_env("AGENTOPS_SECRETS__KEY", &new_key);
    stack.kill(Component::Processors, 0)?;
    stack.restart(Component::Processors, 0).await?;
    produce_alert(&stack, "secrets-2").await?;
    stack
        .eventually(
            Duration::from_secs(60),
            "delivered after rotation",
            || async {
                Ok((hook.received().len() >= 2 && !legacy.received().is_empty()).then_some(()))
            },
        )
        .await?;
    let got = hook.received()[1].clone();
    assert_eq!(got.body["alert_id"], "secrets-2");
    assert!(got.signed_by(&secret), "signature after rotation");
    assert!(
        legacy.received()[0].signed_by(&legacy_secret),
        "the legacy row's secret"
    );
    let dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM alert_deliveries WHERE dead_lettered_at IS NOT NULL",
    )
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(dead, 0);

    // A component without any key refuses to start, saying why.
    stack.set_env("AGENTOPS_SECRETS__KEY", "");
    let out = stack.command(Component::Processors).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no secrets key"), "{stderr}");
    Ok(())
}
