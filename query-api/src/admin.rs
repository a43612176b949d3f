//! Admin operations shared by the CLI, the admin endpoints and the tests.

use agentops_tenancy as orgs;
use std::time::Duration;

use agentops_runtime::keys::Scope;
use agentops_runtime::secrets::{self, Keys};
use agentops_tenancy::{NewKey, OrgSpec};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::governance::budgets::BUDGETS;
use crate::governance::channels::CHANNELS;
use crate::governance::crud::{upsert_named, Writer};
use crate::governance::fields::Obj;
use crate::Config;
use serde_json::json;

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

/// Install the outbound guard of `notify.allow_destinations`, which channel
/// URLs are checked against (before serving or writing a channel).
pub fn install_guard(config: &Config) -> agentops_runtime::Result<()> {
    crate::governance::channels::set_outbound(&config.notify)
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
    orgs::ensure_org(&mut tx, &spec, actor).await?;
    let mut out = Vec::new();
    for scope in [Scope::Ingest, Scope::Read, Scope::Admin] {
        out.push(orgs::insert_key(&mut tx, org_id, &[scope], None, actor).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// Set (or replace) an org's `default` budget: org scope, per UTC day, one
/// alert at 100%, and with `webhook_url` the org's `default` Slack-compatible
/// channel, kept from the MVP's `PUT /v1/admin/budget`. Both go through the
/// CRUD path (`/v1/admin/budgets`, `/v1/admin/channels`): the same
/// validation, caps and audit rows (`budget.create`/`budget.update`,
/// `channel.create`/`channel.update`, actor `cli`) under `config.caps`; the
/// URL is checked against the guard [`install_guard`] set.
pub async fn set_budget(
    pool: &PgPool,
    config: &Config,
    org_id: &str,
    daily_usd: f64,
    webhook_url: Option<&str>,
) -> anyhow::Result<()> {
    let who = Writer {
        org_id,
        actor: "cli",
        caps: &config.caps,
    };
    set_budget_as(pool, &who, daily_usd, webhook_url)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// [`set_budget`] by `who`; a field error names `daily_usd` or
/// `webhook_url`.
pub(crate) async fn set_budget_as(
    pool: &PgPool,
    who: &Writer<'_>,
    daily_usd: f64,
    webhook_url: Option<&str>,
) -> Result<(), ApiError> {
    // The legacy fields' names in errors.
    let legacy = |e: ApiError| match e {
        ApiError::BadField { field, message } => ApiError::BadField {
            field: match field {
                "limit_usd" => "daily_usd",
                "url" => "webhook_url",
                other => other,
            },
            message,
        },
        other => other,
    };
    let mut tx = pool.begin().await?;
    if let Some(url) = webhook_url {
        let patch = obj(json!({"name": "default", "kind": "slack", "url": url, "secret": null}));
        upsert_named(&mut tx, &CHANNELS, who, Obj::new(), patch)
            .await
            .map_err(legacy)?;
    }
    let defaults = obj(json!({"period": "day", "thresholds": [100]}));
    let patch = obj(json!({"name": "default", "limit_usd": daily_usd}));
    upsert_named(&mut tx, &BUDGETS, who, defaults, patch)
        .await
        .map_err(legacy)?;
    tx.commit().await?;
    Ok(())
}

fn obj(v: serde_json::Value) -> Obj {
    match v {
        serde_json::Value::Object(m) => m,
        _ => Obj::new(),
    }
}
