#!/usr/bin/env bash
# One time-boxed GPU lease (the `device` tool of this workplace, or any CUDA machine with torch):
#   1. the CUDA tests, 2. benchmarks/bench_gpu.py (synthesis, inference, training rates),
#   3. four trainings side by side on the one GPU, each within the same wall-time budget (what
#      is left of BUDGET_SECONDS after steps 1-2, less a reserve for steps 4-5): two YAE variants
#      (the one with the lower VALIDATION MAE is kept), the paper-size CNN and the CPU-size CNN,
#   4. the held-out accuracy benchmark (sim + FID-A cross-simulator sets) of all three on the GPU,
#   5. results packed into $OUT (at most 8 files of < 16 MiB: the kept YAE split in parts).
# Needs: basis cache in .devcache/gabaapp/basis (no simulation on the lease), the FID-A basis in
# .devcache/fida, wheels of missing pure-Python packages in .whl (array-api-compat).
#   OUT=/tmp/out BUDGET_SECONDS=560 bash scripts/gpu_lease.sh
# Dry run of every step on a CPU with tiny sizes (before spending a lease):
#   DRY_RUN=1 BUDGET_SECONDS=150 bash scripts/gpu_lease.sh
set -u
START=$(date +%s)
BUDGET=${BUDGET_SECONDS:-560}
RESERVE=${RESERVE_SECONDS:-130}  # seconds kept for the accuracy benchmark and packing
RUNS=${RUNS:-yae-a yae-b cnn-paper cnn-small}  # which trainings (a later lease may rerun one)
SKIP_BENCH=${SKIP_BENCH:-0}  # 1: no CUDA tests or bench_gpu (already measured)
DRY=${DRY_RUN:-0}
DEV=cuda
TINY=()
TINY_CNN=()
BENCH=()
if [ "$DRY" = 1 ]; then
  DEV=cpu
  TINY=(--n-train 256 --n-val 64)
  TINY_CNN=(--preset cnn_cpu)
  BENCH=(--device cpu --quick)
fi
ACC_N=()
[ "$DRY" = 1 ] && ACC_N=(--n 100)
OUT=${OUT:-/tmp/gpu-lease-out}
W=${WORK_DIR:-/tmp/gpu-lease-work}
mkdir -p "$OUT" "$W"
exec > >(tee -a "$OUT/device.log") 2>&1
export PYTHONUNBUFFERED=1 XDG_CACHE_HOME=$PWD/.devcache MPLBACKEND=Agg
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

stamp "environment"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import sys, torch, gabaapp; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0), gabaapp.__file__)"

if [ "$SKIP_BENCH" != 1 ]; then
  stamp "CUDA tests"
  timeout 60 $PY -m pytest -q -p no:cacheprovider -m gpu tests/unit/test_simulate_generator.py
  stamp "bench_gpu"
  timeout 100 $PY benchmarks/bench_gpu.py --out "$OUT/bench_gpu.json" "${BENCH[@]}"
fi

train() {  # name, options...
  local name=$1
  shift
  OMP_NUM_THREADS=4 timeout $((T + 100)) $PY -m gabaapp train "$W/$name" "$@" "${TINY[@]}" \
    --device "$DEV" --time-limit "$T" --no-progress >"$W/$name.log" 2>&1
  echo "$name: exit $?"
}
T=$((BUDGET - ($(date +%s) - START) - RESERVE))
stamp "training (budget $T s each, side by side)"
PIDS=()
start_run() {  # name: the command of each run
  case $1 in
    yae-a) train yae-a --config gabaapp/data/configs/yae_gpu.toml --batch-size 128 --lr 3e-4 ;;
    yae-b) train yae-b --config gabaapp/data/configs/yae_gpu.toml ;;
    cnn-paper) train cnn-paper --config gabaapp/data/configs/cnn_paper_gpu.toml "${TINY_CNN[@]}" ;;
    cnn-small) train cnn-small --config gabaapp/data/configs/cnn_gpu.toml ;;
  esac
}
for r in $RUNS; do
  start_run "$r" &
  PIDS+=($!)
done
(while sleep 60; do
  for h in "$W"/*/history.tsv; do [ -f "$h" ] && echo "$h: $(tail -n 1 "$h")"; done
done) &
MONITOR=$!
wait "${PIDS[@]}"
kill "$MONITOR" 2>/dev/null
for n in $RUNS; do
  echo "--- $n"
  tail -n 3 "$W/$n.log"
done

stamp "choose the YAE by validation MAE (never by the test sets)"
KEEP=$($PY - "$W" <<'EOF'
import json, sys
from pathlib import Path
runs = {}
for name in ("yae-a", "yae-b"):  # those of this lease
    card = Path(sys.argv[1]) / name / "card.json"
    if card.is_file():
        runs[name] = json.loads(card.read_text())["metrics"]["validation"]["total"]["mae"]
print(min(runs, key=runs.get) if runs else "none")
print(runs, file=sys.stderr)
EOF
)
echo "kept: $KEEP"

stamp "held-out accuracy on the GPU"
MODELS=()
for n in $RUNS; do [ -f "$W/$n/card.json" ] && MODELS+=("$W/$n"); done
if [ ${#MODELS[@]} -gt 0 ]; then
  timeout 100 $PY benchmarks/bench_models_accuracy.py "${MODELS[@]}" --device "$DEV" \
    --threads 16 --fida-dir .devcache/fida --results "$W/accuracy" "${ACC_N[@]}"
fi

stamp "pack"
if [ "$KEEP" != "none" ]; then
  tar -C "$W" --exclude checkpoint.pt -cf "$W/yae.tar" "$KEEP"
  split -b 15M "$W/yae.tar" "$OUT/yae.tar.part-"
fi
# Everything but checkpoints and the large weights (the CPU-size CNN's 0.25 MB weights travel).
tar -C "$W" --exclude checkpoint.pt --exclude yae-a/weights.safetensors \
  --exclude yae-b/weights.safetensors --exclude cnn-paper/weights.safetensors \
  -czf "$OUT/meta.tar.gz" $(cd "$W" && ls -d $RUNS accuracy ./*.log 2>/dev/null)
ls -la "$OUT"
stamp "done"
