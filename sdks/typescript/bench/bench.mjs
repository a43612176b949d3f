#!/usr/bin/env node
// Benchmark of @agentops/sdk (the built ESM package in dist/; `npm run bench` builds it).
//
//   node --expose-gc bench/bench.mjs [--iterations N] [--events N] [--down-secs S] [--skip-memory]
//
// 1. Overhead on the calling thread: each llmCall timed with process.hrtime.bigint, beside a
//    no-op function given the same arguments, interleaved in the same run (p50/p99, ratio).
// 2. Events/s one process emits end to end, every event acknowledged (stats().sent): against
//    a local sink process (the SDK's own ceiling) and, when AGENTOPS_IT_GATEWAY and
//    AGENTOPS_IT_INGEST_KEY are set (`source /tmp/sdkstack.env`), the real gateway.
// 3. Memory with the gateway down (a closed port) for --down-secs (default 60) at 1,000
//    events/s: heapUsed and RSS growth, with the queue's drops.
import { fork } from "node:child_process";
import { createServer } from "node:net";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { setImmediate as tick, setTimeout as delay } from "node:timers/promises";
import { Client } from "../dist/esm/index.js";

const here = dirname(fileURLToPath(import.meta.url));

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = process.argv[i + 1];
  return v === undefined ? dflt : Number(v);
}
const ITERATIONS = arg("iterations", 200_000);
const EVENTS = arg("events", 200_000);
const GATEWAY_EVENTS = arg("gateway-events", 100_000);
const DOWN_SECS = arg("down-secs", 60);
const SKIP_MEMORY = process.argv.includes("--skip-memory");

const ARGS = {
  provider: "openai",
  model: "gpt-4o",
  inputTokens: 1200,
  outputTokens: 300,
  cacheReadTokens: 100,
  latencyMs: 850,
  attributes: { team: "search" },
};

