//! `GET /v1/live`: the org's events over a WebSocket, as the pipeline
//! produces them.
//!
//! Frames are `{"v":1,"type":T,"ts":RFC3339,"data":{..}}` (see `frame`), T
//! one of `run.started`, `run.completed`, `run.failed`, `budget.crossed`,
//! `alert.fired`, `alert.resolved`, `agent.paused`, `agent.killed`,
//! `agent.resumed`, and `lost` (`data.frames`: how many frames this client
//! lost just before it). Only the caller's org; filtered on subscribe by
//! `?agent_id=a,b&types=run.failed,alert.fired`, or later by a text message
//! `{"subscribe":{"agent_id":[..],"types":[..]}}` that replaces the filter.
//!
//! Sources, chosen so the API never slows the pipeline:
//! - One Kafka consumer per process (`feed::run_kafka`) tails the enriched
//!   events and the alerts topics: a group id of its own (unique per
//!   process, so every instance sees every record), starting at the end,
//!   no offsets committed, committed records only
//!   (`agentops_runtime::kafka::tail_consumer`). It is nobody's
//!   consumer-group peer and stores nothing, so however slow it is, the
//!   processors and projections do not wait for it. If the brokers are
//!   unreachable `/v1/live` still accepts clients, the client library
//!   reconnects, and `/healthz` says so (`details.live_feed.state`).
//! - Agent controls are rows of `agent_controls`, written in place by the
//!   operators' endpoints, the budget evaluator and the policy evaluator
//!   (`agentops_governance::controls`); no Kafka record carries them. They
//!   are polled (`feed::run_controls`): once a second, while this instance
//!   has clients, one read of the table (one row per paused or killed agent,
//!   so small), diffed against the previous read. A diff sees every writer
//!   and also the lifts (a resume deletes the row, which a `set_at > $last`
//!   query cannot see), needs no schema change, and costs nothing while no
//!   one watches. LISTEN/NOTIFY would need a trigger (a migration) to catch
//!   every writer. A pause and resume within one second is not shown.
//!
//! Each client has a queue of 200 frames (`queue`): the hub pushes without
//! waiting, dropping the oldest frame when full and counting it; the
//! client's socket task sends what is queued, preceded by a `lost` frame
//! with the count. A slow client thus loses only its own frames.
//!
//! Authentication is the REST API's, read permission: an API key
//! (`Authorization: Bearer`, `x-api-key`, or for browsers, which cannot set
//! headers on a WebSocket, the subprotocol `agentops.key.<key>` offered
//! beside `agentops.v1`; only `agentops.v1` is echoed), or a session cookie
//! whose upgrade must come from this site's own pages (`Origin` naming the
//! request's `Host`; cross-site WebSocket hijacking). A refusal before the
//! handshake is answered like REST (401, 403 or 400 JSON) to clients that
//! can read it. Browsers cannot (a failed handshake is only `onerror`), so
//! a request with an `Origin` header gets the handshake and then a close
//! code: 4401 unauthenticated, 4403 forbidden (no read scope or role),
//! 4400 bad filter (reason `field: message`). A cross-origin cookie upgrade
//! is always refused before the handshake (403). After the handshake: 4400
//! for a bad subscribe message, 1013 when the instance
//! (`live.max_clients`) or the org (`live.max_clients_per_org`) has as
//! many sockets as allowed, 1001 on shutdown or when a socket stays silent
//! for two ping intervals (`live.ping_interval_ms`, pings from the server)
//! or does not take a frame within that time. A plain GET (no upgrade)
//! answers 426 once authenticated.

mod feed;
mod filter;
mod frame;
mod hub;
mod queue;
mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use futures::SinkExt;
use serde::{Deserialize, Serialize};

use agentops_runtime::api_error::ErrorCode;
use agentops_runtime::config::KafkaConfig;
use agentops_runtime::http::Health;
use agentops_runtime::shutdown::CancellationToken;
use agentops_runtime::supervise::Supervisor;

use crate::error::ApiError;
use crate::routes::{Access, Routes};
use crate::state::{authorize, presents_key, session_token, Permission, Shared};

pub(crate) use hub::Hub;

use filter::Filter;

/// The subprotocol spoken (and echoed).
pub(crate) const PROTOCOL: &str = "agentops.v1";
/// Prefix of the subprotocol that carries an API key.
const KEY_PROTOCOL: &str = "agentops.key.";
/// Frames sent in one write.
const BATCH: usize = 64;

/// `live.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveConfig {
    /// Run the feed (a Kafka consumer of `kafka.topic_enriched` and
    /// `kafka.topic_alerts` at `kafka.brokers`, and the controls poll).
    /// Off: `/v1/live` accepts clients but sends nothing.
    pub enabled: bool,
    /// Most sockets open on one instance (more: close 1013).
    pub max_clients: usize,
    /// Most sockets of one org on one instance (more: close 1013).
    pub max_clients_per_org: usize,
    /// How often the server pings each socket (ms); a socket silent for
    /// two intervals is closed.
    pub ping_interval_ms: u64,
    /// How often `agent_controls` is read while clients are connected (ms).
    pub controls_poll_ms: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_clients: 2_000,
            max_clients_per_org: 250,
            ping_interval_ms: 30_000,
            controls_poll_ms: 1_000,
        }
    }
}

