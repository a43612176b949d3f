import { describe, expect, it } from "vitest";
import { costBucket, dense, groupFrom, stack } from "./cost";
import { bars, isErrorStep } from "./timeline";

describe("cost explorer", () => {
  it("reads the group from the URL", () => {
    expect(groupFrom("")).toBe("agent");
    expect(groupFrom("?group=tag:team")).toBe("tag:team");
    expect(groupFrom("?group=tag:cost_center")).toBe("tag:cost_center");
    expect(groupFrom("?group=tag:")).toBe("agent");
    expect(groupFrom("?group=drop")).toBe("agent");
  });

  it("keeps a window within the API's points", () => {
    expect(costBucket(3600)).toBe("1m");
    expect(costBucket(86400)).toBe("15m");
    expect(costBucket(7 * 86400)).toBe("1h");
    expect(costBucket(90 * 86400)).toBe("1d");
  });

  it("stacks the series in the groups' order", () => {
    const s = stack(
      [
        { ts: "2026-01-01T01:00:00Z", key: "b", cost_usd: 1 },
        { ts: "2026-01-01T00:00:00Z", key: "a", cost_usd: 2 },
        { ts: "2026-01-01T01:00:00Z", key: "a", cost_usd: 3 },
        { ts: "2026-01-01T00:00:00Z", key: "(other)", cost_usd: 0.5 },
      ],
      ["a", "b", "gone"],
    );
    expect(s.keys).toEqual(["a", "b", "(other)"]);
    expect(s.xs).toEqual([Date.parse("2026-01-01T00:00:00Z") / 1000, Date.parse("2026-01-01T01:00:00Z") / 1000]);
    expect(s.raw).toEqual([[2, 3], [0, 1], [0.5, 0]]);
    expect(s.cumulative).toEqual([[2, 3], [2, 4], [2.5, 4]]);
  });
});

describe("run timeline", () => {
  it("places latency bars within the run's span", () => {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const at = (ms: number) => new Date(t0 + ms).toISOString();
    const b = bars(
      [
        { type: "run_started", timestamp: at(0), latency_ms: null },
        { type: "llm_call", timestamp: at(300), latency_ms: 300 },
        { type: "tool_call", timestamp: at(1000), latency_ms: 500 },
        { type: "run_failed", timestamp: at(1000), latency_ms: 1000 },
      ],
      at(0),
      at(1000),
      1000,
    );
    expect(b[0]).toBeNull();
    expect(b[1]).toMatchObject({ left: 0, width: 30 });
    expect(b[2]).toMatchObject({ left: 50, width: 50 });
    expect(b[3]).toMatchObject({ left: 0, width: 100 });
    expect(isErrorStep({ type: "run_failed" })).toBe(true);
    expect(isErrorStep({ type: "llm_call", status: "error" })).toBe(true);
    expect(isErrorStep({ type: "llm_call", status: "ok" })).toBe(false);
  });
});

describe("dense points", () => {
  it("fills every step of the window", () => {
    const h = 3600;
    const d = dense([{ ts: new Date(5 * h * 1000 + 10_000).toISOString(), v: 2 }, { ts: new Date(5 * h * 1000).toISOString(), v: 1 }, { ts: new Date(0).toISOString(), v: 9 }], (p) => p.v, 2 * h + 5, 6 * h, h);
    expect(d.xs).toEqual([2 * h, 3 * h, 4 * h, 5 * h, 6 * h]);
    expect(d.ys).toEqual([0, 0, 0, 3, 0]);
  });
});
