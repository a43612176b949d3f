//! The binary's `admin` subcommands for orgs and keys: straight to the
//! database, audited with actor `cli`, the same checks as the API
//! (`agentops_query_api::tenancy`). Lists never print a secret.

use agentops_query_api::tenancy::check_limits;
use agentops_runtime::keys::Scope;
use agentops_tenancy as orgs;
use agentops_tenancy::Revocation;
use anyhow::{bail, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::PgPool;

const ACTOR: &str = "cli";

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| x.to_string())
}

/// Rows as left-aligned columns under a header.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

async fn require_org(pool: &PgPool, org: &str) -> anyhow::Result<orgs::OrgRecord> {
    let mut conn = pool.acquire().await?;
    orgs::get_org(&mut conn, org)
        .await?
        .with_context(|| format!("no org {org:?}"))
}

pub(crate) async fn list_orgs(pool: &PgPool, json: bool) -> anyhow::Result<()> {
    let orgs = orgs::list_orgs(pool).await?;
    if json {
        for o in &orgs {
            println!("{}", serde_json::to_string(o)?);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = orgs
        .into_iter()
        .map(|o| {
            vec![
                o.id,
                o.name,
                o.platform.to_string(),
                num(o.ingest_events_per_sec),
                num(o.ingest_burst),
                o.live_keys.to_string(),
                time(Some(o.created_at)),
            ]
        })
        .collect();
    let header = [
        "ID",
        "NAME",
        "PLATFORM",
        "EVENTS_PER_SEC",
        "BURST",
        "LIVE_KEYS",
        "CREATED_AT",
    ];
    table(&header, &rows);
    Ok(())
}

pub(crate) async fn list_keys(pool: &PgPool, org: &str, json: bool) -> anyhow::Result<()> {
    require_org(pool, org).await?;
    let list = orgs::list_keys(pool, org).await?;
    if json {
        for k in &list {
            println!("{}", serde_json::to_string(k)?);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .into_iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.prefix,
                k.scopes.join(","),
                k.name.unwrap_or_else(|| "-".into()),
                time(Some(k.created_at)),
                k.created_by.unwrap_or_else(|| "-".into()),
                time(k.revoked_at),
            ]
        })
        .collect();
    let header = [
        "ID",
        "PREFIX",
        "SCOPES",
        "NAME",
        "CREATED_AT",
        "CREATED_BY",
        "REVOKED_AT",
    ];
    table(&header, &rows);
    Ok(())
}

pub(crate) async fn create_key(
    pool: &PgPool,
    org: &str,
    scopes: &[Scope],
    name: Option<&str>,
) -> anyhow::Result<()> {
    let name = name.map(str::trim);
    if let Some(n) = name {
        if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
            bail!("--name: expected 1 to 100 characters, no control characters");
        }
    }
    require_org(pool, org).await?;
    let k = orgs::create_key_named(pool, org, scopes, name, ACTOR).await?;
    println!(
        "key_id={} scope={} key={}",
        k.key_id,
        k.scope_names().join(","),
        k.secret
    );
    Ok(())
}

pub(crate) async fn revoke_key(pool: &PgPool, org: &str, key_id: uuid::Uuid) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let outcome = orgs::revoke(&mut tx, org, key_id, ACTOR).await?;
    tx.commit().await?;
    match outcome {
        Revocation::Revoked(_) => println!("revoked {key_id}"),
        Revocation::AlreadyRevoked(k) => {
            bail!("key {key_id} was already revoked at {}", time(k.revoked_at))
        }
        Revocation::NotFound => bail!("no key {key_id} in org {org}"),
    }
    Ok(())
}

