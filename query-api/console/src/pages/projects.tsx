// The coding agents' projects and machines (`GET /v1/projects`,
// `GET /v1/machines`): status (a pause or kill says why), sessions and
// all-time totals, sorted by last seen or by cost (`?sort=cost`, in the
// URL); each row links to its page. No data yet: how to get some.
import type { JSX } from "preact";
import type { HNode } from "../api";
import { Page, Panel } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { HierarchyTabs, NoCodingAgents } from "../components/hierarchy";
import { NodeTable } from "../components/htables";
import { setQuery, useLocation } from "../components/router";
import { useSession } from "../components/session";
import { sortFrom, type SortKey } from "../hierarchy";
import type { PageProps } from "../routes";

function SortPicker({ sort }: { sort: SortKey }): JSX.Element {
  const opts: [SortKey, string][] = [
    ["last_seen", "last seen"],
    ["cost", "cost"],
  ];
  return (
    <div class="sort-picker" role="group" aria-label="sort">
      <span class="label">Sort by</span>
      {opts.map(([k, label]) => (
        <button key={k} type="button" class={sort === k ? "" : "secondary"} data-sort={k} aria-pressed={sort === k ? "true" : "false"} onClick={() => setQuery({ sort: k === "last_seen" ? null : k })}>
          {label}
        </button>
      ))}
    </div>
  );
}

function NodeList({ kind }: { kind: "project" | "machine" }): JSX.Element {
  const { api } = useSession();
  const sort = sortFrom(useLocation().search);
  const rows = useApi<HNode[]>(() => (kind === "project" ? api.projects(sort) : api.machines(sort)), [api, kind, sort], { refreshMs: 15000 });
  const plural = `${kind}s`;
  return (
    <Page name={plural} title="Coding agents">
      <HierarchyTabs active={plural as "projects" | "machines"} />
      <Panel title={kind === "project" ? "Projects (all time)" : "Machines (all time)"} id={plural} actions={<SortPicker sort={sort} />}>
        <Loaded state={rows}>
          {(list) => (
            <div data-loaded={rows.stale ? undefined : `${plural}:${sort}`} aria-busy={rows.stale ? "true" : undefined}>
              {list.length ? <NodeTable kind={kind} rows={list} label={plural} /> : <NoCodingAgents />}
            </div>
          )}
        </Loaded>
      </Panel>
    </Page>
  );
}

export function ProjectsPage(_: PageProps): JSX.Element {
  return <NodeList kind="project" />;
}

export function MachinesPage(_: PageProps): JSX.Element {
  return <NodeList kind="machine" />;
}
