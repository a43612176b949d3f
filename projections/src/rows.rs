//! Runs and agents: one row each, upserted from the new events of a batch.
//!
//! Both are order-independent folds, so a rebuild that reads the log in
//! bigger batches ends with the same rows as the live workers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use agentops_runtime::copy::CopyBinary;
use agentops_runtime::storage::{RUN_LIST_CAP, RUN_TAGS_CAP, RUN_TAG_KEY_MAX, RUN_TAG_VALUE_MAX};
use agentops_schemas::{AgentEvent, EventType};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use crate::store::{copy_in, savepoint, unless_stored};

/// Microseconds since the epoch (an event's timestamp) as a UTC time.
pub(crate) fn ts(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

const UPSERT_RUNS: &str = "
INSERT INTO runs AS r (org_id, run_id, agent_id, workflow_id, status, started_at, ended_at,
    latency_ms, events, cost_usd, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, llm_calls, tool_calls, error_type, error_message,
    models, providers, tags, updated_at)
SELECT org_id, run_id, agent_id, workflow_id, status, started_at, ended_at, latency_ms, events,
    cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, llm_calls, tool_calls, error_type, error_message,
    models::text[], providers::text[], tags::jsonb, now()
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
    $7::timestamptz[], $8::int8[], $9::int8[], $10::float8[], $11::int8[], $12::int8[],
    $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::text[], $19::text[],
    $20::text[], $21::text[], $22::text[])
    AS t(org_id, run_id, agent_id, workflow_id, status, started_at, ended_at, latency_ms, events,
         cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
         reasoning_tokens, llm_calls, tool_calls, error_type, error_message,
         models, providers, tags)
