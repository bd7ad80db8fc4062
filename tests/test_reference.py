"""The compact official reference in the repository expands losslessly and refuses damage."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from crossearth.reference import (
    MANIFEST,
    NAME,
    PACKED_TENSORS,
    ReferenceError,
    expand,
    find_reference,
    pack,
    repository_copy,
)

COMPACT = repository_copy()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_repository_copy_is_found_first(monkeypatch, tmp_path):
    monkeypatch.delenv("CROSSEARTH_REFERENCE", raising=False)
    monkeypatch.setenv("CROSSEARTH_HOME", str(tmp_path))
    found = find_reference()
    assert found is not None and found.is_relative_to(tmp_path)  # expanded from the compact copy


def test_expanded_files_are_the_official_runs_bytes(tmp_path):
    """Every file the official run recorded a sha256 for is reproduced bit for bit (except the
    .pth container, whose tensors are checked one by one below)."""
    out = expand(COMPACT, tmp_path / "ref")
    recorded = json.loads((COMPACT / f"{NAME}_run_info.json").read_text())["sha256"]
    checked = 0
    for name, digest in recorded.items():
        if name.endswith(".pth"):
            continue
        assert sha256(out / name) == digest, name
        checked += 1
    assert checked == len(recorded) - 1 >= 35
    state = torch.load(out / f"{NAME}.pth", weights_only=True)
    assert len(state["state_dict"]) == 222 and "perturbed_params" in state["meta"]


def test_expand_is_reused_and_atomic(tmp_path):
    first = expand(COMPACT, tmp_path / "ref")
    stamp = (first / f"{NAME}.pth").stat().st_mtime_ns
    again = expand(COMPACT, tmp_path / "ref")
    assert again == first and (again / f"{NAME}.pth").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".expanding-")]


def _copy(tmp_path: Path) -> Path:
    damaged = tmp_path / "compact"
    shutil.copytree(COMPACT, damaged)
    return damaged


def test_a_changed_array_is_refused(tmp_path):
    damaged = _copy(tmp_path)
    arrays = dict(np.load(damaged / PACKED_TENSORS))
    arrays["a_seg_logits"] = arrays["a_seg_logits"] + np.float32(1e-6)
    np.savez(damaged / PACKED_TENSORS, **arrays)
    manifest = json.loads((damaged / MANIFEST).read_text())  # a consistent manifest...
    manifest["files"][PACKED_TENSORS] = sha256(damaged / PACKED_TENSORS)
    (damaged / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ReferenceError, match="a_seg_logits"):  # ...still fails the official sums
        expand(damaged, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_damaged_file_is_refused(tmp_path):
    damaged = _copy(tmp_path)
    (damaged / f"{NAME}_input_a.png").write_bytes(b"not the image")
    with pytest.raises(ReferenceError, match=r"input_a\.png"):
        expand(damaged, tmp_path / "out")


def test_pack_round_trip_of_a_subset(tmp_path):
    full = expand(COMPACT, tmp_path / "full")
    sizes = pack(full, tmp_path / "subset", arrays=["a_seg_logits"])
    assert PACKED_TENSORS in sizes
    again = expand(tmp_path / "subset", tmp_path / "again")
    assert sha256(again / f"{NAME}_a_seg_logits.npy") == sha256(full / f"{NAME}_a_seg_logits.npy")
    assert not (again / f"{NAME}_b_seg_logits.npy").exists()
    a = torch.load(full / f"{NAME}.pth", weights_only=True)["state_dict"]
    b = torch.load(again / f"{NAME}.pth", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
