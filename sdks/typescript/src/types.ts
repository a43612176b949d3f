/** Event types the gateway accepts. */
export type EventType =
  | "run_started"
  | "run_completed"
  | "run_failed"
  | "llm_call"
  | "tool_call"
  | "heartbeat";

/** One event as it is sent to `POST /v1/events` (the gateway's snake_case fields). */
export interface WireEvent {
  event_id: string;
  type: EventType;
  agent_id: string;
  /** RFC 3339; the client stores microseconds since the epoch and the sender formats them. */
  timestamp: string | number;
  run_id?: string;
  workflow_id?: string;
  status?: string;
  latency_ms?: number;
  provider?: string;
  model?: string;
  input_tokens?: number;
  output_tokens?: number;
  cache_read_tokens?: number;
  cache_write_tokens?: number;
  reasoning_tokens?: number;
  cost_usd?: number;
  tool_name?: string;
  error_type?: string;
  error_message?: string;
  trace_id?: string;
  span_id?: string;
  attributes?: Record<string, string>;
}

/** Where a log line of the SDK goes (default: `console.warn`, once per kind of problem). */
export interface Logger {
  warn(message: string): void;
}

/** A pause or kill the gateway answered for an agent, or `resume` once it is lifted. */
export interface Directive {
  agentId: string;
  action: "pause" | "kill" | "resume";
  reason: string;
}

/** Options of {@link init} / `new Client(...)`. */
export interface InitOptions {
  /** Ingest key (`aok_...`), sent as `Authorization: Bearer <key>` (default `$AGENTOPS_API_KEY`). */
  apiKey?: string;
  /** The gateway's base URL (events go to `{endpoint}/v1/events`; default `$AGENTOPS_ENDPOINT`, else `http://localhost:8080`). */
  endpoint?: string;
  /** Default agent id of every event that names none (and of the timer's heartbeats). */
  agentId?: string;
  /** Default workflow id. */
  workflowId?: string;
  /** How often queued events are sent (default 1000 ms); a full batch is sent at once. */
  flushIntervalMs?: number;
  /** Events per request (default and most 1000, the gateway's cap; bodies over 1 MB are split). */
  maxBatch?: number;
  /** Events held in memory at most (default 10000); past it the oldest are dropped and counted. */
  maxQueue?: number;
  /** Send a heartbeat for `agentId` this often (default 0: no timer). */
  heartbeatIntervalMs?: number;
  /** Called on a new or changed pause/kill of an agent, and with `resume` when it is lifted. Its exceptions are swallowed. */
  onDirective?: (directive: Directive) => void;
  /** Timeout of one HTTP request (default 10000 ms). */
  timeoutMs?: number;
  /** How long one batch may be retried in all, from its first attempt (default 120000 ms); past it the batch is dropped and counted. */
  retryBudgetMs?: number;
  /** Retries of one batch at most, after its first attempt (default 10). */
  maxRetries?: number;
  /** Base of the exponential backoff (default 500 ms): the n-th retry waits a random time in [0, min(backoffMaxMs, base·2^n)), at least `Retry-After`. */
  backoffBaseMs?: number;
  /** Cap of one backoff wait (default 30000 ms). */
  backoffMaxMs?: number;
  /** Gzip request bodies (default true). */
  compress?: boolean;
  /** Gzip level 1-9 (default 1: agents' JSON compresses about 12x at level 1, barely better at 6, at 3x the CPU). */
  compressLevel?: number;
  /**
   * Requests in flight at most (default 2): the second only while full batches wait. Memory
   * stays within `maxQueue + maxConcurrentRequests × maxBatch` events.
   */
  maxConcurrentRequests?: number;
  /** Where the SDK's warnings go; `null` silences them. Default `console.warn`, once per kind. */
  logger?: Logger | null;
  /** Flush on the process's `beforeExit` (default true), for at most `shutdownTimeoutMs`. */
  flushOnExit?: boolean;
  /** Bound of the exit flush and the default of `shutdown()` (default 5000 ms). */
  shutdownTimeoutMs?: number;
  /** Send nothing (every call is a no-op); default false. */
  disabled?: boolean;
}

/** Ids an event is attributed to; inside {@link run} they default to the run's. */
export interface EventContext {
  agentId?: string;
  runId?: string;
  workflowId?: string;
}

/** Fields every call event may carry. */
export interface CommonFields extends EventContext {
  /** "ok" or "error" (default "ok", or "error" when `error`/`errorType` is given). */
  status?: "ok" | "error";
  latencyMs?: number;
  /** An error the call ended with: sets `status: "error"`, `errorType` (its name) and `errorMessage`. */
  error?: unknown;
  errorType?: string;
  errorMessage?: string;
  traceId?: string;
  spanId?: string;
  /** A string map (other values are converted to text; at most 64 keys are sent). */
  attributes?: Record<string, unknown>;
  /** When it happened (default now): a `Date`, epoch milliseconds or an RFC 3339 string. */
  timestamp?: Date | number | string;
}

export interface LlmCallOptions extends CommonFields {
  provider?: string;
  model?: string;
  /** Uncached input tokens only. */
  inputTokens?: number;
  /** Output tokens without reasoning tokens. */
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  reasoningTokens?: number;
  /** Cost in USD when the caller knows it (otherwise the pipeline prices the tokens). */
  costUsd?: number;
}

export interface ToolCallOptions extends CommonFields {
  toolName: string;
}

export interface RunOptions {
  /** Default: a new UUID. */
  runId?: string;
  agentId?: string;
  workflowId?: string;
  attributes?: Record<string, unknown>;
}

export interface HeartbeatOptions {
  agentId?: string;
  status?: "ok" | "error";
  attributes?: Record<string, unknown>;
}

/** Counters of one client (all since it was made). */
export interface Stats {
  /** Events accepted into the queue. */
  enqueued: number;
  /** Events the gateway acknowledged (202, not in `rejected`). */
  sent: number;
  /** Oldest events dropped because the queue was full. */
  droppedQueueFull: number;
  /** Events dropped after their batch's retry budget (time or retries) ran out. */
  droppedRetryBudget: number;
  /** Events still queued or in flight when `shutdown` gave up at its deadline. */
  droppedShutdown: number;
  /** Events the gateway refused (listed in a 202's `rejected`, or a whole 400/401/403/413 batch). */
  rejected: number;
  /** HTTP attempts that did not end in a 202 (network errors and timeouts included). */
  failedRequests: number;
  /** Attempts that were retries of a batch. */
  retries: number;
  /** Errors caught inside the SDK (bad arguments, a throwing callback, ...): never thrown to the caller. */
  errors: number;
  /** Events in the queue now. */
  queued: number;
  /** Events in requests now. */
  inFlight: number;
}
