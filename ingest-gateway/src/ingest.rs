//! What every ingest route shares (JSON events, heartbeats, OTLP traces):
//! the state, authentication, the capped body and its decompression,
//! parsing and encoding of the accepted events (off the async workers when
//! large, see [`RawBody::parse_and_encode`]), the validation limits and
//! producing to Kafka. The routes are in `api` and `otlp`, which depend on
//! this module and not on each other.

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
    /// The database (cumulative metric streams; keys and directives keep
    /// their own handles).
    pub(crate) pool: sqlx::PgPool,
    pub(crate) producer: FutureProducer,
    pub(crate) codec: Arc<Codec>,
    pub(crate) config: Config,
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    pub(crate) rate: crate::limits::RateLimiter,
}

pub(crate) async fn authenticate(
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

/// The request body as received, at most `limit` bytes on the wire, with
/// its `Content-Encoding` (identity, gzip or zstd; any other answers 415
/// once the body is read). Decompressing it is [`RawBody::parse`]'s work.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    read_timeout: Duration,
) -> Result<RawBody, ApiError> {
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
    let encoding = match encoding.as_deref() {
        None | Some("") | Some("identity") => Encoding::Identity,
        Some("gzip") | Some("x-gzip") => Encoding::Gzip,
        Some("zstd") => Encoding::Zstd,
        Some(other) => return Err(ApiError::UnsupportedEncoding(other.to_owned())),
    };
    Ok(RawBody {
        bytes: raw,
        encoding,
        limit,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// A request body as received (see [`read_body`]).
#[derive(Debug)]
pub(crate) struct RawBody {
    bytes: axum::body::Bytes,
    encoding: Encoding,
    /// The most bytes the body may have once decompressed.
    limit: usize,
}

/// Plain (uncompressed) bodies up to this size are parsed (and their events
/// encoded) on the async worker that read them; larger ones, and every
/// compressed body, on tokio's blocking pool.
///
/// Parsing, validating and encoding cost CPU in proportion to the body: a
/// fraction of a millisecond for 64 KiB, milliseconds for the 1 MiB cap,
/// time during which the other requests on that worker wait. A compressed body goes to
/// the pool whatever its size, because its decompressed size is only known
/// after the work: a few KiB of gzip can inflate to the whole cap. The
/// common small plain batch stays inline, where it costs less than the
/// hand-off to another thread. At most [`decoders`] bodies are worked on the
/// pool at once (one per core); the others wait for a turn without holding
/// a thread, so decompression buffers and allocator arenas stay bounded
/// however many requests `max_in_flight` admits.
const INLINE_MAX: usize = 64 << 10;

/// Bodies decompressed and parsed on the blocking pool at once: one per
/// core (more would not finish sooner, only hold more memory).
fn decoders() -> &'static tokio::sync::Semaphore {
    static DECODERS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    DECODERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        tokio::sync::Semaphore::new(cores)
    })
}

impl RawBody {
    /// Whether [`RawBody::parse`] runs on the async worker.
    fn inline(&self) -> bool {
        self.encoding == Encoding::Identity && self.bytes.len() <= INLINE_MAX
    }

    /// The body decompressed: at most `limit` bytes, decompression stops
    /// one byte past it, so a bomb costs `limit` bytes of memory and
    /// answers 413.
    fn decode(self) -> Result<axum::body::Bytes, ApiError> {
        match self.encoding {
            Encoding::Identity => Ok(self.bytes),
            Encoding::Gzip => inflate(flate2::read::GzDecoder::new(&self.bytes[..]), self.limit),
            Encoding::Zstd => {
                let d = zstd::stream::read::Decoder::new(&self.bytes[..])
                    .map_err(|e| ApiError::BadEncoding(e.to_string()))?;
                inflate(d, self.limit)
            }
        }
    }

