//! End-to-end: the outbound guard. Channels pointing at loopback (IPv4,
//! IPv6, IPv4-mapped, a name resolving to it), a private address, the cloud
//! metadata address, and an allowed receiver that redirects to loopback:
//! none is ever connected to (listeners on the loopback targets count TCP
//! connections), each delivery is dead-lettered at once with its reason and
//! audited, and the one receiver the stack allows still gets the alert once.
//! The channel API refuses such URLs at creation with a 400 naming `url`.
//!
//! The stacks allow only `webhook::RECEIVER_IP` (127.0.0.2), as
//! `notify.allow_destinations`; 127.0.0.1 and ::1 are refused as in production.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agentops_e2e::webhook::{Receiver, RECEIVER_IP};
use agentops_e2e::{Component, Stack, StackOptions};
use anyhow::Context;
use axum::http::{header, StatusCode};
use serde_json::{json, Value};

/// A TCP listener that counts the connections it accepts (and closes them).
struct Counted {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Counted {
    async fn bind(ip: &str, port: u16) -> anyhow::Result<Counted> {
        let listener = tokio::net::TcpListener::bind((ip, port))
            .await
            .with_context(|| format!("bind {ip}:{port}"))?;
        let port = listener.local_addr()?.port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        });
        Ok(Counted { port, accepted })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// An allowed receiver that answers every POST with a 302 to `location`,
/// counting the POSTs.
async fn redirector(location: String) -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind((RECEIVER_IP, 0)).await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            count.fetch_add(1, Ordering::SeqCst);
            let location = location.clone();
            async move { (StatusCode::FOUND, [(header::LOCATION, location)]) }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, hits))
}

async fn add_channel(stack: &Stack, name: &str, kind: &str, url: &str) -> anyhow::Result<String> {
    // Straight into the table, as rows written before this check existed
    // (or by the operator's CLI) are: the delivery path must refuse them itself.
    Ok(sqlx::query_scalar(
        "INSERT INTO notification_channels (org_id, name, kind, url, secret)
         VALUES ($1, $2, $3, $4, CASE WHEN $3 = 'webhook' THEN 's3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t' END)
         RETURNING id::text",
    )
    .bind(&stack.org_id)
    .bind(name)
    .bind(kind)
    .bind(url)
    .fetch_one(&stack.pool)
    .await?)
}

fn alert(stack: &Stack, id: &str, channels: &[&str]) -> Value {
    json!({
        "alert_id": id,
        "org_id": stack.org_id,
        "source": "budget",
        "source_id": "6f1c1f0e-8a47-4a0b-9f57-3f6f0c7c2b11",
        "kind": "budget_exceeded",
        "scope_key": "org",
        "transition": "firing",
        "severity": "critical",
        "period": "2026-11-22",
        "threshold": 10.0,
        "value": 12.5,
        "message": "Budget eng-daily: $12.50 of $10.00 spent",
        "details": {"name": "eng-daily", "unit": "USD"},
        "channels": channels,
        "occurred_at": chrono::Utc::now().to_rfc3339(),
    })
}

/// (channel id → (attempts, delivered, dead-lettered, last_error)).
type Rows = HashMap<String, (i32, bool, bool, Option<String>)>;

