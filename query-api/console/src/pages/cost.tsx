// The cost explorer (`GET /v1/metrics/cost`): spend of the window grouped
// by agent, workflow, team (the `team` tag), model, provider or any tag
// key; stacked over time (uPlot bands), a table of the groups with runs,
// LLM calls and unpriced calls, and the window's unpriced calls with a link
// to add the missing price. The group and window are in the URL.
import type { JSX } from "preact";
import { useMemo } from "preact/hooks";
import type uPlot from "uplot";
import type { CostAnswer } from "../api";
import { Page, Panel } from "../components/bits";
import { Chart } from "../components/chart";
import { Loaded, useApi } from "../components/data";
import { Link, setQuery, useLocation } from "../components/router";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { costBucket, GROUPS, groupFrom, stack } from "../cost";
import { apiWindow, count, usd, windowFrom, windowSecs } from "../format";
import { href } from "../router";
import type { PageProps } from "../routes";

const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#4f46e5", "#0d9488", "#a16207"];
const color = (i: number) => PALETTE[i % PALETTE.length] ?? "#6b7280";

function GroupPicker({ group }: { group: string }): JSX.Element {
  const custom = group.startsWith("tag:") && group !== "tag:team" ? group.slice(4) : "";
  return (
    <div class="group-picker" role="group" aria-label="group by">
      <span class="label">Group by</span>
      {GROUPS.map(([v, label]) => (
        <button key={v} type="button" class={v === group ? "" : "secondary"} aria-pressed={v === group ? "true" : "false"} data-group={v} onClick={() => setQuery({ group: v })}>
          {label}
        </button>
      ))}
      <form
        class="tag-form"
        aria-label="group by tag"
        onSubmit={(ev) => {
          ev.preventDefault();
          const k = String(new FormData(ev.currentTarget as HTMLFormElement).get("tag") ?? "").trim();
          if (k) setQuery({ group: `tag:${k}` });
        }}
      >
        <input name="tag" placeholder="tag key" defaultValue={custom} size={12} aria-pressed={custom ? "true" : "false"} />
        <button type="submit" class={custom ? "" : "secondary"}>
          Tag
        </button>
      </form>
    </div>
  );
}

function StackedChart({ d }: { d: CostAnswer }): JSX.Element {
  const s = useMemo(() => stack(d.series, d.groups.map((g) => g.key)), [d]);
  const data = useMemo<uPlot.AlignedData>(() => [s.xs, ...s.cumulative], [s]);
  const options = useMemo<Omit<uPlot.Options, "width">>(
    () => ({
      height: 280,
      series: [
        {},
        ...s.keys.map((k, i) => ({
          label: k,
          stroke: color(i),
          fill: `${color(i)}55`,
          width: 1,
          points: { show: false },
          value: (_u: uPlot, _v: number | null, _si: number, idx: number | null) => (idx === null ? "—" : usd(s.raw[i]?.[idx] ?? 0)),
        })),
      ],
      // Each band fills between a key's running total and the one below.
      bands: s.keys.slice(1).map((_, i) => ({ series: [i + 2, i + 1] as [number, number], fill: `${color(i + 1)}55` })),
      axes: [{}, { size: 70, values: (_u: uPlot, vals: number[]) => vals.map((v) => `$${v < 10 ? v.toFixed(2) : v.toLocaleString("en-US", { maximumFractionDigits: 0 })}`) }],
    }),
    [s],
  );
  if (s.xs.length === 0) return <p class="empty">No spend in this window.</p>;
  return <Chart key={s.keys.join("|")} inset={28} minWidth={320} data={data} options={options} attrs={{ "data-chart": "cost-stacked", "data-series": String(s.keys.length) }} />;
}

export function CostPage(_: PageProps): JSX.Element {
  const { api } = useSession();
  const search = useLocation().search;
  const group = groupFrom(search);
  const w = windowFrom(search);
  // Every grouping, tags included, reads the rollups: any window the others take.
  const win = apiWindow(w);
  const bucket = costBucket(windowSecs(w));
  const cost = useApi(() => api.cost(group, win, bucket, 10), [api, group, win, bucket]);
  return (
    <Page name="cost" title="Cost explorer">
      <GroupPicker group={group} />
      <Loaded state={cost}>
        {(d) => {
          const total = d.groups.reduce((a, g) => a + g.cost_usd, 0);
          return (
            <div class="cost" data-cost-group={d.group} data-cost-window={d.window}>
              <Panel title={`Spend by ${d.group} over the last ${d.window} (per ${d.bucket}, stacked)`} id="cost-chart">
                <StackedChart d={d} />
              </Panel>
              <div class="tables">
                <Panel title={`Groups — ${usd(total)} in all`} id="cost-groups">
                  <Table
                    label="cost groups"
                    rows={d.groups}
                    rowKey={(g) => g.key}
                    rowProps={(g) => ({ "data-group-key": g.key, "data-cost": String(g.cost_usd) })}
                    empty="No spend in this window."
                    columns={[
                      {
                        label: d.group,
                        cell: (g) =>
                          d.group === "agent" && !g.key.startsWith("(") ? <Link href={`/console/agents/${encodeURIComponent(g.key)}`}>{g.key}</Link> : g.key,
                      },
                      { label: "cost", cell: (g) => usd(g.cost_usd), class: "num" },
                      { label: "share", cell: (g) => (total > 0 ? `${((g.cost_usd / total) * 100).toFixed(1)}%` : "—"), class: "num" },
                      { label: "runs", cell: (g) => count(g.runs), class: "num" },
                      { label: "LLM calls", cell: (g) => count(g.llm_calls), class: "num" },
                      { label: "unpriced", cell: (g) => (g.unpriced_calls ? <span class="warn-text">{count(g.unpriced_calls)}</span> : "0"), class: "num" },
                    ]}
                  />
                </Panel>
                <Panel title="Unpriced calls" id="unpriced">
                  <p data-unpriced={String(d.unpriced.calls)}>
                    <strong>{count(d.unpriced.calls)}</strong> LLM call{d.unpriced.calls === 1 ? "" : "s"} in this window had tokens but no price: their cost is unknown, not counted above.
                  </p>
                  <Table
                    rows={d.unpriced.models}
                    rowKey={(m) => `${m.provider ?? ""}/${m.model ?? ""}`}
                    rowProps={(m) => ({ "data-unpriced-model": m.model ?? "" })}
                    empty="Every model used has a price."
                    columns={[
                      { label: "provider", cell: (m) => m.provider ?? "—" },
                      { label: "model", cell: (m) => m.model ?? "—" },
                      { label: "calls", cell: (m) => count(m.calls), class: "num" },
                      {
                        label: "",
                        cell: (m) => (
                          <Link href={href("/admin/prices", {}, { provider: m.provider, model: m.model })} data-add-price-link={m.model ?? ""}>
                            Add price
                          </Link>
                        ),
                      },
                    ]}
                  />
                </Panel>
              </div>
            </div>
          );
        }}
      </Loaded>
    </Page>
  );
}
