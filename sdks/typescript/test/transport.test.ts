import { test } from "node:test";
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { Client } from "../src/index.js";
import { parseRetryAfter } from "../src/transport.js";
import { FakeGateway, acceptAll, balanced, deadPort, fastOptions, memoryLogger } from "./helpers.js";

async function gateway(t: { after: (fn: () => Promise<void>) => void }) {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  return gw;
}

test("a full batch is sent at once, without waiting for the timer; the rest on flush", async (t) => {
  const gw = await gateway(t);
  const c = new Client({ ...fastOptions(gw.url), maxBatch: 10, flushIntervalMs: 3_600_000 });
  t.after(() => c.shutdown(1000).then(() => undefined));
  for (let i = 0; i < 25; i++) c.toolCall({ toolName: `t${i}` });
  // Two full batches go by themselves (the timer is an hour away).
  await gw.waitFor(() => gw.events().length >= 20);
  assert.deepEqual(
    gw.requests.map((r) => r.events.length),
    [10, 10],
  );
  assert.equal(c.stats().queued, 5);
  assert.equal(await c.flush(5000), true);
  assert.deepEqual(
    gw.requests.map((r) => r.events.length),
    [10, 10, 5],
  );
  // Two requests are in flight at once, so the full batches may reach the gateway in either
  // order; each batch is a run of consecutive events, in order, and every event arrives once.
  const batches = gw.requests.map((r) => r.events.map((e) => String(e.tool_name)));
  const slice = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `t${from + i}`);
  assert.deepEqual(
    [...batches.slice(0, 2)].sort((a, b) => Number(a[0]!.slice(1)) - Number(b[0]!.slice(1))),
    [slice(0, 10), slice(10, 20)],
  );
  assert.deepEqual(batches[2], slice(20, 25));
  const s = c.stats();
  assert.equal(s.enqueued, 25);
  assert.equal(s.sent, 25);
  assert.equal(s.queued, 0);
  assert.equal(s.inFlight, 0);
});

test("the timer sends a partial batch", async (t) => {
  const gw = await gateway(t);
  const c = new Client({ ...fastOptions(gw.url), maxBatch: 100, flushIntervalMs: 10 });
  t.after(() => c.shutdown(1000).then(() => undefined));
  c.toolCall({ toolName: "lonely" });
  await gw.waitFor(() => gw.events().length === 1);
  assert.equal(gw.requests[0]!.events[0]!.tool_name, "lonely");
});

