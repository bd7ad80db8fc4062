#!/usr/bin/env bash
# One short call on a lent GPU machine (no network there): the GPU table, run straight from the
# source tree with the machine's own Python (torch with CUDA, numpy, pillow, safetensors, lightning).
# GeoTIFF support (rasterio, affine, cligj, click-plugins) can travel as wheels in .whl/: they are
# installed into /tmp/site first. The reference comes from the repository (tests/data/reference).
#
#     bash benchmarks/gpu.sh [--budget-s 420] [--sections parity,throughput,predict,train,compile]
#     bash benchmarks/gpu.sh --dry-run    # the same on the CPU with tiny presets (a pipeline check)
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null && ! python3 -c "import rasterio" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
lscpu 2>/dev/null | grep -m1 'Model name' || true
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 python3 benchmarks/gpu_bench.py "$@"
