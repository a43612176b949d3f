//! The projection relations' shapes: every aggregate column defined once,
//! and the DDL of both storage modes built from those definitions.

use std::fmt::Write as _;
use std::sync::OnceLock;

use agentops_schemas::histogram;

/// Kind of an aggregate column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Count,
    /// A count stored as NULL while it is zero: the latency histogram's
    /// buckets, of which a row has one or two of 80 non-zero. A NULL costs a
    /// bit of the row's null bitmap, a zero 8 bytes, so the rows the writer
    /// rewrites batch after batch are a third as wide. `sum()` skips NULLs;
    /// readers take `COALESCE(sum(col), 0)` ([`merged_histogram_sql`]).
    SparseCount,
    Float,
}

impl AggColumn {
    /// The column's type in the plain-mode tables.
    pub fn sql_type(&self) -> &'static str {
        match self.kind {
            ColumnKind::Count => "BIGINT NOT NULL DEFAULT 0",
            ColumnKind::SparseCount => "BIGINT",
            ColumnKind::Float => "DOUBLE PRECISION NOT NULL DEFAULT 0",
        }
    }

    /// Sum of the column over rows of a level (a level from the one below).
    pub fn sum_sql(&self) -> String {
        match self.kind {
            ColumnKind::Count | ColumnKind::SparseCount => format!("sum({})::int8", self.name),
            ColumnKind::Float => format!("sum({})::float8", self.name),
        }
    }

    /// `col = ...` adding an upsert's `EXCLUDED` row to the stored one `a`.
    pub fn merge_sql(&self) -> String {
        match self.kind {
            ColumnKind::Count | ColumnKind::Float => {
                format!("{0} = a.{0} + EXCLUDED.{0}", self.name)
            }
            ColumnKind::SparseCount => {
                format!(
                    "{0} = COALESCE(a.{0} + EXCLUDED.{0}, a.{0}, EXCLUDED.{0})",
                    self.name
                )
            }
        }
    }
}

/// One aggregate column: its name and how it is computed from `events` rows.
#[derive(Debug, Clone)]
pub struct AggColumn {
    pub name: String,
    pub kind: ColumnKind,
    /// Aggregate expression over rows shaped like `events`.
    pub from_events: String,
    /// The same for one event, in Rust.
    pub measure: Measure,
}

fn count_where(cond: &str) -> String {
    format!("count(*) FILTER (WHERE {cond})")
}

/// Every aggregate column, in table order: counters, tokens, then the run
/// latency histogram (`lat_b00` .. one per [`histogram::BUCKETS`]), cost.
pub fn aggregates() -> &'static [AggColumn] {
    static COLS: OnceLock<Vec<AggColumn>> = OnceLock::new();
    COLS.get_or_init(|| {
        let mut cols = Vec::new();
        let mut count = |name: &str, expr: String, measure: Measure| {
            cols.push(AggColumn {
                name: name.into(),
                kind: ColumnKind::Count,
                from_events: expr,
                measure,
            })
        };
        count("events", "count(*)".into(), Measure::Events);
        for (name, ty) in [
            ("runs_started", "run_started"),
            ("runs_completed", "run_completed"),
            ("runs_failed", "run_failed"),
            ("llm_calls", "llm_call"),
            ("tool_calls", "tool_call"),
            ("heartbeats", "heartbeat"),
        ] {
            count(
                name,
                count_where(&format!("type = '{ty}'")),
                Measure::Type(ty),
            );
        }
        count(
            "errors",
            count_where("type = 'run_failed' OR status IN ('error', 'failed')"),
            Measure::Errors,
        );
        for (i, t) in TOKENS.iter().enumerate() {
            count(
                t,
                format!("COALESCE(sum({t}), 0)::int8"),
                Measure::Tokens(i),
            );
        }
        count(
            "unpriced_calls",
            count_where(
                "cost_usd IS NULL AND COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0) \
                 + COALESCE(cache_read_tokens, 0) + COALESCE(cache_write_tokens, 0) \
                 + COALESCE(reasoning_tokens, 0) > 0",
            ),
            Measure::Unpriced,
        );
        for i in 0..histogram::BUCKETS {
            cols.push(AggColumn {
                name: hist_column(i),
                kind: ColumnKind::SparseCount,
                from_events: format!("NULLIF({}, 0)", count_where(&format!("lat_bucket = {i}"))),
                measure: Measure::Latency(i),
            });
        }
        cols.push(AggColumn {
            name: "cost_usd".into(),
            kind: ColumnKind::Float,
            from_events: "COALESCE(sum(cost_usd), 0)::float8".into(),
            measure: Measure::Cost,
        });
        cols
    })
}

/// The token columns of `events`, in [`Counted::tokens`] order.
pub const TOKENS: [&str; 5] = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
];

/// What an aggregate column adds up for one event: its
/// [`AggColumn::from_events`] evaluated on one row, so that a writer can
/// fold a batch's deltas before it touches the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Every event.
    Events,
    /// Events of this `type`.
    Type(&'static str),
    /// A failed run or an event with status `error` / `failed`.
    Errors,
    /// The token count of [`TOKENS`]`[i]`.
    Tokens(usize),
    /// An LLM call with tokens and no cost (no price for its model).
    Unpriced,
    /// A finished run in latency histogram bucket `i`.
    Latency(usize),
    /// The cost (the float column).
    Cost,
}

