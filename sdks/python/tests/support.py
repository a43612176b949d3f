"""Test helpers: a real local HTTP server that records what the SDK sends."""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

Answer = Tuple[int, Dict[str, str], bytes]


@dataclass
class Request:
    method: str
    path: str
    headers: Dict[str, str]
    raw: bytes
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def events(self) -> List[Dict[str, Any]]:
        doc = self.json
        if isinstance(doc, dict) and "events" in doc:
            return list(doc["events"])
        return list(doc) if isinstance(doc, list) else [doc]


def accepted(req: Request, directives: Optional[List[Dict[str, str]]] = None) -> Answer:
    body = {"accepted": len(req.events), "rejected": [], "directives": directives or []}
    return 202, {}, json.dumps(body).encode()


Responder = Callable[[Request, int], Answer]


class Sink:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port); `responder(request,
    index)` decides each answer (default: 202 accepting every event)."""

    def __init__(self, responder: Optional[Responder] = None) -> None:
        self.requests: List[Request] = []
        self.responder: Responder = responder or (lambda r, i: accepted(r))
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                req = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, raw, body)
                with sink.changed:
                    index = len(sink.requests)
                    sink.requests.append(req)
                    sink.changed.notify_all()
                try:
                    status, headers, payload = sink.responder(req, index)
                except Exception as e:  # a broken test responder answers 500
                    status, headers, payload = 500, {}, repr(e).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def events(self) -> List[Dict[str, Any]]:
        with self.lock:
            reqs = list(self.requests)
        return [e for r in reqs if r.path == "/v1/events" for e in r.events]

    def wait_requests(self, n: int, timeout: float = 10.0) -> List[Request]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("expected %d requests, got %d" % (n, len(self.requests)))
                self.changed.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `pred` until true (a deadline, not an assertion on time)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


def free_closed_port() -> int:
    """A port nothing listens on (bound then released)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port
