// Provider responses → llm_call fields, with the contract's token convention: input tokens
// are uncached input only, cache reads/writes separate, output tokens exclude reasoning,
// reasoning separate. Never negative; a missing count stays missing.
import { count, minus, str } from "./util.js";
import type { LlmCallOptions } from "./types.js";

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === "object" ? (v as Obj) : undefined;
}

function get(o: Obj | undefined, ...keys: string[]): unknown {
  if (o === undefined) return undefined;
  for (const k of keys) {
    const v = o[k];
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

function defined(o: LlmCallOptions): LlmCallOptions {
  for (const k of Object.keys(o) as (keyof LlmCallOptions)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/**
 * OpenAI usage (Chat Completions `prompt_tokens`/`completion_tokens` or Responses API
 * `input_tokens`/`output_tokens`, each with their `*_details`). Accepts the whole response or
 * its `usage` object.
 */
export function openAIUsage(response: unknown): LlmCallOptions {
  const r = obj(response);
  const usage = obj(get(r, "usage")) ?? r;
  const out: LlmCallOptions = { provider: "openai", model: str(get(r, "model")) };
  if (usage === undefined) return defined(out);
  if (get(usage, "prompt_tokens", "completion_tokens") !== undefined) {
    const cached = count(get(obj(get(usage, "prompt_tokens_details")), "cached_tokens"));
    const reasoning = count(get(obj(get(usage, "completion_tokens_details")), "reasoning_tokens"));
    out.inputTokens = minus(get(usage, "prompt_tokens"), cached);
    out.cacheReadTokens = cached;
    out.outputTokens = minus(get(usage, "completion_tokens"), reasoning);
    out.reasoningTokens = reasoning;
  } else {
    const cached = count(get(obj(get(usage, "input_tokens_details")), "cached_tokens"));
    const reasoning = count(get(obj(get(usage, "output_tokens_details")), "reasoning_tokens"));
    out.inputTokens = minus(get(usage, "input_tokens"), cached);
    out.cacheReadTokens = cached;
    out.outputTokens = minus(get(usage, "output_tokens"), reasoning);
    out.reasoningTokens = reasoning;
  }
  return defined(out);
}

/** Anthropic Messages usage: `input_tokens` already excludes both cache counts; thinking is inside `output_tokens`. */
export function anthropicUsage(response: unknown): LlmCallOptions {
  const r = obj(response);
  const usage = obj(get(r, "usage")) ?? r;
  const out: LlmCallOptions = { provider: "anthropic", model: str(get(r, "model")) };
  if (usage === undefined) return defined(out);
  out.inputTokens = count(get(usage, "input_tokens"));
  out.cacheReadTokens = count(get(usage, "cache_read_input_tokens"));
  out.cacheWriteTokens = count(get(usage, "cache_creation_input_tokens"));
  out.outputTokens = count(get(usage, "output_tokens"));
  return defined(out);
}

/**
 * Gemini `usageMetadata` (REST and the JS SDK, camelCase) or `usage_metadata` (snake_case):
 * `promptTokenCount` includes the cached tokens; `thoughtsTokenCount` is separate from
 * `candidatesTokenCount`.
 */
export function geminiUsage(response: unknown): LlmCallOptions {
  const r = obj(response);
  const u = obj(get(r, "usageMetadata", "usage_metadata")) ?? r;
  const out: LlmCallOptions = {
    provider: "google",
    model: str(get(r, "modelVersion", "model_version", "model")),
  };
  if (u === undefined) return defined(out);
  const cached = count(get(u, "cachedContentTokenCount", "cached_content_token_count"));
  out.inputTokens = minus(get(u, "promptTokenCount", "prompt_token_count"), cached);
  out.cacheReadTokens = cached;
  out.outputTokens = count(get(u, "candidatesTokenCount", "candidates_token_count"));
  out.reasoningTokens = count(get(u, "thoughtsTokenCount", "thoughts_token_count"));
  return defined(out);
}
