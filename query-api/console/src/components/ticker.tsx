// The live ticker pane: `GET /v1/live` over a WebSocket (same origin; the
// session cookie, or a key as the `agentops.key.<key>` subprotocol), rows
// added as frames arrive (at most 200, oldest dropped, `lost` notices
// shown), auto-scrolled to the newest unless the reader scrolled up. When
// the socket cannot open or drops, it polls the recent failures and runs
// every 5 s and reconnects with backoff; `data-ticker-mode` says which
// ("live" | "polling" | "connecting"). Rows are drawn in batches: once per
// animation frame, in TV mode at most once a second.
import type { JSX } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Api } from "../api";
import { usd } from "../format";
import { backoff, liveUrl, parseFrame, rowOf, rowOfRun, Throttle, TickerBuffer, type TickerRow } from "../ticker";
import { Link } from "./router";
import { useSession } from "./session";

type Mode = "connecting" | "live" | "polling";

const POLL_MS = 5000;

/** Rows of one poll: recent failures and the newest runs, oldest first. */
async function poll(api: Api): Promise<TickerRow[]> {
  const [runs, failures] = await Promise.all([
    api.runs("sort=started_at&order=desc&window=24h&limit=50").then((p) => p.runs),
    api.failures(20),
  ]);
  const rows: TickerRow[] = runs.map(rowOfRun);
  const seen = new Set(rows.map((r) => r.key));
  for (const f of failures) {
    const key = `run.failed:${f.run_id ?? f.event_id}`;
    if (seen.has(key)) continue;
    rows.push({ key, type: "run.failed", ts: f.timestamp, agent_id: f.agent_id, run_id: f.run_id, text: f.error_message ?? f.error_type ?? f.type, cost_usd: null });
  }
  return TickerBuffer.byTime(rows);
}

const LABEL: Record<string, string> = {
  "run.started": "started",
  "run.completed": "completed",
  "run.failed": "failed",
  "budget.crossed": "budget",
  "alert.fired": "alert",
  "alert.resolved": "resolved",
  "agent.paused": "paused",
  "agent.killed": "killed",
  "agent.resumed": "resumed",
  lost: "lost",
};

function tone(type: string): string {
  if (type === "run.failed" || type === "alert.fired" || type === "agent.killed" || type === "lost") return "over";
  if (type === "budget.crossed" || type === "agent.paused") return "warn";
  if (type === "run.completed" || type === "alert.resolved" || type === "agent.resumed") return "ok";
  return "";
}

/** The time of day (the date in its title). */
function Clock({ at }: { at: string }): JSX.Element {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return <time>{at}</time>;
  return (
    <time dateTime={at} title={d.toLocaleString()}>
      {d.toLocaleTimeString()}
    </time>
  );
}

function Row({ r }: { r: TickerRow }): JSX.Element {
  if (r.type === "lost") {
    return (
      <li class="tick lost" data-ticker-row data-ticker-lost={String(r.lost ?? 0)}>
        <Clock at={r.ts} /> <strong>{r.text}</strong>
      </li>
    );
  }
  const body = (
    <>
      <span class={`pill ${tone(r.type)}`}>{LABEL[r.type] ?? r.type}</span>
      <span class="tick-agent">{r.agent_id ?? ""}</span>
      <span class="tick-text">{r.run_id ?? ""}{r.text ? ` — ${r.text}` : ""}</span>
      <span class="tick-cost">{r.cost_usd === null ? "" : usd(r.cost_usd)}</span>
    </>
  );
  return (
    <li class={`tick ${tone(r.type)}`} data-ticker-row data-type={r.type} data-run-id={r.run_id ?? undefined}>
      <Clock at={r.ts} />
      {r.run_id ? (
        <Link class="tick-link" href={`/console/runs/${encodeURIComponent(r.run_id)}`}>
          {body}
        </Link>
      ) : (
        <span class="tick-link">{body}</span>
      )}
    </li>
  );
}

export function Ticker(): JSX.Element {
  const { api, tv } = useSession();
  const [mode, setMode] = useState<Mode>("connecting");
  const [buf, setBuf] = useState(() => TickerBuffer.empty());
  const list = useRef<HTMLOListElement>(null);
  const stick = useRef(true);

  useEffect(() => {
    let closed = false;
    let pending: TickerRow[] = [];
    let seq = 0;
    let socket: WebSocket | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let pollTimer: ReturnType<typeof setInterval> | undefined;
    let attempts = 0;
    const throttle = new Throttle(
      tv ? 1000 : 0,
      () => {
        const rows = pending;
        pending = [];
        if (!closed && rows.length) setBuf((b) => b.add(rows));
      },
      () => performance.now(),
      (fn, ms) => setTimeout(() => requestAnimationFrame(fn), ms),
    );
    const add = (rows: TickerRow[]) => {
      pending.push(...rows);
      throttle.push();
    };
    const pollOnce = () => {
      if (!document.hidden) void poll(api).then((rows) => !closed && add(rows), () => undefined);
    };
    const startPolling = () => {
      setMode("polling");
      if (pollTimer === undefined) {
        pollOnce();
        pollTimer = setInterval(pollOnce, POLL_MS);
      }
    };
    const stopPolling = () => {
      if (pollTimer !== undefined) clearInterval(pollTimer);
      pollTimer = undefined;
    };
    const connect = () => {
      if (closed) return;
      const protocols = ["agentops.v1"];
      if (api.key) protocols.push(`agentops.key.${api.key}`);
      let opened = false;
      let ws: WebSocket;
      try {
        ws = new WebSocket(liveUrl(location), protocols);
      } catch {
        startPolling();
        retry = setTimeout(connect, backoff(attempts++, Math.random()));
        return;
      }
      socket = ws;
      ws.onopen = () => {
        opened = true;
        attempts = 0;
        stopPolling();
        setMode("live");
        // What happened while the socket was down (or before it opened).
        void poll(api).then((rows) => !closed && add(rows), () => undefined);
      };
      ws.onmessage = (ev: MessageEvent) => {
        const f = typeof ev.data === "string" ? parseFrame(ev.data) : null;
        if (f) add([rowOf(f, seq++)]);
      };
      ws.onclose = (ev: CloseEvent) => {
        if (closed) return;
        socket = null;
        startPolling();
        // Refused for good (signed out, no role): poll only.
        if (ev.code === 4401 || ev.code === 4403) return;
        retry = setTimeout(connect, backoff(opened ? 0 : attempts++, Math.random()));
      };
    };
    connect();
    return () => {
      closed = true;
      clearTimeout(retry);
      stopPolling();
      socket?.close(1000);
    };
  }, [api, tv]);

  // Auto-scroll to the newest row unless the reader scrolled up.
  useEffect(() => {
    const el = list.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [buf]);

  return (
    <section class="panel ticker" id="ticker" aria-label="live ticker" data-ticker-mode={mode} data-ticker-rows={String(buf.rows.length)}>
      <div class="panel-head">
        <h2>Live</h2>
        <span class={`pill mode-${mode}`} title={mode === "polling" ? "The live socket is not open: polling every 5 s" : ""}>
          {mode === "live" ? "● live" : mode === "polling" ? "polling" : "connecting…"}
        </span>
      </div>
      <ol
        ref={list}
        class="ticks"
        aria-live="polite"
        onScroll={(ev) => {
          const el = ev.currentTarget as HTMLOListElement;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {buf.rows.length === 0 ? <li class="empty">Nothing yet: runs, alerts and pauses appear here as they happen.</li> : null}
        {buf.rows.map((r) => (
          <Row key={r.key} r={r} />
        ))}
      </ol>
    </section>
  );
}
