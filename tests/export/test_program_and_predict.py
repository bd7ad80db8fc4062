"""torch.export programs, and `crossearth predict --model model.onnx` against the PyTorch model."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import rasterio
import torch
from deepness_contract import preprocess
from export_helpers import CLASSES, reference_image
from rasterio.crs import CRS
from rasterio.transform import from_origin

import crossearth
from crossearth.cli import main
from crossearth.export.torch_export import export_program, load_program
from crossearth.inference import normalize


def run_cli(monkeypatch, *args) -> int:
    monkeypatch.setattr(sys, "argv", ["crossearth", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    return exit_info.value.code


@pytest.mark.slow  # torch.export tracing takes ~20 s on 2 cores
def test_pt2_matches_pytorch_with_static_tile_and_metadata(ref_model, tmp_path):
    path = tmp_path / "model.pt2"
    export_program(ref_model, path)
    program, meta = load_program(path)
    assert meta["model_type"] == "Segmentor" and meta["tile_size"] == 256
    assert meta["class_names"] == {str(i): n for i, n in enumerate(CLASSES)}
    (spec,) = [s for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    shape = next(n for n in program.graph.nodes if n.name == spec.arg.name).meta["val"].shape
    assert [int(d) for d in shape[1:]] == [3, 256, 256]  # static S; the batch is symbolic
    assert not isinstance(shape[0], int)
    tiles = np.stack([reference_image("a"), reference_image("b")[100:356, 200:456]])
    x = preprocess(tiles, 3, meta["standardization_mean"], meta["standardization_std"])
    with torch.no_grad():
        got = program.module()(torch.from_numpy(x.astype(np.float32))).numpy()
        pixels = torch.from_numpy(tiles).permute(0, 3, 1, 2).float()
        cfg = ref_model.config.inference
        scores = ref_model(normalize(pixels, cfg.mean, cfg.std))
        want = (scores / scores.sum(1, keepdim=True)).numpy()
    assert np.abs(got - want).max() <= 1e-4
    top = np.sort(want, axis=1)
    decided = top[:, -1] - top[:, -2] > 1e-4
    assert (got.argmax(1) == want.argmax(1))[decided].all()


def test_predict_with_onnx_gives_the_pytorch_class_map(monkeypatch, tmp_path, ref_model, ref_onnx):
    image = reference_image("b")[:450, :600]  # 450 x 600: 3 x 4 overlapping windows
    src = tmp_path / "scene.tif"
    profile = dict(driver="GTiff", height=450, width=600, count=3, dtype="uint8")
    profile.update(crs=CRS.from_epsg(32632), transform=from_origin(500_000, 5_800_000, 0.3, 0.3))
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(image.transpose(2, 0, 1))
    out = tmp_path / "out"
    code = run_cli(
        monkeypatch, "predict", src, "-m", ref_onnx, "-o", out, "-q", "--batch-size", "3"
    )
    assert code == 0
    with rasterio.open(out / "scene_classes.tif") as result:
        labels = result.read(1)
        assert result.crs == CRS.from_epsg(32632)
    summary = json.loads((out / "scene_summary.json").read_text())
    assert summary["model"]["classes"] == list(CLASSES)
    want = ref_model.predict(image)  # PyTorch fp32, the official slide protocol
    top = np.sort(want.scores, axis=0)
    decided = top[-1] - top[-2] > 1e-4
    assert decided.mean() > 0.99
    assert (labels == want.labels)[decided].all()
    assert len(np.unique(labels)) >= 3


def test_predict_refuses_a_tile_the_onnx_file_cannot_take(monkeypatch, tmp_path, ref_onnx, capsys):
    src = tmp_path / "scene.tif"
    profile = dict(driver="GTiff", height=300, width=300, count=3, dtype="uint8")
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(np.full((3, 300, 300), 90, np.uint8))
    out = tmp_path / "out"
    code = run_cli(monkeypatch, "predict", src, "-m", ref_onnx, "-o", out, "-q", "--tile", "288")
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")]
    assert "256x256" in err
    assert not list(out.glob("*"))


def test_predict_refuses_an_onnx_file_without_our_metadata(monkeypatch, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])],
    )  # fmt: skip
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    src = tmp_path / "scene.tif"
    with rasterio.open(src, "w", driver="GTiff", height=64, width=64, count=3, dtype="uint8") as d:
        d.write(np.zeros((3, 64, 64), np.uint8))
    code = run_cli(monkeypatch, "predict", src, "-m", foreign, "-o", tmp_path / "out", "-q")
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "crossearth export" in err


def test_export_cli_from_our_file_checks_and_never_overwrites(
    ref_model, tmp_path, monkeypatch, capsys
):
    """`crossearth export FILE -o model.onnx` from our single-file format, with its check line."""
    weights = tmp_path / "m.safetensors"
    crossearth.save_model(ref_model, weights)
    target = tmp_path / "m.onnx"
    assert run_cli(monkeypatch, "export", weights, "-o", target) == 0
    err = capsys.readouterr().err
    assert "argmax agreement" in err and target.is_file()
    before = target.read_bytes()
    code = run_cli(monkeypatch, "export", weights, "-o", target)  # exists: refused, untouched
    err = capsys.readouterr().err
    assert code == 1 and "--overwrite" in err and target.read_bytes() == before
    code = run_cli(monkeypatch, "export", weights, "-o", tmp_path / "m.pt2", "--fp16")
    assert code == 1 and "ONNX exports only" in capsys.readouterr().err
    assert not (tmp_path / "m.pt2").exists()
