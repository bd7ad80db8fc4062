"""Generated user data sets in the label forms users have (tests only).

A scene is a UTM image (EPSG:32633, 2 m pixels) of three land covers with distinct colours: water
(blue) in a disc, forest (green) in a band, bare soil (tan) elsewhere, plus noise. The class of a
pixel is a function of its map coordinates (`class_at`), so every label form can be written from
it and checked against it independently.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

CLASSES = ("water", "forest", "bare")
PALETTE = ((30, 90, 200), (20, 130, 40), (200, 180, 140))
UTM = CRS.from_epsg(32633)
GSD = 2.0


def scene_geometry(index: int, size: tuple[int, int] = (160, 192)) -> dict:
    """Origin, size and the shapes of scene `index` (all scenes differ, deterministically)."""
    h, w = size
    x0, y0 = 500_000.0 + 2_000 * index, 5_500_000.0 - 1_000 * index
    rng = np.random.default_rng(100 + index)
    cx = x0 + GSD * w * rng.uniform(0.25, 0.75)
    cy = y0 - GSD * h * rng.uniform(0.25, 0.75)
    radius = GSD * min(h, w) * rng.uniform(0.18, 0.28)
    band_x = x0 + GSD * w * rng.uniform(0.05, 0.3)
    band_w = GSD * w * 0.25
    return {"x0": x0, "y0": y0, "h": h, "w": w, "cx": cx, "cy": cy, "r": radius,
            "bx": band_x, "bw": band_w}  # fmt: skip


def class_at(geom: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Class id at map coordinates (metres, EPSG:32633): the disc wins over the band."""
    out = np.full(np.broadcast(x, y).shape, 2, np.uint8)
    out[(x >= geom["bx"]) & (x < geom["bx"] + geom["bw"])] = 1
    out[(x - geom["cx"]) ** 2 + (y - geom["cy"]) ** 2 <= geom["r"] ** 2] = 0
    return out


def pixel_centres(geom: dict) -> tuple[np.ndarray, np.ndarray]:
    cols = np.arange(geom["w"]) + 0.5
    rows = np.arange(geom["h"]) + 0.5
    return np.meshgrid(geom["x0"] + GSD * cols, geom["y0"] - GSD * rows)


def truth(geom: dict) -> np.ndarray:
    """Class ids on the image grid by pixel centres (the independent reference)."""
    return class_at(geom, *pixel_centres(geom))


def write_image(path: Path, geom: dict, *, bands: int = 3, dtype: str = "uint8",
                nodata_cols: int = 0, seed: int = 0) -> Path:  # fmt: skip
    """An image whose colours follow the classes; optional NIR band, uint16, nodata columns."""
    labels = truth(geom)
    rng = np.random.default_rng(seed)
    rgb = np.array(PALETTE, np.float64)[labels]  # h, w, 3
    rgb += rng.normal(0, 12, rgb.shape)
    data = [rgb[..., 0], rgb[..., 1], rgb[..., 2]]
    if bands == 4:
        data.append(np.where(labels == 1, 220, 60) + rng.normal(0, 10, labels.shape))
    arr = np.clip(np.stack(data), 0, 255)
    nodata = None
    if dtype == "uint16":
        arr = arr * 40 + 100
        nodata = 0
    arr = arr.astype(dtype)
    if nodata_cols:
        nodata = 0 if nodata is None else nodata
        arr[:, :, :nodata_cols] = nodata
    profile = dict(driver="GTiff", width=geom["w"], height=geom["h"], count=len(arr), dtype=dtype,
                   crs=UTM, transform=from_origin(geom["x0"], geom["y0"], GSD, GSD), nodata=nodata)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path


def write_id_mask(path: Path, geom: dict, *, ignore_rows: int = 0) -> Path:
    labels = truth(geom)
    labels[:ignore_rows] = 255
    if path.suffix.lower() == ".png":
        from PIL import Image

        Image.fromarray(labels).save(path)
    else:
        profile = dict(driver="GTiff", width=geom["w"], height=geom["h"], count=1, dtype="uint8",
                       crs=UTM, transform=from_origin(geom["x0"], geom["y0"], GSD, GSD))  # fmt: skip
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(labels[None])
    return path


def write_colour_mask(path: Path, geom: dict) -> Path:
    from PIL import Image

    Image.fromarray(np.array(PALETTE, np.uint8)[truth(geom)]).save(path)
    return path


def write_label_raster_other_grid(
    path: Path, geom: dict, crs: str = "EPSG:3857", res: float = 3.0
) -> Path:
    """The class map in another CRS and resolution, covering the scene with a margin."""
    from pyproj import Transformer

    fwd = Transformer.from_crs(UTM, crs, always_xy=True)
    inv = Transformer.from_crs(crs, UTM, always_xy=True)
    xs, ys = fwd.transform(
        [geom["x0"] - 20, geom["x0"] + GSD * geom["w"] + 20],
        [geom["y0"] + 20, geom["y0"] - GSD * geom["h"] - 20],
    )
    left, right = min(xs), max(xs)
    bottom, top = min(ys), max(ys)
    w, h = int(np.ceil((right - left) / res)), int(np.ceil((top - bottom) / res))
    cols, rows = np.meshgrid(left + res * (np.arange(w) + 0.5), top - res * (np.arange(h) + 0.5))
    ux, uy = inv.transform(cols, rows)
    labels = class_at(geom, np.asarray(ux), np.asarray(uy))
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype="uint8", crs=crs,
                   transform=from_origin(left, top, res, res))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels[None])
    return path


def write_polygons(path: Path, geoms: list[dict], *, field: str = "landcover",
                   names: bool = True, crs: str = "EPSG:4326", extra: list[tuple] = ()) -> Path:  # fmt: skip
    """Disc, band and the rest of each scene as polygons in `crs` (default EPSG:4326).

    Bare soil covers the scene only up to its last 10 rows, so some pixels are under no polygon.
    """
    import pyogrio.raw
    import shapely
    from pyproj import Transformer

    tr = Transformer.from_crs(UTM, crs, always_xy=True)
    polys, values = [], []
    for g in geoms:
        scene = shapely.box(g["x0"], g["y0"] - GSD * (g["h"] - 10), g["x0"] + GSD * g["w"], g["y0"])
        disc = shapely.Point(g["cx"], g["cy"]).buffer(g["r"], quad_segs=64)
        band = shapely.box(g["bx"], g["y0"] - GSD * g["h"] - 50, g["bx"] + g["bw"], g["y0"] + 50)
        band, disc = shapely.intersection(band, scene), shapely.intersection(disc, scene)
        for shape, cls in ((scene, 2), (band, 1), (disc, 0)):  # later features win
            shape = shapely.segmentize(
                shape, 4.0
            )  # dense vertices: straight in 4326 ~ straight in UTM
            polys.append(
                shapely.transform(
                    shape, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
                )
            )
            values.append(CLASSES[cls] if names else cls)
    for shape, value in extra:
        polys.append(shape)
        values.append(value)
    values_arr = np.array(values, dtype=object if names else np.int64)
    pyogrio.raw.write(path, shapely.to_wkb(np.array(polys, dtype=object)), geometry_type="MultiPolygon",
                  field_data=[values_arr], fields=[field], crs=crs, promote_to_multi=True)  # fmt: skip
    return path


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