/// The fields of an event the aggregates read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted<'a> {
    pub event_type: &'a str,
    pub status: Option<&'a str>,
    /// In [`TOKENS`] order.
    pub tokens: [Option<i64>; 5],
    pub cost_usd: Option<f64>,
    /// The run latency's histogram bucket (finished runs only).
    pub lat_bucket: Option<i16>,
}

impl Measure {
    /// This column's count for one event (0 for [`Measure::Cost`]: see
    /// [`Counted::cost_usd`]).
    pub fn count(&self, e: &Counted<'_>) -> i64 {
        let hit = |b: bool| i64::from(b);
        match *self {
            Measure::Events => 1,
            Measure::Type(t) => hit(e.event_type == t),
            Measure::Errors => {
                hit(e.event_type == "run_failed" || matches!(e.status, Some("error" | "failed")))
            }
            Measure::Tokens(i) => e.tokens.get(i).copied().flatten().unwrap_or(0),
            Measure::Unpriced => hit(e.cost_usd.is_none()
                && e.tokens
                    .iter()
                    .map(|t| t.unwrap_or(0))
                    .fold(0i64, i64::saturating_add)
                    > 0),
            Measure::Latency(i) => hit(e.lat_bucket.is_some_and(|b| b as usize == i)),
            Measure::Cost => 0,
        }
    }
}

/// Most models (and, separately, providers) kept on a run.
pub const RUN_LIST_CAP: usize = 32;
/// Most tag keys kept on a run.
pub const RUN_TAGS_CAP: usize = 32;
/// Longest tag key and value kept on a run (bytes).
pub const RUN_TAG_KEY_MAX: usize = 64;
pub const RUN_TAG_VALUE_MAX: usize = 256;

/// Name of the histogram column of latency bucket `i`.
pub fn hist_column(i: usize) -> String {
    format!("lat_b{i:02}")
}

/// `ARRAY[sum(lat_b00), ...]::int8[]`: the merged histogram of the rows read.
pub fn merged_histogram_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let sums: Vec<String> = (0..histogram::BUCKETS)
            .map(|i| format!("COALESCE(sum({}), 0)", hist_column(i)))
            .collect();
        format!("ARRAY[{}]::int8[]", sums.join(", "))
    })
}

/// Key columns of the dimensioned levels besides `org_id` and `bucket`.
pub const DIMENSIONS: &[&str] = &["agent_id", "workflow_id", "provider", "model"];

/// One aggregate level: a relation of [`aggregates`] columns per
/// (`org_id`, `bucket`, `dims`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub name: &'static str,
    /// Bucket width (an SQL interval).
    pub width: &'static str,
    /// The level it is built from (TimescaleDB builds each on the one
    /// below); `None`: from `events`.
    pub below: Option<&'static str>,
    /// Key columns besides `org_id` and `bucket`: [`DIMENSIONS`] or none.
    pub dims: &'static [&'static str],
}

impl Level {
    /// The key columns after `org_id` and `bucket`, each led by `, ` and
    /// `prefix` (`", a.agent_id, a.workflow_id, ..."`; `""` for the org
    /// levels).
    pub fn dims_list(&self, prefix: &str) -> String {
        self.dims.iter().map(|d| format!(", {prefix}{d}")).collect()
    }
}

const fn level(
    name: &'static str,
    width: &'static str,
    below: Option<&'static str>,
    dims: &'static [&'static str],
) -> Level {
    Level {
        name,
        width,
        below,
        dims,
    }
}

/// Every aggregate level, each after the one it is built from:
/// - `agg_1m`, `agg_1h`, `agg_1d`: per org × agent × workflow × provider ×
///   model (scoped rules and budgets that combine dimensions, the edges of
///   every breakdown's window);
/// - `agg_org_1m`, `agg_org_1h`, `agg_org_1d`: per org only (the overview,
///   its series and comparisons, org budgets, the HUD, digests): one row per
///   bucket, whatever the size of the fleet;
/// - `agg_agent_*`, `agg_workflow_*`, `agg_model_*` (provider × model), per
///   hour and day: what breakdowns by one dimension read (top agents, the
///   cost explorer, agent pages, budgets scoped to one of them): a few rows
///   per bucket where the four-key level has one per combination. Their
///   minutes are the four-key `agg_1m` ([`family_level`]). In TimescaleDB
///   mode the hour ones are built on `agg_1m` and the day ones on `agg_1h`
///   (a continuous aggregate cannot sit on one of the same width).
pub const LEVELS: [Level; 12] = [
    level("agg_1m", "1 minute", None, DIMENSIONS),
    level("agg_1h", "1 hour", Some("agg_1m"), DIMENSIONS),
    level("agg_1d", "1 day", Some("agg_1h"), DIMENSIONS),
    level("agg_org_1m", "1 minute", None, &[]),
    level("agg_org_1h", "1 hour", Some("agg_org_1m"), &[]),
    level("agg_org_1d", "1 day", Some("agg_org_1h"), &[]),
    level("agg_agent_1h", "1 hour", Some("agg_1m"), &["agent_id"]),
    level("agg_agent_1d", "1 day", Some("agg_1h"), &["agent_id"]),
    level(
        "agg_workflow_1h",
        "1 hour",
        Some("agg_1m"),
        &["workflow_id"],
    ),
    level("agg_workflow_1d", "1 day", Some("agg_1h"), &["workflow_id"]),
    level(
        "agg_model_1h",
        "1 hour",
        Some("agg_1m"),
        &["provider", "model"],
    ),
    level(
        "agg_model_1d",
        "1 day",
        Some("agg_1h"),
        &["provider", "model"],
    ),
];

