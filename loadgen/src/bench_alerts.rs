//! `bench-processors alerts`: how long after the gateway's 202 for the event
//! that crosses a budget the webhook receives the alert, through the whole
//! pipeline (gateway → raw topic → processors' enrich stage → budget check →
//! alerts topic → notifier → Postgres → signed POST).
//!
//! A real HTTP receiver runs in this process (axum, loopback) and is the
//! org's webhook channel. While background traffic flows through the gateway
//! at a steady rate, each trial creates a fresh agent-scoped day budget
//! (limit $0.05, threshold 100%), waits longer than the processors'
//! governance reload, then posts one LLM call of that agent costing $0.06.
//! Latency = the crossing request's 202 → the receiver getting the POST
//! whose `X-AgentOps-Alert-Id` is `budget:<that budget's id>:...`. The POST
//! body's `occurred_at` (when the budget check decided) splits it in two.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;
use anyhow::{ensure, Context, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;

use crate::fleet::Fleet;
use crate::http::{excerpt, Gateway};
use crate::log;

#[derive(clap::Args, Debug)]
pub struct AlertOptions {
    /// Gateway base URL.
    #[arg(long)]
    pub gateway: String,
    /// Ingest key of the org.
    #[arg(long)]
    pub key: String,
    /// The org of that key.
    #[arg(long)]
    pub org: String,
    /// Postgres URL (budgets and the webhook channel are written there).
    #[arg(long)]
    pub database_url: String,
    /// Trials (one budget crossing each).
    #[arg(long, default_value_t = 50)]
    pub trials: usize,
    /// Background events per second through the gateway.
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    /// Events per background request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// The processors' `governance_reload_ms`: each budget is this old (plus
    /// 500 ms) before the crossing event is sent.
    #[arg(long, default_value_t = 2000)]
    pub governance_reload_ms: u64,
    /// The processors' `budget_check_interval_ms` (for the report, and the
    /// random delay spreading crossings over the check period).
    #[arg(long, default_value_t = 500)]
    pub budget_check_interval_ms: u64,
    /// Longest wait for one alert (s).
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// (alert id, when it arrived, the body's `occurred_at`) per POST.
type Inbox = Arc<Mutex<Vec<(String, Instant, Option<DateTime<Utc>>)>>>;

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: String) -> StatusCode {
    let at = Instant::now();
    let id = headers
        .get("x-agentops-alert-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let occurred = serde_json::from_str::<Value>(&body).ok().and_then(|v| {
        v["occurred_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc())
    });
    inbox
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((id, at, occurred));
    StatusCode::OK
}

/// Start the receiver on a loopback port; its URL.
async fn start_receiver(inbox: Inbox) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(inbox);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

const CHANNEL: &str = "
INSERT INTO notification_channels (org_id, name, kind, url, secret)
VALUES ($1, 'bench-receiver', 'webhook', $2, 'bench-secret')
ON CONFLICT (org_id, name) DO UPDATE SET url = EXCLUDED.url";
/// A standing org budget that is never crossed, so the org is always watched.
const STANDING_BUDGET: &str = "
INSERT INTO budgets (org_id, name, period, limit_usd, thresholds)
VALUES ($1, 'org-monthly', 'month', 1000000, '{80,100}') ON CONFLICT DO NOTHING";
const TRIAL_BUDGET: &str = "
INSERT INTO budgets (org_id, name, scope_kind, scope_value, period, limit_usd, thresholds)
VALUES ($1, $2, 'agent', $3, 'day', 0.05, '{100}') RETURNING id::text";

/// Post background batches at `rate` until `stop`; (events accepted, batches failed).
fn background(
    gw: Gateway,
    rate: u64,
    batch: usize,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(7);
        let fleet = Fleet::new(1000, &mut rng);
        let mut tick =
            tokio::time::interval(Duration::from_secs_f64(batch as f64 / rate.max(1) as f64));
        let mut pending: Vec<Value> = Vec::new();
        let mut sends = tokio::task::JoinSet::new();
        let (mut accepted, mut failed) = (0, 0);
        while !stop.is_cancelled() {
            tick.tick().await;
            while pending.len() < batch {
                let now = Utc::now().timestamp_micros();
                pending.extend(
                    fleet
                        .random_run(&mut rng, now - 30_000_000, false)
                        .into_iter()
                        .map(|(_, v)| v),
                );
            }
            let events: Vec<Value> = pending.drain(..batch).collect();
            let (gw, stop) = (gw.clone(), stop.clone());
            sends.spawn(async move { gw.send(&events, &stop).await });
            while let Some(Ok(out)) = sends.try_join_next() {
                accepted += out.accepted;
                failed += u64::from(out.failed.is_some());
            }
        }
        while let Some(Ok(out)) = sends.join_next().await {
            accepted += out.accepted;
            failed += u64::from(out.failed.is_some());
        }
        (accepted, failed)
    })
}

