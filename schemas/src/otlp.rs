//! OTLP/HTTP trace ingestion: decode an `ExportTraceServiceRequest`
//! (protobuf or OTLP/JSON) and map OpenTelemetry GenAI spans
//! (`gen_ai.*` semantic conventions) to agent events.
//!
//! Every mapped event is built as client JSON and validated by
//! [`crate::validate`], so it obeys exactly the limits of `POST /v1/events`.
//! Spans that are not GenAI operations we map are counted as ignored, not
//! errors. No Kafka, no Postgres: the fuzz target runs [`decode_and_map`]
//! as the gateway does. The mapping table is in the README ("OpenTelemetry
//! GenAI traces").

mod attrs;
mod event;
pub mod logs;
#[cfg(test)]
mod logs_tests;
pub mod metrics;
mod semconv;
mod spans;
#[cfg(test)]
mod tests;

pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
pub use spans::to_events;

use crate::batch::Rejected;
use crate::validate::ValidationLimits;
use crate::AgentEvent;

/// The encoding of a request (and of its answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json` (OTLP/JSON: hex ids, lowerCamelCase, enums as ints)
    Json,
}

impl Format {
    /// The format a `Content-Type` names (parameters ignored), if one we take.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-protobuf")
            || media.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Format::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// Why a body could not be decoded (nothing of it is accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    #[error("body is not a protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(String),
    #[error("body is not an OTLP/JSON ExportTraceServiceRequest: {0}")]
    Json(String),
}

/// Decode a request body. Never panics; protobuf nesting is bounded by
/// prost's recursion limit, JSON nesting by serde_json's.
pub fn decode(body: &[u8], format: Format) -> Result<ExportTraceServiceRequest, OtlpError> {
    match format {
        Format::Protobuf => <ExportTraceServiceRequest as prost::Message>::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string())),
        Format::Json => serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string())),
    }
}

/// Encode an answer in the request's format.
pub fn encode_response(response: &ExportTraceServiceResponse, format: Format) -> Vec<u8> {
    match format {
        Format::Protobuf => prost::Message::encode_to_vec(response),
        Format::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// What a request's spans became.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Spans in the request.
    pub spans: usize,
    /// Valid events, in span order.
    pub accepted: Vec<AgentEvent>,
    /// Refused events; `index` is the span's position in the request
    /// (resource spans, then scope spans, then spans, in order).
    pub rejected: Vec<Rejected>,
    /// Spans that are not a GenAI operation we map (dropped, not errors).
    pub ignored_spans: usize,
}

impl Mapped {
    /// Spans with at least one refused event.
    pub fn rejected_spans(&self) -> usize {
        let mut idx: Vec<usize> = self.rejected.iter().map(|r| r.index).collect();
        idx.dedup();
        idx.len()
    }

    /// Spans that became events, all of them valid.
    pub fn mapped_spans(&self) -> usize {
        self.spans - self.ignored_spans - self.rejected_spans()
    }

    /// The OTLP answer: `partial_success` names refused spans (the first few
    /// reasons), or, when everything was taken but some spans were not
    /// GenAI operations, says so with `rejected_spans` 0 (a warning, as the
    /// OTLP specification allows).
    pub fn response(&self) -> ExportTraceServiceResponse {
        let rejected = self.rejected_spans();
        let error_message = if rejected > 0 {
            let mut reasons: Vec<String> = self
                .rejected
                .iter()
                .take(5)
                .map(|r| format!("span {}: field `{}`: {}", r.index, r.field, r.error))
                .collect();
            if self.rejected.len() > 5 {
                reasons.push(format!("and {} more", self.rejected.len() - 5));
            }
            format!(
                "{rejected} of {} spans rejected: {}",
                self.spans,
                reasons.join("; ")
            )
        } else if self.ignored_spans > 0 {
            format!(
                "{} of {} spans ignored: not a GenAI operation this endpoint maps \
                 (gen_ai.operation.name chat, text_completion, generate_content, embeddings, \
                 execute_tool or invoke_agent)",
                self.ignored_spans, self.spans
            )
        } else {
            return ExportTraceServiceResponse {
                partial_success: None,
            };
        };
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: rejected as i64,
                error_message,
            }),
        }
    }
}

/// Decode a body and map its spans. Never panics on any input.
pub fn decode_and_map(
    body: &[u8],
    format: Format,
    org_id: &str,
    now_us: i64,
    limits: &ValidationLimits,
) -> Result<Mapped, OtlpError> {
    let request = decode(body, format)?;
    Ok(to_events(&request, org_id, now_us, limits))
}
