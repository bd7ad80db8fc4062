"""`crossearth train --data` on all the bands a user has (4-band RGB+NIR, 1 band) and `predict`
with the model, which knows its bands: round trips, RGB -> N from `--init`, bad band input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from cli_runner import run_cli_captured as cli

from crossearth.config import IMAGENET_MEAN, IMAGENET_STD

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import nir_data as nd
import user_data as ud

SIZE = (96, 112)
TRAIN = ["--batch-size", "4", "--precision", "32-true", "--set", "preset=vit-tiny-256",
         "--set", "crop=64", "--set", "num_workers=0", "--set", "num_points=1024",
         "--set", "cat_max_ratio=1.0", "--set", "val_every=100000"]  # fmt: skip


def train(monkeypatch, capsys, data, out, steps, *extra):
    code, output = cli(monkeypatch, capsys, "train", "--data", data, "--out", out,
                       "--max-steps", str(steps), *TRAIN, *extra)  # fmt: skip
    assert code == 0, output
    return output


def predict(monkeypatch, capsys, scene, model, out, *extra):
    return cli(monkeypatch, capsys, "predict", scene, "--model", model, "-o", out, "--quiet",
               "--precision", "fp32", *extra)  # fmt: skip


def test_four_band_round_trip_predict_needs_no_band_option(tmp_path, monkeypatch, capsys):
    data = nd.write_nir_dataset(tmp_path / "d", "[1, 2, 3, 4]", n=3, size=(48, 56))
    out = tmp_path / "run"
    train(monkeypatch, capsys, data, out, 3, "--set", "freeze_backbone=false")
    from crossearth.weights import load_model

    cfg = load_model(out / "last.safetensors").config
    assert cfg.in_chans == 4 and cfg.band_indices == (1, 2, 3, 4)
    assert cfg.band_names == ("red", "green", "blue", "band4")
    assert cfg.inference.mean[:3] == IMAGENET_MEAN and cfg.inference.std[:3] == IMAGENET_STD
    assert 0 < cfg.inference.mean[3] < 255 and cfg.inference.std[3] > 1
    code, output = predict(monkeypatch, capsys, tmp_path / "d" / "heldout.tif",
                           out / "last.safetensors", tmp_path / "pred")  # fmt: skip
    assert code == 0, output
    with rasterio.open(tmp_path / "pred" / "heldout_classes.tif") as src:
        assert src.shape == (48, 56) and src.read(1).max() < 3
    # eval reads the model's bands, also from a description without `bands:`
    data.write_text(data.read_text().replace("bands: [1, 2, 3, 4]\n", ""))
    code, output = cli(monkeypatch, capsys, "eval", "--data", data, "--split", "val", "--model",
                       out / "last.safetensors", "-o", tmp_path / "reports")  # fmt: skip
    assert code == 0, output
    assert list((tmp_path / "reports").glob("eval_*.json"))
    data.write_text(data.read_text().replace("classes:", "bands: [1, 2, 3]\nclasses:"))
    code, output = cli(monkeypatch, capsys, "eval", "--data", data, "--split", "val", "--model",
                       out / "last.safetensors", "-o", tmp_path / "r2")  # fmt: skip
    assert code == 1 and "the model takes 4 band(s)" in output and not (tmp_path / "r2").exists()
    # a file without the model's fourth band: one error naming it, nothing written
    rgb = nd.write_nir_image(tmp_path / "rgb.tif", ud.scene_geometry(7, (48, 56)), bands=3)
    code, output = predict(monkeypatch, capsys, rgb, out / "last.safetensors", tmp_path / "p2")
    lines = output.strip().splitlines()
    assert code == 1 and lines[-1].startswith("error:") and "band 4 does not exist" in lines[-1]
    assert "red, green, blue, band4" in lines[-1] and "Traceback" not in output
    assert not (tmp_path / "p2").exists()
    # --bands of another count than the model's
    code, output = predict(monkeypatch, capsys, tmp_path / "d" / "heldout.tif",
                           out / "last.safetensors", tmp_path / "p3", "--bands", "1,2,3")  # fmt: skip
    assert code == 1 and "the model takes 4 bands" in output and not (tmp_path / "p3").exists()


def test_one_band_round_trip(tmp_path, monkeypatch, capsys):
    data = nd.write_nir_dataset(tmp_path / "d", "[1]", n=3, size=(48, 56), image_bands=1)
    out = tmp_path / "run"
    train(monkeypatch, capsys, data, out, 2, "--set", "freeze_backbone=false")
    from crossearth.weights import load_model

    model = load_model(out / "last.safetensors")
    assert model.config.in_chans == 1 and model.config.band_indices == (1,)
    assert model.backbone.patch_embed.proj.weight.shape[1] == 1
    code, output = predict(monkeypatch, capsys, tmp_path / "d" / "heldout.tif",
                           out / "last.safetensors", tmp_path / "pred")  # fmt: skip
    assert code == 0, output
    assert (tmp_path / "pred" / "heldout_classes.tif").is_file()


def test_init_from_an_rgb_model_extends_it_and_trains_only_patch_embedding_rein_head(
    tmp_path, monkeypatch, capsys
):
    from crossearth.models.presets import get_preset
    from crossearth.models.segmentor import CrossEarth
    from crossearth.weights import load_model, save_model

    torch.manual_seed(0)
    save_model(CrossEarth(get_preset("vit-tiny-256", 3)), tmp_path / "rgb.safetensors")
    rgb = load_model(tmp_path / "rgb.safetensors")
    data = nd.write_nir_dataset(tmp_path / "d", "[1, 2, 3, 4]", n=3, size=(48, 56))
    out = tmp_path / "run"
    output = train(monkeypatch, capsys, data, out, 3, "--init", tmp_path / "rgb.safetensors",
                   "--set", "freeze_backbone=true", "--set", "lr=1e-3")  # fmt: skip
    assert "input bands: 3 -> 4" in output and "backbone.patch_embed" in output
    wide = load_model(out / "last.safetensors")
    a, b = rgb.state_dict(), wide.state_dict()
    key = "backbone.patch_embed.proj.weight"
    assert b[key].shape[1] == 4
    assert b[key][:, 3].abs().sum() > 0, "the NIR kernel never left zero: it did not train"
    assert not torch.equal(b[key][:, :3], a[key]), "the patch embedding did not train"
    assert torch.equal(
        a["backbone.blocks.0.attn.qkv.weight"], b["backbone.blocks.0.attn.qkv.weight"]
    )


def test_images_with_fewer_bands_than_listed_fail_with_one_line(tmp_path, monkeypatch, capsys):
    data = nd.write_nir_dataset(tmp_path / "d", "[1, 2, 3, 5]", n=2, size=(40, 48))
    code, output = cli(monkeypatch, capsys, "train", "--data", data, "--out", tmp_path / "run",
                       "--max-steps", "1", *TRAIN)  # fmt: skip
    lines = output.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error:"), output
    assert "band 5 does not exist" in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_nir_separates_classes_that_rgb_cannot(tmp_path, monkeypatch, capsys):
    """The issue's check at tiny scale: grass and turf differ only in NIR; trained from scratch
    with the same budget, the 4-band model segments a held-out scene far better than the RGB
    one. Measured on this machine (200 steps, lr 1e-3, vit-tiny-256): 4 bands mIoU 92.8, grass
    and turf pixels 97 % right; RGB about 55 and at most the turf share (74 %)."""
    truth = ud.truth(ud.scene_geometry(7, SIZE))
    veg = truth > 0
    results = {}
    for bands in ("[1, 2, 3, 4]", "[1, 2, 3]"):
        root = tmp_path / str(len(bands))
        data = nd.write_nir_dataset(root, bands, size=SIZE)
        train(monkeypatch, capsys, data, root / "run", 200, "--set", "freeze_backbone=false",
              "--set", "lr=1e-3")  # fmt: skip
        code, output = predict(monkeypatch, capsys, root / "heldout.tif",
                               root / "run" / "last.safetensors", root / "pred")  # fmt: skip
        assert code == 0, output
        with rasterio.open(root / "pred" / "heldout_classes.tif") as src:
            labels = src.read(1)
        ious = [((labels == c) & (truth == c)).sum() / ((labels == c) | (truth == c)).sum()
                for c in range(3)]  # fmt: skip
        results[bands] = (float(np.mean(ious)), float((labels[veg] == truth[veg]).mean()))
    (miou4, veg4), (miou3, veg3) = results["[1, 2, 3, 4]"], results["[1, 2, 3]"]
    assert miou4 > miou3 + 0.15 and veg4 > veg3 + 0.1, results
    assert veg4 > 0.85, results
