//! The coding-agent hierarchy (contract v2): project → machine → workspace
//! → session, read from the projections' `projects`, `machines`,
//! `workspaces` and `agent_sessions` (all-time totals, upserted with the events).
//!
//! - `GET /v1/projects?sort=last_seen|cost&limit=100`, `GET /v1/machines?...`:
//!   lists with totals and status.
//! - `GET /v1/projects/{project_id}`: the project, its machines and
//!   workspaces (totals within the project) and its latest sessions;
//!   `GET /v1/machines/{machine_id}`: the machine, its projects and
//!   workspaces and latest sessions; `GET /v1/workspaces/{workspace_id}`:
//!   the workspace and its latest sessions.
//! - `GET /v1/sessions?project_id=&machine_id=&workspace_id=&status=&limit=50&cursor=`:
//!   sessions, latest first, keyset pages (`next_cursor`).
//! - `GET /v1/sessions/{session_id}?limit=1000&cursor=`: the session, its
//!   place (breadcrumbs) and its timeline (events in time order, keyset pages).
//! - `POST /v1/admin/controls/{scope_kind}/{scope_value}/pause|kill|resume`
//!   (admin): pause, kill or resume a project, machine, workspace or
//!   session; the gateway answers it to the collector's Claude Code hook.
//!
//! Ids are path segments: encode them (`github.com%2Facme%2Fshop`). Status:
//! `killed` / `paused` when a control is on the row (a session also when its
//! project, machine or workspace is), else for projects, machines and
//! workspaces `active` when seen in the last 15 minutes, else `idle`; a
//! session is `completed` / `failed` once it ended, else `running` when
//! seen in the last 15 minutes, else `idle`. Every query reads one org
//! through an index of its table (`*_org_last`, `agent_sessions_org_project`, ...;
//! the timeline through `events_org_session`).

use agentops_governance::controls::{self, ControlAction};
use agentops_governance::{Scope as Target, ScopeKind};
use agentops_runtime::keys::Scope;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::routing::{get, post};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::params::{identifier, limit_param, Query};
use crate::routes::{Access, Routes};
use crate::state::{authenticate, Shared};

/// Seen within this long: `active` (`running` for a session).
const ACTIVE: &str = "interval '15 minutes'";

/// The handlers of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        projects,
        project,
        machines,
        machine,
        workspace,
        sessions,
        session,
        pause,
        kill,
        resume
    ),
    tags((name = "hierarchy", description = "Coding-agent projects, machines, workspaces and sessions"))
)]
pub(crate) struct Doc;

pub(crate) fn routes() -> Routes {
    let read = [(Method::GET, Access::Read)];
    let admin = [(Method::POST, Access::Admin)];
    Routes::new()
        .add("/v1/projects", &read, get(projects))
        .add("/v1/projects/{project_id}", &read, get(project))
        .add("/v1/machines", &read, get(machines))
        .add("/v1/machines/{machine_id}", &read, get(machine))
        .add("/v1/workspaces/{workspace_id}", &read, get(workspace))
        .add("/v1/sessions", &read, get(sessions))
        .add("/v1/sessions/{session_id}", &read, get(session))
        .add(
            "/v1/admin/controls/{scope_kind}/{scope_value}/pause",
            &admin,
            post(pause),
        )
        .add(
            "/v1/admin/controls/{scope_kind}/{scope_value}/kill",
            &admin,
            post(kill),
        )
        .add(
            "/v1/admin/controls/{scope_kind}/{scope_value}/resume",
            &admin,
            post(resume),
        )
}

// ---------------------------------------------------------------- rows

