"""Fit an Earth style distribution on a folder of images (Million-AID in the paper).

Every image is read as 3 bands in 0..255 (GeoTIFF: the first three bands, 8-bit data as is, other
pixel types stretched between their per-band 2nd and 98th percentiles, nodata and NaN left out;
single-band images are repeated to grey RGB), resized so that its shorter side is `size`
(bilinear with antialiasing; large rasters are decimated by GDAL on read) and centre-cropped to
`size x size`, like the `get_embedding_mean_and_covariance` script that made the published
statistics (which resized to 256). Embeddings are computed in batches and their mean and unbiased
covariance are accumulated in float64 while streaming, so memory does not grow with the folder.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from crossearth.errors import InputError
from crossearth.train.style.base import Stylizer, stylizer_name
from crossearth.train.style.earth import EarthStyle, RunningMoments
from crossearth.wording import count

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}
TIFF_SUFFIXES = {".tif", ".tiff"}


def find_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """Image files under `folder` (recursive, sorted). With `limit`, that many spread evenly over
    the sorted list, so that class sub-folders (as in Million-AID) are all represented."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"image folder not found: {folder}")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise InputError(
            f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, recursively)"
        )
    if limit is not None:
        if limit < 1:
            raise InputError(f"limit must be at least 1, got {limit}")
        if limit < len(files):
            files = [files[i * len(files) // limit] for i in range(limit)]
    return files


def read_style_image(path: str | Path, size: int = 256) -> Tensor:
    """A `3 x size x size` float32 tensor in 0..255 (see the module docstring)."""
    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        array = _read_raster(path, size)
    else:
        array = _read_pil(path, size)
    return _resize_crop(torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)), size)


def fit_earth_style(
    folder: str | Path,
    stylizer: Stylizer,
    *,
    size: int = 256,
    limit: int | None = None,
    progress: bool = True,
    batch_size: int = 16,
    workers: int = 4,
) -> EarthStyle:
    """Mean and covariance of `stylizer`'s embeddings of the images in `folder` (recursive).

    Unreadable and blank (constant, e.g. nodata) images are skipped and counted in a warning; an
    InputError is raised when the folder has no images or fewer than two could be used.
    """
    if size < 8:
        raise InputError(f"size must be at least 8 px, got {size}")
    files = find_images(folder, limit)
    device = getattr(stylizer, "device", torch.device("cpu"))
    moments = RunningMoments()
    skipped: list[str] = []
    batch: list[Tensor] = []

    def flush() -> None:
        if batch:
            images = torch.stack(batch).to(device)
            moments.update(stylizer.embed(images))
            batch.clear()

    with _progress(progress, len(files)) as advance:
        for path, image, error in _read_all(files, size, workers):
            if error is not None:
                skipped.append(f"{path}: {error}")
            else:
                batch.append(image)
                if len(batch) == batch_size:
                    flush()
            advance()
        flush()
    if skipped:
        examples = "; ".join(skipped[:3])
        log.warning("skipped %d of %d unreadable images (%s)", len(skipped), len(files), examples)
    if moments.count < 2:
        raise InputError(
            f"only {moments.count} of {count(len(files), 'image')} in {folder} could be read; "
            "a style distribution needs at least 2"
            + (f" (first problem: {skipped[0]})" if skipped else "")
        )
    return EarthStyle(
        moments.mean, moments.covariance(), count=moments.count, stylizer=stylizer_name(stylizer)
    )


def _read_all(
    files: list[Path], size: int, workers: int
) -> Iterator[tuple[Path, Tensor | None, str | None]]:
    """Read files in order with a few threads and a bounded read-ahead."""

    def read(path: Path) -> tuple[Path, Tensor | None, str | None]:
        try:
            image = read_style_image(path, size)
            if float(image.amax() - image.amin()) < 1:  # nodata tiles have no style
                return path, None, "blank image (all pixels equal)"
            return path, image, None
        except (InputError, OSError, ValueError, RuntimeError) as exc:
            return path, None, str(exc)
        except Exception as exc:  # any decoder failure (PIL, GDAL) skips the file
            return path, None, f"{type(exc).__name__}: {exc}"

    if workers <= 1:
        yield from map(read, files)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        it = iter(files)
        for path in it:
            pending.append(pool.submit(read, path))
            if len(pending) >= 4 * workers:
                break
        while pending:
            yield pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(read, nxt))


class _progress:
    """A rich progress bar (stderr) or nothing; the context value advances it by one."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.bar = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from crossearth.progress import time_left_column

        self.bar = Progress(
            TextColumn("embedding images"),
            BarColumn(),
            MofNCompleteColumn(),
            time_left_column(),
            console=Console(stderr=True),
        )
        self.bar.start()
        task = self.bar.add_task("embed", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _read_pil(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.format == "JPEG":  # decode at a reduced scale when the image is much larger
                scale = size / min(img.size)
                img.draft(
                    "RGB", (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
                )
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                array = _stretch(np.asarray(img, dtype=np.float64)[None], None)
                return np.repeat(array, 3, axis=0)
            array = np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:
        raise InputError(f"{path} is not a readable image") from None
    return np.moveaxis(array, -1, 0)


def _read_raster(path: Path, size: int) -> np.ndarray:
    """3 x h x w float32 in 0..255: bands and scaling by the rule `predict` and training use
    (`RasterSource`: band descriptions/colour interpretation, alpha as mask, `--scale auto`);
    1-band files repeat their band. Read at twice `size` (nearest, full-resolution rows) so that
    the antialiased resize that follows sees every pixel's neighbourhood."""
    from crossearth.advice import FIXED
    from crossearth.geo.raster import RasterSource, open_raster

    with open_raster(path) as ds:
        if ds.count == 2:
            raise InputError(f"{path} has 2 bands; 1 or at least 3 are needed")
        bands = (1, 1, 1) if ds.count == 1 else None
    with RasterSource.open(path, "RGB", bands, "auto", advice=FIXED) as src:
        scale = min(1.0, 2 * size / min(src.height, src.width))
        h, w = max(1, round(src.height * scale)), max(1, round(src.width * scale))
        pixels = src.read_decimated(h, w)
    return np.moveaxis(pixels, -1, 0).astype(np.float32)


def _stretch(data: np.ndarray, invalid: np.ndarray | None) -> np.ndarray:
    """Per band: (x - p2) / (p98 - p2) clipped to 0..1, times 255; invalid and NaN values → 0."""
    valid = np.isfinite(data)
    if invalid is not None:
        valid &= ~invalid
    out = np.zeros(data.shape, dtype=np.float32)
    for i, band in enumerate(data):
        values = band[valid[i]]
        if values.size == 0:
            continue
        low, high = np.percentile(values, [2.0, 98.0])
        if high > low:
            scaled = np.clip((band - low) / (high - low), 0, 1) * 255
            out[i] = np.where(valid[i], scaled, 0)
    return out


def _resize_crop(image: Tensor, size: int) -> Tensor:
    """Resize the shorter side to `size` (bilinear, antialiased), then centre-crop to a square."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    if (h, w) != (size, size):
        new = (max(size, round(h * scale)), max(size, round(w * scale)))
        image = F.interpolate(
            image[None], size=new, mode="bilinear", align_corners=False, antialias=scale < 1
        )[0]
    h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[:, top : top + size, left : left + size].clamp(0, 255).contiguous()
