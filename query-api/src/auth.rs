//! Sign-in for people: `POST /v1/auth/login`, `POST /v1/auth/logout`,
//! `GET /v1/auth/me`, and the CSRF guard of cookie-authenticated requests.
//!
//! A session is a random token in the `agentops_session` cookie (HttpOnly,
//! SameSite=Strict, Path=/, Secure behind TLS or with
//! `auth.secure_cookies`); the server keeps only its SHA-256, with an
//! expiry (`auth.session_hours`) and a revocation time. Each session has a
//! CSRF token, answered by sign-in and by `GET /v1/auth/me`: every POST,
//! PUT, PATCH or DELETE authenticated by the cookie must send it in
//! `x-csrf-token` (403 `invalid_csrf_token` otherwise). API keys are not
//! subject to it: browsers never attach them by themselves.
//!
//! Failed sign-ins are counted per email in the database (so every
//! instance agrees): from [`MAX_FAILURES`] within [`FAILURE_WINDOW_MINUTES`]
//! on, sign-in answers 429 `rate_limited` with `Retry-After`. A wrong email
//! and a wrong password answer the same 401 `invalid_credentials`, after
//! the same work.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use agentops_runtime::openapi::ErrorBody;
use agentops_tenancy::{people, sessions};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::governance::fields::{bad, parse_body};
use crate::routes::{Access, Routes};
use crate::state::{authorize, session_of, AppState, Permission, Shared, SESSION_COOKIE};

/// Failed sign-ins of one email that the window admits.
pub(crate) const MAX_FAILURES: i64 = 20;
/// The window failed sign-ins are counted over.
pub(crate) const FAILURE_WINDOW_MINUTES: i64 = 15;

/// `auth.*` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// How long a session lasts after sign-in (1 to 720 hours).
    pub session_hours: u64,
    /// Mark the cookie `Secure` on every answer, not only on requests that
    /// arrived over TLS (`x-forwarded-proto: https`).
    pub secure_cookies: bool,
    /// How long an invitation can be accepted (1 to 720 hours).
    pub invitation_hours: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_hours: 12,
            secure_cookies: false,
            invitation_hours: 168,
        }
    }
}

impl AuthConfig {
    pub fn validate(&self) -> agentops_runtime::Result<()> {
        for (name, v) in [
            ("auth.session_hours", self.session_hours),
            ("auth.invitation_hours", self.invitation_hours),
        ] {
            if !(1..=720).contains(&v) {
                return Err(agentops_runtime::Error::Config(format!(
                    "{name} must be 1 to 720, not {v}"
                )));
            }
        }
        Ok(())
    }

    fn session_lifetime(&self) -> chrono::Duration {
        chrono::Duration::hours(self.session_hours.clamp(1, 720) as i64)
    }

    pub(crate) fn invitation_lifetime(&self) -> chrono::Duration {
        chrono::Duration::hours(self.invitation_hours.clamp(1, 720) as i64)
    }
}

pub(crate) fn routes() -> Routes {
    use Access::*;
    Routes::new()
        .add("/v1/auth/login", &[(Method::POST, Public)], post(login))
        .add("/v1/auth/logout", &[(Method::POST, Public)], post(logout))
        .add("/v1/auth/me", &[(Method::GET, Read)], get(me))
}

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(login, logout, me))]
pub(crate) struct Doc;

/// `POST /v1/auth/login` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct LoginBody {
    email: String,
    password: String,
    /// The org to sign in to (default: the user's first).
    org_id: Option<String>,
}

/// Who is signed in, with the session's CSRF token.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Describes the answers built in `login` and `me`.
struct SignedIn {
    user: SignedInUser,
    org_id: String,
    role: agentops_tenancy::Role,
    /// Send it in `x-csrf-token` on every change made with the cookie.
    csrf_token: String,
    expires_at: chrono::DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Describes the answers built in `login` and `me`.
struct SignedInUser {
    id: uuid::Uuid,
    email: String,
    name: String,
}

/// `GET /v1/auth/me` with a key.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Describes the answer built in `me`.
struct CallingKey {
    key: CallingKeyId,
    org_id: String,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Describes the answer built in `me`.
struct CallingKeyId {
    id: uuid::Uuid,
    prefix: String,
}

/// `GET /v1/auth/me`: a session's member or the calling key.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Describes the answer built in `me`.
enum Me {
    Session(SignedIn),
    Key(CallingKey),
}

/// `POST /v1/auth/logout`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `logout`.
struct SignedOut {
    /// Whether a live session was revoked.
    signed_out: bool,
}

/// A required non-empty string field.
pub(crate) fn req_str(obj: &Map<String, Value>, field: &'static str) -> Result<String, ApiError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(bad(field, "required")),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

/// An optional string field.
pub(crate) fn opt_string(
    obj: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value for `token` (`None`: clear it).
fn cookie(s: &AppState, headers: &HeaderMap, token: Option<&str>) -> String {
    let max_age = match token {
        Some(_) => s.auth.session_lifetime().num_seconds(),
        None => 0,
    };
    let secure = if s.auth.secure_cookies || is_https(headers) {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
        token.unwrap_or("")
    )
}

fn with_cookie(mut r: Response, value: &str) -> Result<Response, ApiError> {
    let v = HeaderValue::from_str(value).map_err(|e| ApiError::Unavailable(e.to_string()))?;
    r.headers_mut().append(axum::http::header::SET_COOKIE, v);
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

/// `POST /v1/auth/login` `{email, password, org_id?}`.
#[utoipa::path(post, path = "/v1/auth/login", tag = "people", request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SignedIn,
         headers(("set-cookie" = String, description = "agentops_session=...; HttpOnly; SameSite=Strict"))),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "Not a member of the org", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins for this email", body = ErrorBody,
         headers(("retry-after" = i64, description = "Seconds"))),
    ))]
