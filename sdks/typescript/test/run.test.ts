import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { Client, currentRun } from "../src/index.js";
import { FakeGateway, fastOptions } from "./helpers.js";

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const gw = await new FakeGateway().start();
  const c = new Client({ ...fastOptions(gw.url), workflowId: "wf-1" });
  t.after(async () => {
    await c.shutdown(1000);
    await gw.close();
  });
  return { gw, c };
}

class AgentError extends Error {
  override name = "AgentError";
}

test("sync run: run_started, the calls with the run's ids, run_completed with latency", async (t) => {
  const { gw, c } = await setup(t);
  const out = c.run({ runId: "run-sync", attributes: { team: "search" } }, (run) => {
    assert.equal(run.runId, "run-sync");
    assert.equal(currentRun()?.runId, "run-sync");
    c.llmCall({ provider: "openai", model: "gpt-4o", inputTokens: 10, outputTokens: 5 });
    c.toolCall({ toolName: "search", latencyMs: 12 });
    return 42;
  });
  assert.equal(out, 42);
  assert.equal(currentRun(), undefined);
  assert.equal(await c.flush(5000), true);
  const evs = gw.events();
  assert.deepEqual(
    evs.map((e) => e.type),
    ["run_started", "llm_call", "tool_call", "run_completed"],
  );
  for (const e of evs) {
    assert.equal(e.run_id, "run-sync");
    assert.equal(e.agent_id, "agent-1");
    assert.equal(e.workflow_id, "wf-1");
    assert.match(String(e.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.match(String(e.event_id), /^[0-9a-f-]{36}$/);
  }
  // Timestamps strictly increase, so the run's timeline keeps the order.
  const ts = evs.map((e) => String(e.timestamp));
  assert.deepEqual([...ts].sort(), ts);
  assert.equal(new Set(ts).size, ts.length);
  assert.deepEqual(evs[0]!.attributes, { team: "search" });
  assert.equal(evs[3]!.status, "ok");
  assert.equal(typeof evs[3]!.latency_ms, "number");
  assert.equal(evs[2]!.tool_name, "search");
});

test("async run: ids follow the run across awaits and timers; completes after the promise", async (t) => {
  const { gw, c } = await setup(t);
  const p = c.run({ agentId: "agent-async" }, async (run) => {
    await delay(5);
    c.llmCall({ model: "m1" });
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        c.toolCall({ toolName: "t1" });
        resolve();
      }, 5),
    );
    return run.runId;
  });
  assert.ok(p instanceof Promise);
  const runId = await p;
  assert.equal(await c.flush(5000), true);
  const evs = gw.events();
  assert.deepEqual(
    evs.map((e) => e.type),
    ["run_started", "llm_call", "tool_call", "run_completed"],
  );
  for (const e of evs) {
    assert.equal(e.run_id, runId);
    assert.equal(e.agent_id, "agent-async");
  }
  assert.ok((evs[3]!.latency_ms as number) >= 5);
});

test("concurrent runs keep their own ids", async (t) => {
  const { gw, c } = await setup(t);
  const work = (name: string) =>
    c.run({ runId: name }, async () => {
      for (let i = 0; i < 5; i++) {
        await delay(1);
        c.toolCall({ toolName: `${name}-tool` });
      }
    });
  await Promise.all([work("run-a"), work("run-b"), work("run-c")]);
  assert.equal(await c.flush(5000), true);
  const calls = gw.events().filter((e) => e.type === "tool_call");
  assert.equal(calls.length, 15);
  for (const e of calls) assert.equal(`${String(e.run_id)}-tool`, e.tool_name);
});

test("a sync failure sends run_failed and rethrows the very same error", async (t) => {
  const { gw, c } = await setup(t);
  const err = new AgentError("model refused");
  assert.throws(
    () =>
      c.run({ runId: "run-fail" }, () => {
        throw err;
      }),
    (e: unknown) => e === err,
  );
  assert.equal(await c.flush(5000), true);
  const evs = gw.events();
  assert.deepEqual(
    evs.map((e) => e.type),
    ["run_started", "run_failed"],
  );
  const failed = evs[1]!;
  assert.equal(failed.error_type, "AgentError");
  assert.equal(failed.error_message, "model refused");
  assert.equal(failed.status, "error");
  assert.equal(typeof failed.latency_ms, "number");
});

