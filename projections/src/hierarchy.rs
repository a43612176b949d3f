//! The coding-agent hierarchy (contract v2): `projects`, `machines`,
//! `workspaces` and `agent_sessions` (`sessions` holds the people's sign-ins), one row each, upserted from the new events
//! of a batch that name them (`project_id`, `machine_id`, `workspace_id`,
//! `session_id`), in the batch's transaction.
//!
//! Every column is an order-independent fold, so a rebuild that reads the
//! log in other batches ends with the same rows: totals add, `first_seen`
//! / `last_seen` take the least / greatest time, a descriptive column
//! (a machine's name, a session's branch) takes the value of the latest
//! event that has one, and a session's `status` / `ended_at` come from its
//! latest `run_completed` / `run_failed` (running until then).
//!
//! Rows are written in key order (one statement per table), so concurrent
//! workers lock them in the same order. Cost corrections move the `cost_usd`
//! of every row their event counts in ([`apply_cost_deltas`]).

use std::collections::BTreeMap;
use std::sync::OnceLock;

// The count columns, in bind order.
use agentops_runtime::storage::HIERARCHY_COUNTS as COUNTS;
use agentops_schemas::{AgentEvent, EventType};
use sqlx::PgConnection;

use crate::rows::ts;

/// Where a descriptive column's value comes from.
#[derive(Clone, Copy)]
enum Source {
    /// An event attribute (set by the collector).
    Attr(&'static str),
    AgentId,
    Project,
    Machine,
    Workspace,
    Model,
}

impl Source {
    fn of(self, e: &AgentEvent) -> Option<&str> {
        match self {
            Source::Attr(k) => e.attributes.get(k).map(String::as_str),
            Source::AgentId => Some(e.agent_id.as_str()),
            Source::Project => e.project_id.as_deref(),
            Source::Machine => e.machine_id.as_deref(),
            Source::Workspace => e.workspace_id.as_deref(),
            Source::Model => e.model.as_deref(),
        }
    }
}

/// One hierarchy table.
struct Table {
    name: &'static str,
    /// The key column (after `org_id`), and the event field it comes from.
    key: &'static str,
    key_of: fn(&AgentEvent) -> Option<&str>,
    /// Descriptive columns: the latest event's value wins.
    extras: &'static [(&'static str, Source)],
    /// Sessions: `status` and `ended_at` from the terminal run events.
    lifecycle: bool,
}

const TABLES: [Table; 4] = [
    Table {
        name: "projects",
        key: "project_id",
        key_of: |e| e.project_id.as_deref(),
        extras: &[("url", Source::Attr("project_url"))],
        lifecycle: false,
    },
    Table {
        name: "machines",
        key: "machine_id",
        key_of: |e| e.machine_id.as_deref(),
        extras: &[
            ("name", Source::Attr("machine_name")),
            ("os", Source::Attr("machine_os")),
        ],
        lifecycle: false,
    },
    Table {
        name: "workspaces",
        key: "workspace_id",
        key_of: |e| e.workspace_id.as_deref(),
        extras: &[
            ("project_id", Source::Project),
            ("machine_id", Source::Machine),
            ("path", Source::Attr("workspace_path")),
        ],
        lifecycle: false,
    },
    Table {
        name: "agent_sessions",
        key: "session_id",
        key_of: |e| e.session_id.as_deref(),
        extras: &[
            ("agent_id", Source::AgentId),
            ("project_id", Source::Project),
            ("machine_id", Source::Machine),
            ("workspace_id", Source::Workspace),
            ("git_branch", Source::Attr("git_branch")),
            ("model", Source::Model),
        ],
        lifecycle: true,
    },
];

/// What a batch adds to one row.
struct Delta {
    first: i64,
    last: i64,
    counts: [i64; COUNTS.len()],
    cost: f64,
    /// Per extra: (time of the event it came from, value).
    extras: Vec<Option<(i64, String)>>,
    /// Sessions: the latest terminal event (time, status).
    ended: Option<(i64, &'static str)>,
}

impl Delta {
    fn new(n_extras: usize, t: i64) -> Self {
        Delta {
            first: t,
            last: t,
            counts: [0; COUNTS.len()],
            cost: 0.0,
            extras: vec![None; n_extras],
            ended: None,
        }
    }

