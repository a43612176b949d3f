#!/usr/bin/env bash
# Stop everything ./deploy/local/up.sh started (data stays in deploy/local/.state;
# pass --purge to delete it too).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STATE="$ROOT/deploy/local/.state"
PG_PORT=${AGENTOPS_PG_PORT:-5433}
# The fleet first (nothing new comes in), then the gateways, then the
# consumers (they drain and commit), the query API, and the broker last.
for pattern in demo-fleet 'ingest-gateway*' 'processors*' 'projections*' query-api; do
  for f in "$STATE"/pids/$pattern.pid; do
    [ -f "$f" ] || continue
    stop_pidfile "$f"
    log "$(basename "$f" .pid) stopped"
  done
done
stop_kafka "$STATE/kafka"
stop_postgres "$(pg_dir local "$PG_PORT")"
log "broker and database stopped"
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$STATE" "$(pg_dir local "$PG_PORT")"
  log "state deleted"
fi
