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

/** The window in a URL's query (`?window=24h`), defaulting to 24h. */
export function windowFrom(search: string): Window {
  const w = new URLSearchParams(search).get("window");
  if (w && (WINDOWS as readonly string[]).includes(w)) return w as Window;
  if (w && /^custom:\d+[mhd]$/.test(w)) return w as Window;
  return "24h";
}

/** The query API's duration for a window (`custom:90m` → `90m`). */
export function apiWindow(w: Window): string {
  return w.startsWith("custom:") ? w.slice("custom:".length) : w;
}

/** A time-series bucket the API offers (1m, 15m, 1h) that keeps a chart
 *  between 60 and 720 points. */
export function bucketFor(w: Window): string {
  const d = apiWindow(w);
  const n = Number.parseInt(d, 10);
  const secs = d.endsWith("d") ? n * 86400 : d.endsWith("h") ? n * 3600 : n * 60;
  if (secs <= 3600) return "1m";
  if (secs <= 86400) return "15m";
  return "1h";
}
