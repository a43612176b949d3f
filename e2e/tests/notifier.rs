//! End-to-end: the notifier (alerts topic → Slack, Discord, signed webhooks,
//! the daily digest) and the dead-letter topic, on the real broker and
//! Postgres with real HTTP receivers. Alert records are produced straight to
//! the stack's alerts topic, as the evaluators do.

use std::collections::HashMap;
use std::time::Duration;

use agentops_e2e::events;
use agentops_e2e::kafka::read_topic;
use agentops_e2e::webhook::{Received, Receiver};
use agentops_e2e::{kafka_brokers, processors_only, Component, Stack, StackOptions};
use hmac::{Hmac, Mac};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use sha2::Sha256;

/// Only what the notifier needs: Kafka, Postgres and the processors.
fn producer() -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("message.timeout.ms", "300000")
        .create()?)
}

async fn produce(p: &FutureProducer, topic: &str, key: &str, payload: &[u8]) -> anyhow::Result<()> {
    p.send(
        FutureRecord::to(topic).key(key).payload(payload),
        Duration::from_secs(30),
    )
    .await
    .map_err(|(e, _)| anyhow::anyhow!("produce to {topic}: {e}"))?;
    Ok(())
}

async fn produce_alert(stack: &Stack, p: &FutureProducer, alert: &Value) -> anyhow::Result<()> {
    let key = alert["org_id"].as_str().unwrap_or_default().to_owned();
    produce(p, &stack.topic("alerts"), &key, &serde_json::to_vec(alert)?).await
}

/// A channel of the stack's org; returns its id.
async fn add_channel(
    stack: &Stack,
    name: &str,
    kind: &str,
    url: &str,
    secret: Option<&str>,
) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar(
        "INSERT INTO notification_channels (org_id, name, kind, url, secret)
         VALUES ($1, $2, $3, $4, $5) RETURNING id::text",
    )
    .bind(&stack.org_id)
    .bind(name)
    .bind(kind)
    .bind(url)
    .bind(secret)
    .fetch_one(&stack.pool)
    .await?)
}

