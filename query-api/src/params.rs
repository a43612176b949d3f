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
