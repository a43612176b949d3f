// The overview: KPI cards with sparklines and the change against the
// previous window of the same length (`GET /v1/metrics/compare`), budget
// gauges, runs / errors and cost over time (uPlot), top agents by cost and
// by runs, recent failures and the live ticker. Every panel follows the
// window in the URL (`?window=`, or a custom `?from=&to=` shown as the
// nearest window ending now); `?tv=1` keeps the cards, gauges and ticker.
// `main[data-window]` is set once a window's figures are drawn.
import type { JSX } from "preact";
import { useEffect, useMemo } from "preact/hooks";
import type uPlot from "uplot";
import type { Failure, Overview, Series, TopRow } from "../api";
import { Panel, When } from "../components/bits";
import { Chart } from "../components/chart";
import { Loaded, useApi } from "../components/data";
import { Link, useLocation } from "../components/router";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { apiWindow, bucketFor, changeOf, count, ms, percent, rangeFrom, usd, windowFrom, windowLabel, type Change, type Window } from "../format";
import { Gauge } from "../components/gauge";
import { Ticker } from "../components/ticker";
import type { PageProps } from "../routes";

const xs = (s: Series) => s.points.map((p) => Date.parse(p.ts) / 1000);
const ys = (s: Series) => s.points.map((p) => p.value ?? 0);

function Spark({ kpi, s, stroke }: { kpi: string; s: Series; stroke: string }): JSX.Element {
  const data = useMemo<uPlot.AlignedData>(() => [xs(s), ys(s)], [s]);
  return (
    <Chart
      class="spark"
      attrs={{ "data-spark": kpi }}
      inset={24}
      data={data}
      options={{
        height: 36,
        legend: { show: false },
        cursor: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: true } },
        series: [{}, { stroke, width: 1.5, points: { show: false } }],
      }}
    />
  );
}

/** A KPI card; `data-kpi` names it and `data-value` holds the raw figure
 *  (tests compare it with the API's answer); `data-kpi-change` the change
 *  against the previous window of the same length (`data-tone` good / bad). */
function Kpi({ kpi, label, text, raw, note, spark, delta }: { kpi: string; label: string; text: string; raw: number | null; note?: string; spark?: JSX.Element; delta?: Change }): JSX.Element {
  const arrow = delta ? ({ up: "▲", down: "▼", flat: "▶", none: "" } as const)[delta.dir] : "";
  return (
    <div class="card" data-kpi={kpi} data-value={raw === null ? "" : String(raw)}>
      <div class="label">{label}</div>
      <div class="value">{text}</div>
      {delta ? (
        <div class={`kpi-change ${delta.tone}`} data-kpi-change={delta.pct === null ? delta.text : delta.pct.toFixed(1)} data-tone={delta.tone} title="against the previous window of the same length">
          {arrow} {delta.text} <span class="label">vs previous</span>
        </div>
      ) : null}
      <div class="label">{note ?? ""}</div>
      {spark}
    </div>
  );
}

function TopTable({ title, id, rows }: { title: string; id: string; rows: TopRow[] }): JSX.Element {
  return (
    <Panel title={title} id={id}>
      <Table
        rows={rows}
        rowKey={(r) => r.agent ?? ""}
        empty="No runs in this window."
        columns={[
          { label: "agent", cell: (r) => <Link href={`/console/agents/${encodeURIComponent(r.agent ?? "")}`}>{r.agent ?? ""}</Link> },
          { label: "runs", cell: (r) => count(r.runs), class: "num" },
          { label: "failed", cell: (r) => count(r.failed), class: "num" },
          { label: "cost", cell: (r) => usd(r.cost_usd), class: "num" },
          { label: "p95", cell: (r) => ms(r.latency_ms.p95), class: "num" },
        ]}
      />
    </Panel>
  );
}

function Failures({ rows }: { rows: Failure[] }): JSX.Element {
  return (
    <Panel title="Recent failures" id="failures">
      <Table
        rows={rows}
        rowKey={(f) => f.event_id}
        empty="No failures."
        columns={[
          { label: "when", cell: (f) => <When at={f.timestamp} /> },
          { label: "agent", cell: (f) => <Link href={`/console/agents/${encodeURIComponent(f.agent_id)}`}>{f.agent_id}</Link> },
          { label: "run", cell: (f) => (f.run_id ? <Link href={`/console/runs/${encodeURIComponent(f.run_id)}`}>{f.run_id}</Link> : "—") },
          { label: "error", cell: (f) => f.error_message ?? f.error_type ?? f.type },
        ]}
      />
    </Panel>
  );
}

function OverTime({ runs, errors, cost }: { runs: Series; errors: Series; cost: Series }): JSX.Element {
  const counts = useMemo<uPlot.AlignedData>(() => {
    const byTs = new Map(errors.points.map((p) => [p.ts, p.value]));
    return [xs(runs), ys(runs), runs.points.map((p) => byTs.get(p.ts) ?? 0)];
  }, [runs, errors]);
  const spend = useMemo<uPlot.AlignedData>(() => [xs(cost), ys(cost)], [cost]);
  return (
    <div class="charts">
      <section class="panel" aria-label="runs and errors over time">
        <h2>Runs and errors</h2>
        <Chart
          inset={28}
          minWidth={320}
          data={counts}
          options={{
            height: 220,
            series: [{}, { label: "runs", stroke: "#2563eb" }, { label: "errors", stroke: "#c53030" }],
            axes: [{}, { label: "per bucket" }],
          }}
        />
      </section>
      <section class="panel" aria-label="cost over time">
        <h2>Spend</h2>
        <Chart
          inset={28}
          minWidth={320}
          data={spend}
          options={{
            height: 220,
            series: [{}, { label: "USD", stroke: "#1a7f37", fill: "rgba(26,127,55,.08)", value: (_u, v) => usd(v) }],
            axes: [{}, { label: "USD per bucket", size: 70 }],
          }}
        />
      </section>
    </div>
  );
}

