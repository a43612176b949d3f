// The pieces the coding-agent pages share: breadcrumbs, the Projects /
// Machines / Sessions tabs, totals cards, a place's status with its
// pause / resume (admins and owners), and the empty state that says how
// coding-agent data gets here.
import { Fragment, type ComponentChildren, type JSX } from "preact";
import { useState } from "preact/hooks";
import type { HierarchyTotals, HNode, ScopeControlKind } from "../api";
import { count, usd } from "../format";
import { isStopped, statusTone, tokenKinds, type Step } from "../hierarchy";
import { can } from "../roles";
import { Tabs, When } from "./bits";
import { useApi } from "./data";
import { ConfirmButton } from "./form";
import { Link } from "./router";
import { useSession } from "./session";

export function Breadcrumbs({ steps }: { steps: readonly Step[] }): JSX.Element {
  return (
    <nav class="crumbs" aria-label="breadcrumbs">
      <ol>
        {steps.map((s, i) => (
          <li key={`${s.kind}:${i}`} data-crumb={s.kind}>
            {s.href ? (
              <Link href={s.href} title={s.label}>
                {s.label}
              </Link>
            ) : (
              <span aria-current="page" title={s.label}>
                {s.label}
              </span>
            )}
          </li>
        ))}
      </ol>
    </nav>
  );
}

export function HierarchyTabs({ active }: { active: "projects" | "machines" | "sessions" }): JSX.Element {
  return (
    <Tabs
      label="coding agents"
      active={active}
      tabs={[
        { id: "projects", label: "Projects", href: "/console/projects" },
        { id: "machines", label: "Machines", href: "/console/machines" },
        { id: "sessions", label: "Sessions", href: "/console/sessions" },
      ]}
    />
  );
}

export function StatusPill({ status }: { status: string }): JSX.Element {
  return (
    <span class={`pill ${statusTone(status)}`} data-status-pill={status}>
      {status}
    </span>
  );
}

function Card({ kpi, value, label, children, sub }: { kpi: string; value: number; label: string; children: ComponentChildren; sub?: ComponentChildren }): JSX.Element {
  return (
    <div class="card" data-kpi={kpi} data-value={String(value)}>
      <div class="label">{label}</div>
      <div class="value">{children}</div>
      {sub ? <div class="label">{sub}</div> : null}
    </div>
  );
}

/** All-time totals as cards (`sessions` when the place counts them). */
export function TotalsCards({ t, sessions }: { t: HierarchyTotals; sessions?: number }): JSX.Element {
  return (
    <section class="cards" aria-label="all-time totals">
      {sessions === undefined ? null : (
        <Card kpi="sessions" value={sessions} label="Sessions">
          {count(sessions)}
        </Card>
      )}
      <Card kpi="cost_usd" value={t.cost_usd} label="Spend">
        {usd(t.cost_usd)}
      </Card>
      <Card kpi="tokens" value={t.tokens.total} label="Tokens" sub={tokenKinds(t.tokens) || "none yet"}>
        {count(t.tokens.total)}
      </Card>
      <Card kpi="llm_calls" value={t.llm_calls} label="LLM calls" sub={`${count(t.tool_calls)} tool calls`}>
        {count(t.llm_calls)}
      </Card>
      <Card kpi="errors" value={t.errors} label="Errors" sub={`of ${count(t.events)} events`}>
        <span class={t.errors > 0 ? "error" : ""}>{count(t.errors)}</span>
      </Card>
    </section>
  );
}

