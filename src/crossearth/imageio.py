"""Read images (PNG, JPEG, TIFF/GeoTIFF) into model input and write class maps atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError
from crossearth.fileio import atomic_path

TIFF_SUFFIXES = {".tif", ".tiff"}
PIL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass
class LoadedImage:
    """Pixels as H x W x 3 uint8 and, for rasters, the rasterio profile (CRS, transform...)."""

    pixels: np.ndarray
    profile: dict[str, Any] | None = None


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """'4,1,2' -> (4, 1, 2): 1-based band numbers, the GDAL convention."""
    if text is None or text == "":
        return None
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise InputError(
            f"--bands must be comma-separated band numbers like 4,1,2, got {text!r}"
        ) from None
    if len(bands) != 3 or min(bands) < 1:
        raise InputError(f"--bands needs three 1-based band numbers, got {text!r}")
    return bands


def read_image(path: str | Path, bands: Sequence[int] | None = None) -> LoadedImage:
    """Read an image as H x W x 3 uint8; `bands` picks 3 of its bands (1-based)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input image not found: {path}")
    if path.suffix.lower() in TIFF_SUFFIXES:
        array, profile = _read_raster(path)
    else:
        array, profile = _read_pil(path), None
    return LoadedImage(_select_bands(array, bands, path), profile)


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("P", "PA"):
                img = img.convert(
                    "RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB"
                )
            if img.mode == "I;16":
                raise InputError(f"{path} is a 16-bit image; convert it to 8 bits per band first")
            array = np.asarray(img)
    except UnidentifiedImageError:
        raise InputError(
            f"{path} is not an image file that can be read (PNG, JPEG or TIFF)"
        ) from None
    except OSError as exc:
        raise InputError(f"{path} could not be read as an image: {exc}") from None
    return array[..., None] if array.ndim == 2 else array


def _read_raster(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            array = src.read()
            profile = dict(src.profile)
    except RasterioIOError as exc:
        raise InputError(f"{path} could not be read as a raster: {exc}") from None
    return np.moveaxis(array, 0, -1), profile


def _select_bands(array: np.ndarray, bands: Sequence[int] | None, path: Path) -> np.ndarray:
    chosen = check_bands(array.shape[-1], str(array.dtype), bands, path)
    return np.ascontiguousarray(array[..., [b - 1 for b in chosen]])


def check_bands(count: int, dtype: str, bands: Sequence[int] | None, path: Path) -> tuple[int, ...]:
    """The three 1-based bands to use, or an InputError saying what is wrong with the image."""
    if bands is None:
        if count < 3:
            raise InputError(
                f"{path} has {count} band(s); the model needs 3 (RGB or NIR-R-G). "
                "Give a 3-band image, or pick bands with --bands"
            )
        if count > 4 or (count == 4 and path.suffix.lower() in TIFF_SUFFIXES):
            raise InputError(
                f"{path} has {count} bands; say which three the model gets with --bands "
                "(1-based, e.g. --bands 1,2,3 for R,G,B)"
            )
        bands = (1, 2, 3)  # RGBA PNG: drop alpha
    if max(bands) > count:
        raise InputError(
            f"--bands {','.join(map(str, bands))} asks for band {max(bands)}, but {path} has {count}"
        )
    if dtype != "uint8":
        raise InputError(
            f"{path} has {dtype} pixels; the model expects 8-bit (0-255) imagery. Rescale it to uint8 first"
        )
    return tuple(bands)


def probe_image(path: str | Path, bands: Sequence[int] | None = None) -> tuple[int, int]:
    """Check an image without reading its pixels; returns (height, width) or raises InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input image not found: {path}")
    if path.suffix.lower() in TIFF_SUFFIXES:
        import rasterio
        from rasterio.errors import RasterioIOError

        try:
            with rasterio.open(path) as src:
                size, count, dtype = (src.height, src.width), src.count, src.dtypes[0]
        except RasterioIOError as exc:
            raise InputError(f"{path} could not be read as a raster: {exc}") from None
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                size, count = (img.height, img.width), len(img.getbands())
                dtype = (
                    "uint8"
                    if img.mode in ("L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK")
                    else img.mode
                )
                if img.mode == "P":
                    count = 3
        except UnidentifiedImageError:
            raise InputError(
                f"{path} is not an image file that can be read (PNG, JPEG or TIFF)"
            ) from None
        except OSError as exc:
            raise InputError(f"{path} could not be read as an image: {exc}") from None
    check_bands(count, dtype, bands, path)
    return size


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
