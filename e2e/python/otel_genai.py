#!/usr/bin/env python3
"""Export the GenAI spans of one agent run with the OpenTelemetry Python SDK.

Used by e2e/tests/otlp.rs: the real SDK (opentelemetry-sdk) and its OTLP/HTTP
protobuf exporter (opentelemetry-exporter-otlp-proto-http), pointed at the
gateway's /v1/traces with an ingest key as a Bearer header. The run: an
invoke_agent root span with two chat spans of known token counts (gpt-4o,
claude-haiku-4-5), an execute_tool span, and inside the tool a plain HTTP
span that is not a GenAI operation. With --fail the tool raises and the
agent span ends with status ERROR and an exception event.

Prints one JSON line: {"trace_id": "<32 hex>", "exports": [...results]}.
Exits 1 if any export did not succeed.
"""

import argparse
import json
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind

RESULTS = []


class RecordingExporter(OTLPSpanExporter):
    """The SDK's exporter, remembering each export's result."""

    def export(self, spans):
        result = super().export(spans)
        RESULTS.append(result.name)
        return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="http://host:port/v1/traces")
    p.add_argument("--key", required=True, help="ingest API key")
    p.add_argument("--service", default="otel-e2e-service")
    p.add_argument("--agent", default="research-agent")
    p.add_argument("--fail", action="store_true", help="the tool raises: a failed run")
    args = p.parse_args()

    exporter = RecordingExporter(
        endpoint=args.endpoint,
        headers={"Authorization": f"Bearer {args.key}"},
        timeout=30,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("agentops.e2e.genai", "1.0.0")

    agent = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": args.agent,
        "gen_ai.agent.id": f"{args.agent}-id",
        "gen_ai.conversation.id": "conv-e2e-1",
    }
    try:
        with tracer.start_as_current_span(f"invoke_agent {args.agent}", attributes=agent) as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            # gpt-4o: 12,000 input tokens of which 2,000 cached, 800 output.
            with tracer.start_as_current_span(
                "chat gpt-4o",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.usage.input_tokens": 12000,
                    "gen_ai.usage.cache_read.input_tokens": 2000,
                    "gen_ai.usage.output_tokens": 800,
                    "gen_ai.response.finish_reasons": ["tool_calls"],
                },
            ):
                time.sleep(0.02)
            with tracer.start_as_current_span(
                "execute_tool web_search",
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "web_search",
                    "gen_ai.tool.call.id": "call_1",
                },
            ):
                with tracer.start_as_current_span(
                    "GET /search",
                    kind=SpanKind.CLIENT,
                    attributes={"http.request.method": "GET", "url.full": "http://search.invalid/search"},
                ):
                    time.sleep(0.01)
                if args.fail:
                    raise RuntimeError("search backend is down")
            # claude-haiku-4-5: 5,000 input tokens = 2,000 uncached + 1,000
            # cache reads + 2,000 cache writes, 400 output.
            with tracer.start_as_current_span(
                "chat claude-haiku-4-5",
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "anthropic",
                    "gen_ai.request.model": "claude-haiku-4-5",
                    "gen_ai.usage.input_tokens": 5000,
                    "gen_ai.usage.cache_read.input_tokens": 1000,
                    "gen_ai.usage.cache_creation.input_tokens": 2000,
                    "gen_ai.usage.output_tokens": 400,
                },
            ):
                time.sleep(0.02)
    except RuntimeError:
        if not args.fail:
            raise
    ok = provider.force_flush(30_000)
    provider.shutdown()
    print(json.dumps({"trace_id": trace_id, "exports": RESULTS}))
    if not ok or not RESULTS or any(r != SpanExportResult.SUCCESS.name for r in RESULTS):
        print(f"export failed: flushed={ok} results={RESULTS}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
