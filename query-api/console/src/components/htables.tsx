// The coding-agent hierarchy's tables: projects or machines with their
// totals, a project's machines / a machine's projects (groups of
// workspaces), workspaces, sessions. Each row links to its page and
// carries its figures as `data-*` (tests compare them with the API).
import type { ComponentChildren, JSX } from "preact";
import type { HGroup, HierarchyTotals, HNode, SessionSummary } from "../api";
import { count, usd } from "../format";
import { placeHref, tokenBreakdown, type PlaceKind } from "../hierarchy";
import { When } from "./bits";
import { StatusPill } from "./hierarchy";
import { Link } from "./router";
import { Table, type Column } from "./table";

/** The figures of a row as attributes. */
function figures(t: HierarchyTotals): Record<string, string> {
  return {
    "data-events": String(t.events),
    "data-llm-calls": String(t.llm_calls),
    "data-tool-calls": String(t.tool_calls),
    "data-errors": String(t.errors),
    "data-tokens": String(t.tokens.total),
    "data-cost": String(t.cost_usd),
  };
}

/** The totals columns every table ends with. */
function totals<T extends HierarchyTotals>(): Column<T>[] {
  return [
    { label: "LLM calls", cell: (r) => count(r.llm_calls), class: "num" },
    { label: "tool calls", cell: (r) => count(r.tool_calls), class: "num" },
    { label: "tokens", cell: (r) => <span title={tokenBreakdown(r.tokens)}>{count(r.tokens.total)}</span>, class: "num" },
    { label: "cost", cell: (r) => usd(r.cost_usd), class: "num" },
    { label: "errors", cell: (r) => <span class={r.errors > 0 ? "error" : ""}>{count(r.errors)}</span>, class: "num" },
    { label: "last seen", cell: (r) => <When at={r.last_seen} />, class: "nowrap" },
  ];
}

function status(s: string, reason: string | null): ComponentChildren {
  return (
    <>
      <StatusPill status={s} />
      {reason ? <div class="hint">{reason}</div> : null}
    </>
  );
}

function place(kind: PlaceKind, id: string | null, label?: string | null): ComponentChildren {
  if (!id) return "—";
  return (
    <Link href={placeHref(kind, id)} data-link={kind} title={id}>
      {label || id}
    </Link>
  );
}

/** Projects or machines (`kind`), each with its status and totals. */
export function NodeTable({ kind, rows, label }: { kind: "project" | "machine"; rows: readonly HNode[]; label: string }): JSX.Element {
  return (
    <Table<HNode>
      label={label}
      rows={rows}
      rowKey={(n) => n.id}
      rowProps={(n) => ({ "data-node": kind, "data-id": n.id, "data-status": n.status, "data-sessions": String(n.sessions), ...figures(n) })}
      columns={[
        {
          label: kind,
          cell: (n) => (
            <>
              {place(kind, n.id, kind === "machine" ? n.name : n.id)}
              {kind === "project" && n.url ? <div class="hint">{n.url}</div> : null}
              {kind === "machine" && n.os ? <div class="hint">{n.os}</div> : null}
            </>
          ),
        },
        { label: "status", cell: (n) => status(n.status, n.status_reason) },
        { label: "sessions", cell: (n) => count(n.sessions), class: "num" },
        ...totals<HNode>(),
      ]}
    />
  );
}

/** A project's machines (`kind` machine) or a machine's projects, with the
 *  totals of their workspaces there. */
export function GroupTable({ kind, rows, names, label }: { kind: "project" | "machine"; rows: readonly HGroup[]; names?: ReadonlyMap<string, string>; label: string }): JSX.Element {
  return (
    <Table<HGroup>
      label={label}
      rows={rows}
      rowKey={(g) => g.id ?? "(none)"}
      rowProps={(g) => ({ "data-group": kind, "data-id": g.id ?? "", "data-workspaces": String(g.workspaces), ...figures(g) })}
      empty={`No ${kind}s yet.`}
      columns={[
        { label: kind, cell: (g) => (g.id ? place(kind, g.id, names?.get(g.id)) : <span class="hint">(not named)</span>) },
        { label: "workspaces", cell: (g) => count(g.workspaces), class: "num" },
        ...totals<HGroup>(),
      ]}
    />
  );
}

/** Workspaces: path, where (project and / or machine), status, totals. */
export function WorkspaceTable({ rows, names, show }: { rows: readonly HNode[]; names?: ReadonlyMap<string, string>; show: readonly ("project" | "machine")[] }): JSX.Element {
  const where: Column<HNode>[] = show.map((k) =>
    k === "project" ? { label: "project", cell: (w: HNode) => place("project", w.project_id) } : { label: "machine", cell: (w: HNode) => place("machine", w.machine_id, w.machine_id ? names?.get(w.machine_id) : null) },
  );
  return (
    <Table<HNode>
      label="workspaces"
      rows={rows}
      rowKey={(w) => w.id}
      rowProps={(w) => ({ "data-workspace": w.id, "data-path": w.path ?? "", "data-machine": w.machine_id ?? "", "data-status": w.status, "data-sessions": String(w.sessions), ...figures(w) })}
      empty="No workspaces yet."
      columns={[
        { label: "workspace", cell: (w) => place("workspace", w.id, w.path) },
        ...where,
        { label: "status", cell: (w) => status(w.status, w.status_reason) },
        { label: "sessions", cell: (w) => count(w.sessions), class: "num" },
        ...totals<HNode>(),
      ]}
    />
  );
}

/** Sessions, latest first: status, agent, model, branch, totals. */
export function SessionTable({ rows, empty = "No sessions yet." }: { rows: readonly SessionSummary[]; empty?: ComponentChildren }): JSX.Element {
  return (
    <Table<SessionSummary>
      label="sessions"
      rows={rows}
      rowKey={(s) => s.session_id}
      rowProps={(s) => ({ "data-session": s.session_id, "data-status": s.status, ...figures(s), class: s.status === "failed" ? "failed" : "" })}
      empty={empty}
      columns={[
        { label: "session", cell: (s) => place("session", s.session_id) },
        { label: "status", cell: (s) => status(s.status, s.status_reason) },
        { label: "agent", cell: (s) => s.agent_id ?? "—" },
        { label: "model", cell: (s) => s.model ?? "—" },
        { label: "branch", cell: (s) => (s.git_branch ? <code>{s.git_branch}</code> : "—") },
        ...totals<SessionSummary>(),
      ]}
    />
  );
}
