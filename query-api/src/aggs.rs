//! Reading the aggregates: every window is served from the coarsest level
//! that fits it (minutes at the ragged start, then hours, then days), so a
//! 30-day overview reads a few hundred rows per series, not millions.

use chrono::{DateTime, Duration, DurationRound, Utc};

fn ceil(t: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let floor = t.duration_trunc(step).unwrap_or(t);
    if floor == t {
        t
    } else {
        floor + step
    }
}

/// Days the per-minute and per-hour levels are kept (0 = forever), as the
/// projections drop them (`database.storage.minute_retention_days`,
/// `hour_retention_days`): process-wide, set once at start from the
/// configuration ([`set_retention`]).
static KEPT: std::sync::RwLock<(u32, u32)> = std::sync::RwLock::new((35, 400));

/// The event attributes the per-tag levels (`agg_tag_1h`, `agg_tag_1d`)
/// hold (`database.storage.tag_keys`); `None` until [`set_retention`]: the
/// default ones.
static TAG_KEYS: std::sync::RwLock<Option<Vec<String>>> = std::sync::RwLock::new(None);

/// Read windows as the levels are kept per `cfg`, and tag groupings from
/// the keys its per-tag levels hold.
pub fn set_retention(cfg: &agentops_runtime::storage::StorageConfig) {
    let kept = (cfg.minute_retention_days, cfg.hour_retention_days);
    *KEPT
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = kept;
    *TAG_KEYS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cfg.tag_keys.clone());
}

/// The tag keys the per-tag levels hold ([`TAG_KEYS`]).
pub(crate) fn tag_keys() -> Vec<String> {
    TAG_KEYS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| {
            agentops_runtime::storage::DEFAULT_TAG_KEYS
                .iter()
                .map(|k| (*k).to_owned())
                .collect()
        })
}

/// Where a window bound `t` is read from, given what is kept: a bound
/// older than the minutes kept at a whole hour, older than the hours kept
/// at a whole day, rounding outwards (a start down, an end up: the window
/// read covers the one asked for). The second value: read at the day.
fn readable(
    t: DateTime<Utc>,
    now: DateTime<Utc>,
    kept: (u32, u32),
    is_end: bool,
) -> (DateTime<Utc>, bool) {
    let (minutes, hours) = kept;
    // Partitions are dropped by the day: what is kept starts at a midnight.
    let horizon = |days: u32| floor(now, Duration::days(1)) - Duration::days(i64::from(days));
    let round = |unit| {
        if is_end {
            ceil(t, unit)
        } else {
            floor(t, unit)
        }
    };
    if hours > 0 && t < horizon(hours) {
        (round(Duration::days(1)), true)
    } else if minutes > 0 && t < horizon(minutes) {
        (round(Duration::hours(1)), false)
    } else {
        (t, false)
    }
}

/// A series of points `bucket_secs` wide over the last `window_secs` reads
/// the per-minute levels (under an hour) or the per-hour ones (under a
/// day): refused, naming `bucket`, when that reaches past the days they
/// are kept.
pub(crate) fn series_kept(
    bucket_secs: i64,
    window_secs: i64,
) -> Result<(), crate::error::ApiError> {
    let (minutes, hours) = kept();
    let (days, what, coarser) = match bucket_secs {
        s if s < 3600 => (minutes, "minute", "1h"),
        s if s < 86_400 => (hours, "hour", "1d"),
        _ => return Ok(()),
    };
    if days > 0 && window_secs > i64::from(days) * 86_400 {
        return Err(crate::error::ApiError::BadParam {
            field: "bucket",
            message: format!(
                "per-{what} figures are kept {days} days (database.storage.{what}_retention_days); \
                 use a shorter window or bucket={coarser}"
            ),
        });
    }
    Ok(())
}

