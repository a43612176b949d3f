#!/usr/bin/env python3
"""A real GenAI instrumentation library exporting to the gateway's /v1/traces.

Used by e2e/tests/otlp_instrumentation.rs. The application code is what an
agent built on the OpenAI client looks like: the `openai` package from PyPI
calls a local OpenAI-compatible server (started here, on a free port, with
canned Chat Completions answers carrying usage with cached and reasoning
tokens), instrumented by `opentelemetry-instrumentation-openai-v2` (the
OpenTelemetry project's own instrumentation, also from PyPI): nothing in this
file writes a gen_ai.* usage attribute. The app opens one `invoke_agent`
span around its two calls, as agent frameworks do, and the OTLP/HTTP
exporter sends everything to the gateway with an ingest key.

Prints one JSON line: {"trace_id": "<32 hex>", "attributes": {<span name>:
{<gen_ai.* attributes the instrumentation wrote>}}, "exports": [...]}.
Exits 1 if an export failed.
"""

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

# The canned answers, by model: (prompt_tokens incl. cached, cached,
# completion_tokens incl. reasoning, reasoning).
USAGE = {
    "gpt-4o-2024-08-06": (12000, 2000, 800, 0),
    "o3-mini": (3000, 0, 1500, 1000),
}

RESULTS = []
SEEN = {}


class Recording(SpanExporter):
    """Keeps the gen_ai.* attributes of each span (to print them)."""

    def export(self, spans):
        for s in spans:
            SEEN[s.name] = {k: v for k, v in (s.attributes or {}).items() if k.startswith("gen_ai.")}
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


class RecordingOTLP(OTLPSpanExporter):
    def export(self, spans):
        result = super().export(spans)
        RESULTS.append(result.name)
        return result


class OpenAICompatible(BaseHTTPRequestHandler):
    """POST /v1/chat/completions, answered like the OpenAI API."""

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body["model"]
        prompt, cached, completion, reasoning = USAGE[model]
        answer = {
            "id": "chatcmpl-e2e",
            "object": "chat.completion",
            "created": 1764000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "done"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="http://host:port/v1/traces")
    p.add_argument("--key", required=True, help="ingest API key")
    p.add_argument("--agent", default="instrumented-agent")
    args = p.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), OpenAICompatible)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    provider = TracerProvider(resource=Resource.create({"service.name": args.agent}))
    exporter = RecordingOTLP(
        endpoint=args.endpoint,
        headers={"Authorization": f"Bearer {args.key}"},
        timeout=30,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(Recording()))
    OpenAIInstrumentor().instrument(tracer_provider=provider)

    import openai  # after instrumenting, as an app would with auto-instrumentation

    client = openai.OpenAI(
        api_key="sk-e2e-not-a-key",
        base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
        max_retries=0,
    )
    tracer = provider.get_tracer("agentops.e2e.app")
    with tracer.start_as_current_span(
        f"invoke_agent {args.agent}",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": args.agent,
            "gen_ai.provider.name": "openai",
        },
    ) as agent:
        trace_id = format(agent.get_span_context().trace_id, "032x")
        for model in USAGE:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "plan the trip"}]
            )
    provider.force_flush()
    provider.shutdown()
    server.shutdown()
    print(json.dumps({"trace_id": trace_id, "attributes": SEEN, "exports": RESULTS}))
    return 0 if RESULTS and all(r == "SUCCESS" for r in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
