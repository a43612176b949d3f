//! API keys: generation, hashing, storage and cached lookup.
//!
//! A key looks like `aok_<prefix>_<secret>`: 8 hex chars of public prefix
//! (for lookup and display) and 32 random bytes of secret (256 bits), hex.
//! Only the SHA-256 of the whole key is stored; the raw key is shown once.
//! Creating, listing and revoking keys and orgs is the `agentops-tenancy`
//! crate's (domain, not plumbing); it builds keys with [`generate`].

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

    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    /// `ingest`, `read` or `admin`.
    pub fn parse(s: &str) -> Option<Scope> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Longest org id.
pub const MAX_ORG_ID: usize = 63;

/// An org id: 1 to 63 characters of `a-z`, `0-9`, `.`, `_`, `-`, starting
/// with a letter or digit (`[a-z0-9][a-z0-9._-]{0,62}`), so it is safe in
/// URLs, log fields and topic-like names.
pub fn valid_org_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && id.len() <= MAX_ORG_ID
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

/// An authenticated key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub key_id: uuid::Uuid,
    /// The key's public prefix (8 hex characters, as in `aok_<prefix>_...`).
    pub prefix: String,
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

pub fn hash_key(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// A fresh `(prefix, raw key)`.
pub fn generate() -> (String, String) {
    let mut rng = rand::rng();
    let mut prefix = [0u8; 4];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut prefix);
    rng.fill_bytes(&mut secret);
    let prefix = hex::encode(prefix);
    let raw = format!("aok_{prefix}_{}", hex::encode(secret));
    (prefix, raw)
}

/// Look a raw key up in the database (no cache).
pub async fn lookup(pool: &PgPool, raw: &str) -> Result<Option<KeyInfo>> {
    let Some(prefix) = raw.strip_prefix("aok_").and_then(|r| r.split('_').next()) else {
        return Ok(None);
    };
    #[derive(sqlx::FromRow)]
    struct Row {
        key_id: uuid::Uuid,
        prefix: String,
        org_id: String,
        scopes: Vec<String>,
        platform: bool,
        ingest_events_per_sec: Option<f64>,
        ingest_burst: Option<f64>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT k.id AS key_id, k.prefix, k.org_id, k.scopes, o.platform,
                o.ingest_events_per_sec, o.ingest_burst
         FROM api_keys k JOIN orgs o ON o.id = k.org_id
         WHERE k.prefix = $1 AND k.key_hash = $2 AND k.revoked_at IS NULL",
    )
    .bind(prefix)
    .bind(hash_key(raw))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| KeyInfo {
        key_id: r.key_id,
        prefix: r.prefix,
        org_id: r.org_id,
        scopes: r.scopes,
        platform: r.platform,
        rate_limit: r.ingest_events_per_sec.map(|events_per_sec| RateLimit {
            events_per_sec,
            burst: r.ingest_burst.unwrap_or(events_per_sec).max(1.0),
        }),
    }))
}

/// Whether `raw` has the shape of a key: `aok_`, 8 lowercase hex
/// characters, `_`, 64 lowercase hex characters. Anything else is refused
/// without a lookup.
pub fn well_formed(raw: &str) -> bool {
    let b = raw.as_bytes();
    let hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    b.len() == 77 && b.starts_with(b"aok_") && b[12] == b'_' && hex(&b[4..12]) && hex(&b[13..])
}

/// Unknown keys remembered at most (oldest forgotten first).
const UNKNOWN_CAPACITY: usize = 10_000;

/// Failed authentications a client address may make: this many per second
/// sustained, twice as many at once. Past that the address is answered 401
/// without a lookup for keys this process has not seen valid, so a flood of
/// guesses costs neither database lookups nor the keys it knows; keys seen
/// valid are still looked up (a valid client behind the same address keeps
/// working).
pub const AUTH_FAILURES_PER_SEC: f64 = 20.0;

/// A lookup cache with a short TTL, so a revoked key is refused within `ttl`.
/// Valid keys and unknown ones are cached apart: the valid ones are bounded
/// by the keys that exist, the unknown ones (anyone can make up millions)
/// by [`UNKNOWN_CAPACITY`], so guessing never evicts a valid key.
pub struct KeyCache {
    pool: PgPool,
    ttl: Duration,
    known: Mutex<HashMap<String, (Instant, KeyInfo)>>,
    unknown: Mutex<Unknown>,
    failures: Mutex<HashMap<std::net::IpAddr, (f64, Instant)>>,
}

