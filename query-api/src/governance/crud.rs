//! Create, list, get, update and delete of the org's configuration rows
//! (channels, budgets, alert rules, policies), one generic implementation
//! driven by a [`Resource`] description.
//!
//! A body is checked by the resource's `validate`, which returns the row's
//! writable columns normalized (defaults filled, lists deduplicated, unused
//! fields empty); that object is written with `jsonb_populate_record`, so
//! the column list lives in one place. `PUT` merges the body over the
//! stored columns (absent fields keep their value, `null` clears an optional
//! one) and validates the result like a `POST`.

use agentops_governance::config::{normalize, Configuration};
use agentops_governance::Scope as GovScope;
use agentops_runtime::keys::Scope;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::fields::{bad, parse_body, Obj};
use super::{actor, audit, check_channels, parse_id, unique_violation};
use crate::error::ApiError;
use crate::routes::{Access, Routes};
use crate::state::{authenticate, Shared};
use axum::http::Method;

/// How one configuration table is exposed.
pub(crate) struct Resource {
    /// Table, also the key of the list answer (`budgets`), except channels.
    pub(crate) table: &'static str,
    /// Key of the list answer.
    pub(crate) list_key: &'static str,
    /// Noun of messages and audit actions (`budget` → `budget.create`).
    pub(crate) noun: &'static str,
    /// Writable columns = accepted body fields.
    pub(crate) fields: &'static [&'static str],
    /// Fields `PUT` cannot change.
    pub(crate) fixed: &'static [&'static str],
    /// Body → normalized writable columns (exactly `fields`).
    pub(crate) validate: fn(&Obj) -> Result<Obj, ApiError>,
    /// SQL (alias `t`) rendering a row as the API's JSON object.
    pub(crate) output: &'static str,
    /// Statements run after a delete, `$1` = id, `$2` = org.
    pub(crate) on_delete: &'static [&'static str],
    /// Whether the resource has `PUT`.
    pub(crate) updatable: bool,
}

impl Resource {
    /// The resource of a typed configuration item, validated by its
    /// `from_fields`, answered as [`ROW_JSON`], under `list_key`.
    pub(crate) const fn of<T: Configuration>(list_key: &'static str) -> Resource {
        Resource {
            table: T::TABLE,
            list_key,
            noun: T::NOUN,
            fields: T::FIELDS,
            fixed: T::FIXED,
            validate: validated::<T>,
            output: ROW_JSON,
            on_delete: &[],
            updatable: true,
        }
    }
}

fn validated<T: Configuration>(m: &Obj) -> Result<Obj, ApiError> {
    Ok(normalize::<T>(m)?)
}

/// `to_jsonb` of a config row without its org, timestamps in UTC `Z` form.
pub(crate) const ROW_JSON: &str = "to_jsonb(t) - 'org_id' || jsonb_build_object(
    'created_at', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
    'updated_at', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))";

/// Routes `path` (list, create) and `path/{id}` (get, update, delete).
/// Every method needs an admin key of the row's org.
pub(crate) fn routes(path: &str, res: &'static Resource) -> Routes {
    let mut one =
        get(move |s: Shared, h: HeaderMap, Path(id): Path<String>| get_one(res, s, h, id))
            .delete(move |s: Shared, h: HeaderMap, Path(id): Path<String>| delete(res, s, h, id));
    let mut one_rows = vec![
        (Method::GET, Access::Admin),
        (Method::DELETE, Access::Admin),
    ];
    if res.updatable {
        one = one.put(
            move |s: Shared, h: HeaderMap, Path(id): Path<String>, b: Bytes| {
                update(res, s, h, id, b)
            },
        );
        one_rows.push((Method::PUT, Access::Admin));
    }
    Routes::new()
        .add(
            path,
            &[(Method::GET, Access::Admin), (Method::POST, Access::Admin)],
            get(move |s: Shared, h: HeaderMap| list(res, s, h))
                .post(move |s: Shared, h: HeaderMap, b: Bytes| create(res, s, h, b)),
        )
        .add(&format!("{path}/{{id}}"), &one_rows, one)
}

/// Add `scope_key` next to `scope_kind` / `scope_value`.
fn decorate(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        if let Some(kind) = m.get("scope_kind").and_then(Value::as_str) {
            let value = m.get("scope_value").and_then(Value::as_str);
            if let Ok(scope) = GovScope::parse(kind, value) {
                m.insert("scope_key".into(), scope.scope_key().into());
            }
        }
    }
    v
}

async fn fetch(
    conn: &mut PgConnection,
    res: &Resource,
    org: &str,
    id: uuid::Uuid,
) -> Result<Value, ApiError> {
    let sql = format!(
        "SELECT {} FROM {} t WHERE id = $1 AND org_id = $2",
        res.output, res.table
    );
    let row: Option<Value> = sqlx::query_scalar(&sql)
        .bind(id)
        .bind(org)
        .fetch_optional(conn)
        .await?;
    row.map(decorate).ok_or(ApiError::NotFound)
}

