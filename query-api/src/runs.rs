//! Run search (`GET /v1/runs`) and its export (`GET /v1/runs/export`, in
//! [`export`]): the runs explorer's filters, sorts and cursor pages.
//!
//! Filters, all optional and combined with AND: the time range (`from` /
//! `to`, RFC 3339, on the run's start; else `window` back from the first
//! page's time, default 24h; the range is at most 90 days), `agent_id`,
//! `workflow_id`, `status` (running | completed | failed), `model`,
//! `provider` (any of the run's LLM calls), `error_type`, `tag` (`key=value`
//! among the run's merged event attributes, the syntax of a budget's tag
//! scope), `min_cost_usd` / `max_cost_usd`, `min_latency_ms` /
//! `max_latency_ms` (inclusive), `q` (case-insensitive substring of the
//! error message, at most 200 characters). A run is found by its start, so a
//! run whose `run_started` event never arrived is not listed
//! (`GET /v1/runs/{run_id}` still answers it).
//!
//! `sort` = `started_at` (default) | `cost_usd` | `latency_ms` (a run not
//! ended sorts as -1), `order` = `desc` (default) | `asc`, ties broken by
//! `run_id`; `limit` 1–500 (default 50). Pages are keyset pages, never an
//! OFFSET: `next_cursor` is an opaque string holding the sort, the order,
//! the first page's time and the last row's sort key and run id; the next
//! page reads the rows after it through the index of its sort
//! (`runs_org_started`, `runs_org_cost`, `runs_org_latency`). A run that
//! arrives between pages never moves the rows that were already there: none
//! is repeated or skipped. A cursor of another sort or order, or anything
//! that is not a cursor, is a 400 naming `cursor`.

mod cursor;
mod export;

pub(crate) use cursor::{Cursor, Key};

use agentops_runtime::keys::Scope;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::error::ApiError;
use crate::params::{identifier, limit_param, Query};
use crate::routes::{Access, Routes};
use crate::state::{authenticate, Shared};
use crate::window::{parse_secs, MAX_WINDOW_SECS};

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(search, export::export))]
pub(crate) struct Doc;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .add("/v1/runs", &[(Method::GET, Access::Read)], get(search))
        .add(
            "/v1/runs/export",
            &[(Method::GET, Access::Read)],
            get(export::export),
        )
}

/// Longest `q=` (characters).
const MAX_Q: usize = 200;

/// The columns of a run as the search answers it ([`RunOut`]).
pub(crate) const RUN_COLUMNS: &str = "run_id, agent_id, workflow_id, status, started_at, \
    ended_at, latency_ms, cost_usd, input_tokens, output_tokens, llm_calls, tool_calls, models, \
    providers, tags, error_type, error_message";

/// One run of a search (also the agent page's recent runs).
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub(crate) struct RunOut {
    pub(crate) run_id: String,
    pub(crate) agent_id: String,
    pub(crate) workflow_id: Option<String>,
    pub(crate) status: String,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
    pub(crate) latency_ms: Option<i64>,
    pub(crate) cost_usd: f64,
    pub(crate) input_tokens: i64,
    pub(crate) output_tokens: i64,
    pub(crate) llm_calls: i64,
    pub(crate) tool_calls: i64,
    pub(crate) models: Vec<String>,
    pub(crate) providers: Vec<String>,
    pub(crate) tags: sqlx::types::Json<Value>,
    pub(crate) error_type: Option<String>,
    pub(crate) error_message: Option<String>,
}

/// The query string of the search and the export (every value as text,
/// checked by [`Search::parse`]).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsQuery {
    from: Option<String>,
    to: Option<String>,
    window: Option<String>,
    agent_id: Option<String>,
    workflow_id: Option<String>,
    status: Option<String>,
    model: Option<String>,
    provider: Option<String>,
    error_type: Option<String>,
    tag: Option<String>,
    min_cost_usd: Option<String>,
    max_cost_usd: Option<String>,
    min_latency_ms: Option<String>,
    max_latency_ms: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    pub(crate) format: Option<String>,
}

/// What a search sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sort {
    StartedAt,
    Cost,
    Latency,
}

impl Sort {
    fn name(self) -> &'static str {
        match self {
            Sort::StartedAt => "started_at",
            Sort::Cost => "cost_usd",
            Sort::Latency => "latency_ms",
        }
    }

    fn parse(s: &str) -> Option<Sort> {
        [Sort::StartedAt, Sort::Cost, Sort::Latency]
            .into_iter()
            .find(|k| k.name() == s)
    }

    /// The SQL expression (as its index has it).
    fn expr(self) -> &'static str {
        match self {
            Sort::StartedAt => "started_at",
            Sort::Cost => "cost_usd",
            Sort::Latency => "COALESCE(latency_ms, -1)",
        }
    }
}

