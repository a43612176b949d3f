//! The governance API in the OpenAPI document: the handlers of the other
//! modules (alerts, budget status, agent controls, digest) carry their own
//! `#[utoipa::path]`; the generic CRUD of [`super::crud`] serves four
//! resources through one set of closures, so its operations are described
//! here, per resource, with the shape of its rows ([`super::crud::ROW_JSON`]
//! and the channels' masked form).

use agentops_runtime::openapi::ErrorBody;
use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;

/// The governance handlers in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_channels,
        create_channel,
        get_channel,
        update_channel,
        delete_channel,
        super::channels::test,
        list_budgets,
        create_budget,
        get_budget,
        update_budget,
        delete_budget,
        list_alert_rules,
        create_alert_rule,
        get_alert_rule,
        update_alert_rule,
        delete_alert_rule,
        list_policies,
        create_policy,
        get_policy,
        update_policy,
        delete_policy,
        super::controls::put_digest,
        super::controls::get_digest,
        super::controls::delete_digest,
        super::controls::pause,
        super::controls::kill,
        super::controls::resume,
        super::alerts::list,
        super::alerts::detail,
        super::alerts::ack,
        super::alerts::violations,
        super::budgets::status,
    ),
    components(schemas(AlertState))
)]
pub(crate) struct Doc;

/// Generates the doc-only operations of one CRUD resource (`crud::routes`).
macro_rules! crud_docs {
    ($list:tt, $one:tt, $name:literal, $item:ident, $items:ident, $body:ident,
     $list_fn:ident, $create_fn:ident, $get_fn:ident, $update_fn:ident, $delete_fn:ident) => {
        #[utoipa::path(get, path = $list, tag = "governance",
            responses((status = 200, description = concat!("Every ", $name, " of the org, by name"), body = $items)))]
        #[allow(dead_code)] // Served by `crud::routes`.
        fn $list_fn() {}

        #[utoipa::path(post, path = $list, tag = "governance", request_body = $body,
            responses((status = 201, description = concat!("The ", $name, " created"), body = $item),
                      (status = 409, description = "The name is taken, or the org's cap is reached", body = ErrorBody)))]
        #[allow(dead_code)] // Served by `crud::routes`.
        fn $create_fn() {}

        #[utoipa::path(get, path = $one, tag = "governance",
            params(("id" = String, Path, description = "Its id (a UUID)")),
            responses((status = 200, description = concat!("The ", $name), body = $item)))]
        #[allow(dead_code)] // Served by `crud::routes`.
        fn $get_fn() {}

        #[utoipa::path(put, path = $one, tag = "governance",
            params(("id" = String, Path, description = "Its id (a UUID)")),
            request_body(content = $body, description = "Fields to change; absent ones keep their value, `null` clears an optional one"),
            responses((status = 200, description = concat!("The ", $name, " updated"), body = $item),
                      (status = 409, description = "The name is taken", body = ErrorBody)))]
        #[allow(dead_code)] // Served by `crud::routes`.
        fn $update_fn() {}

        #[utoipa::path(delete, path = $one, tag = "governance",
            params(("id" = String, Path, description = "Its id (a UUID)")),
            responses((status = 204, description = "Deleted")))]
        #[allow(dead_code)] // Served by `crud::routes`.
        fn $delete_fn() {}
    };
}

crud_docs!(
    "/v1/admin/channels",
    "/v1/admin/channels/{id}",
    "channel",
    Channel,
    Channels,
    ChannelBody,
    list_channels,
    create_channel,
    get_channel,
    update_channel,
    delete_channel
);
crud_docs!(
    "/v1/admin/budgets",
    "/v1/admin/budgets/{id}",
    "budget",
    BudgetRow,
    Budgets,
    BudgetBody,
    list_budgets,
    create_budget,
    get_budget,
    update_budget,
    delete_budget
);
crud_docs!(
    "/v1/admin/alert-rules",
    "/v1/admin/alert-rules/{id}",
    "alert rule",
    AlertRule,
    AlertRules,
    AlertRuleBody,
    list_alert_rules,
    create_alert_rule,
    get_alert_rule,
    update_alert_rule,
    delete_alert_rule
);
crud_docs!(
    "/v1/admin/policies",
    "/v1/admin/policies/{id}",
    "policy",
    PolicyRow,
    Policies,
    PolicyBody,
    list_policies,
    create_policy,
    get_policy,
    update_policy,
    delete_policy
);

/// What a scope is: the whole org, or an agent, workflow, model or tag.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum ScopeKind {
    Org,
    Agent,
    Workflow,
    Model,
    Tag,
}

