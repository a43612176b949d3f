import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { anthropicUsage, geminiUsage, openAIUsage } from "./providers.js";
import { MAX_BATCH, Transport } from "./transport.js";
import type {
  CommonFields,
  Directive,
  EventContext,
  EventType,
  HeartbeatOptions,
  InitOptions,
  LlmCallOptions,
  Logger,
  RunOptions,
  Stats,
  ToolCallOptions,
  WireEvent,
} from "./types.js";
import {
  MAX_TEXT_BYTES,
  amount,
  attributesOf,
  count,
  errorFields,
  str,
  timestampOf,
  truncateBytes,
} from "./util.js";

interface RunScope {
  runId: string;
  agentId: string | undefined;
  workflowId: string | undefined;
}

/** The current run of each async context (shared by every client). */
const runScope = new AsyncLocalStorage<RunScope>();

/** The run the calling code is inside of ({@link Client.run}), if any. */
export function currentRun(): { runId: string; agentId?: string; workflowId?: string } | undefined {
  const s = runScope.getStore();
  if (s === undefined) return undefined;
  const out: { runId: string; agentId?: string; workflowId?: string } = { runId: s.runId };
  if (s.agentId !== undefined) out.agentId = s.agentId;
  if (s.workflowId !== undefined) out.workflowId = s.workflowId;
  return out;
}

/** A started run: ends once, with {@link RunHandle.end} or {@link RunHandle.fail}. */
export interface RunHandle {
  readonly runId: string;
  readonly agentId: string | undefined;
  readonly workflowId: string | undefined;
  /** Sends `run_completed` with the run's latency (once; later calls do nothing). */
  end(extra?: { attributes?: Record<string, unknown> }): void;
  /** Sends `run_failed` with the error's name and message (once). */
  fail(error: unknown, extra?: { attributes?: Record<string, unknown> }): void;
  /** An `llm_call` of this run. */
  llmCall(options: LlmCallOptions): string | undefined;
  /** A `tool_call` of this run. */
  toolCall(options: ToolCallOptions): string | undefined;
  /** Whether the gateway said this run's agent is paused or killed. */
  shouldStop(): boolean;
}

/** The defaults (the Python SDK's, in milliseconds). */
export const DEFAULTS = {
  endpoint: "http://localhost:8080",
  flushIntervalMs: 1000,
  maxBatch: 1000,
  maxQueue: 10_000,
  heartbeatIntervalMs: 0,
  timeoutMs: 10_000,
  retryBudgetMs: 120_000,
  maxRetries: 10,
  maxConcurrentRequests: 2,
  compressLevel: 1,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  shutdownTimeoutMs: 5_000,
} as const;

function env(name: string): string | undefined {
  try {
    return str(process.env[name]);
  } catch {
    return undefined;
  }
}

function num(v: unknown, dflt: number, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v)) return dflt;
  return Math.min(max, Math.max(min, v));
}

const consoleLogger: Logger = {
  warn(message: string): void {
    console.warn(message);
  },
};

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === "object" || typeof v === "function") &&
    typeof (v as { then?: unknown }).then === "function"
  );
}

/**
 * One connection to the gateway: a bounded queue, its background sender and the agents'
 * directives. Every method catches its own errors: nothing here throws into the agent (but
 * {@link Client.run} rethrows the agent's own error, unchanged).
 */
export class Client {
  private readonly transport: Transport | undefined;
  private readonly agentId: string | undefined;
  private readonly workflowId: string | undefined;
  private readonly onDirective: ((d: Directive) => void) | undefined;
  private readonly directiveMap = new Map<string, Directive>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private fallbackErrors = 0;
  private shutdownTimeoutMs: number = DEFAULTS.shutdownTimeoutMs;

