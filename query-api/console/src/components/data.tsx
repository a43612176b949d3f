// Loading data from the API: `useApi` runs a call when its inputs change
// (and optionally every `refreshMs`, not while the tab is hidden), keeping
// the last answer on screen while it reloads; `<Loaded>` shows the loading
// and error states the same way on every page.
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api";

export interface ApiState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** `data` answers earlier inputs: they changed and the new answer is not
   *  in yet (it stays on screen meanwhile). A marker saying what is shown
   *  (`data-loaded`) must wait for the new answer. */
  stale: boolean;
  /** Run the call again now (after a change the page made). */
  reload: () => void;
}

export interface ApiOptions {
  /** Reload every so many milliseconds while the tab is visible. */
  refreshMs?: number;
  /** Skip the call (e.g. a role that may not make it): data stays undefined. */
  skip?: boolean;
}

/** Whether two dependency lists differ (element by element, `Object.is`). */
export function depsChanged(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length !== b.length || a.some((v, i) => !Object.is(v, b[i]));
}

/** `call` now and whenever `deps` change. Answers of an outdated call
 *  (deps changed meanwhile) are dropped. */
export function useApi<T>(call: () => Promise<T>, deps: readonly unknown[], opts: ApiOptions = {}): ApiState<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean; gen: number }>({
    data: undefined,
    error: null,
    loading: !opts.skip,
    gen: 0,
  });
  // Which inputs the answers are for: counted during the render that sees
  // new deps (the effect that fetches runs only after that render paints).
  const gen = useRef({ deps, n: 0 });
  if (depsChanged(gen.current.deps, deps)) gen.current = { deps, n: gen.current.n + 1 };
  const seq = useRef(0);
  const callRef = useRef(call);
  callRef.current = call;
  const run = useCallback(() => {
    const n = ++seq.current;
    const g = gen.current.n;
    setState((s) => ({ ...s, loading: true }));
    callRef.current().then(
      (data) => n === seq.current && setState({ data, error: null, loading: false, gen: g }),
      (error: unknown) => n === seq.current && setState((s) => ({ ...s, error, loading: false })),
    );
  }, []);
  useEffect(() => {
    if (opts.skip) {
      seq.current++;
      setState({ data: undefined, error: null, loading: false, gen: gen.current.n });
      return;
    }
    run();
    if (!opts.refreshMs) return;
    const t = setInterval(() => {
      if (!document.hidden) run();
    }, opts.refreshMs);
    return () => clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, opts.skip, opts.refreshMs]);
  const { gen: answered, ...shown } = state;
  return { ...shown, stale: shown.data !== undefined && answered !== gen.current.n, reload: run };
}

/** A short text for an error on a page. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 403) return `Not allowed: ${e.message}`;
    if (e.status === 404) return "Not found (or not in this org).";
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

export function ErrorNote({ error }: { error: unknown }): JSX.Element {
  return (
    <p class="error" role="alert">
      {errorText(error)}
    </p>
  );
}

/** The loading and error states of `state`, else `children(data)`. An
 *  error after a first answer keeps that answer and shows the error above it. */
export function Loaded<T>({ state, children }: { state: ApiState<T>; children: (data: T) => ComponentChildren }): JSX.Element {
  if (state.data === undefined) {
    if (state.error) return <ErrorNote error={state.error} />;
    return (
      <p class="loading" aria-busy="true">
        Loading…
      </p>
    );
  }
  return (
    <>
      {state.error ? <ErrorNote error={state.error} /> : null}
      {children(state.data)}
    </>
  );
}
