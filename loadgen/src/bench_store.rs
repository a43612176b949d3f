//! Storage benchmarks (plain PostgreSQL mode):
//! - `bench-projections`: rows/s the projection writer stores (events plus
//!   everything derived, one transaction per batch, exactly the worker's code)
//!   beside a raw binary COPY of the same rows into a same-shaped table.
//! - `bench-queries`: the query API's overview and 24h hourly series over a
//!   large history, beside the same answers computed from raw events.

use std::time::{Duration, Instant};

use agentops_projections::{events_copy_payload, Handoff, Writer, EVENTS_COPY_COLUMNS};
use agentops_runtime::config::DatabaseConfig;
use agentops_runtime::storage::{self, Mode, ModeChoice, StorageConfig};
use agentops_schemas::AgentEvent;
use anyhow::{ensure, Context, Result};
use chrono::{DateTime, DurationRound, Utc};
use rand::Rng;
use serde_json::json;
use sqlx::postgres::PgPoolCopyExt;
use sqlx::PgPool;

#[derive(clap::Args, Debug)]
pub struct ProjectionsOptions {
    /// Postgres URL of an empty database.
    #[arg(long)]
    pub database_url: String,
    /// Events to write in each phase.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Rows per transaction (the worker's `batch_max`).
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Distinct agents.
    #[arg(long, default_value_t = 1000)]
    pub agents: usize,
    /// Write as in TimescaleDB mode (no worker-maintained aggregates).
    #[arg(long)]
    pub timescale_path: bool,
    /// Largest chunk the deriver takes (events; the worker's
    /// `derive_max_events`).
    #[arg(long, default_value_t = agentops_projections::DERIVE_CHUNK)]
    pub derive_chunk: usize,
    /// Seconds of event time the events spread over, up to now: 72,000 (20 h,
    /// a backfill: nearly every event opens its own minute row per agent) or
    /// what a live fleet sends while it is written (200,000 events at
    /// 10,000 events/s: 20).
    #[arg(long, default_value_t = 72_000)]
    pub span_secs: i64,
    /// Rounds of writer then raw COPY (each in an org of its own); the
    /// ratio printed is their median.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

pub(crate) async fn plain_pool(url: &str) -> Result<PgPool> {
    let db = DatabaseConfig {
        url: url.into(),
        max_connections: 4,
        statement_timeout_ms: None,
        storage: StorageConfig {
            mode: ModeChoice::Postgres,
            ..Default::default()
        },
    };
    let pool = agentops_runtime::db::connect(&db, Duration::from_secs(30)).await?;
    let mode = agentops_runtime::db::prepare(&pool, &db).await?;
    ensure!(
        mode == Mode::Postgres,
        "the benchmark database must be plain PostgreSQL"
    );
    Ok(pool)
}

/// Synthetic enriched events: runs of five events (start, two LLM calls, a
/// tool call, the end) of `agents` agents over the last `span` before now.
fn synthetic(n: usize, agents: usize, span: chrono::Duration) -> Vec<AgentEvent> {
    let mut rng = rand::rng();
    let now = Utc::now();
    let runs = n.div_ceil(5);
    let mut out = Vec::with_capacity(runs * 5);
    for r in 0..runs {
        let t0 = now - span + span * (r as i32) / (runs as i32).max(1);
        let agent = format!("agent-{}", r % agents.max(1));
        let run = format!("run-{r}");
        let ev = |ty: &str, ms: i64| AgentEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            org_id: "bench".into(),
            event_type: ty.into(),
            agent_id: agent.clone(),
            workflow_id: Some(format!("wf-{}", r % agents.max(1) % 7)),
            run_id: Some(run.clone()),
            timestamp: (t0 + chrono::Duration::milliseconds(ms)).timestamp_micros(),
            attributes: [("env".to_owned(), "prod".to_owned())].into(),
            ..Default::default()
        };
        let mut llm = |ms: i64| {
            let mut e = ev("llm_call", ms);
            e.provider = Some("openai".into());
            e.model = Some(if r % 3 == 0 { "gpt-4o-mini" } else { "gpt-4o" }.into());
            e.input_tokens = Some(rng.random_range(200..4000));
            e.output_tokens = Some(rng.random_range(50..800));
            e.cost_usd = Some(rng.random_range(0.0001..0.05));
            e.cost_source = Some("computed".into());
            e.latency_ms = Some(rng.random_range(200..4000));
            e
        };
        let (a, b) = (llm(10), llm(20));
        let mut tool = ev("tool_call", 15);
        tool.tool_name = Some("search".into());
        let failed = r % 12 == 0;
        let mut end = ev(
            if failed {
                "run_failed"
            } else {
                "run_completed"
            },
            30,
        );
        end.latency_ms = Some(rng.random_range(300..30_000));
        if failed {
            end.status = Some("error".into());
            end.error_type = Some("tool_error".into());
            end.error_message = Some("search tool timed out".into());
        }
        out.extend([ev("run_started", 0), a, b, tool, end]);
    }
    out.truncate(n);
    out
}

