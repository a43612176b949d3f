//! What this instance wrote to the enriched topic and the projections may
//! not hold yet: the priced events the enrich stage hands over through a
//! bounded queue, kept per offset until the store has them.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::AgentEvent;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::governance::{in_scope, Scope, Snapshot};
use crate::telemetry;

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

    pub(super) fn ts(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.event.timestamp).unwrap_or_default()
    }

    pub(super) fn cost(&self) -> f64 {
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
pub(crate) struct SpentRx(pub(super) mpsc::Receiver<Vec<Spent>>);

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

    pub(super) fn depth(&self) -> usize {
        self.0.max_capacity() - self.0.capacity()
    }
}

/// What the budget task took from the queue: the orgs recently spending
/// (checked each tick) and their unprojected spend.
pub(super) struct Intake {
    pub(super) watched: HashMap<String, Instant>,
    pub(super) local: Local,
}

impl Intake {
    /// Keep the spend of orgs that have budgets.
    pub(super) fn take(&mut self, batch: Vec<Spent>, snap: &Snapshot) {
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
pub(super) async fn draining<T>(
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
pub(super) struct Local {
    by_org: HashMap<String, HashMap<i32, VecDeque<Spent>>>,
    pub(super) len: usize,
    max: usize,
}

impl Local {
    pub(super) fn new(max: usize) -> Local {
        Local {
            by_org: HashMap::new(),
            len: 0,
            max: max.max(1),
        }
    }

    pub(super) fn push(&mut self, s: Spent) {
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
    pub(super) fn prune(&mut self, projected: &HashMap<i32, i64>) {
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

    /// Unprojected entries of `org` in scope since `start`; with `after`,
    /// only those at or past its next offset of their partition (a spend
    /// read from `events`, which the writer fills a pass before the
    /// deriver folds it into the levels).
    pub(super) fn in_scope<'a>(
        &'a self,
        org: &'a str,
        scope: &'a Scope,
        start: DateTime<Utc>,
        after: Option<&'a HashMap<i32, i64>>,
    ) -> impl Iterator<Item = &'a Spent> + 'a {
        self.by_org
            .get(org)
            .into_iter()
            .flat_map(|parts| parts.iter())
            .flat_map(move |(p, q)| {
                let next = after.and_then(|a| a.get(p)).copied().unwrap_or(0);
                q.iter().filter(move |s| s.offset >= next)
            })
            .filter(move |s| s.ts() >= start && in_scope(scope, &s.event))
    }
}
