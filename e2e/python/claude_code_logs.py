#!/usr/bin/env python3
"""Claude Code's and Codex CLI's log events through the real OpenTelemetry SDK.

Used by e2e/tests/otlp_logs.rs: opentelemetry-sdk's LoggerProvider with the
OTLP/HTTP log exporter (opentelemetry-exporter-otlp-proto-http), pointed at
the gateway's /v1/logs with an ingest key, emits the records those agents
export, with their names and attributes (Claude Code: the record body is
`claude_code.<event>` and `event.name` the bare name; Codex: `event.name` is
`codex.<event>`): one Claude Code session (a prompt, two API requests, an API
error, a tool result) and one Codex conversation (its start, a completed
response, a tool result). Each batch is exported twice (an exporter retry).

Prints one JSON line: {"claude_session": ..., "codex_conversation": ...,
"exports": [...]}. Exits 1 if an export failed.
"""

import argparse
import json
import sys
import time
import uuid

from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

RESULTS = []


class Twice(OTLPLogExporter):
    """Exports every batch twice, as a retry after a lost answer does."""

    def export(self, batch):
        first = super().export(batch)
        second = super().export(batch)
        RESULTS.extend([first.name, second.name])
        return first


def provider(endpoint, key, service):
    p = LoggerProvider(resource=Resource.create({"service.name": service, "host.arch": "amd64"}))
    p.add_log_record_processor(
        SimpleLogRecordProcessor(Twice(endpoint=endpoint, headers={"Authorization": f"Bearer {key}"}))
    )
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True, help="http://host:port/v1/logs")
    ap.add_argument("--key", required=True)
    args = ap.parse_args()

    session = f"cc-{uuid.uuid4()}"
    now = time.time_ns()
    claude = provider(args.endpoint, args.key, "claude-code")
    log = claude.get_logger("com.anthropic.claude_code.events", "2.0.0")
    common = {"session.id": session, "prompt.id": str(uuid.uuid4()), "user.account_uuid": "u-1",
              "terminal.type": "vscode", "app.version": "2.0.0"}
    seq = iter(range(1, 100))

    def emit(name, ms, **attrs):
        a = dict(common, **{"event.name": name, "event.sequence": next(seq)}, **attrs)
        log.emit(LogRecord(timestamp=now + ms * 1_000_000, body=f"claude_code.{name}", attributes=a))

    emit("user_prompt", 0, prompt_length=31, prompt="please refactor the billing code")
    emit("api_request", 10, model="claude-sonnet-4-5", cost_usd=0.0456, duration_ms=2200,
         input_tokens=1200, output_tokens=800, cache_read_tokens=30000, cache_creation_tokens=2000)
    emit("api_error", 20, model="claude-sonnet-4-5", error="Overloaded", status_code="529",
         duration_ms=400, attempt=1)
    emit("api_request", 30, model="claude-haiku-4-5", cost_usd=0.0021, duration_ms=700,
         input_tokens=500, output_tokens=300, cache_read_tokens=0, cache_creation_tokens=0)
    emit("tool_result", 40, tool_name="Bash", success="true", duration_ms=95,
         tool_parameters='{"bash_command":"ls"}')
    claude.shutdown()

    conversation = f"cx-{uuid.uuid4()}"
    codex = provider(args.endpoint, args.key, "codex_cli_rs")
    clog = codex.get_logger("codex_otel", "0.50.0")

    def cemit(name, ms, **attrs):
        a = {"event.name": name, "conversation.id": conversation, **attrs}
        clog.emit(LogRecord(timestamp=now + ms * 1_000_000, body=name, attributes=a))

    cemit("codex.conversation_starts", 0, model="gpt-5.1")
    cemit("codex.sse_event", 10, **{"event.kind": "response.completed"}, model="gpt-5.1",
          input_token_count=10000, cached_token_count=4000, output_token_count=900,
          reasoning_token_count=600, tool_token_count=10900)
    cemit("codex.tool_result", 20, tool_name="shell", duration_ms=30, success="false")
    codex.shutdown()

    print(json.dumps({"claude_session": session, "codex_conversation": conversation,
                      "exports": RESULTS}))
    return 0 if RESULTS and all(r == "SUCCESS" for r in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
