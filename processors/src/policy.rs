//! Policies, evaluated on every event by the enrich stage: model allowlist
//! and denylist, max tokens per call, max cost per run, forbidden tools.
//!
//! Actions: `flag` records the violation and marks the enriched event
//! (attribute `agentops.policy_violations`); `alert` also raises an alert (one
//! per policy, agent and UTC day); `pause` also pauses the agent. Violations
//! are recorded once per (policy, event) whatever the replays.
//!
//! Max cost per run sums the cost of a run's events as they pass. A run's
//! events share a partition (the key is org/agent), so one instance sees
//! them all; a run first seen mid-way (after a rebalance or restart) starts
//! from its cost in the `runs` projection.

use hashbrown::hash_map::EntryRef;
use hashbrown::{HashMap as FastMap, HashSet as FastSet};

use agentops_schemas::AgentEvent;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;

use crate::alert::{Alert, Transition};
use crate::governance::{channel_names, Policy};
use agentops_governance::alert::{policy_alert_id, AlertSource};
use agentops_governance::controls::{self, PolicyPause};
use agentops_governance::policy::{model_matches, Check, PolicyAction};

/// The attribute listing the policies an enriched event violated.
pub(crate) const FLAG_ATTRIBUTE: &str = "agentops.policy_violations";

#[derive(Debug, Clone)]
pub(crate) struct Violation {
    pub(crate) policy: Policy,
    pub(crate) detail: String,
}

/// Sum of token counts of an event.
fn tokens(e: &AgentEvent) -> i64 {
    [
        e.input_tokens,
        e.output_tokens,
        e.cache_read_tokens,
        e.cache_write_tokens,
        e.reasoning_tokens,
    ]
    .iter()
    .fold(0i64, |sum, t| sum.saturating_add(t.unwrap_or(0)))
}

/// The violations of `e` (already priced). `run_cost` is the run's cost
/// before and after this event, when the event belongs to a run.
pub(crate) fn evaluate(
    policies: &[Policy],
    e: &AgentEvent,
    run_cost: Option<(f64, f64)>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for p in policies
        .iter()
        .filter(|p| crate::governance::in_scope(&p.scope, e))
    {
        let model = e.model.as_deref();
        let detail = match &p.check {
            Check::ModelAllowlist(names) => model
                .filter(|m| !names.iter().any(|n| model_matches(n, m)))
                .map(|m| format!("model {m} is not on the allowlist")),
            Check::ModelDenylist(names) => model
                .filter(|m| names.iter().any(|n| model_matches(n, m)))
                .map(|m| format!("model {m} is denied")),
            Check::MaxTokensPerCall(limit) => {
                let t = tokens(e);
                (t as f64 > *limit).then(|| format!("{t} tokens in one call, over {limit}"))
            }
            Check::ForbiddenTools(names) => e
                .tool_name
                .as_deref()
                .filter(|t| names.iter().any(|n| n.eq_ignore_ascii_case(t)))
                .map(|t| format!("tool {t} is forbidden")),
            Check::MaxCostPerRun(limit) => match run_cost {
                // Only the event that crosses the limit violates it.
                Some((before, after)) if before <= *limit && after > *limit => {
                    Some(format!("run cost ${after:.4} over ${limit:.4}"))
                }
                _ => None,
            },
        };
        if let Some(detail) = detail {
            out.push(Violation {
                policy: p.clone(),
                detail,
            });
        }
    }
    out
}

/// Running cost of the runs this instance sees: org → run → USD. Looked up
/// by `&str` (no key is built per event) with hashbrown's fast default hash
/// (foldhash; randomly seeded per map).
#[derive(Default)]
pub(crate) struct RunCosts {
    cost: FastMap<String, FastMap<String, f64>>,
    /// Runs in `cost`.
    runs: usize,
    /// Event ids already added (a retried batch carries them again).
    seen: FastSet<String>,
}

const RUNS_MAX: usize = 200_000;

impl RunCosts {
    fn get(&self, org: &str, run: &str) -> Option<f64> {
        self.cost.get(org)?.get(run).copied()
    }

    /// The run's cost, created at 0.
    fn entry(&mut self, org: &str, run: &str) -> &mut f64 {
        // `entry_ref` allocates a key only when it inserts.
        match self.cost.entry_ref(org).or_default().entry_ref(run) {
            EntryRef::Occupied(o) => o.into_mut(),
            EntryRef::Vacant(v) => {
                self.runs += 1;
                v.insert(0.0)
            }
        }
    }