/// The totals columns ([`Totals`]) of the row aliased `h`.
fn h_totals() -> String {
    ["first_seen", "last_seen"]
        .iter()
        .chain(&agentops_runtime::storage::HIERARCHY_COUNTS)
        .chain(&["cost_usd"])
        .map(|c| format!("h.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The same totals summed over a group of rows (`h` aliased).
const SUMMED: &str = "min(h.first_seen) AS first_seen, max(h.last_seen) AS last_seen,
    sum(h.events)::int8 AS events, sum(h.llm_calls)::int8 AS llm_calls,
    sum(h.tool_calls)::int8 AS tool_calls, sum(h.errors)::int8 AS errors,
    sum(h.input_tokens)::int8 AS input_tokens, sum(h.output_tokens)::int8 AS output_tokens,
    sum(h.cache_read_tokens)::int8 AS cache_read_tokens,
    sum(h.cache_write_tokens)::int8 AS cache_write_tokens,
    sum(h.reasoning_tokens)::int8 AS reasoning_tokens, sum(h.cost_usd)::float8 AS cost_usd";

#[derive(sqlx::FromRow)]
struct Totals {
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    events: i64,
    llm_calls: i64,
    tool_calls: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    reasoning_tokens: i64,
    cost_usd: f64,
}

impl Totals {
    fn json(&self) -> Value {
        json!({
            "first_seen": self.first_seen, "last_seen": self.last_seen,
            "events": self.events, "llm_calls": self.llm_calls, "tool_calls": self.tool_calls,
            "errors": self.errors,
            "tokens": {
                "input": self.input_tokens, "output": self.output_tokens,
                "cache_read": self.cache_read_tokens, "cache_write": self.cache_write_tokens,
                "reasoning": self.reasoning_tokens,
                "total": self.input_tokens.saturating_add(self.output_tokens)
                    .saturating_add(self.cache_read_tokens)
                    .saturating_add(self.cache_write_tokens)
                    .saturating_add(self.reasoning_tokens),
            },
            "cost_usd": self.cost_usd,
        })
    }
}

/// A project, machine or workspace row with its status.
#[derive(sqlx::FromRow)]
struct NodeRow {
    id: String,
    status: String,
    status_reason: Option<String>,
    url: Option<String>,
    name: Option<String>,
    os: Option<String>,
    project_id: Option<String>,
    machine_id: Option<String>,
    path: Option<String>,
    sessions: i64,
    #[sqlx(flatten)]
    totals: Totals,
}

impl NodeRow {
    fn json(&self) -> Value {
        let mut v = self.totals.json();
        let extra = json!({
            "id": self.id, "status": self.status, "status_reason": self.status_reason,
            "url": self.url, "name": self.name, "os": self.os,
            "project_id": self.project_id, "machine_id": self.machine_id, "path": self.path,
            "sessions": self.sessions,
        });
        merge(&mut v, extra);
        v
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// The status of a row (aliased `h`) with its control (aliased `c`).
fn node_status() -> String {
    format!(
        "CASE c.action WHEN 'kill' THEN 'killed' WHEN 'pause' THEN 'paused'
              ELSE CASE WHEN h.last_seen >= now() - {ACTIVE} THEN 'active' ELSE 'idle' END
         END AS status, c.reason AS status_reason"
    )
}

/// One kind of node: its table, key column and descriptive columns.
struct Kind {
    scope: &'static str,
    table: &'static str,
    key: &'static str,
    /// `url, name, os, project_id, machine_id, path` (NULL where the kind has none).
    extras: &'static str,
}

const PROJECT: Kind = Kind {
    scope: "project",
    table: "projects",
    key: "project_id",
    extras: "h.url, NULL::text AS name, NULL::text AS os, NULL::text AS project_id,
             NULL::text AS machine_id, NULL::text AS path",
};
const MACHINE: Kind = Kind {
    scope: "machine",
    table: "machines",
    key: "machine_id",
    extras: "NULL::text AS url, h.name, h.os, NULL::text AS project_id,
             NULL::text AS machine_id, NULL::text AS path",
};
const WORKSPACE: Kind = Kind {
    scope: "workspace",
    table: "workspaces",
    key: "workspace_id",
    extras: "NULL::text AS url, NULL::text AS name, NULL::text AS os, h.project_id,
             h.machine_id, h.path",
};

impl Kind {
    /// `SELECT` of rows of this kind (`h`) with status and session count,
    /// filtered by `filter` (on `h`, `$1` the org) and ordered/limited by `tail`.
    fn select(&self, filter: &str, tail: &str) -> String {
        format!(
            "SELECT h.{key} AS id, {status}, {extras}, h.sessions, {totals}
             FROM {table} h
             LEFT JOIN scope_controls c ON c.org_id = h.org_id AND c.scope_kind = '{scope}'
                  AND c.scope_value = h.{key}
             WHERE h.org_id = $1 AND {filter}
             {tail}",
            key = self.key,
            table = self.table,
            scope = self.scope,
            status = node_status(),
            extras = self.extras,
            totals = h_totals(),
        )
    }
}

/// A session row with its status.
#[derive(sqlx::FromRow)]
struct SessionRow {
    session_id: String,
    agent_id: Option<String>,
    project_id: Option<String>,
    machine_id: Option<String>,
    workspace_id: Option<String>,
    git_branch: Option<String>,
    model: Option<String>,
    status: String,
    status_reason: Option<String>,
    /// The scope whose control pauses or kills the session.
    status_scope: Option<String>,
    ended_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    totals: Totals,
}

impl SessionRow {
    fn json(&self) -> Value {
        let mut v = self.totals.json();
        merge(
            &mut v,
            json!({
                "session_id": self.session_id, "agent_id": self.agent_id,
                "project_id": self.project_id, "machine_id": self.machine_id,
                "workspace_id": self.workspace_id, "git_branch": self.git_branch,
                "model": self.model, "status": self.status, "status_reason": self.status_reason,
                "status_scope": self.status_scope,
                "ended_at": self.ended_at,
            }),
        );
        v
    }
}

/// `SELECT` of sessions (`h`) with their effective status: the first
/// control of the session, its workspace, machine or project.
fn session_select(filter: &str, tail: &str) -> String {
    format!(
        "SELECT h.session_id, h.agent_id, h.project_id, h.machine_id, h.workspace_id,
                h.git_branch, h.model,
                CASE c.action WHEN 'kill' THEN 'killed' WHEN 'pause' THEN 'paused'
                     ELSE CASE WHEN h.status <> 'running' THEN h.status
                               WHEN h.last_seen >= now() - {ACTIVE} THEN 'running'
                               ELSE 'idle' END END AS status,
                c.reason AS status_reason, c.scope_kind AS status_scope, h.ended_at, {totals}
         FROM agent_sessions h
         LEFT JOIN LATERAL (
             SELECT x.action, x.reason, x.scope_kind FROM scope_controls x
             WHERE x.org_id = h.org_id AND (
                   (x.scope_kind = 'session' AND x.scope_value = h.session_id)
                OR (x.scope_kind = 'workspace' AND x.scope_value = h.workspace_id)
                OR (x.scope_kind = 'machine' AND x.scope_value = h.machine_id)
                OR (x.scope_kind = 'project' AND x.scope_value = h.project_id))
             ORDER BY x.action = 'kill' DESC,
                      array_position(ARRAY['session', 'workspace', 'machine', 'project'],
                                     x.scope_kind)
             LIMIT 1) c ON TRUE
         WHERE h.org_id = $1 AND {filter}
         {tail}",
        totals = h_totals(),
    )
}

// ---------------------------------------------------------------- lists

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// `last_seen` (default, latest first) or `cost` (highest first).
    #[param(pattern = "^(last_seen|cost)$")]
    sort: Option<String>,
    /// 1–1000 (default 100).
    limit: Option<String>,
}

fn order_of(sort: Option<&str>) -> Result<&'static str, ApiError> {
    match sort.unwrap_or("last_seen") {
        "last_seen" => Ok("ORDER BY h.last_seen DESC, id"),
        "cost" => Ok("ORDER BY h.cost_usd DESC, id"),
        other => Err(ApiError::BadParam {
            field: "sort",
            message: format!("`{other}` is not one of last_seen, cost"),
        }),
    }
}

async fn list(
    s: &crate::state::AppState,
    headers: &HeaderMap,
    q: &ListQuery,
    kind: &Kind,
    name: &str,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(s, headers, Scope::Read).await?;
    let limit = limit_param(q.limit.as_deref(), 100, 1000)?;
    let order = order_of(q.sort.as_deref())?;
    let rows: Vec<NodeRow> = sqlx::query_as(&kind.select("TRUE", &format!("{order} LIMIT $2")))
        .bind(&key.org_id)
        .bind(limit)
        .fetch_all(&s.pool)
        .await?;
    Ok(Json(
        json!({ name: rows.iter().map(NodeRow::json).collect::<Vec<_>>() }),
    ))
}

/// `GET /v1/projects`: the org's projects with all-time totals.
#[utoipa::path(get, path = "/v1/projects", tag = "hierarchy", params(ListQuery),
    responses((status = 200, description = "Projects", body = Projects)))]
pub(crate) async fn projects(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    list(&s, &headers, &q, &PROJECT, "projects").await
}

/// `GET /v1/machines`: the org's machines with all-time totals.
#[utoipa::path(get, path = "/v1/machines", tag = "hierarchy", params(ListQuery),
    responses((status = 200, description = "Machines", body = Machines)))]
