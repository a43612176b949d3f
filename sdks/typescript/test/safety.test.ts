// Nothing the SDK does may throw into the agent or leave a rejected promise behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as sdk from "../src/index.js";
import { Client } from "../src/index.js";
import { FakeGateway, acceptAll, balanced, deadPort, fastOptions } from "./helpers.js";

// Any unhandled rejection or uncaught exception during these tests fails the run.
const unhandled: unknown[] = [];
process.on("unhandledRejection", (e) => unhandled.push(e));

test("before init every module-level call is a no-op; run still runs the function", async () => {
  assert.equal(sdk.getClient(), undefined);
  assert.equal(sdk.llmCall({ model: "m" }), undefined);
  assert.equal(sdk.toolCall({ toolName: "t" }), undefined);
  assert.equal(sdk.heartbeat(), undefined);
  assert.equal(sdk.llmCallFromOpenAI({ usage: {} }), undefined);
  assert.equal(sdk.llmCallFromAnthropic({}), undefined);
  assert.equal(sdk.llmCallFromGemini({}), undefined);
  assert.equal(sdk.shouldStop("a"), false);
  assert.equal(sdk.directive("a"), undefined);
  assert.equal(sdk.run({ runId: "r" }, () => 7), 7);
  assert.equal(await sdk.run(async () => 8), 8);
  const err = new Error("agent's own");
  assert.throws(
    () =>
      sdk.run(() => {
        throw err;
      }),
    (e: unknown) => e === err,
  );
  const h = sdk.startRun();
  h.llmCall({});
  h.end();
  assert.equal(await sdk.flush(10), true);
  assert.equal(await sdk.shutdown(10), true);
  assert.equal(sdk.stats().enqueued, 0);
});

test("init with bad options sends nothing and never throws", async () => {
  const logged: string[] = [];
  const c = sdk.init({ apiKey: "", endpoint: "", logger: { warn: (m) => void logged.push(m) } });
  assert.equal(c.llmCall({ model: "m" }), undefined);
  assert.equal(c.run(() => "ok"), "ok");
  assert.equal(logged.length, 1);
  // Nonsense of every kind.
  const bad = new Client(null as unknown as sdk.InitOptions);
  assert.equal(bad.toolCall(null as unknown as sdk.ToolCallOptions), undefined);
  assert.equal(await bad.flush(), true);
  assert.equal(await sdk.shutdown(), true);
});

test("the module-level API works after init and stops after shutdown", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  sdk.init(fastOptions(gw.url));
  const id = sdk.run({ runId: "mod-run" }, () => sdk.toolCall({ toolName: "t" }));
  assert.match(String(id), /^[0-9a-f-]{36}$/);
  assert.equal(await sdk.flush(5000), true);
  assert.equal(sdk.stats().sent, 3);
  assert.equal(await sdk.shutdown(5000), true);
  assert.equal(sdk.toolCall({ toolName: "after" }), undefined);
  assert.equal(gw.events().length, 3);
});

test("circular, throwing and odd attributes never throw and still send the event", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  const c = new Client(fastOptions(gw.url));
  const circular: Record<string, unknown> = { name: "loop" };
  circular.self = circular;
  const getter = Object.defineProperty({}, "boom", {
    enumerable: true,
    get() {
      throw new Error("getter");
    },
  });
  const badJson = { toJSON: () => { throw new Error("toJSON"); } };
  const proxy = new Proxy({}, { ownKeys: () => { throw new Error("ownKeys"); } });
  const many: Record<string, number> = {};
  for (let i = 0; i < 100; i++) many[`k${i}`] = i;
  c.toolCall({ toolName: "a", attributes: { circular, n: 1, ok: true, big: 10n, nested: { x: [1, 2] }, nil: null } });
  c.toolCall({ toolName: "b", attributes: getter });
  c.toolCall({ toolName: "c", attributes: { badJson, sym: Symbol("s") as unknown } });
  c.toolCall({ toolName: "d", attributes: proxy });
  c.toolCall({ toolName: "e", attributes: many });
  c.llmCall({ model: { toString: () => { throw new Error("x"); } } as unknown as string, inputTokens: NaN });
  c.toolCall({ toolName: "f", error: circular, errorMessage: undefined });
  c.run({ runId: "r", attributes: circular }, () => undefined);
  assert.equal(await c.flush(5000), true);
  const evs = gw.events();
  assert.equal(evs.length, 9);
  const a = evs[0]!.attributes as Record<string, string>;
  assert.equal(a.n, "1");
  assert.equal(a.ok, "true");
  assert.equal(a.big, "10");
  assert.equal(a.nested, '{"x":[1,2]}');
  assert.equal(typeof a.circular, "string");
  assert.equal("nil" in a, false);
  assert.deepEqual(evs[1]!.attributes, { boom: "[unreadable]" });
  assert.equal(typeof (evs[2]!.attributes as Record<string, string>).badJson, "string");
  assert.equal(evs[3]!.attributes, undefined);
  assert.equal(Object.keys(evs[4]!.attributes as object).length, 64);
  assert.equal(evs[5]!.model, undefined);
  assert.equal(evs[5]!.input_tokens, undefined);
  assert.equal(evs[6]!.status, "error");
  assert.equal(c.stats().sent, 9);
  await c.shutdown(1000);
});

