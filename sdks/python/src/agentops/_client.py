"""The client: events built from calls, runs and tools as scopes, directives."""

from __future__ import annotations

import contextvars
import datetime as _dt
import functools
import inspect
import os
import threading
import time
import uuid
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

from . import _usage
from ._transport import Transport, TransportConfig
from ._util import (
    MAX_ID_BYTES,
    MAX_LATENCY_MS,
    LogOnce,
    Stats,
    attributes as _attrs,
    clean_id,
    cost as _cost,
    count as _count,
    message as _message,
    new_event_id,
)

F = TypeVar("F", bound=Callable[..., Any])
Timestamp = Union[_dt.datetime, float, int, None]
Attributes = Optional[Mapping[str, object]]

DEFAULT_ENDPOINT = "http://localhost:8080"
UNKNOWN_AGENT = "unknown_agent"


class Directive(NamedTuple):
    """What the gateway says about an agent: `action` is "pause" or "kill"
    (or "resume", only in the `on_directive` callback, when a directive is
    lifted); `directive[0], directive[1]` are (action, reason)."""

    action: str
    reason: str
    agent_id: str


class RunHandle:
    """The run a `with run(...)` block (or a decorated call) is in."""

    __slots__ = ("run_id", "agent_id", "workflow_id", "attributes", "_client", "_t0", "_failure")

    def __init__(
        self,
        run_id: str,
        agent_id: str,
        workflow_id: Optional[str],
        attributes: Optional[Dict[str, str]],
        client: Optional["Client"],
    ) -> None:
        self.run_id = run_id
        self.agent_id = agent_id
        self.workflow_id = workflow_id
        self.attributes = attributes
        self._client = client
        self._t0 = time.perf_counter()
        self._failure: Optional[Tuple[str, Optional[str]]] = None

    def fail(self, error_type: str, error_message: Optional[str] = None) -> None:
        """End the run as failed (run_failed) even though no exception leaves it."""
        self._failure = (str(error_type), error_message)

    def __repr__(self) -> str:
        return "RunHandle(run_id=%r, agent_id=%r, workflow_id=%r)" % (self.run_id, self.agent_id, self.workflow_id)


_current: "contextvars.ContextVar[Optional[RunHandle]]" = contextvars.ContextVar("agentops_run", default=None)


def current_run() -> Optional[RunHandle]:
    """The run the caller is in (contextvars: follows asyncio tasks; a thread
    pool needs `contextvars.copy_context().run`)."""
    return _current.get()


def _fast_id(value: object) -> Optional[str]:
    # Most identifiers are short printable ASCII: two C checks, no regex.
    if value is None:
        return None
    if type(value) is str and value and len(value) <= MAX_ID_BYTES and value.isascii() and value.isprintable():
        return value
    return clean_id(value)


def _put_id(ev: Dict[str, Any], key: str, value: object) -> None:
    """Set an identifier field, leaving it out when it is empty."""
    v = _fast_id(value)
    if v is not None:
        ev[key] = v


def _ts(value: Timestamp) -> int:
    """Epoch nanoseconds (formatted as RFC 3339 by the sender thread)."""
    if value is None:
        return time.time_ns()
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return int(value.timestamp() * 1_000_000) * 1000
    return int(float(value) * 1_000_000) * 1000


_env = os.environ.get


