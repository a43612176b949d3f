//! `POST /v1/traces`: OTLP/HTTP trace export. GenAI spans become agent events
//! ([`agentops_schemas::otlp`] holds the decoding and the mapping), produced
//! and acknowledged like `POST /v1/events`.
//!
//! Answers follow the OTLP/HTTP specification: `200` with an
//! `ExportTraceServiceResponse` in the request's encoding, whose
//! `partial_success` counts the refused spans (or, with 0 refused, says how
//! many spans were not GenAI operations). Failures keep the gateway's JSON
//! error body: 400 for a body that does not decode, 401/403, 413, 415 for a
//! Content-Type other than protobuf or JSON, 429/503 from the producer.

use std::net::SocketAddr;
use std::sync::Arc;

use agentops_runtime::keys::KeyInfo;
use agentops_schemas::otlp::logs::{self, MappedLogs};
use agentops_schemas::otlp::metrics::{self, MappedMetrics};
use agentops_schemas::otlp::{self, Format, Mapped};
use agentops_schemas::AgentEvent;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::UsageSource;
use crate::error::ApiError;
use crate::ingest::{ingest_request, limits, produce_all, Accepted, AppState, Records};
use crate::telemetry;

/// OTLP/HTTP trace export: GenAI spans become agent events.
#[utoipa::path(post, path = "/v1/traces", tag = "ingest",
    request_body(content(
        (crate::openapi::TraceExportRequest = "application/json"),
        (Vec<u8> = "application/x-protobuf"),
    )),
    responses((status = 200, description = "Exported; `partialSuccess` counts refused spans (answered in the request's encoding)",
        content(
            (crate::openapi::TraceExportResponse = "application/json"),
            (Vec<u8> = "application/x-protobuf"),
        ))))]
pub(crate) async fn post_traces(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let format = format_of(&headers)?;
    let (key, body) = ingest_request(&state, &headers, client, body).await?;
    let (limits, org_id) = (limits(&state.config), key.org_id.clone());
    let (mapped, records) = body
        .parse_and_encode(&state.codec, move |bytes| {
            let now_us = chrono::Utc::now().timestamp_micros();
            otlp::decode_and_map(bytes, format, &org_id, now_us, &limits)
                .map_err(|e| ApiError::BadShape(e.to_string()))
        })
        .await?;
    let rejected_spans = mapped.rejected_spans();
    telemetry::otlp_spans_received(mapped.spans);
    telemetry::otlp_spans_ignored(mapped.ignored_spans);
    telemetry::otlp_spans_rejected(rejected_spans);
    produce_mapped(&state, &key, &records, mapped.rejected.len()).await?;
    telemetry::otlp_spans_mapped(mapped.mapped_spans());
    tracing::debug!(
        org_id = %key.org_id,
        spans = mapped.spans,
        events = mapped.accepted.len(),
        ignored = mapped.ignored_spans,
        rejected = rejected_spans,
        "otlp traces ingested"
    );
    Ok(answer(
        otlp::encode_response(&mapped.response(), format),
        format,
    ))
}

/// Produce an export's accepted events (`records`; acknowledged by the
/// broker before the answer) and count them and the `rejected` ones.
async fn produce_mapped(
    state: &AppState,
    key: &KeyInfo,
    records: &Records,
    rejected: usize,
) -> Result<(), ApiError> {
    telemetry::events_rejected(&key.org_id, rejected);
    if records.len() > 0 {
        produce_all(state, key, records).await?;
        telemetry::events_accepted(&key.org_id, records.len());
    }
    Ok(())
}

/// The request's OTLP encoding, from its `Content-Type` (415 otherwise).
fn format_of(headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"))
        .unwrap_or_default();
    Format::from_content_type(content_type)
        .ok_or_else(|| ApiError::UnsupportedContentType(content_type.to_owned()))
}

/// `200` with an OTLP answer in the request's encoding.
fn answer(body: Vec<u8>, format: Format) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