/// What is kept now ([`KEPT`]).
fn kept() -> (u32, u32) {
    *KEPT
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The bounds of a window `[start, end)` read in five parts, each from the
/// coarsest level that fits: minutes up to the first whole hour, hours up
/// to the first whole day, days, hours after the last whole day, minutes
/// after the last whole hour ([`span_rows`]). An open end (`None`) reads to
/// the latest bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(pub(crate) [DateTime<Utc>; 6]);

fn floor(t: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    t.duration_trunc(step).unwrap_or(t)
}

impl Span {
    pub(crate) fn new(
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        Self::kept(start, end, now, kept())
    }

    /// [`Span::new`] with the minute and hour levels kept `kept` days.
    fn kept(
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        kept: (u32, u32),
    ) -> Self {
        let (start, start_at_day) = readable(start, now, kept, false);
        let (end, end_at_day) = match end.map(|e| readable(e, now, kept, true)) {
            Some((e, at_day)) => (Some(e), at_day),
            None => (None, false),
        };
        // An open end: a midnight far beyond any event.
        let e = end.unwrap_or_else(|| {
            DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(now + Duration::days(3650))
        });
        let (hour, day) = (Duration::hours(1), Duration::days(1));
        let h_s = ceil(start, hour).min(e);
        // Whole days only pay off for windows of a few days (and are all
        // there is past the hours kept).
        let (d_s, d_e) =
            if start_at_day || end_at_day || end.unwrap_or(now) - start >= Duration::days(2) {
                let d_s = ceil(h_s, day).min(e);
                (d_s, floor(e, day).max(d_s))
            } else {
                let h = floor(e, hour).max(h_s);
                (h, h)
            };
        let h_e = floor(e, hour).max(d_e);
        Self([start, h_s, d_s, d_e, h_e, e])
    }

    /// When the span reads the level of `width` (`1h` or `1d`) only, the
    /// bounds `[from, to)` read from it: an hour span without minutes at
    /// either end nor whole days in the middle, or a day span without
    /// hours or minutes at either end.
    pub(crate) fn one_level(&self, width: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let b = &self.0;
        match width {
            "1h" if b[0] == b[1] && b[2] == b[3] && b[4] == b[5] => Some((b[1], b[4])),
            "1d" if b[0] == b[2] && b[3] == b[5] => Some((b[2], b[3])),
            _ => None,
        }
    }
}

/// Where a breakdown (per agent, workflow, model or provider) or a count
/// of distinct agents of a window of `window` starts or ends, for a bound
/// `t` of it: a window of 6 hours or more is read over whole hours, of 20
/// days or more over whole days, so that it never reads the per-minute rows
/// of every agent (a 24 h window would read up to an hour of them, more rows
/// than its 24 hours). The window grows by less than the rounding: at most
/// 59 minutes (4% of 24 h) or 23 h 59 min (5% of 20 days). The org's totals
/// (from the org levels) stay exact to the minute.
pub(crate) fn breakdown_bound(t: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    if window >= Duration::days(20) {
        floor(t, Duration::days(1))
    } else if window >= Duration::hours(6) {
        floor(t, Duration::hours(1))
    } else {
        t
    }
}

/// `SELECT {cols}` over the rows of org `$1` in a [`Span`] of the levels
/// of `family` (`agg`: per agent, workflow, provider and model; `agg_org`:
/// per org; `agg_agent`, `agg_workflow`, `agg_model`: per one dimension,
/// their minutes from `agg_1m`: `storage::family_level`), binding its six
/// bounds as `$2` .. `$7`. Every part has both bounds: a generic plan
/// (after five runs of a prepared statement) then still reads each level
/// through its index, whatever the bounds.
pub(crate) fn span_rows(family: &str, cols: &str) -> String {
    span_rows_at(family, cols, 2)
}

/// [`span_rows`] binding the six bounds as `$first` .. `$first + 5`.
pub(crate) fn span_rows_at(family: &str, cols: &str, first: u8) -> String {
    span_rows_where(family, cols, first, "")
}

/// [`span_rows`] of the rows with unpriced calls only: read through the
/// levels' partial index on them (`{level}_unpriced`), not every row of the
/// window.
pub(crate) fn unpriced_span_rows(family: &str, cols: &str) -> String {
    span_rows_where(family, cols, 2, " AND unpriced_calls > 0")
}

fn span_rows_where(family: &str, cols: &str, first: u8, cond: &str) -> String {
    let part = |width: &str, lo: u8| {
        format!(
            "SELECT {cols} FROM {rel} WHERE org_id = $1 AND bucket >= ${lo} AND bucket < ${}{cond}",
            lo + 1,
            rel = agentops_runtime::storage::family_level(family, width),
        )
    };
    [
        part("1m", first),
        part("1h", first + 1),
        part("1d", first + 2),
        part("1h", first + 3),
        part("1m", first + 4),
    ]
    .join("\n         UNION ALL\n         ")
}

/// The overview's figures of a window ([`Span`]); `errors_last_hour` counts
/// the errors of the hour before the window's end (or now).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Totals {
    pub(crate) completed: i64,
    pub(crate) failed: i64,
    pub(crate) cost: f64,
    pub(crate) events: i64,
    pub(crate) agents: i64,
    pub(crate) histogram: Vec<i64>,
    pub(crate) errors_last_hour: i64,
}