async fn list(
    res: &'static Resource,
    State(s): Shared,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let sql = format!(
        "SELECT {} FROM {} t WHERE org_id = $1 ORDER BY name",
        res.output, res.table
    );
    let rows: Vec<Value> = sqlx::query_scalar(&sql)
        .bind(&key.org_id)
        .fetch_all(&s.pool)
        .await?;
    let items: Vec<Value> = rows.into_iter().map(decorate).collect();
    Ok(Json(json!({ res.list_key: items })))
}

async fn get_one(
    res: &'static Resource,
    State(s): Shared,
    headers: HeaderMap,
    id: String,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let id = parse_id(&id)?;
    let mut conn = s.pool.acquire().await?;
    Ok(Json(fetch(&mut conn, res, &key.org_id, id).await?))
}

/// The normalized columns for the audit log (never a secret).
fn audit_detail(id: uuid::Uuid, cols: &Obj) -> Value {
    let mut d = cols.clone();
    if let Some(secret) = d.remove("secret") {
        d.insert("has_secret".into(), json!(!secret.is_null()));
    }
    // A sealed credential: the masked form only.
    if let Some(hint) = d.remove("url_hint") {
        d.insert("url".into(), hint);
    }
    d.insert("id".into(), json!(id));
    Value::Object(d)
}

fn conflict(res: &Resource, cols: &Obj, e: sqlx::Error) -> ApiError {
    if unique_violation(&e) {
        let name = cols.get("name").and_then(Value::as_str).unwrap_or_default();
        ApiError::Conflict(format!("a {} named `{name}` already exists", res.noun))
    } else {
        ApiError::Database(e)
    }
}

