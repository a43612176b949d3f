// The runs explorer: a filter bar for every filter of `GET /v1/runs` (the
// state in the URL, so a link reproduces the view), sortable columns
// (started, cost, latency), keyset pages (Next / Previous over a stack of
// cursors; the API keeps a page stable while new runs arrive) and the
// current filter as CSV or JSON. Rows link to the run page.
import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import type { RunSummary } from "../api";
import { Page, Panel, When } from "../components/bits";
import { Loaded, useApi, ErrorNote } from "../components/data";
import { Link, setQuery, useLocation } from "../components/router";
import { useSession } from "../components/session";
import { apiQuery, filtersFromForm, FILTERS, PAGE_SIZE, popCursor, pushCursor, queryChanges, searchFromQuery, toggleSort, type CursorStack, type RunSearch, type SortKey } from "../filters";
import { count, fromLocalInput, localInput, ms, usd } from "../format";
import type { PageProps } from "../routes";

const STATUS_OPTIONS = ["", "running", "completed", "failed"] as const;

function local(rfc: string | undefined): string {
  if (!rfc) return "";
  const d = new Date(rfc);
  return Number.isNaN(d.getTime()) ? "" : localInput(d);
}

function FilterBar({ s }: { s: RunSearch }): JSX.Element {
  const f = s.filters;
  const input = (name: (typeof FILTERS)[number], label: string, more: Record<string, string> = {}) => (
    <label class="filter" data-filter={name}>
      <span>{label}</span>
      <input name={name} defaultValue={f[name] ?? ""} {...more} />
    </label>
  );
  return (
    <form
      class="filters"
      aria-label="run filters"
      key={JSON.stringify(f)}
      onSubmit={(ev) => {
        ev.preventDefault();
        const fd = new FormData(ev.currentTarget as HTMLFormElement);
        const values: Record<string, string> = {};
        fd.forEach((v, k) => (values[k] = String(v)));
        setQuery(queryChanges({ ...s, filters: filtersFromForm(values, fromLocalInput), cursor: null }));
      }}
    >
      <label class="filter" data-filter="from">
        <span>From</span>
        <input type="datetime-local" name="from" defaultValue={local(f.from)} />
      </label>
      <label class="filter" data-filter="to">
        <span>To</span>
        <input type="datetime-local" name="to" defaultValue={local(f.to)} />
      </label>
      {input("window", "or last", { placeholder: "24h", size: "5" })}
      {input("agent_id", "Agent")}
      {input("workflow_id", "Workflow")}
      <label class="filter" data-filter="status">
        <span>Status</span>
        <select name="status">
          {STATUS_OPTIONS.map((o) => (
            <option key={o} value={o} selected={(f.status ?? "") === o}>
              {o || "any"}
            </option>
          ))}
        </select>
      </label>
      {input("model", "Model")}
      {input("provider", "Provider")}
      {input("error_type", "Error type")}
      {input("tag", "Tag", { placeholder: "team=payments" })}
      {input("min_cost_usd", "Cost ≥ $", { type: "number", step: "any", min: "0" })}
      {input("max_cost_usd", "Cost ≤ $", { type: "number", step: "any", min: "0" })}
      {input("min_latency_ms", "Latency ≥ ms", { type: "number", step: "1", min: "0" })}
      {input("max_latency_ms", "Latency ≤ ms", { type: "number", step: "1", min: "0" })}
      {input("q", "Error text", { placeholder: "timed out" })}
      <div class="filter-actions">
        <button type="submit">Search</button>
        <button type="button" class="secondary" onClick={() => setQuery(queryChanges({ filters: {}, sort: "started_at", order: "desc", cursor: null }))}>
          Clear
        </button>
      </div>
    </form>
  );
}

function SortHeader({ s, k, label }: { s: RunSearch; k: SortKey; label: string }): JSX.Element {
  const on = s.sort === k;
  return (
    <button type="button" class="link sort" data-sort={k} aria-sort={on ? (s.order === "desc" ? "descending" : "ascending") : "none"} onClick={() => setQuery(queryChanges(toggleSort(s, k)))}>
      {label} {on ? (s.order === "desc" ? "▼" : "▲") : ""}
    </button>
  );
}

function status(r: { status: string }): JSX.Element {
  const cls = r.status === "failed" ? "over" : r.status === "completed" ? "ok" : "warn";
  return <span class={`pill ${cls}`}>{r.status}</span>;
}

