// @agentops/sdk: runs, LLM and tool calls, heartbeats and directives for the AgentOps gateway.
//
// Module-level functions act on the client made by `init` (calls before `init` do nothing:
// `run` still runs its function); a `Client` can also be made and used directly.
import { Client, DEFAULTS, currentRun } from "./client.js";
import type { RunHandle } from "./client.js";
import { anthropicUsage, geminiUsage, openAIUsage } from "./providers.js";
import { SDK_VERSION } from "./transport.js";
import type {
  Directive,
  HeartbeatOptions,
  InitOptions,
  LlmCallOptions,
  RunOptions,
  Stats,
  ToolCallOptions,
} from "./types.js";

export { Client, DEFAULTS, currentRun, SDK_VERSION as VERSION, openAIUsage, anthropicUsage, geminiUsage };
export type { RunHandle };
export type {
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

let current: Client | undefined;

/**
 * Makes the process-wide client (and returns it). A second `init` replaces the first, which
 * is shut down in the background (its queued events get its `shutdownTimeoutMs` to go).
 */
export function init(options: InitOptions = {}): Client {
  const previous = current;
  current = new Client(options);
  if (previous !== undefined) void previous.shutdown();
  return current;
}

/** The client made by `init`, if any. */
export function getClient(): Client | undefined {
  return current;
}

/** See {@link Client.run}. Before `init`, only runs `fn`. */
export function run<T>(fn: (run: RunHandle) => T): T;
export function run<T>(options: RunOptions | undefined, fn: (run: RunHandle) => T): T;
export function run<T>(a: RunOptions | undefined | ((run: RunHandle) => T), b?: (run: RunHandle) => T): T {
  const c = current ?? inert();
  return typeof a === "function" ? c.run(a) : c.run(a, b as (run: RunHandle) => T);
}

/** See {@link Client.startRun}. Before `init`, a handle that sends nothing. */
export function startRun(options?: RunOptions): RunHandle {
  return (current ?? inert()).startRun(options);
}

export function llmCall(options: LlmCallOptions): string | undefined {
  return current?.llmCall(options);
}

export function llmCallFromOpenAI(response: unknown, extra?: LlmCallOptions): string | undefined {
  return current?.llmCallFromOpenAI(response, extra);
}

export function llmCallFromAnthropic(response: unknown, extra?: LlmCallOptions): string | undefined {
  return current?.llmCallFromAnthropic(response, extra);
}

export function llmCallFromGemini(response: unknown, extra?: LlmCallOptions): string | undefined {
  return current?.llmCallFromGemini(response, extra);
}

export function toolCall(options: ToolCallOptions): string | undefined {
  return current?.toolCall(options);
}

/** See {@link Client.tool}. Before `init`, only runs `fn`. */
export function tool<T>(toolNameOrOptions: string | ToolCallOptions, fn: () => T): T {
  return (current ?? inert()).tool(toolNameOrOptions, fn);
}

/** Every standing pause or kill, by agent. */
export function directives(): Record<string, Directive> {
  return current?.directives() ?? {};
}

export function heartbeat(options?: HeartbeatOptions): string | undefined {
  return current?.heartbeat(options);
}

export function shouldStop(agentId?: string): boolean {
  return current?.shouldStop(agentId) ?? false;
}

export function directive(agentId?: string): Directive | undefined {
  return current?.directive(agentId);
}

export function flush(timeoutMs?: number): Promise<boolean> {
  return current?.flush(timeoutMs) ?? Promise.resolve(true);
}

/** Shuts the `init` client down; later module-level calls are no-ops until the next `init`. */
export function shutdown(timeoutMs?: number): Promise<boolean> {
  const c = current;
  current = undefined;
  return c?.shutdown(timeoutMs) ?? Promise.resolve(true);
}

export function stats(): Stats {
  return (current ?? inert()).stats();
}

let inertClient: Client | undefined;
/** A disabled client: runs functions, sends nothing. */
function inert(): Client {
  inertClient ??= new Client({ apiKey: "", endpoint: "", disabled: true });
  return inertClient;
}
