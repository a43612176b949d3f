// The org's agents (`GET /v1/agents`): status (a pause or kill says why),
// heartbeat, today's totals (UTC day), each linking to its page.
import type { JSX } from "preact";
import type { AgentRow } from "../api";
import { Page, Panel, When } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { Link } from "../components/router";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { count, usd } from "../format";
import type { PageProps } from "../routes";

export function statusTone(s: string): string {
  return s === "killed" ? "over" : s === "paused" ? "warn" : s === "active" ? "ok" : "";
}

export function AgentsPage(_: PageProps): JSX.Element {
  const { api } = useSession();
  const agents = useApi(() => api.agents(), [api], { refreshMs: 15000 });
  return (
    <Page name="agents" title="Agents">
      <Panel title="Agents (totals of today, UTC)" id="agents">
        <Loaded state={agents}>
          {(rows) => (
            <Table<AgentRow>
              label="agents"
              rows={rows}
              rowKey={(a) => a.agent_id}
              rowProps={(a) => ({ "data-agent": a.agent_id, "data-status": a.status })}
              empty="No agent has sent an event yet."
              columns={[
                { label: "agent", cell: (a) => <Link href={`/console/agents/${encodeURIComponent(a.agent_id)}`}>{a.agent_id}</Link> },
                {
                  label: "status",
                  cell: (a) => (
                    <>
                      <span class={`pill ${statusTone(a.status)}`}>{a.status}</span>
                      {a.status_reason ? <span class="hint"> {a.status_reason}</span> : null}
                    </>
                  ),
                },
                { label: "heartbeat", cell: (a) => (a.last_heartbeat ? <><When at={a.last_heartbeat} /> {a.heartbeat_status ? <span class="pill">{a.heartbeat_status}</span> : null}</> : "—") },
                { label: "last seen", cell: (a) => <When at={a.last_seen} /> },
                { label: "runs", cell: (a) => count(a.today.runs), class: "num" },
                { label: "failures", cell: (a) => count(a.today.failures), class: "num" },
                { label: "tokens", cell: (a) => count(a.today.tokens), class: "num" },
                { label: "cost", cell: (a) => usd(a.today.cost_usd), class: "num" },
              ]}
            />
          )}
        </Loaded>
      </Panel>
    </Page>
  );
}
