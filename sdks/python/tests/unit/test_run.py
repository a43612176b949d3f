"""Runs as context managers and decorators (sync and async), tools, context."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Dict, List

import pytest

import agentops
from tests.support import Sink
from tests.unit.conftest import MakeClient


class Boom(Exception):
    pass


def by_type(evs: List[Dict[str, Any]], t: str) -> List[Dict[str, Any]]:
    return [e for e in evs if e["type"] == t]


def test_run_context_manager_completed(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot", workflow_id="triage")
    with c.run(attributes={"team": "support", "n": 3}) as r:
        assert agentops.current_run() is r
        c.llm_call("gpt-4o", "openai", input_tokens=10, output_tokens=5)
        c.tool_call("search", latency_ms=12)
    assert agentops.current_run() is None
    assert c.flush(10)
    evs = sink.events()
    assert [e["type"] for e in evs] == ["run_started", "llm_call", "tool_call", "run_completed"]
    assert {e["run_id"] for e in evs} == {r.run_id}
    assert {e["agent_id"] for e in evs} == {"bot"}
    assert {e["workflow_id"] for e in evs} == {"triage"}
    assert uuid.UUID(r.run_id).version == 4
    started, done = evs[0], evs[3]
    assert "latency_ms" not in started and started["attributes"] == {"team": "support", "n": "3"}
    assert done["status"] == "ok" and isinstance(done["latency_ms"], int) and done["latency_ms"] >= 0
    assert "attributes" not in evs[1]
    assert len({e["event_id"] for e in evs}) == 4


def test_run_failed_reraises_the_same_exception(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    err = Boom("tool exploded\nsecond line")
    with pytest.raises(Boom) as caught:
        with c.run(run_id="run-fixed-1", agent_id="other-bot"):
            raise err
    assert caught.value is err
    assert c.flush(10)
    evs = sink.events()
    assert [e["type"] for e in evs] == ["run_started", "run_failed"]
    failed = evs[1]
    assert failed["run_id"] == "run-fixed-1" and failed["agent_id"] == "other-bot"
    assert failed["status"] == "error"
    assert failed["error_type"] == "Boom"
    assert failed["error_message"] == "tool exploded\nsecond line"
    assert isinstance(failed["latency_ms"], int)


def test_run_fail_without_exception(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    with c.run() as r:
        r.fail("Refused", "policy said no")
    assert c.flush(10)
    failed = sink.events()[-1]
    assert (failed["type"], failed["error_type"], failed["error_message"]) == ("run_failed", "Refused", "policy said no")


def test_decorator_sync_new_run_per_call(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")

    @c.run(workflow_id="wf")
    def work(x: int) -> int:
        """Doubles."""
        run = agentops.current_run()
        assert run is not None
        c.llm_call("gpt-4o", input_tokens=x)
        if x < 0:
            raise ValueError("negative")
        return x * 2

    assert work.__name__ == "work" and work.__doc__ == "Doubles."
    assert work(2) == 4
    assert work(3) == 6
    with pytest.raises(ValueError):
        work(-1)
    assert c.flush(10)
    evs = sink.events()
    runs = [e["run_id"] for e in by_type(evs, "run_started")]
    assert len(set(runs)) == 3
    assert [e["type"] for e in evs if e["run_id"] == runs[0]] == ["run_started", "llm_call", "run_completed"]
    assert [e["type"] for e in evs if e["run_id"] == runs[2]] == ["run_started", "llm_call", "run_failed"]
    assert by_type(evs, "run_failed")[0]["error_type"] == "ValueError"
    assert all(e["workflow_id"] == "wf" for e in evs)


def test_decorator_async_and_async_with(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")

    @c.run()
    async def step(name: str) -> str:
        await asyncio.sleep(0)
        c.tool_call(name)
        if name == "bad":
            raise KeyError(name)
        return name

    async def main() -> List[str]:
        # Concurrent tasks: each call is its own run, calls land in their own.
        ok = await asyncio.gather(step("a"), step("b"))
        with pytest.raises(KeyError):
            await step("bad")
        async with c.run(run_id="explicit-async") as r:
            await asyncio.sleep(0)
            c.llm_call("m")
            assert agentops.current_run() is r
        return list(ok)

    assert asyncio.run(main()) == ["a", "b"]
    assert c.flush(10)
    evs = sink.events()
    tools = by_type(evs, "tool_call")
    starts = {e["run_id"] for e in by_type(evs, "run_started")}
    assert len(starts) == 4 and "explicit-async" in starts
    for t in tools:
        run_events = [e["type"] for e in evs if e["run_id"] == t["run_id"]]
        assert run_events[0] == "run_started" and run_events[1] == "tool_call"
        assert run_events[2] == ("run_failed" if t["tool_name"] == "bad" else "run_completed")
    assert len({t["run_id"] for t in tools}) == 3
    assert by_type(evs, "llm_call")[0]["run_id"] == "explicit-async"


def test_nested_runs_and_explicit_ids_win(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    with c.run(run_id="outer"):
        with c.run(run_id="inner", agent_id="sub-agent"):
            c.llm_call("m")
        c.llm_call("m", run_id="elsewhere", agent_id="x")
        c.llm_call("m")
    assert c.flush(10)
    llm = by_type(sink.events(), "llm_call")
    assert [(e["run_id"], e["agent_id"]) for e in llm] == [
        ("inner", "sub-agent"),
        ("elsewhere", "x"),
        ("outer", "bot"),
    ]


def test_tool_scope_and_decorator(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")

    @c.tool()
    def lookup(q: str) -> str:
        if q == "x":
            raise LookupError("nothing")
        return q

    with c.run(run_id="r-tools"):
        with c.tool("search", attributes={"k": "v"}):
            pass
        assert lookup("q") == "q"
        with pytest.raises(LookupError):
            lookup("x")
    assert c.flush(10)
    tools = by_type(sink.events(), "tool_call")
    assert [(t["tool_name"], t["status"]) for t in tools] == [("search", "ok"), ("lookup", "ok"), ("lookup", "error")]
    assert tools[0]["attributes"] == {"k": "v"}
    assert tools[2]["error_type"] == "LookupError"
    assert all(t["run_id"] == "r-tools" and isinstance(t["latency_ms"], int) for t in tools)


def test_module_level_run_resolves_client_at_call_time(sink: Sink) -> None:
    @agentops.run()
    def before_init() -> str:
        agentops.llm_call("m")
        return "ran"

    # Not initialized: the function still runs, nothing is sent or raised.
    assert before_init() == "ran"
    agentops.init("aok_test", sink.url, agent_id="late-bot", flush_interval_ms=50)
    assert before_init() == "ran"
    assert agentops.flush(10)
    assert [e["type"] for e in sink.events()] == ["run_started", "llm_call", "run_completed"]
    assert all(e["agent_id"] == "late-bot" for e in sink.events())
