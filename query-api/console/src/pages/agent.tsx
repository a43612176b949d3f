// An agent (`GET /v1/agents/{id}?window=`): status and heartbeat, its
// control (who paused or killed it, why), the window's runs, failures,
// spend and latency, runs / errors and spend over time (uPlot), models and
// workflows, recent runs and failures, the budgets that cover it (gauges),
// policy violations; admins and owners pause, kill or resume it with a
// reason (asked to confirm; the API's error shown; the page reloads after).
import type { JSX } from "preact";
import { useMemo, useState } from "preact/hooks";
import type uPlot from "uplot";
import type { AgentDetail, ControlAction } from "../api";
import { Page, Panel, When } from "../components/bits";
import { Chart } from "../components/chart";
import { Loaded, useApi } from "../components/data";
import { ConfirmButton } from "../components/form";
import { Gauge } from "../components/gauge";
import { Link, useLocation } from "../components/router";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { dense } from "../cost";
import { actor, apiWindow, count, ms, percent, usd, windowFrom, windowSecs, type Window } from "../format";
import { can } from "../roles";
import type { PageProps } from "../routes";
import { statusTone } from "./agents";
import { RunsTable } from "./runs";

function Controls({ a, onDone }: { a: AgentDetail; onDone: () => void }): JSX.Element {
  const { api } = useSession();
  const [reason, setReason] = useState("");
  const act = (action: ControlAction) => () => api.control(a.agent_id, action, reason).then(() => {
    setReason("");
    onDone();
  });
  const stopped = a.control !== null;
  return (
    <div class="controls" data-controls>
      <label class="filter">
        <span>Reason (audited)</span>
        <input name="reason" value={reason} onInput={(e) => setReason((e.currentTarget as HTMLInputElement).value)} placeholder="e.g. runaway spend, investigating" maxLength={500} />
      </label>
      <div class="row-actions">
        {a.control?.action !== "pause" ? (
          <span data-control-action="pause">
            <ConfirmButton class="warn-button" question={`Pause ${a.agent_id}?`} onConfirm={act("pause")}>
              Pause
            </ConfirmButton>
          </span>
        ) : null}
        {a.control?.action !== "kill" ? (
          <span data-control-action="kill">
            <ConfirmButton question={`Kill ${a.agent_id}? It stops until resumed.`} onConfirm={act("kill")}>
              Kill
            </ConfirmButton>
          </span>
        ) : null}
        {stopped ? (
          <span data-control-action="resume">
            <ConfirmButton class="ok-button" question={`Resume ${a.agent_id}?`} onConfirm={act("resume")}>
              Resume
            </ConfirmButton>
          </span>
        ) : null}
      </div>
      <p class="hint">The gateway answers the agent's next event or heartbeat with the directive. The reason of a resume is kept in the audit log with who lifted it.</p>
    </div>
  );
}

function OverTime({ a }: { a: AgentDetail }): JSX.Element {
  // Every bucket of the window, so a few points still span it.
  const [counts, spend] = useMemo<[uPlot.AlignedData, uPlot.AlignedData]>(() => {
    const step = a.bucket === "1d" ? 86400 : 3600;
    const now = Date.now() / 1000;
    const from = now - windowSecs(a.window as Window);
    const runs = dense(a.series, (p) => p.runs, from, now, step);
    const failed = dense(a.series, (p) => p.failed, from, now, step);
    const cost = dense(a.series, (p) => p.cost_usd, from, now, step);
    return [
      [runs.xs, runs.ys, failed.ys],
      [cost.xs, cost.ys],
    ];
  }, [a]);
  if (a.series.length === 0) return <p class="empty">No runs in this window.</p>;
  return (
    <div class="charts">
      <section class="panel" aria-label="runs and failures over time">
        <h2>Runs and failures (per {a.bucket})</h2>
        <Chart inset={28} minWidth={320} data={counts} attrs={{ "data-chart": "agent-runs" }} options={{ height: 200, series: [{}, { label: "runs", stroke: "#2563eb" }, { label: "failed", stroke: "#c53030" }] }} />
      </section>
      <section class="panel" aria-label="spend over time">
        <h2>Spend (per {a.bucket})</h2>
        <Chart inset={28} minWidth={320} data={spend} attrs={{ "data-chart": "agent-cost" }} options={{ height: 200, series: [{}, { label: "USD", stroke: "#1a7f37", fill: "rgba(26,127,55,.08)", value: (_u, v) => usd(v) }], axes: [{}, { size: 70 }] }} />
      </section>
    </div>
  );
}

