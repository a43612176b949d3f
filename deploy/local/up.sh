#!/usr/bin/env bash
# Bring the whole pipeline up locally, with a demo fleet, and print the dashboard URL.
# Installs what is missing (PostgreSQL, Apache Kafka's jars from Maven Central),
# starts a KRaft Kafka node and PostgreSQL, builds in release mode, creates the
# topics, runs migrations, creates a demo org and keys
# (deploy/local/.state/keys.env), starts every component and the demo fleet.
#
# Settings (environment):
#   AGENTOPS_GATEWAY_ADDR  gateway address          (default 127.0.0.1:8080)
#   AGENTOPS_QUERY_ADDR    query API + dashboard    (default 127.0.0.1:8081)
#   AGENTOPS_PG_PORT       private PostgreSQL port  (default 5433)
#   AGENTOPS_KAFKA_PORT    Kafka broker port        (default 9092; its controller +1)
#   AGENTOPS_KAFKA_HEAP    Kafka broker heap        (default 1g)
#   AGENTOPS_PARTITIONS    partitions of events.raw / events.enriched (default 12)
#   AGENTOPS_PROCESSORS    processor instances      (default 1; one consumer group)
#   AGENTOPS_PROJECTIONS   projection instances     (default 1; one consumer group)
#   AGENTOPS_GATEWAYS      gateway instances        (default 1; the 2nd on port +10, ...)
#   AGENTOPS_DEMO_LOAD=0   do not start the synthetic fleet
#   AGENTOPS_DEMO_RATE     demo events per second   (default 200)
#   AGENTOPS_DEMO_AGENTS   demo fleet size          (default 60 agents)
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

STARTED=$(date +%s)
ensure_postgres
ensure_kafka
start_postgres "$(pg_dir local "$PG_PORT")" "$PG_PORT"
if [ -f "$STATE/kafka/kafka.pid" ] && kill -0 "$(cat "$STATE/kafka/kafka.pid")" 2>/dev/null; then
  log "kafka already running"
else
  start_kafka "$STATE/kafka" "$KAFKA_PORT"
fi

log "building the workspace (release)"
cargo build --release --workspace --bins
log "building the console"
console_npm build

export AGENTOPS_DATABASE__URL="postgres://agentops:agentops@127.0.0.1:$PG_PORT/agentops"
export AGENTOPS_KAFKA__BROKERS="127.0.0.1:$KAFKA_PORT"
export AGENTOPS_DASHBOARD_URL="http://$QUERY_ADDR"
AGENTOPS_SECRETS__KEY_FILE=$(ensure_secrets_key "$STATE")
export AGENTOPS_SECRETS__KEY_FILE
create_topics "$KAFKA_PORT" 1
"$BIN/agentops-query-api" migrate >/dev/null

if [ ! -s "$STATE/keys.env" ]; then
  "$BIN/agentops-query-api" admin create-org --id demo --name "Demo org" >"$STATE/keys.env.tmp"
  mv "$STATE/keys.env.tmp" "$STATE/keys.env"
  "$BIN/agentops-query-api" admin set-budget --org demo --daily-usd "${AGENTOPS_DEMO_BUDGET_USD:-50}" \
    ${AGENTOPS_DEMO_BUDGET_WEBHOOK:+--webhook-url "$AGENTOPS_DEMO_BUDGET_WEBHOOK"} >/dev/null
fi
# The demo org's first owner, for signing in to the console (once; the
# password is kept beside the keys).
if ! grep -q '^AGENTOPS_DEMO_OWNER_PASSWORD=' "$STATE/keys.env"; then
  AGENTOPS_DEMO_OWNER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | cut -c1-20)
  export AGENTOPS_DEMO_OWNER_PASSWORD
  "$BIN/agentops-query-api" admin create-user --org demo --email owner@demo.local \
    --name "Demo owner" --role owner --password-env AGENTOPS_DEMO_OWNER_PASSWORD >/dev/null
  {
    echo "AGENTOPS_DEMO_OWNER_EMAIL=owner@demo.local"
    echo "AGENTOPS_DEMO_OWNER_PASSWORD=$AGENTOPS_DEMO_OWNER_PASSWORD"
  } >>"$STATE/keys.env"
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

# Instances: each its own port (/metrics, /healthz). Group membership is
# dynamic (the default); set AGENTOPS_KAFKA__INSTANCE_ID per instance for
# static membership (README "Kafka client settings").
GW_HOST=${GATEWAY_ADDR%:*} GW_PORT=${GATEWAY_ADDR##*:}
for i in $(seq 1 "${AGENTOPS_GATEWAYS:-1}"); do
  addr="$GW_HOST:$((GW_PORT + (i - 1) * 10))"
  AGENTOPS_LISTEN=$addr start "ingest-gateway-$i" "http://$addr/healthz" "$BIN/agentops-ingest-gateway"
done
for i in $(seq 1 "${AGENTOPS_PROCESSORS:-1}"); do
  AGENTOPS_LISTEN=127.0.0.1:$((9100 + i)) \
    start "processors-$i" "http://127.0.0.1:$((9100 + i))/healthz" "$BIN/agentops-processors"
done
for i in $(seq 1 "${AGENTOPS_PROJECTIONS:-1}"); do
  AGENTOPS_LISTEN=127.0.0.1:$((9200 + i)) \
    start "projections-$i" "http://127.0.0.1:$((9200 + i))/healthz" "$BIN/agentops-projections"
done
AGENTOPS_LISTEN=$QUERY_ADDR start query-api "http://$QUERY_ADDR/healthz" "$BIN/agentops-query-api" serve

if [ "${AGENTOPS_DEMO_LOAD:-1}" != "0" ]; then
  start demo-fleet "" "$BIN/agentops-loadgen" demo --gateway "http://$GATEWAY_ADDR" --key "$AGENTOPS_INGEST_KEY" \
    --rate "${AGENTOPS_DEMO_RATE:-200}" --agents "${AGENTOPS_DEMO_AGENTS:-60}" \
    --backfill-hours "${AGENTOPS_DEMO_BACKFILL_HOURS:-3}" \
    --backfill-density 0.1 --backfill-rate "${AGENTOPS_DEMO_BACKFILL_RATE:-2000}"
fi
log "up in $(($(date +%s) - STARTED)) s"

cat <<MSG

AgentOps is up.
  Console:    http://$QUERY_ADDR/console/   (sign in: $AGENTOPS_DEMO_OWNER_EMAIL / $AGENTOPS_DEMO_OWNER_PASSWORD,
              or paste the read key: $AGENTOPS_READ_KEY)
  Dashboard:  http://$QUERY_ADDR/   (the first page, kept while the console grows)
  Ingest:     POST http://$GATEWAY_ADDR/v1/events   (Authorization: Bearer \$AGENTOPS_INGEST_KEY)
  Keys:       $STATE/keys.env
  Logs:       $STATE/logs/
  Stop:       ./deploy/local/down.sh
MSG
