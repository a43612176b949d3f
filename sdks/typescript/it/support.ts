// Integration tests against the real pipeline (the contract: AGENTOPS_IT_* variables).
// Missing variables skip the tests, or fail them when AGENTOPS_IT_REQUIRED=1 (CI).
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { setTimeout as delay } from "node:timers/promises";

const VARS = [
  "AGENTOPS_IT_GATEWAY",
  "AGENTOPS_IT_QUERY",
  "AGENTOPS_IT_INGEST_KEY",
  "AGENTOPS_IT_READ_KEY",
  "AGENTOPS_IT_ADMIN_KEY",
] as const;

/** How long the asynchronous pipeline may take to show what was sent. */
export const DEADLINE_MS = 60_000;

export interface Stack {
  gateway: string;
  query: string;
  ingestKey: string;
  readKey: string;
  adminKey: string;
}

const missing = VARS.filter((v) => !process.env[v]);
const required = process.env.AGENTOPS_IT_REQUIRED === "1";

/**
 * The `skip` option for every integration test: false when the stack's variables are set;
 * the reason to skip when they are not, unless AGENTOPS_IT_REQUIRED=1 (then the tests run and
 * fail in `stack()`).
 */
export const skip: string | false =
  missing.length === 0 || required ? false : `integration variables not set: ${missing.join(", ")}`;

export function stack(): Stack {
  if (missing.length > 0) {
    throw new Error(`integration variables not set: ${missing.join(", ")} (AGENTOPS_IT_REQUIRED=1)`);
  }
  const e = process.env as Record<(typeof VARS)[number], string>;
  return {
    gateway: e.AGENTOPS_IT_GATEWAY.replace(/\/+$/, ""),
    query: e.AGENTOPS_IT_QUERY.replace(/\/+$/, ""),
    ingestKey: e.AGENTOPS_IT_INGEST_KEY,
    readKey: e.AGENTOPS_IT_READ_KEY,
    adminKey: e.AGENTOPS_IT_ADMIN_KEY,
  };
}

/** A unique id for this test run: tests share one org. */
export function uniq(prefix: string): string {
  return `${prefix}-ts-${randomUUID().slice(0, 12)}`;
}

export async function httpJson(
  method: string,
  url: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed };
}

export interface RunView {
  run_id: string;
  agent_id: string;
  workflow_id: string | null;
  status: string;
  latency_ms: number | null;
  event_count: number;
  input_tokens: number | null;
  output_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  reasoning_tokens: number | null;
  llm_calls: number | null;
  tool_calls: number | null;
  error_type: string | null;
  error_message: string | null;
  models: string[] | null;
  providers: string[] | null;
  tags: Record<string, string> | null;
  events: Record<string, unknown>[];
}

/**
 * Polls `GET /v1/runs/{id}` until `done(run)` holds; fails with the last answer after the
 * deadline.
 */
export async function waitForRun(s: Stack, runId: string, done: (r: RunView) => boolean): Promise<RunView> {
  const deadline = Date.now() + DEADLINE_MS;
  let last: unknown;
  for (;;) {
    const r = await httpJson("GET", `${s.query}/v1/runs/${encodeURIComponent(runId)}`, s.readKey);
    last = r;
    if (r.status === 200 && done(r.body as RunView)) return r.body as RunView;
    if (Date.now() > deadline) {
      throw new Error(`run ${runId} not as expected within ${DEADLINE_MS} ms; last answer: ${JSON.stringify(last)}`);
    }
    await delay(250);
  }
}

/** Polls `check()` (a poll, not an assertion on time) until it returns true or the deadline passes. */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = DEADLINE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await delay(200);
  }
}

export type ProxyMode =
  /** Forward to the gateway and return its answer. */
  | { kind: "pass" }
  /** Answer `status` with `Retry-After` without forwarding. */
  | { kind: "fail"; status: number; retryAfter?: string }
  /** Forward to the gateway (the events are written) but answer `status` instead of its 202. */
  | { kind: "forward-then-fail"; status: number; retryAfter?: string }
  /** Drop the connection without an answer (a gateway that is down). */
  | { kind: "down" };

export interface ProxiedRequest {
  at: number;
  mode: ProxyMode["kind"];
  status: number;
  eventIds: string[];
  headers: IncomingHttpHeaders;
}

/**
 * A fault-injecting HTTP proxy in front of the REAL gateway: each request is handled by the
 * next scripted mode (then `fallback`), and recorded with the event ids it carried.
 */
export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  script: ProxyMode[] = [];
  fallback: ProxyMode = { kind: "pass" };
  url = "";
  private server: Server | undefined;

  constructor(private readonly upstream: string) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        void (async () => {
          const raw = Buffer.concat(chunks);
          const mode = this.script.shift() ?? this.fallback;
          const rec: ProxiedRequest = { at: Date.now(), mode: mode.kind, status: 0, eventIds: eventIdsOf(req.headers, raw), headers: req.headers };
          this.requests.push(rec);
          if (mode.kind === "down") {
            req.socket.destroy();
            return;
          }
          if (mode.kind === "fail") {
            rec.status = mode.status;
            res.writeHead(mode.status, {
              "content-type": "application/json",
              ...(mode.retryAfter !== undefined ? { "retry-after": mode.retryAfter } : {}),
            });
            res.end(JSON.stringify({ error: { code: "injected", message: `fault proxy: ${mode.status}` } }));
            return;
          }
          try {
            const headers: Record<string, string> = {};
            for (const h of ["authorization", "x-api-key", "content-type", "content-encoding", "user-agent"]) {
              const v = req.headers[h];
              if (typeof v === "string") headers[h] = v;
            }
            const up = await fetch(this.upstream + (req.url ?? "/"), {
              method: req.method ?? "POST",
              headers,
              body: raw,
              signal: AbortSignal.timeout(30_000),
            });
            const text = await up.text();
            if (mode.kind === "forward-then-fail") {
              rec.status = mode.status;
              res.writeHead(mode.status, {
                "content-type": "application/json",
                ...(mode.retryAfter !== undefined ? { "retry-after": mode.retryAfter } : {}),
              });
              res.end(JSON.stringify({ error: { code: "injected", message: `gateway said ${up.status}; fault proxy says ${mode.status}` } }));
              return;
            }
            rec.status = up.status;
            const out: Record<string, string> = { "content-type": up.headers.get("content-type") ?? "application/json" };
            const ra = up.headers.get("retry-after");
            if (ra !== null) out["retry-after"] = ra;
            res.writeHead(up.status, out);
            res.end(text);
          } catch (e) {
            rec.status = 502;
            res.writeHead(502, { "content-type": "application/json" });
            res.end(JSON.stringify({ error: { code: "proxy", message: String(e) } }));
          }
        })();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

function eventIdsOf(headers: IncomingHttpHeaders, raw: Buffer): string[] {
  try {
    const body = headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
    const parsed = JSON.parse(body.toString("utf8")) as { events?: { event_id?: string }[] };
    return (parsed.events ?? []).map((e) => String(e.event_id));
  } catch {
    return [];
  }
}
