//! Query strings decoded with the API's own errors. axum's `Query` answers
//! a query string it cannot decode (a parameter given twice, say) with a
//! plain-text 400; this one answers `invalid_parameter` in JSON, naming the
//! parameter when it can. Every parameter is then checked by its handler
//! (`window`, `limit`, ...): a bad value is a field-named 400, never a
//! silent default.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The parameters of the read endpoints, for naming them in errors.
const NAMES: [&str; 6] = ["window", "bucket", "metric", "limit", "state", "agent_id"];

pub(crate) struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| {
                let message = e.body_text();
                let field = NAMES
                    .iter()
                    .find(|n| message.contains(&format!("`{n}`")))
                    .copied()
                    .unwrap_or("query");
                ApiError::BadParam { field, message }
            })
    }
}

/// Longest identifier (bytes), as at ingest.
pub(crate) const MAX_IDENTIFIER: usize = 256;

/// An identifier given in a path or a filter (`run_id`, `agent_id`,
/// `alert_id`): 1 to 256 bytes, no control characters, as the gateway
/// accepts them. Anything else is a 400 naming `field` (a NUL would
/// otherwise reach PostgreSQL and fail as a 503).
pub(crate) fn identifier<'a>(field: &'static str, raw: &'a str) -> Result<&'a str, ApiError> {
    if raw.is_empty() || raw.len() > MAX_IDENTIFIER || raw.chars().any(char::is_control) {
        return Err(ApiError::BadParam {
            field,
            message: format!("expected 1 to {MAX_IDENTIFIER} bytes without control characters"),
        });
    }
    Ok(raw)
}

/// `limit=`: an integer in 1..=`max`, `default` when absent.
pub(crate) fn limit_param(raw: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match raw {
        None => Ok(default),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::BadParam {
                field: "limit",
                message: format!("expected an integer between 1 and {max}"),
            }),
    }
}