  constructor(options: InitOptions = {}) {
    let transport: Transport | undefined;
    let agentId: string | undefined;
    let workflowId: string | undefined;
    let onDirective: ((d: Directive) => void) | undefined;
    try {
      const o = (options ?? {}) as Partial<InitOptions>;
      const logger = o.logger === undefined ? consoleLogger : o.logger;
      agentId = str(o.agentId);
      workflowId = str(o.workflowId);
      onDirective = typeof o.onDirective === "function" ? o.onDirective : undefined;
      if (o.disabled === true) {
        transport = undefined;
      } else if ((str(o.apiKey) ?? env("AGENTOPS_API_KEY")) === undefined) {
        warn(logger, "no apiKey (option or AGENTOPS_API_KEY): the client sends nothing");
      } else {
        const apiKey = str(o.apiKey) ?? env("AGENTOPS_API_KEY") ?? "";
        const endpoint = str(o.endpoint) ?? env("AGENTOPS_ENDPOINT") ?? DEFAULTS.endpoint;
        this.shutdownTimeoutMs = num(o.shutdownTimeoutMs, DEFAULTS.shutdownTimeoutMs, 0, 3_600_000);
        transport = new Transport({
          apiKey,
          endpoint,
          flushIntervalMs: num(o.flushIntervalMs, DEFAULTS.flushIntervalMs, 1, 3_600_000),
          maxBatch: Math.floor(num(o.maxBatch, DEFAULTS.maxBatch, 1, MAX_BATCH)),
          maxQueue: Math.floor(num(o.maxQueue, DEFAULTS.maxQueue, 1, 1e9)),
          timeoutMs: num(o.timeoutMs, DEFAULTS.timeoutMs, 1, 3_600_000),
          retryBudgetMs: num(o.retryBudgetMs, DEFAULTS.retryBudgetMs, 0, 1e12),
          maxRetries: Math.floor(num(o.maxRetries, DEFAULTS.maxRetries, 0, 1e9)),
          maxConcurrentRequests: Math.floor(num(o.maxConcurrentRequests, DEFAULTS.maxConcurrentRequests, 1, 64)),
          compressLevel: Math.floor(num(o.compressLevel, DEFAULTS.compressLevel, 1, 9)),
          backoffBaseMs: num(o.backoffBaseMs, DEFAULTS.backoffBaseMs, 0, 3_600_000),
          backoffMaxMs: num(o.backoffMaxMs, DEFAULTS.backoffMaxMs, 0, 3_600_000),
          compress: o.compress !== false,
          flushOnExit: o.flushOnExit !== false,
          shutdownTimeoutMs: this.shutdownTimeoutMs,
          logger,
          onAccepted: (agents, body) => this.onAccepted(agents, body),
        });
        const hb = num(o.heartbeatIntervalMs, DEFAULTS.heartbeatIntervalMs, 0, 86_400_000);
        if (hb > 0 && agentId !== undefined) {
          this.heartbeatTimer = setInterval(() => this.heartbeat(), hb);
          this.heartbeatTimer.unref();
        }
      }
    } catch {
      this.fallbackErrors++;
    }
    this.transport = transport;
    this.agentId = agentId;
    this.workflowId = workflowId;
    this.onDirective = onDirective;
    if (this.heartbeatTimer !== undefined) this.heartbeat();
  }

  /** False when the client sends nothing (disabled, or no API key). */
  get enabled(): boolean {
    return this.transport !== undefined;
  }

  // ---- runs ---------------------------------------------------------------------------