    /// Decompress the body and hand it to `parse` (decoding and validating
    /// its events): inline for a small plain body, else on the blocking pool
    /// (see [`INLINE_MAX`]). The answers are the same either way; a panic
    /// on the pool answers 500 `internal`.
    pub(crate) async fn parse<T, F>(self, parse: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&[u8]) -> Result<T, ApiError> + Send + 'static,
    {
        if self.inline() {
            return parse(&self.bytes);
        }
        // The semaphore is never closed: acquiring only waits.
        let permit = decoders()
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(format!("decoder slots: {e}")))?;
        // The permit moves with the work: a client that goes away does not
        // free the slot before the work ends.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            parse(&self.decode()?)
        })
        .await
        .unwrap_or_else(|e| Err(ApiError::Internal(format!("parsing the body: {e}"))))
    }

    /// [`RawBody::parse`], and in the same step (so on the blocking pool for
    /// a large or compressed body) the events `parse` accepted encoded for
    /// the raw topic: the records [`produce_all`] sends, so the async worker
    /// only waits for the broker.
    pub(crate) async fn parse_and_encode<T, F>(
        self,
        codec: &Arc<Codec>,
        parse: F,
    ) -> Result<(T, Records), ApiError>
    where
        T: Accepted + Send + 'static,
        F: FnOnce(&[u8]) -> Result<T, ApiError> + Send + 'static,
    {
        let codec = Arc::clone(codec);
        self.parse(move |bytes| {
            let parsed = parse(bytes)?;
            let records = Records::encode(&codec, parsed.accepted())?;
            Ok((parsed, records))
        })
        .await
    }
}

/// What a body's parse step accepted, to be produced: the valid events of a
/// batch or of a trace export, or one heartbeat.
pub(crate) trait Accepted {
    fn accepted(&self) -> &[AgentEvent];
}

/// Events encoded for the raw topic, in order: each one's partition key and
/// Avro record (see [`RawBody::parse_and_encode`]).
#[derive(Debug, PartialEq)]
pub(crate) struct Records(Vec<(String, Vec<u8>)>);

