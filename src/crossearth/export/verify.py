"""Check an exported file against the PyTorch model on one tile, the way Deepness feeds it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from crossearth.export.wrapper import DeployModel, caches_disabled


@dataclass
class Agreement:
    max_abs_diff: float  # of the per-class probabilities
    argmax_agreement: float  # share of pixels with the same label, 0..1


def deepness_input(tile_rgb: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """Deepness' preprocessing of one H x W x C uint8 tile -> float32 [1, C, H, W]:
    channels cut to the model's, `/255`, minus mean, divided by std (values from the metadata)."""
    x = np.float32(tile_rgb[None, :, :, : len(mean)] * 1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).astype(np.float32))


def compare(model: torch.nn.Module, run_export, x: np.ndarray) -> Agreement:
    """Probabilities of `run_export(x)` against the PyTorch model's normalised scores."""
    with torch.no_grad(), caches_disabled(model):
        ref = DeployModel(model.float().eval())(torch.from_numpy(x)).numpy()
    got = np.asarray(run_export(x), dtype=np.float32)
    return Agreement(float(np.abs(got - ref).max()), float((got.argmax(1) == ref.argmax(1)).mean()))


def random_tile(size: int, seed: int = 0, bands: int = 3) -> np.ndarray:
    """A smooth random uint8 tile of `bands` bands, [size, size, bands] (blobs, not white
    noise, so several classes appear)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, bands, max(size // 32, 2), max(size // 32, 2)), generator=gen)
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")
    return (smooth[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
