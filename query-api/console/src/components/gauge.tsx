// A budget's gauge: its percent colored by the thresholds (green < 80,
// amber 80–99.9, red ≥ 100; unknown spend "—", never 0). `data-budget`
// names it, `data-level` holds the color (tests compare both with the API).
import type { JSX } from "preact";
import type { BudgetStatus } from "../api";
import { budgetLevel, usd } from "../format";

export function Gauge({ b }: { b: BudgetStatus }): JSX.Element {
  const level = budgetLevel(b.percent);
  const width = `${Math.min(100, Math.max(0, b.percent ?? 0)).toFixed(1)}%`;
  return (
    <div class={`card gauge ${level}`} data-level={level} data-budget={b.name}>
      <div class="label">
        {b.name} ({b.scope_key}, {b.period})
      </div>
      <div class="value">{b.percent === null ? "—" : `${b.percent.toFixed(1)}%`}</div>
      <div class="label">
        {usd(b.spend_usd)} of {usd(b.limit_usd)}
      </div>
      <div class="bar">
        <div class="fill" style={{ width }} />
      </div>
    </div>
  );
}
