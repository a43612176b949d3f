// Small helpers that never throw.

const MAX_ATTRIBUTES = 64;
const MAX_KEY_BYTES = 256;
/** The gateway keeps at most 4096 bytes of error messages and attribute values. */
export const MAX_TEXT_BYTES = 4096;

// Microsecond timestamps: the wall clock at start plus the monotonic clock since
// (performance.now(), a double in ms with sub-µs precision), so that events of one process
// keep their order (a run's events sort by timestamp); every 1024 calls the result is checked
// against Date.now() and re-based if they drifted apart by more than a second (clock steps).
let baseWallUs = Date.now() * 1000;
let basePerfMs = performance.now();
let lastUs = 0;
let calls = 0;

/** Now, in microseconds since the epoch, strictly increasing within the process. */
export function nowMicros(): number {
  let us = Math.floor(baseWallUs + (performance.now() - basePerfMs) * 1000);
  if ((++calls & 1023) === 0) {
    const wall = Date.now() * 1000;
    if (Math.abs(us - wall) > 1_000_000) {
      baseWallUs = wall;
      basePerfMs = performance.now();
      us = wall;
    }
  }
  if (us <= lastUs) us = lastUs + 1;
  lastUs = us;
  return us;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** RFC 3339 UTC with microseconds, e.g. `2026-11-22T10:00:00.123456Z`. */
export function formatMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const d = new Date(ms);
  const frac = us - Math.floor(us / 1_000_000) * 1_000_000;
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}` +
    `.${pad(frac, 6)}Z`
  );
}

/**
 * An event's timestamp from what the caller gave (default now): an RFC 3339 string as given,
 * otherwise microseconds since the epoch, formatted when the batch is sent.
 */
export function timestampOf(t: Date | number | string | undefined): string | number {
  if (t === undefined || t === null) return nowMicros();
  if (typeof t === "string") return t;
  const ms = t instanceof Date ? t.getTime() : t;
  if (typeof ms !== "number" || !Number.isFinite(ms)) return nowMicros();
  return Math.round(ms * 1000);
}

/** A non-negative whole number, or undefined (NaN, negative, non-numbers). */
export function count(v: unknown): number | undefined {
  if (typeof v === "bigint") v = Number(v);
  if (typeof v !== "number" || !Number.isFinite(v)) return undefined;
  const n = Math.round(v);
  return n >= 0 ? n : 0;
}

/** `a - b` for token counts, never negative, undefined when `a` is missing. */
export function minus(a: unknown, b: unknown): number | undefined {
  const x = count(a);
  if (x === undefined) return undefined;
  const y = count(b) ?? 0;
  return Math.max(0, x - y);
}

/** A non-negative finite number (cost), or undefined. */
export function amount(v: unknown): number | undefined {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) return undefined;
  return v;
}

/** A non-empty string, or undefined. */
export function str(v: unknown): string | undefined {
  if (typeof v === "string") return v.length > 0 ? v : undefined;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return undefined;
}

/** Cut `s` to at most `maxBytes` bytes of UTF-8, at a character boundary. */
export function truncateBytes(s: string, maxBytes: number): string {
  // Fast path: each UTF-16 unit is at most 3 bytes of UTF-8.
  if (s.length * 3 <= maxBytes) return s;
  if (Buffer.byteLength(s, "utf8") <= maxBytes) return s;
  const buf = Buffer.from(s, "utf8").subarray(0, maxBytes);
  // Drop a partial trailing character (decoded as U+FFFD).
  let out = buf.toString("utf8");
  if (out.endsWith("\uFFFD")) out = out.slice(0, -1);
  return out;
}

/** Text of any value, never throwing (circular objects, throwing getters, ...). */
export function textOf(v: unknown): string {
  try {
    if (typeof v === "string") return v;
    if (v === undefined) return "undefined";
    if (v === null) return "null";
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
    if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.toISOString() : "Invalid Date";
    if (typeof v === "object") {
      try {
        const s = JSON.stringify(v);
        if (typeof s === "string") return s;
      } catch {
        // circular or a throwing toJSON: fall through
      }
    }
    return String(v);
  } catch {
    return "[unprintable]";
  }
}

/** The attributes as a string map the gateway accepts (≤ 64 keys, values ≤ 4096 bytes). */
export function attributesOf(a: unknown): Record<string, string> | undefined {
  if (a === undefined || a === null || typeof a !== "object") return undefined;
  const out: Record<string, string> = {};
  let n = 0;
  try {
    for (const k of Object.keys(a)) {
      if (n >= MAX_ATTRIBUTES) break;
      let v: unknown;
      try {
        v = (a as Record<string, unknown>)[k];
      } catch {
        v = "[unreadable]";
      }
      if (v === undefined || v === null) continue;
      out[truncateBytes(k, MAX_KEY_BYTES)] = truncateBytes(textOf(v), MAX_TEXT_BYTES);
      n++;
    }
  } catch {
    // a Proxy whose ownKeys throws: keep what was read
  }
  return n > 0 ? out : undefined;
}

/** `error_type` and `error_message` of a thrown value. */
export function errorFields(err: unknown): { type: string; message: string } {
  try {
    if (err instanceof Error) {
      const name = str(err.name) ?? str(err.constructor?.name) ?? "Error";
      return { type: truncateBytes(name, MAX_KEY_BYTES), message: truncateBytes(textOf(err.message), MAX_TEXT_BYTES) };
    }
    if (err !== null && typeof err === "object") {
      const o = err as { name?: unknown; message?: unknown };
      const name = str(o.name) ?? str((err as object).constructor?.name) ?? "Error";
      const message = o.message !== undefined ? textOf(o.message) : textOf(err);
      return { type: truncateBytes(name, MAX_KEY_BYTES), message: truncateBytes(message, MAX_TEXT_BYTES) };
    }
    return { type: typeof err === "string" ? "Error" : typeof err, message: truncateBytes(textOf(err), MAX_TEXT_BYTES) };
  } catch {
    return { type: "Error", message: "[unprintable error]" };
  }
}