ON CONFLICT (org_id, run_id) DO UPDATE SET
    -- The batch's lists and tags arrive folded and capped (RunDelta) and are
    -- merged here by the same rules (agentops_runtime::storage::RUN_LIST_CAP).
    models = CASE WHEN EXCLUDED.models = '{}' THEN r.models ELSE
        ARRAY(SELECT DISTINCT m COLLATE \"C\" FROM unnest(r.models || EXCLUDED.models) m
              ORDER BY 1 LIMIT $23) END,
    providers = CASE WHEN EXCLUDED.providers = '{}' THEN r.providers ELSE
        ARRAY(SELECT DISTINCT p COLLATE \"C\" FROM unnest(r.providers || EXCLUDED.providers) p
              ORDER BY 1 LIMIT $23) END,
    tags = CASE WHEN EXCLUDED.tags = '{}' THEN r.tags ELSE COALESCE(
        (SELECT jsonb_object_agg(k, v) FROM (
             SELECT k, min(v COLLATE \"C\") AS v FROM (
                 SELECT * FROM jsonb_each_text(r.tags)
                 UNION ALL SELECT * FROM jsonb_each_text(EXCLUDED.tags)) x(k, v)
             GROUP BY k ORDER BY k COLLATE \"C\" LIMIT $24) y), '{}') END,
    workflow_id = COALESCE(r.workflow_id, EXCLUDED.workflow_id),
    started_at = LEAST(r.started_at, EXCLUDED.started_at),
    status = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                   AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                  THEN EXCLUDED.status ELSE r.status END,
    latency_ms = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                       AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                      THEN COALESCE(EXCLUDED.latency_ms, r.latency_ms) ELSE r.latency_ms END,
    error_type = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                       AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                      THEN EXCLUDED.error_type ELSE r.error_type END,
    error_message = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                          AND (r.ended_at IS NULL OR EXCLUDED.ended_at >= r.ended_at)
                         THEN EXCLUDED.error_message ELSE r.error_message END,
    ended_at = GREATEST(r.ended_at, EXCLUDED.ended_at),
    events = r.events + EXCLUDED.events,
    cost_usd = r.cost_usd + EXCLUDED.cost_usd,
    input_tokens = r.input_tokens + EXCLUDED.input_tokens,
    output_tokens = r.output_tokens + EXCLUDED.output_tokens,
    cache_read_tokens = r.cache_read_tokens + EXCLUDED.cache_read_tokens,
    cache_write_tokens = r.cache_write_tokens + EXCLUDED.cache_write_tokens,
    reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens,
    llm_calls = r.llm_calls + EXCLUDED.llm_calls,
    tool_calls = r.tool_calls + EXCLUDED.tool_calls,
    updated_at = now()";

/// Day totals follow the latest day (UTC, event time) an agent was seen:
/// a newer day replaces them, the same day adds, an older day is ignored.
const UPSERT_AGENTS: &str = "
INSERT INTO agents AS g (org_id, agent_id, first_seen, last_seen, last_heartbeat,
    heartbeat_status, day, events_day, runs_day, failures_day, tokens_day, cost_day, updated_at)
SELECT org_id, agent_id, first_seen, last_seen, last_heartbeat, heartbeat_status, day,
    events_day, runs_day, failures_day, tokens_day, cost_day, now()
FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[],
    $6::text[], $7::date[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::float8[])
    AS t(org_id, agent_id, first_seen, last_seen, last_heartbeat, heartbeat_status, day,
         events_day, runs_day, failures_day, tokens_day, cost_day)
ON CONFLICT (org_id, agent_id) DO UPDATE SET
    first_seen = LEAST(g.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen),
    heartbeat_status = CASE WHEN EXCLUDED.last_heartbeat IS NOT NULL
                             AND (g.last_heartbeat IS NULL OR EXCLUDED.last_heartbeat >= g.last_heartbeat)
                            THEN EXCLUDED.heartbeat_status ELSE g.heartbeat_status END,
    last_heartbeat = GREATEST(g.last_heartbeat, EXCLUDED.last_heartbeat),
    events_day = CASE WHEN EXCLUDED.day > g.day THEN EXCLUDED.events_day
                      WHEN EXCLUDED.day = g.day THEN g.events_day + EXCLUDED.events_day
                      ELSE g.events_day END,
    runs_day = CASE WHEN EXCLUDED.day > g.day THEN EXCLUDED.runs_day
                    WHEN EXCLUDED.day = g.day THEN g.runs_day + EXCLUDED.runs_day
                    ELSE g.runs_day END,
    failures_day = CASE WHEN EXCLUDED.day > g.day THEN EXCLUDED.failures_day
                        WHEN EXCLUDED.day = g.day THEN g.failures_day + EXCLUDED.failures_day
                        ELSE g.failures_day END,
    tokens_day = CASE WHEN EXCLUDED.day > g.day THEN EXCLUDED.tokens_day
                      WHEN EXCLUDED.day = g.day THEN g.tokens_day + EXCLUDED.tokens_day
                      ELSE g.tokens_day END,
    cost_day = CASE WHEN EXCLUDED.day > g.day THEN EXCLUDED.cost_day
                    WHEN EXCLUDED.day = g.day THEN g.cost_day + EXCLUDED.cost_day
                    ELSE g.cost_day END,
    day = GREATEST(g.day, EXCLUDED.day),
    updated_at = now()";

#[derive(Default)]
struct RunDelta {
    agent_id: String,
    workflow_id: Option<String>,
    status: String,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    latency_ms: Option<i64>,
    events: i64,
    cost_usd: f64,
    tokens: [i64; 5],
    llm_calls: i64,
    tool_calls: i64,
    error_type: Option<String>,
    error_message: Option<String>,
    models: BTreeSet<String>,
    providers: BTreeSet<String>,
    tags: BTreeMap<String, String>,
}

/// Keep the `cap` smallest entries (the same rule as the upsert's merge).
fn cap_set(set: &mut BTreeSet<String>, cap: usize) {
    while set.len() > cap {
        set.pop_last();
    }
}

/// Fold an event's attributes into a run's tags: keys and values within
/// their lengths, the smallest value of a key, the smallest keys kept
/// (byte order, as the upsert's `COLLATE "C"`).
fn merge_tags(tags: &mut BTreeMap<String, String>, attributes: &HashMap<String, String>) {
    for (k, v) in attributes {
        if k.is_empty() || k.len() > RUN_TAG_KEY_MAX || v.len() > RUN_TAG_VALUE_MAX {
            continue;
        }
        match tags.get_mut(k) {
            Some(old) if v < old => v.clone_into(old),
            Some(_) => {}
            None => {
                tags.insert(k.clone(), v.clone());
            }
        }
    }
    while tags.len() > RUN_TAGS_CAP {
        tags.pop_last();
    }
}

fn tokens(e: &AgentEvent) -> [i64; 5] {
    [
        e.input_tokens.unwrap_or(0),
        e.output_tokens.unwrap_or(0),
        e.cache_read_tokens.unwrap_or(0),
        e.cache_write_tokens.unwrap_or(0),
        e.reasoning_tokens.unwrap_or(0),
    ]
}

/// A map as JSON text, bound as `text` and cast in SQL (UNNEST cannot take
/// an array of arrays).
fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// A list as a `text[]` literal (`{"a","b"}`), bound as `text` and cast in
/// SQL: every element quoted, `\` and `"` escaped. PostgreSQL's array input
/// reads it about seven times faster than expanding a JSON array per row.
fn array_literal<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Fold the new events into their runs; returns how many runs were new and
/// copied straight in. `copy_new`: only where one transaction at a time
/// writes `runs` (plain mode's deriver; in TimescaleDB mode the workers
/// write concurrently and every run is upserted). A run thought new that
/// is there all the same fails the copy on the key, and every run is then
/// upserted.
pub(crate) async fn upsert_runs(
    tx: &mut PgConnection,
    new: &[&AgentEvent],
    copy_new: bool,
) -> Result<usize, sqlx::Error> {
    // Sorted keys: concurrent workers lock rows in the same order (no deadlocks).
    let mut runs: BTreeMap<(String, String), RunDelta> = BTreeMap::new();
    for e in new {
        let Some(run_id) = &e.run_id else { continue };
        let d = runs
            .entry((e.org_id.clone(), run_id.clone()))
            .or_insert_with(|| RunDelta {
                status: "running".into(),
                ..Default::default()
            });
        d.agent_id.clone_from(&e.agent_id);
        if d.workflow_id.is_none() {
            d.workflow_id.clone_from(&e.workflow_id);
        }
        let t = ts(e.timestamp);
        d.events += 1;
        d.cost_usd += e.cost_usd.unwrap_or(0.0);
        // Saturating: validation bounds every count, so this never binds in
        // practice, and a sum past int8 is refused by the database (the
        // record is then dead-lettered) rather than wrapped here.
        for (sum, n) in d.tokens.iter_mut().zip(tokens(e)) {
            *sum = sum.saturating_add(n);
        }
        match e.kind() {
            Some(EventType::RunStarted) => {
                d.started_at = Some(d.started_at.map_or(t, |s| s.min(t)));
            }
            // The latest terminal event decides the run's outcome.
            Some(k @ (EventType::RunCompleted | EventType::RunFailed))
                if d.ended_at.is_none_or(|end| t >= end) =>
            {
                d.ended_at = Some(t);
                d.status = if k == EventType::RunFailed {
                    "failed"
                } else {
                    "completed"
                }
                .into();
                d.latency_ms = e.latency_ms;
                d.error_type.clone_from(&e.error_type);
                d.error_message.clone_from(&e.error_message);
            }
            Some(EventType::LlmCall) => d.llm_calls += 1,
            Some(EventType::ToolCall) => d.tool_calls += 1,
            _ => {}
        }
        if let Some(m) = e.model.as_ref().filter(|m| !m.is_empty()) {
            d.models.insert(m.clone());
            cap_set(&mut d.models, RUN_LIST_CAP);
        }
        if let Some(p) = e.provider.as_ref().filter(|p| !p.is_empty()) {
            d.providers.insert(p.clone());
            cap_set(&mut d.providers, RUN_LIST_CAP);
        }
        merge_tags(&mut d.tags, &e.attributes);
    }
    if runs.is_empty() {
        return Ok(0);
    }
    let all: Vec<(&(String, String), &RunDelta)> = runs.iter().collect();
    if !copy_new {
        upsert_run_rows(tx, &all).await?;
        return Ok(0);
    }
    // Runs not stored yet are copied straight in; the others upserted.
    let (orgs, ids): (Vec<&str>, Vec<&str>) =
        runs.keys().map(|(o, r)| (o.as_str(), r.as_str())).unzip();
    let stored: Vec<(String, String)> = sqlx::query_as(
        "SELECT u.o, u.r FROM unnest($1::text[], $2::text[]) AS u(o, r)
         WHERE EXISTS (SELECT 1 FROM runs WHERE runs.org_id = u.o AND runs.run_id = u.r)",
    )
    .bind(&orgs)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let stored: std::collections::HashSet<(String, String)> = stored.into_iter().collect();
    let (old, fresh): (Vec<_>, Vec<_>) = all.into_iter().partition(|(k, _)| stored.contains(*k));
    let mut copied = 0;
    if !fresh.is_empty() {
        savepoint(tx, "new_runs").await?;
        let written = copy_runs(tx, &fresh).await;
        match unless_stored(tx, "new_runs", written).await? {
            Some(()) => copied = fresh.len(),
            None => tracing::warn!("a run thought new was there: upserting every run"),
        }
    }
    let rest: Vec<_> = if copied == 0 {
        old.into_iter().chain(fresh).collect()
    } else {
        old
    };
    if !rest.is_empty() {
        upsert_run_rows(tx, &rest).await?;
    }
    Ok(copied)
}

/// `runs` in one `COPY`: rows not stored yet (the same values the upsert
/// inserts).
async fn copy_runs(
    tx: &mut PgConnection,
    rows: &[(&(String, String), &RunDelta)],
) -> Result<(), sqlx::Error> {
    let mut c = CopyBinary::with_capacity(rows.len() * 300);
    for ((org, run), d) in rows {
        c.row(22);
        c.text(Some(org));
        c.text(Some(run));
        c.text(Some(&d.agent_id));
        c.text(d.workflow_id.as_deref());
        c.text(Some(&d.status));
        c.timestamptz(d.started_at.map(|t| t.timestamp_micros()));
        c.timestamptz(d.ended_at.map(|t| t.timestamp_micros()));
        c.int8(d.latency_ms);
        c.int8(Some(d.events));
        c.float8(Some(d.cost_usd));
        for t in d.tokens {
            c.int8(Some(t));
        }
        c.int8(Some(d.llm_calls));
        c.int8(Some(d.tool_calls));
        c.text(d.error_type.as_deref());
        c.text(d.error_message.as_deref());
        c.text_array(d.models.iter().map(String::as_str));
        c.text_array(d.providers.iter().map(String::as_str));
        c.jsonb(json_text(&d.tags).as_bytes());
    }
    copy_in(
        tx,
        "COPY runs (org_id, run_id, agent_id, workflow_id, status, started_at, ended_at,
             latency_ms, events, cost_usd, input_tokens, output_tokens, cache_read_tokens,
             cache_write_tokens, reasoning_tokens, llm_calls, tool_calls, error_type,
             error_message, models, providers, tags) FROM STDIN (FORMAT binary)",
        &c.finish(),
    )
    .await
}

/// [`UPSERT_RUNS`] of these rows.
async fn upsert_run_rows(
    tx: &mut PgConnection,
    runs: &[(&(String, String), &RunDelta)],
) -> Result<(), sqlx::Error> {
    macro_rules! col {
        ($f:expr) => {
            runs.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query(UPSERT_RUNS)
        .bind(col!(|((o, _), _)| o.clone()))
        .bind(col!(|((_, r), _)| r.clone()))
        .bind(col!(|(_, d)| d.agent_id.clone()))
        .bind(col!(|(_, d)| d.workflow_id.clone()))
        .bind(col!(|(_, d)| d.status.clone()))
        .bind(col!(|(_, d)| d.started_at))
        .bind(col!(|(_, d)| d.ended_at))
        .bind(col!(|(_, d)| d.latency_ms))
        .bind(col!(|(_, d)| d.events))
        .bind(col!(|(_, d)| d.cost_usd))
        .bind(col!(|(_, d)| d.tokens[0]))
        .bind(col!(|(_, d)| d.tokens[1]))
        .bind(col!(|(_, d)| d.tokens[2]))
        .bind(col!(|(_, d)| d.tokens[3]))
        .bind(col!(|(_, d)| d.tokens[4]))
        .bind(col!(|(_, d)| d.llm_calls))
        .bind(col!(|(_, d)| d.tool_calls))
        .bind(col!(|(_, d)| d.error_type.clone()))
        .bind(col!(|(_, d)| d.error_message.clone()))
        .bind(col!(|(_, d)| array_literal(&d.models)))
        .bind(col!(|(_, d)| array_literal(&d.providers)))
        .bind(col!(|(_, d)| json_text(&d.tags)))
        .bind(RUN_LIST_CAP as i64)
        .bind(RUN_TAGS_CAP as i64)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AgentDelta {
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    last_heartbeat: Option<DateTime<Utc>>,
    heartbeat_status: Option<String>,
    day: NaiveDate,
    events: i64,
    runs: i64,
    failures: i64,
    tokens: i64,
    cost: f64,
}

/// Fold a batch's new events into one delta per (org, agent).
pub(crate) fn agent_deltas(new: &[&AgentEvent]) -> BTreeMap<(String, String), AgentDelta> {
    let mut out: BTreeMap<(String, String), AgentDelta> = BTreeMap::new();
    for e in new {
        let t = ts(e.timestamp);
        let day = t.date_naive();
        let d = out
            .entry((e.org_id.clone(), e.agent_id.clone()))
            .or_insert_with(|| AgentDelta {
                first_seen: t,
                last_seen: t,
                last_heartbeat: None,
                heartbeat_status: None,
                day,
                events: 0,
                runs: 0,
                failures: 0,
                tokens: 0,
                cost: 0.0,
            });
        d.first_seen = d.first_seen.min(t);
        d.last_seen = d.last_seen.max(t);
        if e.kind() == Some(EventType::Heartbeat) && d.last_heartbeat.is_none_or(|h| t >= h) {
            d.last_heartbeat = Some(t);
            d.heartbeat_status.clone_from(&e.status);
        }
        if day > d.day {
            (d.day, d.events, d.runs, d.failures, d.tokens, d.cost) = (day, 0, 0, 0, 0, 0.0);
        }
        if day == d.day {
            d.events += 1;
            match e.kind() {
                Some(EventType::RunCompleted) => d.runs += 1,
                Some(EventType::RunFailed) => {
                    d.runs += 1;
                    d.failures += 1;
                }
                _ => {}
            }
            let t = tokens(e).iter().fold(0i64, |a, n| a.saturating_add(*n));
            d.tokens = d.tokens.saturating_add(t);
            d.cost += e.cost_usd.unwrap_or(0.0);
        }
    }
    out
}

pub(crate) async fn upsert_agents(
    tx: &mut PgConnection,
    new: &[&AgentEvent],
) -> Result<(), sqlx::Error> {
    let agents = agent_deltas(new);
    macro_rules! col {
        ($f:expr) => {
            agents.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query(UPSERT_AGENTS)
        .bind(col!(|((o, _), _)| o.clone()))
        .bind(col!(|((_, a), _)| a.clone()))
        .bind(col!(|(_, d)| d.first_seen))
        .bind(col!(|(_, d)| d.last_seen))
        .bind(col!(|(_, d)| d.last_heartbeat))
        .bind(col!(|(_, d)| d.heartbeat_status.clone()))
        .bind(col!(|(_, d)| d.day))
        .bind(col!(|(_, d)| d.events))
        .bind(col!(|(_, d)| d.runs))
        .bind(col!(|(_, d)| d.failures))
        .bind(col!(|(_, d)| d.tokens))
        .bind(col!(|(_, d)| d.cost))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_become_quoted_array_literals() {
        let items: Vec<String> = vec!["gpt-4o".into(), r#"a "b", {c}\d"#.into(), "NULL".into()];
        assert_eq!(
            array_literal(&items),
            r#"{"gpt-4o","a \"b\", {c}\\d","NULL"}"#
        );
        assert_eq!(array_literal(&Vec::<String>::new()), "{}");
    }

    fn ev(ty: &str, secs: i64, cost: f64) -> AgentEvent {
        AgentEvent {
            org_id: "o".into(),
            agent_id: "a".into(),
            event_type: ty.into(),
            timestamp: secs * 1_000_000,
            cost_usd: Some(cost),
            input_tokens: Some(10),
            ..Default::default()
        }
    }

    #[test]
    fn run_tags_fold_the_same_in_any_order_and_stay_capped() {
        let attrs = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let long_key = "k".repeat(RUN_TAG_KEY_MAX + 1);
        let long_value = "v".repeat(RUN_TAG_VALUE_MAX + 1);
        let mut batches = vec![
            attrs(&[("team", "pay"), ("env", "prod")]),
            attrs(&[
                ("team", "ops"),
                (long_key.as_str(), "x"),
                ("big", &long_value),
            ]),
        ];
        for i in 0..40 {
            batches.push(attrs(&[(&format!("z{i:02}"), "1")]));
        }
        let fold = |order: &[HashMap<String, String>]| {
            let mut tags = BTreeMap::new();
            for a in order {
                merge_tags(&mut tags, a);
            }
            tags
        };
        let forward = fold(&batches);
        batches.reverse();
        assert_eq!(fold(&batches), forward);
        assert_eq!(forward.len(), RUN_TAGS_CAP);
        // The smallest value of a key, the smallest keys; long ones left out.
        assert_eq!(forward["team"], "ops");
        assert_eq!(forward["env"], "prod");
        assert!(!forward.contains_key(&long_key) && !forward.contains_key("big"));
        assert!(forward.contains_key("z29") && !forward.contains_key("z30"));
        let mut set: BTreeSet<String> = (0..40).map(|i| format!("m{i:02}")).collect();
        cap_set(&mut set, RUN_LIST_CAP);
        assert_eq!(set.len(), RUN_LIST_CAP);
        assert_eq!(set.last().map(String::as_str), Some("m31"));
    }

    #[test]
    fn day_totals_follow_the_latest_day_in_any_batching() {
        let day = 86_400;
        let events = [
            ev("run_completed", 5 * day + 10, 1.0),
            ev("run_failed", 6 * day + 10, 2.0),
            ev("llm_call", 5 * day + 20, 4.0),
            ev("heartbeat", 6 * day + 30, 0.0),
            ev("run_completed", 6 * day + 40, 8.0),
        ];
        let refs: Vec<&AgentEvent> = events.iter().collect();
        let all = agent_deltas(&refs);
        let d = &all[&("o".into(), "a".into())];
        assert_eq!(d.day, ts(6 * day * 1_000_000).date_naive());
        assert_eq!((d.events, d.runs, d.failures), (3, 2, 1));
        assert_eq!(d.cost, 10.0);
        assert_eq!(d.tokens, 30);
        assert_eq!(d.first_seen, ts((5 * day + 10) * 1_000_000));
        assert_eq!(d.last_heartbeat, Some(ts((6 * day + 30) * 1_000_000)));
    }
}
