//! Members and invitations over the API.
//!
//! - `GET /v1/admin/members` (admins and owners, admin keys)
//! - `PUT /v1/admin/members/{user_id}` `{role}`, `DELETE /v1/admin/members/{user_id}`
//!   (owners, admin keys): the last owner can be neither demoted nor
//!   removed (409); a removed member's sessions in the org end at once
//! - `GET|POST /v1/admin/invitations` `{email, role}`,
//!   `DELETE /v1/admin/invitations/{id}` (admins and owners, admin keys;
//!   an admin may not invite an owner): the token is answered once
//! - `POST /v1/auth/accept-invitation` `{token, name, password}` (public):
//!   creates the user (password at least 12 characters) or, when the email
//!   already has one, adds the membership (the password must be theirs)
//!
//! Every change is audited (`member.role`, `member.remove`, `member.add`,
//! `invitation.create|revoke|accept`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Json;
use serde_json::{json, Value};

use agentops_tenancy::invitations::{self, Accepted};
use agentops_tenancy::people::{self, MemberChange, Role};

use agentops_runtime::openapi::ErrorBody;
use utoipa::ToSchema;

use crate::auth::req_str;
use crate::error::ApiError;
use crate::governance::fields::{bad, parse_body};
use crate::routes::{Access, Routes};
use crate::state::{authorize, Caller, Permission, Shared};

pub(crate) fn routes() -> Routes {
    use Access::*;
    Routes::new()
        .add("/v1/admin/members", &[(Method::GET, Admin)], get(list))
        .add(
            "/v1/admin/members/{user_id}",
            &[(Method::PUT, Admin), (Method::DELETE, Admin)],
            put(set_role).delete(remove),
        )
        .add(
            "/v1/admin/invitations",
            &[(Method::GET, Admin), (Method::POST, Admin)],
            get(list_invitations).post(invite),
        )
        .add(
            "/v1/admin/invitations/{id}",
            &[(Method::DELETE, Admin)],
            delete(revoke_invitation),
        )
        .add(
            "/v1/auth/accept-invitation",
            &[(Method::POST, Public)],
            post(accept),
        )
}

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    set_role,
    remove,
    list_invitations,
    invite,
    revoke_invitation,
    accept
))]
pub(crate) struct Doc;

/// `GET /v1/admin/members`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `list`.
struct Members {
    org_id: String,
    members: Vec<people::Member>,
}

/// `PUT /v1/admin/members/{user_id}` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct RoleBody {
    role: Role,
}

/// `GET /v1/admin/invitations`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `list_invitations`.
struct Invitations {
    org_id: String,
    invitations: Vec<invitations::Invitation>,
}

/// `POST /v1/admin/invitations` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct InviteBody {
    email: String,
    role: Role,
}

/// A created invitation, with its token (shown only here).
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Describes the answer built in `invite`.
struct CreatedInvitation {
    #[serde(flatten)]
    invitation: invitations::Invitation,
    token: String,
}

/// `DELETE /v1/admin/invitations/{id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `revoke_invitation`.
struct RevokedInvitation {
    id: uuid::Uuid,
    revoked: bool,
}

/// `POST /v1/auth/accept-invitation` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
struct AcceptBody {
    token: String,
    /// Required for a new user (at most 200 characters).
    name: Option<String>,
    /// At least 12 characters for a new user; an existing user's own password.
    password: String,
}

/// `POST /v1/auth/accept-invitation`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `accept`.
struct AcceptedInvitation {
    user_id: uuid::Uuid,
    email: String,
    org_id: String,
    role: Role,
    new_user: bool,
}

fn actor(c: &Caller) -> String {
    crate::tenancy::actor(c)
}

/// A path id: anything but a UUID is as missing as an unknown one.
fn path_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::NotFound)
}

fn role_field(obj: &serde_json::Map<String, Value>) -> Result<Role, ApiError> {
    let raw = req_str(obj, "role")?;
    Role::parse(&raw).ok_or_else(|| bad("role", "one of owner, admin, member, viewer"))
}

/// `GET /v1/admin/members`.
#[utoipa::path(get, path = "/v1/admin/members", tag = "people",
    responses((status = 200, description = "The org's members", body = Members)))]
async fn list(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let c = authorize(&s, &headers, Permission::Configure).await?;
    let members = people::list_members(&s.pool, &c.org_id).await?;
    Ok(Json(json!({ "org_id": c.org_id, "members": members })))
}

fn changed(outcome: MemberChange) -> Result<Json<Value>, ApiError> {
    match outcome {
        MemberChange::Done(m) => Ok(Json(json!(m))),
        MemberChange::NotFound => Err(ApiError::NotFound),
        MemberChange::LastOwner => Err(ApiError::Conflict(
            "the org's last owner can be neither demoted nor removed: make another member owner first"
                .into(),
        )),
    }
}

/// `PUT /v1/admin/members/{user_id}` `{role}`.
#[utoipa::path(put, path = "/v1/admin/members/{user_id}", tag = "people",
    params(("user_id" = String, Path, description = "The member's user id (a UUID)")),
    request_body = RoleBody,
    responses((status = 200, description = "The member with the new role", body = people::Member),
              (status = 409, description = "The last owner cannot be demoted", body = ErrorBody)))]
async fn set_role(
    State(s): Shared,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let c = authorize(&s, &headers, Permission::ManageAccess).await?;
    let user_id = path_id(&user_id)?;
    let role = role_field(&parse_body(&body, &["role"])?)?;
    let mut tx = s.pool.begin().await?;
    let outcome = people::set_role(&mut tx, &c.org_id, user_id, role, &actor(&c)).await?;
    tx.commit().await?;
    tracing::info!(org_id = %c.org_id, %user_id, role = role.as_str(), actor = %actor(&c), "member role set");
    changed(outcome)
}

