//! Budgets: spend per scope (org, agent, workflow, model, tag) and period
//! (UTC day, week, month), alerting at each threshold and optionally pausing
//! the agents in scope.
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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::AgentEvent;
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureProducer;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::alert::{self, Alert, Transition};
use crate::governance::{channel_names, in_scope, Budget, Governance, Scope, Snapshot};
use crate::{telemetry, Config};
use agentops_governance::alert::{budget_alert_id, AlertSource};
use agentops_governance::controls::{self, SetBy};
use agentops_governance::spend::{spend_in_scope, spend_source};
use agentops_governance::{period_end, period_key, period_start};

/// A priced event this instance wrote to the enriched topic.
#[derive(Debug, Clone)]
pub(crate) struct Spent {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    /// Only the fields scopes look at (ids, model, attributes, time, cost).
    pub(crate) event: AgentEvent,
}

impl Spent {
    /// Keep what budget scopes need of an enriched event.
    pub(crate) fn of(e: &AgentEvent, partition: i32, offset: i64) -> Spent {
        Spent {
            partition,
            offset,
            event: AgentEvent {
                event_id: e.event_id.clone(),
                org_id: e.org_id.clone(),
                timestamp: e.timestamp,
                agent_id: e.agent_id.clone(),
                workflow_id: e.workflow_id.clone(),
                model: e.model.clone(),
                cost_usd: e.cost_usd,
                attributes: e.attributes.clone(),
                ..Default::default()
            },
        }
    }

    fn ts(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.event.timestamp).unwrap_or_default()
    }

    fn cost(&self) -> f64 {
        self.event.cost_usd.unwrap_or(0.0)
    }
}

/// Batches of spend the enrich stage may have handed over that the budget
/// task has not taken yet. The budget task takes them as they come, also
/// while it waits on the database (see [`draining`]), so the queue only
/// fills when that task cannot run at all; the enrich stage then waits
/// (backpressure: Kafka lag grows, nothing is dropped). 16 batches of at most
/// `batch_max` events.
pub(crate) const QUEUE_BATCHES: usize = 16;

/// The enrich stage's end of the bounded spend queue.
#[derive(Clone)]
pub(crate) struct SpentTx(mpsc::Sender<Vec<Spent>>);

/// The budget task's end.
pub(crate) struct SpentRx(mpsc::Receiver<Vec<Spent>>);

/// The bounded queue from the enrich stage to the budget task.
pub(crate) fn queue() -> (SpentTx, SpentRx) {
    let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
    (SpentTx(tx), SpentRx(rx))
}

impl SpentTx {
    /// Hand a batch's spend to the budget task, waiting while the queue is
    /// full (each wait is recorded in `agentops_budget_queue_blocked_seconds`).
    /// Returns at once on shutdown or once the budget task is gone: the
    /// records are durable in Kafka already, and a successor instance reads
    /// their spend from the projection store.
    pub(crate) async fn hand_over(&self, spent: Vec<Spent>, shutdown: &CancellationToken) {
        if spent.is_empty() {
            return;
        }
        let spent = match self.0.try_send(spent) {
            Ok(()) => {
                telemetry::budget_queue_depth(self.depth());
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(spent)) => spent,
        };
        let waited = Instant::now();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = self.0.send(spent) => {}
        }
        telemetry::budget_queue_blocked(waited.elapsed());
        telemetry::budget_queue_depth(self.depth());
    }

    fn depth(&self) -> usize {
        self.0.max_capacity() - self.0.capacity()
    }
}

/// What the budget task took from the queue: the orgs recently spending
/// (checked each tick) and their unprojected spend.
struct Intake {
    watched: HashMap<String, Instant>,
    local: Local,
}

impl Intake {
    /// Keep the spend of orgs that have budgets.
    fn take(&mut self, batch: Vec<Spent>, snap: &Snapshot) {
        let now = Instant::now();
        for s in batch {
            if snap.budgets.contains_key(&s.event.org_id) {
                if let Some(at) = self.watched.get_mut(&s.event.org_id) {
                    *at = now;
                } else {
                    self.watched.insert(s.event.org_id.clone(), now);
                }
                self.local.push(s);
            }
        }
    }
}

