import { describe, expect, it } from "vitest";
import { apiQuery, filtersFromForm, popCursor, pushCursor, queryChanges, searchFromQuery, toggleSort, type CursorStack } from "./filters";

describe("runs explorer state", () => {
  it("round-trips every filter through the URL", () => {
    const search = "?from=2026-11-20T00:00:00.000Z&to=2026-11-21T00:00:00.000Z&agent_id=a%201&workflow_id=w&status=failed&model=gpt-4o&provider=openai&error_type=tool_error&tag=team%3Dpay%3Dx&min_cost_usd=0.5&max_cost_usd=2&min_latency_ms=10&max_latency_ms=900&q=50%25+off&sort=cost_usd&order=asc&cursor=abc";
    const s = searchFromQuery(search);
    expect(s.filters).toEqual({
      from: "2026-11-20T00:00:00.000Z",
      to: "2026-11-21T00:00:00.000Z",
      agent_id: "a 1",
      workflow_id: "w",
      status: "failed",
      model: "gpt-4o",
      provider: "openai",
      error_type: "tool_error",
      tag: "team=pay=x",
      min_cost_usd: "0.5",
      max_cost_usd: "2",
      min_latency_ms: "10",
      max_latency_ms: "900",
      q: "50% off",
    });
    expect([s.sort, s.order, s.cursor]).toEqual(["cost_usd", "asc", "abc"]);
    // The URL changes reproduce it exactly.
    const u = new URL("http://x/console/runs");
    for (const [k, v] of Object.entries(queryChanges(s))) if (v !== null) u.searchParams.set(k, v);
    expect(searchFromQuery(u.search)).toEqual(s);
    // The API gets the same filters, the sort and the page.
    const q = new URLSearchParams(apiQuery(s, { limit: 25 }));
    expect(q.get("tag")).toBe("team=pay=x");
    expect(q.get("q")).toBe("50% off");
    expect([q.get("sort"), q.get("order"), q.get("limit"), q.get("cursor")]).toEqual(["cost_usd", "asc", "25", "abc"]);
    expect(new URLSearchParams(apiQuery(s, { cursor: false })).has("cursor")).toBe(false);
  });

  it("drops empty values and falls back to defaults", () => {
    const s = searchFromQuery("?agent_id=&status=%20&sort=tokens&order=up");
    expect(s).toEqual({ filters: {}, sort: "started_at", order: "desc", cursor: null });
    const c = queryChanges(s);
    expect(c.sort).toBeNull();
    expect(c.order).toBeNull();
    expect(c.agent_id).toBeNull();
  });

  it("takes the console's window and lets a range win over it", () => {
    expect(searchFromQuery("?window=custom:90m").filters.window).toBe("90m");
    expect(searchFromQuery("?window=7d&from=2026-11-20T00:00:00Z").filters).toEqual({ from: "2026-11-20T00:00:00Z" });
  });

  it("reads a filter form", () => {
    const f = filtersFromForm({ from: "2026-11-20T10:00", to: "", agent_id: " a ", window: "1h", status: "" }, (l) => `${l}:00Z`);
    expect(f).toEqual({ from: "2026-11-20T10:00:00Z", agent_id: "a" });
  });

  it("toggles the sort and starts the pages again", () => {
    const s = searchFromQuery("?cursor=c1");
    const byCost = toggleSort(s, "cost_usd");
    expect([byCost.sort, byCost.order, byCost.cursor]).toEqual(["cost_usd", "desc", null]);
    const flipped = toggleSort(byCost, "cost_usd");
    expect([flipped.sort, flipped.order]).toEqual(["cost_usd", "asc"]);
  });

  it("keeps a stack of cursors for Previous", () => {
    let stack: CursorStack = [];
    let cur: string | null = null;
    ({ stack, cursor: cur } = pushCursor(stack, cur, "c2"));
    ({ stack, cursor: cur } = pushCursor(stack, cur, "c3"));
    expect(stack).toEqual(["", "c2"]);
    expect(cur).toBe("c3");
    ({ stack, cursor: cur } = popCursor(stack));
    expect([stack, cur]).toEqual([[""], "c2"]);
    ({ stack, cursor: cur } = popCursor(stack));
    expect([stack, cur]).toEqual([[], null]);
    expect(popCursor([])).toEqual({ stack: [], cursor: null });
  });
});
