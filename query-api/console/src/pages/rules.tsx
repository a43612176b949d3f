// Alert rules (admins and owners): list, create, edit (the kind is fixed
// once created), delete. The form shows the parameters of the chosen kind
// (rulekinds.ts, mirroring the API's validation); other roles are told
// they cannot (the list is admin-only in the API).
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { AlertRule, Channel, RuleKind } from "../api";
import { Cannot, Page, Panel } from "../components/bits";
import { ChannelFields, channelNames, channelsOf, EditableList, ScopeFields, scopeOf } from "../components/config";
import { Loaded, useApi } from "../components/data";
import { ApiForm, Field } from "../components/form";
import { useSession } from "../components/session";
import { num, text } from "../forms";
import { can } from "../roles";
import { RULE_KINDS, ruleParams } from "../rulekinds";
import type { PageProps } from "../routes";

function ruleBody(fd: FormData, kind: RuleKind, update: boolean): Record<string, unknown> {
  return {
    name: text(fd.get("name")),
    ...(update ? {} : { kind }),
    ...scopeOf(fd),
    ...ruleParams(
      kind,
      { threshold: num(fd.get("threshold")), window_secs: num(fd.get("window_secs")), min_runs: num(fd.get("min_runs")), minutes: num(fd.get("minutes")) },
      update,
    ),
    cooldown_secs: num(fd.get("cooldown_secs")),
    channels: channelsOf(fd),
    enabled: fd.get("enabled") === "on",
  };
}

function RuleFields({ r, kind, setKind, channels }: { r?: AlertRule | undefined; kind: RuleKind; setKind?: (k: RuleKind) => void; channels: readonly Channel[] }): JSX.Element {
  const info = RULE_KINDS[kind];
  const uses = (p: string) => (info.params as readonly string[]).includes(p);
  const val = (v: number | null | undefined) => (v === null || v === undefined ? "" : String(v));
  return (
    <>
      <Field name="name" label="Name">
        <input name="name" defaultValue={r?.name ?? ""} required />
      </Field>
      <Field name="kind" label="Kind" hint={r ? "Fixed once created." : undefined}>
        <select name="kind" value={kind} disabled={!setKind} onChange={(e) => setKind?.((e.currentTarget as HTMLSelectElement).value as RuleKind)}>
          {(Object.keys(RULE_KINDS) as RuleKind[]).map((k) => (
            <option key={k} value={k}>
              {RULE_KINDS[k].label}
            </option>
          ))}
        </select>
      </Field>
      <ScopeFields key={kind} allowed={info.scopes} kind={r?.scope_kind} value={r?.scope_value} />
      {uses("threshold") ? (
        <Field name="threshold" label="Threshold" hint={info.threshold}>
          <input name="threshold" type="number" step="any" defaultValue={val(r?.threshold)} />
        </Field>
      ) : null}
      {uses("window_secs") ? (
        <Field name="window_secs" label="Window (seconds)" hint="60 to 604800">
          <input name="window_secs" type="number" defaultValue={val(r?.window_secs) || "900"} />
        </Field>
      ) : null}
      {uses("min_runs") ? (
        <Field name="min_runs" label="At least runs" hint="Default 1">
          <input name="min_runs" type="number" defaultValue={val(r?.min_runs)} />
        </Field>
      ) : null}
      {uses("minutes") ? (
        <Field name="minutes" label="Minutes" hint="1 to 43200">
          <input name="minutes" type="number" defaultValue={val(r?.minutes)} />
        </Field>
      ) : null}
      <Field name="cooldown_secs" label="Cooldown (seconds)" hint="Default 3600">
        <input name="cooldown_secs" type="number" defaultValue={val(r?.cooldown_secs)} />
      </Field>
      <Field name="enabled" label="Enabled">
        <input type="checkbox" name="enabled" defaultChecked={r?.enabled ?? true} />
      </Field>
      <ChannelFields channels={channels} selected={r?.channels} />
    </>
  );
}

function condition(r: AlertRule): string {
  switch (r.kind) {
    case "cost_per_day":
      return `spend > $${r.threshold ?? "?"} per day`;
    case "error_rate":
      return `error rate > ${r.threshold ?? "?"} over ${r.window_secs ?? "?"} s (≥ ${r.min_runs} runs)`;
    case "latency_p95":
      return `p95 > ${r.threshold ?? "?"} ms over ${r.window_secs ?? "?"} s (≥ ${r.min_runs} runs)`;
    case "no_heartbeat":
      return `no heartbeat for ${r.minutes ?? "?"} min`;
    case "stuck_run":
      return `run open for ${r.minutes ?? "?"} min`;
  }
}

export function RulesPage(_: PageProps): JSX.Element {
  const { api, me } = useSession();
  const admin = can(me, "configure");
  const data = useApi(() => Promise.all([api.list("rules"), api.list("channels")]), [api], { skip: !admin });
  const [kind, setKind] = useState<RuleKind>("error_rate");
  if (!admin) {
    return (
      <Page name="rules" title="Alert rules">
        <Cannot what="see or change alert rules" need="configure" />
      </Page>
    );
  }
  return (
    <Page name="rules" title="Alert rules">
      <Loaded state={data}>
        {([rules, channels]) => (
          <>
            <Panel title="New rule">
              <ApiForm
                label="new rule"
                submit="Create rule"
                onSubmit={async (fd) => {
                  await api.create("rules", ruleBody(fd, kind, false));
                  data.reload();
                }}
              >
                <RuleFields kind={kind} setKind={setKind} channels={channels} />
              </ApiForm>
            </Panel>
            <Panel title="Rules">
              <EditableList<AlertRule>
                noun="rule"
                rows={rules}
                editable
                remove={(r) => api.remove("rules", r.id).then(data.reload)}
                edit={(r, done) => (
                  <ApiForm
                    key={r.id}
                    label={`edit rule ${r.name}`}
                    submit="Save"
                    keep
                    onCancel={done}
                    onSubmit={async (fd) => {
                      await api.update("rules", r.id, ruleBody(fd, r.kind, true));
                      done();
                      data.reload();
                    }}
                  >
                    <RuleFields r={r} kind={r.kind} channels={channels} />
                  </ApiForm>
                )}
                columns={[
                  { label: "name", cell: "name" },
                  { label: "kind", cell: (r) => RULE_KINDS[r.kind]?.label ?? r.kind },
                  { label: "scope", cell: "scope_key" },
                  { label: "condition", cell: condition },
                  { label: "cooldown", cell: (r) => `${r.cooldown_secs} s`, class: "num" },
                  { label: "enabled", cell: (r) => (r.enabled ? "yes" : "no") },
                  { label: "channels", cell: (r) => channelNames(r.channels, channels) },
                ]}
              />
            </Panel>
          </>
        )}
      </Loaded>
    </Page>
  );
}
