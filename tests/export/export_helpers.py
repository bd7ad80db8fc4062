"""Shared helpers of the export tests (a uniquely named module: `conftest` names collide)."""

from __future__ import annotations

import numpy as np

CLASSES = ("water", "road", "tree", "roof", "grass")
PALETTE = ((0, 0, 255), (128, 128, 128), (0, 128, 0), (200, 0, 0), (120, 220, 90))


def reference_image(name: str = "a") -> np.ndarray:
    from PIL import Image
    from reference import reference_dir

    return np.asarray(Image.open(reference_dir() / f"small_ref2_input_{name}.png").convert("RGB"))


def smooth_tiles(n: int, size: int, seed: int = 0) -> np.ndarray:
    """[n, size, size, 3] uint8 tiles of 16-pixel blocks (structure, so several classes appear)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, size // 16, size // 16, 3))
    return np.kron(base, np.ones((1, 16, 16, 1), np.int64)).astype(np.uint8)
