// The console: who is signed in (the session cookie, or a key kept for this
// tab), then the header and the page the URL names.
import type { JSX } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { Api, ApiError, type Me } from "./api";
import { Page } from "./components/bits";
import { Header } from "./components/header";
import { useLocation } from "./components/router";
import { SessionContext, type Session } from "./components/session";
import { KEY_STORAGE, SignIn } from "./components/signin";
import { match, relative } from "./router";
import { ROUTES } from "./routes";

type Phase = { kind: "checking" } | { kind: "signin"; message: string } | { kind: "in"; api: Api; me: Me } | { kind: "failed"; message: string };

/** Ask the API who the caller is: the tab's key, else the cookie. */
async function whoAmI(): Promise<Phase> {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const api = new Api(key);
  try {
    return { kind: "in", api, me: await api.me() };
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      // Not signed in: ask. A refused key is said so.
      if (key === null && e.status === 401) return { kind: "signin", message: "" };
      sessionStorage.removeItem(KEY_STORAGE);
      return { kind: "signin", message: `Refused: ${e.message}` };
    }
    return { kind: "failed", message: e instanceof Error ? e.message : String(e) };
  }
}

function NotFound(): JSX.Element {
  return (
    <Page name="not-found" title="Not found">
      <p>
        No such page. <a href="/console/">Back to the overview</a>.
      </p>
    </Page>
  );
}

export function App(): JSX.Element {
  const loc = useLocation();
  const [phase, setPhase] = useState<Phase>({ kind: "checking" });
  const tv = new URLSearchParams(loc.search).get("tv") === "1";
  const rel = relative(loc.pathname) ?? "/";
  const found = match(ROUTES, rel);
  const isPublic = found?.route.public === true;

  useEffect(() => {
    document.body.classList.toggle("tv", tv);
  }, [tv]);

  useEffect(() => {
    if (phase.kind === "checking" && !isPublic) void whoAmI().then(setPhase);
  }, [phase.kind, isPublic]);

  const session = useMemo<Session | null>(() => {
    if (phase.kind !== "in") return null;
    const { api, me } = phase;
    api.onUnauthorized = (e) => {
      sessionStorage.removeItem(KEY_STORAGE);
      setPhase({ kind: "signin", message: `Signed out: ${e.message}` });
    };
    return {
      api,
      me,
      tv,
      signOut: () => {
        const done = me.user ? api.logout() : Promise.resolve(sessionStorage.removeItem(KEY_STORAGE));
        void done.catch(() => undefined).finally(() => setPhase({ kind: "signin", message: "" }));
      },
    };
  }, [phase, tv]);

  if (found && isPublic) {
    const P = found.route.page;
    return (
      <main id="main">
        <P params={found.params} />
      </main>
    );
  }
  if (phase.kind === "checking") return <main id="main" aria-busy="true" />;
  if (phase.kind === "failed") {
    return (
      <main id="main">
        <p class="error" role="alert">
          {phase.message}
        </p>
        <button type="button" onClick={() => setPhase({ kind: "checking" })}>
          Retry
        </button>
      </main>
    );
  }
  if (phase.kind === "signin" || !session) {
    return (
      <SignIn
        message={phase.kind === "signin" ? phase.message : ""}
        onSignedIn={(api, me) => setPhase({ kind: "in", api, me })}
        onKey={(key) => {
          sessionStorage.setItem(KEY_STORAGE, key);
          setPhase({ kind: "checking" });
        }}
      />
    );
  }
  const P = found?.route.page;
  return (
    <SessionContext.Provider value={session}>
      <Header />
      <main id="main">{P ? <P key={`${found.route.path}:${JSON.stringify(found.params)}`} params={found.params} /> : <NotFound />}</main>
    </SessionContext.Provider>
  );
}
