// A run: its header (status, agent, workflow, times, cost, tokens, error),
// the timeline of its events as a waterfall (components/timeline.tsx: each
// bar placed and sized by CSS from the step's time and latency within the
// run), tokens and cost per step, the failing step highlighted, and the
// agent's control state (a pause or kill the gateway answers its next
// event with).
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Page, Panel, When } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { Link } from "../components/router";
import { useSession } from "../components/session";
import { Timeline } from "../components/timeline";
import { actor, count, ms, usd } from "../format";
import type { PageProps } from "../routes";

function AgentControl({ agentId }: { agentId: string }): JSX.Element {
  const { api } = useSession();
  const agent = useApi(() => api.agent(agentId, "1h"), [api, agentId]);
  return (
    <Panel title="Agent directive" id="run-agent-control">
      <Loaded state={agent}>
        {(a) =>
          a.control ? (
            <p class={`notice control ${a.control.action}`} data-control={a.control.action}>
              <strong>{a.control.action === "kill" ? "Killed" : "Paused"}</strong> by {actor(a.control.set_by)} <When at={a.control.set_at} />
              {a.control.reason ? ` — ${a.control.reason}` : ""}. The gateway answers the agent's next event with this directive.
            </p>
          ) : (
            <p data-control="none">
              No directive: <Link href={`/console/agents/${encodeURIComponent(agentId)}`}>{agentId}</Link> runs freely ({a.status}).
            </p>
          )
        }
      </Loaded>
    </Panel>
  );
}

export function RunPage({ params }: PageProps): JSX.Element {
  const { api } = useSession();
  const id = params.id ?? "";
  // Until the run has ended and every event is in, look again (a run opened
  // from the live ticker may still be on its way to the database).
  const [settled, setSettled] = useState(false);
  const run = useApi(() => api.run(id), [api, id], settled ? {} : { refreshMs: 2000 });
  const d = run.data;
  const done = d !== undefined && d.status !== "running" && d.events.length >= (d.event_count ?? 0);
  useEffect(() => setSettled(done), [done]);
  return (
    <Page name="run" title={`Run ${id}`}>
      <Loaded state={run}>
        {(r) => (
          <>
            <Panel title="Run" id="run-head">
              <dl class="facts" data-run={r.run_id ?? id} data-status={r.status ?? ""} data-steps={String(r.events.length)}>
                <dt>status</dt>
                <dd>
                  <span class={`pill ${r.status === "failed" ? "over" : r.status === "completed" ? "ok" : "warn"}`}>{r.status ?? "—"}</span>
                </dd>
                <dt>agent</dt>
                <dd>{r.agent_id ? <Link href={`/console/agents/${encodeURIComponent(r.agent_id)}`}>{r.agent_id}</Link> : "—"}</dd>
                <dt>workflow</dt>
                <dd>{r.workflow_id ?? "—"}</dd>
                <dt>started</dt>
                <dd>
                  <When at={r.started_at} />
                </dd>
                <dt>ended</dt>
                <dd>
                  <When at={r.ended_at} />
                </dd>
                <dt>latency</dt>
                <dd>{ms(r.latency_ms)}</dd>
                <dt>cost</dt>
                <dd>{usd(r.cost_usd)}</dd>
                <dt>tokens</dt>
                <dd>
                  {count(r.input_tokens)} in / {count(r.output_tokens)} out
                  {r.reasoning_tokens ? ` / ${count(r.reasoning_tokens)} reasoning` : ""}
                  {r.cache_read_tokens ? ` / ${count(r.cache_read_tokens)} cache read` : ""}
                </dd>
                <dt>calls</dt>
                <dd>
                  {count(r.llm_calls)} LLM, {count(r.tool_calls)} tool
                </dd>
                {r.error_type || r.error_message ? (
                  <>
                    <dt>error</dt>
                    <dd class="error" data-run-error>
                      {r.error_type ? <code>{r.error_type}</code> : null} {r.error_message ?? ""}
                    </dd>
                  </>
                ) : null}
              </dl>
            </Panel>
            <Panel title={`Timeline (${r.events.length} events)`} id="timeline">
              {r.events.length ? <Timeline events={r.events} startedAt={r.started_at} endedAt={r.ended_at} latencyMs={r.latency_ms} /> : <p class="empty">No events recorded for this run.</p>}
            </Panel>
            {r.agent_id ? <AgentControl agentId={r.agent_id} /> : null}
          </>
        )}
      </Loaded>
    </Page>
  );
}