/// A checked search.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Search {
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: Option<DateTime<Utc>>,
    pub(crate) agent_id: Option<String>,
    pub(crate) workflow_id: Option<String>,
    pub(crate) status: Option<&'static str>,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) error_type: Option<String>,
    pub(crate) tag: Option<(String, String)>,
    pub(crate) cost: (Option<f64>, Option<f64>),
    pub(crate) latency: (Option<i64>, Option<i64>),
    /// The `ILIKE` pattern of `q` (wildcards escaped).
    pub(crate) pattern: Option<String>,
    pub(crate) sort: Sort,
    pub(crate) desc: bool,
    pub(crate) limit: i64,
    /// The first page's time (microseconds).
    pub(crate) anchor: i64,
    pub(crate) after: Option<Cursor>,
}

fn time_param(field: &'static str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::BadParam {
                field,
                message: format!("`{s}` is not an RFC 3339 time like 2026-11-22T10:00:00Z"),
            })
    })
    .transpose()
}

fn id_param(field: &'static str, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    raw.map(|s| identifier(field, s).map(str::to_owned))
        .transpose()
}

/// A number of 0 or more: finite for `f64`.
fn num_param<T: std::str::FromStr>(
    field: &'static str,
    raw: Option<&str>,
    what: &str,
    ok: fn(&T) -> bool,
) -> Result<Option<T>, ApiError> {
    raw.map(|s| {
        s.parse::<T>()
            .ok()
            .filter(ok)
            .ok_or_else(|| ApiError::BadParam {
                field,
                message: format!("expected {what} of 0 or more"),
            })
    })
    .transpose()
}

fn usd(x: &f64) -> bool {
    x.is_finite() && *x >= 0.0
}

fn millis(n: &i64) -> bool {
    *n >= 0
}

