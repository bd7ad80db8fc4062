"""One line: median `predict` time of one ViT-L 512 tile in fp32 and bf16 (see ab_revisions.sh).

Uses only the public API, so that it runs against earlier revisions of the package too.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch

import crossearth
from crossearth.weights import to_runtime


def main() -> None:
    torch.set_grad_enabled(False)
    tile = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    seconds = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = to_runtime(crossearth.create_model("vitl-512", num_classes=6), "cpu", precision)
        model.predict(tile)  # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model.predict(tile)
            times.append(time.perf_counter() - start)
        seconds[precision] = statistics.median(times)
    label = sys.argv[1] if len(sys.argv) > 1 else crossearth.__file__
    print(f"{label:>14s}: fp32 {seconds['fp32']:.2f} s, bf16 {seconds['bf16']:.2f} s per tile")


if __name__ == "__main__":
    main()