/// The raw baseline's COPY: the writer's own rows and columns
/// ([`events_copy_payload`]; `txid` takes its default there as in `events`).
fn copy_sql() -> String {
    format!("COPY events_copy ({EVENTS_COPY_COLUMNS}) FROM STDIN (FORMAT binary)")
}

fn copy_payload(events: &[AgentEvent]) -> Vec<u8> {
    let refs: Vec<&AgentEvent> = events.iter().collect();
    events_copy_payload(&refs)
}

/// Writer rows/s vs raw binary COPY rows/s, in one run.
pub async fn projections(o: ProjectionsOptions) -> Result<()> {
    ensure!(o.repeat >= 1, "--repeat must be at least 1");
    let pool = plain_pool(&o.database_url).await?;
    // Raw baseline: a plain table shaped like `events` (same columns, key and indexes).
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS events_copy;
         CREATE TABLE events_copy (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
         ALTER TABLE events_copy ADD PRIMARY KEY (event_id, org_id, ts);
         CREATE INDEX ON events_copy (org_id, ts DESC);
         CREATE INDEX ON events_copy (org_id, run_id, ts);
         CREATE INDEX ON events_copy (org_id, ts DESC) WHERE type = 'run_failed' OR status IN ('error', 'failed');
         CREATE INDEX ON events_copy (txid) WHERE txid IS NOT NULL;",
    )
    .execute(&pool)
    .await?;

    // Warm-up of both paths on a separate org, not counted.
    // `--timescale-path`: the write path of TimescaleDB mode (events, runs,
    // agents, offsets; the aggregates are TimescaleDB's job), run on plain
    // PostgreSQL to show what maintaining the aggregates costs.
    let path = if o.timescale_path {
        Mode::Timescaledb
    } else {
        Mode::Postgres
    };
    // The writer hands the deriver its batches as the worker's does.
    let handoff = Handoff::new(o.derive_chunk);
    let mut writer = Writer::new(path, "bench").handing_over(handoff.clone());
    let warm = in_org(
        synthetic(o.batch, 10, chrono::Duration::hours(20)),
        "warmup",
    );
    let mut conn = pool.acquire().await?;
    let today = Utc::now().date_naive();
    storage::ensure_partitions(&mut conn, &[today.pred_opt().unwrap_or(today), today]).await?;
    writer.apply(&mut conn, &warm, &[]).await?;
    let mut copy = pool.copy_in_raw(&copy_sql()).await?;
    copy.send(copy_payload(&warm)).await?;
    copy.finish().await?;
    writer.settle(&mut conn).await?;
    drop(conn);
    let what = if o.timescale_path {
        "events + runs + agents + hierarchy + per-tag levels + offsets per transaction: the TimescaleDB-mode path"
    } else {
        "batches of events + offsets, the deriver beside them folding the twelve aggregate levels, \
         per-tag levels, runs, agents and the hierarchy; timed until all is derived"
    };

    // Rounds: the writer, then a raw COPY of the same rows, each round in
    // an org of its own (the machine's noise falls on both sides alike).
    let mut ratios = Vec::with_capacity(o.repeat);
    let mut last = None;
    for round in 0..o.repeat {
        let org = if round == 0 {
            "bench".to_owned()
        } else {
            format!("bench-{round}")
        };
        let events = in_org(
            synthetic(o.events, o.agents, chrono::Duration::seconds(o.span_secs)),
            &org,
        );
        eprintln!(
            "bench-projections: round {}/{}: writer phase, {} events in batches of {}",
            round + 1,
            o.repeat,
            events.len(),
            o.batch
        );
        let w = writer_phase(&pool, &o, path, &handoff, &mut writer, &events, &org, round).await?;
        eprintln!(
            "bench-projections: round {}/{}: raw binary COPY phase",
            round + 1,
            o.repeat
        );
        let payloads: Vec<Vec<u8>> = events.chunks(o.batch).map(copy_payload).collect();
        let started = Instant::now();
        for p in payloads {
            let mut copy = pool.copy_in_raw(&copy_sql()).await?;
            copy.send(p).await?;
            copy.finish().await?;
        }
        let copy_secs = started.elapsed().as_secs_f64();
        let (n_writer, n_copy): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM events WHERE org_id = $1),
                    (SELECT count(*) FROM events_copy WHERE org_id = $1)",
        )
        .bind(&org)
        .fetch_one(&pool)
        .await?;
        ensure!(
            n_writer == events.len() as i64 && n_copy == events.len() as i64,
            "row counts {n_writer} / {n_copy}"
        );
        let n = events.len() as f64;
        let (wr, hot, c) = (n / w.total_secs, n / w.writer_secs, n / copy_secs);
        let ratio = wr / c;
        println!(
            "round {}: projection writer {wr:.0} rows/s ({:.2} s), raw binary COPY {c:.0} rows/s \
             ({copy_secs:.2} s): ratio {ratio:.2}",
            round + 1,
            w.total_secs
        );
        if !o.timescale_path {
            println!(
                "  of which batches: {hot:.0} rows/s ({:.2} s); derived {} events ({} handed \
                 over by the writer, the rest read back)",
                w.writer_secs, w.derived, w.handed
            );
        }
        ratios.push(ratio);
        last = Some((wr, hot, c, events.len()));
    }
    let Some((wr, hot, c, n)) = last else {
        unreachable!("at least one round")
    };
    let lowest = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let med = median(ratios.clone());
    println!("projection writer: {what}");
    println!("raw binary COPY:   events_copy, same columns and indexes");
    println!(
        "ratio writer/COPY: {med:.2} (median of {} rounds; lowest {lowest:.2}, highest {highest:.2})",
        ratios.len()
    );
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({"bench": "projections", "path": if o.timescale_path { "timescaledb" } else { "postgres" },
               "events": n, "batch": o.batch, "span_secs": o.span_secs, "rounds": ratios.len(),
               "writer_rows_per_s": wr.round(), "batches_rows_per_s": hot.round(),
               "copy_rows_per_s": c.round(), "ratio": round2(med),
               "ratios": ratios.iter().map(|r| round2(*r)).collect::<Vec<_>>()})
    );
    Ok(())
}

