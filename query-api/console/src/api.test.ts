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
});
