"""Contract (d): the gateway is down (a closed port). Calls never raise, each
enqueue returns at once, the queue stays at max_queue with the drops counted,
memory stays bounded. Needs no AGENTOPS_IT_* variables."""

from __future__ import annotations

import time
import tracemalloc

import agentops
from tests.support import free_closed_port, wait_until

MAX_QUEUE = 1000
# A generous upper bound per call that catches any wait on the network (the
# connect timeout is 10 s) while tolerating a loaded 2-core CI machine; the
# overhead figures come from bench/bench.py, not from here.
ENQUEUE_BOUND_S = 0.5


def test_d_gateway_down() -> None:
    c = agentops.Client(
        "aok_down",
        "http://127.0.0.1:%d" % free_closed_port(),
        agent_id="py-sdk-down",
        flush_interval_ms=10,
        max_queue=MAX_QUEUE,
        max_batch=100,
        backoff_base_s=0.05,
        backoff_max_s=0.2,
        retry_budget_s=3600,
        max_retries=1_000_000,
    )
    try:
        worst = 0.0

        def emit(n: int) -> None:
            nonlocal worst
            for i in range(n):
                t0 = time.perf_counter()
                eid = c.llm_call("gpt-4o", "openai", input_tokens=i, output_tokens=1, latency_ms=3, attributes={"i": i})
                worst = max(worst, time.perf_counter() - t0)
                assert eid is not None

        with c.run():
            emit(2 * MAX_QUEUE)
            wait_until(lambda: c.stats()["failed_requests"] >= 2, what="the sender to be retrying")
            tracemalloc.start()
            emit(MAX_QUEUE)  # the queue is full: from here on each event replaces the oldest
            base, _ = tracemalloc.get_traced_memory()
            emit(20 * MAX_QUEUE)
            after, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        st = c.stats()
        total = 23 * MAX_QUEUE + 2  # with run_started and run_completed
        assert st["enqueued"] == total
        assert st["sent"] == 0 and st["failed_requests"] >= 2 and st["retries"] >= 2
        # At most max_queue waiting plus one batch in flight; everything else dropped and counted.
        assert MAX_QUEUE <= st["queued"] <= MAX_QUEUE + 100
        assert st["dropped_queue_full"] == total - st["queued"]
        assert st["errors"] == 0
        # 20,000 more events did not grow memory: the queue holds the same number of events.
        assert after - base < 512 * 1024, (base, after)
        assert worst < ENQUEUE_BOUND_S, worst
        assert c.flush(0.2) is False
    finally:
        assert c.shutdown(0.5) is False
    assert c.stats()["queued"] == 0
