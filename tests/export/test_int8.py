"""int8: 7-bit weights, the export's agreement check, the cached copy, `--precision int8/auto`."""

from __future__ import annotations

import copy
import json
import shutil
import sys

import numpy as np
import onnx
import pytest
import rasterio
import torch
from cli_runner import run_cli_captured
from export_helpers import reference_image
from geotiff import blocky_scene, write_geotiff
from onnx import TensorProto, numpy_helper
from rasterio.crs import CRS
from rasterio.transform import from_origin

import crossearth
import crossearth.export.onnx as export_module
from crossearth.export.int8 import int8_model_file, model_fingerprint
from crossearth.export.quantize import QuantizationError, quantize_file
from crossearth.export.runner import OnnxSegmenter


@pytest.fixture(scope="module")
def model_file(ref_model, tmp_path_factory):
    """The reference model as a file: scores of a trained model's magnitude, so every pixel's
    class is decided (the varied tiny model leaves pixels whose scores are all ~0, where any
    two runs of the same model in different kernels disagree)."""
    path = tmp_path_factory.mktemp("int8-model") / "ref.safetensors"
    crossearth.save_model(ref_model, path)
    return path


def test_int8_weights_cannot_saturate_avx2_and_agree_with_fp32(ref_model, ref_onnx, tmp_path):
    path, agreement = quantize_file(ref_onnx, tmp_path / "ref_int8.onnx")
    weights = [
        numpy_helper.to_array(init).astype(np.int32)
        for init in onnx.load(str(path)).graph.initializer
        if init.data_type == TensorProto.INT8 and len(init.dims) == 2
    ]
    assert len(weights) >= 4 * 6  # qkv, proj, fc1, fc2 of each of the 6 blocks
    largest = max(int(np.abs(w).max()) for w in weights)
    # vpmaddubsw (AVX2 without VNNI) adds two u8 x s8 products in a saturating int16
    assert 2 * 255 * largest <= 32767, largest
    image = reference_image("a")
    labels = OnnxSegmenter(path).predict(image).labels
    assert (labels == ref_model.predict(image).labels).mean() >= 0.99
    assert agreement >= 0.99


def test_export_refuses_an_int8_file_below_its_promise(ref_onnx, ref_model, tmp_path):
    target = tmp_path / "int8.onnx"
    with pytest.raises(QuantizationError, match=r"agrees with fp32 on .* below the 100\.5"):
        quantize_file(ref_onnx, target, min_agreement=1.005)
    with pytest.raises(QuantizationError, match="below"):
        export_module.export_onnx(ref_model, target, quantize="int8", min_agreement=1.005)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_export_cli_says_why_and_writes_nothing(monkeypatch, capsys, model_file, tmp_path):
    monkeypatch.setattr("crossearth.export.quantize.MIN_AGREEMENT", 1.005)
    out = tmp_path / "m.onnx"
    code, text = run_cli_captured(
        monkeypatch, capsys, "export", model_file, "-o", out, "--quantize", "int8"
    )
    assert code == 1
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "below the 100.5%" in errors[0], text
    assert "Traceback" not in text and not out.exists()


def test_int8_copy_is_made_once_and_again_for_changed_weights(small_model, tmp_path, monkeypatch):
    calls = []
    original = export_module.export_onnx

    def counting(*args, **kwargs):
        calls.append(kwargs.get("quantize"))
        return original(*args, **kwargs)

    monkeypatch.setattr(export_module, "export_onnx", counting)
    source = tmp_path / "m.safetensors"
    model = copy.deepcopy(small_model)
    first = int8_model_file(model, source)
    second = int8_model_file(model, source)
    assert first == second and first.parent == tmp_path and calls == ["int8"]
    changed = copy.deepcopy(small_model)
    with torch.no_grad():
        changed.decode_head.cls_embed.bias.add_(0.01)
    assert model_fingerprint(changed) != model_fingerprint(model)
    third = int8_model_file(changed, source)
    assert third != first and third.is_file() and calls == ["int8", "int8"]


def summary_of(folder):
    (path,) = folder.glob("*_summary.json")
    return json.loads(path.read_text())


