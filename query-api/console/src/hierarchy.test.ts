import { describe, expect, it } from "vitest";
import { sessionQuery, type SessionEvent, type TokenTotals } from "./api";
import { appendRows, asSteps, isStopped, stoppedParents, machineTrail, nodeLabel, pageSizeFrom, placeHref, projectTrail, sessionTrail, sortFrom, statusTone, tokenBreakdown, tokenKinds, workspaceTrail } from "./hierarchy";
import { match } from "./router";
import { ROUTES } from "./routes";
import { stepTokens } from "./timeline";

const tokens = (t: Partial<TokenTotals>): TokenTotals => {
  const z = { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0, ...t };
  return { ...z, total: z.input + z.output + z.cache_read + z.cache_write + z.reasoning };
};

describe("hierarchy", () => {
  it("puts each id in one encoded path segment, and the routes give it back", () => {
    expect(placeHref("project", "github.com/acme/shop")).toBe("/console/projects/github.com%2Facme%2Fshop");
    expect(placeHref("workspace", "ws 1?#")).toBe("/console/workspaces/ws%201%3F%23");
    expect(placeHref("session", "s-1")).toBe("/console/sessions/s-1");
    for (const [kind, id, path] of [
      ["project", "github.com/acme/shop", "/projects/:id"],
      ["machine", "m/1%", "/machines/:id"],
      ["workspace", "/home/dev/src/shop", "/workspaces/:id"],
      ["session", "3f2a-9", "/sessions/:id"],
    ] as const) {
      const m = match(ROUTES, placeHref(kind, id).slice("/console".length));
      expect(m?.route.path).toBe(path);
      expect(m?.params).toEqual({ id });
    }
  });

  it("builds breadcrumbs: the last step is the page, the others link", () => {
    expect(projectTrail("github.com/acme/shop")).toEqual([
      { kind: "projects", label: "Projects", href: "/console/projects" },
      { kind: "project", label: "github.com/acme/shop", href: null },
    ]);
    expect(machineTrail({ id: "m1", name: "dev-laptop", path: null }).map((s) => s.label)).toEqual(["Machines", "dev-laptop"]);
    expect(machineTrail({ id: "m1", name: null, path: null }).map((s) => s.label)).toEqual(["Machines", "m1"]);
    expect(workspaceTrail({ id: "w1", path: "/src/shop", project_id: "github.com/acme/shop", machine_id: "m1" }, "dev-laptop")).toEqual([
      { kind: "project", label: "github.com/acme/shop", href: "/console/projects/github.com%2Facme%2Fshop" },
      { kind: "machine", label: "dev-laptop", href: "/console/machines/m1" },
      { kind: "workspace", label: "/src/shop", href: null },
    ]);
    // Unknown machine name: its id; no project: no step.
    expect(workspaceTrail({ id: "w1", path: null, project_id: null, machine_id: "m1" }).map((s) => s.label)).toEqual(["m1", "w1"]);
  });

  it("orders a session's breadcrumbs project › machine › workspace › session", () => {
    const steps = sessionTrail("s1", [
      { kind: "workspace", id: "w1", label: "/src/shop" },
      { kind: "project", id: "github.com/acme/shop", label: "github.com/acme/shop" },
      { kind: "machine", id: "m1", label: "dev-laptop" },
    ]);
    expect(steps.map((s) => s.kind)).toEqual(["project", "machine", "workspace", "session"]);
    expect(steps.map((s) => s.href)).toEqual(["/console/projects/github.com%2Facme%2Fshop", "/console/machines/m1", "/console/workspaces/w1", null]);
    expect(steps[1]?.label).toBe("dev-laptop");
    // A session that names no place: just itself.
    expect(sessionTrail("s2", [])).toEqual([{ kind: "session", label: "s2", href: null }]);
  });

  it("labels nodes and colors statuses", () => {
    expect(nodeLabel({ id: "m1", name: "laptop", path: null })).toBe("laptop");
    expect(nodeLabel({ id: "w1", name: null, path: "/src" })).toBe("/src");
    expect(nodeLabel({ id: "p", name: null, path: null })).toBe("p");
    expect(["killed", "failed", "paused", "active", "running", "completed", "idle"].map(statusTone)).toEqual(["over", "over", "warn", "ok", "ok", "ok", ""]);
    expect(["paused", "killed", "active", "failed"].map(isStopped)).toEqual([true, true, false, false]);
  });

  it("finds the paused or killed places above a session, as the API picks them", () => {
    const p = (kind: "project" | "machine" | "workspace", status: string) => ({ crumb: { kind, id: kind, label: kind }, status, reason: `${kind} ${status}` });
    expect(stoppedParents([p("project", "paused"), p("machine", "active"), p("workspace", "paused")]).map((x) => x.crumb.kind)).toEqual(["workspace", "project"]);
    expect(stoppedParents([p("project", "killed"), p("workspace", "paused")]).map((x) => x.crumb.kind)).toEqual(["project", "workspace"]);
    expect(stoppedParents([p("project", "idle")])).toEqual([]);
  });

  it("formats tokens: the total, then the kinds that are not zero", () => {
    expect(tokenBreakdown(tokens({ input: 10000, output: 2000, cache_read: 300, cache_write: 45 }))).toBe("12,345 (10,000 in / 2,000 out / 345 cache)");
    expect(tokenKinds(tokens({ output: 5, reasoning: 7 }))).toBe("5 out / 7 reasoning");
    expect(tokenBreakdown(tokens({}))).toBe("0");
    expect(stepTokens({ type: "llm_call", input_tokens: 1000, output_tokens: 200, cache_read_tokens: 50, reasoning_tokens: 3 })).toBe("1,000 in / 200 out / 50 cache / 3 reasoning");
    expect(stepTokens({ type: "llm_call", input_tokens: null, output_tokens: null })).toBe("—");
    expect(stepTokens({ type: "tool_call" })).toBe("");
  });

  it("reads the sort and page size from the URL", () => {
    expect(sortFrom("?sort=cost")).toBe("cost");
    expect(sortFrom("?sort=bogus")).toBe("last_seen");
    expect(sortFrom("")).toBe("last_seen");
    expect(pageSizeFrom("?limit=3")).toBe(3);
    expect(pageSizeFrom("?limit=0")).toBe(200);
    expect(pageSizeFrom("?limit=5001")).toBe(200);
    expect(pageSizeFrom("?limit=2x", 50)).toBe(50);
  });

  it("builds the sessions query from the set filters", () => {
    expect(sessionQuery({ project_id: "github.com/acme/shop", machine_id: null, status: "" }, null, 50)).toBe("project_id=github.com%2Facme%2Fshop&limit=50");
    expect(sessionQuery({ workspace_id: "w 1", status: "failed" }, "171.s1", 25)).toBe("workspace_id=w+1&status=failed&limit=25&cursor=171.s1");
  });

  it("maps session events to timeline steps and appends pages without repeats", () => {
    const ev = (id: string, sidechain = false): SessionEvent => ({
      event_id: id,
      ts: "2025-01-01T00:00:00Z",
      type: "llm_call",
      agent_id: "claude-code",
      status: "ok",
      model: "claude-sonnet-4",
      tool_name: null,
      input_tokens: 1,
      output_tokens: 2,
      cache_read_tokens: null,
      cache_write_tokens: null,
      reasoning_tokens: null,
      cost_usd: 0.5,
      latency_ms: 300,
      error_type: null,
      error_message: null,
      sidechain,
    });
    const [step] = asSteps([ev("a", true)]);
    expect(step?.timestamp).toBe("2025-01-01T00:00:00Z");
    expect(step?.sidechain).toBe(true);
    expect(step?.model).toBe("claude-sonnet-4");
    const shown = appendRows([ev("a"), ev("b")], [ev("b"), ev("c")], (e) => e.event_id);
    expect(shown.map((e) => e.event_id)).toEqual(["a", "b", "c"]);
  });
});
