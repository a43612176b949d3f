//! Storage conformance: the same assertions against plain PostgreSQL and the
//! real TimescaleDB extension (the PGlite build, `AGENTOPS_TEST_TIMESCALE`).
//!
//! Events go in through the projection writer (the worker's code path) and
//! come out through the query API's router, so the suite checks that both
//! modes build the same relations and answer the same numbers: relation
//! shapes, bucket sums at every level, percentiles from merged histograms,
//! late data, zero-filled series, runs and agents.

use std::collections::BTreeMap;
use std::time::Duration;

use agentops_e2e::definitions::{levels_are_their_definition, tag_levels_are_their_definition};
use agentops_e2e::events::{enriched_event as event, enriched_runs as runs};
use agentops_e2e::{create_database, timescale_url};
use agentops_projections::Writer;
use agentops_runtime::config::DatabaseConfig;
use agentops_runtime::storage::{self, Mode, ModeChoice, StorageConfig};
use agentops_schemas::{histogram, AgentEvent};
use anyhow::{ensure, Context, Result};
use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

#[tokio::test]
async fn conformance_plain_postgres() -> Result<()> {
    let url = create_database("conf_pg").await?;
    suite(&url, ModeChoice::Postgres, Mode::Postgres).await
}

#[tokio::test]
async fn conformance_timescaledb() -> Result<()> {
    let url = timescale_url()?;
    suite(&url, ModeChoice::Auto, Mode::Timescaledb).await
}

/// A component starting while a batch is mid-transaction (row-exclusive
/// locks on every projection table) finds its relations there and waits for
/// nothing: before, `ALTER TABLE events ADD COLUMN IF NOT EXISTS` wanted an
/// exclusive lock and `CREATE INDEX IF NOT EXISTS` a share lock at every
/// start, and every later read and write queued behind them. What is
/// missing is still made.
#[tokio::test]
async fn starting_does_not_wait_for_open_writes_and_still_makes_what_is_missing() -> Result<()> {
    let (url, pool) = agentops_e2e::prepared_database("setup_locks").await?;
    let db = agentops_e2e::plain_config(url);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
           AND NOT relispartition AND relname <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await?;
    ensure!(
        tables.iter().any(|t| t == "events") && tables.len() > 20,
        "{tables:?}"
    );
    let start = || async {
        let mut conn = agentops_runtime::db::connect_one(&db).await?;
        sqlx::raw_sql("SET lock_timeout = '3s'")
            .execute(&mut conn)
            .await?;
        storage::setup(&mut conn, &db.storage).await?;
        anyhow::Ok(())
    };
    let mut batch = pool.begin().await?;
    sqlx::raw_sql(&format!(
        "LOCK TABLE {} IN ROW EXCLUSIVE MODE",
        tables.join(", ")
    ))
    .execute(&mut *batch)
    .await?;
    start()
        .await
        .context("set-up while a batch holds the tables")?;
    batch.rollback().await?;

    // Missing pieces come back.
    sqlx::raw_sql(
        "DROP INDEX events_org_errors; DROP INDEX runs_org_cost; DROP INDEX events_txid;
         ALTER TABLE runs DROP COLUMN tags; ALTER TABLE agents RESET (fillfactor);
         ALTER TABLE events DROP COLUMN workspace_id",
    )
    .execute(&pool)
    .await?;
    start().await.context("set-up after dropping pieces")?;
    let (indexes, columns, fillfactor): (i64, i64, bool) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_class
                  WHERE relname IN ('events_org_errors', 'runs_org_cost', 'events_org_workspace',
                                    'events_txid')),
                (SELECT count(*) FROM pg_attribute
                  WHERE (attrelid, attname) IN (('runs'::regclass, 'tags'), ('events'::regclass, 'workspace_id'))
                    AND NOT attisdropped),
                (SELECT reloptions @> ARRAY['fillfactor=70'] FROM pg_class WHERE relname = 'agents')",
    )
    .fetch_one(&pool)
    .await?;
    ensure!(
        (indexes, columns, fillfactor) == (4, 2, true),
        "indexes {indexes}/4, columns {columns}/2, fillfactor {fillfactor}"
    );
    Ok(())
}

struct Target {
    pool: PgPool,
    mode: Mode,
    router: axum::Router,
    key: String,
}

impl Target {
    async fn get(&self, path: &str) -> Result<Value> {
        let req = Request::get(path)
            .header("x-api-key", &self.key)
            .body(Body::empty())?;
        let resp = self.router.clone().oneshot(req).await?;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await?;
        let v: Value = serde_json::from_slice(&body)?;
        ensure!(status.is_success(), "GET {path}: {status} {v}");
        Ok(v)
    }

    async fn write(&self, writer: &mut Writer, events: &[AgentEvent], offset: i64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        writer
            .apply(&mut conn, events, &[("conf".into(), 0, offset)])
            .await?;
        writer.settle(&mut conn).await?;
        Ok(())
    }

    async fn refresh(&self) -> Result<()> {
        if self.mode == Mode::Timescaledb {
            let mut conn = self.pool.acquire().await?;
            storage::refresh_all(&mut conn).await?;
        }
        Ok(())
    }

