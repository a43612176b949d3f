//! Agent controls (`POST /v1/admin/agents/{agent_id}/pause|kill|resume`)
//! and the daily digest subscription (`/v1/admin/digest`).
//!
//! Pause and kill upsert the agent's `agent_controls` row (set_by
//! `admin:<key id>`; the agent need not have been seen yet); resume deletes
//! it (`resumed: false` when there was nothing to resume). The agent's status
//! in `GET /v1/agents` follows at once.

use agentops_governance::controls::{self, ControlAction};
use agentops_runtime::keys::Scope;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::fields::{bad, channel_ids, opt_int, opt_str, parse_body, present};
use super::{actor, audit, check_channels};
use crate::error::ApiError;
use crate::state::{authenticate, Shared};

const MAX_REASON: usize = 1000;

fn agent_id(raw: &str) -> Result<&str, ApiError> {
    crate::params::identifier("agent_id", raw)
}

/// `{reason?}`: at most 1000 characters.
pub(crate) fn reason(body: &[u8], default: &str) -> Result<String, ApiError> {
    let m = parse_body(body, &["reason"])?;
    match opt_str(&m, "reason")?
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        None => Ok(default.to_owned()),
        Some(r) if r.chars().count() <= MAX_REASON => Ok(r.to_owned()),
        Some(_) => Err(bad("reason", "at most 1000 characters")),
    }
}

async fn set_control(
    s: Shared,
    headers: HeaderMap,
    agent: String,
    body: Bytes,
    action: ControlAction,
) -> Result<Json<Value>, ApiError> {
    let State(s) = s;
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let agent = agent_id(&agent)?;
    let default = match action {
        ControlAction::Kill => "killed by an admin",
        ControlAction::Pause => "paused by an admin",
    };
    let reason = reason(&body, default)?;
    let mut tx = s.pool.begin().await?;
    let set_at =
        controls::set_by_operator(&mut *tx, &key.org_id, agent, action, &reason, &actor(&key))
            .await?;
    audit(
        &mut tx,
        &key,
        &format!("agent.{action}"),
        json!({"agent_id": agent, "reason": reason}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(org_id = %key.org_id, agent_id = %agent, action = action.as_str(), "agent control set");
    Ok(Json(json!({
        "agent_id": agent, "status": action.status(), "reason": reason,
        "set_by": actor(&key), "set_at": set_at,
    })))
}

/// `POST /v1/admin/agents/{agent_id}/pause` `{reason?}`.
#[utoipa::path(post, path = "/v1/admin/agents/{agent_id}/pause", tag = "agents",
    params(("agent_id" = String, Path, description = "The agent's id (need not have been seen yet)")),
    request_body = super::docs::ReasonBody,
    responses((status = 200, description = "Paused", body = super::docs::ControlSet)))]
pub(crate) async fn pause(
    s: Shared,
    headers: HeaderMap,
    Path(agent): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_control(s, headers, agent, body, ControlAction::Pause).await
}

/// `POST /v1/admin/agents/{agent_id}/kill` `{reason?}`.
#[utoipa::path(post, path = "/v1/admin/agents/{agent_id}/kill", tag = "agents",
    params(("agent_id" = String, Path, description = "The agent's id (need not have been seen yet)")),
    request_body = super::docs::ReasonBody,
    responses((status = 200, description = "Killed", body = super::docs::ControlSet)))]
pub(crate) async fn kill(
    s: Shared,
    headers: HeaderMap,
    Path(agent): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_control(s, headers, agent, body, ControlAction::Kill).await
}

/// `POST /v1/admin/agents/{agent_id}/resume` `{reason?}` (audited with the
/// lifted control).
#[utoipa::path(post, path = "/v1/admin/agents/{agent_id}/resume", tag = "agents",
    params(("agent_id" = String, Path, description = "The agent's id")),
    request_body = super::docs::ReasonBody,
    responses((status = 200, description = "Resumed (or nothing to resume)", body = super::docs::Resumed)))]
