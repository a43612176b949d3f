"""Contract (e): an agent paused (then killed) with the admin API sees
should_stop() and on_directive; after resume, should_stop() is False."""

from __future__ import annotations

import threading
from typing import List

import agentops
from tests.integration.conftest import Stack, http_json, unique
from tests.support import wait_until


def test_e_pause_kill_resume(stack: Stack) -> None:
    agent = unique("py-sdk-pause")
    seen: List[agentops.Directive] = []
    lock = threading.Lock()

    def on_directive(d: agentops.Directive) -> None:
        with lock:
            seen.append(d)

    # Timer heartbeats carry the agent's id: each answer tells its directive.
    c = agentops.Client(
        stack.ingest_key,
        stack.gateway,
        agent_id=agent,
        flush_interval_ms=100,
        heartbeat_interval_s=0.3,
        on_directive=on_directive,
    )
    try:
        c.tool_call("warm-up")
        assert c.flush(30)
        assert not c.should_stop() and c.directive() is None

        url = "%s/v1/admin/agents/%s" % (stack.query, agent)
        s, body = http_json("POST", url + "/pause", stack.admin_key, {"reason": "python sdk test pause"})
        assert s == 200, (s, body)
        wait_until(c.should_stop, timeout=60, what="the pause to reach the SDK")
        d = c.directive()
        assert d is not None and (d.action, d.reason, d.agent_id) == ("pause", "python sdk test pause", agent)
        with lock:
            assert agentops.Directive("pause", "python sdk test pause", agent) in seen

        s, body = http_json("POST", url + "/kill", stack.admin_key, {"reason": "python sdk test kill"})
        assert s == 200, (s, body)
        wait_until(lambda: (c.directive() or agentops.Directive("", "", "")).action == "kill", timeout=60, what="kill")
        assert c.should_stop()

        s, body = http_json("POST", url + "/resume", stack.admin_key, {"reason": "done"})
        assert s == 200, (s, body)
        wait_until(lambda: not c.should_stop(), timeout=60, what="the resume to reach the SDK")
        assert c.directive() is None
        with lock:
            assert [x.action for x in seen] == ["pause", "kill", "resume"]
        assert c.stats()["errors"] == 0
    finally:
        c.shutdown(5)
