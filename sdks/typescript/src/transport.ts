import { gzip as gzipCb } from "node:zlib";
import { RingQueue } from "./queue.js";
import type { Logger, Stats, WireEvent } from "./types.js";
import { formatMicros } from "./util.js";

/** The gateway's caps: 1,000 events and 1 MiB (also once decompressed) per request. */
export const MAX_BATCH = 1000;
/** Bodies are split below this many bytes of JSON (1 MiB less a margin). */
export const MAX_BODY_BYTES = 1_000_000;

export const SDK_VERSION = "0.1.0";
const USER_AGENT = `agentops-sdk-typescript/${SDK_VERSION} node/${process.versions.node}`;

export interface TransportOptions {
  apiKey: string;
  endpoint: string;
  flushIntervalMs: number;
  maxBatch: number;
  maxQueue: number;
  timeoutMs: number;
  retryBudgetMs: number;
  maxRetries: number;
  maxConcurrentRequests: number;
  compressLevel: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  compress: boolean;
  flushOnExit: boolean;
  shutdownTimeoutMs: number;
  logger: Logger | null;
  /** Called with each 202's answer and the agents of its batch. */
  onAccepted: (agents: Set<string>, body: unknown) => void;
}

interface Item {
  seq: number;
  ev: WireEvent;
}

interface Batch {
  items: Item[];
  minSeq: number;
}

interface Waiter {
  target: number;
  resolve: (done: boolean) => void;
  timer: NodeJS.Timeout;
}

type Outcome =
  | { kind: "answer"; status: number; retryAfterMs: number | undefined; body: unknown }
  | { kind: "network"; error: unknown };