    fn add(&mut self, table: &Table, e: &AgentEvent) {
        let t = e.timestamp;
        self.first = self.first.min(t);
        self.last = self.last.max(t);
        let kind = e.kind();
        let tokens = [
            e.input_tokens,
            e.output_tokens,
            e.cache_read_tokens,
            e.cache_write_tokens,
            e.reasoning_tokens,
        ];
        let mut add = [
            1,
            i64::from(kind == Some(EventType::LlmCall)),
            i64::from(kind == Some(EventType::ToolCall)),
            i64::from(e.is_error()),
            0,
            0,
            0,
            0,
            0,
        ];
        for (slot, n) in add[4..].iter_mut().zip(tokens) {
            *slot = n.unwrap_or(0);
        }
        // Saturating: validation bounds every count; a sum past int8 is
        // refused by the database (the record is dead-lettered), never wrapped.
        for (c, a) in self.counts.iter_mut().zip(add) {
            *c = c.saturating_add(a);
        }
        self.cost += e.cost_usd.unwrap_or(0.0);
        for (slot, (_, src)) in self.extras.iter_mut().zip(table.extras) {
            if let Some(v) = src.of(e) {
                if slot.as_ref().is_none_or(|(at, _)| t >= *at) {
                    *slot = Some((t, v.to_owned()));
                }
            }
        }
        if table.lifecycle {
            let status = match kind {
                Some(EventType::RunCompleted) => Some("completed"),
                Some(EventType::RunFailed) => Some("failed"),
                _ => None,
            };
            if let Some(s) = status {
                if self.ended.is_none_or(|(at, _)| t >= at) {
                    self.ended = Some((t, s));
                }
            }
        }
    }
}

/// The upsert of one table (built once per table).
fn upsert_sql(i: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    &SQL.get_or_init(|| TABLES.iter().map(build_upsert).collect())[i]
}

fn build_upsert(t: &Table) -> String {
    let mut cols: Vec<String> = vec!["org_id".into(), t.key.into()];
    let mut types: Vec<&str> = vec!["text", "text"];
    for (c, _) in t.extras {
        cols.push((*c).into());
        types.push("text");
    }
    cols.push("first_seen".into());
    cols.push("last_seen".into());
    types.extend(["timestamptz", "timestamptz"]);
    for c in COUNTS {
        cols.push(c.into());
        types.push("int8");
    }
    cols.push("cost_usd".into());
    types.push("float8");
    if t.lifecycle {
        cols.push("status".into());
        cols.push("ended_at".into());
        types.extend(["text", "timestamptz"]);
    }
    let params: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
        .collect();
    let mut set: Vec<String> = Vec::new();
    for (c, _) in t.extras {
        set.push(format!(
            "{c} = CASE WHEN EXCLUDED.last_seen >= h.last_seen
                 THEN COALESCE(EXCLUDED.{c}, h.{c}) ELSE COALESCE(h.{c}, EXCLUDED.{c}) END"
        ));
    }
    set.push("first_seen = LEAST(h.first_seen, EXCLUDED.first_seen)".into());
    set.push("last_seen = GREATEST(h.last_seen, EXCLUDED.last_seen)".into());
    for c in COUNTS.iter().chain(&["cost_usd"]) {
        set.push(format!("{c} = h.{c} + EXCLUDED.{c}"));
    }
    if t.lifecycle {
        set.push(
            "status = CASE WHEN EXCLUDED.ended_at IS NOT NULL
                  AND (h.ended_at IS NULL OR EXCLUDED.ended_at >= h.ended_at)
                 THEN EXCLUDED.status ELSE h.status END"
                .into(),
        );
        set.push("ended_at = GREATEST(h.ended_at, EXCLUDED.ended_at)".into());
    }
    set.push("updated_at = now()".into());
    format!(
        "INSERT INTO {name} AS h ({cols})
SELECT * FROM UNNEST({params}) AS t({cols})
ON CONFLICT (org_id, {key}) DO UPDATE SET {set}",
        name = t.name,
        key = t.key,
        cols = cols.join(", "),
        params = params.join(", "),
        set = set.join(",\n    "),
    )
}

/// Fold the new events per table and key (sorted: the lock order).
fn deltas<'a>(new: &[&'a AgentEvent]) -> Vec<BTreeMap<(&'a str, &'a str), Delta>> {
    let mut out: Vec<BTreeMap<(&str, &str), Delta>> =
        TABLES.iter().map(|_| BTreeMap::new()).collect();
    for e in new {
        for (t, rows) in TABLES.iter().zip(out.iter_mut()) {
            if let Some(k) = (t.key_of)(e) {
                rows.entry((e.org_id.as_str(), k))
                    .or_insert_with(|| Delta::new(t.extras.len(), e.timestamp))
                    .add(t, e);
            }
        }
    }
    out
}

