"""Integration tests against the real pipeline (contract: AGENTOPS_IT_* variables).

AGENTOPS_IT_GATEWAY, AGENTOPS_IT_QUERY, AGENTOPS_IT_INGEST_KEY,
AGENTOPS_IT_READ_KEY, AGENTOPS_IT_ADMIN_KEY: one org's keys. Missing
variables skip these tests, or fail them when AGENTOPS_IT_REQUIRED=1 (CI).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import http.client
import pytest

VARS = (
    "AGENTOPS_IT_GATEWAY",
    "AGENTOPS_IT_QUERY",
    "AGENTOPS_IT_INGEST_KEY",
    "AGENTOPS_IT_READ_KEY",
    "AGENTOPS_IT_ADMIN_KEY",
)
DEADLINE_S = 60.0


@dataclass(frozen=True)
class Stack:
    gateway: str
    query: str
    ingest_key: str
    read_key: str
    admin_key: str


def http_json(
    method: str, url: str, key: str, body: Optional[Dict[str, Any]] = None, timeout: float = 10.0
) -> Tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", "Bearer " + key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


@pytest.fixture(scope="session")
def stack() -> Stack:
    missing = [v for v in VARS if not os.environ.get(v)]
    if missing:
        msg = "integration variables not set: " + ", ".join(missing)
        if os.environ.get("AGENTOPS_IT_REQUIRED") == "1":
            pytest.fail(msg + " (AGENTOPS_IT_REQUIRED=1)")
        pytest.skip(msg)
    e = os.environ
    return Stack(
        e["AGENTOPS_IT_GATEWAY"].rstrip("/"),
        e["AGENTOPS_IT_QUERY"].rstrip("/"),
        e["AGENTOPS_IT_INGEST_KEY"],
        e["AGENTOPS_IT_READ_KEY"],
        e["AGENTOPS_IT_ADMIN_KEY"],
    )


def unique(prefix: str) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


def wait_run(
    stack: Stack,
    run_id: str,
    done: Callable[[Dict[str, Any]], bool],
    read_key: Optional[str] = None,
    timeout: float = DEADLINE_S,
) -> Dict[str, Any]:
    """Poll GET /v1/runs/{run_id} until `done(run)` (the pipeline is asynchronous)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        status, run = http_json("GET", "%s/v1/runs/%s" % (stack.query, run_id), read_key or stack.read_key)
        if status == 200 and isinstance(run, dict):
            last = run
            if done(run):
                return run
        elif status != 404:
            last = (status, run)
        if time.monotonic() > deadline:
            raise AssertionError("run %s not as expected within %.0f s; last answer: %r" % (run_id, timeout, last))
        time.sleep(0.25)


# ---- a fault-injecting proxy in front of the real gateway ---------------

# What the proxy does with request i: "forward"; "503" or "429" (answer that,
# with Retry-After: 1, without forwarding); "forward-then-503" (the gateway
# takes the batch but the answer is lost: the SDK must retry and the
# pipeline must deduplicate).
Plan = Callable[[int], str]


class FaultProxy:
    def __init__(self, upstream: str, plan: Plan) -> None:
        self.plan = plan
        # (action, status answered, status of the gateway or 0 when not forwarded)
        self.log: List[Tuple[str, int, int]] = []
        self.lock = threading.Lock()
        up = urlsplit(upstream)
        assert up.hostname is not None
        self.up_host: str = up.hostname
        self.up_port = up.port or 80
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with proxy.lock:
                    i = len(proxy.log)
                    action = proxy.plan(i)
                    proxy.log.append((action, 0, 0))
                status, headers, payload, upstream = proxy.handle(action, self.path, dict(self.headers.items()), body)
                with proxy.lock:
                    proxy.log[i] = (action, status, upstream)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def forward(self, path: str, headers: Dict[str, str], body: bytes) -> Tuple[int, Dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.up_host, self.up_port, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "content-encoding", "x-api-key")}
            conn.request("POST", path, body=body, headers=keep)
            resp = conn.getresponse()
            data = resp.read()
            out = {"Content-Type": resp.getheader("Content-Type") or "application/json"}
            ra = resp.getheader("Retry-After")
            if ra:
                out["Retry-After"] = ra
            return resp.status, out, data
        finally:
            conn.close()

    def handle(
        self, action: str, path: str, headers: Dict[str, str], body: bytes
    ) -> Tuple[int, Dict[str, str], bytes, int]:
        """(status, headers, body) to answer, and the gateway's status (0: not forwarded)."""
        injected = {"Retry-After": "1", "Content-Type": "application/json"}
        if action == "forward":
            status, h, data = self.forward(path, headers, body)
            return status, h, data, status
        if action == "forward-then-503":
            upstream, _, _ = self.forward(path, headers, body)
            return 503, injected, b'{"error":{"code":"unavailable","message":"injected"}}', upstream
        if action == "503":
            return 503, injected, b'{"error":{"code":"unavailable","message":"injected"}}', 0
        if action == "429":
            return 429, injected, b'{"error":{"code":"rate_limited","message":"injected"}}', 0
        raise AssertionError("unknown action " + action)

    def actions(self) -> List[str]:
        with self.lock:
            return [a for a, _, _ in self.log]

    def statuses(self) -> List[int]:
        """The statuses the SDK was answered."""
        with self.lock:
            return [s for _, s, _ in self.log]

    def upstream(self) -> List[int]:
        """The gateway's own statuses (0 for a request not forwarded)."""
        with self.lock:
            return [u for _, _, u in self.log]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_factory(stack: Stack) -> Iterator[Callable[[Plan], FaultProxy]]:
    made: List[FaultProxy] = []

    def make(plan: Plan) -> FaultProxy:
        p = FaultProxy(stack.gateway, plan)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
