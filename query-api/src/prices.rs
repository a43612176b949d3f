//! Model prices (the `model_prices` table the processors price events with).
//!
//! - `GET /v1/admin/prices` (admin): the global rows and this org's, every version.
//! - `POST /v1/admin/prices` (admin): add (or replace) a version of a model's
//!   prices for this org; it overrides the global table from `effective_from`.
//! - `GET /v1/prices/unknown?window=7d` (read): models this org used with
//!   tokens but no price, from the aggregates' `unpriced_calls`.
//!
//! Global rows affect every org and are changed with the admin CLI
//! (`agentops-query-api admin set-price`, [`set_price`]). Processors reload
//! the table every `price_reload_secs`; already-priced events change only
//! through `agentops-processors recompute`.

use crate::params::Query;
use agentops_runtime::openapi::ErrorBody;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};

use agentops_runtime::keys::Scope;

use crate::error::ApiError;
use crate::routes::{Access, Routes};
use crate::state::{authenticate, Shared};
use axum::http::Method;

/// Most aliases per row.
const MAX_ALIASES: usize = 32;
/// Highest accepted rate (USD per million tokens).
const MAX_RATE: f64 = 100_000.0;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .add(
            "/v1/admin/prices",
            &[(Method::GET, Access::Admin), (Method::POST, Access::Admin)],
            get(list).post(add),
        )
        .add(
            "/v1/prices/unknown",
            &[(Method::GET, Access::Read)],
            get(unknown),
        )
}

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, add, unknown))]
pub(crate) struct Doc;

/// `GET /v1/admin/prices`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `list`.
struct Prices {
    prices: Vec<Price>,
}

/// Where a price row applies.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
enum PriceScope {
    Global,
    Org,
}

/// A version of a model's prices (USD per million tokens).
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `row_json`.
struct Price {
    id: i64,
    scope: PriceScope,
    provider: String,
    model: String,
    aliases: Vec<String>,
    effective_from: NaiveDate,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    reasoning: Option<f64>,
    created_by: String,
    created_at: DateTime<Utc>,
}

/// `POST /v1/admin/prices` body (USD per million tokens, 0 to 100000).
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct PriceBody {
    provider: String,
    /// 1 to 200 characters, no whitespace or `/` (matched ignoring case).
    model: String,
    /// Other names of the model (at most 32).
    aliases: Option<Vec<String>>,
    /// A UTC date `YYYY-MM-DD` (default: 1970-01-01, always).
    effective_from: Option<NaiveDate>,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    reasoning: Option<f64>,
}

/// `GET /v1/prices/unknown`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `unknown`.
struct UnknownModels {
    window: String,
    models: Vec<UnknownModel>,
}

/// A model used with tokens but no price.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `unknown`.
struct UnknownModel {
    provider: Option<String>,
    model: Option<String>,
    unpriced_calls: i64,
    /// First and last hour bucket with unpriced calls.
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

/// A price version to write (USD per million tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPrice {
    pub provider: String,
    pub model: String,
    pub aliases: Vec<String>,
    pub effective_from: NaiveDate,
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub reasoning: Option<f64>,
}

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadField {
        field,
        message: message.into(),
    }
}

/// A model name or alias: lowercase (matching ignores case), no whitespace or `/`.
fn model_name(field: &'static str, raw: &str) -> Result<String, ApiError> {
    let n = raw.trim().to_ascii_lowercase();
    if n.is_empty()
        || n.chars().count() > 200
        || n.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(bad(
            field,
            "expected 1 to 200 characters without whitespace or `/`",
        ));
    }
    Ok(n)
}

fn rate(m: &Map<String, Value>, field: &'static str) -> Result<Option<f64>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|r| r.is_finite() && (0.0..=MAX_RATE).contains(r))
            .map(Some)
            .ok_or_else(|| {
                bad(
                    field,
                    format!("expected a number of USD per million tokens, 0 to {MAX_RATE}"),
                )
            }),
    }
}

fn required_rate(m: &Map<String, Value>, field: &'static str) -> Result<f64, ApiError> {
    rate(m, field)?.ok_or_else(|| bad(field, "required: USD per million tokens"))
}

/// The fields a price body may have.
const FIELDS: [&str; 9] = [
    "provider",
    "model",
    "aliases",
    "effective_from",
    "input",
    "output",
    "cache_read",
    "cache_write",
    "reasoning",
];

/// Validate a `POST /v1/admin/prices` body, naming the first bad field.
pub(crate) fn parse_new_price(body: &[u8]) -> Result<NewPrice, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    parse_value(&v)
}

