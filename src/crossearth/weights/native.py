"""Our single-file format: safetensors with the official key layout and the config in its metadata."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from crossearth.config import ModelConfig
from crossearth.fileio import atomic_path
from crossearth.weights.checkpoint_io import NATIVE_FORMAT

FORMAT_VERSION = "1"


def save_model(
    model: torch.nn.Module,
    path: str | Path,
    config: ModelConfig | None = None,
    *,
    class_names: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    gsd_m: float | None = None,
) -> Path:
    """Write `model` (all weights, fp32 unless already lower) and its config to one file, atomically.

    `class_names`, `palette` (one (R, G, B) 0-255 per class) and `gsd_m` (metres per pixel of the
    training imagery) replace the config's; the model's own config is not changed. Whatever is
    still missing is filled as `load_model` would (`class_i`, a generated palette).

    Raises:
        ConfigError: names or colours whose count differs from the model's classes, bad colours
            or GSD.
        OSError: the folder of `path` cannot be created or written (nothing is left behind).
    """
    from safetensors.torch import save_file

    path = Path(path)
    config = (config or model.config).with_labels(class_names, palette, gsd_m)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {
        "format": NATIVE_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(config.to_dict()),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path
