//! People, sign-in and roles through the in-process query API router on
//! its own database: sign-in and sign-out, expired and revoked sessions,
//! the CSRF token on mutating calls, the sign-in rate limit, what each
//! role may do, the last owner, invitations, and the audit rows.

use std::time::Duration;

use agentops_e2e::prepared_database;
use agentops_tenancy::people::{self, Role};
use anyhow::{ensure, Context, Result};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";

struct Api {
    url: String,
    pool: PgPool,
    router: axum::Router,
    org: String,
    admin_key: String,
}

/// A signed-in member: the cookie's token and the CSRF token.
#[derive(Clone)]
struct Session {
    token: String,
    csrf: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    async fn start(prefix: &str) -> Result<Api> {
        let (url, pool) = prepared_database(prefix).await?;
        let keys = agentops_query_api::admin::create_org_with_keys(&pool, "org-a", "org-a", "test")
            .await?;
        Ok(Api {
            url,
            router: agentops_query_api::app(pool.clone(), Duration::from_millis(100)),
            pool,
            org: "org-a".into(),
            admin_key: keys[2].secret.clone(),
        })
    }

    /// A user with `role` in the org (created directly, as the CLI does).
    async fn user(&self, email: &str, role: Role) -> Result<uuid::Uuid> {
        let hash = people::hash_password(PASSWORD)?;
        let mut tx = self.pool.begin().await?;
        let u = people::insert_user(&mut tx, email, email, &hash)
            .await?
            .context("email taken")?;
        people::add_member(&mut tx, &self.org, u.id, role, "test").await?;
        tx.commit().await?;
        Ok(u.id)
    }

    async fn send(&self, req: Request<Body>) -> Result<Answer> {
        let resp = self.router.clone().oneshot(req).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            // Pages (the dashboard, the console) answer HTML.
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// A call as a session: the cookie, and `csrf` in `x-csrf-token`.
    async fn as_session(
        &self,
        method: &str,
        path: &str,
        s: &Session,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> Result<Answer> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(
                "cookie",
                format!("theme=dark; agentops_session={}", s.token),
            )
            .header("content-type", "application/json");
        if let Some(c) = csrf {
            b = b.header("x-csrf-token", c);
        }
        self.send(b.body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))?)
            .await
    }

    /// A call as a session with its CSRF token.
    async fn call(
        &self,
        method: &str,
        path: &str,
        s: &Session,
        body: Option<Value>,
    ) -> Result<Answer> {
        self.as_session(method, path, s, Some(&s.csrf), body).await
    }

    async fn with_key(&self, method: &str, path: &str, body: Option<Value>) -> Result<Answer> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.admin_key))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))?;
        self.send(req).await
    }

    async fn public(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Result<Answer> {
        let mut b = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body.to_string()))?).await
    }

    async fn login(&self, email: &str) -> Result<Session> {
        let a = self
            .public(
                "/v1/auth/login",
                json!({"email": email, "password": PASSWORD}),
                &[],
            )
            .await?;
        ensure!(
            a.status == StatusCode::OK,
            "login {email}: {} {}",
            a.status,
            a.body
        );
        let cookie = a
            .headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .context("a session cookie")?;
        let token = cookie
            .strip_prefix("agentops_session=")
            .and_then(|r| r.split(';').next())
            .context("the cookie's value")?;
        Ok(Session {
            token: token.to_owned(),
            csrf: a.body["csrf_token"]
                .as_str()
                .context("csrf_token")?
                .to_owned(),
        })
    }

    async fn audit(&self, action: &str) -> Result<Vec<(String, Value)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT actor, detail FROM audit_log WHERE org_id = $1 AND action = $2 ORDER BY id",
        )
        .bind(&self.org)
        .bind(action)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(a, d)| (a, serde_json::from_str(&d).unwrap_or(Value::Null)))
            .collect())
    }
}

