// Sign-in: email and password for a session cookie, or (folded away) a read
// key kept for this tab only.
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { Api, type Me } from "../api";

export const KEY_STORAGE = "agentops.console.key";

export function SignIn({ message, onSignedIn, onKey }: { message: string; onSignedIn: (api: Api, me: Me) => void; onKey: (key: string) => void }): JSX.Element {
  const [error, setError] = useState(message);
  const [busy, setBusy] = useState(false);
  return (
    <main id="main" class="sign-in">
      <form
        class="key"
        aria-label="sign in"
        onSubmit={(ev) => {
          ev.preventDefault();
          const fd = new FormData(ev.currentTarget);
          const api = new Api(null);
          setBusy(true);
          api.login(String(fd.get("email") ?? "").trim(), String(fd.get("password") ?? "")).then(
            (me) => onSignedIn(api, me),
            (e: unknown) => {
              setBusy(false);
              setError(e instanceof Error ? e.message : String(e));
            },
          );
        }}
      >
        <h1>Sign in</h1>
        <label>
          Email <input type="email" name="email" autocomplete="username" required />
        </label>
        <label>
          Password <input type="password" name="password" autocomplete="current-password" required />
        </label>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <div class="error" role="alert">
          {error}
        </div>
      </form>
      <details>
        <summary>Use a read key instead</summary>
        <form
          class="key"
          aria-label="read key"
          onSubmit={(ev) => {
            ev.preventDefault();
            onKey(String(new FormData(ev.currentTarget).get("key") ?? "").trim());
          }}
        >
          <label>
            Or a read key of your org <input type="password" name="key" placeholder="aok_… (read key)" />
          </label>
          <button type="submit">Open</button>
        </form>
      </details>
    </main>
  );
}
