//! Cost corrections (see `agentops_schemas::correction`), applied in the
//! batch's transaction after its new events.
//!
//! A correction sets the corrected event's `cost_usd` and `cost_source`
//! (`'recomputed'`, or NULL when the new cost is null: no price) when they
//! differ, and moves every total that includes the
//! event by the difference: the run's cost, its project, machine,
//! workspace and session totals, the agent's day cost if the
//! event is in the agent's current day, and in plain mode the `cost_usd` and
//! `unpriced_calls` of the event's bucket at every aggregate level, and in
//! both modes those of the per-tag levels under each rolled-up attribute of
//! the event. In TimescaleDB mode the continuous aggregates follow from
//! `events` (real-time buckets at once, materialized ones on their next
//! refresh).
//!
//! Idempotent: a correction whose cost and source the event already has
//! changes nothing, so a replayed batch or a rebuild that meets it again is harmless.
//! Corrections carry absolute costs and follow their event in its partition,
//! so replaying the log ends with the same numbers. Client-supplied costs are
//! never corrected; a correction of an event not (or no longer) stored is a
//! no-op. Corrections are never counted as events.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use agentops_runtime::storage::{Level, Mode, LEVELS, TAG_LEVELS};
use agentops_schemas::correction::{corrects, RECOMPUTED};
use agentops_schemas::AgentEvent;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::rows::ts;

/// One event whose cost changes.
struct Change {
    event_id: uuid::Uuid,
    ts: DateTime<Utc>,
    org_id: String,
    agent_id: String,
    workflow_id: Option<String>,
    run_id: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    /// project, machine, workspace, session.
    place: [Option<String>; 4],
    new_cost: Option<f64>,
    new_source: Option<&'static str>,
    d_cost: f64,
    d_unpriced: i64,
}

/// The aggregates' `unpriced_calls` rule for one event: no cost although
/// it has tokens (the same rule as the processors' "unknown model").
fn unpriced(cost: Option<f64>, has_tokens: bool) -> i64 {
    i64::from(cost.is_none() && has_tokens)
}

/// A wanted correction: (event_id, ts, org, new cost).
pub(crate) type Wanted = (uuid::Uuid, DateTime<Utc>, String, Option<f64>);

/// The last correction of each event in the batch, in batch order.
pub(crate) fn latest(corrections: &[&AgentEvent]) -> Vec<Wanted> {
    let all = corrections
        .iter()
        .filter_map(|c| {
            let Some(id) = corrects(c) else {
                tracing::warn!(event_id = %c.event_id, "cost correction without a valid `corrects` attribute, ignored");
                return None;
            };
            Some((id, ts(c.timestamp), c.org_id.clone(), c.cost_usd))
        })
        .collect();
    last_of(all)
}

/// Apply the batch's corrections; returns how many events changed cost.
pub(crate) async fn apply(
    tx: &mut PgConnection,
    mode: Mode,
    corrections: &[&AgentEvent],
    tag_keys: &[String],
) -> Result<usize, sqlx::Error> {
    apply_wanted(tx, mode, latest(corrections), tag_keys).await
}

/// The last of several wanted corrections of each event (in their order).
pub(crate) fn last_of(all: Vec<Wanted>) -> Vec<Wanted> {
    let mut last: BTreeMap<(uuid::Uuid, String), usize> = BTreeMap::new();
    let mut out: Vec<Wanted> = Vec::new();
    for w in all {
        match last.get(&(w.0, w.2.clone())) {
            Some(&i) => out[i] = w,
            None => {
                last.insert((w.0, w.2.clone()), out.len());
                out.push(w);
            }
        }
    }
    out
}

