// The overview: KPI cards with the change against the previous window,
// budget gauges, and runs / errors / cost over time (uPlot).
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Api, Failure, Series, TopRow } from "./api";
import { apiWindow, bucketFor, budgetLevel, change, count, ms, percent, usd, type Window } from "./format";
import { card, el } from "./view";

function toColumns(runs: Series, errors: Series): uPlot.AlignedData {
  const xs = runs.points.map((p) => Date.parse(p.ts) / 1000);
  const byTs = new Map(errors.points.map((p) => [p.ts, p.value]));
  return [xs, runs.points.map((p) => p.value ?? 0), runs.points.map((p) => byTs.get(p.ts) ?? 0)];
}

function table(label: string, id: string, head: string[], rows: string[][]): HTMLElement {
  return el("section", { class: "panel", "aria-label": label, id },
    el("h2", {}, label),
    el("table", {},
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c)))))));
}

function topTable(label: string, id: string, rows: TopRow[]): HTMLElement {
  return table(label, id, ["agent", "runs", "failed", "cost", "p95"],
    rows.map((r) => [r.agent ?? "", count(r.runs), count(r.failed), usd(r.cost_usd), ms(r.latency_ms.p95)]));
}

function failuresTable(rows: Failure[]): HTMLElement {
  return table("Recent failures", "failures", ["when", "agent", "run", "error"],
    rows.map((f) => [new Date(f.timestamp).toLocaleString(), f.agent_id, f.run_id ?? "—",
      f.error_message ?? f.error_type ?? f.type]));
}

/** A sparkline of `s` drawn into the KPI card `kpi` (no axes, no legend). */
function sparkline(root: HTMLElement, kpi: string, s: Series, stroke: string): void {
  const card = root.querySelector<HTMLElement>(`[data-kpi="${kpi}"]`);
  if (!card) return;
  const box = el("div", { class: "spark", "data-spark": kpi });
  card.append(box);
  new uPlot(
    {
      width: Math.max(80, card.clientWidth - 24),
      height: 36,
      legend: { show: false },
      cursor: { show: false },
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: true } },
      series: [{}, { stroke, width: 1.5, points: { show: false } }],
    },
    [s.points.map((p) => Date.parse(p.ts) / 1000), s.points.map((p) => p.value ?? 0)],
    box,
  );
}

export async function overview(api: Api, w: Window, root: HTMLElement): Promise<void> {
  const win = apiWindow(w);
  const bucket = bucketFor(w);
  const [now, budgets, runs, errors, cost, byCost, byRuns, failures] = await Promise.all([
    api.overview(win),
    api.budgets(),
    api.series("runs", win, bucket),
    api.series("errors", win, bucket),
    api.series("cost", win, bucket),
    api.top("cost", win, 5),
    api.top("runs", win, 5),
    api.failures(10),
  ]);
  const half = (s: Series): [number, number] => {
    const v = s.points.map((p) => p.value ?? 0);
    const mid = Math.floor(v.length / 2);
    const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    return [sum(v.slice(mid)), sum(v.slice(0, mid))];
  };
  const [runsNow, runsBefore] = half(runs);
  const [costNow, costBefore] = half(cost);
  root.replaceChildren(
    el("section", { class: "cards", "aria-label": "key figures" },
      card("runs", "Runs", count(now.runs), now.runs, `${change(runsNow, runsBefore)} vs first half`),
      card("success_rate", "Success rate", percent(now.success_rate), now.success_rate),
      card("cost_usd", "Spend", usd(now.cost_usd), now.cost_usd, `${change(costNow, costBefore)} vs first half`),
      card("latency_p95", "Run latency p95", ms(now.latency_ms.p95), now.latency_ms.p95,
        `p50 ${ms(now.latency_ms.p50)}`),
      card("errors_last_hour", "Errors last hour", count(now.errors_last_hour), now.errors_last_hour),
      card("active_agents", "Active agents", count(now.active_agents), now.active_agents),
    ),
    el("section", { class: "gauges", "aria-label": "budgets" },
      ...budgets.map((b) => {
        const level = budgetLevel(b.percent);
        const width = `${Math.min(100, Math.max(0, b.percent ?? 0)).toFixed(1)}%`;
        const fill = el("div", { class: "fill" });
        fill.style.width = width;
        return el("div", { class: `card gauge ${level}`, "data-level": level, "data-budget": b.name },
          el("div", { class: "label" }, `${b.name} (${b.scope_key}, ${b.period})`),
          el("div", { class: "value" }, b.percent === null ? "—" : `${b.percent.toFixed(1)}%`),
          el("div", { class: "label" }, `${usd(b.spend_usd)} of ${usd(b.limit_usd)}`),
          el("div", { class: "bar" }, fill));
      }),
    ),
  );
  sparkline(root, "runs", runs, "#2563eb");
  sparkline(root, "cost_usd", cost, "#1a7f37");
  sparkline(root, "errors_last_hour", errors, "#c53030");
  const chart = el("section", { class: "panel", "aria-label": "runs and errors over time" });
  root.append(chart,
    el("div", { class: "tables" },
      topTable("Top agents by cost", "top-cost", byCost),
      topTable("Top agents by runs", "top-runs", byRuns),
      failuresTable(failures)));
  new uPlot(
    {
      // The panel's inner width (its padding is 0.8rem a side).
      width: Math.max(320, chart.clientWidth - 28),
      height: 240,
      series: [{}, { label: "runs", stroke: "#2563eb" }, { label: "errors", stroke: "#c53030" }],
      axes: [{}, { label: "per bucket" }],
    },
    toColumns(runs, errors),
    chart,
  );
  // Drawn: tests wait for this.
  root.setAttribute("data-window", win);
}
