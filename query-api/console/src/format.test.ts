import { describe, expect, it } from "vitest";
import { apiWindow, bucketFor, budgetLevel, change, count, ms, percent, usd, windowFrom } from "./format";

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