/// Key columns of the per-tag levels besides `org_id` and `bucket`.
pub const TAG_DIMENSIONS: &[&str] = &["tag_key", "tag_value"];

/// The per-tag levels: the aggregate columns per (org, bucket, tag key, tag
/// value) for the event attributes named in `database.storage.tag_keys`
/// (an event counts once under each of its rolled-up attributes), values
/// of at most [`RUN_TAG_VALUE_MAX`] bytes. What tag-scoped budgets and rules
/// read instead of the raw events. Tables the workers upsert in both modes
/// (a continuous aggregate cannot expand the attributes), in the same
/// statement as the events they come from ([`tag_level_sql`]); the hour
/// level partitioned by month and dropped past `hour_retention_days` in
/// both modes, the day level kept.
pub const TAG_LEVELS: [Level; 2] = [
    level("agg_tag_1h", "1 hour", None, TAG_DIMENSIONS),
    level("agg_tag_1d", "1 day", None, TAG_DIMENSIONS),
];

/// Upsert into the per-tag level `l` the rows of `source` (a relation
/// shaped like `events`, aliased `e`) that carry one of the attribute keys
/// `keys` (an SQL `text[]` expression), with the aggregates' own column
/// expressions; `filter` is more of the `WHERE` (`""` or `" AND ..."`).
/// Rows in key order (concurrent workers lock them alike).
pub fn tag_level_sql(l: &Level, source: &str, keys: &str, filter: &str) -> String {
    let cols = aggregates();
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    let exprs: Vec<&str> = cols.iter().map(|c| c.from_events.as_str()).collect();
    let updates: Vec<String> = cols.iter().map(|c| c.merge_sql()).collect();
    format!(
        "INSERT INTO {name} AS a (org_id, bucket, tag_key, tag_value, {names})
         SELECT e.org_id, date_bin(INTERVAL '{width}', e.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
             t.tag_key, t.tag_value, {exprs}
         FROM {source} e CROSS JOIN LATERAL jsonb_each_text(e.attributes) AS t(tag_key, tag_value)
         WHERE t.tag_key = ANY({keys}) AND octet_length(t.tag_value) <= {max}{filter}
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
         ON CONFLICT ON CONSTRAINT {name}_key DO UPDATE SET {updates}",
        name = l.name,
        width = l.width,
        names = names.join(", "),
        exprs = exprs.join(", "),
        updates = updates.join(", "),
        max = RUN_TAG_VALUE_MAX,
    )
}

/// Plain SQL filling the per-tag levels for org `$1` from its events
/// carrying one of the tag keys `$2` (a `text[]`) with `$3 <= ts < $4`, as
/// the writer folds them: what the benchmarks and tests that load a history
/// in SQL run beside [`levels_from_events_sql`] (through
/// [`fold_history`](super::fold_history)).
pub fn tag_levels_from_events_sql() -> Vec<String> {
    TAG_LEVELS
        .iter()
        .map(|l| {
            tag_level_sql(
                l,
                "events",
                "$2::text[]",
                " AND e.org_id = $1 AND e.ts >= $3 AND e.ts < $4",
            )
        })
        .collect()
}

/// The families of levels (`{family}_1m`/`_1h`/`_1d`) and their key
/// columns besides `org_id` and `bucket`, narrowest first.
pub const FAMILIES: [(&str, &[&str]); 5] = [
    ("agg_org", &[]),
    ("agg_workflow", &["workflow_id"]),
    ("agg_agent", &["agent_id"]),
    ("agg_model", &["provider", "model"]),
    ("agg", DIMENSIONS),
];

/// The narrowest family whose rows are keyed by every one of `columns`
/// (dimension columns): what a read grouped or filtered by them scans.
/// `family_for(&["agent_id"])` is `agg_agent`; `&["provider"]` is
/// `agg_model`; `&[]` is `agg_org`; `&["agent_id", "model"]` is `agg`.
pub fn family_for(columns: &[&str]) -> &'static str {
    FAMILIES
        .iter()
        .find(|(_, dims)| columns.iter().all(|c| dims.contains(c)))
        .map_or("agg", |(f, _)| f)
}

/// The relation of `family` at `width` (`1m`, `1h`, `1d`): the one-dimension
/// families have no minute level of their own and read the four-key
/// `agg_1m` (holding their columns) there.
pub fn family_level(family: &str, width: &str) -> String {
    if width == "1m" && !matches!(family, "agg" | "agg_org") {
        relation("agg", width)
    } else {
        relation(family, width)
    }
}

/// The relation of a family (`agg` dimensioned, `agg_org` per org) at a
/// width: `relation("agg_org", "1h")` is `agg_org_1h`.
pub fn relation(family: &str, width: &str) -> String {
    format!("{family}_{width}")
}

