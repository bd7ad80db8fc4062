"""Access to the official reference tensors (`tests/data/reference`, see its README).

The repository's compact copy is expanded once into the cache (`crossearth.reference`);
`$CROSSEARTH_REFERENCE` overrides it (an expanded or compact folder).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from crossearth.reference import NAME, find_reference


@cache
def _found() -> Path | None:
    return find_reference()


def reference_dir() -> Path:
    path = _found()
    if path is None:  # the compact copy is part of the repository: its absence is a failure
        pytest.fail(
            "official reference not found: tests/data/reference is missing from this checkout"
        )
    return path


def load(name: str) -> np.ndarray:
    return np.load(reference_dir() / f"{NAME}_{name}.npy")


def config_path() -> Path:
    return reference_dir() / f"{NAME}_config.json"


def official_config() -> dict:
    return json.loads(config_path().read_text())
