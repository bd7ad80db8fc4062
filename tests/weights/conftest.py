"""Fixtures shared by the checkpoint tests: the official reference files and tiny state dicts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import crossearth


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The expanded official reference (keys_vitl_*.json, small_ref2.pth, its config)."""
    from reference import reference_dir as found

    return found()


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
