"""Does `torch.compile` speed up the bf16 ViT-L backbone on this CPU? (Kept out of the library
unless it wins.) One 512² tile, median of 3 after a warm-up, eager vs compiled in one run.

    .venv/bin/python benchmarks/compile_backbone.py
"""

from __future__ import annotations

import statistics
import time

import torch

import crossearth
from crossearth.weights import to_runtime


def median_seconds(fn, x: torch.Tensor, n: int = 3) -> float:
    fn(x)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_grad_enabled(False)
    model = to_runtime(crossearth.create_model("vitl-512", 6), "cpu", "bf16")
    x = torch.randn(1, 3, 512, 512)
    eager = median_seconds(model, x)
    start = time.perf_counter()
    model.backbone.forward_features = torch.compile(model.backbone.forward_features, dynamic=False)
    model(x)
    print(f"compile time {time.perf_counter() - start:.0f} s")
    compiled = median_seconds(model, x)
    print(f"eager {eager:.2f} s, compiled backbone {compiled:.2f} s: x{eager / compiled:.2f}")


if __name__ == "__main__":
    main()