/// `q=` as an `ILIKE` pattern: `%`, `_` and `\` match themselves.
fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Search {
    /// Check every parameter (a bad one is a 400 naming it); `now` anchors
    /// a first page.
    pub(crate) fn parse(q: &RunsQuery, now: DateTime<Utc>) -> Result<Search, ApiError> {
        let sort = match q.sort.as_deref() {
            None => Sort::StartedAt,
            Some(s) => Sort::parse(s).ok_or_else(|| ApiError::BadParam {
                field: "sort",
                message: format!("`{s}` is not one of started_at, cost_usd, latency_ms"),
            })?,
        };
        let desc = match q.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(o) => {
                return Err(ApiError::BadParam {
                    field: "order",
                    message: format!("`{o}` is not one of desc, asc"),
                })
            }
        };
        let after = q
            .cursor
            .as_deref()
            .map(|c| Cursor::decode(c, sort, desc))
            .transpose()?;
        let anchor = after.as_ref().map_or(now.timestamp_micros(), |c| c.anchor);
        let anchor_t = DateTime::from_timestamp_micros(anchor).unwrap_or(now);
        let window = q.window.as_deref().unwrap_or("24h");
        let secs = parse_secs(window).ok_or_else(|| ApiError::BadParam {
            field: "window",
            message: format!("`{window}` is not a duration like 15m, 24h or 7d (at most 90d)"),
        })?;
        let to = time_param("to", q.to.as_deref())?;
        let from = match time_param("from", q.from.as_deref())? {
            Some(f) => f,
            None => to.unwrap_or(anchor_t) - chrono::Duration::seconds(secs),
        };
        let end = to.unwrap_or(anchor_t);
        if from >= end {
            return Err(ApiError::BadParam {
                field: "from",
                message: "must be before `to` (or now)".into(),
            });
        }
        if (end - from).num_seconds() > MAX_WINDOW_SECS {
            return Err(ApiError::BadParam {
                field: "from",
                message: "the range is at most 90 days".into(),
            });
        }
        let status = match q.status.as_deref() {
            None => None,
            Some(s) => Some(
                ["running", "completed", "failed"]
                    .into_iter()
                    .find(|k| *k == s)
                    .ok_or_else(|| ApiError::BadParam {
                        field: "status",
                        message: format!("`{s}` is not one of running, completed, failed"),
                    })?,
            ),
        };
        let tag = match q.tag.as_deref() {
            None => None,
            Some(t) => {
                let scope = agentops_governance::Scope::parse("tag", Some(t)).map_err(|e| {
                    ApiError::BadParam {
                        field: "tag",
                        message: e.to_string(),
                    }
                })?;
                scope.tag().map(|(k, v)| (k.to_owned(), v.to_owned()))
            }
        };
        let cost = (
            num_param("min_cost_usd", q.min_cost_usd.as_deref(), "a number", usd)?,
            num_param("max_cost_usd", q.max_cost_usd.as_deref(), "a number", usd)?,
        );
        let latency = (
            num_param(
                "min_latency_ms",
                q.min_latency_ms.as_deref(),
                "an integer",
                millis,
            )?,
            num_param(
                "max_latency_ms",
                q.max_latency_ms.as_deref(),
                "an integer",
                millis,
            )?,
        );
        if matches!(cost, (Some(a), Some(b)) if a > b) {
            return Err(ApiError::BadParam {
                field: "max_cost_usd",
                message: "must be at least `min_cost_usd`".into(),
            });
        }
        if matches!(latency, (Some(a), Some(b)) if a > b) {
            return Err(ApiError::BadParam {
                field: "max_latency_ms",
                message: "must be at least `min_latency_ms`".into(),
            });
        }
        let pattern = match q.q.as_deref() {
            None | Some("") => None,
            Some(t) if t.chars().count() > MAX_Q || t.chars().any(char::is_control) => {
                return Err(ApiError::BadParam {
                    field: "q",
                    message: format!("at most {MAX_Q} characters without control characters"),
                })
            }
            Some(t) => Some(like_pattern(t)),
        };
        Ok(Search {
            from,
            to,
            agent_id: id_param("agent_id", q.agent_id.as_deref())?,
            workflow_id: id_param("workflow_id", q.workflow_id.as_deref())?,
            status,
            model: id_param("model", q.model.as_deref())?,
            provider: id_param("provider", q.provider.as_deref())?,
            error_type: id_param("error_type", q.error_type.as_deref())?,
            tag,
            cost,
            latency,
            pattern,
            sort,
            desc,
            limit: limit_param(q.limit.as_deref(), 50, 500)?,
            anchor,
            after,
        })
    }

    /// `WHERE ...` of org `org` (no keyset condition).
    fn push_filters<'a>(&'a self, b: &mut QueryBuilder<'a, Postgres>, org: &'a str) {
        b.push(" WHERE org_id = ").push_bind(org);
        b.push(" AND started_at >= ").push_bind(self.from);
        if let Some(to) = self.to {
            b.push(" AND started_at < ").push_bind(to);
        }
        let eq = [
            ("agent_id", &self.agent_id),
            ("workflow_id", &self.workflow_id),
            ("error_type", &self.error_type),
        ];
        for (col, v) in eq {
            if let Some(v) = v {
                b.push(format!(" AND {col} = ")).push_bind(v);
            }
        }
        if let Some(s) = self.status {
            b.push(" AND status = ").push_bind(s);
        }
        if let Some(m) = &self.model {
            b.push(" AND ").push_bind(m).push(" = ANY(models)");
        }
        if let Some(p) = &self.provider {
            b.push(" AND ").push_bind(p).push(" = ANY(providers)");
        }
        if let Some((k, v)) = &self.tag {
            b.push(" AND tags @> jsonb_build_object(")
                .push_bind(k)
                .push("::text, ")
                .push_bind(v)
                .push("::text)");
        }
        if let Some(c) = self.cost.0 {
            b.push(" AND cost_usd >= ").push_bind(c);
        }
        if let Some(c) = self.cost.1 {
            b.push(" AND cost_usd <= ").push_bind(c);
        }
        if let Some(l) = self.latency.0 {
            b.push(" AND latency_ms >= ").push_bind(l);
        }
        if let Some(l) = self.latency.1 {
            b.push(" AND latency_ms <= ").push_bind(l);
        }
        if let Some(p) = &self.pattern {
            b.push(" AND error_message ILIKE ").push_bind(p);
        }
    }

    /// One page: at most `limit + 1` rows after the cursor, in order.
    fn page_query<'a>(&'a self, org: &'a str) -> QueryBuilder<'a, Postgres> {
        let mut b = QueryBuilder::new(format!("SELECT {RUN_COLUMNS} FROM runs"));
        self.push_filters(&mut b, org);
        let expr = self.sort.expr();
        if let Some(c) = &self.after {
            b.push(format!(
                " AND ({expr}, run_id) {} (",
                if self.desc { "<" } else { ">" }
            ));
            match c.key {
                Key::Time(us) => b.push_bind(DateTime::from_timestamp_micros(us)),
                Key::Float(x) => b.push_bind(x),
                Key::Int(n) => b.push_bind(n),
            };
            b.push(", ").push_bind(&c.run_id).push(")");
        }
        let dir = if self.desc { "DESC" } else { "ASC" };
        b.push(format!(" ORDER BY {expr} {dir}, run_id {dir} LIMIT "))
            .push_bind(self.limit + 1);
        b
    }

    /// The next page of `org` and the cursor after it (None at the end).
    pub(crate) async fn page(
        &self,
        pool: &PgPool,
        org: &str,
    ) -> Result<(Vec<RunOut>, Option<Cursor>), sqlx::Error> {
        let mut rows: Vec<RunOut> = self
            .page_query(org)
            .build_query_as()
            .fetch_all(pool)
            .await?;
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = match rows.last() {
            Some(last) if more => Some(Cursor::after(last, self.sort, self.desc, self.anchor)),
            _ => None,
        };
        Ok((rows, next))
    }
}

