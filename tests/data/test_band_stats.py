"""Data sets of any band count: `bands:` lists, what each band is, per-band statistics streamed
over windows (against an independent whole-file computation), and `data check`'s band report."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from crossearth.config import IMAGENET_MEAN, IMAGENET_STD
from crossearth.data.bandstats import band_statistics, describe_bands, normalisation
from crossearth.data.check import check_data
from crossearth.data.scenes import SceneDataset
from crossearth.data.spec import load_data_spec
from crossearth.errors import ConfigError, InputError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nir_data as nd
import user_data as ud


def write(path: Path, data: np.ndarray, nodata=None, descriptions=None) -> Path:
    count, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=count,
                       dtype=data.dtype.name, crs=ud.UTM, nodata=nodata,
                       transform=from_origin(500_000, 5_500_000, 2, 2)) as dst:  # fmt: skip
        dst.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
    return path


def test_per_band_statistics_equal_an_independent_whole_file_computation(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "s").mkdir()
    arrays = []
    for i, (h, w) in enumerate([(70, 45), (33, 90)]):
        data = rng.integers(1, 12_000, (5, h, w)).astype(np.uint16)
        data[4] = rng.integers(9_000, 10_500, (h, w))  # clipped above 10000 in part
        data[:, : 3 + i, :7] = 0  # nodata corner (every band: GDAL's nodata rule)
        arrays.append(data)
        write(tmp_path / "s" / f"img_{i}.tif", data, nodata=0)
        write(tmp_path / "s" / f"img_{i}_mask.tif", np.zeros((1, h, w), np.uint8))
    (tmp_path / "d.yaml").write_text(
        "classes: [a, b]\nbands: [5, 1, 3, 2]\nscale: '0,10000'\n"
        "train: {images: [s/img_0.tif, s/img_1.tif], labels: s}\n"
        "val: {images: [s/img_0.tif], labels: s}\n"  # no hold-out: train has every row
    )
    spec = load_data_spec(tmp_path / "d.yaml")
    scenes = SceneDataset(spec, spec.train)
    mean, std = band_statistics(scenes, block=16)  # many windows, partial edge windows
    # independent: whole files, the documented scaling formula, nodata left out
    values = []
    for data in arrays:
        valid = (data != 0).all(axis=0)
        sel = data[[4, 0, 2, 1]].astype(np.float64)
        scaled = np.rint(np.clip(sel / 10_000, 0, 1) * 255)
        values.append(scaled[:, valid])
    allv = np.concatenate(values, axis=1)
    np.testing.assert_allclose(mean, allv.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(std, allv.std(axis=1), rtol=1e-8)


def test_band_roles_come_from_the_file_or_file_order(tmp_path):
    data = np.ones((4, 8, 8), np.uint16)
    named = write(tmp_path / "named.tif", data, descriptions=["nir", "red", "green", "blue"])
    plain = write(tmp_path / "plain.tif", data)
    with rasterio.open(named) as ds:
        info = describe_bands(ds, (1, 2, 3, 4))
        assert info.names == ("nir", "red", "green", "blue") and info.rgb_slots == (1, 2, 3)
        assert describe_bands(ds, (1,)).rgb_slots == (None, None, None)
    with rasterio.open(plain) as ds:
        info = describe_bands(ds, (1, 2, 3, 4))  # nothing recorded: file order R, G, B
        assert info.names == ("red", "green", "blue", "band4") and info.rgb_slots == (0, 1, 2)
        sar = describe_bands(ds, (3, 4))
        assert sar.rgb_slots == (None, None, None) and sar.names == ("band3", "band4")
    mean, std = normalisation(info, np.array([1.0, 2.0, 3.0, 40.0]), np.array([1, 1, 1, 0.0]))
    assert mean == (*IMAGENET_MEAN, 40.0) and std == (*IMAGENET_STD, 1.0)  # constant band: std 1


@pytest.mark.parametrize(
    ("bands", "error", "match"),
    [
        ("[1, 2, 3, 3]", ConfigError, "more than once"),
        ("[red, red, nir, green]", ConfigError, "more than once"),
        ("[1, 2, 3, 9]", InputError, "band 9 does not exist"),
        ("[red, green, blue, swir]", InputError, "no band named 'swir'"),
        ("[0, 1]", ConfigError, "bands must be"),
    ],
)
def test_bad_band_lists_are_one_clear_error(tmp_path, bands, error, match):
    (tmp_path / "s").mkdir()
    write(tmp_path / "s" / "img.tif", np.ones((4, 8, 8), np.uint16),
          descriptions=["red", "green", "blue", "nir"])  # fmt: skip
    write(tmp_path / "s" / "img_mask.tif", np.zeros((1, 8, 8), np.uint8))
    (tmp_path / "d.yaml").write_text(
        f"classes: [a, b]\nbands: {bands}\ntrain: {{images: s/img.tif, labels: s}}\n"
    )
    with pytest.raises(error, match=match):
        check_data(load_data_spec(tmp_path / "d.yaml"))


def test_band_names_select_the_same_bands_as_numbers(tmp_path):
    yaml = nd.write_nir_dataset(tmp_path / "a", "[1, 2, 3, 4]", n=2, size=(40, 48))
    for i in range(2):
        with rasterio.open(tmp_path / "a" / "scenes" / f"scene_{i}.tif", "r+") as ds:
            for b, name in enumerate(["B04", "B03", "B02", "B08"], start=1):
                ds.set_band_description(b, name)
    text = yaml.read_text().replace("bands: [1, 2, 3, 4]", "bands: [b8, red, B3, blue]")
    yaml.write_text(text)
    spec = load_data_spec(yaml)
    source = SceneDataset(spec, spec.train).source(0)
    assert source.bands == (4, 1, 2, 3)
    info = describe_bands(source.dataset, source.bands)
    assert info.names == ("nir", "red", "green", "blue") and info.rgb_slots == (1, 2, 3)


def test_data_check_reports_bands_and_refuses_mixed_band_counts(tmp_path):
    yaml = nd.write_nir_dataset(tmp_path / "a", "[1, 2, 3]", n=3, size=(40, 48))
    report = check_data(load_data_spec(yaml))
    assert report.problems == []
    assert set(report.splits[0].band_counts.values()) == {4}
    nd.write_nir_image(tmp_path / "a" / "scenes" / "scene_1.tif", ud.scene_geometry(1, (40, 48)),
                       bands=3)  # fmt: skip
    report = check_data(load_data_spec(yaml))
    assert any("different band counts" in p and "3 bands" in p and "4 bands" in p
               for p in report.problems)  # fmt: skip
    with pytest.raises(InputError, match="different band counts"):
        report.raise_problems()


def test_input_whose_band_roles_differ_from_the_model_is_refused(tmp_path, monkeypatch, capsys):
    import dataclasses

    import torch
    from cli_runner import run_cli_captured as cli

    from crossearth.models.presets import get_preset
    from crossearth.models.segmentor import CrossEarth
    from crossearth.weights import save_model

    torch.manual_seed(0)
    cfg = get_preset("vit-tiny-256", 2)
    inference = dataclasses.replace(cfg.inference, mean=(*IMAGENET_MEAN, 50.0),
                                    std=(*IMAGENET_STD, 20.0))  # fmt: skip
    cfg = cfg.replace(backbone=dataclasses.replace(cfg.backbone, in_chans=4), inference=inference,
                      band_indices=(1, 2, 3, 4), band_names=("red", "green", "blue", "nir"))  # fmt: skip
    model = save_model(CrossEarth(cfg), tmp_path / "m.safetensors")
    data = np.full((4, 32, 32), 7, np.uint16)
    swapped = write(tmp_path / "swapped.tif", data, descriptions=["nir", "red", "green", "blue"])
    good = write(tmp_path / "good.tif", data, descriptions=["B04", "B03", "B02", "B08"])
    plain = write(tmp_path / "plain.tif", data)
    code, output = cli(monkeypatch, capsys, "predict", swapped, "--model", model, "-o",
                       tmp_path / "o1", "--quiet")  # fmt: skip
    lines = output.strip().splitlines()
    assert code == 1 and lines[-1].startswith("error:"), output
    assert "band 1 is nir, the model's input 1 is red" in lines[-1] and "Traceback" not in output
    assert not (tmp_path / "o1").exists()
    for ok in (good, plain):  # matching roles, or none recorded: predicted
        code, output = cli(monkeypatch, capsys, "predict", ok, "--model", model, "-o",
                           tmp_path / ok.stem, "--quiet")  # fmt: skip
        assert code == 0, output
    # --bands puts the swapped file's bands in the model's order
    code, output = cli(monkeypatch, capsys, "predict", swapped, "--model", model, "-o",
                       tmp_path / "o2", "--quiet", "--bands", "2,3,4,1")  # fmt: skip
    assert code == 0, output