/// Plain-mode statements filling every level for org `$1` from its
/// events with `$2 <= ts < $3`, level by level (the bottom levels from
/// `events` with the writer's own expressions, each level above from the
/// rows of the one below with `$2 <= bucket < $3`, by sums, as the
/// continuous aggregates are built): what the benchmarks and tests that
/// load a history in SQL run instead of the writer, a UTC day at a time
/// ([`fold_history`](super::fold_history): every level's buckets, a day at
/// most, fall inside one day). Rows go in bucket order, as the writer lays
/// them down batch after batch (a window's rows on few pages).
pub fn levels_from_events_sql() -> Vec<String> {
    let cols = aggregates();
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    LEVELS
        .iter()
        .map(|l| {
            let (source, time, exprs) = match l.below {
                None => (
                    "events",
                    "ts",
                    cols.iter()
                        .map(|c| c.from_events.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Some(b) => (b, "bucket", summed(cols)),
            };
            let dims = l.dims_list("");
            format!(
                "INSERT INTO {rel} (org_id, bucket{dims}, {names})
                 SELECT org_id, date_bin(INTERVAL '{width}', {time}, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b{dims},
                     {exprs}
                 FROM {source} WHERE org_id = $1 AND {time} >= $2 AND {time} < $3
                 GROUP BY org_id, b{dims}
                 ORDER BY b",
                rel = l.name,
                width = l.width,
                names = names.join(", "),
            )
        })
        .collect()
}

/// Fill `l` from every row of the level `from` (of the same width, with
/// `l`'s key columns and more): how a new org level is created from the
/// dimensioned one on an existing database.
pub(super) fn level_from_level_sql(l: &Level, from: &str) -> String {
    let names: Vec<&str> = aggregates().iter().map(|c| c.name.as_str()).collect();
    let dims = l.dims_list("");
    format!(
        "INSERT INTO {} (org_id, bucket{dims}, {names})
         SELECT org_id, bucket{dims}, {sums} FROM {from} GROUP BY org_id, bucket{dims}",
        l.name,
        names = names.join(", "),
        sums = summed(aggregates()),
    )
}

/// Plain SQL building the `runs` of org `$1` whose first event is at
/// `$2 <= ts < $3` from their events as the writer folds them (status from
/// the terminal events, sums, the sorted models and providers, the events'
/// attributes as tags): what the benchmarks and tests that load a history in
/// SQL run instead of the writer, a day at a time
/// ([`fold_history`](super::fold_history)). A run's events are read up to an
/// hour past `$3` (runs of a generated history last seconds); runs already
/// there are left alone, so a run reaching into the next range, built from
/// its first range, is not built again from its tail.
pub fn runs_from_events_sql() -> &'static str {
    "INSERT INTO runs (org_id, run_id, agent_id, workflow_id, status, started_at, ended_at,
              latency_ms, events, cost_usd, input_tokens, output_tokens, llm_calls,
              tool_calls, error_type, error_message, models, providers, tags)
     SELECT org_id, run_id, min(agent_id), min(workflow_id),
         CASE WHEN bool_or(type = 'run_failed') THEN 'failed'
              WHEN bool_or(type = 'run_completed') THEN 'completed' ELSE 'running' END,
         min(ts) FILTER (WHERE type = 'run_started'),
         max(ts) FILTER (WHERE type IN ('run_completed', 'run_failed')),
         max(latency_ms) FILTER (WHERE type IN ('run_completed', 'run_failed')),
         count(*), COALESCE(sum(cost_usd), 0), COALESCE(sum(input_tokens), 0),
         COALESCE(sum(output_tokens), 0), count(*) FILTER (WHERE type = 'llm_call'),
         count(*) FILTER (WHERE type = 'tool_call'),
         min(error_type), min(error_message),
         COALESCE(array_agg(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL), '{}'),
         COALESCE(array_agg(DISTINCT provider ORDER BY provider) FILTER (WHERE provider IS NOT NULL), '{}'),
         min(attributes::text)::jsonb
     FROM events
     WHERE org_id = $1 AND run_id IS NOT NULL AND ts >= $2 AND ts < $3 + interval '1 hour'
     GROUP BY org_id, run_id
     HAVING min(ts) < $3
     ON CONFLICT DO NOTHING"
}

/// Plain SQL filling `agents` for org `$1` from its events of the last 24
/// hours (an agent seen in them, with their totals as its day's): enough for
/// the readers of a history loaded in SQL (the overview's active agents read
/// `last_seen`). Agents already there are left alone.
pub fn agents_from_events_sql() -> &'static str {
    "INSERT INTO agents (org_id, agent_id, first_seen, last_seen, day, events_day, runs_day,
                         failures_day, tokens_day, cost_day)
     SELECT org_id, agent_id, min(ts), max(ts), max(ts)::date, count(*),
            count(*) FILTER (WHERE type IN ('run_completed', 'run_failed')),
            count(*) FILTER (WHERE type = 'run_failed'),
            COALESCE(sum(input_tokens + output_tokens), 0), COALESCE(sum(cost_usd), 0)
     FROM events WHERE org_id = $1 AND ts >= now() - interval '1 day'
     GROUP BY org_id, agent_id
     ON CONFLICT DO NOTHING"
}

/// `sum(col)::type` of every aggregate column, comma-separated: a level
/// from the one below.
fn summed(cols: &[AggColumn]) -> String {
    cols.iter()
        .map(AggColumn::sum_sql)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) const EVENTS_COLUMNS: &str = "
    event_id            UUID NOT NULL,
    org_id              TEXT NOT NULL,
    ts                  TIMESTAMPTZ NOT NULL,
    agent_id            TEXT NOT NULL,
    workflow_id         TEXT,
    run_id              TEXT,
    type                TEXT NOT NULL,
    status              TEXT,
    latency_ms          BIGINT,
    lat_bucket          SMALLINT,
    provider            TEXT,
    model               TEXT,
    input_tokens        BIGINT,
    output_tokens       BIGINT,
    cache_read_tokens   BIGINT,
    cache_write_tokens  BIGINT,
    reasoning_tokens    BIGINT,
    cost_usd            DOUBLE PRECISION,
    cost_source         TEXT,
    tool_name           TEXT,
    error_type          TEXT,
    error_message       TEXT,
    trace_id            TEXT,
    span_id             TEXT,
    attributes          JSONB NOT NULL DEFAULT '{}',
    ingested_at         TIMESTAMPTZ,
    PRIMARY KEY (event_id, org_id, ts)";

