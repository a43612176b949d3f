//! The governance configuration the processors act on (budgets, alert rules,
//! policies), read from Postgres and reloaded every `governance_reload_ms`.
//! The query API's admin endpoints own these tables; the processors only
//! read them, through `agentops_governance::load`, which validates a row
//! the same way the API did.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use agentops_governance::{load, Configuration, Stored};
use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::AgentEvent;
use sqlx::PgPool;

pub(crate) use agentops_governance::Scope;

/// A budget as loaded (id and org with the typed item).
pub(crate) type Budget = Stored<agentops_governance::Budget>;
/// An enabled alert rule as loaded.
pub(crate) type Rule = Stored<agentops_governance::Rule>;
/// An enabled policy as loaded.
pub(crate) type Policy = Stored<agentops_governance::Policy>;

/// Whether the event is in the scope.
pub(crate) fn in_scope(scope: &Scope, e: &AgentEvent) -> bool {
    scope.matches(
        &e.agent_id,
        e.workflow_id.as_deref(),
        e.model.as_deref(),
        &e.attributes,
        &agentops_governance::Place {
            project: e.project_id.as_deref(),
            machine: e.machine_id.as_deref(),
            workspace: e.workspace_id.as_deref(),
            session: e.session_id.as_deref(),
        },
    )
}

/// Channel ids as the alert carries them.
pub(crate) fn channel_names(channels: &[uuid::Uuid]) -> Vec<String> {
    channels.iter().map(uuid::Uuid::to_string).collect()
}

/// One consistent read of the configuration.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) budgets: HashMap<String, Vec<Budget>>,
    pub(crate) policies: HashMap<String, Vec<Policy>>,
    pub(crate) rules: Vec<Rule>,
}

/// The current snapshot, shared by the processor tasks.
#[derive(Clone, Default)]
pub(crate) struct Governance(Arc<RwLock<Arc<Snapshot>>>);

impl Governance {
    pub(crate) fn current(&self) -> Arc<Snapshot> {
        // A panic while swapping the Arc leaves a whole snapshot: use it.
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, s: Snapshot) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(s);
    }

    /// Load now.
    pub(crate) async fn load(pool: &PgPool) -> agentops_runtime::Result<Governance> {
        let g = Governance::default();
        g.set(load_snapshot(pool).await?);
        Ok(g)
    }

    /// Reload every `every` until shutdown (a failed reload keeps the
    /// last). Run supervised (`governance_reload`, restarted on failure).
    pub(crate) async fn watch(
        self,
        pool: PgPool,
        every: Duration,
        shutdown: CancellationToken,
    ) -> agentops_runtime::Result<()> {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            match load_snapshot(&pool).await {
                Ok(s) => self.set(s),
                Err(e) => {
                    tracing::warn!(error = %e, "governance reload failed; keeping the last")
                }
            }
        }
    }
}

fn by_org<T: Configuration>(items: Vec<Stored<T>>) -> HashMap<String, Vec<Stored<T>>> {
    let mut out: HashMap<String, Vec<Stored<T>>> = HashMap::new();
    for item in items {
        out.entry(item.org_id.clone()).or_default().push(item);
    }
    out
}

async fn load_snapshot(pool: &PgPool) -> Result<Snapshot, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    Ok(Snapshot {
        budgets: by_org(load(&mut conn, None, false).await?),
        policies: by_org(load(&mut conn, None, true).await?),
        rules: load(&mut conn, None, true).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_events() {
        let mut e = AgentEvent {
            agent_id: "a1".into(),
            workflow_id: Some("w".into()),
            model: Some("gpt-4o".into()),
            ..Default::default()
        };
        e.attributes.insert("team".into(), "pay".into());
        let scope = |k: &str, v: &str| Scope::parse(k, Some(v)).unwrap();
        assert!(in_scope(&Scope::org(), &e));
        assert!(in_scope(&scope("agent", "a1"), &e));
        assert!(!in_scope(&scope("agent", "a2"), &e));
        assert!(in_scope(&scope("tag", "team=pay"), &e));
        assert!(!in_scope(&scope("tag", "team=ops"), &e));
    }
}
