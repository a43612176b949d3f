//! The query API's OpenAPI 3.1 document, generated from the code: each
//! module's handlers carry `#[utoipa::path]` and the module lists them in
//! its `Doc`; [`document`] merges those, then derives from the route table
//! ([`crate::route_table`]) what every operation shares: its security (a
//! key, or for reads a session cookie, for changes the cookie plus
//! `x-csrf-token`; none for public routes) and its error answers (the
//! shared error body on 400, 401, 403, 404, 503 as they apply). A test
//! checks that the document and the route table name the same operations.
//!
//! Served at `GET /openapi.json` with a reference page at `GET /docs`
//! (both public, see [`agentops_runtime::openapi`]).

use std::sync::{Arc, OnceLock};

use agentops_runtime::openapi as shared;
use axum::http::Method;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;

use crate::routes::{Access, Routes};

pub(crate) mod reads;

/// Security scheme: the session cookie.
const SESSION: &str = "session_cookie";
/// Security scheme: the session's CSRF token header.
const CSRF: &str = "csrf_token";

/// Routes in the table but not in the document: the pages, and the
/// WebSocket `GET /v1/live` (OpenAPI describes requests and answers, not a
/// socket's frames; its protocol is in the `live` module).
#[cfg(test)]
const UNDOCUMENTED: [&str; 7] = [
    "/",
    "/console",
    "/console/",
    "/console/{*path}",
    "/openapi.json",
    "/docs",
    "/v1/live",
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AgentOps query API",
        description = "Org-scoped reads over the AgentOps projections, governance, orgs, keys and people. \
                       Every answer is JSON; errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`. \
                       Authenticate with an API key (`Authorization: Bearer <key>` or `x-api-key`) or, \
                       for people, the session cookie of `POST /v1/auth/login` (changes then need \
                       `x-csrf-token`). Another org's ids answer 404, like missing ones.",
    ),
    tags(
        (name = "metrics", description = "KPIs, time series, top-N"),
        (name = "runs", description = "Runs and failures"),
        (name = "agents", description = "Agents and their controls"),
        (name = "alerts", description = "Alerts, policy violations, budget status"),
        (name = "governance", description = "Channels, budgets, alert rules, policies, digest (admin)"),
        (name = "prices", description = "Model prices"),
        (name = "keys", description = "API keys and the audit log"),
        (name = "orgs", description = "Orgs (platform admins)"),
        (name = "people", description = "Sign-in, members and invitations"),
    )
)]
struct ApiDoc;

/// Every documented part, merged in [`document`].
fn parts() -> Vec<Document> {
    vec![
        crate::api::Doc::openapi(),
        crate::top::Doc::openapi(),
        crate::auth::Doc::openapi(),
        crate::people::Doc::openapi(),
        crate::tenancy::Doc::openapi(),
        crate::prices::Doc::openapi(),
        crate::governance::docs::Doc::openapi(),
        reads::Doc::openapi(),
        crate::agents::Doc::openapi(),
        crate::hierarchy::Doc::openapi(),
        crate::cost::Doc::openapi(),
        crate::runs::Doc::openapi(),
    ]
}

/// The document (built from the code; see the module doc).
pub(crate) fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    for part in parts() {
        doc.merge(part);
    }
    shared::add_shared_components(&mut doc);
    if let Some(c) = doc.components.as_mut() {
        c.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::state::SESSION_COOKIE,
                "A signed-in member's session (`POST /v1/auth/login`); its role stands for a scope.",
            ))),
        );
        c.add_security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-csrf-token",
                "The session's CSRF token (from sign-in or `GET /v1/auth/me`), on every change made with the cookie.",
            ))),
        );
    }
    let table = crate::route_table();
    for (path, method, op) in shared::operations_mut(&mut doc) {
        let Some(route) = table
            .iter()
            .find(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method))
        else {
            continue;
        };
        let changes = method != "get";
        let key = || {
            vec![
                SecurityRequirement::new::<_, _, &str>(shared::BEARER, []),
                SecurityRequirement::new::<_, _, &str>(shared::API_KEY_HEADER, []),
            ]
        };
        let (security, who) = match route.access {
            Access::Public => (None, "public"),
            Access::Read => {
                let mut s = key();
                s.push(SecurityRequirement::new::<_, _, &str>(SESSION, []));
                (
                    Some(s),
                    "a key with the `read` scope (or `admin`), or any member's session",
                )
            }
            Access::Admin => {
                let mut s = key();
                s.push(session_with_csrf(changes));
                (
                    Some(s),
                    "an `admin` key, or the session of a member whose role allows it",
                )
            }
            Access::PlatformAdmin => (Some(key()), "an admin key of a platform org"),
        };
        let access = format!("Access: {who}.");
        op.description = Some(match op.description.take() {
            Some(d) if !d.is_empty() => format!("{d}\n\n{access}"),
            _ => access,
        });
        if let Some(security) = security {
            op.security = Some(security);
            shared::add_error_response(
                op,
                401,
                "No key, or an unknown, revoked or expired key or session",
            );
            shared::add_error_response(op, 403, "The key's scope or the member's role does not allow it (or the CSRF token is missing)");
        } else if changes && route.access == Access::Public {
            shared::add_error_response(op, 403, "A session cookie without its CSRF token");
        }
        let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
        if has_params || op.request_body.is_some() {
            shared::add_error_response(
                op,
                400,
                "A parameter or body field is invalid (the error names it)",
            );
        }
        if path.contains('{') {
            shared::add_error_response(op, 404, "Not found (or another org's)");
        }
        shared::add_error_response(op, 503, "The database is unavailable; retry later");
    }
    doc
}

fn session_with_csrf(changes: bool) -> SecurityRequirement {
    if changes {
        SecurityRequirement::new::<_, _, &str>(SESSION, []).add::<_, _, &str>(CSRF, [])
    } else {
        SecurityRequirement::new::<_, _, &str>(SESSION, [])
    }
}

/// The document as JSON, built once.
pub(crate) fn json() -> Arc<str> {
    static JSON: OnceLock<Arc<str>> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
            .into()
    })
    .clone()
}

/// `GET /openapi.json` and `GET /docs`.
pub(crate) fn routes() -> Routes {
    let public = [(Method::GET, Access::Public)];
    Routes::new()
        .add(
            "/openapi.json",
            &public,
            get(|| async { shared::spec_response(&json()) }),
        )
        .add("/docs", &public, get(shared::docs_page))
}

// Shapes more than one module answers with.

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_and_the_route_table_name_the_same_operations() {
        let documented: BTreeSet<(String, String)> =
            shared::operations(&document()).into_iter().collect();
        let routed: BTreeSet<(String, String)> = crate::route_table()
            .into_iter()
            .filter(|r| !UNDOCUMENTED.contains(&r.path.as_str()))
            .map(|r| (r.method.as_str().to_owned(), r.path))
            .collect();
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes without an operation: {missing:?}"
        );
        assert!(extra.is_empty(), "operations without a route: {extra:?}");
    }

    #[test]
    fn every_operation_has_a_success_schema_and_error_bodies() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let ok = responses
                    .iter()
                    .find(|(s, _)| s.starts_with('2'))
                    .unwrap_or_else(|| panic!("{method} {path}: no 2xx"));
                if ok.0 != "204" {
                    assert!(
                        ok.1["content"]["application/json"]["schema"].is_object(),
                        "{method} {path}: no schema for {}",
                        ok.0
                    );
                }
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/Error",
                            "{method} {path} {status}"
                        );
                    }
                }
                assert!(responses.contains_key("503"), "{method} {path}");
            }
        }
    }
}
