// A coding agents' workspace (`GET /v1/workspaces/{id}`: one checkout of a
// project on a machine): breadcrumbs project › machine › path, status with
// pause / resume for admins and owners, totals, latest sessions.
import type { JSX } from "preact";
import { Page, Panel } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { Breadcrumbs, ScopeStatus, TotalsCards, useMachineNames } from "../components/hierarchy";
import { SessionTable } from "../components/htables";
import { Link } from "../components/router";
import { useSession } from "../components/session";
import { placeHref, workspaceTrail } from "../hierarchy";
import type { PageProps } from "../routes";
import { AllSessions } from "./project";

export function WorkspacePage({ params }: PageProps): JSX.Element {
  const { api } = useSession();
  const id = params.id ?? "";
  const page = useApi(() => api.workspace(id), [api, id], { refreshMs: 15000 });
  const names = useMachineNames();
  const w = page.data?.workspace;
  const machineName = w?.machine_id ? names.get(w.machine_id) : null;
  return (
    <Page name="workspace" title={w?.path ?? id} above={<Breadcrumbs steps={workspaceTrail(w ?? { id, path: null, project_id: null, machine_id: null }, machineName)} />}>
      <Loaded state={page}>
        {(p) => (
          <>
            <ScopeStatus
              kind="workspace"
              id={id}
              status={p.workspace.status}
              reason={p.workspace.status_reason}
              t={p.workspace}
              facts={[
                ["path", p.workspace.path ? <code>{p.workspace.path}</code> : null],
                ["project", p.workspace.project_id ? <Link href={placeHref("project", p.workspace.project_id)}>{p.workspace.project_id}</Link> : null],
                ["machine", p.workspace.machine_id ? <Link href={placeHref("machine", p.workspace.machine_id)}>{machineName || p.workspace.machine_id}</Link> : null],
                ["workspace id", <code>{p.workspace.id}</code>],
              ]}
              onChanged={page.reload}
            />
            <TotalsCards t={p.workspace} sessions={p.workspace.sessions} />
            <Panel title="Latest sessions" id="workspace-sessions">
              <SessionTable rows={p.sessions} />
              <AllSessions filter="workspace_id" id={id} shown={p.sessions.length} />
            </Panel>
          </>
        )}
      </Loaded>
    </Page>
  );
}