pub(super) const EVENTS_INDEXES: [&str; 3] = [
    "CREATE INDEX IF NOT EXISTS events_org_ts ON events (org_id, ts DESC)",
    "CREATE INDEX IF NOT EXISTS events_org_run ON events (org_id, run_id, ts)",
    "CREATE INDEX IF NOT EXISTS events_org_errors ON events (org_id, ts DESC)
         WHERE type = 'run_failed' OR status IN ('error', 'failed')",
];

/// `runs` and `agents`, then what later versions added to `runs` (for
/// databases created before them; idempotent, run at every start).
///
/// `models`, `providers`: every model and provider of the run's LLM calls,
/// sorted, deduplicated, at most [`RUN_LIST_CAP`] each. `tags`: the
/// `attributes` of the run's events merged into one object, at most
/// [`RUN_TAGS_CAP`] keys (the first in key order), a key of at most 64 and a
/// value of at most 256 bytes (longer ones are left out); a key given two
/// values keeps the smallest. Each rule is a fold that does not depend on
/// batching or order (see `projections/src/rows.rs`), so a rebuild ends with
/// the same rows.
pub(super) const RUNS_AND_AGENTS: [&str; 11] = [
    "CREATE TABLE IF NOT EXISTS runs (
        org_id              TEXT NOT NULL,
        run_id              TEXT NOT NULL,
        agent_id            TEXT NOT NULL,
        workflow_id         TEXT,
        status              TEXT NOT NULL,
        started_at          TIMESTAMPTZ,
        ended_at            TIMESTAMPTZ,
        latency_ms          BIGINT,
        events              BIGINT NOT NULL DEFAULT 0,
        cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
        input_tokens        BIGINT NOT NULL DEFAULT 0,
        output_tokens       BIGINT NOT NULL DEFAULT 0,
        cache_read_tokens   BIGINT NOT NULL DEFAULT 0,
        cache_write_tokens  BIGINT NOT NULL DEFAULT 0,
        reasoning_tokens    BIGINT NOT NULL DEFAULT 0,
        llm_calls           BIGINT NOT NULL DEFAULT 0,
        tool_calls          BIGINT NOT NULL DEFAULT 0,
        error_type          TEXT,
        error_message       TEXT,
        updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (org_id, run_id)
    )",
    "CREATE INDEX IF NOT EXISTS runs_org_ended ON runs (org_id, ended_at DESC)",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS models TEXT[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS providers TEXT[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS tags JSONB NOT NULL DEFAULT '{}'",
    // The run search's keyset pages (`GET /v1/runs`, query-api/src/runs.rs),
    // one index per sort: `sort=started_at` (the default; also the time
    // filter of every sort), `sort=cost_usd`, `sort=latency_ms` (a run not
    // ended sorts as -1), each read from `(key, run_id) < (cursor)` down;
    // and the agent page's recent runs and the `agent_id` filter.
    "CREATE INDEX IF NOT EXISTS runs_org_started ON runs (org_id, started_at DESC, run_id DESC)",
    "CREATE INDEX IF NOT EXISTS runs_org_cost ON runs (org_id, cost_usd DESC, run_id DESC)",
    "CREATE INDEX IF NOT EXISTS runs_org_latency
         ON runs (org_id, (COALESCE(latency_ms, -1)) DESC, run_id DESC)",
    "CREATE INDEX IF NOT EXISTS runs_org_agent_started
         ON runs (org_id, agent_id, started_at DESC, run_id DESC)",
    // Totals are for `day` (UTC, event time): the latest day this agent was seen.
    "CREATE TABLE IF NOT EXISTS agents (
        org_id              TEXT NOT NULL,
        agent_id            TEXT NOT NULL,
        first_seen          TIMESTAMPTZ NOT NULL,
        last_seen           TIMESTAMPTZ NOT NULL,
        last_heartbeat      TIMESTAMPTZ,
        heartbeat_status    TEXT,
        day                 DATE NOT NULL,
        events_day          BIGINT NOT NULL DEFAULT 0,
        runs_day            BIGINT NOT NULL DEFAULT 0,
        failures_day        BIGINT NOT NULL DEFAULT 0,
        tokens_day          BIGINT NOT NULL DEFAULT 0,
        cost_day            DOUBLE PRECISION NOT NULL DEFAULT 0,
        updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (org_id, agent_id)
    )",
    // Each batch rewrites the rows of the agents it saw; none of the columns
    // it changes is indexed, so with room on the page the new versions are
    // HOT (no index entries). Applies to pages written from now on.
    "ALTER TABLE agents SET (fillfactor = 70)",
];

