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
