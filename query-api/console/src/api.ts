// The query API as the console uses it: same origin, signed in by the
// session cookie (mutating calls send the session's CSRF token) or by a key
// in the Authorization header; errors as the API's JSON
// `{error: {code, message, field?}}`.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface Overview {
  window: string;
  runs: number;
  succeeded: number;
  failed: number;
  success_rate: number | null;
  cost_usd: number | null;
  latency_ms: { p50: number | null; p95: number | null; p99: number | null };
  errors_last_hour: number;
  active_agents: number;
  events: number;
}

export interface Series {
  metric: string;
  bucket: string;
  window: string;
  points: { ts: string; value: number | null }[];
}

export interface BudgetStatus {
  id: string;
  name: string;
  scope_key: string;
  period: string;
  limit_usd: number;
  spend_usd: number | null;
  percent: number | null;
  scope_kind?: string;
  scope_value?: string | null;
  period_key?: string;
  remaining_usd?: number;
  thresholds?: number[];
  thresholds_crossed?: number[];
  pause_at_pct?: number | null;
  pause_reached?: boolean;
}

export interface TopRow {
  agent?: string;
  workflow?: string;
  model?: string;
  runs: number;
  failed: number;
  cost_usd: number;
  latency_ms: { p50: number | null; p95: number | null };
}

export interface Failure {
  event_id: string;
  timestamp: string;
  agent_id: string;
  run_id: string | null;
  type: string;
  error_type: string | null;
  error_message: string | null;
}

export interface Me {
  user?: { id: string; email: string; name: string };
  key?: { id: string; prefix: string };
  org_id: string;
  role?: Role;
  csrf_token?: string;
}

// --- Management types (query-api/src/{tenancy,people,prices}.rs, governance/) ---

export type Role = "owner" | "admin" | "member" | "viewer";
export type KeyScope = "ingest" | "read" | "admin";

export interface ApiKey {
  id: string;
  org_id: string;
  prefix: string;
  name: string | null;
  scopes: KeyScope[];
  created_at: string;
  created_by: string | null;
  revoked_at: string | null;
}

/** A created key: the raw `key` is in this answer only. */
export interface NewApiKey extends ApiKey {
  key: string;
}

export interface Member {
  user_id: string;
  email: string;
  name: string;
  role: Role;
  created_at: string;
}

export interface Invitation {
  id: string;
  org_id: string;
  email: string;
  role: Role;
  invited_by: string;
  created_at: string;
  expires_at: string;
  accepted_at: string | null;
  revoked_at: string | null;
}

/** A created invitation: the `token` is in this answer only. */
export interface NewInvitation extends Invitation {
  token: string;
}

export type ScopeKind = "org" | "agent" | "workflow" | "model" | "tag" | "project" | "machine" | "workspace" | "session";

interface Scoped {
  id: string;
  name: string;
  scope_kind: ScopeKind;
  scope_value: string | null;
  scope_key: string;
  channels: string[];
  created_at: string;
  updated_at: string;
}

export interface Budget extends Scoped {
  period: "day" | "week" | "month";
  limit_usd: number;
  thresholds: number[];
  pause_at_pct: number | null;
}

export type RuleKind = "cost_per_day" | "error_rate" | "latency_p95" | "no_heartbeat" | "stuck_run";

export interface AlertRule extends Scoped {
  kind: RuleKind;
  threshold: number | null;
  window_secs: number | null;
  min_runs: number;
  minutes: number | null;
  cooldown_secs: number;
  enabled: boolean;
}

export type PolicyKind = "model_allowlist" | "model_denylist" | "forbidden_tools" | "max_tokens_per_call" | "max_cost_per_run";

export interface Policy extends Scoped {
  kind: PolicyKind;
  names: string[];
  limit_value: number | null;
  action: "flag" | "alert" | "pause";
  enabled: boolean;
}

export type ChannelKind = "slack" | "discord" | "webhook";

export interface Channel {
  id: string;
  name: string;
  kind: ChannelKind;
  /** Masked to scheme, host and port. */
  url: string;
  has_secret: boolean;
  created_at: string;
  /** A webhook's signing secret: in the create answer only. */
  secret?: string | null;
}

/** `POST /v1/admin/channels/{id}/test`. */
export interface ChannelTest {
  delivered: boolean;
  status: number | null;
  error: string | null;
}

