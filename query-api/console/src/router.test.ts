import { describe, expect, it } from "vitest";
import { compile, href, match, relative, withSticky } from "./router";

describe("router", () => {
  const routes = ["/", "/alerts", "/alerts/:id", "/admin/keys", "/runs/:run/steps/:step"].map(compile);

  it("maps URL paths under /console to console paths", () => {
    expect(relative("/console")).toBe("/");
    expect(relative("/console/")).toBe("/");
    expect(relative("/console/alerts")).toBe("/alerts");
    expect(relative("/consoles")).toBeNull();
    expect(relative("/v1/alerts")).toBeNull();
  });

  it("matches the first pattern, with decoded params", () => {
    expect(match(routes, "/")?.route.path).toBe("/");
    expect(match(routes, "/alerts")?.route.path).toBe("/alerts");
    expect(match(routes, "/alerts/")?.route.path).toBe("/alerts");
    const m = match(routes, "/alerts/a%2Fb%20c");
    expect(m?.route.path).toBe("/alerts/:id");
    expect(m?.params).toEqual({ id: "a/b c" });
    expect(match(routes, "/runs/r1/steps/7")?.params).toEqual({ run: "r1", step: "7" });
    expect(match(routes, "/alerts/x/y")).toBeNull();
    expect(match(routes, "/nope")).toBeNull();
    // A malformed escape is no match, not an exception.
    expect(match(routes, "/alerts/%E0%A4%A")).toBeNull();
  });

  it("treats pattern text literally", () => {
    const r = [compile("/a.b")];
    expect(match(r, "/a.b")).not.toBeNull();
    expect(match(r, "/axb")).toBeNull();
  });

  it("builds links with encoded params and a query", () => {
    expect(href("/")).toBe("/console/");
    expect(href("/alerts/:id", { id: "a/b" })).toBe("/console/alerts/a%2Fb");
    expect(href("/alerts", {}, { state: "firing", x: null, y: "" })).toBe("/console/alerts?state=firing");
  });

  it("keeps the window from page to page unless the link sets one", () => {
    expect(withSticky("/console/alerts", "?window=7d&tv=1&state=x")).toBe("/console/alerts?window=7d");
    expect(withSticky("/console/?window=1h", "?window=7d")).toBe("/console/?window=1h");
    expect(withSticky("/console/runs", "")).toBe("/console/runs");
  });
});