pub(crate) async fn machines(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    list(&s, &headers, &q, &MACHINE, "machines").await
}

// ---------------------------------------------------------------- drill-down

/// Latest sessions shown on a project, machine or workspace page.
const PAGE_SESSIONS: i64 = 20;

async fn node(
    s: &crate::state::AppState,
    org: &str,
    kind: &Kind,
    id: &str,
) -> Result<NodeRow, ApiError> {
    sqlx::query_as(&kind.select(&format!("h.{} = $2", kind.key), ""))
        .bind(org)
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Workspaces of one project or machine, summed per machine or project.
async fn grouped(
    s: &crate::state::AppState,
    org: &str,
    by: &str,
    group: &str,
    id: &str,
) -> Result<Vec<Value>, ApiError> {
    #[derive(sqlx::FromRow)]
    struct Group {
        id: Option<String>,
        name: Option<String>,
        workspaces: i64,
        #[sqlx(flatten)]
        totals: Totals,
    }
    // Machines by their name too.
    let (name, join) = if group == "machine_id" {
        (
            "m.name",
            "LEFT JOIN machines m ON m.org_id = $1 AND m.machine_id = g.id",
        )
    } else {
        ("NULL::text", "")
    };
    let rows: Vec<Group> = sqlx::query_as(&format!(
        "SELECT g.*, {name} AS name FROM (
             SELECT h.{group} AS id, count(*)::int8 AS workspaces, {SUMMED}
             FROM workspaces h WHERE h.org_id = $1 AND h.{by} = $2
             GROUP BY h.{group} ORDER BY max(h.last_seen) DESC LIMIT 1000) g
         {join}
         ORDER BY g.last_seen DESC, g.id"
    ))
    .bind(org)
    .bind(id)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|g| {
            let mut v = g.totals.json();
            merge(
                &mut v,
                json!({"id": g.id, "name": g.name, "workspaces": g.workspaces}),
            );
            v
        })
        .collect())
}

