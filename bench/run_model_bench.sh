#!/usr/bin/env bash
# Runs the model library's throughput benchmark (bench/model_bench.cc) and its PyTorch peer
# (bench/torch_peer.py) side by side on this machine, and prints the comparison table of
# docs/BENCHMARKS.md ("Model library throughput"). Builds nothing: build first with
#
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build srn-model-bench
#
# Usage: bench/run_model_bench.sh [build-dir]        (default: build)
#
# Environment (all optional):
#   THREADS=2          threads a side: SRN_THREADS for srn, torch.set_num_threads for the peer
#   MIN_TIME=1         seconds per timed repetition, both sides
#   REPETITIONS=3      repetitions per row; the median counts, both sides
#   FILTER=            run only rows whose name contains this (e.g. srn-a/arabic)
#   MAX_BUSY=10        before each row, wait while other processes use more than this percentage
#                      of the machine's CPU time (sampled over 2 s)...
#   WAIT_SECONDS=1800  ...for at most this long in all, then measure anyway (and say so)
#   PYTHON=/usr/bin/python3   interpreter with torch
#   FAST_BLAS_DIR=     a directory holding an optimized libblas.so.3 (e.g. OpenBLAS, see
#                      docs/BENCHMARKS.md): the peer then also runs with it (LD_LIBRARY_PATH),
#                      as a second peer. Needed where torch is linked against the reference BLAS.
#   PEER_BLAS_THREADS=1  OPENBLAS_NUM_THREADS / MKL_NUM_THREADS for that second peer (its GEMMs
#                      run on torch's calling thread; more BLAS threads on top of torch's
#                      THREADS oversubscribe the cores and make it slower here)
#   OUT_DIR=           keep the raw JSON here (default: a temporary directory)
#
# Rows run one at a time, srn then each peer, so all sides of a row see the same machine load;
# the CPU share other processes used just before and during each row is printed with it. The
# exit status is 1 when any srn-a row misses its target against any peer.
set -euo pipefail

BUILD_DIR=${1:-build}
THREADS=${THREADS:-2}
MIN_TIME=${MIN_TIME:-1}
REPETITIONS=${REPETITIONS:-3}
FILTER=${FILTER:-}
MAX_BUSY=${MAX_BUSY:-10}
WAIT_SECONDS=${WAIT_SECONDS:-1800}
PYTHON=${PYTHON:-/usr/bin/python3}
FAST_BLAS_DIR=${FAST_BLAS_DIR:-}
PEER_BLAS_THREADS=${PEER_BLAS_THREADS:-1}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=$BUILD_DIR/bench/srn-model-bench

if [[ ! -x $BIN ]]; then
  echo "error: $BIN not found; build it with: ninja -C $BUILD_DIR srn-model-bench" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "error: $PYTHON cannot import torch; set PYTHON to an interpreter that can" >&2
  exit 1
fi
if [[ -n $FAST_BLAS_DIR && ! -e $FAST_BLAS_DIR/libblas.so.3 ]]; then
  echo "error: FAST_BLAS_DIR=$FAST_BLAS_DIR has no libblas.so.3" >&2
  exit 1
fi
if [[ -n ${OUT_DIR:-} ]]; then
  mkdir -p "$OUT_DIR"
else
  OUT_DIR=$(mktemp -d)
  trap 'rm -rf "$OUT_DIR"' EXIT
fi

ROWS=(
  srn-a/arabic/embed_batch1 srn-a/arabic/embed_batch256 srn-a/arabic/train_batch50
  srn-a/signature/embed_batch1 srn-a/signature/embed_batch256 srn-a/signature/train_batch50
  gru-a/arabic/embed_batch1 gru-a/arabic/embed_batch256 gru-a/arabic/train_batch50
)

# Share of the machine's CPU time (0-100) used by other processes over the next 2 seconds,
# while nothing of ours runs. (The load average would count our own previous row for a minute.)
busy_percent() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 2
  read -r -a b < <(grep '^cpu ' /proc/stat)
  awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN {
    split(a, x, " "); split(b, y, " "); total = 0
    for (i = 2; i <= 9; ++i) total += y[i] - x[i]  # user..steal; guest time is inside user
    idle = (y[5] - x[5]) + (y[6] - x[6])  # idle + iowait
    printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}
# "<busy> <total> <ours>": the machine's busy and total CPU time and the CPU time of this
# script's finished children, all in clock ticks. Two snapshots around a row tell how much CPU
# other processes took while it ran.
cpu_snapshot() {
  local f p i total=0
  read -r -a f < <(grep '^cpu ' /proc/stat)
  for ((i = 1; i <= 8; ++i)); do total=$((total + f[i])); done
  p=$(</proc/$$/stat)
  read -r -a p <<<"${p##*) }"  # fields from the 3rd (state) on; cutime, cstime are 16th, 17th
  echo "$((total - f[4] - f[5])) $total $((p[13] + p[14]))"
}
# Percentage of the machine's CPU time other processes used between two snapshots.
others_percent() {
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
    total = y[2] - x[2]; other = (y[1] - x[1]) - (y[3] - x[3])
    printf "%.0f", (total > 0 && other > 0 ? 100 * other / total : 0) }'
}
WAIT_DEADLINE=$((SECONDS + WAIT_SECONDS))
BUSY=0
# Waits (within the overall budget) until other processes use at most MAX_BUSY% of the machine;
# leaves the last reading in BUSY.
wait_for_quiet() {
  while BUSY=$(busy_percent); ((BUSY > MAX_BUSY)); do
    if ((SECONDS >= WAIT_DEADLINE)); then
      echo "warning: other processes use ${BUSY}% of the CPUs; waited ${WAIT_SECONDS}s in all, measuring anyway" >&2
      return
    fi
    echo "other processes use ${BUSY}% of the CPUs (> MAX_BUSY=${MAX_BUSY}%); waiting..." >&2
    sleep 10
  done
}

