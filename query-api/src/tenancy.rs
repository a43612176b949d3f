//! Orgs and API keys over the API.
//!
//! Org admins (an `admin` key, acting on its own org):
//! - `GET /v1/admin/keys`, `POST /v1/admin/keys` `{scopes, name?}` (201, the
//!   raw key shown once in `key`), `POST /v1/admin/keys/{id}/revoke` and
//!   `DELETE /v1/admin/keys/{id}` (200; 404 for another org's key, 409 when
//!   already revoked);
//! - `GET /v1/admin/audit?limit=50`: the org's audit log, newest first.
//!
//! Platform admins (an admin key of an org with `orgs.platform`; any other
//! key gets 403 naming why):
//! - `GET /v1/admin/orgs`, `POST /v1/admin/orgs` `{id, name?,
//!   ingest_events_per_sec?, ingest_burst?}` (201 with the org and its first
//!   admin key; 409 on an existing id), `GET|PATCH /v1/admin/orgs/{id}`
//!   (PATCH sets or, with `null`, clears the ingest limits);
//! - `GET|POST /v1/admin/orgs/{id}/keys`,
//!   `POST /v1/admin/orgs/{id}/keys/{key_id}/revoke` (also `DELETE .../{key_id}`).
//!
//! Every change writes `audit_log` (under the org changed, `actor`
//! `admin:<key id>:<prefix>` of the acting key) in the change's transaction.
//! The API never creates platform orgs (`admin create-org --platform` does).
//! A key list never holds a secret or a hash. A revoked key is refused by
//! this process at once and by every other within `key_cache_ttl_ms`.

mod validate;

use crate::params::Query;
use agentops_runtime::keys::{self, Scope};
use agentops_runtime::openapi::ErrorBody;
use agentops_tenancy as orgs;
use agentops_tenancy::{NewKey, OrgSpec, Revocation};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::governance::fields::parse_body;
use crate::params::limit_param;
use crate::routes::{Access, Routes};
use crate::state::{authenticate, authorize, AppState, Caller, Permission, Shared};
use axum::http::Method;
pub use validate::{check_limits, MAX_LIMIT};
use validate::{key_body, org_body, patch_limits, KEY_FIELDS, LIMIT_FIELDS, ORG_FIELDS};

/// Every org and key route (merged into the API router).
pub(crate) fn routes() -> Routes {
    use Access::*;
    Routes::new()
        .add(
            "/v1/admin/keys",
            &[(Method::GET, Admin), (Method::POST, Admin)],
            get(own_keys).post(create_own_key),
        )
        .add(
            "/v1/admin/keys/{key_id}",
            &[(Method::DELETE, Admin)],
            axum::routing::delete(revoke_own_key),
        )
        .add(
            "/v1/admin/keys/{key_id}/revoke",
            &[(Method::POST, Admin)],
            post(revoke_own_key),
        )
        .add("/v1/admin/audit", &[(Method::GET, Admin)], get(audit_log))
        .add(
            "/v1/admin/orgs",
            &[(Method::GET, PlatformAdmin), (Method::POST, PlatformAdmin)],
            get(list_orgs).post(create_org),
        )
        .add(
            "/v1/admin/orgs/{org_id}",
            &[(Method::GET, PlatformAdmin), (Method::PATCH, PlatformAdmin)],
            get(get_org).patch(patch_org),
        )
        .add(
            "/v1/admin/orgs/{org_id}/keys",
            &[(Method::GET, PlatformAdmin), (Method::POST, PlatformAdmin)],
            get(org_keys).post(create_org_key),
        )
        .add(
            "/v1/admin/orgs/{org_id}/keys/{key_id}",
            &[(Method::DELETE, PlatformAdmin)],
            axum::routing::delete(revoke_org_key),
        )
        .add(
            "/v1/admin/orgs/{org_id}/keys/{key_id}/revoke",
            &[(Method::POST, PlatformAdmin)],
            post(revoke_org_key),
        )
}

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    own_keys,
    create_own_key,
    revoke_own_key,
    revoke_own_key_post,
    audit_log,
    list_orgs,
    create_org,
    get_org,
    patch_org,
    org_keys,
    create_org_key,
    revoke_org_key,
    revoke_org_key_post
))]
pub(crate) struct Doc;

/// A key list (never a secret or a hash).
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `list_keys_of`.
struct Keys {
    org_id: String,
    keys: Vec<orgs::KeyRecord>,
}

/// A key scope.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
enum ScopeName {
    Ingest,
    Read,
    Admin,
}