fn code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn sign_in_sign_out_expiry_and_revocation() -> Result<()> {
    let api = Api::start("sessions_signin").await?;
    let uid = api.user("ann@example.com", Role::Viewer).await?;

    // The cookie: HttpOnly, SameSite=Strict, Path=/, Max-Age 12 h, Secure
    // only over TLS.
    let a = api
        .public(
            "/v1/auth/login",
            json!({"email": "  ANN@example.com ", "password": PASSWORD}),
            &[],
        )
        .await?;
    ensure!(a.status == StatusCode::OK, "{} {}", a.status, a.body);
    let cookie = a.headers["set-cookie"].to_str()?.to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        ensure!(cookie.contains(part), "{cookie} lacks {part}");
    }
    ensure!(!cookie.contains("Secure"), "{cookie}");
    ensure!(a.body["role"] == json!("viewer") && a.body["org_id"] == json!("org-a"));
    ensure!(a.body["user"]["id"] == json!(uid), "{}", a.body);
    let tls = api
        .public(
            "/v1/auth/login",
            json!({"email": "ann@example.com", "password": PASSWORD, "org_id": "org-a"}),
            &[("x-forwarded-proto", "https")],
        )
        .await?;
    ensure!(tls.headers["set-cookie"].to_str()?.contains("; Secure"));

    // Only the hash is stored.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE token_hash = $1")
        .bind(agentops_tenancy::sessions::token_hash(
            cookie
                .strip_prefix("agentops_session=")
                .and_then(|c| c.split(';').next())
                .context("token")?,
        ))
        .fetch_one(&api.pool)
        .await?;
    ensure!(stored == 1);

    // Wrong email and wrong password: the same 401.
    let wrong_pw = api
        .public(
            "/v1/auth/login",
            json!({"email": "ann@example.com", "password": "nope nope nope"}),
            &[],
        )
        .await?;
    let wrong_email = api
        .public(
            "/v1/auth/login",
            json!({"email": "bob@example.com", "password": PASSWORD}),
            &[],
        )
        .await?;
    ensure!(
        wrong_pw.status == StatusCode::UNAUTHORIZED
            && wrong_email.status == StatusCode::UNAUTHORIZED
    );
    ensure!(
        wrong_pw.body == wrong_email.body,
        "{} vs {}",
        wrong_pw.body,
        wrong_email.body
    );
    ensure!(code(&wrong_pw) == "invalid_credentials");

    // Reads work with the cookie; me answers the CSRF token again.
    let s = api.login("ann@example.com").await?;
    let me = api.call("GET", "/v1/auth/me", &s, None).await?;
    ensure!(
        me.status == StatusCode::OK && me.body["csrf_token"] == json!(s.csrf),
        "{}",
        me.body
    );
    ensure!(api.call("GET", "/v1/agents", &s, None).await?.status == StatusCode::OK);

    // Sign-out revokes it and clears the cookie; the old cookie is refused.
    let out = api.call("POST", "/v1/auth/logout", &s, None).await?;
    ensure!(out.status == StatusCode::OK && out.body["signed_out"] == json!(true));
    ensure!(out.headers["set-cookie"].to_str()?.contains("Max-Age=0"));
    let after = api.call("GET", "/v1/agents", &s, None).await?;
    ensure!(
        after.status == StatusCode::UNAUTHORIZED && code(&after) == "invalid_session",
        "{}",
        after.body
    );

    // An expired session is refused.
    let s2 = api.login("ann@example.com").await?;
    sqlx::query(
        "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
    )
    .bind(agentops_tenancy::sessions::token_hash(&s2.token))
    .execute(&api.pool)
    .await?;
    let expired = api.call("GET", "/v1/auth/me", &s2, None).await?;
    ensure!(expired.status == StatusCode::UNAUTHORIZED && code(&expired) == "invalid_session");

    // A revoked one (revoked elsewhere) too, and a made-up one.
    let s3 = api.login("ann@example.com").await?;
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE token_hash = $1")
        .bind(agentops_tenancy::sessions::token_hash(&s3.token))
        .execute(&api.pool)
        .await?;
    ensure!(api.call("GET", "/v1/agents", &s3, None).await?.status == StatusCode::UNAUTHORIZED);
    let forged = Session {
        token: "0".repeat(64),
        csrf: String::new(),
    };
    ensure!(api.call("GET", "/v1/agents", &forged, None).await?.status == StatusCode::UNAUTHORIZED);

    // No cookie and no key: 401 as before.
    let none = api
        .send(Request::builder().uri("/v1/agents").body(Body::empty())?)
        .await?;
    ensure!(none.status == StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn mutating_calls_need_the_csrf_token() -> Result<()> {
    let api = Api::start("sessions_csrf").await?;
    api.user("olga@example.com", Role::Owner).await?;
    let s = api.login("olga@example.com").await?;
    let pause = "/v1/admin/agents/agent-1/pause";
    let body = json!({"reason": "csrf test"});

    let missing = api
        .as_session("POST", pause, &s, None, Some(body.clone()))
        .await?;
    ensure!(
        missing.status == StatusCode::FORBIDDEN && code(&missing) == "invalid_csrf_token",
        "{} {}",
        missing.status,
        missing.body
    );
    let forged = api
        .as_session("POST", pause, &s, Some(&"f".repeat(64)), Some(body.clone()))
        .await?;
    ensure!(forged.status == StatusCode::FORBIDDEN && code(&forged) == "invalid_csrf_token");
    // Another session's token is as wrong.
    let other = api.login("olga@example.com").await?;
    let crossed = api
        .as_session("POST", pause, &s, Some(&other.csrf), Some(body.clone()))
        .await?;
    ensure!(crossed.status == StatusCode::FORBIDDEN);
    let paused: i64 = sqlx::query_scalar("SELECT count(*) FROM agent_controls")
        .fetch_one(&api.pool)
        .await?;
    ensure!(paused == 0, "a refused call changed something");

    let ok = api.call("POST", pause, &s, Some(body.clone())).await?;
    ensure!(ok.status.is_success(), "{} {}", ok.status, ok.body);
    // DELETE and PUT alike.
    let put = api
        .as_session("PUT", "/v1/admin/digest", &s, None, Some(json!({})))
        .await?;
    ensure!(put.status == StatusCode::FORBIDDEN && code(&put) == "invalid_csrf_token");
    // Logout is a mutating call too.
    let out = api
        .as_session("POST", "/v1/auth/logout", &s, None, None)
        .await?;
    ensure!(out.status == StatusCode::FORBIDDEN);

    // API keys are not subject to it.
    let key = api
        .with_key("POST", "/v1/admin/agents/agent-2/pause", Some(body))
        .await?;
    ensure!(key.status.is_success(), "{} {}", key.status, key.body);
    Ok(())
}

#[tokio::test]
async fn twenty_wrong_passwords_are_rate_limited() -> Result<()> {
    let api = Api::start("sessions_ratelimit").await?;
    api.user("rita@example.com", Role::Member).await?;
    let wrong = json!({"email": "rita@example.com", "password": "wrong password!"});
    for i in 0..20 {
        let a = api.public("/v1/auth/login", wrong.clone(), &[]).await?;
        ensure!(
            a.status == StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            a.status
        );
    }
    // The 21st, even with the right password, waits.
    let right = json!({"email": "Rita@example.com", "password": PASSWORD});
    let a = api.public("/v1/auth/login", right.clone(), &[]).await?;
    ensure!(
        a.status == StatusCode::TOO_MANY_REQUESTS && code(&a) == "rate_limited",
        "{} {}",
        a.status,
        a.body
    );
    let retry: i64 = a.headers["retry-after"].to_str()?.parse()?;
    ensure!((1..=900).contains(&retry), "Retry-After {retry}");
    // Another email is not affected.
    api.user("sam@example.com", Role::Member).await?;
    api.login("sam@example.com").await?;
    // Once the failures leave the window, sign-in works again.
    sqlx::query("UPDATE login_failures SET at = at - interval '16 minutes'")
        .execute(&api.pool)
        .await?;
    api.login("rita@example.com").await?;

    // What is left behind is purged, a hundred rows at a time: failures
    // older than a day (of any email) at the next failure, sessions a day
    // past their expiry at the next sign-in.
    sqlx::query(
        "INSERT INTO login_failures (email, at)
         SELECT 'guess' || g || '@example.com', now() - interval '2 days' FROM generate_series(1, 150) g",
    )
    .execute(&api.pool)
    .await?;
    api.public("/v1/auth/login", wrong.clone(), &[]).await?;
    let old: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM login_failures WHERE at < now() - interval '1 day'",
    )
    .fetch_one(&api.pool)
    .await?;
    ensure!(old == 50, "{old} old failures left");
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '2 days'")
        .execute(&api.pool)
        .await?;
    api.login("sam@example.com").await?;
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&api.pool)
        .await?;
    ensure!(sessions == 1, "{sessions} sessions (the new one only)");
    Ok(())
}

