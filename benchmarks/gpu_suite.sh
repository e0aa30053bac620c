#!/usr/bin/env bash
# The GPU measurements in one run (about 9 minutes on one H100 or H200), JSON under
# docs/results/bench/<gpu>_<date>/ (or $OUT):
#   1. the r50 base stage end to end, fed by the input pipeline from a crop511 store with
#      data.workers = the host's cores, in float32 and bfloat16: the whole loop's pairs/s
#      against the pure step's, a SIGKILL and a resume, checkpoint save and restore
#      (benchmarks/r50_real.py on the real frames in tests/golden/realdata);
#   2. training against pysot on the same card: pysot in TF32 and AMP against ours in
#      float32 and bfloat16 (benchmarks/train_vs_pysot.py; skipped without torch);
#   3. batch-1 tracking latency under XLA's command buffers (CUDA graphs) and without them
#      (benchmarks/track_speed.py), and tracking against pysot in full float32 with the boxes
#      compared (benchmarks/vs_pysot.py --precision highest; skipped without torch).
# SMALL=1 runs every step with small sizes (the tiny model where a step allows it, a few
# steps), which is how the script is checked on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${SMALL:-0}
PY=${PYTHON:-python}
if command -v nvidia-smi >/dev/null 2>&1; then
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr 'A-Z' 'a-z' | \
        sed -E 's/nvidia //; s/[^a-z0-9]+/_/g; s/_+$//')
  DEVICE=cuda
else
  GPU=cpu_$(nproc)core
  DEVICE=cpu
fi
OUT=${OUT:-docs/results/bench/${GPU}_$(date +%F)}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT"
CORES=$(nproc)
R=$PWD/tests/golden/realdata  # absolute: r50_real.py trains in its own work folder
DATA=$R/otb,$R/tlp,$R/vot
PYSOT=${PYSOT:-/tmp/pysot}
HAS_TORCH=$($PY -c "import torch, yacs" >/dev/null 2>&1 && [ -d "$PYSOT" ] && echo 1 || echo 0)
if [ "$SMALL" = 1 ]; then
  R50="--config siamrpn_tiny --steps 8 --kill_at 5 --clnet_steps 2 --groups 2 --checkpoint_every 2"
  TVP="--pairs 2 --steps 1 --warmup 1 --rounds 1 --phases epoch0"
  TRACK="--config configs/siamrpn_tiny.py --iters 3"
  VSP="--rounds 1"
else
  R50="--steps 600 --kill_at 350 --clnet_steps 100 --groups 32 --checkpoint_every 200"
  TVP="--pairs 28 --steps 20 --warmup 3 --rounds 3"
  TRACK="--iters 200"
  VSP="--rounds 5 --repeat 5"
fi
step() { echo; echo "== $*"; }

for DTYPE in float32 bfloat16; do
  step "r50 base stage end to end, $DTYPE"
  # shellcheck disable=SC2086
  $PY benchmarks/r50_real.py --data_dir "$DATA" $R50 --compute_dtype $DTYPE --workers "$CORES" \
      --work "$WORK/r50_$DTYPE" --out "$OUT/r50_loop_$DTYPE.json"
done

if [ "$HAS_TORCH" = 1 ]; then
  for V in "float32:" "bfloat16:--amp"; do
    DTYPE=${V%%:*}; AMP=${V#*:}
    step "training against pysot: ours $DTYPE, pysot ${AMP:-default}"
    # shellcheck disable=SC2086
    $PY benchmarks/train_vs_pysot.py --pysot "$PYSOT" --device $DEVICE --dtype $DTYPE $AMP $TVP \
        --weights "$WORK/tvp/r50.pth" --data_dir "$WORK/tvp/tfds" \
        --out "$OUT/train_vs_pysot_$DTYPE.json"
  done
else
  echo '{"skipped": "no torch or pysot on this machine"}' > "$OUT/train_vs_pysot_skipped.json"
fi

if [ "$DEVICE" = cuda ]; then
  GRAPHS=("on:" "off:--xla_gpu_enable_command_buffer=")
else
  GRAPHS=("cpu:")
fi
for G in "${GRAPHS[@]}"; do
  NAME=${G%%:*}; FLAG=${G#*:}
  step "batch-1 tracking latency, command buffers $NAME"
  (
    if [ -n "$FLAG" ]; then export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }$FLAG"; fi
    # shellcheck disable=SC2086
    $PY benchmarks/track_speed.py $TRACK --batches 1 --out "$OUT/track_latency_graphs_$NAME.json"
  )
done
if [ "$HAS_TORCH" = 1 ]; then
  step "tracking against pysot, full float32"
  # shellcheck disable=SC2086
  $PY benchmarks/vs_pysot.py --pysot "$PYSOT" --device $DEVICE --precision highest $VSP \
      --weights "$WORK/vs_pysot/r50.pth" --out "$OUT/vs_pysot_highest.json"
fi
echo; echo "wrote $OUT:"; ls "$OUT"