/// A notification channel (its URL masked; the secret only in the create answer).
#[derive(ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct Channel {
    id: uuid::Uuid,
    name: String,
    kind: ChannelKindName,
    /// Scheme, host and port only.
    url: String,
    has_secret: bool,
    /// A `webhook` channel's signing secret, in the create answer only.
    secret: Option<String>,
    created_at: String,
    updated_at: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum ChannelKindName {
    Slack,
    Discord,
    Webhook,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the list answer.
pub(crate) struct Channels {
    channels: Vec<Channel>,
}

/// A channel to create (or change).
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
pub(crate) struct ChannelBody {
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
    )]
    name: String,
    kind: ChannelKindName,
    /// An http(s) URL to a public destination.
    #[schema(pattern = "^https?://[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,}(/[A-Za-z0-9._~-]*)*$")]
    url: String,
    /// `webhook` only: 32 to 256 printable characters (generated when absent).
    secret: Option<String>,
}

/// `POST /v1/admin/channels/{id}/test`: how the test notification went.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `channels::test`.
pub(crate) struct ChannelTest {
    delivered: bool,
    /// The destination's HTTP status, when it answered.
    status: Option<i64>,
    /// Why it was not delivered (a refused destination, a timeout, ...).
    error: Option<String>,
}

/// A budget.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct BudgetRow {
    id: uuid::Uuid,
    name: String,
    scope_kind: ScopeKind,
    scope_value: Option<String>,
    /// `kind:value` (`org` for the whole org).
    scope_key: Option<String>,
    period: Period,
    limit_usd: f64,
    /// Percent of the limit at which an alert fires.
    thresholds: Vec<f64>,
    pause_at_pct: Option<f64>,
    /// Channels to notify; empty: every channel of the org.
    channels: Vec<uuid::Uuid>,
    created_at: String,
    updated_at: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum Period {
    Day,
    Week,
    Month,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the list answer.
pub(crate) struct Budgets {
    budgets: Vec<BudgetRow>,
}

/// A budget to create (or change).
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
pub(crate) struct BudgetBody {
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
    )]
    name: String,
    /// Default `org`.
    scope_kind: Option<ScopeKind>,
    /// Required unless `org` (a tag is `key=value`).
    scope_value: Option<String>,
    period: Period,
    /// At least 0.0001.
    #[schema(minimum = 0.0001, maximum = 1e12)]
    limit_usd: f64,
    thresholds: Option<Vec<f64>>,
    pause_at_pct: Option<f64>,
    channels: Option<Vec<uuid::Uuid>>,
}

/// An alert rule.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct AlertRule {
    id: uuid::Uuid,
    name: String,
    kind: RuleKind,
    scope_kind: ScopeKind,
    scope_value: Option<String>,
    scope_key: Option<String>,
    /// cost_per_day: USD; error_rate: ratio 0..1; latency_p95: ms.
    threshold: Option<f64>,
    window_secs: Option<i64>,
    min_runs: i64,
    minutes: Option<i64>,
    cooldown_secs: i64,
    channels: Vec<uuid::Uuid>,
    enabled: bool,
    created_at: String,
    updated_at: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum RuleKind {
    CostPerDay,
    ErrorRate,
    NoHeartbeat,
    LatencyP95,
    StuckRun,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the list answer.
pub(crate) struct AlertRules {
    alert_rules: Vec<AlertRule>,
}

/// An alert rule to create (or change; `kind` cannot change).
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
pub(crate) struct AlertRuleBody {
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
    )]
    name: String,
    kind: RuleKind,
    scope_kind: Option<ScopeKind>,
    scope_value: Option<String>,
    threshold: Option<f64>,
    window_secs: Option<i64>,
    min_runs: Option<i64>,
    minutes: Option<i64>,
    cooldown_secs: Option<i64>,
    channels: Option<Vec<uuid::Uuid>>,
    enabled: Option<bool>,
}

/// A policy.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct PolicyRow {
    id: uuid::Uuid,
    name: String,
    kind: PolicyKind,
    scope_kind: ScopeKind,
    scope_value: Option<String>,
    scope_key: Option<String>,
    /// Model or tool names (allow/deny lists, forbidden tools).
    names: Vec<String>,
    /// max_tokens_per_call: tokens; max_cost_per_run: USD.
    limit_value: Option<f64>,
    action: PolicyAction,
    channels: Vec<uuid::Uuid>,
    enabled: bool,
    created_at: String,
    updated_at: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum PolicyKind {
    ModelAllowlist,
    ModelDenylist,
    MaxTokensPerCall,
    MaxCostPerRun,
    ForbiddenTools,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum PolicyAction {
    Flag,
    Alert,
    Pause,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the list answer.
pub(crate) struct Policies {
    policies: Vec<PolicyRow>,
}

/// A policy to create (or change; `kind` cannot change).
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
pub(crate) struct PolicyBody {
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"
    )]
    name: String,
    kind: PolicyKind,
    scope_kind: Option<ScopeKind>,
    scope_value: Option<String>,
    names: Option<Vec<String>>,
    limit_value: Option<f64>,
    action: Option<PolicyAction>,
    channels: Option<Vec<uuid::Uuid>>,
    enabled: Option<bool>,
}

