#!/usr/bin/env bash
# Replication lag between two srn-servers on one PostgreSQL store (issue 19): starts a throwaway
# PostgreSQL server (initdb + pg_ctl on a free loopback port, as the user nobody when run as
# root), two srn-servers on it (the bundled model), then srn-replication-bench: SUBJECTS
# enrollments on the first, each timed from its acknowledgement until the second serves it.
# Prints the RESULT line. Run outside CI; results in docs/BENCHMARKS.md.
#
# Usage: bench/replication_lag.sh [build-dir]   (ninja -C build srn-server srn-replication-bench)
# Environment: SUBJECTS=500.
set -euo pipefail

BUILD_DIR=${1:-build}
SUBJECTS=${SUBJECTS:-500}
SERVER=$BUILD_DIR/server/srn-server
BENCH=$BUILD_DIR/bench/srn-replication-bench
SRNCTL=$BUILD_DIR/client/srnctl
for bin in "$SERVER" "$BENCH" "$SRNCTL"; do
  [[ -x $bin ]] || { echo "error: $bin not found (ninja -C $BUILD_DIR srn-server srnctl srn-replication-bench)" >&2; exit 1; }
done
source "$(dirname "$0")/scratch_postgres.sh"

DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  stop_scratch_postgres
  rm -rf "$DIR"
}
trap cleanup EXIT
start_scratch_postgres "$DIR/pg" || exit 0
URI=$PG_URI

start_server() {
  local port=$1
  "$SERVER" --store="$URI" --listen="127.0.0.1:$port" --metrics_listen= --threads=1 \
    2>> "$DIR/servers.log" &
  PIDS+=($!)
  until "$SRNCTL" --server="127.0.0.1:$port" --timeout=2 health >/dev/null 2>&1; do sleep 0.1; done
}
A=$(free_port); B=$(free_port)
start_server "$A"
start_server "$B"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
"$BENCH" --a="127.0.0.1:$A" --b="127.0.0.1:$B" --subjects="$SUBJECTS"