pub(crate) async fn resume(
    State(s): Shared,
    headers: HeaderMap,
    Path(agent): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let agent = agent_id(&agent)?;
    let reason = reason(&body, "resumed by an admin")?;
    let mut tx = s.pool.begin().await?;
    let previous = controls::clear(&mut *tx, &key.org_id, agent).await?;
    if let Some(controls::Cleared { action, set_by }) = &previous {
        audit(
            &mut tx,
            &key,
            "agent.resume",
            json!({"agent_id": agent, "was": action, "set_by": set_by, "reason": reason}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(json!({
        "agent_id": agent,
        "resumed": previous.is_some(),
        "previous": previous.map(|c| c.action),
    })))
}

#[derive(sqlx::FromRow)]
struct DigestRow {
    channels: Vec<uuid::Uuid>,
    hour_utc: i32,
    created_at: DateTime<Utc>,
}

fn digest_json(org: &str, r: DigestRow) -> Value {
    json!({"org_id": org, "channels": r.channels, "hour_utc": r.hour_utc, "created_at": r.created_at})
}

/// `PUT /v1/admin/digest` `{channels?, hour_utc?}`: subscribe (or change
/// the subscription; absent fields keep their value, default: every
/// channel, 06 UTC).
#[utoipa::path(put, path = "/v1/admin/digest", tag = "governance",
    request_body = super::docs::DigestBody,
    responses((status = 200, description = "The subscription", body = super::docs::Digest)))]
pub(crate) async fn put_digest(
    State(s): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let m = parse_body(&body, &["channels", "hour_utc"])?;
    let channels = match present(&m, "channels") {
        Some(_) => Some(channel_ids(&m)?),
        None => None,
    };
    let hour = opt_int(&m, "hour_utc", 0, 23)?;
    let mut tx = s.pool.begin().await?;
    check_channels(
        &mut tx,
        &key.org_id,
        channels.as_deref().unwrap_or_default(),
    )
    .await?;
    let row: DigestRow = sqlx::query_as(
        "INSERT INTO digest_subscriptions (org_id, channels, hour_utc)
         VALUES ($1, COALESCE($2, '{}'), COALESCE($3, 6))
         ON CONFLICT (org_id) DO UPDATE
             SET channels = COALESCE($2, digest_subscriptions.channels),
                 hour_utc = COALESCE($3, digest_subscriptions.hour_utc)
         RETURNING channels, hour_utc, created_at",
    )
    .bind(&key.org_id)
    .bind(channels)
    .bind(hour.map(|h| h as i32))
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        &key,
        "digest.update",
        json!({"channels": row.channels, "hour_utc": row.hour_utc}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(digest_json(&key.org_id, row)))
}

/// `GET /v1/admin/digest`: the subscription, 404 when there is none.
#[utoipa::path(get, path = "/v1/admin/digest", tag = "governance",
    responses((status = 200, description = "The subscription", body = super::docs::Digest),
              (status = 404, description = "Not subscribed", body = agentops_runtime::openapi::ErrorBody)))]
pub(crate) async fn get_digest(
    State(s): Shared,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let row: DigestRow = sqlx::query_as(
        "SELECT channels, hour_utc, created_at FROM digest_subscriptions WHERE org_id = $1",
    )
    .bind(&key.org_id)
    .fetch_optional(&s.pool)
    .await?
    .ok_or(ApiError::NotFound)?;
    Ok(Json(digest_json(&key.org_id, row)))
}

/// `DELETE /v1/admin/digest`: unsubscribe, 404 when not subscribed.
#[utoipa::path(delete, path = "/v1/admin/digest", tag = "governance",
    responses((status = 204, description = "Unsubscribed"),
              (status = 404, description = "Not subscribed", body = agentops_runtime::openapi::ErrorBody)))]
pub(crate) async fn delete_digest(
    State(s): Shared,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let mut tx = s.pool.begin().await?;
    let gone = sqlx::query("DELETE FROM digest_subscriptions WHERE org_id = $1")
        .bind(&key.org_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ApiError::NotFound);
    }
    audit(&mut tx, &key, "digest.delete", json!({})).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
