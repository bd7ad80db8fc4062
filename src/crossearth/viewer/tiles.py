"""A static XYZ tile pyramid (256-px PNG tiles in Web Mercator) of a class map and its image.

The deepest level is the zoom whose pixel size is closest to the class map's; its tiles are read
16 at a time through a `WarpedVRT` (nearest neighbour) onto the tile grid, so memory does not grow
with the scene. Each coarser level is made from the four tiles
below it (class ids: nearest; image: alpha-weighted mean), down to the level where the scene fits
in one tile. Tiles that would be empty are not written.

Layout: `FOLDER/classes/{z}/{x}/{y}.png` (palette PNG: colour = class palette, index = class id,
255 transparent), `FOLDER/image/{z}/{x}/{y}.png` (RGBA), `FOLDER/lookup/{zmax}/{x}/{y}.js` (class
id and confidence of the deepest level, for the pointer read-out), `FOLDER/crossearth-tiles.json`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossearth.viewer.layers import HALF_WORLD, WEB_MERCATOR, image_reading, mercator_native
from crossearth.viewer.scene import NODATA, Scene

TILE = 256
MARKER = "crossearth-tiles.json"
MAX_ZOOM = 24
CHUNK_TILES = (
    16  # tiles read through the WarpedVRT at once: memory is bounded by this, not by the scene
)


@dataclass(frozen=True)
class Pyramid:
    """What was written: zoom levels, tile ranges of the deepest level, layers present."""

    zmin: int
    zmax: int
    tiles: int
    image: bool

    def to_json(self) -> dict:
        return {"zmin": self.zmin, "zmax": self.zmax, "tiles": self.tiles, "image": self.image}


def native_zoom(resolution_m: float) -> int:
    """The XYZ zoom whose tile pixel size (m, at the equator) is closest to `resolution_m`."""
    z = math.log2(2 * HALF_WORLD / (TILE * resolution_m))
    return int(min(MAX_ZOOM, max(0, round(z))))


def write_pyramid(
    scene: Scene, folder: Path, progress: Callable[[int], None] | None = None
) -> Pyramid:
    """Write the tiles of `scene` into the (existing, empty) `folder`; returns what was written.

    Needs a georeferenced class map. `progress(n)` is called with the number of tiles written
    so far after each row of tiles.
    """
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import Resampling

    from crossearth.geo.raster import open_raster

    palette = _png_palette(scene.palette)
    written = 0
    with open_raster(scene.classes) as src:
        left, top, res, width, height = mercator_native(src)
        zmax = native_zoom(res)
        right, bottom = left + width * res, top - height * res
        tsize = 2 * HALF_WORLD / 2**zmax
        levels = math.ceil(math.log2(max(width, height) * res / tsize)) if width else 0
        zmin = max(0, zmax - max(0, levels))
        tx0 = int((left + HALF_WORLD) // tsize)
        tx1 = max(tx0, math.ceil((right + HALF_WORLD) / tsize) - 1)
        ty0 = int((HALF_WORLD - top) // tsize)
        ty1 = max(ty0, math.ceil((HALF_WORLD - bottom) / tsize) - 1)
        nx = tx1 - tx0 + 1
        from affine import Affine

        grid = dict(
            crs=WEB_MERCATOR,
            transform=Affine(
                tsize / TILE,
                0,
                -HALF_WORLD + tx0 * tsize,
                0,
                -tsize / TILE,
                HALF_WORLD - ty0 * tsize,
            ),
            width=nx * TILE,
            height=(ty1 - ty0 + 1) * TILE,
        )
        with contextlib.ExitStack() as stack:

            def warped(dataset, **options):
                return stack.enter_context(
                    WarpedVRT(
                        dataset, resampling=Resampling.nearest, tolerance=1e-6, **grid, **options
                    )
                )

            classes_vrt = warped(src, nodata=NODATA)
            image_src = _open_image(scene)
            image_vrt = confidence_vrt = None
            if image_src is not None:
                stack.callback(image_src[0].close)
                image_vrt = warped(image_src[0])
            if scene.confidence is not None:
                confidence_vrt = warped(
                    stack.enter_context(open_raster(scene.confidence)), nodata=NODATA
                )
            for row, ty in enumerate(range(ty0, ty1 + 1)):
                for c0 in range(0, nx, CHUNK_TILES):
                    c1 = min(nx, c0 + CHUNK_TILES)
                    window = ((row * TILE, (row + 1) * TILE), (c0 * TILE, c1 * TILE))
                    ids = classes_vrt.read(1, window=window)
                    rgba = confidence = None
                    if image_vrt is not None:
                        rgba = _image_rows(image_vrt, window, ids, *image_src[1:])
                    if confidence_vrt is not None:
                        confidence = confidence_vrt.read(1, window=window)
                    for col in range(c1 - c0):
                        cols, tx = slice(col * TILE, (col + 1) * TILE), tx0 + c0 + col
                        if (ids[:, cols] == NODATA).all():
                            continue
                        _save_classes(folder, zmax, tx, ty, ids[:, cols], palette)
                        _save_lookup(
                            folder, zmax, tx, ty, ids[:, cols],
                            None if confidence is None else confidence[:, cols],
                        )  # fmt: skip
                        written += 1
                        if rgba is not None:
                            _save_rgba(folder, zmax, tx, ty, rgba[:, cols])
                if progress is not None:
                    progress(written)
    has_image = image_src is not None
    ranges = (tx0, tx1, ty0, ty1)
    for z in range(zmax - 1, zmin - 1, -1):
        ranges = (ranges[0] // 2, ranges[1] // 2, ranges[2] // 2, ranges[3] // 2)
        written += _coarser_level(folder, z, ranges, palette, has_image)
        if progress is not None:
            progress(written)
    pyramid = Pyramid(zmin=zmin, zmax=zmax, tiles=written, image=has_image)
    (folder / MARKER).write_text(json.dumps(pyramid.to_json()))
    return pyramid


def _open_image(scene: Scene):
    """(open dataset, bands, Scaling, the bands' value transform) of the scene's input image,
    or None."""
    from crossearth.geo.raster import open_raster
    from crossearth.geo.scaling import value_transform

    reading = image_reading(scene)
    if scene.image is None or reading is None:
        return None
    bands, scaling = reading
    ds = open_raster(scene.image)
    if ds.crs is None or max(bands) > ds.count:
        scene.notes.append(f"{scene.image.name} does not match its summary: no image tiles")
        ds.close()
        return None
    return ds, bands, scaling, value_transform(ds, bands)


def _image_rows(vrt, window, ids: np.ndarray, bands: list[int], scaling, values=None) -> np.ndarray:
    from crossearth.geo.scaling import unscale

    pixels = np.moveaxis(unscale(vrt.read(bands, window=window), values), 0, -1)
    if np.issubdtype(pixels.dtype, np.floating):
        pixels = np.nan_to_num(pixels)
    rgb = scaling.apply(pixels)
    alpha = np.where(ids != NODATA, 255, 0).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def _coarser_level(
    folder: Path, z: int, ranges: tuple[int, int, int, int], palette: list[int], image: bool
) -> int:
    """Make level z from level z + 1; returns the number of tiles written."""
    from PIL import Image

    written = 0
    tx0, tx1, ty0, ty1 = ranges
    for ty in range(ty0, ty1 + 1):
        for tx in range(tx0, tx1 + 1):
            ids = np.full((2 * TILE, 2 * TILE), NODATA, dtype=np.uint8)
            rgba = np.zeros((2 * TILE, 2 * TILE, 4), dtype=np.uint8)
            found = False
            for dy in (0, 1):
                for dx in (0, 1):
                    child = _tile_path(folder, "classes", z + 1, 2 * tx + dx, 2 * ty + dy)
                    if not child.is_file():
                        continue
                    found = True
                    rows = slice(dy * TILE, (dy + 1) * TILE)
                    cols = slice(dx * TILE, (dx + 1) * TILE)
                    with Image.open(child) as im:
                        ids[rows, cols] = np.asarray(im)
                    child_image = _tile_path(folder, "image", z + 1, 2 * tx + dx, 2 * ty + dy)
                    if image and child_image.is_file():
                        with Image.open(child_image) as im:
                            rgba[rows, cols] = np.asarray(im.convert("RGBA"))
            if not found:
                continue
            tile = ids[::2, ::2]
            if (tile == NODATA).all():
                continue
            _save_classes(folder, z, tx, ty, tile, palette)
            written += 1
            if image:
                _save_rgba(folder, z, tx, ty, _mean_2x2(rgba))
    return written


def _mean_2x2(rgba: np.ndarray) -> np.ndarray:
    """Halve an RGBA image: colour averaged over the opaque pixels of each 2 x 2 block."""
    h, w = rgba.shape[0] // 2, rgba.shape[1] // 2
    blocks = rgba.reshape(h, 2, w, 2, 4).astype(np.float64)
    alpha = blocks[..., 3]
    weight = alpha.sum(axis=(1, 3))
    rgb = (blocks[..., :3] * alpha[..., None]).sum(axis=(1, 3)) / np.maximum(weight, 1)[..., None]
    out = np.empty((h, w, 4), dtype=np.uint8)
    out[..., :3] = np.rint(rgb)
    out[..., 3] = np.rint(weight / 4)
    return out


def _png_palette(palette: list[tuple[int, int, int]]) -> list[int]:
    flat = [0] * (256 * 3)
    for i, rgb in enumerate(palette[:NODATA]):
        flat[3 * i : 3 * i + 3] = [int(v) for v in rgb]
    return flat


def _tile_path(folder: Path, layer: str, z: int, x: int, y: int) -> Path:
    return folder / layer / str(z) / str(x) / f"{y}.png"


def _save_classes(
    folder: Path, z: int, x: int, y: int, ids: np.ndarray, palette: list[int]
) -> None:
    from PIL import Image

    path = _tile_path(folder, "classes", z, x, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.ascontiguousarray(ids))  # mode L; putpalette makes it P, same indices
    im.putpalette(palette)
    transparency = bytes([255] * NODATA + [0])  # only index 255 (nodata) is transparent
    im.save(path, format="PNG", transparency=transparency)


def _save_lookup(
    folder: Path, z: int, x: int, y: int, ids: np.ndarray, confidence: np.ndarray | None
) -> None:
    """The class id (red) and confidence (green, 255 unknown) of every pixel of a deepest-level
    tile, as a script that hands a PNG data URI to the page: pages opened from disk may run
    scripts from the folder beside them but may not read the pixels of images from it."""
    from PIL import Image

    if confidence is None:
        confidence = np.full_like(ids, NODATA)
    rgb = np.stack([ids, confidence, np.zeros_like(ids)], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    path = folder / "lookup" / str(z) / str(x) / f"{y}.js"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'crossearthLookup("{z}/{x}/{y}","{uri}");\n')


def _save_rgba(folder: Path, z: int, x: int, y: int, rgba: np.ndarray) -> None:
    from PIL import Image

    if not rgba[..., 3].any():
        return
    path = _tile_path(folder, "image", z, x, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgba)).save(path, format="PNG")
