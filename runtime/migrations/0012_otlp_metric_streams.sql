-- `POST /v1/metrics` (ingest-gateway/src/metric_state.rs): the last point
-- the gateways saw of each cumulative counter stream (the metric with all its
-- attributes, hashed), so a running total becomes increments counted once:
-- a re-export of the last point recomputes the same increment (from
-- `prev_value`), a new `start_ns` (an exporter restart) counts from 0.
CREATE TABLE otlp_metric_streams (
    org_id      TEXT NOT NULL,
    stream      TEXT NOT NULL,
    start_ns    BIGINT NOT NULL,
    last_ns     BIGINT NOT NULL,
    last_value  DOUBLE PRECISION NOT NULL,
    prev_value  DOUBLE PRECISION NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, stream)
);
CREATE INDEX otlp_metric_streams_seen ON otlp_metric_streams (seen_at);