async fn workspaces_of(
    s: &crate::state::AppState,
    org: &str,
    by: &str,
    id: &str,
) -> Result<Vec<Value>, ApiError> {
    let rows: Vec<NodeRow> = sqlx::query_as(&WORKSPACE.select(
        &format!("h.{by} = $2"),
        "ORDER BY h.last_seen DESC, id LIMIT 1000",
    ))
    .bind(org)
    .bind(id)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows.iter().map(NodeRow::json).collect())
}

async fn sessions_of(
    s: &crate::state::AppState,
    org: &str,
    by: &str,
    id: &str,
    limit: i64,
) -> Result<Vec<Value>, ApiError> {
    let rows: Vec<SessionRow> = sqlx::query_as(&session_select(
        &format!("h.{by} = $2"),
        "ORDER BY h.last_seen DESC, h.session_id DESC LIMIT $3",
    ))
    .bind(org)
    .bind(id)
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    Ok(rows.iter().map(SessionRow::json).collect())
}

/// `GET /v1/projects/{project_id}`: the project, its machines and
/// workspaces (totals within the project), its latest sessions.
#[utoipa::path(get, path = "/v1/projects/{project_id}", tag = "hierarchy",
    params(("project_id" = String, Path, description = "The project's id (URL-encoded)")),
    responses((status = 200, description = "The project", body = ProjectPage)))]
pub(crate) async fn project(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let id = identifier("project_id", &id)?;
    let org = key.org_id.as_str();
    let head = node(&s, org, &PROJECT, id).await?;
    Ok(Json(json!({
        "project": head.json(),
        "machines": grouped(&s, org, "project_id", "machine_id", id).await?,
        "workspaces": workspaces_of(&s, org, "project_id", id).await?,
        "sessions": sessions_of(&s, org, "project_id", id, PAGE_SESSIONS).await?,
    })))
}

/// `GET /v1/machines/{machine_id}`: the machine, its projects and
/// workspaces (totals on this machine), its latest sessions.
#[utoipa::path(get, path = "/v1/machines/{machine_id}", tag = "hierarchy",
    params(("machine_id" = String, Path, description = "The machine's id")),
    responses((status = 200, description = "The machine", body = MachinePage)))]
pub(crate) async fn machine(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let id = identifier("machine_id", &id)?;
    let org = key.org_id.as_str();
    let head = node(&s, org, &MACHINE, id).await?;
    Ok(Json(json!({
        "machine": head.json(),
        "projects": grouped(&s, org, "machine_id", "project_id", id).await?,
        "workspaces": workspaces_of(&s, org, "machine_id", id).await?,
        "sessions": sessions_of(&s, org, "machine_id", id, PAGE_SESSIONS).await?,
    })))
}

