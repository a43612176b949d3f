//! Plain mode: daily partitions of `events`, created as events arrive and
//! dropped past retention.

use chrono::NaiveDate;
use sqlx::PgConnection;

use super::exec;
use crate::Result;

/// Name of the daily partition of `events` holding `day` (plain mode).
pub fn partition_name(day: NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

/// Plain mode: create the daily partitions for `days` if missing. Runs
/// outside the batch transaction; a concurrent creator is harmless.
pub async fn ensure_partitions(conn: &mut PgConnection, days: &[NaiveDate]) -> Result<()> {
    for &day in days {
        let next = day.succ_opt().unwrap_or(day);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF events
             FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
            partition_name(day)
        );
        if let Err(e) = sqlx::raw_sql(&sql).execute(&mut *conn).await {
            // Lost a race with another worker creating the same partition?
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(partition_name(day))
                .fetch_one(&mut *conn)
                .await?;
            if !exists {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// Plain mode: drop daily partitions of `events` older than `retention_days`.
/// Returns how many were dropped.
pub async fn drop_expired_partitions(
    conn: &mut PgConnection,
    retention_days: u32,
    today: NaiveDate,
) -> Result<usize> {
    if retention_days == 0 {
        return Ok(0);
    }
    let parts: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'events'::regclass",
    )
    .fetch_all(&mut *conn)
    .await?;
    let cutoff = today - chrono::Days::new(u64::from(retention_days));
    let mut dropped = 0;
    for name in parts {
        let Some(day) = name
            .strip_prefix("events_p")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        if day < cutoff {
            exec(conn, &format!("DROP TABLE IF EXISTS {name}")).await?;
            tracing::info!(partition = %name, "dropped expired events partition");
            dropped += 1;
        }
    }
    Ok(dropped)
}
