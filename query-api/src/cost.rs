//! The cost explorer and the window comparison.
//!
//! `GET /v1/metrics/cost?group=agent|workflow|model|provider|tag:<key>&window=24h&bucket=1h&limit=10`:
//! the window's spend per group, largest first: the top `limit` groups
//! (1–25, default 10) and the rest summed as `(other)`; a row without the
//! dimension (a run with no workflow, an event without the tag) is
//! `(none)`, so the groups add up to the overview's spend. Each group has
//! its finished runs, LLM calls and unpriced calls (LLM calls with tokens
//! but no cost: no price for the model). `series` is the spend of the same
//! keys per `bucket` (1m, 5m, 15m, 1h or 1d; at most 1,000 points), from the
//! window's start floored to the bucket, every key at every point.
//! `unpriced` counts the window's unpriced calls by provider and model (at
//! most 100 models), whatever the grouping. Agent, workflow, model and
//! provider groups read the aggregates through the overview's window split
//! (whole hours for a window of 6 hours or more: `aggs::breakdown_bound`).
//! Tag groups read the per-tag levels (`agg_tag_1h`, `agg_tag_1d`), so only
//! the keys they hold (`database.storage.tag_keys`; another key is refused,
//! naming `group`), over whole hours whatever the window (its start floored
//! to the hour; to the day from 20 days) and with points per hour or day
//! (a smaller bucket is answered per hour, `bucket` saying so); `(none)` is
//! the org levels' spend less the tagged rows' (an attribute value longer
//! than the levels keep, 256 bytes, counts there).
//!
//! When the groups' window is read from the points' level alone (an hourly
//! series of a window of 6 hours to 2 days, a daily one of 20 days or more),
//! one statement reads its rows once for both the ranking and the named
//! keys' points.
//!
//! `GET /v1/metrics/compare?window=24h`: the overview's figures for the
//! window and for the one before it, of the same length (`from`, `to` of
//! each; the current one is open-ended like the overview; the previous
//! one's `errors_last_hour` is its own last hour).

use std::collections::HashMap;

use agentops_runtime::keys::Scope;
use agentops_runtime::storage;
use agentops_schemas::histogram;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use axum::Json;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::aggs::{
    breakdown_bound, overview_totals, span_rows, span_rows_at, unpriced_span_rows, Span, Totals,
};
use crate::error::ApiError;
use crate::params::{limit_param, Query};
use crate::routes::{Access, Routes};
use crate::state::{authenticate, Shared};
use crate::window::parse_secs;

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(cost, compare))]
pub(crate) struct Doc;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .add(
            "/v1/metrics/cost",
            &[(Method::GET, Access::Read)],
            get(cost),
        )
        .add(
            "/v1/metrics/compare",
            &[(Method::GET, Access::Read)],
            get(compare),
        )
}

/// The key of everything past the top groups.
const OTHER: &str = "(other)";
/// The key of rows without the dimension.
const NONE: &str = "(none)";
/// Most points of a series.
const MAX_POINTS: i64 = 1000;

/// What the spend is grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Group {
    /// An aggregate column.
    Column(&'static str),
    /// An event attribute the per-tag levels hold.
    Tag(String),
}

fn parse_group(raw: Option<&str>) -> Result<Group, ApiError> {
    let g = raw.unwrap_or("agent");
    let bad = |message| ApiError::BadParam {
        field: "group",
        message,
    };
    Ok(match g {
        "agent" => Group::Column("agent_id"),
        "workflow" => Group::Column("workflow_id"),
        "model" => Group::Column("model"),
        "provider" => Group::Column("provider"),
        _ => match g.strip_prefix("tag:") {
            Some(k) if !k.is_empty() && k.len() <= 64 && !k.chars().any(char::is_control) => {
                let keys = crate::aggs::tag_keys();
                if !keys.iter().any(|c| c == k) {
                    return Err(bad(not_rolled_up(k, &keys)));
                }
                Group::Tag(k.to_owned())
            }
            _ => {
                return Err(bad(format!(
                    "`{g}` is not one of agent, workflow, model, provider, tag:<key>"
                )))
            }
        },
    })
}

/// Why `tag:{key}` is refused, with the keys that can be asked for.
fn not_rolled_up(key: &str, keys: &[String]) -> String {
    let held = if keys.is_empty() {
        "none (the list is empty)".to_owned()
    } else {
        keys.join(", ")
    };
    format!(
        "`{key}` is not a rolled-up tag key; tag groups read the keys of \
         database.storage.tag_keys: {held}"
    )
}

