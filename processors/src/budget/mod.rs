//! Budgets: spend per scope (org, agent, workflow, model, tag) and period
//! (UTC day, week, month), alerting at each threshold and optionally pausing
//! the agents in scope (for a project, machine, workspace or session scope:
//! the scope itself, in `scope_controls`).
//!
//! Spend = what the projection store holds (each event counted once) + what
//! this instance wrote to the enriched topic that the projections have not
//! stored yet. The two are split exactly by offset: the projections store
//! their next offset per partition in the same transaction as the rows, and
//! the enrich stage knows the offset of every record it wrote. Both are read
//! in one snapshot. Every instance therefore sees at least the projected
//! spend plus its own, and a crossing is found by whichever instance sees it
//! first; the alert id is derived from (budget, period, threshold), so peers,
//! restarts and replays produce the same id and the notifier delivers it once.
//!
//! Parts: [`local`] (what this instance wrote, fed by the enrich stage
//! through a bounded queue), [`store`] (the projection store's side: spend,
//! offsets, pauses), [`alerts`] (the alert of a crossing); here the task
//! that compares them.

mod alerts;
mod local;
mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_governance::alert::budget_alert_id;
use agentops_governance::spend::spend_source;
use agentops_governance::{period_key, period_start};
use agentops_runtime::shutdown::CancellationToken;
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::alert;
use crate::governance::{Budget, Governance};
use crate::{telemetry, Config};

pub(crate) use alerts::budget_alert;
use local::{draining, Intake, Local};
pub(crate) use local::{queue, Spent, SpentRx, SpentTx};
use store::{already_projected, lift_pauses, pause_agents, read_projection, standing_pauses};

pub(crate) async fn run(
    config: Arc<Config>,
    pool: PgPool,
    producer: FutureProducer,
    governance: Governance,
    mut spent: SpentRx,
    shutdown: CancellationToken,
) -> agentops_runtime::Result<()> {
    let watch_for = Duration::from_secs(config.budget_watch_secs);
    let mut intake = Intake {
        watched: HashMap::new(),
        local: Local::new(config.budget_pending_max),
    };
    // Budgets (with their limit and thresholds) this instance has checked.
    let mut known: HashSet<String> = HashSet::new();
    // Alerts emitted and pauses done by this instance (peers dedupe through ids).
    let mut fired: HashSet<String> = HashSet::new();
    // Agents this instance paused (or found exempt) per (budget, period).
    let mut paused_known: HashMap<(String, String), HashSet<String>> = HashMap::new();
    let sweep_every = Duration::from_secs(config.budget_sweep_secs.max(1));
    let mut last_sweep: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(config.budget_check_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let snap = governance.current();
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
            Some(batch) = spent.0.recv() => {
                intake.take(batch, &snap);
                continue;
            }
        }
        let snap = governance.current();
        // A budget new to this instance (created, changed, or loaded at
        // start) is checked at once: spend that arrived before it was loaded
        // was not kept locally, but is (or soon will be) projected.
        for b in snap.budgets.values().flatten() {
            if known.insert(format!("{}:{}:{:?}", b.id, b.limit_usd, b.thresholds)) {
                intake.watched.insert(b.org_id.clone(), Instant::now());
            }
        }
        if known.len() > 100_000 {
            known.clear();
        }
        while let Ok(batch) = spent.0.try_recv() {
            intake.take(batch, &snap);
        }
        telemetry::budget_queue_depth(0);
        telemetry::budget_pending(intake.local.len);
        intake.watched.retain(|_, at| at.elapsed() < watch_for);
        let now = Utc::now();
        let orgs: Vec<String> = intake.watched.keys().cloned().collect();
        for org in &orgs {
            let Some(budgets) = snap.budgets.get(org) else {
                continue;
            };
            let read = read_projection(&pool, &config, budgets, now);
            let reading = match draining(read, &mut spent, &mut intake, &snap).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, org = %org, "budget read failed; retrying next tick");
                    continue;
                }
            };
            intake.local.prune(&reading.projected_offsets);
            for (b, projected) in budgets.iter().zip(&reading.projected_spend) {
                if let Err(e) = check(
                    &config,
                    &pool,
                    &producer,
                    b,
                    *projected,
                    &intake.local,
                    &reading.written_offsets,
                    now,
                    &mut fired,
                    &mut paused_known,
                )
                .await
                {
                    tracing::warn!(error = %e, budget = %b.id, "budget check failed; retrying next tick");
                }
            }
        }
        if fired.len() > 100_000 {
            fired.clear(); // peers' and the notifier's dedupe still hold
        }
        if paused_known.len() > 10_000 {
            paused_known.clear(); // pausing again is idempotent
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= sweep_every) {
            let standing = standing_pauses(&snap, now);
            let lift = lift_pauses(&pool, &standing);
            match draining(lift, &mut spent, &mut intake, &snap).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    agents = n,
                    "budget pauses lifted (new period, or budget changed)"
                ),
                Err(e) => tracing::warn!(error = %e, "lifting budget pauses failed; retrying"),
            }
            last_sweep = Some(Instant::now());
        }
    }
}

