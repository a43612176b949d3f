"""The fire-and-forget transport: a bounded queue and one sender thread.

Agent code only ever appends to a deque under one short lock (`enqueue`); the
daemon sender thread takes batches of at most `max_batch` events every
`flush_interval` (or as soon as a full batch is waiting), serializes and
gzip-compresses them, POSTs them to `/v1/events` and retries what may be
retried with exponential backoff and full jitter, honoring `Retry-After`,
within a per-batch retry budget. Event ids are assigned when an event is
created, so a retried batch carries the same ids and is deduplicated
downstream.
"""

from __future__ import annotations

import atexit
import email.utils
import gzip
import http.client
import json
import os
import random
import socket
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ._util import LogOnce, Stats, format_ts

Event = Dict[str, Any]

MAX_BODY_BYTES = 1024 * 1024
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "agentops-python/0.1.0"


@dataclass(frozen=True)
class TransportConfig:
    api_key: str
    endpoint: str
    flush_interval_s: float = 1.0
    max_batch: int = 1000
    max_queue: int = 10_000
    timeout_s: float = 10.0
    max_retries: int = 10
    retry_budget_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    compress: bool = True
    heartbeat_interval_s: Optional[float] = None
    shutdown_timeout_s: float = 5.0


# Directive handler: (agent ids of the batch, the answer's directives).
DirectiveHandler = Callable[[Sequence[str], List[Dict[str, Any]]], None]
HeartbeatMaker = Callable[[], Optional[Event]]


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - time.time()
    if secs != secs:  # NaN
        return None
    return max(0.0, secs)


class _Abort(Exception):
    pass


_live: "weakref.WeakSet[Transport]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for t in list(_live):
        t._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _at_exit() -> None:
    """Flush every live transport at interpreter exit, each within its
    shutdown_timeout_s and all of them within the longest of those."""
    transports = [t for t in list(_live) if t._thread is not None]
    if not transports:
        return
    deadline = time.monotonic() + max(t.config.shutdown_timeout_s for t in transports)
    for t in transports:
        try:
            left = min(t.config.shutdown_timeout_s, deadline - time.monotonic())
            t.shutdown(max(0.0, left))
        except Exception:
            pass


atexit.register(_at_exit)


