//! Postgres pool and the schema migrations every component shares.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};

use crate::config::DatabaseConfig;
use crate::Result;

/// Connection options from the config.
pub fn connect_options(cfg: &DatabaseConfig) -> Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(&cfg.url)?)
}

/// Set-up of every new connection, pooled or dedicated: `DEALLOCATE ALL`
/// (on servers where connections share one backend, the PGlite TimescaleDB
/// build used in tests, a previous client's prepared statements would
/// otherwise collide with ours), then JIT off (short, indexed queries: JIT
/// compilation costs more than it saves), and every execution of a prepared
/// statement planned with its parameters: the events and the minute and
/// hour levels are partitioned by time, and a window's bounds prune them
/// only when known at planning. Left to PostgreSQL, the sixth execution of
/// each statement on each connection also plans it generically, over every
/// partition (19 ms at bind for the overview on 10 M events, against 3 ms
/// for the whole request), and may keep that plan for every window.
async fn init_connection(conn: &mut PgConnection) -> sqlx::Result<()> {
    conn.execute("DEALLOCATE ALL").await?;
    conn.execute("SET jit = off").await?;
    conn.execute("SET plan_cache_mode = force_custom_plan")
        .await?;
    Ok(())
}

/// [`init_connection`], then the statement timeout if one is configured.
async fn init_pooled(
    conn: &mut PgConnection,
    statement_timeout_ms: Option<u64>,
) -> sqlx::Result<()> {
    init_connection(conn).await?;
    if let Some(ms) = statement_timeout_ms.filter(|ms| *ms > 0) {
        conn.execute(format!("SET statement_timeout = {ms}").as_str())
            .await?;
    }
    Ok(())
}

/// A pooled connection without a statement timeout, for migrations and
/// set-up (DDL on a large table takes what it takes); closed afterwards
/// rather than returned to the pool.
async fn unlimited(pool: &PgPool) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    conn.execute("SET statement_timeout = 0").await?;
    Ok(conn)
}

/// One dedicated connection (DDL, rebuild), set up like the pool's.
pub async fn connect_one(cfg: &DatabaseConfig) -> Result<PgConnection> {
    let mut conn = PgConnection::connect_with(&connect_options(cfg)?).await?;
    init_connection(&mut conn).await?;
    Ok(conn)
}

/// Connect, retrying for up to `wait` while the database comes up; every
/// connection goes through [`init_pooled`].
pub async fn connect(cfg: &DatabaseConfig, wait: Duration) -> Result<PgPool> {
    let deadline = tokio::time::Instant::now() + wait;
    let opts = connect_options(cfg)?;
    let timeout = cfg.statement_timeout_ms;
    loop {
        let attempt = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| Box::pin(init_pooled(conn, timeout)))
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
    let mut conn = unlimited(pool).await?;
    sqlx::migrate!("./migrations").run(&mut *conn).await?;
    Ok(())
}

/// Migrations, then the projection relations in the configured storage mode.
pub async fn prepare(pool: &PgPool, cfg: &DatabaseConfig) -> Result<crate::storage::Mode> {
    migrate(pool).await?;
    let mut conn = unlimited(pool).await?;
    let mode = crate::storage::setup(&mut conn, &cfg.storage).await?;
    tracing::info!(storage_mode = mode.as_str(), "projection storage ready");
    Ok(mode)
}

/// A database error that retrying the same rows cannot fix: the data itself
/// (SQLSTATE class 22: a value out of range, an invalid text) or an integrity
/// constraint (class 23), or a value that could not be encoded. Connection
/// losses, timeouts, serialization failures and deadlocks are transient.
pub fn is_permanent(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        sqlx::Error::Encode(_) => true,
        _ => false,
    }
}

/// [`is_permanent`] for the runtime's error type.
pub fn is_permanent_error(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Database(d) if is_permanent(d))
}
