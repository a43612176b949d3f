//! The gateway's OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` attributes: every route of [`crate::api::routes`]
//! (a key with the `ingest` scope) with the error answers each
//! can give, in the shared error body. Served at `GET /openapi.json` with a
//! reference page at `GET /docs` (public; see [`agentops_runtime::openapi`]).

use std::sync::{Arc, OnceLock};

use agentops_runtime::openapi as shared;
use serde_json::Value;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AgentOps ingest gateway",
        description = "Authenticates, validates and appends agent events to the event log; \
                       a 202 is sent only after the broker acknowledged every accepted event. \
                       Every route needs a key with the `ingest` scope (or `admin`). Bodies may be \
                       gzip- or zstd-compressed (`Content-Encoding`). Errors are \
                       `{\"error\": {\"code\", \"message\"}}`.",
    ),
    paths(crate::api::post_events, crate::api::post_heartbeat, crate::otlp::post_traces, crate::otlp::post_logs, crate::otlp::post_metrics, crate::api::get_directives),
    tags((name = "ingest", description = "Events, heartbeats and OTLP traces")),
)]
struct ApiDoc;

/// The answers every route can give besides its own.
const ERRORS: [(u16, &str); 8] = [
    (
        400,
        "The request is not valid (bad JSON, wrong shape, undecodable; a bad parameter)",
    ),
    (401, "No key, or an unknown or revoked key"),
    (403, "The key lacks the `ingest` scope"),
    (408, "The body was not received in time"),
    (
        413,
        "The body (or its decompressed form, or the batch) is too large",
    ),
    (415, "Unsupported Content-Encoding or Content-Type"),
    (
        429,
        "Too many requests in flight, or the org's rate limit (see Retry-After)",
    ),
    (
        503,
        "The event log is unavailable; retry later (see Retry-After)",
    ),
];

/// Of [`ERRORS`], those a `GET` (no body, nothing produced) can answer.
const GET_ERRORS: [u16; 4] = [400, 401, 403, 429];

/// The document (built from the code; see the module doc).
pub(crate) fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    shared::add_shared_components(&mut doc);
    for (_, method, op) in shared::operations_mut(&mut doc) {
        op.security = Some(vec![
            SecurityRequirement::new::<_, _, &str>(shared::BEARER, []),
            SecurityRequirement::new::<_, _, &str>(shared::API_KEY_HEADER, []),
        ]);
        for (status, description) in ERRORS {
            if method == "get" && !GET_ERRORS.contains(&status) {
                continue;
            }
            shared::add_error_response(op, status, description);
        }
    }
    doc
}

/// The document as JSON, built once.
pub(crate) fn json() -> Arc<str> {
    static JSON: OnceLock<Arc<str>> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
            .into()
    })
    .clone()
}

/// `GET /openapi.json` and `GET /docs` (public, outside the in-flight bound).
pub(crate) fn docs_router() -> axum::Router {
    shared::docs_router(json())
}

/// One event as sent (see the README's event reference): validated field
/// by field; a bad field rejects that event only.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Named by the document only (events are read by `agentops_schemas::validate`).
pub(crate) struct EventIn {
    /// A UUID; the same id twice is one event.
    #[schema(format = Uuid)]
    event_id: String,
    #[serde(rename = "type")]
    event_type: EventType,
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")]
    agent_id: String,
    /// RFC 3339 (or microseconds since the epoch); within the late-data window.
    #[schema(value_type = String, format = DateTime)]
    timestamp: Value,
    workflow_id: Option<String>,
    /// Required for `run_started`, `run_completed`, `run_failed`.
    run_id: Option<String>,
    status: Option<String>,
    #[schema(minimum = 0)]
    latency_ms: Option<i64>,
    provider: Option<String>,
    model: Option<String>,
    #[schema(minimum = 0)]
    input_tokens: Option<i64>,
    #[schema(minimum = 0)]
    output_tokens: Option<i64>,
    #[schema(minimum = 0)]
    cache_read_tokens: Option<i64>,
    #[schema(minimum = 0)]
    cache_write_tokens: Option<i64>,
    #[schema(minimum = 0)]
    reasoning_tokens: Option<i64>,
    /// When absent, priced from the model prices.
    #[schema(minimum = 0)]
    cost_usd: Option<f64>,
    tool_name: Option<String>,
    error_type: Option<String>,
    error_message: Option<String>,
    trace_id: Option<String>,
    span_id: Option<String>,
    /// String values (numbers and booleans are kept as text).
    attributes: Option<std::collections::HashMap<String, String>>,
}

/// The event types.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum EventType {
    RunStarted,
    RunCompleted,
    RunFailed,
    LlmCall,
    ToolCall,
    Heartbeat,
}

/// `{"events": [...]}`.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct EventBatch {
    events: Vec<EventIn>,
}

/// `POST /v1/events` body: one event, `{"events": [...]}`, or a bare array.
#[derive(serde::Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum EventsBody {
    One(Box<EventIn>),
    Batch(EventBatch),
    Array(Vec<EventIn>),
}

/// An event that was refused, and why.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `agentops_schemas::batch::Rejected`.
pub(crate) struct RejectedEvent {
    /// Its position in the request.
    index: i64,
    field: String,
    error: String,
}

