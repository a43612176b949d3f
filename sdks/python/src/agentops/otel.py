"""OpenTelemetry bridge: send GenAI spans to the AgentOps gateway.

Apps already instrumented with the OpenTelemetry GenAI semantic conventions
(`gen_ai.*` spans from openai/anthropic/langchain instrumentations, or by hand)
need no AgentOps calls: the gateway's `POST /v1/traces` maps chat spans to
llm_call events, `execute_tool` spans to tool_call events and `invoke_agent`
spans to runs (README "### OpenTelemetry GenAI traces").

    import agentops.otel
    agentops.otel.configure("http://gateway:8080", "aok_...", service_name="support-bot-1")

OpenTelemetry is imported here only, and only when `configure` is called: the
SDK itself has no dependency on it (`pip install 'agentops-sdk[otel]'`).
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ._util import logger


def configure(
    endpoint: Optional[str] = None,
    api_key: Optional[str] = None,
    *,
    service_name: Optional[str] = None,
    tracer_provider: Optional[Any] = None,
    set_global: bool = True,
    timeout_s: float = 10.0,
) -> Optional[Any]:
    """Add a BatchSpanProcessor with the OTLP/HTTP exporter pointed at
    `{endpoint}/v1/traces` (Authorization: Bearer api_key) to `tracer_provider`,
    else to the global SDK TracerProvider if there is one, else to a new one
    (with `service.name` = service_name) made global when `set_global`.

    `endpoint` and `api_key` default to $AGENTOPS_ENDPOINT (else
    http://localhost:8080) and $AGENTOPS_API_KEY. Returns the TracerProvider,
    or None (with a logged warning) when opentelemetry-sdk or
    opentelemetry-exporter-otlp-proto-http is not installed or setup failed.
    Never raises."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as e:
        logger.warning(
            "agentops: agentops.otel.configure needs opentelemetry-sdk and "
            "opentelemetry-exporter-otlp-proto-http (pip install 'agentops-sdk[otel]'): %s",
            e,
        )
        return None
    try:
        base = (endpoint or os.environ.get("AGENTOPS_ENDPOINT") or "http://localhost:8080").rstrip("/")
        key = api_key or os.environ.get("AGENTOPS_API_KEY") or ""
        exporter = OTLPSpanExporter(
            endpoint=base + "/v1/traces",
            headers={"Authorization": "Bearer " + key},
            timeout=timeout_s,
        )
        provider = tracer_provider
        if provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                provider = current
            else:
                attrs = {"service.name": service_name} if service_name else {}
                provider = TracerProvider(resource=Resource.create(attrs))
                if set_global:
                    trace.set_tracer_provider(provider)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return provider
    except Exception as e:
        logger.warning("agentops: agentops.otel.configure failed: %r", e)
        return None
