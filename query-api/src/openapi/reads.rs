//! Parameters and answers of the console's reads in the OpenAPI document:
//! `GET /v1/agents`, `GET /v1/agents/{agent_id}`, `GET /v1/runs`,
//! `GET /v1/runs/export`, `GET /v1/metrics/cost`, `GET /v1/metrics/compare`.
//! Their handlers (`crate::agents`, `crate::runs`, `crate::cost`) carry the
//! `#[utoipa::path]` and build their JSON ad hoc; the shapes are described here.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// The enumerations the parameters name (the handlers' modules list the paths).
#[derive(OpenApi)]
#[openapi(components(schemas(RunStatus, RunSort, SortOrder, ExportFormat, Bucket)))]
pub(super) struct Doc;

/// `?limit=` of `GET /v1/agents`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct AgentsQuery {
    /// Rows, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// `GET /v1/agents`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::list`.
pub(crate) struct Agents {
    agents: Vec<AgentSummary>,
}

/// An agent with its status and today's totals.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::list`.
pub(crate) struct AgentSummary {
    agent_id: String,
    /// `killed`, `paused`, `active` (seen in the last 5 minutes) or `idle`.
    status: String,
    status_reason: Option<String>,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    last_heartbeat: Option<DateTime<Utc>>,
    heartbeat_status: Option<String>,
    today: AgentToday,
}