/// What to tell an agent that is paused or killed.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `crate::directives::Directive`.
pub(crate) struct Directive {
    agent_id: String,
    /// `pause` or `kill`.
    action: String,
    reason: String,
}

/// `GET /v1/directives` parameters: at least one.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct DirectivesQuery {
    agent_id: Option<String>,
    project_id: Option<String>,
    machine_id: Option<String>,
    workspace_id: Option<String>,
    session_id: Option<String>,
}

/// A control on a named scope.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `crate::directives::ScopeDirective`.
pub(crate) struct ScopeDirective {
    /// `agent`, `project`, `machine`, `workspace` or `session`.
    scope: String,
    id: String,
    /// `pause` or `kill`.
    action: String,
    reason: String,
}

/// `GET /v1/directives` answer: empty when nothing named is paused or killed.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `get_directives`.
pub(crate) struct DirectivesAnswer {
    directives: Vec<ScopeDirective>,
}

/// `POST /v1/events` answer.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `post_events`.
pub(crate) struct EventsAccepted {
    /// Events appended to the log (the rest are in `rejected`).
    accepted: i64,
    rejected: Vec<RejectedEvent>,
    /// For the batch's agents that are paused or killed.
    directives: Vec<Directive>,
}

/// `POST /v1/heartbeat` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct HeartbeatBody {
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")]
    agent_id: String,
    status: Option<String>,
    /// Kept as the event's attributes.
    metadata: Option<std::collections::HashMap<String, String>>,
    /// Default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    timestamp: Option<Value>,
    /// Default: a new UUID.
    #[schema(format = Uuid)]
    event_id: Option<String>,
}

/// `POST /v1/heartbeat` answer.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `post_heartbeat`.
pub(crate) struct HeartbeatAccepted {
    accepted: i64,
    event_id: String,
    directives: Vec<Directive>,
}

/// `ExportTraceServiceResponse` (OTLP/JSON form; the same in protobuf).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Describes `agentops_schemas::otlp::encode_response`.
pub(crate) struct TraceExportResponse {
    partial_success: Option<PartialSuccess>,
}

/// Spans refused (and why), or with 0 refused, a note on ignored spans.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Describes `agentops_schemas::otlp::encode_response`.
pub(crate) struct PartialSuccess {
    /// An integer (OTLP/JSON may encode it as a string).
    rejected_spans: Option<Value>,
    error_message: Option<String>,
}

/// `POST /v1/traces` body in OTLP/JSON: `ExportTraceServiceRequest`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Named by the document only (decoded by `agentops_schemas::otlp`).
pub(crate) struct TraceExportRequest {
    /// `resourceSpans[].scopeSpans[].spans[]` with GenAI attributes.
    resource_spans: Vec<Value>,
}

/// `POST /v1/logs` answer: `ExportLogsServiceResponse`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Describes `agentops_schemas::otlp::logs::encode_logs_response`.
pub(crate) struct LogsExportResponse {
    partial_success: Option<LogsPartialSuccess>,
}

/// Log records refused (and why), or with 0 refused, a note on ignored ones.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Describes `agentops_schemas::otlp::logs::encode_logs_response`.
pub(crate) struct LogsPartialSuccess {
    /// An integer (OTLP/JSON may encode it as a string).
    rejected_log_records: Option<Value>,
    error_message: Option<String>,
}

/// `POST /v1/logs` body in OTLP/JSON: `ExportLogsServiceRequest`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Named by the document only (decoded by `agentops_schemas::otlp::logs`).
pub(crate) struct LogsExportRequest {
    /// `resourceLogs[].scopeLogs[].logRecords[]` of coding agents' events.
    resource_logs: Vec<Value>,
}

/// `POST /v1/metrics` answer: `ExportMetricsServiceResponse`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Describes `agentops_schemas::otlp::metrics::encode_metrics_response`.
pub(crate) struct MetricsExportResponse {
    partial_success: Option<MetricsPartialSuccess>,
}

/// Data points refused (and why), or with 0 refused, a note on ignored ones.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Describes `agentops_schemas::otlp::metrics::encode_metrics_response`.
pub(crate) struct MetricsPartialSuccess {
    /// An integer (OTLP/JSON may encode it as a string).
    rejected_data_points: Option<Value>,
    error_message: Option<String>,
}

/// `POST /v1/metrics` body in OTLP/JSON: `ExportMetricsServiceRequest`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // Named by the document only (decoded by `agentops_schemas::otlp::metrics`).
pub(crate) struct MetricsExportRequest {
    /// `resourceMetrics[].scopeMetrics[].metrics[]`: Claude Code's usage counters.
    resource_metrics: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_and_the_routes_name_the_same_operations() {
        let documented: BTreeSet<(String, String)> =
            shared::operations(&document()).into_iter().collect();
        let routed: BTreeSet<(String, String)> = crate::api::routes()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
            .collect();
        assert_eq!(documented, routed);
    }

    #[test]
    fn every_operation_has_its_answers() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            let (method, op) = item.as_object().unwrap().iter().next().unwrap();
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{path}");
            for (status, _) in ERRORS {
                if method == "get" && !GET_ERRORS.contains(&status) {
                    assert!(
                        !responses.contains_key(&status.to_string()),
                        "{path} {status}"
                    );
                    continue;
                }
                let r = &responses[&status.to_string()];
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{path} {status}"
                );
            }
        }
    }
}
