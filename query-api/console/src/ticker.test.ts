import { describe, expect, it } from "vitest";
import { backoff, liveUrl, parseFrame, rowOf, rowOfRun, Throttle, TICKER_CAP, TickerBuffer, type TickerRow } from "./ticker";

const row = (i: number): TickerRow => ({ key: `run.started:r${i}`, type: "run.started", ts: new Date(1_700_000_000_000 + i * 1000).toISOString(), agent_id: "a", run_id: `r${i}`, text: "", cost_usd: null });

describe("ticker", () => {
  it("parses frames and makes rows of them", () => {
    expect(parseFrame("not json")).toBeNull();
    expect(parseFrame('{"type":"x"}')).toBeNull();
    const f = parseFrame(JSON.stringify({ v: 1, type: "run.failed", ts: "2026-11-22T10:00:00.000Z", data: { run_id: "r1", agent_id: "a1", error_message: "boom", cost_usd: 0.5 } }));
    expect(f).not.toBeNull();
    const r = rowOf(f!, 0);
    expect(r).toMatchObject({ key: "run.failed:r1", type: "run.failed", run_id: "r1", agent_id: "a1", text: "boom", cost_usd: 0.5 });
    const alert = rowOf({ v: 1, type: "alert.fired", ts: "t", data: { alert_id: "al", message: "over budget" } }, 1);
    expect([alert.run_id, alert.text]).toEqual([null, "over budget"]);
    const paused = rowOf({ v: 1, type: "agent.paused", ts: "t", data: { agent_id: "a", reason: "spend" } }, 2);
    expect(paused.text).toBe("spend");
  });

  it("keeps at most 200 rows, the newest", () => {
    let b = TickerBuffer.empty();
    for (let i = 0; i < 250; i++) b = b.add([row(i)]);
    expect(b.rows.length).toBe(TICKER_CAP);
    expect(b.rows[0]?.run_id).toBe("r50");
    expect(b.rows[TICKER_CAP - 1]?.run_id).toBe("r249");
    // A batch larger than the cap keeps its newest too.
    const big = TickerBuffer.empty(10).add(Array.from({ length: 25 }, (_, i) => row(i)));
    expect(big.rows.map((r) => r.run_id)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i + 15}`));
  });

  it("adds a row once, and again after it was dropped", () => {
    let b = TickerBuffer.empty(3).add([row(1), row(1), row(2)]);
    expect(b.rows.length).toBe(2);
    b = b.add([row(3), row(4), row(5)]);
    expect(b.rows.map((r) => r.run_id)).toEqual(["r3", "r4", "r5"]);
    b = b.add([row(1)]);
    expect(b.rows.map((r) => r.run_id)).toEqual(["r4", "r5", "r1"]);
  });

  it("shows every lost notice and counts the lost frames", () => {
    const lost = (n: number, seq: number) => rowOf({ v: 1, type: "lost", ts: "2026-11-22T10:00:00Z", data: { frames: n } }, seq);
    let b = TickerBuffer.empty().add([row(1), lost(17, 0), row(2), lost(3, 1)]);
    expect(b.rows.map((r) => r.type)).toEqual(["run.started", "lost", "run.started", "lost"]);
    expect(b.rows[1]?.lost).toBe(17);
    expect(b.rows[1]?.text).toMatch(/17 events lost/);
    expect(b.lostTotal).toBe(20);
    b = b.add([lost(1, 2)]);
    expect(b.rows.at(-1)?.text).toMatch(/^1 event lost/);
  });

  it("makes rows of polled runs", () => {
    const base = { run_id: "r", agent_id: "a", started_at: "2026-01-01T00:00:00Z", ended_at: "2026-01-01T00:00:05Z", cost_usd: 1, error_message: "x", error_type: null, workflow_id: null };
    expect(rowOfRun({ ...base, status: "failed" })).toMatchObject({ key: "run.failed:r", ts: base.ended_at, text: "x" });
    expect(rowOfRun({ ...base, status: "running", ended_at: null })).toMatchObject({ key: "run.started:r", ts: base.started_at, cost_usd: null });
  });

  it("backs off from 1 s to 30 s", () => {
    expect(backoff(0)).toBe(1000);
    expect(backoff(1)).toBe(2000);
    expect(backoff(10)).toBe(30_000);
    expect(backoff(100, 1)).toBe(33_000);
    expect(backoff(0, 0)).toBe(900);
  });

  it("connects to the page's own origin", () => {
    expect(liveUrl({ protocol: "http:", host: "h:8080" })).toBe("ws://h:8080/v1/live");
    expect(liveUrl({ protocol: "https:", host: "ops.example" }, { types: "run.failed" })).toBe("wss://ops.example/v1/live?types=run.failed");
  });

  it("redraws at most once per interval (TV mode)", () => {
    let now = 0;
    const timers: { at: number; fn: () => void }[] = [];
    const flushes: number[] = [];
    const t = new Throttle(1000, () => flushes.push(now), () => now, (fn, ms) => timers.push({ at: now + ms, fn }));
    const advance = (to: number) => {
      for (;;) {
        timers.sort((a, b) => a.at - b.at);
        const next = timers[0];
        if (!next || next.at > to) break;
        timers.shift();
        now = next.at;
        next.fn();
      }
      now = to;
    };
    // 100 frames over 3.5 s, one every 35 ms.
    for (let i = 0; i < 100; i++) {
      advance(i * 35);
      t.push();
    }
    advance(5000);
    expect(flushes.length).toBeLessThanOrEqual(5);
    for (let i = 1; i < flushes.length; i++) expect(flushes[i]! - flushes[i - 1]!).toBeGreaterThanOrEqual(1000);
    // The last frame is drawn.
    expect(flushes.at(-1)).toBeGreaterThanOrEqual(99 * 35);
  });
});