/// The totals every hierarchy table keeps (`projects`, `machines`,
/// `workspaces`, `agent_sessions`): all-time sums of the events that name the row.
pub const HIERARCHY_TOTALS: &str = "
        first_seen          TIMESTAMPTZ NOT NULL,
        last_seen           TIMESTAMPTZ NOT NULL,
        events              BIGINT NOT NULL DEFAULT 0,
        llm_calls           BIGINT NOT NULL DEFAULT 0,
        tool_calls          BIGINT NOT NULL DEFAULT 0,
        errors              BIGINT NOT NULL DEFAULT 0,
        input_tokens        BIGINT NOT NULL DEFAULT 0,
        output_tokens       BIGINT NOT NULL DEFAULT 0,
        cache_read_tokens   BIGINT NOT NULL DEFAULT 0,
        cache_write_tokens  BIGINT NOT NULL DEFAULT 0,
        reasoning_tokens    BIGINT NOT NULL DEFAULT 0,
        cost_usd            DOUBLE PRECISION NOT NULL DEFAULT 0,
        updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()";

/// The hierarchy tables (contract v2: project → machine → workspace →
/// session), their `events` columns and indexes; idempotent, run at every
/// start in both modes. The tables are upserted by the projection writer
/// in the batch's transaction (`projections/src/hierarchy.rs`); `extra`
/// columns take the value of the latest event that has one.
pub(super) fn hierarchy_ddl() -> Vec<String> {
    let t = HIERARCHY_TOTALS;
    vec![
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS project_id TEXT,
             ADD COLUMN IF NOT EXISTS machine_id TEXT,
             ADD COLUMN IF NOT EXISTS workspace_id TEXT,
             ADD COLUMN IF NOT EXISTS session_id TEXT"
            .into(),
        // A session's timeline; spend of a project, machine or session scope.
        "CREATE INDEX IF NOT EXISTS events_org_session ON events (org_id, session_id, ts)
             WHERE session_id IS NOT NULL"
            .into(),
        "CREATE INDEX IF NOT EXISTS events_org_project ON events (org_id, project_id, ts)
             WHERE project_id IS NOT NULL"
            .into(),
        "CREATE INDEX IF NOT EXISTS events_org_machine ON events (org_id, machine_id, ts)
             WHERE machine_id IS NOT NULL"
            .into(),
        "CREATE INDEX IF NOT EXISTS events_org_workspace ON events (org_id, workspace_id, ts)
             WHERE workspace_id IS NOT NULL"
            .into(),
        format!(
            "CREATE TABLE IF NOT EXISTS projects (
        org_id TEXT NOT NULL, project_id TEXT NOT NULL, url TEXT,{t},
        PRIMARY KEY (org_id, project_id)) WITH (fillfactor = 70)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS machines (
        org_id TEXT NOT NULL, machine_id TEXT NOT NULL, name TEXT, os TEXT,{t},
        PRIMARY KEY (org_id, machine_id)) WITH (fillfactor = 70)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS workspaces (
        org_id TEXT NOT NULL, workspace_id TEXT NOT NULL, project_id TEXT, machine_id TEXT,
        path TEXT,{t},
        PRIMARY KEY (org_id, workspace_id)) WITH (fillfactor = 70)"
        ),
        // status: running until a run_completed / run_failed (the latest
        // one wins, like `runs`); the API shows a running session not seen
        // for a while as idle.
        format!(
            "CREATE TABLE IF NOT EXISTS agent_sessions (
        org_id TEXT NOT NULL, session_id TEXT NOT NULL, agent_id TEXT, project_id TEXT,
        machine_id TEXT, workspace_id TEXT, git_branch TEXT, model TEXT,
        status TEXT NOT NULL DEFAULT 'running', ended_at TIMESTAMPTZ,{t},
        PRIMARY KEY (org_id, session_id)) WITH (fillfactor = 70)"
        ),
        // Sessions per project, machine and workspace: a session counts once
        // in each it ever named (count(DISTINCT session_id) over the events),
        // kept exactly by `session_places` (a pair inserted once, whatever
        // the batching) so lists need not count sessions on every read.
        "ALTER TABLE projects ADD COLUMN IF NOT EXISTS sessions BIGINT NOT NULL DEFAULT 0".into(),
        "ALTER TABLE machines ADD COLUMN IF NOT EXISTS sessions BIGINT NOT NULL DEFAULT 0".into(),
        "ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS sessions BIGINT NOT NULL DEFAULT 0".into(),
        "CREATE TABLE IF NOT EXISTS session_places (
        org_id TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, session_id TEXT NOT NULL,
        PRIMARY KEY (org_id, kind, value, session_id))"
            .into(),
        "CREATE INDEX IF NOT EXISTS projects_org_last ON projects (org_id, last_seen DESC)".into(),
        "CREATE INDEX IF NOT EXISTS projects_org_cost ON projects (org_id, cost_usd DESC)".into(),
        "CREATE INDEX IF NOT EXISTS machines_org_last ON machines (org_id, last_seen DESC)".into(),
        "CREATE INDEX IF NOT EXISTS workspaces_org_project
             ON workspaces (org_id, project_id, last_seen DESC)"
            .into(),
        "CREATE INDEX IF NOT EXISTS workspaces_org_machine
             ON workspaces (org_id, machine_id, last_seen DESC)"
            .into(),
        "CREATE INDEX IF NOT EXISTS agent_sessions_org_last
             ON agent_sessions (org_id, last_seen DESC, session_id DESC)"
            .into(),
        "CREATE INDEX IF NOT EXISTS agent_sessions_org_project
             ON agent_sessions (org_id, project_id, last_seen DESC, session_id DESC)"
            .into(),
        "CREATE INDEX IF NOT EXISTS agent_sessions_org_machine
             ON agent_sessions (org_id, machine_id, last_seen DESC, session_id DESC)"
            .into(),
        "CREATE INDEX IF NOT EXISTS agent_sessions_org_workspace
             ON agent_sessions (org_id, workspace_id, last_seen DESC, session_id DESC)"
            .into(),
    ]
}

