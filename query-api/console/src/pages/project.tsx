// A coding agents' project (`GET /v1/projects/{id}`) and a machine
// (`GET /v1/machines/{id}`): breadcrumbs, status with pause / resume for
// admins and owners, all-time totals, the machines it ran on (a machine:
// the projects it ran), workspaces and latest sessions.
import type { JSX } from "preact";
import { Page, Panel } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { Breadcrumbs, ScopeStatus, TotalsCards, useMachineNames } from "../components/hierarchy";
import { GroupTable, SessionTable, WorkspaceTable } from "../components/htables";
import { Link } from "../components/router";
import { useSession } from "../components/session";
import { machineTrail, nodeLabel, projectTrail } from "../hierarchy";
import { href } from "../router";
import type { PageProps } from "../routes";

export function AllSessions({ filter, id, shown }: { filter: "project_id" | "machine_id" | "workspace_id"; id: string; shown: number }): JSX.Element | null {
  if (shown === 0) return null;
  return (
    <p class="more-link">
      <Link href={href("/sessions", {}, { [filter]: id })} data-all-sessions>
        All of its sessions →
      </Link>
    </p>
  );
}

export function ProjectPage({ params }: PageProps): JSX.Element {
  const { api } = useSession();
  const id = params.id ?? "";
  const page = useApi(() => api.project(id), [api, id], { refreshMs: 15000 });
  const names = useMachineNames();
  return (
    <Page name="project" title={id} above={<Breadcrumbs steps={projectTrail(id)} />}>
      <Loaded state={page}>
        {(p) => (
          <>
            <ScopeStatus kind="project" id={id} status={p.project.status} reason={p.project.status_reason} t={p.project} facts={[["repository", p.project.url]]} onChanged={page.reload} />
            <TotalsCards t={p.project} sessions={p.project.sessions} />
            <Panel title="Machines" id="project-machines">
              <GroupTable kind="machine" rows={p.machines} names={names} label="machines" />
            </Panel>
            <Panel title="Workspaces" id="project-workspaces">
              <WorkspaceTable rows={p.workspaces} names={names} show={["machine"]} />
            </Panel>
            <Panel title="Latest sessions" id="project-sessions">
              <SessionTable rows={p.sessions} />
              <AllSessions filter="project_id" id={id} shown={p.sessions.length} />
            </Panel>
          </>
        )}
      </Loaded>
    </Page>
  );
}

export function MachinePage({ params }: PageProps): JSX.Element {
  const { api } = useSession();
  const id = params.id ?? "";
  const page = useApi(() => api.machine(id), [api, id], { refreshMs: 15000 });
  const m = page.data?.machine;
  const title = m ? nodeLabel(m) : id;
  return (
    <Page name="machine" title={title} above={<Breadcrumbs steps={machineTrail(m ?? { id, name: null, path: null })} />}>
      <Loaded state={page}>
        {(p) => (
          <>
            <ScopeStatus
              kind="machine"
              id={id}
              status={p.machine.status}
              reason={p.machine.status_reason}
              t={p.machine}
              facts={[
                ["name", p.machine.name],
                ["os", p.machine.os],
                ["machine id", <code>{p.machine.id}</code>],
              ]}
              onChanged={page.reload}
            />
            <TotalsCards t={p.machine} sessions={p.machine.sessions} />
            <Panel title="Projects" id="machine-projects">
              <GroupTable kind="project" rows={p.projects} label="projects" />
            </Panel>
            <Panel title="Workspaces" id="machine-workspaces">
              <WorkspaceTable rows={p.workspaces} show={["project"]} />
            </Panel>
            <Panel title="Latest sessions" id="machine-sessions">
              <SessionTable rows={p.sessions} />
              <AllSessions filter="machine_id" id={id} shown={p.sessions.length} />
            </Panel>
          </>
        )}
      </Loaded>
    </Page>
  );
}