export interface Digest {
  org_id: string;
  channels: string[];
  hour_utc: number;
  created_at: string;
}

export interface Price {
  id: number;
  scope: "global" | "org";
  provider: string;
  model: string;
  aliases: string[];
  effective_from: string;
  input: number;
  output: number;
  cache_read: number | null;
  cache_write: number | null;
  reasoning: number | null;
  created_by: string;
  created_at: string;
}

export interface UnknownModel {
  provider: string | null;
  model: string | null;
  unpriced_calls: number;
  first_seen: string;
  last_seen: string;
}

export type AlertState = "firing" | "acknowledged" | "resolved";

export interface Alert {
  alert_id: string;
  source: string;
  source_id: string | null;
  kind: string;
  scope_key: string;
  state: AlertState;
  severity: string;
  period: string;
  threshold: number;
  value: number;
  message: string;
  details: unknown;
  channels: string[];
  created_at: string;
  notified_at: string | null;
  acked_at: string | null;
  acked_by: string | null;
  resolved_at: string | null;
}

export interface AlertDetail extends Alert {
  history: { state: string; actor: string; note: string | null; at: string }[];
  deliveries: {
    channel_id: string;
    channel_name: string | null;
    channel_kind: string | null;
    transition: string;
    attempts: number;
    delivered_at: string | null;
    dead_lettered_at: string | null;
    last_error: string | null;
  }[];
}


// --- Runs, agents, cost (query-api/src/{runs,agents,cost}.rs, api.rs) ---

/** A run as `GET /v1/runs` answers it. */
export interface RunSummary {
  run_id: string;
  agent_id: string;
  workflow_id: string | null;
  status: "running" | "completed" | "failed" | string;
  started_at: string | null;
  ended_at: string | null;
  latency_ms: number | null;
  cost_usd: number | null;
  input_tokens: number;
  output_tokens: number;
  llm_calls: number;
  tool_calls: number;
  models: string[];
  providers: string[];
  tags: Record<string, string>;
  error_type: string | null;
  error_message: string | null;
}

export interface RunPage {
  runs: RunSummary[];
  next_cursor: string | null;
}

/** One event of a run's timeline (token and error fields when the API
 *  gives them). */
export interface TimelineEvent {
  event_id: string;
  timestamp: string;
  type: string;
  model: string | null;
  latency_ms: number | null;
  cost_usd: number | null;
  cost_source?: string | null;
  tool_name: string | null;
  provider?: string | null;
  status?: string | null;
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_read_tokens?: number | null;
  cache_write_tokens?: number | null;
  reasoning_tokens?: number | null;
  error_type?: string | null;
  error_message?: string | null;
  /** A coding-agent session's subagent work (its timeline only). */
  sidechain?: boolean;
}

/** `GET /v1/runs/{run_id}`. */
export interface RunDetail {
  run_id: string | null;
  agent_id: string | null;
  workflow_id: string | null;
  status: string | null;
  started_at: string | null;
  ended_at: string | null;
  latency_ms: number | null;
  event_count: number | null;
  cost_usd: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens?: number | null;
  cache_write_tokens?: number | null;
  reasoning_tokens?: number | null;
  llm_calls: number | null;
  tool_calls: number | null;
  error_type: string | null;
  error_message: string | null;
  events: TimelineEvent[];
}

export type AgentStatus = "active" | "idle" | "paused" | "killed";

/** A row of `GET /v1/agents`. */
export interface AgentRow {
  agent_id: string;
  status: AgentStatus;
  status_reason: string | null;
  first_seen: string;
  last_seen: string;
  last_heartbeat: string | null;
  heartbeat_status: string | null;
  today: { events: number; runs: number; failures: number; tokens: number; cost_usd: number };
}

export interface Control {
  action: "pause" | "kill";
  reason: string | null;
  set_by: string | null;
  set_at: string | null;
}

export interface Violation {
  policy_id: string;
  policy_name: string | null;
  policy_kind: string | null;
  event_id: string;
  run_id: string | null;
  timestamp: string;
  action: string;
  detail: unknown;
}

