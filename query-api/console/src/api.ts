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
  role?: "owner" | "admin" | "member" | "viewer";
  csrf_token?: string;
}

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class Api {
  /** The session's CSRF token, once known (sign-in or `me`). */
  csrf: string | null = null;

  /** `key`: an API key; `null`: the session cookie. */
  constructor(
    private readonly key: string | null,
    private readonly fetcher: Fetch = (i, init) => fetch(i, init),
  ) {}

  private headers(): Record<string, string> {
    const h: Record<string, string> = { accept: "application/json" };
    if (this.key) h.authorization = `Bearer ${this.key}`;
    return h;
  }

  async get<T>(path: string): Promise<T> {
    return this.call<T>(path, { headers: this.headers() });
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const headers = { ...this.headers(), "content-type": "application/json" };
    if (this.csrf) (headers as Record<string, string>)["x-csrf-token"] = this.csrf;
    return this.call<T>(path, { method: "POST", headers, body: JSON.stringify(body) });
  }

  private async call<T>(path: string, init: RequestInit): Promise<T> {
    const r = await this.fetcher(path, { ...init, credentials: "same-origin" });
    const body: unknown = await r.json().catch(() => null);
    if (!r.ok) {
      const e = (body as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
      throw new ApiError(r.status, e?.code ?? "http_error", e?.message ?? `HTTP ${r.status}`, e?.field);
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

  async failures(limit = 10): Promise<Failure[]> {
    return (await this.get<{ failures: Failure[] }>(`/v1/failures/recent?limit=${limit}`)).failures;
  }

  async budgets(): Promise<BudgetStatus[]> {
    return (await this.get<{ budgets: BudgetStatus[] }>("/v1/budgets/status")).budgets;
  }
}