/// The current UTC day's totals (zero when last seen on an earlier day).
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::list`.
pub(crate) struct AgentToday {
    events: i64,
    runs: i64,
    failures: i64,
    tokens: i64,
    cost_usd: f64,
}

/// `?window=` of the agent page.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct WindowQuery {
    /// A duration like `15m`, `24h` or `7d` (at most `90d`; default `24h`).
    #[param(pattern = "^[0-9]+[smhd]$", example = "24h")]
    window: Option<String>,
}

/// `GET /v1/agents/{agent_id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::detail`.
pub(crate) struct AgentDetail {
    agent_id: String,
    status: String,
    first_seen: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    last_heartbeat: Option<DateTime<Utc>>,
    heartbeat_status: Option<String>,
    /// Its pause or kill, if any.
    control: Option<AgentControl>,
    window: String,
    totals: AgentTotals,
    bucket: String,
    series: Vec<AgentPoint>,
    models: Vec<AgentModel>,
    /// Its workflows in the window.
    workflows: Vec<Value>,
    /// The 10 latest runs, as `GET /v1/runs` answers them.
    recent_runs: Vec<RunItem>,
    /// The 10 latest failed runs.
    recent_failures: Vec<RunItem>,
    /// The entries of `GET /v1/budgets/status` whose scope covers the agent.
    budgets: Vec<Value>,
    /// Its 10 latest policy violations.
    violations: Vec<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::detail`.
pub(crate) struct AgentControl {
    /// `pause` or `kill`.
    action: String,
    reason: Option<String>,
    set_by: Option<String>,
    set_at: Option<DateTime<Utc>>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::detail`.
pub(crate) struct AgentTotals {
    runs: i64,
    failed: i64,
    cost_usd: f64,
    llm_calls: i64,
    latency_ms: Quantiles,
}

/// Run latency quantiles (ms); null without finished runs.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes answers built by the handlers.
pub(crate) struct Quantiles {
    p50: Option<f64>,
    p95: Option<f64>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::detail`.
pub(crate) struct AgentPoint {
    ts: DateTime<Utc>,
    runs: i64,
    failed: i64,
    cost_usd: f64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::agents::detail`.
pub(crate) struct AgentModel {
    provider: Option<String>,
    model: Option<String>,
    llm_calls: i64,
    cost_usd: f64,
}

/// A run as the search answers it.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `crate::runs::RunOut`.
pub(crate) struct RunItem {
    run_id: String,
    agent_id: String,
    workflow_id: Option<String>,
    status: String,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    latency_ms: Option<i64>,
    cost_usd: f64,
    input_tokens: i64,
    output_tokens: i64,
    llm_calls: i64,
    tool_calls: i64,
    models: Vec<String>,
    providers: Vec<String>,
    /// Its events' attributes, merged.
    tags: HashMap<String, Value>,
    error_type: Option<String>,
    error_message: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum RunStatus {
    Running,
    Completed,
    Failed,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum RunSort {
    StartedAt,
    CostUsd,
    LatencyMs,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum SortOrder {
    Desc,
    Asc,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum ExportFormat {
    Csv,
    Json,
}

/// The run search's filters, sort and page (see the README's reading section).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct RunsQuery {
    /// RFC 3339, on the run's start (with `to`, instead of `window`).
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// A duration like `24h` (default; at most `90d`).
    #[param(pattern = "^[0-9]+[smhd]$", example = "24h")]
    window: Option<String>,
    agent_id: Option<String>,
    workflow_id: Option<String>,
    #[param(value_type = Option<RunStatus>)]
    status: Option<String>,
    model: Option<String>,
    provider: Option<String>,
    error_type: Option<String>,
    /// `key=value` of the run's merged event attributes.
    tag: Option<String>,
    #[param(minimum = 0)]
    min_cost_usd: Option<f64>,
    #[param(minimum = 0)]
    max_cost_usd: Option<f64>,
    #[param(minimum = 0)]
    min_latency_ms: Option<i64>,
    #[param(minimum = 0)]
    max_latency_ms: Option<i64>,
    /// Case-insensitive substring of the error message (at most 200 characters).
    #[param(max_length = 200)]
    q: Option<String>,
    #[param(value_type = Option<RunSort>)]
    sort: Option<String>,
    #[param(value_type = Option<SortOrder>)]
    order: Option<String>,
    /// Rows, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page, as it is.
    cursor: Option<String>,
}

/// `GET /v1/runs`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::runs::search`.
pub(crate) struct RunPage {
    runs: Vec<RunItem>,
    /// Null on the last page.
    next_cursor: Option<String>,
}

/// `?format=` of the export.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct ExportQuery {
    /// Default `csv`.
    #[param(value_type = Option<ExportFormat>)]
    format: Option<String>,
}

/// `GET /v1/runs/export?format=json`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer streamed by `crate::runs::export`.
pub(crate) struct RunExport {
    runs: Vec<RunItem>,
    row_cap: i64,
    /// More runs matched than `row_cap`.
    truncated: bool,
}

/// `bucket=` of the time series and the cost explorer.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum Bucket {
    #[schema(rename = "1m")]
    M1,
    #[schema(rename = "5m")]
    M5,
    #[schema(rename = "15m")]
    M15,
    #[schema(rename = "1h")]
    H1,
    #[schema(rename = "1d")]
    D1,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Named by the document only.
pub(crate) struct CostQuery {
    /// `agent` (default), `workflow`, `model`, `provider` or `tag:<key>`, a
    /// key of `database.storage.tag_keys` (the per-tag rollups; another key
    /// answers 400 listing them).
    #[param(pattern = "^(agent|workflow|model|provider|tag:.+)$")]
    group: Option<String>,
    /// A duration like `24h` (default; at most `90d`).
    #[param(pattern = "^[0-9]+[smhd]$", example = "24h")]
    window: Option<String>,
    /// Point width (at most 1,000 points); tag groups have points per hour
    /// at the finest (`1m` to `15m` are answered per hour).
    #[param(value_type = Option<Bucket>)]
    bucket: Option<String>,
    /// Groups, 1 to 25 (default 10); the rest is `(other)`.
    #[param(minimum = 1, maximum = 25)]
    limit: Option<i64>,
}

/// `GET /v1/metrics/cost`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::cost::cost`.
pub(crate) struct Cost {
    group: String,
    window: String,
    bucket: String,
    groups: Vec<CostGroup>,
    /// Every key at every point.
    series: Vec<CostPoint>,
    unpriced: Unpriced,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::cost::cost`.
pub(crate) struct CostGroup {
    /// `(other)` past the top groups, `(none)` without the dimension.
    key: String,
    cost_usd: f64,
    runs: i64,
    llm_calls: i64,
    unpriced_calls: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::cost::cost`.
pub(crate) struct CostPoint {
    ts: DateTime<Utc>,
    key: String,
    cost_usd: f64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::cost::cost`.
pub(crate) struct Unpriced {
    /// LLM calls with tokens and no price.
    calls: i64,
    models: Vec<UnpricedModel>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::cost::cost`.
pub(crate) struct UnpricedModel {
    provider: Option<String>,
    model: Option<String>,
    calls: i64,
}

/// `GET /v1/metrics/compare`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `crate::cost::compare`.
pub(crate) struct Compare {
    window: String,
    current: Figures,
    previous: Figures,
}

/// The overview's fields for one window.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes `crate::cost::figures`.
pub(crate) struct Figures {
    window: String,
    from: DateTime<Utc>,
    /// Null: now.
    to: Option<DateTime<Utc>>,
    runs: i64,
    succeeded: i64,
    failed: i64,
    success_rate: Option<f64>,
    cost_usd: f64,
    latency_ms: FiguresLatency,
    errors_last_hour: i64,
    active_agents: i64,
    events: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes `crate::cost::figures`.
pub(crate) struct FiguresLatency {
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}
