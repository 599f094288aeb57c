#!/usr/bin/env bash
# Measures srn-server's throughput and latency over gRPC with srn-loadgen (bench/load_gen.cc) on
# this machine, the load generator sharing it with the server, and prints the table of
# docs/BENCHMARKS.md ("Service throughput and latency") with pass/fail against the targets:
#
#   - Embed (Arabic-shape series) at least 60% of the same server's grpc.health.v1 Check QPS
#     under the same load (same client settings);
#   - Verify against a 5-reference subject: p99 under 5 ms at half of its saturating load;
#   - Identify over 100,000 enrolled subjects: p99 under 20 ms.
#
# Builds nothing: build first with
#
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
#   ninja -C build srn-server srn-loadgen srn-train
#
# Usage: bench/run_service_bench.sh [build-dir]        (default: build)
#
# About 4 minutes with the defaults; the server then holds 100,000 subjects x 5 references in
# memory (about 2.6 GB).
#
# Environment (all optional):
#   DURATION=15 WARMUP=3   seconds measured / warmed up per run
#   CONCURRENCY=32         calls in flight in every saturating run (check, embed, verify)...
#   CHANNELS=4             ...over this many connections...
#   LOADGEN_THREADS=1      ...from this many client completion-queue threads
#   ROUNDS=3               check/embed rounds, interleaved so both see the same machine; the
#                          medians count
#   SUBJECTS=100000        subjects enrolled for Identify...
#   REFERENCES=5           ...each with this many references (also the Verify subject's)
#   IDENTIFY_CONCURRENCY=8 calls in flight for Identify's saturating run
#   FRAMES=40              frames per generated series (Arabic digits average ~40)
#   DURABLE=1              also measure Enroll into a SQLite store (0: skip)
#   MAX_BUSY=100           before each run, wait while other processes use more than this
#                          percentage of the machine's CPU (sampled over 2 s; 100: never wait)...
#   WAIT_SECONDS=1800      ...for at most this long in all, then measure anyway (and say so)
#   MODEL=                 weights to serve (default: train a small Arabic-voice srn-a, hidden 64,
#                          window 2, i.e. 26 inputs, into the temporary directory: a minute at most)
#   SIGNATURES=            a directory of SVC2004 files (e.g. $SRN_DATA_DIR/svc2004/Task2) for a
#                          signature MODEL: Verify then enrolls the first signer's S1..S<REFERENCES>
#                          and sends real signatures as queries (srn-loadgen --signatures), and
#                          the summary adds Verify's calls/s per server core (target: >= 1,000)
#   RUNS=all               or "verify": only Verify's two runs (saturating, half load)
#   OUT_DIR=               keep the server log and every run's output here (default: temporary)
#
# One server (store ':memory:', so enrollment costs no fsync) serves every run; the durable
# Enroll run starts a second one on a SQLite file. Nothing is pinned: server, load generator and
# whatever else runs share the cores, and each run reports how many cores each used
# ("other" = the rest of the machine), so a busy machine is visible in the table.
set -euo pipefail

BUILD_DIR=${1:-build}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONCURRENCY=${CONCURRENCY:-32}
CHANNELS=${CHANNELS:-4}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
ROUNDS=${ROUNDS:-3}
SUBJECTS=${SUBJECTS:-100000}
REFERENCES=${REFERENCES:-5}
IDENTIFY_CONCURRENCY=${IDENTIFY_CONCURRENCY:-8}
FRAMES=${FRAMES:-40}
DURABLE=${DURABLE:-1}
MAX_BUSY=${MAX_BUSY:-100}
WAIT_SECONDS=${WAIT_SECONDS:-1800}
MODEL=${MODEL:-}
SIGNATURES=${SIGNATURES:-}
RUNS=${RUNS:-all}
if [[ $RUNS != all && $RUNS != verify ]]; then
  echo "error: RUNS must be all or verify, not '$RUNS'" >&2
  exit 1
fi
VERIFY_FLAGS=()
if [[ -n $SIGNATURES ]]; then VERIFY_FLAGS=(--signatures="$SIGNATURES"); fi

SERVER=$BUILD_DIR/server/srn-server
LOADGEN=$BUILD_DIR/bench/srn-loadgen
TRAIN=$BUILD_DIR/model/tools/srn-train
for bin in "$SERVER" "$LOADGEN"; do
  if [[ ! -x $bin ]]; then
    echo "error: $bin not found; build it with: ninja -C $BUILD_DIR srn-server srn-loadgen srn-train" >&2
    exit 1
  fi
done

if [[ -n ${OUT_DIR:-} ]]; then
  mkdir -p "$OUT_DIR"
  KEEP_OUT=1
else
  OUT_DIR=$(mktemp -d)
  KEEP_OUT=0
