//! The projection store's side of a budget: spend and offsets read in one
//! snapshot, events already projected, and the agents a budget pauses.

use std::collections::{HashMap, HashSet};

use agentops_governance::controls::{self, SetBy};
use agentops_governance::spend::{spend_in_scope, spend_source};
use agentops_governance::{period_end, period_key, period_start};
use agentops_runtime::storage::deferred;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::governance::{Budget, Snapshot};
use crate::Config;

/// Spend in scope for the period, read in one snapshot with the projection offsets.
pub(super) struct Reading {
    /// Per partition, the next offset of what the projections' levels and
    /// other derived tables hold (plain mode: what the deriver has folded).
    pub(super) projected_offsets: HashMap<i32, i64>,
    /// Per partition, the next offset of what `events` holds (the writer's;
    /// ahead of the derived one in plain mode).
    pub(super) written_offsets: HashMap<i32, i64>,
    pub(super) projected_spend: Vec<f64>,
}

pub(super) async fn read_projection(
    pool: &PgPool,
    config: &Config,
    budgets: &[Budget],
    now: DateTime<Utc>,
) -> Result<Reading, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let derived_group = deferred::derived_group(&config.projection_group);
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT consumer_group, partition, next_offset FROM consumer_offsets
         WHERE consumer_group = ANY($1) AND topic = $2",
    )
    .bind([config.projection_group.clone(), derived_group.clone()])
    .bind(&config.kafka.topic_enriched)
    .fetch_all(&mut *tx)
    .await?;
    // Plain mode derives a pass after it writes (see the projections' deriver).
    let deferred = deferred::enabled(&mut tx)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let of = |group: &str| -> HashMap<i32, i64> {
        rows.iter()
            .filter(|r| r.0 == group)
            .map(|r| (r.1, r.2))
            .collect()
    };
    let written_offsets = of(&config.projection_group);
    let projected_offsets = if deferred {
        of(&derived_group)
    } else {
        written_offsets.clone()
    };
    let mut spend = Vec::with_capacity(budgets.len());
    for b in budgets {
        // The period only: an event stamped in the next one (up to 5 min
        // ahead is accepted) counts there, as the budget status says.
        let (start, end) = (period_start(b.period, now), period_end(b.period, now));
        spend.push(spend_in_scope(&mut tx, &b.org_id, &b.scope, start, Some(end)).await?);
    }
    tx.commit().await?;
    Ok(Reading {
        projected_offsets,
        written_offsets,
        projected_spend: spend,
    })
}

/// Of `ids` (event ids written by this instance), those the projections
/// already hold: a replayed record whose first copy was projected. With
/// `derived`, held by the levels: in plain mode an event the deriver has
/// not folded yet is in `events` only.
pub(super) async fn already_projected(
    pool: &PgPool,
    org: &str,
    ids: &[String],
    since: DateTime<Utc>,
    derived: bool,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let deferred = derived
        && deferred::enabled(&mut conn)
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let sql = if deferred {
        "SELECT e.event_id::text FROM events e
         WHERE e.event_id = ANY($1::uuid[]) AND e.ts >= $2 AND e.org_id = $3
           AND NOT EXISTS (SELECT 1 FROM pending_events p WHERE p.txid = e.txid)"
    } else {
        "SELECT event_id::text FROM events
         WHERE event_id = ANY($1::uuid[]) AND ts >= $2 AND org_id = $3"
    };
    let rows: Vec<String> = sqlx::query_scalar(sql)
        .bind(ids)
        .bind(since)
        .bind(org)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Returns the agents considered.
/// Pause the agents in scope that spent in the period: `local` ones, and
/// with `from_store` also those the projection store knows. An agent an
/// admin resumed from this budget's pause in this period stays resumed.
pub(super) async fn pause_agents(
    pool: &PgPool,
    b: &Budget,
    start: DateTime<Utc>,
    period: &str,
    local: &[String],
    from_store: bool,
) -> Result<Vec<String>, sqlx::Error> {
    let reason = format!(
        "budget '{}' reached {}%",
        b.name,
        b.pause_at_pct.unwrap_or(100.0)
    );
    let set_by = SetBy::Budget {
        budget_id: b.id.clone(),
        period_key: period.to_owned(),
    };
    if b.scope.kind().is_hierarchy() {
        // The scope itself (every session in it, whatever the agent).
        controls::pause_scope_for_budget(pool, &b.org_id, &b.scope, &reason, &set_by).await?;
        return Ok(vec![b.scope.scope_key()]);
    }
    let mut agents: Vec<String> = local.to_vec();
    if from_store {
        let src = spend_source(&b.scope);
        let sql = format!(
            "SELECT DISTINCT agent_id {} AND cost_usd > 0",
            src.from_where
        );
        let mut q = sqlx::query_scalar(&sql).bind(&b.org_id).bind(start);
        for v in &src.binds {
            q = q.bind(v);
        }
        agents.extend(q.fetch_all(pool).await?);
    }
    agents.sort();
    agents.dedup();
    controls::pause_for_budget(pool, &b.org_id, &agents, &reason, &set_by).await?;
    Ok(agents)
}

/// The `set_by` of the pauses that stand now: one per budget with a pause
/// threshold, for its current period.
pub(super) fn standing_pauses(snap: &Snapshot, now: DateTime<Utc>) -> Vec<String> {
    snap.budgets
        .values()
        .flatten()
        .filter(|b| b.pause_at_pct.is_some())
        .map(|b| {
            SetBy::Budget {
                budget_id: b.id.clone(),
                period_key: period_key(b.period, now),
            }
            .to_string()
        })
        .collect()
}

/// Lift the budget pauses that no longer stand: set in an earlier period, or
/// by a budget that was deleted or lost its pause threshold. Every instance
/// does it (idempotent).
pub(super) async fn lift_pauses(pool: &PgPool, standing: &[String]) -> Result<u64, sqlx::Error> {
    controls::lift_budget_pauses(pool, standing).await
}
