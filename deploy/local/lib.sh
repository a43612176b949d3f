# Shared helpers of the deploy/local scripts (sourced, not run).
# Installs what is missing (PostgreSQL, Apache Kafka's jars, chromium, npm
# packages) and starts private instances of PostgreSQL and Kafka under a state
# directory.

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

# --- Apache Kafka (KRaft) from Maven Central -------------------------------
# deploy/local/kafka/pom.xml pins the release; `mvn dependency:copy-dependencies`
# puts its jars (and the log4j2 runtime) in a cache outside the checkout,
# reused while the pom is unchanged. No Kafka tarball, no Docker.
KAFKA_POM="$ROOT/deploy/local/kafka/pom.xml"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")
AGENTOPS_CACHE=${AGENTOPS_CACHE:-$HOME/.cache/agentops}

ensure_kafka() {
  command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null 2>&1 || apt_install maven
  local libs="$AGENTOPS_CACHE/kafka-$KAFKA_VERSION/libs" stamp want
  want=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
  stamp="$libs/.pom-sha256"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "fetching Apache Kafka $KAFKA_VERSION from Maven Central (once; cached in $libs)"
    rm -rf "$libs.tmp" && mkdir -p "$libs.tmp"
    mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$libs.tmp" >&2 || die "mvn could not fetch Apache Kafka $KAFKA_VERSION"
    echo "$want" >"$libs.tmp/.pom-sha256"
    rm -rf "$libs" && mv "$libs.tmp" "$libs"
  fi
  export AGENTOPS_KAFKA_LIBS="$libs"
}

# kafka_jvm HEAP [LOG_CONFIG]: sets KAFKA_JVM, the java command line (heap, G1
# with short pauses as Kafka's own scripts set it, log4j2 config, the cached
# classpath).
kafka_jvm() {
  KAFKA_JVM=(java "-Xms$1" "-Xmx$1" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$ROOT/deploy/local/kafka/${2:-log4j2.yaml}"
    -cp "$AGENTOPS_KAFKA_LIBS/*")
}

# kafka_java HEAP CLASS ARGS...: run a Kafka tool in the foreground (warnings
# on stderr, its answer on stdout).
kafka_java() {
  kafka_jvm "$1" log4j2-tools.yaml; shift
  "${KAFKA_JVM[@]}" "$@"
}

# kafka_topics PORT ARGS...: Kafka's own topic tool against a local broker.
kafka_topics() {
  local port=$1; shift
  kafka_java 256m org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" "$@"
}

# start_kafka DIR PORT [HEAP]: a single combined broker+controller node (KRaft)
# on 127.0.0.1:PORT (controller on PORT+1), storage under DIR (formatted on
# first start, kept afterwards), log in DIR/kafka.log. Returns once a real
# client call (listing topics) succeeded.
start_kafka() {
  local dir port=$2 heap=${3:-${AGENTOPS_KAFKA_HEAP:-1g}} cport=$(($2 + 1))
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  if [ ! -f "$dir/data/meta.properties" ]; then
    sed -e "s|@NODE_ID@|1|; s|@VOTERS@|1@127.0.0.1:$cport|; s|@PORT@|$port|g" \
      -e "s|@CONTROLLER_PORT@|$cport|; s|@LOG_DIR@|$dir/data|" \
      -e "s|@PARTITIONS@|${AGENTOPS_PARTITIONS:-12}|; s|@REPLICATION@|1|g; s|@MIN_ISR@|1|g" \
      "$ROOT/deploy/local/kafka/server.properties.in" >"$dir/server.properties"
    local cluster
    # Top bit cleared: an id starting with '-' would be read as an option.
    cluster=$(python3 -c 'import base64,uuid;b=bytearray(uuid.uuid4().bytes);b[0]&=0x7f;print(base64.urlsafe_b64encode(bytes(b)).decode().rstrip("="))')
    kafka_java 256m kafka.tools.StorageTool format -t "$cluster" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1 || die "cannot format Kafka storage (see $dir/format.log)"
  fi
  kafka_jvm "$heap"
  (cd "$dir" && exec nohup "${KAFKA_JVM[@]}" kafka.Kafka server.properties >>"$dir/kafka.log" 2>&1) &
  echo $! >"$dir/kafka.pid"
  wait_port "$port" 90 || die "Kafka did not listen on $port (see $dir/kafka.log)"
  # A real client call: the admin client retries until the broker serves
  # metadata (or gives up after its 60 s API timeout).
  kafka_topics "$port" --list >/dev/null 2>>"$dir/kafka.log" \
    || die "Kafka on $port did not answer a client (see $dir/kafka.log)"
  log "Apache Kafka $KAFKA_VERSION (KRaft, one node) on 127.0.0.1:$port ($dir)"
}

# stop_kafka DIR: a controlled shutdown (SIGTERM; up to 30 s), then SIGKILL.
stop_kafka() {
  stop_pidfile "$1/kafka.pid" 150
}

# create_topics PORT REPLICATION: the pipeline's topics with the partition
# counts and settings of README "Topics" (existing topics are left alone).
create_topics() {
  local port=$1 rf=${2:-1} p=${AGENTOPS_PARTITIONS:-12} topic parts retention
  while read -r topic parts retention; do
    kafka_topics "$port" --create --if-not-exists --topic "$topic" --partitions "$parts" \
      --replication-factor "$rf" --config "retention.ms=$retention" </dev/null >/dev/null
  done <<TOPICS
agentops.events.raw      $p 604800000
agentops.events.enriched $p 2592000000
agentops.alerts          3  2592000000
agentops.dlq             3  2592000000
TOPICS
}

