//! Agent controls (`agent_controls`): an agent paused or killed, and by
//! whom; scope controls (`scope_controls`): a project, machine, workspace
//! or session paused or killed. The one writer of both tables, used by the
//! query API (an operator's pause, kill and resume) and the processors
//! (budget and policy pauses); the gateway reads them to answer directives.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::scope::Scope;
use crate::vocabulary::vocabulary;

vocabulary! {
    /// What a control does to an agent (the `agent_controls.action` column).
    pub enum ControlAction ("control action") {
        /// Stop starting new work; resumable.
        Pause = "pause",
        /// Stop now.
        Kill = "kill",
    }
}

impl ControlAction {
    /// The agent's status under the control: `paused`, `killed`.
    pub fn status(self) -> &'static str {
        match self {
            ControlAction::Pause => "paused",
            ControlAction::Kill => "killed",
        }
    }
}

/// Who set a control (the `set_by` column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetBy {
    /// A person or key through the API (its actor string).
    Operator(String),
    /// A budget's pause threshold, for one period: `budget:<id>:<period key>`.
    Budget {
        budget_id: String,
        period_key: String,
    },
    /// A policy with action `pause`: `policy:<id>`.
    Policy { policy_id: String },
}

/// The `set_by` prefix of budget pauses.
const BUDGET: &str = "budget:";

impl std::fmt::Display for SetBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetBy::Operator(actor) => f.write_str(actor),
            SetBy::Budget {
                budget_id,
                period_key,
            } => write!(f, "{BUDGET}{budget_id}:{period_key}"),
            SetBy::Policy { policy_id } => write!(f, "policy:{policy_id}"),
        }
    }
}

/// Set `action` on `agent` by an operator, replacing any control in place;
/// returns when it was set.
pub async fn set_by_operator<'c>(
    exec: impl PgExecutor<'c>,
    org: &str,
    agent: &str,
    action: ControlAction,
    reason: &str,
    actor: &str,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO agent_controls (org_id, agent_id, action, reason, set_by, set_at, alert_id)
         VALUES ($1, $2, $3, $4, $5, now(), NULL)
         ON CONFLICT (org_id, agent_id) DO UPDATE SET action = EXCLUDED.action,
             reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_at = now(), alert_id = NULL
         RETURNING set_at",
    )
    .bind(org)
    .bind(agent)
    .bind(action.as_str())
    .bind(reason)
    .bind(SetBy::Operator(actor.to_owned()).to_string())
    .fetch_one(exec)
    .await
}

/// A control removed by [`clear`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Cleared {
    /// `pause` or `kill`.
    pub action: String,
    pub set_by: String,
}

/// Remove the control on `agent` (resume it); what was there, if anything.
pub async fn clear<'c>(
    exec: impl PgExecutor<'c>,
    org: &str,
    agent: &str,
) -> Result<Option<Cleared>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM agent_controls WHERE org_id = $1 AND agent_id = $2 RETURNING action, set_by",
    )
    .bind(org)
    .bind(agent)
    .fetch_optional(exec)
    .await
}

/// Pause `agents` of `org` for a budget (`set_by` a [`SetBy::Budget`]),
/// except those an operator resumed from this same pause (an `agent.resume`
/// audit row naming it) and those already under a control.
pub async fn pause_for_budget<'c>(
    exec: impl PgExecutor<'c>,
    org: &str,
    agents: &[String],
    reason: &str,
    set_by: &SetBy,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO agent_controls (org_id, agent_id, action, reason, set_by)
         SELECT $1, a, 'pause', $3, $4 FROM unnest($2::text[]) a
         WHERE NOT EXISTS (
             SELECT 1 FROM audit_log l
             WHERE l.org_id = $1 AND l.action = 'agent.resume'
               AND l.detail::jsonb->>'agent_id' = a AND l.detail::jsonb->>'set_by' = $4)
         ON CONFLICT (org_id, agent_id) DO NOTHING",
    )
    .bind(org)
    .bind(agents)
    .bind(reason)
    .bind(set_by.to_string())
    .execute(exec)
    .await?;
    Ok(r.rows_affected())
}

/// Lift the budget pauses whose `set_by` is not in `standing` (set in an
/// earlier period, or by a budget deleted or without a pause threshold),
/// of agents and of scopes.
pub async fn lift_budget_pauses<'c>(
    exec: impl PgExecutor<'c>,
    standing: &[String],
) -> Result<u64, sqlx::Error> {
    let r: i64 = sqlx::query_scalar(
        "WITH a AS (DELETE FROM agent_controls
                    WHERE set_by LIKE 'budget:%' AND NOT (set_by = ANY($1)) RETURNING 1),
              s AS (DELETE FROM scope_controls
                    WHERE set_by LIKE 'budget:%' AND NOT (set_by = ANY($1)) RETURNING 1)
         SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM s)",
    )
    .bind(standing)
    .fetch_one(exec)
    .await?;
    Ok(u64::try_from(r).unwrap_or(0))
}

