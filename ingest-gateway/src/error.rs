//! The one place domain errors become HTTP status codes and JSON bodies.

use agentops_runtime::api_error::ErrorCode;
use axum::http::header;
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
    #[error("`{field}`: {error}")]
    BadRequest { field: String, error: String },
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
    /// Its code in the shared vocabulary (which also fixes the status).
    fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::MissingKey => ErrorCode::MissingApiKey,
            ApiError::BadKey => ErrorCode::InvalidApiKey,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::BodyTooLarge(_) | ApiError::DecompressedTooLarge(_) => {
                ErrorCode::BodyTooLarge
            }
            ApiError::BadEncoding(_) => ErrorCode::InvalidEncoding,
            ApiError::BodyTimeout(_) => ErrorCode::RequestTimeout,
            ApiError::UnsupportedEncoding(_) => ErrorCode::UnsupportedEncoding,
            ApiError::UnsupportedContentType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
            ApiError::BadJson(_) => ErrorCode::InvalidJson,
            ApiError::BadShape(_) | ApiError::BadRequest { .. } => ErrorCode::InvalidRequest,
            ApiError::AllRejected(_) => ErrorCode::AllEventsRejected,
            ApiError::Overloaded(_) => ErrorCode::Overloaded,
            ApiError::RateLimited(_) => ErrorCode::RateLimited,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn code(&self) -> &'static str {
        self.error_code().as_str()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.error_code().status();
        crate::telemetry::request_failed(self.code());
        if let ApiError::Internal(detail) = &self {
            tracing::error!(detail, "internal error");
        }
        let mut body = self.error_code().body(&self);
        if let ApiError::AllRejected(rejected) = &self {
            body["accepted"] = json!(0);
            body["rejected"] = json!(rejected);
        }
        if let ApiError::BadRequest { field, .. } = &self {
            body["error"]["field"] = json!(field);
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