/// `DELETE /v1/admin/members/{user_id}`.
#[utoipa::path(delete, path = "/v1/admin/members/{user_id}", tag = "people",
    params(("user_id" = String, Path, description = "The member's user id (a UUID)")),
    responses((status = 200, description = "The removed member", body = people::Member),
              (status = 409, description = "The last owner cannot be removed", body = ErrorBody)))]
async fn remove(
    State(s): Shared,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = authorize(&s, &headers, Permission::ManageAccess).await?;
    let user_id = path_id(&user_id)?;
    let mut tx = s.pool.begin().await?;
    let outcome = people::remove_member(&mut tx, &c.org_id, user_id, &actor(&c)).await?;
    tx.commit().await?;
    tracing::info!(org_id = %c.org_id, %user_id, actor = %actor(&c), "member removed");
    changed(outcome)
}

/// `GET /v1/admin/invitations`: newest first, never a token.
#[utoipa::path(get, path = "/v1/admin/invitations", tag = "people",
    responses((status = 200, description = "Newest first", body = Invitations)))]
async fn list_invitations(State(s): Shared, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let c = authorize(&s, &headers, Permission::Configure).await?;
    let list = invitations::list_invitations(&s.pool, &c.org_id).await?;
    Ok(Json(json!({ "org_id": c.org_id, "invitations": list })))
}

/// `POST /v1/admin/invitations` `{email, role}`: 201 with the token.
#[utoipa::path(post, path = "/v1/admin/invitations", tag = "people", request_body = InviteBody,
    responses((status = 201, description = "The invitation and its token (shown once)", body = CreatedInvitation),
              (status = 409, description = "A cap is reached or the email is invited already", body = ErrorBody)))]
async fn invite(State(s): Shared, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let c = authorize(&s, &headers, Permission::Configure).await?;
    let obj = parse_body(&body, &["email", "role"])?;
    let email = people::normalize_email(&req_str(&obj, "email")?)
        .ok_or_else(|| bad("email", "not an email address"))?;
    let role = role_field(&obj)?;
    if let Some(session) = &c.session {
        if role == Role::Owner && session.role != Role::Owner {
            return Err(ApiError::RoleForbidden {
                role: session.role.as_str(),
                what: "inviting an owner",
            });
        }
    }
    let mut tx = s.pool.begin().await?;
    let (inv, token) = invitations::create_invitation(
        &mut tx,
        &c.org_id,
        &email,
        role,
        &actor(&c),
        s.auth.invitation_lifetime(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(org_id = %c.org_id, invitation_id = %inv.id, role = role.as_str(), actor = %actor(&c), "invitation created");
    let mut answer = json!(inv);
    answer["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `DELETE /v1/admin/invitations/{id}`: 404 unless pending in the org.
#[utoipa::path(delete, path = "/v1/admin/invitations/{id}", tag = "people",
    params(("id" = String, Path, description = "The invitation's id (a UUID)")),
    responses((status = 200, description = "Revoked", body = RevokedInvitation)))]
async fn revoke_invitation(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = authorize(&s, &headers, Permission::Configure).await?;
    let id = path_id(&id)?;
    let mut tx = s.pool.begin().await?;
    let done = invitations::revoke_invitation(&mut tx, &c.org_id, id, &actor(&c)).await?;
    tx.commit().await?;
    if !done {
        return Err(ApiError::NotFound);
    }
    Ok(Json(json!({ "id": id, "revoked": true })))
}

/// `POST /v1/auth/accept-invitation` `{token, name, password}`.
#[utoipa::path(post, path = "/v1/auth/accept-invitation", tag = "people", request_body = AcceptBody,
    responses((status = 200, description = "Joined the org", body = AcceptedInvitation),
              (status = 401, description = "The email has a user and this is not its password", body = ErrorBody),
              (status = 409, description = "Already a member", body = ErrorBody)))]
async fn accept(State(s): Shared, body: Bytes) -> Result<Json<Value>, ApiError> {
    let obj = parse_body(&body, &["token", "name", "password"])?;
    let token = req_str(&obj, "token")?;
    let password = req_str(&obj, "password")?;
    if let Some(problem) = people::password_problem(&password) {
        return Err(bad("password", problem));
    }
    let name = crate::auth::opt_string(&obj, "name")?
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    if name.chars().count() > 200 {
        return Err(bad("name", "at most 200 characters"));
    }
    let mut tx = s.pool.begin().await?;
    let inv = invitations::pending_by_token(&mut tx, &token)
        .await?
        .ok_or_else(|| bad("token", "unknown, expired, revoked or already used"))?;
    let existing = people::user_by_email(&mut tx, &inv.email).await?;
    let (existing_id, hash) = match existing {
        Some(u) => {
            if !people::verify_password_blocking(Some(u.password_hash), password).await {
                return Err(ApiError::BadCredentials);
            }
            (Some(u.id), String::new())
        }
        None => {
            if name.is_empty() {
                return Err(bad("name", "required"));
            }
            (None, people::hash_password_blocking(password).await?)
        }
    };
    let outcome = invitations::accept(&mut tx, &inv, existing_id, &name, &hash).await?;
    match outcome {
        Accepted::Joined {
            user_id,
            org_id,
            role,
            new_user,
        } => {
            tx.commit().await?;
            tracing::info!(%user_id, org_id, role = role.as_str(), new_user, "invitation accepted");
            Ok(Json(json!({
                "user_id": user_id, "email": inv.email, "org_id": org_id,
                "role": role, "new_user": new_user,
            })))
        }
        Accepted::AlreadyMember => Err(ApiError::Conflict(format!(
            "{} is already a member of org `{}`",
            inv.email, inv.org_id
        ))),
    }
}