/// `POST .../keys` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct KeyBody {
    /// At least one.
    #[schema(min_items = 1)]
    scopes: Vec<ScopeName>,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
    )]
    name: Option<String>,
}

/// A created key: its record and the raw key, shown only here.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `created_key`.
struct CreatedKey {
    id: uuid::Uuid,
    org_id: String,
    prefix: String,
    name: Option<String>,
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
    created_by: String,
    /// Always null here.
    revoked_at: Option<DateTime<Utc>>,
    /// The raw key: keep it, it is never shown again.
    key: String,
}

/// `GET /v1/admin/audit`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `audit_log`.
struct AuditLog {
    org_id: String,
    entries: Vec<AuditEntry>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `audit_log`.
struct AuditEntry {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    /// JSON when the row holds JSON (older rows hold plain text).
    detail: Value,
}

/// `GET /v1/admin/orgs`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `list_orgs`.
struct Orgs {
    orgs: Vec<orgs::OrgRecord>,
}

/// `POST /v1/admin/orgs` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct OrgBody {
    /// 1 to 64 characters of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit.
    id: String,
    /// Default: the id.
    name: Option<String>,
    ingest_events_per_sec: Option<f64>,
    ingest_burst: Option<f64>,
}

/// `PATCH /v1/admin/orgs/{org_id}` body: `null` clears a limit.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct LimitsBody {
    ingest_events_per_sec: Option<f64>,
    ingest_burst: Option<f64>,
}

/// `POST /v1/admin/orgs`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `create_org`.
struct CreatedOrg {
    org: orgs::OrgRecord,
    admin_key: CreatedKey,
}

/// `audit_log.actor` and `api_keys.created_by` of a change made with `key`
/// (`user:<id>:<email>` for a signed-in owner).
pub(crate) fn actor(key: &Caller) -> String {
    key.user_actor()
        .unwrap_or_else(|| format!("admin:{}:{}", key.key_id, key.prefix))
}

/// An admin key of a platform org.
async fn platform_admin(s: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = authenticate(s, headers, Scope::Admin).await?;
    if !key.platform {
        return Err(ApiError::NotPlatform(key.org_id));
    }
    Ok(key)
}

/// A path org id: an impossible id is as missing as an unknown one.
async fn existing_org(
    conn: &mut sqlx::PgConnection,
    org_id: &str,
) -> Result<orgs::OrgRecord, ApiError> {
    if !keys::valid_org_id(org_id) {
        return Err(ApiError::NotFound);
    }
    orgs::get_org(conn, org_id).await?.ok_or(ApiError::NotFound)
}

/// A created key as answered: its record plus the raw key, shown only here.
fn created_key(k: &NewKey) -> Value {
    json!({
        "id": k.key_id, "org_id": k.org_id, "prefix": k.prefix, "name": k.name,
        "scopes": k.scope_names(), "created_at": k.created_at, "created_by": k.created_by,
        "revoked_at": null, "key": k.secret,
    })
}

async fn list_keys_of(s: &AppState, org_id: &str) -> Result<Json<Value>, ApiError> {
    let keys = orgs::list_keys(&s.pool, org_id).await?;
    Ok(Json(json!({ "org_id": org_id, "keys": keys })))
}

async fn create_key_in(
    s: &AppState,
    key: &Caller,
    org_id: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let k = key_body(&parse_body(body, KEY_FIELDS)?)?;
    let mut tx = s.pool.begin().await?;
    existing_org(&mut tx, org_id).await?;
    crate::caps::check(
        &mut tx,
        &s.caps,
        org_id,
        "api_keys",
        "revoked_at IS NULL",
        "key",
    )
    .await?;
    let new = orgs::insert_key(&mut tx, org_id, &k.scopes, k.name.as_deref(), &actor(key)).await?;
    tx.commit().await?;
    tracing::info!(org_id, key_id = %new.key_id, actor = %actor(key), "api key created");
    Ok((StatusCode::CREATED, Json(created_key(&new))).into_response())
}

async fn revoke_in(
    s: &AppState,
    key: &Caller,
    org_id: &str,
    key_id: &str,
) -> Result<Json<Value>, ApiError> {
    let key_id = crate::governance::parse_id(key_id)?;
    let mut tx = s.pool.begin().await?;
    let outcome = orgs::revoke(&mut tx, org_id, key_id, &actor(key)).await?;
    tx.commit().await?;
    match outcome {
        Revocation::Revoked(k) => {
            s.keys.forget(key_id);
            tracing::info!(org_id, %key_id, actor = %actor(key), "api key revoked");
            Ok(Json(json!(k)))
        }
        Revocation::AlreadyRevoked(k) => Err(ApiError::Conflict(format!(
            "key {key_id} was already revoked at {}",
            k.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        ))),
        Revocation::NotFound => Err(ApiError::NotFound),
    }
}

