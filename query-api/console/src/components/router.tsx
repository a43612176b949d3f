// The router's hooks and links over the History API (pure matching is in
// ../router.ts). `navigate` pushes a console URL and every `useLocation`
// re-renders; `<Link>` does so on a plain left click and keeps the sticky
// query parameters (the time window).
import type { ComponentChildren, JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { withSticky } from "../router";

const EVENT = "agentops:navigate";

export interface Location {
  pathname: string;
  search: string;
}

function current(): Location {
  return { pathname: location.pathname, search: location.search };
}

/** Go to `to` (a URL under /console/); `replace` keeps the history entry. */
export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new Event(EVENT));
  if (!replace) window.scrollTo(0, 0);
}

/** Set (or with null, remove) query parameters of the current page. */
export function setQuery(changes: Record<string, string | null>, replace = false): void {
  const u = new URL(location.href);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) u.searchParams.delete(k);
    else u.searchParams.set(k, v);
  }
  navigate(`${u.pathname}${u.search}`, replace);
}

/** The current location, re-rendering on every navigation. */
export function useLocation(): Location {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const on = () => setLoc(current());
    window.addEventListener("popstate", on);
    window.addEventListener(EVENT, on);
    return () => {
      window.removeEventListener("popstate", on);
      window.removeEventListener(EVENT, on);
    };
  }, []);
  return loc;
}

/** One query parameter of the current location. */
export function useQuery(name: string): string | null {
  return new URLSearchParams(useLocation().search).get(name);
}

export interface LinkProps {
  href: string;
  children?: ComponentChildren;
  class?: string;
  role?: "menuitem" | "tab";
  title?: string;
  "aria-current"?: "page" | undefined;
  onClick?: (ev: MouseEvent) => void;
  [data: `data-${string}`]: string | undefined;
}

/** An in-console link: a real `href` (opens in a new tab, works when
 *  copied), navigated client-side on a plain click. */
export function Link({ href, children, onClick, ...rest }: LinkProps): JSX.Element {
  const to = withSticky(href, typeof location === "undefined" ? "" : location.search);
  return (
    <a
      {...rest}
      href={to}
      onClick={(ev) => {
        onClick?.(ev);
        if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
        ev.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}
