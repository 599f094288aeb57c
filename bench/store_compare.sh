#!/usr/bin/env bash
# One srn-server on a SQLite store against the same server on a PostgreSQL store (issue 19):
# Verify and Identify (served from memory on both: the target is PostgreSQL at 95% of SQLite or
# more) and durable Enroll (each call acknowledged after its commit: the target is PostgreSQL at
# SQLite's rate or more), measured with srn-loadgen on this machine. A throwaway PostgreSQL server
# (initdb + pg_ctl on a free loopback port, as the user nobody when run as root; fsync on) and a
# SQLite file on the same disk. ROUNDS rounds, alternating which store goes first; medians count.
# Prints a table and one RESULT line. Run outside CI; results in docs/BENCHMARKS.md.
#
# Usage: bench/store_compare.sh [build-dir]   (ninja -C build srn-server srn-loadgen srn-train)
# Environment: ROUNDS=2, DURATION=10, WARMUP=2, SUBJECTS=20000 (enrolled for Identify, 5
# references each), MODEL= (default: a small Arabic-voice srn-a as in run_service_bench.sh).
set -euo pipefail

BUILD_DIR=${1:-build}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
SUBJECTS=${SUBJECTS:-20000}
MODEL=${MODEL:-}
SERVER=$BUILD_DIR/server/srn-server
LOADGEN=$BUILD_DIR/bench/srn-loadgen
TRAIN=$BUILD_DIR/model/tools/srn-train
for bin in "$SERVER" "$LOADGEN"; do
  [[ -x $bin ]] || { echo "error: $bin not found (ninja -C $BUILD_DIR srn-server srn-loadgen srn-train)" >&2; exit 1; }
done
source "$(dirname "$0")/scratch_postgres.sh"

DIR=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]]; then { kill -9 "$SERVER_PID" && wait "$SERVER_PID"; } 2>/dev/null || true; fi
  stop_scratch_postgres
  rm -rf "$DIR"
}
trap cleanup EXIT
start_scratch_postgres "$DIR/pg" || exit 0
PSQL=("${PG_AS[@]}" "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U srn -q -v ON_ERROR_STOP=1)

if [[ -z $MODEL ]]; then
  MODEL=$DIR/bench-arabic.srnw
  "$TRAIN" --dataset=arabic-voice --model=srn-a --hidden=64 --window=2 --epochs=1 \
    --pairs_per_epoch=2000 --eval=false --seed=1 --out="$MODEL" > "$DIR/train.log" 2>&1 ||
    { cat "$DIR/train.log" >&2; echo "error: training the benchmark model failed (or set MODEL)" >&2; exit 1; }
fi

# start_server <store>: a fresh server on an empty store; sets SERVER_PID and PORT.
start_server() {
  local log=$DIR/server.log
  : > "$log"; cp "$log" "$log.prev" 2>/dev/null || true
  "$SERVER" --weights="$MODEL" --store="$1" --listen=127.0.0.1:0 --metrics_listen= \
    --drain_seconds=0 --grace_seconds=5 2> "$log" &
  SERVER_PID=$!
  PORT=
  for _ in $(seq 1 600); do
    PORT=$(sed -n 's/.* on port \([0-9]*\); metrics.*/\1/p' "$log")
    [[ -n $PORT ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; echo "error: the server exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "error: the server did not start within 60 s" >&2
  exit 1
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=; }

# run <name> <loadgen flags...>: one run; its LOADGEN line goes to $DIR/<name>.txt.
run() {
  local name=$1
  shift
  "$LOADGEN" --target="127.0.0.1:$PORT" --server_pid="$SERVER_PID" --warmup="$WARMUP" \
    --duration="$DURATION" "$@" > "$DIR/$name.txt" 2> "$DIR/$name.err" ||
    { cat "$DIR/$name.err" "$DIR/$name.txt" >&2; echo "error: srn-loadgen failed in $name" >&2; exit 1; }
}
field() { sed -n "s/^LOADGEN .* $2=\([^ ]*\).*/\1/p" "$DIR/$1.txt"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print ((NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# measure <store kind> <round>: on a fresh store, Identify over SUBJECTS and Verify, both
# saturating, then Enroll (durable, 8 in flight; last, so that Identify scans SUBJECTS only).
measure() {
  local kind=$1 round=$2 store
  if [[ $kind == sqlite ]]; then
    rm -f "$DIR"/store.db*
    store=$DIR/store.db
  else
    PGOPTIONS="-c client_min_messages=warning" "${PSQL[@]}" -d postgres \
      -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
    store="postgresql://srn@127.0.0.1:$PGPORT/bench"
  fi
  start_server "$store"
  run "identify_${kind}_$round" --rpc=identify --enroll_subjects="$SUBJECTS" --references=5 \
    --enroll_concurrency=32 --concurrency=8 --channels=4
  run "verify_${kind}_$round" --rpc=verify --references=5 --concurrency=32 --channels=4
  run "enroll_${kind}_$round" --rpc=enroll --references=5 --concurrency=8 --channels=2
  stop_server
  for rpc in identify verify enroll; do
    printf '%-8s %-10s %5s %10s %9s %9s %6s\n' "$kind" "$rpc" "$round" \
      "$(field "${rpc}_${kind}_$round" qps)" "$(field "${rpc}_${kind}_$round" p50_ms)" \
      "$(field "${rpc}_${kind}_$round" p99_ms)" "$(field "${rpc}_${kind}_$round" errors)"
  done
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
printf '%-8s %-10s %5s %10s %9s %9s %6s\n' store rpc round calls/s p50_ms p99_ms errors
for round in $(seq 1 "$ROUNDS"); do
  if (( round % 2 )); then order=(sqlite postgresql); else order=(postgresql sqlite); fi
  for kind in "${order[@]}"; do measure "$kind" "$round"; done
done

ratio() {  # ratio <rpc>: median PostgreSQL calls/s over median SQLite calls/s
  local pg=() lite=()
  for round in $(seq 1 "$ROUNDS"); do
    pg+=("$(field "${1}_postgresql_$round" qps)")
    lite+=("$(field "${1}_sqlite_$round" qps)")
  done
  awk -v p="$(median "${pg[@]}")" -v s="$(median "${lite[@]}")" 'BEGIN { printf "%.3f", p / s }'
}
errors=0
for f in "$DIR"/*_[0-9]*.txt; do errors=$((errors + $(sed -n 's/^LOADGEN .* errors=\([0-9]*\).*/\1/p' "$f"))); done
echo "RESULT store_compare subjects=$SUBJECTS rounds=$ROUNDS verify_ratio=$(ratio verify)" \
  "identify_ratio=$(ratio identify) enroll_ratio=$(ratio enroll) errors=$errors"