#[tokio::test]
async fn each_role_may_do_what_its_row_says() -> Result<()> {
    let api = Api::start("sessions_roles").await?;
    let owner_id = api.user("owner@example.com", Role::Owner).await?;
    let admin_id = api.user("admin@example.com", Role::Admin).await?;
    let member_id = api.user("member@example.com", Role::Member).await?;
    let viewer_id = api.user("viewer@example.com", Role::Viewer).await?;
    let owner = api.login("owner@example.com").await?;
    let admin = api.login("admin@example.com").await?;
    let member = api.login("member@example.com").await?;
    let viewer = api.login("viewer@example.com").await?;
    for alert in ["al-1", "al-2"] {
        sqlx::query(
            "INSERT INTO alerts (alert_id, org_id, kind, period, threshold, value, message, source,
                                 scope_key)
             VALUES ($1, $2, 'error_rate', '', 0.25, 0.5, 'error rate 50%', 'rule', 'org')",
        )
        .bind(alert)
        .bind(&api.org)
        .execute(&api.pool)
        .await?;
    }
    let pause = json!({"reason": "roles"});
    let budget = json!({"name": "b", "period": "day", "limit_usd": 10});

    // Viewer: reads; no pause, no ack.
    ensure!(api.call("GET", "/v1/alerts", &viewer, None).await?.status == StatusCode::OK);
    let v = api
        .call(
            "POST",
            "/v1/admin/agents/a1/pause",
            &viewer,
            Some(pause.clone()),
        )
        .await?;
    ensure!(
        v.status == StatusCode::FORBIDDEN
            && code(&v) == "forbidden"
            && v.body["error"]["role"] == json!("viewer"),
        "{}",
        v.body
    );
    ensure!(
        api.call("POST", "/v1/alerts/al-1/ack", &viewer, None)
            .await?
            .status
            == StatusCode::FORBIDDEN
    );

    // Member: acknowledges, but creates no budget.
    let ack = api
        .call("POST", "/v1/alerts/al-1/ack", &member, None)
        .await?;
    ensure!(ack.status == StatusCode::OK, "{} {}", ack.status, ack.body);
    let acked_by: String =
        sqlx::query_scalar("SELECT acked_by FROM alerts WHERE alert_id = 'al-1'")
            .fetch_one(&api.pool)
            .await?;
    ensure!(
        acked_by == format!("user:{member_id}:member@example.com"),
        "{acked_by}"
    );
    ensure!(
        api.call("POST", "/v1/admin/budgets", &member, Some(budget.clone()))
            .await?
            .status
            == StatusCode::FORBIDDEN
    );
    ensure!(
        api.call(
            "POST",
            "/v1/admin/agents/a1/pause",
            &member,
            Some(pause.clone())
        )
        .await?
        .status
            == StatusCode::FORBIDDEN
    );

    // Admin: configuration and agents, but not members or keys.
    let b = api
        .call("POST", "/v1/admin/budgets", &admin, Some(budget.clone()))
        .await?;
    ensure!(b.status == StatusCode::CREATED, "{} {}", b.status, b.body);
    ensure!(api
        .call(
            "POST",
            "/v1/admin/agents/a1/pause",
            &admin,
            Some(pause.clone())
        )
        .await?
        .status
        .is_success());
    ensure!(
        api.call("GET", "/v1/admin/members", &admin, None)
            .await?
            .status
            == StatusCode::OK
    );
    let promote = format!("/v1/admin/members/{viewer_id}");
    ensure!(
        api.call("PUT", &promote, &admin, Some(json!({"role": "member"})))
            .await?
            .status
            == StatusCode::FORBIDDEN
    );
    ensure!(api.call("DELETE", &promote, &admin, None).await?.status == StatusCode::FORBIDDEN);
    ensure!(
        api.call("GET", "/v1/admin/keys", &admin, None)
            .await?
            .status
            == StatusCode::FORBIDDEN
    );
    ensure!(
        api.call(
            "POST",
            "/v1/admin/keys",
            &admin,
            Some(json!({"scopes": ["read"]}))
        )
        .await?
        .status
            == StatusCode::FORBIDDEN
    );
    // Platform routes are never a session's.
    ensure!(
        api.call("GET", "/v1/admin/orgs", &owner, None)
            .await?
            .status
            == StatusCode::FORBIDDEN
    );

    // Owner: members and keys.
    let p = api
        .call("PUT", &promote, &owner, Some(json!({"role": "member"})))
        .await?;
    ensure!(
        p.status == StatusCode::OK && p.body["role"] == json!("member"),
        "{} {}",
        p.status,
        p.body
    );
    // The change applies to the open session at once.
    ensure!(
        api.call("POST", "/v1/alerts/al-2/ack", &viewer, None)
            .await?
            .status
            == StatusCode::OK
    );
    let k = api
        .call(
            "POST",
            "/v1/admin/keys",
            &owner,
            Some(json!({"scopes": ["read"]})),
        )
        .await?;
    ensure!(k.status == StatusCode::CREATED, "{} {}", k.status, k.body);
    let bad = api
        .call("PUT", &promote, &owner, Some(json!({"role": "boss"})))
        .await?;
    ensure!(bad.status == StatusCode::BAD_REQUEST && bad.body["error"]["field"] == json!("role"));

    // The last owner can be neither demoted nor removed ...
    let me = format!("/v1/admin/members/{owner_id}");
    let demote = api
        .call("PUT", &me, &owner, Some(json!({"role": "admin"})))
        .await?;
    ensure!(
        demote.status == StatusCode::CONFLICT,
        "{} {}",
        demote.status,
        demote.body
    );
    ensure!(api.call("DELETE", &me, &owner, None).await?.status == StatusCode::CONFLICT);
    // ... until there is another.
    let second = format!("/v1/admin/members/{admin_id}");
    ensure!(
        api.call("PUT", &second, &owner, Some(json!({"role": "owner"})))
            .await?
            .status
            == StatusCode::OK
    );
    ensure!(
        api.call("PUT", &me, &owner, Some(json!({"role": "admin"})))
            .await?
            .status
            == StatusCode::OK
    );
    // Now admin@ is the only owner and old owner@ a mere admin.
    ensure!(api.call("DELETE", &second, &admin, None).await?.status == StatusCode::CONFLICT);
    // Removal ends the member's sessions.
    let gone = format!("/v1/admin/members/{member_id}");
    ensure!(api.call("DELETE", &gone, &admin, None).await?.status == StatusCode::OK);
    ensure!(api.call("GET", "/v1/agents", &member, None).await?.status == StatusCode::UNAUTHORIZED);
    ensure!(api.call("DELETE", &gone, &admin, None).await?.status == StatusCode::NOT_FOUND);

    // Every change is in the audit log, by whom.
    let roles = api.audit("member.role").await?;
    ensure!(roles.len() == 3, "{roles:?}");
    ensure!(roles[0].0 == format!("user:{owner_id}:owner@example.com"));
    ensure!(roles[0].1["role"] == json!("member") && roles[0].1["previous"] == json!("viewer"));
    let removed = api.audit("member.remove").await?;
    ensure!(removed.len() == 1 && removed[0].1["user_id"] == json!(member_id));
    ensure!(removed[0].0 == format!("user:{admin_id}:admin@example.com"));
    ensure!(api.audit("member.add").await?.len() == 4);

    // Keys keep working, unchanged: an admin key manages members.
    let list = api.with_key("GET", "/v1/admin/members", None).await?;
    ensure!(
        list.status == StatusCode::OK && list.body["members"].as_array().map(Vec::len) == Some(3),
        "{}",
        list.body
    );
    Ok(())
}

