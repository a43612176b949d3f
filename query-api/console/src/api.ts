// The query API as the console uses it: same origin, a read key (until
// sign-in sessions land) in the Authorization header, errors as the API's
// JSON `{error: {code, message, field?}}`.

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

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

export class Api {
  constructor(
    private readonly key: string,
    private readonly fetcher: Fetch = (i, init) => fetch(i, init),
  ) {}

  async get<T>(path: string): Promise<T> {
    const r = await this.fetcher(path, {
      headers: { authorization: `Bearer ${this.key}`, accept: "application/json" },
    });
    const body: unknown = await r.json().catch(() => null);
    if (!r.ok) {
      const e = (body as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
      throw new ApiError(r.status, e?.code ?? "http_error", e?.message ?? `HTTP ${r.status}`, e?.field);
    }
    return body as T;
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