fn window(raw: Option<&str>) -> Result<(String, i64), ApiError> {
    let w = raw.unwrap_or("24h");
    parse_secs(w)
        .map(|s| (w.to_owned(), s))
        .ok_or_else(|| ApiError::BadParam {
            field: "window",
            message: format!(
                "`{w}` is not a duration like 15m, 24h or 7d (at most {}d)",
                crate::window::MAX_WINDOW_SECS / 86_400
            ),
        })
}

/// `bucket=`: its width and the width of the aggregate level its points
/// are read from (`1m`, `1h` or `1d`).
fn bucket(raw: Option<&str>, window_secs: i64) -> Result<(String, i64, &'static str), ApiError> {
    let b = raw.unwrap_or("1h");
    let (secs, relation) = match b {
        "1m" => (60, "1m"),
        "5m" => (300, "1m"),
        "15m" => (900, "1m"),
        "1h" => (3600, "1h"),
        "1d" => (86_400, "1d"),
        _ => {
            return Err(ApiError::BadParam {
                field: "bucket",
                message: format!("`{b}` is not one of 1m, 5m, 15m, 1h, 1d"),
            })
        }
    };
    if window_secs / secs > MAX_POINTS {
        return Err(ApiError::BadParam {
            field: "bucket",
            message: format!("more than {MAX_POINTS} points; use a larger bucket"),
        });
    }
    crate::aggs::series_kept(secs, window_secs)?;
    Ok((b.to_owned(), secs, relation))
}

#[derive(Deserialize)]
struct CostQuery {
    group: Option<String>,
    window: Option<String>,
    bucket: Option<String>,
    limit: Option<String>,
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    key: String,
    cost_usd: f64,
    runs: i64,
    llm_calls: i64,
    unpriced_calls: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Point {
    ts: DateTime<Utc>,
    key: String,
    cost_usd: f64,
}

/// The org's spend per point of a series.
type PointTotals = Vec<(DateTime<Utc>, f64)>;

/// A row of a statement reading points and the org's spend per point: a
/// key's point, or the total (`key` NULL).
#[derive(sqlx::FromRow)]
struct PointRow {
    ts: DateTime<Utc>,
    key: Option<String>,
    cost_usd: f64,
}

/// A row of the one-pass statement ([`one_pass`]): a group (`ts` NULL,
/// with its `rank`), a named key's point or the org's total at a point
/// (`key` NULL).
#[derive(sqlx::FromRow)]
struct PassRow {
    ts: Option<DateTime<Utc>>,
    key: Option<String>,
    cost_usd: f64,
    runs: i64,
    llm_calls: i64,
    unpriced_calls: i64,
    rank: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Unpriced {
    /// The window's unpriced calls in all (one row), not a model's.
    total: bool,
    provider: Option<String>,
    model: Option<String>,
    calls: i64,
}

/// What a cost request reads, beside its grouping.
struct Read<'a> {
    pool: &'a sqlx::PgPool,
    org: &'a str,
    /// How many groups are named.
    limit: i64,
    /// The series' first point, its width and the width of the level its
    /// points are read from (`1m`, `1h`, `1d`).
    first: DateTime<Utc>,
    bucket_secs: i64,
    level_width: &'static str,
    now: DateTime<Utc>,
}

/// The spend of `source` per key and bucket of the series (`$bucket`:
/// its width in seconds).
fn binned(bucket_param: u8) -> String {
    format!("date_bin(${bucket_param} * interval '1 second', bucket, TIMESTAMPTZ '2000-01-01')")
}

/// Ranks the groups of `source` (rows with `key`, `cost_usd`, `runs`,
/// `llm_calls`, `unpriced_calls`), keeping the first `$limit` and summing the
/// rest as `(other)`.
fn ranked(source: &str, limit_param: u8) -> String {
    format!(
        "WITH g AS ({source}), r AS (
             SELECT g.*, row_number() OVER (ORDER BY cost_usd DESC, key) AS rank FROM g)
         SELECT CASE WHEN rank <= ${limit_param} THEN key ELSE '{OTHER}' END AS key,
                sum(cost_usd)::float8 AS cost_usd, sum(runs)::int8 AS runs,
                sum(llm_calls)::int8 AS llm_calls, sum(unpriced_calls)::int8 AS unpriced_calls,
                min(rank) AS rank
         FROM r GROUP BY 1 ORDER BY rank"
    )
}

