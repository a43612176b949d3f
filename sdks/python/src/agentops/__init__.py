"""AgentOps Python SDK: runs, LLM and tool calls, heartbeats and directives.

    import agentops
    agentops.init("aok_...", "http://gateway:8080", agent_id="support-bot-1")

    @agentops.run(workflow_id="triage")
    def handle(ticket):
        resp = openai_client.chat.completions.create(...)
        agentops.llm_call_from_openai(resp, latency_ms=850)

Every module-level function is a no-op before `init()` and none raises into
the caller. Events are queued and sent by a background thread; see README.md.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional

from ._client import (
    Attributes,
    Client,
    Directive,
    RunHandle,
    RunScope,
    Timestamp,
    ToolScope,
    current_run,
)
from ._usage import Usage, anthropic_usage, gemini_usage, openai_usage

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Directive",
    "RunHandle",
    "RunScope",
    "ToolScope",
    "Usage",
    "anthropic_usage",
    "current_run",
    "directive",
    "flush",
    "gemini_usage",
    "get_client",
    "heartbeat",
    "init",
    "llm_call",
    "llm_call_from_anthropic",
    "llm_call_from_gemini",
    "llm_call_from_openai",
    "openai_usage",
    "run",
    "should_stop",
    "shutdown",
    "stats",
    "tool",
    "tool_call",
]

_default: Optional[Client] = None
_init_lock = threading.Lock()


def init(
    api_key: Optional[str] = None,
    endpoint: Optional[str] = None,
    *,
    agent_id: Optional[str] = None,
    workflow_id: Optional[str] = None,
    flush_interval_ms: float = 1000,
    max_batch: int = 1000,
    max_queue: int = 10_000,
    heartbeat_interval_s: Optional[float] = None,
    on_directive: Optional[Callable[[Directive], None]] = None,
    timeout_s: float = 10.0,
    max_retries: int = 10,
    retry_budget_s: float = 120.0,
    backoff_base_s: float = 0.5,
    backoff_max_s: float = 30.0,
    compress: bool = True,
    shutdown_timeout_s: float = 5.0,
) -> Client:
    """Make the module's default client (see `Client`). `api_key` and
    `endpoint` default to $AGENTOPS_API_KEY and $AGENTOPS_ENDPOINT (else
    http://localhost:8080). Calling it again replaces the default client;
    the previous one drains its queue in the background. Never raises: an
    invalid configuration gives a disabled client and a logged error."""
    global _default
    client = Client(
        api_key,
        endpoint,
        agent_id=agent_id,
        workflow_id=workflow_id,
        flush_interval_ms=flush_interval_ms,
        max_batch=max_batch,
        max_queue=max_queue,
        heartbeat_interval_s=heartbeat_interval_s,
        on_directive=on_directive,
        timeout_s=timeout_s,
        max_retries=max_retries,
        retry_budget_s=retry_budget_s,
        backoff_base_s=backoff_base_s,
        backoff_max_s=backoff_max_s,
        compress=compress,
        shutdown_timeout_s=shutdown_timeout_s,
    )
    with _init_lock:
        old, _default = _default, client
    if old is not None:
        old.close()
    return client


def get_client() -> Optional[Client]:
    """The default client, or None before `init()`."""
    return _default


def _resolve() -> Optional[Client]:
    return _default


def run(
    agent_id: Optional[str] = None,
    run_id: Optional[str] = None,
    workflow_id: Optional[str] = None,
    attributes: Attributes = None,
) -> RunScope:
    """A run of the default client (resolved when the run starts, so it can
    decorate functions before `init()`): `with`, `async with` or decorator.
    Emits run_started, then run_completed (latency_ms) or run_failed
    (latency_ms, status "error", error_type = the exception's class name,
    error_message = str(exc); the exception propagates unchanged)."""
    return RunScope(_resolve, agent_id, run_id, workflow_id, attributes)


def tool(tool_name: Optional[str] = None, *, attributes: Attributes = None) -> ToolScope:
    """A timed tool call of the default client: `with`, `async with` or decorator."""
    return ToolScope(_resolve, tool_name, attributes)


def llm_call(
    model: Optional[str],
    provider: Optional[str] = None,
    *,
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    cache_read_tokens: Optional[int] = None,
    cache_write_tokens: Optional[int] = None,
    reasoning_tokens: Optional[int] = None,
    latency_ms: Optional[float] = None,
    cost_usd: Optional[float] = None,
    status: str = "ok",
    error_type: Optional[str] = None,
    error_message: Optional[str] = None,
    attributes: Attributes = None,
    agent_id: Optional[str] = None,
    run_id: Optional[str] = None,
    workflow_id: Optional[str] = None,
    trace_id: Optional[str] = None,
    span_id: Optional[str] = None,
    timestamp: Timestamp = None,
) -> Optional[str]:
    """See `Client.llm_call`."""
    c = _default
    if c is None:
        return None
    return c.llm_call(
        model,
        provider,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
        latency_ms=latency_ms,
        cost_usd=cost_usd,
        status=status,
        error_type=error_type,
        error_message=error_message,
        attributes=attributes,
        agent_id=agent_id,
        run_id=run_id,
        workflow_id=workflow_id,
        trace_id=trace_id,
        span_id=span_id,
        timestamp=timestamp,
    )


def llm_call_from_openai(response: object, latency_ms: Optional[float] = None, **kwargs: Any) -> Optional[str]:
    """See `Client.llm_call_from_openai`."""
    c = _default
    return None if c is None else c.llm_call_from_openai(response, latency_ms, **kwargs)


def llm_call_from_anthropic(response: object, latency_ms: Optional[float] = None, **kwargs: Any) -> Optional[str]:
    """See `Client.llm_call_from_anthropic`."""
    c = _default
    return None if c is None else c.llm_call_from_anthropic(response, latency_ms, **kwargs)


def llm_call_from_gemini(response: object, latency_ms: Optional[float] = None, **kwargs: Any) -> Optional[str]:
    """See `Client.llm_call_from_gemini`."""
    c = _default
    return None if c is None else c.llm_call_from_gemini(response, latency_ms, **kwargs)


def tool_call(
    tool_name: str,
    latency_ms: Optional[float] = None,
    status: str = "ok",
    error_type: Optional[str] = None,
    error_message: Optional[str] = None,
    *,
    attributes: Attributes = None,
    agent_id: Optional[str] = None,
    run_id: Optional[str] = None,
    workflow_id: Optional[str] = None,
    trace_id: Optional[str] = None,
    span_id: Optional[str] = None,
    timestamp: Timestamp = None,
) -> Optional[str]:
    """See `Client.tool_call`."""
    c = _default
    if c is None:
        return None
    return c.tool_call(
        tool_name,
        latency_ms,
        status,
        error_type,
        error_message,
        attributes=attributes,
        agent_id=agent_id,
        run_id=run_id,
        workflow_id=workflow_id,
        trace_id=trace_id,
        span_id=span_id,
        timestamp=timestamp,
    )


def heartbeat(
    status: str = "ok", metadata: Attributes = None, *, agent_id: Optional[str] = None
) -> Optional[str]:
    """See `Client.heartbeat`."""
    c = _default
    return None if c is None else c.heartbeat(status, metadata, agent_id=agent_id)


def flush(timeout_s: float = 10.0) -> bool:
    """See `Client.flush` (True before `init()`: nothing is queued)."""
    c = _default
    return True if c is None else c.flush(timeout_s)


def shutdown(timeout_s: Optional[float] = None) -> bool:
    """See `Client.shutdown`."""
    c = _default
    return True if c is None else c.shutdown(timeout_s)


def stats() -> Dict[str, int]:
    """See `Client.stats` (zeros before `init()`)."""
    c = _default
    if c is None:
        from ._util import STAT_NAMES

        return dict.fromkeys(STAT_NAMES + ("queued",), 0)
    return c.stats()


def should_stop(agent_id: Optional[str] = None) -> bool:
    """See `Client.should_stop` (False before `init()`)."""
    c = _default
    return False if c is None else c.should_stop(agent_id)


def directive(agent_id: Optional[str] = None) -> Optional[Directive]:
    """See `Client.directive`."""
    c = _default
    return None if c is None else c.directive(agent_id)