/// Run `work` (a database call) while taking what the enrich stage hands
/// over, so a slow or stopped database never stops the enrich stage through
/// this queue: what piles up meanwhile is held in [`Local`], whose size is
/// bounded.
async fn draining<T>(
    work: impl std::future::Future<Output = T>,
    rx: &mut SpentRx,
    intake: &mut Intake,
    snap: &Snapshot,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            Some(batch) = rx.0.recv() => intake.take(batch, snap),
        }
    }
}

/// Spend this instance wrote that the projections may not have stored yet,
/// per org and partition (in offset order), at most `max` entries.
///
/// Past `max` (the projections far behind, or the database down for long
/// under load), the oldest entry of the longest queue is let go and counted
/// (`agentops_budget_local_dropped_total`): that spend is then counted once
/// the projections store it, so a crossing is seen late, never twice nor
/// early, and its alert still fires once (ids are per budget, period and
/// threshold). Blocking the enrich stage instead would tie it to the
/// projections' progress: with them stopped, enrichment would stop too.
struct Local {
    by_org: HashMap<String, HashMap<i32, VecDeque<Spent>>>,
    len: usize,
    max: usize,
}

impl Local {
    fn new(max: usize) -> Local {
        Local {
            by_org: HashMap::new(),
            len: 0,
            max: max.max(1),
        }
    }

    fn push(&mut self, s: Spent) {
        self.by_org
            .entry(s.event.org_id.clone())
            .or_default()
            .entry(s.partition)
            .or_default()
            .push_back(s);
        self.len += 1;
        if self.len > self.max {
            // Drop the oldest of the biggest queue: spend is then under-
            // counted until the projections catch up, never double counted.
            if let Some(q) = self
                .by_org
                .values_mut()
                .flat_map(|m| m.values_mut())
                .max_by_key(|q| q.len())
            {
                q.pop_front();
                self.len -= 1;
                telemetry::budget_local_dropped();
            }
        }
    }

    /// Forget what the projections have stored (offset below their next offset).
    fn prune(&mut self, projected: &HashMap<i32, i64>) {
        for parts in self.by_org.values_mut() {
            for (p, q) in parts.iter_mut() {
                let next = projected.get(p).copied().unwrap_or(0);
                while q.front().is_some_and(|s| s.offset < next) {
                    q.pop_front();
                    self.len -= 1;
                }
            }
            parts.retain(|_, q| !q.is_empty());
        }
        self.by_org.retain(|_, parts| !parts.is_empty());
    }

    /// Unprojected entries of `org` in scope since `start`.
    fn in_scope<'a>(
        &'a self,
        org: &'a str,
        scope: &'a Scope,
        start: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Spent> + 'a {
        self.by_org
            .get(org)
            .into_iter()
            .flat_map(|parts| parts.values().flatten())
            .filter(move |s| s.ts() >= start && in_scope(scope, &s.event))
    }
}

/// Spend in scope for the period, read in one snapshot with the projection offsets.
struct Reading {
    projected_offsets: HashMap<i32, i64>,
    projected_spend: Vec<f64>,
}

async fn read_projection(
    pool: &PgPool,
    config: &Config,
    budgets: &[Budget],
    now: DateTime<Utc>,
) -> Result<Reading, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    #[derive(sqlx::FromRow)]
    struct Offset {
        partition: i32,
        next_offset: i64,
    }
    let offsets: Vec<Offset> = sqlx::query_as(
        "SELECT partition, next_offset FROM consumer_offsets
         WHERE consumer_group = $1 AND topic = $2",
    )
    .bind(&config.projection_group)
    .bind(&config.kafka.topic_enriched)
    .fetch_all(&mut *tx)
    .await?;
    let mut spend = Vec::with_capacity(budgets.len());
    for b in budgets {
        // The period only: an event stamped in the next one (up to 5 min
        // ahead is accepted) counts there, as the budget status says.
        let (start, end) = (period_start(b.period, now), period_end(b.period, now));
        spend.push(spend_in_scope(&mut tx, &b.org_id, &b.scope, start, Some(end)).await?);
    }
    tx.commit().await?;
    Ok(Reading {
        projected_offsets: offsets
            .into_iter()
            .map(|o| (o.partition, o.next_offset))
            .collect(),
        projected_spend: spend,
    })
}

