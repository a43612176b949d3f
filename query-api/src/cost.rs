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
//! provider groups read the aggregates through the overview's window split;
//! tag groups read the raw events carrying the attribute (kept
//! `raw_retention_days`, so a tag window is at most 30 days), from the
//! window's start rounded up to the minute, which is what the aggregates
//! count.
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

use crate::aggs::{breakdown_bound, overview_totals, span_rows, unpriced_span_rows, Span, Totals};
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
/// Longest window of a tag grouping (raw events; their default retention).
const MAX_TAG_WINDOW_SECS: i64 = 30 * 86_400;

/// What the spend is grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Group {
    /// An aggregate column.
    Column(&'static str),
    /// An event attribute.
    Tag(String),
}

fn parse_group(raw: Option<&str>) -> Result<Group, ApiError> {
    let g = raw.unwrap_or("agent");
    let bad = || ApiError::BadParam {
        field: "group",
        message: format!("`{g}` is not one of agent, workflow, model, provider, tag:<key>"),
    };
    Ok(match g {
        "agent" => Group::Column("agent_id"),
        "workflow" => Group::Column("workflow_id"),
        "model" => Group::Column("model"),
        "provider" => Group::Column("provider"),
        _ => match g.strip_prefix("tag:") {
            Some(k) if !k.is_empty() && k.len() <= 64 && !k.chars().any(char::is_control) => {
                Group::Tag(k.to_owned())
            }
            _ => return Err(bad()),
        },
    })
}