/** What a custom range becomes on the overview: the aggregate endpoints
 *  take windows ending now. */
function RangeNote({ w, search }: { w: Window; search: string }): JSX.Element | null {
  const r = rangeFrom(search);
  if (!r) return null;
  return (
    <p class="range-note" data-range-note>
      Custom range {r.from.toLocaleString()} – {r.to ? r.to.toLocaleString() : "now"}: these panels show the last {windowLabel(w)} (the nearest window the API takes: its windows end now)
      {r.to ? "; the runs explorer uses the exact range." : "."}
    </p>
  );
}

export function Overview(_: PageProps): JSX.Element {
  const { api, tv } = useSession();
  const search = useLocation().search;
  const w = windowFrom(search);
  const win = apiWindow(w);
  const bucket = bucketFor(w);
  const state = useApi(
    async () => {
      // The window's figures come with the previous window's (one request);
      // without a comparison, from the overview alone.
      const [cmp, budgets, runs, errors, cost, byCost, byRuns, failures] = await Promise.all([
        api.compare(win).catch(() => null),
        api.budgets(),
        api.series("runs", win, bucket),
        api.series("errors", win, bucket),
        api.series("cost", win, bucket),
        api.top("cost", win, 5),
        api.top("runs", win, 5),
        api.failures(10),
      ]);
      const now: Overview = cmp?.current ?? (await api.overview(win));
      return { win, now, budgets, runs, errors, cost, byCost, byRuns, failures, cmp };
    },
    [api, win, bucket],
    { refreshMs: tv ? 5000 : 15000 },
  );
  const drawn = state.data?.win;
  // Drawn: tests wait for this (after the effects that draw the charts).
  useEffect(() => {
    const main = document.getElementById("main");
    if (drawn) main?.setAttribute("data-window", drawn);
    return () => main?.removeAttribute("data-window");
  }, [drawn, state.data]);
  useEffect(() => {
    document.title = "Overview · AgentOps";
  }, []);
  return (
    <Loaded state={state}>
      {(d) => {
        const p = d.cmp?.previous ?? null;
        const c = <K extends number | null>(now: K, before: K | undefined, better: "up" | "down"): Change => changeOf(now, p ? (before ?? null) : null, better);
        return (
          <div class={`overview${tv ? " tv-overview" : ""}`} data-page="overview">
            <RangeNote w={w} search={search} />
            <section class="cards" aria-label="key figures">
              <Kpi kpi="runs" label="Runs" text={count(d.now.runs)} raw={d.now.runs} delta={c(d.now.runs, p?.runs, "up")} spark={<Spark kpi="runs" s={d.runs} stroke="#2563eb" />} />
              <Kpi kpi="success_rate" label="Success rate" text={percent(d.now.success_rate)} raw={d.now.success_rate} delta={c(d.now.success_rate, p?.success_rate, "up")} />
              <Kpi kpi="cost_usd" label="Spend" text={usd(d.now.cost_usd)} raw={d.now.cost_usd} delta={c(d.now.cost_usd, p?.cost_usd, "down")} spark={<Spark kpi="cost_usd" s={d.cost} stroke="#1a7f37" />} />
              <Kpi kpi="latency_p95" label="Run latency p95" text={ms(d.now.latency_ms.p95)} raw={d.now.latency_ms.p95} delta={c(d.now.latency_ms.p95, p?.latency_ms.p95, "down")} note={`p50 ${ms(d.now.latency_ms.p50)}`} />
              <Kpi kpi="errors_last_hour" label="Errors last hour" text={count(d.now.errors_last_hour)} raw={d.now.errors_last_hour} delta={c(d.now.errors_last_hour, p?.errors_last_hour, "down")} spark={<Spark kpi="errors_last_hour" s={d.errors} stroke="#c53030" />} />
              <Kpi kpi="active_agents" label="Active agents" text={count(d.now.active_agents)} raw={d.now.active_agents} delta={c(d.now.active_agents, p?.active_agents, "up")} />
            </section>
            <section class="gauges" aria-label="budgets">
              {d.budgets.map((b) => (
                <Gauge key={b.id} b={b} />
              ))}
            </section>
            {tv ? (
              <Ticker />
            ) : (
              <>
                <OverTime runs={d.runs} errors={d.errors} cost={d.cost} />
                <div class="tables">
                  <TopTable title="Top agents by cost" id="top-cost" rows={d.byCost} />
                  <TopTable title="Top agents by runs" id="top-runs" rows={d.byRuns} />
                  <Failures rows={d.failures} />
                  <Ticker />
                </div>
              </>
            )}
          </div>
        );
      }}
    </Loaded>
  );
}
