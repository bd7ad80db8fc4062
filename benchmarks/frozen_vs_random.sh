#!/usr/bin/env bash
# The check of the shipped backbone, end to end through the command line: Rein + head
# trained on a FROZEN backbone for a few hundred steps on SynthEarth, then `crossearth eval` on
# the targets; once with the shipped `synthearth-backbone`, once with a random re-initialisation
# of that file (same keys, shapes and metadata: `crossearth.pretrain.probe.random_backbone_like`).
#
#   bash benchmarks/frozen_vs_random.sh [WORK_DIR] [STEPS]      # about 15 min CPU at 300 steps
set -euo pipefail
WORK=${1:-benchmark_output/frozen_vs_random}
STEPS=${2:-300}
PY=${PYTHON:-python}
mkdir -p "$WORK"
grep -m1 "model name" /proc/cpuinfo || true
[ -d "$WORK/synth/synthearth" ] || $PY -m crossearth synth --out "$WORK/synth" --size 256 --train 64 --val 16
$PY -c "from crossearth.pretrain.probe import random_backbone_like as r; r('synthearth-backbone', '$WORK/random.safetensors')"
for name in shipped random; do
  backbone=synthearth-backbone
  [ "$name" = random ] && backbone="$WORK/random.safetensors"
  $PY -m crossearth train --setting SynthEarth --data-root "$WORK/synth" --backbone "$backbone" \
      --set freeze_backbone=true --max-steps "$STEPS" --out "$WORK/run_$name" > "$WORK/train_$name.log" 2>&1
  $PY -m crossearth eval --setting SynthEarth --data-root "$WORK/synth" \
      --model "$WORK/run_$name/last.safetensors" -o "$WORK/eval_$name" | tee "$WORK/eval_$name.txt"
done