/// Upsert the rows the new events of a batch touch.
pub(crate) async fn upsert(tx: &mut PgConnection, new: &[&AgentEvent]) -> Result<(), sqlx::Error> {
    if !new.iter().any(|e| e.has_hierarchy()) {
        return Ok(());
    }
    for (i, (t, rows)) in TABLES.iter().zip(deltas(new)).enumerate() {
        if rows.is_empty() {
            continue;
        }
        let mut q = sqlx::query(upsert_sql(i))
            .bind(rows.keys().map(|k| k.0).collect::<Vec<_>>())
            .bind(rows.keys().map(|k| k.1).collect::<Vec<_>>());
        for x in 0..t.extras.len() {
            q = q.bind(
                rows.values()
                    .map(|d| d.extras[x].as_ref().map(|(_, v)| v.as_str()))
                    .collect::<Vec<_>>(),
            );
        }
        q = q
            .bind(rows.values().map(|d| ts(d.first)).collect::<Vec<_>>())
            .bind(rows.values().map(|d| ts(d.last)).collect::<Vec<_>>());
        for c in 0..COUNTS.len() {
            q = q.bind(rows.values().map(|d| d.counts[c]).collect::<Vec<_>>());
        }
        q = q.bind(rows.values().map(|d| d.cost).collect::<Vec<_>>());
        if t.lifecycle {
            q = q
                .bind(
                    rows.values()
                        .map(|d| d.ended.map_or("running", |(_, s)| s))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    rows.values()
                        .map(|d| d.ended.map(|(at, _)| ts(at)))
                        .collect::<Vec<_>>(),
                );
        }
        q.execute(&mut *tx).await?;
    }
    count_sessions(tx, new).await
}

/// The statement adding the batch's new (place, session) pairs to
/// `session_places` and each new pair to its place's `sessions` count.
const COUNT_SESSIONS: &str = "
WITH ins AS (
    INSERT INTO session_places (org_id, kind, value, session_id)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[])
    ORDER BY 1, 2, 3, 4
    ON CONFLICT DO NOTHING
    RETURNING org_id, kind, value),
n AS (SELECT org_id, kind, value, count(*) AS n FROM ins GROUP BY 1, 2, 3),
p AS (UPDATE projects h SET sessions = h.sessions + n.n FROM n
      WHERE n.kind = 'project' AND h.org_id = n.org_id AND h.project_id = n.value),
m AS (UPDATE machines h SET sessions = h.sessions + n.n FROM n
      WHERE n.kind = 'machine' AND h.org_id = n.org_id AND h.machine_id = n.value)
UPDATE workspaces h SET sessions = h.sessions + n.n FROM n
WHERE n.kind = 'workspace' AND h.org_id = n.org_id AND h.workspace_id = n.value";

