#!/usr/bin/env bash
# One short call on a lent GPU machine (no network there): run the GPU table straight from the
# source tree with the machine's own Python, which must have torch with CUDA and numpy. Nothing is
# installed: the model code needs only torch and numpy (GeoTIFF support is imported on first use).
#
#     bash benchmarks/gpu.sh [--batch 4] [--repeats 5]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH=src python benchmarks/gpu_bench.py "$@"