fn window(raw: Option<&str>, max: i64) -> Result<(String, i64), ApiError> {
    let w = raw.unwrap_or("24h");
    parse_secs(w)
        .filter(|s| *s <= max)
        .map(|s| (w.to_owned(), s))
        .ok_or_else(|| ApiError::BadParam {
            field: "window",
            message: format!(
                "`{w}` is not a duration like 15m, 24h or 7d (at most {}d here)",
                max / 86_400
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

#[derive(sqlx::FromRow)]
struct Point {
    ts: DateTime<Utc>,
    key: String,
    cost_usd: f64,
}

#[derive(sqlx::FromRow)]
struct Unpriced {
    provider: Option<String>,
    model: Option<String>,
    calls: i64,
}

/// The aggregates' `unpriced_calls` rule, over `events` rows.
fn unpriced_rule() -> &'static str {
    agentops_runtime::storage::aggregates()
        .iter()
        .find(|c| c.name == "unpriced_calls")
        .map_or("0", |c| c.from_events.as_str())
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
    let max = match group {
        Group::Tag(_) => MAX_TAG_WINDOW_SECS,
        Group::Column(_) => crate::window::MAX_WINDOW_SECS,
    };
    let (window, secs) = window(q.window.as_deref(), max)?;
    let (bucket, bucket_secs, level_width) = bucket(q.bucket.as_deref(), secs)?;
    let limit = limit_param(q.limit.as_deref(), 10, 25)?;
    let now = Utc::now();
    let start = now - Duration::seconds(secs);
    let breakdown_start = breakdown_bound(start, Duration::seconds(secs));
    let from = start.timestamp() - start.timestamp().rem_euclid(bucket_secs);
    let first = DateTime::from_timestamp(from, 0).unwrap_or(start);
    let org = key.org_id.as_str();

    let (groups, points): (Vec<GroupRow>, Vec<Point>) = match &group {
        Group::Column(col) => {
            // The levels keyed by that column alone.
            let family = storage::family_for(&[col]);
            let relation = storage::family_level(family, level_width);
            let dim = format!("COALESCE(NULLIF({col}, ''), '{NONE}')");
            let source = format!(
                "SELECT {dim} AS key, COALESCE(sum(cost_usd), 0)::float8 AS cost_usd,
                        COALESCE(sum(runs_completed + runs_failed), 0)::int8 AS runs,
                        COALESCE(sum(llm_calls), 0)::int8 AS llm_calls,
                        COALESCE(sum(unpriced_calls), 0)::int8 AS unpriced_calls
                 FROM ({}) a GROUP BY 1",
                span_rows(
                    family,
                    &format!(
                        "{col}, cost_usd, runs_completed, runs_failed, llm_calls, unpriced_calls"
                    )
                )
            );
            let sql = ranked(&source, 8);
            let mut gq = sqlx::query_as(&sql).bind(org);
            for b in Span::new(breakdown_start, None, now).0 {
                gq = gq.bind(b);
            }
            let groups: Vec<GroupRow> = gq.bind(limit).fetch_all(&s.pool).await?;
            let top = top_keys(&groups);
            // The named keys' points read through the index (the key is in
            // it: a few rows per point, not every key's); `(other)` is the
            // org's spend per point (its own level) less theirs.
            let named = if top.iter().any(|k| k == NONE) {
                format!("({col} = ANY($4) OR COALESCE({col}, '') = '')")
            } else {
                format!("{col} = ANY($4)")
            };
            let mut points: Vec<Point> = sqlx::query_as(&format!(
                "SELECT date_bin($3 * interval '1 second', bucket, TIMESTAMPTZ '2000-01-01') AS ts,
                        {dim} AS key, COALESCE(sum(cost_usd), 0)::float8 AS cost_usd
                 FROM {relation} WHERE org_id = $1 AND bucket >= $2 AND {named}
                 GROUP BY 1, 2"
            ))
            .bind(org)
            .bind(first)
            .bind(bucket_secs)
            .bind(&top)
            .fetch_all(&s.pool)
            .await?;
            if groups.iter().any(|g| g.key == OTHER) {
                let totals: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(&format!(
                    "SELECT date_bin($3 * interval '1 second', bucket, TIMESTAMPTZ '2000-01-01'),
                            COALESCE(sum(cost_usd), 0)::float8
                     FROM {} WHERE org_id = $1 AND bucket >= $2 GROUP BY 1",
                    storage::family_level("agg_org", level_width)
                ))
                .bind(org)
                .bind(first)
                .bind(bucket_secs)
                .fetch_all(&s.pool)
                .await?;
                points = with_other(points, &totals);
            }
            (groups, points)
        }
        Group::Tag(tag) => {
            // The aggregates count an event when its minute is in the window.
            let minute = start
                .duration_trunc(Duration::minutes(1))
                .map_or(start, |m| {
                    if m == start {
                        m
                    } else {
                        m + Duration::minutes(1)
                    }
                });
            let dim = format!("COALESCE(NULLIF(attributes->>$3, ''), '{NONE}')");
            let source = format!(
                "SELECT {dim} AS key, COALESCE(sum(cost_usd), 0)::float8 AS cost_usd,
                        count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::int8 AS runs,
                        count(*) FILTER (WHERE type = 'llm_call')::int8 AS llm_calls,
                        ({unpriced})::int8 AS unpriced_calls
                 FROM events WHERE org_id = $1 AND ts >= $2 GROUP BY 1",
                unpriced = unpriced_rule()
            );
            let groups: Vec<GroupRow> = sqlx::query_as(&ranked(&source, 4))
                .bind(org)
                .bind(minute)
                .bind(tag)
                .bind(limit)
                .fetch_all(&s.pool)
                .await?;
            let top = top_keys(&groups);
            let points = sqlx::query_as(&format!(
                "SELECT date_bin($4 * interval '1 second', ts, TIMESTAMPTZ '2000-01-01') AS ts,
                        CASE WHEN {dim} = ANY($5) THEN {dim} ELSE '{OTHER}' END AS key,
                        COALESCE(sum(cost_usd), 0)::float8 AS cost_usd
                 FROM events WHERE org_id = $1 AND ts >= $2 GROUP BY 1, 2"
            ))
            .bind(org)
            .bind(first)
            .bind(tag)
            .bind(bucket_secs)
            .bind(&top)
            .fetch_all(&s.pool)
            .await?;
            (groups, points)
        }
    };

    let uq_sql = format!(
        "SELECT provider, model, sum(unpriced_calls)::int8 AS calls FROM ({}) a
         GROUP BY provider, model HAVING sum(unpriced_calls) > 0
         ORDER BY calls DESC, provider, model LIMIT 100",
        unpriced_span_rows("agg_model", "provider, model, unpriced_calls")
    );
    let mut uq = sqlx::query_as(&uq_sql).bind(org);
    for b in Span::new(breakdown_start, None, now).0 {
        uq = uq.bind(b);
    }
    let unpriced: Vec<Unpriced> = uq.fetch_all(&s.pool).await?;
    let tq_sql = format!(
        "SELECT COALESCE(sum(unpriced_calls), 0)::int8 FROM ({}) a",
        span_rows("agg_org", "unpriced_calls")
    );
    let mut tq = sqlx::query_scalar(&tq_sql).bind(org);
    for b in Span::new(start, None, now).0 {
        tq = tq.bind(b);
    }
    let unpriced_total: i64 = tq.fetch_one(&s.pool).await?;

    let keys: Vec<String> = groups.iter().map(|g| g.key.clone()).collect();
    let series = dense(&points, &keys, first, now, bucket_secs);
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

/// The named keys of the ranked groups (not `(other)`).
fn top_keys(groups: &[GroupRow]) -> Vec<String> {
    groups
        .iter()
        .filter(|g| g.key != OTHER)
        .map(|g| g.key.clone())
        .collect()
}

/// `points` (the named keys') and per point `(other)`: the total less the
/// named keys' spend (0 where that is only rounding).
fn with_other(mut points: Vec<Point>, totals: &[(DateTime<Utc>, f64)]) -> Vec<Point> {
    let mut named: HashMap<DateTime<Utc>, f64> = HashMap::new();
    for p in &points {
        *named.entry(p.ts).or_default() += p.cost_usd;
    }
    for (ts, total) in totals {
        let rest = total - named.get(ts).copied().unwrap_or(0.0);
        if rest > 1e-9 * total.abs().max(1.0) {
            points.push(Point {
                ts: *ts,
                key: OTHER.to_owned(),
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
    let (window, secs) = window(q.window.as_deref(), crate::window::MAX_WINDOW_SECS)?;
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
        assert_eq!(window(None, 86_400 * 90).unwrap().1, 86_400);
        assert_eq!(field(window(Some("31d"), MAX_TAG_WINDOW_SECS)), "window");
        assert_eq!(field(window(Some("1y"), 86_400 * 90)), "window");
        assert_eq!(bucket(None, 86_400).unwrap().2, "1h");
        assert_eq!(bucket(Some("5m"), 3600).unwrap().1, 300);
        assert_eq!(field(bucket(Some("1m"), 86_400)), "bucket");
        assert_eq!(field(bucket(Some("2h"), 86_400)), "bucket");
    }

    #[test]
    fn other_is_the_total_less_the_named_keys() {
        let t = |h: i64| DateTime::from_timestamp(h * 3600, 0).unwrap();
        let p = |h: i64, key: &str, cost_usd: f64| Point {
            ts: t(h),
            key: key.into(),
            cost_usd,
        };
        let got = with_other(
            vec![p(0, "a", 1.0), p(0, "b", 2.0), p(1, "a", 0.1 + 0.2)],
            &[(t(0), 3.5), (t(1), 0.3), (t(2), 4.0)],
        );
        let got: Vec<(i64, &str, f64)> = got
            .iter()
            .map(|p| (p.ts.timestamp() / 3600, p.key.as_str(), p.cost_usd))
            .collect();
        // Hour 1: 0.3 - (0.1 + 0.2) is rounding, not spend.
        assert_eq!(
            got,
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

    #[test]
    fn the_unpriced_rule_is_the_aggregates() {
        assert!(unpriced_rule().contains("cost_usd IS NULL"));
    }
}