/// `GET /v1/admin/keys`.
#[utoipa::path(get, path = "/v1/admin/keys", tag = "keys",
    responses((status = 200, description = "The org's keys", body = Keys)))]
async fn own_keys(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let key = authorize(&s, &headers, Permission::ManageAccess).await?;
    list_keys_of(&s, &key.org_id).await
}

/// `POST /v1/admin/keys` `{scopes, name?}`.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "keys", request_body = KeyBody,
    responses((status = 201, description = "The key, shown once", body = CreatedKey),
              (status = 409, description = "The org's key cap is reached", body = ErrorBody)))]
async fn create_own_key(
    State(s): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = authorize(&s, &headers, Permission::ManageAccess).await?;
    create_key_in(&s, &key, &key.org_id, &body).await
}

/// `POST /v1/admin/keys/{id}/revoke`, `DELETE /v1/admin/keys/{id}`.
#[utoipa::path(delete, path = "/v1/admin/keys/{key_id}", tag = "keys",
    params(("key_id" = String, Path, description = "The key's id (a UUID)")),
    responses((status = 200, description = "The revoked key", body = orgs::KeyRecord),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke_own_key(
    State(s): Shared,
    headers: HeaderMap,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = authorize(&s, &headers, Permission::ManageAccess).await?;
    revoke_in(&s, &key, &key.org_id, &key_id).await
}

/// `POST /v1/admin/keys/{key_id}/revoke`: the same as its `DELETE`.
#[utoipa::path(post, path = "/v1/admin/keys/{key_id}/revoke", tag = "keys",
    params(("key_id" = String, Path, description = "The key's id (a UUID)")),
    responses((status = 200, description = "The revoked key", body = orgs::KeyRecord),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
#[allow(dead_code)] // The route is served by `revoke_own_key`.
fn revoke_own_key_post() {}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Rows, 1 to 1000 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `GET /v1/admin/audit?limit=50`: newest first; `detail` as
/// JSON when it is JSON (older rows hold plain text).
#[utoipa::path(get, path = "/v1/admin/audit", tag = "keys", params(AuditQuery),
    responses((status = 200, description = "Newest first", body = AuditLog)))]
async fn audit_log(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let limit = limit_param(q.limit.as_deref(), 50, 1000)?;
    #[derive(sqlx::FromRow)]
    struct AuditRow {
        id: i64,
        at: DateTime<Utc>,
        actor: String,
        action: String,
        detail: String,
    }
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, at, actor, action, detail FROM audit_log
         WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(&key.org_id)
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    let entries: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let detail =
                serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::String(r.detail));
            json!({"id": r.id, "at": r.at, "actor": r.actor, "action": r.action, "detail": detail})
        })
        .collect();
    Ok(Json(json!({ "org_id": key.org_id, "entries": entries })))
}

/// `GET /v1/admin/orgs` (platform).
#[utoipa::path(get, path = "/v1/admin/orgs", tag = "orgs",
    responses((status = 200, description = "Every org", body = Orgs)))]
async fn list_orgs(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    platform_admin(&s, &headers).await?;
    Ok(Json(json!({ "orgs": orgs::list_orgs(&s.pool).await? })))
}

/// `POST /v1/admin/orgs` (platform): the org and its first admin key.
#[utoipa::path(post, path = "/v1/admin/orgs", tag = "orgs", request_body = OrgBody,
    responses((status = 201, description = "The org and its first admin key (shown once)", body = CreatedOrg),
              (status = 409, description = "The id exists", body = ErrorBody)))]
