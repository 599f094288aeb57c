#!/usr/bin/env bash
# Measures what one srn-server uses, to size the StatefulSet's resource requests and limits
# (docs/DEPLOY.md, "Resources"): resident memory and CPU at idle, then under closed-loop load
# from srn-loadgen on the same machine, with and without enrolled subjects.
#
# Usage: deploy/k8s/measure-usage.sh [build-dir]     (default: build; needs srn-server and
#        srn-loadgen: ninja -C build srn-server srn-loadgen)
#
# Environment: SUBJECTS=10000 REFERENCES=5 (enrolled before the loaded Identify/Verify runs),
# FRAMES=40 (frames per generated series; signatures are ~260-440), DURATION=15 (seconds per
# loaded run), CONCURRENCY=8, THREADS=0 (the server's --threads).
# Last, the server is restarted on the filled store and the time until it reports SERVING (it
# re-embeds every stored reference first) is measured: what the startup probe must allow.
# The server serves the bundled default model from a SQLite store in a temporary directory.
# The load generator shares the machine with the server: CPU figures are the server's own
# (from /proc), memory is the server's VmRSS and its peak VmHWM.
set -euo pipefail

BUILD_DIR=${1:-build}
SUBJECTS=${SUBJECTS:-10000}
REFERENCES=${REFERENCES:-5}
DURATION=${DURATION:-15}
CONCURRENCY=${CONCURRENCY:-8}
THREADS=${THREADS:-0}
FRAMES=${FRAMES:-40}
SERVER=$BUILD_DIR/server/srn-server
LOADGEN=$BUILD_DIR/bench/srn-loadgen
SRNCTL=$BUILD_DIR/client/srnctl
for bin in "$SERVER" "$LOADGEN" "$SRNCTL"; do
  [[ -x $bin ]] || { echo "error: $bin not found (ninja -C $BUILD_DIR srn-server srn-loadgen srnctl)" >&2; exit 1; }
done

DIR=$(mktemp -d)
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

start_server() {
  "$SERVER" --store="$DIR/store.db" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
    --threads="$THREADS" --drain_seconds=0 --grace_seconds=2 2> "$DIR/server.log" &
  PID=$!
  for _ in $(seq 6000); do grep -q "on port" "$DIR/server.log" && break; sleep 0.1; done
  PORT=$(sed -n 's/^[^;]* on port \([0-9]*\);.*/\1/p' "$DIR/server.log")
  [[ -n $PORT ]] || { cat "$DIR/server.log" >&2; exit 1; }
}
start_server
HZ=$(getconf CLK_TCK)

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# sample <label> <command...>: runs the command (or sleeps) and reports the server's usage.
sample() {
  local label=$1; shift
  local t0 c0 t1 c1
  t0=$(date +%s.%N); c0=$(ticks "$PID")
  "$@" > "$DIR/run.txt" 2>&1 || { echo "$label: run failed:" >&2; cat "$DIR/run.txt" >&2; }
  t1=$(date +%s.%N); c1=$(ticks "$PID")
  local calls
  calls=$(sed -n 's/^LOADGEN .* \(qps=[^ ]*\) .*\(p99_ms=[^ ]*\) .*/\1 \2/p' "$DIR/run.txt" | head -1)
  printf '%-34s cpu=%5.2f cores  rss=%4d MiB  peak_rss=%4d MiB  %s\n' "$label" \
    "$(echo "($c1 - $c0) / $HZ / ($t1 - $t0)" | bc -l)" \
    $(( $(kib "$PID" VmRSS) / 1024 )) $(( $(kib "$PID" VmHWM) / 1024 )) "$calls"
}
load() { "$LOADGEN" --target="127.0.0.1:$PORT" --warmup=2 --duration="$DURATION" --frames="$FRAMES" "$@"; }

echo "srn-server: $(sed -n 's/^srn-server: //p' "$DIR/server.log" | head -1)"
echo "series: $FRAMES frames"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
sample "idle (10 s, 0 subjects)" sleep 10
sample "verify, c=$CONCURRENCY" load --rpc=verify --concurrency="$CONCURRENCY" --references="$REFERENCES"
sample "embed, c=$CONCURRENCY" load --rpc=embed --concurrency="$CONCURRENCY"
# The Identify run first enrolls the subjects (durably, into the SQLite store), then measures.
sample "enroll $SUBJECTS x $REFERENCES + identify" load --rpc=identify --enroll_subjects="$SUBJECTS" \
  --concurrency="$CONCURRENCY" --references="$REFERENCES"
sample "idle (10 s, $SUBJECTS subjects)" sleep 10
sample "verify, c=$CONCURRENCY, $SUBJECTS subjects" load --rpc=verify --concurrency="$CONCURRENCY" \
  --references="$REFERENCES"
echo "store: $(du -sh "$DIR" | cut -f1) on disk for $SUBJECTS subjects x $REFERENCES references"
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
t0=$(date +%s.%N)
start_server
until "$SRNCTL" --server="127.0.0.1:$PORT" --timeout=2 health > /dev/null 2>&1; do sleep 0.1; done
t1=$(date +%s.%N)
printf 'restart with %d subjects: SERVING after %.1f s, rss=%d MiB, peak_rss=%d MiB\n' "$SUBJECTS" \
  "$(echo "$t1 - $t0" | bc -l)" $(( $(kib "$PID" VmRSS) / 1024 )) $(( $(kib "$PID" VmHWM) / 1024 ))
