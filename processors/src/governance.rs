//! The governance configuration the processors act on (budgets, alert rules,
//! policies), read from Postgres and reloaded every `governance_reload_ms`.
//! The query API's admin endpoints own these tables; the processors only read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use agentops_runtime::shutdown::CancellationToken;
use agentops_schemas::AgentEvent;
use sqlx::PgPool;

pub(crate) use agentops_runtime::governance::{Period, Scope};

/// Whether the event is in the scope.
pub(crate) fn in_scope(scope: &Scope, e: &AgentEvent) -> bool {
    scope.matches(
        &e.agent_id,
        e.workflow_id.as_deref(),
        e.model.as_deref(),
        &e.attributes,
    )
}

/// A SQL condition on an aggregate relation (`agg_1m`/`agg_1h`/`agg_1d`)
/// selecting the scope, with the scope value bound as parameter `$n`;
/// `None` for tag scopes (the aggregates are not grouped by attributes: use
/// `events`).
pub(crate) fn agg_filter(scope: &Scope, n: usize) -> Option<(String, Option<String>)> {
    use agentops_runtime::governance::ScopeKind;
    let v = scope.value().map(str::to_owned);
    Some(match scope.kind() {
        ScopeKind::Org => ("TRUE".into(), None),
        ScopeKind::Agent => (format!("agent_id = ${n}"), v),
        ScopeKind::Workflow => (format!("workflow_id = ${n}"), v),
        ScopeKind::Model => (format!("model = ${n}"), v),
        ScopeKind::Tag => return None,
    })
}

/// Where spend in a scope is read from: `agg_1h` (grouped by agent,
/// workflow and model) or, for tags, `events` (attributes are not aggregated).
pub(crate) struct SpendSource {
    /// `FROM ... WHERE org_id = $1 AND <time> >= $2 AND <scope>`; `$3`, `$4` follow.
    pub(crate) from_where: String,
    pub(crate) binds: Vec<String>,
}

pub(crate) fn spend_source(scope: &Scope) -> SpendSource {
    match (agg_filter(scope, 3), scope.tag()) {
        (Some((filter, v)), _) => SpendSource {
            from_where: format!("FROM agg_1h WHERE org_id = $1 AND bucket >= $2 AND {filter}"),
            binds: v.into_iter().collect(),
        },
        (None, tag) => {
            let (k, v) = tag.unwrap_or_default();
            SpendSource {
                from_where: "FROM events WHERE org_id = $1 AND ts >= $2 AND attributes->>$3 = $4"
                    .into(),
                binds: vec![k.to_owned(), v.to_owned()],
            }
        }
    }
}

/// Spend in `scope` of `org` within `[start, end)` (`end` `None`: up to
/// now): the projection store's figure, read by the same function as the
/// budget status the console shows
/// (`agentops_runtime::governance::spend_in_scope`), so an alert and the
/// status cannot disagree.
pub(crate) async fn spend_since(
    conn: &mut sqlx::PgConnection,
    org: &str,
    scope: &Scope,
    start: chrono::DateTime<chrono::Utc>,
    end: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<f64, sqlx::Error> {
    agentops_runtime::governance::spend_in_scope(conn, org, scope, start, end).await
}

/// `name` matches `model` exactly (case-insensitive), as a `provider/` path's
/// last segment, or as the prefix of a dated version (`gpt-4o` ⇒
/// `gpt-4o-2024-08-06`). Used by the model allow/deny lists.
pub(crate) fn model_matches(name: &str, model: &str) -> bool {
    let model = model.to_ascii_lowercase();
    let model = model.rsplit('/').next().unwrap_or(&model);
    let name = name.to_ascii_lowercase();
    model == name
        || (model.len() > name.len()
            && model.starts_with(&name)
            && matches!(model.as_bytes()[name.len()], b'-' | b'@' | b':'))
}

#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) name: String,
    pub(crate) scope: Scope,
    pub(crate) period: Period,
    pub(crate) limit_usd: f64,
    /// Percent of the limit, ascending.
    pub(crate) thresholds: Vec<f64>,
    pub(crate) pause_at_pct: Option<f64>,
    pub(crate) channels: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) scope: Scope,
    pub(crate) threshold: Option<f64>,
    pub(crate) window_secs: Option<i32>,
    pub(crate) min_runs: i32,
    pub(crate) minutes: Option<i32>,
    pub(crate) cooldown_secs: i32,
    pub(crate) channels: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) scope: Scope,
    pub(crate) names: Vec<String>,
    pub(crate) limit_value: Option<f64>,
    pub(crate) action: String,
    pub(crate) channels: Vec<String>,
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
        self.0.read().expect("governance lock").clone()
    }

    fn set(&self, s: Snapshot) {
        *self.0.write().expect("governance lock") = Arc::new(s);
    }

    /// Load now.
    pub(crate) async fn load(pool: &PgPool) -> agentops_runtime::Result<Governance> {
        let g = Governance::default();
        g.set(load(pool).await?);
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
            match load(&pool).await {
                Ok(s) => self.set(s),
                Err(e) => {
                    tracing::warn!(error = %e, "governance reload failed; keeping the last")
                }
            }
        }
    }
}

type BudgetRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    f64,
    Vec<f64>,
    Option<f64>,
    Vec<String>,
);
type RuleRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<f64>,
    Option<i32>,
    i32,
    Option<i32>,
    i32,
    Vec<String>,
);
type PolicyRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Vec<String>,
    Option<f64>,
    String,
    Vec<String>,
);

async fn load(pool: &PgPool) -> agentops_runtime::Result<Snapshot> {
    let mut snap = Snapshot::default();
    let budgets: Vec<BudgetRow> = sqlx::query_as(
        "SELECT id::text, org_id, name, scope_kind, scope_value, period, limit_usd,
                thresholds, pause_at_pct, channels::text[]
         FROM budgets ORDER BY org_id, name",
    )
    .fetch_all(pool)
    .await?;
    for (id, org_id, name, sk, sv, period, limit_usd, mut thresholds, pause_at_pct, channels) in
        budgets
    {
        let (Ok(scope), Ok(period)) = (Scope::parse(&sk, sv.as_deref()), period.parse::<Period>())
        else {
            tracing::warn!(budget = %id, "budget with an invalid scope or period skipped");
            continue;
        };
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        snap.budgets
            .entry(org_id.clone())
            .or_default()
            .push(Budget {
                id,
                org_id,
                name,
                scope,
                period,
                limit_usd,
                thresholds,
                pause_at_pct,
                channels,
            });
    }
    let rules: Vec<RuleRow> = sqlx::query_as(
        "SELECT id::text, org_id, name, kind, scope_kind, scope_value, threshold, window_secs,
                min_runs, minutes, cooldown_secs, channels::text[]
         FROM alert_rules WHERE enabled ORDER BY org_id, name",
    )
    .fetch_all(pool)
    .await?;
    for (
        id,
        org_id,
        name,
        kind,
        sk,
        sv,
        threshold,
        window_secs,
        min_runs,
        minutes,
        cooldown_secs,
        channels,
    ) in rules
    {
        let Ok(scope) = Scope::parse(&sk, sv.as_deref()) else {
            tracing::warn!(rule = %id, "alert rule with an invalid scope skipped");
            continue;
        };
        snap.rules.push(Rule {
            id,
            org_id,
            name,
            kind,
            scope,
            threshold,
            window_secs,
            min_runs,
            minutes,
            cooldown_secs,
            channels,
        });
    }
    let policies: Vec<PolicyRow> = sqlx::query_as(
        "SELECT id::text, org_id, name, kind, scope_kind, scope_value, names, limit_value,
                action, channels::text[]
         FROM policies WHERE enabled ORDER BY org_id, name",
    )
    .fetch_all(pool)
    .await?;
    for (id, org_id, name, kind, sk, sv, names, limit_value, action, channels) in policies {
        let Ok(scope) = Scope::parse(&sk, sv.as_deref()) else {
            tracing::warn!(policy = %id, "policy with an invalid scope skipped");
            continue;
        };
        snap.policies.entry(org_id).or_default().push(Policy {
            id,
            name,
            kind,
            scope,
            names,
            limit_value,
            action,
            channels,
        });
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_events_and_filter_aggregates() {
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
        assert_eq!(
            agg_filter(&scope("model", "gpt-4o"), 3),
            Some(("model = $3".into(), Some("gpt-4o".into())))
        );
        assert_eq!(agg_filter(&Scope::org(), 3), Some(("TRUE".into(), None)));
        assert_eq!(agg_filter(&scope("tag", "team=pay"), 3), None);
    }

    #[test]
    fn spend_is_read_from_hourly_aggregates_or_tagged_events() {
        let org = spend_source(&Scope::org());
        assert!(
            org.from_where.starts_with("FROM agg_1h"),
            "{}",
            org.from_where
        );
        assert!(org.binds.is_empty());
        let agent = spend_source(&Scope::parse("agent", Some("a1")).unwrap());
        assert!(agent.from_where.ends_with("agent_id = $3"));
        assert_eq!(agent.binds, ["a1"]);
        let tag = spend_source(&Scope::parse("tag", Some("team=pay")).unwrap());
        assert!(tag.from_where.starts_with("FROM events"));
        assert_eq!(tag.binds, ["team", "pay"]);
    }

    #[test]
    fn model_names_match_dated_versions() {
        assert!(model_matches("gpt-4o", "openai/GPT-4o-2024-08-06"));
        assert!(model_matches("o3", "o3"));
        assert!(!model_matches("gpt-4", "gpt-4o"));
    }
}
