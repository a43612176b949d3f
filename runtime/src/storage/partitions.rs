//! Plain mode: the range partitions of `events` (daily), the per-minute
//! levels (daily) and the per-hour levels (monthly), created as events
//! arrive and dropped whole past their retention, never deleted row by row.
//! The per-tag hour level (`agg_tag_1h`, a worker-maintained table in both
//! modes) is partitioned by month in TimescaleDB mode too
//! ([`partitioned_in`]).
//!
//! A partition is named after its first day, `{table}_pYYYYMMDD`. A level
//! table from before partitioning becomes one partition `{table}_preYYYYMMDD`
//! holding everything before that day (its upper bound); it is dropped when
//! that day falls out of retention.

use chrono::{Datelike, Days, Months, NaiveDate};
use sqlx::PgConnection;

use super::{exec, Mode, StorageConfig, LEVELS, TAG_LEVELS};
use crate::Result;

/// How a plain-mode table is partitioned by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    /// First day of the partition holding `day`.
    pub fn first(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// First day after the partition starting at `first`.
    pub fn next(self, first: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => first + Days::new(1),
            Period::Month => first + Months::new(1),
        }
    }
}

/// A partitioned plain-mode table: name, time column, partition width and
/// its retention setting.
#[derive(Debug, Clone, Copy)]
pub struct Partitioned {
    pub table: &'static str,
    pub period: Period,
    /// Width whose retention applies (`StorageConfig::retention_days`);
    /// `None`: raw events (`raw_retention_days`).
    width: Option<&'static str>,
}

impl Partitioned {
    /// Days this table is kept (0 = forever).
    pub fn retention_days(&self, cfg: &StorageConfig) -> u32 {
        self.width
            .map_or(cfg.raw_retention_days, |w| cfg.retention_days(w))
    }
}

/// The partition width of a level of `width`, if it is partitioned (the
/// per-day levels are small and kept: not partitioned).
pub(super) fn level_period(width: &str) -> Option<Period> {
    match width {
        "1 minute" => Some(Period::Day),
        "1 hour" => Some(Period::Month),
        _ => None,
    }
}

/// Every partitioned table of plain mode: `events`, then the levels.
pub fn partitioned() -> impl Iterator<Item = Partitioned> {
    std::iter::once(Partitioned {
        table: "events",
        period: Period::Day,
        width: None,
    })
    .chain(LEVELS.iter().chain(&TAG_LEVELS).filter_map(|l| {
        level_period(l.width).map(|period| Partitioned {
            table: l.name,
            period,
            width: Some(l.width),
        })
    }))
}

/// The tables partitioned by the workers in `mode`: every one of
/// [`partitioned`] in plain mode; in TimescaleDB mode (a hypertable and
/// continuous aggregates elsewhere) the per-tag hour level only.
pub fn partitioned_in(mode: Mode) -> impl Iterator<Item = Partitioned> {
    partitioned()
        .filter(move |p| mode == Mode::Postgres || TAG_LEVELS.iter().any(|l| l.name == p.table))
}

/// Name of the partition of `table` starting at `first`.
pub fn partition_of(table: &str, first: NaiveDate) -> String {
    format!("{table}_p{}", first.format("%Y%m%d"))
}

/// Name of the daily partition of `events` holding `day` (plain mode).
pub fn partition_name(day: NaiveDate) -> String {
    partition_of("events", day)
}

/// Name of a level's pre-partitioning rows, kept as one partition up to
/// (not including) `upper`.
pub(super) fn legacy_partition(table: &str, upper: NaiveDate) -> String {
    format!("{table}_pre{}", upper.format("%Y%m%d"))
}

fn ymd(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y%m%d").ok()
}

/// The first day after the rows of partition `name` of `p`, if it is one
/// of ours.
fn upper_bound(p: &Partitioned, name: &str) -> Option<NaiveDate> {
    let rest = name.strip_prefix(p.table)?.strip_prefix("_p")?;
    match rest.strip_prefix("re") {
        Some(upper) => ymd(upper),
        None => ymd(rest).map(|first| p.period.next(first)),
    }
}

async fn children(conn: &mut PgConnection, table: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = to_regclass($1)",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?)
}

/// Plain mode: create the partitions of every partitioned table holding
/// `days`, if missing. Runs outside the batch transaction; a concurrent
/// creator is harmless.
pub async fn ensure_partitions(conn: &mut PgConnection, days: &[NaiveDate]) -> Result<()> {
    ensure_partitions_of(conn, partitioned(), days).await
}