impl Records {
    pub(crate) fn encode(codec: &Codec, events: &[AgentEvent]) -> Result<Self, ApiError> {
        let mut records = Vec::with_capacity(events.len());
        for e in events {
            let payload = codec
                .encode(e)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            records.push((e.partition_key(), payload));
        }
        Ok(Records(records))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
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

/// Authenticate an ingest request and read its body (still compressed, if
/// it was sent so: [`RawBody::parse`] decompresses it).
pub(crate) async fn ingest_request(
    state: &AppState,
    headers: &HeaderMap,
    client: SocketAddr,
    body: Body,
) -> Result<(KeyInfo, RawBody), ApiError> {
    let key = authenticate(state, headers, Scope::Ingest, client.ip()).await?;
    let body = read_body(
        headers,
        body,
        state.config.max_body_bytes,
        Duration::from_millis(state.config.body_read_timeout_ms),
    )
    .await?;
    Ok((key, body))
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

/// How much longer than `produce_timeout_ms` [`produce_all`] waits for the
/// broker's acknowledgements: a safety net (see there).
const PRODUCE_GRACE: Duration = Duration::from_secs(1);

/// Take the events from the key's rate limit (429 when it is spent), then
/// produce every record (encoded with the parsing, see
/// [`RawBody::parse_and_encode`]) and wait until the broker acknowledged all
/// of them, for at most `produce_timeout_ms`.
///
/// The producer's delivery timeout (`message.timeout.ms`) is
/// `produce_timeout_ms` itself, so a 503 normally means librdkafka gave the
/// record up. The wait here is bounded a second later as a safety net; a
/// record already in flight when either fires may still be written (the
/// broker cannot be asked to forget it), and the client's retry is then a
/// duplicate that the projections drop by `event_id`.
pub(crate) async fn produce_all(
    state: &AppState,
    key: &KeyInfo,
    records: &Records,
) -> Result<(), ApiError> {
    if let Err(wait) = state
        .rate
        .take(&key.org_id, key.rate_limit, records.len(), Instant::now())
    {
        return Err(ApiError::RateLimited(wait));
    }
    let started = Instant::now();
    let timeout = Duration::from_millis(state.config.produce_timeout_ms);
    let sends = agentops_runtime::kafka::send_records(
        &state.producer,
        &state.config.kafka.topic_raw,
        &records.0,
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
        tracing::warn!(error = %e, events = records.len(), "broker did not acknowledge the batch");
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

    async fn raw(encoding: &str, body: Vec<u8>, limit: usize) -> Result<RawBody, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_ENCODING,
            encoding.parse().unwrap(),
        );
        read_body(&headers, Body::from(body), limit, Duration::from_secs(5)).await
    }

    async fn read(encoding: &str, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, ApiError> {
        raw(encoding, body, limit)
            .await?
            .parse(|b| Ok(b.to_vec()))
            .await
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

    /// The thread `parse` ran on.
    async fn parsed_on(encoding: &str, body: Vec<u8>) -> std::thread::ThreadId {
        raw(encoding, body, 1 << 20)
            .await
            .unwrap()
            .parse(|_| Ok(std::thread::current().id()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn large_or_compressed_bodies_are_parsed_off_the_async_worker() {
        // A current-thread runtime: the test's own thread is the only worker.
        let worker = std::thread::current().id();
        let small = br#"{"events":[]}"#.to_vec();
        let large = vec![b' '; INLINE_MAX + 1];
        assert_eq!(parsed_on("identity", small.clone()).await, worker);
        assert_eq!(parsed_on("identity", vec![b' '; INLINE_MAX]).await, worker);
        assert_ne!(parsed_on("identity", large).await, worker);
        for enc in ["gzip", "zstd"] {
            assert_ne!(parsed_on(enc, encoded(enc, &small)).await, worker);
        }
    }

    /// Parsed events that note the thread their encoding read them on.
    struct Probe {
        events: Vec<AgentEvent>,
        read_on: std::cell::Cell<Option<std::thread::ThreadId>>,
        panics: bool,
    }

    impl Accepted for Probe {
        fn accepted(&self) -> &[AgentEvent] {
            assert!(!self.panics, "encoder bug");
            self.read_on.set(Some(std::thread::current().id()));
            &self.events
        }
    }

    fn probe(panics: bool) -> Probe {
        let event = |i: usize| AgentEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            org_id: "org-1".into(),
            event_type: "heartbeat".into(),
            agent_id: format!("agent-{i}"),
            timestamp: 1_795_341_600_000_000,
            ..Default::default()
        };
        Probe {
            events: (0..3).map(event).collect(),
            read_on: Default::default(),
            panics,
        }
    }

    /// The thread the accepted events were encoded on, with what
    /// `parse_and_encode` gave.
    async fn encoded_on(encoding: &str, body: Vec<u8>) -> (std::thread::ThreadId, Probe, Records) {
        let (probe, records) = raw(encoding, body, 1 << 20)
            .await
            .unwrap()
            .parse_and_encode(&Arc::new(Codec::current()), |_| Ok(probe(false)))
            .await
            .unwrap();
        (probe.read_on.get().unwrap(), probe, records)
    }

    #[tokio::test]
    async fn large_or_compressed_bodies_are_encoded_off_the_async_worker() {
        // A current-thread runtime: the test's own thread is the only worker.
        let worker = std::thread::current().id();
        let small = br#"{"events":[]}"#.to_vec();
        let (on, probe, records) = encoded_on("identity", small.clone()).await;
        assert_eq!(on, worker);
        let codec = Codec::current();
        let want = probe
            .events
            .iter()
            .map(|e| (e.partition_key(), codec.encode(e).unwrap()))
            .collect();
        assert_eq!(records, Records(want));
        let (on, _, records) = encoded_on("identity", vec![b' '; INLINE_MAX + 1]).await;
        assert_ne!(on, worker);
        assert_eq!(records.len(), 3);
        for enc in ["gzip", "zstd"] {
            assert_ne!(encoded_on(enc, encoded(enc, &small)).await.0, worker);
        }
    }

    #[tokio::test]
    async fn a_panic_while_encoding_answers_internal() {
        let body = raw("gzip", encoded("gzip", b"{}"), 1024).await.unwrap();
        let got = body
            .parse_and_encode(&Arc::new(Codec::current()), |_| Ok(probe(true)))
            .await;
        assert!(matches!(got, Err(ApiError::Internal(_))), "{:?}", got.err());
    }

    #[tokio::test]
    async fn a_panic_while_parsing_answers_internal() {
        let body = raw("gzip", encoded("gzip", b"{}"), 1024).await.unwrap();
        let got = body
            .parse(|_| -> Result<(), ApiError> { panic!("parser bug") })
            .await;
        assert!(matches!(got, Err(ApiError::Internal(_))), "{got:?}");
    }
}
