// A timeline of steps as a waterfall (each bar placed and sized by CSS from
// the step's time and latency within the span), tokens and cost per step,
// failing steps highlighted, subagent work (a coding-agent session's
// sidechain) marked. Used by the run page and the session page.
import type { JSX } from "preact";
import type { TimelineEvent } from "../api";
import { ms, usd } from "../format";
import { bars, isErrorStep, stepTokens } from "../timeline";
import { When } from "./bits";

const KIND: Record<string, string> = {
  run_started: "start",
  run_completed: "end",
  run_failed: "failed",
  llm_call: "LLM",
  tool_call: "tool",
  heartbeat: "heartbeat",
};

function stepName(e: TimelineEvent): string {
  if (e.type === "llm_call") return [e.provider, e.model].filter(Boolean).join(" / ") || "LLM call";
  if (e.type === "tool_call") return e.tool_name ?? "tool call";
  if (e.type === "run_failed") return e.error_message ?? e.error_type ?? "run failed";
  return e.type.replace(/_/g, " ");
}

export interface TimelineProps {
  events: readonly TimelineEvent[];
  startedAt: string | null;
  endedAt: string | null;
  latencyMs: number | null;
  /** Number the rows from here (a later page). */
  first?: number;
}

export function Timeline({ events, startedAt, endedAt, latencyMs, first = 1 }: TimelineProps): JSX.Element {
  const placed = bars(events, startedAt, endedAt, latencyMs);
  return (
    <div class="table-wrap">
      <table class="timeline" aria-label="timeline">
        <thead>
          <tr>
            <th>#</th>
            <th>time</th>
            <th>step</th>
            <th class="waterfall-head">latency</th>
            <th class="num">tokens</th>
            <th class="num">cost</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e, i) => {
            const b = placed[i];
            const err = isErrorStep(e);
            const cls = [err ? "step-error" : "", e.sidechain ? "sidechain" : ""].filter(Boolean).join(" ");
            const more: Record<string, string> = e.sidechain ? { "data-sidechain": "true" } : {};
            return (
              <tr key={e.event_id} data-step={e.type} data-event-id={e.event_id} class={cls} {...more}>
                <td class="num">{i + first}</td>
                <td class="nowrap">
                  <When at={e.timestamp} />
                </td>
                <td>
                  {e.sidechain ? (
                    <span class="pill subagent" title="Subagent work, rolled into this session">
                      subagent
                    </span>
                  ) : null}
                  <span class={`pill step-${e.type}`}>{KIND[e.type] ?? e.type}</span> {stepName(e)}
                  {err && e.type !== "run_failed" && (e.error_message ?? e.error_type) ? <div class="error">{e.error_message ?? e.error_type}</div> : null}
                </td>
                <td class="waterfall">
                  {b ? (
                    <div class="lane" title={`${ms(e.latency_ms)} at +${ms(b.offsetMs)}`}>
                      <div class={`latency-bar${err ? " err" : ""}`} data-latency={e.latency_ms ?? ""} style={{ left: `${b.left.toFixed(2)}%`, width: `${b.width.toFixed(2)}%` }} />
                      <span class="lat">{e.latency_ms === null ? "" : ms(e.latency_ms)}</span>
                    </div>
                  ) : null}
                </td>
                <td class="num">{stepTokens(e)}</td>
                <td class="num">{e.cost_usd === null ? (e.type === "llm_call" ? "—" : "") : usd(e.cost_usd)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
