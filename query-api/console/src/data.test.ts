import { describe, expect, it } from "vitest";
import { depsChanged } from "./components/data";

describe("depsChanged", () => {
  it("is false for the same values, element by element", () => {
    const api = {};
    expect(depsChanged([api, "project", "cost"], [api, "project", "cost"])).toBe(false);
    expect(depsChanged([], [])).toBe(false);
    expect(depsChanged([NaN], [NaN])).toBe(false);
  });
  it("is true when a value, an object's identity or the length differs", () => {
    expect(depsChanged(["project", "last_seen"], ["project", "cost"])).toBe(true);
    expect(depsChanged([{}], [{}])).toBe(true);
    expect(depsChanged(["a"], ["a", undefined])).toBe(true);
  });
});