/// Validate a price given as JSON (the admin CLI); the error names the field.
pub fn parse(v: &Value) -> Result<NewPrice, String> {
    parse_value(v).map_err(|e| e.to_string())
}

fn parse_value(v: &Value) -> Result<NewPrice, ApiError> {
    let Value::Object(m) = v else {
        return Err(ApiError::BadJson(
            "expected an object like {\"provider\": ..., \"model\": ..., \"input\": ..., \"output\": ...}"
                .into(),
        ));
    };
    // The org comes from the key, never the body (`org_id` is refused).
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::UnknownField(k.clone()));
    }
    let provider = match m.get("provider") {
        Some(Value::String(p))
            if !p.trim().is_empty()
                && p.trim().chars().count() <= 100
                && !p.chars().any(char::is_control) =>
        {
            p.trim().to_ascii_lowercase()
        }
        _ => return Err(bad("provider", "required: a string of 1 to 100 characters")),
    };
    let model = match m.get("model") {
        Some(Value::String(s)) => model_name("model", s)?,
        _ => return Err(bad("model", "required: a model name such as gpt-4o")),
    };
    let aliases = match m.get("aliases") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_ALIASES => {
            let mut out = Vec::with_capacity(a.len());
            for v in a {
                let Value::String(s) = v else {
                    return Err(bad("aliases", "expected an array of model names"));
                };
                let n = model_name("aliases", s)?;
                if n != model && !out.contains(&n) {
                    out.push(n);
                }
            }
            out
        }
        Some(_) => {
            return Err(bad(
                "aliases",
                format!("expected an array of at most {MAX_ALIASES} model names"),
            ))
        }
    };
    let effective_from = match m.get("effective_from") {
        None | Some(Value::Null) => NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
        Some(Value::String(s)) => s
            .parse::<NaiveDate>()
            .ok()
            .filter(|d| (1970..=2100).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| bad("effective_from", "expected a UTC date YYYY-MM-DD"))?,
        Some(_) => return Err(bad("effective_from", "expected a UTC date YYYY-MM-DD")),
    };
    Ok(NewPrice {
        provider,
        model,
        aliases,
        effective_from,
        input: required_rate(m, "input")?,
        output: required_rate(m, "output")?,
        cache_read: rate(m, "cache_read")?,
        cache_write: rate(m, "cache_write")?,
        reasoning: rate(m, "reasoning")?,
    })
}

const UPSERT: &str = "
INSERT INTO model_prices AS p (org_id, provider, model, aliases, effective_from, input, output,
    cache_read, cache_write, reasoning, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (org_id, model, effective_from) DO UPDATE SET
    provider = EXCLUDED.provider, aliases = EXCLUDED.aliases, input = EXCLUDED.input,
    output = EXCLUDED.output, cache_read = EXCLUDED.cache_read,
    cache_write = EXCLUDED.cache_write, reasoning = EXCLUDED.reasoning,
    created_by = EXCLUDED.created_by, created_at = now()
RETURNING id, (xmax = 0) AS inserted";

/// Another model of the same table (the org's, or the global one) that
/// already answers to one of this price's names (model or alias, any case):
/// the price table would keep the older row and this one would never apply.
pub async fn name_taken(
    pool: &PgPool,
    org: Option<&str>,
    p: &NewPrice,
) -> Result<Option<String>, sqlx::Error> {
    let names: Vec<String> = std::iter::once(&p.model)
        .chain(&p.aliases)
        .map(|n| n.to_ascii_lowercase())
        .collect();
    sqlx::query_scalar(
        "SELECT model FROM model_prices
         WHERE org_id IS NOT DISTINCT FROM $1 AND lower(model) <> lower($2)
           AND (lower(model) = ANY($3)
                OR EXISTS (SELECT 1 FROM unnest(aliases) a WHERE lower(a) = ANY($3)))
         LIMIT 1",
    )
    .bind(org)
    .bind(&p.model)
    .bind(&names)
    .fetch_optional(pool)
    .await
}

/// Write a price version (`org`: None for the global table) and its audit
/// row in one transaction; returns (row id, whether it was new). Audit rows
/// of global prices carry org `*`.
pub async fn set_price(
    pool: &PgPool,
    org: Option<&str>,
    p: &NewPrice,
    actor: &str,
) -> Result<(i64, bool), sqlx::Error> {
    /// The row [`UPSERT`] returns.
    #[derive(sqlx::FromRow)]
    struct Upserted {
        id: i64,
        inserted: bool,
    }
    let mut tx = pool.begin().await?;
    let Upserted { id, inserted } = sqlx::query_as(UPSERT)
        .bind(org)
        .bind(&p.provider)
        .bind(&p.model)
        .bind(&p.aliases)
        .bind(p.effective_from)
        .bind(p.input)
        .bind(p.output)
        .bind(p.cache_read)
        .bind(p.cache_write)
        .bind(p.reasoning)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
    let detail = json!({
        "id": id, "scope": if org.is_some() { "org" } else { "global" }, "replaced": !inserted,
        "provider": p.provider, "model": p.model, "aliases": p.aliases,
        "effective_from": p.effective_from, "input": p.input, "output": p.output,
        "cache_read": p.cache_read, "cache_write": p.cache_write, "reasoning": p.reasoning,
    });
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor, action, detail) VALUES ($1, $2, 'price.set', $3)",
    )
    .bind(org.unwrap_or("*"))
    .bind(actor)
    .bind(detail.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((id, inserted))
}