class Transport:
    def __init__(
        self,
        config: TransportConfig,
        stats: Stats,
        log_once: LogOnce,
        on_directives: Optional[DirectiveHandler] = None,
        make_heartbeat: Optional[HeartbeatMaker] = None,
    ) -> None:
        self.config = config
        self._stats = stats
        self._log_once = log_once
        self._on_directives = on_directives
        self._make_heartbeat = make_heartbeat
        url = urlsplit(config.endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("endpoint must be an http(s) URL, got %r" % config.endpoint)
        self._https = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._https else 80)
        self._base_path = url.path.rstrip("/")
        self._headers = {
            "Authorization": "Bearer " + config.api_key,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if config.compress:
            self._headers["Content-Encoding"] = "gzip"
        self._max_queue = max(1, int(config.max_queue))
        self._max_batch = max(1, min(1000, int(config.max_batch)))
        self._init_state()
        _live.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._queue: Deque[Event] = deque()
        self._appended = 0  # events ever appended (their sequence numbers are 1..appended)
        self._taken_upto = 0  # sequence number of the last event taken by the sender
        self._done_upto = 0  # every event up to this one was sent or finally dropped
        self._inflight = 0
        self._enqueued = 0
        self._dropped_full = 0
        self._dropped_closed = 0
        self._closing = False
        self._wake = threading.Event()
        self._abort = threading.Event()
        self._done = threading.Condition(threading.Lock())
        self._thread: Optional[threading.Thread] = None
        self._start_lock = threading.Lock()
        self._conn: Optional[http.client.HTTPConnection] = None

    def _reset_after_fork(self) -> None:
        # The child has no sender thread and the locks may have been held by
        # a thread that does not exist here: start afresh, without the
        # parent's queue (the parent sends those).
        self._init_state()

    # ---- agent side ----------------------------------------------------

    def enqueue(self, event: Event) -> bool:
        """Append one event; never blocks beyond the queue lock, never raises
        for a full queue (the oldest event is dropped and counted). False when
        closed (the event is counted as dropped_shutdown)."""
        with self._lock:
            if self._closing:
                self._dropped_closed += 1
                return False
            q = self._queue
            if len(q) >= self._max_queue:
                q.popleft()
                self._dropped_full += 1
            q.append(event)
            self._appended += 1
            self._enqueued += 1
            full = len(q) >= self._max_batch
        if self._thread is None:
            self.start()
        if full and not self._wake.is_set():
            self._wake.set()
        return True

    def start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._closing:
                return
            t = threading.Thread(target=self._run, name="agentops-sender", daemon=True)
            self._thread = t
            t.start()

    def queued(self) -> int:
        with self._lock:
            return len(self._queue) + self._inflight

    def counters(self) -> Dict[str, int]:
        with self._lock:
            return {
                "enqueued": self._enqueued,
                "dropped_queue_full": self._dropped_full,
                "dropped_shutdown": self._dropped_closed,
                "queued": len(self._queue) + self._inflight,
            }

    def _all_done(self, target: int) -> bool:
        with self._lock:
            return self._done_upto >= target or (not self._queue and self._inflight == 0)

    def flush(self, timeout_s: float) -> bool:
        """Wait until every event queued before the call was sent or finally
        dropped; True if so within `timeout_s`."""
        if threading.current_thread() is self._thread:
            return False  # called from on_directive: the sender cannot wait for itself
        with self._lock:
            target = self._appended
        if self._all_done(target):
            return True
        if self._thread is None or not self._thread.is_alive():
            return False
        self._wake.set()
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._done:
            while not self._all_done(target):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(min(left, 0.1))
        return True

    def close(self) -> None:
        """Refuse new events and let the sender drain the queue and exit."""
        with self._lock:
            self._closing = True
        self._wake.set()

    def shutdown(self, timeout_s: float) -> bool:
        """Close, wait up to `timeout_s` for the queue to drain, then give up
        on what is left (counted as dropped_shutdown). True if all was sent."""
        if threading.current_thread() is self._thread:
            self.close()
            return False
        with self._lock:
            target = self._appended
        self.close()
        ok = self.flush(timeout_s) if self._thread is not None else self._all_done(target)
        t = self._thread
        if not ok:
            self._abort.set()
        if t is not None and t.is_alive():
            # The sender exits at once when aborted, except in the middle of a
            # request (bounded by timeout_s of the client).
            t.join(0.5 if ok else min(1.0, self.config.timeout_s))
        return ok

    # ---- sender thread -------------------------------------------------

    def _run(self) -> None:
        cfg = self.config
        hb_every = cfg.heartbeat_interval_s if cfg.heartbeat_interval_s and cfg.heartbeat_interval_s > 0 else None
        next_hb = time.monotonic() if hb_every else None
        next_flush = time.monotonic() + cfg.flush_interval_s
        while True:
            try:
                with self._lock:
                    if self._closing and not self._queue:
                        break
                if self._abort.is_set():
                    break
                deadline = next_flush if next_hb is None else min(next_flush, next_hb)
                woken = self._wake.wait(max(0.0, deadline - time.monotonic()))
                if woken:
                    # Cleared before draining, so a wake-up set from now on
                    # is seen by the next wait.
                    self._wake.clear()
                now = time.monotonic()
                if next_hb is not None and hb_every is not None and now >= next_hb:
                    next_hb = now + hb_every
                    self._heartbeat()
                if woken or now >= next_flush:
                    # A full batch, a flush, a close, or the interval: send
                    # everything queued, in batches of max_batch.
                    self._drain()
                    next_flush = time.monotonic() + cfg.flush_interval_s
            except _Abort:
                break
            except Exception as e:  # never let the thread die quietly
                self._stats.add("errors")
                self._log_once("sender:" + type(e).__name__, "sender error: %r", e)
                self._abort.wait(1.0)
        # Anything left when aborted is dropped and counted.
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            self._dropped_closed += left
            self._done_upto = self._appended
            self._inflight = 0
        self._notify_done()
        self._close_conn()

    def _heartbeat(self) -> None:
        if self._make_heartbeat is None:
            return
        ev = self._make_heartbeat()
        if ev is not None:
            self.enqueue(ev)

    def _notify_done(self) -> None:
        with self._done:
            self._done.notify_all()

    def _drain(self) -> None:
        while True:
            with self._lock:
                q = self._queue
                if not q:
                    return
                k = min(len(q), self._max_batch)
                batch = [q.popleft() for _ in range(k)]
                self._taken_upto = self._appended - len(q)
                upto = self._taken_upto
                self._inflight = k
            try:
                self._send_events(batch)
            finally:
                with self._lock:
                    self._inflight = 0
                    if upto > self._done_upto:
                        self._done_upto = upto
                self._notify_done()

    def _send_events(self, events: List[Event]) -> None:
        """Send one batch (split in halves while its body is over 1 MiB)."""
        if self._abort.is_set():
            with self._lock:
                self._dropped_closed += len(events)
            raise _Abort()
        for ev in events:
            ts = ev.get("timestamp")
            if isinstance(ts, int):
                ev["timestamp"] = format_ts(ts)
        try:
            body = json.dumps({"events": events}, separators=(",", ":"), default=str).encode("utf-8")
        except (TypeError, ValueError) as e:
            # Events are built from checked values; this is a bug, not the agent's.
            self._stats.add("errors")
            self._stats.add("rejected", len(events))
            self._log_once("serialize", "could not serialize a batch: %r", e)
            return
        if len(body) > MAX_BODY_BYTES:
            if len(events) == 1:
                self._stats.add("rejected")
                self._log_once("too-large", "an event larger than 1 MiB was dropped")
                return
            mid = len(events) // 2
            self._send_events(events[:mid])
            self._send_events(events[mid:])
            return
        self._post_batch(events, body)

    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        cfg = self.config
        cap = min(cfg.backoff_max_s, cfg.backoff_base_s * (2 ** min(attempt, 30)))
        delay = random.uniform(0.0, cap)  # full jitter
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def _post_batch(self, events: List[Event], body: bytes) -> None:
        cfg = self.config
        # Level 1: a third of level 6's time for a body about 10% larger (JSON
        # events compress about 8x either way).
        payload = gzip.compress(body, compresslevel=1) if cfg.compress else body
        started = time.monotonic()
        attempt = 0
        n = len(events)
        while True:
            if self._abort.is_set():
                with self._lock:
                    self._dropped_closed += n
                raise _Abort()
            status: Optional[int] = None
            retry_after: Optional[float] = None
            answer = b""
            try:
                status, ra, answer = self._post("/v1/events", payload)
                retry_after = parse_retry_after(ra)
            except (OSError, http.client.HTTPException) as e:
                self._log_once("conn:" + type(e).__name__, "cannot reach %s: %r (retrying)", cfg.endpoint, e)
            if status is not None and 200 <= status < 300:
                self._accepted(events, answer)
                return
            self._stats.add("failed_requests")
            if status == 413:
                if n > 1:
                    mid = n // 2
                    self._send_events(events[:mid])
                    self._send_events(events[mid:])
                else:
                    self._stats.add("rejected")
                    self._log_once("413", "the gateway refused an event as too large (413)")
                return
            if status is None or status in RETRYABLE_STATUS:
                attempt += 1
                delay = self._backoff(attempt - 1, retry_after)
                if attempt > cfg.max_retries or time.monotonic() - started + delay > cfg.retry_budget_s:
                    self._stats.add("dropped_retry_budget", n)
                    self._log_once(
                        "budget",
                        "a batch of %d events was dropped after %d attempts (last status %s)",
                        n,
                        attempt,
                        status if status is not None else "connection error",
                    )
                    return
                self._stats.add("retries")
                if self._abort.wait(delay):
                    continue  # aborted: the loop's top drops the batch
                continue
            # 400, 401, 403, 404, 415, ...: not retried.
            self._stats.add("rejected", n)
            code = _error_code(answer)
            self._log_once(
                "status:%d:%s" % (status, code),
                "the gateway refused a batch of %d events: %d %s (not retried)",
                n,
                status,
                code or "",
            )
            return

    def _accepted(self, events: List[Event], answer: bytes) -> None:
        try:
            doc = json.loads(answer) if answer else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        accepted = doc.get("accepted")
        rejected = doc.get("rejected")
        n_rej = len(rejected) if isinstance(rejected, list) else 0
        if not isinstance(accepted, int) or isinstance(accepted, bool):
            accepted = len(events) - n_rej
        self._stats.add("sent", accepted)
        if n_rej:
            self._stats.add("rejected", n_rej)
            assert isinstance(rejected, list)
            for r in rejected:
                if isinstance(r, dict):
                    self._log_once(
                        "rejected:%s" % r.get("field"),
                        "the gateway rejected an event: field %s: %s",
                        r.get("field"),
                        r.get("error"),
                    )
        directives = doc.get("directives")
        if self._on_directives is not None:
            agents = sorted({str(e.get("agent_id")) for e in events})
            ds = [d for d in directives if isinstance(d, dict)] if isinstance(directives, list) else []
            try:
                self._on_directives(agents, ds)
            except Exception as e:
                self._stats.add("errors")
                self._log_once("directives", "directive handling failed: %r", e)

    # ---- HTTP ----------------------------------------------------------

    def _new_conn(self) -> http.client.HTTPConnection:
        timeout = self.config.timeout_s
        if self._https:
            return _NoDelayHTTPSConnection(self._host, self._port, timeout=timeout)
        return _NoDelayHTTPConnection(self._host, self._port, timeout=timeout)

    def _close_conn(self) -> None:
        c, self._conn = self._conn, None
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def _post(self, path: str, payload: bytes) -> Tuple[int, Optional[str], bytes]:
        for fresh_try in (False, True):
            reused = self._conn is not None
            conn = self._conn if self._conn is not None else self._new_conn()
            self._conn = conn
            try:
                conn.request("POST", self._base_path + path, body=payload, headers=self._headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._close_conn()
                if reused and not fresh_try:
                    continue  # a kept-alive connection the server had closed: once more, fresh
                raise
            except (OSError, http.client.HTTPException):
                self._close_conn()
                raise
            if resp.will_close:
                self._close_conn()
            return resp.status, resp.getheader("Retry-After"), data
        raise http.client.HTTPException("unreachable")


def _nodelay(conn: http.client.HTTPConnection) -> None:
    # http.client writes the headers and the body in two sends: with Nagle's
    # algorithm the body then waits for the peer's delayed ACK of the headers
    # (40 ms a request on Linux).
    try:
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class _NoDelayHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _nodelay(self)


class _NoDelayHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _nodelay(self)


def _error_code(answer: bytes) -> str:
    try:
        doc = json.loads(answer)
        code = doc["error"]["code"]
        return code if isinstance(code, str) else ""
    except Exception:
        return ""

