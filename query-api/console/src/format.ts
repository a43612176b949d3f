// Formatting and thresholds shared by every view. No DOM.

/** Windows the picker offers; every panel follows the chosen one. */
export const WINDOWS = ["1h", "24h", "7d", "30d"] as const;
export type Window = (typeof WINDOWS)[number] | `custom:${string}`;

/** An amount in USD; `null` (unknown cost) is shown as "—", never as 0. */
export function usd(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const digits = Math.abs(v) < 1 ? 4 : 2;
  return `$${v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

/** A ratio in 0..1 as a percent; unknown as "—". */
export function percent(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return `${(v * 100).toFixed(1)}%`;
}

/** Milliseconds, switching to seconds from 10 s. */
export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
}

/** A count with thousands separators. */
export function count(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return Math.round(v).toLocaleString("en-US");
}

export type Level = "ok" | "warn" | "over" | "unknown";

/** A budget gauge's color: green below 80%, amber 80–99.9%, red from 100%. */
export function budgetLevel(pct: number | null | undefined): Level {
  if (pct === null || pct === undefined || !Number.isFinite(pct)) return "unknown";
  if (pct >= 100) return "over";
  if (pct >= 80) return "warn";
  return "ok";
}

/** The change of `now` against `before` as a signed percent ("+12.5%"), or "—". */
export function change(now: number | null, before: number | null): string {
  if (now === null || before === null || !Number.isFinite(now) || !Number.isFinite(before)) return "—";
  if (before === 0) return now === 0 ? "±0%" : "new";
  const d = ((now - before) / Math.abs(before)) * 100;
  return `${d >= 0 ? "+" : ""}${d.toFixed(1)}%`;
}

/** A custom range of the URL (`?from=<RFC 3339>&to=<RFC 3339>`; `to`
 *  absent: until now), or null when it has none or a bad one. */
export interface Range {
  from: Date;
  to: Date | null;
}

/** Longest range the API takes (90 days), in minutes. */
const MAX_MINUTES = 90 * 24 * 60;

export function rangeFrom(search: string): Range | null {
  const q = new URLSearchParams(search);
  const f = q.get("from");
  if (!f) return null;
  const from = new Date(f);
  if (Number.isNaN(from.getTime())) return null;
  const t = q.get("to");
  const to = t ? new Date(t) : null;
  if (to && (Number.isNaN(to.getTime()) || to <= from)) return null;
  return { from, to };
}

/** The window in a URL's query (`?window=24h`), defaulting to 24h. A custom
 *  range (`?from=&to=`) becomes the nearest window the aggregate endpoints
 *  take (they count back from now): `custom:<minutes>m` from `from` to now
 *  (at least 1 minute, at most 90 days). */
export function windowFrom(search: string, now: number = Date.now()): Window {
  const r = rangeFrom(search);
  if (r) {
    const mins = Math.min(MAX_MINUTES, Math.max(1, Math.ceil((now - r.from.getTime()) / 60_000)));
    return `custom:${mins}m`;
  }
  const w = new URLSearchParams(search).get("window");
  if (w && (WINDOWS as readonly string[]).includes(w)) return w as Window;
  if (w && /^custom:\d+[mhd]$/.test(w)) return w as Window;
  return "24h";
}

/** A window's length in seconds. */
export function windowSecs(w: Window): number {
  const d = apiWindow(w);
  const n = Number.parseInt(d, 10);
  return d.endsWith("d") ? n * 86400 : d.endsWith("h") ? n * 3600 : n * 60;
}

/** A human name of a window ("24h", "1d 0h 2m"). */
export function windowLabel(w: Window): string {
  if (!w.startsWith("custom:")) return w;
  const s = windowSecs(w);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [d ? `${d}d` : "", h ? `${h}h` : "", m ? `${m}m` : ""].filter(Boolean).join(" ") || "1m";
}

/** `<input type="datetime-local">`'s value of a time (local, to the minute). */
export function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A `datetime-local` value as RFC 3339 (UTC), or null when empty or bad. */
export function fromLocalInput(v: string | null | undefined): string | null {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** How a KPI's change reads: up is good (runs, success), bad (spend,
 *  latency, errors). */
export type Better = "up" | "down";

export interface Change {
  /** "+12.5%", "−3.0%", "±0%", "new", or "—". */
  text: string;
  /** The arrow's direction. */
  dir: "up" | "down" | "flat" | "none";
  /** Its color: good, bad, or neutral (flat or unknown). */
  tone: "good" | "bad" | "neutral";
  /** The signed percent (null: unknown or from 0). */
  pct: number | null;
}

/** The change of `now` against the previous window's `before`. */
export function changeOf(now: number | null | undefined, before: number | null | undefined, better: Better): Change {
  if (now === null || now === undefined || before === null || before === undefined || !Number.isFinite(now) || !Number.isFinite(before)) {
    return { text: "—", dir: "none", tone: "neutral", pct: null };
  }
  if (now === before) return { text: "±0%", dir: "flat", tone: "neutral", pct: 0 };
  const dir = now > before ? "up" : "down";
  const tone = dir === better ? "good" : "bad";
  if (before === 0) return { text: "new", dir, tone, pct: null };
  const pct = ((now - before) / Math.abs(before)) * 100;
  return { text: `${pct >= 0 ? "+" : "−"}${Math.abs(pct).toFixed(1)}%`, dir, tone, pct };
}

/** The query API's duration for a window (`custom:90m` → `90m`). */
export function apiWindow(w: Window): string {
  return w.startsWith("custom:") ? w.slice("custom:".length) : w;
}

/** A time-series bucket the API offers (1m, 15m, 1h) that keeps a chart
 *  between 60 and 720 points. */
export function bucketFor(w: Window): string {
  const secs = windowSecs(w);
  if (secs <= 3600) return "1m";
  if (secs <= 86400) return "15m";
  return "1h";
}

/** Who did something, as the API records it (`user:<id>:<email>`,
 *  `admin:<key id>[:<prefix>]`, `rule:…`), shortened for people. */
export function actor(a: string | null | undefined): string {
  if (!a) return "—";
  const user = /^user:[^:]+:(.+)$/.exec(a);
  if (user) return user[1] ?? a;
  const key = /^admin:[^:]+:(.+)$/.exec(a);
  if (key) return `key ${key[1] ?? ""}`;
  return a;
}
