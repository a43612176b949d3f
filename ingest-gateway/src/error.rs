//! The one place domain errors become HTTP status codes and JSON bodies.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("missing API key: send `Authorization: Bearer <key>` or `x-api-key`")]
    MissingKey,
    #[error("unknown or revoked API key")]
    BadKey,
    #[error("this API key lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("request body not received within {} ms", .0.as_millis())]
    BodyTimeout(std::time::Duration),
    #[error("decompressed request body is larger than {0} bytes")]
    DecompressedTooLarge(usize),
    #[error("body cannot be decompressed: {0}")]
    BadEncoding(String),
    #[error("Content-Encoding `{0}` is not supported: send gzip, zstd or identity")]
    UnsupportedEncoding(String),
    #[error(
        "Content-Type `{0}` is not supported: send application/x-protobuf or application/json"
    )]
    UnsupportedContentType(String),
    #[error("batch has {got} events; at most {max} per request")]
    BatchTooLarge { got: usize, max: usize },
    #[error("body is not valid JSON: {0}")]
    BadJson(String),
    #[error("{0}")]
    BadShape(String),
    #[error("no event in the batch is valid")]
    AllRejected(Vec<agentops_schemas::batch::Rejected>),
    #[error("too many requests in flight (at most {0}); retry later")]
    Overloaded(usize),
    #[error("ingest rate limit of this org exceeded; retry in {} ms", .0.as_millis())]
    RateLimited(std::time::Duration),
    #[error("the event log is unavailable; retry later ({0})")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<agentops_schemas::batch::BatchError> for ApiError {
    fn from(e: agentops_schemas::batch::BatchError) -> Self {
        use agentops_schemas::batch::BatchError;
        match e {
            BatchError::Json(e) => ApiError::BadJson(e),
            BatchError::Shape(e) => ApiError::BadShape(e),
            BatchError::TooLarge { got, max } => ApiError::BatchTooLarge { got, max },
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingKey | ApiError::BadKey => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BodyTooLarge(_)
            | ApiError::DecompressedTooLarge(_)
            | ApiError::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadEncoding(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedEncoding(_) | ApiError::UnsupportedContentType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::BadJson(_) | ApiError::BadShape(_) | ApiError::AllRejected(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Overloaded(_) | ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::MissingKey => "missing_api_key",
            ApiError::BadKey => "invalid_api_key",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BodyTooLarge(_) | ApiError::DecompressedTooLarge(_) => "body_too_large",
            ApiError::BadEncoding(_) => "invalid_encoding",
            ApiError::BodyTimeout(_) => "request_timeout",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::UnsupportedContentType(_) => "unsupported_media_type",
            ApiError::BatchTooLarge { .. } => "batch_too_large",
            ApiError::BadJson(_) => "invalid_json",
            ApiError::BadShape(_) => "invalid_request",
            ApiError::AllRejected(_) => "all_events_rejected",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        crate::telemetry::request_failed(self.code());
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail, "internal error");
        }
        let mut body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        if let ApiError::AllRejected(rejected) = &self {
            body["accepted"] = json!(0);
            body["rejected"] = json!(rejected);
        }
        let mut resp = (status, Json(body)).into_response();
        // Whole seconds, rounded up (at least 1).
        let retry_after = match &self {
            ApiError::RateLimited(wait) => {
                Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs.max(1)));
        }
        resp
    }
}
