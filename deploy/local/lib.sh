# Shared helpers of the deploy/local scripts (sourced, not run).
# Installs what is missing (PostgreSQL, tansu, chromium, npm packages) and
# starts private instances of PostgreSQL and tansu under a state directory.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m[agentops]\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$d" ] && echo "$d"
}

ensure_postgres() {
  if [ -z "$(pg_bindir)" ]; then
    apt_install postgresql
  fi
  [ -n "$(pg_bindir)" ] || die "PostgreSQL server binaries not found after install"
}

# pg_dir NAME PORT: where a private cluster lives. Outside the checkout, because
# the postgres OS user must be able to reach it (a clone under /root is not).
pg_dir() { echo "/var/tmp/agentops/pg-$1-$2"; }

# start_postgres DIR PORT: a private cluster owned by the postgres OS user,
# trust auth on loopback, role agentops (superuser) and database agentops.
start_postgres() {
  local dir=$1 port=$2 bin
  bin=$(pg_bindir)
  mkdir -p "$dir"
  chmod 755 "$(dirname "$dir")"
  chown postgres:postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
      || die "initdb failed (see $dir/initdb.log)"
  fi
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=${AGENTOPS_PG_FSYNC:-on}" start >/dev/null \
      || die "postgres did not start (see $dir/postgres.log)"
  fi
  runuser -u postgres -- psql -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA >/dev/null <<SQL || die "cannot create role/database"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agentops') THEN
    CREATE ROLE agentops LOGIN SUPERUSER PASSWORD 'agentops';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE agentops OWNER agentops'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'agentops') \gexec
SQL
  log "postgres on 127.0.0.1:$port ($dir)"
}

stop_postgres() {
  local dir=$1 bin
  bin=$(pg_bindir) || return 0
  [ -f "$dir/data/PG_VERSION" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}

ensure_tansu() {
  if ! command -v tansu >/dev/null 2>&1; then
    log "installing the tansu broker from crates.io (about 10 minutes, once; cached in ~/.cargo/bin)"
    cargo install tansu --version 0.6.0 --locked --features libsql,dynostore >&2 || die "cargo install tansu failed"
  fi
}

# start_tansu DIR PORT ENGINE(sqlite|memory) [ADVERTISED_PORT]
start_tansu() {
  local dir=$1 port=$2 engine=${3:-sqlite} advertised=${4:-$2} storage
  mkdir -p "$dir"
  case "$engine" in
    sqlite) storage="sqlite://tansu.db" ;; # relative to the broker's working directory
    memory) storage="memory://tansu/" ;;
    *) die "unknown tansu engine $engine" ;;
  esac
  (cd "$dir" && exec nohup tansu broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$advertised" \
    --storage-engine "$storage" >"$dir/tansu.log" 2>&1) &
  echo $! >"$dir/tansu.pid"
  wait_port "$port" 60 || die "tansu did not listen on $port (see $dir/tansu.log)"
  if [ "$engine" = sqlite ]; then
    # tansu 0.6 looks up each fetched record's headers with a query on an
    # unindexed table: every fetch then scans every header ever written, and
    # the broker slows down quadratically (a 100k-record backlog took minutes
    # per fetch). The index makes each lookup a point query.
    python3 - "$dir/tansu.db" <<'PY' || die "cannot index tansu's header table"
import sqlite3, sys, time
for attempt in range(50):
    try:
        db = sqlite3.connect(sys.argv[1], timeout=10)
        db.execute("CREATE INDEX IF NOT EXISTS header_topition_offset ON header (topition, offset_id)")
        db.commit()
        break
    except sqlite3.OperationalError:
        time.sleep(0.2)
else:
    sys.exit(1)
PY
  fi
  log "tansu ($engine) on 127.0.0.1:$port"
}

stop_pidfile() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

wait_port() {
  local port=$1 secs=${2:-30}
  for _ in $(seq 1 $((secs * 10))); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

wait_http() {
  local url=$1 secs=${2:-60}
  for _ in $(seq 1 $((secs * 5))); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

create_topics() {
  local port=$1; shift
  for t in "$@"; do
    tansu topic create "$t" --partitions "${AGENTOPS_PARTITIONS:-4}" --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1 || true
  done
}

ensure_browser() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
  if [ ! -d "$ROOT/deploy/local/browser/node_modules/playwright-core" ]; then
    log "installing npm test helpers (playwright-core)"
    (cd "$ROOT/deploy/local/browser" && npm ci --no-audit --no-fund --silent) || die "npm ci failed"
  fi
}

# TimescaleDB for tests: PGlite (PostgreSQL 17 in WASM) with the timescaledb
# extension, over the wire protocol. One client connection at a time (others
# queue); see deploy/local/timescale/server.mjs.
ensure_timescale() {
  if [ ! -d "$ROOT/deploy/local/timescale/node_modules/@electric-sql/pglite-socket" ]; then
    log "installing npm packages for the local timescaledb (pglite)"
    (cd "$ROOT/deploy/local/timescale" && npm ci --no-audit --no-fund --silent) || die "npm ci failed"
  fi
}

# start_timescale DIR PORT: in-memory database, empty at each start.
start_timescale() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  (cd "$ROOT/deploy/local/timescale" && exec nohup node server.mjs "$port" >"$dir/pglite.log" 2>&1) &
  echo $! >"$dir/pglite.pid"
  wait_port "$port" 60 || die "timescaledb (pglite) did not listen on $port (see $dir/pglite.log)"
  log "timescaledb (pglite) on 127.0.0.1:$port"
}

# ensure_python_otel: a venv at target/py-otel with the OpenTelemetry Python SDK
# and its OTLP/HTTP protobuf exporter, for the OTLP end-to-end test (reused when
# it already has them). Prints the venv's interpreter.
ensure_python_otel() {
  local venv="$ROOT/target/py-otel"
  if ! "$venv/bin/python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' >/dev/null 2>&1; then
    log "installing opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http from PyPI (venv $venv)"
    python3 -m venv "$venv" >&2 || die "cannot create a Python venv (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      opentelemetry-sdk opentelemetry-exporter-otlp-proto-http >&2 || die "pip install of the OpenTelemetry SDK failed"
  fi
  echo "$venv/bin/python"
}
