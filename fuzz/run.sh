#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/CMakeLists.txt) and runs each for a bounded time on a copy
# of its seed corpus (fuzz/corpus/<name>/) in a scratch folder, never writing into the
# repository. Fails if any target crashes (a sanitizer report, a broken contract, a timeout or
# running out of memory), naming the input that did it. Needs clang and libclang-rt-14-dev
# (deploy/install-deps.sh sanitizers).
#
#   fuzz/run.sh [seconds per target, default 60]
#
#   SRN_FUZZ_BUILD_DIR  build folder, configured here with clang and ASan + UBSan (build-fuzz)
#   SRN_FUZZ_JOBS       targets run at once (2)
#   SRN_FUZZ_TARGETS    the targets to run, space-separated (all of them)
#   SRN_FUZZ_WORK       scratch folder, kept (default: a new temporary folder, removed when no
#                       target crashed); holds per target the grown corpus, the log and any
#                       crashing input (<name>/artifacts/)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: fuzz/run.sh [seconds per target, a positive integer]" >&2
  exit 2
fi
build="${SRN_FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${SRN_FUZZ_JOBS:-2}"
targets=(${SRN_FUZZ_TARGETS:-svc2004 sigcomp2009 csv_series csv_manifest weights_file series_input})
if [ -n "${SRN_FUZZ_WORK:-}" ]; then
  work="$SRN_FUZZ_WORK"
  keep_work=1
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/srn-fuzz.XXXXXX")"
  keep_work=0
fi

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSRN_SANITIZE=address -DSRN_BUILD_FUZZ=ON -DSRN_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target srn_fuzz_targets

# Runs target $1 into $work/$1/ and records libFuzzer's exit status in $work/$1/status.
run_target() {
  local name="$1"
  local dir="$work/$name"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp fuzz/corpus/"$name"/* "$dir/corpus/"
  local status=0
  # -timeout: no input may take this long (libFuzzer reports it as a crash); -rss_limit_mb is
  # libFuzzer's default, stated because two targets run at once.
  UBSAN_OPTIONS=print_stacktrace=1 "$build/fuzz/${name}_fuzzer" \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || status=$?
  echo "$status" >"$dir/status"
}

for name in "${targets[@]}"; do
  if [ ! -x "$build/fuzz/${name}_fuzzer" ]; then
    echo "fuzz/run.sh: no target '$name' in $build/fuzz" >&2
    exit 2
  fi
done

echo "fuzz/run.sh: ${#targets[@]} targets, ${seconds} s each, $jobs at a time, in $work"
for name in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  run_target "$name" &
done
wait

# One line per target from libFuzzer's final statistics, then the crashes.
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
printf '%-14s %8s %12s %10s %8s %8s %8s\n' target seconds executions exec/s corpus rss_mb crashes
failed=0
for name in "${targets[@]}"; do
  dir="$work/$name"
  status="$(cat "$dir/status")"
  crashes=0
  if [ "$status" != 0 ]; then crashes=1; fi
  printf '%-14s %8s %12s %10s %8s %8s %8s\n' "$name" "$seconds" \
    "$(final_stat number_of_executed_units "$dir/log")" \
    "$(final_stat average_exec_per_sec "$dir/log")" "$(find "$dir/corpus" -type f | wc -l)" \
    "$(final_stat peak_rss_mb "$dir/log")" "$crashes"
done
for name in "${targets[@]}"; do
  dir="$work/$name"
  [ "$(cat "$dir/status")" = 0 ] && continue
  failed=1
  echo
  echo "fuzz/run.sh: $name FAILED (libFuzzer exit status $(cat "$dir/status")); log: $dir/log"
  grep -E 'ERROR: |SUMMARY: |fuzz contract broken' "$dir/log" | head -n 5 || true
  for input in "$dir"/artifacts/*; do
    [ -e "$input" ] || continue
    echo "  input: $input"
    echo "  reproduce: $build/fuzz/${name}_fuzzer $input"
  done
done

if [ "$failed" = 1 ]; then
  echo
  echo "fuzz/run.sh: kept $work; make each input a regression test (see docs/FUZZING.md)"
  exit 1
fi
if [ "$keep_work" = 0 ]; then rm -rf "$work"; fi
echo "fuzz/run.sh: no crashes"