async fn login(State(s): Shared, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let obj = parse_body(&body, &["email", "password", "org_id"])?;
    let email_raw = req_str(&obj, "email")?;
    let password = req_str(&obj, "password")?;
    let org = opt_string(&obj, "org_id")?;
    let email = email_raw.trim().to_lowercase();
    let window = chrono::Duration::minutes(FAILURE_WINDOW_MINUTES);
    let (failures, until) = sessions::recent_failures(&s.pool, &email, window).await?;
    if failures >= MAX_FAILURES {
        let secs = until.map_or(1, |t| (t - Utc::now()).num_seconds().max(1));
        tracing::warn!(failures, "sign-in throttled");
        return Err(ApiError::LoginThrottled(secs as u64));
    }
    let user = {
        let mut conn = s.pool.acquire().await?;
        people::user_by_email(&mut conn, &email).await?
    };
    let ok =
        people::verify_password_blocking(user.as_ref().map(|u| u.password_hash.clone()), password)
            .await;
    let user = match user {
        Some(u) if ok && u.disabled_at.is_none() => u,
        _ => {
            sessions::record_failure(&s.pool, &email).await?;
            return Err(ApiError::BadCredentials);
        }
    };
    let mut tx = s.pool.begin().await?;
    let org_id = match org {
        Some(o) => o,
        None => people::first_org(&mut tx, user.id)
            .await?
            .ok_or_else(|| ApiError::NotMember("you are not a member of any org".into()))?,
    };
    let role = people::role_in(&mut tx, &org_id, user.id)
        .await?
        .ok_or_else(|| ApiError::NotMember(format!("you are not a member of org `{org_id}`")))?;
    let session =
        sessions::create_session(&mut tx, user.id, &org_id, s.auth.session_lifetime()).await?;
    tx.commit().await?;
    sessions::clear_failures(&s.pool, &email).await?;
    sessions::purge_sessions(&s.pool).await?;
    tracing::info!(user_id = %user.id, org_id, role = role.as_str(), "signed in");
    let answer = Json(json!({
        "user": {"id": user.id, "email": user.email, "name": user.name},
        "org_id": org_id, "role": role, "csrf_token": session.csrf_token,
        "expires_at": session.expires_at,
    }));
    with_cookie(
        answer.into_response(),
        &cookie(&s, &headers, Some(&session.token)),
    )
}

/// `POST /v1/auth/logout`: revokes the session (if any) and clears the
/// cookie; 200 either way.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "people",
    responses((status = 200, description = "Signed out; the cookie is cleared", body = SignedOut)))]
async fn logout(State(s): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    let revoked = match session_of(&s, &headers).await? {
        Some(session) => {
            let done = sessions::revoke_session(&s.pool, session.session_id).await?;
            tracing::info!(user_id = %session.user_id, org_id = %session.org_id, "signed out");
            done
        }
        None => false,
    };
    let answer = Json(json!({ "signed_out": revoked }));
    with_cookie(answer.into_response(), &cookie(&s, &headers, None))
}

/// `GET /v1/auth/me`: the signed-in member (with the CSRF token), or the
/// calling key.
#[utoipa::path(get, path = "/v1/auth/me", tag = "people",
    responses((status = 200, description = "The caller", body = Me)))]
async fn me(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&s, &headers, Permission::Read).await?;
    Ok(Json(match &caller.session {
        Some(u) => json!({
            "user": {"id": u.user_id, "email": u.email, "name": u.name},
            "org_id": u.org_id, "role": u.role, "csrf_token": u.csrf_token,
            "expires_at": u.expires_at,
        }),
        None => json!({
            "key": {"id": caller.key_id, "prefix": caller.prefix},
            "org_id": caller.org_id,
        }),
    }))
}

/// Paths that act without a session, so need no CSRF token.
const NO_SESSION_PATHS: [&str; 2] = ["/v1/auth/login", "/v1/auth/accept-invitation"];

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: a mutating request authenticated by a live session cookie
/// must carry that session's `x-csrf-token`. Requests with a key, without
/// a cookie or with a dead session pass on (the handler answers them).
pub(crate) async fn csrf_guard(
    State(s): State<std::sync::Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !mutating || NO_SESSION_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match session_of(&s, req.headers()).await {
        Ok(Some(session)) => {
            let sent = req
                .headers()
                .get("x-csrf-token")
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !same(sent, session.csrf_token.as_bytes()) {
                tracing::warn!(user_id = %session.user_id, path = req.uri().path(), "csrf token refused");
                return ApiError::Csrf.into_response();
            }
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"ab", b"abc"));
        assert!(!same(b"", b"abc"));
    }

    #[test]
    fn limits_are_validated() {
        assert!(AuthConfig::default().validate().is_ok());
        let c = AuthConfig {
            session_hours: 0,
            ..AuthConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