/// Of `ids` (event ids written by this instance), those the projections
/// already hold: a replayed record whose first copy was projected.
async fn already_projected(
    pool: &PgPool,
    org: &str,
    ids: &[String],
    since: DateTime<Utc>,
) -> Result<HashSet<String>, sqlx::Error> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT event_id::text FROM events
         WHERE event_id = ANY($1::uuid[]) AND ts >= $2 AND org_id = $3",
    )
    .bind(ids)
    .bind(since)
    .bind(org)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The alert for `b` at `pct` percent in the period of `now`.
pub(crate) fn budget_alert(
    b: &Budget,
    now: DateTime<Utc>,
    pct: f64,
    spend: f64,
    paused: &[String],
) -> Alert {
    let period = period_key(b.period, now);
    let exceeded = pct >= 100.0;
    let kind = if exceeded {
        "budget_exceeded"
    } else {
        "budget_warn"
    };
    let used = 100.0 * spend / b.limit_usd;
    let mut message = format!(
        "Budget '{}' ({}, {} {period}): ${spend:.2} of ${:.2} spent ({used:.0}%), {} threshold {pct}% crossed",
        b.name,
        b.scope.scope_key(),
        b.period.as_str(),
        b.limit_usd,
        if exceeded { "exceeded" } else { "warning" },
    );
    if !paused.is_empty() {
        message.push_str(&format!("; paused {} agent(s)", paused.len()));
    }
    Alert {
        alert_id: budget_alert_id(&b.id, &period, pct),
        org_id: b.org_id.clone(),
        source: AlertSource::Budget.as_str().into(),
        source_id: Some(b.id.clone()),
        kind: kind.into(),
        scope_key: b.scope.scope_key(),
        transition: Transition::Firing,
        severity: if exceeded { "critical" } else { "warning" }.into(),
        period,
        threshold: b.limit_usd * pct / 100.0,
        value: spend,
        message,
        details: json!({
            "budget": b.name, "limit_usd": b.limit_usd, "percent": pct,
            "used_percent": used, "unit": "usd", "paused_agents": paused,
        }),
        channels: channel_names(&b.channels),
        occurred_at: now,
    }
}

/// Pause the agents in scope that spent in the period: `local` ones, and
/// with `from_store` also those the projection store knows. An agent an
/// admin resumed from this budget's pause in this period stays resumed.
/// Returns the agents considered.
async fn pause_agents(
    pool: &PgPool,
    b: &Budget,
    start: DateTime<Utc>,
    period: &str,
    local: &[String],
    from_store: bool,
) -> Result<Vec<String>, sqlx::Error> {
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
    let reason = format!(
        "budget '{}' reached {}%",
        b.name,
        b.pause_at_pct.unwrap_or(100.0)
    );
    let set_by = SetBy::Budget {
        budget_id: b.id.clone(),
        period_key: period.to_owned(),
    };
    controls::pause_for_budget(pool, &b.org_id, &agents, &reason, &set_by).await?;
    Ok(agents)
}

/// The `set_by` of the pauses that stand now: one per budget with a pause
/// threshold, for its current period.
fn standing_pauses(snap: &Snapshot, now: DateTime<Utc>) -> Vec<String> {
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
async fn lift_pauses(pool: &PgPool, standing: &[String]) -> Result<u64, sqlx::Error> {
    controls::lift_budget_pauses(pool, standing).await
}

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
    now: DateTime<Utc>,
    fired: &mut HashSet<String>,
    paused_known: &mut HashMap<(String, String), HashSet<String>>,
) -> anyhow::Result<()> {
    let start = period_start(b.period, now);
    let period = period_key(b.period, now);
    // A retried batch puts an event in the log twice: count it once.
    let mut seen = HashSet::new();
    let mine: Vec<&Spent> = local
        .in_scope(&b.org_id, &b.scope, start)
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
    let dup = already_projected(pool, &b.org_id, &ids, start).await?;
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
    use agentops_governance::{Period, Stored};

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
        assert_eq!(l.in_scope("o", &Scope::org(), start).count(), 3);
        l.prune(&HashMap::from([(0, 6)]));
        assert_eq!(l.in_scope("o", &Scope::org(), start).count(), 2);
        assert_eq!(l.len, 2);
        l.prune(&HashMap::from([(0, 7), (1, 3)]));
        assert_eq!(l.len, 0);
        assert_eq!(l.in_scope("other", &Scope::org(), start).count(), 0);
    }
}
