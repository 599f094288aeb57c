#!/usr/bin/env bash
# Start-up time of srn-server over a large store (issue 20: 100,000 subjects of 5 references
# answer SERVING within 30 s on 2 cores). Builds the store with srn-store-gen (real SVC2004
# signatures, embedded by the bundled model, without the stored spreads, as a store written by an
# older server), then starts the server on it twice:
#   1. "first":  SERVING, then the spreads the store lacks are derived and stored in the
#                background (srn_subjects_missing_spreads falls to 0; Verify works meanwhile);
#   2. "again":  SERVING on the store that now has them all.
# For each: seconds from exec to SERVING (srnctl health), resident memory, and for the first, the
# seconds until the background derivation finished. A Verify against one subject is checked after
# each start. Prints one STARTUP line per start. Run outside CI; results in docs/BENCHMARKS.md.
#
# Usage: bench/startup_bench.sh [build-dir]   (needs srn-server, srnctl, srn-store-gen:
#        ninja -C build srn-server srnctl srn-store-gen)
# Environment: SUBJECTS=100000 REFERENCES=5, SIGNATURES (default $SRN_DATA_DIR/svc2004/Task2,
# SRN_DATA_DIR defaulting to ../shared/data), KEEP_STORE=path (reuse or keep the store there),
# STORE_URI=postgresql://... (an empty PostgreSQL database instead of a SQLite file; SKIP_GEN=1
# when it is already filled).
set -euo pipefail

BUILD_DIR=${1:-build}
SUBJECTS=${SUBJECTS:-100000}
REFERENCES=${REFERENCES:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DATA=${SRN_DATA_DIR:-$HERE/../shared/data}
SIGNATURES=${SIGNATURES:-$DATA/svc2004/Task2}
SERVER=$BUILD_DIR/server/srn-server
SRNCTL=$BUILD_DIR/client/srnctl
GEN=$BUILD_DIR/bench/srn-store-gen
for bin in "$SERVER" "$SRNCTL" "$GEN"; do
  [[ -x $bin ]] || { echo "error: $bin not found (ninja -C $BUILD_DIR srn-server srnctl srn-store-gen)" >&2; exit 1; }
done
[[ -d $SIGNATURES ]] || { echo "skipped: no SVC2004 signatures at $SIGNATURES (set SIGNATURES or SRN_DATA_DIR)"; exit 0; }

DIR=$(mktemp -d)
PID=
cleanup() { [[ -n $PID ]] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
STORE=${STORE_URI:-${KEEP_STORE:-$DIR/store.db}}
if [[ -n ${STORE_URI:-} && ${SKIP_GEN:-0} != 1 ]] || [[ -z ${STORE_URI:-} && ! -e $STORE ]]; then
  "$GEN" --store="$STORE" --subjects="$SUBJECTS" --references="$REFERENCES" \
    --signatures="$SIGNATURES" --weights="$HERE/deploy/models/default.srnw"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
missing() {
  curl -s "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "srn_subjects_missing_spreads" {print $2}'
}

size=$([[ -n ${STORE_URI:-} ]] && echo "in PostgreSQL" || du -h "$STORE" | cut -f1)
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); store $size"
for run in first again; do
  PORT=$(free_port); MPORT=$(free_port)
  t0=$(date +%s.%N)
  "$SERVER" --store="$STORE" --listen="127.0.0.1:$PORT" --metrics_listen="127.0.0.1:$MPORT" \
    --drain_seconds=0 --grace_seconds=2 2>> "$DIR/server.log" &
  PID=$!
  until "$SRNCTL" --server="127.0.0.1:$PORT" --timeout=2 health > /dev/null 2>&1; do
    kill -0 "$PID" 2>/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
    sleep 0.1
  done
  t1=$(date +%s.%N)
  serving=$(echo "$t1 - $t0" | bc -l)
  rss=$(( $(kib "$PID" VmRSS) / 1024 ))
  # A Verify now (its spreads may still be missing: it derives them for itself).
  "$SRNCTL" --server="127.0.0.1:$PORT" verify --subject=subject-0000123 "$SIGNATURES/U4S20.TXT" \
    > "$DIR/verify.txt" || { cat "$DIR/verify.txt" "$DIR/server.log" >&2; exit 1; }
  left=$(missing)
  derived=-
  if [[ $run == first ]]; then
    until [[ $(missing) == 0 ]]; do
      kill -0 "$PID" 2>/dev/null || { cat "$DIR/server.log" >&2; exit 1; }
      sleep 1
    done
    derived=$(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc -l)")
  fi
  printf 'STARTUP run=%s subjects=%d references=%d serving_s=%.1f rss_mib=%d missing_at_serving=%s all_derived_s=%s peak_rss_mib=%d\n' \
    "$run" "$SUBJECTS" "$REFERENCES" "$serving" "$rss" "$left" "$derived" $(( $(kib "$PID" VmHWM) / 1024 ))
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
done
grep -E "deriv|spreads" "$DIR/server.log" || true
