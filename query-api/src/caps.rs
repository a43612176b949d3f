//! Per-org caps on configuration rows: no org can grow its rules, budgets,
//! channels, policies, prices or keys without bound (each one is read on
//! every evaluation pass, every delivery, every request). Past its cap a
//! create answers 409 `conflict` naming the setting that raises it.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::error::ApiError;

/// `caps.*` in the query API's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Caps {
    pub channels: u32,
    pub budgets: u32,
    pub alert_rules: u32,
    pub policies: u32,
    /// The org's own price rows (the global table is the platform's).
    pub prices: u32,
    /// Keys not revoked.
    pub keys: u32,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            channels: 100,
            budgets: 200,
            alert_rules: 1000,
            policies: 200,
            prices: 1000,
            keys: 100,
        }
    }
}

impl Caps {
    /// The cap and its setting's name for a governance table.
    pub(crate) fn of_table(&self, table: &str) -> Option<(u32, &'static str)> {
        Some(match table {
            "notification_channels" => (self.channels, "caps.channels"),
            "budgets" => (self.budgets, "caps.budgets"),
            "alert_rules" => (self.alert_rules, "caps.alert_rules"),
            "policies" => (self.policies, "caps.policies"),
            "model_prices" => (self.prices, "caps.prices"),
            "api_keys" => (self.keys, "caps.keys"),
            _ => return None,
        })
    }
}

/// Refuse a new row of `table` (rows of `org` matching `live`, an SQL
/// condition) when the org has its cap already. Inside a transaction the
/// check holds an advisory lock per (org, table) until the end, so
/// concurrent creates cannot pass the cap together.
pub(crate) async fn check(
    conn: &mut PgConnection,
    caps: &Caps,
    org: &str,
    table: &'static str,
    live: &str,
    noun: &str,
) -> Result<(), ApiError> {
    let Some((cap, setting)) = caps.of_table(table) else {
        return Ok(());
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
        .bind(org)
        .bind(table)
        .execute(&mut *conn)
        .await?;
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE org_id = $1 AND ({live})"
    ))
    .bind(org)
    .fetch_one(&mut *conn)
    .await?;
    if n >= i64::from(cap) {
        return Err(ApiError::Conflict(format!(
            "an org may have at most {cap} {noun}s ({setting})"
        )));
    }
    Ok(())
}
