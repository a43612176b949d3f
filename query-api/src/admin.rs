//! Admin operations shared by the CLI, the admin endpoints and the tests.

use std::time::Duration;

use agentops_runtime::keys::{self, NewKey, Scope};
use sqlx::PgPool;

use crate::Config;

/// Connect and migrate.
pub async fn pool(config: &Config) -> agentops_runtime::Result<PgPool> {
    let pool = agentops_runtime::db::connect(&config.database, Duration::from_secs(60)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    Ok(pool)
}

/// Create an org with an ingest, a read and an admin key.
pub async fn create_org_with_keys(
    pool: &PgPool,
    org_id: &str,
    name: &str,
    actor: &str,
) -> agentops_runtime::Result<Vec<NewKey>> {
    keys::create_org(pool, org_id, name).await?;
    let mut out = Vec::new();
    for scope in [Scope::Ingest, Scope::Read, Scope::Admin] {
        out.push(keys::create_key(pool, org_id, scope, actor).await?);
    }
    Ok(out)
}

/// Set (or replace) an org's daily budget.
pub async fn set_budget(
    pool: &PgPool,
    org_id: &str,
    daily_usd: f64,
    webhook_url: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO budgets (org_id, daily_usd, webhook_url) VALUES ($1, $2, $3)
         ON CONFLICT (org_id) DO UPDATE SET daily_usd = EXCLUDED.daily_usd,
             webhook_url = EXCLUDED.webhook_url, updated_at = now()",
    )
    .bind(org_id)
    .bind(daily_usd)
    .bind(webhook_url)
    .execute(pool)
    .await?;
    Ok(())
}