fn budget_alert(stack: &Stack, id: &str, transition: &str) -> Value {
    json!({
        "alert_id": id,
        "org_id": stack.org_id,
        "source": "budget",
        "source_id": "6f1c1f0e-8a47-4a0b-9f57-3f6f0c7c2b11",
        "kind": "budget_exceeded",
        "scope_key": "agent=a1",
        "transition": transition,
        "severity": "critical",
        "period": "2026-11-22",
        "threshold": 10.0,
        "value": 12.5,
        "message": "Budget eng-daily: $12.50 of $10.00 spent",
        "details": {"name": "eng-daily", "unit": "USD"},
        "channels": [],
        "occurred_at": chrono::Utc::now().to_rfc3339(),
    })
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The verification snippet of the README ("Notifications"), verbatim.
fn verify(secret: &str, ts: &str, signature: &str, raw_body: &[u8], now_unix: i64) -> bool {
    let fresh = ts.parse::<i64>().is_ok_and(|t| (now_unix - t).abs() <= 300);
    let sig = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok());
    let (true, Some(sig)) = (fresh, sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    mac.verify_slice(&sig).is_ok() // constant time
}

/// Recompute the signature independently over the raw body received.
fn verify_signature(r: &Received, secret: &str) -> bool {
    verify(
        secret,
        header(r, "x-agentops-timestamp"),
        header(r, "x-agentops-signature"),
        &r.raw,
        chrono::Utc::now().timestamp(),
    )
}

async fn delivery_rows(stack: &Stack) -> anyhow::Result<Vec<(String, String, i32, bool, bool)>> {
    Ok(sqlx::query_as(
        "SELECT channel_id::text, transition, attempts,
                delivered_at IS NOT NULL, dead_lettered_at IS NOT NULL
         FROM alert_deliveries ORDER BY channel_id, transition",
    )
    .fetch_all(&stack.pool)
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_failing_three_times_gets_one_signed_delivery() -> anyhow::Result<()> {
    let hook = Receiver::start(3).await?;
    let stack = Stack::start("notify_retry", processors_only(1, &[])).await?;
    let secret = "0123456789abcdef0123456789abcdef";
    let channel = add_channel(&stack, "ops", "webhook", &hook.url, Some(secret)).await?;
    let p = producer()?;
    let id = format!("budget:{}:b1:2026-11-22:100", stack.org_id);
    produce_alert(&stack, &p, &budget_alert(&stack, &id, "firing")).await?;

    let got = stack
        .eventually(Duration::from_secs(60), "webhook delivered", || async {
            Ok(hook.received().first().cloned())
        })
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.received().len(), 1, "one success");
    assert_eq!(hook.attempts(), 4, "three failures, then the success");
    assert!(
        verify_signature(&got, secret),
        "signature: {:?}",
        got.headers
    );
    assert!(!verify_signature(&got, "another secret"));
    let ts: i64 = header(&got, "x-agentops-timestamp").parse()?;
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 120);
    assert_eq!(header(&got, "x-agentops-alert-id"), id);
    assert_eq!(got.body["alert_id"], json!(id));
    assert_eq!(got.body["kind"], "budget_exceeded");
    assert_eq!(got.body["value"], 12.5);
    assert_eq!(got.body["transition"], "firing");
    assert_eq!(
        got.body["dashboard_url"],
        json!(format!("http://127.0.0.1:8081/?org={}", stack.org_id))
    );

    let rows = delivery_rows(&stack).await?;
    assert_eq!(rows, vec![(channel, "firing".into(), 4, true, false)]);
    let (notified, state, source): (bool, String, String) = sqlx::query_as(
        "SELECT notified_at IS NOT NULL, state, source FROM alerts WHERE alert_id = $1",
    )
    .bind(&id)
    .fetch_one(&stack.pool)
    .await?;
    assert!(notified);
    assert_eq!((state.as_str(), source.as_str()), ("firing", "budget"));
    let history: Vec<(String, String)> =
        sqlx::query_as("SELECT state, actor FROM alert_history WHERE alert_id = $1")
            .bind(&id)
            .fetch_all(&stack.pool)
            .await?;
    assert_eq!(history, vec![("firing".into(), "budget".into())]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_two_instances_deliver_once_per_channel_and_transition() -> anyhow::Result<()>
{
    let a = Receiver::start(0).await?;
    let b = Receiver::start(1).await?;
    // Both dispatchers look for work every 20 ms: they race for every row.
    let stack = Stack::start(
        "notify_dup",
        processors_only(2, &[("AGENTOPS_NOTIFY_POLL_MS", "20")]),
    )
    .await?;
    add_channel(&stack, "a", "webhook", &a.url, Some("secret-a")).await?;
    add_channel(&stack, "b", "webhook", &b.url, None).await?;
    let p = producer()?;
    let id = format!("policy:{}:p1:{}", stack.org_id, events::id());
    let firing = budget_alert(&stack, &id, "firing");
    for _ in 0..2 {
        produce_alert(&stack, &p, &firing).await?;
    }
    stack
        .eventually(
            Duration::from_secs(60),
            "both channels notified",
            || async { Ok((!a.received().is_empty() && !b.received().is_empty()).then_some(())) },
        )
        .await?;
    // The resolution, twice as well: one more message per channel.
    let resolved = budget_alert(&stack, &id, "resolved");
    for _ in 0..2 {
        produce_alert(&stack, &p, &resolved).await?;
    }
    stack
        .eventually(
            Duration::from_secs(60),
            "both channels resolved",
            || async { Ok((a.received().len() >= 2 && b.received().len() >= 2).then_some(())) },
        )
        .await?;
    // And a third copy of the firing record, after the fact.
    produce_alert(&stack, &p, &firing).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (name, r) in [("a", &a), ("b", &b)] {
        let got = r.received();
        let transitions: Vec<&str> = got
            .iter()
            .map(|g| g.body["transition"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(transitions, ["firing", "resolved"], "channel {name}");
    }
    assert_eq!(b.attempts(), 3, "b failed once, then got both");
    let rows = delivery_rows(&stack).await?;
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.3 && !r.4), "{rows:?}");
    let (state, resolved_at): (String, bool) =
        sqlx::query_as("SELECT state, resolved_at IS NOT NULL FROM alerts WHERE alert_id = $1")
            .bind(&id)
            .fetch_one(&stack.pool)
            .await?;
    assert_eq!((state.as_str(), resolved_at), ("resolved", true));
    let history: Vec<String> =
        sqlx::query_scalar("SELECT state FROM alert_history WHERE alert_id = $1 ORDER BY id")
            .bind(&id)
            .fetch_all(&stack.pool)
            .await?;
    assert_eq!(history, ["firing", "resolved"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_discord_get_their_shapes() -> anyhow::Result<()> {
    let slack = Receiver::start(0).await?;
    let discord = Receiver::start(0).await?;
    let stack = Stack::start(
        "notify_shapes",
        processors_only(1, &[("AGENTOPS_DASHBOARD_URL", "https://agentops.example")]),
    )
    .await?;
    let s_id = add_channel(&stack, "slack", "slack", &slack.url, None).await?;
    let d_id = add_channel(&stack, "discord", "discord", &discord.url, None).await?;
    // A third channel the alert does not name: not notified.
    let other = Receiver::start(0).await?;
    add_channel(&stack, "other", "webhook", &other.url, None).await?;
    let p = producer()?;
    let id = format!("rule:{}", events::id());
    let mut alert = budget_alert(&stack, &id, "firing");
    alert["source"] = json!("rule");
    alert["kind"] = json!("error_rate");
    alert["severity"] = json!("warning");
    alert["threshold"] = json!(0.1);
    alert["value"] = json!(0.25);
    alert["details"] = json!({"rule_name": "errors > 10%", "unit": "ratio"});
    alert["channels"] = json!([s_id, d_id]);
    produce_alert(&stack, &p, &alert).await?;
    let (s, d) = stack
        .eventually(Duration::from_secs(60), "slack and discord", || async {
            Ok(slack
                .received()
                .first()
                .cloned()
                .zip(discord.received().first().cloned()))
        })
        .await?;
    let link = format!("https://agentops.example/?org={}", stack.org_id);

    let text = s.body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("FIRING") && text.contains("error_rate"),
        "{}",
        s.body
    );
    let blocks = s.body["blocks"].as_array().expect("blocks");
    let section = blocks
        .iter()
        .find(|b| b["type"] == "section")
        .expect("a section block");
    assert_eq!(section["text"]["type"], "mrkdwn");
    let md = section["text"]["text"].as_str().unwrap_or_default();
    for part in [
        "*What:* error_rate (rule \"errors &gt; 10%\")".to_owned(),
        format!("*Where:* org {}, scope agent=a1", stack.org_id),
        "*How much:* 25.0% vs threshold 10.0%".to_owned(),
        "*When:*".to_owned(),
        format!("<{link}|Open in AgentOps>"),
    ] {
        assert!(md.contains(&part), "{part:?} in {md}");
    }

    // Markdown specials in Discord's content are escaped (no mention or link injection).
    assert!(d.body["content"]
        .as_str()
        .unwrap_or_default()
        .contains("error\\_rate"));
    assert_eq!(d.body["allowed_mentions"], json!({"parse": []}));
    let e = &d.body["embeds"][0];
    assert!(
        e["title"]
            .as_str()
            .unwrap_or_default()
            .contains("errors > 10%"),
        "{e}"
    );
    assert!(e["description"]
        .as_str()
        .unwrap_or_default()
        .contains("Budget eng-daily"));
    assert_eq!(e["color"], 0xEC_B2_2E);
    assert_eq!(e["url"], json!(link));
    let fields: HashMap<&str, &str> = e["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default(),
                f["value"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(fields["How much"], "25.0% vs threshold 10.0%");
    assert!(fields["Where"].contains("agent=a1"));
    assert!(fields.contains_key("What") && fields.contains_key("When"));

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(slack.received().len(), 1);
    assert_eq!(discord.received().len(), 1);
    assert_eq!(other.attempts(), 0, "a channel the alert does not name");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_notifications_are_dead_lettered() -> anyhow::Result<()> {
    let down = Receiver::always_failing(503).await?;
    let gone = Receiver::always_failing(404).await?;
    let stack = Stack::start(
        "notify_dlq",
        processors_only(1, &[("AGENTOPS_WEBHOOK_MAX_ATTEMPTS", "3")]),
    )
    .await?;
    let secret = "never-in-the-dlq";
    let down_id = add_channel(&stack, "down", "webhook", &down.url, Some(secret)).await?;
    let gone_id = add_channel(&stack, "gone", "slack", &gone.url, None).await?;
    let p = producer()?;
    // A record that is not an alert: dead-lettered by the consumer, with its reason.
    produce(&p, &stack.topic("alerts"), &stack.org_id, b"{not an alert").await?;
    let id = format!("budget:{}:dlq", stack.org_id);
    produce_alert(&stack, &p, &budget_alert(&stack, &id, "firing")).await?;

    let rows = stack
        .eventually(Duration::from_secs(60), "both dead-lettered", || async {
            let rows = delivery_rows(&stack).await?;
            Ok((rows.len() == 2 && rows.iter().all(|r| r.4)).then_some(rows))
        })
        .await?;
    let attempts: HashMap<String, i32> = rows.iter().map(|r| (r.0.clone(), r.2)).collect();
    assert_eq!(attempts[&down_id], 3, "503 is retried up to the limit");
    assert_eq!(attempts[&gone_id], 1, "404 is permanent");
    assert_eq!(down.attempts(), 3);
    assert_eq!(gone.attempts(), 1);
    assert!(rows.iter().all(|r| !r.3), "nothing delivered");
    // Read keys see the delivery rows: a coarse class, not the error text.
    let errors: HashMap<String, String> =
        sqlx::query_as("SELECT channel_id::text, last_error FROM alert_deliveries")
            .fetch_all(&stack.pool)
            .await?
            .into_iter()
            .collect();
    assert_eq!(errors[&down_id], "http_5xx", "{errors:?}");
    assert_eq!(errors[&gone_id], "http_4xx", "{errors:?}");

    let dlq = read_topic(&stack.topic("dlq"), Duration::from_secs(30), |r| {
        r.len() >= 3
    })
    .await?;
    assert_eq!(dlq.len(), 3, "{dlq:?}");
    let garbage = dlq
        .iter()
        .find(|r| r.payload == b"{not an alert")
        .expect("the undecodable record");
    assert!(
        garbage.headers["dlq.reason"].contains("undecodable"),
        "{garbage:?}"
    );
    assert_eq!(garbage.headers["dlq.topic"], stack.topic("alerts"));
    let mut seen = Vec::new();
    for r in dlq.iter().filter(|r| r.payload != b"{not an alert") {
        let text = String::from_utf8_lossy(&r.payload);
        assert!(!text.contains(secret) && !text.contains(&down.url) && !text.contains(&gone.url));
        let v: Value = serde_json::from_slice(&r.payload)?;
        assert_eq!(v["alert"]["alert_id"], json!(id));
        assert!(r.headers["dlq.reason"].starts_with("notification dead-lettered"));
        // Operators get the answer itself in the record's detail.
        let (class, status) = if v["channel_kind"] == "webhook" {
            ("http_5xx", "503")
        } else {
            ("http_4xx", "404")
        };
        assert_eq!(v["last_error"], class, "{v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(status),
            "{v}"
        );
        seen.push((
            v["channel_id"].as_str().unwrap_or_default().to_owned(),
            v["channel_kind"].as_str().unwrap_or_default().to_owned(),
            v["attempts"].as_i64().unwrap_or_default(),
        ));
    }
    seen.sort();
    let mut want = vec![
        (down_id, "webhook".to_owned(), 3),
        (gone_id, "slack".to_owned(), 1),
    ];
    want.sort();
    assert_eq!(seen, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_digest_sends_yesterday_against_the_week_before_once() -> anyhow::Result<()> {
    let hook = Receiver::start(0).await?;
    let stack = Stack::start(
        "notify_digest",
        StackOptions {
            processors: 2,
            skip: vec![Component::Gateway, Component::QueryApi],
            env: vec![("AGENTOPS_DIGEST_CHECK_SECS".into(), "1".into())],
            ..Default::default()
        },
    )
    .await?;
    add_channel(&stack, "digest", "webhook", &hook.url, Some("s")).await?;
    // The projections create the aggregate relations (plain PostgreSQL here).
    stack
        .eventually(Duration::from_secs(30), "agg_org_1d exists", || async {
            let r: Option<String> = sqlx::query_scalar("SELECT to_regclass('agg_org_1d')::text")
                .fetch_one(&stack.pool)
                .await?;
            Ok(r)
        })
        .await?;
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("a yesterday");
    let day = |n: i64| yesterday - chrono::Duration::days(n);
    // (day, agent, cost, completed, failed)
    let mut rows = vec![
        (day(0), "a1", 3.0, 10, 2),
        (day(0), "a2", 1.5, 5, 0),
        (day(0), "a3", 0.25, 1, 1),
        (today, "a1", 50.0, 100, 0),   // today: not in the digest
        (day(8), "a1", 100.0, 100, 0), // before the 7-day window
    ];
    for n in 1..=7 {
        rows.push((day(n), "a1", 1.0, 4, 1)); // 7-day average: $1.00, 5 runs
    }
    for (d, agent, cost, completed, failed) in rows {
        sqlx::query(
            "INSERT INTO agg_1d (org_id, bucket, agent_id, cost_usd, runs_completed, runs_failed)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&stack.org_id)
        .bind(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .bind(agent)
        .bind(cost)
        .bind(completed as i64)
        .bind(failed as i64)
        .execute(&stack.pool)
        .await?;
    }
    // The org and per-agent levels hold the same days summed (the totals
    // are read from the org's, the top agents from the agents').
    for (level, key) in [("agg_org_1d", ""), ("agg_agent_1d", ", agent_id")] {
        sqlx::query(&format!(
            "INSERT INTO {level} (org_id, bucket{key}, cost_usd, runs_completed, runs_failed)
             SELECT org_id, bucket{key}, sum(cost_usd), sum(runs_completed), sum(runs_failed)
             FROM agg_1d WHERE org_id = $1 GROUP BY org_id, bucket{key}"
        ))
        .bind(&stack.org_id)
        .execute(&stack.pool)
        .await?;
    }
    // Subscribed after the figures are in: due at once (hour 0).
    sqlx::query("INSERT INTO digest_subscriptions (org_id, hour_utc) VALUES ($1, 0)")
        .bind(&stack.org_id)
        .execute(&stack.pool)
        .await?;
    let got = stack
        .eventually(Duration::from_secs(60), "digest delivered", || async {
            Ok(hook.received().first().cloned())
        })
        .await?;
    let date = yesterday.format("%Y-%m-%d").to_string();
    let b = &got.body;
    assert_eq!(
        b["alert_id"],
        json!(format!("digest:{}:{date}", stack.org_id))
    );
    assert_eq!(
        (b["source"].as_str(), b["severity"].as_str()),
        (Some("digest"), Some("info"))
    );
    assert_eq!(b["period"], json!(date));
    assert!(
        (b["value"].as_f64().unwrap_or_default() - 4.75).abs() < 1e-9,
        "{b}"
    );
    assert!(
        (b["threshold"].as_f64().unwrap_or_default() - 1.0).abs() < 1e-9,
        "{b}"
    );
    let d = &b["details"];
    assert_eq!(d["runs"], 19, "{d}");
    assert_eq!(d["runs_completed"], 16, "{d}");
    assert_eq!(d["runs_failed"], 3, "{d}");
    assert!((d["success_rate"].as_f64().unwrap_or_default() - 16.0 / 19.0).abs() < 1e-9);
    assert!((d["avg_7d"]["runs"].as_f64().unwrap_or_default() - 5.0).abs() < 1e-9);
    assert!((d["avg_7d"]["success_rate"].as_f64().unwrap_or_default() - 0.8).abs() < 1e-9);
    assert!((d["change_pct"].as_f64().unwrap_or_default() - 375.0).abs() < 1e-9);
    let top: Vec<&str> = d["top_agents"]
        .as_array()
        .expect("top agents")
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(top, ["a1", "a2", "a3"]);
    assert_eq!(d["top_agents"][0]["cost_usd"], 3.0);
    assert_eq!(d["top_agents"][0]["runs"], 12);
    let msg = b["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("$4.75 spent") && msg.contains("19 runs, 3 failed"),
        "{msg}"
    );

    // Two instances checking every second for a few more seconds: still one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(hook.received().len(), 1, "{:?}", hook.received());
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE source = 'digest'")
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(n, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_raw_topic_is_dead_lettered_and_later_events_flow() -> anyhow::Result<()> {
    let stack = Stack::start("notify_raw_dlq", StackOptions::default()).await?;
    let p = producer()?;
    let agent = "dlq-agent";
    let key = format!("{}/{agent}", stack.org_id);
    let garbage: &[u8] = b"\x00\x01 definitely not avro";
    produce(&p, &stack.topic("raw"), &key, garbage).await?;
    // Valid events after it, on the same key (the same partition).
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.extend(events::run(agent, &format!("r-{i}"), i == 3, 100, 5));
    }
    stack.send_all(&sent, 100).await?;
    let overview = stack
        .eventually(
            Duration::from_secs(60),
            "the valid events counted",
            || async {
                let o = stack.get("/v1/metrics/overview?window=24h").await?;
                Ok((o["events"] == json!(sent.len())).then_some(o))
            },
        )
        .await?;
    assert_eq!(overview["runs"], 4, "{overview}");
    assert_eq!(overview["failed"], 1, "{overview}");

    let dlq = read_topic(&stack.topic("dlq"), Duration::from_secs(30), |r| {
        !r.is_empty()
    })
    .await?;
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    let r = &dlq[0];
    assert_eq!(r.payload, garbage);
    assert!(!r.headers["dlq.reason"].is_empty(), "{r:?}");
    assert_eq!(r.headers["dlq.topic"], stack.topic("raw"));
    assert!(r.headers["dlq.partition"].parse::<i32>().is_ok(), "{r:?}");
    assert_eq!(
        r.headers["dlq.offset"], "0",
        "the first record of its partition"
    );
    Ok(())
}
