#!/usr/bin/env python3
"""Codex CLI's per-turn usage metrics through the real OpenTelemetry SDK.

Used by e2e/tests/otlp_metrics.rs: opentelemetry-sdk's MeterProvider with the
OTLP/HTTP metric exporter, pointed at the gateway's /v1/metrics, records what
codex-rs/otel records at the end of each turn: the histogram
`codex.turn.token_usage` once per `token_type` (total, input, cached_input,
output, reasoning_output; OpenAI's convention: input includes the cached
input, output the reasoning) and the counter `codex.turn.cost_microusd`,
each with Codex's session tags (auth_mode, session_source, originator, model,
app.version; no conversation id), in cumulative or delta temporality. Every
export is sent twice; one collection repeats without a new turn; then the
exporter restarts and records one more turn.

Totals: input 2,400 of which 1,500 cached, output 550 of which 150
reasoning, 40,000 micro-USD. Prints {"exports": [...]}; exits 1 if an export
failed.
"""

import argparse
import json
import sys

from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from twice_exporter import RESULTS, Twice, all_succeeded, temporality

TAGS = {
    "auth_mode": "api_key",
    "session_source": "cli",
    "originator": "codex_exec",
    "model": "gpt-5-codex",
    "app.version": "0.60.0",
}


def start(args):
    chosen = temporality(args.temporality)
    exporter = Twice(
        endpoint=args.endpoint,
        headers={"Authorization": f"Bearer {args.key}"},
        preferred_temporality={Counter: chosen, Histogram: chosen},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "codex_exec", "service.version": "0.60.0"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("codex_otel", "0.60.0")
    tokens = meter.create_histogram("codex.turn.token_usage")
    cost = meter.create_counter("codex.turn.cost_microusd")
    return provider, tokens, cost


def turn(tokens, cost, micro_usd, input, cached_input, output, reasoning_output):
    for token_type, n in [
        ("total", input + output),
        ("input", input),
        ("cached_input", cached_input),
        ("output", output),
        ("reasoning_output", reasoning_output),
    ]:
        tokens.record(n, {**TAGS, "token_type": token_type})
    cost.add(micro_usd, TAGS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True, help="http://host:port/v1/metrics")
    ap.add_argument("--key", required=True)
    ap.add_argument("--temporality", choices=["cumulative", "delta"], default="cumulative")
    args = ap.parse_args()

    provider, tokens, cost = start(args)
    turn(tokens, cost, 25_000, input=1_200, cached_input=1_000, output=300, reasoning_output=100)
    provider.force_flush()
    provider.force_flush()  # a collection with no new turn
    turn(tokens, cost, 10_000, input=800, cached_input=500, output=150, reasoning_output=50)
    provider.force_flush()
    provider.shutdown()

    provider, tokens, cost = start(args)  # the exporter restarts: from 0
    turn(tokens, cost, 5_000, input=400, cached_input=0, output=100, reasoning_output=0)
    provider.force_flush()
    provider.shutdown()

    print(json.dumps({"exports": RESULTS}))
    return 0 if all_succeeded() else 1


if __name__ == "__main__":
    sys.exit(main())