echo "== machine"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "cpu:      $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cpus, $(grep -m1 'cpu MHz' /proc/cpuinfo | sed 's/.*: *//') MHz"
echo "flags:    $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x -E 'avx2|fma|avx512f' | tr '\n' ' ')"
echo "build:    $BIN ($(grep -m1 CMAKE_BUILD_TYPE: "$BUILD_DIR/CMakeCache.txt" 2>/dev/null | cut -d= -f2), arch flags: $(grep -m1 SRN_ARCH_FLAGS: "$BUILD_DIR/CMakeCache.txt" 2>/dev/null | cut -d= -f2))"
echo "torch:    $("$PYTHON" -c 'import torch; print(torch.__version__)')"
echo "settings: THREADS=$THREADS MIN_TIME=$MIN_TIME REPETITIONS=$REPETITIONS MAX_BUSY=$MAX_BUSY%${FAST_BLAS_DIR:+ FAST_BLAS_DIR=$FAST_BLAS_DIR PEER_BLAS_THREADS=$PEER_BLAS_THREADS}"
echo "uptime:   $(uptime)"
echo

GB_ARGS=(--benchmark_min_time="$MIN_TIME" --benchmark_repetitions="$REPETITIONS"
         --benchmark_report_aggregates_only=true --benchmark_out_format=json)

wait_for_quiet
echo "== peak/fma (srn-model-bench)" >&2
before=$(cpu_snapshot)
SRN_THREADS=$THREADS "$BIN" "${GB_ARGS[@]}" --benchmark_filter='^peak/fma' \
  --benchmark_out="$OUT_DIR/peak.json" >&2
echo "$BUSY $(others_percent "$before" "$(cpu_snapshot)")" >"$OUT_DIR/peak_load.txt"

: >"$OUT_DIR/loads.txt"
for row in "${ROWS[@]}"; do
  [[ $row == *"$FILTER"* ]] || continue
  wait_for_quiet
  echo "== $row" >&2
  before=$(cpu_snapshot)
  SRN_THREADS=$THREADS "$BIN" "${GB_ARGS[@]}" --benchmark_filter="^$row/" \
    --benchmark_out="$OUT_DIR/srn.${row//\//_}.json" >&2
  "$PYTHON" "$HERE/torch_peer.py" --threads "$THREADS" --min-time "$MIN_TIME" \
    --repetitions "$REPETITIONS" --filter "$row" --json "$OUT_DIR/torch.${row//\//_}.json" >&2
  if [[ -n $FAST_BLAS_DIR ]]; then
    LD_LIBRARY_PATH=$FAST_BLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
      OPENBLAS_NUM_THREADS=$PEER_BLAS_THREADS MKL_NUM_THREADS=$PEER_BLAS_THREADS \
      "$PYTHON" "$HERE/torch_peer.py" --threads "$THREADS" --min-time "$MIN_TIME" \
      --repetitions "$REPETITIONS" --filter "$row" \
      --json "$OUT_DIR/torch-fastblas.${row//\//_}.json" >&2
  fi
  echo "$row $BUSY $(others_percent "$before" "$(cpu_snapshot)")" >>"$OUT_DIR/loads.txt"
done
echo "uptime after: $(uptime)"
echo

"$PYTHON" - "$OUT_DIR" "$THREADS" <<'EOF'
import glob
import json
import os
import re
import sys

out_dir, threads = sys.argv[1], int(sys.argv[2])
TARGETS = {"embed_batch1": 10.0, "embed_batch256": 5.0, "train_batch50": 8.0}  # srn / PyTorch


def medians(path):
    """run_name (without /real_time...) -> median aggregate of a Google Benchmark JSON file."""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name", "median") != "median":
            continue
        name = re.sub(r"/real_time.*$", "", b.get("run_name", b["name"]))
        threads = int(b.get("threads", 1))
        out[f"{name}/threads:{threads}" if name.startswith("peak") else name] = b
    return out


peak = medians(os.path.join(out_dir, "peak.json"))
mhz = 0.0
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("cpu MHz"):
            mhz = float(line.split(":")[1])
            break