    /// Runs of `events` not yet known here that did not start in this batch:
    /// their cost so far comes from the projection.
    pub(crate) async fn seed(
        &mut self,
        pool: &PgPool,
        events: &[&AgentEvent],
    ) -> Result<(), sqlx::Error> {
        let mut orgs = Vec::new();
        let mut runs = Vec::new();
        let mut seen: FastSet<(&str, &str)> = FastSet::default();
        for e in events {
            let Some(run) = e.run_id.as_deref() else {
                continue;
            };
            // A run starting in this batch has no cost before it.
            if self.get(&e.org_id, run).is_some() || !seen.insert((&e.org_id, run)) {
                continue;
            }
            if e.event_type != "run_started" {
                orgs.push(e.org_id.clone());
                runs.push(run.to_owned());
            }
        }
        #[derive(sqlx::FromRow)]
        struct RunCost {
            org_id: String,
            run_id: String,
            cost_usd: f64,
        }
        let rows: Vec<RunCost> = if runs.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT r.org_id, r.run_id, r.cost_usd FROM runs r
                 JOIN unnest($1::text[], $2::text[]) AS k(org_id, run_id)
                   ON r.org_id = k.org_id AND r.run_id = k.run_id",
            )
            .bind(&orgs)
            .bind(&runs)
            .fetch_all(pool)
            .await?
        };
        for (org, run) in seen {
            self.entry(org, run);
        }
        for r in rows {
            *self.entry(&r.org_id, &r.run_id) = r.cost_usd;
        }
        Ok(())
    }

    /// Add the event's cost; (before, after) for its run.
    pub(crate) fn add(&mut self, e: &AgentEvent) -> Option<(f64, f64)> {
        let run = e.run_id.as_deref()?;
        if self.runs > RUNS_MAX || self.seen.len() > RUNS_MAX {
            // Runs seen again are re-seeded from the projection.
            self.cost.clear();
            self.runs = 0;
            self.seen.clear();
        }
        if self.seen.contains(e.event_id.as_str()) {
            let c = self.get(&e.org_id, run)?;
            return Some((c, c)); // a duplicate adds nothing
        }
        self.seen.insert(e.event_id.clone());
        let c = self.entry(&e.org_id, run);
        let before = *c;
        *c += e.cost_usd.unwrap_or(0.0);
        Some((before, *c))
    }
}

/// The alert raised for a violation (`alert` and `pause` actions): one per
/// policy, agent and UTC day of the event.
pub(crate) fn violation_alert(v: &Violation, e: &AgentEvent, paused: bool) -> Alert {
    let ts = DateTime::from_timestamp_micros(e.timestamp).unwrap_or_default();
    let day = ts.format("%Y-%m-%d").to_string();
    let p = &v.policy;
    let mut message = format!(
        "Policy '{}' ({}) violated by agent {}{}: {}",
        p.name,
        p.kind(),
        e.agent_id,
        e.run_id
            .as_deref()
            .map(|r| format!(" in run {r}"))
            .unwrap_or_default(),
        v.detail
    );
    if paused {
        message.push_str("; agent paused");
    }
    Alert {
        alert_id: policy_alert_id(&p.id, &e.agent_id, &day),
        org_id: e.org_id.clone(),
        source: AlertSource::Policy.as_str().into(),
        source_id: Some(p.id.clone()),
        kind: p.kind().as_str().into(),
        scope_key: format!("agent={}", e.agent_id),
        transition: Transition::Firing,
        severity: if paused { "critical" } else { "warning" }.into(),
        period: day,
        threshold: p.check.limit().unwrap_or(0.0),
        value: 0.0,
        message,
        details: json!({
            "policy": p.name, "action": p.action, "event_id": e.event_id,
            "run_id": e.run_id, "agent_id": e.agent_id, "detail": v.detail,
            "paused_agents": if paused { vec![e.agent_id.clone()] } else { vec![] },
        }),
        channels: channel_names(&p.channels),
        occurred_at: Utc::now(),
    }
}

