//! A small client for `POST /v1/events` (and `/v1/traces`) with bounded, polite retries:
//! 429/503 honour `Retry-After`, other 5xx and transport errors back off
//! exponentially; other 4xx are final. Never panics.

use std::time::Duration;

use agentops_runtime::shutdown::CancellationToken;
use reqwest::StatusCode;
use serde_json::Value;

/// What became of one batch.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) accepted: u64,
    pub(crate) rejected: u64,
    /// First rejection reason, for the log.
    pub(crate) first_reject: Option<String>,
    /// Set when the batch was not taken (after retries, or a final 4xx).
    pub(crate) failed: Option<String>,
    pub(crate) retries: u32,
}

#[derive(Clone)]
pub(crate) struct Gateway {
    client: reqwest::Client,
    url: String,
    auth: String,
    content_type: &'static str,
}

const MAX_ATTEMPTS: u32 = 6;
const MAX_WAIT: Duration = Duration::from_secs(30);

impl Gateway {
    pub(crate) fn new(base: &str, key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            client,
            url: format!("{}/v1/events", base.trim_end_matches('/')),
            auth: format!("Bearer {key}"),
            content_type: "application/json",
        })
    }

    /// The same client for `POST /v1/traces` with protobuf bodies (`post_once` only).
    pub(crate) fn traces(base: &str, key: &str) -> anyhow::Result<Self> {
        Ok(Self {
            url: format!("{}/v1/traces", base.trim_end_matches('/')),
            content_type: "application/x-protobuf",
            ..Self::new(base, key)?
        })
    }

    /// One attempt: the status and the body (no retry).
    pub(crate) async fn post_once(
        &self,
        body: Vec<u8>,
    ) -> reqwest::Result<(StatusCode, Option<Duration>, Vec<u8>)> {
        let resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .header(reqwest::header::CONTENT_TYPE, self.content_type)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await?;
        Ok((status, retry_after, bytes.to_vec()))
    }

    /// Send `events` as one batch, retrying transient failures (bounded).
    pub(crate) async fn send(&self, events: &[Value], shutdown: &CancellationToken) -> Outcome {
        let mut out = Outcome::default();
        let body = match serde_json::to_vec(&serde_json::json!({ "events": events })) {
            Ok(b) => b,
            Err(e) => {
                out.failed = Some(format!("cannot serialise the batch: {e}"));
                return out;
            }
        };
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=MAX_ATTEMPTS {
            let (wait, why) = match self.post_once(body.clone()).await {
                Ok((status, _, bytes)) if status == StatusCode::ACCEPTED => {
                    parse_reply(&bytes, events.len(), &mut out);
                    return out;
                }
                Ok((status, retry_after, bytes))
                    if status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE =>
                {
                    (
                        retry_after.unwrap_or(backoff).min(MAX_WAIT),
                        format!("HTTP {status}: {}", excerpt(&bytes)),
                    )
                }
                Ok((status, _, bytes)) if status.is_server_error() => {
                    (backoff, format!("HTTP {status}: {}", excerpt(&bytes)))
                }
                Ok((status, _, bytes)) => {
                    // Final: every event rejected (400), bad key (401/403), too large (413)...
                    if status == StatusCode::BAD_REQUEST {
                        parse_reply(&bytes, 0, &mut out);
                    }
                    out.failed = Some(format!("HTTP {status}: {}", excerpt(&bytes)));
                    return out;
                }
                Err(e) => (backoff, format!("transport: {e}")),
            };
            if attempt == MAX_ATTEMPTS {
                out.failed = Some(format!("gave up after {MAX_ATTEMPTS} attempts: {why}"));
                return out;
            }
            out.retries += 1;
            tokio::select! {
                _ = shutdown.cancelled() => {
                    out.failed = Some(format!("shutdown while retrying: {why}"));
                    return out;
                }
                _ = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(8));
        }
        out
    }
}

fn parse_reply(bytes: &[u8], sent: usize, out: &mut Outcome) {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    out.accepted = v["accepted"].as_u64().unwrap_or(sent as u64);
    if let Some(rejected) = v["rejected"].as_array() {
        out.rejected = rejected.len() as u64;
        out.first_reject = rejected.first().map(|r| {
            format!(
                "event {}: {}: {}",
                r["index"],
                r["field"].as_str().unwrap_or("?"),
                r["error"].as_str().unwrap_or("?")
            )
        });
    }
}

pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    if s.len() <= 300 {
        return s.to_owned();
    }
    let mut end = 300;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
