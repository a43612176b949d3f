// A coding-agent session (`GET /v1/sessions/{id}`): breadcrumbs project ›
// machine › workspace › session, status (paused or killed by its own
// control or its workspace's, machine's or project's, with the reason),
// pause / resume for admins and owners, totals, and its timeline (events
// in time order; subagent work marked; failing steps highlighted) a page
// at a time ("Load more" follows `next_cursor`; `?limit=` sets the page).
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Crumb, SessionEvent, SessionPage as Answer } from "../api";
import { Page, Panel, When } from "../components/bits";
import { ErrorNote, Loaded, useApi } from "../components/data";
import { Breadcrumbs, ScopeStatus, TotalsCards } from "../components/hierarchy";
import { Link, useLocation } from "../components/router";
import { useSession } from "../components/session";
import { Timeline } from "../components/timeline";
import { appendRows, asSteps, isStopped, pageSizeFrom, placeHref, sessionTrail, stoppedParents, type Parent } from "../hierarchy";
import type { PageProps } from "../routes";

interface More {
  events: SessionEvent[];
  cursor: string | null;
}

function SessionTimeline({ s, more, onMore, busy, error }: { s: Answer; more: More | null; onMore: (cursor: string) => void; busy: boolean; error: unknown }): JSX.Element {
  const events = appendRows(s.timeline, more?.events ?? [], (e) => e.event_id);
  const cursor = more ? more.cursor : s.next_cursor;
  const sub = events.filter((e) => e.sidechain).length;
  return (
    <Panel title={`Timeline (${events.length}${cursor ? "+" : ""} of ${s.session.events} events${sub ? `, ${sub} by subagents` : ""})`} id="timeline">
      <div data-timeline-shown={String(events.length)} data-timeline-complete={cursor ? "false" : "true"}>
        {events.length ? <Timeline events={asSteps(events)} startedAt={s.session.first_seen} endedAt={s.session.ended_at ?? s.session.last_seen} latencyMs={null} /> : <p class="empty">No events recorded for this session.</p>}
      </div>
      {error ? <ErrorNote error={error} /> : null}
      {cursor ? (
        <div class="pager">
          <span class="hint">Events {events.length} of {s.session.events} shown.</span>
          <button type="button" data-load-more disabled={busy} onClick={() => onMore(cursor)}>
            {busy ? "Loading…" : "Load more"}
          </button>
        </div>
      ) : null}
    </Panel>
  );
}

/** Where a paused or killed session's control may be set: the places above
 *  it that are paused or killed (read only while the session is stopped;
 *  the API's status does not say which scope it came from). */
function StoppedBy({ crumbs }: { crumbs: readonly Crumb[] }): JSX.Element | null {
  const { api } = useSession();
  const key = crumbs.map((c) => `${c.kind}:${c.id}`).join("|");
  const parents = useApi(
    () =>
      Promise.all(
        crumbs.map(async (crumb): Promise<Parent> => {
          const n = crumb.kind === "project" ? (await api.project(crumb.id)).project : crumb.kind === "machine" ? (await api.machine(crumb.id)).machine : (await api.workspace(crumb.id)).workspace;
          return { crumb, status: n.status, reason: n.status_reason };
        }),
      ),
    [api, key],
  );
  const stopped = stoppedParents(parents.data ?? []);
  if (stopped.length === 0) return null;
  return (
    <div class="stopped-by">
      {stopped.map((p) => (
        <div key={p.crumb.kind} data-stopped-by={p.crumb.kind}>
          its {p.crumb.kind} <Link href={placeHref(p.crumb.kind, p.crumb.id)}>{p.crumb.label}</Link> is {p.status}
          {p.reason ? ` (${p.reason})` : ""}
        </div>
      ))}
    </div>
  );
}

export function SessionPage({ params }: PageProps): JSX.Element {
  const { api } = useSession();
  const id = params.id ?? "";
  const limit = pageSizeFrom(useLocation().search);
  const [more, setMore] = useState<More | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // Refreshed while only the first page is shown (later pages stay put).
  const first = useApi(() => api.session(id, null, limit), [api, id, limit], more ? {} : { refreshMs: 15000 });
  const loadMore = (cursor: string) => {
    setBusy(true);
    api.session(id, cursor, limit).then(
      (p) => {
        setMore((m) => ({ events: [...(m?.events ?? []), ...p.timeline], cursor: p.next_cursor }));
        setBusy(false);
        setError(null);
      },
      (e: unknown) => {
        setBusy(false);
        setError(e);
      },
    );
  };
  const reload = () => {
    setMore(null);
    first.reload();
  };
  const crumbs = sessionTrail(id, first.data?.breadcrumbs ?? []);
  return (
    <Page name="session" title={`Session ${id}`} above={<Breadcrumbs steps={crumbs} />}>
      <Loaded state={first}>
        {(p) => (
          <>
            <ScopeStatus
              kind="session"
              id={id}
              status={p.session.status}
              reason={p.session.status_reason}
              why={isStopped(p.session.status) ? <StoppedBy key={`${p.session.status}:${p.session.status_reason ?? ""}`} crumbs={p.breadcrumbs} /> : null}
              t={p.session}
              facts={[
                ["agent", p.session.agent_id],
                ["model", p.session.model],
                ["branch", p.session.git_branch ? <code>{p.session.git_branch}</code> : null],
                ["ended", p.session.ended_at ? <When at={p.session.ended_at} /> : null],
              ]}
              onChanged={reload}
            />
            <TotalsCards t={p.session} />
            <SessionTimeline s={p} more={more} onMore={loadMore} busy={busy} error={error} />
          </>
        )}
      </Loaded>
    </Page>
  );
}