def classes_of(folder):
    (path,) = [p for p in folder.glob("*.tif")]
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_predict_int8_agrees_with_fp32_and_auto_reuses_the_copy(
    monkeypatch, capsys, model_file, tmp_path
):
    # the reference input a as a GeoTIFF: the inputs int8's >= 99 % agreement is promised on
    # (random blocks are no such input: ties between classes abound there)
    image = reference_image("a").transpose(2, 0, 1)
    scene = write_geotiff(
        tmp_path / "scene.tif", image, crs=CRS.from_epsg(32632),
        transform=from_origin(5e5, 5.8e6, 0.3, 0.3),
    )  # fmt: skip
    runs = {}
    for precision in ("fp32", "int8", "auto"):
        out = tmp_path / precision
        code, text = run_cli_captured(
            monkeypatch, capsys, "predict", scene, "--model", model_file, "-o", out,
            "--precision", precision, "--device", "cpu", "--no-preview", "--no-overlay",
        )  # fmt: skip
        assert code == 0, text
        runs[precision] = (classes_of(out), summary_of(out)["model"], text)
    assert "exporting an int8 copy" in runs["int8"][2]
    assert "exporting" not in runs["auto"][2]  # auto takes the cached copy, never exports
    assert runs["int8"][1]["precision"] == runs["auto"][1]["precision"] == "onnx int8"
    assert runs["auto"][1]["precision_reason"].startswith("auto: an int8 copy")
    assert runs["fp32"][1]["precision"] == "fp32"
    assert (runs["int8"][0] == runs["fp32"][0]).mean() >= 0.99
    assert len(np.unique(runs["fp32"][0])) > 1


def test_onnx_models_take_precision(monkeypatch, capsys, ref_onnx, tmp_path):
    fp32 = shutil.copy(ref_onnx, tmp_path / "ref.onnx")
    scene = blocky_scene(tmp_path / "in" / "scene.tif", seed=4, height=120, width=100)
    code, text = run_cli_captured(
        monkeypatch, capsys, "predict", scene, "--model", fp32, "-o", tmp_path / "a.tif",
        "--precision", "int8", "--no-preview", "--no-overlay",
    )  # fmt: skip
    assert code == 0, text
    (copy_file,) = tmp_path.glob("ref.int8-*.onnx")
    assert summary_of(tmp_path)["model"]["precision"] == "onnx int8"
    code, text = run_cli_captured(
        monkeypatch, capsys, "predict", scene, "--model", copy_file, "-o", tmp_path / "b.tif",
        "--precision", "fp32",
    )  # fmt: skip
    assert code == 1
    assert [line for line in text.splitlines() if line.startswith("error:")] == [
        f"error: {copy_file.name} holds int8 weights and cannot run in fp32: use --precision "
        "int8 (or auto), or the fp32 export or the PyTorch model for fp32"
    ]
    assert not (tmp_path / "b.tif").exists()


def test_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch, capsys, model_file, tmp_path):
    monkeypatch.setattr("crossearth.runtime.cpu_has_fast_bf16", lambda: False)
    scene = blocky_scene(tmp_path / "scene.tif", seed=5, height=64, width=64)
    code, text = run_cli_captured(
        monkeypatch, capsys, "predict", scene, "--model", model_file, "-o", tmp_path / "o.tif",
        "--precision", "bf16", "--device", "cpu", "--no-preview", "--no-overlay",
    )  # fmt: skip
    assert code == 0, text
    warnings = [line for line in text.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "no native bf16" in warnings[0]
    assert "--precision fp32" in warnings[0]


def test_int8_without_onnxruntime_says_which_precision_to_use(
    monkeypatch, capsys, model_file, tmp_path
):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    scene = blocky_scene(tmp_path / "scene.tif", seed=6, height=64, width=64)
    code, text = run_cli_captured(
        monkeypatch, capsys, "predict", scene, "--model", model_file, "-o", tmp_path / "o.tif",
        "--precision", "int8", "--device", "cpu",
    )  # fmt: skip
    assert code == 1
    (error,) = [line for line in text.splitlines() if line.startswith("error:")]
    assert "ONNX Runtime, which is not installed" in error and "--precision fp32" in error
    assert "Traceback" not in text and not (tmp_path / "o.tif").exists()


def test_load_model_int8_is_a_runner_with_the_same_predict(model_file, ref_model):
    image = reference_image("a")  # the input the >= 99 % promise is measured on
    net = crossearth.load_model(model_file, precision="int8")
    assert net.precision == "int8" and net.precision_reason == "asked for (--precision int8)"
    assert (net.predict(image).labels == ref_model.predict(image).labels).mean() >= 0.99