#[utoipa::path(get, path = "/v1/metrics/cost", tag = "metrics", params(crate::openapi::reads::CostQuery),
    responses((status = 200, description = "Largest groups first", body = crate::openapi::reads::Cost)))]
async fn cost(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<CostQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let group = parse_group(q.group.as_deref())?;
    let (window, secs) = window(q.window.as_deref())?;
    let raw_bucket = match (&group, q.bucket.as_deref()) {
        // The per-tag levels have no minutes: hourly points at the finest
        // (the answer's `bucket` says so).
        (Group::Tag(_), Some("1m" | "5m" | "15m")) => Some("1h"),
        (_, b) => b,
    };
    let (bucket, bucket_secs, level_width) = bucket(raw_bucket, secs)?;
    let limit = limit_param(q.limit.as_deref(), 10, 25)?;
    let now = Utc::now();
    let start = now - Duration::seconds(secs);
    let breakdown_start = breakdown_bound(start, Duration::seconds(secs));
    let from = start.timestamp() - start.timestamp().rem_euclid(bucket_secs);
    let read = Read {
        pool: &s.pool,
        org: key.org_id.as_str(),
        limit,
        first: DateTime::from_timestamp(from, 0).unwrap_or(start),
        bucket_secs,
        level_width,
        now,
    };

    let (groups, points) = match &group {
        Group::Column(col) => column_groups(&read, col, breakdown_start).await?,
        Group::Tag(tag) => {
            // The per-tag levels have no minutes: whole hours.
            let hour = breakdown_start
                .duration_trunc(Duration::hours(1))
                .unwrap_or(breakdown_start);
            tag_groups(&read, tag, hour).await?
        }
    };
    let (unpriced_total, unpriced) = unpriced(&read, breakdown_start, start).await?;

    let keys: Vec<String> = groups.iter().map(|g| g.key.clone()).collect();
    let series = dense(&points, &keys, read.first, now, bucket_secs);
    let group_name = match &group {
        Group::Column(c) => c.trim_end_matches("_id").to_owned(),
        Group::Tag(k) => format!("tag:{k}"),
    };
    Ok(Json(json!({
        "group": group_name,
        "window": window,
        "bucket": bucket,
        "groups": groups.iter().map(|g| json!({
            "key": g.key, "cost_usd": g.cost_usd, "runs": g.runs,
            "llm_calls": g.llm_calls, "unpriced_calls": g.unpriced_calls,
        })).collect::<Vec<_>>(),
        "series": series,
        "unpriced": {
            "calls": unpriced_total,
            "models": unpriced.iter().map(|u| json!({
                "provider": u.provider, "model": u.model, "calls": u.calls,
            })).collect::<Vec<_>>(),
        },
    })))
}