function Body({ a, reload }: { a: AgentDetail; reload: () => void }): JSX.Element {
  const { me } = useSession();
  const t = a.totals;
  const rate = t.runs > 0 ? (t.runs - t.failed) / t.runs : null;
  return (
    <>
      <Panel title="Status" id="agent-status">
        <div class="status-row">
          <dl class="facts" data-agent-status={a.status}>
            <dt>status</dt>
            <dd>
              <span class={`pill ${statusTone(a.status)}`} data-status={a.status}>
                {a.status}
              </span>
            </dd>
            <dt>heartbeat</dt>
            <dd>
              <When at={a.last_heartbeat} /> {a.heartbeat_status ? <span class="pill">{a.heartbeat_status}</span> : null}
            </dd>
            <dt>last seen</dt>
            <dd>
              <When at={a.last_seen} />
            </dd>
            <dt>first seen</dt>
            <dd>
              <When at={a.first_seen} />
            </dd>
            <dt>directive</dt>
            <dd data-control={a.control?.action ?? "none"}>
              {a.control ? (
                <>
                  <strong>{a.control.action}</strong> by {actor(a.control.set_by)} <When at={a.control.set_at} />
                  {a.control.reason ? ` — ${a.control.reason}` : ""}
                </>
              ) : (
                "none"
              )}
            </dd>
            <dt>workflows</dt>
            <dd>{a.workflows.join(", ") || "—"}</dd>
          </dl>
          {can(me, "configure") ? <Controls a={a} onDone={reload} /> : null}
        </div>
      </Panel>
      <section class="cards" aria-label="the window's figures">
        <div class="card" data-kpi="runs" data-value={String(t.runs)}>
          <div class="label">Runs (last {a.window})</div>
          <div class="value">{count(t.runs)}</div>
        </div>
        <div class="card" data-kpi="failed" data-value={String(t.failed)}>
          <div class="label">Failed</div>
          <div class="value">{count(t.failed)}</div>
          <div class="label">success {percent(rate)}</div>
        </div>
        <div class="card" data-kpi="cost_usd" data-value={String(t.cost_usd)}>
          <div class="label">Spend</div>
          <div class="value">{usd(t.cost_usd)}</div>
          <div class="label">{count(t.llm_calls)} LLM calls</div>
        </div>
        <div class="card" data-kpi="latency_p95" data-value={t.latency_ms.p95 === null ? "" : String(t.latency_ms.p95)}>
          <div class="label">Run latency p95</div>
          <div class="value">{ms(t.latency_ms.p95)}</div>
          <div class="label">p50 {ms(t.latency_ms.p50)}</div>
        </div>
      </section>
      <OverTime a={a} />
      <Panel title="Budgets that cover it" id="agent-budgets">
        {a.budgets.length ? (
          <section class="gauges" aria-label="budgets">
            {a.budgets.map((b) => (
              <Gauge key={b.id} b={b} />
            ))}
          </section>
        ) : (
          <p class="empty">No budget covers this agent.</p>
        )}
      </Panel>
      <div class="tables">
        <Panel title="Models" id="agent-models">
          <Table
            rows={a.models}
            rowKey={(m) => `${m.provider ?? ""}/${m.model}`}
            rowProps={(m) => ({ "data-model": m.model })}
            empty="No LLM calls in this window."
            columns={[
              { label: "provider", cell: (m) => m.provider ?? "—" },
              { label: "model", cell: (m) => m.model },
              { label: "calls", cell: (m) => count(m.llm_calls), class: "num" },
              { label: "cost", cell: (m) => usd(m.cost_usd), class: "num" },
            ]}
          />
        </Panel>
        <Panel title="Policy violations" id="agent-violations">
          <Table
            rows={a.violations}
            rowKey={(v) => `${v.policy_id}:${v.event_id}`}
            empty="No policy violations."
            columns={[
              { label: "when", cell: (v) => <When at={v.timestamp} /> },
              { label: "policy", cell: (v) => v.policy_name ?? v.policy_id },
              { label: "kind", cell: (v) => v.policy_kind ?? "—" },
              { label: "action", cell: (v) => v.action },
              { label: "run", cell: (v) => (v.run_id ? <Link href={`/console/runs/${encodeURIComponent(v.run_id)}`}>{v.run_id}</Link> : "—") },
            ]}
          />
        </Panel>
      </div>
      <Panel title="Recent runs" id="agent-runs">
        <RunsTable rows={a.recent_runs} empty="No runs yet." />
        <p class="hint">
          <Link href={`/console/runs?agent_id=${encodeURIComponent(a.agent_id)}`}>All of its runs in the explorer →</Link>
        </p>
      </Panel>
      <Panel title="Recent failures" id="agent-failures">
        <RunsTable rows={a.recent_failures} empty="No failed runs." />
      </Panel>
    </>
  );
}

export function AgentPage({ params }: PageProps): JSX.Element {
  const { api } = useSession();
  const id = params.id ?? "";
  const win = apiWindow(windowFrom(useLocation().search));
  const agent = useApi(() => api.agent(id, win), [api, id, win], { refreshMs: 15000 });
  return (
    <Page name="agent" title={`Agent ${id}`}>
      <Loaded state={agent}>{(a) => <Body a={a} reload={agent.reload} />}</Loaded>
    </Page>
  );
}
