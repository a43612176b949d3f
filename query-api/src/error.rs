//! The one place domain errors become HTTP status codes and JSON bodies.

use agentops_runtime::api_error::ErrorCode;
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
    #[error("the session is unknown, expired or revoked: sign in again")]
    BadSession,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("the role `{role}` does not allow {what}")]
    RoleForbidden {
        role: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    NotMember(String),
    #[error("a request signed in by cookie that changes something needs the header `x-csrf-token` with the session's token (from sign-in or `GET /v1/auth/me`)")]
    Csrf,
    #[error("too many failed sign-ins for this email; retry in {0} s")]
    LoginThrottled(u64),
    #[error("managing orgs needs an admin key of a platform org; org `{0}` is not a platform org")]
    NotPlatform(String),
    #[error("parameter `{field}`: {message}")]
    BadParam {
        field: &'static str,
        message: String,
    },
    #[error("field `{field}`: {message}")]
    BadField {
        field: &'static str,
        message: String,
    },
    #[error("field `{0}` is not accepted here")]
    UnknownField(String),
    #[error("the body is not a JSON object: {0}")]
    BadJson(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("database unavailable")]
    Database(#[from] sqlx::Error),
    /// Something else the request needed failed (the key store, a
    /// transaction); the cause is logged, the caller sees only this.
    #[error("service unavailable")]
    Unavailable(String),
}

impl ApiError {
    /// Its code in the shared vocabulary (which also fixes the status).
    fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::MissingKey => ErrorCode::MissingApiKey,
            ApiError::BadKey => ErrorCode::InvalidApiKey,
            ApiError::Forbidden(_)
            | ApiError::NotPlatform(_)
            | ApiError::RoleForbidden { .. }
            | ApiError::NotMember(_) => ErrorCode::Forbidden,
            ApiError::BadSession => ErrorCode::InvalidSession,
            ApiError::BadCredentials => ErrorCode::InvalidCredentials,
            ApiError::Csrf => ErrorCode::InvalidCsrfToken,
            ApiError::LoginThrottled(_) => ErrorCode::RateLimited,
            ApiError::BadParam { .. } => ErrorCode::InvalidParameter,
            ApiError::BadField { .. } => ErrorCode::InvalidField,
            ApiError::UnknownField(_) => ErrorCode::UnknownField,
            ApiError::BadJson(_) => ErrorCode::InvalidJson,
            ApiError::NotFound => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Database(_) | ApiError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Database(e) => tracing::error!(error = %e, "query failed"),
            ApiError::Unavailable(e) => tracing::error!(error = %e, "request failed"),
            _ => {}
        }
        let code = self.error_code();
        let mut body = code.body(&self);
        match &self {
            ApiError::BadParam { field, .. } | ApiError::BadField { field, .. } => {
                body["error"]["field"] = json!(field);
            }
            ApiError::UnknownField(field) => body["error"]["field"] = json!(field),
            ApiError::NotPlatform(_) => body["error"]["required"] = json!("platform_admin"),
            ApiError::RoleForbidden { role, .. } => body["error"]["role"] = json!(role),
            _ => {}
        }
        if let ApiError::LoginThrottled(secs) = &self {
            let retry = [(axum::http::header::RETRY_AFTER, secs.to_string())];
            return (code.status(), retry, Json(body)).into_response();
        }
        (code.status(), Json(body)).into_response()
    }
}

impl From<agentops_governance::FieldError> for ApiError {
    fn from(e: agentops_governance::FieldError) -> Self {
        ApiError::BadField {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<agentops_runtime::Error> for ApiError {
    fn from(e: agentops_runtime::Error) -> Self {
        match e {
            agentops_runtime::Error::Database(e) => ApiError::Database(e),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}