test("a throwing onDirective callback and a throwing logger are swallowed", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  gw.respond = (r) => acceptAll(r, [{ agent_id: "agent-1", action: "pause", reason: "r" }]);
  let calls = 0;
  const c = new Client({
    ...fastOptions(gw.url),
    onDirective: () => {
      calls++;
      throw new Error("callback bug");
    },
    logger: {
      warn() {
        throw new Error("logger bug");
      },
    },
  });
  c.toolCall({ toolName: "t" });
  assert.equal(await c.flush(5000), true);
  assert.equal(calls, 1);
  assert.equal(c.shouldStop(), true);
  // An async callback's rejection too.
  const d = new Client({ ...fastOptions(gw.url), onDirective: async () => Promise.reject(new Error("async bug")) });
  d.toolCall({ toolName: "t" });
  assert.equal(await d.flush(5000), true);
  // The logger throws on the rejected batch's warning.
  gw.respond = () => ({ status: 400 });
  c.toolCall({ toolName: "t2" });
  assert.equal(await c.flush(5000), true);
  assert.ok(c.stats().errors >= 2);
  await c.shutdown(1000);
  await d.shutdown(1000);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(unhandled, []);
});

test("events without any agent id are not sent, counted as errors, never thrown", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  const c = new Client({ apiKey: "k", endpoint: gw.url, logger: null, flushOnExit: false });
  assert.equal(c.toolCall({ toolName: "t" }), undefined);
  assert.equal(c.run(() => 5), 5);
  assert.equal(c.stats().enqueued, 0);
  assert.equal(c.stats().errors, 3);
  await c.shutdown(100);
});

test("flush and shutdown resolve (never reject) with the gateway down or hanging", async (t) => {
  // Retries enough that the batch cannot be done within the 100 ms of flush.
  const c = new Client({ ...fastOptions(await deadPort()), timeoutMs: 200, maxRetries: 100_000 });
  c.toolCall({ toolName: "t" });
  assert.equal(await c.flush(100), false);
  assert.equal(await c.shutdown(100), false);
  // Calls after shutdown are ignored.
  assert.equal(c.stats().enqueued, 1);
  c.toolCall({ toolName: "late" });
  assert.equal(c.stats().enqueued, 1);

  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  gw.respond = () => ({ status: 0, hang: true });
  const h = new Client({ ...fastOptions(gw.url), timeoutMs: 100, maxRetries: 1 });
  h.toolCall({ toolName: "t" });
  // Two attempts, each cut by the 100 ms request timeout, then the batch is dropped.
  assert.equal(await h.flush(10_000), true);
  assert.equal(h.stats().failedRequests, 2);
  assert.equal(h.stats().droppedRetryBudget, 1);
  await h.shutdown(100);
  assert.deepEqual(unhandled, []);
});

test("shutdown past its deadline gives up what is left and counts it", async () => {
  const c = new Client({ ...fastOptions(await deadPort()), maxBatch: 2, backoffBaseMs: 1000, backoffMaxMs: 1000 });
  for (let i = 0; i < 6; i++) c.toolCall({ toolName: "t" });
  assert.equal(await c.shutdown(50), false);
  // The queued events at once; the batch in its backoff when it wakes up.
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (c.stats().inFlight === 0) resolve();
      else setTimeout(check, 5);
    };
    check();
  });
  const s = c.stats();
  assert.equal(s.droppedShutdown, 6);
  assert.ok(balanced(s));
  assert.equal(s.queued, 0);
  assert.equal(s.sent, 0);
});

test("apiKey and endpoint default to AGENTOPS_API_KEY and AGENTOPS_ENDPOINT", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  process.env.AGENTOPS_API_KEY = "aok_from_env";
  process.env.AGENTOPS_ENDPOINT = gw.url;
  try {
    const c = new Client({ agentId: "env-agent", logger: null, flushOnExit: false });
    assert.equal(c.enabled, true);
    c.heartbeat();
    assert.equal(await c.flush(5000), true);
    assert.equal(gw.requests[0]!.headers.authorization, "Bearer aok_from_env");
    await c.shutdown(100);
  } finally {
    delete process.env.AGENTOPS_API_KEY;
    delete process.env.AGENTOPS_ENDPOINT;
  }
  assert.equal(new Client({ logger: null }).enabled, false);
});
