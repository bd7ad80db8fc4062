"""Time one 512x512 tile through the ViT-L 512 preset, fp32 vs bf16, in one run on this machine.

Also measures a square GEMM in each dtype, so the model's speed-up can be read against the speed-up
the hardware offers. Random weights: the cost of a forward pass does not depend on their values.

    .venv/bin/python benchmarks/tile_latency.py [--repeats 3] [--image-1024] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import numpy as np
import torch

import crossearth
from crossearth.weights import to_runtime

OFFICIAL_FP32_SECONDS = 5.88  # tests/data/reference/README.md: official code, same kind of machine
OFFICIAL_1024_IMAGE_SECONDS = 48.0  # same source: a 1024x1024 image by slide inference, 9 windows


def gemm_tflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def tile_seconds(precision: str, repeats: int, image_1024: bool) -> dict:
    """Median `predict` time of one 512 tile; optionally one 1024x1024 image (9 windows, once)."""
    torch.manual_seed(0)
    model = to_runtime(crossearth.create_model("vitl-512", num_classes=6), "cpu", precision)
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    model.predict(tile)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(tile)
        times.append(time.perf_counter() - start)
    out = {"median_s": statistics.median(times), "runs_s": times}
    if image_1024:
        image = rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
        start = time.perf_counter()
        model.predict(image)
        out["image_1024_s"] = time.perf_counter() - start
    del model
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--image-1024", action="store_true", help="also time one 1024x1024 image (9 windows)"
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "gemm_tflops": {"fp32": gemm_tflops(torch.float32), "bf16": gemm_tflops(torch.bfloat16)},
    }
    for precision in ("fp32", "bf16"):
        results[precision] = tile_seconds(precision, args.repeats, args.image_1024)
    fp32, bf16 = results["fp32"]["median_s"], results["bf16"]["median_s"]
    gemm = results["gemm_tflops"]
    print(f"GEMM 2048^3: fp32 {gemm['fp32']:.2f} TFLOP/s, bf16 {gemm['bf16']:.2f} TFLOP/s "
          f"(x{gemm['bf16'] / gemm['fp32']:.1f})")  # fmt: skip
    print(f"ViT-L 512 tile, fp32: {fp32:.2f} s (official code: {OFFICIAL_FP32_SECONDS} s, "
          f"ours/official = {fp32 / OFFICIAL_FP32_SECONDS:.2f})")  # fmt: skip
    print(f"ViT-L 512 tile, bf16: {bf16:.2f} s (fp32/bf16 speed-up x{fp32 / bf16:.2f})")
    if args.image_1024:
        f32, b16 = results["fp32"]["image_1024_s"], results["bf16"]["image_1024_s"]
        print(f"1024x1024 image (9 windows): fp32 {f32:.1f} s (official code: "
              f"{OFFICIAL_1024_IMAGE_SECONDS} s), bf16 {b16:.1f} s (x{f32 / b16:.2f})")  # fmt: skip
    results["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS of this process (both precisions): {results['peak_rss_gib']:.2f} GiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