/// OTLP/HTTP logs export: coding agents' own log events (Claude Code's
/// `claude_code.*`, Codex CLI's `codex.*`) become agent events
/// (docs/coding-agents.md); other records are counted as ignored.
#[utoipa::path(post, path = "/v1/logs", tag = "ingest",
    request_body(content(
        (crate::openapi::LogsExportRequest = "application/json"),
        (Vec<u8> = "application/x-protobuf"),
    )),
    responses((status = 200, description = "Exported; `partialSuccess` counts refused records (answered in the request's encoding)",
        content(
            (crate::openapi::LogsExportResponse = "application/json"),
            (Vec<u8> = "application/x-protobuf"),
        ))))]
pub(crate) async fn post_logs(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let format = format_of(&headers)?;
    let (key, body) = ingest_request(&state, &headers, client, body).await?;
    let (limits, org_id) = (limits(&state.config), key.org_id.clone());
    let usage = state.config.otlp_usage_source == UsageSource::Logs;
    let (mapped, records) = body
        .parse_and_encode(&state.codec, move |bytes| {
            let now_us = chrono::Utc::now().timestamp_micros();
            logs::decode_and_map_logs(bytes, format, &org_id, now_us, &limits, usage)
                .map_err(|e| ApiError::BadShape(e.to_string()))
        })
        .await?;
    let rejected = mapped.rejected_records();
    telemetry::otlp_logs(mapped.records, mapped.ignored, rejected);
    produce_mapped(&state, &key, &records, mapped.rejected.len()).await?;
    tracing::debug!(
        org_id = %key.org_id,
        records = mapped.records,
        events = mapped.accepted.len(),
        ignored = mapped.ignored,
        rejected,
        "otlp logs ingested"
    );
    Ok(answer(
        logs::encode_logs_response(&mapped.response(), format),
        format,
    ))
}

impl Accepted for MappedLogs {
    fn accepted(&self) -> &[AgentEvent] {
        &self.accepted
    }
}

impl Accepted for Mapped {
    fn accepted(&self) -> &[AgentEvent] {
        &self.accepted
    }
}

/// OTLP/HTTP metrics export: Claude Code's usage counters
/// (`claude_code.token.usage`, `claude_code.cost.usage`), cumulative or
/// delta, become `llm_call` events of each export interval's usage, counted
/// once (`metric_state`), when `otlp_usage_source = metrics`; other data
/// points, and these with `otlp_usage_source = logs`, are counted as ignored.
#[utoipa::path(post, path = "/v1/metrics", tag = "ingest",
    request_body(content(
        (crate::openapi::MetricsExportRequest = "application/json"),
        (Vec<u8> = "application/x-protobuf"),
    )),
    responses((status = 200, description = "Exported; `partialSuccess` counts refused data points (answered in the request's encoding)",
        content(
            (crate::openapi::MetricsExportResponse = "application/json"),
            (Vec<u8> = "application/x-protobuf"),
        ))))]
pub(crate) async fn post_metrics(
    State(state): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let format = format_of(&headers)?;
    let (key, body) = ingest_request(&state, &headers, client, body).await?;
    let limits = limits(&state.config);
    let request = body
        .parse(move |bytes| {
            metrics::decode_metrics(bytes, format).map_err(|e| ApiError::BadShape(e.to_string()))
        })
        .await?;
    let (points, mut ignored) = metrics::points(&request, &limits);
    let points = if state.config.otlp_usage_source == UsageSource::Metrics {
        points
    } else {
        ignored += points.len();
        Vec::new()
    };
    let deltas = crate::metric_state::increments(&state.pool, &key.org_id, &points)
        .await
        .map_err(|e| ApiError::Unavailable(format!("metric stream state: {e}")))?;
    let now_us = chrono::Utc::now().timestamp_micros();
    let mapped = metrics::usage_events(&points, &deltas, ignored, &key.org_id, now_us, &limits);
    telemetry::otlp_metric_points(
        mapped.points + mapped.ignored,
        mapped.ignored,
        mapped.unchanged,
    );
    let records = Records::encode(&state.codec, &mapped.accepted)?;
    produce_mapped(&state, &key, &records, mapped.rejected.len()).await?;
    Ok(answer(
        metrics::encode_metrics_response(&mapped.response(), format),
        format,
    ))
}

impl Accepted for MappedMetrics {
    fn accepted(&self) -> &[AgentEvent] {
        &self.accepted
    }
}