  /**
   * Runs `fn` as one run: `run_started`, then `run_completed` (with its latency) or
   * `run_failed` (the error's name and message) when `fn` returns or its promise settles.
   * The agent's result or error comes back unchanged; inside `fn` (and everything it awaits)
   * `llmCall`/`toolCall` default to the run's ids.
   */
  run<T>(fn: (run: RunHandle) => T): T;
  run<T>(options: RunOptions | undefined, fn: (run: RunHandle) => T): T;
  run<T>(a: RunOptions | undefined | ((run: RunHandle) => T), b?: (run: RunHandle) => T): T {
    const fn = typeof a === "function" ? a : b;
    const options = typeof a === "function" ? undefined : a;
    if (typeof fn !== "function") {
      this.error("run needs a function");
      return undefined as T;
    }
    const handle = this.startRun(options);
    const scope: RunScope = { runId: handle.runId, agentId: handle.agentId, workflowId: handle.workflowId };
    let result: T;
    try {
      result = runScope.run(scope, fn, handle);
    } catch (err) {
      handle.fail(err);
      throw err;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => {
          handle.end();
          return value;
        },
        (err: unknown) => {
          handle.fail(err);
          throw err;
        },
      ) as T;
    }
    handle.end();
    return result;
  }

  /** Sends `run_started` and returns a handle to end the run with (`end()` / `fail(err)`). */
  startRun(options?: RunOptions): RunHandle {
    let runId: string = randomUUID();
    let agentId: string | undefined;
    let workflowId: string | undefined;
    let attributes: Record<string, string> | undefined;
    try {
      const o = options ?? {};
      const scope = runScope.getStore();
      runId = str(o.runId) ?? runId;
      agentId = str(o.agentId) ?? scope?.agentId ?? this.agentId;
      workflowId = str(o.workflowId) ?? scope?.workflowId ?? this.workflowId;
      attributes = attributesOf(o.attributes);
    } catch {
      this.error();
    }
    const started = process.hrtime.bigint();
    const ctx = { runId, agentId, workflowId };
    this.emit("run_started", ctx, attributes === undefined ? {} : { attributes });
    let ended = false;
    const client = this;
    const latency = (): number => Number((process.hrtime.bigint() - started) / 1_000_000n);
    return {
      runId,
      agentId,
      workflowId,
      end(extra) {
        if (ended) return;
        ended = true;
        try {
          const attrs = attributesOf(extra?.attributes);
          const fields: Partial<WireEvent> = { status: "ok", latency_ms: latency() };
          if (attrs !== undefined) fields.attributes = attrs;
          client.emit("run_completed", ctx, fields);
        } catch {
          client.error();
        }
      },
      fail(error, extra) {
        if (ended) return;
        ended = true;
        try {
          const e = errorFields(error);
          const attrs = attributesOf(extra?.attributes);
          const fields: Partial<WireEvent> = {
            status: "error",
            latency_ms: latency(),
            error_type: e.type,
            error_message: e.message,
          };
          if (attrs !== undefined) fields.attributes = attrs;
          client.emit("run_failed", ctx, fields);
        } catch {
          client.error();
        }
      },
      llmCall(o) {
        return client.llmCall({ ...ctxOf(agentId, runId, workflowId), ...o });
      },
      toolCall(o) {
        return client.toolCall({ ...ctxOf(agentId, runId, workflowId), ...o });
      },
      shouldStop() {
        return client.shouldStop(agentId);
      },
    };
  }

  // ---- calls --------------------------------------------------------------------------

  /** Records one LLM call (token counts per the contract: input uncached, output without reasoning). Returns its event id. */
  llmCall(options: LlmCallOptions): string | undefined {
    if (this.transport === undefined) return undefined;
    try {
      const o = options ?? {};
      const f: Partial<WireEvent> = {};
      const provider = str(o.provider);
      if (provider !== undefined) f.provider = provider;
      const model = str(o.model);
      if (model !== undefined) f.model = model;
      const input = count(o.inputTokens);
      if (input !== undefined) f.input_tokens = input;
      const output = count(o.outputTokens);
      if (output !== undefined) f.output_tokens = output;
      const cacheRead = count(o.cacheReadTokens);
      if (cacheRead !== undefined) f.cache_read_tokens = cacheRead;
      const cacheWrite = count(o.cacheWriteTokens);
      if (cacheWrite !== undefined) f.cache_write_tokens = cacheWrite;
      const reasoning = count(o.reasoningTokens);
      if (reasoning !== undefined) f.reasoning_tokens = reasoning;
      const cost = amount(o.costUsd);
      if (cost !== undefined) f.cost_usd = cost;
      common(f, o);
      return this.emit("llm_call", o, f, o.timestamp);
    } catch {
      this.error();
      return undefined;
    }
  }

  /** An `llm_call` from an OpenAI Chat Completions or Responses API response (or its `usage`); `extra` overrides. */
  llmCallFromOpenAI(response: unknown, extra?: LlmCallOptions): string | undefined {
    return this.fromProvider(openAIUsage, response, extra);
  }

  /** An `llm_call` from an Anthropic Messages response (or its `usage`); `extra` overrides. */
  llmCallFromAnthropic(response: unknown, extra?: LlmCallOptions): string | undefined {
    return this.fromProvider(anthropicUsage, response, extra);
  }

  /** An `llm_call` from a Gemini `generateContent` response (or its `usageMetadata`); `extra` overrides. */
  llmCallFromGemini(response: unknown, extra?: LlmCallOptions): string | undefined {
    return this.fromProvider(geminiUsage, response, extra);
  }

  private fromProvider(
    map: (r: unknown) => LlmCallOptions,
    response: unknown,
    extra: LlmCallOptions | undefined,
  ): string | undefined {
    if (this.transport === undefined) return undefined;
    try {
      return this.llmCall({ ...map(response), ...(extra ?? {}) });
    } catch {
      this.error();
      return undefined;
    }
  }

  /** Records one tool call. Returns its event id. */
  toolCall(options: ToolCallOptions): string | undefined {
    if (this.transport === undefined) return undefined;
    try {
      const o = options ?? ({} as ToolCallOptions);
      const f: Partial<WireEvent> = {};
      const tool = str(o.toolName);
      if (tool !== undefined) f.tool_name = tool;
      common(f, o);
      return this.emit("tool_call", o, f, o.timestamp);
    } catch {
      this.error();
      return undefined;
    }
  }

  /**
   * Runs `fn` as one timed tool call: a `tool_call` with its latency when it returns (or its
   * promise settles), with `status: "error"` and the error's name and message when it throws;
   * the result or error comes back unchanged.
   */
  tool<T>(tool: string | ToolCallOptions, fn: () => T): T {
    if (typeof fn !== "function") {
      this.error("tool needs a function");
      return undefined as T;
    }
    const options: ToolCallOptions = typeof tool === "string" ? { toolName: tool } : { ...(tool ?? {}) } as ToolCallOptions;
    const started = process.hrtime.bigint();
    // The ids of the run the call starts in (the promise may settle elsewhere).
    const scope = runScope.getStore();
    const done = (error?: unknown): void => {
      try {
        const latencyMs = Number(process.hrtime.bigint() - started) / 1e6;
        const o: ToolCallOptions = { ...options, latencyMs: options.latencyMs ?? latencyMs };
        if (scope !== undefined) {
          o.runId ??= scope.runId;
          o.agentId ??= scope.agentId;
          o.workflowId ??= scope.workflowId;
        }
        if (error !== undefined) o.error = error;
        this.toolCall(o);
      } catch {
        this.error();
      }
    };
    let result: T;
    try {
      result = fn();
    } catch (err) {
      done(err ?? new Error(String(err)));
      throw err;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => {
          done();
          return value;
        },
        (err: unknown) => {
          done(err ?? new Error(String(err)));
          throw err;
        },
      ) as T;
    }
    done();
    return result;
  }

  /** Sends a heartbeat (its answer also refreshes the agent's directive). Returns its event id. */
  heartbeat(options?: HeartbeatOptions): string | undefined {
    if (this.transport === undefined) return undefined;
    try {
      const o = options ?? {};
      const f: Partial<WireEvent> = { status: o.status === "error" ? "error" : "ok" };
      const attrs = attributesOf(o.attributes);
      if (attrs !== undefined) f.attributes = attrs;
      // A heartbeat belongs to no run.
      const agentId = str(o.agentId) ?? runScope.getStore()?.agentId ?? this.agentId;
      return this.emit("heartbeat", { agentId, runId: undefined }, f);
    } catch {
      this.error();
      return undefined;
    }
  }

  // ---- directives ---------------------------------------------------------------------

  /** Whether the gateway's latest answer for `agentId` (default: the run's or the client's agent) held a pause or kill. */
  shouldStop(agentId?: string): boolean {
    try {
      const id = str(agentId) ?? runScope.getStore()?.agentId ?? this.agentId;
      return id !== undefined && this.directiveMap.has(id);
    } catch {
      this.error();
      return false;
    }
  }

  /** Every standing pause or kill, by agent. */
  directives(): Record<string, Directive> {
    const out: Record<string, Directive> = {};
    for (const [k, d] of this.directiveMap) out[k] = { ...d };
    return out;
  }

  /** The agent's current pause or kill, if any. */
  directive(agentId?: string): Directive | undefined {
    try {
      const id = str(agentId) ?? runScope.getStore()?.agentId ?? this.agentId;
      const d = id === undefined ? undefined : this.directiveMap.get(id);
      return d === undefined ? undefined : { ...d };
    } catch {
      this.error();
      return undefined;
    }
  }

  private onAccepted(agents: Set<string>, body: unknown): void {
    const list = (body as { directives?: unknown } | null)?.directives;
    const named = new Set<string>();
    if (Array.isArray(list)) {
      for (const raw of list) {
        const d = raw as { agent_id?: unknown; action?: unknown; reason?: unknown } | null;
        const agentId = str(d?.agent_id);
        const action = d?.action;
        if (agentId === undefined || (action !== "pause" && action !== "kill")) continue;
        named.add(agentId);
        const next: Directive = { agentId, action, reason: typeof d?.reason === "string" ? d.reason : "" };
        const prev = this.directiveMap.get(agentId);
        if (prev === undefined || prev.action !== next.action || prev.reason !== next.reason) {
          this.directiveMap.set(agentId, next);
          this.callDirective(next);
        }
      }
    }
    // An answer for an agent without its directive means it was resumed.
    for (const agentId of agents) {
      if (!named.has(agentId) && this.directiveMap.delete(agentId)) {
        this.callDirective({ agentId, action: "resume", reason: "" });
      }
    }
  }

  private callDirective(d: Directive): void {
    if (this.onDirective === undefined) return;
    try {
      const r: unknown = this.onDirective({ ...d });
      // An async callback's rejection is swallowed too.
      if (isThenable(r)) Promise.resolve(r).catch(() => this.error());
    } catch {
      this.error();
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------

  /** Resolves true once everything queued before the call has been sent (or refused/dropped), false after `timeoutMs`. Never rejects. */
  flush(timeoutMs: number = 10_000): Promise<boolean> {
    try {
      if (this.transport === undefined) return Promise.resolve(true);
      return this.transport.flush(num(timeoutMs, 10_000, 0, 2_147_483_647)).catch(() => false);
    } catch {
      this.error();
      return Promise.resolve(false);
    }
  }

  /**
   * Stops the timers and flushes for at most `timeoutMs` (default `shutdownTimeoutMs`), then
   * gives up what is left (counted as `droppedShutdown`); later calls send nothing. Never rejects.
   */
  shutdown(timeoutMs?: number): Promise<boolean> {
    try {
      if (this.heartbeatTimer !== undefined) {
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = undefined;
      }
      if (this.transport === undefined) return Promise.resolve(true);
      return this.transport
        .shutdown(num(timeoutMs, this.shutdownTimeoutMs, 0, 2_147_483_647))
        .catch(() => false);
    } catch {
      this.error();
      return Promise.resolve(false);
    }
  }

  /** The client's counters. */
  stats(): Stats {
    try {
      if (this.transport !== undefined) return this.transport.stats();
    } catch {
      // fall through
    }
    return {
      enqueued: 0,
      sent: 0,
      droppedQueueFull: 0,
      droppedRetryBudget: 0,
      droppedShutdown: 0,
      rejected: 0,
      failedRequests: 0,
      retries: 0,
      errors: this.fallbackErrors,
      queued: 0,
      inFlight: 0,
    };
  }

  // ---- internals ----------------------------------------------------------------------

  private error(message?: string): void {
    if (this.transport === undefined) {
      this.fallbackErrors++;
      return;
    }
    this.transport.countError();
    if (message !== undefined) this.transport.warnOnce(`error:${message}`, message);
  }

  /** Builds and queues one event; the ids default to the current run's, then the client's. */
  private emit(
    type: EventType,
    ctx: EventContext,
    fields: Partial<WireEvent>,
    timestamp?: Date | number | string,
  ): string | undefined {
    const transport = this.transport;
    if (transport === undefined) return undefined;
    const scope = runScope.getStore();
    const agentId = str(ctx.agentId) ?? scope?.agentId ?? this.agentId;
    if (agentId === undefined) {
      transport.countError();
      transport.warnOnce("no_agent_id", `a ${type} event names no agent (pass agentId to init or the call): not sent`);
      return undefined;
    }
    const eventId = randomUUID();
    const ev: WireEvent = { event_id: eventId, type, agent_id: agentId, timestamp: timestampOf(timestamp) };
    const runId = str(ctx.runId) ?? (type === "heartbeat" ? undefined : scope?.runId);
    if (runId !== undefined) ev.run_id = runId;
    const workflowId = str(ctx.workflowId) ?? scope?.workflowId ?? this.workflowId;
    if (workflowId !== undefined) ev.workflow_id = workflowId;
    Object.assign(ev, fields);
    return transport.enqueue(ev) ? eventId : undefined;
  }
}

function ctxOf(agentId: string | undefined, runId: string, workflowId: string | undefined): EventContext {
  const c: EventContext = { runId };
  if (agentId !== undefined) c.agentId = agentId;
  if (workflowId !== undefined) c.workflowId = workflowId;
  return c;
}

function warn(logger: Logger | null, message: string): void {
  try {
    logger?.warn(`[agentops] ${message}`);
  } catch {
    // a throwing logger is ignored
  }
}

/** Status, latency, error and trace fields shared by LLM and tool calls. */
function common(f: Partial<WireEvent>, o: CommonFields): void {
  let errorType = str(o.errorType);
  let errorMessage = typeof o.errorMessage === "string" ? o.errorMessage : undefined;
  if (o.error !== undefined && o.error !== null) {
    const e = errorFields(o.error);
    errorType ??= e.type;
    errorMessage ??= e.message;
  }
  const status = o.status === "ok" || o.status === "error" ? o.status : undefined;
  f.status = status ?? (errorType !== undefined || o.error !== undefined ? "error" : "ok");
  const latency = count(o.latencyMs);
  if (latency !== undefined) f.latency_ms = latency;
  if (errorType !== undefined) f.error_type = errorType;
  if (errorMessage !== undefined) f.error_message = truncateBytes(errorMessage, MAX_TEXT_BYTES);
  const trace = str(o.traceId);
  if (trace !== undefined) f.trace_id = trace;
  const span = str(o.spanId);
  if (span !== undefined) f.span_id = span;
  if (o.attributes !== undefined) {
    const attrs = attributesOf(o.attributes);
    if (attrs !== undefined) f.attributes = attrs;
  }
}