    /// Every aggregate level of `org` holds `n` events.
    async fn every_level_counts(&self, org: &str, n: usize, when: &str) -> Result<()> {
        self.level_counts(org, n, 0, when).await
    }

    /// [`Target::every_level_counts`] with the per-minute levels holding
    /// `minutes_lack` fewer (their older partitions dropped).
    async fn level_counts(
        &self,
        org: &str,
        n: usize,
        minutes_lack: usize,
        when: &str,
    ) -> Result<()> {
        for l in &storage::LEVELS {
            let want = if l.width == "1 minute" {
                n - minutes_lack
            } else {
                n
            };
            let (ev,): (i64,) = sqlx::query_as(&format!(
                "SELECT sum(events)::int8 FROM {} WHERE org_id = $1",
                l.name
            ))
            .bind(org)
            .fetch_one(&self.pool)
            .await?;
            ensure!(
                ev == want as i64,
                "{} {when}: {ev} events, expected {want}",
                l.name
            );
        }
        Ok(())
    }

    async fn scalar_f64(&self, sql: &str) -> Result<f64> {
        let (v,): (f64,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
        Ok(v)
    }
}

fn latency_hist<'a>(events: impl Iterator<Item = &'a AgentEvent>) -> Vec<i64> {
    let mut h = vec![0i64; histogram::BUCKETS];
    for e in events {
        if matches!(e.event_type.as_str(), "run_completed" | "run_failed") {
            h[histogram::bucket_of(e.latency_ms.unwrap_or(0))] += 1;
        }
    }
    h
}

fn cost_of(events: &[&AgentEvent]) -> f64 {
    events.iter().filter_map(|e| e.cost_usd).sum()
}

fn terminal(e: &AgentEvent, ty: &str) -> bool {
    e.event_type == ty
}

/// Expected column names and types of an aggregate level.
fn expected_columns(level: &storage::Level) -> Vec<(String, String)> {
    let text = |n: &str| (n.to_owned(), "text".to_owned());
    let mut cols = vec![
        text("org_id"),
        ("bucket".into(), "timestamp with time zone".into()),
    ];
    let family = &level.name[..level.name.len() - 3];
    let dims: &[&str] = match family {
        "agg_org" => &[],
        "agg_agent" => &["agent_id"],
        "agg_workflow" => &["workflow_id"],
        "agg_model" => &["provider", "model"],
        "agg_tag" => &["tag_key", "tag_value"],
        _ => &["agent_id", "workflow_id", "provider", "model"],
    };
    for d in dims {
        cols.push(text(d));
    }
    for c in storage::aggregates() {
        let ty = match c.kind {
            storage::ColumnKind::Count | storage::ColumnKind::SparseCount => "bigint",
            storage::ColumnKind::Float => "double precision",
        };
        cols.push((c.name.clone(), ty.into()));
    }
    cols
}

/// Names of every aggregate level.
fn levels() -> impl Iterator<Item = &'static str> {
    storage::LEVELS.iter().map(|l| l.name)
}

/// Pooled connections plan each execution of a prepared statement with its
/// parameters (`plan_cache_mode = force_custom_plan`): a window's bounds
/// prune the time partitions when the statement is planned. Left to
/// PostgreSQL (`auto`), the sixth execution on each connection also plans
/// the statement generically, over every partition of every level it reads
/// (19 ms at bind for the overview's statement on 10 M events, where it
/// runs in 3), and may keep that plan.
#[tokio::test]
async fn pooled_connections_plan_each_execution_with_its_parameters() -> Result<()> {
    let (_, pool) = agentops_e2e::prepared_database("custom_plans").await?;
    let mut conn = pool.acquire().await?;
    let sql = "SELECT count(*) FROM agg_org_1h WHERE org_id = $1 AND bucket >= $2";
    for _ in 0..10 {
        sqlx::query(sql)
            .bind("o")
            .bind(Utc::now() - Span::days(1))
            .fetch_one(&mut *conn)
            .await?;
    }
    let (generic, custom): (i64, i64) = sqlx::query_as(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
    )
    .bind(sql)
    .fetch_one(&mut *conn)
    .await?;
    assert_eq!((generic, custom), (0, 10));
    Ok(())
}

