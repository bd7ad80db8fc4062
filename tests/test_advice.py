"""Every error's advice names a setting that exists where the user is (`crossearth.advice`).

The same band, scaling and weights checks run behind `predict` (options), a data set file (`bands:`
and `scale:` keys), `train --init` (no --download, no model --config), `benchmark` and `style fit`.
Each context gets a generated input that fails the check, and its message is searched for the
settings of that context and of no other.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli_captured as cli
from rasterio.transform import from_origin

import crossearth

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
import user_data as ud


def five_band_image(path: Path, geom: dict, dtype: str = "uint8") -> Path:
    """A 5-band image recording no band roles (no descriptions, grey/undefined colours)."""
    rng = np.random.default_rng(0)
    data = rng.integers(1, 200, (5, geom["h"], geom["w"])).astype(dtype)
    with rasterio.open(path, "w", driver="GTiff", width=geom["w"], height=geom["h"], count=5,
                       dtype=dtype, crs=ud.UTM,
                       transform=from_origin(geom["x0"], geom["y0"], ud.GSD, ud.GSD)) as dst:  # fmt: skip
        dst.write(data)
    return path


def one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), output
    return lines[0]


@pytest.fixture
def five_band_data(tmp_path):
    g = ud.scene_geometry(0, (40, 48))
    five_band_image(tmp_path / "s.tif", g)
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    return tmp_path, g


@pytest.mark.parametrize("command", ["data check", "train"])
def test_a_data_set_is_told_its_bands_key(five_band_data, monkeypatch, capsys, command):
    root, _ = five_band_data
    head = "classes: [water, forest, bare]\nholdout: 0\n"
    split = "train: {images: s.tif, labels: s_mask.tif}\n"
    args = {"data check": ["data", "check"],
            "train": ["train", "--out", root / "run", "--max-steps", "1", "--data"]}[command]  # fmt: skip
    for extra, wanted in (
        ("", "`bands: [3, 2, 1]` in the data set file"),  # bands cannot be told apart
        ("bands: [6, 1, 2]\n", "bands: band 6 does not exist"),
    ):
        data = ud.write_yaml(root / "d.yaml", head + extra + split)
        code, output = cli(monkeypatch, capsys, *args, data)
        line = one_error_line(output)
        assert code == 1 and wanted in line and "--bands" not in line, line
    assert not (root / "run").exists()


def test_a_data_set_is_told_its_scale_key(tmp_path, monkeypatch, capsys):
    g = ud.scene_geometry(0, (40, 48))
    ud.write_image(tmp_path / "s.tif", g, dtype="uint16")
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    base = (
        "classes: [water, forest, bare]\nholdout: 0\ntrain: {images: s.tif, labels: s_mask.tif}\n"
    )
    for scale, wanted in (
        ("none", "`scale: auto` in the data set file"),  # 16-bit data cannot be used as is
        ("'0,1;0,2'", "scale: '0,1;0,2' gives 2 ranges"),
        ("fast", "scale: 'fast' is not understood"),
    ):
        data = ud.write_yaml(tmp_path / "d.yaml", f"scale: {scale}\n" + base)
        code, output = cli(monkeypatch, capsys, "data", "check", data)
        line = one_error_line(output)
        assert code == 1 and wanted in line and "--scale" not in line, line


def test_predict_still_names_its_options(five_band_data, monkeypatch, capsys):
    root, _ = five_band_data
    model = root / "m.safetensors"
    crossearth.save_model(crossearth.create_model("vit-tiny-256", num_classes=3), model)
    code, output = cli(monkeypatch, capsys, "predict", root / "s.tif", "--model", model,
                       "-o", root / "out", "--device", "cpu", "-q")  # fmt: skip
    line = one_error_line(output)
    assert code == 1 and "--bands 3,2,1" in line and "data set file" not in line, line


def test_style_fit_names_no_band_option_it_does_not_have(five_band_data, monkeypatch, capsys):
    root, g = five_band_data
    (root / "imgs").mkdir()
    for i in range(2):
        five_band_image(root / "imgs" / f"i{i}.tif", g)
    code, output = cli(monkeypatch, capsys, "style", "fit", root / "imgs", "-o", root / "s.npz")
    assert code == 1 and "--bands" not in output and "record their roles" in output, output


@pytest.fixture
def no_zoo_files(tmp_path, monkeypatch):
    """No zoo checkpoint on this machine, nothing in the Hub cache."""
    import huggingface_hub

    monkeypatch.setenv("CROSSEARTH_HOME", str(tmp_path / "home"))

    def not_cached(*args, **kwargs):
        raise FileNotFoundError("not in the cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", not_cached)


def test_train_init_is_not_told_of_a_download_option_it_lacks(
    tmp_path, monkeypatch, capsys, no_zoo_files
):
    g = ud.scene_geometry(0, (40, 48))
    ud.write_image(tmp_path / "s.tif", g)
    ud.write_id_mask(tmp_path / "s_mask.tif", g)
    data = ud.write_yaml(tmp_path / "d.yaml", "classes: [water, forest, bare]\nholdout: 0\n"
                         "train: {images: s.tif, labels: s_mask.tif}\n")  # fmt: skip
    code, output = cli(monkeypatch, capsys, "train", "--data", data, "--init", "potsdam-rgb",
                       "--out", tmp_path / "run", "--max-steps", "1")  # fmt: skip
    note, line = output.strip().splitlines()  # the validation rule, then the error
    assert note.startswith("validation:") and line.startswith("error:")
    assert code == 1 and "not on this machine" in line and "huggingface.co" in line, line
    assert "--download" not in line and "--config" not in line
    # where the option exists, it is still offered
    code, output = cli(monkeypatch, capsys, "predict", tmp_path / "s.tif", "--model",
                       "potsdam-rgb", "-o", tmp_path / "out", "-q")  # fmt: skip
    assert code == 1 and "--download" in one_error_line(output)


def test_the_raw_dinov2_backbone_advice_fits_the_caller():
    import torch

    from crossearth.advice import OPTIONS, TRAINING
    from crossearth.errors import CheckpointError
    from crossearth.weights.state import backbone_tensors

    raw = {
        "blocks.0.norm1.weight": torch.zeros(4),
        "patch_embed.proj.weight": torch.zeros(8, 3, 14, 14),
    }
    with pytest.raises(CheckpointError, match="--config vitl-512"):
        backbone_tensors(raw, None, OPTIONS)
    with pytest.raises(CheckpointError) as info:
        backbone_tensors(raw, None, TRAINING)
    assert "--config" not in str(info.value) and "dinov2_converted.pth" in str(info.value)
