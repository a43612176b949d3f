import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";
import { Client } from "../src/index.js";
import { FakeGateway, acceptAll, fastOptions } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));
// .test-build/test -> the package root
const root = join(here, "..", "..");

function node(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
      resolve({ code: typeof code === "number" ? code : null, stdout, stderr });
    });
  });
}

test("flush resolves true only once the events are acknowledged", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  let release: (() => void) | undefined;
  const held = new Promise<void>((r) => (release = r));
  let answered = false;
  gw.respond = (r) => {
    // The first answer waits for the test: flush must not resolve before it.
    if (r.n === 1) {
      void held.then(() => {
        answered = true;
      });
      return { status: 0, hang: true };
    }
    return acceptAll(r);
  };
  const c = new Client({ ...fastOptions(gw.url), timeoutMs: 200, backoffBaseMs: 1 });
  c.toolCall({ toolName: "t" });
  const flushed = c.flush(10_000);
  await gw.waitFor(() => gw.requests.length >= 1);
  assert.equal(c.stats().sent, 0);
  release!();
  assert.equal(await flushed, true);
  assert.equal(c.stats().sent, 1);
  assert.equal(gw.requests.length, 2, "the hung request timed out and was retried");
  assert.equal(answered, true);
  await c.shutdown(1000);
});

test("flush with nothing queued resolves true at once; shutdown sends what is queued, then nothing", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  const c = new Client({ ...fastOptions(gw.url), flushIntervalMs: 3_600_000 });
  assert.equal(await c.flush(0), true);
  for (let i = 0; i < 3; i++) c.toolCall({ toolName: "t" });
  assert.equal(gw.requests.length, 0);
  assert.equal(await c.shutdown(5000), true);
  assert.equal(gw.events().length, 3);
  assert.equal(c.toolCall({ toolName: "after" }), undefined);
  assert.equal(await c.flush(100), true);
  assert.equal(gw.events().length, 3);
  assert.equal(await c.shutdown(100), true);
});

test("a process that ends without calling flush still sends its events (beforeExit)", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  const script = `
    const sdk = await import(${JSON.stringify(pathToFileURL(join(root, ".test-build", "src", "index.js")).href)});
    sdk.init({ apiKey: "k", endpoint: process.env.GW, agentId: "exit-agent", flushIntervalMs: 3600000, logger: null });
    sdk.run({ runId: "exit-run" }, () => sdk.toolCall({ toolName: "last-words" }));
    // No flush, no shutdown: the script just ends.
  `;
  const r = await node(["--input-type=module", "-e", script], { GW: gw.url });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    gw.events().map((e) => e.type),
    ["run_started", "tool_call", "run_completed"],
  );
});

test("a process with the gateway down still exits, after the exit flush's bound", async () => {
  const script = `
    const sdk = await import(${JSON.stringify(pathToFileURL(join(root, ".test-build", "src", "index.js")).href)});
    sdk.init({ apiKey: "k", endpoint: "http://127.0.0.1:9", agentId: "a", logger: null, exitFlushTimeoutMs: 300, backoffBaseMs: 10 });
    sdk.toolCall({ toolName: "t" });
  `;
  const r = await node(["--input-type=module", "-e", script], {});
  assert.equal(r.code, 0, r.stderr);
});

test("the built package loads as ESM and as CommonJS, with types", async () => {
  const require = createRequire(import.meta.url);
  const pkg = require(join(root, "package.json")) as { exports: Record<string, Record<string, Record<string, string>>> };
  const cjsPath = join(root, pkg.exports["."]!.require!.default!);
  const esmPath = join(root, pkg.exports["."]!.import!.default!);
  const cjs = require(cjsPath) as Record<string, unknown>;
  const esm = (await import(pathToFileURL(esmPath).href)) as Record<string, unknown>;
  for (const m of [cjs, esm]) {
    for (const name of ["init", "run", "startRun", "llmCall", "llmCallFromOpenAI", "llmCallFromAnthropic", "llmCallFromGemini", "toolCall", "heartbeat", "flush", "shutdown", "stats", "shouldStop", "directive", "Client"]) {
      assert.equal(typeof m[name], "function", name);
    }
  }
  const { existsSync } = await import("node:fs");
  assert.ok(existsSync(join(root, pkg.exports["."]!.require!.types!)));
  assert.ok(existsSync(join(root, pkg.exports["."]!.import!.types!)));
  // The CommonJS build runs by itself in a CommonJS process, by the package's own name.
  const r = await node(["-e", "const s = require('@agentops/sdk'); console.log(typeof s.init, s.run(() => 3))"], {});
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "function 3");
});

test("the package has no runtime dependencies", async () => {
  const { readFileSync } = await import("node:fs");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown>;
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.peerDependencies, undefined);
  assert.equal(pkg.optionalDependencies, undefined);
});
