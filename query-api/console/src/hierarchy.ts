// The coding-agent hierarchy's pure pieces (project → machine → workspace
// → session): where each lives in the console, its breadcrumbs, labels,
// status colors, and the session timeline's pages. No DOM, unit-tested.
import type { Crumb, HierarchyKind, HNode, SessionEvent, TimelineEvent, TokenTotals } from "./api";
import { href } from "./router";
import { count } from "./format";

export type PlaceKind = HierarchyKind | "session";

const PATHS: Record<PlaceKind, string> = {
  project: "/projects/:id",
  machine: "/machines/:id",
  workspace: "/workspaces/:id",
  session: "/sessions/:id",
};

/** The console URL of a project, machine, workspace or session (its id one
 *  encoded path segment: `github.com/acme/shop` → `github.com%2Facme%2Fshop`). */
export function placeHref(kind: PlaceKind, id: string): string {
  return href(PATHS[kind], { id });
}

/** One step of a page's breadcrumbs; the last (the page itself) has no link. */
export interface Step {
  kind: PlaceKind | "projects" | "machines";
  label: string;
  href: string | null;
}

const PROJECTS: Step = { kind: "projects", label: "Projects", href: "/console/projects" };
const MACHINES: Step = { kind: "machines", label: "Machines", href: "/console/machines" };

/** A machine's name, a workspace's path, else the id. */
export function nodeLabel(n: Pick<HNode, "id" | "name" | "path">): string {
  return n.name || n.path || n.id;
}

/** Projects › <project>. */
export function projectTrail(id: string): Step[] {
  return [PROJECTS, { kind: "project", label: id, href: null }];
}

/** Machines › <machine name>. */
export function machineTrail(m: Pick<HNode, "id" | "name" | "path">): Step[] {
  return [MACHINES, { kind: "machine", label: nodeLabel(m), href: null }];
}

/** <project> › <machine> › <workspace path> (the project and machine when
 *  the workspace names them; `machineName` when known). */
export function workspaceTrail(w: Pick<HNode, "id" | "path" | "project_id" | "machine_id">, machineName?: string | null): Step[] {
  const steps: Step[] = [];
  if (w.project_id) steps.push({ kind: "project", label: w.project_id, href: placeHref("project", w.project_id) });
  if (w.machine_id) steps.push({ kind: "machine", label: machineName || w.machine_id, href: placeHref("machine", w.machine_id) });
  steps.push({ kind: "workspace", label: w.path || w.id, href: null });
  return steps;
}

/** The API's breadcrumbs of a session (project › machine › workspace), each
 *  a link, then the session itself. */
export function sessionTrail(sessionId: string, crumbs: readonly Crumb[]): Step[] {
  const order: Record<string, number> = { project: 0, machine: 1, workspace: 2 };
  const known = crumbs.filter((c) => c.kind in order).sort((a, b) => (order[a.kind] ?? 0) - (order[b.kind] ?? 0));
  return [...known.map((c): Step => ({ kind: c.kind, label: c.label || c.id, href: placeHref(c.kind, c.id) })), { kind: "session", label: sessionId, href: null }];
}

/** The pill color of a node's or session's status. */
export function statusTone(s: string): string {
  if (s === "killed" || s === "failed") return "over";
  if (s === "paused") return "warn";
  if (s === "active" || s === "running" || s === "completed") return "ok";
  return "";
}

/** A place above a session, with its status. */
export interface Parent {
  crumb: Crumb;
  status: string;
  reason: string | null;
}

/** The places above a session that are paused or killed, in the order the
 *  API picks the session's control from (a kill first, then the nearest:
 *  workspace, machine, project). */
export function stoppedParents(parents: readonly Parent[]): Parent[] {
  const near: Record<string, number> = { workspace: 0, machine: 1, project: 2 };
  return parents
    .filter((p) => isStopped(p.status))
    .sort((a, b) => Number(b.status === "killed") - Number(a.status === "killed") || (near[a.crumb.kind] ?? 3) - (near[b.crumb.kind] ?? 3));
}

/** Whether a status is an operator's control (what Resume lifts). */
export function isStopped(s: string): boolean {
  return s === "paused" || s === "killed";
}

/** The token kinds that are not zero: "10,000 in / 2,000 out / 345 cache". */
export function tokenKinds(t: TokenTotals): string {
  const parts: [number, string][] = [
    [t.input, "in"],
    [t.output, "out"],
    [t.cache_read + t.cache_write, "cache"],
    [t.reasoning, "reasoning"],
  ];
  return parts
    .filter(([n]) => n > 0)
    .map(([n, what]) => `${count(n)} ${what}`)
    .join(" / ");
}

/** "12,345 (10,000 in / 2,000 out / 345 cache)": the total, then its kinds. */
export function tokenBreakdown(t: TokenTotals): string {
  const kinds = tokenKinds(t);
  return kinds ? `${count(t.total)} (${kinds})` : count(t.total);
}

export type SortKey = "last_seen" | "cost";

/** The list order of a URL's query (`?sort=cost`), last seen by default. */
export function sortFrom(search: string): SortKey {
  return new URLSearchParams(search).get("sort") === "cost" ? "cost" : "last_seen";
}

/** Timeline events per page of a URL's query (`?limit=`, 1–5000), else `fallback`. */
export function pageSizeFrom(search: string, fallback = 200): number {
  const raw = new URLSearchParams(search).get("limit");
  if (raw === null || !/^\d+$/.test(raw)) return fallback;
  const n = Number.parseInt(raw, 10);
  return n >= 1 && n <= 5000 ? n : fallback;
}

/** A session's events as timeline steps (the run timeline's shape). */
export function asSteps(events: readonly SessionEvent[]): (TimelineEvent & { sidechain: boolean; agent_id: string })[] {
  return events.map((e) => ({
    event_id: e.event_id,
    timestamp: e.ts,
    type: e.type,
    agent_id: e.agent_id,
    model: e.model,
    tool_name: e.tool_name,
    status: e.status,
    latency_ms: e.latency_ms,
    cost_usd: e.cost_usd,
    input_tokens: e.input_tokens,
    output_tokens: e.output_tokens,
    cache_read_tokens: e.cache_read_tokens,
    cache_write_tokens: e.cache_write_tokens,
    reasoning_tokens: e.reasoning_tokens,
    error_type: e.error_type,
    error_message: e.error_message,
    sidechain: e.sidechain,
  }));
}

/** The rows so far with the next page appended (a row already shown, by
 *  `key`, is not shown twice). */
export function appendRows<T>(shown: readonly T[], page: readonly T[], key: (row: T) => string): T[] {
  const seen = new Set(shown.map(key));
  return [...shown, ...page.filter((r) => !seen.has(key(r)))];
}
