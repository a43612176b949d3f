//! Sign-in sessions kept server-side (only the token's SHA-256 is stored),
//! expiring and revocable, and the failed sign-ins that rate-limit them.

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::people::Role;
use agentops_runtime::Result;

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The stored form of a session or invitation token.
pub fn token_hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// A new session: `token` (for the cookie) exists only here.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: uuid::Uuid,
    pub token: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A live session with its user and their current role in the org (a role
/// change applies to open sessions at once).
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub session_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub org_id: String,
    pub role: Role,
    #[serde(skip)]
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Open a session of the user in the org for `lifetime`.
pub async fn create_session(
    conn: &mut PgConnection,
    user_id: uuid::Uuid,
    org_id: &str,
    lifetime: chrono::Duration,
) -> Result<NewSession> {
    let (id, token, csrf_token) = (uuid::Uuid::new_v4(), random_token(), random_token());
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO sessions (id, token_hash, user_id, org_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 second') RETURNING expires_at",
    )
    .bind(id)
    .bind(token_hash(&token))
    .bind(user_id)
    .bind(org_id)
    .bind(&csrf_token)
    .bind(lifetime.num_seconds() as f64)
    .fetch_one(conn)
    .await?;
    Ok(NewSession {
        id,
        token,
        csrf_token,
        expires_at,
    })
}

/// The live session of a raw token: not expired, not revoked, the user not
/// disabled and still a member of the org. Marks it seen (at most once a
/// minute).
pub async fn lookup_session(pool: &PgPool, token: &str) -> Result<Option<SessionInfo>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        session_id: uuid::Uuid,
        user_id: uuid::Uuid,
        email: String,
        name: String,
        org_id: String,
        role: String,
        csrf_token: String,
        expires_at: DateTime<Utc>,
        stale: bool,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT s.id AS session_id, s.user_id, u.email, u.name, s.org_id, m.role,
                s.csrf_token, s.expires_at, s.last_seen_at < now() - interval '1 minute' AS stale
         FROM sessions s
         JOIN users u ON u.id = s.user_id
         JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
           AND u.disabled_at IS NULL",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let Some(role) = Role::parse(&r.role) else {
        return Ok(None);
    };
    if r.stale {
        sqlx::query("UPDATE sessions SET last_seen_at = now() WHERE id = $1")
            .bind(r.session_id)
            .execute(pool)
            .await?;
    }
    Ok(Some(SessionInfo {
        session_id: r.session_id,
        user_id: r.user_id,
        email: r.email,
        name: r.name,
        org_id: r.org_id,
        role,
        csrf_token: r.csrf_token,
        expires_at: r.expires_at,
    }))
}

/// Revoke a session by id; whether a live one was revoked.
pub async fn revoke_session(pool: &PgPool, session_id: uuid::Uuid) -> Result<bool> {
    Ok(
        sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(session_id)
            .execute(pool)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Failed sign-ins for `email` within the last `window`, and when the
/// oldest of them leaves the window.
pub async fn recent_failures(
    pool: &PgPool,
    email: &str,
    window: chrono::Duration,
) -> Result<(i64, Option<DateTime<Utc>>)> {
    let secs = window.num_seconds() as f64;
    let (n, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(at) + $2 * interval '1 second' FROM login_failures
         WHERE email = $1 AND at > now() - $2 * interval '1 second'",
    )
    .bind(email)
    .bind(secs)
    .fetch_one(pool)
    .await?;
    Ok((n, oldest))
}

/// Record a failed sign-in, and drop up to 100 failures (of any email)
/// older than a day, so guessed emails cannot grow the table without bound.
pub async fn record_failure(pool: &PgPool, email: &str) -> Result<()> {
    sqlx::query("INSERT INTO login_failures (email) VALUES ($1)")
        .bind(email)
        .execute(pool)
        .await?;
    sqlx::query(
        "DELETE FROM login_failures WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM login_failures WHERE at < now() - interval '1 day' LIMIT 100))",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Delete up to 100 sessions that expired more than a day ago (revoked
/// ones are kept until their expiry, so a revocation is never forgotten
/// before the session would have ended anyway). Returns how many.
pub async fn purge_sessions(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM sessions WHERE id = ANY(ARRAY(
             SELECT id FROM sessions WHERE expires_at < now() - interval '1 day' LIMIT 100))",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Forget the failures of an email (after a successful sign-in).
pub async fn clear_failures(pool: &PgPool, email: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE email = $1")
        .bind(email)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
