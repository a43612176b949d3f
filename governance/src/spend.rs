//! Spend in a scope: the one query behind both the budget status the
//! console reads (`GET /v1/budgets/status`) and the budget crossings and
//! cost rules the processors alert on, so the two cannot disagree; and the
//! SQL filters that select a scope in the aggregates.
//!
//! Org, agent, workflow and model scopes read the aggregates: whole UTC
//! days from the daily level, the hours around them from the hourly one
//! ([`day_split`]; a window starts on a whole hour as far as spend goes);
//! the org from its own levels (`agg_org_1h`/`agg_org_1d`, a row per
//! bucket), the others from the levels grouped by agent, workflow and
//! model (`agg_agent_*`, `agg_workflow_*`, `agg_model_*`). A month's org
//! budget thus reads about 30 rows. Tag scopes read the per-tag levels
//! (`agg_tag_1h`/`agg_tag_1d`) when their key is one of the rolled-up
//! `database.storage.tag_keys` ([`set_tag_keys`]), the raw events
//! otherwise. The hierarchy's scopes (project, machine, workspace,
//! session) read the events through their partial indexes
//! (`events_org_project` and the like: only events that name one).

use agentops_runtime::storage::family_for;
use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::scope::{Scope, ScopeKind};

/// The aggregate column a scope kind filters on (`None`: org, no filter;
/// tags have none).
fn agg_column(kind: ScopeKind) -> Option<&'static str> {
    match kind {
        ScopeKind::Agent => Some("agent_id"),
        ScopeKind::Workflow => Some("workflow_id"),
        ScopeKind::Model => Some("model"),
        _ => None,
    }
}

/// The aggregate levels (`{family}_1h`, `{family}_1d`) keyed by the column
/// of a scope kind alone (the per-tag ones for tags).
fn agg_family(kind: ScopeKind) -> &'static str {
    match kind {
        ScopeKind::Tag => "agg_tag",
        k => family_for(agg_column(k).as_slice()),
    }
}

/// The tag keys the per-tag levels hold; `None` until [`set_tag_keys`]:
/// the default ones.
static TAG_KEYS: std::sync::RwLock<Option<Vec<String>>> = std::sync::RwLock::new(None);

/// Read tag scopes of these keys from the per-tag levels (the
/// configuration's `database.storage.tag_keys`; process-wide, set once at
/// start by each component that reads spend).
pub fn set_tag_keys(keys: &[String]) {
    *TAG_KEYS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(keys.to_vec());
}

/// Whether the per-tag levels hold attribute `key`.
pub fn rolled_up(key: &str) -> bool {
    match &*TAG_KEYS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(keys) => keys.iter().any(|k| k == key),
        None => agentops_runtime::storage::DEFAULT_TAG_KEYS.contains(&key),
    }
}

