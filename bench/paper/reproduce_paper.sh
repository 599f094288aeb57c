#!/usr/bin/env bash
# Regenerates the paper's tables and figures (Pei, Tax & van der Maaten 2016) into docs/:
#   Table 2 (out-of-domain AUC) and Table 3 (one-shot accuracy)  -> docs/paper/tables.md
#   Figure 3 (within-domain AUC)                                  -> docs/figures/within_domain_auc.png
#   Figure 2 (AUC against hidden units, one panel per dataset)    -> docs/figures/hidden_sweep.png
#   Figures 4 and 5 (t-SNE maps of signatures and of voices)      -> docs/figures/tsne_*.png
#   every command with its RESULT line                            -> docs/paper/runs.md
#
# Usage: bench/paper/reproduce_paper.sh [--quick] [--only=STEPS] [--seeds="1 2 3 4 5"]
#            [--datasets="arabic-digit arabic-voice svc2004 svc2004-noforg"] [--models="..."]
#            [--sweep_hidden="8 16 32 64 128"] [--sweep_models="srn-a srn-l sn-a sn-l"]
#            [--sweep_datasets="arabic-voice arabic-digit svc2004 svc2004-noforg"]
#            [--build=build] [--runs=DIR] [--out=docs]
#   STEPS: comma list of table (Tables 2 and 3), within (Figure 3), sweep (Figure 2), tsne
#          (Figures 4 and 5), render (tables and plots from the logs only); default: all.
#   --quick: one seed, short training, sampled pairs, small HMMs; writes to $RUNS-quick and
#            build/paper-quick instead of docs/, to check the pipeline end to end in minutes.
#
# Each run's log goes to $RUNS/<protocol>/<dataset>/<model>/h<hidden>-s<seed>.log (or
# s<seed>.log for baselines); the first line is the command, the last the RESULT line. A run whose
# log already has a RESULT line is skipped, so an interrupted reproduction resumes where it
# stopped and several invocations (e.g. one per dataset) fill the same tables. Runs are niced and
# sequential (each uses --threads=$THREADS, default 2).
#
# SVC2004 stands in for the paper's MCYT (not public): svc2004 = with skilled forgeries (trained
# with forgeries as negatives, tested on all trial pairs), svc2004-noforg = without (trained with
# --forgery_fraction=0, tested with srn-eval --drop_forgeries).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$ROOT/build"
RUNS=""
OUT=""
QUICK=0
ONLY="table,within,sweep,tsne,render"
SEEDS="1 2 3 4 5"
DATASETS="arabic-digit arabic-voice svc2004 svc2004-noforg"
SRN_MODELS="srn-a srn-l sn-a sn-l logistic"
BASELINES="dtw fisher-kernel fisher-vector"
SWEEP_DATASETS="arabic-voice arabic-digit svc2004 svc2004-noforg"
SWEEP_HIDDEN="8 16 32 64 128"
SWEEP_MODELS="srn-a srn-l sn-a sn-l"
HIDDEN=64
THREADS="${THREADS:-2}"
PY=/usr/bin/python3

for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --only=*) ONLY="${arg#*=}" ;;
    --seeds=*) SEEDS="${arg#*=}" ;;
    --datasets=*) DATASETS="${arg#*=}" ;;
    --models=*) SRN_MODELS=""; BASELINES=""
      for m in ${arg#*=}; do
        case "$m" in dtw|fisher-kernel|fisher-vector) BASELINES="$BASELINES $m" ;; *) SRN_MODELS="$SRN_MODELS $m" ;; esac
      done ;;
    --sweep_hidden=*) SWEEP_HIDDEN="${arg#*=}" ;;
    --sweep_models=*) SWEEP_MODELS="${arg#*=}" ;;
    --sweep_datasets=*) SWEEP_DATASETS="${arg#*=}" ;;
    --build=*) BUILD="${arg#*=}" ;;
    --runs=*) RUNS="${arg#*=}" ;;
    --out=*) OUT="${arg#*=}" ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

TRAIN_EXTRA=()
EVAL_EXTRA=()
FISHER_EXTRA=()
if [[ $QUICK == 1 ]]; then
  SEEDS="1"
  RUNS="${RUNS:-$BUILD/paper-runs-quick}"
  OUT="${OUT:-$BUILD/paper-quick}"
  TRAIN_EXTRA=(--epochs=2 --pairs_per_epoch=2000)
  EVAL_EXTRA=(--max_pairs=100000 --draws=3)
  FISHER_EXTRA=(--hmm_states=2,4 --hmm_restarts=1 --hmm_iterations=10 --fisher_pairs=500)
  SWEEP_HIDDEN="8 32"
else
  RUNS="${RUNS:-$BUILD/paper-runs}"
  OUT="${OUT:-$ROOT/docs}"
fi
TRAIN="$BUILD/model/tools/srn-train"
EVAL="$BUILD/model/tools/srn-eval"
for tool in "$TRAIN" "$EVAL"; do
  [[ -x $tool ]] || { echo "missing $tool: build it (ninja -C $BUILD srn-train srn-eval)" >&2; exit 1; }
done
mkdir -p "$RUNS" "$OUT/figures" "$OUT/paper"
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# run LOG CMD...: runs CMD unless LOG already holds a RESULT line (or, for training, the weights).
run() {
  local log="$1"; shift
  if [[ -f $log ]] && grep -q '^RESULT ' "$log"; then return 0; fi
  mkdir -p "$(dirname "$log")"
  echo "+ ${*#$ROOT/}" | sed "s#$ROOT/##g" > "$log.tmp"
  echo "[$(date +%H:%M:%S)] $(basename "$(dirname "$(dirname "$log")")")/$(basename "$(dirname "$log")")/$(basename "$log")" >&2
  if nice -n 10 "$@" >> "$log.tmp" 2>&1; then
    mv "$log.tmp" "$log"
  else
    echo "FAILED (kept $log.tmp):" >&2; tail -3 "$log.tmp" >&2
  fi
}

