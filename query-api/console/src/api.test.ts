import { describe, expect, it } from "vitest";
import { Api, ApiError, type Fetch } from "./api";

function answering(status: number, body: unknown, seen: string[] = []): Fetch {
  return async (input, init) => {
    const h = init?.headers as Record<string, string>;
    seen.push(`${init?.method ?? "GET"} ${input} ${h.authorization ?? "-"} ${h["x-csrf-token"] ?? "-"}`);
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  };
}

describe("Api", () => {
  it("sends the key and reads the answer", async () => {
    const seen: string[] = [];
    const api = new Api("aok_x", answering(200, { window: "24h", runs: 3 }, seen));
    const o = await api.overview("24h");
    expect(o.runs).toBe(3);
    expect(seen).toEqual(["GET /v1/metrics/overview?window=24h Bearer aok_x -"]);
  });

  it("turns the API's error body into an ApiError naming the field", async () => {
    const api = new Api("k", answering(400, { error: { code: "invalid_parameter", message: "bad", field: "window" } }));
    const e = await api.overview("nope").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).status).toBe(400);
    expect((e as ApiError).field).toBe("window");
    expect((e as ApiError).code).toBe("invalid_parameter");
  });

  it("sends the reason of every control, resume included, and none when blank", async () => {
    const bodies: unknown[] = [];
    const fetch: Fetch = async (_input, init) => {
      bodies.push(JSON.parse(String(init?.body ?? "null")));
      return new Response(JSON.stringify({ agent_id: "a1" }), { status: 200, headers: { "content-type": "application/json" } });
    };
    const api = new Api("k", fetch);
    await api.control("a1", "pause", " runaway spend ");
    await api.control("a1", "resume", "incident over");
    await api.control("a1", "kill", "  ");
    expect(bodies).toEqual([{ reason: "runaway spend" }, { reason: "incident over" }, {}]);
  });

  it("shares a GET between panels drawn together, but not a failure and not for long", async () => {
    const seen: string[] = [];
    let status = 500;
    const fetch: Fetch = async (input) => {
      seen.push(String(input));
      return new Response(JSON.stringify({ budgets: [] }), { status, headers: { "content-type": "application/json" } });
    };
    const api = new Api("k", fetch);
    await expect(api.budgets()).rejects.toBeInstanceOf(ApiError);
    status = 200;
    const [a, b] = await Promise.all([api.budgets(), api.budgets()]);
    expect(a).toEqual([]);
    expect(b).toEqual([]);
    expect(seen).toHaveLength(2);
    await api.overview("24h");
    expect(seen).toHaveLength(3);
    // A change forgets what was shared.
    await api.post("/v1/admin/budgets", { name: "b" });
    await api.budgets();
    expect(seen).toHaveLength(5);
    const later = Date.now() + Api.SHARE_MS;
    const real = Date.now;
    Date.now = () => later;
    try {
      await api.budgets();
    } finally {
      Date.now = real;
    }
    expect(seen).toHaveLength(6);
  });

  it("builds the series query", async () => {
    const seen: string[] = [];
    const api = new Api("k", answering(200, { points: [] }, seen));
    await api.series("cost", "7d", "1h");
    expect(seen[0]).toContain("/v1/metrics/timeseries?metric=cost&window=7d&bucket=1h");
  });

  it("signs in by cookie and sends the CSRF token on mutating calls only", async () => {
    const seen: string[] = [];
    const api = new Api(null, answering(200, { org_id: "o", role: "viewer", csrf_token: "t1" }, seen));
    await api.login("a@b.c", "correct horse battery");
    await api.overview("1h");
    await api.logout();
    expect(seen).toEqual([
      "POST /v1/auth/login - -",
      "GET /v1/metrics/overview?window=1h - -",
      "POST /v1/auth/logout - t1",
    ]);
    expect(api.csrf).toBeNull();
  });

  it("sends PUT and DELETE with the CSRF token and reads an empty 204", async () => {
    const seen: string[] = [];
    const base = answering(200, { org_id: "o", role: "admin", csrf_token: "t2" }, seen);
    const api = new Api(null, async (i, init) => (init?.method === "DELETE" ? (seen.push(`DELETE ${i}`), new Response(null, { status: 204 })) : base(i, init)));
    await api.me();
    await api.update("budgets", "b/1", { limit_usd: 5 });
    expect(await api.remove("rules", "r1")).toBeNull();
    expect(seen).toEqual(["GET /v1/auth/me - -", "PUT /v1/admin/budgets/b%2F1 - t2", "DELETE /v1/admin/alert-rules/r1"]);
  });

  it("reports a 401 outside sign-in to the app", async () => {
    const api = new Api("k", answering(401, { error: { code: "invalid_api_key", message: "revoked" } }));
    const told: string[] = [];
    api.onUnauthorized = (e) => told.push(e.message);
    await api.alerts("firing").catch(() => undefined);
    await api.me().catch(() => undefined);
    expect(told).toEqual(["revoked"]);
  });
});