test("bodies are gzipped JSON {events:[...]} with the key as a bearer token", async (t) => {
  const gw = await gateway(t);
  const c = new Client(fastOptions(gw.url));
  c.llmCall({ model: "gpt-4o", inputTokens: 5, attributes: { k: "v".repeat(2000) } });
  assert.equal(await c.flush(5000), true);
  const r = gw.requests[0]!;
  assert.equal(r.headers["content-encoding"], "gzip");
  assert.equal(r.headers["content-type"], "application/json");
  assert.equal(r.headers.authorization, "Bearer aok_test");
  assert.match(String(r.headers["user-agent"]), /^agentops-sdk-typescript\//);
  const json = JSON.parse(gunzipSync(r.raw).toString("utf8")) as { events: unknown[] };
  assert.equal(json.events.length, 1);
  assert.ok(r.raw.length < 1000, `gzip should shrink the repeated attribute (${r.raw.length} bytes)`);
  await c.shutdown(1000);

  const plain = new Client({ ...fastOptions(gw.url), compress: false });
  plain.toolCall({ toolName: "x" });
  assert.equal(await plain.flush(5000), true);
  const p = gw.requests[1]!;
  assert.equal(p.headers["content-encoding"], undefined);
  assert.equal((JSON.parse(p.raw.toString("utf8")) as { events: unknown[] }).events.length, 1);
  await plain.shutdown(1000);
});

test("503 with Retry-After, then 202: the same batch with the same event ids, after the wait", async (t) => {
  const gw = await gateway(t);
  gw.respond = (r) =>
    r.n === 1
      ? { status: 503, headers: { "retry-after": "1" }, body: { error: { code: "unavailable" } } }
      : acceptAll(r);
  const c = new Client({ ...fastOptions(gw.url), backoffBaseMs: 1, backoffMaxMs: 2 });
  for (let i = 0; i < 7; i++) c.toolCall({ toolName: `t${i}` });
  assert.equal(await c.flush(10_000), true);
  assert.equal(gw.requests.length, 2);
  const ids = (n: number) => gw.requests[n]!.events.map((e) => e.event_id);
  assert.deepEqual(ids(1), ids(0));
  assert.deepEqual(gw.requests[1]!.raw, gw.requests[0]!.raw, "the retried body is byte for byte the same");
  // The backoff alone would be ≤ 2 ms: the second attempt waited for Retry-After.
  const gap = gw.requests[1]!.at - gw.requests[0]!.at;
  assert.ok(gap >= 900, `retried after ${gap} ms, before Retry-After: 1`);
  const s = c.stats();
  assert.equal(s.sent, 7);
  assert.equal(s.retries, 1);
  assert.equal(s.failedRequests, 1);
  assert.equal(s.droppedRetryBudget, 0);
  await c.shutdown(1000);
});

test("429, 408, 500 and network errors are retried until accepted", async (t) => {
  const gw = await gateway(t);
  const script = [
    { status: 429, headers: { "retry-after": "0" } },
    { status: 408 },
    { status: 500 },
    { status: 0, destroy: true },
  ];
  gw.respond = (r) => script[r.n - 1] ?? acceptAll(r);
  const c = new Client(fastOptions(gw.url));
  c.toolCall({ toolName: "persistent" });
  assert.equal(await c.flush(10_000), true);
  assert.equal(gw.requests.length, 5);
  assert.equal(new Set(gw.requests.map((r) => r.events[0]!.event_id)).size, 1);
  const s = c.stats();
  assert.equal(s.sent, 1);
  assert.equal(s.retries, 4);
  assert.equal(s.failedRequests, 4);
  await c.shutdown(1000);
});

test("400, 401, 403 are not retried: counted as rejected and logged once per kind", async (t) => {
  const gw = await gateway(t);
  const statuses = [400, 401, 403, 400];
  gw.respond = (r) => ({ status: statuses[r.n - 1] ?? 202, body: { error: { code: "nope", message: "no" } } });
  const log = memoryLogger();
  const c = new Client({ ...fastOptions(gw.url), logger: log });
  for (let i = 0; i < 4; i++) {
    c.toolCall({ toolName: `t${i}` });
    c.toolCall({ toolName: `u${i}` });
    // One batch per request: flush before the next pair.
    assert.equal(await c.flush(5000), true);
  }
  assert.equal(gw.requests.length, 4, "one request per batch, none retried");
  const s = c.stats();
  assert.equal(s.rejected, 8);
  assert.equal(s.sent, 0);
  assert.equal(s.retries, 0);
  assert.equal(s.failedRequests, 4);
  assert.ok(balanced(s));
  assert.equal(log.lines.length, 3, log.lines.join("\n"));
  assert.ok(log.lines.some((l) => l.includes("HTTP 401")));
  await c.shutdown(1000);
});

test("413 splits the batch and sends the halves; a single event too large is refused", async (t) => {
  const gw = await gateway(t);
  gw.respond = (r) => (r.events.length > 2 ? { status: 413 } : acceptAll(r));
  const c = new Client(fastOptions(gw.url));
  for (let i = 0; i < 8; i++) c.toolCall({ toolName: `t${i}` });
  assert.equal(await c.flush(5000), true);
  assert.deepEqual(
    gw.requests.map((r) => r.events.length),
    [8, 4, 2, 2, 4, 2, 2],
  );
  assert.equal(c.stats().sent, 8);
  await c.shutdown(1000);

  gw.respond = () => ({ status: 413 });
  const one = new Client(fastOptions(gw.url));
  one.toolCall({ toolName: "huge" });
  assert.equal(await one.flush(5000), true);
  assert.equal(one.stats().rejected, 1);
  await one.shutdown(1000);
});

test("bodies over 1 MB are split before sending", async (t) => {
  const gw = await gateway(t);
  const c = new Client({ ...fastOptions(gw.url), maxBatch: 1000, flushIntervalMs: 3_600_000 });
  const big: Record<string, string> = {};
  for (let i = 0; i < 60; i++) big[`k${i}`] = "x".repeat(4000);
  // 5 events of ~240 kB each: at most 4 fit in a body.
  for (let i = 0; i < 5; i++) c.toolCall({ toolName: `t${i}`, attributes: big });
  assert.equal(await c.flush(10_000), true);
  assert.ok(gw.requests.length >= 2);
  for (const r of gw.requests) assert.ok(gunzipSync(r.raw).length <= 1_000_000);
  assert.equal(gw.events().length, 5);
  assert.equal(c.stats().sent, 5);
  await c.shutdown(1000);
});

test("events a 202 lists in rejected are counted, the rest sent", async (t) => {
  const gw = await gateway(t);
  gw.respond = (r) => ({
    status: 202,
    body: { accepted: r.events.length - 1, rejected: [{ index: 0, field: "agent_id", error: "too long" }], directives: [] },
  });
  const log = memoryLogger();
  const c = new Client({ ...fastOptions(gw.url), logger: log });
  for (let i = 0; i < 3; i++) c.toolCall({ toolName: "t" });
  assert.equal(await c.flush(5000), true);
  assert.equal(c.stats().rejected, 1);
  assert.equal(c.stats().sent, 2);
  assert.ok(balanced(c.stats()));
  assert.match(log.lines[0] ?? "", /agent_id: too long/);
  await c.shutdown(1000);
});

test("queue full: the oldest events are dropped and counted; the newest are sent", async (t) => {
  const gw = await gateway(t);
  const log = memoryLogger();
  const c = new Client({ ...fastOptions(gw.url), maxQueue: 5, maxBatch: 1000, flushIntervalMs: 3_600_000, logger: log });
  for (let i = 0; i < 8; i++) c.toolCall({ toolName: `t${i}` });
  const s = c.stats();
  assert.equal(s.enqueued, 8);
  assert.equal(s.droppedQueueFull, 3);
  assert.equal(s.queued, 5);
  assert.equal(await c.flush(5000), true);
  assert.deepEqual(
    gw.events().map((e) => e.tool_name),
    ["t3", "t4", "t5", "t6", "t7"],
  );
  assert.equal(log.lines.filter((l) => l.includes("queue full")).length, 1);
  assert.ok(balanced(c.stats()));
  await c.shutdown(1000);
});

test("a batch out of retry budget is dropped and counted; later batches still go", async (t) => {
  const gw = await gateway(t);
  let down = true;
  gw.respond = (r) => (down ? { status: 503 } : acceptAll(r));
  const c = new Client({ ...fastOptions(gw.url), maxRetries: 2 });
  for (let i = 0; i < 4; i++) c.toolCall({ toolName: "lost" });
  assert.equal(await c.flush(5000), true);
  assert.equal(gw.requests.length, 3);
  let s = c.stats();
  assert.equal(s.droppedRetryBudget, 4);
  assert.equal(s.retries, 2);
  assert.equal(s.failedRequests, 3);
  down = false;
  c.toolCall({ toolName: "kept" });
  assert.equal(await c.flush(5000), true);
  s = c.stats();
  assert.equal(s.sent, 1);
  assert.equal(gw.events().at(-1)!.tool_name, "kept");
  assert.ok(balanced(s));
  await c.shutdown(1000);

  // The time budget: a Retry-After beyond it drops the batch at once.
  gw.respond = () => ({ status: 429, headers: { "retry-after": "30" } });
  const n = gw.requests.length;
  const timed = new Client({ ...fastOptions(gw.url), retryBudgetMs: 1000 });
  timed.toolCall({ toolName: "late" });
  assert.equal(await timed.flush(5000), true);
  assert.equal(gw.requests.length, n + 1);
  assert.equal(timed.stats().droppedRetryBudget, 1);
  await timed.shutdown(1000);
});

test("gateway down: calls return at once, nothing throws, the queue stays bounded", async () => {
  const url = await deadPort();
  const c = new Client({ ...fastOptions(url), maxQueue: 100, maxBatch: 10, retryBudgetMs: 200 });
  for (let i = 0; i < 1000; i++) c.toolCall({ toolName: "t" });
  const s = c.stats();
  assert.ok(s.queued <= 100);
  assert.ok(s.queued + s.inFlight <= 110);
  assert.ok(s.droppedQueueFull >= 890);
  assert.equal(await c.shutdown(300).catch(() => "rejected"), false);
  const after = c.stats();
  assert.ok(balanced(after) || after.inFlight > 0);
  assert.ok(after.failedRequests >= 1);
  assert.equal(after.sent, 0);
});

test("Retry-After parsing: seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(" 0 "), 0);
  assert.equal(parseRetryAfter("1.5"), 1500);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const d = parseRetryAfter(new Date(Date.now() + 10_000).toUTCString());
  assert.ok(d !== undefined && d > 5_000 && d <= 10_000);
  assert.equal(parseRetryAfter(new Date(Date.now() - 10_000).toUTCString()), 0);
});

for (const concurrency of [1, 2]) {
  test(`maxConcurrentRequests ${concurrency}: that many batches in flight while full batches wait`, async (t) => {
    const gw = await gateway(t);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    gw.respond = (r) => ({ status: 0, later: gate.then(() => acceptAll(r)) });
    const c = new Client({
      ...fastOptions(gw.url),
      maxBatch: 10,
      flushIntervalMs: 3_600_000,
      maxConcurrentRequests: concurrency,
    });
    for (let i = 0; i < 30; i++) c.toolCall({ toolName: `t${i}` });
    await gw.waitFor(() => gw.requests.length >= concurrency);
    // The workers take their batches together, before any request is answered.
    assert.equal(c.stats().inFlight, 10 * concurrency);
    assert.equal(c.stats().queued, 30 - 10 * concurrency);
    release();
    assert.equal(await c.flush(5000), true);
    assert.equal(gw.events().length, 30);
    assert.equal(new Set(gw.events().map((e) => e.event_id)).size, 30);
    await c.shutdown(1000);
  });
}
