"""agentops.otel.configure against the real gateway: GenAI spans become a run."""

from __future__ import annotations

import pytest

import agentops.otel
from tests.integration.conftest import Stack, unique, wait_run


def test_otel_genai_spans_become_a_run(stack: Stack) -> None:
    pytest.importorskip("opentelemetry.sdk.trace")
    agent = unique("py-sdk-otel")
    provider = agentops.otel.configure(stack.gateway, stack.ingest_key, service_name=agent, set_global=False)
    assert provider is not None
    tracer = provider.get_tracer("agentops-python-sdk-it")
    with tracer.start_as_current_span("invoke_agent " + agent) as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.id", agent)
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.agent.id", agent)
            chat.set_attribute("gen_ai.provider.name", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-4o")
            chat.set_attribute("gen_ai.usage.input_tokens", 150)
            chat.set_attribute("gen_ai.usage.cache_read.input_tokens", 50)
            chat.set_attribute("gen_ai.usage.output_tokens", 20)
        with tracer.start_as_current_span("execute_tool search") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.agent.id", agent)
            tool.set_attribute("gen_ai.tool.name", "search")
        trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(30_000)
    provider.shutdown()
    run = wait_run(stack, trace_id, lambda r: r["status"] == "completed" and r["event_count"] == 4)
    assert run["agent_id"] == agent
    assert (run["llm_calls"], run["tool_calls"]) == (1, 1)
    # The gateway maps GenAI usage to the contract: input without the cache reads.
    assert (run["input_tokens"], run["cache_read_tokens"], run["output_tokens"]) == (100, 50, 20)
