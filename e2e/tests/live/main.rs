//! `GET /v1/live` (issue 14, item 4) against the real stack: frames of the
//! caller's org only, in the versioned envelope, filtered by agent and type
//! (query string and subscribe message); alerts, budget crossings and
//! agent controls; refusals with their HTTP status or close code; and 200
//! clients of two orgs at ~2,000 events/s, each fast client receiving
//! exactly its org's frames, one stalled client told what it lost, its
//! memory bounded, and the pipeline's throughput not reduced by it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_e2e::{events, Component, Stack, StackOptions};
use anyhow::{bail, ensure, Context, Result};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod fan_out;
mod frames;
mod refusals;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(stack: &Stack, query: &str) -> String {
    format!(
        "{}/v1/live{query}",
        stack.query_url.replacen("http", "ws", 1)
    )
}

/// Open `/v1/live{query}` with `headers`; the handshake's error as is.
async fn open(stack: &Stack, query: &str, headers: &[(&str, &str)]) -> Result<Ws, WsError> {
    let mut req = ws_url(stack, query).into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| WsError::HttpFormat(e.into()))?,
            HeaderValue::from_str(v).map_err(|e| WsError::HttpFormat(e.into()))?,
        );
    }
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
}

/// Open with a bearer key.
async fn open_key(stack: &Stack, query: &str, key: &str) -> Result<Ws> {
    Ok(open(stack, query, &[("authorization", &format!("Bearer {key}"))]).await?)
}

/// The next data frame (pings skipped), or None after `within`.
async fn next_frame(ws: &mut Ws, within: Duration) -> Result<Option<Value>> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => bail!("socket ended"),
            Ok(Some(m)) => m?,
        };
        match m {
            Message::Text(t) => return Ok(Some(serde_json::from_str(t.as_str())?)),
            Message::Close(c) => bail!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Frames until `n` arrived, then any more within `quiet`.
async fn frames(ws: &mut Ws, n: usize, quiet: Duration) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    while out.len() < n {
        match next_frame(ws, Duration::from_secs(60)).await? {
            Some(f) => out.push(f),
            None => bail!("{} of {n} frames within 60 s: {out:?}", out.len()),
        }
    }
    while let Some(f) = next_frame(ws, quiet).await? {
        out.push(f);
    }
    Ok(out)
}

/// The close code and reason the server ends with.
async fn close_of(ws: &mut Ws) -> Result<(u16, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(c))))) => {
                return Ok((u16::from(c.code), c.reason.to_string()))
            }
            Ok(Some(Ok(Message::Close(None)))) | Ok(None) => bail!("closed without a code"),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("{e}"),
            Err(_) => bail!("not closed within 10 s"),
        }
    }
}

/// The HTTP status of a refused handshake.
fn refused_status(r: Result<Ws, WsError>) -> Result<(u16, Value)> {
    match r {
        Err(WsError::Http(resp)) => {
            let body = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Ok((resp.status().as_u16(), body))
        }
        Err(e) => bail!("not an HTTP refusal: {e}"),
        Ok(_) => bail!("the handshake was accepted"),
    }
}

/// Wait until the query API's feed has its partitions.
async fn feed_streaming(stack: &Stack) -> Result<()> {
    stack
        .eventually(Duration::from_secs(60), "live feed streaming", || async {
            let h: Value = stack
                .http
                .get(format!("{}/healthz", stack.query_url))
                .send()
                .await?
                .json()
                .await?;
            Ok((h["details"]["live_feed"]["state"] == "streaming").then_some(()))
        })
        .await
}

/// A second org with (ingest, read, admin) keys.
async fn other_org(stack: &Stack) -> Result<(String, Vec<String>)> {
    let org = format!("{}-b", stack.org_id);
    let keys =
        agentops_query_api::admin::create_org_with_keys(&stack.pool, &org, "Other", "e2e").await?;
    Ok((org, keys.into_iter().map(|k| k.secret).collect()))
}

async fn post(stack: &Stack, key: &str, events: &[Value]) -> Result<()> {
    let r = stack
        .http
        .post(format!("{}/v1/events", stack.gateway_url))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send()
        .await?;
    ensure!(r.status() == 202, "{}", r.status());
    Ok(())
}

fn types(fs: &[Value]) -> Vec<String> {
    fs.iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["type"].as_str().unwrap_or("?"),
                f["data"]["run_id"].as_str().unwrap_or("-")
            )
        })
        .collect()
}
