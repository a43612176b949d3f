// Members and invitations. Admins and owners see the members and the
// invitations, and invite (an admin may not invite an owner; the link is
// shown once); owners also change roles and remove members (asks first; the
// API keeps the last owner). Viewers and members are told they cannot.
import type { JSX } from "preact";
import { useState } from "preact/hooks";
import type { Invitation, Member, NewInvitation, Role } from "../api";
import { Cannot, Page, Panel, SecretOnce, When } from "../components/bits";
import { errorText, Loaded, useApi } from "../components/data";
import { ApiForm, Choice, ConfirmButton, Field } from "../components/form";
import { useSession } from "../components/session";
import { Table } from "../components/table";
import { actor } from "../format";
import { text } from "../forms";
import { can, invitableRoles, ROLES } from "../roles";
import type { PageProps } from "../routes";

/** Where an invitee accepts: the token in the fragment (never sent to a server log). */
export function invitationLink(origin: string, token: string): string {
  return `${origin}/console/accept-invitation#token=${encodeURIComponent(token)}`;
}

export function invitationState(i: Invitation, now = Date.now()): "accepted" | "revoked" | "expired" | "pending" {
  if (i.accepted_at) return "accepted";
  if (i.revoked_at) return "revoked";
  if (Date.parse(i.expires_at) <= now) return "expired";
  return "pending";
}

function RoleCell({ m, reload }: { m: Member; reload: () => void }): JSX.Element {
  const { api, me } = useSession();
  const [error, setError] = useState<string | null>(null);
  if (!can(me, "manage_access")) return <span>{m.role}</span>;
  return (
    <span class="row-actions">
      <select
        aria-label={`role of ${m.email}`}
        value={m.role}
        onChange={(e) => {
          const role = (e.currentTarget as HTMLSelectElement).value as Role;
          setError(null);
          api.setRole(m.user_id, role).then(reload, (x: unknown) => {
            setError(errorText(x));
            reload();
          });
        }}
      >
        {ROLES.map((r) => (
          <option key={r} value={r}>
            {r}
          </option>
        ))}
      </select>
      {error ? (
        <span class="error" role="alert">
          {error}
        </span>
      ) : null}
    </span>
  );
}

export function MembersPage(_: PageProps): JSX.Element {
  const { api, me } = useSession();
  const admin = can(me, "configure");
  const owner = can(me, "manage_access");
  const members = useApi(() => api.members(), [api], { skip: !admin });
  const invitations = useApi(() => api.invitations(), [api], { skip: !admin });
  const [created, setCreated] = useState<NewInvitation | null>(null);
  if (!admin) {
    return (
      <Page name="members" title="Members">
        <Cannot what="see members or invite people" need="configure" />
      </Page>
    );
  }
  const roles = invitableRoles(me);
  return (
    <Page name="members" title="Members">
      {owner ? null : <p class="notice">Admins invite people; only owners change roles or remove members.</p>}
      <Panel title="Members">
        <Loaded state={members}>
          {(rows) => (
            <Table<Member>
              label="members"
              rows={rows}
              rowKey={(m) => m.user_id}
              rowProps={(m) => ({ "data-member": m.email })}
              columns={[
                { label: "name", cell: "name" },
                { label: "email", cell: "email" },
                { label: "role", cell: (m) => <RoleCell m={m} reload={members.reload} /> },
                { label: "since", cell: (m) => <When at={m.created_at} /> },
                ...(owner
                  ? [
                      {
                        label: "",
                        cell: (m: Member) =>
                          m.user_id === me.user?.id ? (
                            <span class="hint">you</span>
                          ) : (
                            <ConfirmButton question={`Remove ${m.email}? Their sessions end at once.`} onConfirm={() => api.removeMember(m.user_id).then(members.reload)}>
                              Remove
                            </ConfirmButton>
                          ),
                      },
                    ]
                  : []),
              ]}
            />
          )}
        </Loaded>
      </Panel>
      <Panel title="Invite someone">
        {created ? (
          <SecretOnce
            label={`Invitation for ${created.email} (${created.role})`}
            value={invitationLink(location.origin, created.token)}
            onDone={() => setCreated(null)}
            extra={<p class="hint">Send this link to them; it works until <When at={created.expires_at} />.</p>}
          />
        ) : (
          <ApiForm
            label="invite"
            submit="Create invitation"
            onSubmit={async (fd) => {
              setCreated(await api.invite({ email: text(fd.get("email")) ?? "", role: text(fd.get("role")) ?? "" }));
              invitations.reload();
            }}
          >
            <Field name="email" label="Email">
              <input name="email" type="email" />
            </Field>
            <Field name="role" label="Role">
              <Choice name="role" value="member" options={roles.map((r) => [r, r])} />
            </Field>
          </ApiForm>
        )}
      </Panel>
      <Panel title="Invitations">
        <Loaded state={invitations}>
          {(rows) => (
            <Table<Invitation>
              label="invitations"
              rows={rows}
              rowKey={(i) => i.id}
              rowProps={(i) => ({ "data-invitation": i.email, class: invitationState(i) === "pending" ? "" : "muted" })}
              empty="No invitations."
              columns={[
                { label: "email", cell: "email" },
                { label: "role", cell: "role" },
                { label: "by", cell: (i) => actor(i.invited_by) },
                { label: "created", cell: (i) => <When at={i.created_at} /> },
                { label: "expires", cell: (i) => <When at={i.expires_at} /> },
                { label: "state", cell: (i) => invitationState(i) },
                {
                  label: "",
                  cell: (i) =>
                    invitationState(i) === "pending" ? (
                      <ConfirmButton question={`Revoke the invitation of ${i.email}?`} onConfirm={() => api.revokeInvitation(i.id).then(invitations.reload)}>
                        Revoke
                      </ConfirmButton>
                    ) : null,
                },
              ]}
            />
          )}
        </Loaded>
      </Panel>
    </Page>
  );
}
