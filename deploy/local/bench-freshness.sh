#!/usr/bin/env bash
# Freshness through the whole pipeline: gateway 202 → counted in
# /v1/metrics/overview, at a sustained rate (default 5,000 events/s for 60 s).
# Starts a private PostgreSQL and Apache Kafka (one KRaft node, 2 GiB heap)
# under target/bench-fresh, the four components
# (release builds), an org `fresh`, and runs `agentops-loadgen bench-freshness`.
# Prints p50/p99/max, the largest consumer lag per group read from the
# processors' and projections' /metrics during the run, and one JSON line (also in
# target/bench-fresh/freshness.out), then the peak RSS (VmHWM) of the broker and of each component over the run.
#
# Settings (environment):
#   BENCH_RATE        events per second      (default 5000)
#   BENCH_SECS        seconds of sending     (default 60)
#   BENCH_PG_PORT     (default 25434)   BENCH_KAFKA_PORT (default 29093)
#   BENCH_EXACTLY_ONCE processors' transactional enrich stage (default true,
#                     the stricter path; false for the default at-least-once)
#   BENCH_NO_BUILD=1  skip the release build
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PG_PORT=${BENCH_PG_PORT:-25434}
KAFKA_PORT=${BENCH_KAFKA_PORT:-29093}
STATE="$ROOT/target/bench-fresh"
BIN="$ROOT/target/release"
GW=127.0.0.1:28090 QA=127.0.0.1:28091

ensure_postgres
ensure_kafka
cleanup() {
  for c in gateway processors projections query-api; do stop_pidfile "$STATE/$c.pid"; done
  stop_kafka "$STATE/kafka"
  stop_postgres "$(pg_dir fresh "$PG_PORT")"
}
trap cleanup EXIT
cleanup
rm -rf "$STATE" "$(pg_dir fresh "$PG_PORT")"
mkdir -p "$STATE"

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  log "building the workspace (release)"
  cargo build --release --workspace --bins
fi
AGENTOPS_PG_FSYNC=on start_postgres "$(pg_dir fresh "$PG_PORT")" "$PG_PORT"
start_kafka "$STATE/kafka" "$KAFKA_PORT" 2g

export AGENTOPS_DATABASE__URL="postgres://agentops:agentops@127.0.0.1:$PG_PORT/agentops"
export AGENTOPS_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT"
export AGENTOPS_KAFKA__INSTANCE_ID=bench
export AGENTOPS_EXACTLY_ONCE=${BENCH_EXACTLY_ONCE:-true}
export RUST_LOG=warn
AGENTOPS_SECRETS__KEY_FILE=$(ensure_secrets_key "$STATE")
export AGENTOPS_SECRETS__KEY_FILE
"$BIN/agentops-query-api" admin create-org --id fresh --name "Freshness" >"$STATE/keys.env"
INGEST_KEY=$(sed -n 's/^AGENTOPS_INGEST_KEY=//p' "$STATE/keys.env")
READ_KEY=$(sed -n 's/^AGENTOPS_READ_KEY=//p' "$STATE/keys.env")
start() { # name binary listen
  AGENTOPS_LISTEN="$3" nohup "$BIN/$2" >"$STATE/$1.log" 2>&1 &
  echo $! >"$STATE/$1.pid"
  wait_http "http://$3/healthz" 90 || die "$1 is not healthy (see $STATE/$1.log)"
}
start projections agentops-projections 127.0.0.1:28092
start processors agentops-processors 127.0.0.1:28093
start gateway agentops-ingest-gateway "$GW"
start query-api agentops-query-api "$QA"
sleep 8 # consumer groups settle

"$BIN/agentops-loadgen" bench-freshness --gateway "http://$GW" --key "$INGEST_KEY" \
  --query-url "http://$QA" --read-key "$READ_KEY" \
  --rate "${BENCH_RATE:-5000}" --secs "${BENCH_SECS:-60}" \
  --metrics-url http://127.0.0.1:28093/metrics --metrics-url http://127.0.0.1:28092/metrics \
  | tee "$STATE/freshness.out"

# Peak resident memory of every process over the whole run (kernel's VmHWM).
peak() { awk '/^VmHWM:/ {printf "%.0f MiB", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "gone"; }
{
  echo "peak RSS (VmHWM) over the run:"
  echo "  kafka broker (2 GiB heap): $(peak "$(cat "$STATE/kafka/kafka.pid")")"
  for c in gateway processors projections query-api; do
    echo "  $c: $(peak "$(cat "$STATE/$c.pid")")"
  done
} | tee -a "$STATE/freshness.out"
