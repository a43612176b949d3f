//! HTTP handlers of the gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::keys::{AuthError, KeyCache, KeyInfo, Scope};
use agentops_schemas::batch::{self, Batch, Rejected};
use agentops_schemas::validate::{event_from_str, ValidationLimits};
use agentops_schemas::{AgentEvent, Codec};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rdkafka::producer::FutureProducer;
use serde_json::json;

use crate::config::Config;
use crate::error::ApiError;
use crate::telemetry;

pub(crate) struct AppState {
    pub(crate) keys: KeyCache,
    pub(crate) directives: crate::directives::Directives,
    pub(crate) producer: FutureProducer,
    pub(crate) codec: Codec,
    pub(crate) config: Config,
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    pub(crate) rate: crate::limits::RateLimiter,
}

/// Every route of the gateway: each takes `POST` and needs a key with the
/// `ingest` scope (or `admin`). The router is built from this list, and the
/// authorization matrix test (`e2e/tests/authz_matrix.rs`) walks it.
fn handlers() -> [(&'static str, axum::routing::MethodRouter<Arc<AppState>>); 3] {
    [
        ("/v1/events", post(post_events)),
        ("/v1/heartbeat", post(post_heartbeat)),
        ("/v1/traces", post(crate::otlp::post_traces)),
    ]
}

/// The paths of [`handlers`] (all `POST`, all `ingest`).
pub fn routes() -> Vec<&'static str> {
    handlers().into_iter().map(|(path, _)| path).collect()
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    handlers()
        .into_iter()
        .fold(Router::new(), |r, (path, h)| r.route(path, h))
        // Every ingest route above is behind the in-flight bound.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), admit))
        .with_state(state)
}

/// At most `max_in_flight` requests are processed at once; the next one
/// gets 429 at once (held for the whole request, body reading included).
async fn admit(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let max = state.config.max_in_flight;
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        return ApiError::Overloaded(max).into_response();
    };
    telemetry::in_flight(max - state.in_flight.available_permits());
    let response = next.run(req).await;
    drop(permit);
    telemetry::in_flight(max - state.in_flight.available_permits());
    response
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    scope: Scope,
    client: std::net::IpAddr,
) -> Result<KeyInfo, ApiError> {
    state
        .keys
        .authorize_from(headers, scope, Some(client))
        .await
        .map_err(|e| match e {
            AuthError::Missing => ApiError::MissingKey,
            AuthError::Invalid => ApiError::BadKey,
            AuthError::Forbidden(scope) => ApiError::Forbidden(scope.as_str()),
            AuthError::Store(e) => {
                // The details stay in the log: the caller is not authenticated.
                tracing::warn!(error = %e, "key lookup failed");
                ApiError::Unavailable("the key store is unavailable".into())
            }
        })
}

/// The request body, at most `limit` bytes on the wire and, when it is
/// `Content-Encoding: gzip` or `zstd`, at most `limit` bytes decompressed:
/// decompression stops one byte past the limit, so a bomb costs `limit`
/// bytes of memory and answers 413.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    read_timeout: Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let raw = read_capped(
        body,
        limit,
        declared.is_some_and(|n| n > limit as u64),
        read_timeout,
    )
    .await?;
    let encoding = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(raw),
        Some("gzip") | Some("x-gzip") => inflate(flate2::read::GzDecoder::new(&raw[..]), limit),
        Some("zstd") => {
            let d = zstd::stream::read::Decoder::new(&raw[..])
                .map_err(|e| ApiError::BadEncoding(e.to_string()))?;
            inflate(d, limit)
        }
        Some(other) => Err(ApiError::UnsupportedEncoding(other.to_owned())),
    }
}

/// After a body went past the cap, up to this much more is read and thrown
/// away before answering, so a client still sending gets the 413 instead of
/// a broken pipe (the connection is closed after the answer either way).
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The body's bytes, or `BodyTooLarge` once more than `limit` arrived
/// (at once when `too_large`, from `Content-Length`); memory held is at most
/// `limit`. A body not complete within `read_timeout` answers 408, so slow
/// clients cannot hold the in-flight slots.
async fn read_capped(
    body: Body,
    limit: usize,
    too_large: bool,
    read_timeout: Duration,
) -> Result<axum::body::Bytes, ApiError> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + read_timeout;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    // Set once the body is known to be too large: from then on, drain.
    let mut drain_until = too_large.then(|| tokio::time::Instant::now() + DRAIN_TIME);
    let mut drained = 0usize;
    loop {
        let until = drain_until.map_or(deadline, |d| d.min(deadline));
        let chunk = match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Some(chunk)) => {
                chunk.map_err(|e| ApiError::BadEncoding(format!("reading the body: {e}")))?
            }
            Ok(None) => break,
            Err(_) if drain_until.is_some() => break,
            Err(_) => return Err(ApiError::BodyTimeout(read_timeout)),
        };
        if drain_until.is_none() {
            if buf.len() + chunk.len() <= limit {
                buf.extend_from_slice(&chunk);
                continue;
            }
            buf = Vec::new();
            drain_until = Some(tokio::time::Instant::now() + DRAIN_TIME);
        }
        drained += chunk.len();
        if drained > DRAIN_BYTES {
            break;
        }
    }
    if drain_until.is_some() {
        return Err(ApiError::BodyTooLarge(limit));
    }
    Ok(buf.into())
}