nominal = mhz * 1e6 * 32  # AVX2 FMA: 2 units x 8 floats x 2 flops per cycle
measured1 = peak.get("peak/fma/threads:1", {}).get("items_per_second", 0.0)
measured2 = peak.get("peak/fma/threads:2", {}).get("items_per_second", 0.0)
# A core's peak: the nominal clock's, unless the cores measurably run faster (turbo).
core_peak = max(nominal, measured1, measured2 / 2)
with open(os.path.join(out_dir, "peak_load.txt")) as f:
    before, during = f.read().split()
print(f"peak per core: nominal {nominal / 1e9:.1f} GFLOP/s ({mhz:.0f} MHz x 32 flops/cycle), "
      f"measured {measured1 / 1e9:.1f} GFLOP/s on 1 thread, {measured2 / 1e9:.1f} GFLOP/s on 2 "
      f"(others {before}%/{during}%); fractions below use {core_peak / 1e9:.1f} GFLOP/s per core")
avx512_1 = peak.get("peak/fma512/threads:1", {}).get("items_per_second", 0.0)
avx512_2 = peak.get("peak/fma512/threads:2", {}).get("items_per_second", 0.0)
if avx512_1 > 0:
    print(f"AVX-512 (which the ReLU kernels choose at run time on this CPU): measured "
          f"{avx512_1 / 1e9:.1f} GFLOP/s on 1 thread, {avx512_2 / 1e9:.1f} GFLOP/s on 2; the % "
          f"peak columns stay against the AVX2 peak the shipped build targets")

srn = {}
for path in sorted(glob.glob(os.path.join(out_dir, "srn.*.json"))):
    srn.update(medians(path))


def blas_name(paths):
    """Short name of the BLAS a peer run had loaded."""
    joined = " ".join(paths).lower()
    for key, name in (("openblas", "OpenBLAS"), ("mkl", "MKL"), ("blis", "BLIS")):
        if key in joined:
            return name
    if "/blas/libblas" in joined:
        return "ref. BLAS"  # Debian's netlib reference implementation
    return os.path.basename(paths[0]) if paths else "no BLAS"


# peers[label][row] = (items/s, variant); one label per peer run kind.
peers, gemm = {}, {}
for prefix in ("torch", "torch-fastblas"):
    for path in sorted(glob.glob(os.path.join(out_dir, prefix + ".*.json"))):
        with open(path) as f:
            data = json.load(f)
        label = "torch+" + blas_name(data["blas"])
        gemm.setdefault(label, []).append(data["gemm_gflops"])
        for r in data["rows"]:
            peers.setdefault(label, {})[r["name"]] = (r["items_per_second"], r["variant"])
for label, rates in gemm.items():
    print(f"{label}: GEMM (256x128)x(128x128) {sorted(rates)[len(rates) // 2]:.1f} GFLOP/s "
          "(median over its runs)")

loads = {}
with open(os.path.join(out_dir, "loads.txt")) as f:
    for line in f:
        name, before, during = line.split()
        loads[name] = f"{before}%/{during}%"

cols = [("benchmark", 30), ("peer", 15), ("srn items/s", 11), ("peer items/s", 12),
        ("ratio", 7), ("target", 6), ("result", 6), ("srn GFLOP/s", 11), ("srn % peak", 16),
        ("peer % peak", 11), ("peer variant", 12), ("others", 7)]
print()
print("| " + " | ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(cols))
      + " |")
print("|" + "|".join("-" * (w + 2) for _, w in cols) + "|")
failed = 0
for name in loads:
    b = srn.get(name)
    for label in sorted(peers):
        if b is None or name not in peers[label]:
            print(f"| {name:<30} | {label:<15} | missing result")
            failed += 1
            continue
        rate = b["items_per_second"]
        peer_rate, variant = peers[label][name]
        used = int(round(b["threads_used"]))
        flops_item = b["flops_per_item"]
        ratio = rate / peer_rate
        metric = name.split("/")[-1]
        target = TARGETS[metric] if name.startswith("srn-a/") else None
        result = "info" if target is None else ("PASS" if ratio >= target else "FAIL")
        failed += result == "FAIL"
        frac = rate * flops_item / (used * core_peak)
        peer_frac = peer_rate * flops_item / (threads * core_peak)
        cells = [name, label, f"{rate:.1f}", f"{peer_rate:.1f}", f"{ratio:.1f}x",
                 "" if target is None else f"{target:.0f}x", result,
                 f"{rate * flops_item / 1e9:.1f}",
                 f"{100 * frac:.0f}% of {used} core" + ("s" if used > 1 else ""),
                 f"{100 * peer_frac:.1f}% of {threads}", variant, loads[name]]
        print("| " + " | ".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}"
                                for i, (c, (_, w)) in enumerate(zip(cells, cols))) + " |")
print()
print("ratio = srn items/s / peer items/s; items are series (embed) or pairs (train).")
print("srn % peak: srn's useful flops (flops_per_item, see docs/BENCHMARKS.md) over the AVX2 "
      "peak of the cores it ran on; peer % peak: the same flops at the peer's rate over "
      f"{threads} cores' AVX2 peak.")
print("others: share of the machine's CPU time other processes used just before the row (2 s) / "
      "while it ran (all sides); anything but a few percent makes the row suspect.")
sys.exit(1 if failed else 0)
EOF
