#!/usr/bin/env bash
# Stop everything ./deploy/local/up.sh started (data stays in deploy/local/.state;
# pass --purge to delete it too).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STATE="$ROOT/deploy/local/.state"
PG_PORT=${AGENTOPS_PG_PORT:-5433}
for name in demo-fleet ingest-gateway processors projections query-api; do
  if [ -f "$STATE/pids/$name.pid" ]; then
    stop_pidfile "$STATE/pids/$name.pid"
    log "$name stopped"
  fi
done
stop_pidfile "$STATE/tansu/tansu.pid"
stop_postgres "$(pg_dir local "$PG_PORT")"
log "broker and database stopped"
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$STATE" "$(pg_dir local "$PG_PORT")"
  log "state deleted"
fi
