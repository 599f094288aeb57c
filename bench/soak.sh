#!/usr/bin/env bash
# Soak (issue 20): srn-server under half of Verify's saturating load for an hour, with enrolls and
# deletes mixed in, its memory and file descriptors sampled every minute. Passes when no call
# failed and neither grew beyond the bounds below from the first sample after warm-up. Run outside
# CI; results in docs/BENCHMARKS.md.
#
#   1. the server (bundled model, SQLite store in a temporary directory, all cores) starts;
#   2. srn-loadgen measures Verify's saturating rate for 15 s (real SVC2004 signatures, 5
#      references, closed loop);
#   3. for DURATION seconds: srn-loadgen verifies at half that rate (open loop, a SOAK_VERIFY line
#      with its latencies every 10 minutes), while a writer
#      enrolls a new subject (5 signatures) and deletes the one enrolled 20 writes before, about
#      twice a second; every minute a SOAK line records the server's resident memory, its open file
#      descriptors and threads, the store's size on disk and the writer's counts.
# Bounds, from the sample at minute WARMUP_MIN (default 5) to the last: resident memory grows by
# at most 10% + 16 MiB, file descriptors by at most 4, threads by at most 4.
#
# Usage: bench/soak.sh [build-dir]   (needs srn-server, srnctl, srn-loadgen)
# Environment: DURATION=3600, WARMUP_MIN=5, SIGNATURES (default $SRN_DATA_DIR/svc2004/Task2).
set -euo pipefail

