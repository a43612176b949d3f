import { test } from "node:test";
import assert from "node:assert/strict";
import { Client, anthropicUsage, geminiUsage, openAIUsage } from "../src/index.js";
import { FakeGateway, fastOptions } from "./helpers.js";

test("OpenAI Chat Completions: cached input and reasoning are taken out of input and output", () => {
  const r = {
    id: "chatcmpl-1",
    model: "gpt-4o-2024-08-06",
    usage: {
      prompt_tokens: 1200,
      completion_tokens: 300,
      total_tokens: 1500,
      prompt_tokens_details: { cached_tokens: 1000 },
      completion_tokens_details: { reasoning_tokens: 120 },
    },
  };
  assert.deepEqual(openAIUsage(r), {
    provider: "openai",
    model: "gpt-4o-2024-08-06",
    inputTokens: 200,
    cacheReadTokens: 1000,
    outputTokens: 180,
    reasoningTokens: 120,
  });
});

test("OpenAI without details: input and output as reported", () => {
  assert.deepEqual(openAIUsage({ model: "gpt-4o-mini", usage: { prompt_tokens: 10, completion_tokens: 5 } }), {
    provider: "openai",
    model: "gpt-4o-mini",
    inputTokens: 10,
    outputTokens: 5,
  });
});

test("OpenAI Responses API: input_tokens/output_tokens with their details", () => {
  const r = {
    object: "response",
    model: "o3",
    usage: {
      input_tokens: 500,
      input_tokens_details: { cached_tokens: 100 },
      output_tokens: 900,
      output_tokens_details: { reasoning_tokens: 700 },
      total_tokens: 1400,
    },
  };
  assert.deepEqual(openAIUsage(r), {
    provider: "openai",
    model: "o3",
    inputTokens: 400,
    cacheReadTokens: 100,
    outputTokens: 200,
    reasoningTokens: 700,
  });
});

test("OpenAI: inconsistent details never make a count negative", () => {
  const u = openAIUsage({
    usage: {
      prompt_tokens: 5,
      completion_tokens: 3,
      prompt_tokens_details: { cached_tokens: 9 },
      completion_tokens_details: { reasoning_tokens: 4 },
    },
  });
  assert.equal(u.inputTokens, 0);
  assert.equal(u.outputTokens, 0);
  assert.equal(u.cacheReadTokens, 9);
  assert.equal(u.reasoningTokens, 4);
  // Negative and non-numeric input counts are clamped or dropped.
  const v = openAIUsage({ usage: { prompt_tokens: -3, completion_tokens: "x" } });
  assert.equal(v.inputTokens, 0);
  assert.equal(v.outputTokens, undefined);
});

test("Anthropic: input excludes the cache counts already; cache reads and writes separate", () => {
  const r = {
    id: "msg_1",
    model: "claude-sonnet-4-5",
    usage: {
      input_tokens: 50,
      cache_read_input_tokens: 2000,
      cache_creation_input_tokens: 300,
      output_tokens: 400,
    },
  };
  assert.deepEqual(anthropicUsage(r), {
    provider: "anthropic",
    model: "claude-sonnet-4-5",
    inputTokens: 50,
    cacheReadTokens: 2000,
    cacheWriteTokens: 300,
    outputTokens: 400,
  });
  // Null cache fields (as the API sends them without caching) are left out.
  assert.deepEqual(
    anthropicUsage({ model: "m", usage: { input_tokens: 1, output_tokens: 2, cache_read_input_tokens: null } }),
    { provider: "anthropic", model: "m", inputTokens: 1, outputTokens: 2 },
  );
});

test("Gemini usageMetadata (camelCase): cached part of the prompt moved to cache reads, thoughts separate", () => {
  const r = {
    modelVersion: "gemini-2.5-flash",
    usageMetadata: {
      promptTokenCount: 1000,
      cachedContentTokenCount: 600,
      candidatesTokenCount: 80,
      thoughtsTokenCount: 250,
      totalTokenCount: 1330,
    },
  };
  assert.deepEqual(geminiUsage(r), {
    provider: "google",
    model: "gemini-2.5-flash",
    inputTokens: 400,
    cacheReadTokens: 600,
    outputTokens: 80,
    reasoningTokens: 250,
  });
});

test("Gemini usage_metadata (snake_case) maps the same way and never goes negative", () => {
  const r = {
    model_version: "gemini-2.5-pro",
    usage_metadata: { prompt_token_count: 10, cached_content_token_count: 20, candidates_token_count: 3 },
  };
  assert.deepEqual(geminiUsage(r), {
    provider: "google",
    model: "gemini-2.5-pro",
    inputTokens: 0,
    cacheReadTokens: 20,
    outputTokens: 3,
  });
});

test("llmCallFrom* send the mapped fields; extra overrides them", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  const c = new Client(fastOptions(gw.url));
  c.llmCallFromOpenAI(
    { model: "gpt-4o", usage: { prompt_tokens: 12, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 2 } } },
    { latencyMs: 850, runId: "r-1" },
  );
  c.llmCallFromAnthropic({ model: "claude-haiku-4-5", usage: { input_tokens: 3, output_tokens: 4 } }, { model: "override" });
  c.llmCallFromGemini({ modelVersion: "gemini-2.5-flash", usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 1 } });
  // Garbage responses still make an event, without token counts.
  c.llmCallFromOpenAI(null);
  c.llmCallFromAnthropic("nonsense");
  assert.equal(await c.flush(5000), true);
  const evs = gw.events();
  assert.equal(evs.length, 5);
  assert.deepEqual(
    [evs[0]!.provider, evs[0]!.model, evs[0]!.input_tokens, evs[0]!.cache_read_tokens, evs[0]!.output_tokens],
    ["openai", "gpt-4o", 10, 2, 7],
  );
  assert.equal(evs[0]!.latency_ms, 850);
  assert.equal(evs[0]!.run_id, "r-1");
  assert.equal(evs[0]!.type, "llm_call");
  assert.deepEqual([evs[1]!.provider, evs[1]!.model, evs[1]!.input_tokens, evs[1]!.output_tokens], ["anthropic", "override", 3, 4]);
  assert.deepEqual([evs[2]!.provider, evs[2]!.input_tokens, evs[2]!.output_tokens], ["google", 9, 1]);
  assert.equal(evs[3]!.provider, "openai");
  assert.equal(evs[3]!.input_tokens, undefined);
  assert.equal(evs[4]!.provider, "anthropic");
  assert.equal(c.stats().errors, 0);
  await c.shutdown(1000);
});
