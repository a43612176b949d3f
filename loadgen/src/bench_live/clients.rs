//! The WebSocket clients of `bench-live`: each notes when every frame
//! arrives, by `data.event_id`, and what `lost` frames told it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use agentops_runtime::shutdown::CancellationToken;
use anyhow::{Context, Result};
use futures::StreamExt;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// What one client saw.
#[derive(Default)]
pub(super) struct ClientLog {
    pub(super) org: usize,
    pub(super) arrivals: Vec<(u128, Instant)>,
    /// Sum of the `lost` frames' counts, and how many `lost` frames came.
    pub(super) lost: u64,
    pub(super) lost_frames: u64,
    /// Frames without an event id (alerts, controls).
    pub(super) other: u64,
    /// Why the socket ended before the end of the phase, if it did.
    pub(super) ended: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Data<'a>,
}

#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(borrow, default)]
    event_id: Option<Cow<'a, str>>,
    #[serde(default)]
    frames: Option<u64>,
}

pub(super) fn uuid_bits(s: &str) -> Option<u128> {
    uuid::Uuid::parse_str(s).ok().map(|u| u.as_u128())
}

pub(super) fn ws_url(query_url: &str) -> String {
    format!(
        "{}/v1/live",
        query_url.trim_end_matches('/').replacen("http", "ws", 1)
    )
}

/// Open one client; its task reads until `stop` and returns what it saw.
pub(super) async fn open_client(
    url: &str,
    key: &str,
    org: usize,
    frames: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<ClientLog>> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {key}"))?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .with_context(|| format!("opening {url}"))?;
    Ok(tokio::spawn(async move {
        let mut log = ClientLog {
            org,
            ..ClientLog::default()
        };
        loop {
            let m = tokio::select! {
                _ = stop.cancelled() => break,
                m = ws.next() => m,
            };
            let at = Instant::now();
            match m {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Envelope>(t.as_str()) {
                    Ok(f) if f.kind == "lost" => {
                        log.lost += f.data.frames.unwrap_or(0);
                        log.lost_frames += 1;
                    }
                    Ok(f) => match f.data.event_id.as_deref().and_then(uuid_bits) {
                        Some(id) => {
                            log.arrivals.push((id, at));
                            frames.fetch_add(1, Ordering::Relaxed);
                        }
                        None => log.other += 1,
                    },
                    Err(_) => log.other += 1,
                },
                Some(Ok(Message::Close(c))) => {
                    log.ended = Some(format!("closed: {c:?}"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    log.ended = Some(e.to_string());
                    break;
                }
                None => {
                    log.ended = Some("socket ended".into());
                    break;
                }
            }
        }
        log
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_with_only_what_is_needed() {
        let id = "0b7e8d3c-1a2b-4c5d-8e9f-001122334455";
        let text = format!(
            r#"{{"v":1,"type":"run.failed","ts":"t","data":{{"event_id":"{id}","run_id":"r","error_message":"a \"quoted\" one"}}}}"#
        );
        let f: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(f.kind, "run.failed");
        assert_eq!(
            f.data.event_id.as_deref().and_then(uuid_bits),
            uuid_bits(id)
        );
        let lost: Envelope =
            serde_json::from_str(r#"{"v":1,"type":"lost","ts":"t","data":{"frames":7}}"#).unwrap();
        assert_eq!((lost.kind.as_ref(), lost.data.frames), ("lost", Some(7)));
    }
}
