//! Governance API: the org's notification channels, budgets, alert rules,
//! policies, digest and agent controls (admin scope; every change written
//! to `audit_log`), and the alerts, policy violations and budget status the
//! processors produce (read scope; acknowledging an alert needs admin).
//!
//! Everything is scoped to the key's org: another org's id answers 404,
//! like a missing one. Invalid input answers 400 naming the field
//! (`invalid_field`, `unknown_field` for a field the endpoint does not take,
//! `invalid_json`); a duplicate name answers 409.

mod alerts;
pub(crate) mod budgets;
pub(crate) mod channels;
mod controls;
pub(crate) use controls::reason;
pub(crate) mod crud;
pub(crate) mod docs;
pub(crate) mod fields;
mod policies;
mod rules;

use crate::state::Caller;
use axum::routing::{get, post, put};
use serde_json::Value;
use sqlx::PgConnection;

use crate::error::ApiError;
use crate::routes::{Access, Routes};
use axum::http::Method;
use fields::bad;

/// Every governance route (merged into the API router).
pub(crate) fn routes() -> Routes {
    use Access::*;
    let admin = |m: Method| [(m, Admin)];
    Routes::new()
        .merge(crud::routes("/v1/admin/channels", &channels::CHANNELS))
        .add(
            "/v1/admin/channels/{id}/test",
            &admin(Method::POST),
            post(channels::test),
        )
        .merge(crud::routes("/v1/admin/budgets", &budgets::BUDGETS))
        .merge(crud::routes("/v1/admin/alert-rules", &rules::RULES))
        .merge(crud::routes("/v1/admin/policies", &policies::POLICIES))
        .add(
            "/v1/admin/digest",
            &[
                (Method::PUT, Admin),
                (Method::GET, Admin),
                (Method::DELETE, Admin),
            ],
            put(controls::put_digest)
                .get(controls::get_digest)
                .delete(controls::delete_digest),
        )
        .add(
            "/v1/admin/agents/{agent_id}/pause",
            &admin(Method::POST),
            post(controls::pause),
        )
        .add(
            "/v1/admin/agents/{agent_id}/kill",
            &admin(Method::POST),
            post(controls::kill),
        )
        .add(
            "/v1/admin/agents/{agent_id}/resume",
            &admin(Method::POST),
            post(controls::resume),
        )
        .add("/v1/alerts", &[(Method::GET, Read)], get(alerts::list))
        .add(
            "/v1/alerts/{alert_id}",
            &[(Method::GET, Read)],
            get(alerts::detail),
        )
        .add(
            "/v1/alerts/{alert_id}/ack",
            &admin(Method::POST),
            post(alerts::ack),
        )
        .add(
            "/v1/policy-violations",
            &[(Method::GET, Read)],
            get(alerts::violations),
        )
        .add(
            "/v1/budgets/status",
            &[(Method::GET, Read)],
            get(budgets::status),
        )
}

/// Who did it, as recorded in `audit_log.actor`, `agent_controls.set_by`
/// and `alerts.acked_by`: `admin:<key id>`, or `user:<id>:<email>` for a
/// signed-in member.
pub(crate) fn actor(key: &Caller) -> String {
    key.user_actor()
        .unwrap_or_else(|| format!("admin:{}", key.key_id))
}

/// Append an `audit_log` row (in the caller's transaction).
pub(crate) async fn audit(
    conn: &mut PgConnection,
    key: &Caller,
    action: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    audit_as(conn, &key.org_id, &actor(key), action, detail).await
}

/// [`audit`] by an actor that is not a request's key (the admin CLI).
pub(crate) async fn audit_as(
    conn: &mut PgConnection,
    org: &str,
    actor: &str,
    action: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (org_id, actor, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(org)
        .bind(actor)
        .bind(action)
        .bind(detail.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// A path id: not a UUID is as missing as an unknown one.
pub(crate) fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

pub(crate) fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// Every id must be a channel of the org. The rows are locked against a
/// concurrent delete until the caller's transaction ends, so a channel
/// delete (which removes its id from every list) cannot miss this write.
pub(crate) async fn check_channels(
    conn: &mut PgConnection,
    org: &str,
    ids: &[uuid::Uuid],
) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM notification_channels WHERE org_id = $1 AND id = ANY($2) FOR KEY SHARE",
    )
    .bind(org)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    match ids.iter().find(|id| !found.contains(id)) {
        None => Ok(()),
        Some(missing) => Err(bad(
            "channels",
            format!("no channel `{missing}` in this org"),
        )),
    }
}
