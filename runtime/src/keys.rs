//! API keys: generation, hashing, storage and cached lookup.
//!
//! A key looks like `aok_<prefix>_<secret>`: 8 hex chars of public prefix
//! (for lookup and display) and 32 random bytes of secret (256 bits), hex.
//! Only the SHA-256 of the whole key is stored; the raw key is shown once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::Result;

/// What a key is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// An authenticated key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub key_id: uuid::Uuid,
    pub org_id: String,
    pub scopes: Vec<String>,
    /// The key's org is a platform org: its admin keys manage every org.
    pub platform: bool,
    /// The org's own ingest rate limit, when it has one.
    pub rate_limit: Option<RateLimit>,
}

/// A token bucket: `events_per_sec` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateLimit {
    pub events_per_sec: f64,
    pub burst: f64,
}

impl KeyInfo {
    /// Admin keys may do everything.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|s| s == scope.as_str() || s == "admin")
    }
}

/// A newly created key; `secret` is the only copy of the raw key.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub key_id: uuid::Uuid,
    pub org_id: String,
    pub prefix: String,
    pub scope: Scope,
    pub secret: String,
}

pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

fn generate() -> (String, String) {
    let mut rng = rand::rng();
    let mut prefix = [0u8; 4];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut prefix);
    rng.fill_bytes(&mut secret);
    let prefix = hex::encode(prefix);
    let raw = format!("aok_{prefix}_{}", hex::encode(secret));
    (prefix, raw)
}

/// Create an org (idempotent on id).
pub async fn create_org(pool: &PgPool, org_id: &str, name: &str) -> Result<()> {
    sqlx::query("INSERT INTO orgs (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(org_id)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// Create a key for an org and record it in the audit log.
pub async fn create_key(pool: &PgPool, org_id: &str, scope: Scope, actor: &str) -> Result<NewKey> {
    let (prefix, raw) = generate();
    let key_id = uuid::Uuid::new_v4();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, prefix, key_hash, scopes) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key_id)
    .bind(org_id)
    .bind(&prefix)
    .bind(hash_key(&raw))
    .bind(vec![scope.as_str().to_owned()])
    .execute(&mut *tx)
    .await?;
    audit(
        &mut tx,
        org_id,
        actor,
        "api_key.create",
        &format!("{key_id} scope={}", scope.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(NewKey {
        key_id,
        org_id: org_id.to_owned(),
        prefix,
        scope,
        secret: raw,
    })
}

/// Revoke a key; returns false when no such live key exists in the org.
pub async fn revoke_key(
    pool: &PgPool,
    org_id: &str,
    key_id: uuid::Uuid,
    actor: &str,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
    )
    .bind(key_id)
    .bind(org_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if done {
        audit(
            &mut tx,
            org_id,
            actor,
            "api_key.revoke",
            &key_id.to_string(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done)
}

async fn audit(
    tx: &mut sqlx::PgConnection,
    org_id: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (org_id, actor, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(org_id)
        .bind(actor)
        .bind(action)
        .bind(detail)
        .execute(tx)
        .await?;
    Ok(())
}

/// Look a raw key up in the database (no cache).
pub async fn lookup(pool: &PgPool, raw: &str) -> Result<Option<KeyInfo>> {
    let Some(prefix) = raw.strip_prefix("aok_").and_then(|r| r.split('_').next()) else {
        return Ok(None);
    };
    type Row = (
        uuid::Uuid,
        String,
        Vec<String>,
        bool,
        Option<f64>,
        Option<f64>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT k.id, k.org_id, k.scopes, o.platform, o.ingest_events_per_sec, o.ingest_burst
         FROM api_keys k JOIN orgs o ON o.id = k.org_id
         WHERE k.prefix = $1 AND k.key_hash = $2 AND k.revoked_at IS NULL",
    )
    .bind(prefix)
    .bind(hash_key(raw))
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map(|(key_id, org_id, scopes, platform, eps, burst)| KeyInfo {
            key_id,
            org_id,
            scopes,
            platform,
            rate_limit: eps.map(|events_per_sec| RateLimit {
                events_per_sec,
                burst: burst.unwrap_or(events_per_sec).max(1.0),
            }),
        }),
    )
}

/// A lookup cache with a short TTL, so a revoked key is refused within `ttl`.
pub struct KeyCache {
    pool: PgPool,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Option<KeyInfo>)>>,
}

impl KeyCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(&self, raw: &str) -> Result<Option<KeyInfo>> {
        let hash = hash_key(raw);
        if let Some((at, info)) = self.entries.lock().expect("key cache lock").get(&hash) {
            if at.elapsed() < self.ttl {
                return Ok(info.clone());
            }
        }
        let info = lookup(&self.pool, raw).await?;
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(hash, (Instant::now(), info.clone()));
        Ok(info)
    }
}

/// Why a request was not authorized.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key")]
    Missing,
    #[error("unknown or revoked API key")]
    Invalid,
    #[error("this API key lacks the `{}` scope", .0.as_str())]
    Forbidden(Scope),
    #[error("key store: {0}")]
    Store(#[from] crate::Error),
}

impl KeyCache {
    /// Authenticate the request's key and check it has `scope`.
    pub async fn authorize(
        &self,
        headers: &axum::http::HeaderMap,
        scope: Scope,
    ) -> Result<KeyInfo, AuthError> {
        let raw = from_headers(headers).ok_or(AuthError::Missing)?;
        let key = self.authenticate(raw).await?.ok_or(AuthError::Invalid)?;
        if !key.allows(scope) {
            return Err(AuthError::Forbidden(scope));
        }
        Ok(key)
    }
}

/// Extract the raw key from `Authorization: Bearer ...` or `x-api-key`.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_unique_and_well_formed() {
        let (p1, k1) = generate();
        let (_, k2) = generate();
        assert_ne!(k1, k2);
        assert!(k1.starts_with(&format!("aok_{p1}_")));
        assert_eq!(k1.len(), 4 + 8 + 1 + 64);
        assert_eq!(hash_key(&k1).len(), 64);
    }

    #[test]
    fn admin_scope_allows_everything() {
        let k = KeyInfo {
            key_id: uuid::Uuid::nil(),
            org_id: "o".into(),
            scopes: vec!["admin".into()],
            platform: false,
            rate_limit: None,
        };
        assert!(k.allows(Scope::Ingest) && k.allows(Scope::Read));
        let r = KeyInfo {
            scopes: vec!["read".into()],
            ..k
        };
        assert!(r.allows(Scope::Read) && !r.allows(Scope::Ingest));
    }
}
