"""Every zoo layout exports: full-size ViT-L with random weights at 512 and 1024 (slow: minutes)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from deepness_contract import preprocess, read_metadata
from export_helpers import smooth_tiles

import crossearth
from crossearth.export.onnx import export_onnx
from crossearth.export.torch_export import export_program, load_program
from crossearth.inference import normalize

pytestmark = pytest.mark.slow


def pytorch_probabilities(model, tiles: np.ndarray) -> np.ndarray:
    pixels = torch.from_numpy(tiles).permute(0, 3, 1, 2).float()
    cfg = model.config.inference
    with torch.no_grad():
        scores = model(normalize(pixels, cfg.mean, cfg.std)).double()
    return (scores / scores.sum(1, keepdim=True)).numpy()


def assert_matches(got: np.ndarray, want: np.ndarray) -> None:
    assert np.abs(got - want).max() <= 1e-4
    top = np.sort(want, axis=1)
    decided = top[:, -1] - top[:, -2] > 1e-4
    assert (got.argmax(1) == want.argmax(1))[decided].all()


@pytest.mark.parametrize(("preset", "classes"), [("vitl-512", 6), ("vitl-1024", 5)])
def test_full_size_onnx_export_runs_in_onnx_runtime(preset, classes, tmp_path):
    torch.manual_seed(0)
    model = crossearth.create_model(preset, num_classes=classes)
    size = model.config.inference.crop_size[0]
    path = export_onnx(model, tmp_path / f"{preset}.onnx")
    assert path.stat().st_size < 2**31  # one file, under protobuf's 2 GB limit
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = read_metadata(session.get_modelmeta().custom_metadata_map)
    assert meta["tile_size"] == size and meta["tiles_overlap"] == 33  # stride 341/512, 683/1024
    assert session.get_inputs()[0].shape[1:] == [3, size, size]
    tiles = smooth_tiles(1, size, seed=5)
    x = preprocess(tiles, 3, meta["mean"], meta["std"]).astype(np.float32)
    got = session.run(None, {"input": x})[0]
    assert got.shape == (1, classes, size, size)
    assert_matches(got, pytorch_probabilities(model, tiles))


def test_full_size_vitl_512_torch_export(tmp_path):
    torch.manual_seed(0)
    model = crossearth.create_model("vitl-512", num_classes=6)
    export_program(model, tmp_path / "vitl.pt2")
    program, meta = load_program(tmp_path / "vitl.pt2")
    assert meta["tile_size"] == 512
    tiles = smooth_tiles(1, 512, seed=6)
    x = preprocess(tiles, 3, meta["standardization_mean"], meta["standardization_std"])
    with torch.no_grad():
        got = program.module()(torch.from_numpy(x.astype(np.float32))).numpy()
    assert_matches(got, pytorch_probabilities(model, tiles))
