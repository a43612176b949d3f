// A run's waterfall: where each step's latency bar sits (percent of the
// run's span, left and width) — CSS widths from the data, no drawing. Pure.
import type { TimelineEvent } from "./api";
import { count } from "./format";

export interface Bar {
  /** Percent of the span from the run's start to the bar's start. */
  left: number;
  /** Percent of the span (at least a sliver, so a bar is visible). */
  width: number;
  /** Milliseconds from the run's start to the step's start. */
  offsetMs: number;
}

/** A step's bar, or null for a step without a latency. A step's event
 *  time is taken as its end (an SDK reports a call when it returns), so the
 *  bar starts `latency` before it; run ends span the whole run. */
export function bars(events: readonly Pick<TimelineEvent, "timestamp" | "latency_ms" | "type">[], startedAt: string | null, endedAt: string | null, runLatency: number | null): (Bar | null)[] {
  const times = events.map((e) => Date.parse(e.timestamp)).filter(Number.isFinite);
  const start = startedAt ? Date.parse(startedAt) : Math.min(...times);
  let end = endedAt ? Date.parse(endedAt) : Math.max(...times);
  // The span covers every bar (latencies may reach before the first event).
  let lo = start;
  for (const e of events) {
    const t = Date.parse(e.timestamp);
    if (e.latency_ms !== null && Number.isFinite(t) && !e.type.startsWith("run_")) lo = Math.min(lo, t - e.latency_ms);
    if (Number.isFinite(t)) end = Math.max(end, t);
  }
  if (runLatency !== null && Number.isFinite(lo)) end = Math.max(end, lo + runLatency);
  const span = Math.max(1, end - lo);
  return events.map((e) => {
    if (e.latency_ms === null || e.latency_ms === undefined) return null;
    const t = Date.parse(e.timestamp);
    const whole = e.type === "run_completed" || e.type === "run_failed";
    const from = whole ? lo : Math.max(lo, t - e.latency_ms);
    const left = ((from - lo) / span) * 100;
    const width = Math.max(0.5, Math.min(100 - left, (e.latency_ms / span) * 100));
    return { left: Math.max(0, Math.min(99.5, left)), width, offsetMs: from - lo };
  });
}

/** Whether a step failed (its type, status or error). */
export function isErrorStep(e: Pick<TimelineEvent, "type"> & { status?: string | null; error_type?: string | null; error_message?: string | null }): boolean {
  return e.type === "run_failed" || e.status === "error" || e.status === "failed" || Boolean(e.error_type) || Boolean(e.error_message);
}

/** A step's tokens: "1,000 in / 200 out", then the cache and reasoning
 *  tokens it has; "—" for an LLM call without counts, "" for other steps. */
export function stepTokens(e: Pick<TimelineEvent, "type" | "input_tokens" | "output_tokens" | "cache_read_tokens" | "cache_write_tokens" | "reasoning_tokens">): string {
  const i = e.input_tokens ?? null;
  const o = e.output_tokens ?? null;
  if (i === null && o === null) return e.type === "llm_call" ? "—" : "";
  const extra: string[] = [];
  const cache = (e.cache_read_tokens ?? 0) + (e.cache_write_tokens ?? 0);
  if (cache > 0) extra.push(`${count(cache)} cache`);
  if ((e.reasoning_tokens ?? 0) > 0) extra.push(`${count(e.reasoning_tokens ?? 0)} reasoning`);
  return [`${count(i ?? 0)} in`, `${count(o ?? 0)} out`, ...extra].join(" / ");
}