/// The count columns of [`HIERARCHY_TOTALS`], in order (the writer binds
/// them in this order, the query API reads them by name).
pub const HIERARCHY_COUNTS: [&str; 9] = [
    "events",
    "llm_calls",
    "tool_calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
];

/// The hierarchy tables, for [`super::drop_all`].
pub const HIERARCHY_TABLES: [&str; 5] = [
    "projects",
    "machines",
    "workspaces",
    "agent_sessions",
    "session_places",
];

pub(super) fn agg_table_ddl(l: &Level) -> String {
    let name = l.name;
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {name} (\n        org_id TEXT NOT NULL, bucket TIMESTAMPTZ NOT NULL"
    );
    for d in l.dims {
        let null = if *d == "agent_id" || d.starts_with("tag_") {
            " NOT NULL"
        } else {
            ""
        };
        let _ = write!(sql, ", {d} TEXT{null}");
    }
    for c in aggregates() {
        let _ = write!(sql, ",\n        {} {}", c.name, c.sql_type());
    }
    let _ = write!(
        sql,
        ",\n        CONSTRAINT {name}_key UNIQUE NULLS NOT DISTINCT (org_id, bucket{}))",
        l.dims_list("")
    );
    if super::partitions::level_period(l.width).is_some() {
        // Dropped a partition at a time past retention (`partitions`).
        sql.push_str(" PARTITION BY RANGE (bucket)");
    } else {
        // Rows are updated in place batch after batch: room on the page
        // keeps those updates HOT (no new index entries). The partitions
        // get the same.
        sql.push_str(" WITH (fillfactor = 70)");
    }
    sql
}

/// The dimensioned levels' partial index on rows with unpriced calls (rare:
/// a model without a price): what the unpriced-by-model reads use instead
/// of every row of their window. An update leaving `unpriced_calls` as it
/// was stays HOT.
pub(super) fn unpriced_index_ddl(l: &Level) -> Option<String> {
    (l.dims == DIMENSIONS).then(|| {
        format!(
            "CREATE INDEX IF NOT EXISTS {0}_unpriced ON {0} (org_id, bucket) WHERE unpriced_calls > 0",
            l.name
        )
    })
}

pub(super) fn cagg_ddl(l: &Level) -> String {
    let (source, time) = match l.below {
        None => ("events", "ts"),
        Some(b) => (b, "bucket"),
    };
    let bucket = format!("time_bucket(INTERVAL '{}', {time})", l.width);
    let dims = l.dims_list("");
    let mut sql = format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {}
         WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
         SELECT org_id, {bucket} AS bucket{dims}",
        l.name
    );
    for c in aggregates() {
        let expr = match l.below {
            None => c.from_events.clone(),
            Some(_) => c.sum_sql(),
        };
        let _ = write!(sql, ", {expr} AS {}", c.name);
    }
    // Group by the expression, not the alias: in the upper levels `bucket`
    // would name the input column.
    let _ = write!(
        sql,
        " FROM {source} GROUP BY org_id, {bucket}{dims} WITH NO DATA"
    );
    sql
}

/// Refresh policy windows per level: (start_offset, end_offset, schedule).
pub(super) fn refresh_policy(l: &Level, late_hours: u32) -> (String, &'static str, &'static str) {
    let start = format!("{} hours", refresh_start_hours(l, late_hours));
    match l.width {
        "1 minute" => (start, "1 minute", "1 minute"),
        "1 hour" => (start, "1 hour", "10 minutes"),
        _ => (start, "1 day", "1 hour"),
    }
}

