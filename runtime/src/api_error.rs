//! The error codes the HTTP APIs answer with (gateway and query API), each
//! with its status: one vocabulary in one place, so the same condition has
//! the same code and status whichever API reports it. Bodies are
//! `{"error": {"code": ..., "message": ...}}`, plus fields an error adds.

use axum::http::StatusCode;

/// A machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MissingApiKey,
    InvalidApiKey,
    InvalidCredentials,
    InvalidSession,
    Forbidden,
    InvalidCsrfToken,
    InvalidParameter,
    InvalidField,
    UnknownField,
    InvalidJson,
    InvalidRequest,
    InvalidEncoding,
    UnsupportedEncoding,
    UnsupportedMediaType,
    BodyTooLarge,
    BatchTooLarge,
    AllEventsRejected,
    RequestTimeout,
    NotFound,
    Conflict,
    Overloaded,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::MissingApiKey,
        ErrorCode::InvalidApiKey,
        ErrorCode::InvalidCredentials,
        ErrorCode::InvalidSession,
        ErrorCode::Forbidden,
        ErrorCode::InvalidCsrfToken,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidField,
        ErrorCode::UnknownField,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidEncoding,
        ErrorCode::UnsupportedEncoding,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::BodyTooLarge,
        ErrorCode::BatchTooLarge,
        ErrorCode::AllEventsRejected,
        ErrorCode::RequestTimeout,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Overloaded,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code in answers (`snake_case`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidSession => "invalid_session",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidCsrfToken => "invalid_csrf_token",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidEncoding => "invalid_encoding",
            ErrorCode::UnsupportedEncoding => "unsupported_encoding",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::AllEventsRejected => "all_events_rejected",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with it.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::MissingApiKey
            | ErrorCode::InvalidApiKey
            | ErrorCode::InvalidCredentials
            | ErrorCode::InvalidSession => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::InvalidCsrfToken => StatusCode::FORBIDDEN,
            ErrorCode::InvalidParameter
            | ErrorCode::InvalidField
            | ErrorCode::UnknownField
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::InvalidEncoding
            | ErrorCode::AllEventsRejected => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedEncoding | ErrorCode::UnsupportedMediaType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ErrorCode::BodyTooLarge | ErrorCode::BatchTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Overloaded | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error body: `{"error": {"code", "message"}}`.
    pub fn body(self, message: impl std::fmt::Display) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.as_str(), "message": message.to_string()}})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
    }

    #[test]
    fn the_readme_documents_every_code() {
        let readme = include_str!("../../README.md");
        for c in ErrorCode::ALL {
            assert!(
                readme.contains(&format!("`{}`", c.as_str())),
                "README does not mention `{}`",
                c.as_str()
            );
        }
    }
}
