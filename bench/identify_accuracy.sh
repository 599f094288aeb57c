#!/usr/bin/env bash
# How well Identify finds a signer it never trained on among many (issue 18): srn-server with the
# bundled model (or WEIGHTS) and an in-memory store enrolls every SigComp2009 NFI author (their
# first 5 genuine signatures) among the SVC2004 Task 2 and Task 1 signers (S1-S5 each) as
# distractors, then identifies each NFI author's next genuine signatures (up to QUERIES per
# author). For each --identify_rerank value in RERANK it prints one RESULT line: rank-1 and
# rank-5 identification rates (the author first, or among the first 5) and the mean time per
# srnctl identify call (process start included). Run outside CI; results in docs/RESULTS.md.
#
# Usage: bench/identify_accuracy.sh [build-dir]   (ninja -C build srn-server srnctl)
# Environment: RERANK="0 20 50" (0: the pooled embedding alone), QUERIES=5, WEIGHTS=<file>.
set -euo pipefail

BUILD_DIR=${1:-build}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DATA=${SRN_DATA_DIR:-$HERE/../shared/data}
RERANK=${RERANK:-0 20 50}
QUERIES=${QUERIES:-5}
SERVER=$BUILD_DIR/server/srn-server
SRNCTL=$BUILD_DIR/client/srnctl
for bin in "$SERVER" "$SRNCTL"; do
  [[ -x $bin ]] || { echo "error: $bin not found (ninja -C $BUILD_DIR srn-server srnctl)" >&2; exit 1; }
done
[[ -d $DATA/sigcomp2009/NFI/genuine && -d $DATA/svc2004/Task2 ]] || {
  echo "skipped: no data at $DATA (set SRN_DATA_DIR)"; exit 0; }

DIR=$(mktemp -d)
PID=
cleanup() {
  [[ -n $PID ]] && { kill "$PID" && wait "$PID"; } 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# NFI-<www><ss><aaa>.hwr: genuine when writer www is author aaa; by author, in sample order.
declare -A nfi
for f in "$DATA"/sigcomp2009/NFI/genuine/NFI-*.hwr; do
  name=$(basename "$f" .hwr)
  author=${name: -3}
  nfi[$author]+="$f "
done

for rerank in $RERANK; do
  port=$(free_port)
  weights=()
  [[ -n ${WEIGHTS:-} ]] && weights=(--weights="$WEIGHTS")
  "$SERVER" "${weights[@]}" --store=:memory: --listen="127.0.0.1:$port" --metrics_listen= \
    --identify_rerank="$rerank" 2>> "$DIR/server.log" &
  PID=$!
  ctl=("$SRNCTL" --server="127.0.0.1:$port" --timeout=60)
  until "${ctl[@]}" health >/dev/null 2>&1; do sleep 0.1; done
  subjects=0
  for task in Task2 Task1; do
    for u in $(seq 1 40); do
      refs=()
      for s in 1 2 3 4 5; do refs+=("$DATA/svc2004/$task/U${u}S$s.TXT"); done
      "${ctl[@]}" enroll --subject="$task-U$u" "${refs[@]}" >/dev/null
      subjects=$((subjects + 1))
    done
  done
  queries=()
  for author in $(printf '%s\n' "${!nfi[@]}" | sort); do
    read -r -a files <<< "${nfi[$author]}"
    (( ${#files[@]} > 5 )) || continue
    "${ctl[@]}" enroll --subject="nfi-$author" "${files[@]:0:5}" >/dev/null
    subjects=$((subjects + 1))
    for q in "${files[@]:5:$QUERIES}"; do queries+=("$author:$q"); done
  done
  rank1=0; rank5=0
  start=$(date +%s.%N)
  for entry in "${queries[@]}"; do
    author=${entry%%:*}
    mapfile -t ids < <("${ctl[@]}" identify --top_k=5 "${entry#*:}" | cut -f2)
    [[ ${ids[0]:-} == "nfi-$author" ]] && rank1=$((rank1 + 1))
    for id in "${ids[@]}"; do [[ $id == "nfi-$author" ]] && { rank5=$((rank5 + 1)); break; }; done
  done
  seconds=$(echo "$(date +%s.%N) - $start" | bc -l)
  n=${#queries[@]}
  printf 'RESULT identify dataset=sigcomp2009-nfi subjects=%d queries=%d rerank=%d rank1=%.4f rank5=%.4f ms_per_call=%.1f\n' \
    "$subjects" "$n" "$rerank" "$(echo "$rank1 / $n" | bc -l)" "$(echo "$rank5 / $n" | bc -l)" \
    "$(echo "1000 * $seconds / $n" | bc -l)"
  kill "$PID" && wait "$PID" 2>/dev/null || true
  PID=
done
