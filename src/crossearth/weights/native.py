"""Our single-file format: safetensors with the official key layout and the config in its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from crossearth.config import ModelConfig
from crossearth.fileio import atomic_path
from crossearth.weights.checkpoint_io import NATIVE_FORMAT

FORMAT_VERSION = "1"


def save_model(model: torch.nn.Module, path: str | Path, config: ModelConfig | None = None) -> Path:
    """Write `model` (all weights, fp32 unless already lower) and its config to one file, atomically.

    Raises:
        OSError: the folder of `path` cannot be created or written (nothing is left behind).
    """
    from safetensors.torch import save_file

    path = Path(path)
    config = config or model.config
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {
        "format": NATIVE_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(config.to_dict()),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path
