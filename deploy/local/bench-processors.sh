#!/usr/bin/env bash
# Benchmark the processors, in one run (release builds, private broker and database):
#
#   1. throughput: N realistic raw events (Avro, 1,000 agents) in one topic;
#      then, alternating for BENCH_ROUNDS rounds, a raw consume→produce loop
#      (the workspace's consumer/producer and batching, payloads unchanged)
#      and ONE agentops-processors instance (spawned by the loadgen, fresh
#      group and output topic, the org's policies and budgets in Postgres)
#      over the same records, at least once (AGENTOPS_EXACTLY_ONCE=false).
#      Rates come from the output records' CreateTime stamps (first → last);
#      prints each round's ratio processor/raw and the median. With
#      BENCH_EXACTLY_ONCE=true (default) each round also runs the processor
#      with AGENTOPS_EXACTLY_ONCE=true (the default: Kafka transactions of
#      ~100 ms) over the same records, and prints its ratios to the raw loop
#      and to the at-least-once processor.
#   2. alert latency: the whole pipeline (gateway, processors, projections,
#      query API) and a webhook receiver inside the loadgen; per trial a new
#      agent-scoped budget, then the event that crosses it; from that
#      request's 202 to the receiver getting the POST (p50, p99, max).
#
# Broker: Apache Kafka, one KRaft node (2 GiB heap).
# Summary: target/bench/processors.txt. Everything started is stopped on exit.
#
# Settings (environment):
#   BENCH_EVENTS        events per throughput phase            (default 200000)
#   BENCH_ROUNDS        (raw, processor) rounds                (default 3)
#   BENCH_PARTITIONS    partitions of every topic              (default 8)
#   BENCH_GOVERNANCE    true | false: the org's policies/budgets (default true)
#   BENCH_EXACTLY_ONCE  true | false: also a transactional processor phase (default true)
#   BENCH_TRIALS        budget crossings                       (default 50)
#   BENCH_RATE          background events/s during the trials (default 500)
#   BENCH_BUDGET_CHECK_INTERVAL_MS  processors' budget check   (default 500)
#   BENCH_GOVERNANCE_RELOAD_MS      processors' config reload  (default 2000)
#   BENCH_PARTS         which parts: "throughput alerts guard" (default all three; guard:
#                       the notifier's POST with the outbound guard vs a plain client)
#   BENCH_GUARD_REQUESTS  POSTs per side and mode in the guard part (default 3000)
#   BENCH_KAFKA_PORT    (default 29094)   BENCH_PG_PORT (default 25436)
#   BENCH_NO_BUILD=1    skip the release build
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