/// Search runs: filters, sort, cursor pagination (keyset, stable under new arrivals).
#[utoipa::path(get, path = "/v1/runs", tag = "runs", params(crate::openapi::reads::RunsQuery),
    responses((status = 200, description = "One page", body = crate::openapi::reads::RunPage)))]
async fn search(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let search = Search::parse(&q, Utc::now())?;
    let (runs, next) = search.page(&s.pool, &key.org_id).await?;
    Ok(Json(json!({
        "runs": runs,
        "next_cursor": next.map(|c| c.encode()),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn field(e: ApiError) -> &'static str {
        match e {
            ApiError::BadParam { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Search, ApiError> {
        let map: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let q: RunsQuery = serde_json::from_value(Value::Object(map)).unwrap();
        Search::parse(&q, now())
    }

    #[test]
    fn filters_parse() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.from, now() - chrono::Duration::hours(24));
        assert_eq!(
            (s.to, s.sort, s.desc, s.limit),
            (None, Sort::StartedAt, true, 50)
        );
        assert_eq!(s.anchor, now().timestamp_micros());
        let s = parse(&[
            ("from", "2026-11-20T00:00:00Z"),
            ("to", "2026-11-21T00:00:00+01:00"),
            ("agent_id", "a1"),
            ("status", "failed"),
            ("model", "gpt-4o"),
            ("tag", "team=pay=x"),
            ("min_cost_usd", "0.5"),
            ("max_cost_usd", "2"),
            ("min_latency_ms", "10"),
            ("q", "50% _off\\"),
            ("sort", "cost_usd"),
            ("order", "asc"),
            ("limit", "500"),
        ])
        .unwrap();
        assert_eq!(s.to, Some("2026-11-20T23:00:00Z".parse().unwrap()));
        assert_eq!(s.status, Some("failed"));
        assert_eq!(s.tag, Some(("team".into(), "pay=x".into())));
        assert_eq!(s.cost, (Some(0.5), Some(2.0)));
        assert_eq!(s.latency, (Some(10), None));
        assert_eq!(s.pattern.as_deref(), Some("%50\\% \\_off\\\\%"));
        assert_eq!((s.sort, s.desc, s.limit), (Sort::Cost, false, 500));
        // A window counts back from the cursor's anchor, not from now.
        let c = Cursor {
            sort: Sort::StartedAt,
            desc: true,
            anchor: (now() - chrono::Duration::hours(1)).timestamp_micros(),
            key: Key::Time(0),
            run_id: "r".into(),
        };
        let s = parse(&[("window", "1h"), ("cursor", &c.encode())]).unwrap();
        assert_eq!(s.from, now() - chrono::Duration::hours(2));
        assert_eq!(s.after, Some(c));
    }

    #[test]
    fn bad_filters_name_their_field() {
        for (pairs, want) in [
            (vec![("window", "1y")], "window"),
            (vec![("window", "91d")], "window"),
            (vec![("from", "yesterday")], "from"),
            (vec![("to", "2026-13-01T00:00:00Z")], "to"),
            (vec![("from", "2026-01-01T00:00:00Z")], "from"),
            (
                vec![
                    ("from", "2026-11-22T00:00:00Z"),
                    ("to", "2026-11-21T00:00:00Z"),
                ],
                "from",
            ),
            (vec![("status", "ok")], "status"),
            (vec![("tag", "team")], "tag"),
            (vec![("tag", "=x")], "tag"),
            (vec![("agent_id", "")], "agent_id"),
            (vec![("model", "a\u{1}")], "model"),
            (vec![("min_cost_usd", "-1")], "min_cost_usd"),
            (vec![("max_cost_usd", "NaN")], "max_cost_usd"),
            (
                vec![("min_cost_usd", "2"), ("max_cost_usd", "1")],
                "max_cost_usd",
            ),
            (vec![("min_latency_ms", "1.5")], "min_latency_ms"),
            (vec![("max_latency_ms", "x")], "max_latency_ms"),
            (vec![("q", &"x".repeat(201))], "q"),
            (vec![("sort", "tokens")], "sort"),
            (vec![("order", "up")], "order"),
            (vec![("limit", "501")], "limit"),
            (vec![("limit", "0")], "limit"),
            (vec![("cursor", "nope")], "cursor"),
        ] {
            assert_eq!(field(parse(&pairs).unwrap_err()), want, "{pairs:?}");
        }
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(like_pattern("timed out"), "%timed out%");
    }
}