test("an async rejection sends run_failed and rejects with the same error; thrown non-errors too", async (t) => {
  const { gw, c } = await setup(t);
  const err = new TypeError("bad tool input");
  await assert.rejects(
    c.run({ runId: "run-async-fail" }, async () => {
      await delay(1);
      throw err;
    }),
    (e: unknown) => e === err,
  );
  assert.throws(
    () =>
      c.run({ runId: "run-string" }, () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw "plain string";
      }),
    (e: unknown) => e === "plain string",
  );
  assert.equal(await c.flush(5000), true);
  const failed = gw.events().filter((e) => e.type === "run_failed");
  assert.equal(failed.length, 2);
  assert.equal(failed[0]!.error_type, "TypeError");
  assert.equal(failed[0]!.error_message, "bad tool input");
  assert.equal(failed[1]!.error_message, "plain string");
});

test("run(fn) without options gets a fresh UUID run id", async (t) => {
  const { gw, c } = await setup(t);
  const id = c.run((run) => run.runId);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(await c.flush(5000), true);
  assert.deepEqual(
    gw.events().map((e) => e.run_id),
    [id, id],
  );
});

test("startRun handle: calls carry its ids, end/fail count once", async (t) => {
  const { gw, c } = await setup(t);
  const run = c.startRun({ runId: "run-handle", agentId: "agent-h" });
  run.llmCall({ model: "gpt-4o", inputTokens: 1 });
  run.toolCall({ toolName: "fetch", error: new RangeError("timeout") });
  run.fail(new Error("first"));
  run.end();
  run.fail(new Error("second"));
  assert.equal(await c.flush(5000), true);
  const evs = gw.events();
  assert.deepEqual(
    evs.map((e) => e.type),
    ["run_started", "llm_call", "tool_call", "run_failed"],
  );
  for (const e of evs) {
    assert.equal(e.run_id, "run-handle");
    assert.equal(e.agent_id, "agent-h");
  }
  assert.equal(evs[2]!.status, "error");
  assert.equal(evs[2]!.error_type, "RangeError");
  assert.equal(evs[3]!.error_message, "first");
});

test("llmCall fields: explicit ids win over the run's; token counts are whole and non-negative", async (t) => {
  const { gw, c } = await setup(t);
  c.run({ runId: "outer" }, () => {
    c.llmCall({ runId: "other", agentId: "agent-x", inputTokens: 10.4, outputTokens: -3, costUsd: 0.25, traceId: "t", spanId: "s" });
  });
  c.llmCall({ model: "outside", timestamp: new Date("2026-01-02T03:04:05.678Z") });
  assert.equal(await c.flush(5000), true);
  const [, inner, , outside] = gw.events();
  assert.equal(inner!.run_id, "other");
  assert.equal(inner!.agent_id, "agent-x");
  assert.equal(inner!.input_tokens, 10);
  assert.equal(inner!.output_tokens, 0);
  assert.equal(inner!.cost_usd, 0.25);
  assert.equal(inner!.trace_id, "t");
  assert.equal(inner!.span_id, "s");
  assert.equal(outside!.run_id, undefined);
  assert.equal(outside!.timestamp, "2026-01-02T03:04:05.678000Z");
});

test("tool(): a timed tool_call in the run, the error rethrown unchanged", async (t) => {
  const { gw, c } = await setup(t);
  const err = new SyntaxError("bad json from tool");
  await c.run({ runId: "run-tools" }, async () => {
    assert.equal(c.tool("sync-tool", () => 1), 1);
    assert.equal(await c.tool({ toolName: "async-tool", attributes: { q: "x" } }, async () => {
      await delay(3);
      return 2;
    }), 2);
    assert.throws(
      () =>
        c.tool("throwing-tool", () => {
          throw err;
        }),
      (e: unknown) => e === err,
    );
    await assert.rejects(
      c.tool("rejecting-tool", async () => Promise.reject(err)),
      (e: unknown) => e === err,
    );
  });
  assert.equal(await c.flush(5000), true);
  const calls = gw.events().filter((e) => e.type === "tool_call");
  assert.deepEqual(
    calls.map((e) => [e.tool_name, e.status, e.run_id, e.error_type ?? null]),
    [
      ["sync-tool", "ok", "run-tools", null],
      ["async-tool", "ok", "run-tools", null],
      ["throwing-tool", "error", "run-tools", "SyntaxError"],
      ["rejecting-tool", "error", "run-tools", "SyntaxError"],
    ],
  );
  assert.ok((calls[1]!.latency_ms as number) >= 3);
  assert.deepEqual(calls[1]!.attributes, { q: "x" });
  assert.equal(calls[2]!.error_message, "bad json from tool");
});
