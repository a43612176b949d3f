#!/usr/bin/env bash
# Bring the whole pipeline up locally, with a demo fleet, and print the dashboard URL.
# Installs what is missing (PostgreSQL, the tansu broker), builds in release mode,
# runs migrations, creates a demo org and keys (deploy/local/.state/keys.env).
#
# Settings (environment):
#   AGENTOPS_GATEWAY_ADDR  gateway address          (default 127.0.0.1:8080)
#   AGENTOPS_QUERY_ADDR    query API + dashboard    (default 127.0.0.1:8081)
#   AGENTOPS_PG_PORT       private PostgreSQL port  (default 5433)
#   AGENTOPS_KAFKA_PORT    tansu broker port        (default 9092)
#   AGENTOPS_DEMO_LOAD=0   do not start the synthetic fleet
#   AGENTOPS_DEMO_RATE     demo events per second   (default 20; the local tansu/SQLite
#                          broker slows down as its log grows, so keep the demo modest)
#   AGENTOPS_DEMO_BUDGET_WEBHOOK  Slack-compatible webhook for the demo org's budget
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

GATEWAY_ADDR=${AGENTOPS_GATEWAY_ADDR:-127.0.0.1:8080}
QUERY_ADDR=${AGENTOPS_QUERY_ADDR:-127.0.0.1:8081}
PG_PORT=${AGENTOPS_PG_PORT:-5433}
KAFKA_PORT=${AGENTOPS_KAFKA_PORT:-9092}
STATE="$ROOT/deploy/local/.state"
BIN="$ROOT/target/release"
mkdir -p "$STATE/logs" "$STATE/pids"

ensure_postgres
ensure_tansu
start_postgres "$(pg_dir local "$PG_PORT")" "$PG_PORT"
if [ -f "$STATE/tansu/tansu.pid" ] && kill -0 "$(cat "$STATE/tansu/tansu.pid")" 2>/dev/null; then
  log "tansu already running"
else
  start_tansu "$STATE/tansu" "$KAFKA_PORT" sqlite
fi

log "building the workspace (release)"
cargo build --release --workspace --bins

export AGENTOPS_DATABASE__URL="postgres://agentops:agentops@127.0.0.1:$PG_PORT/agentops"
export AGENTOPS_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT"
export AGENTOPS_DASHBOARD_URL="http://$QUERY_ADDR"
# tansu answers group heartbeats late while it is busy writing; a longer session
# keeps a busy local broker from expelling (and then wedging) a live consumer.
export AGENTOPS_KAFKA__SESSION_TIMEOUT_MS=${AGENTOPS_KAFKA__SESSION_TIMEOUT_MS:-30000}
# Static group membership: a restarted component takes its own place back at once.
export AGENTOPS_KAFKA__INSTANCE_ID=${AGENTOPS_KAFKA__INSTANCE_ID:-local-1}
create_topics "$KAFKA_PORT" agentops.events.raw agentops.events.enriched agentops.alerts agentops.dlq
"$BIN/agentops-query-api" migrate >/dev/null

if [ ! -s "$STATE/keys.env" ]; then
  "$BIN/agentops-query-api" admin create-org --id demo --name "Demo org" >"$STATE/keys.env.tmp"
  mv "$STATE/keys.env.tmp" "$STATE/keys.env"
  "$BIN/agentops-query-api" admin set-budget --org demo --daily-usd "${AGENTOPS_DEMO_BUDGET_USD:-50}" \
    ${AGENTOPS_DEMO_BUDGET_WEBHOOK:+--webhook-url "$AGENTOPS_DEMO_BUDGET_WEBHOOK"} >/dev/null
fi
# shellcheck disable=SC1091
source "$STATE/keys.env"

start() { # name health-url command...
  local name=$1 url=$2; shift 2
  local pidf="$STATE/pids/$name.pid"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    log "$name already running"
    return
  fi
  nohup "$@" >>"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$pidf"
  if [ -n "$url" ]; then
    wait_http "$url" 90 || die "$name is not healthy (see $STATE/logs/$name.log)"
  fi
  log "$name up"
}

AGENTOPS_LISTEN=$GATEWAY_ADDR start ingest-gateway "http://$GATEWAY_ADDR/healthz" "$BIN/agentops-ingest-gateway"
AGENTOPS_LISTEN=127.0.0.1:9101 start processors "http://127.0.0.1:9101/healthz" "$BIN/agentops-processors"
AGENTOPS_LISTEN=127.0.0.1:9102 start projections "http://127.0.0.1:9102/healthz" "$BIN/agentops-projections"
AGENTOPS_LISTEN=$QUERY_ADDR start query-api "http://$QUERY_ADDR/healthz" "$BIN/agentops-query-api" serve

if [ "${AGENTOPS_DEMO_LOAD:-1}" != "0" ]; then
  start demo-fleet "" "$BIN/agentops-loadgen" demo --gateway "http://$GATEWAY_ADDR" --key "$AGENTOPS_INGEST_KEY" \
    --rate "${AGENTOPS_DEMO_RATE:-20}" --backfill-hours "${AGENTOPS_DEMO_BACKFILL_HOURS:-3}" \
    --backfill-density 0.1 --backfill-rate "${AGENTOPS_DEMO_BACKFILL_RATE:-300}"
fi

cat <<MSG

AgentOps is up.
  Dashboard:  http://$QUERY_ADDR/?key=$AGENTOPS_READ_KEY
  Ingest:     POST http://$GATEWAY_ADDR/v1/events   (Authorization: Bearer \$AGENTOPS_INGEST_KEY)
  Keys:       $STATE/keys.env
  Logs:       $STATE/logs/
  Stop:       ./deploy/local/down.sh
MSG
