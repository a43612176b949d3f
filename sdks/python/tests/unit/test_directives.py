"""The directives table: set by 202 answers, lifted when an answer for the
agent no longer lists it, and the on_directive callback."""

from __future__ import annotations

import threading
from typing import Dict, List

import agentops
from tests.support import Answer, Request, Sink, accepted
from tests.unit.conftest import MakeClient


def test_directives_table_follows_the_answers(sink: Sink, make_client: MakeClient) -> None:
    standing: Dict[str, Dict[str, str]] = {}
    lock = threading.Lock()

    def answer(req: Request, i: int) -> Answer:
        agents = {e["agent_id"] for e in req.events}
        with lock:
            ds = [d for a, d in standing.items() if a in agents]
        return accepted(req, ds)

    sink.responder = answer
    seen: List[agentops.Directive] = []
    c = make_client(agent_id="a1", on_directive=seen.append)

    c.tool_call("t")
    assert c.flush(10)
    assert not c.should_stop() and c.directive() is None

    with lock:
        standing["a1"] = {"agent_id": "a1", "action": "pause", "reason": "budget 'fleet' reached 100%"}
        standing["a2"] = {"agent_id": "a2", "action": "kill", "reason": "runaway"}
    c.tool_call("t")
    assert c.flush(10)
    assert c.should_stop() and c.should_stop("a1")
    d = c.directive("a1")
    assert d is not None and (d[0], d[1]) == ("pause", "budget 'fleet' reached 100%")
    assert d.action == "pause" and d.agent_id == "a1"
    assert not c.should_stop("a2")  # a2 sent nothing: its directive was not in an answer
    assert seen == [agentops.Directive("pause", "budget 'fleet' reached 100%", "a1")]

    c.tool_call("t", agent_id="a2")
    assert c.flush(10)
    assert c.should_stop("a2") and c.directive("a2") == agentops.Directive("kill", "runaway", "a2")

    # The same directive again: no new callback.
    c.tool_call("t")
    assert c.flush(10)
    assert len(seen) == 2

    # Resumed: the next answer for a1 no longer lists it. An answer for a2
    # alone does not touch a1 and vice versa.
    with lock:
        del standing["a1"]
    c.tool_call("t", agent_id="a2")
    assert c.flush(10)
    assert c.should_stop("a1")
    c.tool_call("t")
    assert c.flush(10)
    assert not c.should_stop("a1") and c.directive("a1") is None
    assert c.should_stop("a2")
    assert seen[-1] == agentops.Directive("resume", "", "a1")
    assert set(c.directives()) == {"a2"}


def test_should_stop_defaults_to_the_current_run_agent(sink: Sink, make_client: MakeClient) -> None:
    sink.responder = lambda req, i: accepted(req, [{"agent_id": "runner", "action": "kill", "reason": "x"}])
    c = make_client(agent_id="client-default")
    with c.run(agent_id="runner"):
        c.tool_call("t")
        assert c.flush(10)
        assert c.should_stop()
    assert not c.should_stop()
    assert c.should_stop("runner")


def test_module_level_should_stop(sink: Sink) -> None:
    sink.responder = lambda req, i: accepted(req, [{"agent_id": "m1", "action": "pause", "reason": "r"}])
    agentops.init("aok_t", sink.url, agent_id="m1", flush_interval_ms=20)
    agentops.heartbeat()
    assert agentops.flush(10)
    assert agentops.should_stop()
    assert agentops.directive() == agentops.Directive("pause", "r", "m1")


def test_malformed_directives_are_ignored(sink: Sink, make_client: MakeClient) -> None:
    sink.responder = lambda req, i: (
        202,
        {},
        b'{"accepted":1,"directives":[null, 3, {"agent_id": 5}, {"agent_id":"a","action":"pause"}]}',
    )
    c = make_client(agent_id="a")
    c.tool_call("t")
    assert c.flush(10)
    assert c.directive("a") == agentops.Directive("pause", "", "a")
    assert c.stats()["errors"] == 0