/// `GET /v1/workspaces/{workspace_id}`: the workspace and its latest sessions.
#[utoipa::path(get, path = "/v1/workspaces/{workspace_id}", tag = "hierarchy",
    params(("workspace_id" = String, Path, description = "The workspace's id")),
    responses((status = 200, description = "The workspace", body = WorkspacePage)))]
pub(crate) async fn workspace(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let id = identifier("workspace_id", &id)?;
    let org = key.org_id.as_str();
    let head = node(&s, org, &WORKSPACE, id).await?;
    Ok(Json(json!({
        "workspace": head.json(),
        "sessions": sessions_of(&s, org, "workspace_id", id, 50).await?,
    })))
}

// ---------------------------------------------------------------- sessions

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SessionsQuery {
    project_id: Option<String>,
    machine_id: Option<String>,
    workspace_id: Option<String>,
    /// `running` (not ended), `completed` or `failed`.
    #[param(pattern = "^(running|completed|failed)$")]
    status: Option<String>,
    /// 1–500 (default 50).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A keyset cursor: `<µs since the epoch>.<id>` of the last row.
fn parse_cursor(raw: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let bad = || ApiError::BadParam {
        field: "cursor",
        message: "not a cursor of this list (use `next_cursor` as given)".into(),
    };
    let (us, id) = raw.split_once('.').ok_or_else(bad)?;
    let t = us
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    identifier("cursor", id)?;
    Ok((t, id.to_owned()))
}

fn cursor_of(t: DateTime<Utc>, id: &str) -> String {
    format!("{}.{id}", t.timestamp_micros())
}

/// `GET /v1/sessions`: sessions, latest first, filtered and paged.
#[utoipa::path(get, path = "/v1/sessions", tag = "hierarchy", params(SessionsQuery),
    responses((status = 200, description = "Sessions, latest first", body = Sessions)))]
