// The header on every page: the brand, the HUD (runs, spend, errors, worst
// budget over 24 h, colored by the budget thresholds; a click opens the
// overview), the window picker, who is signed in, and the navigation bar.
// TV mode hides it all (style.css).
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { budgetLevel, count, fromLocalInput, localInput, rangeFrom, usd, WINDOWS, windowFrom } from "../format";
import { NAV, ADMIN_NAV, ROUTES } from "../routes";
import { match, relative } from "../router";
import { useApi } from "./data";
import { Link, setQuery, useLocation } from "./router";
import { useSession } from "./session";

function Hud(): JSX.Element {
  const { api, tv } = useSession();
  const s = useApi(() => Promise.all([api.overview("24h"), api.budgets()]), [api], { refreshMs: tv ? 5000 : 15000 });
  if (!s.data) return <nav id="hud" aria-label="fleet summary" />;
  const [o, budgets] = s.data;
  const worst = budgets.reduce<number | null>((m, b) => (b.percent === null ? m : Math.max(m ?? 0, b.percent)), null);
  return (
    <nav id="hud" aria-label="fleet summary">
      <Link href="/console/">runs {count(o.runs)}</Link>
      <Link href="/console/">spend {usd(o.cost_usd)}</Link>
      <Link href="/console/" class={o.errors_last_hour > 0 ? "warn" : "ok"}>
        errors/h {count(o.errors_last_hour)}
      </Link>
      <Link href="/console/" class={budgetLevel(worst)} data-hud="worst-budget">
        worst budget {worst === null ? "—" : `${worst.toFixed(0)}%`}
      </Link>
    </nav>
  );
}

/** A time in a few characters ("12/5, 23:41"). */
const short = (d: Date) => d.toLocaleString(undefined, { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });

/** The presets, and a custom range (`?from=&to=` in the URL, local
 *  date-times in the inputs). */
function WindowPicker(): JSX.Element {
  const search = useLocation().search;
  const range = rangeFrom(search);
  const w = windowFrom(search);
  const [open, setOpen] = useState(false);
  const apply = (ev: SubmitEvent) => {
    ev.preventDefault();
    const fd = new FormData(ev.currentTarget as HTMLFormElement);
    const from = fromLocalInput(String(fd.get("from") ?? ""));
    const to = fromLocalInput(String(fd.get("to") ?? ""));
    if (!from) return;
    setOpen(false);
    setQuery({ from, to, window: null, cursor: null });
  };
  const now = new Date();
  return (
    <div id="window" role="group" aria-label="time window">
      {WINDOWS.map((x) => (
        <button key={x} type="button" aria-pressed={!range && x === w ? "true" : "false"} onClick={() => setQuery({ window: x, from: null, to: null, cursor: null })}>
          {x}
        </button>
      ))}
      <button type="button" data-window-custom aria-pressed={range ? "true" : "false"} aria-expanded={open ? "true" : "false"} onClick={() => setOpen(!open)}>
        {range ? `${short(range.from)} – ${range.to ? short(range.to) : "now"}` : "custom"}
      </button>
      {open ? (
        <form class="range-form" aria-label="custom range" onSubmit={apply}>
          <label>
            From <input type="datetime-local" name="from" required defaultValue={localInput(range?.from ?? new Date(now.getTime() - 6 * 3600_000))} />
          </label>
          <label>
            To <input type="datetime-local" name="to" defaultValue={range?.to ? localInput(range.to) : ""} />
          </label>
          <span class="hint">Empty “To”: until now.</span>
          <button type="submit">Apply</button>
        </form>
      ) : null}
    </div>
  );
}

function Who(): JSX.Element {
  const { me, signOut } = useSession();
  const label = me.user ? `${me.user.name} (${me.role ?? "?"}, ${me.org_id})` : `key ${me.key?.prefix ?? ""} (${me.org_id})`;
  return (
    <div id="who">
      <span id="who-name">{label}</span>
      <button type="button" id="sign-out" onClick={signOut}>
        {me.user ? "Sign out" : "Forget key"}
      </button>
    </div>
  );
}

function Nav(): JSX.Element {
  const path = relative(useLocation().pathname) ?? "/";
  const under = match(ROUTES, path)?.route.under;
  const active = (p: string) => (p === "/" ? path === "/" : path === p || path.startsWith(`${p}/`) || under === p);
  const inAdmin = ADMIN_NAV.some((r) => active(r.path));
  return (
    <nav class="menu" aria-label="pages">
      {NAV.map((r) => (
        <Link key={r.path} href={`/console${r.path === "/" ? "/" : r.path}`} aria-current={active(r.path) ? "page" : undefined}>
          {r.title}
        </Link>
      ))}
      <details class="admin-menu" data-open={inAdmin ? "1" : undefined}>
        <summary aria-current={inAdmin ? "page" : undefined}>Admin</summary>
        <div class="dropdown" role="menu">
          {ADMIN_NAV.map((r) => (
            <Link
              key={r.path}
              role="menuitem"
              href={`/console${r.path}`}
              aria-current={active(r.path) ? "page" : undefined}
              onClick={(ev: MouseEvent) => (ev.currentTarget as HTMLElement).closest("details")?.removeAttribute("open")}
            >
              {r.title}
            </Link>
          ))}
        </div>
      </details>
    </nav>
  );
}

export function Header(): JSX.Element {
  return (
    <header class="top">
      <div class="bar">
        <Link class="brand" href="/console/">
          AgentOps
        </Link>
        <Hud />
        <WindowPicker />
        <Who />
      </div>
      <Nav />
    </header>
  );
}
