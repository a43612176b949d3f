#!/usr/bin/env python3
"""AgentOps Python SDK benchmark: prints a table (it asserts nothing).

1. Overhead on the calling thread: p50/p99 of `llm_call(...)` (the SDK's
   enqueue) beside a no-op function taking the same arguments, interleaved in
   the same run, with the gateway up (the real one from AGENTOPS_IT_GATEWAY /
   AGENTOPS_IT_INGEST_KEY when set, else a local sink server in another
   process), and their ratio.
2. Events/s one process emits through the SDK end to end: N events as fast as
   the caller can, then flush(); every event acknowledged (202) by the gateway.
3. Memory with the gateway down (a closed port) for --down-secs (60 s) at
   --rate (1,000) events/s: RSS growth and tracemalloc peak, queue and drops.

    target/py-sdk/bin/python sdks/python/bench/bench.py [--down-secs 10] [--calls 100000]
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import time
import tracemalloc
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

import agentops  # noqa: E402

Row = Tuple[str, str]


# ---- a local sink in another process (no GIL shared with the SDK) --------


def _sink_main(port_out: "multiprocessing.Queue[int]") -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            # No "accepted": the SDK then counts the whole batch as sent.
            body = b'{"rejected":[],"directives":[]}'
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(srv.server_address[1])
    srv.serve_forever()


def start_sink() -> Tuple[str, "multiprocessing.Process"]:
    q: "multiprocessing.Queue[int]" = multiprocessing.Queue()
    p = multiprocessing.Process(target=_sink_main, args=(q,), daemon=True)
    p.start()
    return "http://127.0.0.1:%d" % q.get(timeout=10), p


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def pct(xs: List[int], p: float) -> int:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def mib(n: float) -> str:
    return "%.1f MiB" % (n / 1024 / 1024)


# ---- 1. overhead -----------------------------------------------------------


def noop_llm_call(
    model: Optional[str],
    provider: Optional[str] = None,
    *,
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    cache_read_tokens: Optional[int] = None,
    latency_ms: Optional[float] = None,
    cost_usd: Optional[float] = None,
) -> Optional[str]:
    return None


def overhead(endpoint: str, key: str, calls: int) -> List[Row]:
    c = agentops.Client(key, endpoint, agent_id="bench-" + uuid.uuid4().hex[:8], max_queue=max(10_000, calls))
    sdk: List[int] = []
    base: List[int] = []
    ns = time.perf_counter_ns
    llm = c.llm_call
    with c.run():
        for i in range(2000):  # warm up both paths
            llm("gpt-4o-mini", "openai", input_tokens=i, output_tokens=10, cache_read_tokens=0, latency_ms=12.0)
            noop_llm_call("gpt-4o-mini", "openai", input_tokens=i, output_tokens=10, cache_read_tokens=0, latency_ms=12.0)
        for i in range(calls):
            t0 = ns()
            noop_llm_call("gpt-4o-mini", "openai", input_tokens=i, output_tokens=10, cache_read_tokens=0, latency_ms=12.0)
            t1 = ns()
            llm("gpt-4o-mini", "openai", input_tokens=i, output_tokens=10, cache_read_tokens=0, latency_ms=12.0)
            t2 = ns()
            base.append(t1 - t0)
            sdk.append(t2 - t1)
    ok = c.flush(120)
    st = c.stats()
    c.shutdown(10)
    p50s, p99s, p50b, p99b = pct(sdk, 50), pct(sdk, 99), pct(base, 50), pct(base, 99)
    return [
        ("calls measured (interleaved)", "%d each" % calls),
        ("llm_call p50 / p99", "%d ns / %d ns" % (p50s, p99s)),
        ("no-op, same arguments, p50 / p99", "%d ns / %d ns" % (p50b, p99b)),
        ("ratio p50 / p99", "%.1fx / %.1fx" % (p50s / max(1, p50b), p99s / max(1, p99b))),
        ("SDK cost above the no-op, p50", "%d ns" % (p50s - p50b)),
        ("llm_call mean / max", "%d ns / %.2f ms" % (statistics.fmean(sdk), max(sdk) / 1e6)),
        ("all acknowledged", "%s (sent %d of %d, dropped %d)" % (ok, st["sent"], st["enqueued"], st["dropped_queue_full"])),
    ]


# ---- 2. events/s end to end -------------------------------------------------


def throughput(endpoint: str, key: str, events: int) -> List[Row]:
    c = agentops.Client(
        key, endpoint, agent_id="bench-tp-" + uuid.uuid4().hex[:8], max_queue=events + 10, flush_interval_ms=50
    )
    llm = c.llm_call
    t0 = time.perf_counter()
    for i in range(events):
        llm("gpt-4o-mini", "openai", input_tokens=i % 5000, output_tokens=10, latency_ms=12)
    t1 = time.perf_counter()
    ok = c.flush(600)
    t2 = time.perf_counter()
    st = c.stats()
    c.shutdown(10)
    rows = [
        ("events", "%d" % events),
        ("emit (caller only)", "%.2f s = %.0f events/s" % (t1 - t0, events / (t1 - t0))),
        ("emit + all acknowledged", "%.2f s = %.0f events/s" % (t2 - t0, st["sent"] / (t2 - t0))),
        ("acknowledged / dropped / rejected", "%d / %d / %d (flush %s)" % (
            st["sent"], st["dropped_queue_full"] + st["dropped_retry_budget"], st["rejected"], ok)),
        ("requests retried (429/503)", "%d" % st["retries"]),
    ]
    return rows


# ---- 3. memory with the gateway down ----------------------------------------


def memory_down(down_secs: float, rate: int, max_queue: int) -> List[Row]:
    gc.collect()
    c = agentops.Client(
        "aok_bench_down",
        "http://127.0.0.1:%d" % closed_port(),
        agent_id="bench-down",
        max_queue=max_queue,
        retry_budget_s=3600,
        max_retries=1_000_000,
    )
    c.llm_call("warm-up")  # starts the sender thread before measuring
    rss0 = rss_bytes()
    tracemalloc.start()
    tm0, _ = tracemalloc.get_traced_memory()
    t_start = time.monotonic()
    sent = 0
    samples: List[Tuple[float, int]] = []
    next_sample = t_start
    while True:
        now = time.monotonic()
        elapsed = now - t_start
        if elapsed >= down_secs:
            break
        due = int(elapsed * rate)
        while sent < due:
            c.llm_call("gpt-4o-mini", "openai", input_tokens=sent, output_tokens=10, latency_ms=12,
                       attributes={"seq": sent, "note": "gateway down"})
            sent += 1
        if now >= next_sample:
            samples.append((elapsed, rss_bytes()))
            next_sample += max(1.0, down_secs / 10)
        time.sleep(0.001)
    _, peak = tracemalloc.get_traced_memory()
    cur, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = rss_bytes()
    st = c.stats()
    c.shutdown(0.5)
    curve = ", ".join("%ds %s" % (int(t), mib(r - rss0)) for t, r in samples[1:])
    return [
        ("gateway down for", "%.0f s at %d events/s (%d events)" % (down_secs, rate, sent)),
        ("max_queue", "%d" % max_queue),
        ("RSS growth", "%s (%s -> %s)" % (mib(rss1 - rss0), mib(rss0), mib(rss1))),
        ("RSS growth over time", curve or "-"),
        ("tracemalloc peak / at end (above start)", "%s / %s" % (mib(peak - tm0), mib(cur - tm0))),
        ("queued / dropped_queue_full", "%d / %d" % (st["queued"], st["dropped_queue_full"])),
        ("failed requests / retries", "%d / %d" % (st["failed_requests"], st["retries"])),
    ]


def table(title: str, rows: List[Row]) -> None:
    w = max(len(k) for k, _ in rows)
    print("\n## " + title)
    for k, v in rows:
        print("  %s  %s" % (k.ljust(w), v))
    sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description="AgentOps Python SDK benchmark (prints figures, asserts nothing)")
    ap.add_argument("--calls", type=int, default=100_000, help="calls per side for the overhead (default 100000)")
    ap.add_argument("--events", type=int, default=0, help="events for events/s (default 200000 local, 50000 gateway)")
    ap.add_argument("--down-secs", type=float, default=60.0, help="gateway-down duration (default 60)")
    ap.add_argument("--rate", type=int, default=1000, help="events/s while the gateway is down (default 1000)")
    ap.add_argument("--max-queue", type=int, default=10_000, help="the SDK's max_queue while down (default 10000)")
    ap.add_argument("--local", action="store_true", help="use the local sink even when AGENTOPS_IT_* are set")
    ap.add_argument("--skip", default="", help="comma list of overhead,throughput,memory to skip")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    gw, key = os.environ.get("AGENTOPS_IT_GATEWAY"), os.environ.get("AGENTOPS_IT_INGEST_KEY")
    sink_proc: Optional["multiprocessing.Process"] = None
    if gw and key and not args.local:
        endpoint, target = gw.rstrip("/"), "real gateway " + gw
        events = args.events or 50_000
    else:
        endpoint, sink_proc = start_sink()
        key, target = "aok_bench", "local sink process " + endpoint
        events = args.events or 200_000
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    table(
        "setup",
        [
            ("python", "%s %s" % (platform.python_implementation(), platform.python_version())),
            ("machine", "%s, %d cores, load average %.2f" % (platform.machine(), os.cpu_count() or 0, load[0])),
            ("gateway", target),
        ],
    )
    try:
        if "overhead" not in skip:
            table("overhead on the calling thread (llm_call vs a no-op)", overhead(endpoint, key, args.calls))
        if "throughput" not in skip:
            table("events/s through the SDK, end to end", throughput(endpoint, key, events))
        if "memory" not in skip:
            table("memory with the gateway down", memory_down(args.down_secs, args.rate, args.max_queue))
    finally:
        if sink_proc is not None:
            sink_proc.terminate()


if __name__ == "__main__":
    main()