async fn deliveries(stack: &Stack, alert_id: &str) -> anyhow::Result<Rows> {
    let rows: Vec<(String, i32, bool, bool, Option<String>)> = sqlx::query_as(
        "SELECT channel_id::text, attempts, delivered_at IS NOT NULL,
                dead_lettered_at IS NOT NULL, last_error
         FROM alert_deliveries WHERE alert_id = $1",
    )
    .bind(alert_id)
    .fetch_all(&stack.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(c, a, d, x, e)| (c, (a, d, x, e)))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_public_destinations_are_never_connected_to() -> anyhow::Result<()> {
    // Loopback targets, each counting connections. `localhost` resolves to
    // 127.0.0.1 (and possibly ::1): same port on both.
    let lo4 = Counted::bind("127.0.0.1", 0).await?;
    let lo6 = match Counted::bind("::1", lo4.port).await {
        Ok(c) => c,
        Err(_) => Counted::bind("::1", 0).await?,
    };
    let p = lo4.port;
    // The listeners do see connections: one of ours to each, counted below.
    for addr in [format!("127.0.0.1:{p}"), format!("[::1]:{}", lo6.port)] {
        drop(tokio::net::TcpStream::connect(&addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((lo4.accepted(), lo6.accepted()), (1, 1));
    let (redirect_url, redirect_hits) = redirector(format!("http://127.0.0.1:{p}/hook")).await?;
    let ok = Receiver::start(0).await?;
    let stack = Stack::start(
        "outbound_guard",
        StackOptions {
            skip: vec![
                Component::Gateway,
                Component::Projections,
                Component::QueryApi,
            ],
            ..Default::default()
        },
    )
    .await?;

    // (name, kind, url, the reason its delivery records)
    let refused = [
        (
            "loopback",
            "webhook",
            format!("http://127.0.0.1:{p}/hook"),
            "loopback address",
        ),
        (
            "loopback6",
            "webhook",
            format!("http://[::1]:{}/hook", lo6.port),
            "loopback address",
        ),
        (
            "mapped",
            "discord",
            format!("http://[::ffff:127.0.0.1]:{p}/hook"),
            "loopback address",
        ),
        (
            "decimal",
            "slack",
            format!("http://2130706433:{p}/hook"),
            "loopback address",
        ),
        (
            "name",
            "webhook",
            format!("http://localhost:{p}/hook"),
            "host resolves only to non-public addresses (loopback)",
        ),
        (
            "private",
            "slack",
            "http://10.255.0.1/hook".to_owned(),
            "private address",
        ),
        (
            "metadata",
            "webhook",
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "cloud_metadata address",
        ),
    ];
    let mut want: HashMap<String, (&str, String)> = HashMap::new();
    for (name, kind, url, reason) in &refused {
        let id = add_channel(&stack, name, kind, url).await?;
        want.insert(id, (name, format!("refused_destination: {reason}")));
    }
    let redirect_id = add_channel(&stack, "redirect", "webhook", &redirect_url).await?;
    let ok_id = add_channel(&stack, "allowed", "webhook", &ok.url).await?;

    let id = format!("budget:{}:guard", stack.org_id);
    stack.produce_alert(&alert(&stack, &id, &[])).await?;
    let n = refused.len() + 2;
    let rows = stack
        .eventually(
            Duration::from_secs(60),
            "every delivery finished",
            || async {
                let rows = deliveries(&stack, &id).await?;
                let done = rows.len() == n && rows.values().all(|r| r.1 || r.2);
                Ok(done.then_some(rows))
            },
        )
        .await?;

    for (channel, (name, reason)) in &want {
        let (attempts, delivered, dead, error) = &rows[channel];
        assert!(!delivered && *dead, "{name}: {:?}", rows[channel]);
        assert_eq!(*attempts, 1, "{name}: refused at once, never retried");
        assert_eq!(error.as_deref(), Some(reason.as_str()), "{name}");
    }
    let (attempts, delivered, dead, error) = &rows[&redirect_id];
    assert!(
        !delivered && *dead && *attempts == 1,
        "{:?}",
        rows[&redirect_id]
    );
    assert_eq!(
        error.as_deref(),
        Some("http_3xx"),
        "a redirect is not followed"
    );
    assert!(rows[&ok_id].1, "the allowed receiver: {:?}", rows[&ok_id]);

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(lo4.accepted(), 1, "connections to 127.0.0.1 besides ours");
    assert_eq!(lo6.accepted(), 1, "connections to ::1 besides ours");
    assert_eq!(redirect_hits.load(Ordering::SeqCst), 1);
    assert_eq!(ok.attempts(), 1);
    let got = ok.received();
    assert_eq!(got.len(), 1, "the allowed receiver gets the alert once");
    assert_eq!(got[0].body["alert_id"], json!(id));

    // One audit row per refused delivery, naming the channel and reason, never the URL.
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, detail FROM audit_log
         WHERE org_id = $1 AND action = 'notification.destination_refused'",
    )
    .bind(&stack.org_id)
    .fetch_all(&stack.pool)
    .await?;
    assert_eq!(audited.len(), want.len(), "{audited:?}");
    for (actor, detail) in &audited {
        assert_eq!(actor, "notifier");
        let d: Value = serde_json::from_str(detail)?;
        let channel = d["channel_id"].as_str().unwrap_or_default();
        let (name, reason) = want.get(channel).context("an audited refused channel")?;
        assert_eq!(d["reason"], json!(reason), "{name}");
        assert_eq!(d["alert_id"], json!(id));
        assert!(!detail.contains("http://"), "{detail}");
    }

    // An id that is not visible ASCII still makes a valid header: percent-encoded.
    let odd = format!("rule:{}:agent=bad\nname é", stack.org_id);
    stack.produce_alert(&alert(&stack, &odd, &[&ok_id])).await?;
    let got = stack
        .eventually(Duration::from_secs(60), "the odd id delivered", || async {
            Ok(ok.received().get(1).cloned())
        })
        .await?;
    assert_eq!(got.body["alert_id"], json!(odd));
    let want_header = format!("rule:{}:agent=bad%0Aname%20%C3%A9", stack.org_id);
    assert_eq!(got.headers["x-agentops-alert-id"], want_header.as_str());
    assert_eq!(lo4.accepted() + lo6.accepted(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_api_refuses_non_public_urls_naming_the_field() -> anyhow::Result<()> {
    let stack = Stack::start(
        "outbound_guard_api",
        StackOptions {
            skip: vec![
                Component::Gateway,
                Component::Projections,
                Component::Processors,
            ],
            ..Default::default()
        },
    )
    .await?;
    let post = |path: &'static str, body: Value| {
        let req = stack
            .http
            .post(format!("{}{path}", stack.query_url))
            .bearer_auth(&stack.admin_key)
            .json(&body);
        async move {
            let r = req.send().await?;
            let status = r.status().as_u16();
            anyhow::Ok((status, r.json::<Value>().await?))
        }
    };
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/",
        "http://10.1.2.3/hook",
        "http://172.16.0.9/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://localhost:9000/",
        "http://0.0.0.0/",
    ] {
        let (status, body) = post(
            "/v1/admin/channels",
            json!({"name": "x", "kind": "webhook", "url": url}),
        )
        .await?;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("refused destination"), "{url}: {msg}");
    }
    // The legacy budget endpoint creates a channel too.
    let (status, body) = stack
        .http
        .put(format!("{}/v1/admin/budget", stack.query_url))
        .bearer_auth(&stack.admin_key)
        .json(&json!({"daily_usd": 5, "webhook_url": "http://169.254.169.254/"}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))?;
    let body: Value = body.json().await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "webhook_url", "{body}");

    // The operator's allowlist admits its address; public URLs pass.
    for (name, url) in [
        ("allowed", format!("http://{RECEIVER_IP}:9/hook")),
        (
            "public",
            "https://hooks.slack.com/services/T0/B0/x".to_owned(),
        ),
    ] {
        let (status, body) = post(
            "/v1/admin/channels",
            json!({"name": name, "kind": "slack", "url": url}),
        )
        .await?;
        assert_eq!(status, 201, "{url}: {body}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_channels WHERE org_id = $1")
        .bind(&stack.org_id)
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(n, 2, "no refused channel was stored");
    Ok(())
}