async fn create_org(
    State(s): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = platform_admin(&s, &headers).await?;
    let o = org_body(&parse_body(&body, ORG_FIELDS)?)?;
    let spec = OrgSpec {
        id: &o.id,
        name: &o.name,
        platform: false,
        events_per_sec: o.events_per_sec,
        burst: o.burst,
    };
    let who = actor(&key);
    let mut tx = s.pool.begin().await?;
    if !orgs::insert_org(&mut tx, &spec, &who).await? {
        return Err(ApiError::Conflict(format!(
            "an org with id `{}` already exists",
            o.id
        )));
    }
    let admin =
        orgs::insert_key(&mut tx, &o.id, &[Scope::Admin], Some("initial admin"), &who).await?;
    let org = existing_org(&mut tx, &o.id).await?;
    tx.commit().await?;
    tracing::info!(org_id = %o.id, actor = %who, "org created");
    let body = json!({"org": org, "admin_key": created_key(&admin)});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /v1/admin/orgs/{id}` (platform).
#[utoipa::path(get, path = "/v1/admin/orgs/{org_id}", tag = "orgs",
    params(("org_id" = String, Path, description = "The org's id")),
    responses((status = 200, description = "The org", body = orgs::OrgRecord)))]
async fn get_org(
    State(s): Shared,
    headers: HeaderMap,
    Path(org_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    platform_admin(&s, &headers).await?;
    let mut conn = s.pool.acquire().await?;
    Ok(Json(json!(existing_org(&mut conn, &org_id).await?)))
}

/// `PATCH /v1/admin/orgs/{id}` `{ingest_events_per_sec?, ingest_burst?}` (platform).
#[utoipa::path(patch, path = "/v1/admin/orgs/{org_id}", tag = "orgs",
    params(("org_id" = String, Path, description = "The org's id")),
    request_body = LimitsBody,
    responses((status = 200, description = "The org with its limits", body = orgs::OrgRecord)))]
async fn patch_org(
    State(s): Shared,
    headers: HeaderMap,
    Path(org_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = platform_admin(&s, &headers).await?;
    let patch = parse_body(&body, LIMIT_FIELDS)?;
    let mut tx = s.pool.begin().await?;
    let current = existing_org(&mut tx, &org_id).await?;
    let (eps, burst) = patch_limits(
        (current.ingest_events_per_sec, current.ingest_burst),
        &patch,
    )?;
    let org = orgs::set_org_limits(&mut tx, &org_id, eps, burst, &actor(&key))
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    tracing::info!(org_id, actor = %actor(&key), "org limits set");
    Ok(Json(json!(org)))
}

/// `GET /v1/admin/orgs/{id}/keys` (platform).
#[utoipa::path(get, path = "/v1/admin/orgs/{org_id}/keys", tag = "orgs",
    params(("org_id" = String, Path, description = "The org's id")),
    responses((status = 200, description = "The org's keys", body = Keys)))]
async fn org_keys(
    State(s): Shared,
    headers: HeaderMap,
    Path(org_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    platform_admin(&s, &headers).await?;
    let mut conn = s.pool.acquire().await?;
    existing_org(&mut conn, &org_id).await?;
    drop(conn);
    list_keys_of(&s, &org_id).await
}

/// `POST /v1/admin/orgs/{id}/keys` `{scopes, name?}` (platform).
#[utoipa::path(post, path = "/v1/admin/orgs/{org_id}/keys", tag = "orgs",
    params(("org_id" = String, Path, description = "The org's id")),
    request_body = KeyBody,
    responses((status = 201, description = "The key, shown once", body = CreatedKey),
              (status = 409, description = "The org's key cap is reached", body = ErrorBody)))]
async fn create_org_key(
    State(s): Shared,
    headers: HeaderMap,
    Path(org_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = platform_admin(&s, &headers).await?;
    create_key_in(&s, &key, &org_id, &body).await
}

/// `POST /v1/admin/orgs/{id}/keys/{key_id}/revoke`, `DELETE .../{key_id}` (platform).
#[utoipa::path(delete, path = "/v1/admin/orgs/{org_id}/keys/{key_id}", tag = "orgs",
    params(("org_id" = String, Path, description = "The org's id"),
           ("key_id" = String, Path, description = "The key's id (a UUID)")),
    responses((status = 200, description = "The revoked key", body = orgs::KeyRecord),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
async fn revoke_org_key(
    State(s): Shared,
    headers: HeaderMap,
    Path((org_id, key_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let key = platform_admin(&s, &headers).await?;
    revoke_in(&s, &key, &org_id, &key_id).await
}

/// `POST /v1/admin/orgs/{org_id}/keys/{key_id}/revoke`: the same as its `DELETE`.
#[utoipa::path(post, path = "/v1/admin/orgs/{org_id}/keys/{key_id}/revoke", tag = "orgs",
    params(("org_id" = String, Path, description = "The org's id"),
           ("key_id" = String, Path, description = "The key's id (a UUID)")),
    responses((status = 200, description = "The revoked key", body = orgs::KeyRecord),
              (status = 409, description = "Already revoked", body = ErrorBody)))]
#[allow(dead_code)] // The route is served by `revoke_org_key`.
fn revoke_org_key_post() {}
