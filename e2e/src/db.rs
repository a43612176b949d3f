//! Test databases: a fresh one per test on the shared PostgreSQL, the
//! TimescaleDB server, and the second PostgreSQL tests may restart.

use anyhow::{Context, Result};
use sqlx::PgPool;

use crate::env::env_or;

fn pg_admin_url() -> String {
    env_or(
        "AGENTOPS_TEST_PG",
        "postgres://agentops:agentops@127.0.0.1:5432/postgres",
    )
}

/// A fresh database on the test Postgres server; returns its URL.
pub async fn create_database(prefix: &str) -> Result<String> {
    create_database_on(&pg_admin_url(), prefix).await
}

/// A component's database settings for `url` in plain PostgreSQL mode
/// (the other settings at their defaults).
pub fn plain_config(url: String) -> agentops_runtime::config::DatabaseConfig {
    use agentops_runtime::storage::{ModeChoice, StorageConfig};
    agentops_runtime::config::DatabaseConfig {
        url,
        storage: StorageConfig {
            mode: ModeChoice::Postgres,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A fresh database in plain PostgreSQL mode, migrated and prepared as the
/// components would at start; its URL and a small pool (for tests that
/// drive a router in-process instead of starting a stack).
pub async fn prepared_database(prefix: &str) -> Result<(String, PgPool)> {
    let db = agentops_runtime::config::DatabaseConfig {
        max_connections: 4,
        statement_timeout_ms: None,
        ..plain_config(create_database(prefix).await?)
    };
    let pool = agentops_runtime::db::connect(&db, std::time::Duration::from_secs(30)).await?;
    agentops_runtime::db::prepare(&pool, &db).await?;
    Ok((db.url, pool))
}

/// A fresh database on the Postgres server of `admin_url`; returns its URL.
pub async fn create_database_on(admin_url: &str, prefix: &str) -> Result<String> {
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let name = format!("{prefix}_{suffix}");
    let admin = PgPool::connect(admin_url)
        .await
        .context("connect to the test Postgres (AGENTOPS_TEST_PG)")?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    admin.close().await;
    let mut db_url = reqwest::Url::parse(admin_url)?;
    db_url.set_path(&name);
    Ok(db_url.to_string())
}

/// URL of the TimescaleDB (PGlite) server started by `deploy/local/test.sh`;
/// an error saying so when it is not set (the TimescaleDB tests fail, never skip).
pub fn timescale_url() -> Result<String> {
    std::env::var("AGENTOPS_TEST_TIMESCALE").context(
        "AGENTOPS_TEST_TIMESCALE is not set: run the suite through deploy/local/test.sh, \
         which starts the PGlite TimescaleDB server",
    )
}

/// The second PostgreSQL that tests may stop and start: its admin URL and
/// the command that restarts it (`AGENTOPS_TEST_PG_RESTART`,
/// `AGENTOPS_TEST_PG_RESTART_CTL`, set by deploy/local/test.sh).
pub fn restartable_pg() -> Result<(String, String)> {
    let admin = std::env::var("AGENTOPS_TEST_PG_RESTART").context(
        "AGENTOPS_TEST_PG_RESTART is not set: run through deploy/local/test.sh (it starts a \
         second PostgreSQL this test may stop and start)",
    )?;
    let ctl =
        std::env::var("AGENTOPS_TEST_PG_RESTART_CTL").context("AGENTOPS_TEST_PG_RESTART_CTL")?;
    Ok((admin, ctl))
}

/// Members of `org` who sign in with `password` (created as the admin CLI
/// does): each `(email, name, role)`, in one transaction.
pub async fn add_members(
    pool: &PgPool,
    org: &str,
    password: &str,
    people: &[(&str, &str, agentops_tenancy::people::Role)],
) -> Result<()> {
    use agentops_tenancy::people;
    let hash = people::hash_password(password)?;
    let mut tx = pool.begin().await?;
    for (email, name, role) in people {
        let user = people::insert_user(&mut tx, email, name, &hash)
            .await?
            .ok_or_else(|| anyhow::anyhow!("email {email} taken"))?;
        people::add_member(&mut tx, org, user.id, *role, "test").await?;
    }
    tx.commit().await?;
    Ok(())
}
