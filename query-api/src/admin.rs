//! Admin operations shared by the CLI, the admin endpoints and the tests.

use std::time::Duration;

use agentops_runtime::keys::{self, NewKey, OrgSpec, Scope};
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
    provision_org(pool, org_id, name, false, actor).await
}

/// Create the org unless it exists (`platform` marks an existing org a
/// platform org) and give it an ingest, a read and an admin key, in one
/// transaction, audited.
pub async fn provision_org(
    pool: &PgPool,
    org_id: &str,
    name: &str,
    platform: bool,
    actor: &str,
) -> agentops_runtime::Result<Vec<NewKey>> {
    let spec = OrgSpec {
        id: org_id,
        name,
        platform,
        events_per_sec: None,
        burst: None,
    };
    let mut tx = pool.begin().await?;
    keys::ensure_org(&mut tx, &spec, actor).await?;
    let mut out = Vec::new();
    for scope in [Scope::Ingest, Scope::Read, Scope::Admin] {
        out.push(keys::insert_key(&mut tx, org_id, &[scope], None, actor).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// Set (or replace) an org's `default` budget: org scope, per UTC day, one
/// alert at 100%, posted to the org's `default` Slack-compatible channel
/// (`webhook_url`), kept from the MVP's `PUT /v1/admin/budget`.
pub async fn set_budget(
    pool: &PgPool,
    org_id: &str,
    daily_usd: f64,
    webhook_url: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Some(url) = webhook_url {
        sqlx::query(
            "INSERT INTO notification_channels (org_id, name, kind, url)
             VALUES ($1, 'default', 'slack', $2)
             ON CONFLICT (org_id, name) DO UPDATE SET url = EXCLUDED.url",
        )
        .bind(org_id)
        .bind(url)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO budgets (org_id, name, period, limit_usd, thresholds)
         VALUES ($1, 'default', 'day', $2, '{100}')
         ON CONFLICT (org_id, name) DO UPDATE SET limit_usd = EXCLUDED.limit_usd,
             updated_at = now()",
    )
    .bind(org_id)
    .bind(daily_usd)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
