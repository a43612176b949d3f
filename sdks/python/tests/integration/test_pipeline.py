"""Through the real pipeline: events arrive exactly as sent, through 503s and
429s, counted once (contract (a), (b), (c))."""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings
from datetime import datetime, timezone
from types import SimpleNamespace as NS
from typing import Any, Callable, Dict, List

import agentops
from tests.integration.conftest import FaultProxy, Plan, Stack, http_json, unique, wait_run

# Provider-shaped responses (objects and dicts as the provider SDKs give them).
OPENAI = NS(
    model="gpt-4o-2024-08-06",
    usage=NS(
        prompt_tokens=1200,
        completion_tokens=300,
        prompt_tokens_details=NS(cached_tokens=200),
        completion_tokens_details=NS(reasoning_tokens=100),
    ),
)
ANTHROPIC = {
    "model": "claude-haiku-4-5",
    "usage": {"input_tokens": 50, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200, "output_tokens": 75},
}
GEMINI = {
    "modelVersion": "gemini-2.5-flash",
    "usageMetadata": {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 600,
        "candidatesTokenCount": 120,
        "thoughtsTokenCount": 40,
    },
}


def client(stack: Stack, agent: str, endpoint: str = "", **kw: Any) -> agentops.Client:
    kw.setdefault("flush_interval_ms", 100)
    return agentops.Client(stack.ingest_key, endpoint or stack.gateway, agent_id=agent, **kw)


