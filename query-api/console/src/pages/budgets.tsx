// Budgets: every role sees each budget's period, spend and percent (the
// read API `GET /v1/budgets/status`); admins and owners also create, edit
// and delete them (`/v1/admin/budgets`), with the API's field errors next
// to each field.
import type { JSX } from "preact";
import type { Budget, BudgetStatus, Channel } from "../api";
import { Page, Panel } from "../components/bits";
import { ChannelFields, channelNames, channelsOf, EditableList, ScopeFields, scopeOf } from "../components/config";
import { Loaded, useApi } from "../components/data";
import { ApiForm, Choice, Field } from "../components/form";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { budgetLevel, usd } from "../format";
import { num, numList, text } from "../forms";
import { can } from "../roles";
import type { PageProps } from "../routes";

/** A budget form's body (`PUT` takes the same). */
export function budgetBody(fd: FormData): Record<string, unknown> {
  return {
    name: text(fd.get("name")),
    ...scopeOf(fd),
    period: text(fd.get("period")),
    limit_usd: num(fd.get("limit_usd")) ?? null,
    thresholds: text(fd.get("thresholds")) === undefined ? undefined : numList(fd.get("thresholds")),
    pause_at_pct: num(fd.get("pause_at_pct")) ?? null,
    channels: channelsOf(fd),
  };
}

function BudgetFields({ b, channels }: { b?: Budget | undefined; channels: readonly Channel[] }): JSX.Element {
  return (
    <>
      <Field name="name" label="Name">
        <input name="name" defaultValue={b?.name ?? ""} required />
      </Field>
      <Field name="period" label="Period (UTC)">
        <Choice name="period" value={b?.period ?? "month"} options={[["day", "day"], ["week", "week (from Monday)"], ["month", "month"]]} />
      </Field>
      <Field name="limit_usd" label="Limit (USD)">
        <input name="limit_usd" type="number" step="any" defaultValue={b ? String(b.limit_usd) : ""} />
      </Field>
      <ScopeFields kind={b?.scope_kind} value={b?.scope_value} />
      <Field name="thresholds" label="Alert at (% of limit)" hint="Comma-separated; default 80, 100.">
        <input name="thresholds" defaultValue={b ? b.thresholds.join(", ") : ""} placeholder="80, 100" />
      </Field>
      <Field name="pause_at_pct" label="Pause agents at (%)" hint="Empty: never pause.">
        <input name="pause_at_pct" type="number" step="any" defaultValue={b?.pause_at_pct == null ? "" : String(b.pause_at_pct)} />
      </Field>
      <ChannelFields channels={channels} selected={b?.channels} />
    </>
  );
}

function Status({ s }: { s: BudgetStatus | undefined }): JSX.Element {
  if (!s) return <span>—</span>;
  const level = budgetLevel(s.percent);
  return (
    <span class={`pill ${level}`} data-level={level}>
      {s.percent === null ? "—" : `${s.percent.toFixed(1)}%`}
    </span>
  );
}

export function BudgetsPage(_: PageProps): JSX.Element {
  const { api, me } = useSession();
  const admin = can(me, "configure");
  const status = useApi(() => api.budgets(), [api], { refreshMs: 30000 });
  const config = useApi(() => Promise.all([api.list("budgets"), api.list("channels")]), [api], { skip: !admin });
  const reload = () => {
    config.reload();
    status.reload();
  };
  if (!admin) {
    return (
      <Page name="budgets" title="Budgets">
        <p class="notice cannot">Your role ({me.role ?? "API key"}) can see budgets but not change them: admins and above.</p>
        <Loaded state={status}>
          {(rows) => (
            <Table<BudgetStatus>
              label="budgets"
              rows={rows}
              rowKey={(b) => b.id}
              rowProps={(b) => ({ "data-row": b.name })}
              columns={[
                { label: "name", cell: "name" },
                { label: "scope", cell: "scope_key" },
                { label: "period", cell: (b) => `${b.period}${b.period_key ? ` (${b.period_key})` : ""}` },
                { label: "spend", cell: (b) => usd(b.spend_usd), class: "num" },
                { label: "limit", cell: (b) => usd(b.limit_usd), class: "num" },
                { label: "used", cell: (b) => <Status s={b} /> },
              ]}
            />
          )}
        </Loaded>
      </Page>
    );
  }
  return (
    <Page name="budgets" title="Budgets">
      <Loaded state={config}>
        {([budgets, channels]) => {
          const byId = new Map((status.data ?? []).map((s) => [s.id, s]));
          return (
            <>
              <Panel title="New budget">
                <ApiForm
                  label="new budget"
                  submit="Create budget"
                  onSubmit={async (fd) => {
                    await api.create("budgets", budgetBody(fd));
                    reload();
                  }}
                >
                  <BudgetFields channels={channels} />
                </ApiForm>
              </Panel>
              <Panel title="Budgets">
                <EditableList<Budget>
                  noun="budget"
                  rows={budgets}
                  editable
                  remove={(b) => api.remove("budgets", b.id).then(reload)}
                  edit={(b, done) => (
                    <ApiForm
                      key={b.id}
                      label={`edit budget ${b.name}`}
                      submit="Save"
                      keep
                      onCancel={done}
                      onSubmit={async (fd) => {
                        await api.update("budgets", b.id, budgetBody(fd));
                        done();
                        reload();
                      }}
                    >
                      <BudgetFields b={b} channels={channels} />
                    </ApiForm>
                  )}
                  columns={[
                    { label: "name", cell: "name" },
                    { label: "scope", cell: "scope_key" },
                    { label: "period", cell: "period" },
                    { label: "spend", cell: (b) => usd(byId.get(b.id)?.spend_usd), class: "num" },
                    { label: "limit", cell: (b) => usd(b.limit_usd), class: "num" },
                    { label: "used", cell: (b) => <Status s={byId.get(b.id)} /> },
                    { label: "alerts at", cell: (b) => b.thresholds.map((t) => `${t}%`).join(", ") },
                    { label: "pause at", cell: (b) => (b.pause_at_pct === null ? "—" : `${b.pause_at_pct}%`) },
                    { label: "channels", cell: (b) => channelNames(b.channels, channels) },
                  ]}
                />
              </Panel>
            </>
          );
        }}
      </Loaded>
    </Page>
  );
}
