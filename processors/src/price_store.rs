//! The price table in Postgres (`model_prices`): seed, load, reload.
//!
//! The bundled `prices.toml` (or `price_file`) only seeds an empty global
//! table, once, under an advisory lock; from then on Postgres is the truth
//! (admin endpoints, `agentops-query-api admin set-price`). Every processor
//! reloads the table every `price_reload_secs`.

use std::time::Duration;

use agentops_runtime::shutdown::CancellationToken;
use chrono::NaiveDate;
use sqlx::PgPool;

use crate::pricing::{ModelPrice, PriceTable, Prices};
use crate::Config;

/// Serializes seeding across processes (advisory lock key).
const SEED_LOCK: i64 = 0x4167_4f70_0003;

/// The seed file: `price_file` or the bundled table.
pub fn seed_table(config: &Config) -> agentops_runtime::Result<PriceTable> {
    match &config.price_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            PriceTable::parse(&text)
                .map_err(|e| agentops_runtime::Error::Config(format!("price file {path}: {e}")))
        }
        None => Ok(PriceTable::bundled()),
    }
}

/// Copy `seed`'s rows into the global table if it has none; returns how many.
pub async fn seed_if_empty(pool: &PgPool, seed: &PriceTable) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEED_LOCK)
        .execute(&mut *tx)
        .await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM model_prices WHERE org_id IS NULL")
        .fetch_one(&mut *tx)
        .await?;
    if n > 0 {
        return Ok(0);
    }
    let rows = seed.rows();
    macro_rules! col {
        ($f:expr) => {
            rows.iter().map($f).collect::<Vec<_>>()
        };
    }
    // Aliases go in as one text per row (`{a,b}` literals): Postgres has no
    // ragged arrays, so UNNEST cannot take a text[][] of varying widths.
    let aliases: Vec<String> = col!(|r| pg_text_array(&r.aliases));
    sqlx::query(
        "INSERT INTO model_prices (org_id, provider, model, aliases, effective_from, input,
             output, cache_read, cache_write, reasoning, created_by)
         SELECT NULL, provider, model, aliases::text[], effective_from, input, output,
             cache_read, cache_write, reasoning, 'seed'
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::float8[], $6::float8[],
             $7::float8[], $8::float8[], $9::float8[])
             AS t(provider, model, aliases, effective_from, input, output, cache_read,
                  cache_write, reasoning)",
    )
    .bind(col!(|r| r.provider.clone()))
    .bind(col!(|r| r.model.clone()))
    .bind(aliases)
    .bind(col!(|r| r.effective_from))
    .bind(col!(|r| r.input))
    .bind(col!(|r| r.output))
    .bind(col!(|r| r.cache_read))
    .bind(col!(|r| r.cache_write))
    .bind(col!(|r| r.reasoning))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// `{"a","b"}`: a Postgres text-array literal.
fn pg_text_array(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

/// One row of `model_prices` as [`load`] reads it.
#[derive(sqlx::FromRow)]
struct PriceRow {
    org_id: Option<String>,
    provider: String,
    model: String,
    aliases: Vec<String>,
    effective_from: NaiveDate,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    reasoning: Option<f64>,
}

impl From<PriceRow> for ModelPrice {
    fn from(r: PriceRow) -> ModelPrice {
        ModelPrice {
            org_id: r.org_id,
            provider: r.provider,
            model: r.model,
            aliases: r.aliases,
            effective_from: r.effective_from,
            input: r.input,
            output: r.output,
            cache_read: r.cache_read,
            cache_write: r.cache_write,
            reasoning: r.reasoning,
        }
    }
}

/// Every row of `model_prices` (global and every org's).
pub async fn load(pool: &PgPool) -> Result<PriceTable, sqlx::Error> {
    let rows: Vec<PriceRow> = sqlx::query_as(
        "SELECT org_id, provider, model, aliases, effective_from, input, output, cache_read,
                cache_write, reasoning
         FROM model_prices ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    let rows = rows.into_iter().map(ModelPrice::from).collect();
    let (table, conflicts) = PriceTable::build(rows);
    for c in conflicts {
        tracing::warn!(conflict = %c, "price table: name conflict, keeping the older row");
    }
    Ok(table)
}

/// Seed if needed and load the table (the processors at start, `recompute`).
pub async fn load_seeded(config: &Config, pool: &PgPool) -> agentops_runtime::Result<PriceTable> {
    let seed = seed_table(config)?;
    let seeded = seed_if_empty(pool, &seed).await?;
    if seeded > 0 {
        tracing::info!(rows = seeded, "price table seeded from the price file");
    }
    Ok(load(pool).await?)
}

/// Load the table now (seeded from the price file if empty).
pub async fn start(config: &Config, pool: &PgPool) -> agentops_runtime::Result<Prices> {
    let table = load_seeded(config, pool).await?;
    tracing::info!(rows = table.rows().len(), "price table loaded");
    crate::telemetry::price_rows(table.rows().len());
    Ok(Prices::new(table))
}

/// Reload the table into `prices` every `price_reload_secs` until
/// `shutdown` (a failed reload keeps the previous table). Run supervised
/// (`price_reload`, restarted on failure).
pub async fn reload(
    config: &Config,
    prices: Prices,
    pool: PgPool,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let every = Duration::from_secs(config.price_reload_secs.max(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        match load(&pool).await {
            Ok(t) => {
                if t.rows() != prices.current().rows() {
                    tracing::info!(rows = t.rows().len(), "price table reloaded");
                }
                crate::telemetry::price_rows(t.rows().len());
                prices.replace(t);
            }
            Err(e) => {
                tracing::warn!(error = %e, "price table reload failed; keeping the previous one")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_become_array_literals() {
        assert_eq!(pg_text_array(&[]), "{}");
        assert_eq!(
            pg_text_array(&["a".into(), "b-1".into()]),
            "{\"a\",\"b-1\"}"
        );
        assert_eq!(pg_text_array(&["q\"x\\".into()]), "{\"q\\\"x\\\\\"}");
    }
}
