#!/usr/bin/env bash
# The live feed's WebSocket fan-out through the whole pipeline (issue 14,
# item 4): gateway 202 → frame at each client of `GET /v1/live`, with 200
# clients over two orgs while runs flow at 2,000 events/s; and the pipeline's
# throughput (events projected per second) with the clients connected beside
# the same load with none, measured in the same run (a ratio).
# Starts a private PostgreSQL and Apache Kafka (one KRaft node, 2 GiB heap)
# under target/bench-live, the four components (release builds), orgs
# `live-a` and `live-b`, and runs `agentops-loadgen bench-live`: a warm-up,
# the baseline without clients, then the clients and the same load again.
# Prints the figures and one JSON line (in target/bench-live/live.out; the
# JSON lines of every run are appended to target/bench-live/live.jsonl).
#
# Settings (environment):
#   BENCH_RATE        events per second, both orgs together (default 2000)
#   BENCH_SECS        seconds of sending per measured phase  (default 30)
#   BENCH_CLIENTS     WebSocket clients, half per org         (default 200)
#   BENCH_PG_PORT     (default 25435)   BENCH_KAFKA_PORT (default 29094)
#   BENCH_EXACTLY_ONCE processors' transactional enrich stage (default true,
#                     as bench-freshness; the feed reads committed records)
#   BENCH_NO_BUILD=1  skip the release build
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PG_PORT=${BENCH_PG_PORT:-25435}
KAFKA_PORT=${BENCH_KAFKA_PORT:-29094}
CLIENTS=${BENCH_CLIENTS:-200}
STATE="$ROOT/target/bench-live"
RUN="$STATE/run"
BIN="$ROOT/target/release"
GW=127.0.0.1:28190 QA=127.0.0.1:28191 PROJ=127.0.0.1:28192 PROC=127.0.0.1:28193

ensure_postgres
ensure_kafka
cleanup() {
  for c in gateway processors projections query-api; do stop_pidfile "$RUN/$c.pid"; done
  stop_kafka "$RUN/kafka"
  stop_postgres "$(pg_dir live "$PG_PORT")"
}
trap cleanup EXIT
cleanup
rm -rf "$RUN" "$(pg_dir live "$PG_PORT")"
mkdir -p "$RUN"

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  log "building the workspace (release)"
  cargo build --release --workspace --bins
fi
AGENTOPS_PG_FSYNC=on start_postgres "$(pg_dir live "$PG_PORT")" "$PG_PORT"
start_kafka "$RUN/kafka" "$KAFKA_PORT" 2g

export AGENTOPS_DATABASE__URL="postgres://agentops:agentops@127.0.0.1:$PG_PORT/agentops"
export AGENTOPS_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT"
export AGENTOPS_KAFKA__INSTANCE_ID=bench
export AGENTOPS_EXACTLY_ONCE=${BENCH_EXACTLY_ONCE:-true}
export RUST_LOG=warn
AGENTOPS_SECRETS__KEY_FILE=$(ensure_secrets_key "$RUN")
export AGENTOPS_SECRETS__KEY_FILE
key() { sed -n "s/^AGENTOPS_$2_KEY=//p" "$RUN/keys-$1.env"; }
for org in a b; do
  "$BIN/agentops-query-api" admin create-org --id "live-$org" --name "Live $org" >"$RUN/keys-$org.env"
done
start() { # name binary listen [VAR=value ...]
  local name=$1 bin=$2 listen=$3
  shift 3
  env AGENTOPS_LISTEN="$listen" "$@" nohup "$BIN/$bin" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  wait_http "http://$listen/healthz" 90 || die "$name is not healthy (see $RUN/$name.log)"
}
start projections agentops-projections "$PROJ"
start processors agentops-processors "$PROC"
start gateway agentops-ingest-gateway "$GW"
# Room for every client of an org on the one instance (default cap 250 per org).
start query-api agentops-query-api "$QA" \
  AGENTOPS_LIVE__MAX_CLIENTS_PER_ORG=$((CLIENTS > 250 ? CLIENTS : 250)) \
  AGENTOPS_LIVE__MAX_CLIENTS=$((CLIENTS > 2000 ? CLIENTS : 2000))
sleep 8 # consumer groups settle

"$BIN/agentops-loadgen" bench-live --gateway "http://$GW" --query-url "http://$QA" \
  --ingest-key "$(key a INGEST)" --read-key "$(key a READ)" \
  --ingest-key "$(key b INGEST)" --read-key "$(key b READ)" \
  --clients "$CLIENTS" --rate "${BENCH_RATE:-2000}" --secs "${BENCH_SECS:-30}" \
  --projections-metrics "http://$PROJ/metrics" --query-api-pid "$(cat "$RUN/query-api.pid")" \
  | tee "$STATE/live.out"
grep '^{.*"bench":"live_fanout"' "$STATE/live.out" >>"$STATE/live.jsonl" || true

# Peak resident memory of every process over the whole run (kernel's VmHWM).
peak() { awk '/^VmHWM:/ {printf "%.0f MiB", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "gone"; }
{
  echo "peak RSS (VmHWM) over the run:"
  echo "  kafka broker (2 GiB heap): $(peak "$(cat "$RUN/kafka/kafka.pid")")"
  for c in gateway processors projections query-api; do
    echo "  $c: $(peak "$(cat "$RUN/$c.pid")")"
  done
} | tee -a "$STATE/live.out"
