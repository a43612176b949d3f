#!/usr/bin/env python3
"""Claude Code's usage counters through the real OpenTelemetry SDK.

Used by e2e/tests/otlp_metrics.rs: opentelemetry-sdk's MeterProvider with the
OTLP/HTTP metric exporter (opentelemetry-exporter-otlp-proto-http), pointed
at the gateway's /v1/metrics, records what Claude Code does:
`claude_code.token.usage` (attribute `type`: input, output, cacheRead,
cacheCreation) and `claude_code.cost.usage` (USD), with `session.id` and
`model`, in cumulative or delta temporality. Every export is sent twice (a
retry after a lost answer); one collection repeats without new usage; then
the exporter restarts (a new MeterProvider: the counters start again from 0
with a new start time) and records more.

Totals: input 1,800, output 350, cacheRead 5,000, cacheCreation 300 tokens,
$0.08. Prints {"session": ..., "exports": [...]}; exits 1 if an export failed.
"""

import argparse
import json
import sys
import uuid

from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from twice_exporter import RESULTS, Twice, all_succeeded, temporality



def start(args):
    chosen = temporality(args.temporality)
    exporter = Twice(
        endpoint=args.endpoint,
        headers={"Authorization": f"Bearer {args.key}"},
        preferred_temporality={Counter: chosen},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "claude-code", "service.version": "2.0.0"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("com.anthropic.claude_code", "2.0.0")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    cost = meter.create_counter("claude_code.cost.usage", unit="USD")
    return provider, tokens, cost


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True, help="http://host:port/v1/metrics")
    ap.add_argument("--key", required=True)
    ap.add_argument("--temporality", choices=["cumulative", "delta"], default="cumulative")
    args = ap.parse_args()
    session = f"ccm-{uuid.uuid4()}"
    base = {"session.id": session, "user.account_uuid": "u-1", "terminal.type": "cli"}
    model = {"model": "claude-sonnet-4-5"}

    def use(tokens, cost, usd, **by_type):
        for kind, n in by_type.items():
            tokens.add(n, {**base, **model, "type": kind})
        cost.add(usd, {**base, **model})

    provider, tokens, cost = start(args)
    use(tokens, cost, 0.05, input=1000, output=200, cacheRead=5000, cacheCreation=300)
    provider.force_flush()
    provider.force_flush()  # a collection with nothing new
    use(tokens, cost, 0.02, input=500, output=100)
    provider.force_flush()
    provider.shutdown()

    provider, tokens, cost = start(args)  # the exporter restarts: counters from 0
    use(tokens, cost, 0.01, input=300, output=50)
    provider.force_flush()
    provider.shutdown()

    print(json.dumps({"session": session, "exports": RESULTS}))
    return 0 if all_succeeded() else 1


if __name__ == "__main__":
    sys.exit(main())