/** `GET /v1/agents/{agent_id}?window=`. */
export interface AgentDetail {
  agent_id: string;
  status: AgentStatus;
  first_seen: string | null;
  last_seen: string | null;
  last_heartbeat: string | null;
  heartbeat_status: string | null;
  control: Control | null;
  window: string;
  totals: { runs: number; failed: number; cost_usd: number; llm_calls: number; latency_ms: { p50: number | null; p95: number | null } };
  bucket: string;
  series: { ts: string; runs: number; failed: number; cost_usd: number }[];
  models: { provider: string | null; model: string; llm_calls: number; cost_usd: number }[];
  workflows: string[];
  recent_runs: RunSummary[];
  recent_failures: RunSummary[];
  budgets: BudgetStatus[];
  violations: Violation[];
}

/** `GET /v1/metrics/cost`. */
export interface CostAnswer {
  group: string;
  window: string;
  bucket: string;
  groups: { key: string; cost_usd: number; runs: number; llm_calls: number; unpriced_calls: number }[];
  series: { ts: string; key: string; cost_usd: number }[];
  unpriced: { calls: number; models: { provider: string | null; model: string | null; calls: number }[] };
}

/** One side of `GET /v1/metrics/compare`. */
export interface Figures extends Overview {
  from: string;
  to: string | null;
}

export interface Compare {
  window: string;
  current: Figures;
  previous: Figures;
}

// --- The coding-agent hierarchy (query-api/src/hierarchy.rs) ---

/** Tokens by kind. */
export interface TokenTotals {
  input: number;
  output: number;
  cache_read: number;
  cache_write: number;
  reasoning: number;
  total: number;
}

/** All-time totals every hierarchy row has. */
export interface HierarchyTotals {
  first_seen: string;
  last_seen: string;
  events: number;
  llm_calls: number;
  tool_calls: number;
  errors: number;
  tokens: TokenTotals;
  cost_usd: number;
}

export type NodeStatus = "killed" | "paused" | "active" | "idle";

/** A project, machine or workspace (`url` for projects, `name` / `os`
 *  for machines, `project_id` / `machine_id` / `path` for workspaces). */
export interface HNode extends HierarchyTotals {
  id: string;
  status: NodeStatus;
  status_reason: string | null;
  url: string | null;
  name: string | null;
  os: string | null;
  project_id: string | null;
  machine_id: string | null;
  path: string | null;
  sessions: number;
}

/** A project's workspaces on one machine, or a machine's in one project. */
export interface HGroup extends HierarchyTotals {
  id: string | null;
  workspaces: number;
}

export type SessionStatus = "killed" | "paused" | "completed" | "failed" | "running" | "idle";

export interface SessionSummary extends HierarchyTotals {
  session_id: string;
  agent_id: string | null;
  project_id: string | null;
  machine_id: string | null;
  workspace_id: string | null;
  git_branch: string | null;
  model: string | null;
  status: SessionStatus;
  status_reason: string | null;
  ended_at: string | null;
}

export type HierarchyKind = "project" | "machine" | "workspace";

export interface Crumb {
  kind: HierarchyKind;
  id: string;
  /** The machine's name, the workspace's path, else the id. */
  label: string;
}

/** One event of a session's timeline. */
export interface SessionEvent {
  event_id: string;
  ts: string;
  type: string;
  agent_id: string;
  status: string | null;
  model: string | null;
  tool_name: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  reasoning_tokens: number | null;
  cost_usd: number | null;
  latency_ms: number | null;
  error_type: string | null;
  error_message: string | null;
  /** Subagent work, rolled into this session. */
  sidechain: boolean;
}

export interface ProjectPage {
  project: HNode;
  machines: HGroup[];
  workspaces: HNode[];
  sessions: SessionSummary[];
}

export interface MachinePage {
  machine: HNode;
  projects: HGroup[];
  workspaces: HNode[];
  sessions: SessionSummary[];
}

export interface WorkspacePage {
  workspace: HNode;
  sessions: SessionSummary[];
}

export interface SessionList {
  sessions: SessionSummary[];
  next_cursor: string | null;
}

export interface SessionPage {
  session: SessionSummary;
  breadcrumbs: Crumb[];
  timeline: SessionEvent[];
  next_cursor: string | null;
}

/** `GET /v1/sessions` filters. */
export interface SessionFilter {
  project_id?: string | null;
  machine_id?: string | null;
  workspace_id?: string | null;
  status?: string | null;
}

export type ScopeControlKind = HierarchyKind | "session";