BUILD_DIR=${1:-build}
DURATION=${DURATION:-3600}
WARMUP_MIN=${WARMUP_MIN:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DATA=${SRN_DATA_DIR:-$HERE/../shared/data}
SIGNATURES=${SIGNATURES:-$DATA/svc2004/Task2}
SERVER=$BUILD_DIR/server/srn-server
SRNCTL=$BUILD_DIR/client/srnctl
LOADGEN=$BUILD_DIR/bench/srn-loadgen
for bin in "$SERVER" "$SRNCTL" "$LOADGEN"; do
  [[ -x $bin ]] || { echo "error: $bin not found (ninja -C $BUILD_DIR srn-server srnctl srn-loadgen)" >&2; exit 1; }
done
[[ -d $SIGNATURES ]] || { echo "skipped: no SVC2004 signatures at $SIGNATURES (set SIGNATURES or SRN_DATA_DIR)"; exit 0; }

DIR=$(mktemp -d)
PID=
cleanup() { [[ -n $PID ]] && kill -9 "$PID" 2>/dev/null; pkill -P $$ 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

PORT=$(free_port)
"$SERVER" --store="$DIR/store.db" --listen="127.0.0.1:$PORT" --metrics_listen=127.0.0.1:0 \
  --drain_seconds=0 --grace_seconds=2 2> "$DIR/server.log" &
PID=$!
until "$SRNCTL" --server="127.0.0.1:$PORT" --timeout=2 health > /dev/null 2>&1; do sleep 0.1; done
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(head -1 "$DIR/server.log")"

load() { "$LOADGEN" --target="127.0.0.1:$PORT" --rpc=verify --signatures="$SIGNATURES" --references=5 "$@"; }
load --concurrency=8 --warmup=3 --duration=15 | tee "$DIR/saturating.txt" | grep '^LOADGEN'
SATURATING=$(sed -n 's/^LOADGEN .* qps=\([0-9.]*\) .*/\1/p' "$DIR/saturating.txt")
RATE=$(echo "$SATURATING / 2" | bc -l | xargs printf '%.0f')
echo "soak: Verify at $RATE calls/s (half of $SATURATING) for $DURATION s, with enrolls and deletes"

# In runs of at most 10 minutes (srn-loadgen's limit), one LOADGEN line each: latency over time.
verify_load() {
  local left=$DURATION chunk
  while (( left > 0 )); do
    chunk=$(( left < 600 ? left : 600 ))
    load --rate="$RATE" --warmup=0 --duration="$chunk" --deadline_ms=10000 >> "$DIR/soak.txt" 2>&1 \
      || { echo "srn-loadgen failed" >> "$DIR/soak.txt"; return 1; }
    grep '^LOADGEN' "$DIR/soak.txt" | tail -1 | sed 's/^/SOAK_VERIFY /'
    left=$(( left - chunk ))
  done
}
verify_load &
LOAD_PID=$!

# The writer: enroll soak-N from 5 signatures of one signer, delete soak-(N-20).
writer() {
  local n=0 enrolled=0 deleted=0 failed=0 u s files
  while [[ ! -e $DIR/stop ]]; do
    u=$(( n % 40 + 1 )); s=$(( n % 16 + 1 ))
    files=()
    for k in 0 1 2 3 4; do files+=("$SIGNATURES/U${u}S$(( s + k )).TXT"); done
    if "$SRNCTL" --server="127.0.0.1:$PORT" --timeout=10 enroll --subject="soak-$n" "${files[@]}" > /dev/null 2>> "$DIR/writer.err"; then
      enrolled=$(( enrolled + 1 ))
    else
      failed=$(( failed + 1 ))
    fi
    if (( n >= 20 )); then
      if "$SRNCTL" --server="127.0.0.1:$PORT" --timeout=10 delete --subject="soak-$(( n - 20 ))" > /dev/null 2>> "$DIR/writer.err"; then
        deleted=$(( deleted + 1 ))
      else
        failed=$(( failed + 1 ))
      fi
    fi
    n=$(( n + 1 ))
    echo "$enrolled $deleted $failed" > "$DIR/writer.counts.tmp"; mv "$DIR/writer.counts.tmp" "$DIR/writer.counts"
    sleep 0.5
  done
}
writer &
WRITER_PID=$!

sample() {
  printf 'SOAK minute=%d rss_mib=%d fds=%d threads=%d store_mib=%d writer(enrolled,deleted,failed)=%s load=%s\n' \
    "$1" $(( $(kib "$PID" VmRSS) / 1024 )) "$(ls "/proc/$PID/fd" | wc -l)" "$(kib "$PID" Threads)" \
    $(( $(du -sk "$DIR" | cut -f1) / 1024 )) "$(cat "$DIR/writer.counts" 2>/dev/null | tr ' ' ',')" \
    "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$DIR/samples.txt"
}
minutes=$(( DURATION / 60 ))
for m in $(seq 0 "$minutes"); do
  sample "$m"
  (( m == minutes )) || sleep 60
done
load_ok=1; wait "$LOAD_PID" || load_ok=0
touch "$DIR/stop"; wait "$WRITER_PID" || true
(( load_ok )) || { echo "SOAK_RESULT fail: srn-loadgen failed"; cat "$DIR/soak.txt"; exit 1; }
kill -0 "$PID" || { echo "SOAK_RESULT fail: the server died"; cat "$DIR/server.log"; exit 1; }

read -r enrolled deleted wfailed < "$DIR/writer.counts"
errors=$(sed -n 's/^LOADGEN .* errors=\([0-9]*\).*/\1/p' "$DIR/soak.txt" | awk '{n += $1} END {print n + 0}')
calls=$(sed -n 's/^LOADGEN .* calls=\([0-9]*\).*/\1/p' "$DIR/soak.txt" | awk '{n += $1} END {print n + 0}')
first=$(awk -v m="$WARMUP_MIN" '$2 == "minute="m' "$DIR/samples.txt")
last=$(tail -1 "$DIR/samples.txt")
field() { echo "$1" | sed -n "s/.* $2=\([0-9]*\).*/\1/p"; }
rss0=$(field "$first" rss_mib); rss1=$(field "$last" rss_mib)
fd0=$(field "$first" fds); fd1=$(field "$last" fds)
th0=$(field "$first" threads); th1=$(field "$last" threads)
verdict=pass
(( rss1 <= rss0 + rss0 / 10 + 16 )) || verdict=fail
(( fd1 <= fd0 + 4 )) || verdict=fail
(( th1 <= th0 + 4 )) || verdict=fail
(( errors == 0 && wfailed == 0 )) || verdict=fail
(( calls > 0 )) || verdict=fail
echo "SOAK_RESULT $verdict duration_s=$DURATION rate=$RATE verify_calls=$calls verify_errors=$errors enrolled=$enrolled deleted=$deleted writer_failed=$wfailed rss_mib=$rss0->$rss1 fds=$fd0->$fd1 threads=$th0->$th1"
[[ -s $DIR/writer.err ]] && { echo "writer errors:"; head -5 "$DIR/writer.err"; }
[[ $verdict == pass ]]
