#!/usr/bin/env bash
# Serving latency while a training job runs: Verify p99 (open loop, srn-loadgen) on one srn-server,
# first idle, then while the server trains an Arabic-digit srn-a (hidden 64) from --data_dir, with
# the job's threads at nice +10 and --training_threads compute threads. Prints both loadgen reports
# and a two-row summary; docs/BENCHMARKS.md ("Serving while training") records a run.
#
# Builds nothing: ninja -C build srn-server srn-loadgen srnctl
#
# Usage: bench/run_training_bench.sh [build-dir]        (default: build)
#
# Environment (all optional):
#   RATE=200 DURATION=20 WARMUP=3   Verify calls per second, seconds measured, seconds warmed up
#   TRAINING_THREADS=1              the server's --training_threads
#   THREADS=0                       the server's --threads (0: all cores)
#   SCHED_IDLE=true                 the server's --training_sched_idle
#   DATA_DIR=../shared/data         folder holding spoken_arabic_digit/
#   PORT=50571                      gRPC port of the server under test
set -euo pipefail

BUILD_DIR=${1:-build}
RATE=${RATE:-200}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
TRAINING_THREADS=${TRAINING_THREADS:-1}
THREADS=${THREADS:-0}
SCHED_IDLE=${SCHED_IDLE:-true}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA_DIR=${DATA_DIR:-$HERE/../../shared/data}
PORT=${PORT:-50571}

SERVER=$BUILD_DIR/server/srn-server
LOADGEN=$BUILD_DIR/bench/srn-loadgen
CTL=$BUILD_DIR/client/srnctl
for bin in "$SERVER" "$LOADGEN" "$CTL"; do
  [[ -x $bin ]] || { echo "error: $bin not found; build it: ninja -C $BUILD_DIR srn-server srn-loadgen srnctl" >&2; exit 1; }
done
[[ -f $DATA_DIR/spoken_arabic_digit/Train_Arabic_Digit.txt ]] || { echo "error: no Arabic digits under $DATA_DIR" >&2; exit 1; }

OUT=$(mktemp -d)
SERVER_PID=
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$OUT"
}
trap cleanup EXIT

"$SERVER" --listen=127.0.0.1:$PORT --metrics_listen= --store=:memory: --model_dir="$OUT/models" \
  --data_dir="$DATA_DIR" --training_threads="$TRAINING_THREADS" --threads="$THREADS" --training_sched_idle="$SCHED_IDLE" \
  --model_poll_seconds=0 >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
ctl() { "$CTL" --server=127.0.0.1:$PORT "$@"; }
for _ in $(seq 50); do ctl health >/dev/null 2>&1 && break; sleep 0.2; done
ctl health >/dev/null

measure() {  # name
  "$LOADGEN" --target=127.0.0.1:$PORT --rpc=verify --rate="$RATE" --duration="$DURATION" \
    --warmup="$WARMUP" --server_pid="$SERVER_PID" | tee "$OUT/$1.txt"
}

echo "== Verify with no training job"
measure idle
echo "== Verify while training"
ctl --dataset=spoken_arabic_digit --dataset_format=arabic-digit --hidden=64 --epochs=1000 train
# Wait until the job is past loading the data and into its first epoch.
for _ in $(seq 300); do ctl jobs | grep -q 'running.*epoch [1-9]' && break; sleep 0.2; done
ctl jobs
measure training
ctl jobs
ctl cancel job-1 >/dev/null

p99() { sed -n 's/.*p99 \([0-9.]*\) .*/\1/p' "$OUT/$1.txt" | head -1; }
errors() { sed -n 's/.*errors \([0-9]*\):.*/\1/p' "$OUT/$1.txt" | head -1; }
cores() { sed -n 's/.*server \([0-9.]*\),.*/\1/p' "$OUT/$1.txt" | head -1; }
echo
echo "| Verify at $RATE/s, ${DURATION} s | p99 ms | errors | server cores |"
echo "|---|---|---|---|"
echo "| no training job | $(p99 idle) | $(errors idle) | $(cores idle) |"
echo "| training (--training_threads=$TRAINING_THREADS, nice +10, SCHED_IDLE $SCHED_IDLE) | $(p99 training) | $(errors training) | $(cores training) |"