/// Set both values (`None` rate: clear), as given.
pub(crate) async fn set_org_limits(
    pool: &PgPool,
    org: &str,
    events_per_sec: Option<f64>,
    burst: Option<f64>,
) -> anyhow::Result<()> {
    if let Err((field, message)) = check_limits(events_per_sec, burst) {
        let flag = if field == "ingest_burst" {
            "--burst"
        } else {
            "--events-per-sec"
        };
        bail!("{flag}: {message}");
    }
    let mut tx = pool.begin().await?;
    let Some(o) = orgs::set_org_limits(&mut tx, org, events_per_sec, burst, ACTOR).await? else {
        bail!("no org {org:?}");
    };
    tx.commit().await?;
    match o.ingest_events_per_sec {
        None => println!("{}: ingest limit cleared (the gateway's default)", o.id),
        Some(r) => println!(
            "{}: {r} events/s, burst {}",
            o.id,
            o.ingest_burst.unwrap_or(r)
        ),
    }
    Ok(())
}

/// `admin reencrypt-secrets`: seal every channel credential with the
/// current key; fails (status 1) while some row is under a key that is not
/// configured, so a rotation is finished only when it succeeds.
pub(crate) async fn reencrypt_secrets(
    pool: &PgPool,
    keys: &agentops_runtime::secrets::Keys,
) -> anyhow::Result<()> {
    let Some(current) = keys.current_id() else {
        anyhow::bail!(
            "no secrets key configured (secrets.key / secrets.key_file): nothing to encrypt with"
        );
    };
    let done = agentops_runtime::secrets::reseal_channels(pool, keys, false).await?;
    println!(
        "channels re-sealed with key {current}: {} rows rewritten, {} under a key not configured",
        done.rows, done.unreadable
    );
    if done.unreadable > 0 {
        anyhow::bail!(
            "{} channel rows are sealed with a key that is not configured: add it to secrets.key \
             and run again",
            done.unreadable
        );
    }
    Ok(())
}

/// `admin create-user`'s arguments.
pub(crate) struct NewUser<'a> {
    pub(crate) org: &'a str,
    pub(crate) email: &'a str,
    pub(crate) name: &'a str,
    pub(crate) role: &'a str,
    pub(crate) password_env: Option<&'a str>,
}

/// Create the user (or find them by email) and the membership; prints
/// `AGENTOPS_USER_EMAIL=`, and `AGENTOPS_USER_PASSWORD=` when generated.
pub(crate) async fn create_user(pool: &PgPool, u: &NewUser<'_>) -> anyhow::Result<()> {
    use agentops_tenancy::people::{self, Role};
    let role = Role::parse(u.role)
        .with_context(|| format!("--role {:?}: one of owner, admin, member, viewer", u.role))?;
    let email = people::normalize_email(u.email)
        .with_context(|| format!("--email {:?}: not an email address", u.email))?;
    let name = u.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        bail!("--name: expected 1 to 200 characters, no control characters");
    }
    require_org(pool, u.org).await?;
    let (password, generated) = match u.password_env {
        Some(var) => (
            std::env::var(var).with_context(|| format!("--password-env: ${var} is not set"))?,
            false,
        ),
        None => (
            agentops_tenancy::sessions::random_token()[..24].to_owned(),
            true,
        ),
    };
    if let Some(problem) = people::password_problem(&password) {
        bail!("the password: {problem}");
    }
    let mut tx = pool.begin().await?;
    let (user_id, created) = match people::user_by_email(&mut tx, &email).await? {
        Some(existing) => (existing.id, false),
        None => {
            let hash = people::hash_password_blocking(password.clone()).await?;
            let user = people::insert_user(&mut tx, &email, name, &hash)
                .await?
                .context("the email was taken meanwhile; run again")?;
            (user.id, true)
        }
    };
    let added = people::add_member(&mut tx, u.org, user_id, role, ACTOR).await?;
    tx.commit().await?;
    println!("AGENTOPS_USER_EMAIL={email}");
    if created && generated {
        println!("AGENTOPS_USER_PASSWORD={password}");
    }
    if !created {
        eprintln!("{email} already has an account: its password is unchanged");
    }
    if !added {
        eprintln!(
            "{email} is already a member of {}: its role is unchanged",
            u.org
        );
    }
    Ok(())
}