EVENTS=${BENCH_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
PARTITIONS=${BENCH_PARTITIONS:-8}
GOVERNANCE=${BENCH_GOVERNANCE:-true}
EXACTLY_ONCE=${BENCH_EXACTLY_ONCE:-true}
TRIALS=${BENCH_TRIALS:-50}
RATE=${BENCH_RATE:-500}
CHECK_MS=${BENCH_BUDGET_CHECK_INTERVAL_MS:-500}
RELOAD_MS=${BENCH_GOVERNANCE_RELOAD_MS:-2000}
PARTS=${BENCH_PARTS:-throughput alerts guard}
KAFKA_PORT=${BENCH_KAFKA_PORT:-29094}
PG_PORT=${BENCH_PG_PORT:-25436}
STATE="$ROOT/target/bench-processors"
OUT="$ROOT/target/bench/processors.txt"
BIN="$ROOT/target/release"
GW=127.0.0.1:28100 QA=127.0.0.1:28101

ensure_postgres
ensure_kafka
cleanup() {
  for c in gateway processors projections query-api; do stop_pidfile "$STATE/$c.pid"; done
  stop_kafka "$STATE/kafka"
  stop_postgres "$(pg_dir procbench "$PG_PORT")"
}
trap cleanup EXIT
cleanup
rm -rf "$STATE" "$(pg_dir procbench "$PG_PORT")"
mkdir -p "$STATE" "$(dirname "$OUT")"

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  log "building the workspace binaries (release)"
  cargo build --release -p agentops-ingest-gateway -p agentops-processors -p agentops-projections \
    -p agentops-query-api -p agentops-loadgen --bins
fi
for b in agentops-ingest-gateway agentops-processors agentops-projections agentops-query-api agentops-loadgen; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing (build failed?)"
done

AGENTOPS_PG_FSYNC=off start_postgres "$(pg_dir procbench "$PG_PORT")" "$PG_PORT"
start_kafka "$STATE/kafka" "$KAFKA_PORT" 2g
DB="postgres://agentops:agentops@127.0.0.1:$PG_PORT/agentops"
AGENTOPS_SECRETS__KEY_FILE=$(ensure_secrets_key "$STATE")
export AGENTOPS_SECRETS__KEY_FILE
{
  echo "# ./deploy/local/bench-processors.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, Apache Kafka $KAFKA_VERSION"
} >"$OUT"

if [[ " $PARTS " == *" throughput "* ]]; then
  log "throughput: $EVENTS events, $ROUNDS rounds, $PARTITIONS partitions, governance $GOVERNANCE, transactional phase $EXACTLY_ONCE"
  RUST_LOG=warn "$BIN/agentops-loadgen" bench-processors throughput \
    --brokers "127.0.0.1:$KAFKA_PORT" --database-url "$DB" \
    --processors-bin "$BIN/agentops-processors" \
    --events "$EVENTS" --rounds "$ROUNDS" --partitions "$PARTITIONS" --governance "$GOVERNANCE" \
    --exactly-once "$EXACTLY_ONCE" \
    --log-dir "$STATE/logs" --broker-pid "$(cat "$STATE/kafka/kafka.pid")" | tee -a "$OUT"
fi

if [[ " $PARTS " == *" alerts "* ]]; then
  export AGENTOPS_DATABASE__URL="$DB"
  export AGENTOPS_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT"
  export AGENTOPS_KAFKA__PARTITIONS="$PARTITIONS"
  export AGENTOPS_KAFKA__INSTANCE_ID=bench
  export RUST_LOG=warn
  "$BIN/agentops-query-api" admin create-org --id alerts --name "Alert latency" >"$STATE/keys.env"
  INGEST_KEY=$(sed -n 's/^AGENTOPS_INGEST_KEY=//p' "$STATE/keys.env")
  [ -n "$INGEST_KEY" ] || die "create-org printed no AGENTOPS_INGEST_KEY (see $STATE/keys.env)"
  start() { # name binary listen
    AGENTOPS_LISTEN="$3" nohup "$BIN/$2" >"$STATE/$1.log" 2>&1 &
    echo $! >"$STATE/$1.pid"
    wait_http "http://$3/healthz" 90 || die "$1 is not healthy (see $STATE/$1.log)"
  }
  log "processors: AGENTOPS_BUDGET_CHECK_INTERVAL_MS=$CHECK_MS AGENTOPS_GOVERNANCE_RELOAD_MS=$RELOAD_MS"
  start projections agentops-projections 127.0.0.1:28102
  # The benchmark's webhook receiver listens on loopback, which the outbound guard refuses
  # unless allowed.
  AGENTOPS_BUDGET_CHECK_INTERVAL_MS=$CHECK_MS AGENTOPS_GOVERNANCE_RELOAD_MS=$RELOAD_MS \
    AGENTOPS_NOTIFY__ALLOW_DESTINATIONS=127.0.0.1/32 \
    start processors agentops-processors 127.0.0.1:28103
  start gateway agentops-ingest-gateway "$GW"
  start query-api agentops-query-api "$QA"
  sleep 8 # consumer groups settle

  "$BIN/agentops-loadgen" bench-processors alerts \
    --gateway "http://$GW" --key "$INGEST_KEY" --org alerts --database-url "$DB" \
    --trials "$TRIALS" --rate "$RATE" \
    --budget-check-interval-ms "$CHECK_MS" --governance-reload-ms "$RELOAD_MS" | tee -a "$OUT"
fi
if [[ " $PARTS " == *" guard "* ]]; then
  "$BIN/agentops-loadgen" bench-processors notify-guard \
    --requests "${BENCH_GUARD_REQUESTS:-3000}" | tee -a "$OUT"
fi
log "summary in $OUT"
