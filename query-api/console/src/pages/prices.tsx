// Model prices: the models this org used without a price (every role: the
// read API), and — for admins and owners — the price table (global rows and
// this org's overrides, every version) with a form to add or override one;
// "Add price" on an unknown model or "Override" on a row fills the form in.
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Price, UnknownModel } from "../api";
import { Page, Panel, When } from "../components/bits";
import { Loaded, useApi } from "../components/data";
import { ApiForm, Field } from "../components/form";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { count } from "../format";
import { compact, list, num, text } from "../forms";
import { can, cannot } from "../roles";
import type { PageProps } from "../routes";

/** What the form starts from. */
type Draft = Partial<Pick<Price, "provider" | "model" | "aliases" | "input" | "output" | "cache_read" | "cache_write" | "reasoning">> & { seq: number };

function priceBody(fd: FormData): Record<string, unknown> {
  return compact({
    provider: text(fd.get("provider")),
    model: text(fd.get("model")),
    aliases: text(fd.get("aliases")) === undefined ? undefined : list(fd.get("aliases")),
    effective_from: text(fd.get("effective_from")),
    input: num(fd.get("input")),
    output: num(fd.get("output")),
    cache_read: num(fd.get("cache_read")),
    cache_write: num(fd.get("cache_write")),
    reasoning: num(fd.get("reasoning")),
  });
}

const rate = (v: number | null | undefined) => (v === null || v === undefined ? "" : String(v));
const money = (v: number | null) => (v === null ? "—" : `$${v}`);

function PriceForm({ draft, onDone }: { draft: Draft; onDone: () => void }): JSX.Element {
  const { api } = useSession();
  return (
    <ApiForm
      key={draft.seq}
      label="new price"
      submit="Save price"
      onSubmit={async (fd) => {
        await api.addPrice(priceBody(fd));
        onDone();
      }}
    >
      <Field name="provider" label="Provider">
        <input name="provider" defaultValue={draft.provider ?? ""} placeholder="openai" />
      </Field>
      <Field name="model" label="Model">
        <input name="model" defaultValue={draft.model ?? ""} placeholder="gpt-4o" />
      </Field>
      <Field name="aliases" label="Aliases" hint="Comma-separated other names">
        <input name="aliases" defaultValue={draft.aliases?.join(", ") ?? ""} />
      </Field>
      <Field name="effective_from" label="Effective from (UTC)" hint="Empty: always">
        <input name="effective_from" type="date" />
      </Field>
      <Field name="input" label="Input $/M tokens">
        <input name="input" type="number" step="any" defaultValue={rate(draft.input)} />
      </Field>
      <Field name="output" label="Output $/M tokens">
        <input name="output" type="number" step="any" defaultValue={rate(draft.output)} />
      </Field>
      <Field name="cache_read" label="Cache read $/M">
        <input name="cache_read" type="number" step="any" defaultValue={rate(draft.cache_read)} />
      </Field>
      <Field name="cache_write" label="Cache write $/M">
        <input name="cache_write" type="number" step="any" defaultValue={rate(draft.cache_write)} />
      </Field>
      <Field name="reasoning" label="Reasoning $/M">
        <input name="reasoning" type="number" step="any" defaultValue={rate(draft.reasoning)} />
      </Field>
    </ApiForm>
  );
}

export function PricesPage(_: PageProps): JSX.Element {
  const { api, me } = useSession();
  const admin = can(me, "configure");
  const unknown = useApi(() => api.unknownModels("30d"), [api]);
  const prices = useApi(() => api.prices(), [api], { skip: !admin });
  // `?provider=&model=` (the cost explorer's "Add price" link) fills the form in.
  const [draft, setDraft] = useState<Draft>(() => {
    const q = new URLSearchParams(location.search);
    const d: Draft = { seq: 0 };
    const provider = q.get("provider");
    const model = q.get("model");
    if (provider) d.provider = provider;
    if (model) d.model = model;
    return d;
  });
  const fill = (d: Omit<Draft, "seq">) => {
    setDraft({ ...d, seq: draft.seq + 1 });
    document.getElementById("price-form")?.scrollIntoView({ behavior: "smooth" });
  };
  return (
    <Page name="prices" title="Prices">
      <Panel title="Models without a price (30 days)" id="unknown-models">
        <Loaded state={unknown}>
          {(rows) => (
            <Table<UnknownModel>
              label="unknown models"
              rows={rows}
              rowKey={(m) => `${m.provider ?? ""}/${m.model ?? ""}`}
              rowProps={(m) => ({ "data-model": m.model ?? "" })}
              empty="Every model used has a price."
              columns={[
                { label: "provider", cell: (m) => m.provider ?? "—" },
                { label: "model", cell: (m) => m.model ?? "—" },
                { label: "unpriced calls", cell: (m) => count(m.unpriced_calls), class: "num" },
                { label: "first seen", cell: (m) => <When at={m.first_seen} /> },
                { label: "last seen", cell: (m) => <When at={m.last_seen} /> },
                ...(admin
                  ? [{ label: "", cell: (m: UnknownModel) => <button type="button" class="secondary" data-add-price={m.model ?? ""} onClick={() => fill({ provider: m.provider ?? "", model: m.model ?? "" })}>Add price</button> }]
                  : []),
              ]}
            />
          )}
        </Loaded>
      </Panel>
      {admin ? (
        <>
          <Panel title="Add or override a price" id="price-form">
            <p class="hint">USD per million tokens. A row for this org overrides the global table from its date on; events already priced change only by a recompute.</p>
            <PriceForm draft={draft} onDone={() => {
              setDraft({ seq: draft.seq + 1 });
              prices.reload();
              unknown.reload();
            }} />
          </Panel>
          <Panel title="Price table">
            <Loaded state={prices}>
              {(rows) => (
                <Table<Price>
                  label="prices"
                  rows={rows}
                  rowKey={(p) => String(p.id)}
                  rowProps={(p) => ({ "data-price": `${p.scope}:${p.model}` })}
                  columns={[
                    { label: "scope", cell: (p) => <span class={`pill ${p.scope === "org" ? "warn" : ""}`}>{p.scope}</span> },
                    { label: "provider", cell: "provider" },
                    { label: "model", cell: (p) => (p.aliases.length ? `${p.model} (${p.aliases.join(", ")})` : p.model) },
                    { label: "from", cell: "effective_from" },
                    { label: "input", cell: (p) => money(p.input), class: "num" },
                    { label: "output", cell: (p) => money(p.output), class: "num" },
                    { label: "cache r/w", cell: (p) => `${money(p.cache_read)} / ${money(p.cache_write)}`, class: "num" },
                    { label: "reasoning", cell: (p) => money(p.reasoning), class: "num" },
                    { label: "", cell: (p) => <button type="button" class="secondary" onClick={() => fill(p)}>{p.scope === "global" ? "Override" : "New version"}</button> },
                  ]}
                />
              )}
            </Loaded>
          </Panel>
        </>
      ) : (
        <p class="notice cannot">{cannot(me, "see or change the price table", "configure")}</p>
      )}
    </Page>
  );
}
