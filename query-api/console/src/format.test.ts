import { describe, expect, it } from "vitest";
import { apiWindow, bucketFor, budgetLevel, change, changeOf, count, fromLocalInput, localInput, ms, percent, rangeFrom, usd, windowFrom, windowLabel } from "./format";

describe("format", () => {
  it("never shows unknown cost as 0", () => {
    expect(usd(null)).toBe("—");
    expect(usd(undefined)).toBe("—");
    expect(usd(Number.NaN)).toBe("—");
    expect(usd(0)).toBe("$0.0000");
    expect(usd(12.5)).toBe("$12.50");
    expect(usd(1234.567)).toBe("$1,234.57");
  });

  it("formats ratios, durations and counts", () => {
    expect(percent(0.9876)).toBe("98.8%");
    expect(percent(null)).toBe("—");
    expect(ms(850.4)).toBe("850 ms");
    expect(ms(12_345)).toBe("12.3 s");
    expect(count(1234567)).toBe("1,234,567");
  });

  it("colors budgets at 80% and 100%", () => {
    expect(budgetLevel(79.99)).toBe("ok");
    expect(budgetLevel(80)).toBe("warn");
    expect(budgetLevel(99.9)).toBe("warn");
    expect(budgetLevel(100)).toBe("over");
    expect(budgetLevel(null)).toBe("unknown");
  });

  it("compares windows", () => {
    expect(change(110, 100)).toBe("+10.0%");
    expect(change(90, 100)).toBe("-10.0%");
    expect(change(5, 0)).toBe("new");
    expect(change(0, 0)).toBe("±0%");
    expect(change(null, 3)).toBe("—");
  });

  it("keeps the window in the URL", () => {
    expect(windowFrom("?window=7d")).toBe("7d");
    expect(windowFrom("?window=custom:90m")).toBe("custom:90m");
    expect(windowFrom("?window=bogus")).toBe("24h");
    expect(windowFrom("")).toBe("24h");
    expect(apiWindow("custom:90m")).toBe("90m");
    expect(bucketFor("1h")).toBe("1m");
    expect(bucketFor("24h")).toBe("15m");
    expect(bucketFor("7d")).toBe("1h");
    expect(bucketFor("30d")).toBe("1h");
  });
});

import { actor } from "./format";

describe("actor", () => {
  it("shows people by email and keys by prefix", () => {
    expect(actor("user:0b6c-1:ann@x.test")).toBe("ann@x.test");
    expect(actor("admin:uuid:abcd1234")).toBe("key abcd1234");
    expect(actor("rule:errors")).toBe("rule:errors");
    expect(actor(null)).toBe("—");
  });

  it("colors a KPI's change by whether up is good", () => {
    expect(changeOf(110, 100, "up")).toEqual({ text: "+10.0%", dir: "up", tone: "good", pct: 10 });
    expect(changeOf(110, 100, "down")).toMatchObject({ dir: "up", tone: "bad" });
    expect(changeOf(90, 100, "down")).toMatchObject({ text: "−10.0%", dir: "down", tone: "good" });
    expect(changeOf(5, 5, "up")).toMatchObject({ text: "±0%", dir: "flat", tone: "neutral" });
    expect(changeOf(3, 0, "down")).toMatchObject({ text: "new", tone: "bad", pct: null });
    expect(changeOf(null, 3, "up")).toMatchObject({ text: "—", dir: "none", tone: "neutral" });
    expect(changeOf(3, undefined, "up").text).toBe("—");
  });

  it("turns a custom range into the nearest window ending now", () => {
    const now = Date.parse("2026-11-22T10:00:00Z");
    expect(rangeFrom("?window=7d")).toBeNull();
    expect(rangeFrom("?from=nope")).toBeNull();
    expect(rangeFrom("?from=2026-11-22T09:00:00Z&to=2026-11-22T08:00:00Z")).toBeNull();
    const r = rangeFrom("?from=2026-11-22T06:30:00Z&to=2026-11-22T08:00:00Z");
    expect(r?.to?.toISOString()).toBe("2026-11-22T08:00:00.000Z");
    expect(windowFrom("?from=2026-11-22T06:30:00Z&to=2026-11-22T08:00:00Z", now)).toBe("custom:210m");
    expect(windowFrom("?from=2026-11-22T06:30:00Z&window=7d", now)).toBe("custom:210m");
    expect(apiWindow(windowFrom("?from=2026-11-22T09:59:30Z", now))).toBe("1m");
    expect(windowFrom("?from=2020-01-01T00:00:00Z", now)).toBe(`custom:${90 * 24 * 60}m`);
    expect(windowLabel("custom:210m")).toBe("3h 30m");
    expect(windowLabel("24h")).toBe("24h");
    expect(bucketFor("custom:210m")).toBe("15m");
  });

  it("converts datetime-local inputs", () => {
    const d = new Date(2026, 10, 22, 9, 5);
    expect(localInput(d)).toBe("2026-11-22T09:05");
    expect(fromLocalInput("2026-11-22T09:05")).toBe(d.toISOString());
    expect(fromLocalInput("")).toBeNull();
    expect(fromLocalInput("x")).toBeNull();
  });
});