class Client:
    """An AgentOps client. `agentops.init(...)` makes the module's default
    one; a Client can also be used directly. No method raises into the
    caller: internal errors are counted (`stats()["errors"]`) and logged once
    per kind on the `agentops` logger."""

    def __init__(
        self,
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
    ) -> None:
        self._stats = Stats()
        self._log_once = LogOnce()
        self._transport: Optional[Transport] = None
        self._directives: Dict[str, Directive] = {}
        self._dlock = threading.Lock()
        self._on_directive = on_directive
        self.agent_id = clean_id(agent_id)
        self.workflow_id = clean_id(workflow_id)
        self.shutdown_timeout_s = float(shutdown_timeout_s)
        try:
            key = api_key if api_key is not None else _env("AGENTOPS_API_KEY")
            url = endpoint if endpoint is not None else (_env("AGENTOPS_ENDPOINT") or DEFAULT_ENDPOINT)
            if not key:
                raise ValueError("no api_key (argument or AGENTOPS_API_KEY)")
            cfg = TransportConfig(
                api_key=str(key),
                endpoint=str(url),
                flush_interval_s=max(0.001, float(flush_interval_ms) / 1000.0),
                max_batch=int(max_batch),
                max_queue=int(max_queue),
                timeout_s=float(timeout_s),
                max_retries=int(max_retries),
                retry_budget_s=float(retry_budget_s),
                backoff_base_s=float(backoff_base_s),
                backoff_max_s=float(backoff_max_s),
                compress=bool(compress),
                heartbeat_interval_s=float(heartbeat_interval_s) if heartbeat_interval_s else None,
                shutdown_timeout_s=self.shutdown_timeout_s,
            )
            self._transport = Transport(
                cfg,
                self._stats,
                self._log_once,
                on_directives=self._update_directives,
                make_heartbeat=self._timer_heartbeat,
            )
            if cfg.heartbeat_interval_s:
                self._transport.start()
        except Exception as e:
            self._transport = None
            self._stats.add("errors")
            self._log_once("init", "client disabled, invalid configuration: %s", e)

    @property
    def enabled(self) -> bool:
        """False when the configuration was invalid (every call is a no-op)."""
        return self._transport is not None

    # ---- internals -------------------------------------------------------

    def _internal_error(self, where: str, e: BaseException) -> None:
        try:
            self._stats.add("errors")
            self._log_once("err:%s:%s" % (where, type(e).__name__), "internal error in %s: %r", where, e)
        except Exception:
            pass

    def _base(
        self,
        type_: str,
        agent_id: Optional[str],
        run_id: Optional[str],
        workflow_id: Optional[str],
        timestamp: Timestamp,
        run: Optional[RunHandle],
    ) -> Dict[str, Any]:
        agent = _fast_id(agent_id) if agent_id is not None else None
        if agent is None:
            agent = run.agent_id if run is not None else (self.agent_id or self._unknown_agent())
        ev: Dict[str, Any] = {
            "event_id": new_event_id(),
            "type": type_,
            "agent_id": agent,
            "timestamp": time.time_ns() if timestamp is None else _ts(timestamp),
        }
        rid = _fast_id(run_id) if run_id is not None else (run.run_id if run is not None else None)
        if rid is not None:
            ev["run_id"] = rid
        wf = (
            _fast_id(workflow_id)
            if workflow_id is not None
            else (run.workflow_id if run is not None else self.workflow_id)
        )
        if wf is not None:
            ev["workflow_id"] = wf
        return ev

    def _unknown_agent(self) -> str:
        self._log_once("no-agent", "no agent_id (argument, run or init): events sent as %r", UNKNOWN_AGENT)
        return UNKNOWN_AGENT

    def _common(
        self,
        ev: Dict[str, Any],
        latency_ms: Optional[float],
        status: Optional[str],
        error_type: Optional[str],
        error_message: Optional[str],
        attributes: Attributes,
        trace_id: Optional[str],
        span_id: Optional[str],
    ) -> None:
        if latency_ms is not None:
            lat = _count(latency_ms, MAX_LATENCY_MS)
            if lat is not None:
                ev["latency_ms"] = lat
        if status is not None:
            _put_id(ev, "status", status)
        if error_type is not None:
            _put_id(ev, "error_type", error_type)
        if error_message is not None:
            msg = _message(error_message)
            if msg is not None:
                ev["error_message"] = msg
        if attributes:
            a = _attrs(attributes, self._log_once)
            if a:
                ev["attributes"] = a
        if trace_id is not None:
            _put_id(ev, "trace_id", trace_id)
        if span_id is not None:
            _put_id(ev, "span_id", span_id)

    def _emit(self, ev: Dict[str, Any]) -> Optional[str]:
        t = self._transport
        if t is None:
            return None
        return cast(str, ev["event_id"]) if t.enqueue(ev) else None

    # ---- events ----------------------------------------------------------

    def llm_call(
        self,
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
        """Record one LLM call. Token counts follow the AgentOps convention:
        `input_tokens` uncached only, `output_tokens` without reasoning. Inside
        a run, `run_id`/`agent_id`/`workflow_id` default to the run's.
        Returns the event id (None if nothing was queued)."""
        try:
            if self._transport is None:
                return None
            ev = self._base("llm_call", agent_id, run_id, workflow_id, timestamp, _current.get())
            if model is not None:
                _put_id(ev, "model", model)
            if provider is not None:
                _put_id(ev, "provider", provider)
            # Counts that do not convert are left out, not sent as null.
            if input_tokens is not None:
                n = _count(input_tokens)
                if n is not None:
                    ev["input_tokens"] = n
            if output_tokens is not None:
                n = _count(output_tokens)
                if n is not None:
                    ev["output_tokens"] = n
            if cache_read_tokens is not None:
                n = _count(cache_read_tokens)
                if n is not None:
                    ev["cache_read_tokens"] = n
            if cache_write_tokens is not None:
                n = _count(cache_write_tokens)
                if n is not None:
                    ev["cache_write_tokens"] = n
            if reasoning_tokens is not None:
                n = _count(reasoning_tokens)
                if n is not None:
                    ev["reasoning_tokens"] = n
            if cost_usd is not None:
                c = _cost(cost_usd)
                if c is not None:
                    ev["cost_usd"] = c
                else:
                    self._log_once("cost", "cost_usd %r is not a finite non-negative number: left out", cost_usd)
            if latency_ms is not None:
                lat = _count(latency_ms, MAX_LATENCY_MS)
                if lat is not None:
                    ev["latency_ms"] = lat
            if status == "ok" or status == "error":
                ev["status"] = status
            elif status is not None:
                _put_id(ev, "status", status)
            if error_type is not None or error_message is not None or attributes or trace_id is not None or span_id is not None:
                self._common(ev, None, None, error_type, error_message, attributes, trace_id, span_id)
            return self._emit(ev)
        except Exception as e:
            self._internal_error("llm_call", e)
            return None

    def _llm_from(
        self,
        reader: Callable[[object], _usage.Usage],
        default_provider: str,
        response: object,
        latency_ms: Optional[float],
        kwargs: Dict[str, Any],
    ) -> Optional[str]:
        try:
            u = reader(response)
            model = kwargs.pop("model", None) or u.model
            provider = kwargs.pop("provider", None) or default_provider
            for field in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
                if kwargs.get(field) is None:
                    kwargs[field] = getattr(u, field)
            return self.llm_call(model, provider, latency_ms=latency_ms, **kwargs)
        except Exception as e:
            self._internal_error("llm_call_from_" + default_provider, e)
            return None

    def llm_call_from_openai(self, response: object, latency_ms: Optional[float] = None, **kwargs: Any) -> Optional[str]:
        """`llm_call` with the model and token counts of an OpenAI response
        (Chat Completions or Responses API; an object or a dict). Other
        `llm_call` keywords (cost_usd, attributes, model, provider, ...) pass through."""
        return self._llm_from(_usage.openai_usage, "openai", response, latency_ms, kwargs)

    def llm_call_from_anthropic(
        self, response: object, latency_ms: Optional[float] = None, **kwargs: Any
    ) -> Optional[str]:
        """`llm_call` from an Anthropic Messages response (object or dict)."""
        return self._llm_from(_usage.anthropic_usage, "anthropic", response, latency_ms, kwargs)

    def llm_call_from_gemini(self, response: object, latency_ms: Optional[float] = None, **kwargs: Any) -> Optional[str]:
        """`llm_call` from a Gemini response's usage metadata (object or dict,
        snake_case or camelCase)."""
        return self._llm_from(_usage.gemini_usage, "google", response, latency_ms, kwargs)

    def tool_call(
        self,
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
        """Record one tool call; returns the event id."""
        try:
            if self._transport is None:
                return None
            ev = self._base("tool_call", agent_id, run_id, workflow_id, timestamp, _current.get())
            _put_id(ev, "tool_name", tool_name)
            self._common(ev, latency_ms, status, error_type, error_message, attributes, trace_id, span_id)
            return self._emit(ev)
        except Exception as e:
            self._internal_error("tool_call", e)
            return None

    def heartbeat(
        self,
        status: str = "ok",
        metadata: Attributes = None,
        *,
        agent_id: Optional[str] = None,
        timestamp: Timestamp = None,
    ) -> Optional[str]:
        """Queue a heartbeat event (metadata becomes its attributes)."""
        try:
            if self._transport is None:
                return None
            run = _current.get()
            ev = self._base("heartbeat", agent_id, None, None, timestamp, None if agent_id else run)
            ev.pop("run_id", None)
            self._common(ev, None, status, None, None, metadata, None, None)
            return self._emit(ev)
        except Exception as e:
            self._internal_error("heartbeat", e)
            return None

    def _timer_heartbeat(self) -> Optional[Dict[str, Any]]:
        if self.agent_id is None:
            self._log_once("hb-agent", "heartbeat_interval_s needs agent_id at init: no timer heartbeats")
            return None
        ev = self._base("heartbeat", self.agent_id, None, None, None, None)
        ev.pop("workflow_id", None)
        ev["status"] = "ok"
        return ev

    def _emit_run(self, handle: RunHandle, type_: str, **fields: Any) -> None:
        ev = self._base(type_, handle.agent_id, handle.run_id, handle.workflow_id, None, None)
        if handle.attributes:
            ev["attributes"] = dict(handle.attributes)
        for k, v in fields.items():
            if v is not None:
                ev[k] = v
        self._emit(ev)

    # ---- scopes ----------------------------------------------------------

    def run(
        self,
        agent_id: Optional[str] = None,
        run_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        attributes: Attributes = None,
    ) -> "RunScope":
        """A run: a context manager (`with`/`async with`) and a decorator
        (sync or async functions, a new run per call)."""
        return RunScope(lambda: self, agent_id, run_id, workflow_id, attributes)

    def tool(self, tool_name: Optional[str] = None, *, attributes: Attributes = None) -> "ToolScope":
        """A timed tool call: context manager or decorator (the function's
        name by default); status "error" with the exception's class name on error."""
        return ToolScope(lambda: self, tool_name, attributes)

    # ---- directives ------------------------------------------------------

    def _update_directives(self, agents: Sequence[str], answer: List[Dict[str, Any]]) -> None:
        listed: Dict[str, Directive] = {}
        for d in answer:
            a = d.get("agent_id")
            action = d.get("action")
            if isinstance(a, str) and isinstance(action, str):
                reason = d.get("reason")
                listed[a] = Directive(action, reason if isinstance(reason, str) else "", a)
        changes: List[Directive] = []
        with self._dlock:
            for a in set(agents) | set(listed):
                new = listed.get(a)
                old = self._directives.get(a)
                if new is None:
                    if old is not None:
                        del self._directives[a]
                        changes.append(Directive("resume", "", a))
                elif new != old:
                    self._directives[a] = new
                    changes.append(new)
        cb = self._on_directive
        if cb is None:
            return
        for c in changes:
            try:
                cb(c)
            except Exception as e:
                self._stats.add("errors")
                self._log_once("on_directive", "on_directive raised (ignored): %r", e)

    def _agent_or_current(self, agent_id: Optional[str]) -> Optional[str]:
        if agent_id is not None:
            return clean_id(agent_id)
        run = _current.get()
        return run.agent_id if run is not None else self.agent_id

    def directive(self, agent_id: Optional[str] = None) -> Optional[Directive]:
        """The agent's standing directive (pause or kill) from the gateway's
        latest answer for it, or None. The agent defaults to the current run's,
        then the client's."""
        try:
            a = self._agent_or_current(agent_id)
            if a is None:
                return None
            with self._dlock:
                return self._directives.get(a)
        except Exception as e:
            self._internal_error("directive", e)
            return None

    def should_stop(self, agent_id: Optional[str] = None) -> bool:
        """True when the agent is paused or killed."""
        d = self.directive(agent_id)
        return d is not None and d.action in ("pause", "kill")

    def directives(self) -> Dict[str, Directive]:
        """Every standing directive, by agent."""
        with self._dlock:
            return dict(self._directives)

    # ---- lifecycle -------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Send what is queued now; True when all of it was sent or finally
        dropped (counted) within `timeout_s`."""
        try:
            t = self._transport
            return True if t is None else t.flush(timeout_s)
        except Exception as e:
            self._internal_error("flush", e)
            return False

    def shutdown(self, timeout_s: Optional[float] = None) -> bool:
        """Flush (up to `timeout_s`, default `shutdown_timeout_s`), then stop
        the sender; later calls are no-ops. True if everything was sent."""
        try:
            t = self._transport
            if t is None:
                return True
            return t.shutdown(self.shutdown_timeout_s if timeout_s is None else timeout_s)
        except Exception as e:
            self._internal_error("shutdown", e)
            return False

    def close(self) -> None:
        """Stop taking events and let the sender drain in the background."""
        try:
            if self._transport is not None:
                self._transport.close()
        except Exception as e:
            self._internal_error("close", e)

    def stats(self) -> Dict[str, int]:
        """Counters: enqueued, sent, dropped_queue_full, dropped_retry_budget,
        dropped_shutdown, rejected, failed_requests, retries, errors, and the
        gauge queued (waiting or in flight)."""
        s = self._stats.snapshot()
        t = self._transport
        if t is not None:
            for k, v in t.counters().items():
                s[k] = s.get(k, 0) + v
        else:
            s.setdefault("queued", 0)
        return s


# ---- run and tool scopes ------------------------------------------------


class RunScope:
    """`with run(...) as r`, `async with run(...) as r`, or `@run(...)`."""

    def __init__(
        self,
        resolve: Callable[[], Optional[Client]],
        agent_id: Optional[str],
        run_id: Optional[str],
        workflow_id: Optional[str],
        attributes: Attributes,
    ) -> None:
        self._resolve = resolve
        self._agent_id = agent_id
        self._run_id = run_id
        self._workflow_id = workflow_id
        self._attributes = attributes
        self._stack: List[Tuple[RunHandle, Optional[contextvars.Token[Optional[RunHandle]]]]] = []

    def _start(self) -> RunHandle:
        client: Optional[Client] = None
        try:
            client = self._resolve()
        except Exception:
            client = None
        parent = _current.get()
        try:
            agent = clean_id(self._agent_id)
            if agent is None:
                if parent is not None:
                    agent = parent.agent_id
                elif client is not None and client.agent_id is not None:
                    agent = client.agent_id
                elif client is not None:
                    agent = client._unknown_agent()
                else:
                    agent = UNKNOWN_AGENT
            wf = clean_id(self._workflow_id)
            if wf is None:
                wf = parent.workflow_id if parent is not None else (client.workflow_id if client else None)
            rid = clean_id(self._run_id) or str(uuid.uuid4())
            attrs = _attrs(self._attributes, client._log_once) if (client and self._attributes) else None
            handle = RunHandle(rid, agent, wf, attrs, client)
        except Exception as e:
            if client is not None:
                client._internal_error("run", e)
            handle = RunHandle(str(uuid.uuid4()), UNKNOWN_AGENT, None, None, None)
        token: Optional[contextvars.Token[Optional[RunHandle]]] = None
        try:
            token = _current.set(handle)
        except Exception:
            pass
        self._stack.append((handle, token))
        if client is not None:
            try:
                client._emit_run(handle, "run_started")
            except Exception as e:
                client._internal_error("run", e)
        handle._t0 = time.perf_counter()
        return handle

    def _end(self, exc: Optional[BaseException]) -> None:
        if not self._stack:
            return
        handle, token = self._stack.pop()
        latency = (time.perf_counter() - handle._t0) * 1000.0
        if token is not None:
            try:
                _current.reset(token)
            except Exception:  # exited in another context than entered
                pass
        client = handle._client
        if client is None:
            return
        try:
            lat = _count(latency, MAX_LATENCY_MS)
            if exc is not None:
                client._emit_run(
                    handle,
                    "run_failed",
                    latency_ms=lat,
                    status="error",
                    error_type=_fast_id(type(exc).__name__),
                    error_message=_message(exc),
                )
            elif handle._failure is not None:
                et, em = handle._failure
                client._emit_run(
                    handle,
                    "run_failed",
                    latency_ms=lat,
                    status="error",
                    error_type=_fast_id(et),
                    error_message=_message(em) if em is not None else None,
                )
            else:
                client._emit_run(handle, "run_completed", latency_ms=lat, status="ok")
        except Exception as e:
            client._internal_error("run", e)

    def __enter__(self) -> RunHandle:
        return self._start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._end(exc)

    async def __aenter__(self) -> RunHandle:
        return self._start()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._end(exc)

    def _fresh(self) -> "RunScope":
        return RunScope(self._resolve, self._agent_id, self._run_id, self._workflow_id, self._attributes)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return cast(F, run_sync)


class ToolScope:
    """`with tool("search")`, `async with ...` or `@tool()`: one tool_call
    event at the end, with its latency, status "error" and the exception's
    class name if one leaves it."""

    def __init__(self, resolve: Callable[[], Optional[Client]], tool_name: Optional[str], attributes: Attributes) -> None:
        self._resolve = resolve
        self._tool_name = tool_name
        self._attributes = attributes
        self._t0: List[float] = []

    def __enter__(self) -> "ToolScope":
        self._t0.append(time.perf_counter())
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._end(exc)

    async def __aenter__(self) -> "ToolScope":
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._end(exc)

    def _end(self, exc: Optional[BaseException]) -> None:
        try:
            t0 = self._t0.pop() if self._t0 else time.perf_counter()
            latency = (time.perf_counter() - t0) * 1000.0
            client = self._resolve()
            if client is None:
                return
            client.tool_call(
                self._tool_name or "tool",
                latency_ms=latency,
                status="error" if exc is not None else "ok",
                error_type=type(exc).__name__ if exc is not None else None,
                error_message=_message(exc) if exc is not None else None,
                attributes=self._attributes,
            )
        except Exception:
            pass

    def __call__(self, fn: F) -> F:
        name = self._tool_name or getattr(fn, "__name__", None) or "tool"
        resolve, attrs = self._resolve, self._attributes
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def tool_async(*args: Any, **kwargs: Any) -> Any:
                async with ToolScope(resolve, name, attrs):
                    return await fn(*args, **kwargs)

            return cast(F, tool_async)

        @functools.wraps(fn)
        def tool_sync(*args: Any, **kwargs: Any) -> Any:
            with ToolScope(resolve, name, attrs):
                return fn(*args, **kwargs)

        return cast(F, tool_sync)