/// Apply the last correction of each event (see [`latest`]); returns how
/// many events changed cost.
pub(crate) async fn apply_wanted(
    tx: &mut PgConnection,
    mode: Mode,
    wanted: Vec<Wanted>,
    tag_keys: &[String],
) -> Result<usize, sqlx::Error> {
    if wanted.is_empty() {
        return Ok(0);
    }
    /// A corrected event as stored.
    #[derive(sqlx::FromRow)]
    struct Stored {
        event_id: uuid::Uuid,
        ts: DateTime<Utc>,
        org_id: String,
        agent_id: String,
        workflow_id: Option<String>,
        run_id: Option<String>,
        provider: Option<String>,
        model: Option<String>,
        cost_usd: Option<f64>,
        cost_source: Option<String>,
        has_tokens: bool,
        project_id: Option<String>,
        machine_id: Option<String>,
        workspace_id: Option<String>,
        session_id: Option<String>,
    }
    let stored: Vec<Stored> = sqlx::query_as(
        "SELECT e.event_id, e.ts, e.org_id, e.agent_id, e.workflow_id, e.run_id, e.provider,
                e.model, e.cost_usd, e.cost_source, e.project_id, e.machine_id,
                e.workspace_id, e.session_id,
                COALESCE(e.input_tokens, 0) + COALESCE(e.output_tokens, 0)
                + COALESCE(e.cache_read_tokens, 0) + COALESCE(e.cache_write_tokens, 0)
                + COALESCE(e.reasoning_tokens, 0) > 0 AS has_tokens
         FROM events e
         JOIN UNNEST($1::uuid[], $2::timestamptz[], $3::text[]) AS c(event_id, ts, org_id)
           ON e.event_id = c.event_id AND e.ts = c.ts AND e.org_id = c.org_id
         ORDER BY e.event_id, e.org_id
         FOR UPDATE OF e",
    )
    .bind(wanted.iter().map(|w| w.0).collect::<Vec<_>>())
    .bind(wanted.iter().map(|w| w.1).collect::<Vec<_>>())
    .bind(wanted.iter().map(|w| w.2.clone()).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?;
    let by_id: BTreeMap<(uuid::Uuid, &str), &Wanted> =
        wanted.iter().map(|w| ((w.0, w.2.as_str()), w)).collect();
    let mut changes = Vec::new();
    for s in stored {
        let Some(&&(_, _, _, new_cost)) = by_id.get(&(s.event_id, s.org_id.as_str())) else {
            continue;
        };
        // The state a correction leaves depends on its cost alone, so any
        // batching of the log ends the same: priced → 'recomputed', no price → NULL.
        let new_source = new_cost.map(|_| RECOMPUTED);
        let (cost, source) = (s.cost_usd, s.cost_source.as_deref());
        if source == Some("client") || (cost == new_cost && source == new_source) {
            continue;
        }
        changes.push(Change {
            event_id: s.event_id,
            ts: s.ts,
            org_id: s.org_id,
            agent_id: s.agent_id,
            workflow_id: s.workflow_id,
            run_id: s.run_id,
            provider: s.provider,
            model: s.model,
            place: [s.project_id, s.machine_id, s.workspace_id, s.session_id],
            new_cost,
            new_source,
            d_cost: new_cost.unwrap_or(0.0) - cost.unwrap_or(0.0),
            d_unpriced: unpriced(new_cost, s.has_tokens) - unpriced(cost, s.has_tokens),
        });
    }
    if changes.is_empty() {
        return Ok(0);
    }
    macro_rules! col {
        ($f:expr) => {
            changes.iter().map($f).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "UPDATE events e SET cost_usd = c.cost, cost_source = c.source
         FROM UNNEST($1::uuid[], $2::timestamptz[], $5::text[], $3::float8[], $4::text[])
             AS c(event_id, ts, org_id, cost, source)
         WHERE e.event_id = c.event_id AND e.ts = c.ts AND e.org_id = c.org_id",
    )
    .bind(col!(|c| c.event_id))
    .bind(col!(|c| c.ts))
    .bind(col!(|c| c.new_cost))
    .bind(col!(|c| c.new_source))
    .bind(col!(|c| c.org_id.clone()))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE runs r SET cost_usd = r.cost_usd + d.delta, updated_at = now()
         FROM (SELECT org_id, run_id, sum(delta) AS delta
               FROM UNNEST($1::text[], $2::text[], $3::float8[]) AS t(org_id, run_id, delta)
               WHERE run_id IS NOT NULL GROUP BY 1, 2) d
         WHERE r.org_id = d.org_id AND r.run_id = d.run_id",
    )
    .bind(col!(|c| c.org_id.clone()))
    .bind(col!(|c| c.run_id.clone()))
    .bind(col!(|c| c.d_cost))
    .execute(&mut *tx)
    .await?;
    let places: Vec<(crate::hierarchy::Place, f64)> = changes
        .iter()
        .filter(|c| c.place.iter().any(Option::is_some))
        .map(|c| ((c.org_id.clone(), c.place.clone()), c.d_cost))
        .collect();
    crate::hierarchy::apply_cost_deltas(tx, &places).await?;
    // Only the agent's current day is kept; an older day's cost is gone.
    sqlx::query(
        "UPDATE agents g SET cost_day = g.cost_day + d.delta, updated_at = now()
         FROM (SELECT org_id, agent_id, day, sum(delta) AS delta
               FROM UNNEST($1::text[], $2::text[], $3::date[], $4::float8[])
                   AS t(org_id, agent_id, day, delta)
               GROUP BY 1, 2, 3) d
         WHERE g.org_id = d.org_id AND g.agent_id = d.agent_id AND g.day = d.day",
    )
    .bind(col!(|c| c.org_id.clone()))
    .bind(col!(|c| c.agent_id.clone()))
    .bind(col!(|c| c.ts.date_naive()))
    .bind(col!(|c| c.d_cost))
    .execute(&mut *tx)
    .await?;
    if mode == Mode::Postgres {
        for l in LEVELS {
            sqlx::query(&aggregate_sql(&l))
                .bind(col!(|c| c.org_id.clone()))
                .bind(col!(|c| c.ts))
                .bind(col!(|c| c.agent_id.clone()))
                .bind(col!(|c| c.workflow_id.clone()))
                .bind(col!(|c| c.provider.clone()))
                .bind(col!(|c| c.model.clone()))
                .bind(col!(|c| c.d_cost))
                .bind(col!(|c| c.d_unpriced))
                .execute(&mut *tx)
                .await?;
        }
    }
    if !tag_keys.is_empty() {
        // Both modes: the per-tag levels are the workers' own.
        for l in TAG_LEVELS {
            sqlx::query(&tag_sql(&l))
                .bind(col!(|c| c.event_id))
                .bind(col!(|c| c.ts))
                .bind(col!(|c| c.org_id.clone()))
                .bind(col!(|c| c.d_cost))
                .bind(col!(|c| c.d_unpriced))
                .bind(tag_keys)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(changes.len())
}

/// Move one per-tag level's buckets by the summed differences, under each
/// rolled-up attribute (`$6`) of the corrected events.
fn tag_sql(l: &Level) -> String {
    format!(
        "UPDATE {name} a SET cost_usd = a.cost_usd + d.cost, unpriced_calls = a.unpriced_calls + d.unpriced
         FROM (SELECT e.org_id, date_bin(INTERVAL '{width}', e.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b,
                      t.tag_key, t.tag_value, sum(c.cost) AS cost, sum(c.unpriced)::int8 AS unpriced
               FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::float8[], $5::int8[])
                   AS c(event_id, ts, org_id, cost, unpriced)
               JOIN events e ON e.event_id = c.event_id AND e.ts = c.ts AND e.org_id = c.org_id
               CROSS JOIN LATERAL jsonb_each_text(e.attributes) AS t(tag_key, tag_value)
               WHERE t.tag_key = ANY($6) AND octet_length(t.tag_value) <= {max}
               GROUP BY 1, 2, 3, 4) d
         WHERE a.org_id = d.org_id AND a.bucket = d.b AND a.tag_key = d.tag_key
           AND a.tag_value = d.tag_value",
        name = l.name,
        width = l.width,
        max = agentops_runtime::storage::RUN_TAG_VALUE_MAX,
    )
}

/// Plain mode: move one level's buckets by the summed differences.
fn aggregate_sql(l: &Level) -> String {
    let (name, width) = (l.name, l.width);
    let dims = l.dims_list("");
    let matches: String = l
        .dims
        .iter()
        .map(|d| format!("\n           AND a.{d} IS NOT DISTINCT FROM d.{d}"))
        .collect();
    let group: String = (0..l.dims.len()).map(|i| format!(", {}", i + 3)).collect();
    let mut sql = String::new();
    let _ = write!(
        sql,
        "UPDATE {name} a SET cost_usd = a.cost_usd + d.cost, unpriced_calls = a.unpriced_calls + d.unpriced
         FROM (SELECT org_id, date_bin(INTERVAL '{width}', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b{dims},
                      sum(cost) AS cost, sum(unpriced)::int8 AS unpriced
               FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                           $6::text[], $7::float8[], $8::int8[])
                   AS t(org_id, ts, agent_id, workflow_id, provider, model, cost, unpriced)
               GROUP BY 1, 2{group}) d
         WHERE a.org_id = d.org_id AND a.bucket = d.b{matches}"
    );
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentops_schemas::correction::{CORRECTS, COST_CORRECTION};

    fn corr(of: uuid::Uuid, cost: Option<f64>) -> AgentEvent {
        let mut e = AgentEvent {
            event_type: COST_CORRECTION.into(),
            org_id: "o".into(),
            timestamp: 1_000_000,
            cost_usd: cost,
            ..Default::default()
        };
        e.attributes.insert(CORRECTS.into(), of.to_string());
        e
    }

    #[test]
    fn the_last_correction_of_an_event_wins() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let list = [
            corr(a, Some(1.0)),
            corr(b, None),
            corr(a, Some(2.0)),
            AgentEvent {
                event_type: COST_CORRECTION.into(),
                ..Default::default()
            },
        ];
        let refs: Vec<&AgentEvent> = list.iter().collect();
        let got: Vec<(uuid::Uuid, Option<f64>)> =
            latest(&refs).into_iter().map(|w| (w.0, w.3)).collect();
        assert_eq!(got, vec![(a, Some(2.0)), (b, None)]);
    }

    #[test]
    fn unpriced_follows_the_aggregate_rule() {
        assert_eq!(unpriced(None, true), 1);
        assert_eq!(unpriced(None, false), 0);
        assert_eq!(unpriced(Some(0.0), true), 0);
    }

    #[test]
    fn every_level_statement_matches_the_aggregate_key() {
        for l in LEVELS {
            let sql = aggregate_sql(&l);
            assert!(sql.starts_with(&format!("UPDATE {} a", l.name)));
            assert!(sql.contains(&format!("INTERVAL '{}'", l.width)));
            for d in agentops_runtime::storage::DIMENSIONS {
                assert_eq!(
                    sql.contains(&format!("a.{d} IS NOT DISTINCT FROM d.{d}")),
                    l.dims.contains(d),
                    "{sql}"
                );
            }
            let group: String = std::iter::once("GROUP BY 1, 2".to_owned())
                .chain((0..l.dims.len()).map(|i| format!(", {}", i + 3)))
                .collect();
            assert!(sql.contains(&format!("{group})")), "{sql}");
        }
    }
}
