"""ONNX export: Deepness' metadata and preprocessing, agreement with PyTorch, fp16 and int8."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from deepness_contract import preprocess, read_metadata
from export_helpers import CLASSES, reference_image, smooth_tiles

from crossearth.errors import InputError
from crossearth.export.onnx import export_onnx
from crossearth.inference import normalize


def deepness_session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()  # as Deepness opens a model
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_probabilities(model, tiles: np.ndarray) -> np.ndarray:
    """The PyTorch model on the same pixels with its own normalisation, scores / their sum."""
    pixels = torch.from_numpy(tiles).permute(0, 3, 1, 2).float()
    cfg = model.config.inference
    with torch.no_grad():
        scores = model(normalize(pixels, cfg.mean, cfg.std)).double()
    total = scores.sum(1, keepdim=True)
    return (scores / torch.where(total > 0, total, 1.0)).numpy()  # all-zero pixels stay 0


def test_every_deepness_key_present_and_parseable(small_onnx):
    proto = onnx.load(str(small_onnx))
    onnx.checker.check_model(proto)
    session = deepness_session(small_onnx)
    meta = read_metadata(session.get_modelmeta().custom_metadata_map)
    assert meta["model_type"] == "Segmentor"
    assert meta["class_names"] == [list(CLASSES)]
    assert meta["resolution"] == pytest.approx(9.0)  # 0.09 m in cm per pixel
    assert meta["tile_size"] == 256
    assert json.loads(session.get_modelmeta().custom_metadata_map["tiles_size"]) == 256
    # vit-tiny-256: stride 171 of 256 -> 85 px overlap = 33 %
    assert meta["tiles_overlap"] == 33
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406], abs=1e-6)
    assert meta["std"] == pytest.approx([0.229, 0.224, 0.225], abs=1e-6)
    # one input, static square S, batch dynamic; one output [B, C, S, S]
    (inp,) = session.get_inputs()
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [3, 256, 256]
    (out,) = session.get_outputs()
    assert out.shape[1:] == [5, 256, 256]


def top2_margin(probabilities: np.ndarray) -> np.ndarray:
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def test_onnx_runtime_equals_pytorch_on_deepness_preprocessed_tiles(ref_model, ref_onnx):
    session = deepness_session(ref_onnx)
    meta = read_metadata(session.get_modelmeta().custom_metadata_map)
    image = reference_image("b")
    tiles = np.stack([image[:256, :256], image[300:556, 600:856]])
    x = preprocess(tiles, 3, meta["mean"], meta["std"])
    got = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    want = torch_probabilities(ref_model, tiles)
    assert np.abs(got - want).max() <= 1e-4
    assert len(np.unique(want.argmax(1))) >= 3  # a test with one class everywhere proves little
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)  # probabilities, as Deepness expects
    # argmax identical; a pixel whose two best classes tie within fp32 noise may go either way
    same = got.argmax(1) == want.argmax(1)
    assert same[top2_margin(want) > 1e-4].all()
    assert same.mean() > 0.999


def test_synthetic_model_agrees_where_scores_do_not_underflow(small_model, small_onnx):
    """The `varied_model` fixture's masks are artificially sharp: its official scores underflow
    fp32 on part of the image (a 0/0 in any implementation); compare where their sum is normal."""
    session = deepness_session(small_onnx)
    meta = read_metadata(session.get_modelmeta().custom_metadata_map)
    tiles = smooth_tiles(2, 256, seed=3)
    x = preprocess(tiles, 3, meta["mean"], meta["std"]).astype(np.float32)
    got = session.run(None, {"input": x})[0]
    pixels = torch.from_numpy(tiles).permute(0, 3, 1, 2).float()
    cfg = small_model.config.inference
    with torch.no_grad():
        total = small_model(normalize(pixels, cfg.mean, cfg.std)).sum(1, keepdim=True).numpy()
    ok = np.broadcast_to(total > 1e-6, got.shape)
    want = torch_probabilities(small_model, tiles)
    assert ok.mean() > 0.3, ok.mean()
    assert np.abs(got - want)[ok].max() <= 1e-4


def test_fp16_weights_and_int8(ref_model, ref_onnx, tmp_path):
    half = export_onnx(ref_model, tmp_path / "half.onnx", fp16=True)
    int8 = export_onnx(ref_model, tmp_path / "int8.onnx", quantize="int8")
    assert half.stat().st_size < 0.6 * ref_onnx.stat().st_size
    assert int8.stat().st_size < ref_onnx.stat().st_size  # the backbone's weights in int8
    tiles = reference_image("a")[None]
    want = torch_probabilities(ref_model, tiles)
    # int8 agreement measured at 99.5 % on this image (benchmarks/cpu_precision.py)
    for path, tol, agree in ((half, 1e-2, 0.99), (int8, None, 0.98)):
        session = deepness_session(path)
        meta = read_metadata(session.get_modelmeta().custom_metadata_map)
        assert meta["class_names"] == [list(CLASSES)] and meta["tile_size"] == 256
        assert meta["resolution"] == pytest.approx(30.0)
        x = preprocess(tiles, 3, meta["mean"], meta["std"]).astype(np.float32)
        got = session.run(None, {"input": x})[0]
        if tol is not None:
            assert np.abs(got - want).max() <= tol
        assert (got.argmax(1) == want.argmax(1)).mean() > agree


def test_other_tile_size_is_static_and_keeps_the_overlap(small_model, tmp_path):
    path = export_onnx(small_model, tmp_path / "t.onnx", tile=128, opset=18)
    session = deepness_session(path)
    custom = session.get_modelmeta().custom_metadata_map
    assert session.get_inputs()[0].shape[1:] == [3, 128, 128]
    assert read_metadata(custom)["tile_size"] == 128
    assert read_metadata(custom)["tiles_overlap"] == 33
    assert onnx.load(str(path)).opset_import[0].version == 18


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"tile": 100}, "multiple of the patch size"), ({"opset": 15}, "opset"),
     ({"quantize": "int4"}, "int8"), ({"fp16": True, "quantize": "int8"}, "exclude")],
)  # fmt: skip
def test_bad_options_are_refused_before_writing(small_model, tmp_path, kwargs, needle):
    with pytest.raises(InputError, match=needle):
        export_onnx(small_model, tmp_path / "x.onnx", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_four_band_model_exports_four_input_channels_and_equals_pytorch(varied_model, tmp_path):
    """An RGB+NIR model: N input channels in the graph, N standardisation values and a band note
    in the metadata, and the same probabilities as PyTorch on 4-band tiles."""
    from crossearth.config import IMAGENET_MEAN, IMAGENET_STD
    from crossearth.models.bands import expand_input_bands

    torch.manual_seed(1)
    model = expand_input_bands(varied_model, 4, (0, 1, 2)).eval()
    with torch.no_grad():  # a NIR kernel that matters, so a dropped channel changes the output
        kernel = model.backbone.patch_embed.proj.weight
        kernel[:, 3] = torch.randn_like(kernel[:, 3]) * kernel[:, :3].std()
    inference = dataclasses.replace(model.config.inference, mean=(*IMAGENET_MEAN, 90.0),
                                    std=(*IMAGENET_STD, 45.0))  # fmt: skip
    model.config = model.config.replace(inference=inference, band_indices=(1, 2, 3, 4),
                                        band_names=("red", "green", "blue", "nir"))  # fmt: skip
    path = export_onnx(model, tmp_path / "nir.onnx")
    session = deepness_session(path)
    (inp,) = session.get_inputs()
    assert inp.shape[1:] == [4, 256, 256]
    custom = session.get_modelmeta().custom_metadata_map
    meta = read_metadata(custom)
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406, 90 / 255], abs=1e-6)
    assert meta["std"] == pytest.approx([0.229, 0.224, 0.225, 45 / 255], abs=1e-6)
    assert json.loads(custom["crossearth_input_channels"]) == 4
    assert "4 = nir" in json.loads(custom["crossearth_bands"])
    rng = np.random.default_rng(3)
    rgb = smooth_tiles(2, 256, seed=3)
    nir = np.kron(rng.integers(0, 256, (2, 16, 16, 1)), np.ones((1, 16, 16, 1), np.int64))
    tiles = np.concatenate([rgb, nir.astype(np.uint8)], axis=-1)
    x = preprocess(tiles, 4, meta["mean"], meta["std"]).astype(np.float32)
    got = session.run(None, {inp.name: x})[0]
    want = torch_probabilities(model, tiles)
    # where the (artificially sharp) scores do not underflow fp32, as for the 3-band model
    pixels = torch.from_numpy(tiles).permute(0, 3, 1, 2).float()
    cfg = model.config.inference
    with torch.no_grad():
        total = model(normalize(pixels, cfg.mean, cfg.std)).sum(1, keepdim=True).numpy()
    ok = np.broadcast_to(total > 1e-3, got.shape)
    assert ok.mean() > 0.2, ok.mean()
    assert np.abs(got - want)[ok].max() <= 1e-4
    # the NIR channel reaches the graph: other NIR values, other probabilities
    tiles[..., 3] = 255 - tiles[..., 3]
    x2 = preprocess(tiles, 4, meta["mean"], meta["std"]).astype(np.float32)
    assert np.abs(session.run(None, {inp.name: x2})[0] - got).max() > 1e-3
