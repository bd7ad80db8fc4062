"""Time one 512x512 tile through the ViT-L 512 preset, fp32 vs bf16, in one run on this machine.

Also measures a square GEMM in each dtype, so the model's speed-up can be read against the speed-up
the hardware offers. Random weights: the cost of a forward pass does not depend on their values.

    .venv/bin/python benchmarks/tile_latency.py [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

import crossearth
from crossearth.weights import to_runtime

OFFICIAL_FP32_SECONDS = 5.88  # shared/reference/README.md: official code, same kind of machine


def gemm_tflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def tile_seconds(precision: str, repeats: int) -> tuple[float, list[float]]:
    torch.manual_seed(0)
    model = to_runtime(crossearth.create_model("vitl-512", num_classes=6), "cpu", precision)
    tile = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    model.predict(tile)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(tile)
        times.append(time.perf_counter() - start)
    del model
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "gemm_tflops": {"fp32": gemm_tflops(torch.float32), "bf16": gemm_tflops(torch.bfloat16)},
    }
    for precision in ("fp32", "bf16"):
        median, times = tile_seconds(precision, args.repeats)
        results[precision] = {"median_s": median, "runs_s": times}
    fp32, bf16 = results["fp32"]["median_s"], results["bf16"]["median_s"]
    gemm = results["gemm_tflops"]
    print(f"GEMM 2048^3: fp32 {gemm['fp32']:.2f} TFLOP/s, bf16 {gemm['bf16']:.2f} TFLOP/s "
          f"(x{gemm['bf16'] / gemm['fp32']:.1f})")  # fmt: skip
    print(f"ViT-L 512 tile, fp32: {fp32:.2f} s (official code: {OFFICIAL_FP32_SECONDS} s, "
          f"ours/official = {fp32 / OFFICIAL_FP32_SECONDS:.2f})")  # fmt: skip
    print(f"ViT-L 512 tile, bf16: {bf16:.2f} s (fp32/bf16 speed-up x{fp32 / bf16:.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