let blackhole = 0;
function noop(o) {
  // Reads its argument like a call would start to, so it is not optimized away.
  blackhole += o.inputTokens;
  return undefined;
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function fmtNs(n) {
  return `${Math.round(n)} ns`;
}

function table(title, header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => "| " + cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ") + " |";
  console.log(`\n${title}`);
  console.log(line(header));
  console.log("|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const r of rows) console.log(line(r));
}

async function startSink() {
  const child = fork(join(here, "sink.mjs"), [], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once("data", (d) => resolve(Number(String(d).trim())));
    child.once("error", reject);
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

async function deadUrl() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

// ---- 1. overhead -------------------------------------------------------------------------

async function overhead(endpoint, apiKey) {
  const c = new Client({
    apiKey,
    endpoint,
    agentId: `bench-${randomUUID().slice(0, 8)}`,
    maxQueue: 1_000_000,
    logger: null,
    flushOnExit: false,
  });
  const measure = async (n, inRun) => {
    const sdk = new Float64Array(n);
    const base = new Float64Array(n);
    const body = async () => {
      for (let i = 0; i < n; i++) {
        let t0 = process.hrtime.bigint();
        noop(ARGS);
        let t1 = process.hrtime.bigint();
        base[i] = Number(t1 - t0);
        t0 = process.hrtime.bigint();
        c.llmCall(ARGS);
        t1 = process.hrtime.bigint();
        sdk[i] = Number(t1 - t0);
        // Let the sender run now and then, as an agent's awaits would.
        if ((i & 1023) === 1023) await tick();
      }
    };
    if (inRun) await c.run({ runId: `bench-${randomUUID()}` }, body);
    else await body();
    return { sdk: Array.from(sdk).sort((a, b) => a - b), base: Array.from(base).sort((a, b) => a - b) };
  };
  await measure(Math.min(20_000, ITERATIONS), false); // warm-up
  const rows = [];
  for (const inRun of [false, true]) {
    const { sdk, base } = await measure(ITERATIONS, inRun);
    const mean = sdk.reduce((a, b) => a + b, 0) / sdk.length;
    rows.push([
      inRun ? "llmCall inside run()" : "llmCall",
      fmtNs(pct(sdk, 50)),
      fmtNs(pct(sdk, 99)),
      fmtNs(mean),
      fmtNs(pct(base, 50)),
      fmtNs(pct(base, 99)),
      `${(pct(sdk, 50) / pct(base, 50)).toFixed(1)}x`,
      fmtNs(pct(sdk, 50) - pct(base, 50)),
    ]);
  }
  const ok = await c.flush(120_000);
  const st = c.stats();
  await c.shutdown(1000);
  table(
    `1. Overhead on the calling thread (${ITERATIONS.toLocaleString()} calls each, hrtime around each call; ${endpoint.includes("127.0.0.1") ? "sink" : endpoint})`,
    ["call", "p50", "p99", "mean", "no-op p50", "no-op p99", "p50 ratio", "p50 net"],
    rows,
  );
  console.log(`   (all ${st.sent.toLocaleString()} events acknowledged: ${ok && st.sent === st.enqueued}; hrtime.bigint itself is inside both columns)`);
}

// ---- 2. throughput -----------------------------------------------------------------------

// The answers' statuses, to say why batches were retried (the bench's own wrapper of fetch).
let statuses = {};
const realFetch = globalThis.fetch;
globalThis.fetch = async (...a) => {
  const r = await realFetch(...a);
  statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  return r;
};

async function throughput(label, endpoint, apiKey, n) {
  const c = new Client({
    apiKey,
    endpoint,
    agentId: `bench-${randomUUID().slice(0, 8)}`,
    maxQueue: n + 1000,
    maxBatch: 1000,
    flushIntervalMs: 50,
    logger: null,
    flushOnExit: false,
    retryBudgetMs: 600_000,
    maxRetries: 1000,
  });
  statuses = {};
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    c.llmCall(ARGS);
    if ((i & 1023) === 1023) await tick();
  }
  const enqueuedAt = process.hrtime.bigint();
  const ok = await c.flush(600_000);
  const t1 = process.hrtime.bigint();
  const st = c.stats();
  await c.shutdown(1000);
  const secs = Number(t1 - t0) / 1e9;
  return [
    label,
    n.toLocaleString(),
    `${(Number(enqueuedAt - t0) / 1e6).toFixed(0)} ms`,
    `${secs.toFixed(2)} s`,
    Math.round(st.sent / secs).toLocaleString(),
    `${ok && st.sent === n ? "yes" : `NO (${st.sent})`}`,
    `${st.retries} (${Object.entries(statuses)
      .filter(([k]) => k !== "202")
      .map(([k, v]) => `${v}× ${k}`)
      .join(", ") || "none failed"})`,
  ];
}

// ---- 3. memory while the gateway is down -------------------------------------------------

async function memoryDown() {
  const gc = globalThis.gc;
  const url = await deadUrl();
  const c = new Client({ apiKey: "aok_bench", endpoint: url, agentId: "bench-down", logger: null, flushOnExit: false });
  gc?.();
  const before = process.memoryUsage();
  const samples = [];
  const perTick = 10; // every 10 ms: 1,000 events/s
  const start = Date.now();
  let emitted = 0;
  let next = start;
  while (Date.now() - start < DOWN_SECS * 1000) {
    for (let i = 0; i < perTick; i++) {
      c.llmCall(ARGS);
      emitted++;
    }
    next += 10;
    const wait = next - Date.now();
    if (wait > 0) await delay(wait);
    else await tick();
    if (emitted % 5000 === 0) {
      gc?.();
      const m = process.memoryUsage();
      samples.push({ t: (Date.now() - start) / 1000, heap: m.heapUsed, rss: m.rss });
    }
  }
  gc?.();
  const after = process.memoryUsage();
  const st = c.stats();
  const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
  const mid = samples[Math.floor(samples.length / 4)] ?? samples[0];
  table(
    `3. Memory with the gateway down for ${DOWN_SECS} s at 1,000 events/s (default maxQueue ${"10,000"}; ${gc ? "after gc()" : "no --expose-gc"})`,
    ["", "heapUsed", "RSS"],
    [
      ["before", mb(before.heapUsed), mb(before.rss)],
      [`at ${mid ? mid.t.toFixed(0) : "?"} s`, mid ? mb(mid.heap) : "?", mid ? mb(mid.rss) : "?"],
      ["end", mb(after.heapUsed), mb(after.rss)],
      ["growth", mb(after.heapUsed - before.heapUsed), mb(after.rss - before.rss)],
      ["max heap sample", mb(Math.max(...samples.map((s) => s.heap), after.heapUsed)), mb(Math.max(...samples.map((s) => s.rss), after.rss))],
    ],
  );
  console.log(
    `   emitted ${emitted.toLocaleString()}, queued ${st.queued.toLocaleString()}, in flight ${st.inFlight}, ` +
      `dropped (queue full) ${st.droppedQueueFull.toLocaleString()}, dropped (retry budget) ${st.droppedRetryBudget.toLocaleString()}, ` +
      `failed requests ${st.failedRequests}, errors thrown into the caller: 0 (none can be)`,
  );
  await c.shutdown(0);
}

// ---- main --------------------------------------------------------------------------------

if (process.argv.includes("--memory-only")) {
  await memoryDown();
  process.exit(0);
}

const gateway = process.env.AGENTOPS_IT_GATEWAY;
const ingestKey = process.env.AGENTOPS_IT_INGEST_KEY;
console.log(`@agentops/sdk benchmark: node ${process.versions.node}, ${process.platform}/${process.arch}`);
const sink = await startSink();
try {
  await overhead(sink.url, "aok_bench");
  const rows = [await throughput("local sink process", sink.url, "aok_bench", EVENTS)];
  if (gateway && ingestKey) {
    rows.push(await throughput("real gateway (dev stack)", gateway, ingestKey, GATEWAY_EVENTS));
  }
  table(
    "2. Events/s end to end (one process, llmCall in a loop yielding every 1,024 calls, then flush; all acknowledged)",
    ["target", "events", "enqueue time", "until all acked", "events/s", "all acked", "retries"],
    rows,
  );
  if (!gateway || !ingestKey) console.log("   (set AGENTOPS_IT_GATEWAY and AGENTOPS_IT_INGEST_KEY for the real gateway's row)");
} finally {
  sink.stop();
}
if (!SKIP_MEMORY) {
  // In a fresh process, so that RSS is not the previous phases' high-water mark.
  const child = fork(fileURLToPath(import.meta.url), ["--memory-only", "--down-secs", String(DOWN_SECS)], {
    execArgv: ["--expose-gc"],
    stdio: "inherit",
  });
  await new Promise((resolve) => child.once("exit", resolve));
}
void blackhole;