/// Compare one budget's spend with its thresholds; emit what crossed.
#[allow(clippy::too_many_arguments)]
async fn check(
    config: &Config,
    pool: &PgPool,
    producer: &FutureProducer,
    b: &Budget,
    projected: f64,
    local: &Local,
    written: &HashMap<i32, i64>,
    now: DateTime<Utc>,
    fired: &mut HashSet<String>,
    paused_known: &mut HashMap<(String, String), HashSet<String>>,
) -> anyhow::Result<()> {
    let start = period_start(b.period, now);
    let period = period_key(b.period, now);
    // A retried batch puts an event in the log twice: count it once.
    let mut seen = HashSet::new();
    // A spend read from `events` holds what the writer stored; one read from
    // the levels what the deriver folded (the same in TimescaleDB mode).
    let after = spend_source(&b.scope)
        .from_where
        .starts_with("FROM events ")
        .then_some(written);
    let mine: Vec<&Spent> = local
        .in_scope(&b.org_id, &b.scope, start, after)
        .filter(|s| seen.insert(s.event.event_id.as_str()))
        .collect();
    let spend = projected + mine.iter().map(|s| s.cost()).sum::<f64>();
    let mut levels: Vec<f64> = b.thresholds.clone();
    levels.extend(b.pause_at_pct);
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let due: Vec<f64> = levels
        .into_iter()
        .filter(|pct| spend >= b.limit_usd * pct / 100.0)
        .filter(|pct| !fired.contains(&budget_alert_id(&b.id, &period, *pct)))
        .collect();
    // Past the pause threshold, every agent in scope that spends is paused:
    // at the crossing those the store knows, then new spenders as they come.
    let pause_level = b.pause_at_pct.map(|p| b.limit_usd * p / 100.0);
    let known = paused_known.get(&(b.id.clone(), period.clone()));
    let new_spenders: Vec<String> = match pause_level {
        // A hierarchy scope is paused as a whole: no agent to add.
        _ if b.scope.kind().is_hierarchy() => Vec::new(),
        Some(level) if spend >= level => {
            let mut agents: Vec<String> = mine
                .iter()
                .map(|s| s.event.agent_id.clone())
                .filter(|a| !known.is_some_and(|k| k.contains(a)))
                .collect();
            agents.sort();
            agents.dedup();
            agents
        }
        _ => Vec::new(),
    };
    let first_pause = pause_level.is_some_and(|level| spend >= level) && known.is_none();
    if due.is_empty() && new_spenders.is_empty() && !first_pause {
        return Ok(());
    }
    // Before alerting, drop local records the projections already hold under
    // another offset (a batch replayed after a crash): never alert early.
    let ids: Vec<String> = mine.iter().map(|s| s.event.event_id.clone()).collect();
    let dup = already_projected(pool, &b.org_id, &ids, start, after.is_none()).await?;
    let mine: Vec<&Spent> = mine
        .into_iter()
        .filter(|s| !dup.contains(&s.event.event_id))
        .collect();
    let spend = projected + mine.iter().map(|s| s.cost()).sum::<f64>();
    let mut paused = Vec::new();
    if pause_level.is_some_and(|level| spend >= level) {
        let local: Vec<String> = mine.iter().map(|s| s.event.agent_id.clone()).collect();
        paused = pause_agents(pool, b, start, &period, &local, first_pause).await?;
        let known = paused_known
            .entry((b.id.clone(), period.clone()))
            .or_default();
        let before = known.len();
        known.extend(paused.iter().cloned());
        if known.len() > before {
            telemetry::agents_paused(known.len() - before);
            tracing::info!(budget = %b.id, agents = known.len() - before, "budget past its pause threshold: agents paused");
        }
    }
    for pct in due {
        if spend < b.limit_usd * pct / 100.0 {
            continue;
        }
        let shown: &[String] = if b.pause_at_pct.is_some_and(|p| pct >= p) {
            &paused
        } else {
            &[]
        };
        let a = budget_alert(b, now, pct, spend, shown);
        alert::produce(producer, &config.kafka.topic_alerts, &a).await?;
        tracing::info!(alert_id = %a.alert_id, spend, limit = b.limit_usd, pct, "budget threshold crossed, alert emitted");
        telemetry::alert_emitted(if pct >= 100.0 {
            "budget_exceeded"
        } else {
            "budget_warn"
        });
        fired.insert(a.alert_id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::{Scope, Snapshot};
    use agentops_governance::{Period, Stored};
    use agentops_schemas::AgentEvent;

    fn budget() -> Budget {
        Stored {
            id: "b1".into(),
            org_id: "o".into(),
            item: agentops_governance::Budget {
                name: "team".into(),
                scope: Scope::org(),
                period: Period::Day,
                limit_usd: 10.0,
                thresholds: vec![80.0, 100.0],
                pause_at_pct: None,
                channels: vec![],
            },
        }
    }

    #[test]
    fn alert_ids_are_deterministic_per_budget_period_threshold() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .to_utc();
        let later = now + chrono::Duration::hours(5);
        let b = budget();
        let a = budget_alert(&b, now, 80.0, 8.5, &[]);
        assert_eq!(a.alert_id, budget_alert(&b, later, 80.0, 9.9, &[]).alert_id);
        assert_eq!(a.alert_id, "budget:b1:2026-11-22:80");
        assert_eq!(a.kind, "budget_warn");
        let next_day = now + chrono::Duration::days(1);
        assert_ne!(
            a.alert_id,
            budget_alert(&b, next_day, 80.0, 8.5, &[]).alert_id
        );
        let e = budget_alert(&b, now, 100.0, 10.5, &["a1".into()]);
        assert_eq!(e.kind, "budget_exceeded");
        assert_eq!(e.severity, "critical");
        assert!(e.message.contains("$10.50 of $10.00"), "{}", e.message);
        assert!(e.message.contains("paused 1 agent"), "{}", e.message);
    }

    #[test]
    fn only_current_periods_of_pausing_budgets_stand() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut snap = Snapshot::default();
        let mut pausing = budget();
        pausing.item.pause_at_pct = Some(100.0);
        pausing.item.period = Period::Week;
        snap.budgets.insert("o".into(), vec![budget(), pausing]);
        assert_eq!(
            standing_pauses(&snap, now),
            vec!["budget:b1:2026-W47".to_owned()]
        );
    }

    #[test]
    fn local_spend_is_pruned_by_projection_offsets() {
        let mut l = Local::new(10);
        for (p, o) in [(0, 5), (0, 6), (1, 2)] {
            let e = AgentEvent {
                org_id: "o".into(),
                cost_usd: Some(1.0),
                timestamp: Utc::now().timestamp_micros(),
                ..Default::default()
            };
            l.push(Spent::of(&e, p, o));
        }
        let start = period_start(Period::Day, Utc::now());
        assert_eq!(l.in_scope("o", &Scope::org(), start, None).count(), 3);
        l.prune(&HashMap::from([(0, 6)]));
        assert_eq!(l.in_scope("o", &Scope::org(), start, None).count(), 2);
        assert_eq!(l.len, 2);
        l.prune(&HashMap::from([(0, 7), (1, 3)]));
        assert_eq!(l.len, 0);
        assert_eq!(l.in_scope("other", &Scope::org(), start, None).count(), 0);
    }
}