/// The events with their org set to `org`.
fn in_org(events: Vec<AgentEvent>, org: &str) -> Vec<AgentEvent> {
    events
        .into_iter()
        .map(|mut e| {
            e.org_id = org.into();
            e
        })
        .collect()
}

/// One writer phase's figures.
struct WriterPhase {
    /// Until everything is derived.
    total_secs: f64,
    /// Until the last batch is committed.
    writer_secs: f64,
    derived: usize,
    handed: usize,
}

/// Write `events` (org `org`) through the writer in batches, the deriver
/// beside it (plain mode), and check the org level counts them all.
#[allow(clippy::too_many_arguments)]
async fn writer_phase(
    pool: &PgPool,
    o: &ProjectionsOptions,
    path: Mode,
    handoff: &std::sync::Arc<Handoff>,
    writer: &mut Writer,
    events: &[AgentEvent],
    org: &str,
    round: usize,
) -> Result<WriterPhase> {
    let mut conn = pool.acquire().await?;
    // Plain mode: the deriver runs beside the writer on its own connection
    // and its own thread (a current-thread runtime), as in the worker, and
    // the clock stops once it has derived everything.
    let deriver = Writer::new(path, "bench").handing_over(handoff.clone());
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let started = Instant::now();
    let derive = {
        let (writing, pool, chunk) = (writing.clone(), pool.clone(), o.derive_chunk);
        std::thread::Builder::new().name("deriver".into()).spawn(
            move || -> Result<(usize, usize)> {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(async move {
                        let mut conn = pool.acquire().await?;
                        let (mut derived, mut handed) = (0usize, 0usize);
                        loop {
                            // A pass that starts once the last batch is committed sees it.
                            let last = !writing.load(std::sync::atomic::Ordering::SeqCst);
                            let d = deriver.derive(&mut conn, chunk).await?;
                            derived += d.events;
                            handed += d.handed_over;
                            if last && d.caught_up {
                                return Ok((derived, handed));
                            }
                            if d.transactions == 0 {
                                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            }
                        }
                    })
            },
        )?
    };
    let written = async {
        for (i, chunk) in events.chunks(o.batch).enumerate() {
            // A partition of its own per round.
            let offsets = [(
                "bench".to_owned(),
                round as i32,
                (i as i64 + 1) * o.batch as i64,
            )];
            let applied = writer.apply(&mut conn, chunk, &offsets).await?;
            ensure!(applied.inserted == chunk.len(), "batch {i}: {applied:?}");
        }
        Ok::<f64, anyhow::Error>(started.elapsed().as_secs_f64())
    }
    .await;
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let derived = tokio::task::spawn_blocking(move || derive.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the deriver's thread panicked"))?;
    let (writer_secs, (derived, handed)) = (written?, derived?);
    let total_secs = started.elapsed().as_secs_f64();
    drop(conn);
    let (agg,): (i64,) =
        sqlx::query_as("SELECT COALESCE(sum(events), 0)::int8 FROM agg_org_1h WHERE org_id = $1")
            .bind(org)
            .fetch_one(pool)
            .await?;
    // (The TimescaleDB-mode path leaves the levels to TimescaleDB.)
    ensure!(
        o.timescale_path || agg == events.len() as i64,
        "the org level counts {agg} events of {}",
        events.len()
    );
    Ok(WriterPhase {
        total_secs,
        writer_secs,
        derived,
        handed,
    })
}

#[derive(clap::Args, Debug)]
pub struct Target {
    /// Postgres URL of the database the query API reads.
    #[arg(long)]
    pub database_url: String,
    /// Query API base URL.
    #[arg(long)]
    pub query_url: String,
    /// A read key of org `bench`.
    #[arg(long)]
    pub key: String,
}

/// The shape of the generated history ([`load_history`]).
#[derive(clap::Args, Debug)]
pub struct History {
    #[arg(long, default_value_t = 10_000_000)]
    pub events: i64,
    #[arg(long, default_value_t = 1000)]
    pub agents: i64,
    #[arg(long, default_value_t = 30)]
    pub days: i64,
}

#[derive(clap::Args, Debug)]
pub struct QueriesOptions {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub history: History,
    /// Timed repetitions of each query.
    #[arg(long, default_value_t = 20)]
    pub repeat: usize,
    /// Reuse data loaded by an earlier run.
    #[arg(long)]
    pub skip_load: bool,
}

/// Load `n` events of org `bench` spread evenly over `days` into `events`
/// and build the aggregate levels and the runs from them with the worker's
/// own column definitions (the same SQL the plain-mode writer runs per
/// batch), a UTC day at a time ([`storage::fold_history`]), and the
/// agents. Skewed like a real fleet: run `r`'s agent is
/// `floor(agents^u) - 1` for `u` uniform in [0, 1) (a Weyl sequence of
/// `r`): log-uniform, so agent-0 runs 10% of the runs at 1,000 agents, the
/// first 10 agents 35% and the first 100 67%; its model is gpt-4o-mini 55%,
/// gpt-4o 25%, claude-sonnet-4 12%, gemini-2.5-pro 6%, o3 2% (priced
/// apart). Five events per run (start, two LLM calls, a tool call, the
/// end); every 12th run fails. A fifth of the runs are coding-agent
/// sessions carrying the hierarchy ([`session_hierarchy`]); the
/// `projects`, `machines`, `workspaces` and `agent_sessions` tables are
/// filled from the events with the projections' own definition.
pub(crate) async fn load_history(pool: &PgPool, h: &History) -> Result<()> {
    let (n, agents, days) = (h.events, h.agents, h.days);
    let today = Utc::now().date_naive();
    let first = today - chrono::Days::new(days as u64);
    let all: Vec<_> = first.iter_days().take(days as usize + 2).collect();
    let mut conn = pool.acquire().await?;
    storage::ensure_partitions(&mut conn, &all).await?;
    let chunk = 1_000_000i64;
    let mut done = 0;
    let started = Instant::now();
    while done < n {
        let upto = (done + chunk).min(n);
        // Event i: run i/5, step i%5 (start, llm, llm, tool, end); ~8% of runs fail.
        let [session, project, machine, workspace, attributes] =
            session_hierarchy("(i / 5)", "k.a");
        let sql = format!(
            "INSERT INTO events (event_id, org_id, ts, agent_id, workflow_id, run_id, type, status,
                 latency_ms, lat_bucket, provider, model, input_tokens, output_tokens, cost_usd, tool_name,
                 error_type, error_message, session_id, project_id, machine_id, workspace_id, attributes)
             SELECT gen_random_uuid(), 'bench',
                 now() - make_interval(secs => $3 * 86400.0 * (1 - i::float8 / $2)),
                 'agent-' || k.a, 'wf-' || (k.a % 7), 'run-' || (i / 5),
                 CASE i % 5 WHEN 0 THEN 'run_started' WHEN 3 THEN 'tool_call'
                     WHEN 4 THEN CASE WHEN (i / 5) % 12 = 0 THEN 'run_failed' ELSE 'run_completed' END
                     ELSE 'llm_call' END,
                 CASE WHEN i % 5 = 4 AND (i / 5) % 12 = 0 THEN 'error' END,
                 CASE WHEN i % 5 = 4 THEN 300 + (i * 7919) % 29700 WHEN i % 5 IN (1, 2) THEN 200 + i % 3800 END,
                 CASE WHEN i % 5 = 4 THEN
                     1 + floor(log(2::numeric, (300 + (i * 7919) % 29700)::numeric) * 4)::int2 END,
                 CASE WHEN i % 5 IN (1, 2) THEN
                     CASE WHEN k.m < 0.80 OR k.m >= 0.98 THEN 'openai' WHEN k.m < 0.92 THEN 'anthropic'
                          ELSE 'google' END END,
                 CASE WHEN i % 5 IN (1, 2) THEN
                     CASE WHEN k.m < 0.55 THEN 'gpt-4o-mini' WHEN k.m < 0.80 THEN 'gpt-4o'
                          WHEN k.m < 0.92 THEN 'claude-sonnet-4' WHEN k.m < 0.98 THEN 'gemini-2.5-pro'
                          ELSE 'o3' END END,
                 CASE WHEN i % 5 IN (1, 2) THEN 200 + i % 3800 END,
                 CASE WHEN i % 5 IN (1, 2) THEN 50 + i % 750 END,
                 CASE WHEN i % 5 IN (1, 2) THEN (i % 500) / 10000.0 *
                     CASE WHEN k.m < 0.55 THEN 0.1 WHEN k.m < 0.80 THEN 1.0 WHEN k.m < 0.92 THEN 1.2
                          WHEN k.m < 0.98 THEN 0.8 ELSE 3.0 END END,
                 CASE WHEN i % 5 = 3 THEN 'search' END,
                 CASE WHEN i % 5 = 4 AND (i / 5) % 12 = 0 THEN 'tool_error' END,
                 CASE WHEN i % 5 = 4 AND (i / 5) % 12 = 0 THEN 'search tool timed out' END,
                 CASE WHEN {SESSION_RUN} THEN {session} END, CASE WHEN {SESSION_RUN} THEN {project} END,
                 CASE WHEN {SESSION_RUN} THEN {machine} END, CASE WHEN {SESSION_RUN} THEN {workspace} END,
                 CASE WHEN {SESSION_RUN} AND i % 5 = 0 THEN {attributes} ELSE '{{}}' END
             FROM generate_series($1::int8, $5::int8 - 1) AS i,
             LATERAL (SELECT
                 greatest(floor(power($4::float8, ((i / 5) * 2654435761 % 4294967296) / 4294967296.0))::int8 - 1, 0) AS a,
                 ((i / 5) * 40503 % 65536) / 65536.0 AS m) k",
            SESSION_RUN = "(i / 5) % 5 = 0",
        );
        sqlx::query(&sql)
            .bind(done)
            .bind(n as f64)
            .bind(days as f64)
            .bind(agents)
            .bind(upto)
            .execute(&mut *conn)
            .await?;
        done = upto;
        eprintln!(
            "bench-queries: loaded {done}/{n} events ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    // The levels, the per-tag levels and the runs, a day at a time.
    let tag_keys = StorageConfig::default().tag_keys;
    storage::fold_history(
        &mut conn,
        "bench",
        &tag_keys,
        &all,
        storage::Fold::All,
        |day| {
            eprintln!(
                "bench-queries: built the levels and runs of {day} ({:.0} s)",
                started.elapsed().as_secs_f64()
            )
        },
    )
    .await?;
    // The agents, as the writer keeps them (the overview's active agents
    // read their last_seen).
    sqlx::query(storage::agents_from_events_sql())
        .bind("bench")
        .execute(&mut *conn)
        .await?;
    fill_hierarchy(&mut conn, started).await?;
    // Its derived tables are built above: nothing for a deriver to fold.
    storage::deferred::mark_all_derived(&mut conn).await?;
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut *conn).await?;
    Ok(())
}

/// The hierarchy of a session run, as SQL expressions of its run number
/// `r` and agent number `a`: `[session_id, project_id, machine_id,
/// workspace_id, attributes]`. Runs with `r % 5 = 0` are sessions (a fifth
/// of them), `session_id = run_id`; the project is the agent's modulo 50
/// (`github.com/bench/repo-N`, so the agents' skew carries over: repo-0
/// holds about an eighth of the sessions), the machine cycles through 400
/// with the session number (`machine-M`, M = `r / 5 * 31 % 400`) and the
/// workspace is the checkout of that project on that machine
/// (`ws-M-N`). The session's first event carries what the collector sends
/// about its place (project URL, machine name and OS, workspace path, git
/// branch); the tables take the latest value.
fn session_hierarchy(r: &str, a: &str) -> [String; 5] {
    let (p, m) = (format!("({a} % 50)"), format!("({r} / 5 * 31 % 400)"));
    [
        format!("'run-' || {r}"),
        format!("'github.com/bench/repo-' || {p}"),
        format!("'machine-' || {m}"),
        format!("'ws-' || {m} || '-' || {p}"),
        format!(
            "jsonb_build_object('project_url', 'https://github.com/bench/repo-' || {p},
                 'machine_name', 'bench-host-' || {m}, 'machine_os', 'linux',
                 'workspace_path', '/home/dev/repo-' || {p}, 'git_branch', 'main')"
        ),
    ]
}