/// An alert, as the processors recorded it.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct Alert {
    alert_id: String,
    /// `budget`, `rule`, `policy` or `digest`.
    source: String,
    source_id: Option<uuid::Uuid>,
    kind: String,
    scope_key: String,
    state: AlertState,
    severity: String,
    period: Option<String>,
    threshold: Option<f64>,
    value: Option<f64>,
    message: Option<String>,
    details: Value,
    channels: Vec<uuid::Uuid>,
    created_at: Option<String>,
    notified_at: Option<String>,
    acked_at: Option<String>,
    acked_by: Option<String>,
    resolved_at: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Named by the document only.
pub(crate) enum AlertState {
    Firing,
    Acknowledged,
    Resolved,
}

/// An alert with its state changes and deliveries.
#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct AlertDetail {
    #[serde(flatten)]
    alert: Alert,
    /// State changes, oldest first.
    history: Vec<AlertChange>,
    /// Per channel and transition.
    deliveries: Vec<AlertDelivery>,
}

#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct AlertChange {
    state: String,
    actor: String,
    note: Option<String>,
    at: String,
}

#[derive(serde::Serialize, ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct AlertDelivery {
    channel_id: uuid::Uuid,
    /// Null once the channel is deleted.
    channel_name: Option<String>,
    channel_kind: Option<String>,
    transition: String,
    attempts: i64,
    delivered_at: Option<String>,
    dead_lettered_at: Option<String>,
    last_error: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the list answer.
pub(crate) struct Alerts {
    alerts: Vec<Alert>,
}

/// A policy violation with the offending event.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes rows rendered in SQL.
pub(crate) struct Violation {
    policy_id: uuid::Uuid,
    /// Null once the policy is deleted.
    policy_name: Option<String>,
    policy_kind: Option<String>,
    event_id: uuid::Uuid,
    agent_id: String,
    run_id: Option<String>,
    timestamp: String,
    action: String,
    detail: String,
    event: Value,
    recorded_at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Describes the list answer.
pub(crate) struct Violations {
    violations: Vec<Violation>,
}

/// `GET /v1/budgets/status`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `budgets::status`.
pub(crate) struct BudgetsStatus {
    as_of: DateTime<Utc>,
    budgets: Vec<BudgetStatus>,
}

/// A budget in its current period.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `budgets::status`.
pub(crate) struct BudgetStatus {
    id: uuid::Uuid,
    name: String,
    scope_kind: ScopeKind,
    scope_value: Option<String>,
    scope_key: String,
    period: Period,
    /// `2026-05-01`, `2026-W18`, `2026-05` (the day, ISO week or month).
    period_key: String,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    limit_usd: f64,
    spend_usd: f64,
    percent: f64,
    remaining_usd: f64,
    thresholds: Vec<f64>,
    thresholds_crossed: Vec<f64>,
    pause_at_pct: Option<f64>,
    pause_reached: bool,
}

/// An agent control set (`pause` or `kill`).
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `controls::set_control`.
pub(crate) struct ControlSet {
    agent_id: String,
    /// `paused` or `killed`.
    status: String,
    reason: String,
    set_by: String,
    set_at: DateTime<Utc>,
}

/// `{reason?}` of pause and kill.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
pub(crate) struct ReasonBody {
    /// At most 1000 characters.
    reason: Option<String>,
}

/// `POST /v1/admin/agents/{agent_id}/resume`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `controls::resume`.
pub(crate) struct Resumed {
    agent_id: String,
    /// False when there was nothing to resume.
    resumed: bool,
    /// `pause` or `kill`: what was lifted.
    previous: Option<String>,
}

/// The daily digest subscription.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the answer built in `controls::digest_json`.
pub(crate) struct Digest {
    org_id: String,
    /// Empty: every channel of the org.
    channels: Vec<uuid::Uuid>,
    hour_utc: i64,
    created_at: DateTime<Utc>,
}

/// `PUT /v1/admin/digest` body.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
pub(crate) struct DigestBody {
    channels: Option<Vec<uuid::Uuid>>,
    #[schema(minimum = 0, maximum = 23)]
    hour_utc: Option<i64>,
}

/// `{note?}` of an acknowledgement.
#[derive(ToSchema)]
#[allow(dead_code)] // Named by the document only (the body is read field by field).
pub(crate) struct NoteBody {
    /// At most 1000 characters.
    note: Option<String>,
}