#[tokio::test]
async fn invitations_are_created_accepted_and_revoked() -> Result<()> {
    let api = Api::start("sessions_invites").await?;
    api.user("owner@example.com", Role::Owner).await?;
    api.user("admin@example.com", Role::Admin).await?;
    let owner = api.login("owner@example.com").await?;
    let admin = api.login("admin@example.com").await?;

    // Admins invite, but not owners.
    let no = api
        .call(
            "POST",
            "/v1/admin/invitations",
            &admin,
            Some(json!({"email": "x@example.com", "role": "owner"})),
        )
        .await?;
    ensure!(
        no.status == StatusCode::FORBIDDEN,
        "{} {}",
        no.status,
        no.body
    );
    let inv = api
        .call(
            "POST",
            "/v1/admin/invitations",
            &admin,
            Some(json!({"email": "New@Example.com", "role": "member"})),
        )
        .await?;
    ensure!(
        inv.status == StatusCode::CREATED,
        "{} {}",
        inv.status,
        inv.body
    );
    ensure!(inv.body["email"] == json!("new@example.com"));
    let token = inv.body["token"].as_str().context("token")?.to_owned();
    let list = api
        .call("GET", "/v1/admin/invitations", &owner, None)
        .await?;
    ensure!(list.body["invitations"].as_array().map(Vec::len) == Some(1));
    ensure!(
        !list.body.to_string().contains(&token),
        "a listing shows the token"
    );

    // Accept: a short password is refused; then the user exists and signs in.
    let short = api
        .public(
            "/v1/auth/accept-invitation",
            json!({"token": token, "name": "New", "password": "short"}),
            &[],
        )
        .await?;
    ensure!(
        short.status == StatusCode::BAD_REQUEST
            && short.body["error"]["field"] == json!("password")
    );
    let ok = api
        .public(
            "/v1/auth/accept-invitation",
            json!({"token": token, "name": "New", "password": PASSWORD}),
            &[],
        )
        .await?;
    ensure!(
        ok.status == StatusCode::OK
            && ok.body["role"] == json!("member")
            && ok.body["new_user"] == json!(true),
        "{} {}",
        ok.status,
        ok.body
    );
    let s = api.login("new@example.com").await?;
    ensure!(api.call("GET", "/v1/auth/me", &s, None).await?.body["role"] == json!("member"));
    // Used once only.
    let again = api
        .public(
            "/v1/auth/accept-invitation",
            json!({"token": token, "name": "New", "password": PASSWORD}),
            &[],
        )
        .await?;
    ensure!(
        again.status == StatusCode::BAD_REQUEST && again.body["error"]["field"] == json!("token")
    );

    // An existing user (of another org) joins with their own password.
    agentops_tenancy::create_org(&api.pool, "org-b", "org-b").await?;
    let inv_b = {
        let mut tx = api.pool.begin().await?;
        let (_, t) = agentops_tenancy::invitations::create_invitation(
            &mut tx,
            "org-b",
            "new@example.com",
            Role::Viewer,
            "test",
            chrono::Duration::hours(1),
        )
        .await?;
        tx.commit().await?;
        t
    };
    let wrong = api
        .public(
            "/v1/auth/accept-invitation",
            json!({"token": inv_b, "password": "not their password"}),
            &[],
        )
        .await?;
    ensure!(wrong.status == StatusCode::UNAUTHORIZED);
    let joined = api
        .public(
            "/v1/auth/accept-invitation",
            json!({"token": inv_b, "password": PASSWORD}),
            &[],
        )
        .await?;
    ensure!(
        joined.status == StatusCode::OK && joined.body["new_user"] == json!(false),
        "{}",
        joined.body
    );
    let b = api
        .public(
            "/v1/auth/login",
            json!({"email": "new@example.com", "password": PASSWORD, "org_id": "org-b"}),
            &[],
        )
        .await?;
    ensure!(b.status == StatusCode::OK && b.body["role"] == json!("viewer"));

    // A revoked invitation cannot be accepted.
    let inv2 = api
        .call(
            "POST",
            "/v1/admin/invitations",
            &owner,
            Some(json!({"email": "late@example.com", "role": "owner"})),
        )
        .await?;
    ensure!(inv2.status == StatusCode::CREATED);
    let id = inv2.body["id"].as_str().context("id")?;
    let del = api
        .call(
            "DELETE",
            &format!("/v1/admin/invitations/{id}"),
            &owner,
            None,
        )
        .await?;
    ensure!(del.status == StatusCode::OK, "{}", del.body);
    let late = api
        .public(
            "/v1/auth/accept-invitation",
            json!({"token": inv2.body["token"], "name": "Late", "password": PASSWORD}),
            &[],
        )
        .await?;
    ensure!(late.status == StatusCode::BAD_REQUEST);

    ensure!(api.audit("invitation.create").await?.len() == 2);
    ensure!(api.audit("invitation.accept").await?.len() == 1);
    ensure!(api.audit("invitation.revoke").await?.len() == 1);
    Ok(())
}

