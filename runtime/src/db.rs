//! Postgres pool and the schema migrations every component shares.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Executor;

use crate::config::DatabaseConfig;
use crate::Result;

/// Connection options from the config.
pub fn connect_options(cfg: &DatabaseConfig) -> Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(&cfg.url)?)
}

/// Connect, retrying for up to `wait` while the database comes up.
///
/// Every new connection turns JIT off and starts with `DEALLOCATE ALL`: on servers where
/// connections share one backend (the PGlite TimescaleDB build used in tests)
/// a previous client's prepared statements would otherwise collide with ours.
pub async fn connect(cfg: &DatabaseConfig, wait: Duration) -> Result<PgPool> {
    let deadline = tokio::time::Instant::now() + wait;
    let opts = connect_options(cfg)?;
    loop {
        let attempt = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("DEALLOCATE ALL").await?;
                    // Short, indexed queries: JIT compilation costs more than it saves.
                    conn.execute("SET jit = off").await?;
                    Ok(())
                })
            })
            .connect_with(opts.clone())
            .await;
        match attempt {
            Ok(pool) => return Ok(pool),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Apply pending migrations (safe to run concurrently: sqlx takes an advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<()> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}

/// Migrations, then the projection relations in the configured storage mode.
pub async fn prepare(pool: &PgPool, cfg: &DatabaseConfig) -> Result<crate::storage::Mode> {
    migrate(pool).await?;
    let mut conn = pool.acquire().await?;
    let mode = crate::storage::setup(&mut conn, &cfg.storage).await?;
    tracing::info!(storage_mode = mode.as_str(), "projection storage ready");
    Ok(mode)
}
