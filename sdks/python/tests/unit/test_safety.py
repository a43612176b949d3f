"""Nothing the SDK does may raise into agent code."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace as NS
from typing import Any, List

import pytest

import agentops
from tests.support import Sink
from tests.unit.conftest import MakeClient


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class Weird:
    def __str__(self) -> str:
        return "weird-object"


class ExplodingUsage:
    """A response whose attributes raise when read."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("boom " + name)


def test_every_function_before_init_is_a_no_op() -> None:
    assert agentops.get_client() is None
    assert agentops.llm_call("gpt-4o", "openai", input_tokens=1) is None
    assert agentops.llm_call_from_openai({"usage": {"prompt_tokens": 1}}) is None
    assert agentops.llm_call_from_anthropic({}) is None
    assert agentops.llm_call_from_gemini({}) is None
    assert agentops.tool_call("x") is None
    assert agentops.heartbeat() is None
    assert agentops.flush(1) is True
    assert agentops.shutdown(1) is True
    assert agentops.should_stop("a") is False
    assert agentops.directive("a") is None
    assert agentops.stats()["enqueued"] == 0
    with agentops.run() as r:
        assert r.run_id
    with agentops.tool("t"):
        pass

    @agentops.run()
    async def f() -> int:
        return 1

    import asyncio

    assert asyncio.run(f()) == 1


def test_invalid_configuration_gives_a_disabled_client(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentops"):
        c = agentops.init("aok_x", "not a url")
    assert not c.enabled
    assert c.llm_call("m") is None and c.flush(1) is True and c.shutdown(1) is True
    assert c.stats()["errors"] == 1
    assert "invalid configuration" in caplog.text
    assert not agentops.Client(api_key="", endpoint="http://127.0.0.1:1").enabled


def test_odd_values_never_raise_and_the_event_still_goes(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    eid = c.llm_call(
        "gpt-4o",
        "openai",
        input_tokens="12",  # type: ignore[arg-type]
        output_tokens=-5,
        cache_read_tokens=3.7,  # type: ignore[arg-type]
        reasoning_tokens="lots",  # type: ignore[arg-type]
        latency_ms=math.nan,
        cost_usd=math.inf,
        attributes={"ok": "v", "bad": BadStr(), "obj": Weird(), 7: "int-key", "none": None},  # type: ignore[dict-item]
        error_message=BadStr(),  # type: ignore[arg-type]
    )
    assert eid is not None
    c.tool_call("bad\nname\x00here", agent_id="agent\u2028x")
    c.llm_call(None)
    c.llm_call_from_openai(ExplodingUsage())
    c.llm_call_from_openai(NS(usage=NS(prompt_tokens=BadStr(), completion_tokens=[1])))
    assert c.flush(10)
    evs = sink.events()
    e = evs[0]
    assert (e["input_tokens"], e["output_tokens"], e["cache_read_tokens"]) == (12, 0, 4)
    assert "reasoning_tokens" not in e and "latency_ms" not in e and "cost_usd" not in e
    assert e["attributes"] == {"ok": "v", "obj": "weird-object", "7": "int-key"}
    assert e["error_message"].startswith("<unprintable BadStr")
    assert evs[1]["tool_name"] == "bad_name_here" and evs[1]["agent_id"] == "agent_x"
    assert "model" not in evs[2]
    assert c.stats()["errors"] == 0
    assert c.stats()["sent"] == len(evs)


def test_internal_errors_are_counted_and_logged_once(
    sink: Sink, make_client: MakeClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = make_client(agent_id="bot")

    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("internal bug")

    monkeypatch.setattr(c, "_base", broken)
    with caplog.at_level(logging.WARNING, logger="agentops"):
        assert c.llm_call("m") is None
        assert c.llm_call("m") is None
        assert c.tool_call("t") is None
    assert c.stats()["errors"] == 3
    assert caplog.text.count("internal error in llm_call") == 1
    assert caplog.text.count("internal error in tool_call") == 1


def test_many_attributes_are_capped(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    c.tool_call("t", attributes={"k%d" % i: i for i in range(100)})
    c.tool_call("t", attributes="not a mapping")  # type: ignore[arg-type]
    assert c.flush(10)
    a, b = sink.events()
    assert len(a["attributes"]) == 64
    assert "attributes" not in b


def test_long_values_are_cut_to_the_gateway_bounds(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="a" * 300)
    c.tool_call("é" * 200, error_message="m" * 10_000)
    assert c.flush(10)
    (e,) = sink.events()
    assert len(e["agent_id"].encode()) == 256
    assert len(e["tool_name"].encode()) <= 256 and e["tool_name"] == "é" * 128
    assert len(e["error_message"].encode()) == 4096


def test_a_raising_callback_is_swallowed_and_sending_goes_on(sink: Sink, make_client: MakeClient) -> None:
    from tests.support import accepted

    sink.responder = lambda req, i: accepted(req, [{"agent_id": "bot", "action": "pause", "reason": "r"}])
    calls: List[agentops.Directive] = []

    def cb(d: agentops.Directive) -> None:
        calls.append(d)
        raise ValueError("callback bug")

    c = make_client(agent_id="bot", on_directive=cb)
    c.tool_call("a")
    assert c.flush(10)
    c.tool_call("b")
    assert c.flush(10)
    assert len(sink.events()) == 2
    assert len(calls) == 1  # called on the change only
    assert c.stats()["errors"] == 1
    assert c.should_stop("bot")


def test_no_agent_id_anywhere_uses_a_placeholder(sink: Sink, make_client: MakeClient) -> None:
    c = make_client()
    c.tool_call("t")
    with c.run():
        pass
    assert c.flush(10)
    assert {e["agent_id"] for e in sink.events()} == {"unknown_agent"}


def test_api_key_and_endpoint_from_the_environment(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTOPS_API_KEY", "aok_env")
    monkeypatch.setenv("AGENTOPS_ENDPOINT", sink.url)
    c = agentops.init(agent_id="env-bot", flush_interval_ms=20)
    c.tool_call("t")
    assert c.flush(10)
    assert sink.requests[0].headers["authorization"] == "Bearer aok_env"


def test_empty_identifiers_are_left_out_not_null(sink: Sink, make_client: MakeClient) -> None:
    c = make_client(agent_id="bot")
    c.llm_call("", "", status=None, trace_id="", span_id="", error_type="")  # type: ignore[arg-type]
    c.tool_call("", status="")
    assert c.flush(10)
    for e in sink.events():
        assert None not in e.values(), e
        assert not ({"model", "provider", "status", "trace_id", "span_id", "error_type", "tool_name"} & set(e))
