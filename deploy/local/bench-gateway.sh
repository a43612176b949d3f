#!/usr/bin/env bash
# Benchmark the ingest gateway against a raw Kafka producer, in one run.
#
# Starts a private tansu broker on its in-memory engine (so the broker is not
# the bottleneck; fine here because nothing consumes or restarts) and a private
# PostgreSQL (for API keys) under target/bench-state, builds the release
# gateway, query-api and loadgen, creates an org `bench`, starts the gateway and
# runs `agentops-loadgen bench`:
#   1. raw baseline: the workspace's idempotent acks=all producer sends batches
#      of BENCH_BATCH records (same topic, key, header and Avro encoding as the
#      gateway), BENCH_CONCURRENCY batches in flight, each awaiting all its acks;
#   2. the gateway: BENCH_CONCURRENCY concurrent POST /v1/events of the same
#      batches as JSON, each awaiting its 202.
# Each phase has an uncounted 5% warm-up. It prints both rates, the ratio
# gateway/raw, the gateway's peak RSS and CPU use, then one JSON line with the
# same figures. Exit status 2 if any batch failed (the run is invalid).
# Everything it started is stopped on exit.
#
# Settings (environment):
#   BENCH_EVENTS       events per measured phase          (default 200000)
#   BENCH_BATCH        events per request / batch         (default 100)
#   BENCH_CONCURRENCY  requests / batches in flight       (default 8)
#   BENCH_ENGINE       tansu storage: memory | sqlite     (default memory)
#   BENCH_KAFKA_PORT   broker port                        (default 29092)
#   BENCH_PG_PORT      PostgreSQL port                    (default 25433)
#   BENCH_GATEWAY_ADDR gateway listen address             (default 127.0.0.1:28080)
#   BENCH_NO_BUILD=1   skip the release build (use existing binaries)
# The figures are also written to target/bench-state/bench.out.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

EVENTS=${BENCH_EVENTS:-200000}
BATCH=${BENCH_BATCH:-100}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
ENGINE=${BENCH_ENGINE:-memory}
KAFKA_PORT=${BENCH_KAFKA_PORT:-29092}
PG_PORT=${BENCH_PG_PORT:-25433}
GATEWAY_ADDR=${BENCH_GATEWAY_ADDR:-127.0.0.1:28080}
TOPIC=bench.raw
STATE="$ROOT/target/bench-state"
BIN="$ROOT/target/release"

ensure_postgres
ensure_tansu

cleanup() {
  stop_pidfile "$STATE/gateway.pid"
  stop_pidfile "$STATE/tansu/tansu.pid"
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
start_tansu "$STATE/tansu" "$KAFKA_PORT" "$ENGINE"
create_topics "$KAFKA_PORT" "$TOPIC"

export AGENTOPS_DATABASE__URL="postgres://agentops:agentops@127.0.0.1:$PG_PORT/agentops"
"$BIN/agentops-query-api" admin create-org --id bench --name "Benchmark" >"$STATE/keys.env"
INGEST_KEY=$(sed -n 's/^AGENTOPS_INGEST_KEY=//p' "$STATE/keys.env")
[ -n "$INGEST_KEY" ] || die "create-org printed no AGENTOPS_INGEST_KEY (see $STATE/keys.env)"

log "starting the gateway on $GATEWAY_ADDR (release, RUST_LOG=warn)"
AGENTOPS_LISTEN="$GATEWAY_ADDR" \
AGENTOPS_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT" \
AGENTOPS_KAFKA__TOPIC_RAW="$TOPIC" \
RUST_LOG=warn \
  nohup "$BIN/agentops-ingest-gateway" >"$STATE/gateway.log" 2>&1 &
echo $! >"$STATE/gateway.pid"
wait_http "http://$GATEWAY_ADDR/healthz" 90 || die "gateway is not healthy (see $STATE/gateway.log)"

log "benchmark: $EVENTS events, batch $BATCH, concurrency $CONCURRENCY, tansu $ENGINE engine"
"$BIN/agentops-loadgen" bench \
  --gateway "http://$GATEWAY_ADDR" \
  --key "$INGEST_KEY" \
  --brokers "127.0.0.1:$KAFKA_PORT" \
  --topic "$TOPIC" \
  --events "$EVENTS" \
  --batch "$BATCH" \
  --concurrency "$CONCURRENCY" \
  --gateway-pid "$(cat "$STATE/gateway.pid")" \
  --broker-pid "$(cat "$STATE/tansu/tansu.pid")" | tee "$STATE/bench.out"