impl LiveConfig {
    pub fn validate(&self) -> agentops_runtime::Result<()> {
        agentops_runtime::config::require_positive(&[
            ("live.max_clients", self.max_clients as f64),
            ("live.max_clients_per_org", self.max_clients_per_org as f64),
            ("live.ping_interval_ms", self.ping_interval_ms as f64),
            ("live.controls_poll_ms", self.controls_poll_ms as f64),
        ])
    }

    fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms.max(100))
    }
}

pub(crate) fn routes() -> Routes {
    Routes::new().add("/v1/live", &[(Method::GET, Access::Read)], get(live))
}

/// Start the feed's tasks (when `live.enabled`) under `tasks`.
pub(crate) fn start(
    tasks: &mut Supervisor,
    hub: &Arc<Hub>,
    kafka: &KafkaConfig,
    pool: &sqlx::PgPool,
    health: &Health,
    shutdown: &CancellationToken,
) {
    if !hub.config.enabled {
        return;
    }
    let (h, k, hl, s) = (hub.clone(), kafka.clone(), health.clone(), shutdown.clone());
    tasks.restarting("live-feed", move || {
        feed::run_kafka(h.clone(), k.clone(), hl.clone(), s.clone())
    });
    let (h, p, s) = (hub.clone(), pool.clone(), shutdown.clone());
    let every = Duration::from_millis(hub.config.controls_poll_ms);
    tasks.restarting("live-controls", move || {
        feed::run_controls(h.clone(), p.clone(), every, s.clone())
    });
}

/// A refusal: its REST answer, and its close code for browsers.
struct Refusal {
    error: ApiError,
    close: u16,
    reason: &'static str,
}

impl Refusal {
    fn of(error: ApiError) -> Self {
        let (close, reason) = match &error {
            ApiError::MissingKey | ApiError::BadKey | ApiError::BadSession => {
                (4401, "unauthenticated")
            }
            ApiError::Forbidden(_) | ApiError::RoleForbidden { .. } => (4403, "forbidden"),
            ApiError::BadParam { .. } => (4400, "bad_filter"),
            _ => (1011, "unavailable"),
        };
        Self {
            error,
            close,
            reason,
        }
    }
}

async fn live(
    State(s): Shared,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let browser = headers.contains_key(header::ORIGIN);
    if let Some(r) = cross_origin_cookie(&headers) {
        telemetry::refused("cross_origin");
        return r;
    }
    let auth = with_protocol_key(&headers);
    let checked = match authorize(&s, &auth, Permission::Read).await {
        Ok(caller) => Filter::from_query(uri.query())
            .map(|f| (caller, f))
            .map_err(|e| {
                Refusal::of(ApiError::BadParam {
                    field: e.field,
                    message: e.message,
                })
            }),
        Err(e) => Err(Refusal::of(e)),
    };
    let ws = match ws {
        Ok(ws) => ws
            .protocols([PROTOCOL])
            .max_message_size(64 * 1024)
            .max_frame_size(64 * 1024),
        Err(_) => {
            return match checked {
                Err(r) => r.error.into_response(),
                Ok(_) => upgrade_required(),
            }
        }
    };
    let (caller, filter) = match checked {
        Ok(ok) => ok,
        Err(r) => {
            telemetry::refused(r.reason);
            if !browser {
                return r.error.into_response();
            }
            let text = clip(&r.error.to_string());
            return ws.on_upgrade(move |socket| close(socket, r.close, text));
        }
    };
    let registration = match s.live.join(&caller.org_id, filter) {
        Ok(r) => r,
        Err(full) => {
            telemetry::refused("full");
            let text = clip(&full.to_string());
            return ws.on_upgrade(move |socket| close(socket, 1013, text));
        }
    };
    let hub = s.live.clone();
    ws.on_upgrade(move |socket| serve(socket, registration, hub))
}

/// 426 with the REST error shape: this path speaks only WebSocket.
fn upgrade_required() -> Response {
    let body = serde_json::json!({"error": {
        "code": "upgrade_required",
        "message": "GET /v1/live is a WebSocket: send `Connection: Upgrade` and `Upgrade: websocket`",
    }});
    (
        StatusCode::UPGRADE_REQUIRED,
        [(header::UPGRADE, HeaderValue::from_static("websocket"))],
        Json(body),
    )
        .into_response()
}

