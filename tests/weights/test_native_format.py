"""Our single-file format: safetensors + config metadata, written atomically, read back exactly."""

from __future__ import annotations

import json
import os
import stat
import struct

import numpy as np
import pytest
import safetensors.torch
import torch

import crossearth
from crossearth.config import ModelConfig
from crossearth.errors import CrossEarthError


@pytest.fixture(scope="module")
def named_model():
    """A tiny model whose config carries class names and a palette (as every loaded model does)."""
    torch.manual_seed(3)
    cfg = crossearth.get_preset("vit-tiny-256", 4)
    cfg = cfg.replace(
        class_names=("water", "road", "roof", "tree"),
        palette=((0, 0, 255), (128, 128, 128), (255, 0, 0), (0, 160, 0)),
        bands="IRRG",
    )
    return crossearth.CrossEarth(cfg).eval()


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)


def _read_header(path) -> dict:
    """Parse the safetensors header by hand: u64 little-endian length, then a JSON object."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    end = max(info["data_offsets"][1] for k, info in header.items() if k != "__metadata__")
    assert 8 + length + end == len(raw)
    return header


def test_round_trip(tmp_path, named_model):
    path = tmp_path / "model.safetensors"
    returned = crossearth.save_model(named_model, path)
    assert returned == path and path.is_file()

    loaded = crossearth.load_model(path)
    assert loaded.load_report.missing == [] and loaded.load_report.unexpected == []
    assert loaded.config.to_dict() == named_model.config.to_dict()
    expected, got = named_model.state_dict(), loaded.state_dict()
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype, key
        assert torch.equal(got[key], value), key

    image = _image()
    np.testing.assert_array_equal(loaded.predict(image).scores, named_model.predict(image).scores)


def test_round_trip_of_a_fresh_preset_model_keeps_the_architecture(tmp_path):
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    path = crossearth.save_model(model, tmp_path / "fresh.safetensors")
    loaded = crossearth.load_model(path)
    for section in ("backbone", "rein", "head", "inference"):
        assert loaded.config.to_dict()[section] == model.config.to_dict()[section], section
    assert loaded.num_classes == 3
    assert len(loaded.config.class_names) == 3 and len(loaded.config.palette) == 3
    # A second round trip is then exact.
    again = crossearth.load_model(crossearth.save_model(loaded, tmp_path / "again.safetensors"))
    assert again.config.to_dict() == loaded.config.to_dict()


def test_file_is_valid_safetensors_with_our_metadata(tmp_path, named_model):
    path = crossearth.save_model(named_model, tmp_path / "m.safetensors")
    header = _read_header(path)
    metadata = header["__metadata__"]
    assert metadata["format"] == "crossearth"
    assert ModelConfig.from_dict(json.loads(metadata["config"])) == named_model.config
    state = named_model.state_dict()
    assert set(header) - {"__metadata__"} == set(state)
    assert header["backbone.reins.scale"]["shape"] == []
    assert header["decode_head.cls_embed.weight"]["shape"] == [5, 256]
    assert header["backbone.blocks.0.norm1.weight"]["dtype"] == "F32"
    tensors = safetensors.torch.load_file(str(path))
    assert torch.equal(tensors["backbone.pos_embed"], state["backbone.pos_embed"])


def test_save_is_atomic(tmp_path, named_model, monkeypatch):
    path = tmp_path / "m.safetensors"
    crossearth.save_model(named_model, path)
    crossearth.save_model(named_model, path)  # overwriting works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    before = path.read_bytes()

    def broken_save(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        crossearth.save_model(named_model, path)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no .tmp leftovers


def test_save_creates_missing_directories(tmp_path, named_model):
    path = tmp_path / "a" / "b" / "m.safetensors"
    crossearth.save_model(named_model, path)
    assert path.is_file()
    assert list(path.parent.iterdir()) == [path]


def test_saved_file_permissions_follow_the_umask(tmp_path, named_model):
    old = os.umask(0o022)
    try:
        path = crossearth.save_model(named_model, tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_embedded_config_with_unknown_key(tmp_path, named_model):
    config = named_model.config.to_dict()
    config["option_from_the_future"] = True
    tensors = {k: v.contiguous() for k, v in named_model.state_dict().items()}
    path = tmp_path / "future.safetensors"
    metadata = {"format": "crossearth", "format_version": "1", "config": json.dumps(config)}
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CrossEarthError):
        crossearth.load_model(path)


def test_embedded_config_that_is_not_json(tmp_path, named_model):
    tensors = {k: v.contiguous() for k, v in named_model.state_dict().items()}
    path = tmp_path / "broken.safetensors"
    metadata = {"format": "crossearth", "format_version": "1", "config": "{not json"}
    safetensors.torch.save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CrossEarthError):
        crossearth.load_model(path)


def test_plain_safetensors_in_the_official_layout(tmp_path, named_model):
    """A safetensors file without our metadata is read like an official checkpoint."""
    tensors = {k: v.contiguous() for k, v in named_model.state_dict().items()}
    path = tmp_path / "plain.safetensors"
    safetensors.torch.save_file(tensors, str(path))
    loaded = crossearth.load_model(path, config="vit-tiny-256")
    assert loaded.load_report.missing == [] and loaded.load_report.unexpected == []
    assert loaded.num_classes == 4
    assert torch.equal(loaded.state_dict()["backbone.pos_embed"], tensors["backbone.pos_embed"])