/// The crossing event: one gpt-4o call of `agent`, $0.06 at list prices.
fn crossing_event(agent: &str) -> Value {
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({"events": [{
        "event_id": uuid::Uuid::new_v4().to_string(), "type": "llm_call", "agent_id": agent,
        "timestamp": now, "run_id": format!("run-{}", uuid::Uuid::new_v4().simple()),
        "workflow_id": "alert-bench", "provider": "openai", "model": "gpt-4o",
        "input_tokens": 20000, "output_tokens": 1000, "latency_ms": 900, "status": "ok",
    }]})
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

pub(crate) async fn run(o: AlertOptions) -> Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&o.database_url)
        .await?;
    let inbox: Inbox = Arc::default();
    let url = start_receiver(inbox.clone()).await?;
    sqlx::query(CHANNEL)
        .bind(&o.org)
        .bind(&url)
        .execute(&pool)
        .await?;
    sqlx::query(STANDING_BUDGET)
        .bind(&o.org)
        .execute(&pool)
        .await?;
    let gw = Gateway::new(&o.gateway, &o.key)?;
    let stop = CancellationToken::new();
    let bg = background(gw.clone(), o.rate, o.batch, stop.clone());
    log(&format!(
        "alert latency: {} trials, background {} events/s; processors: budget_check_interval_ms {}, governance_reload_ms {}",
        o.trials, o.rate, o.budget_check_interval_ms, o.governance_reload_ms
    ));
    tokio::time::sleep(Duration::from_secs(3)).await; // background flowing

    let run_tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut rng = StdRng::from_os_rng();
    // (202 → POST, 202 → decided, decided → POST) in ms.
    let mut lat: Vec<(f64, Option<f64>, Option<f64>)> = Vec::new();
    let mut missed = 0;
    for trial in 0..o.trials {
        let agent = format!("alert-bench-{run_tag}-{trial}");
        let budget: String = sqlx::query_scalar(TRIAL_BUDGET)
            .bind(&o.org)
            .bind(format!("trial-{run_tag}-{trial}"))
            .bind(&agent)
            .fetch_one(&pool)
            .await?;
        let jitter = rng.random_range(0..o.budget_check_interval_ms.max(1));
        tokio::time::sleep(Duration::from_millis(o.governance_reload_ms + 500 + jitter)).await;
        let body = serde_json::to_vec(&crossing_event(&agent))?;
        let (status, _, reply) = gw.post_once(body).await?;
        let (acked, acked_wall) = (Instant::now(), Utc::now());
        ensure!(
            status == reqwest::StatusCode::ACCEPTED,
            "crossing event answered {status}: {}",
            excerpt(&reply)
        );
        let prefix = format!("budget:{budget}:");
        let deadline = acked + Duration::from_secs(o.timeout_secs);
        let got = loop {
            let found = inbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|(id, _, _)| id.starts_with(&prefix))
                .cloned();
            if found.is_some() || Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        match got {
            Some((_, at, occurred)) => {
                let total = (at - acked).as_secs_f64() * 1000.0;
                let decided = occurred
                    .map(|t| (t - acked_wall).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                lat.push((total, decided, decided.map(|d| total - d)));
                log(&format!("trial {}: {total:.0} ms", trial + 1));
            }
            None => {
                missed += 1;
                log(&format!(
                    "trial {}: no alert within {} s",
                    trial + 1,
                    o.timeout_secs
                ));
            }
        }
        sqlx::query("DELETE FROM budgets WHERE id = $1::uuid")
            .bind(&budget)
            .execute(&pool)
            .await
            .context("deleting the trial budget")?;
    }
    stop.cancel();
    let (bg_events, bg_failed) = bg.await?;

    let total: Vec<f64> = lat.iter().map(|l| l.0).collect();
    let decided: Vec<f64> = lat.iter().filter_map(|l| l.1).collect();
    let notify: Vec<f64> = lat.iter().filter_map(|l| l.2).collect();
    let fmt = |v: &[f64]| {
        format!(
            "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            quantile(v, 0.5),
            quantile(v, 0.99),
            quantile(v, 1.0)
        )
    };
    println!(
        "alert latency, {} trials ({} alerts received, {missed} missed), background {} events/s ({bg_events} accepted, {bg_failed} batches failed)",
        o.trials,
        lat.len(),
        o.rate
    );
    println!(
        "  processors: budget_check_interval_ms {}, governance_reload_ms {} (each budget {} ms + 0..{} ms old before its crossing)",
        o.budget_check_interval_ms,
        o.governance_reload_ms,
        o.governance_reload_ms + 500,
        o.budget_check_interval_ms
    );
    println!("  crossing event's 202 → webhook POST: {}", fmt(&total));
    println!(
        "    202 → budget check decided (alert occurred_at): {}",
        fmt(&decided)
    );
    println!(
        "    decided → webhook POST (alerts topic, notifier, Postgres, POST): {}",
        fmt(&notify)
    );
    let r = |v: &[f64], q: f64| quantile(v, q).round();
    println!(
        "{}",
        json!({"bench": "alert_latency", "trials": o.trials, "received": lat.len(), "missed": missed,
               "background_eps": o.rate, "budget_check_interval_ms": o.budget_check_interval_ms,
               "governance_reload_ms": o.governance_reload_ms,
               "p50_ms": r(&total, 0.5), "p99_ms": r(&total, 0.99), "max_ms": r(&total, 1.0),
               "decided_p50_ms": r(&decided, 0.5), "notify_p50_ms": r(&notify, 0.5)})
    );
    ensure!(missed == 0, "{missed} of {} alerts never arrived", o.trials);
    Ok(())
}

