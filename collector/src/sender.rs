//! Drains the outbox to `POST /v1/events`: batches of at most `batch_size`
//! events and about 900 KB (the gateway takes 1 MiB), gzip, retries with
//! exponential backoff and jitter honoring `Retry-After` on 429, 503, other
//! 5xx and network errors. Rows are deleted only after a 202 (or a 400,
//! whose rejected events are logged, counted and dropped: sending them again
//! would be refused again).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use rand::Rng;
use serde_json::Value;

use crate::store::Store;

/// Request bodies stay under the gateway's 1 MiB (decompressed).
pub const MAX_BATCH_BYTES: usize = 900_000;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A `Retry-After` is honored up to this (the gateway sends at most 3600).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What one attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing queued.
    Empty,
    /// A 202 or a 400: the batch's rows are gone from the outbox.
    Done { accepted: u64, rejected: u64 },
    /// Try again after `after` (the rows stay).
    Retry { after: Duration, reason: String },
}

pub struct Sender {
    pub store: Store,
    client: reqwest::Client,
    url: String,
    api_key: String,
    pub batch_size: usize,
    /// Consecutive failures (for the backoff).
    failures: u32,
}

impl Sender {
    pub fn new(
        store: Store,
        url: String,
        api_key: String,
        batch_size: usize,
        timeout: Duration,
    ) -> Result<Sender> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .user_agent(concat!("agentops-collector/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Sender {
            store,
            client,
            url,
            api_key,
            batch_size: batch_size.clamp(1, 1000),
            failures: 0,
        })
    }

    fn backoff(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = Duration::from_millis(500u64.saturating_mul(1u64 << self.failures.min(8)));
        let cap = exp.min(MAX_BACKOFF);
        // Equal jitter: half fixed, half random.
        let half = cap / 2;
        half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
    }

    fn record(&self, result: &str) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let _ = self.store.set_meta("last_send_at", &now);
        let _ = self.store.set_meta("last_send_result", result);
    }

    /// Send the oldest batch once.
    pub async fn send_once(&mut self) -> Result<Outcome> {
        let batch = self.store.outbox_batch(self.batch_size, MAX_BATCH_BYTES)?;
        if batch.is_empty() {
            return Ok(Outcome::Empty);
        }
        let mut body =
            Vec::with_capacity(batch.iter().map(|(_, b)| b.len() + 1).sum::<usize>() + 16);
        body.extend_from_slice(b"{\"events\":[");
        for (i, (_, b)) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(b.as_bytes());
        }
        body.extend_from_slice(b"]}");
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        gz.write_all(&body)?;
        let gz = gz.finish()?;
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        let resp = self
            .client
            .post(&self.url)
            .bearer_auth(&self.api_key)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gz)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let after = self.backoff();
                let reason = format!("network: {e}");
                tracing::warn!(error = %e, retry_in_ms = after.as_millis() as u64, "send failed");
                self.record(&reason);
                self.store.bump("send_retries", 1)?;
                return Ok(Outcome::Retry { after, reason });
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let text = resp.text().await.unwrap_or_default();
        match status {
            202 | 200 | 400 => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let rejected = v
                    .get("rejected")
                    .or_else(|| v.get("error").and_then(|e| e.get("rejected")))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for r in &rejected {
                    let idx = r.get("index").and_then(Value::as_u64);
                    let event_id = idx
                        .and_then(|i| batch.get(i as usize))
                        .and_then(|(_, b)| serde_json::from_str::<Value>(b).ok())
                        .and_then(|e| e.get("event_id").and_then(Value::as_str).map(str::to_owned));
                    let field_name = r.get("field").and_then(|f| f.as_str()).unwrap_or("");
                    let why = r.get("error").and_then(|f| f.as_str()).unwrap_or("");
                    tracing::warn!(
                        index = idx,
                        event_id = event_id.as_deref(),
                        rejected_field = field_name,
                        reason = why,
                        "event rejected by the gateway, dropped"
                    );
                }
                let n = ids.len() as u64;
                let rejected_n = if status == 400 && rejected.is_empty() {
                    tracing::error!(status, body = %text, "batch refused whole, dropped");
                    n
                } else {
                    (rejected.len() as u64).min(n)
                };
                let accepted = n - rejected_n;
                self.store.outbox_delete(&ids)?;
                self.store.bump("sent_events", accepted)?;
                self.store.bump("rejected_events", rejected_n)?;
                self.failures = 0;
                self.record(&format!(
                    "{status}: accepted {accepted}, rejected {rejected_n}"
                ));
                Ok(Outcome::Done {
                    accepted,
                    rejected: rejected_n,
                })
            }
            413 if ids.len() > 1 => {
                self.batch_size = (ids.len() / 2).max(1);
                tracing::warn!(batch_size = self.batch_size, "413: smaller batches");
                self.record("413: batch too large, halving");
                Ok(Outcome::Retry {
                    after: Duration::ZERO,
                    reason: "413".into(),
                })
            }
            413 => {
                tracing::error!(body = %text, "a single event is too large, dropped");
                self.store.outbox_delete(&ids)?;
                self.store.bump("rejected_events", 1)?;
                self.record("413: event dropped");
                Ok(Outcome::Done {
                    accepted: 0,
                    rejected: 1,
                })
            }
            _ => {
                let backoff = self.backoff();
                let after = match (status, retry_after) {
                    (429 | 503, Some(ra)) => {
                        ra + Duration::from_millis(rand::rng().random_range(0..=250))
                    }
                    // A key or URL problem: keep the rows, look again later.
                    (401 | 403 | 404, _) => backoff.max(Duration::from_secs(30)),
                    _ => backoff,
                };
                let reason = format!("{status}: {}", crate::step::truncate_utf8(&text, 200));
                if matches!(status, 401 | 403 | 404) {
                    tracing::error!(status, body = %text, "gateway refused the key or URL; events kept");
                } else {
                    tracing::warn!(
                        status,
                        retry_in_ms = after.as_millis() as u64,
                        "send refused, retrying"
                    );
                }
                self.store.bump("send_retries", 1)?;
                self.record(&reason);
                Ok(Outcome::Retry { after, reason })
            }
        }
    }

    /// Send until the outbox is empty. Gives up (leaving rows queued) when
    /// the next retry would end after `deadline`; returns whether it drained.
    pub async fn drain(&mut self, deadline: Option<tokio::time::Instant>) -> Result<bool> {
        loop {
            match self.send_once().await? {
                Outcome::Empty => {
                    if let Err(e) = self.store.reclaim() {
                        tracing::warn!(error = %format!("{e:#}"), "reclaiming free pages failed");
                    }
                    return Ok(true);
                }
                Outcome::Done { .. } => {}
                Outcome::Retry { after, .. } => {
                    if let Some(d) = deadline {
                        if tokio::time::Instant::now() + after > d {
                            return Ok(false);
                        }
                    }
                    tokio::time::sleep(after).await;
                }
            }
        }
    }

    /// Forever: drain, then wait for `wake` (or a few seconds).
    pub async fn run(&mut self, wake: std::sync::Arc<tokio::sync::Notify>) -> Result<()> {
        loop {
            if let Err(e) = self.drain(None).await {
                tracing::error!(error = %format!("{e:#}"), "sender error");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
        }
    }
}
