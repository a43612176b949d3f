// API keys of the org (owners): list, create with scopes — the raw key is
// shown once, with a copy button — and revoke (asks first). Other roles
// are told they cannot; the list itself is owners-only in the API.
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { ApiKey, NewApiKey } from "../api";
import { Cannot, Page, Panel, SecretOnce, When } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { ApiForm, ConfirmButton, Field } from "../components/form";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { actor } from "../format";
import { all, compact, text } from "../forms";
import { can } from "../roles";
import type { PageProps } from "../routes";

const SCOPES = [
  ["ingest", "send events (the gateway)"],
  ["read", "read metrics, runs, alerts"],
  ["admin", "change configuration"],
] as const;

export function KeysPage(_: PageProps): JSX.Element {
  const { api, me } = useSession();
  const allowed = can(me, "manage_access");
  const keys = useApi(() => api.keys(), [api], { skip: !allowed });
  const [created, setCreated] = useState<NewApiKey | null>(null);
  if (!allowed) {
    return (
      <Page name="keys" title="API keys">
        <Cannot what="see or manage API keys" need="manage_access" />
      </Page>
    );
  }
  return (
    <Page name="keys" title="API keys">
      <Panel title="New key">
        {created ? (
          <SecretOnce label={`Key ${created.prefix}${created.name ? ` (${created.name})` : ""}`} value={created.key} onDone={() => setCreated(null)} />
        ) : (
          <ApiForm
            label="new key"
            submit="Create key"
            onSubmit={async (fd) => {
              const k = await api.createKey(compact({ name: text(fd.get("name")), scopes: all(fd, "scopes") }));
              setCreated(k);
              keys.reload();
            }}
          >
            <Field name="name" label="Name">
              <input name="name" placeholder="e.g. ci-gateway" />
            </Field>
            <Field name="scopes" label="Scopes">
              <span class="checks">
                {SCOPES.map(([s, what]) => (
                  <label key={s} title={what}>
                    <input type="checkbox" name="scopes" value={s} defaultChecked={s === "read"} /> {s}
                  </label>
                ))}
              </span>
            </Field>
          </ApiForm>
        )}
      </Panel>
      <Panel title="Keys">
        <Loaded state={keys}>
          {(rows) => (
            <Table<ApiKey>
              label="keys"
              rows={rows}
              rowKey={(k) => k.id}
              rowProps={(k) => ({ "data-key": k.prefix, class: k.revoked_at ? "muted" : "" })}
              columns={[
                { label: "prefix", cell: (k) => <code>{k.prefix}</code> },
                { label: "name", cell: (k) => k.name ?? "—" },
                { label: "scopes", cell: (k) => k.scopes.join(", ") },
                { label: "created", cell: (k) => <When at={k.created_at} /> },
                { label: "by", cell: (k) => <span title={k.created_by ?? ""}>{actor(k.created_by)}</span> },
                {
                  label: "state",
                  cell: (k) =>
                    k.revoked_at ? (
                      <span>
                        revoked <When at={k.revoked_at} />
                      </span>
                    ) : (
                      <ConfirmButton question={`Revoke ${k.prefix}? Callers using it are refused at once.`} onConfirm={() => api.revokeKey(k.id).then(keys.reload)}>
                        Revoke
                      </ConfirmButton>
                    ),
                },
              ]}
            />
          )}
        </Loaded>
      </Panel>
    </Page>
  );
}