pub(crate) async fn sessions(
    State(s): Shared,
    headers: HeaderMap,
    Query(q): Query<SessionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let limit = limit_param(q.limit.as_deref(), 50, 500)?;
    let mut filter = vec!["TRUE".to_owned()];
    let mut binds: Vec<String> = Vec::new();
    for (field, v) in [
        ("project_id", &q.project_id),
        ("machine_id", &q.machine_id),
        ("workspace_id", &q.workspace_id),
    ] {
        if let Some(v) = v {
            binds.push(identifier(field, v)?.to_owned());
            filter.push(format!("h.{field} = ${}", binds.len() + 1));
        }
    }
    if let Some(st) = &q.status {
        if !["running", "completed", "failed"].contains(&st.as_str()) {
            return Err(ApiError::BadParam {
                field: "status",
                message: format!("`{st}` is not one of running, completed, failed"),
            });
        }
        binds.push(st.clone());
        filter.push(format!("h.status = ${}", binds.len() + 1));
    }
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let n = binds.len();
    if after.is_some() {
        filter.push(format!(
            "(h.last_seen, h.session_id) < (${}::timestamptz, ${}::text)",
            n + 2,
            n + 3
        ));
    }
    let sql = session_select(
        &filter.join(" AND "),
        &format!(
            "ORDER BY h.last_seen DESC, h.session_id DESC LIMIT ${}",
            n + if after.is_some() { 4 } else { 2 }
        ),
    );
    let mut query = sqlx::query_as::<_, SessionRow>(&sql).bind(&key.org_id);
    for b in &binds {
        query = query.bind(b);
    }
    if let Some((t, id)) = &after {
        query = query.bind(t).bind(id);
    }
    let mut rows = query.bind(limit + 1).fetch_all(&s.pool).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| cursor_of(r.totals.last_seen, &r.session_id))
    } else {
        None
    };
    Ok(Json(json!({
        "sessions": rows.iter().map(SessionRow::json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TimelineQuery {
    /// Events per page, 1–5000 (default 1000).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TimelineRow {
    event_id: uuid::Uuid,
    ts: DateTime<Utc>,
    r#type: String,
    agent_id: String,
    status: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    tool_name: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    cost_usd: Option<f64>,
    latency_ms: Option<i64>,
    error_type: Option<String>,
    error_message: Option<String>,
    sidechain: bool,
}

/// `GET /v1/sessions/{session_id}`: the session, where it ran, and its
/// timeline (events in time order; subagent work marked `sidechain`).
#[utoipa::path(get, path = "/v1/sessions/{session_id}", tag = "hierarchy",
    params(("session_id" = String, Path, description = "The session's id"), TimelineQuery),
    responses((status = 200, description = "The session and its timeline", body = SessionPage)))]
pub(crate) async fn session(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Read).await?;
    let id = identifier("session_id", &id)?;
    let limit = limit_param(q.limit.as_deref(), 1000, 5000)?;
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let org = key.org_id.as_str();
    let head: SessionRow = sqlx::query_as(&session_select("h.session_id = $2", ""))
        .bind(org)
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (after_ts, after_id) = match &after {
        Some((t, e)) => (
            Some(*t),
            Some(uuid::Uuid::parse_str(e).map_err(|_| ApiError::BadParam {
                field: "cursor",
                message: "not a cursor of this timeline".into(),
            })?),
        ),
        None => (None, None),
    };
    let mut events: Vec<TimelineRow> = sqlx::query_as(
        "SELECT event_id, ts, type, agent_id, status, provider, model, tool_name, input_tokens,
                output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
                cost_usd, latency_ms, error_type, error_message,
                COALESCE(attributes->>'sidechain' = 'true', false) AS sidechain
         FROM events
         WHERE org_id = $1 AND session_id = $2
           AND ($3::timestamptz IS NULL OR (ts, event_id) > ($3, $4::uuid))
           AND ts BETWEEN $6 AND $7
         ORDER BY ts, event_id LIMIT $5",
    )
    .bind(org)
    .bind(id)
    .bind(after_ts)
    .bind(after_id)
    .bind(limit + 1)
    // The session's span: only the partitions (days) it ran in are read.
    .bind(head.totals.first_seen)
    .bind(head.totals.last_seen)
    .fetch_all(&s.pool)
    .await?;
    let next = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events
            .last()
            .map(|e| cursor_of(e.ts, &e.event_id.to_string()))
    } else {
        None
    };
    // Breadcrumbs: the places the session names, with what is known of them.
    let crumb = |kind: &str, id: &Option<String>, label: Option<String>| {
        id.as_ref()
            .map(|i| json!({"kind": kind, "id": i, "label": label.unwrap_or_else(|| i.clone())}))
    };
    let machine_name: Option<String> = match &head.machine_id {
        Some(m) => {
            sqlx::query_scalar("SELECT name FROM machines WHERE org_id = $1 AND machine_id = $2")
                .bind(org)
                .bind(m)
                .fetch_optional(&s.pool)
                .await?
                .flatten()
        }
        None => None,
    };
    let workspace_path: Option<String> = match &head.workspace_id {
        Some(w) => sqlx::query_scalar(
            "SELECT path FROM workspaces WHERE org_id = $1 AND workspace_id = $2",
        )
        .bind(org)
        .bind(w)
        .fetch_optional(&s.pool)
        .await?
        .flatten(),
        None => None,
    };
    let breadcrumbs: Vec<Value> = [
        crumb("project", &head.project_id, None),
        crumb("machine", &head.machine_id, machine_name),
        crumb("workspace", &head.workspace_id, workspace_path),
    ]
    .into_iter()
    .flatten()
    .collect();
    let timeline: Vec<Value> = events
        .into_iter()
        .map(|e| {
            json!({
                "event_id": e.event_id, "ts": e.ts, "type": e.r#type, "agent_id": e.agent_id,
                "status": e.status, "provider": e.provider, "model": e.model,
                "tool_name": e.tool_name,
                "input_tokens": e.input_tokens, "output_tokens": e.output_tokens,
                "cache_read_tokens": e.cache_read_tokens,
                "cache_write_tokens": e.cache_write_tokens,
                "reasoning_tokens": e.reasoning_tokens, "cost_usd": e.cost_usd,
                "latency_ms": e.latency_ms, "error_type": e.error_type,
                "error_message": e.error_message, "sidechain": e.sidechain,
            })
        })
        .collect();
    Ok(Json(json!({
        "session": head.json(),
        "breadcrumbs": breadcrumbs,
        "timeline": timeline,
        "next_cursor": next,
    })))
}

// ---------------------------------------------------------------- controls

fn target(kind: &str, value: &str) -> Result<Target, ApiError> {
    let k: ScopeKind = kind
        .parse()
        .ok()
        .filter(|k: &ScopeKind| k.is_hierarchy())
        .ok_or_else(|| ApiError::BadParam {
            field: "scope_kind",
            message: format!("`{kind}` is not one of project, machine, workspace, session"),
        })?;
    identifier("scope_value", value)?;
    Target::new(k, Some(value)).map_err(|e| ApiError::BadParam {
        field: "scope_value",
        message: e.to_string(),
    })
}

async fn set_control(
    s: &crate::state::AppState,
    headers: &HeaderMap,
    (kind, value): (String, String),
    body: &[u8],
    action: ControlAction,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(s, headers, Scope::Admin).await?;
    let t = target(&kind, &value)?;
    let default = match action {
        ControlAction::Kill => "killed by an admin",
        ControlAction::Pause => "paused by an admin",
    };
    let reason = crate::governance::reason(body, default)?;
    let actor = crate::governance::actor(&key);
    let mut tx = s.pool.begin().await?;
    let set_at =
        controls::set_scope_by_operator(&mut *tx, &key.org_id, &t, action, &reason, &actor).await?;
    crate::governance::audit(
        &mut tx,
        &key,
        &format!("scope.{action}"),
        json!({"scope": t.scope_key(), "reason": reason}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(org_id = %key.org_id, scope = %t.scope_key(), action = action.as_str(), "scope control set");
    Ok(Json(json!({
        "scope_kind": t.kind().as_str(), "scope_value": value, "status": action.status(),
        "reason": reason, "set_by": actor, "set_at": set_at,
    })))
}

/// `POST /v1/admin/controls/{scope_kind}/{scope_value}/pause` `{reason?}`:
/// pause a project, machine, workspace or session (its sessions' hooks deny
/// tool calls until it is resumed).
#[utoipa::path(post, path = "/v1/admin/controls/{scope_kind}/{scope_value}/pause", tag = "hierarchy",
    params(("scope_kind" = String, Path, description = "project, machine, workspace or session"),
           ("scope_value" = String, Path, description = "Its id (URL-encoded)")),
    request_body = crate::governance::docs::ReasonBody,
    responses((status = 200, description = "Paused", body = ScopeControlSet)))]
pub(crate) async fn pause(
    State(s): Shared,
    headers: HeaderMap,
    Path(p): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_control(&s, &headers, p, &body, ControlAction::Pause).await
}

/// `POST /v1/admin/controls/{scope_kind}/{scope_value}/kill` `{reason?}`.
#[utoipa::path(post, path = "/v1/admin/controls/{scope_kind}/{scope_value}/kill", tag = "hierarchy",
    params(("scope_kind" = String, Path, description = "project, machine, workspace or session"),
           ("scope_value" = String, Path, description = "Its id (URL-encoded)")),
    request_body = crate::governance::docs::ReasonBody,
    responses((status = 200, description = "Killed", body = ScopeControlSet)))]
