"""agentops.otel.configure: OTLP/HTTP spans to {endpoint}/v1/traces with the key."""

from __future__ import annotations

import sys

import pytest

import agentops.otel
from tests.support import Sink


def test_configure_exports_spans_to_v1_traces_with_the_key(sink: Sink) -> None:
    pytest.importorskip("opentelemetry.sdk.trace")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    sink.responder = lambda req, i: (200, {}, b"")
    provider = agentops.otel.configure(sink.url + "/", "aok_otel", service_name="otel-bot", set_global=False)
    assert provider is not None
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("chat gpt-4o") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute("gen_ai.usage.input_tokens", 12)
    assert provider.force_flush(10_000)
    provider.shutdown()
    (req,) = [r for r in sink.requests if r.path == "/v1/traces"]
    assert req.headers["authorization"] == "Bearer aok_otel"
    assert req.headers["content-type"] == "application/x-protobuf"
    assert b"gen_ai.request.model" in req.body and b"otel-bot" in req.body


def test_configure_without_opentelemetry_returns_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    assert agentops.otel.configure("http://127.0.0.1:1", "k") is None