/// [`ensure_partitions`] of some of the partitioned tables only.
pub async fn ensure_partitions_of(
    conn: &mut PgConnection,
    tables: impl Iterator<Item = Partitioned>,
    days: &[NaiveDate],
) -> Result<()> {
    for p in tables {
        // Days before a pre-partitioning partition's bound are its own.
        let legacy = children(conn, p.table)
            .await?
            .iter()
            .filter(|n| n.starts_with(&format!("{}_pre", p.table)))
            .filter_map(|n| upper_bound(&p, n))
            .max();
        let mut firsts: Vec<NaiveDate> = days
            .iter()
            .filter(|d| legacy.is_none_or(|upper| **d >= upper))
            .map(|d| p.period.first(*d))
            .collect();
        firsts.sort();
        firsts.dedup();
        for first in firsts {
            let name = partition_of(p.table, first);
            let next = p.period.next(first);
            // Level rows are updated batch after batch: room on the page
            // keeps those updates HOT (no new index entries).
            let with = if p.table == "events" {
                ""
            } else {
                " WITH (fillfactor = 70)"
            };
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table}
                 FOR VALUES FROM ('{first} 00:00:00+00') TO ('{next} 00:00:00+00'){with}",
                table = p.table,
            );
            if let Err(e) = sqlx::raw_sql(&sql).execute(&mut *conn).await {
                // Lost a race with another worker creating the same partition?
                let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(&name)
                    .fetch_one(&mut *conn)
                    .await?;
                if !exists {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}

/// Drop the partitions of every table partitioned in `mode`
/// ([`partitioned_in`]) whose rows are all older than its retention
/// (`today` minus the days kept). Returns the names dropped.
pub async fn drop_expired_partitions(
    conn: &mut PgConnection,
    mode: Mode,
    cfg: &StorageConfig,
    today: NaiveDate,
) -> Result<Vec<String>> {
    let mut dropped = Vec::new();
    for p in partitioned_in(mode) {
        let days = p.retention_days(cfg);
        if days == 0 {
            continue;
        }
        let cutoff = today - Days::new(u64::from(days));
        for name in children(conn, p.table).await? {
            if upper_bound(&p, &name).is_some_and(|upper| upper <= cutoff) {
                exec(conn, &format!("DROP TABLE IF EXISTS {name}")).await?;
                tracing::info!(partition = %name, table = p.table, "dropped an expired partition");
                dropped.push(name);
            }
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn minutes_by_day_hours_by_month_days_whole() {
        let tables: Vec<(&str, Period)> = partitioned().map(|p| (p.table, p.period)).collect();
        assert_eq!(
            tables,
            [
                ("events", Period::Day),
                ("agg_1m", Period::Day),
                ("agg_1h", Period::Month),
                ("agg_org_1m", Period::Day),
                ("agg_org_1h", Period::Month),
                ("agg_agent_1h", Period::Month),
                ("agg_workflow_1h", Period::Month),
                ("agg_model_1h", Period::Month),
                ("agg_tag_1h", Period::Month),
            ]
        );
        let cfg = StorageConfig::default();
        let kept: Vec<u32> = partitioned().map(|p| p.retention_days(&cfg)).collect();
        assert_eq!(kept, [30, 35, 400, 35, 400, 400, 400, 400, 400]);
        let ts: Vec<&str> = partitioned_in(Mode::Timescaledb).map(|p| p.table).collect();
        assert_eq!(ts, ["agg_tag_1h"]);
        assert_eq!(
            partitioned_in(Mode::Postgres).count(),
            partitioned().count()
        );
    }

    #[test]
    fn partition_bounds_from_names() {
        let mut it = partitioned();
        let events = it.next().unwrap();
        let minutes = it.next().unwrap();
        let hours = it.next().unwrap();
        assert_eq!(partition_name(d("2026-12-05")), "events_p20261205");
        assert_eq!(
            upper_bound(&events, "events_p20261231"),
            Some(d("2027-01-01"))
        );
        assert_eq!(
            upper_bound(&minutes, "agg_1m_p20261205"),
            Some(d("2026-12-06"))
        );
        assert_eq!(
            upper_bound(
                &hours,
                &partition_of("agg_1h", hours.period.first(d("2026-12-05")))
            ),
            Some(d("2027-01-01"))
        );
        assert_eq!(
            upper_bound(&hours, &legacy_partition("agg_1h", d("2027-01-01"))),
            Some(d("2027-01-01"))
        );
        // Another table's partitions, or names that are not ours.
        assert_eq!(upper_bound(&minutes, "agg_1h_p20261201"), None);
        assert_eq!(upper_bound(&minutes, "agg_1m_old"), None);
        assert_eq!(upper_bound(&events, "events_p2026"), None);
    }
}
