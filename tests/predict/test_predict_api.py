"""`predict_raster` from Python behaves like the CLI: it creates its output folder, and the
summary records the device and precision that ran."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rasterio.transform import from_origin

import crossearth


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_predict_raster_creates_the_folder_and_records_precision(tmp_path, geotiff, precision):
    scene = geotiff(
        tmp_path / "scene.tif",
        np.random.default_rng(0).integers(0, 255, (3, 40, 56), dtype=np.uint8),
        crs="EPSG:32633",
        transform=from_origin(500_000, 5_500_000, 1, 1),
    )
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    out = tmp_path / "out"
    assert not out.exists()
    summary = crossearth.predict_raster(model, scene, out)
    assert (out / "scene_classes.tif").is_file()
    assert summary["model"]["precision"] == precision and summary["model"]["device"] == "cpu"
    stored = json.loads((out / "scene_summary.json").read_text())
    assert stored["model"]["precision"] == precision
    with pytest.raises(crossearth.InputError):
        crossearth.predict_raster(model, scene, tmp_path / "missing" / "out")


def test_nodata_override_as_gdal_tools_take_it(tmp_path, geotiff):
    """A NEON-like RGB file declaring nodata 255: saturated pixels are holes by default, pixels
    with `nodata="none"`, and `nodata=0` makes black pixels the holes instead."""
    import rasterio

    data = np.random.default_rng(3).integers(20, 200, (3, 48, 64), dtype=np.uint8)
    data[:, 10:20, 10:30] = 255  # saturated sand, 200 px
    data[:, 30:35, 40:60] = 0  # black, 100 px
    scene = geotiff(tmp_path / "neon.tif", data, crs="EPSG:32633",
                    transform=from_origin(500_000, 5_500_000, 1, 1), nodata=255)  # fmt: skip
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    expected = {
        None: (slice(10, 20), slice(10, 30), 200),
        "none": None,
        "0": (slice(30, 35), slice(40, 60), 100),
    }
    for override, hole in expected.items():
        out = tmp_path / f"out_{override}"
        options = crossearth.PredictOptions(nodata=override, preview=False, overlay=False)
        summary = crossearth.predict_raster(model, scene, out, options)
        with rasterio.open(out / "neon_classes.tif") as src:
            labels = src.read(1)
        if hole is None:
            assert summary["nodata_pixels"] == 0 and (labels != 255).all()
        else:
            rows, cols, count = hole
            assert summary["nodata_pixels"] == count
            assert (labels[rows, cols] == 255).all() and (labels == 255).sum() == count
    with pytest.raises(crossearth.InputError, match="--nodata"):
        crossearth.PredictOptions(nodata="zero")