# stop_pidfile FILE [STEPS]: SIGTERM, wait up to STEPS × 0.2 s (default 10 s), SIGKILL.
# The key that seals channel credentials at rest (secrets.key_file): created
# once in the state directory $1 (mode 600, `local:<base64 of 32 random
# bytes>`), kept across runs so stored channels stay readable; prints its path.
ensure_secrets_key() {
  local file="$1/secrets.key"
  mkdir -p "$1"
  if [ ! -s "$file" ]; then
    (umask 077 && printf 'local:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$file.tmp")
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

stop_pidfile() {
  local f=$1 steps=${2:-50}
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$steps"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
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

ensure_browser() {
  if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
  fi
  if [ ! -d "$ROOT/deploy/local/browser/node_modules/playwright-core" ]; then
    log "installing npm test helpers (playwright-core)"
    (cd "$ROOT/deploy/local/browser" && npm ci --no-audit --no-fund --silent) || die "npm ci failed"
  fi
}

# locked_npm DIR NAME TASK...: the package in DIR with its locked
# dependencies (npm ci, redone only when package-lock.json changes), then
# `npm run <each task>`; NAME names it in messages.
locked_npm() {
  local dir=$1 name=$2 stamp task
  shift 2
  command -v npm >/dev/null || apt_install nodejs npm
  stamp=$(sha256sum "$dir/package-lock.json" | cut -c1-16)
  if [ "$(cat "$dir/node_modules/.agentops-lock" 2>/dev/null)" != "$stamp" ]; then
    log "installing the npm dependencies of the $name (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --silent) || die "$name: npm ci failed"
    echo "$stamp" >"$dir/node_modules/.agentops-lock"
  fi
  for task in "$@"; do
    (cd "$dir" && npm run --silent "$task") || die "$name: npm run $task failed"
  done
}

# The operator console (query-api/console): `npm run <each arg>` (build:
# type check + Vite build into query-api/console/dist).
console_npm() {
  command -v node >/dev/null || apt_install nodejs npm
  # Vite 8 needs Node 20.19 or later.
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
    || die "the console needs Node.js >= 20.19 (found $(node --version))"
  locked_npm "$ROOT/query-api/console" console "$@"
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

# ensure_python_tools: a venv at target/py-otel with the Python helpers of the
# end-to-end tests pinned in e2e/python/requirements.txt (the OpenTelemetry SDK
# and its OTLP/HTTP exporter, schemathesis), reused when it already has them.
# Prints the venv's interpreter.
ensure_python_tools() {
  local venv="$ROOT/target/py-otel" req="$ROOT/e2e/python/requirements.txt"
  local stamp
  stamp=$(sha256sum "$req" | cut -c1-16)
  if ! "$venv/bin/python" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' >/dev/null 2>&1 \
    || [ "$(cat "$venv/.agentops-req" 2>/dev/null)" != "$stamp" ]; then
    log "installing the e2e Python helpers from PyPI ($req, venv $venv)"
    python3 -m venv "$venv" >&2 || die "cannot create a Python venv (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 \
      || die "pip install -r $req failed"
    echo "$stamp" >"$venv/.agentops-req"
  fi
  echo "$venv/bin/python"
}

# The former name (the OTLP test's messages use it).
ensure_python_otel() { ensure_python_tools; }

# ensure_python_sdk: a venv at target/py-sdk with the Python SDK (editable)
# and its dev tools (pytest, mypy, the OpenTelemetry SDK), redone when
# sdks/python/pyproject.toml changes. Prints the venv's interpreter.
ensure_python_sdk() {
  local venv="$ROOT/target/py-sdk" stamp
  stamp=$(sha256sum "$ROOT/sdks/python/pyproject.toml" | cut -c1-16)
  if ! "$venv/bin/python" -c 'import agentops, pytest, mypy' >/dev/null 2>&1 \
    || [ "$(cat "$venv/.agentops-req" 2>/dev/null)" != "$stamp" ]; then
    log "installing the Python SDK and its dev tools from PyPI (venv $venv)"
    python3 -m venv "$venv" >&2 || die "cannot create a Python venv (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT/sdks/python[dev]" >&2 \
      || die "pip install -e sdks/python[dev] failed"
    echo "$stamp" >"$venv/.agentops-req"
  fi
  echo "$venv/bin/python"
}

# The TypeScript SDK (sdks/typescript): `npm run <each arg>`.
sdk_typescript_npm() { locked_npm "$ROOT/sdks/typescript" "TypeScript SDK" "$@"; }

# Prometheus and promtool from Debian's packages (e2e/tests/prometheus.rs:
# the rules' unit tests, and a real Prometheus scraping a stack).
ensure_prometheus() {
  if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
    apt_install --no-install-recommends prometheus
  fi
}

# cargo-nextest (the test runner of test.sh), installed once into ~/.cargo/bin.
ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest from crates.io (once, a few minutes; cached in ~/.cargo/bin)"
    # A debug build: the runner only orchestrates test processes, and an
    # unoptimized build is much quicker to install on a fresh machine.
    cargo install cargo-nextest --locked --debug >&2 || die "cargo install cargo-nextest failed"
  fi
}
