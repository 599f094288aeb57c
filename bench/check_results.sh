#!/usr/bin/env bash
# Reruns a sample of the results recorded in the docs and compares them with what the docs say,
# exactly (these commands are deterministic for their seed on any x86-64 CPU with AVX2: srn-train
# and srn-eval use the AVX2 kernels by default, docs/RESULTS.md "Reproducing results"):
#   1. README: the SRN-A command of "Train and evaluate": the example RESULT line the README shows,
#      and the fingerprint it names (about a minute);
#   2. SVC2004: the DTW verifier over 20 reference draws (docs/RESULTS.md, the calibration run's
#      refs=5 DTW line; 10 s);
#   3. the bundled model's recipe (docs/DEFAULT_MODEL.md, step 1): the fingerprint the model card
#      names (about 6 minutes on 2 cores).
# Prints CHECK <name> pass|FAIL for each, and exits 1 if any failed. Needs ../shared/data (or
# SRN_DATA_DIR); skips with a message without it. Run outside CI:
#
#   bench/check_results.sh [build-dir]        (ONLY="readme svc2004" to run some)
set -euo pipefail

BUILD_DIR=${1:-build}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DATA=${SRN_DATA_DIR:-$HERE/../shared/data}
TRAIN=$BUILD_DIR/model/tools/srn-train
EVAL=$BUILD_DIR/model/tools/srn-eval
ONLY=${ONLY:-readme svc2004 bundled}
for bin in "$TRAIN" "$EVAL"; do
  [[ -x $bin ]] || { echo "error: $bin not found (ninja -C $BUILD_DIR srn-train srn-eval)" >&2; exit 1; }
done
[[ -d $DATA/spoken_arabic_digit && -d $DATA/svc2004 ]] || {
  echo "skipped: no data at $DATA (set SRN_DATA_DIR)"; exit 0; }
export SRN_DATA_DIR=$DATA
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
failed=0

# check <name> <expected> <actual>
check() {
  if [[ $2 == "$3" ]]; then
    echo "CHECK $1 pass: $3"
  else
    echo "CHECK $1 FAIL: expected '$2', got '$3'"
    failed=1
  fi
}
fingerprint() { sed -n 's/.*fingerprint \([0-9a-f]\{16\}\)).*/\1/p' "$1" | tail -1; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no)"

if [[ " $ONLY " == *" readme "* ]]; then
  expected=$(grep -o '`RESULT protocol=out-of-domain dataset=arabic-voice model=srn-a [^`]*`' "$HERE/README.md" | tr -d '`')
  expected_fp=$(grep -o 'fingerprint [0-9a-f]\{16\}' "$HERE/README.md" | head -1 | cut -d' ' -f2)
  "$TRAIN" --dataset=arabic-voice --protocol=out-of-domain --model=srn-a --hidden=64 \
    --out="$DIR/voice.srnw" > "$DIR/readme.log" 2>&1
  check readme-result "$expected" "$(grep '^RESULT' "$DIR/readme.log" | tail -1)"
  check readme-fingerprint "$expected_fp" "$(fingerprint "$DIR/readme.log")"
fi

if [[ " $ONLY " == *" svc2004 "* ]]; then
  expected=$(grep -o 'RESULT protocol=cross-dataset dataset=svc2004 model=dtw refs=5 .*' "$HERE/docs/RESULTS.md" | head -1)
  "$EVAL" --model=dtw --dataset=svc2004 --protocol=cross-dataset --draws=20 > "$DIR/svc.log" 2>&1
  check svc2004-dtw "$expected" "$(grep '^RESULT .* refs=5 ' "$DIR/svc.log" | tail -1)"
fi

if [[ " $ONLY " == *" bundled "* ]]; then
  expected_fp=$(sed -n 's/^| Fingerprint | `\([0-9a-f]\{16\}\)`.*/\1/p' "$HERE/docs/DEFAULT_MODEL.md")
  "$TRAIN" --dataset=svc2004,svc2004-task1,sigcomp2009-nisdcc --protocol=signers \
    --objective=frame-triplet --model=gru-a --hidden=32 --frame_norm=l2 --center_series \
    --augment_copies=3 --margin=0.2 --gamma=0.02 --epochs=8 --triplets_per_epoch=3000 \
    --patience=3 --lr_decay=0.7 --frame_cost=euclidean --pressure_dropout=0.3 --threads=2 \
    --out="$DIR/default.srnw" > "$DIR/bundled.log" 2>&1
  check bundled-model-fingerprint "$expected_fp" "$(fingerprint "$DIR/bundled.log")"
fi
exit $failed