/// Hashes of unknown keys with when they were looked up, oldest first.
#[derive(Default)]
struct Unknown {
    at: HashMap<String, Instant>,
    order: std::collections::VecDeque<String>,
}

impl Unknown {
    fn insert(&mut self, hash: String, now: Instant) {
        if self.at.insert(hash.clone(), now).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > UNKNOWN_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.at.remove(&old);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeyCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            known: Mutex::new(HashMap::new()),
            unknown: Mutex::new(Unknown::default()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(&self, raw: &str) -> Result<Option<KeyInfo>> {
        self.authenticate_from(raw, None).await
    }

    /// [`Self::authenticate`] for a request from `client`: refused without
    /// a lookup when the key is malformed, known unknown, or when `client`
    /// has spent its failures (see [`AUTH_FAILURES_PER_SEC`]).
    pub async fn authenticate_from(
        &self,
        raw: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<Option<KeyInfo>> {
        if !well_formed(raw) {
            self.failed(client);
            return Ok(None);
        }
        let hash = hash_key(raw);
        let now = Instant::now();
        let seen_valid = match lock(&self.known).get(&hash) {
            Some((at, info)) if now.duration_since(*at) < self.ttl => {
                return Ok(Some(info.clone()))
            }
            Some(_) => true,
            None => false,
        };
        if !seen_valid {
            if let Some(at) = lock(&self.unknown).at.get(&hash) {
                if now.duration_since(*at) < self.ttl {
                    self.failed(client);
                    return Ok(None);
                }
            }
            if client.is_some_and(|c| !self.may_fail(c, now)) {
                metrics::counter!("agentops_auth_throttled_total").increment(1);
                return Ok(None);
            }
        }
        let info = lookup(&self.pool, raw).await?;
        let found = if info.is_some() { "true" } else { "false" };
        metrics::counter!("agentops_key_lookups_total", "found" => found).increment(1);
        match &info {
            Some(i) => {
                lock(&self.known).insert(hash.clone(), (now, i.clone()));
                lock(&self.unknown).at.remove(&hash);
            }
            None => {
                lock(&self.known).remove(&hash);
                lock(&self.unknown).insert(hash, now);
                self.failed(client);
            }
        }
        Ok(info)
    }

    /// Whether `client` has failures left (without spending one).
    fn may_fail(&self, client: std::net::IpAddr, now: Instant) -> bool {
        let mut f = lock(&self.failures);
        let (tokens, at) = f
            .entry(client)
            .or_insert((2.0 * AUTH_FAILURES_PER_SEC, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * AUTH_FAILURES_PER_SEC)
            .min(2.0 * AUTH_FAILURES_PER_SEC);
        *at = now;
        *tokens >= 1.0
    }

    /// Spend one of `client`'s failures.
    fn failed(&self, client: Option<std::net::IpAddr>) {
        metrics::counter!("agentops_auth_failures_total").increment(1);
        let Some(client) = client else { return };
        let now = Instant::now();
        self.may_fail(client, now);
        let mut f = lock(&self.failures);
        if f.len() > 100_000 {
            // Full buckets hold nothing worth keeping.
            f.retain(|_, (t, _)| *t < 2.0 * AUTH_FAILURES_PER_SEC);
        }
        if let Some((tokens, _)) = f.get_mut(&client) {
            *tokens = (*tokens - 1.0).max(0.0);
        }
    }

    /// Drop a key's cached lookups, so this process refuses a key it has
    /// just revoked at once (other processes still wait out `ttl`).
    pub fn forget(&self, key_id: uuid::Uuid) {
        lock(&self.known).retain(|_, (_, info)| info.key_id != key_id);
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
        self.authorize_from(headers, scope, None).await
    }

    /// [`Self::authorize`] for a request from `client` (its failures are
    /// limited, see [`AUTH_FAILURES_PER_SEC`]).
    pub async fn authorize_from(
        &self,
        headers: &axum::http::HeaderMap,
        scope: Scope,
        client: Option<std::net::IpAddr>,
    ) -> Result<KeyInfo, AuthError> {
        let raw = from_headers(headers).ok_or(AuthError::Missing)?;
        let key = self
            .authenticate_from(raw, client)
            .await?
            .ok_or(AuthError::Invalid)?;
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
            prefix: "00000000".into(),
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

    #[test]
    fn scopes_parse_by_name() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        for bad in ["", "Admin", "write", "ingest ", "*"] {
            assert_eq!(Scope::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn org_ids() {
        for ok in [
            "a",
            "0",
            "acme",
            "org-a",
            "conf-1a2b",
            "a.b_c-d",
            &"x".repeat(63),
        ] {
            assert!(valid_org_id(ok), "{ok:?}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "Acme",
            "a b",
            "a/b",
            "a\u{0}",
            "é",
            "a:b",
            &"x".repeat(64),
        ] {
            assert!(!valid_org_id(bad), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn org_ids_match_the_documented_pattern(id in "\\PC{0,70}") {
            let pattern = id.len() <= MAX_ORG_ID
                && id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(c));
            proptest::prop_assert_eq!(valid_org_id(&id), pattern);
        }

        #[test]
        fn generated_org_ids_are_valid(id in "[a-z0-9][a-z0-9._-]{0,62}") {
            proptest::prop_assert!(valid_org_id(&id));
        }
    }

    #[test]
    fn key_shape() {
        let (_, k) = generate();
        assert!(well_formed(&k));
        for bad in [
            "",
            "aok_",
            &k[..76],
            &format!("{k}0"),
            &k.to_uppercase(),
            &k.replacen("aok_", "aox_", 1),
            &format!("{}g", &k[..76]),
            &format!("{}é", &k[..75]),
        ] {
            assert!(!well_formed(bad), "{bad:?}");
        }
    }

    /// A pool that cannot connect: any lookup is an error.
    fn no_database() -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(200))
            .connect_lazy("postgres://unused@127.0.0.1:1/none")
            .unwrap()
    }

    #[tokio::test]
    async fn an_address_that_failed_too_often_gets_no_more_lookups() {
        let cache = KeyCache::new(no_database(), Duration::from_secs(60));
        let (a, b): (std::net::IpAddr, std::net::IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        // Malformed keys: refused without a lookup, but they are failures.
        for _ in 0..(2.0 * AUTH_FAILURES_PER_SEC) as usize {
            assert!(matches!(
                cache.authenticate_from("nope", Some(a)).await,
                Ok(None)
            ));
        }
        // a is out of failures: a well-formed key is refused without a lookup
        // (a lookup would fail: no database).
        assert!(matches!(
            cache.authenticate_from(&generate().1, Some(a)).await,
            Ok(None)
        ));
        // b is not.
        assert!(cache
            .authenticate_from(&generate().1, Some(b))
            .await
            .is_err());
        // A key a has seen valid is still looked up once its entry expired.
        let (_, good) = generate();
        let info = KeyInfo {
            key_id: uuid::Uuid::nil(),
            prefix: "00000000".into(),
            org_id: "o".into(),
            scopes: vec!["ingest".into()],
            platform: false,
            rate_limit: None,
        };
        cache.known.lock().unwrap().insert(
            hash_key(&good),
            (Instant::now() - Duration::from_secs(120), info),
        );
        assert!(cache.authenticate_from(&good, Some(a)).await.is_err());
    }

    #[test]
    fn unknown_keys_are_bounded_oldest_first() {
        let mut u = Unknown::default();
        let now = Instant::now();
        for i in 0..UNKNOWN_CAPACITY + 10 {
            u.insert(format!("h{i}"), now);
        }
        assert_eq!(u.at.len(), UNKNOWN_CAPACITY);
        assert!(!u.at.contains_key("h0") && u.at.contains_key("h10"));
    }

    #[tokio::test]
    async fn forget_drops_only_that_keys_entries() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://unused@127.0.0.1:1/none")
            .unwrap();
        let cache = KeyCache::new(pool, Duration::from_secs(60));
        let info = |id: uuid::Uuid| KeyInfo {
            key_id: id,
            prefix: "00000000".into(),
            org_id: "o".into(),
            scopes: vec!["read".into()],
            platform: false,
            rate_limit: None,
        };
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        {
            let mut e = cache.known.lock().unwrap();
            e.insert("ha".into(), (Instant::now(), info(a)));
            e.insert("hb".into(), (Instant::now(), info(b)));
        }
        cache.forget(a);
        let e = cache.known.lock().unwrap();
        let left: Vec<&String> = e.keys().collect();
        assert_eq!(left, ["hb"]);
    }
}