/// Groups and points by an aggregate column `col`, the groups over the
/// window from `start` ([`breakdown_bound`]).
async fn column_groups(
    r: &Read<'_>,
    col: &str,
    start: DateTime<Utc>,
) -> Result<(Vec<GroupRow>, Vec<Point>), sqlx::Error> {
    // The levels keyed by that column alone.
    let family = storage::family_for(&[col]);
    let relation = storage::family_level(family, r.level_width);
    let dim = format!("COALESCE(NULLIF({col}, ''), '{NONE}')");
    let span = Span::new(start, None, r.now);
    if let Some((lo, hi)) = span
        .one_level(r.level_width)
        .filter(|(lo, _)| *lo == r.first)
    {
        return one_pass(r, &relation, &dim, lo, hi).await;
    }
    let source = format!(
        "SELECT {dim} AS key, COALESCE(sum(cost_usd), 0)::float8 AS cost_usd,
                COALESCE(sum(runs_completed + runs_failed), 0)::int8 AS runs,
                COALESCE(sum(llm_calls), 0)::int8 AS llm_calls,
                COALESCE(sum(unpriced_calls), 0)::int8 AS unpriced_calls
         FROM ({}) a GROUP BY 1",
        span_rows(
            family,
            &format!("{col}, cost_usd, runs_completed, runs_failed, llm_calls, unpriced_calls")
        )
    );
    let sql = ranked(&source, 8);
    let mut gq = sqlx::query_as(&sql).bind(r.org);
    for b in span.0 {
        gq = gq.bind(b);
    }
    let groups: Vec<GroupRow> = gq.bind(r.limit).fetch_all(r.pool).await?;
    let top = top_keys(&groups);
    // The named keys' points read through the index (the key is in it: a
    // few rows per point, not every key's); `(other)` is the org's spend
    // per point (its own level) less theirs.
    let named = if top.iter().any(|k| k == NONE) {
        format!("({col} = ANY($4) OR COALESCE({col}, '') = '')")
    } else {
        format!("{col} = ANY($4)")
    };
    let rows: Vec<PointRow> = sqlx::query_as(&format!(
        "SELECT {bin} AS ts, {dim} AS key, COALESCE(sum(cost_usd), 0)::float8 AS cost_usd
         FROM {relation} WHERE org_id = $1 AND bucket >= $2 AND {named}
         GROUP BY 1, 2
         UNION ALL
         SELECT {bin}, NULL, COALESCE(sum(cost_usd), 0)::float8
         FROM {org_level} WHERE org_id = $1 AND bucket >= $2 GROUP BY 1",
        bin = binned(3),
        org_level = storage::family_level("agg_org", r.level_width),
    ))
    .bind(r.org)
    .bind(r.first)
    .bind(r.bucket_secs)
    .bind(&top)
    .fetch_all(r.pool)
    .await?;
    let (points, totals) = split_totals(rows);
    let points = if groups.iter().any(|g| g.key == OTHER) {
        with_rest(points, &totals, OTHER)
    } else {
        points
    };
    Ok((groups, points))
}

/// Groups and points of a window read from one level only (`relation`,
/// `[lo, hi)`, `lo` the series' first point): its rows read once (not once
/// to rank and again, per named key, for the points), ranked, the named
/// keys' points from the same rows, the org's spend per point from its own
/// level for `(other)`. One statement.
async fn one_pass(
    r: &Read<'_>,
    relation: &str,
    dim: &str,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
) -> Result<(Vec<GroupRow>, Vec<Point>), sqlx::Error> {
    let bin = binned(5);
    let sql = format!(
        "WITH a AS MATERIALIZED (
             SELECT bucket, {dim} AS key, cost_usd, runs_completed + runs_failed AS runs,
                    llm_calls, unpriced_calls
             FROM {relation} WHERE org_id = $1 AND bucket >= $2 AND bucket < $3),
         k AS MATERIALIZED (
             SELECT key, COALESCE(sum(cost_usd), 0)::float8 AS cost_usd,
                    COALESCE(sum(runs), 0)::int8 AS runs,
                    COALESCE(sum(llm_calls), 0)::int8 AS llm_calls,
                    COALESCE(sum(unpriced_calls), 0)::int8 AS unpriced_calls,
                    row_number() OVER (ORDER BY COALESCE(sum(cost_usd), 0) DESC, key) AS rank
             FROM a GROUP BY key)
         SELECT NULL::timestamptz AS ts,
                CASE WHEN rank <= $4 THEN key ELSE '{OTHER}' END AS key,
                sum(cost_usd)::float8 AS cost_usd, sum(runs)::int8 AS runs,
                sum(llm_calls)::int8 AS llm_calls, sum(unpriced_calls)::int8 AS unpriced_calls,
                min(rank) AS rank
         FROM k GROUP BY 2
         UNION ALL
         SELECT {bin}, key, COALESCE(sum(cost_usd), 0)::float8, 0, 0, 0, NULL
         FROM a WHERE key IN (SELECT key FROM k WHERE rank <= $4) GROUP BY 1, 2
         UNION ALL
         SELECT {bin}, NULL, COALESCE(sum(cost_usd), 0)::float8, 0, 0, 0, NULL
         FROM {org_level} WHERE org_id = $1 AND bucket >= $2 AND bucket < $3 GROUP BY 1",
        org_level = storage::family_level("agg_org", r.level_width),
    );
    let rows: Vec<PassRow> = sqlx::query_as(&sql)
        .bind(r.org)
        .bind(lo)
        .bind(hi)
        .bind(r.limit)
        .bind(r.bucket_secs)
        .fetch_all(r.pool)
        .await?;
    let (groups, points, totals) = split_pass(rows);
    let points = if groups.iter().any(|g| g.key == OTHER) {
        with_rest(points, &totals, OTHER)
    } else {
        points
    };
    Ok((groups, points))
}

