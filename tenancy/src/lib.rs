//! Orgs and API keys in the database: create, list, revoke, ingest limits;
//! people ([`people`]: users, memberships and roles), [`invitations`] and
//! sign-in [`sessions`].
//!
//! Every change writes an `audit_log` row in the same transaction as the
//! change (`actor` as given: `cli`, `admin:<key id>:<prefix>`, ...; `detail`
//! a JSON object, never a secret or a hash). Functions taking a connection
//! run inside the caller's transaction; the `pool` ones open their own.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

use agentops_runtime::keys::{generate, hash_key, Scope};
use agentops_runtime::Result;

pub mod invitations;
pub mod people;
pub mod sessions;

pub use people::Role;

/// A newly created key; `secret` is the only copy of the raw key.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub key_id: uuid::Uuid,
    pub org_id: String,
    pub prefix: String,
    pub name: Option<String>,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub secret: String,
}

impl NewKey {
    /// The scopes as stored (`["ingest"]`).
    pub fn scope_names(&self) -> Vec<&'static str> {
        self.scopes.iter().map(|s| s.as_str()).collect()
    }
}

/// A stored key as listed: never its secret or hash.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyRecord {
    pub id: uuid::Uuid,
    pub org_id: String,
    pub prefix: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An org as listed, with its number of live (unrevoked) keys.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OrgRecord {
    pub id: String,
    pub name: String,
    pub platform: bool,
    pub ingest_events_per_sec: Option<f64>,
    pub ingest_burst: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub live_keys: i64,
}

/// A new org.
#[derive(Debug, Clone, Copy)]
pub struct OrgSpec<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub platform: bool,
    /// Ingest events per second and burst; `None`: the gateway's default.
    pub events_per_sec: Option<f64>,
    pub burst: Option<f64>,
}

/// What [`revoke`] did.
#[derive(Debug, Clone)]
pub enum Revocation {
    Revoked(KeyRecord),
    /// Revoked before (the record says when); nothing written.
    AlreadyRevoked(KeyRecord),
    /// No such key in the org.
    NotFound,
}

const KEY_COLUMNS: &str = "id, org_id, prefix, name, scopes, created_at, created_by, revoked_at";

const ORG_SELECT: &str = "SELECT o.id, o.name, o.platform, o.ingest_events_per_sec,
        o.ingest_burst, o.created_at,
        (SELECT count(*) FROM api_keys k WHERE k.org_id = o.id AND k.revoked_at IS NULL)
            AS live_keys
     FROM orgs o";

