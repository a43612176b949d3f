import { describe, expect, it } from "vitest";
import { can, cannot, invitableRoles, type Role } from "./roles";

const as = (role: Role) => ({ role });

describe("roles", () => {
  it("mirrors the API's role mapping", () => {
    const table: [Role, boolean[]][] = [
      ["viewer", [true, false, false, false]],
      ["member", [true, true, false, false]],
      ["admin", [true, true, true, false]],
      ["owner", [true, true, true, true]],
    ];
    for (const [role, want] of table) {
      const got = (["read", "acknowledge", "configure", "manage_access"] as const).map((a) => can(as(role), a));
      expect(got, role).toEqual(want);
    }
  });

  it("accepts a least role", () => {
    expect(can(as("admin"), "admin")).toBe(true);
    expect(can(as("member"), "admin")).toBe(false);
    expect(can(as("owner"), "member")).toBe(true);
    expect(can(as("viewer"), "viewer")).toBe(true);
  });

  it("treats a key (no role) as read-only and nobody as nothing", () => {
    expect(can({}, "read")).toBe(true);
    expect(can({}, "acknowledge")).toBe(false);
    expect(can(null, "read")).toBe(false);
  });

  it("says what a role cannot do", () => {
    expect(cannot(as("viewer"), "manage API keys", "manage_access")).toBe("Your role (viewer) cannot manage API keys: owners only.");
    expect(cannot({}, "change budgets", "configure")).toBe("Your role (API key) cannot change budgets: admins and above.");
  });

  it("lets admins invite everyone but owners", () => {
    expect(invitableRoles(as("owner"))).toEqual(["viewer", "member", "admin", "owner"]);
    expect(invitableRoles(as("admin"))).toEqual(["viewer", "member", "admin"]);
    expect(invitableRoles(as("member"))).toEqual([]);
  });
});