/// [`one_pass`]'s rows: the groups in rank order, the named keys' points,
/// the org's spend per point.
fn split_pass(rows: Vec<PassRow>) -> (Vec<GroupRow>, Vec<Point>, PointTotals) {
    let mut groups = Vec::new();
    let mut points = Vec::new();
    let mut totals = Vec::new();
    for row in rows {
        match (row.ts, row.key) {
            (None, Some(key)) => groups.push((
                row.rank.unwrap_or(i64::MAX),
                GroupRow {
                    key,
                    cost_usd: row.cost_usd,
                    runs: row.runs,
                    llm_calls: row.llm_calls,
                    unpriced_calls: row.unpriced_calls,
                },
            )),
            (Some(ts), Some(key)) => points.push(Point {
                ts,
                key,
                cost_usd: row.cost_usd,
            }),
            (Some(ts), None) => totals.push((ts, row.cost_usd)),
            (None, None) => {}
        }
    }
    groups.sort_by_key(|(rank, _)| *rank);
    (groups.into_iter().map(|(_, g)| g).collect(), points, totals)
}

/// `SELECT {cols}` over the rows of org `$1` in the whole hours from `$2`
/// of the levels of `family` (`{family}_1h`, `{family}_1d`): hours to `$3`,
/// days to `$4`, hours to `$5` (a [`Span`] of a whole hour, whose minute
/// parts are empty, less those); `cond` is more of each part's `WHERE`.
fn hour_span_rows(family: &str, cols: &str, cond: &str) -> String {
    [("1h", 2), ("1d", 3), ("1h", 4)]
        .iter()
        .map(|(width, lo)| {
            format!(
                "SELECT {cols} FROM {rel} WHERE org_id = $1 AND bucket >= ${lo} AND bucket < ${}{cond}",
                lo + 1,
                rel = storage::relation(family, width),
            )
        })
        .collect::<Vec<_>>()
        .join("\n         UNION ALL\n         ")
}

/// Groups and points by the event attribute `tag` (a key of the per-tag
/// levels), the groups over the whole hours from `start`: the tagged rows
/// per value; `(none)` the org's spend, runs and calls less theirs, a group
/// when some of the org's events carry no value.
async fn tag_groups(
    r: &Read<'_>,
    tag: &str,
    start: DateTime<Utc>,
) -> Result<(Vec<GroupRow>, Vec<Point>), sqlx::Error> {
    let b = Span::new(start, None, r.now).0;
    let sums =
        "COALESCE(sum(cost_usd), 0)::float8 AS cost_usd, COALESCE(sum(runs), 0)::int8 AS runs,
                COALESCE(sum(llm_calls), 0)::int8 AS llm_calls,
                COALESCE(sum(unpriced_calls), 0)::int8 AS unpriced_calls,
                COALESCE(sum(events), 0)::int8 AS events";
    let cols = "cost_usd, runs_completed + runs_failed AS runs, llm_calls, unpriced_calls, events";
    let source = format!(
        "WITH t AS ({tagged}),
              k AS (SELECT key, {sums} FROM t GROUP BY key),
              s AS (SELECT {sums} FROM k),
              o AS (SELECT {sums} FROM ({org}) o)
         SELECT key, cost_usd, runs, llm_calls, unpriced_calls FROM k
         UNION ALL
         SELECT '{NONE}',
                CASE WHEN abs(o.cost_usd - s.cost_usd) <= 1e-9 * greatest(abs(o.cost_usd), 1)
                     THEN 0 ELSE o.cost_usd - s.cost_usd END,
                o.runs - s.runs, o.llm_calls - s.llm_calls, o.unpriced_calls - s.unpriced_calls
         FROM o, s WHERE o.events > s.events",
        tagged = hour_span_rows(
            "agg_tag",
            &format!("tag_value AS key, {cols}"),
            " AND tag_key = $6 AND tag_value <> ''"
        ),
        org = hour_span_rows("agg_org", cols, ""),
    );
    let groups: Vec<GroupRow> = sqlx::query_as(&ranked(&source, 7))
        .bind(r.org)
        .bind(b[1])
        .bind(b[2])
        .bind(b[3])
        .bind(b[4])
        .bind(tag)
        .bind(r.limit)
        .fetch_all(r.pool)
        .await?;
    let top = top_keys(&groups);
    // Per point: the named values' spend, the other values' as `(other)`,
    // and the org's total.
    let rows: Vec<PointRow> = sqlx::query_as(&format!(
        "SELECT {bin} AS ts, CASE WHEN tag_value = ANY($5) THEN tag_value ELSE '{OTHER}' END AS key,
                COALESCE(sum(cost_usd), 0)::float8 AS cost_usd
         FROM {tags} WHERE org_id = $1 AND bucket >= $2 AND tag_key = $4 AND tag_value <> ''
         GROUP BY 1, 2
         UNION ALL
         SELECT {bin}, NULL, COALESCE(sum(cost_usd), 0)::float8
         FROM {org_level} WHERE org_id = $1 AND bucket >= $2 GROUP BY 1",
        bin = binned(3),
        tags = storage::relation("agg_tag", r.level_width),
        org_level = storage::relation("agg_org", r.level_width),
    ))
    .bind(r.org)
    .bind(r.first)
    .bind(r.bucket_secs)
    .bind(tag)
    .bind(&top)
    .fetch_all(r.pool)
    .await?;
    let (points, totals) = split_totals(rows);
    Ok((groups, tag_points(points, &totals, &top)))
}