pub(crate) async fn kill(
    State(s): Shared,
    headers: HeaderMap,
    Path(p): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_control(&s, &headers, p, &body, ControlAction::Kill).await
}

/// `POST /v1/admin/controls/{scope_kind}/{scope_value}/resume` `{reason?}`
/// (audited with the lifted control; a budget does not pause it again in
/// the same period).
#[utoipa::path(post, path = "/v1/admin/controls/{scope_kind}/{scope_value}/resume", tag = "hierarchy",
    params(("scope_kind" = String, Path, description = "project, machine, workspace or session"),
           ("scope_value" = String, Path, description = "Its id (URL-encoded)")),
    request_body = crate::governance::docs::ReasonBody,
    responses((status = 200, description = "Resumed (or nothing to resume)", body = ScopeResumed)))]
pub(crate) async fn resume(
    State(s): Shared,
    headers: HeaderMap,
    Path((kind, value)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = authenticate(&s, &headers, Scope::Admin).await?;
    let t = target(&kind, &value)?;
    let reason = crate::governance::reason(&body, "resumed by an admin")?;
    let mut tx = s.pool.begin().await?;
    let previous = controls::clear_scope(&mut *tx, &key.org_id, &t).await?;
    if let Some(controls::Cleared { action, set_by }) = &previous {
        crate::governance::audit(
            &mut tx,
            &key,
            controls::SCOPE_RESUME,
            json!({"scope": t.scope_key(), "was": action, "set_by": set_by, "reason": reason}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(json!({
        "scope_kind": t.kind().as_str(), "scope_value": value,
        "resumed": previous.is_some(),
        "previous": previous.map(|c| c.action),
    })))
}

// ---------------------------------------------------------------- schemas

/// Tokens by kind.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct TokenTotals {
    input: i64,
    output: i64,
    cache_read: i64,
    cache_write: i64,
    reasoning: i64,
    total: i64,
}

/// A project, machine or workspace with its all-time totals (`url` for
/// projects, `name` / `os` for machines, `project_id` / `machine_id` /
/// `path` for workspaces; null otherwise).
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct Node {
    id: String,
    /// `killed`, `paused`, `active` (seen in the last 15 minutes) or `idle`.
    status: String,
    status_reason: Option<String>,
    url: Option<String>,
    name: Option<String>,
    os: Option<String>,
    project_id: Option<String>,
    machine_id: Option<String>,
    path: Option<String>,
    sessions: i64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    events: i64,
    llm_calls: i64,
    tool_calls: i64,
    errors: i64,
    tokens: TokenTotals,
    cost_usd: f64,
}

/// Totals of a group of workspaces (a project's on one machine, a
/// machine's in one project).
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct Group {
    id: Option<String>,
    /// A machine's name (null for a project).
    name: Option<String>,
    workspaces: i64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    events: i64,
    llm_calls: i64,
    tool_calls: i64,
    errors: i64,
    tokens: TokenTotals,
    cost_usd: f64,
}

/// A session with its totals.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct SessionSummary {
    session_id: String,
    agent_id: Option<String>,
    project_id: Option<String>,
    machine_id: Option<String>,
    workspace_id: Option<String>,
    git_branch: Option<String>,
    model: Option<String>,
    /// `killed`, `paused` (its own control or its workspace's, machine's or
    /// project's), `completed`, `failed`, `running` (seen in the last 15
    /// minutes) or `idle`.
    status: String,
    status_reason: Option<String>,
    /// `session`, `workspace`, `machine` or `project`: whose control
    /// pauses or kills it (null otherwise).
    status_scope: Option<String>,
    ended_at: Option<DateTime<Utc>>,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    events: i64,
    llm_calls: i64,
    tool_calls: i64,
    errors: i64,
    tokens: TokenTotals,
    cost_usd: f64,
}

/// `GET /v1/projects`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct Projects {
    projects: Vec<Node>,
}

