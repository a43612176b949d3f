// The live ticker's logic, without a socket or a DOM: frames of
// `GET /v1/live` (`{v, type, ts, data}`) and polled answers as rows, a
// buffer of at most 200 rows (oldest dropped) that shows `lost` notices,
// the reconnect backoff, and a throttle that redraws at most once per
// interval (TV mode: once a second). Unit-tested.

/** Most rows the ticker keeps (the API's per-client queue is as long). */
export const TICKER_CAP = 200;

export interface Frame {
  v: number;
  type: string;
  ts: string;
  data: Record<string, unknown>;
}

export interface TickerRow {
  /** Unique within the buffer (a frame seen by polling and live once). */
  key: string;
  type: string;
  ts: string;
  agent_id: string | null;
  run_id: string | null;
  /** One line: the error, the alert's message, the control's reason. */
  text: string;
  cost_usd: number | null;
  /** `lost` rows: how many frames the server dropped before the next. */
  lost?: number;
}

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** A frame parsed from a socket message, or null when it is not one. */
export function parseFrame(text: string): Frame | null {
  try {
    const f = JSON.parse(text) as Partial<Frame>;
    if (typeof f.type !== "string" || typeof f.ts !== "string" || typeof f.data !== "object" || f.data === null) return null;
    return { v: typeof f.v === "number" ? f.v : 1, type: f.type, ts: f.ts, data: f.data };
  } catch {
    return null;
  }
}

/** The row of a frame. */
export function rowOf(f: Frame, seq: number): TickerRow {
  const d = f.data;
  if (f.type === "lost") {
    const n = num(d.frames) ?? 0;
    return { key: `lost:${seq}`, type: "lost", ts: f.ts, agent_id: null, run_id: null, text: `${n} event${n === 1 ? "" : "s"} lost (this screen was too slow)`, cost_usd: null, lost: n };
  }
  const run = str(d.run_id);
  const agent = str(d.agent_id);
  let text = "";
  if (f.type === "run.failed") text = str(d.error_message) ?? str(d.error_type) ?? "failed";
  else if (f.type.startsWith("alert.") || f.type === "budget.crossed") text = str(d.message) ?? str(d.kind) ?? "";
  else if (f.type.startsWith("agent.")) text = str(d.reason) ?? (str(d.lifted) ? `lifted ${String(d.lifted)}` : "");
  else if (f.type === "run.completed") text = str(d.workflow_id) ?? "";
  else if (f.type === "run.started") text = str(d.workflow_id) ?? "";
  const id = str(d.event_id) ?? str(d.alert_id) ?? `${agent ?? ""}:${f.ts}`;
  return { key: `${f.type}:${run ?? id}`, type: f.type, ts: f.ts, agent_id: agent, run_id: run, text, cost_usd: num(d.cost_usd) };
}

/** A run of `GET /v1/runs` as the ticker shows it (polling mode). */
export function rowOfRun(r: { run_id: string; agent_id: string; status: string; started_at: string | null; ended_at: string | null; cost_usd: number | null; error_message: string | null; error_type: string | null; workflow_id: string | null }): TickerRow {
  const type = r.status === "failed" ? "run.failed" : r.status === "completed" ? "run.completed" : "run.started";
  const ts = (type === "run.started" ? r.started_at : r.ended_at ?? r.started_at) ?? "";
  const text = type === "run.failed" ? r.error_message ?? r.error_type ?? "failed" : r.workflow_id ?? "";
  return { key: `${type}:${r.run_id}`, type, ts, agent_id: r.agent_id, run_id: r.run_id, text, cost_usd: type === "run.started" ? null : r.cost_usd };
}

/** The ticker's rows, oldest first, at most `cap`. Immutable: each change
 *  is a new buffer (Preact compares by identity). */
export class TickerBuffer {
  private constructor(
    readonly rows: readonly TickerRow[],
    private readonly keys: ReadonlySet<string>,
    readonly cap: number,
    /** Frames the server told us it dropped, in all. */
    readonly lostTotal: number,
  ) {}

  static empty(cap = TICKER_CAP): TickerBuffer {
    return new TickerBuffer([], new Set(), cap, 0);
  }

  /** The buffer with `rows` added in order (a key already present is not
   *  added again; a `lost` row always is), trimmed to the newest `cap`. */
  add(rows: readonly TickerRow[]): TickerBuffer {
    if (rows.length === 0) return this;
    const keys = new Set(this.keys);
    const next = [...this.rows];
    let lost = this.lostTotal;
    for (const r of rows) {
      if (r.lost === undefined && keys.has(r.key)) continue;
      keys.add(r.key);
      next.push(r);
      lost += r.lost ?? 0;
    }
    const drop = Math.max(0, next.length - this.cap);
    const kept = drop ? next.slice(drop) : next;
    if (drop) for (const r of next.slice(0, drop)) keys.delete(r.key);
    return new TickerBuffer(kept, keys, this.cap, lost);
  }

  /** Rows sorted by time (polled answers come newest first). */
  static byTime(rows: readonly TickerRow[]): TickerRow[] {
    return [...rows].sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  }
}

/** Milliseconds before reconnect attempt `n` (0-based): 1 s doubling to
 *  30 s, with up to 20% jitter from `rand` (0..1). */
export function backoff(n: number, rand = 0.5): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(n, 15));
  return Math.round(base * (0.9 + 0.2 * rand));
}

/** The WebSocket URL of a page's location (same origin, wss under https). */
export function liveUrl(loc: { protocol: string; host: string }, params: Record<string, string> = {}): string {
  const q = new URLSearchParams(params).toString();
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/v1/live${q ? `?${q}` : ""}`;
}

/** Runs `flush` at most once per `intervalMs`: the first push after a quiet
 *  interval flushes on the next frame; pushes within it wait for its end
 *  and flush once. `schedule` delays a call (setTimeout + requestAnimationFrame
 *  in the page, a fake clock in tests). */
export class Throttle {
  private last = Number.NEGATIVE_INFINITY;
  private pending = false;

  constructor(
    private readonly intervalMs: number,
    private readonly flush: () => void,
    private readonly now: () => number,
    private readonly schedule: (fn: () => void, delayMs: number) => void,
  ) {}

  push(): void {
    if (this.pending) return;
    this.pending = true;
    const wait = Math.max(0, this.last + this.intervalMs - this.now());
    this.schedule(() => {
      this.pending = false;
      this.last = this.now();
      this.flush();
    }, wait);
  }
}