/// The series of a tag grouping from the tagged values' points (the named
/// ones and `(other)`: the rest of the tagged rows) and the org's `totals`:
/// `(none)` is the total less every tagged row when it is a named group;
/// otherwise it is part of `(other)`, the total less the named values.
fn tag_points(points: Vec<Point>, totals: &[(DateTime<Utc>, f64)], top: &[String]) -> Vec<Point> {
    if top.iter().any(|k| k == NONE) {
        with_rest(points, totals, NONE)
    } else {
        let named = points.into_iter().filter(|p| p.key != OTHER).collect();
        with_rest(named, totals, OTHER)
    }
}

/// The window's unpriced calls in all (from `start`, to the minute like the
/// overview) and by provider and model (the breakdowns' window, from
/// `breakdown_start`), in one statement.
async fn unpriced(
    r: &Read<'_>,
    breakdown_start: DateTime<Utc>,
    start: DateTime<Utc>,
) -> Result<(i64, Vec<Unpriced>), sqlx::Error> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT * FROM (
                 SELECT false AS total, provider, model, sum(unpriced_calls)::int8 AS calls
                 FROM ({models}) a
                 GROUP BY provider, model HAVING sum(unpriced_calls) > 0
                 ORDER BY calls DESC, provider, model LIMIT 100) m
             UNION ALL
             SELECT true, NULL, NULL, COALESCE(sum(unpriced_calls), 0)::int8 FROM ({all}) a
             ORDER BY total, calls DESC, provider, model",
            models = unpriced_span_rows("agg_model", "provider, model, unpriced_calls"),
            all = span_rows_at("agg_org", "unpriced_calls", 8),
        )
    });
    let mut q = sqlx::query_as(sql).bind(r.org);
    for b in Span::new(breakdown_start, None, r.now).0 {
        q = q.bind(b);
    }
    for b in Span::new(start, None, r.now).0 {
        q = q.bind(b);
    }
    let rows: Vec<Unpriced> = q.fetch_all(r.pool).await?;
    let total = rows.iter().find(|u| u.total).map_or(0, |u| u.calls);
    Ok((total, rows.into_iter().filter(|u| !u.total).collect()))
}

/// The named keys of the ranked groups (not `(other)`).
fn top_keys(groups: &[GroupRow]) -> Vec<String> {
    groups
        .iter()
        .filter(|g| g.key != OTHER)
        .map(|g| g.key.clone())
        .collect()
}

/// Rows of keys' points and of the org's spend per point (`key` NULL):
/// the points, the totals.
fn split_totals(rows: Vec<PointRow>) -> (Vec<Point>, PointTotals) {
    let mut points = Vec::new();
    let mut totals = Vec::new();
    for r in rows {
        match r.key {
            Some(key) => points.push(Point {
                ts: r.ts,
                key,
                cost_usd: r.cost_usd,
            }),
            None => totals.push((r.ts, r.cost_usd)),
        }
    }
    (points, totals)
}

/// `points` and per point `key` (`(other)`, `(none)`): the total less
/// the points' spend (0 where that is only rounding).
fn with_rest(mut points: Vec<Point>, totals: &[(DateTime<Utc>, f64)], key: &str) -> Vec<Point> {
    let mut named: HashMap<DateTime<Utc>, f64> = HashMap::new();
    for p in &points {
        *named.entry(p.ts).or_default() += p.cost_usd;
    }
    for (ts, total) in totals {
        let rest = total - named.get(ts).copied().unwrap_or(0.0);
        if rest > 1e-9 * total.abs().max(1.0) {
            points.push(Point {
                ts: *ts,
                key: key.to_owned(),
                cost_usd: rest,
            });
        }
    }
    points
}

