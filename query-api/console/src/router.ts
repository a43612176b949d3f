// Client-side routing over real paths under /console/ (the History API; the
// query API answers index.html for any /console/<path>, so a link opened
// directly lands on the same page). Pure: no DOM, unit-tested.

/** Where the console is served. */
export const BASE = "/console";

/** A compiled path pattern like `/alerts/:id` (params are one segment). */
export interface Pattern {
  readonly path: string;
  readonly re: RegExp;
  readonly names: readonly string[];
}

export type Params = Record<string, string>;

export function compile(path: string): Pattern {
  const names: string[] = [];
  const body = path
    .split("/")
    .map((seg) => {
      if (seg.startsWith(":")) {
        names.push(seg.slice(1));
        return "([^/]+)";
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return { path, re: new RegExp(`^${body}/?$`), names };
}

/** The console-relative path of a URL path (`/console/alerts/x` → `/alerts/x`,
 *  `/console` and `/console/` → `/`); null outside the console. */
export function relative(pathname: string): string | null {
  if (pathname === BASE || pathname === `${BASE}/`) return "/";
  if (!pathname.startsWith(`${BASE}/`)) return null;
  return pathname.slice(BASE.length);
}

/** The first pattern matching `path` and its decoded params. */
export function match<P extends Pattern>(patterns: readonly P[], path: string): { route: P; params: Params } | null {
  for (const route of patterns) {
    const m = route.re.exec(path);
    if (!m) continue;
    const params: Params = {};
    let ok = true;
    route.names.forEach((n, i) => {
      try {
        params[n] = decodeURIComponent(m[i + 1] ?? "");
      } catch {
        ok = false;
      }
    });
    if (ok) return { route, params };
  }
  return null;
}

/** The URL path of a console path with params filled in (each encoded):
 *  `href("/alerts/:id", {id: "a/b"})` → `/console/alerts/a%2Fb`. */
export function href(path: string, params: Params = {}, query: Record<string, string | null | undefined> = {}): string {
  const filled = path
    .split("/")
    .map((seg) => (seg.startsWith(":") ? encodeURIComponent(params[seg.slice(1)] ?? "") : seg))
    .join("/");
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const qs = q.toString();
  return `${BASE}${filled === "/" ? "/" : filled}${qs ? `?${qs}` : ""}`;
}

/** Query parameters that follow the operator from page to page (the time
 *  window); everything else belongs to the page it was set on. */
export const STICKY = ["window", "from", "to"] as const;

/** `to` (a console URL) with the sticky parameters of `search` added when
 *  `to` does not set them itself. */
export function withSticky(to: string, search: string): string {
  const u = new URL(to, "http://x");
  const from = new URLSearchParams(search);
  for (const k of STICKY) {
    const v = from.get(k);
    if (v !== null && !u.searchParams.has(k)) u.searchParams.set(k, v);
  }
  return `${u.pathname}${u.search}${u.hash}`;
}
