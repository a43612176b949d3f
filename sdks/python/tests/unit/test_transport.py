"""Batching, gzip, retries, non-retried answers, the bounded queue, flush and
shutdown, against a real local HTTP server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Dict, List

import pytest

import agentops
from agentops._transport import Transport, TransportConfig, parse_retry_after
from agentops._util import LogOnce, Stats
from tests.support import Answer, Request, Sink, accepted, free_closed_port, wait_until
from tests.unit.conftest import MakeClient

RFC3339_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_batches_of_max_batch_gzip_and_headers(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot", max_batch=10, flush_interval_ms=60_000)
    for i in range(25):
        c.tool_call("t%d" % i)
    # Two full batches go at once; the rest waits for the interval or a flush.
    reqs = sink.wait_requests(2)
    assert [len(r.events) for r in reqs[:2]] == [10, 10]
    assert c.flush(10)
    reqs = sink.requests
    assert [len(r.events) for r in reqs] == [10, 10, 5]
    for r in reqs:
        assert r.path == "/v1/events"
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["authorization"] == "Bearer aok_test"
        assert r.headers["content-type"] == "application/json"
        assert r.raw[:2] == b"\x1f\x8b" and len(r.raw) < len(r.body)
        assert isinstance(r.json, dict) and set(r.json) == {"events"}
    names = [e["tool_name"] for e in sink.events()]
    assert names == ["t%d" % i for i in range(25)]
    st = c.stats()
    assert (st["enqueued"], st["sent"], st["queued"], st["failed_requests"]) == (25, 25, 0, 0)


def test_event_shape(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    eid = c.llm_call("gpt-4o", "openai", input_tokens=3, latency_ms=1.4, cost_usd=0.5, trace_id="t", span_id="s")
    assert c.flush(10)
    (e,) = sink.events()
    assert e["event_id"] == eid and uuid.UUID(eid).version == 4
    assert RFC3339_US.match(e["timestamp"]), e["timestamp"]
    assert e == {
        "event_id": eid,
        "type": "llm_call",
        "agent_id": "bot",
        "timestamp": e["timestamp"],
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 3,
        "latency_ms": 1,
        "cost_usd": 0.5,
        "status": "ok",
        "trace_id": "t",
        "span_id": "s",
    }


def test_uncompressed_when_asked(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot", compress=False)
    c.tool_call("x")
    assert c.flush(10)
    r = sink.requests[0]
    assert "content-encoding" not in r.headers and r.raw == r.body


def test_503_with_retry_after_then_202_resends_identical_batch() -> None:
    def answer(req: Request, i: int) -> Answer:
        if i == 0:
            return 503, {"Retry-After": "1"}, b'{"error":{"code":"unavailable"}}'
        return accepted(req)

    sink = Sink(answer)
    try:
        c = agentops.Client("aok_test", sink.url, agent_id="bot", flush_interval_ms=20, backoff_base_s=0.001)
        ids = [c.tool_call("t%d" % i) for i in range(5)]
        assert c.flush(15)
        first, second = sink.requests
        assert first.body == second.body  # same events, same ids, same timestamps
        assert [e["event_id"] for e in second.events] == ids
        # Retry-After is honored: the retry waited at least its second.
        assert second.at - first.at >= 1.0
        st = c.stats()
        assert (st["sent"], st["retries"], st["failed_requests"], st["dropped_retry_budget"]) == (5, 1, 1, 0)
        c.shutdown(1)
    finally:
        sink.close()


@pytest.mark.parametrize("status", [429, 408, 502])
def test_other_retryable_statuses(status: int) -> None:
    sink = Sink(lambda req, i: (status, {}, b"{}") if i < 2 else accepted(req))
    try:
        c = agentops.Client("aok_test", sink.url, agent_id="bot", flush_interval_ms=20, backoff_base_s=0.001)
        c.tool_call("x")
        assert c.flush(15)
        assert len(sink.requests) == 3
        assert c.stats()["retries"] == 2 and c.stats()["sent"] == 1
        c.shutdown(1)
    finally:
        sink.close()


@pytest.mark.parametrize(
    "status,code",
    [(400, "all_events_rejected"), (400, "invalid_json"), (401, "invalid_api_key"), (403, "forbidden"), (415, "unsupported_encoding")],
)
def test_client_errors_are_not_retried(status: int, code: str) -> None:
    body = json.dumps({"error": {"code": code, "message": "no"}}).encode()
    sink = Sink(lambda req, i: (status, {}, body))
    try:
        c = agentops.Client("aok_test", sink.url, agent_id="bot", flush_interval_ms=20, backoff_base_s=0.001)
        for i in range(3):
            c.tool_call("x")
        assert c.flush(10)  # finally dropped counts as done
        c.tool_call("y")
        assert c.flush(10)
        # One request per batch, none repeated.
        assert len(sink.requests) == 2
        st = c.stats()
        assert (st["rejected"], st["failed_requests"], st["retries"], st["sent"]) == (4, 2, 0, 0)
        c.shutdown(1)
    finally:
        sink.close()


def test_202_with_rejected_counts_them(sink: Sink, make_client: MakeClient) -> None:
    sink.responder = lambda req, i: (
        202,
        {},
        json.dumps(
            {"accepted": len(req.events) - 1, "rejected": [{"index": 0, "field": "timestamp", "error": "old"}], "directives": []}
        ).encode(),
    )
    c = make_client(agent_id="bot")
    for _ in range(4):
        c.tool_call("x")
    assert c.flush(10)
    st = c.stats()
    assert (st["sent"], st["rejected"]) == (3, 1)


def test_413_splits_the_batch_until_it_fits(sink: Sink, make_client: MakeClient) -> None:
    sink.responder = lambda req, i: (413, {}, b"{}") if len(req.events) > 2 else accepted(req)
    c = make_client(agent_id="bot", flush_interval_ms=60_000)
    ids = [c.tool_call("t") for _ in range(7)]
    assert c.flush(10)
    ok = [e["event_id"] for r in sink.requests if len(r.events) <= 2 for e in r.events]
    assert sorted(ok) == sorted(str(i) for i in ids) and len(ok) == 7  # each once, in batches that fit
    assert len(sink.requests[0].events) == 7  # the whole batch was tried first
    assert c.stats()["sent"] == 7 and c.stats()["rejected"] == 0


def test_body_over_1_mib_is_split_before_sending(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot", flush_interval_ms=60_000)
    big = "x" * 4000
    for _ in range(400):  # about 1.7 MB of JSON in one batch of 400
        c.tool_call("t", error_message=big)
    assert c.flush(10)
    assert all(len(r.body) <= 1024 * 1024 for r in sink.requests)
    assert len(sink.requests) >= 2
    assert len(sink.events()) == 400 and c.stats()["sent"] == 400


def test_retry_budget_drops_and_counts(sink: Sink, make_client: MakeClient) -> None:
    sink.responder = lambda req, i: (503, {}, b"{}")
    c = make_client(agent_id="bot", max_retries=2)
    for _ in range(3):
        c.tool_call("x")
    assert c.flush(10)
    assert len(sink.requests) == 3  # one try and two retries
    st = c.stats()
    assert (st["dropped_retry_budget"], st["retries"], st["failed_requests"], st["sent"]) == (3, 2, 3, 0)


def test_retry_after_beyond_the_time_budget_drops_at_once(sink: Sink, make_client: MakeClient) -> None:
    sink.responder = lambda req, i: (429, {"Retry-After": "3600"}, b"{}")
    c = make_client(agent_id="bot", retry_budget_s=5)
    c.tool_call("x")
    assert c.flush(10)
    assert len(sink.requests) == 1 and c.stats()["dropped_retry_budget"] == 1


def test_connection_errors_are_retried_then_dropped(make_client: MakeClient) -> None:
    c = make_client(endpoint="http://127.0.0.1:%d" % free_closed_port(), agent_id="bot", max_retries=2)
    c.tool_call("x")
    assert c.flush(10)
    st = c.stats()
    assert (st["failed_requests"], st["retries"], st["dropped_retry_budget"]) == (3, 2, 1)


def test_full_queue_drops_the_oldest(sink: Sink, make_client: MakeClient) -> None:
    release = threading.Event()

    def answer(req: Request, i: int) -> Answer:
        release.wait(10)
        return accepted(req)

    sink.responder = answer
    c = make_client(agent_id="bot", max_queue=5)
    c.tool_call("first")
    sink.wait_requests(1)  # the sender is now stuck in the first request
    for i in range(12):
        c.tool_call("n%d" % i)
    st = c.stats()
    assert st["dropped_queue_full"] == 7 and st["queued"] == 6  # 5 waiting + 1 in flight
    release.set()
    assert c.flush(10)
    assert [e["tool_name"] for e in sink.events()] == ["first", "n7", "n8", "n9", "n10", "n11"]
    st = c.stats()
    assert (st["enqueued"], st["sent"], st["dropped_queue_full"]) == (13, 6, 7)


def test_flush_false_while_unreachable_and_shutdown_counts_the_rest(make_client: MakeClient) -> None:
    c = make_client(endpoint="http://127.0.0.1:%d" % free_closed_port(), agent_id="bot", backoff_base_s=0.2)
    for _ in range(3):
        c.tool_call("x")
    assert c.flush(0.3) is False
    assert c.shutdown(0.2) is False
    st = c.stats()
    assert st["dropped_shutdown"] == 3 and st["queued"] == 0 and st["sent"] == 0
    # After shutdown: calls are no-ops, counted, never raising.
    assert c.tool_call("late") is None
    assert c.stats()["dropped_shutdown"] == 4
    assert c.flush(0.1) is True


def test_shutdown_sends_what_is_queued(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot", flush_interval_ms=60_000)
    for _ in range(5):
        c.tool_call("x")
    assert c.shutdown(10) is True
    assert len(sink.events()) == 5
    assert c.shutdown(1) is True  # twice is fine


def test_flush_waits_only_for_events_queued_before_it(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    assert c.flush(1) is True  # nothing queued
    c.tool_call("x")
    assert c.flush(10) is True
    assert c.stats()["queued"] == 0


def test_heartbeat_timer_and_call(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="hb-bot", heartbeat_interval_s=0.05)
    wait_until(lambda: len([e for e in sink.events() if e["type"] == "heartbeat"]) >= 2, what="two timer heartbeats")
    c.heartbeat("degraded", {"version": "1.2.0"})
    assert c.flush(10)
    hbs = [e for e in sink.events() if e["type"] == "heartbeat"]
    assert all(e["agent_id"] == "hb-bot" and "run_id" not in e for e in hbs)
    assert any(e["status"] == "degraded" and e["attributes"] == {"version": "1.2.0"} for e in hbs)


def test_parse_retry_after() -> None:
    assert parse_retry_after("1") == 1.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_backoff_full_jitter_within_cap_and_honors_retry_after() -> None:
    cfg = TransportConfig(api_key="k", endpoint="http://127.0.0.1:9", backoff_base_s=0.5, backoff_max_s=4.0)
    t = Transport(cfg, Stats(), LogOnce())
    delays: List[float] = [t._backoff(a, None) for a in range(10) for _ in range(50)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert max(delays[:50]) <= 0.5  # attempt 0: up to the base
    assert all(t._backoff(a, 2.0) >= 2.0 for a in range(5))


def test_events_are_plain_json_dicts_in_the_body(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    c.llm_call("m", attributes={"a": 1.5, "b": True, "c": None})
    assert c.flush(10)
    e: Dict[str, Any] = sink.events()[0]
    assert e["attributes"] == {"a": "1.5", "b": "true"}


def test_forked_child_sends_its_own_events_with_fresh_ids(sink: Sink, make_client: MakeClient) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    c = make_client(agent_id="parent", flush_interval_ms=60_000)
    c.tool_call("before-fork")  # queued in the parent: the child must not send it
    pid = os.fork()
    if pid == 0:  # the child: its own queue and sender thread
        code = 1
        try:
            c.tool_call("in-child", agent_id="child")
            code = 0 if c.flush(10) else 2
        finally:
            os._exit(code)
    # Without reseeding after the fork this id would be the child's too.
    c.tool_call("parent-after-fork")
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert c.flush(10)
    names = sorted(e["tool_name"] for e in sink.events())
    assert names == ["before-fork", "in-child", "parent-after-fork"]
    ids = [e["event_id"] for e in sink.events()]
    assert len(set(ids)) == 3


def _run_script(code: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_queued_events_are_flushed_at_interpreter_exit(sink: Sink) -> None:
    r = _run_script(
        "import agentops\n"
        "agentops.init('aok_exit', %r, agent_id='exit-bot', flush_interval_ms=600000)\n"
        "for i in range(3): agentops.tool_call('t%%d' %% i)\n" % sink.url
    )
    assert r.returncode == 0, r.stderr
    assert [e["tool_name"] for e in sink.events()] == ["t0", "t1", "t2"]


def test_exit_with_the_gateway_down_is_bounded() -> None:
    t0 = time.monotonic()
    r = _run_script(
        "import agentops\n"
        "agentops.init('aok_exit', 'http://127.0.0.1:%d', agent_id='b', shutdown_timeout_s=0.5)\n"
        "agentops.tool_call('t')\n" % free_closed_port()
    )
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30  # a generous bound: the exit flush gives up after 0.5 s
