// The alerts centre: firing / acknowledged / resolved tabs (`?state=`),
// newest first; a row opens the alert's page (history, deliveries,
// acknowledge).
import type { JSX } from "preact";
import type { Alert, AlertState } from "../api";
import { Page, Tabs, When } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { Link, useQuery } from "../components/router";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { actor } from "../format";
import type { PageProps } from "../routes";

export const STATES: readonly AlertState[] = ["firing", "acknowledged", "resolved"];

export function alertHref(a: Pick<Alert, "alert_id">): string {
  return `/console/alerts/${encodeURIComponent(a.alert_id)}`;
}

/** An alert's figure against its threshold ("12.5 ≥ 10"). */
export function figure(a: Pick<Alert, "value" | "threshold">): string {
  const f = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) < 1 ? 3 : 2));
  return `${f(a.value)} / ${f(a.threshold)}`;
}

export function AlertsPage(_: PageProps): JSX.Element {
  const { api } = useSession();
  const raw = useQuery("state");
  const state: AlertState = STATES.includes(raw as AlertState) ? (raw as AlertState) : "firing";
  const alerts = useApi(() => api.alerts(state, 200), [api, state], { refreshMs: 15000 });
  return (
    <Page name="alerts" title="Alerts">
      <Tabs
        label="alert state"
        active={state}
        tabs={STATES.map((s) => ({ id: s, label: s[0]?.toUpperCase() + s.slice(1), href: `/console/alerts?state=${s}` }))}
      />
      <Loaded state={alerts}>
        {(rows) => (
          <Table
            label={`${state} alerts`}
            rows={rows}
            rowKey={(a) => a.alert_id}
            rowProps={(a) => ({ "data-alert": a.alert_id, "data-state": a.state })}
            empty={`No ${state} alerts.`}
            columns={[
              { label: "raised", cell: (a) => <When at={a.created_at} /> },
              { label: "severity", cell: (a) => <span class={`pill ${a.severity === "critical" ? "over" : "warn"}`}>{a.severity}</span> },
              { label: "source", cell: (a) => `${a.source} · ${a.kind}` },
              { label: "scope", cell: "scope_key" },
              { label: "alert", cell: (a) => <Link href={alertHref(a)}>{a.message}</Link> },
              { label: "value / threshold", cell: (a) => figure(a), class: "num" },
              { label: state === "resolved" ? "resolved" : state === "acknowledged" ? "by" : "state", cell: (a) => (state === "resolved" ? <When at={a.resolved_at} /> : state === "acknowledged" ? actor(a.acked_by) : <span class={`pill ${a.state}`}>{a.state}</span>) },
            ]}
          />
        )}
      </Loaded>
    </Page>
  );
}