export function RunsTable({ rows, s, empty }: { rows: readonly RunSummary[]; s?: RunSearch; empty?: string }): JSX.Element {
  if (rows.length === 0) return <p class="empty">{empty ?? "No runs match."}</p>;
  const head = (k: SortKey, label: string) => (s ? <SortHeader s={s} k={k} label={label} /> : label);
  return (
    <div class="table-wrap">
      <table aria-label="runs" class="runs">
        <thead>
          <tr>
            <th>run</th>
            <th>agent</th>
            <th>workflow</th>
            <th>status</th>
            <th>{head("started_at", "started")}</th>
            <th class="num">{head("latency_ms", "latency")}</th>
            <th class="num">{head("cost_usd", "cost")}</th>
            <th class="num">tokens</th>
            <th>models</th>
            <th>error</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.run_id} data-run-id={r.run_id} data-status={r.status} class={r.status === "failed" ? "failed" : ""}>
              <td>
                <Link href={`/console/runs/${encodeURIComponent(r.run_id)}`}>{r.run_id}</Link>
              </td>
              <td>
                <Link href={`/console/agents/${encodeURIComponent(r.agent_id)}`}>{r.agent_id}</Link>
              </td>
              <td>{r.workflow_id ?? "—"}</td>
              <td>{status(r)}</td>
              <td class="nowrap">
                <When at={r.started_at} />
              </td>
              <td class="num">{ms(r.latency_ms)}</td>
              <td class="num">{usd(r.cost_usd)}</td>
              <td class="num">{count(r.input_tokens + r.output_tokens)}</td>
              <td>{r.models.join(", ") || "—"}</td>
              <td class="error-cell">{r.error_message ?? r.error_type ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Export links of the current filter: plain links with the session
 *  cookie; through the client (a blob) with a key. */
function Export({ s }: { s: RunSearch }): JSX.Element {
  const { api } = useSession();
  const [error, setError] = useState<unknown>(null);
  const q = apiQuery(s, { cursor: false });
  const link = (format: "csv" | "json") => {
    const url = `/v1/runs/export?format=${format}&${q}`;
    return (
      <a
        class="button secondary"
        href={url}
        download={`runs.${format}`}
        data-export={format}
        onClick={(ev) => {
          if (!api.key) return;
          ev.preventDefault();
          api.exportBlob(`format=${format}&${q}`).then((b) => {
            const a = document.createElement("a");
            a.href = URL.createObjectURL(b);
            a.download = `runs.${format}`;
            a.click();
            setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
          }, setError);
        }}
      >
        Export {format.toUpperCase()}
      </a>
    );
  };
  return (
    <span class="row-actions">
      {link("csv")}
      {link("json")}
      {error ? <ErrorNote error={error} /> : null}
    </span>
  );
}

export function RunsPage(_: PageProps): JSX.Element {
  const { api } = useSession();
  const search = useLocation().search;
  const s = searchFromQuery(search);
  const [stack, setStack] = useState<CursorStack>([]);
  const key = apiQuery({ ...s, cursor: null });
  // Another filter or sort: the stack starts again.
  useEffect(() => {
    if (!s.cursor) setStack([]);
  }, [key, s.cursor]);
  const q = apiQuery(s, { limit: PAGE_SIZE });
  // Each answer keeps the query it answers: the rows shown are only said to be
  // page n of this query once they are its own (`data-page-number`).
  const page = useApi(() => api.runs(q).then((d) => ({ ...d, q })), [api, q]);
  const n = stack.length + 1;
  return (
    <Page name="runs" title="Runs" actions={<Export s={s} />}>
      <FilterBar s={s} />
      <Panel
        title={`Page ${n}`}
        id="runs-page"
        actions={
          <span class="row-actions pager">
            <button
              type="button"
              class="secondary"
              data-page-prev
              disabled={!s.cursor}
              onClick={() => {
                const p = popCursor(stack);
                setStack(p.stack);
                setQuery({ cursor: p.cursor });
              }}
            >
              ← Previous
            </button>
            <button
              type="button"
              data-page-next
              disabled={!page.data?.next_cursor || page.loading || page.data.q !== q}
              onClick={() => {
                const next = page.data?.next_cursor;
                if (!next) return;
                const p = pushCursor(stack, s.cursor, next);
                setStack(p.stack);
                setQuery({ cursor: p.cursor });
              }}
            >
              Next →
            </button>
          </span>
        }
      >
        <Loaded state={page}>
          {(d) => (
            <div data-runs-loaded={d.q} data-page-number={d.q === q ? String(n) : undefined}>
              <RunsTable rows={d.runs} s={s} />
            </div>
          )}
        </Loaded>
      </Panel>
    </Page>
  );
}