/// Spend of `org` in `scope` within `[start, end)` (`end` `None`: up to
/// now and beyond).
pub async fn spend_in_scope(
    conn: &mut sqlx::PgConnection,
    org: &str,
    scope: &Scope,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> Result<f64, sqlx::Error> {
    if let Some(col) = scope.kind().event_column() {
        // The hierarchy: its events, through their partial index.
        return sqlx::query_scalar(&format!(
            "SELECT COALESCE(sum(cost_usd), 0)::float8 FROM events
             WHERE org_id = $1 AND ts >= $2 AND ($3::timestamptz IS NULL OR ts < $3)
               AND {col} = $4"
        ))
        .bind(org)
        .bind(start)
        .bind(end)
        .bind(scope.value().unwrap_or_default())
        .fetch_one(conn)
        .await;
    }
    let tag = scope.tag();
    if let Some((k, v)) = tag.filter(|(k, _)| !rolled_up(k)) {
        return sqlx::query_scalar(
            "SELECT COALESCE(sum(cost_usd), 0)::float8 FROM events
             WHERE org_id = $1 AND ts >= $2 AND ($3::timestamptz IS NULL OR ts < $3)
               AND attributes->>$4 = $5",
        )
        .bind(org)
        .bind(start)
        .bind(end)
        .bind(k)
        .bind(v)
        .fetch_one(conn)
        .await;
    }
    let column = agg_column(scope.kind());
    let filter = match (column, tag) {
        (Some(c), _) => format!(" AND {c} = $6"),
        (None, Some(_)) => " AND tag_key = $6 AND tag_value = $7".to_owned(),
        (None, None) => String::new(),
    };
    // The levels keyed by the scope's column alone (or its tag); the whole
    // org: its own levels (a row per bucket).
    let family = agg_family(scope.kind());
    // Hours before the first whole day, whole days, hours after the last.
    let sql = format!(
        "SELECT COALESCE(sum(cost_usd), 0)::float8 FROM (
           SELECT cost_usd FROM {family}_1h
           WHERE org_id = $1 AND bucket >= $2 AND bucket < $4{filter}
           UNION ALL
           SELECT cost_usd FROM {family}_1d
           WHERE org_id = $1 AND bucket >= $4 AND ($5::timestamptz IS NULL OR bucket < $5){filter}
           UNION ALL
           SELECT cost_usd FROM {family}_1h
           WHERE org_id = $1 AND bucket >= $5 AND bucket < $3{filter}) s"
    );
    let (days_from, days_to) = day_split(start, end);
    let mut q = sqlx::query_scalar(&sql)
        .bind(org)
        .bind(start)
        .bind(end)
        .bind(days_from)
        .bind(days_to);
    if column.is_some() {
        q = q.bind(scope.value().unwrap_or_default());
    }
    if let Some((k, v)) = tag {
        q = q.bind(k).bind(v);
    }
    q.fetch_one(conn).await
}

/// The whole UTC days `[from, to)` inside `[start, end)` (`to` `None`: up to
/// the latest bucket, for an open end); when the window holds no whole day,
/// an empty range at `end` (everything is read from the hours).
pub fn day_split(
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let day = Duration::days(1);
    let floor = |t: DateTime<Utc>| t.duration_trunc(day).unwrap_or(t);
    let from = if floor(start) == start {
        start
    } else {
        floor(start) + day
    };
    match end {
        None => (from, None),
        Some(e) if floor(e) > from => (from, Some(floor(e))),
        Some(e) => (e, Some(e)),
    }
}

/// A SQL condition on an aggregate relation (`agg_1m`/`agg_1h`/`agg_1d`)
/// selecting the scope, with the scope value bound as parameter `$n`;
/// `None` for tag scopes (the aggregates are not grouped by attributes: use
/// `events`).
pub fn agg_filter(scope: &Scope, n: usize) -> Option<(String, Option<String>)> {
    match (scope.kind(), agg_column(scope.kind())) {
        (k, _) if k == ScopeKind::Tag || k.is_hierarchy() => None,
        (_, None) => Some(("TRUE".into(), None)),
        (_, Some(c)) => Some((format!("{c} = ${n}"), scope.value().map(str::to_owned))),
    }
}

/// Where the spend of a scope is read from, as SQL to build other queries
/// on (e.g. the agents that spent in it).
#[derive(Debug, Clone, PartialEq)]
pub struct SpendSource {
    /// `FROM ... WHERE org_id = $1 AND <time> >= $2 AND <scope>`; `$3`, `$4` follow.
    pub from_where: String,
    pub binds: Vec<String>,
}

