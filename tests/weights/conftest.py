"""Fixtures shared by the checkpoint tests: the official reference files and tiny state dicts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import crossearth


def _reference_dir() -> Path:
    env = os.environ.get("CROSSEARTH_REFERENCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    path = _reference_dir()
    if not path.is_dir():
        pytest.skip(
            f"official reference files not found at {path} (set CROSSEARTH_REFERENCE to the "
            "directory holding keys_vitl_512.json, small_ref2.pth, small_ref2_config.json)"
        )
    return path


@pytest.fixture(scope="session")
def tiny_full_state() -> dict[str, torch.Tensor]:
    """A complete vit-tiny-256 state dict (official key layout), random init, 6 classes."""
    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def tiny_rein_head_state(tiny_full_state) -> dict[str, torch.Tensor]:
    """What a released training checkpoint holds: `backbone.reins.*` and `decode_head.*` only."""
    return {
        k: v
        for k, v in tiny_full_state.items()
        if k.startswith(("backbone.reins.", "decode_head."))
    }
