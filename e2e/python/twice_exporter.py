"""An OTLP/HTTP metric exporter that sends every export twice (a retry after
a lost answer), for the metrics scripts of e2e/tests/otlp_metrics.rs, and a
temporality from the scripts' --temporality argument."""

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import AggregationTemporality

# Every export's outcome ("SUCCESS" or the failure), in order.
RESULTS = []


class Twice(OTLPMetricExporter):
    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        first = super().export(metrics_data, timeout_millis, **kwargs)
        second = super().export(metrics_data, timeout_millis, **kwargs)
        RESULTS.extend([first.name, second.name])
        return first


def temporality(name):
    return AggregationTemporality.DELTA if name == "delta" else AggregationTemporality.CUMULATIVE


def all_succeeded():
    return bool(RESULTS) and all(r == "SUCCESS" for r in RESULTS)