/// Per bucket (and key) of the levels of one width: the four-key level
/// summed up and the org level, or the one-dimension level (per agent,
/// workflow, provider and model), hold the same events, runs, tokens, cost
/// and histogram (each answers what the four-key one would).
async fn org_levels_match(pool: &PgPool, org: &str) -> Result<()> {
    let hist = storage::merged_histogram_sql();
    for l in storage::LEVELS
        .iter()
        .filter(|l| l.dims != storage::DIMENSIONS)
    {
        let w = &l.name[l.name.len() - 2..];
        let key = if l.dims.is_empty() {
            "''".to_owned()
        } else {
            format!("ROW({})::text", l.dims.join(", "))
        };
        let q = |rel: &str| {
            format!(
                "SELECT bucket, {key}, sum(events)::int8, sum(runs_completed + runs_failed)::int8,
                        sum(input_tokens + output_tokens)::int8, sum(unpriced_calls)::int8,
                        round(sum(cost_usd)::numeric, 9)::text, {hist}
                 FROM {rel} WHERE org_id = $1 GROUP BY 1, 2 ORDER BY 1, 2"
            )
        };
        type Row = (DateTime<Utc>, String, i64, i64, i64, i64, String, Vec<i64>);
        let four = storage::relation("agg", w);
        let dims: Vec<Row> = sqlx::query_as(&q(&four)).bind(org).fetch_all(pool).await?;
        let level: Vec<Row> = sqlx::query_as(&q(l.name)).bind(org).fetch_all(pool).await?;
        ensure!(!dims.is_empty(), "{four} holds nothing");
        ensure!(
            dims == level,
            "{four} and {} differ:\n{dims:?}\n{level:?}",
            l.name
        );
    }
    Ok(())
}

async fn columns(pool: &PgPool, relation: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(relation)
    .fetch_all(pool)
    .await?)
}

