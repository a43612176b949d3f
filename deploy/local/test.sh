#!/usr/bin/env bash
# Run the whole test suite: starts its own PostgreSQL (two clusters: a shared
# one, and one the database-restart test stops and starts), TimescaleDB (the
# PGlite build, for the storage conformance suite) and Apache Kafka (one KRaft
# node shared by the tests; the broker-fault tests start their own nodes from
# the same cached jars) on separate ports, builds the workspace, runs every
# test in parallel (each test has its own topics, groups, database and org),
# stops everything. Formatting and clippy (warnings are errors) run first.
# Installs what is missing first (PostgreSQL, Kafka's jars,
# cargo-nextest, chromium, npm and PyPI helpers).
#   ./deploy/local/test.sh                 # everything
#   ./deploy/local/test.sh -E 'test(overview)'   # extra args go to cargo nextest
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PG_PORT=${AGENTOPS_TEST_PG_PORT:-15433}
PG_RESTART_PORT=${AGENTOPS_TEST_PG_RESTART_PORT:-15434}
TIMESCALE_PORT=${AGENTOPS_TEST_TIMESCALE_PORT:-15435}
KAFKA_PORT=${AGENTOPS_TEST_KAFKA_PORT:-19092}
STATE="$ROOT/target/test-state"

ensure_postgres
ensure_kafka
ensure_nextest
ensure_browser
ensure_timescale
ensure_prometheus
AGENTOPS_TEST_PYTHON=$(ensure_python_tools)
export AGENTOPS_TEST_PYTHON
AGENTOPS_SDK_PYTHON=$(ensure_python_sdk)
export AGENTOPS_SDK_PYTHON

cleanup() {
  stop_kafka "$STATE/kafka"
  stop_pidfile "$STATE/timescale/pglite.pid"
  stop_postgres "$(pg_dir test "$PG_PORT")"
  stop_postgres "$(pg_dir restart "$PG_RESTART_PORT")"
}
trap cleanup EXIT
cleanup
rm -rf "$STATE" "$(pg_dir test "$PG_PORT")" "$(pg_dir restart "$PG_RESTART_PORT")"
mkdir -p "$STATE"
AGENTOPS_PG_FSYNC=off start_postgres "$(pg_dir test "$PG_PORT")" "$PG_PORT"
AGENTOPS_PG_FSYNC=off start_postgres "$(pg_dir restart "$PG_RESTART_PORT")" "$PG_RESTART_PORT"
start_timescale "$STATE/timescale" "$TIMESCALE_PORT"
start_kafka "$STATE/kafka" "$KAFKA_PORT" 1g

# A one-off build gains nothing from incremental state, which grows to many GB
# across sixty binaries; a developer can still export CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

log "lint: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

log "console: type check, unit tests (Vitest), build"
console_npm test build

log "typescript sdk: tsc --strict, build (ESM + CJS), unit tests (the integration suite runs in e2e sdks)"
sdk_typescript_npm typecheck build test

log "python sdk: mypy --strict, unit tests (the integration suite runs in e2e sdks)"
(cd sdks/python && "$AGENTOPS_SDK_PYTHON" -m mypy && "$AGENTOPS_SDK_PYTHON" -m pytest -q -p no:cacheprovider tests/unit) \
  || die "python sdk checks failed"

log "building the workspace"
cargo build --workspace --bins --tests

export AGENTOPS_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
export AGENTOPS_TEST_PG="postgres://agentops:agentops@127.0.0.1:$PG_PORT/postgres"
export AGENTOPS_TEST_PG_RESTART="postgres://agentops:agentops@127.0.0.1:$PG_RESTART_PORT/postgres"
export AGENTOPS_TEST_PG_RESTART_CTL="$ROOT/deploy/local/pg-ctl.sh restart $PG_RESTART_PORT"
export AGENTOPS_TEST_TIMESCALE="postgres://postgres:pglite@127.0.0.1:$TIMESCALE_PORT/postgres"
export AGENTOPS_BIN_DIR="$ROOT/target/debug"
log "running the tests"
# nextest's default parallelism (one test per core); AGENTOPS_TEST_THREADS overrides.
cargo nextest run --workspace --no-fail-fast ${AGENTOPS_TEST_THREADS:+--test-threads "$AGENTOPS_TEST_THREADS"} "$@"

# --- fuzzing: every fuzz target briefly (deploy/local/fuzz.sh; about 20 s a
# target plus the fuzz build, cached outside the checkout). 0 skips it.
FUZZ_SECS=${AGENTOPS_TEST_FUZZ_SECS:-20}
if [ "$FUZZ_SECS" -gt 0 ]; then
  log "fuzzing every target for $FUZZ_SECS s"
  FUZZ_SECS=$FUZZ_SECS "$ROOT/deploy/local/fuzz.sh"
fi
