//! Reading the aggregates: every window is served from the coarsest level
//! that fits it (minutes at the ragged start, then hours, then days), so a
//! 30-day overview reads a few hundred rows per series, not millions.

use chrono::{DateTime, Duration, DurationRound, Utc};

/// Bounds of the three levels for a window starting at `start`:
/// `agg_1m` covers [start, hours), `agg_1h` [hours, days), `agg_1d` [days, ∞).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    pub(crate) start: DateTime<Utc>,
    pub(crate) hours: DateTime<Utc>,
    pub(crate) days: DateTime<Utc>,
}

fn ceil(t: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let floor = t.duration_trunc(step).unwrap_or(t);
    if floor == t {
        t
    } else {
        floor + step
    }
}

impl Levels {
    pub(crate) fn new(start: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let hours = ceil(start, Duration::hours(1)).min(now + Duration::days(1));
        // Whole days only pay off for windows of a few days.
        let days = if now - start >= Duration::days(2) {
            ceil(hours, Duration::days(1))
        } else {
            now + Duration::days(1)
        };
        Self { start, hours, days }
    }
}

/// `SELECT {cols}` over the rows of org `$1` in the window, binding
/// `$2` = start, `$3` = hours, `$4` = days of [`Levels`].
pub(crate) fn window_rows(cols: &str) -> String {
    format!(
        "SELECT {cols} FROM agg_1m WHERE org_id = $1 AND bucket >= $2 AND bucket < $3
         UNION ALL
         SELECT {cols} FROM agg_1h WHERE org_id = $1 AND bucket >= $3 AND bucket < $4
         UNION ALL
         SELECT {cols} FROM agg_1d WHERE org_id = $1 AND bucket >= $4"
    )
}

/// Every histogram column of the aggregates, comma-separated.
pub(crate) fn hist_columns() -> &'static str {
    static COLS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COLS.get_or_init(|| {
        (0..agentops_schemas::histogram::BUCKETS)
            .map(agentops_runtime::storage::hist_column)
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn levels_split_the_window() {
        let now = t("2026-11-22T10:17:00Z");
        let l = Levels::new(now - Duration::hours(24), now);
        assert_eq!(l.hours, t("2026-11-21T11:00:00Z"));
        assert!(l.days > now, "a 24h window does not read days");
        let l = Levels::new(now - Duration::days(30), now);
        assert_eq!(l.hours, t("2026-10-23T11:00:00Z"));
        assert_eq!(l.days, t("2026-10-24T00:00:00Z"));
        let aligned = t("2026-11-22T09:00:00Z");
        assert_eq!(Levels::new(aligned, now).hours, aligned);
    }
}