/// How far back (hours) a level's refresh policy re-materializes.
pub(super) fn refresh_start_hours(l: &Level, late_hours: u32) -> u32 {
    match l.width {
        "1 minute" => late_hours + 1,
        "1 hour" => late_hours + 3,
        _ => late_hours + 72,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_filled_from_events_then_each_from_the_one_below() {
        let sql = levels_from_events_sql();
        assert_eq!(sql.len(), LEVELS.len());
        for (s, l) in sql.iter().zip(LEVELS) {
            assert!(s.starts_with(&format!("INSERT INTO {} ", l.name)), "{s}");
            assert!(s.contains(&format!("INTERVAL '{}'", l.width)), "{s}");
            assert!(
                s.contains(&format!(
                    "FROM {} WHERE org_id = $1 AND {t} >= $2 AND {t} < $3",
                    l.below.unwrap_or("events"),
                    t = if l.below.is_some() { "bucket" } else { "ts" }
                )),
                "{s}"
            );
            for d in DIMENSIONS {
                assert_eq!(s.contains(d), l.dims.contains(d), "{s}");
            }
        }
        // Every aggregate column is written, with the writer's expression at
        // the bottom levels.
        for c in aggregates() {
            assert!(sql[0].contains(&c.from_events), "{}", c.name);
            assert!(sql[3].contains(&c.from_events), "{}", c.name);
            assert!(sql[2].contains(&format!("sum({})", c.name)), "{}", c.name);
            assert!(sql[5].contains(&format!("sum({})", c.name)), "{}", c.name);
        }
    }

    #[test]
    fn every_level_comes_after_the_one_it_is_built_from() {
        for (i, l) in LEVELS.iter().enumerate() {
            if let Some(b) = l.below {
                let j = LEVELS.iter().position(|x| x.name == b).unwrap();
                assert!(j < i, "{} before {b}", l.name);
                let below = &LEVELS[j];
                assert!(l.dims.iter().all(|d| below.dims.contains(d)), "{}", l.name);
                // TimescaleDB builds a continuous aggregate only on a finer one.
                assert_ne!(below.width, l.width, "{}", l.name);
            }
        }
        assert_eq!(relation("agg_org", "1h"), "agg_org_1h");
    }

    #[test]
    fn every_family_has_its_hour_and_day_levels() {
        for (family, dims) in FAMILIES {
            for w in ["1m", "1h", "1d"] {
                let rel = family_level(family, w);
                let l = LEVELS.iter().find(|l| l.name == rel).expect(&rel);
                assert!(dims.iter().all(|d| l.dims.contains(d)), "{rel}");
            }
        }
        assert_eq!(family_for(&["agent_id"]), "agg_agent");
        assert_eq!(family_for(&["workflow_id"]), "agg_workflow");
        assert_eq!(family_for(&["provider"]), "agg_model");
        assert_eq!(family_for(&["provider", "model"]), "agg_model");
        assert_eq!(family_for(&[]), "agg_org");
        assert_eq!(family_for(&["agent_id", "workflow_id"]), "agg");
        assert_eq!(family_level("agg_agent", "1m"), "agg_1m");
        assert_eq!(family_level("agg_agent", "1d"), "agg_agent_1d");
        assert_eq!(family_level("agg_org", "1m"), "agg_org_1m");
    }

    #[test]
    fn tag_levels_fold_rolled_up_attributes_with_the_aggregate_columns() {
        let sql = tag_level_sql(&TAG_LEVELS[0], "ins", "$27::text[]", "");
        assert!(sql.starts_with(
            "INSERT INTO agg_tag_1h AS a (org_id, bucket, tag_key, tag_value, events,"
        ));
        assert!(sql.contains("FROM ins e CROSS JOIN LATERAL jsonb_each_text(e.attributes)"));
        assert!(
            sql.contains("WHERE t.tag_key = ANY($27::text[]) AND octet_length(t.tag_value) <= 256")
        );
        assert!(sql.contains("ON CONFLICT ON CONSTRAINT agg_tag_1h_key DO UPDATE SET events = a.events + EXCLUDED.events"));
        for c in aggregates() {
            assert!(sql.contains(&c.from_events), "{}", c.name);
        }
        let fill = tag_levels_from_events_sql();
        assert!(fill[1].contains("INTERVAL '1 day'"));
        assert!(fill[1].contains("AND e.org_id = $1 AND e.ts >= $3 AND e.ts < $4"));
        let ddl = agg_table_ddl(&TAG_LEVELS[0]);
        assert!(
            ddl.contains("tag_key TEXT NOT NULL, tag_value TEXT NOT NULL"),
            "{ddl}"
        );
        assert!(ddl.ends_with(" PARTITION BY RANGE (bucket)"));
    }

    #[test]
    fn every_histogram_bucket_has_a_column() {
        let names: Vec<&str> = aggregates().iter().map(|c| c.name.as_str()).collect();
        for i in 0..histogram::BUCKETS {
            assert!(names.contains(&hist_column(i).as_str()));
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate column names");
    }

    #[test]
    fn cagg_hierarchy_reads_the_level_below() {
        let h = cagg_ddl(&LEVELS[1]);
        assert!(h.contains("FROM agg_1m"));
        assert!(h.contains("sum(lat_b79)::int8 AS lat_b79"));
        let m = cagg_ddl(&LEVELS[0]);
        assert!(m.contains("FROM events"));
        assert!(m.contains("NULLIF(count(*) FILTER (WHERE lat_bucket = 3), 0) AS lat_b03"));
        let o = cagg_ddl(&LEVELS[4]);
        assert!(o.contains("FROM agg_org_1m GROUP BY org_id, time_bucket(INTERVAL '1 hour', bucket) WITH NO DATA"), "{o}");
    }

    #[test]
    fn org_levels_are_keyed_by_org_and_bucket_only() {
        let t = agg_table_ddl(&LEVELS[3]);
        assert!(
            t.contains("CONSTRAINT agg_org_1m_key UNIQUE NULLS NOT DISTINCT (org_id, bucket))"),
            "{t}"
        );
        assert!(!t.contains("agent_id"));
        let d = agg_table_ddl(&LEVELS[0]);
        assert!(
            d.contains("(org_id, bucket, agent_id, workflow_id, provider, model))"),
            "{d}"
        );
    }

    #[test]
    fn dimensioned_levels_index_their_unpriced_rows() {
        let ddl: Vec<String> = LEVELS.iter().filter_map(unpriced_index_ddl).collect();
        assert_eq!(ddl.len(), 3);
        assert_eq!(
            ddl[0],
            "CREATE INDEX IF NOT EXISTS agg_1m_unpriced ON agg_1m (org_id, bucket) WHERE unpriced_calls > 0"
        );
    }

    #[test]
    fn minute_and_hour_levels_are_partitioned_by_bucket() {
        for l in &LEVELS {
            let t = agg_table_ddl(l);
            let partitioned = t.ends_with(" PARTITION BY RANGE (bucket)");
            assert_eq!(partitioned, l.width != "1 day", "{t}");
            assert_eq!(t.ends_with(" WITH (fillfactor = 70)"), !partitioned, "{t}");
        }
    }
}