/// A cookie-authenticated upgrade whose `Origin` is not this host: 403
/// before any handshake (a page of another site would otherwise read the
/// member's feed with the browser's cookie).
fn cross_origin_cookie(headers: &HeaderMap) -> Option<Response> {
    if presents_key(headers) || protocol_key(headers).is_some() || session_token(headers).is_none()
    {
        return None;
    }
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return None;
    }
    tracing::warn!(origin, host, "live: cross-origin cookie upgrade refused");
    let message = "a WebSocket signed in by cookie must be opened by this site's own pages (Origin differs from Host)";
    let code = ErrorCode::Forbidden;
    Some((code.status(), Json(code.body(message))).into_response())
}

/// The API key offered as subprotocol `agentops.key.<key>`, if any.
fn protocol_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(KEY_PROTOCOL).map(str::to_owned))
        .filter(|k| !k.is_empty())
}

/// The request's headers, with a subprotocol key as `Authorization` when
/// no key header was sent (so the REST authorization decides).
fn with_protocol_key(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    if !presents_key(headers) {
        if let Some(v) =
            protocol_key(headers).and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok())
        {
            h.insert(header::AUTHORIZATION, v);
        }
    }
    h
}

/// At most 123 bytes (a close frame's reason), on a char boundary.
fn clip(s: &str) -> String {
    let mut end = s.len().min(123);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

async fn close(mut socket: WebSocket, code: u16, reason: String) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
    // Wait (briefly) for the client's close, so it sees ours first.
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.recv()).await;
}

/// Why a socket ends.
enum End {
    Gone,
    Close(u16, String),
}

/// One client's socket: send its queued frames, read its subscribe
/// messages and pongs, ping it, until it leaves, stops answering, or the
/// server shuts down.
async fn serve(mut socket: WebSocket, reg: hub::Registration, hub: Arc<Hub>) {
    let every = hub.config.ping_interval();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut heard = tokio::time::Instant::now();
    let client = reg.client.clone();
    let end = loop {
        // What is queued goes first (also after a missed wake-up).
        if let Err(end) = drain(&mut socket, &client.queue, 2 * every).await {
            break end;
        }
        tokio::select! {
            biased;
            _ = hub.shutdown.cancelled() => break End::Close(1001, "server shutting down".into()),
            _ = client.queue.ready() => {}
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break End::Gone,
                Some(Ok(Message::Text(t))) => {
                    heard = tokio::time::Instant::now();
                    match Filter::from_message(t.as_str()) {
                        Ok(f) => client.set_filter(f),
                        Err(e) => {
                            telemetry::refused("bad_filter");
                            break End::Close(4400, clip(&e.to_string()));
                        }
                    }
                }
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if heard.elapsed() > 2 * every {
                    break End::Close(1001, "no answer to pings".into());
                }
                let sent = tokio::time::timeout(every, socket.send(Message::Ping(Default::default()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break End::Gone;
                }
            }
        }
    };
    drop(reg);
    if let End::Close(code, reason) = end {
        close(socket, code, reason).await;
    }
}

/// Send everything queued (a `lost` frame first when frames were dropped),
/// in writes of up to [`BATCH`] frames. A write that takes longer than
/// `within` ends the socket (the client stopped reading for too long).
async fn drain(
    socket: &mut WebSocket,
    queue: &queue::FrameQueue,
    within: Duration,
) -> Result<(), End> {
    loop {
        let batch = queue.take(BATCH);
        if batch.lost == 0 && batch.frames.is_empty() {
            return Ok(());
        }
        let n = batch.frames.len() + usize::from(batch.lost > 0);
        let write = async {
            if batch.lost > 0 {
                socket.feed(Message::Text(frame::lost(batch.lost))).await?;
            }
            for f in batch.frames {
                socket.feed(Message::Text(f)).await?;
            }
            socket.flush().await
        };
        match tokio::time::timeout(within, write).await {
            Ok(Ok(())) => telemetry::frames_sent(n),
            Ok(Err(_)) => return Err(End::Gone),
            Err(_) => {
                tracing::info!("live: a client took no frame for too long; closing its socket");
                return Err(End::Gone);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_can_come_as_a_subprotocol() {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("agentops.v1, agentops.key.aok_ab_cd"),
        );
        assert_eq!(protocol_key(&h).as_deref(), Some("aok_ab_cd"));
        let auth = with_protocol_key(&h);
        assert_eq!(auth[header::AUTHORIZATION], "Bearer aok_ab_cd");
        // A key header decides alone.
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(with_protocol_key(&h)[header::AUTHORIZATION], "Bearer x");
    }

    #[test]
    fn cookie_upgrades_must_come_from_the_same_host() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("agentops_session=t"),
        );
        h.insert(header::HOST, HeaderValue::from_static("ops.example.com"));
        // No Origin: not a browser; the cookie decides.
        assert!(cross_origin_cookie(&h).is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://ops.example.com"),
        );
        assert!(cross_origin_cookie(&h).is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        let r = cross_origin_cookie(&h).unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // With a key, the cookie plays no part.
        h.insert("x-api-key", HeaderValue::from_static("k"));
        assert!(cross_origin_cookie(&h).is_none());
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(clip(&"é".repeat(100)).len(), 122);
        assert_eq!(clip("short"), "short");
    }
}
