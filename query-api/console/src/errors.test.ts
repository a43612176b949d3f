import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { bare, formErrors } from "./errors";
import { compact, list, num, numList, text } from "./forms";

describe("form errors", () => {
  it("puts a field-named error next to that field, without the prefix", () => {
    const e = new ApiError(400, "invalid_field", "field `limit_usd`: required: a number above 0", "limit_usd");
    expect(formErrors(e, ["name", "limit_usd"])).toEqual({ fields: { limit_usd: "required: a number above 0" }, general: null });
  });

  it("puts an error for a field the form lacks, or none, on the form", () => {
    const e = new ApiError(400, "unknown_field", "field `x` is not accepted here", "x");
    expect(formErrors(e, ["name"])).toEqual({ fields: {}, general: "field `x` is not accepted here" });
    const c = new ApiError(409, "conflict", "a budget named `a` already exists");
    expect(formErrors(c, ["name"]).general).toBe("a budget named `a` already exists");
    expect(formErrors(new ApiError(403, "forbidden", "the role `viewer` does not allow x"), []).general).toMatch(/^Not allowed: /);
    expect(formErrors(new Error("offline"), []).general).toBe("offline");
  });

  it("strips each wording of the field prefix", () => {
    expect(bare("parameter `window`: bad", "window")).toBe("bad");
    expect(bare("note: at most 1000 characters", "note")).toBe("at most 1000 characters");
    expect(bare("something else", "x")).toBe("something else");
  });
});

describe("form values", () => {
  it("leaves empty inputs out and passes non-numbers on for the API to judge", () => {
    expect(text("  a ")).toBe("a");
    expect(text("  ")).toBeUndefined();
    expect(num("12.5")).toBe(12.5);
    expect(num("-3")).toBe(-3);
    expect(num("")).toBeUndefined();
    expect(num("abc")).toBe("abc");
    expect(list("a, b,,\nc ")).toEqual(["a", "b", "c"]);
    expect(numList("80, 100, x")).toEqual([80, 100, "x"]);
    expect(compact({ a: 1, b: undefined, c: null })).toEqual({ a: 1, c: null });
  });
});

import { ruleParams, RULE_KINDS } from "./rulekinds";

describe("rule kinds", () => {
  const v = { threshold: 0.2, window_secs: 900, min_runs: undefined, minutes: 10 };
  it("send only the parameters a kind uses", () => {
    expect(ruleParams("error_rate", v, false)).toEqual({ threshold: 0.2, window_secs: 900 });
    expect(ruleParams("no_heartbeat", v, false)).toEqual({ minutes: 10 });
    expect(ruleParams("cost_per_day", v, false)).toEqual({ threshold: 0.2 });
  });
  it("clear the others on update", () => {
    expect(ruleParams("stuck_run", v, true)).toEqual({ threshold: null, window_secs: null, min_runs: 1, minutes: 10 });
  });
  it("allow the API's scopes", () => {
    expect(RULE_KINDS.error_rate.scopes).not.toContain("tag");
    expect(RULE_KINDS.no_heartbeat.scopes).not.toContain("model");
    expect(RULE_KINDS.cost_per_day.scopes).toContain("tag");
  });
});
