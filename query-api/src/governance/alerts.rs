//! Alerts and policy violations, as the processors recorded them.
//!
//! - `GET /v1/alerts?state=firing|acknowledged|resolved&limit=50` (read):
//!   newest first.
//! - `GET /v1/alerts/{alert_id}` (read): with its `history` (state changes,
//!   oldest first) and `deliveries` (per channel and transition).
//! - `POST /v1/alerts/{alert_id}/ack` `{note?}` (admin: it changes state
//!   others rely on): firing → acknowledged; an acknowledged or resolved
//!   alert answers 409.
//! - `GET /v1/policy-violations?limit=50&agent_id=` (read): newest first,
//!   with the offending event.

use crate::params::Query;
use agentops_runtime::keys::Scope;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgConnection;
use utoipa::IntoParams;

use super::fields::{bad, opt_str, parse_body};
use super::{actor, audit};
use crate::error::ApiError;
use crate::params::limit_param;
use crate::state::{authenticate, authorize, Permission, Shared};

/// A timestamptz column as RFC 3339 UTC (`...Z`), NULL stays NULL.
fn ts(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

fn alert_json() -> String {
    format!(
        "jsonb_build_object(
            'alert_id', a.alert_id, 'source', a.source, 'source_id', a.source_id,
            'kind', a.kind, 'scope_key', a.scope_key, 'state', a.state, 'severity', a.severity,
            'period', a.period, 'threshold', a.threshold, 'value', a.value, 'message', a.message,
            'details', a.details, 'channels', a.channels,
            'created_at', {}, 'notified_at', {}, 'acked_at', {}, 'acked_by', a.acked_by,
            'resolved_at', {})",
        ts("a.created_at"),
        ts("a.notified_at"),
        ts("a.acked_at"),
        ts("a.resolved_at"),
    )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertsQuery {
    /// Only alerts in this state.
    #[param(value_type = Option<super::docs::AlertState>)]
    state: Option<String>,
    /// Rows, 1 to 500 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
}

/// The org's alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertsQuery),
    responses((status = 200, description = "Newest first", body = super::docs::Alerts)))]
pub(crate) async fn list(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let limit = limit_param(q.limit.as_deref(), 50, 500)?;
    if let Some(st) = q.state.as_deref() {
        if !["firing", "acknowledged", "resolved"].contains(&st) {
            return Err(ApiError::BadParam {
                field: "state",
                message: format!("`{st}` is not one of firing, acknowledged, resolved"),
            });
        }
    }
    let sql = format!(
        "SELECT {} FROM alerts a
         WHERE a.org_id = $1 AND ($2::text IS NULL OR a.state = $2)
         ORDER BY a.created_at DESC, a.alert_id LIMIT $3",
        alert_json()
    );
    let alerts: Vec<Value> = sqlx::query_scalar(&sql)
        .bind(&key.org_id)
        .bind(q.state)
        .bind(limit)
        .fetch_all(&s.pool)
        .await?;
    Ok(Json(json!({ "alerts": alerts })))
}

async fn fetch_detail(conn: &mut PgConnection, org: &str, id: &str) -> Result<Value, ApiError> {
    let sql = format!(
        "SELECT {} FROM alerts a WHERE a.org_id = $1 AND a.alert_id = $2",
        alert_json()
    );
    let mut alert: Value = sqlx::query_scalar(&sql)
        .bind(org)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ApiError::NotFound)?;
    let history: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT jsonb_build_object('state', h.state, 'actor', h.actor, 'note', h.note,
                                   'at', {})
         FROM alert_history h WHERE h.alert_id = $1 ORDER BY h.at, h.id",
        ts("h.at")
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let deliveries: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT jsonb_build_object('channel_id', d.channel_id, 'channel_name', c.name,
                    'channel_kind', c.kind, 'transition', d.transition, 'attempts', d.attempts,
                    'delivered_at', {}, 'dead_lettered_at', {}, 'last_error', d.last_error)
         FROM alert_deliveries d
         LEFT JOIN notification_channels c ON c.id = d.channel_id AND c.org_id = $2
         WHERE d.alert_id = $1 ORDER BY d.transition, c.name, d.channel_id",
        ts("d.delivered_at"),
        ts("d.dead_lettered_at")
    ))
    .bind(id)
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    alert["history"] = Value::Array(history);
    alert["deliveries"] = Value::Array(deliveries);
    Ok(alert)
}

