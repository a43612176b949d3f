//! What the OpenAPI documents of the HTTP APIs share (each API builds its
//! own from its handlers' `#[utoipa::path]` attributes): the error body as
//! a component, error responses added to operations, the security schemes,
//! and the two public routes that serve a document: `GET /openapi.json`
//! and `GET /docs`, a small reference page that renders it in the browser
//! (no outside script; its inline script allowed by hash, see
//! [`crate::http::page_csp`]).

use std::sync::Arc;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Schema};

use crate::api_error::ErrorCode;

/// Name of the error body component (`#/components/schemas/Error`).
pub const ERROR_SCHEMA: &str = "Error";
/// Security scheme: `Authorization: Bearer <key>`.
pub const BEARER: &str = "bearer_key";
/// Security scheme: `x-api-key: <key>`.
pub const API_KEY_HEADER: &str = "api_key_header";

/// The error body every API answers with:
/// `{"error": {"code", "message", "field"?}}` (plus fields some errors add),
/// `code` one of [`ErrorCode::ALL`].
pub fn error_schema() -> Schema {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
        .description(Some("Machine-readable code; it fixes the status."));
    let text = |d: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(d.to_owned()))
    };
    let detail = ObjectBuilder::new()
        .property("code", code)
        .property("message", text("What went wrong, for people."))
        .property(
            "field",
            text("The parameter or body field at fault (invalid_parameter, invalid_field, unknown_field)."),
        )
        .required("code")
        .required("message");
    Schema::Object(
        ObjectBuilder::new()
            .property("error", detail)
            .required("error")
            .description(Some(
                "The error body of every 4xx and 5xx answer.".to_owned(),
            ))
            .build(),
    )
}

/// The error body as a type for `#[utoipa::path]` responses
/// (`body = ErrorBody`): the `Error` component, [`error_schema`].
pub struct ErrorBody;

impl utoipa::PartialSchema for ErrorBody {
    fn schema() -> RefOr<Schema> {
        RefOr::T(error_schema())
    }
}

impl utoipa::ToSchema for ErrorBody {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(ERROR_SCHEMA)
    }
}

/// Register [`error_schema`] and the key schemes ([`BEARER`],
/// [`API_KEY_HEADER`]) in `doc`'s components.
pub fn add_shared_components(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ERROR_SCHEMA.to_owned(), RefOr::T(error_schema()));
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API key: `Authorization: Bearer <key>`."))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY_HEADER,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "x-api-key",
            "The same API key in `x-api-key`.",
        ))),
    );
}

/// Every operation of `doc` with its path and lowercase method.
pub fn operations_mut(doc: &mut OpenApi) -> Vec<(String, &'static str, &mut Operation)> {
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        let PathItem {
            get,
            put,
            post,
            delete,
            options,
            head,
            patch,
            trace,
            ..
        } = item;
        for (method, op) in [
            ("get", get),
            ("put", put),
            ("post", post),
            ("delete", delete),
            ("options", options),
            ("head", head),
            ("patch", patch),
            ("trace", trace),
        ] {
            if let Some(op) = op.as_mut() {
                out.push((path.clone(), method, op));
            }
        }
    }
    out
}

/// Every (method, path) of `doc`, method uppercase.
pub fn operations(doc: &OpenApi) -> Vec<(String, String)> {
    let mut doc = doc.clone();
    operations_mut(&mut doc)
        .into_iter()
        .map(|(path, method, _)| (method.to_ascii_uppercase(), path))
        .collect()
}

/// Add a `status` answer with the error body to `op`, unless it has one.
pub fn add_error_response(op: &mut Operation, status: u16, description: &str) {
    let key = status.to_string();
    if op.responses.responses.contains_key(&key) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ERROR_SCHEMA)))
                .build(),
        )
        .build();
    op.responses.responses.insert(key, RefOr::T(response));
}

const DOCS_PAGE: &str = include_str!("openapi_docs.html");

/// `GET /openapi.json` (the document `spec`, rendered once) and `GET /docs`
/// (the reference page), both public.
pub fn docs_router(spec: Arc<str>) -> Router {
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { spec_response(&spec) }
            }),
        )
        .route("/docs", get(docs_page))
}

/// The document as answered by `GET /openapi.json`.
pub fn spec_response(spec: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        spec.to_owned(),
    )
        .into_response()
}

/// The reference page (`GET /docs`).
pub async fn docs_page() -> Response {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let csp = CSP.get_or_init(|| crate::http::page_csp(DOCS_PAGE));
    (
        [(header::CONTENT_SECURITY_POLICY, csp.as_str())],
        Html(DOCS_PAGE),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_schema_lists_every_code() {
        let v = serde_json::to_value(error_schema()).unwrap();
        let codes = v["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(codes, ErrorCode::ALL.len());
        assert_eq!(v["required"][0], "error");
    }

    #[test]
    fn the_docs_page_has_one_inline_script_allowed_by_hash() {
        assert_eq!(DOCS_PAGE.matches("<script>").count(), 1);
        assert!(!DOCS_PAGE.contains("<script src"));
        assert!(crate::http::page_csp(DOCS_PAGE).contains("'sha256-"));
    }
}
