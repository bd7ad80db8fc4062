"""`crossearth style fit`: a folder of PNG/JPEG/GeoTIFF images in, an earth style .npz out."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from cli_runner import run_cli as run
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import Affine

from crossearth.train.style import EarthStyle


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "aid"
    (root / "farmland").mkdir(parents=True)
    (root / "river").mkdir()
    for i in range(3):
        base = rng.integers(0, 256, (1, 1, 3)) * 0.6
        img = np.clip(base + rng.normal(0, 30, (70, 90, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / ("farmland" if i else "river") / f"{i}.png")
    profile = {
        "driver": "GTiff", "width": 64, "height": 64, "count": 3, "dtype": "uint16",
        "crs": CRS.from_epsg(32633), "transform": Affine(10, 0, 400_000, 0, -10, 5_500_000),
    }  # fmt: skip
    with rasterio.open(root / "river" / "s2.tif", "w", **profile) as dst:
        dst.write(rng.integers(200, 3000, (3, 64, 64)).astype(np.uint16))
    (root / "notes.txt").write_text("ignored")
    return root


def test_style_fit_writes_an_earth_style(monkeypatch, tmp_path, folder, capsys):
    out = tmp_path / "styles" / "earth_style.npz"
    assert run(monkeypatch, "style", "fit", folder, "-o", out, "--size", 64) == 0
    style = EarthStyle.load(out, dim=16)
    assert style.count == 4 and style.stylizer == "spectral-v1"
    assert "fitted on 4 images" in capsys.readouterr().err
    assert sorted(p.name for p in out.parent.iterdir()) == ["earth_style.npz"]


def test_style_fit_empty_folder_is_a_clear_error(monkeypatch, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "earth_style.npz"
    assert run(monkeypatch, "style", "fit", tmp_path / "empty", "-o", out) == 1
    assert "no images" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "empty"]


def test_style_fit_neural_needs_both_checkpoints(monkeypatch, tmp_path, folder, capsys):
    out = tmp_path / "s.npz"
    assert run(monkeypatch, "style", "fit", folder, "-o", out, "--stylizer", "neural") == 1
    assert "--predictor" in capsys.readouterr().err
    torch.save({"something": torch.zeros(1)}, tmp_path / "p.pth")
    code = run(
        monkeypatch, "style", "fit", folder, "-o", out, "--stylizer", "neural",
        "--predictor", tmp_path / "p.pth", "--transformer", tmp_path / "p.pth",
    )  # fmt: skip
    assert code == 1
    assert "not a style predictor checkpoint" in capsys.readouterr().err
    assert not out.exists()


def test_style_fit_neural_with_published_layout(monkeypatch, tmp_path, folder):
    from crossearth.train.style import GhiasiTransformer, StylePredictor

    torch.manual_seed(0)
    predictor = {k: v for k, v in StylePredictor().state_dict().items() if "num_batches" not in k}
    torch.save({"state_dict_stylepredictor": predictor}, tmp_path / "checkpoint_stylepredictor.pth")
    torch.save(
        {"state_dict_ghiasi": GhiasiTransformer().state_dict()},
        tmp_path / "checkpoint_transformer.pth",
    )
    out = tmp_path / "earth.npz"
    code = run(
        monkeypatch, "style", "fit", folder, "-o", out, "--size", 64, "--stylizer", "neural",
        "--predictor", tmp_path / "checkpoint_stylepredictor.pth",
        "--transformer", tmp_path / "checkpoint_transformer.pth", "--device", "cpu",
    )  # fmt: skip
    assert code == 0
    style = EarthStyle.load(out, dim=100)
    assert style.count == 4 and style.stylizer == "style-augmentation"
