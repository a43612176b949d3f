#!/usr/bin/env bash
# Start or stop a private tansu broker (SQLite engine) in DIR on PORT, the
# way the test services do (header index included), optionally advertising
# another port (a proxy in front of it).
#   ./deploy/local/tansu-ctl.sh DIR PORT start|stop [ADVERTISED_PORT]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
dir=$1 port=$2 action=$3 advertised=${4:-$2}
case "$action" in
  start) start_tansu "$dir" "$port" sqlite "$advertised" >&2 ;;
  stop) stop_pidfile "$dir/tansu.pid" ;;
  *) die "usage: tansu-ctl.sh DIR PORT start|stop" ;;
esac