/// An alert with its history and deliveries.
#[utoipa::path(get, path = "/v1/alerts/{alert_id}", tag = "alerts",
    params(("alert_id" = String, Path, description = "The alert's id")),
    responses((status = 200, description = "The alert", body = super::docs::AlertDetail)))]
pub(crate) async fn detail(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let id = crate::params::identifier("alert_id", &id)?;
    let mut conn = s.pool.acquire().await?;
    Ok(Json(fetch_detail(&mut conn, &key.org_id, id).await?))
}

/// `{note?}`: at most 1000 characters.
fn note(body: &[u8]) -> Result<Option<String>, ApiError> {
    let m = parse_body(body, &["note"])?;
    match opt_str(&m, "note")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) if n.chars().count() > 1000 => Err(bad("note", "at most 1000 characters")),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Acknowledge a firing alert.
#[utoipa::path(post, path = "/v1/alerts/{alert_id}/ack", tag = "alerts",
    params(("alert_id" = String, Path, description = "The alert's id")),
    request_body = super::docs::NoteBody,
    responses((status = 200, description = "The acknowledged alert", body = super::docs::AlertDetail),
              (status = 409, description = "Already acknowledged, or resolved", body = agentops_runtime::openapi::ErrorBody)))]
pub(crate) async fn ack(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = authorize(&s, &headers, Permission::Acknowledge).await?;
    crate::params::identifier("alert_id", &id)?;
    let note = note(&body)?;
    let who = actor(&key);
    let mut tx = s.pool.begin().await?;
    #[derive(sqlx::FromRow)]
    struct AckState {
        state: String,
        acked_by: Option<String>,
    }
    let AckState { state, acked_by } = sqlx::query_as(
        "SELECT state, acked_by FROM alerts WHERE org_id = $1 AND alert_id = $2 FOR UPDATE",
    )
    .bind(&key.org_id)
    .bind(&id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound)?;
    match state.as_str() {
        "firing" => {}
        "acknowledged" => {
            return Err(ApiError::Conflict(format!(
                "alert `{id}` is already acknowledged (by {})",
                acked_by.as_deref().unwrap_or("someone")
            )))
        }
        _ => {
            return Err(ApiError::Conflict(format!(
                "alert `{id}` is {state}; only a firing alert can be acknowledged"
            )))
        }
    }
    sqlx::query(
        "UPDATE alerts SET state = 'acknowledged', acked_at = now(), acked_by = $3
         WHERE org_id = $1 AND alert_id = $2",
    )
    .bind(&key.org_id)
    .bind(&id)
    .bind(&who)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO alert_history (alert_id, state, actor, note) VALUES ($1, 'acknowledged', $2, $3)",
    )
    .bind(&id)
    .bind(&who)
    .bind(&note)
    .execute(&mut *tx)
    .await?;
    audit(
        &mut tx,
        &key,
        "alert.ack",
        json!({"alert_id": id, "note": note}),
    )
    .await?;
    let out = fetch_detail(&mut tx, &key.org_id, &id).await?;
    tx.commit().await?;
    tracing::info!(org_id = %key.org_id, alert_id = %id, "alert acknowledged");
    Ok(Json(out))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ViolationsQuery {
    /// Rows, 1 to 500 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Only this agent's.
    agent_id: Option<String>,
}

/// Policy violations, newest first.
#[utoipa::path(get, path = "/v1/policy-violations", tag = "alerts", params(ViolationsQuery),
    responses((status = 200, description = "Newest first", body = super::docs::Violations)))]
pub(crate) async fn violations(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<ViolationsQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let limit = limit_param(q.limit.as_deref(), 50, 500)?;
    let rows: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT jsonb_build_object('policy_id', v.policy_id, 'policy_name', p.name,
                    'policy_kind', p.kind, 'event_id', v.event_id, 'agent_id', v.agent_id,
                    'run_id', v.run_id, 'timestamp', {}, 'action', v.action,
                    'detail', v.detail, 'event', v.event, 'recorded_at', {})
         FROM policy_violations v
         LEFT JOIN policies p ON p.id = v.policy_id AND p.org_id = v.org_id
         WHERE v.org_id = $1 AND ($2::text IS NULL OR v.agent_id = $2)
         ORDER BY v.ts DESC, v.event_id LIMIT $3",
        ts("v.ts"),
        ts("v.recorded_at")
    ))
    .bind(&key.org_id)
    .bind(match q.agent_id.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(crate::params::identifier("agent_id", a)?.to_owned()),
        None => None,
    })
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    let violations = rows;
    Ok(Json(json!({ "violations": violations })))
}
