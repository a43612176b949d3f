//! Directives: agents paused or killed (by a budget, a policy or an admin,
//! in `agent_controls`) are told so in the gateway's answers to their events,
//! so SDKs can stop them. Controls are cached per org for
//! `directive_cache_ttl_ms`; a failed or slow (> 250 ms) refresh serves the
//! last known set until the next one (directives are advice, never a reason
//! to refuse or delay events).
//!
//! `GET /v1/directives?agent_id=&project_id=&machine_id=&workspace_id=&session_id=`
//! answers the controls on any of the named agent and hierarchy scopes
//! (`scope_controls`: a project, machine, workspace or session paused by
//! a budget of that scope or an operator). The collector's Claude Code
//! hook asks it before each tool call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::RwLock;

/// One directive in a response, read as is from a row of `agent_controls`.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub(crate) struct Directive {
    pub(crate) agent_id: String,
    /// `pause` or `kill`.
    pub(crate) action: String,
    pub(crate) reason: String,
}

/// A control on anything an event names, as `GET /v1/directives` answers
/// it: `scope` is `agent`, `project`, `machine`, `workspace` or `session`.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow)]
pub(crate) struct ScopeDirective {
    pub(crate) scope: String,
    pub(crate) id: String,
    /// `pause` or `kill`.
    pub(crate) action: String,
    pub(crate) reason: String,
}

/// The scopes `GET /v1/directives` takes, in answer order, with their
/// query parameter.
pub(crate) const SCOPES: [(&str, &str); 5] = [
    ("agent", "agent_id"),
    ("project", "project_id"),
    ("machine", "machine_id"),
    ("workspace", "workspace_id"),
    ("session", "session_id"),
];

/// Longest a request waits for the controls of its org.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(250);

/// One org's controls.
#[derive(Default)]
struct Controls {
    by_agent: HashMap<String, Directive>,
    /// (scope kind, value) → directive, for the hierarchy's scopes.
    by_scope: HashMap<(String, String), ScopeDirective>,
}

struct OrgControls {
    loaded: Instant,
    controls: Arc<Controls>,
}

pub(crate) struct Directives {
    pool: PgPool,
    ttl: Duration,
    orgs: RwLock<HashMap<String, OrgControls>>,
}

impl Directives {
    pub(crate) fn new(pool: PgPool, ttl: Duration) -> Directives {
        Directives {
            pool,
            ttl,
            orgs: RwLock::new(HashMap::new()),
        }
    }

    async fn load(&self, org: &str) -> Result<Controls, sqlx::Error> {
        let agents = sqlx::query_as::<_, Directive>(
            "SELECT agent_id, action, reason FROM agent_controls WHERE org_id = $1",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        let scopes = sqlx::query_as::<_, ScopeDirective>(
            "SELECT scope_kind AS scope, scope_value AS id, action, reason
             FROM scope_controls WHERE org_id = $1",
        )
        .bind(org)
        .fetch_all(&self.pool)
        .await?;
        Ok(Controls {
            by_agent: agents
                .into_iter()
                .map(|d| (d.agent_id.clone(), d))
                .collect(),
            by_scope: scopes
                .into_iter()
                .map(|d| ((d.scope.clone(), d.id.clone()), d))
                .collect(),
        })
    }

    async fn controls(&self, org: &str) -> Arc<Controls> {
        if let Some(c) = self.orgs.read().await.get(org) {
            if c.loaded.elapsed() < self.ttl {
                return c.controls.clone();
            }
        }
        // Directives are advice: never hold an acknowledged batch's answer long.
        let loaded = match tokio::time::timeout(LOOKUP_TIMEOUT, self.load(org)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        };
        let mut orgs = self.orgs.write().await;
        if orgs.len() > 100_000 {
            orgs.clear();
        }
        let controls = match loaded {
            Ok(c) => Arc::new(c),
            Err(e) => {
                // Serve the last known set until the next refresh.
                tracing::warn!(error = %e, "agent controls unavailable; serving the last known");
                orgs.get(org)
                    .map(|c| c.controls.clone())
                    .unwrap_or_default()
            }
        };
        orgs.insert(
            org.to_owned(),
            OrgControls {
                loaded: Instant::now(),
                controls: controls.clone(),
            },
        );
        controls
    }

    /// The directives for these agents of `org` (each agent once, sorted).
    pub(crate) async fn for_agents<'a>(
        &self,
        org: &str,
        agents: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Directive> {
        let controls = self.controls(org).await;
        if controls.by_agent.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<Directive> = agents
            .into_iter()
            .filter_map(|a| controls.by_agent.get(a).cloned())
            .collect();
        out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        out.dedup();
        out
    }

    /// The directives on any of `named` (scope kind of [`SCOPES`], value)
    /// of `org`, in [`SCOPES`] order.
    pub(crate) async fn for_scopes(
        &self,
        org: &str,
        named: &[(&str, &str)],
    ) -> Vec<ScopeDirective> {
        let controls = self.controls(org).await;
        let mut out = Vec::new();
        for (kind, _) in SCOPES {
            for (k, v) in named.iter().filter(|(k, _)| *k == kind) {
                let d = if *k == "agent" {
                    controls.by_agent.get(*v).map(|d| ScopeDirective {
                        scope: "agent".into(),
                        id: d.agent_id.clone(),
                        action: d.action.clone(),
                        reason: d.reason.clone(),
                    })
                } else {
                    controls
                        .by_scope
                        .get(&((*k).to_owned(), (*v).to_owned()))
                        .cloned()
                };
                out.extend(d);
            }
        }
        out
    }
}
