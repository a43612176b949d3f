//! Invitations to join an org with a role: created by an owner or admin,
//! answered once with a token (only its SHA-256 is stored), accepted by
//! creating the user or adding the membership. Every step is audited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::audit;
use crate::people::{self, Role};
use crate::sessions::{random_token, token_hash};
use agentops_runtime::Result;

/// An invitation as listed (never its token).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub org_id: String,
    pub email: String,
    pub role: String,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, org_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

/// Create an invitation, audited as `invitation.create`; the raw token is
/// returned only here.
pub async fn create_invitation(
    conn: &mut PgConnection,
    org_id: &str,
    email: &str,
    role: Role,
    actor: &str,
    lifetime: chrono::Duration,
) -> Result<(Invitation, String)> {
    let token = format!("aoi_{}", random_token());
    let inv: Invitation = sqlx::query_as(&format!(
        "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 second') RETURNING {COLUMNS}"
    ))
    .bind(uuid::Uuid::new_v4())
    .bind(org_id)
    .bind(email)
    .bind(role.as_str())
    .bind(token_hash(&token))
    .bind(actor)
    .bind(lifetime.num_seconds() as f64)
    .fetch_one(&mut *conn)
    .await?;
    let detail = json!({"invitation_id": inv.id, "email": email, "role": role.as_str(),
                        "expires_at": inv.expires_at});
    audit(conn, org_id, actor, "invitation.create", &detail).await?;
    Ok((inv, token))
}

/// An org's invitations, newest first (at most 500).
pub async fn list_invitations(pool: &PgPool, org_id: &str) -> Result<Vec<Invitation>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE org_id = $1
         ORDER BY created_at DESC, id LIMIT 500"
    ))
    .bind(org_id)
    .fetch_all(pool)
    .await?)
}

/// Revoke a pending invitation, audited as `invitation.revoke`; whether one
/// was revoked.
pub async fn revoke_invitation(
    conn: &mut PgConnection,
    org_id: &str,
    id: uuid::Uuid,
    actor: &str,
) -> Result<bool> {
    let done: Option<Invitation> = sqlx::query_as(&format!(
        "UPDATE invitations SET revoked_at = now()
         WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL AND accepted_at IS NULL
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(inv) = &done {
        let detail = json!({"invitation_id": id, "email": inv.email, "role": inv.role});
        audit(conn, org_id, actor, "invitation.revoke", &detail).await?;
    }
    Ok(done.is_some())
}

/// A pending (not accepted, revoked or expired) invitation by raw token,
/// locked for the caller's transaction.
pub async fn pending_by_token(conn: &mut PgConnection, token: &str) -> Result<Option<Invitation>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations
         WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL
           AND expires_at > now() FOR UPDATE"
    ))
    .bind(token_hash(token))
    .fetch_optional(conn)
    .await?)
}

/// What accepting did.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// The membership (and, when `new_user`, the user) now exists.
    Joined {
        user_id: uuid::Uuid,
        org_id: String,
        role: Role,
        new_user: bool,
    },
    /// The user was already a member of the org; nothing written.
    AlreadyMember,
}

/// Accept a locked pending invitation ([`pending_by_token`]): the user of
/// its email (`existing`, checked by the caller) gets the membership, or a
/// new user is created with `name` and `password_hash`. Audited as
/// `invitation.accept` and `member.add` by `user:<id>`.
pub async fn accept(
    conn: &mut PgConnection,
    inv: &Invitation,
    existing: Option<uuid::Uuid>,
    name: &str,
    password_hash: &str,
) -> Result<Accepted> {
    let role = Role::parse(&inv.role).unwrap_or(Role::Viewer);
    let (user_id, new_user) = match existing {
        Some(id) => (id, false),
        None => match people::insert_user(conn, &inv.email, name, password_hash).await? {
            Some(u) => (u.id, true),
            None => return Ok(Accepted::AlreadyMember),
        },
    };
    let actor = format!("user:{user_id}");
    if !people::add_member(conn, &inv.org_id, user_id, role, &actor).await? {
        return Ok(Accepted::AlreadyMember);
    }
    sqlx::query("UPDATE invitations SET accepted_at = now() WHERE id = $1")
        .bind(inv.id)
        .execute(&mut *conn)
        .await?;
    let detail = json!({"invitation_id": inv.id, "user_id": user_id, "email": inv.email,
                        "role": role.as_str(), "new_user": new_user});
    audit(conn, &inv.org_id, &actor, "invitation.accept", &detail).await?;
    Ok(Accepted::Joined {
        user_id,
        org_id: inv.org_id.clone(),
        role,
        new_user,
    })
}
