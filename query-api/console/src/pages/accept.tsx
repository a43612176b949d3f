// Accepting an invitation (public: the invitee is not signed in yet). The
// link carries the token in the fragment; a new user picks a name and a
// password, someone with an account gives their password.
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { Api } from "../api";
import { Page } from "../components/bits";
import { ApiForm, Field } from "../components/form";
import { text } from "../forms";
import type { PageProps } from "../routes";

export function AcceptInvitation(_: PageProps): JSX.Element {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
  const [done, setDone] = useState<string | null>(null);
  return (
    <Page name="accept-invitation" title="Accept invitation">
      {done ? (
        <p class="notice" role="status">
          {done} <a href="/console/">Sign in</a>.
        </p>
      ) : (
        <ApiForm
          label="accept invitation"
          submit="Join"
          onSubmit={async (fd) => {
            const r = await new Api(null).acceptInvitation({ token: text(fd.get("token")) ?? "", name: text(fd.get("name")) ?? "", password: String(fd.get("password") ?? "") });
            setDone(`You joined ${r.org_id} as ${r.role} (${r.email}).`);
          }}
        >
          <Field name="token" label="Invitation token">
            <input name="token" defaultValue={token} required />
          </Field>
          <Field name="name" label="Your name" hint="Not needed if you already have an account.">
            <input name="name" autocomplete="name" />
          </Field>
          <Field name="password" label="Password" hint="At least 12 characters; your current one if you already have an account.">
            <input name="password" type="password" autocomplete="new-password" required />
          </Field>
        </ApiForm>
      )}
    </Page>
  );
}