# dataset_flags DATASET TOOL: the flags that select a dataset for srn-train or srn-eval.
dataset_flags() {
  case "$1:$2" in
    svc2004-noforg:train) echo "--dataset=svc2004 --forgery_fraction=0" ;;
    svc2004-noforg:eval) echo "--dataset=svc2004 --drop_forgeries" ;;
    *) echo "--dataset=$1" ;;
  esac
}

# srn_run PROTOCOL DATASET MODEL HIDDEN SEED: trains (once) and evaluates one SRN-family model.
srn_run() {
  local protocol=$1 dataset=$2 model=$3 hidden=$4 seed=$5
  local dir="$RUNS/$protocol/$dataset/$model"
  local weights="$dir/h$hidden-s$seed.srnw"
  if [[ ! -f $weights ]]; then
    run "$dir/h$hidden-s$seed.train.log" "$TRAIN" $(dataset_flags "$dataset" train) --protocol="$protocol" \
      --model="$model" --hidden="$hidden" --seed="$seed" --threads="$THREADS" --eval=false \
      "${TRAIN_EXTRA[@]}" --out="$weights"
  fi
  [[ -f $weights ]] || return 0
  run "$dir/h$hidden-s$seed.log" "$EVAL" --model="$weights" $(dataset_flags "$dataset" eval) \
    --protocol="$protocol" --seed="$seed" --threads="$THREADS" "${EVAL_EXTRA[@]}"
}

# baseline_run PROTOCOL DATASET MODEL SEED
baseline_run() {
  local protocol=$1 dataset=$2 model=$3 seed=$4
  local extra=()
  [[ $model == fisher-* ]] && extra=("${FISHER_EXTRA[@]}")
  # The Fisher vector uses the HMM the Fisher-kernel run chose on validation for the same split
  # and seed (training is deterministic given the seed, so it is the same model), saving the
  # state-count search a second time.
  local kernel_log="$RUNS/$protocol/$dataset/fisher-kernel/s$seed.log"
  if [[ $model == fisher-vector && -f $kernel_log ]]; then
    local states
    states=$(sed -n 's/^hmm: \([0-9]*\) states chosen.*/\1/p' "$kernel_log")
    [[ -n $states ]] && extra+=(--hmm_states="$states")
  fi
  run "$RUNS/$protocol/$dataset/$model/s$seed.log" "$EVAL" --model="$model" $(dataset_flags "$dataset" eval) \
    --protocol="$protocol" --seed="$seed" --threads="$THREADS" "${EVAL_EXTRA[@]}" "${extra[@]}"
}

protocol_runs() {
  local protocol=$1
  for seed in $SEEDS; do
    for dataset in $DATASETS; do
      for model in $BASELINES; do baseline_run "$protocol" "$dataset" "$model" "$seed"; done
      for model in $SRN_MODELS; do srn_run "$protocol" "$dataset" "$model" "$HIDDEN" "$seed"; done
    done
  done
}

if want table; then protocol_runs out-of-domain; fi   # Tables 2 and 3 (one run gives both)
if want within; then protocol_runs within-domain; fi  # Figure 3
if want sweep; then                                   # Figure 2 (seed 1)
  for dataset in $SWEEP_DATASETS; do
    for hidden in $SWEEP_HIDDEN; do
      for model in $SWEEP_MODELS; do srn_run out-of-domain "$dataset" "$model" "$hidden" 1; done
    done
  done
fi
if want tsne; then                                    # Figures 4 and 5 (seed 1, SRN-A)
  maps="$RUNS/maps"
  mkdir -p "$maps"
  for dataset in arabic-voice svc2004; do
    srn_run out-of-domain "$dataset" srn-a "$HIDDEN" 1
    weights="$RUNS/out-of-domain/$dataset/srn-a/h$HIDDEN-s1.srnw"
    [[ -f $weights ]] && run "$maps/$dataset-srn-a.log" "$EVAL" --model="$weights" --dataset="$dataset" \
      --protocol=out-of-domain --seed=1 --threads="$THREADS" --max_pairs=10000 --draws=1 \
      --embeddings_csv="$maps/$dataset-srn-a.csv"
  done
  run "$maps/arabic-voice-dtw.log" "$EVAL" --model=dtw --dataset=arabic-voice --protocol=out-of-domain \
    --seed=1 --threads="$THREADS" --draws=1 --dtw_matrix="$maps/arabic-voice-dtw.csv"
  if [[ -f $maps/svc2004-srn-a.csv ]]; then
    nice -n 10 "$PY" "$ROOT/bench/paper/tsne_maps.py" signatures "$maps/svc2004-srn-a.csv" \
      "$OUT/figures/tsne_signatures.png"
  fi
  if [[ -f $maps/arabic-voice-srn-a.csv && -f $maps/arabic-voice-dtw.csv ]]; then
    nice -n 10 "$PY" "$ROOT/bench/paper/tsne_maps.py" voices "$maps/arabic-voice-srn-a.csv" \
      "$maps/arabic-voice-dtw.csv" "$OUT/figures/tsne_voice.png"
  fi
fi
# Tables and plots are always re-rendered from whatever logs exist.
"$PY" "$ROOT/bench/paper/make_tables.py" --runs="$RUNS" --out="$OUT" --hidden="$HIDDEN" \
  --sweep_datasets="$SWEEP_DATASETS" $([[ $QUICK == 1 ]] && echo --quick)
echo "wrote $OUT/paper/tables.md, $OUT/paper/runs.md and $OUT/figures/*.png" >&2
