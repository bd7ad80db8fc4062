"""A 4-band uint16 data set (R, G, B, NIR) whose classes "grass" and "turf" differ only in NIR.

Built on `user_data`'s scene geometry: water in a disc (blue), grass in a band, turf elsewhere;
grass and turf share one colour in R, G and B, and only the near-infrared band tells them apart
(vegetation is bright in NIR, artificial turf is not). Labels are polygons (GeoPackage).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from user_data import GSD, UTM, scene_geometry, truth, write_polygons

CLASSES = ("water", "grass", "turf")
RGB = ((30, 90, 200), (60, 140, 50), (60, 140, 50))  # grass and turf: the same colour
NIR = (20, 220, 60)


def write_nir_image(path: Path, geom: dict, seed: int = 0, bands: int = 4) -> Path:
    """uint16 image (values 100 + 40 x 8-bit level) of `bands` bands: R, G, B, NIR (the first
    `bands` of them)."""
    labels = truth(geom)
    rng = np.random.default_rng(seed)
    rgb = np.array(RGB, np.float64)[labels]
    nir = np.array(NIR, np.float64)[labels]
    data = np.concatenate([rgb, nir[..., None]], axis=-1)[..., :bands]
    data = np.clip(data + rng.normal(0, 10, data.shape), 0, 255) * 40 + 100
    arr = np.moveaxis(data, -1, 0).astype("uint16")
    profile = dict(driver="GTiff", width=geom["w"], height=geom["h"], count=bands, dtype="uint16",
                   crs=UTM, transform=from_origin(geom["x0"], geom["y0"], GSD, GSD), nodata=0)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path


def write_nir_dataset(root: Path, bands: list[int] | str, n: int = 6, size=(96, 112),
                      image_bands: int = 4) -> Path:  # fmt: skip
    """Scenes 0..n-1 with polygon labels and a held-out scene 7; returns the YAML's path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scenes").mkdir(exist_ok=True)
    geoms = [scene_geometry(i, size) for i in range(n)]
    for i, g in enumerate(geoms):
        write_nir_image(root / "scenes" / f"scene_{i}.tif", g, seed=i, bands=image_bands)
    write_polygons(root / "labels.gpkg", geoms, names=False)
    write_nir_image(root / "heldout.tif", scene_geometry(7, size), seed=7, bands=image_bands)
    text = (
        f"classes: [{', '.join(CLASSES)}]\nbands: {bands}\ntrain:\n  images: scenes/*.tif\n"
        "  labels: labels.gpkg\n  label_field: landcover\n"
    )
    (root / "data.yaml").write_text(text)
    return root / "data.yaml"
