//! People: users with argon2id passwords, their memberships in orgs with a
//! [`Role`], and invitations. Every membership or role change and every
//! invitation writes an `audit_log` row in the same transaction.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::audit;
use agentops_runtime::Result;

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (hashing is bounded).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// What a member may do in an org, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything of the org.
    Viewer,
    /// Reads, and acknowledges alerts.
    Member,
    /// Also manages configuration (budgets, rules, channels, policies,
    /// prices) and agents (pause, kill, resume).
    Admin,
    /// Also manages members, invitations and API keys.
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// An email as stored: trimmed and lower-cased; `None` when it cannot be
/// an address (no `@` between two non-empty parts, blanks, over 254).
pub fn normalize_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(e)
}

/// Why a password is refused, or `None` when it is acceptable.
pub fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Some(format!("at least {MIN_PASSWORD_CHARS} characters"));
    }
    if n > MAX_PASSWORD_CHARS {
        return Some(format!("at most {MAX_PASSWORD_CHARS} characters"));
    }
    None
}

/// The argon2id hash (PHC string, default parameters) of a password. CPU
/// heavy: call it from async code through `spawn_blocking`
/// ([`hash_password_blocking`]).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| agentops_runtime::Error::Incomplete(format!("password hashing: {e}")))
}

/// Whether `password` matches the stored hash (false on a malformed hash).
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_password_blocking(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| agentops_runtime::Error::Incomplete(format!("password hashing: {e}")))?
}

/// [`verify_password`] on the blocking pool; `stored: None` (no such user)
/// still spends the time of one verification, so a wrong email and a wrong
/// password take as long.
pub async fn verify_password_blocking(stored: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || match stored {
        Some(h) => verify_password(&h, &password),
        None => {
            verify_password(dummy_hash(), &password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// A valid hash of a random password, computed once.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&crate::sessions::random_token()).unwrap_or_default())
}

/// A user as answered (never the password hash).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A user with the hash, for sign-in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserCredentials {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A member of an org as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: uuid::Uuid,
    email: String,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
}

impl MemberRow {
    fn into_member(self) -> Member {
        Member {
            user_id: self.user_id,
            email: self.email,
            name: self.name,
            // The table's check admits only the four roles.
            role: Role::parse(&self.role).unwrap_or(Role::Viewer),
            created_at: self.created_at,
        }
    }
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.created_at
     FROM memberships m JOIN users u ON u.id = m.user_id";

pub async fn user_by_email(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<UserCredentials>> {
    Ok(sqlx::query_as(
        "SELECT id, email, name, password_hash, disabled_at FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// Insert a user (email normalized by the caller, password already
/// hashed); `None` when the email is taken. Not audited by itself: a user
/// matters to an org through [`add_member`], which is.
pub async fn insert_user(
    conn: &mut PgConnection,
    email: &str,
    name: &str,
    password_hash: &str,
) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING
         RETURNING id, email, name, created_at, disabled_at",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .fetch_optional(conn)
    .await?)
}

/// The user's role in the org, if a member.
pub async fn role_in(
    conn: &mut PgConnection,
    org_id: &str,
    user_id: uuid::Uuid,
) -> Result<Option<Role>> {
    let r: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(r.as_deref().and_then(Role::parse))
}

/// The user's first org (oldest membership), for a sign-in naming none.
pub async fn first_org(conn: &mut PgConnection, user_id: uuid::Uuid) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT org_id FROM memberships WHERE user_id = $1 ORDER BY created_at, org_id LIMIT 1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// Add a membership, audited as `member.add`; `false` (nothing written)
/// when the user is already a member.
pub async fn add_member(
    conn: &mut PgConnection,
    org_id: &str,
    user_id: uuid::Uuid,
    role: Role,
    actor: &str,
) -> Result<bool> {
    let added = sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, user_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if added {
        let detail = json!({"user_id": user_id, "role": role.as_str()});
        audit(conn, org_id, actor, "member.add", &detail).await?;
    }
    Ok(added)
}

/// An org's members, by email.
pub async fn list_members(pool: &PgPool, org_id: &str) -> Result<Vec<Member>> {
    let rows: Vec<MemberRow> = sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY u.email"
    ))
    .bind(org_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(MemberRow::into_member).collect())
}

/// What a role change or removal did.
#[derive(Debug, Clone)]
pub enum MemberChange {
    Done(Member),
    /// No such member in the org.
    NotFound,
    /// It would leave the org without an owner; nothing written.
    LastOwner,
}

/// Lock the member and the org's owners; the member as it is.
async fn lock_member(
    conn: &mut PgConnection,
    org_id: &str,
    user_id: uuid::Uuid,
) -> Result<Option<(Member, i64)>> {
    // Every owner row is locked, so two concurrent demotions serialize and
    // the second sees the first's result.
    let owners: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'owner' FOR UPDATE",
    )
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?;
    let row: Option<MemberRow> = sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2 FOR UPDATE OF m"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| (r.into_member(), owners.len() as i64)))
}

/// Change a member's role, audited as `member.role` with the previous one.
/// The last owner cannot be demoted.
pub async fn set_role(
    conn: &mut PgConnection,
    org_id: &str,
    user_id: uuid::Uuid,
    role: Role,
    actor: &str,
) -> Result<MemberChange> {
    let Some((mut member, owners)) = lock_member(conn, org_id, user_id).await? else {
        return Ok(MemberChange::NotFound);
    };
    if member.role == role {
        return Ok(MemberChange::Done(member));
    }
    if member.role == Role::Owner && owners <= 1 {
        return Ok(MemberChange::LastOwner);
    }
    sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&mut *conn)
        .await?;
    let detail = json!({"user_id": user_id, "email": member.email,
                        "role": role.as_str(), "previous": member.role.as_str()});
    audit(conn, org_id, actor, "member.role", &detail).await?;
    member.role = role;
    Ok(MemberChange::Done(member))
}

/// Remove a member and end their sessions in the org, audited as
/// `member.remove`. The last owner cannot be removed.
pub async fn remove_member(
    conn: &mut PgConnection,
    org_id: &str,
    user_id: uuid::Uuid,
    actor: &str,
) -> Result<MemberChange> {
    let Some((member, owners)) = lock_member(conn, org_id, user_id).await? else {
        return Ok(MemberChange::NotFound);
    };
    if member.role == Role::Owner && owners <= 1 {
        return Ok(MemberChange::LastOwner);
    }
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE sessions SET revoked_at = now()
         WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    let detail = json!({"user_id": user_id, "email": member.email, "role": member.role.as_str()});
    audit(conn, org_id, actor, "member.remove", &detail).await?;
    Ok(MemberChange::Done(member))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_order() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("Owner"), None);
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Admin);
        assert!(Role::Admin < Role::Owner);
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        // Salted: the same password hashes differently.
        assert_ne!(h, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(
            normalize_email(" Ann@Example.COM ").as_deref(),
            Some("ann@example.com")
        );
        for bad in ["", "ann", "@x", "ann@", "a b@x", "a@b@c"] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(password_problem("elevenchars").is_some());
        assert!(password_problem("twelve chars").is_none());
        assert!(password_problem(&"x".repeat(257)).is_some());
    }
}