/// Count each session once in every project, machine and workspace it names
/// (the rows were upserted just before, in this transaction).
async fn count_sessions(tx: &mut PgConnection, new: &[&AgentEvent]) -> Result<(), sqlx::Error> {
    let mut pairs = std::collections::BTreeSet::new();
    for e in new {
        let Some(s) = e.session_id.as_deref() else {
            continue;
        };
        for (kind, v) in [
            ("project", &e.project_id),
            ("machine", &e.machine_id),
            ("workspace", &e.workspace_id),
        ] {
            if let Some(v) = v {
                pairs.insert((e.org_id.as_str(), kind, v.as_str(), s));
            }
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    sqlx::query(COUNT_SESSIONS)
        .bind(pairs.iter().map(|p| p.0).collect::<Vec<_>>())
        .bind(pairs.iter().map(|p| p.1).collect::<Vec<_>>())
        .bind(pairs.iter().map(|p| p.2).collect::<Vec<_>>())
        .bind(pairs.iter().map(|p| p.3).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The hierarchy of a corrected event: (org, [project, machine, workspace,
/// session] in table order).
pub(crate) type Place = (String, [Option<String>; 4]);

/// Move the `cost_usd` of every row a corrected event counts in by its
/// change (`deltas`: the event's place and cost difference).
pub(crate) async fn apply_cost_deltas(
    tx: &mut PgConnection,
    deltas: &[(Place, f64)],
) -> Result<(), sqlx::Error> {
    for (i, t) in TABLES.iter().enumerate() {
        let mut sums: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for ((org, ids), d) in deltas {
            if let Some(id) = &ids[i] {
                *sums.entry((org.as_str(), id.as_str())).or_default() += d;
            }
        }
        if sums.is_empty() {
            continue;
        }
        let sql = format!(
            "UPDATE {name} h SET cost_usd = h.cost_usd + d.delta, updated_at = now()
             FROM UNNEST($1::text[], $2::text[], $3::float8[]) AS d(org_id, id, delta)
             WHERE h.org_id = d.org_id AND h.{key} = d.id",
            name = t.name,
            key = t.key
        );
        sqlx::query(&sql)
            .bind(sums.keys().map(|k| k.0).collect::<Vec<_>>())
            .bind(sums.keys().map(|k| k.1).collect::<Vec<_>>())
            .bind(sums.values().copied().collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The hierarchy tables and their key columns, in table order.
pub const HIERARCHY_KEYS: [(&str, &str); 4] = [
    ("projects", "project_id"),
    ("machines", "machine_id"),
    ("workspaces", "workspace_id"),
    ("agent_sessions", "session_id"),
];

impl Source {
    /// The same value in SQL over `events`.
    fn sql(self) -> String {
        match self {
            Source::Attr(k) => format!("attributes->>'{k}'"),
            Source::AgentId => "agent_id".into(),
            Source::Project => "project_id".into(),
            Source::Machine => "machine_id".into(),
            Source::Workspace => "workspace_id".into(),
            Source::Model => "model".into(),
        }
    }
}

/// The definition of table `i` of [`HIERARCHY_KEYS`]: its rows for org
/// `$1` computed from `events`, columns in the upsert's order (org, key,
/// extras, first/last seen, counts, cost, then `status`, `ended_at` for
/// sessions, `sessions` (distinct sessions named) for the others). What the
/// writer's folds must equal, and how the scale benchmark fills the tables.
pub fn hierarchy_select_sql(i: usize) -> String {
    let t = &TABLES[i];
    let mut cols: Vec<String> = vec!["org_id".into(), t.key.into()];
    for (_, src) in t.extras {
        let v = src.sql();
        cols.push(format!(
            "(array_agg({v} ORDER BY ts DESC) FILTER (WHERE {v} IS NOT NULL))[1]"
        ));
    }
    cols.push("min(ts)".into());
    cols.push("max(ts)".into());
    cols.push("count(*)".into());
    cols.push("count(*) FILTER (WHERE type = 'llm_call')".into());
    cols.push("count(*) FILTER (WHERE type = 'tool_call')".into());
    cols.push(
        "count(*) FILTER (WHERE type = 'run_failed' OR status IN ('error', 'failed'))".into(),
    );
    for c in &COUNTS[4..] {
        cols.push(format!("COALESCE(sum({c}), 0)::int8"));
    }
    cols.push("COALESCE(sum(cost_usd), 0)::float8".into());
    if !t.lifecycle {
        cols.push("count(DISTINCT session_id)".into());
    }
    if t.lifecycle {
        cols.push(
            "COALESCE((array_agg(CASE WHEN type = 'run_completed' THEN 'completed' ELSE 'failed' END
                ORDER BY ts DESC) FILTER (WHERE type IN ('run_completed', 'run_failed')))[1],
                'running')"
                .into(),
        );
        cols.push("max(ts) FILTER (WHERE type IN ('run_completed', 'run_failed'))".into());
    }
    format!(
        "SELECT {} FROM events WHERE org_id = $1 AND {key} IS NOT NULL GROUP BY org_id, {key}",
        cols.join(", "),
        key = t.key
    )
}

/// Fill the hierarchy tables of org `$1` from its events (for data sets
/// generated in the database, where the writer did not run): one statement
/// per table of [`HIERARCHY_KEYS`], in that order, then one filling
/// `session_places`; for an org whose rows are not there yet.
pub fn hierarchy_from_events_sql() -> Vec<String> {
    TABLES
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut cols: Vec<&str> = vec!["org_id", t.key];
            cols.extend(t.extras.iter().map(|(c, _)| *c));
            cols.extend(["first_seen", "last_seen"]);
            cols.extend(COUNTS);
            cols.push("cost_usd");
            if t.lifecycle {
                cols.extend(["status", "ended_at"]);
            } else {
                cols.push("sessions");
            }
            format!(
                "INSERT INTO {} ({}) {}",
                t.name,
                cols.join(", "),
                hierarchy_select_sql(i)
            )
        })
        .chain(std::iter::once(
            // The pairs behind the session counts, for the writer to go on from.
            "INSERT INTO session_places (org_id, kind, value, session_id)
             SELECT DISTINCT org_id, k.kind, k.value, session_id
             FROM events, LATERAL (VALUES ('project', project_id), ('machine', machine_id),
                                          ('workspace', workspace_id)) k(kind, value)
             WHERE org_id = $1 AND session_id IS NOT NULL AND k.value IS NOT NULL"
                .to_owned(),
        ))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: i64, ty: &str, session: &str, machine_name: Option<&str>) -> AgentEvent {
        let mut e = AgentEvent {
            event_id: format!("{t}"),
            org_id: "o".into(),
            timestamp: t,
            agent_id: "claude-code".into(),
            event_type: ty.into(),
            input_tokens: Some(10),
            cost_usd: Some(0.5),
            project_id: Some("p".into()),
            machine_id: Some("m".into()),
            session_id: Some(session.into()),
            ..Default::default()
        };
        if let Some(n) = machine_name {
            e.attributes.insert("machine_name".into(), n.into());
        }
        e
    }

    #[test]
    fn a_batch_folds_per_table_and_key_with_the_latest_values() {
        let events = [
            ev(30, "llm_call", "s1", Some("late-name")),
            ev(10, "llm_call", "s1", Some("early-name")),
            ev(20, "run_failed", "s2", None),
            ev(40, "run_completed", "s2", None),
            ev(35, "tool_call", "s2", None),
        ];
        let refs: Vec<&AgentEvent> = events.iter().collect();
        let d = deltas(&refs);
        let project = &d[0][&("o", "p")];
        assert_eq!((project.first, project.last), (10, 40));
        assert_eq!(project.counts[..5], [5, 2, 1, 1, 50]);
        assert!((project.cost - 2.5).abs() < 1e-9);
        let machine = &d[1][&("o", "m")];
        assert_eq!(
            machine.extras[0].as_ref().map(|x| x.1.as_str()),
            Some("late-name")
        );
        assert!(d[2].is_empty(), "no workspace named");
        let s2 = &d[3][&("o", "s2")];
        assert_eq!(s2.ended, Some((40, "completed")));
        assert_eq!(d[3][&("o", "s1")].ended, None);
    }

    #[test]
    fn every_upsert_binds_as_many_arrays_as_it_names() {
        for (i, t) in TABLES.iter().enumerate() {
            let sql = upsert_sql(i);
            let binds = 2 + t.extras.len() + 2 + COUNTS.len() + 1 + if t.lifecycle { 2 } else { 0 };
            assert!(sql.contains(&format!("${binds}::")), "{sql}");
            assert!(!sql.contains(&format!("${}::", binds + 1)), "{sql}");
        }
    }
}
