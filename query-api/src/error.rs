//! The one place domain errors become HTTP status codes and JSON bodies.

use axum::http::StatusCode;
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::MissingKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            ApiError::BadKey => (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            ApiError::Forbidden(_) | ApiError::NotPlatform(_) => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            ApiError::BadParam { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            ApiError::BadField { .. } => (StatusCode::BAD_REQUEST, "invalid_field"),
            ApiError::UnknownField(_) => (StatusCode::BAD_REQUEST, "unknown_field"),
            ApiError::BadJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Database(e) => {
                tracing::error!(error = %e, "query failed");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        };
        let mut body = json!({"error": {"code": code, "message": self.to_string()}});
        match &self {
            ApiError::BadParam { field, .. } | ApiError::BadField { field, .. } => {
                body["error"]["field"] = json!(field);
            }
            ApiError::UnknownField(field) => body["error"]["field"] = json!(field),
            ApiError::NotPlatform(_) => body["error"]["required"] = json!("platform_admin"),
            _ => {}
        }
        (status, Json(body)).into_response()
    }
}

impl From<agentops_runtime::Error> for ApiError {
    fn from(e: agentops_runtime::Error) -> Self {
        match e {
            agentops_runtime::Error::Database(e) => ApiError::Database(e),
            other => ApiError::Database(sqlx::Error::Protocol(other.to_string())),
        }
    }
}