/// [`Totals`] of org `org` from `start` to `end` (None: up to now).
pub(crate) async fn overview_totals(
    pool: &sqlx::PgPool,
    org: &str,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> Result<Totals, sqlx::Error> {
    static OPEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static CLOSED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    // Everything but the active agents from the org levels (a row per
    // bucket). The active agents of a window up to now: those whose latest
    // event is in it (`agents.last_seen`, exact); of a past window: the
    // keys of the dimensioned levels (their unique index leads with org,
    // bucket, agent) over its whole hours or days ([`breakdown_bound`],
    // bound as `$10` .. `$15`).
    let build = |agents: String| {
        format!(
            "SELECT COALESCE(sum(runs_completed), 0)::int8 AS completed,
                    COALESCE(sum(runs_failed), 0)::int8 AS failed,
                    COALESCE(sum(cost_usd), 0)::float8 AS cost,
                    COALESCE(sum(events), 0)::int8 AS events,
                    ({agents}) AS agents,
                    {hist} AS histogram,
                    (SELECT COALESCE(sum(errors), 0)::int8 FROM agg_org_1m
                     WHERE org_id = $1 AND bucket >= $8 - interval '1 hour'
                       AND bucket < $9) AS errors_last_hour
             FROM ({rows}) a",
            hist = agentops_runtime::storage::merged_histogram_sql(),
            rows = span_rows(
                "agg_org",
                &format!(
                    "runs_completed, runs_failed, cost_usd, events, {}",
                    hist_columns()
                )
            ),
        )
    };
    let now = Utc::now();
    let span = Span::new(start, end, now);
    let sql = match end {
        None => OPEN.get_or_init(|| {
            build("SELECT count(*)::int8 FROM agents WHERE org_id = $1 AND last_seen >= $2".into())
        }),
        Some(_) => CLOSED.get_or_init(|| {
            // DISTINCT by hashing, not count(DISTINCT)'s sort.
            build(format!(
                "SELECT count(*)::int8 FROM (SELECT DISTINCT agent_id FROM ({}) d) d",
                span_rows_at("agg_agent", "agent_id", 10)
            ))
        }),
    };
    let mut q = sqlx::query_as(sql).bind(org);
    for b in span.0 {
        q = q.bind(b);
    }
    q = q.bind(end.unwrap_or(now)).bind(end.unwrap_or(span.0[5]));
    if let Some(e) = end {
        let window = e - start;
        let agents = Span::new(
            breakdown_bound(start, window),
            Some(breakdown_bound(e, window)),
            now,
        );
        for b in agents.0 {
            q = q.bind(b);
        }
    }
    q.fetch_one(pool).await
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
    fn spans_split_the_window() {
        let now = t("2026-11-22T10:17:00Z");
        let Span(b) = Span::new(now - Duration::hours(24), None, now);
        assert_eq!(b[1], t("2026-11-21T11:00:00Z"));
        assert!(
            b[2] > now && b[2..].iter().all(|x| *x == b[2]),
            "no days: {b:?}"
        );
        // 30 days: minutes to the first whole hour, hours to the first
        // whole day, then days.
        let Span(b) = Span::new(now - Duration::days(30), None, now);
        assert_eq!(
            (b[1], b[2]),
            (t("2026-10-23T11:00:00Z"), t("2026-10-24T00:00:00Z"))
        );
        assert!(b[3] > now);
        // A closed span comes back down to hours and minutes at its end.
        let start = t("2026-10-20T09:30:00Z");
        let end = t("2026-10-25T07:45:00Z");
        let Span(b) = Span::new(start, Some(end), now);
        assert_eq!(
            b,
            [
                start,
                t("2026-10-20T10:00:00Z"),
                t("2026-10-21T00:00:00Z"),
                t("2026-10-25T00:00:00Z"),
                t("2026-10-25T07:00:00Z"),
                end
            ]
        );
        // Short closed spans: no days; within one hour: minutes only.
        let Span(b) = Span::new(start, Some(t("2026-10-20T12:10:00Z")), now);
        assert_eq!(b[1], t("2026-10-20T10:00:00Z"));
        assert_eq!((b[2], b[3], b[4]), (b[4], b[4], t("2026-10-20T12:00:00Z")));
        let Span(b) = Span::new(start, Some(t("2026-10-20T09:50:00Z")), now);
        assert!(
            b[1..].iter().all(|x| *x == t("2026-10-20T09:50:00Z")),
            "{b:?}"
        );
        for Span(b) in [
            Span::new(start, Some(end), now),
            Span::new(start, None, now),
        ] {
            assert!(b.windows(2).all(|w| w[0] <= w[1]), "{b:?}");
        }
    }

    #[test]
    fn breakdowns_round_long_windows_to_hours_or_days() {
        let t0 = t("2026-11-22T10:17:00Z");
        assert_eq!(breakdown_bound(t0, Duration::hours(1)), t0);
        assert_eq!(
            breakdown_bound(t0, Duration::hours(24)),
            t("2026-11-22T10:00:00Z")
        );
        assert_eq!(
            breakdown_bound(t0, Duration::days(30)),
            t("2026-11-22T00:00:00Z")
        );
        // A 24 h window from a whole hour reads no minutes.
        let now = t("2026-11-22T10:17:00Z");
        let start = breakdown_bound(now - Duration::hours(24), Duration::hours(24));
        let Span(b) = Span::new(start, None, now);
        assert_eq!(b[0], b[1], "{b:?}");
    }

    #[test]
    fn spans_of_one_level() {
        let now = t("2026-11-22T10:17:00Z");
        // 24 h from a whole hour: hours only.
        let from = t("2026-11-21T10:00:00Z");
        let span = Span::new(from, None, now);
        let (lo, hi) = span.one_level("1h").unwrap();
        assert_eq!((lo, hi), (from, span.0[5]));
        assert_eq!(span.one_level("1d"), None);
        // From a minute: minutes first.
        assert_eq!(
            Span::new(t("2026-11-21T10:17:00Z"), None, now).one_level("1h"),
            None
        );
        // 7 days from a whole hour: hours, then days.
        let week = Span::new(t("2026-11-15T10:00:00Z"), None, now);
        assert_eq!((week.one_level("1h"), week.one_level("1d")), (None, None));
        // 30 days from a midnight: days only.
        let month = Span::new(t("2026-10-23T00:00:00Z"), None, now);
        assert_eq!(
            month.one_level("1d"),
            Some((t("2026-10-23T00:00:00Z"), month.0[5]))
        );
        assert_eq!(month.one_level("1h"), None);
        assert_eq!(month.one_level("1m"), None);
    }

    #[test]
    fn bounds_past_what_is_kept_move_to_the_hour_or_the_day() {
        let now = t("2026-11-22T10:17:00Z");
        // Minutes kept 10 days (from 2026-11-12 00:00), hours 20 (from 11-02).
        let kept = (10, 20);
        let recent = t("2026-11-15T08:41:00Z");
        assert_eq!(readable(recent, now, kept, false), (recent, false));
        assert_eq!(
            readable(t("2026-11-11T23:59:00Z"), now, kept, false),
            (t("2026-11-11T23:00:00Z"), false)
        );
        assert_eq!(
            readable(t("2026-11-11T23:59:00Z"), now, kept, true),
            (t("2026-11-12T00:00:00Z"), false)
        );
        assert_eq!(
            readable(t("2026-11-01T13:30:00Z"), now, kept, false),
            (t("2026-11-01T00:00:00Z"), true)
        );
        assert_eq!(readable(recent, now, (0, 0), false), (recent, false));
        // A 30-day window up to now: no minutes at its start.
        let Span(b) = Span::kept(t("2026-10-23T10:17:00Z"), None, now, kept);
        assert_eq!(b[0], t("2026-10-23T00:00:00Z"));
        assert_eq!(b[0], b[2], "{b:?}");
        let Span(b) = Span::kept(t("2026-11-08T10:17:00Z"), None, now, kept);
        assert_eq!((b[0], b[1]), (b[1], t("2026-11-08T10:00:00Z")));
        // A short closed window past the hours kept: read from the days.
        let Span(b) = Span::kept(
            t("2026-10-20T09:50:00Z"),
            Some(t("2026-10-20T12:10:00Z")),
            now,
            kept,
        );
        let (d0, d1) = (t("2026-10-20T00:00:00Z"), t("2026-10-21T00:00:00Z"));
        assert_eq!(b, [d0, d0, d0, d1, d1, d1]);
    }

    #[test]
    fn minute_series_stop_at_the_minutes_kept() {
        // The defaults: minutes 35 days, hours 400.
        assert!(series_kept(900, 30 * 86_400).is_ok());
        let err = series_kept(900, 40 * 86_400).unwrap_err();
        assert!(
            format!("{err:?}").contains("minute_retention_days"),
            "{err:?}"
        );
        assert!(series_kept(3600, 90 * 86_400).is_ok());
        assert!(series_kept(86_400, 5000 * 86_400).is_ok());
    }
}
