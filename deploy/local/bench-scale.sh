#!/usr/bin/env bash
# Scale benchmark (issue 15): for each history size, a fresh database on a
# private PostgreSQL (plain mode), the history generated in SQL (skewed
# agents and models; docs/benchmarks.md#scale), then p50/p95 of every
# dashboard endpoint through the query API beside the same answer computed
# from raw events (`agentops-loadgen bench-scale`), and at the end how each
# endpoint's p95 grows from the smallest size to the largest
# (`agentops-loadgen bench-scale-report`). Each size's database is dropped
# after it is measured unless BENCH_KEEP=1; a run without BENCH_KEEP starts
# its sizes from fresh databases and leaves other kept sizes alone.
#
# Settings (environment):
#   BENCH_SIZES    event counts, space-separated (default "1000000 10000000";
#                  add 100000000 for the opt-in run: ~70 GB of disk, the
#                  loading about an hour and a half; each size's need is
#                  checked against the free disk before it is loaded)
#   BENCH_DAYS     days of history (default 30)
#   BENCH_AGENTS   agents (default 1000)
#   BENCH_REPEAT   timed requests per endpoint (default 30)
#   BENCH_RAW_REPEAT  timed runs of each raw-events query (default 5; at 100 M
#                  one set of them takes about 4 minutes)
#   BENCH_PG_PORT  PostgreSQL port (default 25435)
#   BENCH_QUERY_ADDR  query API listen address (default 127.0.0.1:28083)
#   BENCH_NO_BUILD=1  skip the release build
#   BENCH_KEEP=1   keep each size's database (bench_<events>)
# Output: target/bench-state/scale.out (one JSON line per size, then the report).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PG_PORT=${BENCH_PG_PORT:-25435}
QUERY_ADDR=${BENCH_QUERY_ADDR:-127.0.0.1:28083}
SIZES=${BENCH_SIZES:-1000000 10000000}
STATE="$ROOT/target/bench-state/scale"
BIN="$ROOT/target/release"
PGDIR="$(pg_dir scale "$PG_PORT")"

ensure_postgres
cleanup() {
  stop_pidfile "$STATE/query-api.pid"
  stop_postgres "$PGDIR"
}
trap cleanup EXIT
cleanup
KEYS="$ROOT/target/bench-state/scale-keys"
rm -rf "$STATE"
mkdir -p "$STATE" "$KEYS"

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  log "building query-api and loadgen (release)"
  cargo build --release -p agentops-query-api -p agentops-loadgen --bins
fi
AGENTOPS_PG_FSYNC=on start_postgres "$PGDIR" "$PG_PORT"
PG="postgres://agentops:agentops@127.0.0.1:$PG_PORT"
psql_admin() { runuser -u postgres -- psql -h "$PGDIR" -p "$PG_PORT" -U postgres -qtA -c "$1"; }

for n in $SIZES; do
  db="bench_$n"
  export AGENTOPS_DATABASE__URL="$PG/$db"
  export AGENTOPS_DATABASE__STORAGE__MODE=postgres
  export AGENTOPS_SECRETS__ALLOW_PLAINTEXT=true
  # A kept database (BENCH_KEEP=1) is reused with the keys printed when it was made.
  keys="$KEYS/$db.env"
  if [ "${BENCH_KEEP:-0}" != "1" ]; then
    psql_admin "DROP DATABASE IF EXISTS $db" >/dev/null
    rm -f "$keys"
  fi
  if [ -z "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
    # Linear in the events: ~0.6 GB per million (events and their indexes,
    # runs, sessions) plus the aggregate levels, which grow more slowly
    # (docs/benchmarks.md); a few GB of sort space and WAL besides.
    need=$(( n * 7 / 10000000 + 4 ))
    free=$(df -P -BG "$PGDIR" | awk 'NR == 2 { sub("G", "", $4); print $4 }')
    if [ "$free" -lt "$need" ]; then
      die "bench-scale: $n events need about $need GB of disk; $free GB free under $PGDIR"
    fi
    log "bench-scale: loading $n events (about $need GB of the $free GB free)"
    psql_admin "CREATE DATABASE $db OWNER agentops" >/dev/null
    "$BIN/agentops-query-api" admin create-org --id bench --name "Benchmark" >"$keys"
  elif [ ! -s "$keys" ]; then
    # Kept database, keys file gone (bench-storage.sh clears target/bench-state): new keys.
    for scope in read admin; do
      key=$("$BIN/agentops-query-api" admin create-key --org bench --scope "$scope" | sed -n 's/.* key=//p')
      echo "AGENTOPS_${scope^^}_KEY=$key" >>"$keys"
    done
  fi
  READ_KEY=$(sed -n 's/^AGENTOPS_READ_KEY=//p' "$keys")
  ADMIN_KEY=$(sed -n 's/^AGENTOPS_ADMIN_KEY=//p' "$keys")
  [ -n "$READ_KEY" ] && [ -n "$ADMIN_KEY" ] || die "no read and admin keys for org bench in $db"
  AGENTOPS_LISTEN="$QUERY_ADDR" RUST_LOG=warn nohup "$BIN/agentops-query-api" >"$STATE/query-api-$n.log" 2>&1 &
  echo $! >"$STATE/query-api.pid"
  # Storage set-up runs before the API listens: on a kept database made by
  # an older build it adds what is new (columns, indexes over every event),
  # so wait while the process lives.
  until curl -fsS -o /dev/null "http://$QUERY_ADDR/healthz" 2>/dev/null; do
    kill -0 "$(cat "$STATE/query-api.pid")" 2>/dev/null || die "query api exited (see $STATE/query-api-$n.log)"
    sleep 0.5
  done
  log "bench-scale: $n events over ${BENCH_DAYS:-30} days, ${BENCH_AGENTS:-1000} agents"
  "$BIN/agentops-loadgen" bench-scale --database-url "$PG/$db" --query-url "http://$QUERY_ADDR" \
    --key "$READ_KEY" --admin-key "$ADMIN_KEY" --events "$n" --days "${BENCH_DAYS:-30}" \
    --agents "${BENCH_AGENTS:-1000}" --repeat "${BENCH_REPEAT:-30}" \
    --raw-repeat "${BENCH_RAW_REPEAT:-5}" --out "$STATE/scale.out"
  stop_pidfile "$STATE/query-api.pid"
  if [ "${BENCH_KEEP:-0}" != "1" ]; then psql_admin "DROP DATABASE $db" >/dev/null; fi
done
"$BIN/agentops-loadgen" bench-scale-report --file "$STATE/scale.out" | tee -a "$STATE/scale.out"