/// Every key at every point from `first` to `now`, `0` where nothing was spent.
fn dense(
    points: &[Point],
    keys: &[String],
    first: DateTime<Utc>,
    now: DateTime<Utc>,
    step: i64,
) -> Vec<Value> {
    let spent: HashMap<(i64, &str), f64> = points
        .iter()
        .map(|p| ((p.ts.timestamp(), p.key.as_str()), p.cost_usd))
        .collect();
    let mut out = Vec::new();
    let mut t = first;
    while t <= now {
        for k in keys {
            let v = spent.get(&(t.timestamp(), k.as_str())).copied();
            out.push(json!({"ts": t, "key": k, "cost_usd": v.unwrap_or(0.0)}));
        }
        t += Duration::seconds(step);
    }
    out
}

/// The overview's fields of [`Totals`], with the window's bounds.
pub(crate) fn figures(
    t: &Totals,
    window: &str,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> Value {
    let runs = t.completed + t.failed;
    let h = &t.histogram;
    json!({
        "window": window,
        "from": from,
        "to": to,
        "runs": runs,
        "succeeded": t.completed,
        "failed": t.failed,
        "success_rate": (runs > 0).then(|| t.completed as f64 / runs as f64),
        "cost_usd": t.cost,
        "latency_ms": {
            "p50": histogram::quantile(h, 0.50),
            "p95": histogram::quantile(h, 0.95),
            "p99": histogram::quantile(h, 0.99),
        },
        "errors_last_hour": t.errors_last_hour,
        "active_agents": t.agents,
        "events": t.events,
    })
}

#[derive(Deserialize)]
struct CompareQuery {
    window: Option<String>,
}

/// The window's overview and the one before it.
#[utoipa::path(get, path = "/v1/metrics/compare", tag = "metrics", params(crate::openapi::reads::WindowQuery),
    responses((status = 200, description = "Both windows", body = crate::openapi::reads::Compare)))]