/// `GET /v1/machines`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct Machines {
    machines: Vec<Node>,
}

/// `GET /v1/projects/{project_id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct ProjectPage {
    project: Node,
    machines: Vec<Group>,
    workspaces: Vec<Node>,
    sessions: Vec<SessionSummary>,
}

/// `GET /v1/machines/{machine_id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct MachinePage {
    machine: Node,
    projects: Vec<Group>,
    workspaces: Vec<Node>,
    sessions: Vec<SessionSummary>,
}

/// `GET /v1/workspaces/{workspace_id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct WorkspacePage {
    workspace: Node,
    sessions: Vec<SessionSummary>,
}

/// `GET /v1/sessions`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct Sessions {
    sessions: Vec<SessionSummary>,
    next_cursor: Option<String>,
}

/// A step of the breadcrumbs: `project`, `machine` or `workspace`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct Crumb {
    kind: String,
    id: String,
    /// The machine's name, the workspace's path, else the id.
    label: String,
}

/// One event of a session's timeline.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct TimelineEvent {
    event_id: uuid::Uuid,
    ts: DateTime<Utc>,
    r#type: String,
    agent_id: String,
    status: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    tool_name: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    cost_usd: Option<f64>,
    latency_ms: Option<i64>,
    error_type: Option<String>,
    error_message: Option<String>,
    /// Subagent work, rolled into this session.
    sidechain: bool,
}

/// `GET /v1/sessions/{session_id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct SessionPage {
    session: SessionSummary,
    breadcrumbs: Vec<Crumb>,
    timeline: Vec<TimelineEvent>,
    next_cursor: Option<String>,
}

/// A scope control set.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct ScopeControlSet {
    scope_kind: String,
    scope_value: String,
    /// `paused` or `killed`.
    status: String,
    reason: String,
    set_by: String,
    set_at: DateTime<Utc>,
}

/// A scope resumed.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct ScopeResumed {
    scope_kind: String,
    scope_value: String,
    resumed: bool,
    previous: Option<String>,
}