/// Append an `audit_log` row (in the caller's transaction).
pub async fn audit(
    conn: &mut PgConnection,
    org_id: &str,
    actor: &str,
    action: &str,
    detail: &Value,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (org_id, actor, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(org_id)
        .bind(actor)
        .bind(action)
        .bind(detail.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Create an org (idempotent on id; not audited, kept for tests and tools).
pub async fn create_org(pool: &PgPool, org_id: &str, name: &str) -> Result<()> {
    sqlx::query("INSERT INTO orgs (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(org_id)
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

fn org_detail(spec: &OrgSpec<'_>) -> Value {
    json!({"id": spec.id, "name": spec.name, "platform": spec.platform,
           "ingest_events_per_sec": spec.events_per_sec, "ingest_burst": spec.burst})
}

/// Insert an org, audited as `org.create`; `false` (nothing written) when
/// the id is taken.
pub async fn insert_org(conn: &mut PgConnection, spec: &OrgSpec<'_>, actor: &str) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO orgs (id, name, platform, ingest_events_per_sec, ingest_burst)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(spec.id)
    .bind(spec.name)
    .bind(spec.platform)
    .bind(spec.events_per_sec)
    .bind(spec.burst)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        audit(conn, spec.id, actor, "org.create", &org_detail(spec)).await?;
    }
    Ok(inserted)
}

/// Insert the org unless it exists; an existing org is left as it is
/// except that `platform: true` marks it a platform org (audited as
/// `org.platform`). Returns whether the org is new.
pub async fn ensure_org(conn: &mut PgConnection, spec: &OrgSpec<'_>, actor: &str) -> Result<bool> {
    if insert_org(conn, spec, actor).await? {
        return Ok(true);
    }
    if spec.platform {
        let marked = sqlx::query("UPDATE orgs SET platform = true WHERE id = $1 AND NOT platform")
            .bind(spec.id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
        if marked {
            audit(
                conn,
                spec.id,
                actor,
                "org.platform",
                &json!({"platform": true}),
            )
            .await?;
        }
    }
    Ok(false)
}

/// Every org, by id.
pub async fn list_orgs(pool: &PgPool) -> Result<Vec<OrgRecord>> {
    Ok(sqlx::query_as(&format!("{ORG_SELECT} ORDER BY o.id"))
        .fetch_all(pool)
        .await?)
}

pub async fn get_org(conn: &mut PgConnection, org_id: &str) -> Result<Option<OrgRecord>> {
    Ok(sqlx::query_as(&format!("{ORG_SELECT} WHERE o.id = $1"))
        .bind(org_id)
        .fetch_optional(conn)
        .await?)
}

/// Set an org's ingest limit: events per second and burst (`None` burst:
/// the rate; `None` rate: the gateway's default), audited as `org.limits`
/// with the old and new values. `None` when there is no such org. Callers
/// validate the values (the table's checks are the last line). The gateway
/// applies them once its key cache entries expire.
pub async fn set_org_limits(
    conn: &mut PgConnection,
    org_id: &str,
    events_per_sec: Option<f64>,
    burst: Option<f64>,
    actor: &str,
) -> Result<Option<OrgRecord>> {
    #[derive(sqlx::FromRow)]
    struct Limits {
        ingest_events_per_sec: Option<f64>,
        ingest_burst: Option<f64>,
    }
    let old: Option<Limits> = sqlx::query_as(
        "SELECT ingest_events_per_sec, ingest_burst FROM orgs WHERE id = $1 FOR UPDATE",
    )
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(Limits {
        ingest_events_per_sec: old_eps,
        ingest_burst: old_burst,
    }) = old
    else {
        return Ok(None);
    };
    sqlx::query("UPDATE orgs SET ingest_events_per_sec = $2, ingest_burst = $3 WHERE id = $1")
        .bind(org_id)
        .bind(events_per_sec)
        .bind(burst)
        .execute(&mut *conn)
        .await?;
    let detail = json!({
        "ingest_events_per_sec": events_per_sec, "ingest_burst": burst,
        "previous": {"ingest_events_per_sec": old_eps, "ingest_burst": old_burst},
    });
    audit(conn, org_id, actor, "org.limits", &detail).await?;
    get_org(conn, org_id).await
}

/// Create a key for an org, audited as `api_key.create`; `actor` is also
/// recorded as the key's `created_by`. Scopes are stored deduplicated.
pub async fn insert_key(
    conn: &mut PgConnection,
    org_id: &str,
    scopes: &[Scope],
    name: Option<&str>,
    actor: &str,
) -> Result<NewKey> {
    let mut uniq: Vec<Scope> = Vec::new();
    for s in scopes {
        if !uniq.contains(s) {
            uniq.push(*s);
        }
    }
    let (prefix, raw) = generate();
    let key_id = uuid::Uuid::new_v4();
    let names: Vec<&str> = uniq.iter().map(|s| s.as_str()).collect();
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO api_keys (id, org_id, prefix, key_hash, scopes, name, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at",
    )
    .bind(key_id)
    .bind(org_id)
    .bind(&prefix)
    .bind(hash_key(&raw))
    .bind(&names)
    .bind(name)
    .bind(actor)
    .fetch_one(&mut *conn)
    .await?;
    let detail = json!({"key_id": key_id, "prefix": prefix, "scopes": names, "name": name});
    audit(conn, org_id, actor, "api_key.create", &detail).await?;
    Ok(NewKey {
        key_id,
        org_id: org_id.to_owned(),
        prefix,
        name: name.map(str::to_owned),
        scopes: uniq,
        created_at,
        created_by: actor.to_owned(),
        secret: raw,
    })
}

/// Create a key with one scope (its own transaction).
pub async fn create_key(pool: &PgPool, org_id: &str, scope: Scope, actor: &str) -> Result<NewKey> {
    create_key_named(pool, org_id, &[scope], None, actor).await
}

/// Create a key with its scopes and an optional name (its own transaction).
pub async fn create_key_named(
    pool: &PgPool,
    org_id: &str,
    scopes: &[Scope],
    name: Option<&str>,
    actor: &str,
) -> Result<NewKey> {
    let mut tx = pool.begin().await?;
    let key = insert_key(&mut tx, org_id, scopes, name, actor).await?;
    tx.commit().await?;
    Ok(key)
}

/// An org's keys, revoked ones included, oldest first.
pub async fn list_keys(pool: &PgPool, org_id: &str) -> Result<Vec<KeyRecord>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at, id"
    ))
    .bind(org_id)
    .fetch_all(pool)
    .await?)
}

/// Revoke a key of the org, audited as `api_key.revoke`.
pub async fn revoke(
    conn: &mut PgConnection,
    org_id: &str,
    key_id: uuid::Uuid,
    actor: &str,
) -> Result<Revocation> {
    let done: Option<KeyRecord> = sqlx::query_as(&format!(
        "UPDATE api_keys SET revoked_at = now()
         WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL RETURNING {KEY_COLUMNS}"
    ))
    .bind(key_id)
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(k) = done {
        let detail =
            json!({"key_id": k.id, "prefix": k.prefix, "scopes": k.scopes, "name": k.name});
        audit(conn, org_id, actor, "api_key.revoke", &detail).await?;
        return Ok(Revocation::Revoked(k));
    }
    let before: Option<KeyRecord> = sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 AND org_id = $2"
    ))
    .bind(key_id)
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(before.map_or(Revocation::NotFound, Revocation::AlreadyRevoked))
}

/// Revoke a key; returns false when no such live key exists in the org.
pub async fn revoke_key(
    pool: &PgPool,
    org_id: &str,
    key_id: uuid::Uuid,
    actor: &str,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let done = matches!(
        revoke(&mut tx, org_id, key_id, actor).await?,
        Revocation::Revoked(_)
    );
    tx.commit().await?;
    Ok(done)
}
