#!/usr/bin/env bash
# One short call on a lent GPU machine: install crossearth into the machine's Python (which must
# already have torch with CUDA) without touching its torch, then print the GPU table.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --no-deps -e . >/dev/null 2>&1 || true
python -m pip install --quiet safetensors rasterio rich typer huggingface_hub >/dev/null 2>&1 || true
PYTHONPATH=src python benchmarks/gpu_bench.py "$@"