function ScopeControls({ kind, id, status, onDone }: { kind: ScopeControlKind; id: string; status: string; onDone: () => void }): JSX.Element {
  const { api } = useSession();
  const [reason, setReason] = useState("");
  const [note, setNote] = useState<string | null>(null);
  const act = (action: "pause" | "resume") => () =>
    api.scopeControl(kind, id, action, reason).then((r) => {
      setReason("");
      setNote(
        action === "resume" && r.resumed === false
          ? kind === "session"
            ? "Nothing to resume on the session itself: the pause is on its project, machine or workspace. Resume it there."
            : `Nothing to resume: no pause or kill is set on this ${kind}.`
          : null,
      );
      onDone();
    });
  return (
    <div class="controls" data-scope-controls={kind}>
      <label class="filter">
        <span>Reason (audited)</span>
        <input name="reason" value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} placeholder="e.g. runaway spend, investigating" maxLength={500} />
      </label>
      <div class="row-actions">
        {!isStopped(status) ? (
          <span data-scope-action="pause">
            <ConfirmButton class="warn-button" question={`Pause this ${kind}?`} onConfirm={act("pause")}>
              Pause {kind}
            </ConfirmButton>
          </span>
        ) : (
          <span data-scope-action="resume">
            <ConfirmButton class="ok-button" question={`Resume this ${kind}?`} onConfirm={act("resume")}>
              Resume {kind}
            </ConfirmButton>
          </span>
        )}
      </div>
      {note ? (
        <p class="notice" role="status" data-scope-note>
          {note}
        </p>
      ) : null}
      <p class="hint">
        Claude Code's hook (the collector's, opt-in) denies the next tool call of {kind === "session" ? "a paused session" : `every session under a paused ${kind}`}. The reason is kept in the audit log with who set or lifted it.
      </p>
    </div>
  );
}

/** A place's status (a pause or kill says why), when it was seen, more
 *  facts, and for admins and owners its pause / resume. */
export function ScopeStatus({ kind, id, status, reason, why, t, facts, onChanged }: { kind: ScopeControlKind; id: string; status: string; reason: string | null; why?: ComponentChildren; t: Pick<HierarchyTotals, "first_seen" | "last_seen">; facts: readonly (readonly [string, ComponentChildren])[]; onChanged: () => void }): JSX.Element {
  const { me } = useSession();
  return (
    <section class="panel" aria-label="status" id="scope-status">
      <div class="status-row">
        <dl class="facts" data-scope-status={status}>
          <dt>status</dt>
          <dd>
            <StatusPill status={status} />
            {reason ? (
              <span class="status-reason" data-status-reason>
                {" "}
                {reason}
              </span>
            ) : null}
            {why}
          </dd>
          {facts.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([label, v]) => (
            <Fragment key={label}>
              <dt>{label}</dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
          <dt>first seen</dt>
          <dd>
            <When at={t.first_seen} />
          </dd>
          <dt>last seen</dt>
          <dd>
            <When at={t.last_seen} />
          </dd>
        </dl>
        {can(me, "configure") ? <ScopeControls kind={kind} id={id} status={status} onDone={onChanged} /> : null}
      </div>
    </section>
  );
}

/** No coding-agent data yet: how it gets here. */
export function NoCodingAgents(): JSX.Element {
  return (
    <div class="notice empty-state" data-empty="coding-agents">
      <p>
        <strong>No coding-agent sessions yet.</strong> Projects, machines, workspaces and sessions appear here once events name them (<code>project_id</code>, <code>machine_id</code>, <code>workspace_id</code>, <code>session_id</code>).
      </p>
      <p>Install the collector on each developer machine or CI runner: it reads Claude Code's and Codex CLI's sessions from disk and sends them to the gateway with an ingest key.</p>
      <pre>
        <code>{`export AGENTOPS_COLLECTOR_ENDPOINT=https://<your gateway>
export AGENTOPS_COLLECTOR_API_KEY=<an ingest key>
agentops-collector install      # a systemd user unit: backfill, then follow
agentops-collector status       # what it has read and sent`}</code>
      </pre>
      <p class="hint">
        See <code>collector/README.md</code> for the configuration, and <code>docs/coding-agents.md</code> for the agents' own OpenTelemetry export (<code>POST /v1/logs</code>, <code>/v1/metrics</code>) and budgets that pause Claude Code.
      </p>
    </div>
  );
}

/** Machines' names by id (a project's machines and a workspace's machine
 *  come by id only); empty until known or when the list cannot be read. */
export function useMachineNames(): Map<string, string> {
  const { api } = useSession();
  const list = useApi(() => api.machines("last_seen", 1000), [api]);
  const names = new Map<string, string>();
  for (const m of list.data ?? ([] as HNode[])) if (m.name) names.set(m.id, m.name);
  return names;
}
