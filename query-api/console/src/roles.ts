// What the signed-in caller may do, mirroring the query API's mapping of
// roles onto access (query-api/src/state.rs `role_allows`): every role
// reads, members also acknowledge alerts, admins configure (budgets, rules,
// channels, policies, prices, invitations, agents), owners also manage
// members and API keys. Pure, unit-tested. The API decides in the end:
// hiding a button is a courtesy, never the check.

import type { Me } from "./api";

export const ROLES = ["viewer", "member", "admin", "owner"] as const;
export type Role = (typeof ROLES)[number];

/** What a page may want to do. */
export type Action = "read" | "acknowledge" | "configure" | "manage_access";

/** The least role allowed each action. */
export const LEAST: Record<Action, Role> = {
  read: "viewer",
  acknowledge: "member",
  configure: "admin",
  manage_access: "owner",
};

const rank = (r: Role): number => ROLES.indexOf(r);

/** Whether `me` may do `need`: an action, or a role to have at least
 *  (`can(me, "admin")`). A caller signed in with an API key has no role:
 *  the console treats it as read-only (a key's scopes are not known here). */
export function can(me: Pick<Me, "role"> | null | undefined, need: Action | Role): boolean {
  if (!me) return false;
  const least: Role = (ROLES as readonly string[]).includes(need) ? (need as Role) : LEAST[need as Action];
  if (least === "viewer") return true;
  return me.role !== undefined && rank(me.role) >= rank(least);
}

/** The caller's role as shown in messages ("viewer", or "API key"). */
export function roleName(me: Pick<Me, "role"> | null | undefined): string {
  return me?.role ?? "API key";
}

/** The sentence shown instead of a list or an action the role cannot use:
 *  "Your role (viewer) cannot manage API keys: owners only." */
export function cannot(me: Pick<Me, "role"> | null | undefined, what: string, need: Action | Role): string {
  const least: Role = (ROLES as readonly string[]).includes(need) ? (need as Role) : LEAST[need as Action];
  const who = least === "owner" ? "owners only" : `${least}s and above`;
  return `Your role (${roleName(me)}) cannot ${what}: ${who}.`;
}

/** Roles `me` may hand out in an invitation (an admin may not invite an owner). */
export function invitableRoles(me: Pick<Me, "role"> | null | undefined): Role[] {
  if (!can(me, "configure")) return [];
  return can(me, "owner") ? [...ROLES] : ROLES.filter((r) => r !== "owner");
}
