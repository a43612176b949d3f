//! Directives: agents paused or killed (by a budget, a policy or an admin,
//! in `agent_controls`) are told so in the gateway's answers to their events,
//! so SDKs can stop them. Controls are cached per org for
//! `directive_cache_ttl_ms`; a failed or slow (> 250 ms) refresh serves the
//! last known set until the next one (directives are advice, never a reason
//! to refuse or delay events).

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

/// Longest a request waits for the controls of its org.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(250);

struct OrgControls {
    loaded: Instant,
    by_agent: Arc<HashMap<String, Directive>>,
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

    async fn controls(&self, org: &str) -> Arc<HashMap<String, Directive>> {
        if let Some(c) = self.orgs.read().await.get(org) {
            if c.loaded.elapsed() < self.ttl {
                return c.by_agent.clone();
            }
        }
        let query = sqlx::query_as::<_, Directive>(
            "SELECT agent_id, action, reason FROM agent_controls WHERE org_id = $1",
        )
        .bind(org)
        .fetch_all(&self.pool);
        // Directives are advice: never hold an acknowledged batch's answer long.
        let rows = match tokio::time::timeout(LOOKUP_TIMEOUT, query).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        };
        let mut orgs = self.orgs.write().await;
        if orgs.len() > 100_000 {
            orgs.clear();
        }
        let by_agent = match rows {
            Ok(rows) => Arc::new(
                rows.into_iter()
                    .map(|d| (d.agent_id.clone(), d))
                    .collect::<HashMap<_, _>>(),
            ),
            Err(e) => {
                // Serve the last known set until the next refresh.
                tracing::warn!(error = %e, "agent controls unavailable; serving the last known");
                orgs.get(org)
                    .map(|c| c.by_agent.clone())
                    .unwrap_or_default()
            }
        };
        orgs.insert(
            org.to_owned(),
            OrgControls {
                loaded: Instant::now(),
                by_agent: by_agent.clone(),
            },
        );
        by_agent
    }

    /// The directives for these agents of `org` (each agent once, sorted).
    pub(crate) async fn for_agents<'a>(
        &self,
        org: &str,
        agents: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Directive> {
        let controls = self.controls(org).await;
        if controls.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<Directive> = agents
            .into_iter()
            .filter_map(|a| controls.get(a).cloned())
            .collect();
        out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        out.dedup();
        out
    }
}
