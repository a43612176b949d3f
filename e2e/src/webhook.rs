//! A real HTTP receiver for webhook notifications, on a loopback port.

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
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    attempts: usize,
    fail_first: usize,
}

/// Records every POST; answers 500 to the first `fail_first` attempts.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> anyhow::Result<Receiver> {
        let inner = Arc::new(Mutex::new(Inner {
            fail_first,
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
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
    body: String,
) -> StatusCode {
    let mut s = inner.lock().expect("lock");
    s.attempts += 1;
    if s.attempts <= s.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    s.received.push(Received { headers, body });
    StatusCode::OK
}
