"""Access to the official reference tensors (`shared/reference`, see its README)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

NAME = "small_ref2"


def reference_dir() -> Path:
    env = os.environ.get("CROSSEARTH_REFERENCE")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    if not (path / f"{NAME}.pth").is_file():
        pytest.skip(f"official reference tensors not found at {path} (set CROSSEARTH_REFERENCE)")
    return path


def load(name: str) -> np.ndarray:
    return np.load(reference_dir() / f"{NAME}_{name}.npy")


def config_path() -> Path:
    return reference_dir() / f"{NAME}_config.json"


def official_config() -> dict:
    return json.loads(config_path().read_text())