fn inflate(reader: impl std::io::Read, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    use std::io::Read;
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadEncoding(e.to_string()))?;
    if out.len() > limit {
        return Err(ApiError::DecompressedTooLarge(limit));
    }
    Ok(out.into())
}

/// Authenticate an ingest request and read its (decompressed) body.
pub(crate) async fn ingest_request(
    state: &AppState,
    headers: &HeaderMap,
    client: SocketAddr,
    body: Body,
) -> Result<(KeyInfo, axum::body::Bytes), ApiError> {
    let key = authenticate(state, headers, Scope::Ingest, client.ip()).await?;
    let bytes = read_body(
        headers,
        body,
        state.config.max_body_bytes,
        Duration::from_millis(state.config.body_read_timeout_ms),
    )
    .await?;
    Ok((key, bytes))
}

fn text(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| ApiError::BadJson(format!("body is not UTF-8: {e}")))
}

async fn post_events(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, bytes) = ingest_request(&state, &headers, client, body).await?;
    let limits = limits(&state.config);
    let now_us = chrono::Utc::now().timestamp_micros();
    let Batch { accepted, rejected } = batch::decode(
        text(&bytes)?,
        state.config.max_batch_events,
        &key.org_id,
        now_us,
        &limits,
    )?;
    telemetry::events_rejected(rejected.len());
    if accepted.is_empty() {
        return Err(ApiError::AllRejected(rejected));
    }
    produce_all(&state, &key, &accepted).await?;
    telemetry::events_accepted(accepted.len());
    let directives = state
        .directives
        .for_agents(&key.org_id, accepted.iter().map(|e| e.agent_id.as_str()))
        .await;
    let body = json!({"accepted": accepted.len(), "rejected": rejected, "directives": directives});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

pub(crate) fn limits(config: &Config) -> ValidationLimits {
    ValidationLimits {
        max_age_secs: config.max_event_age_secs,
        max_future_secs: config.max_event_future_secs,
        ..ValidationLimits::default()
    }
}

