#!/usr/bin/env bash
# Benchmark the ingest gateway against a raw Kafka producer, in one run, for
# JSON batches (POST /v1/events) and OTLP traces (POST /v1/traces), one after
# the other.
#
# Starts a private Apache Kafka broker (one KRaft node, 2 GiB heap) and a
# private PostgreSQL (for API keys) under target/bench-state, builds the release
# gateway, query-api and loadgen and creates an org `bench`. Then, for each
# format in BENCH_FORMATS, it starts a fresh gateway (per-key rate limit off:
# AGENTOPS_RATE_LIMIT_EVENTS_PER_SEC=0; AGENTOPS_MAX_IN_FLIGHT=1024) and runs
# `agentops-loadgen bench --format F`:
#   1. raw baseline: the workspace's idempotent acks=all producer sends batches
#      of BENCH_BATCH records (same topic, key, header and Avro encoding as the
#      gateway; for OTLP the very events the gateway maps the request's spans
#      to), BENCH_CONCURRENCY batches in flight, each awaiting all its acks;
#   2. the gateway: BENCH_CONCURRENCY concurrent requests of the same batches,
#      each awaiting its 202 (JSON) or 200 (OTLP: protobuf
#      ExportTraceServiceRequests whose GenAI spans map to BENCH_BATCH events);
#   3. latency: both paths again, open loop (requests started on a fixed
#      schedule, not back to back) at BENCH_LATENCY_LOAD x the gateway's rate
#      from step 2, BENCH_LATENCY_SECS each: p50/p99 of each request's time to
#      its answer (raw: to the batch's last ack) and what the gateway adds.
# Steps 1 and 2 have an uncounted 5% warm-up. Per format it prints events/s
# (and spans/s for OTLP) of both paths, the ratio gateway/raw, the latencies,
# the gateway's peak RSS over the run and its RSS after the latency phase, CPU
# use, then one JSON line with the same figures. Exit status 2 if any batch
# failed (the run is invalid). Everything it started is stopped on exit.
#
# Settings (environment):
#   BENCH_FORMATS      formats to run, in order           (default "json otlp")
#   BENCH_EVENTS       events per measured phase          (default 200000)
#   BENCH_BATCH        events per request / batch         (default 100)
#   BENCH_CONCURRENCY  requests / batches in flight       (default 8)
#   BENCH_LATENCY_SECS latency phase per path, s; 0 skips (default 20)
#   BENCH_LATENCY_LOAD latency rate / gateway max rate    (default 0.5)
#   BENCH_PARTITIONS   partitions of the raw topic        (default 12)
#   BENCH_KAFKA_PORT   broker port                        (default 29092)
#   BENCH_PG_PORT      PostgreSQL port                    (default 25433)
#   BENCH_GATEWAY_ADDR gateway listen address             (default 127.0.0.1:28080)
#   BENCH_BROKER_WARMUP events of an uncounted first pass warming the broker's
#                      JIT; 0 skips                       (default 200000)
#   BENCH_NO_BUILD=1   skip the release build (use existing binaries)
# The figures are written to target/bench-state/bench-<format>.out, the JSON
# lines (one per format) to target/bench-state/bench.jsonl.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FORMATS=${BENCH_FORMATS:-json otlp}
EVENTS=${BENCH_EVENTS:-200000}
BATCH=${BENCH_BATCH:-100}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
LATENCY_SECS=${BENCH_LATENCY_SECS:-20}
LATENCY_LOAD=${BENCH_LATENCY_LOAD:-0.5}
KAFKA_PORT=${BENCH_KAFKA_PORT:-29092}
PG_PORT=${BENCH_PG_PORT:-25433}
GATEWAY_ADDR=${BENCH_GATEWAY_ADDR:-127.0.0.1:28080}
TOPIC=bench.raw
STATE="$ROOT/target/bench-state"
BIN="$ROOT/target/release"
# Open-loop bursts and the concurrency both stay far below this.
MAX_IN_FLIGHT=$(( CONCURRENCY * 4 > 1024 ? CONCURRENCY * 4 : 1024 ))

for f in $FORMATS; do
  case "$f" in json|otlp) ;; *) die "BENCH_FORMATS: unknown format $f (json, otlp)" ;; esac
done

ensure_postgres
ensure_kafka

cleanup() {
  stop_pidfile "$STATE/gateway.pid"
  stop_kafka "$STATE/kafka"
  stop_postgres "$(pg_dir bench "$PG_PORT")"
}
trap cleanup EXIT
cleanup
rm -rf "$STATE" "$(pg_dir bench "$PG_PORT")"
mkdir -p "$STATE"

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  log "building gateway, query-api and loadgen (release)"
  cargo build --release -p agentops-ingest-gateway -p agentops-query-api -p agentops-loadgen --bins
