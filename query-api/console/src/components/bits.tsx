// Small shared pieces: a page's frame, a role's refusal, a secret shown
// once, tabs, time stamps.
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { cannot, type Action, type Role } from "../roles";
import { useSession } from "./session";
import { Link } from "./router";

/** A page: its title (also the document's) and content. `name` is set as
 *  `data-page` on the section (tests wait for it); `above` goes above the
 *  title (breadcrumbs). */
export function Page({ name, title, children, actions, above }: { name: string; title: string; children: ComponentChildren; actions?: ComponentChildren; above?: ComponentChildren }): JSX.Element {
  useEffect(() => {
    document.title = `${title} · AgentOps`;
  }, [title]);
  return (
    <section class="page" data-page={name}>
      {above}
      <div class="page-head">
        <h1>{title}</h1>
        {actions ? <div class="page-actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

/** What a role that may not do `need` sees instead. */
export function Cannot({ what, need }: { what: string; need: Action | Role }): JSX.Element {
  const { me } = useSession();
  return (
    <p class="notice cannot" data-cannot={need}>
      {cannot(me, what, need)}
    </p>
  );
}

/** A secret the API shows once: a warning, the value, a copy button. */
export function SecretOnce({ label, value, onDone, extra }: { label: string; value: string; onDone: () => void; extra?: ComponentChildren }): JSX.Element {
  const [copied, setCopied] = useState(false);
  return (
    <div class="secret-once" role="status" data-secret>
      <p class="warn-text">
        <strong>{label}</strong> — shown this once. Copy it now: it cannot be shown again.
      </p>
      <div class="secret-row">
        <code data-secret-value>{value}</code>
        <button
          type="button"
          onClick={() => {
            void navigator.clipboard?.writeText(value).then(() => setCopied(true), () => setCopied(false));
          }}
        >
          {copied ? "Copied" : "Copy"}
        </button>
        <button type="button" class="secondary" onClick={onDone}>
          Done
        </button>
      </div>
      {extra}
    </div>
  );
}

export interface Tab {
  id: string;
  label: string;
  href: string;
}

export function Tabs({ tabs, active, label }: { tabs: readonly Tab[]; active: string; label: string }): JSX.Element {
  return (
    <nav class="tabs" aria-label={label}>
      {tabs.map((t) => (
        <Link key={t.id} href={t.href} aria-current={t.id === active ? "page" : undefined} data-tab={t.id}>
          {t.label}
        </Link>
      ))}
    </nav>
  );
}

/** A UTC time stamp in the reader's locale; "—" when absent. */
export function When({ at }: { at: string | null | undefined }): JSX.Element {
  if (!at) return <span>—</span>;
  const d = new Date(at);
  return <time dateTime={at} title={at}>{Number.isNaN(d.getTime()) ? at : d.toLocaleString()}</time>;
}

/** A titled block of a page. */
export function Panel({ title, children, id, actions }: { title?: string; children: ComponentChildren; id?: string; actions?: ComponentChildren }): JSX.Element {
  return (
    <section class="panel" aria-label={title} id={id}>
      {title || actions ? (
        <div class="panel-head">
          {title ? <h2>{title}</h2> : null}
          {actions}
        </div>
      ) : null}
      {children}
    </section>
  );
}