/// `agentops-query-api admin create-user` against the test database.
fn create_user_cli(
    api: &Api,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(bool, String, String)> {
    let dir = std::env::var("AGENTOPS_BIN_DIR").unwrap_or_else(|_| "target/debug".into());
    let out = std::process::Command::new(format!("{dir}/agentops-query-api"))
        .args(["admin", "create-user"])
        .args(args)
        .env("AGENTOPS_DATABASE__URL", &api.url)
        .envs(env.iter().copied())
        .output()
        .context("run agentops-query-api")?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn the_cli_creates_the_first_owner() -> Result<()> {
    let api = Api::start("sessions_cli").await?;
    let (ok, out, err) = create_user_cli(
        &api,
        &[
            "--org",
            "org-a",
            "--email",
            "Boss@Example.com",
            "--name",
            "Boss",
            "--role",
            "owner",
            "--password-env",
            "BOSS_PW",
        ],
        &[("BOSS_PW", PASSWORD)],
    )?;
    ensure!(ok, "{out} {err}");
    ensure!(
        out.contains("AGENTOPS_USER_EMAIL=boss@example.com") && !out.contains(PASSWORD),
        "{out}"
    );
    let s = api.login("boss@example.com").await?;
    let me = api.call("GET", "/v1/auth/me", &s, None).await?;
    ensure!(me.body["role"] == json!("owner"), "{}", me.body);
    let add = api.audit("member.add").await?;
    ensure!(add.len() == 1 && add[0].0 == "cli", "{add:?}");

    // Generated: printed once, and it signs in.
    let (ok, out, err) = create_user_cli(
        &api,
        &[
            "--org",
            "org-a",
            "--email",
            "gen@example.com",
            "--name",
            "Gen",
            "--role",
            "viewer",
        ],
        &[],
    )?;
    ensure!(ok, "{out} {err}");
    let pw = out
        .lines()
        .find_map(|l| l.strip_prefix("AGENTOPS_USER_PASSWORD="))
        .context("a generated password")?;
    let a = api
        .public(
            "/v1/auth/login",
            json!({"email": "gen@example.com", "password": pw}),
            &[],
        )
        .await?;
    ensure!(a.status == StatusCode::OK && a.body["role"] == json!("viewer"));

    // Again: nothing changes, it says so; a bad role or org fails.
    let (ok, out, _) = create_user_cli(
        &api,
        &[
            "--org",
            "org-a",
            "--email",
            "gen@example.com",
            "--name",
            "Gen",
            "--role",
            "owner",
        ],
        &[],
    )?;
    ensure!(ok && !out.contains("AGENTOPS_USER_PASSWORD"), "{out}");
    let (ok, _, _) = create_user_cli(
        &api,
        &[
            "--org",
            "org-a",
            "--email",
            "x@example.com",
            "--name",
            "X",
            "--role",
            "boss",
        ],
        &[],
    )?;
    ensure!(!ok);
    let (ok, _, _) = create_user_cli(
        &api,
        &["--org", "no-org", "--email", "x@example.com", "--name", "X"],
        &[],
    )?;
    ensure!(!ok);
    Ok(())
}

/// Every row of the route table as each role's session (CSRF token sent):
/// `read` rows pass for every role, `admin` rows for admins and owners
/// (acknowledging also for members; members' roles and API keys only for
/// owners), platform rows for no session.
#[tokio::test]
async fn every_route_answers_every_role_as_its_row_says() -> Result<()> {
    use agentops_query_api::routes::Access;
    let api = Api::start("sessions_matrix").await?;
    let mut sessions = Vec::new();
    for role in Role::ALL {
        let email = format!("{}@example.com", role.as_str());
        api.user(&email, role).await?;
        sessions.push((role, api.login(&email).await?));
    }
    let owner_only = |m: &str, p: &str| {
        p.starts_with("/v1/admin/keys")
            || (p == "/v1/admin/members/{user_id}" && (m == "PUT" || m == "DELETE"))
    };
    let mut failures = Vec::new();
    let mut calls = 0;
    for row in agentops_query_api::route_table() {
        if row.access == Access::Public {
            continue; // no role involved (pages, sign-in, sign-out: tested above)
        }
        let method = row.method.as_str();
        let url = row
            .path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "matrix-none"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (role, s) in &sessions {
            let allowed = match row.access {
                Access::Public | Access::Read => true,
                Access::PlatformAdmin => false,
                Access::Admin if owner_only(method, &row.path) => *role == Role::Owner,
                Access::Admin if row.path == "/v1/alerts/{alert_id}/ack" => *role >= Role::Member,
                Access::Admin => *role >= Role::Admin,
            };
            let a = api.call(method, &url, s, None).await?;
            calls += 1;
            let ok = if allowed {
                !matches!(a.status.as_u16(), 401 | 403 | 405) && a.status.as_u16() < 500
            } else {
                a.status == StatusCode::FORBIDDEN && code(&a) == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{method} {} as {role:?}: {} {}",
                    row.path, a.status, a.body
                ));
            }
        }
    }
    ensure!(
        failures.is_empty(),
        "{calls} calls, failures:\n{}",
        failures.join("\n")
    );
    ensure!(calls > 150, "{calls}");
    Ok(())
}
