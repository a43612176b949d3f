// Coding-agent sessions (`GET /v1/sessions`), latest first: filtered by
// project, machine, workspace and status (in the URL, so a link reproduces
// the view), "Load more" following `next_cursor` (`?limit=` sets the page,
// 50 by default).
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { SessionFilter, SessionSummary } from "../api";
import { Page, Panel } from "../components/bits";
import { ErrorNote, Loaded, useApi } from "../components/data";
import { Choice } from "../components/form";
import { HierarchyTabs, NoCodingAgents } from "../components/hierarchy";
import { SessionTable } from "../components/htables";
import { setQuery, useLocation } from "../components/router";
import { useSession } from "../components/session";
import { appendRows, pageSizeFrom } from "../hierarchy";
import type { PageProps } from "../routes";

const FIELDS = ["project_id", "machine_id", "workspace_id", "status"] as const;

function filterFrom(search: string): SessionFilter {
  const q = new URLSearchParams(search);
  const f: SessionFilter = {};
  for (const k of FIELDS) f[k] = q.get(k);
  return f;
}

function FilterBar({ f }: { f: SessionFilter }): JSX.Element {
  return (
    <form
      class="filters"
      aria-label="session filters"
      key={JSON.stringify(f)}
      onSubmit={(ev) => {
        ev.preventDefault();
        const fd = new FormData(ev.currentTarget as HTMLFormElement);
        const changes: Record<string, string | null> = {};
        for (const k of FIELDS) changes[k] = String(fd.get(k) ?? "").trim() || null;
        setQuery(changes);
      }}
    >
      <label class="filter">
        <span>Project</span>
        <input name="project_id" defaultValue={f.project_id ?? ""} placeholder="github.com/acme/shop" />
      </label>
      <label class="filter">
        <span>Machine id</span>
        <input name="machine_id" defaultValue={f.machine_id ?? ""} />
      </label>
      <label class="filter">
        <span>Workspace id</span>
        <input name="workspace_id" defaultValue={f.workspace_id ?? ""} />
      </label>
      <label class="filter">
        <span>Status</span>
        <Choice
          name="status"
          value={f.status ?? ""}
          options={[
            ["", "any"],
            ["running", "running (not ended)"],
            ["completed", "completed"],
            ["failed", "failed"],
          ]}
        />
      </label>
      <div class="filter-actions">
        <button type="submit">Filter</button>
        <button type="button" class="secondary" onClick={() => setQuery({ project_id: null, machine_id: null, workspace_id: null, status: null })}>
          Clear
        </button>
      </div>
    </form>
  );
}

function Rows({ first, filter, limit }: { first: { sessions: SessionSummary[]; next_cursor: string | null }; filter: SessionFilter; limit: number }): JSX.Element {
  const { api } = useSession();
  const [more, setMore] = useState<{ rows: SessionSummary[]; cursor: string | null }>({ rows: [], cursor: first.next_cursor });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const rows = appendRows(first.sessions, more.rows, (s) => s.session_id);
  const filtered = FIELDS.some((k) => filter[k]);
  const load = () => {
    if (!more.cursor) return;
    setBusy(true);
    api.sessions(filter, more.cursor, limit).then(
      (p) => {
        setMore({ rows: [...more.rows, ...p.sessions], cursor: p.next_cursor });
        setBusy(false);
        setError(null);
      },
      (e: unknown) => {
        setBusy(false);
        setError(e);
      },
    );
  };
  if (rows.length === 0) return filtered ? <p class="empty">No session matches these filters.</p> : <NoCodingAgents />;
  return (
    <div data-sessions-loaded={String(rows.length)}>
      <SessionTable rows={rows} />
      {error ? <ErrorNote error={error} /> : null}
      <div class="pager">
        <span class="hint">{rows.length} sessions shown</span>
        {more.cursor ? (
          <button type="button" data-load-more disabled={busy} onClick={load}>
            {busy ? "Loading…" : "Load more"}
          </button>
        ) : null}
      </div>
    </div>
  );
}

export function SessionsPage(_: PageProps): JSX.Element {
  const { api } = useSession();
  const search = useLocation().search;
  const filter = filterFrom(search);
  const limit = pageSizeFrom(search, 50);
  const key = JSON.stringify(filter);
  const first = useApi(() => api.sessions(filter, null, limit), [api, key, limit]);
  return (
    <Page name="sessions" title="Coding agents">
      <HierarchyTabs active="sessions" />
      <FilterBar f={filter} />
      <Panel title="Sessions (latest first)" id="sessions">
        <Loaded state={first}>{(p) => <Rows key={`${key}:${p.sessions[0]?.session_id ?? ""}:${p.next_cursor ?? ""}`} first={p} filter={filter} limit={limit} />}</Loaded>
      </Panel>
    </Page>
  );
}
