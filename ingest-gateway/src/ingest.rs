//! What every ingest route shares (JSON events, heartbeats, OTLP traces):
//! the state, authentication, the capped and decompressed body, the
//! validation limits and producing to Kafka. The routes are in `api` and
//! `otlp`, which depend on this module and not on each other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::keys::{AuthError, KeyCache, KeyInfo, Scope};
use agentops_schemas::validate::ValidationLimits;
use agentops_schemas::{AgentEvent, Codec};
use axum::body::Body;
use axum::http::HeaderMap;
use rdkafka::producer::FutureProducer;

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
pub(crate) async fn read_body(
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

pub(crate) fn text(bytes: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| ApiError::BadJson(format!("body is not UTF-8: {e}")))
}

pub(crate) fn limits(config: &Config) -> ValidationLimits {
    ValidationLimits {
        max_age_secs: config.max_event_age_secs,
        max_future_secs: config.max_event_future_secs,
        ..ValidationLimits::default()
    }
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