const SELECT_ROWS: &str =
    "SELECT id, org_id, provider, model, aliases, effective_from, input, output,
    cache_read, cache_write, reasoning, created_by, created_at FROM model_prices";

/// One row of [`SELECT_ROWS`].
#[derive(sqlx::FromRow)]
struct PriceRow {
    id: i64,
    org_id: Option<String>,
    provider: String,
    model: String,
    aliases: Vec<String>,
    effective_from: NaiveDate,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    reasoning: Option<f64>,
    created_by: String,
    created_at: DateTime<Utc>,
}

fn row_json(r: PriceRow) -> Value {
    json!({
        "id": r.id, "scope": if r.org_id.is_some() { "org" } else { "global" },
        "provider": r.provider, "model": r.model, "aliases": r.aliases,
        "effective_from": r.effective_from, "input": r.input, "output": r.output,
        "cache_read": r.cache_read, "cache_write": r.cache_write, "reasoning": r.reasoning,
        "created_by": r.created_by, "created_at": r.created_at,
    })
}

/// The global price rows and this org's, every version.
#[utoipa::path(get, path = "/v1/admin/prices", tag = "prices",
    responses((status = 200, description = "By provider and model, global first", body = Prices)))]
async fn list(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let rows: Vec<PriceRow> = sqlx::query_as(&format!(
        "{SELECT_ROWS} WHERE org_id IS NULL OR org_id = $1
         ORDER BY provider, model, org_id NULLS FIRST, effective_from"
    ))
    .bind(&key.org_id)
    .fetch_all(&s.pool)
    .await?;
    let prices: Vec<Value> = rows.into_iter().map(row_json).collect();
    Ok(Json(json!({ "prices": prices })))
}

/// Add (or replace) a version of a model's prices for this org.
#[utoipa::path(post, path = "/v1/admin/prices", tag = "prices", request_body = PriceBody,
    responses((status = 201, description = "A new version", body = Price),
              (status = 200, description = "The version of that day, replaced", body = Price),
              (status = 409, description = "The name belongs to another model, or a cap is reached", body = ErrorBody)))]
async fn add(
    State(s): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let p = parse_new_price(&body)?;
    let actor = format!("admin:{}", key.key_id);
    if let Some(other) = name_taken(&s.pool, Some(&key.org_id), &p).await? {
        return Err(ApiError::Conflict(format!(
            "model `{}` or one of its aliases is already a name of model `{other}`",
            p.model
        )));
    }
    {
        let mut conn = s.pool.acquire().await?;
        crate::caps::check(
            &mut conn,
            &s.caps,
            &key.org_id,
            "model_prices",
            "true",
            "price row",
        )
        .await?;
    }
    let (id, inserted) = set_price(&s.pool, Some(&key.org_id), &p, &actor).await?;
    let row: PriceRow = sqlx::query_as(&format!("{SELECT_ROWS} WHERE id = $1"))
        .bind(id)
        .fetch_one(&s.pool)
        .await?;
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(row_json(row))))
}

/// One row of the query in [`unknown`]: a model's unpriced calls, first
/// and last hour.
#[derive(sqlx::FromRow)]
struct UnknownRow {
    provider: Option<String>,
    model: Option<String>,
    unpriced_calls: i64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UnknownQuery {
    /// A duration like `15m`, `24h` or `7d` (at most `90d`; default `7d`).
    #[param(pattern = "^[0-9]+[smhd]$", example = "7d")]
    window: Option<String>,
}

/// Models this org used with tokens but no price, most calls first.
#[utoipa::path(get, path = "/v1/prices/unknown", tag = "prices", params(UnknownQuery),
    responses((status = 200, description = "Most unpriced calls first", body = UnknownModels)))]
