import { describe, expect, it } from "vitest";
import { AGENT_SCOPES, ALL_SCOPES } from "./components/config";
import { RULE_KINDS } from "./rulekinds";

// The scope kinds each form offers follow the API's rules
// (governance/src/rule.rs `RuleKind::scopes`, policy.rs: agents' kinds).
describe("scope kinds offered", () => {
  it("spend (budgets, cost rules) may be scoped to the coding-agent hierarchy", () => {
    for (const k of ["project", "machine", "workspace", "session"] as const) {
      expect(ALL_SCOPES).toContain(k);
      expect(RULE_KINDS.cost_per_day.scopes).toContain(k);
      expect(RULE_KINDS.error_rate.scopes).not.toContain(k);
      expect(RULE_KINDS.no_heartbeat.scopes).not.toContain(k);
      expect(AGENT_SCOPES).not.toContain(k);
    }
  });
});
