// Shared pieces of the configuration pages (budgets, alert rules,
// policies): the scope fields, the channel checkboxes, and a list whose
// rows an admin edits or deletes in place.
import type { ComponentChildren, JSX } from "preact";
import { useState } from "preact/hooks";
import type { Channel, ScopeKind } from "../api";
import { all, text } from "../forms";
import { ConfirmButton, Field } from "./form";
import { Table, type Column } from "./table";

export const ALL_SCOPES: readonly ScopeKind[] = ["org", "agent", "workflow", "model", "tag", "project", "machine", "workspace", "session"];
/** What policies take: they pause agents, so the agents' kinds only. */
export const AGENT_SCOPES: readonly ScopeKind[] = ["org", "agent", "workflow", "model", "tag"];

const SCOPE_HINT: Record<ScopeKind, string> = {
  org: "the whole org (no value)",
  agent: "an agent id",
  workflow: "a workflow id",
  model: "a model name",
  tag: "an attribute key=value (team=pay)",
  project: "a project id (github.com/acme/shop)",
  machine: "a machine id",
  workspace: "a workspace id",
  session: "a session id",
};

/** `scope_kind` and `scope_value`. */
export function ScopeFields({ allowed = ALL_SCOPES, kind, value }: { allowed?: readonly ScopeKind[]; kind?: ScopeKind | undefined; value?: string | null | undefined }): JSX.Element {
  const [k, setK] = useState<ScopeKind>(kind ?? "org");
  return (
    <>
      <Field name="scope_kind" label="Scope">
        <select name="scope_kind" value={k} onChange={(e) => setK((e.currentTarget as HTMLSelectElement).value as ScopeKind)}>
          {allowed.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </Field>
      <Field name="scope_value" label="Scope value" hint={SCOPE_HINT[k]}>
        <input name="scope_value" defaultValue={value ?? ""} disabled={k === "org"} placeholder={k === "org" ? "—" : SCOPE_HINT[k]} />
      </Field>
    </>
  );
}

/** The scope of a form: `scope_value` only when the kind takes one. */
export function scopeOf(fd: FormData): { scope_kind: string | undefined; scope_value: string | null } {
  const kind = text(fd.get("scope_kind"));
  return { scope_kind: kind, scope_value: kind === "org" ? null : (text(fd.get("scope_value")) ?? null) };
}

/** `channels`: checkboxes of the org's channels. */
export function ChannelFields({ channels, selected = [] }: { channels: readonly Channel[]; selected?: readonly string[] | undefined }): JSX.Element {
  return (
    <Field name="channels" label="Notify channels">
      {channels.length === 0 ? (
        <span class="hint">No channels yet (Admin → Channels).</span>
      ) : (
        <span class="checks">
          {channels.map((c) => (
            <label key={c.id}>
              <input type="checkbox" name="channels" value={c.id} defaultChecked={selected.includes(c.id)} /> {c.name}
            </label>
          ))}
        </span>
      )}
    </Field>
  );
}

export const channelsOf = (fd: FormData): string[] => all(fd, "channels");

/** Channel names of ids (unknown ids shown short). */
export function channelNames(ids: readonly string[], channels: readonly Channel[] | undefined): string {
  if (ids.length === 0) return "—";
  return ids.map((id) => channels?.find((c) => c.id === id)?.name ?? id.slice(0, 8)).join(", ");
}

export interface EditableListProps<T extends { id: string; name: string }> {
  noun: string;
  rows: readonly T[];
  columns: readonly Column<T>[];
  /** Whether the caller may change rows (admins). */
  editable: boolean;
  /** The edit form of `row` (`done` closes it). */
  edit: (row: T, done: () => void) => ComponentChildren;
  remove: (row: T) => Promise<unknown>;
  empty?: string;
}

/** A table of configuration rows; admins get Edit (the form opens under
 *  the table) and Delete (asks first) on each. */
export function EditableList<T extends { id: string; name: string }>({ noun, rows, columns, editable, edit, remove, empty }: EditableListProps<T>): JSX.Element {
  const [editing, setEditing] = useState<string | null>(null);
  const row = rows.find((r) => r.id === editing);
  const actions: Column<T> = {
    label: "",
    cell: (r) => (
      <span class="row-actions">
        <button type="button" class="secondary" onClick={() => setEditing(r.id)} data-edit={r.name}>
          Edit
        </button>
        <ConfirmButton question={`Delete ${noun} ${r.name}?`} onConfirm={() => remove(r)}>
          Delete
        </ConfirmButton>
      </span>
    ),
  };
  return (
    <>
      <Table label={`${noun}s`} rows={rows} rowKey={(r) => r.id} rowProps={(r) => ({ "data-row": r.name })} columns={editable ? [...columns, actions] : columns} empty={empty ?? `No ${noun}s yet.`} />
      {row && editable ? (
        <div class="edit-box" data-editing={row.name}>
          <h3>
            Edit {noun} {row.name}
          </h3>
          {edit(row, () => setEditing(null))}
        </div>
      ) : null}
    </>
  );
}
