// A real local HTTP server standing in for the gateway in unit tests: it records every
// request (gunzipped) and answers what the test's `respond` says (default: 202, all accepted).
import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

export interface Received {
  n: number;
  at: number;
  headers: IncomingHttpHeaders;
  raw: Buffer;
  events: Record<string, unknown>[];
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Close the socket without an answer (a network error for the client). */
  destroy?: boolean;
  /** Never answer (until the server closes). */
  hang?: boolean;
  /** Answer what this promise resolves to, when it does. */
  later?: Promise<Reply>;
}

export type Responder = (req: Received) => Reply | undefined;

export function acceptAll(req: Received, directives: unknown[] = []): Reply {
  return { status: 202, body: { accepted: req.events.length, rejected: [], directives } };
}

export class FakeGateway {
  readonly requests: Received[] = [];
  respond: Responder = (r) => acceptAll(r);
  private server: Server | undefined;
  private readonly hung: ServerResponse[] = [];
  private listeners: (() => void)[] = [];
  url = "";

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks);
        const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
        let events: Record<string, unknown>[] = [];
        try {
          const parsed = JSON.parse(body.toString("utf8")) as unknown;
          if (Array.isArray(parsed)) events = parsed as Record<string, unknown>[];
          else if (parsed !== null && typeof parsed === "object" && "events" in parsed)
            events = (parsed as { events: Record<string, unknown>[] }).events;
          else events = [parsed as Record<string, unknown>];
        } catch {
          events = [];
        }
        const rec: Received = { n: this.requests.length + 1, at: Date.now(), headers: req.headers, raw, events };
        this.requests.push(rec);
        const reply = this.respond(rec) ?? acceptAll(rec);
        if (reply.destroy) {
          req.socket.destroy();
        } else if (reply.hang) {
          this.hung.push(res);
        } else if (reply.later) {
          this.hung.push(res);
          void reply.later.then((r) => {
            if (res.destroyed) return;
            res.writeHead(r.status, { "content-type": "application/json", ...(r.headers ?? {}) });
            res.end(r.body === undefined ? "" : JSON.stringify(r.body));
          });
        } else {
          res.writeHead(reply.status, { "content-type": "application/json", ...(reply.headers ?? {}) });
          res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
        }
        for (const l of this.listeners) l();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const addr = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${addr.port}`;
    return this;
  }

  /** Every event received, in order of arrival. */
  events(): Record<string, unknown>[] {
    return this.requests.flatMap((r) => r.events);
  }

  /** Resolves when `pred()` holds, checked after each request (rejects after `timeoutMs`). */
  waitFor(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (pred()) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`condition not met within ${timeoutMs} ms (${this.requests.length} requests)`));
      }, timeoutMs);
      this.listeners.push(check);
    });
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    const s = this.server;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** A logger that keeps its lines. */
export function memoryLogger(): { lines: string[]; warn(m: string): void } {
  const lines: string[] = [];
  return { lines, warn: (m: string) => void lines.push(m) };
}

/** Options shared by the unit tests: fast timers, a silent logger. */
export function fastOptions(url: string) {
  return {
    apiKey: "aok_test",
    endpoint: url,
    agentId: "agent-1",
    flushIntervalMs: 20,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    logger: null,
    flushOnExit: false,
  } as const;
}

/** A port nothing listens on (a server started and closed). */
export async function deadPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Every event queued is accounted for exactly once by the counters. */
export function balanced(s: {
  enqueued: number;
  sent: number;
  rejected: number;
  droppedQueueFull: number;
  droppedRetryBudget: number;
  droppedShutdown: number;
  queued: number;
  inFlight: number;
}): boolean {
  return (
    s.enqueued ===
    s.sent + s.rejected + s.droppedQueueFull + s.droppedRetryBudget + s.droppedShutdown + s.queued + s.inFlight
  );
}