async fn compare(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<CompareQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let (window, secs) = window(q.window.as_deref())?;
    let now = Utc::now();
    let start = now - Duration::seconds(secs);
    let before = start - Duration::seconds(secs);
    let current = overview_totals(&s.pool, &key.org_id, start, None).await?;
    let previous = overview_totals(&s.pool, &key.org_id, before, Some(start)).await?;
    Ok(Json(json!({
        "window": window,
        "current": figures(&current, &window, start, None),
        "previous": figures(&previous, &window, before, Some(start)),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T: std::fmt::Debug>(r: Result<T, ApiError>) -> &'static str {
        match r.unwrap_err() {
            ApiError::BadParam { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn groups_windows_and_buckets_parse() {
        assert_eq!(parse_group(None).unwrap(), Group::Column("agent_id"));
        assert_eq!(
            parse_group(Some("provider")).unwrap(),
            Group::Column("provider")
        );
        assert_eq!(
            parse_group(Some("tag:team")).unwrap(),
            Group::Tag("team".into())
        );
        for bad in ["team", "tag:", "tag:a\u{1}", "agent_id", ""] {
            assert_eq!(field(parse_group(Some(bad))), "group", "{bad}");
        }
        assert_eq!(
            field(parse_group(Some(&format!("tag:{}", "k".repeat(65))))),
            "group"
        );
        assert_eq!(window(None).unwrap().1, 86_400);
        assert_eq!(window(Some("90d")).unwrap().1, 90 * 86_400);
        assert_eq!(field(window(Some("91d"))), "window");
        assert_eq!(field(window(Some("1y"))), "window");
        assert_eq!(bucket(None, 86_400).unwrap().2, "1h");
        assert_eq!(bucket(Some("5m"), 3600).unwrap().1, 300);
        assert_eq!(field(bucket(Some("1m"), 86_400)), "bucket");
        assert_eq!(field(bucket(Some("2h"), 86_400)), "bucket");
    }

    #[test]
    fn tag_groups_are_the_rolled_up_keys_only() {
        // The defaults (nothing configured in a test): team, project, env, customer.
        for k in agentops_runtime::storage::DEFAULT_TAG_KEYS {
            assert_eq!(
                parse_group(Some(&format!("tag:{k}"))).unwrap(),
                Group::Tag(k.into())
            );
        }
        match parse_group(Some("tag:cost_center")).unwrap_err() {
            ApiError::BadParam { field, message } => {
                assert_eq!(field, "group");
                assert!(
                    message.contains("`cost_center`")
                        && message.contains("database.storage.tag_keys")
                        && message.contains("team, project, env, customer"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(not_rolled_up("team", &[]).contains("none (the list is empty)"));
    }

    fn hour(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(h * 3600, 0).unwrap()
    }

    fn p(h: i64, key: &str, cost_usd: f64) -> Point {
        Point {
            ts: hour(h),
            key: key.into(),
            cost_usd,
        }
    }

    fn flat(points: &[Point]) -> Vec<(i64, &str, f64)> {
        points
            .iter()
            .map(|p| (p.ts.timestamp() / 3600, p.key.as_str(), p.cost_usd))
            .collect()
    }

    #[test]
    fn other_is_the_total_less_the_named_keys() {
        let got = with_rest(
            vec![p(0, "a", 1.0), p(0, "b", 2.0), p(1, "a", 0.1 + 0.2)],
            &[(hour(0), 3.5), (hour(1), 0.3), (hour(2), 4.0)],
            OTHER,
        );
        // Hour 1: 0.3 - (0.1 + 0.2) is rounding, not spend.
        assert_eq!(
            flat(&got),
            [
                (0, "a", 1.0),
                (0, "b", 2.0),
                (1, "a", 0.1 + 0.2),
                (0, OTHER, 0.5),
                (2, OTHER, 4.0)
            ]
        );
    }

    #[test]
    fn tag_series_put_the_untagged_spend_in_none_or_other() {
        // Hour 0: pay 1, search 2 (not named), 4 untagged; hour 1: only untagged.
        let tagged = || vec![p(0, "pay", 1.0), p(0, OTHER, 2.0)];
        let totals = [(hour(0), 7.0), (hour(1), 0.5)];
        let named = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        // (none) named: the total less every tagged row; (other) the other values.
        assert_eq!(
            flat(&tag_points(tagged(), &totals, &named(&["pay", NONE]))),
            [
                (0, "pay", 1.0),
                (0, OTHER, 2.0),
                (0, NONE, 4.0),
                (1, NONE, 0.5)
            ]
        );
        // (none) in (other): the total less the named values.
        assert_eq!(
            flat(&tag_points(tagged(), &totals, &named(&["pay"]))),
            [(0, "pay", 1.0), (0, OTHER, 6.0), (1, OTHER, 0.5)]
        );
    }

    #[test]
    fn one_pass_rows_split_into_ranked_groups_points_and_totals() {
        let row = |ts: Option<i64>, key: Option<&str>, cost_usd: f64, rank: Option<i64>| PassRow {
            ts: ts.map(hour),
            key: key.map(str::to_owned),
            cost_usd,
            runs: 1,
            llm_calls: 2,
            unpriced_calls: 0,
            rank,
        };
        let (groups, points, totals) = split_pass(vec![
            row(None, Some(OTHER), 1.0, Some(3)),
            row(Some(0), Some("b"), 2.0, None),
            row(None, Some("a"), 5.0, Some(1)),
            row(Some(0), None, 8.0, None),
            row(None, Some("b"), 2.0, Some(2)),
        ]);
        let keys: Vec<&str> = groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", OTHER]);
        assert_eq!((groups[0].runs, groups[0].llm_calls), (1, 2));
        assert_eq!(points, [p(0, "b", 2.0)]);
        assert_eq!(totals, [(hour(0), 8.0)]);
    }

    #[test]
    fn series_are_dense() {
        let t0: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
        let points = vec![Point {
            ts: t0 + Duration::hours(1),
            key: "a".into(),
            cost_usd: 2.5,
        }];
        let keys = vec!["a".to_owned(), OTHER.to_owned()];
        let s = dense(&points, &keys, t0, t0 + Duration::minutes(150), 3600);
        assert_eq!(s.len(), 6);
        assert_eq!(s[2]["key"], "a");
        assert_eq!(s[2]["cost_usd"], 2.5);
        assert!(s.iter().filter(|p| p["cost_usd"] == 0.0).count() == 5);
    }
}