/// Record violations (idempotent per policy and event) and apply pauses.
pub(crate) async fn record(
    pool: &PgPool,
    found: &[(Violation, AgentEvent)],
) -> Result<(), sqlx::Error> {
    macro_rules! col {
        ($f:expr) => {
            found.iter().map($f).collect::<Vec<_>>()
        };
    }
    let ts = |e: &AgentEvent| DateTime::from_timestamp_micros(e.timestamp).unwrap_or_default();
    let mut tx = pool.begin().await?;
    // One statement for the batch's violations (UNNEST of columns).
    sqlx::query(
        "INSERT INTO policy_violations
             (policy_id, event_id, org_id, agent_id, run_id, ts, action, detail, event)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
             $6::timestamptz[], $7::text[], $8::text[], $9::jsonb[])
         ON CONFLICT (policy_id, event_id) DO NOTHING",
    )
    .bind(col!(|(v, _)| v.policy.id.clone()))
    .bind(col!(|(_, e)| e.event_id.clone()))
    .bind(col!(|(_, e)| e.org_id.clone()))
    .bind(col!(|(_, e)| e.agent_id.clone()))
    .bind(col!(|(_, e)| e.run_id.clone()))
    .bind(col!(|(_, e)| ts(e)))
    .bind(col!(|(v, _)| v.policy.action.as_str()))
    .bind(col!(|(v, _)| v.detail.clone()))
    .bind(col!(|(_, e)| serde_json::to_value(e).unwrap_or_default()))
    .execute(&mut *tx)
    .await?;
    let pauses: Vec<PolicyPause> = found
        .iter()
        .filter(|(v, _)| v.policy.action == PolicyAction::Pause)
        .map(|(v, e)| PolicyPause {
            org_id: e.org_id.clone(),
            agent_id: e.agent_id.clone(),
            reason: format!("policy '{}': {}", v.policy.name, v.detail),
            policy_id: v.policy.id.clone(),
            alert_id: violation_alert(v, e, true).alert_id,
        })
        .collect();
    if !pauses.is_empty() {
        controls::pause_for_policies(&mut *tx, &pauses).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentops_governance::{Scope, Stored};

    fn policy(check: Check) -> Policy {
        Stored {
            id: "p".into(),
            org_id: "o".into(),
            item: agentops_governance::Policy {
                name: check.kind().to_string(),
                scope: Scope::org(),
                check,
                action: PolicyAction::Flag,
                channels: vec![],
                enabled: true,
            },
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn call(model: &str, tokens: i64) -> AgentEvent {
        AgentEvent {
            org_id: "o".into(),
            agent_id: "a".into(),
            event_type: "llm_call".into(),
            model: Some(model.into()),
            input_tokens: Some(tokens),
            output_tokens: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn model_lists() {
        let allow = [policy(Check::ModelAllowlist(names(&[
            "gpt-4o-mini",
            "claude-haiku-4-5",
        ])))];
        assert!(evaluate(&allow, &call("gpt-4o-mini-2024-07-18", 1), None).is_empty());
        let v = evaluate(&allow, &call("gpt-4o", 1), None);
        assert_eq!(v[0].detail, "model gpt-4o is not on the allowlist");
        let deny = [policy(Check::ModelDenylist(names(&["o3"])))];
        assert_eq!(evaluate(&deny, &call("o3", 1), None).len(), 1);
        assert!(evaluate(&deny, &call("o3-mini", 1), None).len() == 1); // dated/variant prefix
        assert!(evaluate(&deny, &call("o4-mini", 1), None).is_empty());
        let tool = AgentEvent {
            event_type: "tool_call".into(),
            ..Default::default()
        };
        assert!(
            evaluate(&deny, &tool, None).is_empty(),
            "no model, nothing to deny"
        );
    }

    #[test]
    fn tokens_tools_and_run_cost() {
        let max = [policy(Check::MaxTokensPerCall(1000.0))];
        assert!(evaluate(&max, &call("x", 999), None).is_empty());
        assert_eq!(
            evaluate(&max, &call("x", 1000), None)[0].detail,
            "1001 tokens in one call, over 1000"
        );
        let tools = [policy(Check::ForbiddenTools(names(&["shell"])))];
        let t = AgentEvent {
            tool_name: Some("Shell".into()),
            ..Default::default()
        };
        assert_eq!(evaluate(&tools, &t, None).len(), 1);
        let run = [policy(Check::MaxCostPerRun(1.0))];
        let e = call("x", 1);
        assert!(evaluate(&run, &e, Some((0.5, 1.0))).is_empty());
        assert_eq!(evaluate(&run, &e, Some((0.9, 1.2))).len(), 1);
        assert!(
            evaluate(&run, &e, Some((1.2, 1.5))).is_empty(),
            "only the crossing event"
        );
    }

    #[test]
    fn run_costs_accumulate_per_run_once_per_event() {
        let mut rc = RunCosts::default();
        let mut e = call("x", 1);
        e.run_id = Some("r".into());
        e.cost_usd = Some(0.25);
        e.event_id = "e1".into();
        assert_eq!(rc.add(&e), Some((0.0, 0.25)));
        assert_eq!(
            rc.add(&e),
            Some((0.25, 0.25)),
            "a retried event adds nothing"
        );
        e.event_id = "e2".into();
        assert_eq!(rc.add(&e), Some((0.25, 0.5)));
        e.run_id = None;
        assert_eq!(rc.add(&e), None);
    }

    #[test]
    fn token_sums_saturate() {
        let mut e = call("x", i64::MAX);
        e.output_tokens = Some(i64::MAX);
        assert_eq!(tokens(&e), i64::MAX);
    }

    #[test]
    fn one_alert_per_policy_agent_day() {
        let p = policy(Check::ModelDenylist(names(&["o3"])));
        let v = Violation {
            policy: p,
            detail: "model o3 is denied".into(),
        };
        let mut e = call("o3", 1);
        e.timestamp = 1_795_000_000_000_000;
        let a = violation_alert(&v, &e, false);
        e.event_id = "other".into();
        assert_eq!(a.alert_id, violation_alert(&v, &e, true).alert_id);
        assert!(a.message.contains("violated by agent a"), "{}", a.message);
    }
}
