// Policies (admins and owners): list, create, edit (the kind is fixed once
// created), delete. Other roles are told they cannot (admin-only list).
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Channel, Policy, PolicyKind } from "../api";
import { Cannot, Page, Panel } from "../components/bits";
import { AGENT_SCOPES, ChannelFields, channelNames, channelsOf, EditableList, ScopeFields, scopeOf } from "../components/config";
import { Loaded, useApi } from "../components/data";
import { ApiForm, Choice, Field } from "../components/form";
import { useSession } from "../components/session";
import { list, num, text } from "../forms";
import { can } from "../roles";
import { POLICY_KINDS } from "../rulekinds";
import type { PageProps } from "../routes";

function policyBody(fd: FormData, kind: PolicyKind, update: boolean): Record<string, unknown> {
  const usesNames = POLICY_KINDS[kind].param === "names";
  return {
    name: text(fd.get("name")),
    ...(update ? {} : { kind }),
    ...scopeOf(fd),
    ...(usesNames ? { names: list(fd.get("names")) } : { limit_value: num(fd.get("limit_value")) ?? null }),
    action: text(fd.get("action")),
    channels: channelsOf(fd),
    enabled: fd.get("enabled") === "on",
  };
}

function PolicyFields({ p, kind, setKind, channels }: { p?: Policy | undefined; kind: PolicyKind; setKind?: (k: PolicyKind) => void; channels: readonly Channel[] }): JSX.Element {
  const info = POLICY_KINDS[kind];
  return (
    <>
      <Field name="name" label="Name">
        <input name="name" defaultValue={p?.name ?? ""} required />
      </Field>
      <Field name="kind" label="Kind" hint={p ? "Fixed once created." : undefined}>
        <select name="kind" value={kind} disabled={!setKind} onChange={(e) => setKind?.((e.currentTarget as HTMLSelectElement).value as PolicyKind)}>
          {(Object.keys(POLICY_KINDS) as PolicyKind[]).map((k) => (
            <option key={k} value={k}>
              {POLICY_KINDS[k].label}
            </option>
          ))}
        </select>
      </Field>
      <ScopeFields allowed={AGENT_SCOPES} kind={p?.scope_kind} value={p?.scope_value} />
      {info.param === "names" ? (
        <Field name="names" label="Names" hint={`Comma-separated: ${info.hint}`}>
          <input name="names" defaultValue={p?.names.join(", ") ?? ""} />
        </Field>
      ) : (
        <Field name="limit_value" label="Limit" hint={info.hint}>
          <input name="limit_value" type="number" step="any" defaultValue={p?.limit_value == null ? "" : String(p.limit_value)} />
        </Field>
      )}
      <Field name="action" label="On violation">
        <Choice
          name="action"
          value={p?.action ?? "flag"}
          options={[["flag", "flag (record it)"], ["alert", "alert (also notify)"], ["pause", "pause (also pause the agent)"]]}
        />
      </Field>
      <Field name="enabled" label="Enabled">
        <input type="checkbox" name="enabled" defaultChecked={p?.enabled ?? true} />
      </Field>
      <ChannelFields channels={channels} selected={p?.channels} />
    </>
  );
}

export function PoliciesPage(_: PageProps): JSX.Element {
  const { api, me } = useSession();
  const admin = can(me, "configure");
  const data = useApi(() => Promise.all([api.list("policies"), api.list("channels")]), [api], { skip: !admin });
  const [kind, setKind] = useState<PolicyKind>("model_allowlist");
  if (!admin) {
    return (
      <Page name="policies" title="Policies">
        <Cannot what="see or change policies" need="configure" />
      </Page>
    );
  }
  return (
    <Page name="policies" title="Policies">
      <Loaded state={data}>
        {([policies, channels]) => (
          <>
            <Panel title="New policy">
              <ApiForm
                label="new policy"
                submit="Create policy"
                onSubmit={async (fd) => {
                  await api.create("policies", policyBody(fd, kind, false));
                  data.reload();
                }}
              >
                <PolicyFields kind={kind} setKind={setKind} channels={channels} />
              </ApiForm>
            </Panel>
            <Panel title="Policies">
              <EditableList<Policy>
                noun="policy"
                rows={policies}
                editable
                empty="No policies yet."
                remove={(p) => api.remove("policies", p.id).then(data.reload)}
                edit={(p, done) => (
                  <ApiForm
                    key={p.id}
                    label={`edit policy ${p.name}`}
                    submit="Save"
                    keep
                    onCancel={done}
                    onSubmit={async (fd) => {
                      await api.update("policies", p.id, policyBody(fd, p.kind, true));
                      done();
                      data.reload();
                    }}
                  >
                    <PolicyFields p={p} kind={p.kind} channels={channels} />
                  </ApiForm>
                )}
                columns={[
                  { label: "name", cell: "name" },
                  { label: "kind", cell: (p) => POLICY_KINDS[p.kind]?.label ?? p.kind },
                  { label: "scope", cell: "scope_key" },
                  { label: "rule", cell: (p) => (p.limit_value !== null ? String(p.limit_value) : p.names.join(", ")) },
                  { label: "action", cell: "action" },
                  { label: "enabled", cell: (p) => (p.enabled ? "yes" : "no") },
                  { label: "channels", cell: (p) => channelNames(p.channels, channels) },
                ]}
              />
            </Panel>
          </>
        )}
      </Loaded>
    </Page>
  );
}