def by_id(run: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {e["event_id"]: e for e in run["events"]}


def test_a_run_arrives_exactly_as_sent(stack: Stack) -> None:
    agent = unique("py-sdk-run")
    c = client(stack, agent, workflow_id="py-sdk-it")
    at = datetime.now(timezone.utc).replace(microsecond=123456)
    with c.run(attributes={"suite": "python-sdk"}) as r:
        oa = c.llm_call_from_openai(OPENAI, latency_ms=850)
        t1 = c.tool_call("search", latency_ms=120)
        an = c.llm_call_from_anthropic(ANTHROPIC, latency_ms=410)
        ge = c.llm_call_from_gemini(GEMINI, latency_ms=300)
        t2 = c.tool_call(
            "lookup", latency_ms=40, status="error", error_type="Timeout", error_message="slow\nbackend", timestamp=at
        )
    assert c.flush(30)
    st = c.stats()
    assert (st["sent"], st["rejected"], st["errors"], st["dropped_retry_budget"]) == (7, 0, 0, 0)
    c.shutdown(5)

    run = wait_run(stack, r.run_id, lambda x: x["status"] == "completed" and x["event_count"] == 7)
    assert run["agent_id"] == agent and run["workflow_id"] == "py-sdk-it"
    assert (run["llm_calls"], run["tool_calls"]) == (3, 2)
    # The token convention, summed over the three providers.
    assert run["input_tokens"] == 1000 + 50 + 400
    assert run["cache_read_tokens"] == 200 + 1000 + 600
    assert run["cache_write_tokens"] == 200
    assert run["output_tokens"] == 200 + 75 + 120
    assert run["reasoning_tokens"] == 100 + 40
    assert run["error_type"] is None and run["latency_ms"] is not None and run["latency_ms"] >= 0
    assert sorted(run["models"]) == ["claude-haiku-4-5", "gemini-2.5-flash", "gpt-4o-2024-08-06"]
    assert sorted(run["providers"]) == ["anthropic", "google", "openai"]
    assert run["tags"] == {"suite": "python-sdk"}

    ev = by_id(run)
    assert len(ev) == 7 and {oa, t1, an, ge, t2} <= set(ev)
    types = sorted(e["type"] for e in run["events"])
    assert types == ["llm_call"] * 3 + ["run_completed", "run_started"] + ["tool_call"] * 2
    o = ev[str(oa)]
    assert (o["type"], o["provider"], o["model"], o["latency_ms"], o["status"]) == (
        "llm_call", "openai", "gpt-4o-2024-08-06", 850, "ok"
    )
    assert (o["input_tokens"], o["cache_read_tokens"], o["output_tokens"], o["reasoning_tokens"]) == (1000, 200, 200, 100)
    assert o["cache_write_tokens"] is None
    a = ev[str(an)]
    assert (a["provider"], a["model"], a["latency_ms"]) == ("anthropic", "claude-haiku-4-5", 410)
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_write_tokens"], a["output_tokens"]) == (50, 1000, 200, 75)
    assert a["reasoning_tokens"] is None
    g = ev[str(ge)]
    assert (g["provider"], g["model"], g["latency_ms"]) == ("google", "gemini-2.5-flash", 300)
    assert (g["input_tokens"], g["cache_read_tokens"], g["output_tokens"], g["reasoning_tokens"]) == (400, 600, 120, 40)
    tool1, tool2 = ev[str(t1)], ev[str(t2)]
    assert (tool1["type"], tool1["tool_name"], tool1["latency_ms"], tool1["status"]) == ("tool_call", "search", 120, "ok")
    assert (tool2["tool_name"], tool2["status"], tool2["error_type"], tool2["error_message"]) == (
        "lookup", "error", "Timeout", "slow\nbackend"
    )
    sent_at = datetime.fromisoformat(tool2["timestamp"].replace("Z", "+00:00"))
    assert sent_at == at  # microseconds kept
    (done,) = [e for e in run["events"] if e["type"] == "run_completed"]
    assert done["status"] == "ok" and done["latency_ms"] is not None


def test_a_failed_run_through_the_decorator(stack: Stack) -> None:
    agent = unique("py-sdk-fail")
    c = client(stack, agent)
    seen: List[str] = []

    class QuotaExceeded(Exception):
        pass

    @c.run()
    def work() -> None:
        r = agentops.current_run()
        assert r is not None
        seen.append(r.run_id)
        c.llm_call("gpt-4o-mini", "openai", input_tokens=10, output_tokens=2, latency_ms=5)
        raise QuotaExceeded("monthly quota exceeded for project x")

    try:
        work()
    except QuotaExceeded:
        pass
    else:
        raise AssertionError("the agent's exception must propagate")
    assert c.flush(30)
    c.shutdown(5)
    run = wait_run(stack, seen[0], lambda x: x["status"] == "failed" and x["event_count"] == 3)
    assert run["error_type"] == "QuotaExceeded"
    assert run["error_message"] == "monthly quota exceeded for project x"
    failed = run["events"][-1]
    assert (failed["type"], failed["status"], failed["error_type"]) == ("run_failed", "error", "QuotaExceeded")
    assert run["llm_calls"] == 1 and run["input_tokens"] == 10


def send_run(c: agentops.Client, n_llm: int, n_tools: int) -> tuple[str, List[str]]:
    ids: List[str] = []
    with c.run() as r:
        for i in range(n_llm):
            ids.append(str(c.llm_call("gpt-4o-mini", "openai", input_tokens=100 + i, output_tokens=10, latency_ms=7)))
        for i in range(n_tools):
            ids.append(str(c.tool_call("tool-%d" % i, latency_ms=3)))
    return r.run_id, ids


def assert_exact(run: Dict[str, Any], ids: List[str], n_llm: int, n_tools: int) -> None:
    assert run["event_count"] == n_llm + n_tools + 2
    assert (run["llm_calls"], run["tool_calls"]) == (n_llm, n_tools)
    assert run["input_tokens"] == sum(100 + i for i in range(n_llm))
    assert run["output_tokens"] == 10 * n_llm
    timeline = [e["event_id"] for e in run["events"]]
    assert len(timeline) == len(set(timeline)) == n_llm + n_tools + 2
    assert set(ids) <= set(timeline)


def test_b_503s_then_recovery_nothing_lost_nothing_doubled(
    stack: Stack, proxy_factory: Callable[[Plan], FaultProxy]
) -> None:
    # Request 0 reaches the gateway but its answer is replaced by a 503 (the
    # SDK must resend the same events, the pipeline must count them once);
    # requests 1 and 2 are plain 503s with Retry-After: 1; then the proxy
    # forwards everything.
    plan = {0: "forward-then-503", 1: "503", 2: "503"}
    proxy = proxy_factory(lambda i: plan.get(i, "forward"))
    agent = unique("py-sdk-503")
    c = client(stack, agent, endpoint=proxy.url, max_batch=8, backoff_base_s=0.05)
    n_llm, n_tools = 12, 6
    run_id, ids = send_run(c, n_llm, n_tools)
    assert c.flush(60)
    st = c.stats()
    c.shutdown(5)
    assert proxy.actions()[:3] == ["forward-then-503", "503", "503"]
    assert proxy.statuses()[:3] == [503, 503, 503]
    # The first batch really reached the pipeline before its answer was lost.
    assert proxy.upstream()[:4] == [202, 0, 0, 202]
    assert (st["sent"], st["retries"], st["failed_requests"]) == (n_llm + n_tools + 2, 3, 3)
    assert (st["dropped_retry_budget"], st["dropped_queue_full"], st["rejected"]) == (0, 0, 0)
    run = wait_run(stack, run_id, lambda x: x["status"] == "completed" and x["event_count"] >= n_llm + n_tools + 2)
    assert_exact(run, ids, n_llm, n_tools)


def test_c_429_rate_limited(stack: Stack, proxy_factory: Callable[[Plan], FaultProxy]) -> None:
    """The gateway's own 429 needs an org with a low rate limit, which only a
    platform admin may set (docs/admin-api.md "Orgs and API keys"). With a
    platform admin key (AGENTOPS_IT_PLATFORM_KEY, else the org admin key if
    its org is a platform org) the test creates an org of 5 events/s and a
    burst of 10 and sends through the real limiter; otherwise the 429s (with
    Retry-After: 1) are injected by the proxy in front of the real gateway."""
    org = "py-sdk-rl-" + uuid.uuid4().hex[:10]
    platform_key = os.environ.get("AGENTOPS_IT_PLATFORM_KEY") or stack.admin_key
    status, made = http_json(
        "POST",
        stack.query + "/v1/admin/orgs",
        platform_key,
        {"id": org, "name": "python sdk rate limit", "ingest_events_per_sec": 5, "ingest_burst": 10},
    )
    agent = unique("py-sdk-429")
    n_llm, n_tools = 20, 8
    if status == 403:
        # Not a platform admin: 429s with Retry-After from the proxy.
        warnings.warn(
            "429 test: no platform admin key (AGENTOPS_IT_PLATFORM_KEY) to set a rate limit: 429s injected by the proxy"
        )
        plan = {0: "429", 1: "429"}
        proxy = proxy_factory(lambda i: plan.get(i, "forward"))
        c = client(stack, agent, endpoint=proxy.url, max_batch=10, backoff_base_s=0.05)
        run_id, ids = send_run(c, n_llm, n_tools)
        assert c.flush(60)
        st = c.stats()
        c.shutdown(5)
        assert proxy.statuses()[:2] == [429, 429] and st["retries"] == 2
        read_key = stack.read_key
    else:
        assert status == 201, (status, made)
        admin = made["admin_key"]["key"]
        keys: Dict[str, str] = {}
        for scope in ("ingest", "read"):
            s, k = http_json("POST", stack.query + "/v1/admin/keys", admin, {"scopes": [scope], "name": "py-sdk-it"})
            assert s == 201, (s, k)
            keys[scope] = k["key"]
        # A pass-through proxy only to see the gateway's own answers.
        proxy = proxy_factory(lambda i: "forward")
        c = agentops.Client(keys["ingest"], proxy.url, agent_id=agent, flush_interval_ms=50, max_batch=10, backoff_base_s=0.05)
        run_id, ids = send_run(c, n_llm, n_tools)
        assert c.flush(90)
        st = c.stats()
        c.shutdown(5)
        assert 429 in proxy.upstream(), proxy.upstream()  # the gateway's own 429
        assert st["retries"] >= 1
        read_key = keys["read"]
    assert (st["sent"], st["dropped_retry_budget"], st["rejected"]) == (n_llm + n_tools + 2, 0, 0)
    run = wait_run(
        stack, run_id, lambda x: x["status"] == "completed" and x["event_count"] >= n_llm + n_tools + 2, read_key=read_key
    )
    assert_exact(run, ids, n_llm, n_tools)


def test_heartbeat_reaches_the_agent(stack: Stack) -> None:
    agent = unique("py-sdk-hb")
    c = client(stack, agent)
    c.heartbeat("degraded", {"version": "9.9.9"})
    assert c.flush(30)
    c.shutdown(5)
    deadline = time.monotonic() + 60
    while True:
        s, a = http_json("GET", "%s/v1/agents/%s" % (stack.query, agent), stack.read_key)
        if s == 200 and isinstance(a, dict) and a.get("heartbeat_status") == "degraded":
            break
        assert time.monotonic() < deadline, (s, json.dumps(a)[:500])
        time.sleep(0.25)
    assert a["last_heartbeat"] is not None