/// Fill the hierarchy tables of org `bench` from its events (every
/// statement of the projections' definition, in one transaction).
async fn fill_hierarchy(conn: &mut sqlx::PgConnection, started: Instant) -> Result<()> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    for sql in agentops_projections::hierarchy_from_events_sql() {
        // `INSERT INTO <table> ...`
        let table = sql.split_whitespace().nth(2).unwrap_or_default();
        let n = sqlx::query(&sql)
            .bind("bench")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        eprintln!(
            "bench-queries: built {table}, {n} rows ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    tx.commit().await?;
    Ok(())
}

/// A history loaded before the hierarchy (a kept database) gets it in
/// place when org `bench` has no projects: the session runs' events are
/// updated one day at a time with [`session_hierarchy`]'s formulas (the run
/// and agent numbers read back from `run_id` / `agent_id`), then the tables
/// are filled and the database vacuumed.
pub(crate) async fn ensure_hierarchy(pool: &PgPool) -> Result<()> {
    let have: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE org_id = 'bench')")
            .fetch_one(pool)
            .await?;
    if have {
        return Ok(());
    }
    let (r, a) = ("substr(run_id, 5)::int8", "substr(agent_id, 7)::int8");
    let [session, project, machine, workspace, attributes] = session_hierarchy(r, a);
    let sql = format!(
        "UPDATE events SET session_id = {session}, project_id = {project}, machine_id = {machine},
             workspace_id = {workspace},
             attributes = CASE WHEN type = 'run_started' THEN attributes || {attributes}
                               ELSE attributes END
         WHERE org_id = 'bench' AND ts >= $1 AND ts < $2 AND session_id IS NULL
           AND CASE WHEN run_id ~ '^run-[0-9]+$' AND agent_id ~ '^agent-[0-9]+$'
                    THEN {r} % 5 = 0 ELSE false END"
    );
    let (first, last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT min(ts), max(ts) FROM events WHERE org_id = 'bench'")
            .fetch_one(pool)
            .await?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(());
    };
    eprintln!("bench-scale: no hierarchy in this history: adding it to the session runs' events");
    let started = Instant::now();
    let mut day = first.duration_trunc(chrono::TimeDelta::days(1))?;
    let mut total = 0;
    while day <= last {
        let next = day + chrono::TimeDelta::days(1);
        total += sqlx::query(&sql)
            .bind(day)
            .bind(next)
            .execute(pool)
            .await?
            .rows_affected();
        eprintln!(
            "bench-scale: hierarchy up to {}: {total} events updated ({:.0} s)",
            next.format("%Y-%m-%d"),
            started.elapsed().as_secs_f64()
        );
        day = next;
    }
    let mut conn = pool.acquire().await?;
    fill_hierarchy(&mut conn, started).await?;
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut *conn).await?;
    eprintln!(
        "bench-scale: hierarchy added, vacuumed ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Raw-events figures of the last `{w}` (an SQL interval): finished runs,
/// cost, events, agents and the latency histogram (the overview's).
pub(crate) fn raw_overview(w: &str) -> String {
    format!(
        "SELECT count(*) FILTER (WHERE type IN ('run_completed', 'run_failed'))::float8 AS runs,
                COALESCE(sum(cost_usd), 0)::float8 AS cost,
                count(*)::float8 AS events,
                count(DISTINCT agent_id)::float8 AS agents,
                (SELECT array_agg(c ORDER BY b) FROM (
                     SELECT lat_bucket AS b, count(*) AS c FROM events
                     WHERE org_id = 'bench' AND ts >= now() - interval '{w}' AND lat_bucket IS NOT NULL
                     GROUP BY 1) h)::float8[] AS histogram
         FROM events WHERE org_id = 'bench' AND ts >= now() - interval '{w}'"
    )
}

/// The 24 h hourly series of finished runs from raw events.
pub(crate) const RAW_SERIES: &str = "
WITH s AS (SELECT generate_series(date_trunc('hour', now() - interval '24 hours'), now(), interval '1 hour') AS ts),
a AS (SELECT date_trunc('hour', ts) AS ts, count(*) AS v FROM events
      WHERE org_id = 'bench' AND ts >= date_trunc('hour', now() - interval '24 hours')
        AND type IN ('run_completed', 'run_failed') GROUP BY 1)
SELECT s.ts, COALESCE(a.v, 0)::float8 FROM s LEFT JOIN a USING (ts) ORDER BY s.ts";

/// Query API (aggregates) vs the same answers from raw events.
pub async fn queries(o: QueriesOptions) -> Result<()> {
    let pool = plain_pool(&o.target.database_url).await?;
    if !o.skip_load {
        load_history(&pool, &o.history).await?;
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE org_id = 'bench'")
        .fetch_one(&pool)
        .await?;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let url = format!("{}{path}", o.target.query_url);
        let (http, key) = (http.clone(), o.target.key.clone());
        async move { crate::bench_console::timed(&http, &url, &key).await }
    };
    let overview = "/v1/metrics/overview?window=24h";
    let series = "/v1/metrics/timeseries?metric=runs&bucket=1h&window=24h";
    let raw_24h = raw_overview("24 hours");
    // Same answers first (and warm caches).
    let (_, api_ov) = get(overview).await?;
    let (raw_runs,): (f64,) = sqlx::query_as(&format!("SELECT runs FROM ({raw_24h}) r"))
        .fetch_one(&pool)
        .await?;
    // Same answer up to the window edges: the API counts whole minute buckets
    // from the window start, the raw query every event since now() - 24h.
    let api_runs = api_ov["runs"].as_f64().unwrap_or(0.0);
    ensure!(
        (api_runs - raw_runs).abs() <= 0.005 * raw_runs,
        "overview differs: api {api_ov}, raw runs {raw_runs}"
    );
    let mut results = Vec::new();
    for (name, path, raw_sql) in [
        ("overview 24h", overview, raw_24h.as_str()),
        ("timeseries 24h hourly", series, RAW_SERIES),
    ] {
        let mut api = Vec::new();
        let mut rawt = Vec::new();
        for _ in 0..o.repeat {
            api.push(get(path).await?.0);
            let t = Instant::now();
            sqlx::raw_sql(raw_sql)
                .fetch_all(&pool)
                .await
                .context("raw query")?;
            rawt.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let q95 = crate::bench_console::quantile;
        let (a95, r95) = (q95(&mut api, 0.95), q95(&mut rawt, 0.95));
        let (a, r) = (median(api), median(rawt));
        println!(
            "{name}: query API p50 {a:.1} ms p95 {a95:.1} ms, raw events p50 {r:.1} ms p95 {r95:.1} ms, raw/API {:.1}x (p50 of {})",
            r / a,
            o.repeat
        );
        let round = |v: f64| (v * 10.0).round() / 10.0;
        results.push(json!({"query": name, "api_ms": round(a), "api_p95_ms": round(a95), "raw_ms": round(r), "raw_p95_ms": round(r95), "speedup": round(r / a)}));
    }
    println!(
        "{}",
        json!({"bench": "queries", "events": n, "agents": o.history.agents, "days": o.history.days, "results": results})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_runs_have_five_events_and_one_end() {
        let ev = synthetic(1000, 10, chrono::Duration::hours(1));
        assert_eq!(ev.len(), 1000);
        let ends = ev
            .iter()
            .filter(|e| e.event_type.starts_with("run_c") || e.event_type == "run_failed")
            .count();
        assert_eq!(ends, 200);
    }

    #[test]
    fn copy_payload_frames_every_row() {
        let ev = synthetic(10, 2, chrono::Duration::hours(1));
        let p = copy_payload(&ev);
        assert!(p.starts_with(b"PGCOPY\n\xff\r\n\0"));
        assert!(p.ends_with(&(-1i16).to_be_bytes()));
    }
}