/// `POST /v1/heartbeat`: `{"agent_id": "a1", "status": "ok", "metadata": {...}}`
/// (`status`, `metadata`, `timestamp` and `event_id` optional; the time
/// defaults to now and the id to a new UUID). It becomes a `heartbeat` event,
/// validated and acknowledged like any other, so liveness is computed
/// downstream (agents' `last_heartbeat`, `no_heartbeat` rules).
async fn post_heartbeat(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (key, bytes) = ingest_request(&state, &headers, client, body).await?;
    let value: serde_json::Value =
        serde_json::from_str(text(&bytes)?).map_err(|e| ApiError::BadJson(e.to_string()))?;
    let event = heartbeat_event(value, chrono::Utc::now())?;
    let now_us = chrono::Utc::now().timestamp_micros();
    let e = event_from_str(
        &event.to_string(),
        &key.org_id,
        now_us,
        &limits(&state.config),
    )
    .map_err(|e| {
        ApiError::AllRejected(vec![Rejected {
            index: 0,
            field: e.field,
            error: e.error,
        }])
    })?;
    produce_all(&state, &key, std::slice::from_ref(&e)).await?;
    telemetry::events_accepted(1);
    let directives = state
        .directives
        .for_agents(&key.org_id, [e.agent_id.as_str()])
        .await;
    let body = json!({"accepted": 1, "event_id": e.event_id, "directives": directives});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The event a heartbeat body stands for (validated afterwards like any event).
fn heartbeat_event(
    value: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<serde_json::Value, ApiError> {
    let serde_json::Value::Object(mut m) = value else {
        return Err(ApiError::BadShape(
            "expected a JSON object like {\"agent_id\": \"a1\", \"status\": \"ok\"}".into(),
        ));
    };
    match m.get("type").and_then(serde_json::Value::as_str) {
        None | Some("heartbeat") => {}
        Some(_) => {
            return Err(ApiError::BadShape(
                "field `type`: a heartbeat is always of type heartbeat".into(),
            ))
        }
    }
    if let Some(meta) = m.remove("metadata") {
        if m.contains_key("attributes") {
            return Err(ApiError::BadShape(
                "send `metadata` or `attributes`, not both".into(),
            ));
        }
        m.insert("attributes".into(), meta);
    }
    m.insert("type".into(), json!("heartbeat"));
    m.entry("event_id")
        .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
    m.entry("timestamp")
        .or_insert_with(|| json!(now.to_rfc3339()));
    Ok(serde_json::Value::Object(m))
}

/// Take the events from the key's rate limit (429 when it is spent), then
/// produce every event and wait until the broker acknowledged all of them,
/// for at most `produce_timeout_ms`.
///
/// The producer's delivery timeout (`message.timeout.ms`) is
/// `produce_timeout_ms` itself, so a 503 normally means librdkafka gave the
/// record up. The wait here is bounded a second later as a safety net; a
/// record already in flight when either fires may still be written (the
/// broker cannot be asked to forget it), and the client's retry is then a
/// duplicate that the projections drop by `event_id`.
const PRODUCE_GRACE: Duration = Duration::from_secs(1);

pub(crate) async fn produce_all(
    state: &AppState,
    key: &KeyInfo,
    events: &[AgentEvent],
) -> Result<(), ApiError> {
    if let Err(wait) = state
        .rate
        .take(&key.org_id, key.rate_limit, events.len(), Instant::now())
    {
        return Err(ApiError::RateLimited(wait));
    }
    let started = Instant::now();
    let timeout = Duration::from_millis(state.config.produce_timeout_ms);
    let mut records = Vec::with_capacity(events.len());
    for e in events {
        let payload = state
            .codec
            .encode(e)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        records.push((e.partition_key(), payload));
    }
    let fp = state.codec.fingerprint_hex();
    let sends = agentops_runtime::kafka::send_records(
        &state.producer,
        &state.config.kafka.topic_raw,
        &fp,
        &records,
        timeout,
    );
    let results = tokio::time::timeout(timeout + PRODUCE_GRACE, sends).await;
    telemetry::produce_seconds(started.elapsed().as_secs_f64());
    let failure = match results {
        Err(_) => Some(format!(
            "no broker acknowledgement within {} ms",
            timeout.as_millis()
        )),
        Ok(results) => results
            .into_iter()
            .find_map(Result::err)
            .map(|e| e.to_string()),
    };
    if let Some(e) = failure {
        tracing::warn!(error = %e, events = events.len(), "broker did not acknowledge the batch");
        return Err(ApiError::Unavailable(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(encoding: &str, plain: &[u8]) -> Vec<u8> {
        use std::io::Write;
        match encoding {
            "gzip" => {
                let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                w.write_all(plain).unwrap();
                w.finish().unwrap()
            }
            _ => zstd::stream::encode_all(plain, 3).unwrap(),
        }
    }

    async fn read(encoding: &str, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_ENCODING,
            encoding.parse().unwrap(),
        );
        read_body(&headers, Body::from(body), limit, Duration::from_secs(5))
            .await
            .map(|b| b.to_vec())
    }

    #[tokio::test]
    async fn compressed_bodies_are_bounded_after_decompression() {
        let plain = br#"{"events":[]}"#.to_vec();
        for enc in ["gzip", "zstd"] {
            assert_eq!(read(enc, encoded(enc, &plain), 1024).await.unwrap(), plain);
            // 64 MiB of zeros compresses to a few KiB: refused at the 1 MiB cap.
            let bomb = encoded(enc, &vec![0u8; 64 << 20]);
            assert!(bomb.len() < 1 << 20, "{enc} bomb is {} bytes", bomb.len());
            assert!(matches!(
                read(enc, bomb, 1 << 20).await,
                Err(ApiError::DecompressedTooLarge(_))
            ));
            assert!(matches!(
                read(enc, b"not compressed".to_vec(), 1024).await,
                Err(ApiError::BadEncoding(_))
            ));
        }
        assert!(matches!(
            read("br", plain.clone(), 1024).await,
            Err(ApiError::UnsupportedEncoding(_))
        ));
        assert_eq!(read("identity", plain.clone(), 1024).await.unwrap(), plain);
    }

    #[test]
    fn heartbeats_become_events() {
        let now = chrono::Utc::now();
        let e = heartbeat_event(json!({"agent_id": "a1", "metadata": {"v": "1"}}), now).unwrap();
        assert_eq!(e["type"], "heartbeat");
        assert_eq!(e["attributes"]["v"], "1");
        assert_eq!(e["timestamp"], json!(now.to_rfc3339()));
        assert!(uuid::Uuid::parse_str(e["event_id"].as_str().unwrap()).is_ok());
        let kept = heartbeat_event(
            json!({"agent_id": "a", "event_id": "x", "timestamp": 5}),
            now,
        )
        .unwrap();
        assert_eq!(
            (kept["event_id"].clone(), kept["timestamp"].clone()),
            (json!("x"), json!(5))
        );
        assert!(heartbeat_event(json!([1]), now).is_err());
        assert!(heartbeat_event(json!({"agent_id": "a", "type": "llm_call"}), now).is_err());
        assert!(heartbeat_event(json!({"metadata": {}, "attributes": {}}), now).is_err());
    }
}
