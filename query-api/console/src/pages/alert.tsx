// One alert: what fired and why, its history (state changes with who and
// their note), its deliveries per channel, and — for members and up, while
// it fires — acknowledge with a note.
import type { JSX } from "preact";
import type { AlertDetail } from "../api";
import { Cannot, Page, Panel, When } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { ApiForm, Field } from "../components/form";
import { Link } from "../components/router";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { actor } from "../format";
import { text } from "../forms";
import { can } from "../roles";
import type { PageProps } from "../routes";
import { figure } from "./alerts";

function Facts({ a }: { a: AlertDetail }): JSX.Element {
  const rows: [string, JSX.Element | string][] = [
    ["state", <span class={`pill ${a.state}`} data-alert-state={a.state}>{a.state}</span>],
    ["message", a.message],
    ["source", `${a.source} · ${a.kind}${a.source_id ? ` (${a.source_id})` : ""}`],
    ["scope", a.scope_key || "org"],
    ["severity", a.severity],
    ["period", a.period || "—"],
    ["value / threshold", figure(a)],
    ["raised", <When at={a.created_at} />],
    ["notified", <When at={a.notified_at} />],
    ["acknowledged", a.acked_at ? <span><When at={a.acked_at} /> by {actor(a.acked_by)}</span> : "—"],
    ["resolved", <When at={a.resolved_at} />],
  ];
  return (
    <dl class="facts">
      {rows.map(([k, v]) => [<dt key={`${k}-t`}>{k}</dt>, <dd key={`${k}-d`}>{v}</dd>])}
    </dl>
  );
}

export function AlertPage({ params }: PageProps): JSX.Element {
  const { api, me } = useSession();
  const id = params.id ?? "";
  const alert = useApi(() => api.alert(id), [api, id]);
  return (
    <Page name="alert" title="Alert" actions={<Link href="/console/alerts">All alerts</Link>}>
      <Loaded state={alert}>
        {(a) => (
          <>
            <Panel title={a.alert_id}>
              <Facts a={a} />
            </Panel>
            {a.state === "firing" ? (
              can(me, "acknowledge") ? (
                <Panel title="Acknowledge">
                  <ApiForm
                    label="acknowledge"
                    submit="Acknowledge"
                    onSubmit={async (fd) => {
                      await api.ack(a.alert_id, text(fd.get("note")));
                      alert.reload();
                    }}
                  >
                    <Field name="note" label="Note (optional)" hint="Who is on it, what is being done; at most 1000 characters.">
                      <textarea name="note" rows={2} class="wide" />
                    </Field>
                  </ApiForm>
                </Panel>
              ) : (
                <Cannot what="acknowledge alerts" need="acknowledge" />
              )
            ) : null}
            <Panel title="History" id="history">
              <Table
                rows={a.history}
                rowKey={(h) => `${h.at}-${h.state}`}
                empty="No state changes recorded."
                columns={[
                  { label: "when", cell: (h) => <When at={h.at} /> },
                  { label: "state", cell: (h) => <span class={`pill ${h.state}`}>{h.state}</span> },
                  { label: "by", cell: (h) => <span title={h.actor}>{actor(h.actor)}</span> },
                  { label: "note", cell: (h) => h.note ?? "—" },
                ]}
              />
            </Panel>
            <Panel title="Deliveries" id="deliveries">
              <Table
                rows={a.deliveries}
                rowKey={(d) => `${d.channel_id}-${d.transition}`}
                empty="No deliveries (no channel was configured)."
                columns={[
                  { label: "channel", cell: (d) => `${d.channel_name ?? "(deleted)"}${d.channel_kind ? ` · ${d.channel_kind}` : ""}` },
                  { label: "transition", cell: "transition" },
                  { label: "attempts", cell: (d) => String(d.attempts), class: "num" },
                  { label: "delivered", cell: (d) => <When at={d.delivered_at} /> },
                  { label: "dead-lettered", cell: (d) => <When at={d.dead_lettered_at} /> },
                  { label: "last error", cell: (d) => d.last_error ?? "—" },
                ]}
              />
            </Panel>
          </>
        )}
      </Loaded>
    </Page>
  );
}