fn channels_of(cols: &Obj) -> Vec<uuid::Uuid> {
    cols.get("channels")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Insert validated columns as a new row of `org`; its id.
async fn insert_row(
    conn: &mut PgConnection,
    res: &Resource,
    org: &str,
    cols: &Obj,
) -> Result<uuid::Uuid, ApiError> {
    let names = res.fields.join(", ");
    let sql = format!(
        "INSERT INTO {table} (org_id, {names})
         SELECT $1, {names} FROM jsonb_populate_record(NULL::{table}, $2)
         RETURNING id",
        table = res.table
    );
    sqlx::query_scalar(&sql)
        .bind(org)
        .bind(Value::Object(cols.clone()))
        .fetch_one(conn)
        .await
        .map_err(|e| conflict(res, cols, e))
}

/// Write validated columns over row `id` of `org`.
async fn update_row(
    conn: &mut PgConnection,
    res: &Resource,
    org: &str,
    id: uuid::Uuid,
    cols: &Obj,
) -> Result<(), ApiError> {
    let names = res.fields.join(", ");
    let sql = format!(
        "UPDATE {table} t SET ({names}, updated_at) =
             (SELECT {names}, now() FROM jsonb_populate_record(NULL::{table}, $3))
         WHERE t.id = $1 AND t.org_id = $2",
        table = res.table
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(org)
        .bind(Value::Object(cols.clone()))
        .execute(conn)
        .await
        .map_err(|e| conflict(res, cols, e))?;
    Ok(())
}

/// `patch` over the stored row's writable columns; a fixed field may not
/// change.
fn merge(res: &Resource, current: Obj, patch: Obj) -> Result<Obj, ApiError> {
    let mut merged: Obj = current
        .into_iter()
        .filter(|(k, _)| res.fields.contains(&k.as_str()))
        .collect();
    for (k, v) in patch {
        if let Some(f) = res.fixed.iter().find(|f| **f == k) {
            if merged.get(*f) != Some(&v) {
                return Err(bad(
                    f,
                    format!("cannot be changed; create a new {} instead", res.noun),
                ));
            }
        }
        merged.insert(k, v);
    }
    Ok(merged)
}

/// Who changes a row outside a request's key (the admin CLI) or with one.
pub(crate) struct Writer<'a> {
    pub(crate) org_id: &'a str,
    /// `audit_log.actor`.
    pub(crate) actor: &'a str,
    pub(crate) caps: &'a crate::caps::Caps,
}

/// Create the org's row named by `patch["name"]` from `defaults` + `patch`,
/// or merge `patch` over the existing one: validated, capped, channel-checked
/// and audited exactly like `POST` and `PUT` (the legacy
/// `PUT /v1/admin/budget` and the CLI's `set-budget` use it). Returns the
/// row id and whether it was created.
pub(crate) async fn upsert_named(
    conn: &mut PgConnection,
    res: &Resource,
    who: &Writer<'_>,
    defaults: Obj,
    patch: Obj,
) -> Result<(uuid::Uuid, bool), ApiError> {
    let name = patch.get("name").cloned().unwrap_or(Value::Null);
    let sql = format!(
        "SELECT id, to_jsonb(t) FROM {} t WHERE org_id = $1 AND name = $2 FOR UPDATE",
        res.table
    );
    #[derive(sqlx::FromRow)]
    struct Current {
        id: uuid::Uuid,
        to_jsonb: Value,
    }
    let current: Option<Current> = sqlx::query_as(&sql)
        .bind(who.org_id)
        .bind(name.as_str().unwrap_or_default())
        .fetch_optional(&mut *conn)
        .await?;
    let (id, created, cols) = match current {
        Some(Current {
            id,
            to_jsonb: Value::Object(row),
        }) => {
            let cols = (res.validate)(&merge(res, row, patch)?)?;
            check_channels(conn, who.org_id, &channels_of(&cols)).await?;
            update_row(conn, res, who.org_id, id, &cols).await?;
            (id, false, cols)
        }
        _ => {
            let mut body = defaults;
            body.extend(patch);
            let cols = (res.validate)(&body)?;
            crate::caps::check(conn, who.caps, who.org_id, res.table, "true", res.noun).await?;
            check_channels(conn, who.org_id, &channels_of(&cols)).await?;
            (insert_row(conn, res, who.org_id, &cols).await?, true, cols)
        }
    };
    let action = format!("{}.{}", res.noun, if created { "create" } else { "update" });
    super::audit_as(
        conn,
        who.org_id,
        who.actor,
        &action,
        audit_detail(id, &cols),
    )
    .await?;
    Ok((id, created))
}

async fn create(
    res: &'static Resource,
    State(s): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let cols = (res.validate)(&parse_body(&body, res.fields)?)?;
    let mut tx = s.pool.begin().await?;
    crate::caps::check(&mut tx, &s.caps, &key.org_id, res.table, "true", res.noun).await?;
    check_channels(&mut tx, &key.org_id, &channels_of(&cols)).await?;
    let id = insert_row(&mut tx, res, &key.org_id, &cols).await?;
    let action = format!("{}.create", res.noun);
    audit(&mut tx, &key, &action, audit_detail(id, &cols)).await?;
    let mut out = fetch(&mut tx, res, &key.org_id, id).await?;
    tx.commit().await?;
    // A generated or supplied secret is shown once, here.
    if let Some(secret) = cols.get("secret").filter(|v| !v.is_null()) {
        out["secret"] = super::channels::reveal(secret);
    }
    tracing::info!(resource = res.noun, %id, org_id = %key.org_id, "created");
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn update(
    res: &'static Resource,
    State(s): Shared,
    headers: HeaderMap,
    id: String,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let id = parse_id(&id)?;
    let patch = parse_body(&body, res.fields)?;
    let mut tx = s.pool.begin().await?;
    let sql = format!(
        "SELECT to_jsonb(t) FROM {} t WHERE id = $1 AND org_id = $2 FOR UPDATE",
        res.table
    );
    let current: Option<Value> = sqlx::query_scalar(&sql)
        .bind(id)
        .bind(&key.org_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(Value::Object(current)) = current else {
        return Err(ApiError::NotFound);
    };
    let cols = (res.validate)(&merge(res, current, patch)?)?;
    check_channels(&mut tx, &key.org_id, &channels_of(&cols)).await?;
    update_row(&mut tx, res, &key.org_id, id, &cols).await?;
    let action = format!("{}.update", res.noun);
    audit(&mut tx, &key, &action, audit_detail(id, &cols)).await?;
    let out = fetch(&mut tx, res, &key.org_id, id).await?;
    tx.commit().await?;
    tracing::info!(resource = res.noun, %id, org_id = %key.org_id, "updated");
    Ok(Json(out))
}

async fn delete(
    res: &'static Resource,
    State(s): Shared,
    headers: HeaderMap,
    id: String,
) -> Result<StatusCode, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let id = parse_id(&id)?;
    let mut tx = s.pool.begin().await?;
    let sql = format!(
        "DELETE FROM {} WHERE id = $1 AND org_id = $2 RETURNING name",
        res.table
    );
    let name: String = sqlx::query_scalar(&sql)
        .bind(id)
        .bind(&key.org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound)?;
    for stmt in res.on_delete {
        sqlx::query(stmt)
            .bind(id)
            .bind(&key.org_id)
            .execute(&mut *tx)
            .await?;
    }
    let action = format!("{}.delete", res.noun);
    audit(&mut tx, &key, &action, json!({"id": id, "name": name})).await?;
    tx.commit().await?;
    tracing::info!(resource = res.noun, %id, org_id = %key.org_id, actor = %actor(&key), "deleted");
    Ok(StatusCode::NO_CONTENT)
}
