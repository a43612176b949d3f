//! What every handler shares: the application state and authentication.
//! Feature modules depend on this, not on each other or on `api`.
//!
//! A caller is an API key (`Authorization: Bearer` or `x-api-key`, checked
//! first and exactly as before) or, without one, a signed-in member's
//! session cookie, whose role maps onto what a key's scope allows
//! ([`role_allows`]).

use std::sync::Arc;

use agentops_runtime::keys::{AuthError, KeyCache, KeyInfo, Scope};
use agentops_tenancy::sessions::{lookup_session, SessionInfo};
use agentops_tenancy::Role;
use axum::extract::State;
use axum::http::HeaderMap;
use sqlx::PgPool;

use crate::error::ApiError;

pub(crate) struct AppState {
    pub(crate) keys: KeyCache,
    pub(crate) pool: PgPool,
    pub(crate) caps: crate::caps::Caps,
    pub(crate) auth: crate::auth::AuthConfig,
    /// The live feed's clients (`GET /v1/live`).
    pub(crate) live: std::sync::Arc<crate::live::Hub>,
}

pub(crate) type Shared = State<Arc<AppState>>;

/// The name of the session cookie.
pub(crate) const SESSION_COOKIE: &str = "agentops_session";

/// Who is calling, on which org.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) org_id: String,
    /// The key's id; for a session, the user's id.
    pub(crate) key_id: uuid::Uuid,
    /// The key's prefix; empty for a session.
    pub(crate) prefix: String,
    /// A platform org's admin key (never a session).
    pub(crate) platform: bool,
    /// The signed-in member, when the caller is a session.
    pub(crate) session: Option<SessionInfo>,
}

impl Caller {
    fn from_key(k: KeyInfo) -> Self {
        Caller {
            org_id: k.org_id,
            key_id: k.key_id,
            prefix: k.prefix,
            platform: k.platform,
            session: None,
        }
    }

    fn from_session(s: SessionInfo) -> Self {
        Caller {
            org_id: s.org_id.clone(),
            key_id: s.user_id,
            prefix: String::new(),
            platform: false,
            session: Some(s),
        }
    }

    /// `audit_log.actor` of a member's change: `user:<id>:<email>`.
    pub(crate) fn user_actor(&self) -> Option<String> {
        self.session
            .as_ref()
            .map(|s| format!("user:{}:{}", s.user_id, s.email))
    }
}

/// What a handler needs the caller to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permission {
    /// Read the org's data: a `read` (or `admin`) key; every role.
    Read,
    /// Acknowledge alerts: an `admin` key; members, admins, owners.
    Acknowledge,
    /// Change configuration and agents: an `admin` key; admins and owners.
    Configure,
    /// Manage members, invitations' owners and API keys: an `admin` key; owners.
    ManageAccess,
}

impl Permission {
    fn scope(self) -> Scope {
        match self {
            Permission::Read => Scope::Read,
            _ => Scope::Admin,
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Permission::Read => "reading this org's data",
            Permission::Acknowledge => "acknowledging alerts",
            Permission::Configure => "changing configuration and agents",
            Permission::ManageAccess => "managing members and API keys",
        }
    }
}

/// Whether a member with `role` may do what `p` names.
pub(crate) fn role_allows(role: Role, p: Permission) -> bool {
    let least = match p {
        Permission::Read => Role::Viewer,
        Permission::Acknowledge => Role::Member,
        Permission::Configure => Role::Admin,
        Permission::ManageAccess => Role::Owner,
    };
    role >= least
}

/// Whether the request presents an API key (which then decides alone).
pub(crate) fn presents_key(headers: &HeaderMap) -> bool {
    headers.contains_key(axum::http::header::AUTHORIZATION) || headers.contains_key("x-api-key")
}

/// The raw session token of the request's cookie.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (name, value) = c.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then_some(value)
        })
}

/// The request's live session, if it has a session cookie and no key.
pub(crate) async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionInfo>, ApiError> {
    if presents_key(headers) {
        return Ok(None);
    }
    match session_token(headers) {
        Some(t) => Ok(lookup_session(&state.pool, t).await?),
        None => Ok(None),
    }
}

/// The request's key, which must have `scope`, or its session, whose role
/// must allow the same (`read`: every role; `admin`: admins and owners).
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<Caller, ApiError> {
    let p = match scope {
        Scope::Read => Permission::Read,
        _ => Permission::Configure,
    };
    authorize(state, headers, p).await
}

/// The caller, allowed `p` (see [`Permission`]).
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    p: Permission,
) -> Result<Caller, ApiError> {
    if !presents_key(headers) {
        if let Some(token) = session_token(headers) {
            let session = lookup_session(&state.pool, token)
                .await?
                .ok_or(ApiError::BadSession)?;
            if !role_allows(session.role, p) {
                return Err(ApiError::RoleForbidden {
                    role: session.role.as_str(),
                    what: p.describe(),
                });
            }
            return Ok(Caller::from_session(session));
        }
    }
    state
        .keys
        .authorize(headers, p.scope())
        .await
        .map(Caller::from_key)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_onto_permissions() {
        use Permission::*;
        let table = [
            (Role::Viewer, [true, false, false, false]),
            (Role::Member, [true, true, false, false]),
            (Role::Admin, [true, true, true, false]),
            (Role::Owner, [true, true, true, true]),
        ];
        for (role, allowed) in table {
            for (p, want) in [Read, Acknowledge, Configure, ManageAccess]
                .into_iter()
                .zip(allowed)
            {
                assert_eq!(role_allows(role, p), want, "{role:?} {p:?}");
            }
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; agentops_session=abc; b=2".parse().unwrap());
        assert_eq!(session_token(&h), Some("abc"));
        h.insert("cookie", "agentops_session=; x=y".parse().unwrap());
        assert_eq!(session_token(&h), None);
        h.insert("x-api-key", "k".parse().unwrap());
        assert!(presents_key(&h));
    }
}
