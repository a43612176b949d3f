// Notification channels (admins and owners): list, create (a webhook's
// signing secret is shown once), edit, delete (asks first; the channel is
// removed from every budget, rule and policy), a "Send test" per channel;
// and the daily digest subscription. Other roles are told they cannot.
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { ApiError, type Channel, type ChannelKind, type ChannelTest } from "../api";
import { Cannot, Page, Panel, SecretOnce, When } from "../components/bits";
import { ChannelFields, channelNames, channelsOf, EditableList } from "../components/config";
import { errorText, Loaded, useApi } from "../components/data";
import { ApiForm, ConfirmButton, Field } from "../components/form";
import { useSession } from "../components/session";
import { compact, num, text } from "../forms";
import { can } from "../roles";
import type { PageProps } from "../routes";

const KINDS: readonly ChannelKind[] = ["slack", "discord", "webhook"];

function channelBody(fd: FormData): Record<string, unknown> {
  return compact({ name: text(fd.get("name")), kind: text(fd.get("kind")), url: text(fd.get("url")), secret: text(fd.get("secret")) });
}

function ChannelForm({ c }: { c?: Channel | undefined }): JSX.Element {
  const [kind, setKind] = useState<ChannelKind>(c?.kind ?? "slack");
  return (
    <>
      <Field name="name" label="Name">
        <input name="name" defaultValue={c?.name ?? ""} required />
      </Field>
      <Field name="kind" label="Kind">
        <select name="kind" value={kind} onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value as ChannelKind)}>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </Field>
      <Field name="url" label="URL" hint={c ? `Now ${c.url}; leave empty to keep it.` : "The incoming-webhook URL (a credential: stored sealed, never shown again)."}>
        <input name="url" type="url" placeholder="https://…" />
      </Field>
      {kind === "webhook" ? (
        <Field name="secret" label="Signing secret" hint={c ? "Leave empty to keep the current one." : "Empty: one is generated and shown once."}>
          <input name="secret" type="password" autocomplete="off" />
        </Field>
      ) : null}
    </>
  );
}

function TestButton({ c }: { c: Channel }): JSX.Element {
  const { api } = useSession();
  const [result, setResult] = useState<ChannelTest | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <span class="row-actions" data-test-channel={c.name}>
      <button
        type="button"
        class="secondary"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          setResult(null);
          setError(null);
          api.testChannel(c.id).then(
            (r) => {
              setBusy(false);
              setResult(r);
            },
            (e: unknown) => {
              setBusy(false);
              setError(e instanceof ApiError && e.status === 405 ? "This server cannot send test messages yet." : errorText(e));
            },
          );
        }}
      >
        {busy ? "Sending…" : "Send test"}
      </button>
      {result ? (
        <span class={result.delivered ? "ok-text" : "error"} role="status" data-delivered={String(result.delivered)}>
          {result.delivered ? `Delivered${result.status ? ` (HTTP ${result.status})` : ""}` : `Not delivered: ${result.error ?? `HTTP ${result.status ?? "?"}`}`}
        </span>
      ) : null}
      {error ? (
        <span class="error" role="alert">
          {error}
        </span>
      ) : null}
    </span>
  );
}

function DigestPanel({ channels }: { channels: readonly Channel[] }): JSX.Element {
  const { api } = useSession();
  // 404: not subscribed.
  const digest = useApi(() => api.digest().catch((e: unknown) => (e instanceof ApiError && e.status === 404 ? null : Promise.reject(e))), [api]);
  return (
    <Panel title="Daily digest" id="digest">
      <Loaded state={digest}>
        {(d) => (
          <>
            <p class="hint">
              {d ? `Subscribed: sent after ${String(d.hour_utc).padStart(2, "0")}:00 UTC to ${channelNames(d.channels, channels)}.` : "Not subscribed. Yesterday's figures against the 7-day average, once a day."}
            </p>
            <ApiForm
              key={d ? d.hour_utc : -1}
              label="digest"
              submit={d ? "Update digest" : "Subscribe"}
              keep
              onSubmit={async (fd) => {
                await api.setDigest(compact({ hour_utc: num(fd.get("hour_utc")), channels: channelsOf(fd) }));
                digest.reload();
              }}
            >
              <Field name="hour_utc" label="Hour (UTC)" hint="0 to 23">
                <input name="hour_utc" type="number" defaultValue={String(d?.hour_utc ?? 6)} />
              </Field>
              <ChannelFields channels={channels} selected={d?.channels} />
            </ApiForm>
            {d ? (
              <ConfirmButton question="Stop the daily digest?" onConfirm={() => api.unsubscribeDigest().then(digest.reload)}>
                Unsubscribe
              </ConfirmButton>
            ) : null}
          </>
        )}
      </Loaded>
    </Panel>
  );
}

export function ChannelsPage(_: PageProps): JSX.Element {
  const { api, me } = useSession();
  const admin = can(me, "configure");
  const channels = useApi(() => api.list("channels"), [api], { skip: !admin });
  const [secret, setSecret] = useState<{ name: string; value: string } | null>(null);
  if (!admin) {
    return (
      <Page name="channels" title="Channels">
        <Cannot what="see or change notification channels" need="configure" />
      </Page>
    );
  }
  return (
    <Page name="channels" title="Channels">
      <Panel title="New channel">
        {secret ? <SecretOnce label={`Signing secret of ${secret.name}`} value={secret.value} onDone={() => setSecret(null)} /> : null}
        <ApiForm
          label="new channel"
          submit="Create channel"
          onSubmit={async (fd) => {
            const c = await api.create("channels", channelBody(fd));
            if (c.secret) setSecret({ name: c.name, value: c.secret });
            channels.reload();
          }}
        >
          <ChannelForm />
        </ApiForm>
      </Panel>
      <Panel title="Channels">
        <Loaded state={channels}>
          {(rows) => (
            <EditableList<Channel>
              noun="channel"
              rows={rows}
              editable
              remove={(c) => api.remove("channels", c.id).then(channels.reload)}
              edit={(c, done) => (
                <ApiForm
                  key={c.id}
                  label={`edit channel ${c.name}`}
                  submit="Save"
                  keep
                  onCancel={done}
                  onSubmit={async (fd) => {
                    await api.update("channels", c.id, channelBody(fd));
                    done();
                    channels.reload();
                  }}
                >
                  <ChannelForm c={c} />
                </ApiForm>
              )}
              columns={[
                { label: "name", cell: "name" },
                { label: "kind", cell: "kind" },
                { label: "destination", cell: (c) => <code>{c.url}</code> },
                { label: "signed", cell: (c) => (c.has_secret ? "yes" : "—") },
                { label: "created", cell: (c) => <When at={c.created_at} /> },
                { label: "test", cell: (c) => <TestButton c={c} /> },
              ]}
            />
          )}
        </Loaded>
      </Panel>
      {channels.data ? <DigestPanel channels={channels.data} /> : null}
    </Page>
  );
}