async fn suite(url: &str, choice: ModeChoice, expect: Mode) -> Result<()> {
    let db = DatabaseConfig {
        url: url.into(),
        // The PGlite server runs one query at a time.
        max_connections: 1,
        statement_timeout_ms: None,
        storage: StorageConfig {
            mode: choice,
            // Short enough for this suite's history to reach past it.
            minute_retention_days: 9,
            hour_retention_days: 20,
            ..Default::default()
        },
    };
    // The query API reads windows as these levels are kept.
    agentops_query_api::aggs::set_retention(&db.storage);
    let pool = agentops_runtime::db::connect(&db, Duration::from_secs(30)).await?;
    agentops_runtime::db::migrate(&pool).await?;
    {
        // Start from nothing (the PGlite server is shared by the whole run).
        let mut conn = pool.acquire().await?;
        storage::drop_all(&mut conn).await?;
    }
    let mode = agentops_runtime::db::prepare(&pool, &db).await?;
    ensure!(mode == expect, "mode {mode:?}, expected {expect:?}");
    // Set-up is idempotent (every component runs it at start).
    ensure!(agentops_runtime::db::prepare(&pool, &db).await? == expect);
    if expect == Mode::Timescaledb {
        let wrong = DatabaseConfig {
            storage: StorageConfig {
                mode: ModeChoice::Postgres,
                ..Default::default()
            },
            ..db.clone()
        };
        let err = agentops_runtime::db::prepare(&pool, &wrong)
            .await
            .unwrap_err();
        ensure!(err.to_string().contains("rebuild --mode"), "{err}");
        // The levels with real-time aggregation on.
        let real_time = || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM timescaledb_information.continuous_aggregates
                 WHERE view_name = ANY($1) AND NOT materialized_only",
            )
            .bind(levels().collect::<Vec<_>>())
            .fetch_one(&pool)
            .await
        };
        let n = real_time().await?;
        ensure!(n == 12, "12 real-time continuous aggregates, got {n}");
        // One made before real-time was the default: turned on at the next start.
        sqlx::query("ALTER MATERIALIZED VIEW agg_1h SET (timescaledb.materialized_only = true)")
            .execute(&pool)
            .await?;
        ensure!(agentops_runtime::db::prepare(&pool, &db).await? == expect);
        let n = real_time().await?;
        ensure!(n == 12, "real-time again on every level, got {n}");
        let (chunk,): (String,) = sqlx::query_as(
            "SELECT time_interval::text FROM timescaledb_information.dimensions
             WHERE hypertable_name = 'events' AND column_name = 'ts'",
        )
        .fetch_one(&pool)
        .await?;
        ensure!(chunk == "1 day", "events chunks of {chunk}");
        let jobs: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT proc_name::text, hypertable_name::text FROM timescaledb_information.jobs
             WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_retention',
                                 'policy_compression')
             ORDER BY 1, 2",
        )
        .fetch_all(&pool)
        .await?;
        ensure!(
            jobs.len() == 33,
            "12 refresh, 8 retention (events, the minute and hour levels), \
             13 compression policies (events, every level): {jobs:?}"
        );
        // Per level: retention after the days configured, compression past
        // the refresh window.
        let policies: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT hypertable_name::text, proc_name::text,
                    COALESCE(config->>'drop_after', config->>'compress_after')
             FROM timescaledb_information.jobs
             WHERE proc_name IN ('policy_retention', 'policy_compression')
               AND hypertable_name <> 'events'
             ORDER BY 1, 2",
        )
        .fetch_all(&pool)
        .await?;
        let mut policies = policies;
        policies.sort();
        let mut want: Vec<(String, String, String)> = [
            ("agg_1d", "policy_compression", "264:00:00"),
            ("agg_1h", "policy_compression", "195:00:00"),
            ("agg_1h", "policy_retention", "20 days"),
            ("agg_1m", "policy_compression", "193:00:00"),
            ("agg_1m", "policy_retention", "9 days"),
            ("agg_org_1d", "policy_compression", "264:00:00"),
            ("agg_org_1h", "policy_compression", "195:00:00"),
            ("agg_org_1h", "policy_retention", "20 days"),
            ("agg_org_1m", "policy_compression", "193:00:00"),
            ("agg_org_1m", "policy_retention", "9 days"),
            ("agg_agent_1d", "policy_compression", "264:00:00"),
            ("agg_agent_1h", "policy_compression", "195:00:00"),
            ("agg_agent_1h", "policy_retention", "20 days"),
            ("agg_workflow_1d", "policy_compression", "264:00:00"),
            ("agg_workflow_1h", "policy_compression", "195:00:00"),
            ("agg_workflow_1h", "policy_retention", "20 days"),
            ("agg_model_1d", "policy_compression", "264:00:00"),
            ("agg_model_1h", "policy_compression", "195:00:00"),
            ("agg_model_1h", "policy_retention", "20 days"),
        ]
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
        want.sort();
        ensure!(policies == want, "level policies: {policies:?}");
        // Every component runs set-up at every start: the policies it
        // wants stay the same jobs; only a changed setting replaces its own.
        let job_ids = || async {
            sqlx::query_as::<_, (String, String, i32, Option<String>)>(
                "SELECT hypertable_name::text, proc_name::text, job_id, config->>'drop_after'
                 FROM timescaledb_information.jobs
                 WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_retention',
                                     'policy_compression')
                 ORDER BY 1, 2",
            )
            .fetch_all(&pool)
            .await
        };
        let before = job_ids().await?;
        ensure!(agentops_runtime::db::prepare(&pool, &db).await? == expect);
        ensure!(
            job_ids().await? == before,
            "set-up replaced unchanged policies"
        );
        let longer = DatabaseConfig {
            storage: StorageConfig {
                minute_retention_days: 10,
                ..db.storage.clone()
            },
            ..db.clone()
        };
        ensure!(agentops_runtime::db::prepare(&pool, &longer).await? == expect);
        let after = job_ids().await?;
        ensure!(after.len() == before.len(), "{after:?}");
        let replaced: Vec<(&str, &str, Option<&str>)> = after
            .iter()
            .filter(|job| !before.contains(job))
            .map(|(rel, proc, _, drop)| (rel.as_str(), proc.as_str(), drop.as_deref()))
            .collect();
        ensure!(
            replaced
                == [
                    ("agg_1m", "policy_retention", Some("10 days")),
                    ("agg_org_1m", "policy_retention", Some("10 days"))
                ],
            "replaced: {replaced:?}"
        );
        // Back to the suite's settings.
        ensure!(agentops_runtime::db::prepare(&pool, &db).await? == expect);
    }

    // Relation shapes: identical in both modes.
    for level in storage::LEVELS.iter().chain(&storage::TAG_LEVELS) {
        let got = columns(&pool, level.name).await?;
        ensure!(
            got == expected_columns(level),
            "{} columns: {got:?}",
            level.name
        );
    }
    // Rows with unpriced calls are indexed apart on every dimensioned level.
    let (unpriced_indexes,): (i64,) = sqlx::query_as(
        "SELECT count(DISTINCT indexname) FROM pg_indexes
         WHERE indexname IN ('agg_1m_unpriced', 'agg_1h_unpriced', 'agg_1d_unpriced')",
    )
    .fetch_one(&pool)
    .await?;
    ensure!(unpriced_indexes == 3, "{unpriced_indexes} unpriced indexes");
    let events_cols = columns(&pool, "events").await?;
    // Plain mode: and the writing transaction's id (its deriver's marker).
    let want = if mode == Mode::Postgres { 31 } else { 30 };
    ensure!(
        events_cols.len() == want,
        "events has {} columns",
        events_cols.len()
    );
    ensure!(
        (mode == Mode::Postgres) == events_cols.iter().any(|c| c.0 == "txid" && c.1 == "bigint"),
        "events.txid in {mode:?} mode: {events_cols:?}"
    );

    let org = format!("conf-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    agentops_tenancy::create_org(&pool, &org, "conformance").await?;
    let key =
        agentops_tenancy::create_key(&pool, &org, agentops_runtime::keys::Scope::Read, "test")
            .await?
            .secret;
    let t = Target {
        router: agentops_query_api::app(pool.clone(), Duration::from_secs(5)),
        pool,
        mode,
        key,
    };
    let mut writer = Writer::new(mode, "conformance");

    // Recent data: 40 runs over an hour, 2-3 hours ago, crossing an hour boundary.
    let now = Utc::now();
    let start = now.duration_trunc(Span::hours(1))? - Span::hours(2) + Span::minutes(10);
    let mut recent = runs(&org, "r", 40, start, Span::seconds(90));
    let mut unpriced = event(
        &org,
        "llm_call",
        "agent-1",
        "r-1",
        start + Span::seconds(95),
    );
    unpriced.input_tokens = Some(50);
    unpriced.model = Some("mystery-model".into());
    recent.push(unpriced);
    // An error that is not a failed run (a tool call that failed).
    let mut tool_error = event(
        &org,
        "tool_call",
        "agent-2",
        "r-2",
        start + Span::seconds(185),
    );
    tool_error.status = Some("failed".into());
    recent.push(tool_error);
    // Attributes: rolled-up keys (`team`, `env`: default `tag_keys`) with
    // two values, a key that is not rolled up, and a value too long for
    // the per-tag levels.
    for (i, e) in recent.iter_mut().enumerate() {
        e.attributes
            .insert("team".into(), ["payments", "search"][i % 2].into());
        if i % 3 == 0 {
            e.attributes.insert("env".into(), "prod".into());
        }
        e.attributes.insert("request".into(), format!("req-{i}"));
    }
    recent[0].attributes.insert("team".into(), "x".repeat(300));
    for (i, a) in ["agent-0", "agent-1"].iter().enumerate() {
        let mut hb = event(
            &org,
            "heartbeat",
            a,
            "",
            start + Span::minutes(30 + i as i64),
        );
        hb.run_id = None;
        hb.status = Some("healthy".into());
        recent.push(hb);
    }
    let (first, second) = recent.split_at(70);
    t.write(&mut writer, first, 1).await?;
    t.write(&mut writer, second, 2).await?;
    // A replayed batch changes nothing.
    t.write(&mut writer, first, 3).await?;

    // Real-time aggregation: visible before any refresh.
    let ov = t.get("/v1/metrics/overview?window=24h").await?;
    ensure!(
        ov["events"] == recent.len() as i64,
        "real-time overview: {ov}"
    );
    t.refresh().await?;

    // Histograms are sparse: a bucket without runs is NULL, never 0.
    let zero_buckets = (0..histogram::BUCKETS)
        .map(|i| format!("{} = 0", storage::hist_column(i)))
        .collect::<Vec<_>>()
        .join(" OR ");
    for rel in levels() {
        let (rows, zeros): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(*) FILTER (WHERE {zero_buckets}) FROM {rel} WHERE org_id = $1"
        ))
        .bind(&org)
        .fetch_one(&t.pool)
        .await?;
        ensure!(
            rows > 0 && zeros == 0,
            "{rel}: {zeros} of {rows} rows store a zero bucket"
        );
    }

    // Bucket sums: every level holds every event once.
    let cost: f64 = recent.iter().filter_map(|e| e.cost_usd).sum();
    let input: i64 = recent.iter().filter_map(|e| e.input_tokens).sum();
    let hist = latency_hist(recent.iter());
    for rel in levels() {
        let (ev, inp, unp, b): (i64, i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT sum(events)::int8, sum(input_tokens)::int8, sum(unpriced_calls)::int8,
                    COALESCE(sum({}), 0)::int8 FROM {rel} WHERE org_id = $1",
            storage::hist_column(histogram::bucket_of(100))
        ))
        .bind(&org)
        .fetch_one(&t.pool)
        .await?;
        ensure!(ev == recent.len() as i64, "{rel}: {ev} events");
        ensure!(inp == input, "{rel}: {inp} input tokens, expected {input}");
        ensure!(unp == 1, "{rel}: {unp} unpriced calls");
        ensure!(
            b == hist[histogram::bucket_of(100)],
            "{rel}: histogram bucket"
        );
        let c = t
            .scalar_f64(&format!(
                "SELECT sum(cost_usd)::float8 FROM {rel} WHERE org_id = '{org}'"
            ))
            .await?;
        ensure!((c - cost).abs() < 1e-9, "{rel}: cost {c}, expected {cost}");
    }
    // Per hour, per group key.
    let mut by_hour: BTreeMap<(DateTime<Utc>, String, Option<String>), i64> = BTreeMap::new();
    for e in &recent {
        let h = DateTime::from_timestamp_micros(e.timestamp)
            .unwrap()
            .duration_trunc(Span::hours(1))?;
        *by_hour
            .entry((h, e.agent_id.clone(), e.model.clone()))
            .or_default() += 1;
    }
    let rows: Vec<(DateTime<Utc>, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT bucket, agent_id, model, sum(events)::int8 FROM agg_1h WHERE org_id = $1
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind(&org)
    .fetch_all(&t.pool)
    .await?;
    let got: BTreeMap<_, _> = rows
        .into_iter()
        .map(|(h, a, m, n)| ((h, a, m), n))
        .collect();
    ensure!(
        got == by_hour,
        "hourly buckets differ:\n{got:?}\n{by_hour:?}"
    );

    // Overview: counts and percentiles merged from histograms across levels.
    let completed = recent
        .iter()
        .filter(|e| terminal(e, "run_completed"))
        .count() as i64;
    let failed = recent.iter().filter(|e| terminal(e, "run_failed")).count() as i64;
    let ov = t.get("/v1/metrics/overview?window=24h").await?;
    ensure!(
        ov["succeeded"] == completed && ov["failed"] == failed,
        "{ov}"
    );
    ensure!(
        ov["events"] == recent.len() as i64 && ov["active_agents"] == 3,
        "{ov}"
    );
    ensure!(
        (ov["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-9,
        "{ov}"
    );
    for (q, name) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let want = histogram::quantile(&hist, q).unwrap();
        let got = ov["latency_ms"][name].as_f64().context("percentile")?;
        ensure!((got - want).abs() < 1e-6, "{name}: {got} vs {want}");
    }

    // Zero-filled hourly series.
    let ts = t
        .get("/v1/metrics/timeseries?metric=runs&bucket=1h&window=24h")
        .await?;
    let points = ts["points"].as_array().context("points")?;
    ensure!(points.len() >= 24, "{} points", points.len());
    let mut runs_by_hour: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for e in recent
        .iter()
        .filter(|e| e.event_type.starts_with("run_") && e.event_type != "run_started")
    {
        let h = DateTime::from_timestamp_micros(e.timestamp)
            .unwrap()
            .duration_trunc(Span::hours(1))?;
        *runs_by_hour.entry(h).or_default() += 1.0;
    }
    let mut prev: Option<DateTime<Utc>> = None;
    for p in points {
        let at: DateTime<Utc> = p["ts"].as_str().context("ts")?.parse()?;
        if let Some(prev) = prev {
            ensure!(at - prev == Span::hours(1), "gap in the series at {at}");
        }
        prev = Some(at);
        let want = runs_by_hour.get(&at).copied().unwrap_or(0.0);
        ensure!(p["value"].as_f64() == Some(want), "{at}: {p} (want {want})");
    }

    // Late data: 3 days and ~7 days late; lands in its own buckets after refresh.
    let late_start = now - Span::days(3);
    let mut late = runs(&org, "late", 5, late_start, Span::seconds(90));
    late.extend(runs(
        &org,
        "later",
        1,
        now - Span::days(6) - Span::hours(20),
        Span::seconds(90),
    ));
    t.write(&mut writer, &late, 4).await?;
    t.refresh().await?;
    let all: Vec<&AgentEvent> = recent.iter().chain(late.iter()).collect();
    t.every_level_counts(&org, all.len(), "after late data")
        .await?;
    let late_day = late_start.duration_trunc(Span::days(1))?;
    let (day_events,): (i64,) =
        sqlx::query_as("SELECT sum(events)::int8 FROM agg_1d WHERE org_id = $1 AND bucket = $2")
            .bind(&org)
            .bind(late_day)
            .fetch_one(&t.pool)
            .await?;
    let want_day = all
        .iter()
        .filter(|e| {
            DateTime::from_timestamp_micros(e.timestamp)
                .unwrap()
                .duration_trunc(Span::days(1))
                .ok()
                == Some(late_day)
        })
        .count() as i64;
    ensure!(
        day_events == want_day,
        "late day bucket {day_events}, expected {want_day}"
    );
    let ov7 = t.get("/v1/metrics/overview?window=8d").await?;
    ensure!(ov7["events"] == all.len() as i64, "8d overview: {ov7}");
    org_levels_match(&t.pool, &org).await?;
    levels_are_their_definition(&t.pool, &org).await?;
    tag_levels_are_their_definition(&t.pool, &org).await?;

    let hist_all = latency_hist(all.iter().copied());
    let p95 = histogram::quantile(&hist_all, 0.95).unwrap();
    ensure!(
        ov7["latency_ms"]["p95"]
            .as_f64()
            .is_some_and(|v| (v - p95).abs() < 1e-6),
        "{ov7}"
    );
    let daily = t
        .get("/v1/metrics/timeseries?metric=events&bucket=1d&window=8d")
        .await?;
    let day_point = daily["points"]
        .as_array()
        .context("points")?
        .iter()
        .find(|p| {
            p["ts"]
                .as_str()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                == Some(late_day)
        })
        .context("late day in the daily series")?;
    ensure!(
        day_point["value"].as_f64() == Some(want_day as f64),
        "{day_point}"
    );

    // Runs and agents.
    let run = t.get("/v1/runs/r-5").await?;
    ensure!(
        run["status"] == "failed" && run["error_type"] == "tool_error",
        "{run}"
    );
    ensure!(
        run["input_tokens"] == 1005 && run["cache_read_tokens"] == 50 && run["event_count"] == 4,
        "{run}"
    );
    ensure!(
        run["events"].as_array().map(Vec::len) == Some(4),
        "timeline: {run}"
    );
    let agents = t.get("/v1/agents").await?;
    let list = agents["agents"].as_array().context("agents")?;
    ensure!(list.len() == 3, "{agents}");
    let a0 = list
        .iter()
        .find(|a| a["agent_id"] == "agent-0")
        .context("agent-0")?;
    ensure!(
        a0["heartbeat_status"] == "healthy" && a0["status"] == "idle",
        "{a0}"
    );
    let today = now.date_naive();
    let a0_events: Vec<&&AgentEvent> = all.iter().filter(|e| e.agent_id == "agent-0").collect();
    let last_day = a0_events
        .iter()
        .map(|e| {
            DateTime::from_timestamp_micros(e.timestamp)
                .unwrap()
                .date_naive()
        })
        .max();
    let want_today = if last_day == Some(today) {
        a0_events
            .iter()
            .filter(|e| {
                DateTime::from_timestamp_micros(e.timestamp)
                    .unwrap()
                    .date_naive()
                    == today
            })
            .count() as i64
    } else {
        0
    };
    ensure!(
        a0["today"]["events"] == want_today,
        "{a0} (want {want_today} today)"
    );
    // Retention per level. History older than the minutes kept (9 days):
    // a 14-day window reads its start at the whole hour, from the hours.
    // The old runs go just after the window's start, before the next whole
    // hour (the part read from minutes were they kept).
    let into_hour = Utc::now() - Utc::now().duration_trunc(Span::hours(1))?;
    if into_hour > Span::minutes(57) {
        let wait = Span::hours(1) - into_hour + Span::seconds(2);
        tokio::time::sleep(wait.to_std()?).await;
    }
    let old_start = Utc::now() - Span::days(14) + Span::seconds(40);
    let old = runs(&org, "old", 2, old_start, Span::seconds(10));
    t.write(&mut writer, &old, 5).await?;
    t.refresh().await?;
    let total = all.len() + old.len();
    let window = "/v1/metrics/overview?window=14d";
    ensure!(
        t.get(window).await?["events"] == total as i64,
        "14d overview before the drop"
    );
    if t.mode == Mode::Postgres {
        // Whole partitions past each level's retention go; the rest stays.
        let mut dropped = {
            let mut conn = t.pool.acquire().await?;
            storage::drop_expired_partitions(&mut conn, t.mode, &db.storage, now.date_naive())
                .await?
        };
        dropped.sort();
        let old_day = old_start.date_naive();
        ensure!(
            dropped
                == [
                    storage::partition_of("agg_1m", old_day),
                    storage::partition_of("agg_org_1m", old_day)
                ],
            "dropped {dropped:?}"
        );
        for rel in ["agg_1m", "agg_org_1m"] {
            let (n,): (i64,) = sqlx::query_as(&format!(
                "SELECT COALESCE(sum(events), 0)::int8 FROM {rel} WHERE org_id = $1"
            ))
            .bind(&org)
            .fetch_one(&t.pool)
            .await?;
            ensure!(n == all.len() as i64, "{rel} after the drop: {n} events");
        }
        for rel in ["events", "agg_1h", "agg_1d", "agg_org_1h", "agg_org_1d"] {
            let col = if rel == "events" {
                "count(*)"
            } else {
                "sum(events)"
            };
            let (n,): (i64,) =
                sqlx::query_as(&format!("SELECT {col}::int8 FROM {rel} WHERE org_id = $1"))
                    .bind(&org)
                    .fetch_one(&t.pool)
                    .await?;
            ensure!(n == total as i64, "{rel} after the drop: {n} events");
        }
    }
    let ov14 = t.get(window).await?;
    ensure!(ov14["events"] == total as i64, "14d overview: {ov14}");
    // Minute points past the minutes kept are refused, naming the field.
    let req = Request::get("/v1/metrics/timeseries?metric=runs&bucket=15m&window=14d")
        .header("x-api-key", &t.key)
        .body(Body::empty())?;
    let resp = t.router.clone().oneshot(req).await?;
    ensure!(
        resp.status() == 400,
        "15m points over 14d: {}",
        resp.status()
    );
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), 1 << 20).await?)?;
    ensure!(body.to_string().contains("bucket"), "{body}");
    // From here on the minute levels of plain mode lack the old runs.
    let minutes_lack = if t.mode == Mode::Postgres {
        old.len()
    } else {
        0
    };

    // A database from before the org and one-dimension levels: setup
    // creates them from the four-key levels, with the same answers.
    {
        let mut conn = t.pool.acquire().await?;
        for l in storage::LEVELS
            .iter()
            .rev()
            .filter(|l| l.dims != storage::DIMENSIONS)
        {
            let kind = if t.mode == Mode::Timescaledb {
                "MATERIALIZED VIEW"
            } else {
                "TABLE"
            };
            sqlx::raw_sql(&format!("DROP {kind} {} CASCADE", l.name))
                .execute(&mut *conn)
                .await?;
        }
        // ... and the per-tag levels: filled from the raw events.
        sqlx::raw_sql(
            "DROP TABLE agg_tag_1h, agg_tag_1d;
             DELETE FROM storage_settings WHERE key = 'tag_keys'",
        )
        .execute(&mut *conn)
        .await?;
    }
    if t.mode == Mode::Postgres {
        // ... and from before the sparse histograms (zeros, NOT NULL).
        sqlx::raw_sql(
            "UPDATE agg_1h SET lat_b00 = COALESCE(lat_b00, 0);
             ALTER TABLE agg_1h ALTER COLUMN lat_b00 SET DEFAULT 0,
                 ALTER COLUMN lat_b00 SET NOT NULL",
        )
        .execute(&t.pool)
        .await?;
    }
    ensure!(agentops_runtime::db::prepare(&t.pool, &db).await? == expect);
    org_levels_match(&t.pool, &org).await?;
    tag_levels_are_their_definition(&t.pool, &org).await?;
    let mut again = t.get("/v1/metrics/overview?window=8d").await?;
    let mut before = ov7.clone();
    let (c1, c0) = (again["cost_usd"].take(), before["cost_usd"].take());
    ensure!(
        again == before && (c1.as_f64().unwrap_or(-1.0) - cost_of(&all)).abs() < 1e-9,
        "overview after the migration: {again} ({c1}) vs {before} ({c0})"
    );
    // The writer's NULL buckets fit the migrated tables.
    let more = runs(&org, "after", 3, now - Span::hours(1), Span::seconds(60));
    t.write(&mut writer, &more, 6).await?;
    t.refresh().await?;
    t.level_counts(
        &org,
        total + more.len(),
        minutes_lack,
        "after the migration",
    )
    .await?;
    org_levels_match(&t.pool, &org).await?;

    if t.mode == Mode::Postgres {
        // A database from before partitioning: a level's table becomes the
        // first partition of the partitioned one, every row kept.
        let cols: Vec<String> = std::iter::once("org_id, bucket".to_owned())
            .chain(storage::DIMENSIONS.iter().map(|d| d.to_string()))
            .collect();
        sqlx::raw_sql(&format!(
            "CREATE TABLE agg_1m_flat (LIKE agg_1m INCLUDING DEFAULTS);
             INSERT INTO agg_1m_flat SELECT * FROM agg_1m;
             DROP TABLE agg_1m;
             ALTER TABLE agg_1m_flat RENAME TO agg_1m;
             ALTER TABLE agg_1m ADD CONSTRAINT agg_1m_key UNIQUE NULLS NOT DISTINCT ({});",
            cols.join(", ")
        ))
        .execute(&t.pool)
        .await?;
        ensure!(agentops_runtime::db::prepare(&t.pool, &db).await? == expect);
        let (kind, parts): (String, Vec<String>) = sqlx::query_as(
            "SELECT c.relkind::text, ARRAY(SELECT p.relname::text FROM pg_inherits i
                 JOIN pg_class p ON p.oid = i.inhrelid WHERE i.inhparent = c.oid)
             FROM pg_class c WHERE c.oid = 'agg_1m'::regclass",
        )
        .fetch_one(&t.pool)
        .await?;
        ensure!(
            kind == "p" && parts.len() == 1 && parts[0].starts_with("agg_1m_pre"),
            "agg_1m after partitioning: {kind} {parts:?}"
        );
        org_levels_match(&t.pool, &org).await?;
        // The writer goes on (today is in the first partition) ...
        let last = runs(&org, "last", 2, now - Span::minutes(30), Span::seconds(60));
        t.write(&mut writer, &last, 7).await?;
        let n = total + more.len() + last.len();
        t.level_counts(&org, n, minutes_lack, "after partitioning")
            .await?;
        org_levels_match(&t.pool, &org).await?;
        // ... and when even that partition is past retention, every
        // partition of events and the minute and hour levels is dropped
        // whole; the per-day levels keep everything.
        let later = now.date_naive() + chrono::Days::new(400);
        let dropped = {
            let mut conn = t.pool.acquire().await?;
            storage::drop_expired_partitions(&mut conn, t.mode, &db.storage, later).await?
        };
        ensure!(
            dropped.iter().any(|d| d.starts_with("agg_1m_pre")),
            "{dropped:?}"
        );
        for p in storage::partitioned() {
            let (left,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1)",
            )
            .bind(p.table)
            .fetch_one(&t.pool)
            .await?;
            ensure!(left == 0, "{}: {left} partitions left", p.table);
        }
        for rel in ["agg_1d", "agg_org_1d"] {
            let (kept,): (i64,) = sqlx::query_as(&format!(
                "SELECT sum(events)::int8 FROM {rel} WHERE org_id = $1"
            ))
            .bind(&org)
            .fetch_one(&t.pool)
            .await?;
            ensure!(kept == n as i64, "{rel}: {kept} events kept");
        }
    } else {
        // The per-tag hour level is the workers' in this mode too: its
        // monthly partitions are dropped whole past the hours kept, and
        // nothing else is touched (the hypertable and the continuous
        // aggregates have policies).
        let tagged = |rel: &str| {
            format!("SELECT COALESCE(sum(events), 0)::int8 FROM {rel} WHERE org_id = $1")
        };
        let (day_before,): (i64,) = sqlx::query_as(&tagged("agg_tag_1d"))
            .bind(&org)
            .fetch_one(&t.pool)
            .await?;
        let later = now.date_naive() + chrono::Days::new(400);
        let dropped = {
            let mut conn = t.pool.acquire().await?;
            storage::drop_expired_partitions(&mut conn, t.mode, &db.storage, later).await?
        };
        ensure!(
            !dropped.is_empty() && dropped.iter().all(|d| d.starts_with("agg_tag_1h_p")),
            "{dropped:?}"
        );
        let (hours,): (i64,) = sqlx::query_as(&tagged("agg_tag_1h"))
            .bind(&org)
            .fetch_one(&t.pool)
            .await?;
        let (days,): (i64,) = sqlx::query_as(&tagged("agg_tag_1d"))
            .bind(&org)
            .fetch_one(&t.pool)
            .await?;
        ensure!(
            hours == 0 && days == day_before && days > 0,
            "agg_tag_1h {hours}, agg_tag_1d {days} (was {day_before})"
        );
    }
    Ok(())
}
