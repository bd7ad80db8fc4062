"""The viewer's rasters: the class map, confidence and image on the map's grid.

Georeferenced scenes are shown in Web Mercator (EPSG:3857, the grid of web maps): the class map
(nearest neighbour), the confidence and the input image are reprojected onto a north-up Mercator
grid with `rasterio.warp`. Scenes without a CRS are shown in their own pixel coordinates.

`lookup_layers` makes one small grid (long side at most `max_size`) holding the class id and
confidence of every cell (drawn by the page, and read under the pointer) and the image. Memory is
bounded by `max_size`: the files are read decimated, never whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crossearth.viewer.scene import NODATA, Scene

WEB_MERCATOR = "EPSG:3857"
HALF_WORLD = 20037508.342789244  # half the Web Mercator world's width, metres


@dataclass(frozen=True)
class Grid:
    """A north-up grid: column c, row r covers x0 + c*dx .. x0 + (c+1)*dx, y0 - r*dy .. downwards.

    Units are Web Mercator metres (`mercator`), else pixels of the class map with y = -row.
    """

    width: int
    height: int
    x0: float
    y0: float
    dx: float
    dy: float
    mercator: bool

    def latlng_bounds(self) -> list[list[float]]:
        """[[south, west], [north, east]]: degrees for Mercator, (-rows, columns) in pixel mode."""
        x1, y1 = self.x0 + self.width * self.dx, self.y0 - self.height * self.dy
        if not self.mercator:
            return [[y1, self.x0], [self.y0, x1]]
        from rasterio.warp import transform

        lons, lats = transform(WEB_MERCATOR, "EPSG:4326", [self.x0, x1], [y1, self.y0])
        return [[lats[0], lons[0]], [lats[1], lons[1]]]

    def to_json(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "x0": self.x0,
            "y0": self.y0,
            "dx": self.dx,
            "dy": self.dy,
        }


@dataclass
class LookupLayers:
    """H x W arrays on `grid`: class ids (255 nodata), confidence (255 unknown), RGBA image."""

    grid: Grid
    classes: np.ndarray
    confidence: np.ndarray
    image: np.ndarray | None


def mercator_native(src) -> tuple[float, float, float, int, int]:
    """(left, top, resolution m, width, height) of the class map's footprint in Web Mercator."""
    from rasterio.warp import calculate_default_transform

    transform, width, height = calculate_default_transform(
        src.crs, WEB_MERCATOR, src.width, src.height, *src.bounds
    )
    return transform.c, transform.f, transform.a, width, height


def lookup_layers(scene: Scene, max_size: int = 2048) -> LookupLayers:
    """The class map (and confidence, image) on a grid whose long side is at most `max_size`."""
    from affine import Affine

    from crossearth.geo.raster import open_raster, read_nearest
    from crossearth.geo.render import decimated_shape

    with open_raster(scene.classes) as src:
        h, w = decimated_shape(src.height, src.width, max_size)
        labels = read_nearest(src, [1], h, w)[0]
        src_transform = src.transform @ Affine.scale(src.width / w, src.height / h)
        src_crs = src.crs
        if src_crs is not None:
            left, top, res, width, height = mercator_native(src)
            factor = max(1.0, max(width, height) / max_size)
            grid = Grid(
                width=max(1, math.ceil(width / factor)),
                height=max(1, math.ceil(height / factor)),
                x0=left,
                y0=top,
                dx=res * factor,
                dy=res * factor,
                mercator=True,
            )
        else:
            grid = Grid(w, h, 0.0, 0.0, src.width / w, src.height / h, mercator=False)
    confidence = np.full((h, w), NODATA, dtype=np.uint8)
    if scene.confidence is not None:
        with open_raster(scene.confidence) as src:
            confidence = read_nearest(src, [1], h, w)[0]
    image = _image_rgba(scene, h, w, labels)
    if grid.mercator:
        labels = _warp(labels, src_transform, src_crs, grid)
        confidence = _warp(confidence, src_transform, src_crs, grid)
        if image is not None:
            image = np.stack(
                [_warp(image[..., b], src_transform, src_crs, grid, 0) for b in range(4)], -1
            )
    return LookupLayers(grid, labels, confidence, image)


def _image_rgba(scene: Scene, h: int, w: int, labels: np.ndarray) -> np.ndarray | None:
    """The input image as predict read it (bands, scaling), decimated; transparent where nodata."""
    if scene.image is None:
        return None
    rgb = read_image(scene, h, w)
    if rgb is None:
        return None
    alpha = np.where(labels != NODATA, 255, 0).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def image_reading(scene: Scene) -> tuple[list[int], object] | None:
    """(1-based bands, Scaling) that `predict` used for the scene's input, from its summary."""
    from crossearth.geo.scaling import Scaling

    summary = scene.summary or {}
    bands = summary.get("bands")
    scaling = summary.get("scaling") or {}
    if not bands or "low" not in scaling or "high" not in scaling:
        return None
    try:
        return [int(b) for b in bands], Scaling(tuple(scaling["low"]), tuple(scaling["high"]))
    except (TypeError, ValueError):
        return None


def read_image(scene: Scene, h: int, w: int) -> np.ndarray | None:
    """H x W x 3 uint8 of the input, nearest-decimated; None when it cannot be matched."""
    from crossearth.geo.raster import open_raster, read_nearest
    from crossearth.geo.scaling import unscale, value_transform

    reading = image_reading(scene)
    if reading is None or scene.image is None:
        return None
    bands, scaling = reading
    with open_raster(scene.image) as src:
        if max(bands) > src.count:
            scene.notes.append(f"{scene.image} has fewer bands than its summary says: no image")
            return None
        values = value_transform(src, bands)  # as predict read them: x * scale + offset
        pixels = np.moveaxis(unscale(read_nearest(src, bands, h, w), values), 0, -1)
    if np.issubdtype(pixels.dtype, np.floating):
        pixels = np.nan_to_num(pixels)
    return scaling.apply(pixels)


def _warp(band: np.ndarray, src_transform, src_crs, grid: Grid, nodata: int = NODATA) -> np.ndarray:
    """Nearest-neighbour reprojection of one uint8 band onto the Mercator grid."""
    from affine import Affine
    from rasterio.warp import Resampling, reproject

    out = np.full((grid.height, grid.width), nodata, dtype=np.uint8)
    reproject(
        source=np.ascontiguousarray(band),
        destination=out,
        src_transform=src_transform,
        src_crs=src_crs,
        src_nodata=nodata,
        dst_transform=Affine(grid.dx, 0.0, grid.x0, 0.0, -grid.dy, grid.y0),
        dst_crs=WEB_MERCATOR,
        dst_nodata=nodata,
        resampling=Resampling.nearest,
    )
    return out