/// `bench-processors notify-guard`: the notifier's POST with the outbound
/// guard beside the same POST without it, in one run.
#[derive(clap::Args, Debug)]
pub struct GuardOptions {
    /// POSTs per side and connection mode.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Host name of the receiver's URL: a name makes every new connection go
    /// through the guard's resolver (an IP literal only through its check).
    #[arg(long, default_value = "localhost")]
    pub host: String,
}

/// A receiver that reads the body and answers 200, like a webhook endpoint.
async fn start_sink() -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|_body: axum::body::Bytes| async { StatusCode::OK }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(port)
}

/// A Slack-shaped notification body of the usual size (~1.3 KB).
fn sample_body() -> Vec<u8> {
    let section = "*What:* budget_exceeded (budget \"eng daily\")\n*Where:* org acme, scope agent=a1\n*How much:* $12.35 vs threshold $10.00\n*When:* 2026-11-22 10:00:00 UTC (period 2026-11-22)";
    serde_json::to_vec(&json!({
        "text": "FIRING [critical] budget_exceeded: budget \"eng daily\" (acme) — Budget eng daily: $12.35 of $10.00 spent http://127.0.0.1:8081/?org=acme",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "FIRING [critical] budget_exceeded: budget \"eng daily\" (acme)"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{section}\n<http://127.0.0.1:8081/?org=acme|Open in AgentOps>")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Budget eng daily: $12.35 of $10.00 spent ".repeat(8)}]}
        ]
    }))
    .unwrap_or_default()
}

pub(crate) async fn run_guard(o: GuardOptions) -> Result<()> {
    use agentops_runtime::outbound::{self, Outbound, OutboundConfig};
    let port = start_sink().await?;
    let url = format!("http://{}:{port}/hook", o.host);
    // The receiver is on loopback: the operator allows that address (not
    // the name), so every resolution is checked address by address.
    let cfg = OutboundConfig {
        allow_destinations: vec!["127.0.0.1/32".into(), "::1/128".into()],
        ..OutboundConfig::default()
    };
    let total = Duration::from_secs(10);
    let ua = "agentops-notifier-bench";
    let body = sample_body();
    println!(
        "notifier POST latency, outbound guard vs a plain client with the same settings; {} POSTs per side and mode to {url}, {} B body, sides interleaved",
        o.requests,
        body.len()
    );
    let mut figures = Vec::new();
    for (mode, fresh) in [
        ("new connection per POST", true),
        ("pooled connections", false),
    ] {
        let builder = || {
            let b = outbound::client_builder(&cfg, total, ua);
            if fresh {
                b.pool_max_idle_per_host(0)
            } else {
                b
            }
        };
        let guarded = Outbound::from_builder(&cfg, builder())?;
        let plain = builder().build()?;
        let headers = || {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("application/json"),
            );
            h
        };
        // Warm-up (first connections, allocator), not counted.
        for _ in 0..50 {
            guarded.post(&url, headers(), body.clone()).await?;
            let r = plain
                .post(&url)
                .headers(headers())
                .body(body.clone())
                .send()
                .await?;
            outbound::read_capped(r, cfg.max_response_bytes).await;
        }
        let (mut g, mut p) = (Vec::new(), Vec::new());
        for i in 0..o.requests * 2 {
            let t = Instant::now();
            let status = if i % 2 == 0 {
                guarded.post(&url, headers(), body.clone()).await?.status
            } else {
                let r = plain
                    .post(&url)
                    .headers(headers())
                    .body(body.clone())
                    .send()
                    .await?;
                outbound::read_capped(r, cfg.max_response_bytes)
                    .await
                    .status
            };
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            ensure!(status == StatusCode::OK, "the sink answered {status}");
            if i % 2 == 0 {
                g.push(ms)
            } else {
                p.push(ms)
            }
        }
        let (g50, g99, p50, p99) = (
            quantile(&g, 0.5),
            quantile(&g, 0.99),
            quantile(&p, 0.5),
            quantile(&p, 0.99),
        );
        println!(
            "  {mode}: guarded p50 {g50:.3} ms, p99 {g99:.3} ms; plain p50 {p50:.3} ms, p99 {p99:.3} ms; guarded/plain p50 {:.2}, p99 {:.2}",
            g50 / p50,
            g99 / p99
        );
        figures.push(json!({"mode": if fresh { "fresh" } else { "pooled" },
            "guarded_p50_ms": g50, "guarded_p99_ms": g99, "plain_p50_ms": p50, "plain_p99_ms": p99,
            "ratio_p50": g50 / p50, "ratio_p99": g99 / p99}));
    }
    println!(
        "{}",
        json!({"bench": "notify_guard", "requests": o.requests, "host": o.host, "modes": figures})
    );
    Ok(())
}
