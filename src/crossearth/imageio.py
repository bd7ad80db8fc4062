"""Small in-memory image helpers: `--bands` parsing, class maps as palette PNG or GeoTIFF, colours.

Large rasters are read and written by `crossearth.geo` (windowed, streaming).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError
from crossearth.fileio import atomic_path

TIFF_SUFFIXES = {".tif", ".tiff"}


def parse_bands(text: str | None) -> tuple[int, ...] | tuple[str, ...] | None:
    """'4,1,2' -> (4, 1, 2): 1-based band numbers, the GDAL convention; 'red,green,blue' ->
    ('red', 'green', 'blue'): band names, matched to the band descriptions (STAC common names).
    Any count >= 1 (three for RGB/IRRG models, N for a model of N bands: checked against the
    model when the file is opened).

    Raises:
        InputError: an empty item, numbers mixed with names, or a band number below 1.
    """
    if text is None or text == "":
        return None
    names = tuple(b.strip() for b in text.split(","))
    if all(n and not n.isdigit() for n in names):
        return names
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise InputError(
            f"--bands must be band numbers like 4,1,2 or band names like red,green,blue, "
            f"got {text!r}"
        ) from None
    if min(bands) < 1:
        raise InputError(f"--bands needs 1-based band numbers, got {text!r}")
    return bands


def write_label_map(
    path: str | Path,
    labels: np.ndarray,
    palette: Sequence[Sequence[int]],
    profile: dict[str, Any] | None = None,
) -> Path:
    """Write class ids as a palette PNG, or as a GeoTIFF (input georeferencing kept) for .tif."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TIFF_SUFFIXES | {".png"}:
        raise InputError(f"output {path} must end in .png or .tif")
    if labels.max(initial=0) > 255:
        raise InputError("more than 256 classes cannot be written as an 8-bit class map")
    with atomic_path(path) as tmp:
        if suffix == ".png":
            _write_png(tmp, labels.astype(np.uint8), palette)
        else:
            _write_tiff(tmp, labels.astype(np.uint8), palette, profile)
    return path


def _write_png(path: Path, labels: np.ndarray, palette: Sequence[Sequence[int]]) -> None:
    from PIL import Image

    img = Image.fromarray(labels, mode="P")
    flat = [int(c) for colour in palette for c in colour]
    img.putpalette(flat + [0] * (768 - len(flat)))
    img.save(path, format="PNG")


def _write_tiff(
    path: Path, labels: np.ndarray, palette: Sequence[Sequence[int]], profile: dict[str, Any] | None
) -> None:
    import rasterio

    out = {
        "driver": "GTiff",
        "height": labels.shape[0],
        "width": labels.shape[1],
        "count": 1,
        "dtype": "uint8",
        "compress": "deflate",
    }
    if profile:
        for key in ("crs", "transform"):
            if profile.get(key) is not None:
                out[key] = profile[key]
    with rasterio.open(path, "w", **out) as dst:
        dst.write(labels, 1)
        dst.write_colormap(
            1, {i: tuple(int(c) for c in colour) for i, colour in enumerate(palette)}
        )


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """Class ids -> H x W x 3 RGB preview."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return lut[labels]
