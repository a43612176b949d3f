//! What every handler shares: the application state and authentication.
//! Feature modules depend on this, not on each other or on `api`.

use std::sync::Arc;

use agentops_runtime::keys::{AuthError, KeyCache, KeyInfo, Scope};
use axum::extract::State;
use axum::http::HeaderMap;
use sqlx::PgPool;

use crate::error::ApiError;

pub(crate) struct AppState {
    pub(crate) keys: KeyCache,
    pub(crate) pool: PgPool,
    pub(crate) caps: crate::caps::Caps,
}

pub(crate) type Shared = State<Arc<AppState>>;

/// The request's key, which must have `scope`.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<KeyInfo, ApiError> {
    state
        .keys
        .authorize(headers, scope)
        .await
        .map_err(|e| match e {
            AuthError::Missing => ApiError::MissingKey,
            AuthError::Invalid => ApiError::BadKey,
            AuthError::Forbidden(scope) => ApiError::Forbidden(scope.as_str()),
            AuthError::Store(e) => match e {
                agentops_runtime::Error::Database(e) => ApiError::Database(e),
                other => ApiError::Unavailable(other.to_string()),
            },
        })
}