fi
for b in agentops-ingest-gateway agentops-query-api agentops-loadgen; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing (build failed?)"
done

AGENTOPS_PG_FSYNC=off start_postgres "$(pg_dir bench "$PG_PORT")" "$PG_PORT"
start_kafka "$STATE/kafka" "$KAFKA_PORT" 2g
kafka_topics "$KAFKA_PORT" --create --if-not-exists --topic "$TOPIC" \
  --partitions "${BENCH_PARTITIONS:-12}" --replication-factor 1 >/dev/null

export AGENTOPS_DATABASE__URL="postgres://agentops:agentops@127.0.0.1:$PG_PORT/agentops"
"$BIN/agentops-query-api" admin create-org --id bench --name "Benchmark" >"$STATE/keys.env"
INGEST_KEY=$(sed -n 's/^AGENTOPS_INGEST_KEY=//p' "$STATE/keys.env")
[ -n "$INGEST_KEY" ] || die "create-org printed no AGENTOPS_INGEST_KEY (see $STATE/keys.env)"

# start_gateway: a fresh gateway (the previous one stopped) on $GATEWAY_ADDR.
start_gateway() {
  stop_pidfile "$STATE/gateway.pid"
  log "starting the gateway on $GATEWAY_ADDR (release, RUST_LOG=warn, no rate limit, max in flight $MAX_IN_FLIGHT)"
  AGENTOPS_LISTEN="$GATEWAY_ADDR" \
  AGENTOPS_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT" \
  AGENTOPS_KAFKA__TOPIC_RAW="$TOPIC" \
  AGENTOPS_RATE_LIMIT_EVENTS_PER_SEC=0 \
  AGENTOPS_MAX_IN_FLIGHT="$MAX_IN_FLIGHT" \
  RUST_LOG=warn \
    nohup "$BIN/agentops-ingest-gateway" >>"$STATE/gateway.log" 2>&1 &
  echo $! >"$STATE/gateway.pid"
  wait_http "http://$GATEWAY_ADDR/healthz" 90 || die "gateway is not healthy (see $STATE/gateway.log)"
}

# The broker is a JVM: its first hundred thousand records run partly
# interpreted. One uncounted pass (raw producer and a gateway, latency phase
# off) warms it, so the first measured phase is not the slow one.
WARM=${BENCH_BROKER_WARMUP:-200000}
if [ "$WARM" -gt 0 ]; then
  log "warming the broker's JIT: one uncounted pass of $WARM events"
  start_gateway
  "$BIN/agentops-loadgen" bench --format json --gateway "http://$GATEWAY_ADDR" --key "$INGEST_KEY" \
    --brokers "127.0.0.1:$KAFKA_PORT" --topic "$TOPIC" --events "$WARM" --batch "$BATCH" \
    --concurrency "$CONCURRENCY" --latency-secs 0 >"$STATE/broker-warmup.out" 2>&1 \
    || die "broker warm-up failed (see $STATE/broker-warmup.out)"
fi

status=0
for FORMAT in $FORMATS; do
  # A fresh gateway per format: its peak RSS is that format's.
  start_gateway

  log "benchmark [$FORMAT]: $EVENTS events, batch $BATCH, concurrency $CONCURRENCY, latency ${LATENCY_SECS}s at ${LATENCY_LOAD} x max, Apache Kafka $KAFKA_VERSION"
  rc=0
  "$BIN/agentops-loadgen" bench \
    --format "$FORMAT" \
    --gateway "http://$GATEWAY_ADDR" \
    --key "$INGEST_KEY" \
    --brokers "127.0.0.1:$KAFKA_PORT" \
    --topic "$TOPIC" \
    --events "$EVENTS" \
    --batch "$BATCH" \
    --concurrency "$CONCURRENCY" \
    --latency-secs "$LATENCY_SECS" \
    --latency-load "$LATENCY_LOAD" \
    --gateway-pid "$(cat "$STATE/gateway.pid")" \
    --broker-pid "$(cat "$STATE/kafka/kafka.pid")" >"$STATE/bench-$FORMAT.out" || rc=$?
  cat "$STATE/bench-$FORMAT.out"
  grep '^{.*"bench":"gateway_vs_raw"' "$STATE/bench-$FORMAT.out" >>"$STATE/bench.jsonl" || true
  [ "$rc" = 0 ] || status=$rc
done

log "one JSON line per format:"
cat "$STATE/bench.jsonl"
exit "$status"
