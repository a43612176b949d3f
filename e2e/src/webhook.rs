//! A real HTTP receiver for webhook notifications, on a loopback port of
//! [`RECEIVER_IP`]: the one address the stacks' outbound guard allows
//! (`notify.allow_destinations`), so 127.0.0.1 stays refused as in production.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

/// One received POST.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Value,
    /// The body bytes exactly as received (what a signature covers).
    pub raw: Vec<u8>,
}

impl Received {
    /// A header's value as text (empty when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Whether `x-agentops-signature` is the HMAC-SHA256 under `secret` of
    /// `<x-agentops-timestamp>.<raw body>` (recomputed independently of the
    /// sender's code; freshness is not checked).
    pub fn signed_by(&self, secret: &str) -> bool {
        use hmac::{Hmac, Mac};
        let Some(sig) = self
            .header("x-agentops-signature")
            .strip_prefix("sha256=")
            .and_then(|s| hex::decode(s).ok())
        else {
            return false;
        };
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(self.header("x-agentops-timestamp").as_bytes());
        mac.update(b".");
        mac.update(&self.raw);
        mac.verify_slice(&sig).is_ok()
    }
}

/// The loopback address test receivers listen on and the test stacks allow.
pub const RECEIVER_IP: &str = "127.0.0.2";

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    attempts: usize,
    fail_first: usize,
    /// Answer to the failed attempts (default 500).
    fail_status: Option<StatusCode>,
}

/// Records every POST; answers 500 to the first `fail_first` attempts.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> anyhow::Result<Receiver> {
        Self::start_with(fail_first, StatusCode::INTERNAL_SERVER_ERROR).await
    }

    /// A receiver that answers every attempt with `status`.
    pub async fn always_failing(status: u16) -> anyhow::Result<Receiver> {
        Self::start_with(usize::MAX, StatusCode::from_u16(status)?).await
    }

    /// Answers `fail_status` to the first `fail_first` attempts, then 200.
    pub async fn start_with(
        fail_first: usize,
        fail_status: StatusCode,
    ) -> anyhow::Result<Receiver> {
        let inner = Arc::new(Mutex::new(Inner {
            fail_first,
            fail_status: Some(fail_status),
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind((RECEIVER_IP, 0)).await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { inner, url })
    }

    /// Successfully received (2xx-answered) POSTs.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().expect("lock").received.clone()
    }

    /// All attempts, including the ones answered with 500.
    pub fn attempts(&self) -> usize {
        self.inner.lock().expect("lock").attempts
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> StatusCode {
    let mut s = inner.lock().expect("lock");
    s.attempts += 1;
    if s.attempts <= s.fail_first {
        return s.fail_status.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let raw = raw.to_vec();
    let body = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    s.received.push(Received { headers, body, raw });
    StatusCode::OK
}