async fn unknown(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<UnknownQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let window = q.window.as_deref().unwrap_or("7d");
    let secs = crate::window::parse_secs(window).ok_or_else(|| ApiError::BadParam {
        field: "window",
        message: format!("`{window}` is not a duration like 15m, 24h or 7d (at most 90d)"),
    })?;
    let now = Utc::now().timestamp();
    let from = now - secs;
    let start = DateTime::from_timestamp(from - from.rem_euclid(3600), 0).unwrap_or_default();
    let rows: Vec<UnknownRow> = sqlx::query_as(
        "SELECT provider, model, sum(unpriced_calls)::int8 AS unpriced_calls,
                min(bucket) AS first_seen, max(bucket) AS last_seen
             FROM agg_model_1h
             WHERE org_id = $1 AND bucket >= $2 AND unpriced_calls > 0
             GROUP BY provider, model
             ORDER BY unpriced_calls DESC, model, provider",
    )
    .bind(&key.org_id)
    .bind(start)
    .fetch_all(&s.pool)
    .await?;
    let models: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({"provider": r.provider, "model": r.model, "unpriced_calls": r.unpriced_calls,
                   "first_seen": r.first_seen, "last_seen": r.last_seen})
        })
        .collect();
    Ok(Json(json!({"window": window, "models": models})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: &str) -> String {
        match parse_new_price(body.as_bytes()).unwrap_err() {
            ApiError::BadField { field, .. } => field.to_owned(),
            ApiError::UnknownField(f) => format!("unknown:{f}"),
            ApiError::BadJson(_) => "json".into(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_body_parses_and_normalizes_names() {
        let p = parse_new_price(
            br#"{"provider":"OpenAI","model":"GPT-X","aliases":["gpt-x-latest","GPT-X"],
                 "effective_from":"2026-11-01","input":1.5,"output":6,"cache_read":0.15,
                 "cache_write":null,"reasoning":8}"#,
        )
        .unwrap();
        assert_eq!(p.provider, "openai");
        assert_eq!(p.model, "gpt-x");
        assert_eq!(p.aliases, vec!["gpt-x-latest".to_owned()]);
        assert_eq!(p.effective_from.to_string(), "2026-11-01");
        assert_eq!((p.input, p.output), (1.5, 6.0));
        assert_eq!(
            (p.cache_read, p.cache_write, p.reasoning),
            (Some(0.15), None, Some(8.0))
        );
        let minimal =
            parse_new_price(br#"{"provider":"x","model":"m","input":0,"output":0}"#).unwrap();
        assert_eq!(minimal.effective_from.to_string(), "1970-01-01");
        assert!(minimal.aliases.is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let ok = r#""provider":"p","model":"m","input":1,"output":2"#;
        for (body, field) in [
            (format!("{{{ok},\"extra\":1}}"), "unknown:extra"),
            (format!("{{{ok},\"org_id\":\"x\"}}"), "unknown:org_id"),
            (r#"{"model":"m","input":1,"output":2}"#.into(), "provider"),
            (r#"{"provider":"p","input":1,"output":2}"#.into(), "model"),
            (
                r#"{"provider":"p","model":"a b","input":1,"output":2}"#.into(),
                "model",
            ),
            (r#"{"provider":"p","model":"m","output":2}"#.into(), "input"),
            (
                r#"{"provider":"p","model":"m","input":-1,"output":2}"#.into(),
                "input",
            ),
            (
                r#"{"provider":"p","model":"m","input":1,"output":"2"}"#.into(),
                "output",
            ),
            (format!("{{{ok},\"cache_read\":1e9}}"), "cache_read"),
            (format!("{{{ok},\"cache_write\":true}}"), "cache_write"),
            (format!("{{{ok},\"reasoning\":-0.5}}"), "reasoning"),
            (format!("{{{ok},\"aliases\":\"x\"}}"), "aliases"),
            (format!("{{{ok},\"aliases\":[1]}}"), "aliases"),
            (
                format!("{{{ok},\"effective_from\":\"yesterday\"}}"),
                "effective_from",
            ),
            (
                format!("{{{ok},\"effective_from\":\"1900-01-01\"}}"),
                "effective_from",
            ),
            ("[1]".into(), "json"),
            ("{".into(), "json"),
        ] {
            assert_eq!(field_of(&body), field, "{body}");
        }
    }
}
