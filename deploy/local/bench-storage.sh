#!/usr/bin/env bash
# Storage benchmarks on a private PostgreSQL (plain mode), in one run:
#   1. bench-projections: rows/s the projection writer stores (batches of events +
#      offsets, the deriver beside it folding them into the aggregate levels, runs,
#      agents, ...: the worker's code; timed until everything is derived) beside a raw
#      binary COPY of the same rows into a same-shaped table, in rounds of one then the
#      other (the median ratio is the figure); once with event times
#      spread over 20 hours (a backfill), once as a live fleet sends them; then the
#      TimescaleDB-mode write path (no worker-maintained aggregates).
#   2. bench-queries: loads BENCH_EVENTS events (BENCH_DAYS days, BENCH_AGENTS
#      agents) with the aggregates built by the worker's own column definitions,
#      starts the query API, and times the 24h overview and the 24h hourly
#      series through it, beside the same answers computed from raw events.
#   3. bench-console (on that history, with the runs projection built from
#      it): p50/p95 of every endpoint the console's overview calls and of the
#      runs explorer's first page with two filters (beside the same page from
#      raw events), then the time until the overview is fully drawn in
#      Chromium over cold page loads (deploy/local/browser/bench-console.mjs).
# Prints the figures and one JSON line per benchmark (also in
# target/bench-state/storage.out). Everything it started is stopped on exit.
#
# Settings (environment):
#   BENCH_PROJ_EVENTS  events written in each phase of 1.  (default 200000)
#   BENCH_BATCH        rows per transaction / COPY          (default 2000)
#   BENCH_ROUNDS       rounds of writer then raw COPY per path of 1., each
#                      in an org of its own; the ratio is their median (default 5)
#   BENCH_EVENTS       history size for 2.                  (default 10000000)
#   BENCH_DAYS         days of history                      (default 30)
#   BENCH_AGENTS       agents                               (default 1000)
#   BENCH_ONLY         projections | queries | console (default all; console
#                      loads the history like queries, then measures the console)
#   BENCH_LOADS        Chromium page loads for the draw time  (default 10)
#   BENCH_PG_PORT      PostgreSQL port                      (default 25433)
#   BENCH_QUERY_ADDR   query API listen address             (default 127.0.0.1:28081)
#   BENCH_NO_BUILD=1   skip the release build
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PG_PORT=${BENCH_PG_PORT:-25433}
QUERY_ADDR=${BENCH_QUERY_ADDR:-127.0.0.1:28081}
ONLY=${BENCH_ONLY:-}
STATE="$ROOT/target/bench-state"
BIN="$ROOT/target/release"

ensure_postgres
cleanup() {
  stop_pidfile "$STATE/query-api.pid"
  stop_postgres "$(pg_dir bench "$PG_PORT")"
}
trap cleanup EXIT
cleanup
rm -rf "$STATE" "$(pg_dir bench "$PG_PORT")"
mkdir -p "$STATE"

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  log "building query-api and loadgen (release)"
  cargo build --release -p agentops-query-api -p agentops-loadgen --bins
  [ "$ONLY" = projections ] || console_npm build
fi
[ "$ONLY" = projections ] || ensure_browser
AGENTOPS_PG_FSYNC=on start_postgres "$(pg_dir bench "$PG_PORT")" "$PG_PORT"
PG="postgres://agentops:agentops@127.0.0.1:$PG_PORT"
psql_admin() { runuser -u postgres -- psql -h "$(pg_dir bench "$PG_PORT")" -p "$PG_PORT" -U postgres -qtA -c "$1" >/dev/null; }