fi
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $KEEP_OUT == 0 ]]; then rm -rf "$OUT_DIR"; fi
}
trap cleanup EXIT

# Share of the machine's CPU (0-100) busy over the next 2 seconds, from /proc/stat.
busy_percent() {
  local a b
  read -r -a a < <(head -1 /proc/stat)
  sleep 2
  read -r -a b < <(head -1 /proc/stat)
  awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN {
    n = split(a, x, " "); split(b, y, " "); total = 0; idle = 0
    for (i = 2; i <= 9 && i <= n; i++) { d = y[i] - x[i]; total += d; if (i == 5 || i == 6) idle += d }
    printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}

echo "srn service benchmark: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1))"
echo "before: load average $(cut -d' ' -f1-3 /proc/loadavg); $(busy_percent)% of the CPU busy with other work"

if [[ -z $MODEL ]]; then
  if [[ ! -x $TRAIN ]]; then
    echo "error: $TRAIN not found (needed to train the benchmark model; or set MODEL)" >&2
    exit 1
  fi
  MODEL=$OUT_DIR/bench-arabic.srnw
  echo "training the benchmark model (arabic-voice, srn-a, hidden 64, window 2; speed depends on shape only)..."
  if ! "$TRAIN" --dataset=arabic-voice --model=srn-a --hidden=64 --window=2 --epochs=1 \
      --pairs_per_epoch=2000 --eval=false --seed=1 --out="$MODEL" > "$OUT_DIR/train.log" 2>&1; then
    cat "$OUT_DIR/train.log" >&2
    echo "error: training the benchmark model failed (is the Arabic digit data in place? or set MODEL)" >&2
    exit 1
  fi
fi

# Starts a server on `store`, in the background; sets SERVER_PID and PORT.
start_server() {
  local store=$1 log=$2
  "$SERVER" --weights="$MODEL" --store="$store" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
    --drain_seconds=0 --grace_seconds=5 2> "$log" &
  SERVER_PID=$!
  PORT=
  for _ in $(seq 1 600); do
    PORT=$(sed -n 's/.* on port \([0-9]*\); metrics.*/\1/p' "$log")
    [[ -n $PORT ]] && return 0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$log" >&2
      echo "error: the server exited" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "error: the server did not start within 60 s" >&2
  exit 1
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=
}

# Waits (within the WAIT_SECONDS budget) until other processes use at most MAX_BUSY% of the CPU.
WAITED=0
wait_for_quiet() {
  [[ $MAX_BUSY -ge 100 ]] && return 0
  local busy
  while true; do
    busy=$(busy_percent)
    WAITED=$((WAITED + 2))
    if [[ $busy -le $MAX_BUSY ]]; then return 0; fi
    if [[ $WAITED -ge $WAIT_SECONDS ]]; then
      echo "  (other work still uses ${busy}% of the CPU; measuring anyway)"
      return 0
    fi
    sleep 3
    WAITED=$((WAITED + 3))
  done
}

# run <name> <loadgen flags...>: one load generator run; its output goes to $OUT_DIR/<name>.txt
# and its LOADGEN line is echoed. A run whose calls failed is kept (and fails its target).
run() {
  local name=$1
  shift
  local status=0
  wait_for_quiet
  "$LOADGEN" --target="127.0.0.1:$PORT" --server_pid="$SERVER_PID" --frames="$FRAMES" \
    --warmup="$WARMUP" --duration="$DURATION" --threads="$LOADGEN_THREADS" "$@" \
    > "$OUT_DIR/$name.txt" 2> "$OUT_DIR/$name.err" || status=$?
  if [[ $status != 0 && $status != 3 ]]; then
    cat "$OUT_DIR/$name.err" "$OUT_DIR/$name.txt" >&2
    echo "error: srn-loadgen failed in run '$name' (status $status)" >&2
    exit 1
  fi
  local line
  line=$(grep '^LOADGEN ' "$OUT_DIR/$name.txt")
  echo "$name: ${line#LOADGEN }"
  if [[ $status == 3 ]]; then grep 'error:' "$OUT_DIR/$name.txt" >&2 || true; fi
}

# field <name> <key>: a value from a run's LOADGEN line.
field() {
  sed -n "s/^LOADGEN .* $2=\([^ ]*\).*/\1/p" "$OUT_DIR/$1.txt"
}

median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print ((NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

start_server :memory: "$OUT_DIR/server.log"
echo "server: $(sed -n 's/^srn-server: //p' "$OUT_DIR/server.log" | head -1)"
SATURATE=(--concurrency="$CONCURRENCY" --channels="$CHANNELS")

# 1. Check and Embed, interleaved.
CHECK_RUNS=()
EMBED_RUNS=()
if [[ $RUNS == verify ]]; then ROUNDS=0; fi
for round in $(seq 1 "$ROUNDS"); do
  run "check_$round" --rpc=check "${SATURATE[@]}"
  run "embed_$round" --rpc=embed "${SATURATE[@]}"
  CHECK_RUNS+=("check_$round")
  EMBED_RUNS+=("embed_$round")
done

# 2. Verify: saturating, then open loop at half that rate.
run verify_saturating --rpc=verify --references="$REFERENCES" "${VERIFY_FLAGS[@]}" "${SATURATE[@]}"
VERIFY_SAT=$(field verify_saturating qps)
VERIFY_HALF_RATE=$(awk -v q="$VERIFY_SAT" 'BEGIN { printf "%d", q / 2 }')
run verify_half --rpc=verify --references="$REFERENCES" "${VERIFY_FLAGS[@]}" \
  --rate="$VERIFY_HALF_RATE" --channels="$CHANNELS"
if [[ $RUNS == verify ]]; then
  stop_server
  DURABLE=0
else

# 3. Identify: enroll, then one call at a time, saturating, and open loop at half.
run identify_1 --rpc=identify --enroll_subjects="$SUBJECTS" --references="$REFERENCES" \
  --enroll_concurrency=32 --concurrency=1 --channels=1
grep '^ENROLL ' "$OUT_DIR/identify_1.txt" | sed 's/^/identify_1: /'
run identify_saturating --rpc=identify --concurrency="$IDENTIFY_CONCURRENCY" --channels="$CHANNELS"
IDENTIFY_SAT=$(field identify_saturating qps)
IDENTIFY_HALF_RATE=$(awk -v q="$IDENTIFY_SAT" 'BEGIN { r = q / 2; printf "%.1f", (r < 1 ? 1 : r) }')
run identify_half --rpc=identify --rate="$IDENTIFY_HALF_RATE" --channels="$CHANNELS"
stop_server
fi

# 4. Durable enrollment: each Enroll commits to SQLite before it is acknowledged.
if [[ $DURABLE == 1 ]]; then
  mkdir -p "$OUT_DIR/durable"
  rm -f "$OUT_DIR/durable/store.db"*
  start_server "$OUT_DIR/durable/store.db" "$OUT_DIR/server-durable.log"
  DURATION_SAVED=$DURATION
  DURATION=$(( DURATION < 10 ? DURATION : 10 ))
  run enroll_durable --rpc=enroll --references="$REFERENCES" --concurrency=8 --channels=2
  DURATION=$DURATION_SAVED
  stop_server
fi

# ---- Summary -------------------------------------------------------------------------------------
CHECK_QPS=()
EMBED_QPS=()
for r in "${CHECK_RUNS[@]}"; do CHECK_QPS+=("$(field "$r" qps)"); done
for r in "${EMBED_RUNS[@]}"; do EMBED_QPS+=("$(field "$r" qps)"); done
CHECK_MED=$( ((${#CHECK_QPS[@]})) && median "${CHECK_QPS[@]}" || echo 0)
EMBED_MED=$( ((${#EMBED_QPS[@]})) && median "${EMBED_QPS[@]}" || echo 0)

row() {  # row <label> <run>
  local name=$2
  local errors other
  errors=$(field "$name" errors)
  other=$(awk -v m="$(field "$name" machine_cores)" -v s="$(field "$name" server_cores)" \
    -v l="$(field "$name" loadgen_cores)" 'BEGIN { if (m == "na" || s == "na") print "na"; else printf "%.2f", m - s - l }')
  printf '%-44s %10s %9s %9s %9s %9s %7s %7s %7s %6s\n' "$1" "$(field "$name" qps)" \
    "$(field "$name" p50_ms)" "$(field "$name" p99_ms)" "$(field "$name" p999_ms)" "$(field "$name" max_ms)" \
    "$(field "$name" server_cores)" "$(field "$name" loadgen_cores)" "$other" "$errors"
}

verdict() {  # verdict <ok: 1|0>
  if [[ $1 == 1 ]]; then echo PASS; else echo FAIL; fi
}

echo
echo "== srn service benchmark =="
echo "machine: $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $RUNS == all ]]; then
  echo "model: $(sed -n 's/^srn-server: serving model \([^ ]*\) (\([^)]*\)).*/\1 (\2)/p' "$OUT_DIR/server.log" | head -1), series of $FRAMES frames x $(sed -n 's/.*: [0-9]* frames x \([0-9]*\) features.*/\1/p' "$OUT_DIR/embed_1.txt" | head -1) features"
fi
echo "verify: $(sed -n 's/^srn-loadgen: verify on [^;]*; //p' "$OUT_DIR/verify_saturating.txt" | head -1)"
echo "closed loop: $CONCURRENCY calls in flight over $CHANNELS channels, $LOADGEN_THREADS client thread(s); ${WARMUP} s warm-up + ${DURATION} s per run"
echo "cores: CPU cores used while measuring by the server, the load generator, and everything else"
printf '%-44s %10s %9s %9s %9s %9s %7s %7s %7s %6s\n' run calls/s p50_ms p99_ms p99.9_ms max_ms server loadgen other errors
for r in $(seq 1 "$ROUNDS"); do
  row "Check (health), round $r" "check_$r"
  row "Embed 1 series, round $r" "embed_$r"
done
row "Verify ($REFERENCES refs), saturating" verify_saturating
row "Verify ($REFERENCES refs), open loop at $VERIFY_HALF_RATE/s" verify_half
if [[ $RUNS == all ]]; then
  row "Identify ($SUBJECTS x $REFERENCES refs), 1 in flight" identify_1
  row "Identify, $IDENTIFY_CONCURRENCY in flight (saturating)" identify_saturating
  row "Identify, open loop at $IDENTIFY_HALF_RATE/s" identify_half
fi
if [[ $DURABLE == 1 ]]; then row "Enroll ($REFERENCES refs) into SQLite, 8 in flight" enroll_durable; fi
if [[ $RUNS == all ]]; then
  sed -n 's/^ENROLL subjects=\([0-9]*\) references=\([0-9]*\) seconds=\([0-9.]*\) per_s=\([0-9.]*\).*/enrollment for Identify (in-memory store, 32 in flight): \1 subjects x \2 refs in \3 s (\4\/s)/p' \
    "$OUT_DIR/identify_1.txt"
fi

EMBED_RATIO=$(awk -v e="$EMBED_MED" -v c="$CHECK_MED" 'BEGIN { printf "%.1f", (c > 0 ? 100 * e / c : 0) }')
ok_ratio=$(awk -v r="$EMBED_RATIO" 'BEGIN { print ((r >= 60) ? 1 : 0) }')
VERIFY_P99=$(field verify_half p99_ms)
ok_verify=$(awk -v p="$VERIFY_P99" -v e="$(field verify_half errors)" 'BEGIN { print ((p < 5 && e == 0) ? 1 : 0) }')
VERIFY_PER_CORE=$(awk -v q="$VERIFY_SAT" -v c="$(field verify_saturating server_cores)" 'BEGIN { if (c == "na" || c <= 0) print "na"; else printf "%.0f", q / c }')
ok_verify_per_core=$(awk -v p="$VERIFY_PER_CORE" -v e="$(field verify_saturating errors)" 'BEGIN { print ((p != "na" && p >= 1000 && e == 0) ? 1 : 0) }')
if [[ $RUNS == all ]]; then
  IDENTIFY_P99=$(field identify_1 p99_ms)
  ok_identify=$(awk -v p="$IDENTIFY_P99" -v e="$(field identify_1 errors)" 'BEGIN { print ((p < 20 && e == 0) ? 1 : 0) }')
  IDENTIFY_HALF_P99=$(field identify_half p99_ms)
  ok_identify_half=$(awk -v p="$IDENTIFY_HALF_P99" -v e="$(field identify_half errors)" 'BEGIN { print ((p < 20 && e == 0) ? 1 : 0) }')
fi
ok_embed_errors=1
for r in "${CHECK_RUNS[@]}" "${EMBED_RUNS[@]}"; do
  if [[ $(field "$r" errors) != 0 ]]; then ok_embed_errors=0; fi
done
if [[ $ok_embed_errors == 0 ]]; then ok_ratio=0; fi

echo
echo "targets:"
if [[ $RUNS == all ]]; then
  printf '  %-62s %-22s %s\n' "Embed QPS >= 60% of Check QPS (medians of $ROUNDS rounds)" \
    "$EMBED_RATIO% ($EMBED_MED / $CHECK_MED)" "$(verdict "$ok_ratio")"
fi
printf '  %-62s %-22s %s\n' "Verify p99 < 5 ms at half the saturating load ($VERIFY_HALF_RATE/s)" \
  "$VERIFY_P99 ms" "$(verdict "$ok_verify")"
if [[ -n $SIGNATURES ]]; then
  printf '  %-62s %-22s %s\n' "Verify (real signatures) >= 1,000 calls/s per server core" \
    "$VERIFY_PER_CORE/s" "$(verdict "$ok_verify_per_core")"
fi
if [[ $RUNS == all ]]; then
  printf '  %-62s %-22s %s\n' "Identify over $SUBJECTS subjects p99 < 20 ms (1 in flight)" \
    "$IDENTIFY_P99 ms" "$(verdict "$ok_identify")"
  printf '  %-62s %-22s %s\n' "  (same, at half the saturating load: $IDENTIFY_HALF_RATE/s)" \
    "$IDENTIFY_HALF_P99 ms" "$(verdict "$ok_identify_half")"
fi
echo "after: load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $KEEP_OUT == 1 ]]; then echo "raw output: $OUT_DIR"; fi