/// The audit action of an operator resuming a scope (its detail names
/// `scope` and the `set_by` it lifted).
pub const SCOPE_RESUME: &str = "scope.resume";

/// Pause a hierarchy `scope` of `org` for a budget, unless an operator
/// resumed it from this same pause (a [`SCOPE_RESUME`] audit row) or it is
/// already under a control. Whether it was paused now.
pub async fn pause_scope_for_budget<'c>(
    exec: impl PgExecutor<'c>,
    org: &str,
    scope: &Scope,
    reason: &str,
    set_by: &SetBy,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO scope_controls (org_id, scope_kind, scope_value, action, reason, set_by)
         SELECT $1, $2, $3, 'pause', $4, $5
         WHERE NOT EXISTS (
             SELECT 1 FROM audit_log l
             WHERE l.org_id = $1 AND l.action = $6
               AND l.detail::jsonb->>'scope' = $7 AND l.detail::jsonb->>'set_by' = $5)
         ON CONFLICT (org_id, scope_kind, scope_value) DO NOTHING",
    )
    .bind(org)
    .bind(scope.kind().as_str())
    .bind(scope.value().unwrap_or_default())
    .bind(reason)
    .bind(set_by.to_string())
    .bind(SCOPE_RESUME)
    .bind(scope.scope_key())
    .execute(exec)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Set `action` on a hierarchy `scope` by an operator, replacing any
/// control in place; returns when it was set.
pub async fn set_scope_by_operator<'c>(
    exec: impl PgExecutor<'c>,
    org: &str,
    scope: &Scope,
    action: ControlAction,
    reason: &str,
    actor: &str,
) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO scope_controls (org_id, scope_kind, scope_value, action, reason, set_by,
             set_at, alert_id)
         VALUES ($1, $2, $3, $4, $5, $6, now(), NULL)
         ON CONFLICT (org_id, scope_kind, scope_value) DO UPDATE SET action = EXCLUDED.action,
             reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, set_at = now(), alert_id = NULL
         RETURNING set_at",
    )
    .bind(org)
    .bind(scope.kind().as_str())
    .bind(scope.value().unwrap_or_default())
    .bind(action.as_str())
    .bind(reason)
    .bind(SetBy::Operator(actor.to_owned()).to_string())
    .fetch_one(exec)
    .await
}

/// Remove the control on a hierarchy `scope` (resume it); what was there.
pub async fn clear_scope<'c>(
    exec: impl PgExecutor<'c>,
    org: &str,
    scope: &Scope,
) -> Result<Option<Cleared>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM scope_controls WHERE org_id = $1 AND scope_kind = $2 AND scope_value = $3
         RETURNING action, set_by",
    )
    .bind(org)
    .bind(scope.kind().as_str())
    .bind(scope.value().unwrap_or_default())
    .fetch_optional(exec)
    .await
}

/// A pause a policy violation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPause {
    pub org_id: String,
    pub agent_id: String,
    pub reason: String,
    pub policy_id: String,
    /// The alert raised for the violation.
    pub alert_id: String,
}

/// Pause the agents of `pauses` not already under a control.
pub async fn pause_for_policies<'c>(
    exec: impl PgExecutor<'c>,
    pauses: &[PolicyPause],
) -> Result<u64, sqlx::Error> {
    let col = |f: fn(&PolicyPause) -> String| pauses.iter().map(f).collect::<Vec<_>>();
    let r = sqlx::query(
        "INSERT INTO agent_controls (org_id, agent_id, action, reason, set_by, alert_id)
         SELECT o, a, 'pause', r, s, i
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
              AS t(o, a, r, s, i)
         ON CONFLICT (org_id, agent_id) DO NOTHING",
    )
    .bind(col(|p| p.org_id.clone()))
    .bind(col(|p| p.agent_id.clone()))
    .bind(col(|p| p.reason.clone()))
    .bind(col(|p| {
        SetBy::Policy {
            policy_id: p.policy_id.clone(),
        }
        .to_string()
    }))
    .bind(col(|p| p.alert_id.clone()))
    .execute(exec)
    .await?;
    Ok(r.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_by_names() {
        let b = SetBy::Budget {
            budget_id: "b1".into(),
            period_key: "2026-W49".into(),
        };
        assert_eq!(b.to_string(), "budget:b1:2026-W49");
        assert!(b.to_string().starts_with(BUDGET));
        assert_eq!(
            SetBy::Policy {
                policy_id: "p1".into()
            }
            .to_string(),
            "policy:p1"
        );
        assert_eq!(SetBy::Operator("key:k1".into()).to_string(), "key:k1");
        assert_eq!(ControlAction::Kill.status(), "killed");
    }
}