/// The [`SpendSource`] of `scope`: an hourly level keyed by `agent_id`
/// and the scope's column (`agg_agent_1h` or `agg_1h`), or `events` for tags.
pub fn spend_source(scope: &Scope) -> SpendSource {
    if let Some(col) = scope.kind().event_column() {
        return SpendSource {
            from_where: format!("FROM events WHERE org_id = $1 AND ts >= $2 AND {col} = $3"),
            binds: scope.value().map(str::to_owned).into_iter().collect(),
        };
    }
    match (agg_filter(scope, 3), scope.tag()) {
        (Some((filter, v)), _) => SpendSource {
            from_where: format!(
                "FROM {}_1h WHERE org_id = $1 AND bucket >= $2 AND {filter}",
                // Keyed by `agent_id` (and the scope's column).
                family_for(
                    &std::iter::once("agent_id")
                        .chain(agg_column(scope.kind()))
                        .collect::<Vec<_>>()
                )
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeKind as Kind;

    fn scope(k: &str, v: &str) -> Scope {
        Scope::parse(k, Some(v)).unwrap()
    }

    #[test]
    fn scopes_filter_aggregates() {
        assert_eq!(
            agg_filter(&scope("model", "gpt-4o"), 3),
            Some(("model = $3".into(), Some("gpt-4o".into())))
        );
        assert_eq!(agg_filter(&Scope::org(), 3), Some(("TRUE".into(), None)));
        assert_eq!(agg_filter(&scope("tag", "team=pay"), 3), None);
    }

    #[test]
    fn windows_split_into_whole_days_and_the_hours_around_them() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // A month so far: all whole days, open or bounded by the period end.
        let month = t("2026-12-01T00:00:00Z");
        assert_eq!(day_split(month, None), (month, None));
        let next = t("2027-01-01T00:00:00Z");
        assert_eq!(day_split(month, Some(next)), (month, Some(next)));
        // Ragged edges: hours before the first whole day and after the last.
        let (a, b) = (t("2026-12-03T05:00:00Z"), t("2026-12-06T17:00:00Z"));
        assert_eq!(
            day_split(a, Some(b)),
            (t("2026-12-04T00:00:00Z"), Some(t("2026-12-06T00:00:00Z")))
        );
        assert_eq!(day_split(a, None), (t("2026-12-04T00:00:00Z"), None));
        // No whole day inside: an empty range at the end, hours only.
        let (c, d) = (t("2026-12-03T05:00:00Z"), t("2026-12-04T03:00:00Z"));
        assert_eq!(day_split(c, Some(d)), (d, Some(d)));
        let (e, f) = (t("2026-12-03T05:00:00Z"), t("2026-12-03T09:00:00Z"));
        assert_eq!(day_split(e, Some(f)), (f, Some(f)));
    }

    #[test]
    fn each_scope_reads_the_levels_keyed_by_its_column_alone() {
        let got: Vec<&str> = [
            ScopeKind::Org,
            ScopeKind::Agent,
            ScopeKind::Workflow,
            ScopeKind::Model,
            ScopeKind::Tag,
        ]
        .into_iter()
        .map(agg_family)
        .collect();
        assert_eq!(
            got,
            [
                "agg_org",
                "agg_agent",
                "agg_workflow",
                "agg_model",
                "agg_tag"
            ]
        );
    }

    #[test]
    fn spend_is_read_from_hourly_aggregates_or_tagged_events() {
        let org = spend_source(&Scope::org());
        assert!(
            org.from_where.starts_with("FROM agg_agent_1h"),
            "{}",
            org.from_where
        );
        assert!(org.binds.is_empty());
        let agent = spend_source(&scope("agent", "a1"));
        assert!(agent.from_where.starts_with("FROM agg_agent_1h"));
        assert!(agent.from_where.ends_with("agent_id = $3"));
        let model = spend_source(&scope("model", "m"));
        assert!(model.from_where.starts_with("FROM agg_1h"));
        assert_eq!(agent.binds, ["a1"]);
        let tag = spend_source(&scope("tag", "team=pay"));
        assert!(tag.from_where.starts_with("FROM events"));
        assert_eq!(tag.binds, ["team", "pay"]);
        for k in Kind::HIERARCHY {
            let s = spend_source(&scope(k.as_str(), "x"));
            let col = k.event_column().unwrap();
            assert!(s.from_where.starts_with("FROM events"), "{}", s.from_where);
            assert!(s.from_where.ends_with(&format!("{col} = $3")));
            assert_eq!(s.binds, ["x"]);
            assert_eq!(agg_filter(&scope(k.as_str(), "x"), 3), None);
        }
    }
}
