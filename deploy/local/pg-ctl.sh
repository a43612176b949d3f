#!/usr/bin/env bash
# Stop or start one of the private PostgreSQL clusters of deploy/local
# (the database-restart test uses it to take its server away mid-stream).
#   ./deploy/local/pg-ctl.sh NAME PORT stop|start
set -euo pipefail
source "$(dirname "$0")/lib.sh"
name=$1 port=$2 action=$3
dir=$(pg_dir "$name" "$port")
case "$action" in
  stop) runuser -u postgres -- "$(pg_bindir)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null ;;
  start) AGENTOPS_PG_FSYNC=off start_postgres "$dir" "$port" ;;
  *) die "usage: pg-ctl.sh NAME PORT stop|start" ;;
esac
