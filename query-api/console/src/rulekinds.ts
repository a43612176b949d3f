// What each alert rule kind and policy kind takes, mirroring the API's
// validation (governance/src/rule.rs, policy.rs): the parameter fields a
// kind uses (any other is refused by the API, so the form leaves them out)
// and the scopes it allows. Pure, unit-tested.

import type { PolicyKind, RuleKind, ScopeKind } from "./api";

export type RuleParam = "threshold" | "window_secs" | "min_runs" | "minutes";

export interface RuleKindInfo {
  label: string;
  params: readonly RuleParam[];
  /** What `threshold` means for this kind. */
  threshold?: string;
  scopes: readonly ScopeKind[];
}

const ALL: readonly ScopeKind[] = ["org", "agent", "workflow", "model", "tag", "project", "machine", "workspace", "session"];
const AGG: readonly ScopeKind[] = ["org", "agent", "workflow", "model"];
const RUNS: readonly ScopeKind[] = ["org", "agent", "workflow"];

export const RULE_KINDS: Record<RuleKind, RuleKindInfo> = {
  cost_per_day: { label: "Spend per UTC day", params: ["threshold"], threshold: "USD above", scopes: ALL },
  error_rate: { label: "Error rate", params: ["threshold", "window_secs", "min_runs"], threshold: "ratio of failed runs (0–1]", scopes: AGG },
  latency_p95: { label: "Run latency p95", params: ["threshold", "window_secs", "min_runs"], threshold: "milliseconds above", scopes: AGG },
  no_heartbeat: { label: "No heartbeat", params: ["minutes"], scopes: RUNS },
  stuck_run: { label: "Stuck run", params: ["minutes"], scopes: RUNS },
};

/** The parameters of a rule form for `kind`: those it uses, the rest left
 *  out (absent on create; `null` on update so a stored value is cleared). */
export function ruleParams(kind: RuleKind, values: Record<RuleParam, unknown>, update: boolean): Partial<Record<RuleParam, unknown>> {
  const out: Partial<Record<RuleParam, unknown>> = {};
  const uses = RULE_KINDS[kind].params;
  for (const p of ["threshold", "window_secs", "min_runs", "minutes"] as const) {
    if (uses.includes(p)) {
      if (values[p] !== undefined) out[p] = values[p];
    } else if (update) {
      // min_runs is stored as 1 for kinds without it; the API accepts that.
      out[p] = p === "min_runs" ? 1 : null;
    }
  }
  return out;
}

export interface PolicyKindInfo {
  label: string;
  /** `names` (a list) or `limit_value` (a number). */
  param: "names" | "limit_value";
  hint: string;
}

export const POLICY_KINDS: Record<PolicyKind, PolicyKindInfo> = {
  model_allowlist: { label: "Model allowlist", param: "names", hint: "only these models (a name also matches its dated versions)" },
  model_denylist: { label: "Model denylist", param: "names", hint: "not these models (nor their dated versions)" },
  forbidden_tools: { label: "Forbidden tools", param: "names", hint: "tool names, case-insensitive" },
  max_tokens_per_call: { label: "Max tokens per call", param: "limit_value", hint: "whole tokens above 0" },
  max_cost_per_run: { label: "Max cost per run", param: "limit_value", hint: "USD above 0" },
};
