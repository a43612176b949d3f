//! Admin operations shared by the CLI, the admin endpoints and the tests.

use std::time::Duration;

use agentops_runtime::keys::{self, NewKey, OrgSpec, Scope};
use agentops_runtime::secrets::{self, Keys};
use sqlx::PgPool;

use crate::Config;

/// Load `secrets.*` (an error without a key unless plaintext is allowed)
/// and seal channel credentials with them from now on.
pub fn install_secrets(config: &Config) -> agentops_runtime::Result<Keys> {
    let keys = Keys::load(&config.secrets)?;
    if keys.current_id().is_none() {
        tracing::warn!("secrets.allow_plaintext: channel URLs and secrets are stored in clear");
    }
    crate::governance::channels::set_keys(keys.clone());
    Ok(keys)
}

/// Seal channel credentials still stored in clear (written before
/// encryption); the startup sweep.
pub async fn seal_plaintext_channels(pool: &PgPool, keys: &Keys) -> agentops_runtime::Result<()> {
    let done = secrets::reseal_channels(pool, keys, true).await?;
    if done.rows > 0 || done.unreadable > 0 {
        tracing::info!(
            rows = done.rows,
            unreadable = done.unreadable,
            "channel credentials sealed"
        );
    }
    Ok(())
}

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
        // Sealed like every channel URL (a bearer credential).
        let (sealed, hint) = crate::governance::channels::seal_url(url);
        sqlx::query(
            "INSERT INTO notification_channels (org_id, name, kind, url, url_hint)
             VALUES ($1, 'default', 'slack', $2, $3)
             ON CONFLICT (org_id, name) DO UPDATE SET url = EXCLUDED.url,
                 url_hint = EXCLUDED.url_hint",
        )
        .bind(org_id)
        .bind(sealed)
        .bind(hint)
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
