"""Small PNG previews of (possibly huge) class maps: colourized classes, or blended over an image.

Everything is read decimated, nearest neighbour, so memory is bounded by `max_size`, not by the
size of the class map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crossearth.errors import InputError
from crossearth.fileio import atomic_path


def decimated_shape(height: int, width: int, max_size: int) -> tuple[int, int]:
    """(h, w) with the long side at most `max_size`, aspect ratio kept; unchanged if smaller.

    Shared with the code that reads the matching decimated RGB, so both line up pixel for pixel.
    """
    if max_size < 1:
        raise InputError(f"preview size must be at least 1 pixel, got {max_size}")
    long_side = max(height, width)
    if long_side <= max_size:
        return height, width
    scale = max_size / long_side
    h = max_size if height == long_side else max(1, round(height * scale))
    w = max_size if width == long_side else max(1, round(width * scale))
    return h, w


def preview_from_class_map(
    class_map: str | Path,
    palette: Sequence[Sequence[int]],
    max_size: int = 2048,
    *,
    nodata: int = 255,
) -> np.ndarray:
    """Class colours as H' x W' x 3 uint8 (shape from `decimated_shape`); nodata pixels black."""
    labels = read_decimated_labels(class_map, max_size)
    return _colours(labels, palette, nodata)


def write_preview(
    class_map: str | Path,
    palette: Sequence[Sequence[int]],
    out_png: str | Path,
    max_size: int = 2048,
    *,
    nodata: int = 255,
) -> Path:
    """Write `preview_from_class_map`'s image as a PNG, atomically; returns its path."""
    out_png = _png_path(out_png)
    rgb = preview_from_class_map(class_map, palette, max_size, nodata=nodata)
    _save_png(rgb, out_png)
    return out_png


def write_overlay(
    rgb: np.ndarray,
    class_map: str | Path,
    palette: Sequence[Sequence[int]],
    out_png: str | Path,
    alpha: float = 0.5,
    max_size: int = 2048,
    *,
    nodata: int = 255,
) -> Path:
    """Blend class colours over `rgb` with opacity `alpha` and write a PNG, atomically.

    `rgb` is the input image already decimated to `decimated_shape` of the class map (H' x W' x
    3 uint8). Nodata pixels show the image unchanged; alpha 1 shows pure class colours.
    """
    out_png = _png_path(out_png)
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"overlay opacity must be between 0 and 1, got {alpha}")
    labels = read_decimated_labels(class_map, max_size)
    rgb = np.asarray(rgb)
    if rgb.shape != (*labels.shape, 3) or rgb.dtype != np.uint8:
        raise InputError(
            f"overlay image must be {labels.shape[0]} x {labels.shape[1]} x 3 uint8 to match the "
            f"class map, got {rgb.shape} {rgb.dtype}"
        )
    colours = _colours(labels, palette, nodata).astype(np.float32)
    blended = (1.0 - alpha) * rgb.astype(np.float32) + alpha * colours
    out = np.where((labels != nodata)[..., None], np.rint(blended).astype(np.uint8), rgb)
    _save_png(out, out_png)
    return out_png


def read_decimated_labels(class_map: str | Path, max_size: int) -> np.ndarray:
    """Band 1 of the class map, nearest-neighbour decimated to `decimated_shape`."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from crossearth.geo.raster import read_nearest

    path = Path(class_map)
    if not path.is_file():
        raise InputError(f"class map not found: {path}")
    try:
        with rasterio.open(path) as src:
            shape = decimated_shape(src.height, src.width, max_size)
            return read_nearest(src, [1], *shape)[0]
    except RasterioIOError as exc:
        raise InputError(f"cannot read class map {path}: {exc}") from None


def _colours(labels: np.ndarray, palette: Sequence[Sequence[int]], nodata: int) -> np.ndarray:
    """Class ids -> RGB via the palette; nodata, and ids without a colour, are black."""
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    lut = np.zeros((max(256, len(colours)), 3), dtype=np.uint8)
    lut[: len(colours)] = colours
    index = labels.astype(np.int64)
    black = (index < 0) | (index >= len(colours)) | (index == nodata)
    return np.where(black[..., None], np.uint8(0), lut[np.where(black, 0, index)])


def _png_path(out_png: str | Path) -> Path:
    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise InputError(f"preview output {out_png} must end in .png")
    return out_png


def _save_png(rgb: np.ndarray, out_png: Path) -> None:
    from PIL import Image

    with atomic_path(out_png) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(tmp, format="PNG")