export type ControlAction = "pause" | "kill" | "resume";

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class Api {
  /** The session's CSRF token, once known (sign-in or `me`). */
  csrf: string | null = null;
  /** Called on a 401 (the session expired or was revoked, the key was
   *  revoked): the app goes back to sign-in. */
  onUnauthorized: ((e: ApiError) => void) | null = null;

  /** `key`: an API key; `null`: the session cookie. */
  constructor(
    readonly key: string | null,
    private readonly fetcher: Fetch = (i, init) => fetch(i, init),
  ) {}

  private headers(): Record<string, string> {
    const h: Record<string, string> = { accept: "application/json" };
    if (this.key) h.authorization = `Bearer ${this.key}`;
    return h;
  }

  /** GETs answered or in flight, by path: panels drawn together (the
   *  header's HUD and a page both reading the budgets) share one request.
   *  Any POST, PUT or DELETE forgets them all. */
  private readonly recent = new Map<string, { at: number; answer: Promise<unknown> }>();

  /** How long an answer is shared (well under every refresh period). */
  static readonly SHARE_MS = 1000;

  get<T>(path: string): Promise<T> {
    const now = Date.now();
    const hit = this.recent.get(path);
    if (hit && now - hit.at < Api.SHARE_MS) return hit.answer as Promise<T>;
    const answer = this.call<T>(path, { headers: this.headers() });
    this.recent.set(path, { at: now, answer });
    // A failure is not shared with the next caller.
    answer.catch(() => this.recent.delete(path));
    for (const [k, v] of this.recent) if (now - v.at >= Api.SHARE_MS) this.recent.delete(k);
    return answer;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>("POST", path, body);
  }

  async put<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>("PUT", path, body);
  }

  async del<T = unknown>(path: string): Promise<T> {
    return this.send<T>("DELETE", path, undefined);
  }

  /** A mutating call: JSON body, and the session's CSRF token. */
  private async send<T>(method: string, path: string, body: unknown): Promise<T> {
    const headers: Record<string, string> = { ...this.headers() };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.csrf) headers["x-csrf-token"] = this.csrf;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    // A change makes every shared answer stale, whatever the outcome.
    this.recent.clear();
    try {
      return await this.call<T>(path, init);
    } finally {
      this.recent.clear();
    }
  }

  private async call<T>(path: string, init: RequestInit): Promise<T> {
    const r = await this.fetcher(path, { ...init, credentials: "same-origin" });
    const body: unknown = r.status === 204 ? null : await r.json().catch(() => null);
    if (!r.ok) {
      const e = (body as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
      const err = new ApiError(r.status, e?.code ?? "http_error", e?.message ?? `HTTP ${r.status}`, e?.field);
      if (r.status === 401 && !path.startsWith("/v1/auth/")) this.onUnauthorized?.(err);
      throw err;
    }
    return body as T;
  }

  async me(): Promise<Me> {
    const me = await this.get<Me>("/v1/auth/me");
    this.csrf = me.csrf_token ?? null;
    return me;
  }

  async login(email: string, password: string): Promise<Me> {
    const me = await this.post<Me>("/v1/auth/login", { email, password });
    this.csrf = me.csrf_token ?? null;
    return me;
  }

  async logout(): Promise<void> {
    await this.post("/v1/auth/logout", {});
    this.csrf = null;
  }

  overview(window: string): Promise<Overview> {
    return this.get(`/v1/metrics/overview?window=${encodeURIComponent(window)}`);
  }

  series(metric: string, window: string, bucket: string): Promise<Series> {
    const q = new URLSearchParams({ metric, window, bucket });
    return this.get(`/v1/metrics/timeseries?${q.toString()}`);
  }

  async top(by: "cost" | "runs", window: string, limit = 10): Promise<TopRow[]> {
    const q = new URLSearchParams({ by, window, limit: String(limit) });
    return (await this.get<{ top: TopRow[] }>(`/v1/metrics/top?${q.toString()}`)).top;
  }

  // --- Runs, agents, cost ---

  /** A page of `GET /v1/runs` (`query`: the explorer's `apiQuery`). */
  runs(query: string): Promise<RunPage> {
    return this.get(`/v1/runs?${query}`);
  }

  run(id: string): Promise<RunDetail> {
    return this.get(`/v1/runs/${encodeURIComponent(id)}`);
  }

  /** A download of `GET /v1/runs/export` through this client's
   *  credentials (a key cannot ride on a plain link). */
  async exportBlob(query: string): Promise<Blob> {
    const r = await this.fetcher(`/v1/runs/export?${query}`, { headers: this.headers(), credentials: "same-origin" });
    if (!r.ok) throw new ApiError(r.status, "http_error", `export: HTTP ${r.status}`);
    return r.blob();
  }

  async agents(limit = 200): Promise<AgentRow[]> {
    return (await this.get<{ agents: AgentRow[] }>(`/v1/agents?limit=${limit}`)).agents;
  }

  agent(id: string, window: string): Promise<AgentDetail> {
    return this.get(`/v1/agents/${encodeURIComponent(id)}?window=${encodeURIComponent(window)}`);
  }

  /** Pause, kill or resume an agent (admins and owners). */
  control(id: string, action: ControlAction, reason: string): Promise<unknown> {
    // Resume takes no body fields.
    const body = !reason.trim() ? {} : { reason: reason.trim() };
    return this.post(`/v1/admin/agents/${encodeURIComponent(id)}/${action}`, body);
  }

  cost(group: string, window: string, bucket: string, limit = 10): Promise<CostAnswer> {
    const q = new URLSearchParams({ group, window, bucket, limit: String(limit) });
    return this.get(`/v1/metrics/cost?${q.toString()}`);
  }

  compare(window: string): Promise<Compare> {
    return this.get(`/v1/metrics/compare?window=${encodeURIComponent(window)}`);
  }

  async failures(limit = 10): Promise<Failure[]> {
    return (await this.get<{ failures: Failure[] }>(`/v1/failures/recent?limit=${limit}`)).failures;
  }

  async budgets(): Promise<BudgetStatus[]> {
    return (await this.get<{ budgets: BudgetStatus[] }>("/v1/budgets/status")).budgets;
  }

  // --- The coding-agent hierarchy ---

  async projects(sort: "last_seen" | "cost" = "last_seen", limit = 200): Promise<HNode[]> {
    return (await this.get<{ projects: HNode[] }>(`/v1/projects?sort=${sort}&limit=${limit}`)).projects;
  }

  async machines(sort: "last_seen" | "cost" = "last_seen", limit = 200): Promise<HNode[]> {
    return (await this.get<{ machines: HNode[] }>(`/v1/machines?sort=${sort}&limit=${limit}`)).machines;
  }

  project(id: string): Promise<ProjectPage> {
    return this.get(`/v1/projects/${encodeURIComponent(id)}`);
  }

  machine(id: string): Promise<MachinePage> {
    return this.get(`/v1/machines/${encodeURIComponent(id)}`);
  }

  workspace(id: string): Promise<WorkspacePage> {
    return this.get(`/v1/workspaces/${encodeURIComponent(id)}`);
  }

  /** A page of `GET /v1/sessions`, latest first. */
  sessions(filter: SessionFilter, cursor: string | null = null, limit = 50): Promise<SessionList> {
    return this.get(`/v1/sessions?${sessionQuery(filter, cursor, limit)}`);
  }

  /** A session and a page of its timeline (`cursor`: the previous page's `next_cursor`). */
  session(id: string, cursor: string | null = null, limit = 500): Promise<SessionPage> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) q.set("cursor", cursor);
    return this.get(`/v1/sessions/${encodeURIComponent(id)}?${q.toString()}`);
  }

  /** Pause or resume a project, machine, workspace or session (admins and owners). */
  scopeControl(kind: ScopeControlKind, id: string, action: "pause" | "resume", reason: string): Promise<{ resumed?: boolean }> {
    const body = !reason.trim() ? {} : { reason: reason.trim() };
    return this.post(`/v1/admin/controls/${kind}/${encodeURIComponent(id)}/${action}`, body);
  }

  // --- Alerts ---

  async alerts(state: AlertState | null, limit = 100): Promise<Alert[]> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (state) q.set("state", state);
    return (await this.get<{ alerts: Alert[] }>(`/v1/alerts?${q.toString()}`)).alerts;
  }

  alert(id: string): Promise<AlertDetail> {
    return this.get(`/v1/alerts/${encodeURIComponent(id)}`);
  }

  ack(id: string, note: string | undefined): Promise<AlertDetail> {
    return this.post(`/v1/alerts/${encodeURIComponent(id)}/ack`, note ? { note } : {});
  }

  // --- API keys (owners) ---

  async keys(): Promise<ApiKey[]> {
    return (await this.get<{ keys: ApiKey[] }>("/v1/admin/keys")).keys;
  }

  createKey(body: Record<string, unknown>): Promise<NewApiKey> {
    return this.post("/v1/admin/keys", body);
  }

  revokeKey(id: string): Promise<ApiKey> {
    return this.post(`/v1/admin/keys/${encodeURIComponent(id)}/revoke`, {});
  }

  // --- Configuration rows: budgets, alert rules, policies, channels (admins) ---

  async list<K extends keyof Config>(kind: K): Promise<Config[K][]> {
    return (await this.get<Record<string, Config[K][]>>(CONFIG[kind].path))[CONFIG[kind].key] ?? [];
  }

  create<K extends keyof Config>(kind: K, body: unknown): Promise<Config[K]> {
    return this.post(CONFIG[kind].path, body);
  }

  update<K extends keyof Config>(kind: K, id: string, body: unknown): Promise<Config[K]> {
    return this.put(`${CONFIG[kind].path}/${encodeURIComponent(id)}`, body);
  }

  remove(kind: keyof Config, id: string): Promise<unknown> {
    return this.del(`${CONFIG[kind].path}/${encodeURIComponent(id)}`);
  }

  testChannel(id: string): Promise<ChannelTest> {
    return this.post(`/v1/admin/channels/${encodeURIComponent(id)}/test`, {});
  }

  digest(): Promise<Digest> {
    return this.get("/v1/admin/digest");
  }

  setDigest(body: Record<string, unknown>): Promise<Digest> {
    return this.put("/v1/admin/digest", body);
  }

  unsubscribeDigest(): Promise<unknown> {
    return this.del("/v1/admin/digest");
  }

  // --- Prices ---

  async prices(): Promise<Price[]> {
    return (await this.get<{ prices: Price[] }>("/v1/admin/prices")).prices;
  }

  addPrice(body: unknown): Promise<Price> {
    return this.post("/v1/admin/prices", body);
  }

  async unknownModels(window = "7d"): Promise<UnknownModel[]> {
    return (await this.get<{ models: UnknownModel[] }>(`/v1/prices/unknown?window=${encodeURIComponent(window)}`)).models;
  }

  // --- Members and invitations ---

  async members(): Promise<Member[]> {
    return (await this.get<{ members: Member[] }>("/v1/admin/members")).members;
  }

  setRole(userId: string, role: Role): Promise<Member> {
    return this.put(`/v1/admin/members/${encodeURIComponent(userId)}`, { role });
  }

  removeMember(userId: string): Promise<Member> {
    return this.del(`/v1/admin/members/${encodeURIComponent(userId)}`);
  }

  async invitations(): Promise<Invitation[]> {
    return (await this.get<{ invitations: Invitation[] }>("/v1/admin/invitations")).invitations;
  }

  invite(body: { email?: string; role?: string }): Promise<NewInvitation> {
    return this.post("/v1/admin/invitations", body);
  }

  revokeInvitation(id: string): Promise<unknown> {
    return this.del(`/v1/admin/invitations/${encodeURIComponent(id)}`);
  }

  acceptInvitation(body: { token: string; name?: string; password: string }): Promise<{ email: string; org_id: string; role: Role }> {
    return this.post("/v1/auth/accept-invitation", body);
  }
}

/** The configuration resources of `/v1/admin/<path>` (generic CRUD). */
export interface Config {
  budgets: Budget;
  rules: AlertRule;
  policies: Policy;
  channels: Channel;
}

const CONFIG: Record<keyof Config, { path: string; key: string }> = {
  budgets: { path: "/v1/admin/budgets", key: "budgets" },
  rules: { path: "/v1/admin/alert-rules", key: "alert_rules" },
  policies: { path: "/v1/admin/policies", key: "policies" },
  channels: { path: "/v1/admin/channels", key: "channels" },
};

/** The query of `GET /v1/sessions`: the filter's set fields, a page size and cursor. */
export function sessionQuery(filter: SessionFilter, cursor: string | null, limit: number): string {
  const q = new URLSearchParams();
  for (const k of ["project_id", "machine_id", "workspace_id", "status"] as const) {
    const v = filter[k];
    if (v) q.set(k, v);
  }
  q.set("limit", String(limit));
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}
