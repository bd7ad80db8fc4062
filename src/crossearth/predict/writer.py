"""Write class maps (and confidence) as tiled, compressed GeoTIFFs, row band by row band.

Rows arrive from the streaming segmenter in arbitrary heights; they are buffered and written in whole
block rows, so compressed tiles are written once. Files are written under temporary names in the
output folder and renamed into place only by `commit()`; `discard()` removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.shutil import copy as raster_copy

from crossearth.errors import InputError
from crossearth.fileio import publish, signals_deferred, temp_beside
from crossearth.predict.plan import OUTPUT_TAG

BLOCK = 256
NODATA = 255


class _BandWriter:
    """One single-band uint8 GeoTIFF written in whole block rows."""

    def __init__(self, final: Path, profile: dict[str, Any]) -> None:
        self.final = final
        self.tmp = temp_beside(final, ".tmp.tif")
        self.source: Path | None = None  # the tiled file a COG is being copied from
        self.height = profile["height"]
        try:
            self.dataset = rasterio.open(self.tmp, "w", **profile)
        except BaseException:  # not yet known to `ClassMapWriter.discard`
            self.tmp.unlink(missing_ok=True)
            raise
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0
        self.written = 0

    def add(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        self.pending_rows += rows.shape[0]
        full = (self.pending_rows // BLOCK) * BLOCK
        if self.written + self.pending_rows == self.height:
            full = self.pending_rows
        if full:
            self._flush(full)

    def _flush(self, n: int) -> None:
        data = np.concatenate(self.pending, axis=0)
        window = rasterio.windows.Window(0, self.written, data.shape[1], n)
        self.dataset.write(data[:n], 1, window=window)
        self.written += n
        self.pending = [data[n:]] if n < data.shape[0] else []
        self.pending_rows = data.shape[0] - n

    def close(self) -> None:
        if self.pending_rows:
            self._flush(self.pending_rows)
        self.dataset.close()


class ClassMapWriter:
    """Class map GeoTIFF (nodata 255, palette colour map, class names in tags) + optional confidence."""

    def __init__(
        self,
        path: str | Path,
        *,
        height: int,
        width: int,
        crs: Any,
        transform: Any,
        palette: Sequence[Sequence[int]],
        class_names: Sequence[str],
        confidence_path: str | Path | None = None,
        cog: bool = False,
        tags: dict[str, str] | None = None,
        georef: Any = None,
    ) -> None:
        """`crs`/`transform` place the map; `georef` (a `crossearth.geo.raster.Georef`), when
        given, replaces them and also carries GCPs and RPCs over from the input."""
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(f"output folder {self.path.parent} does not exist")
        if not os.access(self.path.parent, os.W_OK):
            raise InputError(f"output folder {self.path.parent} is not writable")
        self.cog = cog
        profile = {
            "driver": "GTiff",
            "height": height,
            "width": width,
            "count": 1,
            "dtype": "uint8",
            "nodata": NODATA,
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
            "compress": "deflate",
        }
        if georef is None:
            if crs is not None:
                profile.update(crs=crs, transform=transform)
            elif transform is not None and not transform.is_identity:
                profile.update(transform=transform)
        self.writers: list[_BandWriter] = []
        try:
            with signals_deferred():  # a signal lands once the file is in `writers`
                self.classes = _BandWriter(self.path, profile)
                self.writers.append(self.classes)
            ds = self.classes.dataset
            if georef is not None:
                georef.write_to(ds)
            ds.write_colormap(1, {i: tuple(int(c) for c in rgb) for i, rgb in enumerate(palette)})
            ds.set_band_description(1, "class")
            ds.update_tags(
                class_names=json.dumps(list(class_names)),
                nodata_meaning="no data",
                **{OUTPUT_TAG: "classes"},
                **(tags or {}),
            )
            self.confidence = None
            if confidence_path is not None:
                with signals_deferred():
                    self.confidence = _BandWriter(Path(confidence_path), profile)
                    self.writers.append(self.confidence)
                if georef is not None:
                    georef.write_to(self.confidence.dataset)
                self.confidence.dataset.set_band_description(1, "confidence_percent")
                self.confidence.dataset.update_tags(
                    meaning="share of the winning class in the summed class scores, percent (0-100)",
                    **{OUTPUT_TAG: "confidence"},
                )
        except BaseException:
            self.discard()
            raise

    def write_rows(self, y0: int, labels: np.ndarray, confidence: np.ndarray | None) -> None:
        if y0 != self.classes.written + self.classes.pending_rows:
            raise RuntimeError(f"rows must arrive in order: got row {y0}")
        self.classes.add(labels)
        if self.confidence is not None and confidence is not None:
            self.confidence.add(confidence)

    def commit(self) -> list[Path]:
        """Close the files and move them to their final names (as COGs if asked)."""
        for writer in self.writers:
            writer.close()
        done = []
        for writer in self.writers:
            if self.cog:
                with signals_deferred():  # both files stay known to `discard`
                    tiled = writer.source = writer.tmp
                    writer.tmp = temp_beside(writer.final, ".tmp.tif")
                raster_copy(
                    tiled,
                    writer.tmp,
                    driver="COG",
                    compress="DEFLATE",
                    overview_resampling="nearest",
                )
                tiled.unlink()
                writer.source = None
            done.append(publish(writer.tmp, writer.final))
        return done

    def discard(self) -> None:
        for writer in self.writers:
            with contextlib.suppress(Exception):  # already closed or broken: removed below anyway
                writer.dataset.close()
            for path in (writer.tmp, writer.source):
                if path is not None:
                    path.unlink(missing_ok=True)


def tif_to_png(tif: Path, png: Path, palette: Sequence[Sequence[int]]) -> Path:
    """Re-encode a finished class-map GeoTIFF as a palette PNG (for inputs without georeferencing)."""
    from crossearth.imageio import write_label_map

    with rasterio.open(tif) as src:
        labels = src.read(1)
    try:
        write_label_map(png, labels, palette)
    finally:
        tif.unlink()
    return png
