// The cost explorer's pure parts: group-by choices, the bucket of a window,
// and the stacked series of `GET /v1/metrics/cost` (cumulative, in the
// order of the groups, largest at the bottom). Unit-tested.

/** The group-by choices (`tag:<key>` for any other attribute). */
export const GROUPS = [
  ["agent", "Agent"],
  ["workflow", "Workflow"],
  ["tag:team", "Team"],
  ["model", "Model"],
  ["provider", "Provider"],
] as const;

/** `?group=` of the URL, defaulting to agent; a bad one falls back too. */
export function groupFrom(search: string): string {
  const g = new URLSearchParams(search).get("group") ?? "agent";
  if (GROUPS.some(([v]) => v === g)) return g;
  if (/^tag:[^\s]{1,64}$/.test(g)) return g;
  return "agent";
}


/** A bucket the cost API takes that keeps a window under its 1,000 points
 *  (and a readable chart: 60–720 points). */
export function costBucket(secs: number): string {
  if (secs <= 3600) return "1m";
  if (secs <= 6 * 3600) return "5m";
  if (secs <= 86400) return "15m";
  if (secs <= 30 * 86400) return "1h";
  return "1d";
}

export interface Stacked {
  /** Unix seconds of each point. */
  xs: number[];
  /** The groups' keys, in stacking order (bottom first). */
  keys: string[];
  /** Each key's own spend per point. */
  raw: number[][];
  /** Each key's running total from the bottom (what is drawn). */
  cumulative: number[][];
}

/** The series `[{ts, key, cost_usd}]` as stacked rows in `order` (keys
 *  absent from `order`, e.g. `(other)`, go on top, in first-seen order). */
export function stack(series: readonly { ts: string; key: string; cost_usd: number }[], order: readonly string[]): Stacked {
  const times = [...new Set(series.map((p) => p.ts))].sort((a, b) => Date.parse(a) - Date.parse(b));
  const at = new Map(times.map((t, i) => [t, i]));
  const keys = [...order.filter((k) => series.some((p) => p.key === k))];
  for (const p of series) if (!keys.includes(p.key)) keys.push(p.key);
  const raw = keys.map(() => times.map(() => 0));
  for (const p of series) {
    const row = raw[keys.indexOf(p.key)];
    const i = at.get(p.ts);
    if (row && i !== undefined) row[i] = (row[i] ?? 0) + p.cost_usd;
  }
  const cumulative: number[][] = [];
  raw.forEach((row, k) => {
    const below = cumulative[k - 1];
    cumulative.push(row.map((v, i) => v + (below ? (below[i] ?? 0) : 0)));
  });
  return { xs: times.map((t) => Date.parse(t) / 1000), keys, raw, cumulative };
}

/** Points every `stepSec` from `fromSec` (floored to the step) to `toSec`,
 *  each the sum of `points` in its step (0 where none): a chart of a few
 *  buckets still spans its whole window. */
export function dense<T extends { ts: string }>(points: readonly T[], value: (p: T) => number, fromSec: number, toSec: number, stepSec: number): { xs: number[]; ys: number[] } {
  const start = Math.floor(fromSec / stepSec) * stepSec;
  const n = Math.max(1, Math.floor((toSec - start) / stepSec) + 1);
  const xs = Array.from({ length: n }, (_, i) => start + i * stepSec);
  const ys = xs.map(() => 0);
  for (const p of points) {
    const i = Math.floor((Date.parse(p.ts) / 1000 - start) / stepSec);
    if (i >= 0 && i < n) ys[i] = (ys[i] ?? 0) + value(p);
  }
  return { xs, ys };
}