function gzipAsync(buf: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gzipCb(buf, { level }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(v: string | null): number | undefined {
  if (v === null) return undefined;
  const t = v.trim();
  if (t === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const at = Date.parse(t);
  if (Number.isFinite(at)) return Math.max(0, at - Date.now());
  return undefined;
}

// One `beforeExit` listener for every live transport (tests and apps may make many clients).
const live = new Set<Transport>();
let exitHookInstalled = false;
function onBeforeExit(): void {
  for (const t of live) t.exitFlush();
}

/**
 * The bounded queue and its sender: events wait in memory (at most `maxQueue`, the oldest
 * dropped past it) and are sent in batches from timers and promise callbacks, never on the
 * caller's stack. A batch keeps its event ids over every retry, so the pipeline's dedup by
 * event id makes retries harmless.
 */
export class Transport {
  private readonly queue: RingQueue<Item>;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly gzipHeaders: Record<string, string>;
  private readonly inFlightBatches = new Set<Batch>();
  private readonly waiters = new Set<Waiter>();
  private readonly logged = new Set<string>();
  private readonly sleeps = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private workers = 0;
  private kickScheduled = false;
  private closed = false;
  private abandoned = false;
  private exitFlushState: "idle" | "running" | "failed" = "idle";
  private readonly counters = {
    enqueued: 0,
    sent: 0,
    droppedQueueFull: 0,
    droppedRetryBudget: 0,
    droppedShutdown: 0,
    rejected: 0,
    failedRequests: 0,
    retries: 0,
    errors: 0,
  };
  private inFlight = 0;

  constructor(private readonly opts: TransportOptions) {
    this.queue = new RingQueue<Item>(Math.max(1, opts.maxQueue));
    this.url = opts.endpoint.replace(/\/+$/, "") + "/v1/events";
    this.headers = {
      "content-type": "application/json",
      authorization: `Bearer ${opts.apiKey}`,
      "user-agent": USER_AGENT,
    };
    this.gzipHeaders = { ...this.headers, "content-encoding": "gzip" };
    this.timer = setInterval(() => this.kick(), Math.max(1, opts.flushIntervalMs));
    this.timer.unref();
    if (opts.flushOnExit) {
      live.add(this);
      if (!exitHookInstalled) {
        process.on("beforeExit", onBeforeExit);
        exitHookInstalled = true;
      }
    }
  }

  /** Queue one event (the caller's thread: no I/O, no serialization); false once shut down. */
  enqueue(ev: WireEvent): boolean {
    if (this.closed) return false;
    const dropped = this.queue.push({ seq: ++this.seq, ev });
    this.counters.enqueued++;
    if (dropped !== undefined) {
      this.counters.droppedQueueFull++;
      this.warnOnce("queue_full", `queue full (${this.opts.maxQueue} events): dropping the oldest events`);
      this.progress();
    }
    if (this.queue.length >= this.opts.maxBatch) this.kick();
    return true;
  }

  /** Counts an error caught inside the SDK. */
  countError(): void {
    this.counters.errors++;
  }

  stats(): Stats {
    return { ...this.counters, queued: this.queue.length, inFlight: this.inFlight };
  }

  warnOnce(kind: string, message: string): void {
    if (this.logged.has(kind)) return;
    this.logged.add(kind);
    const logger = this.opts.logger;
    if (logger === null) return;
    try {
      logger.warn(`[agentops] ${message}`);
    } catch {
      this.counters.errors++;
    }
  }

  /**
   * Resolves true once every event queued before the call has left the queue (acknowledged,
   * refused or dropped), false if that takes longer than `timeoutMs`. Never rejects.
   */
  flush(timeoutMs: number): Promise<boolean> {
    const target = this.seq;
    if (!this.pendingUpTo(target)) return Promise.resolve(true);
    this.kick();
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        target,
        resolve,
        // Not unref'd: a caller awaiting flush keeps the process alive until it is done.
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve(false);
        }, Math.max(0, timeoutMs)),
      };
      this.waiters.add(waiter);
    });
  }

  /** Stops the timers, sends what is queued for at most `timeoutMs`, then abandons the rest. */
  async shutdown(timeoutMs: number): Promise<boolean> {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    live.delete(this);
    const done = this.closed ? !this.pendingUpTo(this.seq) : await this.flush(timeoutMs);
    this.closed = true;
    if (!done && !this.abandoned) {
      this.abandoned = true;
      // What is queued is given up (counted); a batch in flight is counted when its
      // request ends without a 202 (it may still be acknowledged).
      this.counters.droppedShutdown += this.queue.take(this.queue.length).length;
      for (const wake of this.sleeps) wake();
    }
    return done;
  }

  /** Called on the process's `beforeExit`: one flush while events are pending. */
  exitFlush(): void {
    if (this.closed || this.exitFlushState !== "idle" || !this.pendingUpTo(this.seq)) return;
    this.exitFlushState = "running";
    void this.flush(this.opts.shutdownTimeoutMs).then((ok) => {
      this.exitFlushState = ok ? "idle" : "failed";
    });
  }

  private pendingUpTo(target: number): boolean {
    const head = this.queue.peek();
    if (head !== undefined && head.seq <= target) return true;
    for (const b of this.inFlightBatches) if (b.minSeq <= target) return true;
    return false;
  }

  /** Wakes the flush waiters whose events have all left the queue. */
  private progress(): void {
    if (this.waiters.size === 0) return;
    for (const w of this.waiters) {
      if (!this.pendingUpTo(w.target)) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve(true);
      }
    }
  }

  /**
   * Starts sending soon (from a macrotask, never on the caller's stack): one worker while
   * anything is queued, more (up to `maxConcurrentRequests`) while full batches wait.
   */
  private kick(): void {
    if (this.kickScheduled || this.queue.length === 0 || this.abandoned) return;
    if (this.workers >= this.opts.maxConcurrentRequests) return;
    if (this.workers > 0 && this.queue.length < this.opts.maxBatch) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      while (
        this.queue.length > 0 &&
        !this.abandoned &&
        this.workers < this.opts.maxConcurrentRequests &&
        (this.workers === 0 || this.queue.length >= this.opts.maxBatch)
      ) {
        this.workers++;
        this.worker().catch(() => {
          this.counters.errors++;
        });
      }
    });
  }

  private async worker(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.abandoned) {
        const items = this.queue.take(this.opts.maxBatch);
        const first = items[0];
        if (first === undefined) break;
        const batch: Batch = { items, minSeq: first.seq };
        this.inFlightBatches.add(batch);
        this.inFlight += items.length;
        try {
          await this.sendItems(items);
        } catch {
          this.counters.errors++;
        } finally {
          this.inFlightBatches.delete(batch);
          this.inFlight -= items.length;
          this.progress();
        }
      }
    } finally {
      this.workers--;
      this.progress();
    }
  }

  /** Sends `items` until acknowledged, refused, or out of retry budget (splitting bodies over the cap). */
  private async sendItems(items: Item[]): Promise<void> {
    let body: Buffer;
    try {
      body = Buffer.from('{"events":[' + items.map((i) => serialize(i.ev)).join(",") + "]}", "utf8");
    } catch {
      // Unreachable with the events the client builds (string maps, numbers), but never throw.
      this.counters.errors++;
      this.counters.rejected += items.length;
      return;
    }
    if (body.length > MAX_BODY_BYTES && items.length > 1) {
      await this.split(items);
      return;
    }
    let payload = body;
    let gzipped = false;
    if (this.opts.compress) {
      try {
        payload = await gzipAsync(body, this.opts.compressLevel);
        gzipped = true;
      } catch {
        // Sent uncompressed rather than lost (zlib failing is not expected).
        this.counters.errors++;
      }
    }
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (this.abandoned) {
        this.counters.droppedShutdown += items.length;
        return;
      }
      if (attempt > 1) this.counters.retries++;
      const out = await this.post(payload, gzipped);
      if (out.kind === "answer" && out.status === 202) {
        this.accepted(items, out.body);
        return;
      }
      this.counters.failedRequests++;
      let retryAfterMs: number | undefined;
      if (out.kind === "answer") {
        const s = out.status;
        if (s === 413) {
          if (items.length > 1) {
            await this.split(items);
            return;
          }
          this.refused(items, s, out.body);
          return;
        }
        if (!(s === 408 || s === 429 || s >= 500)) {
          this.refused(items, s, out.body);
          return;
        }
        retryAfterMs = out.retryAfterMs;
      }
      const cap = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** Math.min(attempt - 1, 30));
      const delay = Math.max(retryAfterMs ?? 0, Math.random() * cap);
      if (attempt > this.opts.maxRetries || Date.now() + delay - started > this.opts.retryBudgetMs) {
        this.counters.droppedRetryBudget += items.length;
        const why = out.kind === "answer" ? `HTTP ${out.status}` : `network error (${describe(out.error)})`;
        this.warnOnce(
          "retry_budget",
          `dropping a batch of ${items.length} events after ${attempt} attempts: ${why}`,
        );
        return;
      }
      await this.sleep(delay);
    }
  }

  private async split(items: Item[]): Promise<void> {
    const mid = Math.ceil(items.length / 2);
    await this.sendItems(items.slice(0, mid));
    await this.sendItems(items.slice(mid));
  }

  private accepted(items: Item[], body: unknown): void {
    let rejected = 0;
    const b = body as { rejected?: unknown } | null;
    if (b !== null && typeof b === "object" && Array.isArray(b.rejected)) {
      rejected = Math.min(items.length, b.rejected.length);
      if (rejected > 0) {
        const r = b.rejected[0] as { field?: unknown; error?: unknown } | undefined;
        this.warnOnce(
          "rejected_events",
          `the gateway rejected ${rejected} of ${items.length} events (first: ${describe(r?.field)}: ${describe(r?.error)})`,
        );
      }
    }
    this.counters.rejected += rejected;
    this.counters.sent += items.length - rejected;
    const agents = new Set<string>();
    for (const i of items) agents.add(i.ev.agent_id);
    try {
      this.opts.onAccepted(agents, body);
    } catch {
      this.counters.errors++;
    }
  }

  private refused(items: Item[], status: number, body: unknown): void {
    this.counters.rejected += items.length;
    const err = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const detail = err ? `${describe(err.code)}: ${describe(err.message)}` : "";
    this.warnOnce(
      `http_${status}`,
      `the gateway refused a batch of ${items.length} events with HTTP ${status} ${detail} (not retried)`,
    );
  }

  private async post(payload: Buffer, gzipped: boolean): Promise<Outcome> {
    try {
      const res = await fetch(this.url, {
        method: "POST",
        headers: gzipped ? this.gzipHeaders : this.headers,
        body: payload,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      let body: unknown = undefined;
      try {
        const text = await res.text();
        body = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      return {
        kind: "answer",
        status: res.status,
        retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
        body,
      };
    } catch (error) {
      return { kind: "network", error };
    }
  }

  /** Waits `ms` (unref'd: a backoff alone keeps no process alive); cut short by an abandoning shutdown. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(t);
        this.sleeps.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      t.unref();
      this.sleeps.add(wake);
    });
  }
}

function serialize(ev: WireEvent): string {
  // Formatted here, off the caller's thread; idempotent, so a retried body is the same.
  if (typeof ev.timestamp === "number") ev.timestamp = formatMicros(ev.timestamp);
  return JSON.stringify(ev);
}

function describe(v: unknown): string {
  try {
    if (v instanceof Error) {
      const cause = (v as { cause?: unknown }).cause;
      return cause instanceof Error ? `${v.message}: ${cause.message}` : v.message;
    }
    return String(v);
  } catch {
    return "?";
  }
}
