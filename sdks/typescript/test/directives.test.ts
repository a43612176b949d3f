import { test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../src/index.js";
import type { Directive } from "../src/index.js";
import { FakeGateway, acceptAll, fastOptions } from "./helpers.js";

test("a pause in a 202 sets shouldStop/directive and calls onDirective once; a later answer without it resumes", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  let paused = false;
  gw.respond = (r) => {
    const agents = new Set(r.events.map((e) => String(e.agent_id)));
    const directives = paused && agents.has("agent-1") ? [{ agent_id: "agent-1", action: "pause", reason: "budget 'fleet' reached 100%" }] : [];
    return acceptAll(r, directives);
  };
  const seen: Directive[] = [];
  const c = new Client({ ...fastOptions(gw.url), onDirective: (d) => void seen.push(d) });
  t.after(() => c.shutdown(1000).then(() => undefined));

  c.toolCall({ toolName: "t" });
  assert.equal(await c.flush(5000), true);
  assert.equal(c.shouldStop(), false);
  assert.equal(c.directive(), undefined);

  paused = true;
  c.toolCall({ toolName: "t" });
  assert.equal(await c.flush(5000), true);
  assert.equal(c.shouldStop(), true);
  assert.equal(c.shouldStop("agent-1"), true);
  assert.equal(c.shouldStop("agent-2"), false);
  assert.deepEqual(c.directive("agent-1"), { agentId: "agent-1", action: "pause", reason: "budget 'fleet' reached 100%" });
  // Inside a run of that agent, shouldStop() asks about the run's agent.
  assert.equal(
    c.run({ agentId: "agent-1" }, (run) => c.shouldStop() && run.shouldStop()),
    true,
  );
  assert.equal(await c.flush(5000), true);
  // The same pause again: no second callback.
  assert.equal(seen.length, 1);

  // An answer for another agent only says nothing about agent-1.
  c.toolCall({ toolName: "t", agentId: "agent-2" });
  assert.equal(await c.flush(5000), true);
  assert.equal(c.shouldStop("agent-1"), true);

  paused = false;
  c.heartbeat();
  assert.equal(await c.flush(5000), true);
  assert.equal(c.shouldStop("agent-1"), false);
  assert.equal(c.directive("agent-1"), undefined);
  assert.deepEqual(
    seen.map((d) => d.action),
    ["pause", "resume"],
  );
});

test("kill replaces pause (callback again); unknown actions are ignored", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  const answers: unknown[][] = [
    [{ agent_id: "agent-1", action: "pause", reason: "a" }],
    [{ agent_id: "agent-1", action: "kill", reason: "b" }],
    [{ agent_id: "agent-1", action: "explode", reason: "c" }, { nonsense: true }, null],
  ];
  gw.respond = (r) => acceptAll(r, answers[r.n - 1] ?? []);
  const seen: string[] = [];
  const c = new Client({ ...fastOptions(gw.url), onDirective: (d) => void seen.push(`${d.action}:${d.reason}`) });
  t.after(() => c.shutdown(1000).then(() => undefined));
  for (let i = 0; i < 3; i++) {
    c.toolCall({ toolName: "t" });
    assert.equal(await c.flush(5000), true);
  }
  assert.deepEqual(seen, ["pause:a", "kill:b", "resume:"]);
  assert.equal(c.stats().errors, 0);
});

test("heartbeats on a timer carry the agent and refresh its directive", async (t) => {
  const gw = await new FakeGateway().start();
  t.after(() => gw.close());
  gw.respond = (r) => acceptAll(r, [{ agent_id: "agent-hb", action: "kill", reason: "stop" }]);
  const c = new Client({ ...fastOptions(gw.url), agentId: "agent-hb", heartbeatIntervalMs: 20 });
  t.after(() => c.shutdown(1000).then(() => undefined));
  await gw.waitFor(() => gw.events().filter((e) => e.type === "heartbeat").length >= 3);
  const hb = gw.events().find((e) => e.type === "heartbeat")!;
  assert.equal(hb.agent_id, "agent-hb");
  assert.equal(hb.status, "ok");
  assert.equal(hb.run_id, undefined);
  await c.flush(5000);
  assert.equal(c.shouldStop(), true);
  assert.equal(c.directive()?.action, "kill");
});
