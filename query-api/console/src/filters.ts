// The runs explorer's state as URL query parameters (so a link reproduces
// the view) and as the query of `GET /v1/runs` / `/v1/runs/export`, and its
// cursor stack (Next / Previous over keyset pages). Pure, unit-tested.

/** The search's filters, named as the API names them. */
export const FILTERS = [
  "from",
  "to",
  "window",
  "agent_id",
  "workflow_id",
  "status",
  "model",
  "provider",
  "error_type",
  "tag",
  "min_cost_usd",
  "max_cost_usd",
  "min_latency_ms",
  "max_latency_ms",
  "q",
] as const;
export type FilterName = (typeof FILTERS)[number];

export const SORTS = ["started_at", "cost_usd", "latency_ms"] as const;
export type SortKey = (typeof SORTS)[number];
export type Order = "desc" | "asc";

export interface RunSearch {
  filters: Partial<Record<FilterName, string>>;
  sort: SortKey;
  order: Order;
  /** The current page's cursor (null: the first page). */
  cursor: string | null;
}

/** Page size of the explorer. */
export const PAGE_SIZE = 25;

/** The explorer's state of a URL's query string. Unknown sorts and orders
 *  fall back to the defaults; empty values are absent. */
export function searchFromQuery(search: string): RunSearch {
  const q = new URLSearchParams(search);
  const filters: RunSearch["filters"] = {};
  for (const f of FILTERS) {
    const v = q.get(f)?.trim();
    if (v) filters[f] = v;
  }
  // The console's custom window (`custom:90m`) is a range for this API.
  if (filters.window?.startsWith("custom:")) filters.window = filters.window.slice("custom:".length);
  if (filters.from) delete filters.window;
  const s = q.get("sort");
  const sort = (SORTS as readonly string[]).includes(s ?? "") ? (s as SortKey) : "started_at";
  const order: Order = q.get("order") === "asc" ? "asc" : "desc";
  return { filters, sort, order, cursor: q.get("cursor") || null };
}

/** The URL changes that show `s` (every explorer parameter set or removed). */
export function queryChanges(s: RunSearch): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const f of FILTERS) out[f] = s.filters[f] ?? null;
  out.sort = s.sort === "started_at" ? null : s.sort;
  out.order = s.order === "desc" ? null : s.order;
  out.cursor = s.cursor;
  return out;
}

/** The API's query string of `s` (`limit` for a page; export takes none
 *  and no cursor). */
export function apiQuery(s: RunSearch, opts: { limit?: number; cursor?: boolean } = {}): string {
  const q = new URLSearchParams();
  for (const f of FILTERS) {
    const v = s.filters[f];
    if (v) q.set(f, v);
  }
  q.set("sort", s.sort);
  q.set("order", s.order);
  if (opts.limit !== undefined) q.set("limit", String(opts.limit));
  if (opts.cursor !== false && s.cursor) q.set("cursor", s.cursor);
  return q.toString();
}

/** The filters of a submitted filter form: trimmed, empty ones dropped;
 *  `datetime-local` times become RFC 3339. */
export function filtersFromForm(values: Record<string, string>, toRfc3339: (local: string) => string | null): RunSearch["filters"] {
  const out: RunSearch["filters"] = {};
  for (const f of FILTERS) {
    let v = values[f]?.trim() ?? "";
    if (!v) continue;
    if (f === "from" || f === "to") v = toRfc3339(v) ?? "";
    if (v) out[f] = v;
  }
  if (out.from) delete out.window;
  return out;
}

/** A click on a column's header: sort by it (newest / largest first), or
 *  flip the order when it already sorts; the cursor starts again. */
export function toggleSort(s: RunSearch, key: SortKey): RunSearch {
  if (s.sort === key) return { ...s, order: s.order === "desc" ? "asc" : "desc", cursor: null };
  return { ...s, sort: key, order: "desc", cursor: null };
}

/** The cursors of the pages before the current one ("" for the first). */
export type CursorStack = readonly string[];

/** Next: remember where this page started, go to `next`. */
export function pushCursor(stack: CursorStack, current: string | null, next: string): { stack: CursorStack; cursor: string } {
  return { stack: [...stack, current ?? ""], cursor: next };
}

/** Previous: back to where the page before started (null: the first). */
export function popCursor(stack: CursorStack): { stack: CursorStack; cursor: string | null } {
  if (stack.length === 0) return { stack, cursor: null };
  const prev = stack[stack.length - 1] ?? "";
  return { stack: stack.slice(0, -1), cursor: prev === "" ? null : prev };
}
