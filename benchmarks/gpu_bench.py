"""Tiles per second of the ViT-L presets on a CUDA GPU: 512 and 1024, fp32 and bf16, batched windows.

    python benchmarks/gpu_bench.py [--batch 4] [--repeats 5]

Prints one table row per configuration with tiles/s and peak GPU memory. Random weights.
"""

from __future__ import annotations

import argparse
import time

import torch

import crossearth
from crossearth.weights import to_runtime


def bench(preset: str, precision: str, batch: int, repeats: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = to_runtime(crossearth.create_model(preset, 6), "cuda", precision)
    size = model.config.inference.crop_size
    x = torch.randn(batch, 3, *size, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repeats
    return batch / seconds, torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, batch {args.batch}")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (the parity path)
    print("| preset | precision | tiles/s | vs fp32 | peak memory |")
    print("| --- | --- | --- | --- | --- |")
    for preset in ("vitl-512", "vitl-1024"):
        fp32_rate = None
        for precision in ("fp32", "bf16"):
            rate, mem = bench(preset, precision, args.batch, args.repeats)
            fp32_rate = fp32_rate or rate
            print(
                f"| {preset} | {precision} | {rate:.1f} | x{rate / fp32_rate:.2f} | {mem:.1f} GiB |"
            )


if __name__ == "__main__":
    main()