if [ "$ONLY" != queries ] && [ "$ONLY" != console ]; then
  # Rounds of writer then raw COPY per path; the ratio is their median.
  ROUNDS=${BENCH_ROUNDS:-5}
  psql_admin "CREATE DATABASE bench_projections OWNER agentops"
  log "bench-projections"
  "$BIN/agentops-loadgen" bench-projections --database-url "$PG/bench_projections" \
    --events "${BENCH_PROJ_EVENTS:-200000}" --batch "${BENCH_BATCH:-2000}" --repeat "$ROUNDS" | tee -a "$STATE/storage.out"
  # The same events as a live fleet sends them (their times spread over the
  # seconds they take to arrive at 10,000 events/s, not 20 hours).
  psql_admin "CREATE DATABASE bench_projections_live OWNER agentops"
  log "bench-projections, live spread (event times over events / 10,000 s)"
  EVENTS=${BENCH_PROJ_EVENTS:-200000}
  "$BIN/agentops-loadgen" bench-projections --database-url "$PG/bench_projections_live" \
    --events "$EVENTS" --batch "${BENCH_BATCH:-2000}" --span-secs $(( EVENTS / 10000 + 1 )) --repeat "$ROUNDS" \
    | tee -a "$STATE/storage.out"
  psql_admin "CREATE DATABASE bench_projections_ts OWNER agentops"
  log "bench-projections --timescale-path (events, runs, agents, offsets; no worker-maintained aggregates)"
  "$BIN/agentops-loadgen" bench-projections --database-url "$PG/bench_projections_ts" --timescale-path \
    --events "${BENCH_PROJ_EVENTS:-200000}" --batch "${BENCH_BATCH:-2000}" --repeat "$ROUNDS" | tee -a "$STATE/storage.out"
fi

if [ "$ONLY" != projections ]; then
  export AGENTOPS_DATABASE__URL="$PG/agentops"
  export AGENTOPS_DATABASE__STORAGE__MODE=postgres
  export AGENTOPS_SECRETS__ALLOW_PLAINTEXT=true
  "$BIN/agentops-query-api" admin create-org --id bench --name "Benchmark" >"$STATE/keys.env"
  READ_KEY=$(sed -n 's/^AGENTOPS_READ_KEY=//p' "$STATE/keys.env")
  ADMIN_KEY=$(sed -n 's/^AGENTOPS_ADMIN_KEY=//p' "$STATE/keys.env")
  [ -n "$READ_KEY" ] || die "create-org printed no read key"
  AGENTOPS_LISTEN="$QUERY_ADDR" AGENTOPS_CONSOLE_DIR="$ROOT/query-api/console/dist" RUST_LOG=warn \
    nohup "$BIN/agentops-query-api" >"$STATE/query-api.log" 2>&1 &
  echo $! >"$STATE/query-api.pid"
  wait_http "http://$QUERY_ADDR/healthz" 90 || die "query api is not healthy (see $STATE/query-api.log)"
  log "bench-queries (loading the history takes a few minutes)"
  "$BIN/agentops-loadgen" bench-queries --database-url "$PG/agentops" --query-url "http://$QUERY_ADDR" \
    --key "$READ_KEY" --events "${BENCH_EVENTS:-10000000}" --days "${BENCH_DAYS:-30}" \
    --agents "${BENCH_AGENTS:-1000}" | tee -a "$STATE/storage.out"
fi
if [ "$ONLY" != projections ] && [ "$ONLY" != queries ]; then
  log "bench-console: the console's endpoints over the same history"
  "$BIN/agentops-loadgen" bench-console --database-url "$PG/agentops" --query-url "http://$QUERY_ADDR" \
    --key "$READ_KEY" --admin-key "$ADMIN_KEY" | tee -a "$STATE/storage.out"
  log "bench-console: time until the overview is drawn in Chromium"
  (cd "$ROOT/deploy/local/browser" && AGENTOPS_QUERY_URL="http://$QUERY_ADDR" AGENTOPS_READ_KEY="$READ_KEY" \
    AGENTOPS_SCREENSHOT_DIR="$STATE" BENCH_LOADS="${BENCH_LOADS:-10}" node bench-console.mjs) | tee -a "$STATE/storage.out"
fi
